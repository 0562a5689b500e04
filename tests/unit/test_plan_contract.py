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
