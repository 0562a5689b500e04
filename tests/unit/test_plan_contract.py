"""The contract between deploy.yml and the agents, across the two halves of the repository: one
copy of the service file's and the plan document's rules (the collection's module_utils, linked
into runtime/src/pico_agent), the plan the planner (pico.cloud.service_plan) writes read by the
agent's failover, whose rule gives every slot a live node, and one set of discovery limits."""
import re
from pathlib import Path

import pytest

import pico_agent._plan_document as agent_plan_side
import pico_agent._service_spec as agent_side
from ansible_collections.pico.cloud.plugins.module_utils import _plan_document as controller_plan_side
from ansible_collections.pico.cloud.plugins.module_utils import _service_spec as controller_side
from ansible_collections.pico.cloud.plugins.module_utils._placement import PlacementError, validate_service
from ansible_collections.pico.cloud.plugins.module_utils._plan_document import with_powered_off
from ansible_collections.pico.cloud.tests.unit.plugins.action.service_plan_play import NODES, plan, service
from pico_agent.failover import assign, parse_plan
from pico_agent.spec import SpecError, parse_spec


def test_the_plan_carries_what_agents_need_to_fail_over_and_the_agent_takes_it(tmp_path):
    """The contract between deploy.yml and the agents: the agent's own parser reads the plan."""
    web = dict(service("web", replicas=2), env={"TOKEN": "s3cret"}, resources={"memory": "64m", "cpu": 0.2})
    result, out = plan(tmp_path, services=[web], nodes=NODES + ["pz-4"], cluster_id="0123456789abcdef")
    assert result.returncode == 0, result.stdout
    assert "s3cret" not in result.stdout.split("TASK [Show]")[0]  # the planner's diff shows slots, never specs
    raw = out["plan"]
    assert raw["cluster"] == "0123456789abcdef"
    entry = raw["services"]["web"]["failover"]
    assert entry["candidates"] == ["pz-1", "pz-2", "pz-3"]  # pz-4 is down and unknown: no architecture
    assert entry["requests"] == {"memory": 64 * 1024 * 1024, "cpu": 0.2}
    assert entry["specs"]["armv6l"]["replicas"] == 1 and entry["specs"]["armv6l"]["env"] == {"TOKEN": "s3cret"}
    parsed = parse_plan(raw)
    owner = raw["services"]["web"]["slots"][0]
    chosen, waiting = assign(parsed, failed={owner}, alive={"pz-1", "pz-2", "pz-3"} - {owner})
    assert not waiting and set(chosen.values()) <= {"pz-1", "pz-2", "pz-3"} - {owner}
    # energy.yml's record of a board it powers down: the same writer, a plan the agent takes as newer.
    spare = next(n for n in ("pz-1", "pz-2", "pz-3") if n not in raw["services"]["web"]["slots"])
    slept = with_powered_off(raw, {spare: raw["nodes"][spare]}, 1700000000)
    assert parse_plan(slept).generation == parsed.generation + 1 and slept["services"] == raw["services"]


def check_plan(document):
    """The agent's `check-plan`, as deploy.yml runs it on a board before it drains anything."""
    import json
    import subprocess
    import sys
    from pathlib import Path
    source = Path(__file__).resolve().parents[2] / "runtime/src"
    return subprocess.run([sys.executable, "-m", "pico_agent", "check-plan", "-"], input=json.dumps(document),
                          capture_output=True, text=True, cwd=source, check=False)


def test_the_agent_checks_a_rollout_before_anything_is_drained_and_names_what_it_refuses(tmp_path):
    """What the planner accepts and an agent refuses (env.PORT, which the agent sets) is named by
    node and service with the agent's own message, before deploy.yml drains a batch."""
    good = dict(service("web", replicas=2), env={"TOKEN": "s3cret"})
    result, out = plan(tmp_path, services=[good], nodes=NODES, cluster_id="0123456789abcdef")
    assert result.returncode == 0, result.stdout
    accepted = check_plan({"plan": out["plan"], "node_files": out["node_files"]})
    assert (accepted.returncode, accepted.stdout) == (0, ""), accepted.stdout + accepted.stderr

    bad = dict(good, env={"PORT": "9000", "TOKEN": "s3cret"})
    result, dummy = plan(tmp_path, services=[bad], nodes=NODES, cluster_id="0123456789abcdef")
    assert result.returncode != 0  # the planner runs the agents' rule itself (test below)
    assert ("service web: env.PORT is set by the agent from port (replica i gets port + i): remove it from env"
            in " ".join(result.stdout.split())), result.stdout
    # An agent still checks what it is given (a controller with another version of the
    # collection): the same refusal, named by node, never quoting a value.
    for spec in [*out["plan"]["services"]["web"]["failover"]["specs"].values(),
                 *(files["web"] for files in out["node_files"].values() if "web" in files)]:
        spec["env"] = {"PORT": "9000", "TOKEN": "s3cret"}
    refused = check_plan({"plan": out["plan"], "node_files": out["node_files"]})
    assert refused.returncode == 2
    lines = refused.stdout.splitlines()
    placed = sorted(node for node, files in out["node_files"].items() if "web" in files)
    assert [line.split(":")[0] for line in lines[1:]] == placed, refused.stdout
    assert lines[0].startswith("the plan: services.web.failover.specs.armv6l: env.PORT is set by the agent")
    assert all("env.PORT is set by the agent from port" in line for line in lines)
    assert "s3cret" not in refused.stdout and "9000" not in refused.stdout
    assert check_plan({"plan": {"generation": "x"}}).stdout.startswith("the plan: generation is not a number")
    assert check_plan("[]").returncode == 2


