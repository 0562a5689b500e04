"""The contract between deploy.yml and the agents, across the two halves of the repository: the
plan the collection's planner (pico.cloud.service_plan) writes is read by the agent's own parser
(runtime/src/pico_agent/failover.py), and its failover rule gives every slot a live node."""
from ansible_collections.pico.cloud.tests.unit.plugins.action.service_plan_play import NODES, plan, service
from pico_agent.failover import assign, parse_plan


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
    result, out = plan(tmp_path, services=[bad], nodes=NODES, cluster_id="0123456789abcdef")
    assert result.returncode == 0, result.stdout  # the planner alone lets it through
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
