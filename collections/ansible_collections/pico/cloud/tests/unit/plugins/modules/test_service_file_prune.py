"""service_file_prune, run as Ansible runs it: a provisioning run never removes what deploy.yml placed."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest


@pytest.fixture
def node(tmp_path):
    """A node's service directory: the role's demo, deploy.yml's web, and old-console, listed no more."""
    services = tmp_path / "services"
    services.mkdir()
    for name in ("demo", "web", "old-console"):
        (services / (name + ".json")).write_text(json.dumps({"name": name}) + "\n")
    (services / "notes.txt").write_text("not a service file\n")
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"generation": 3, "services": {"web": {"slots": ["pz-1"]}}}))
    return services, plan


def held(services):
    return sorted(path.name for path in services.iterdir())


def test_the_plans_services_stay_without_pico_services_and_the_rest_goes(run_module, node):
    services, plan = node
    result = run_module("service_file_prune", keep=["demo"], path=str(services), plan_file=str(plan))
    assert (result["changed"], result["removed"], result["kept_for_plan"]) == (True, ["old-console"], ["web"]), result["_raw"]
    assert held(services) == ["demo.json", "notes.txt", "web.json"]
    again = run_module("service_file_prune", keep=["demo"], path=str(services), plan_file=str(plan))
    assert (again["changed"], again["removed"]) == (False, [])


def test_check_mode_names_what_would_go_and_removes_nothing(run_module, node):
    services, plan = node
    result = run_module("service_file_prune", check=True, keep=["demo"], path=str(services), plan_file=str(plan))
    assert (result["changed"], result["removed"]) == (True, ["old-console"])
    assert held(services) == ["demo.json", "notes.txt", "old-console.json", "web.json"]


def test_without_a_plan_only_the_list_is_kept(run_module, node):
    services, plan = node
    plan.unlink()
    result = run_module("service_file_prune", keep=["demo"], path=str(services), plan_file=str(plan))
    assert result["removed"] == ["old-console", "web"]
    assert held(services) == ["demo.json", "notes.txt"]
    # No service directory yet (a dry run of a first run): nothing to remove.
    result = run_module("service_file_prune", check=True, path=str(services / "none"), plan_file=str(plan))
    assert (result["changed"], result["removed"]) == (False, [])


@pytest.mark.parametrize(("content", "problem"), [
    ("{not json", "plan.json: not JSON"),
    ('{"services": ["web"]}', "services is not a mapping"),
    ('{"generation": -1, "services": {}}', "generation = -1"),  # read as deploy.yml reads it
])
def test_a_plan_that_cannot_be_read_stops_before_anything_is_removed(run_module, node, content, problem):
    services, plan = node
    plan.write_text(content)
    result = run_module("service_file_prune", keep=["demo"], path=str(services), plan_file=str(plan))
    assert result.get("failed") and problem in result["msg"] and "Nothing was changed" in result["msg"], result["_raw"]
    assert "the next deploy.yml writes the plan there again" in result["msg"]
    assert held(services) == ["demo.json", "notes.txt", "old-console.json", "web.json"]
