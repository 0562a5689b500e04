# Pico-Cloud: `make lab` brings up and provisions the emulated Pi Zero lab; `make test` runs
# every test. Both set up what this machine lacks first (scripts/bootstrap.sh, as root).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
export PATH := $(CURDIR)/.venv/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PY_COLORS := 0
export ANSIBLE_FORCE_COLOR := 0

LAB_MIX ?= pizero=2,pizero2=1
LAB_SUBNET ?= 172.28.10.0/24
LAB := python3 -m lab

.PHONY: lab test bootstrap images lab-up lab-status lab-ready lab-down provision collection-oldest \
        unit lint syntax collection molecule molecule-default molecule-containers integration \
        integration-lab integration-agent chaos fleet monitoring-lab

## The two commands of the README
lab: bootstrap lab-up provision lab-ready

test: bootstrap images
	@bash tests/run-all.sh

## Steps
bootstrap:
	@bash scripts/bootstrap.sh

images: bootstrap
	$(LAB) images

lab-up:
	$(LAB) up --mix $(LAB_MIX) --subnet $(LAB_SUBNET)

lab-status:
	@$(LAB) status

# Waits until every board's services are healthy, then says how to look at them.
lab-ready:
	@$(LAB) ready

lab-down:
	$(LAB) down

provision:
	ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks ansible-playbook site.yml

unit:
	pytest -q tests/unit lab/tests runtime/tests/unit

lint:
	ansible-lint --offline --profile production

syntax:
	@for playbook in site.yml playbooks/*.yml; do \
	  [ -e "$$playbook" ] || continue; \
	  echo "syntax-check $$playbook"; \
	  ansible-playbook --syntax-check -i inventories/example/hosts.yml "$$playbook"; \
	done

# The collection as Galaxy and ansible-test see it: sanity (0 errors; tests/sanity/ignore-*.txt
# holds only the license ignore the community allows), its unit tests (their home: ansible-test
# units, held to tests/skip_policy.py through its JUnit reports), and the docs lint.
# scripts/build_collection.py's tarball is tested by tests/unit and Molecule.
COLLECTION_DIR := collections/ansible_collections/pico/cloud
ANSIBLE_TEST := cd $(COLLECTION_DIR) && ansible-test
collection:
	@bash scripts/seed-ansible-test-pip.sh
	$(ANSIBLE_TEST) sanity --venv --python 3.11 --requirements --color no
	$(ANSIBLE_TEST) units --venv --python 3.11 --requirements --color no
	python3 -m tests.skip_policy $(COLLECTION_DIR)/tests/output/junit/python3.11-*-units.xml
	cd $(COLLECTION_DIR) && ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/collections antsibull-docs lint-collection-docs --plugin-docs .

# The same on the lowest ansible-core meta/runtime.yml declares (its own venv in .build/).
collection-oldest:
	bash scripts/collection-on-oldest-ansible-core.sh

# The parts of the integration tests; `make integration` runs them all, one after the other;
# `make test` runs each where it fits (tests/run-all.sh).
integration-lab:
	pytest -q --durations=15 --basetemp=$${TMPDIR:-/tmp}/pico-it-lab --ignore=tests/integration/test_energy.py \
	  --ignore=tests/integration/test_fleet.py tests/integration

integration-agent:
	pytest -q --durations=10 --basetemp=$${TMPDIR:-/tmp}/pico-it-agent --ignore=runtime/tests/integration/test_chaos.py runtime/tests/integration

# The failover chaos suite on a LAN of network namespaces.
chaos:
	pytest -q --durations=10 --basetemp=$${TMPDIR:-/tmp}/pico-it-chaos runtime/tests/integration/test_chaos.py

# A fleet that is never all up, on a lab of six native boards of its own: energy-aware placement
# powers boards down on purpose, then boards freeze in the middle of site.yml and deploy.yml.
fleet:
	pytest -q --durations=10 --basetemp=$${TMPDIR:-/tmp}/pico-it-fleet tests/integration/test_energy.py \
	  tests/integration/test_fleet.py --deselect $(MONITORING_LAB_TEST)

# The monitoring role with Debian's Prometheus on the fleet lab (about 6 min): not in `make test`,
# which is at its 25-minute budget; run it when the role, the rules or the agents' discovery change.
MONITORING_LAB_TEST := tests/integration/test_fleet.py::test_prometheus_on_a_board_follows_the_fleet_through_the_agents
monitoring-lab:
	pytest -q --durations=10 --basetemp=$${TMPDIR:-/tmp}/pico-it-fleet tests/integration/test_energy.py \
	  $(MONITORING_LAB_TEST)

integration: integration-lab integration-agent chaos fleet monitoring-lab

molecule: molecule-default molecule-containers

molecule-default:
	molecule test -s default

molecule-containers:
	molecule test -s containers