# Service files an agent refuses, each for a rule of its own.
REFUSED_BY_AGENTS = [
    ({"env": {"PORT": "9000"}}, "env.PORT is set by the agent from port"),
    ({"env": {"A-B": "1"}}, "env.A-B: names are letters, digits and _"),
    ({"health": {"type": "http", "interval": 2, "timeout": 5}}, "health.timeout = 5.0: must not exceed health.interval"),
    ({"health": {"type": "grpc"}}, "health.type = 'grpc': one of http, tcp, command, none"),
    ({"health": {"type": "command"}}, "health.type = 'command' needs health.command"),
    ({"health": {"type": "tcp"}, "port": None}, "health.type = 'tcp' needs port"),
    ({"network": "overlay"}, "network = 'overlay': host or bridge"),
    ({"container_port": 80}, "container_port applies to network bridge only"),
    ({"command": "serve --fast"}, "command: a list of at most 256 strings"),
    ({"image": "pico/demo 1.0"}, "image = 'pico/demo 1.0': an image reference"),
    ({"tags": ["x" * 97]}, "tags: each at most 96 characters"),
]


def test_one_copy_of_the_service_file_rules_serves_the_agent_and_the_planner():
    """The agent's parsers are the collection's module_utils/_service_spec.py and _plan_document.py
    (links, carried into the agent bundle), and the planner refuses every declaration whose service file an agent
    would refuse, with the agent's message, before a rollout drains anything."""
    assert Path(agent_side.__file__).resolve() == Path(controller_side.__file__).resolve()
    assert Path(agent_plan_side.__file__).resolve() == Path(controller_plan_side.__file__).resolve()
    assert parse_plan is agent_plan_side.parse_plan  # the agent's failover reads plans with it
    for change, said in REFUSED_BY_AGENTS:
        declared = dict((k, v) for k, v in dict(service("web"), **change).items() if v is not None)
        with pytest.raises(SpecError, match="^" + re.escape(said)):
            parse_spec(dict((k, v) for k, v in declared.items() if k not in ("replicas",)))
        with pytest.raises(PlacementError) as refused:
            validate_service(declared)
        assert str(refused.value).startswith("service web: " + said), (change, str(refused.value))


def test_the_roles_and_the_agent_name_the_same_paths_for_what_the_controller_gives_a_node():
    import yaml
    roles = Path(controller_side.__file__).resolve().parents[2] / "roles"
    deploy = yaml.safe_load((roles / "deploy/vars/main.yml").read_text())
    agent = yaml.safe_load((roles / "agent/vars/main.yml").read_text())
    template = (roles / "agent/templates/agent.toml.j2").read_text()
    assert deploy["_pico_deploy_plan_file"] == controller_side.PLAN_FILE
    assert deploy["_pico_deploy_services_dir"] == agent["_pico_agent_services_dir"] == controller_side.SERVICES_DIR
    assert f'plan_file = "{controller_side.PLAN_FILE}"' in template
    from pico_agent.config import AgentConfig
    assert (str(AgentConfig.__dataclass_fields__["plan_file"].default), str(AgentConfig.__dataclass_fields__["services_dir"].default)) == (
        controller_side.PLAN_FILE, controller_side.SERVICES_DIR)


def test_a_node_never_publishes_what_its_peers_refuse():
    """One set of limits (module_utils/_service_spec.py): the longest names, the most tags a
    declaration may have plus the two added on the way (spec, takeover), give an instance its
    peers take; the planner refuses one tag more."""
    from pico_agent.catalog import parse_remote, served_version
    longest = "n" * 63
    declared = dict(service(longest), tags=["t" * 96] * controller_side.MAX_DECLARED_TAGS)
    validate_service(declared)
    with pytest.raises(PlacementError, match="tags: at most 14"):
        validate_service(dict(declared, tags=declared["tags"] + ["one-more"]))
    takeover_tag = "%s%s:%d" % (controller_side.FAILOVER_TAG, longest, 999)
    published = {"service": longest, "port": 8000, "id": "%s/%s-%d" % (longest, longest, 9999),
                 "tags": declared["tags"] + ["pico.spec:0123456789abcdef", takeover_tag]}
    catalog = [published] * controller_side.MAX_INSTANCES
    version, taken = parse_remote({"version": served_version(catalog), "instances": catalog}, longest, "10.0.0.1")
    assert len(taken) == controller_side.MAX_INSTANCES and taken[0].tags[-1] == takeover_tag
