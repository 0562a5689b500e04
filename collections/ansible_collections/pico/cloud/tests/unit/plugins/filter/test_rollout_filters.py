"""The filters deploy.yml and status.yml use: what to wait for, and the status table."""
import re

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.pico.cloud.plugins.filter.cluster_status import _cluster_status
from ansible_collections.pico.cloud.plugins.filter.rollout_wait import _rollout_wait

OLD = {"name": "web", "image": "pico/demo:1.0.0", "replicas": 1, "tags": ["pico.spec:aaaa"]}
NEW = {"name": "web", "image": "pico/demo:2.0.0", "replicas": 2, "tags": ["v2", "pico.spec:bbbb"]}
STEPS = [{"node": "a", "action": "replace", "old": OLD, "new": NEW},
         {"node": "b", "action": "start", "old": None, "new": NEW},
         {"node": "c", "action": "stop", "old": OLD, "new": None}]


def test_what_a_batch_waits_for():
    assert _rollout_wait(STEPS, "new") == [{"node": "a", "count": 2, "tag": "pico.spec:bbbb"},
                                           {"node": "b", "count": 2, "tag": "pico.spec:bbbb"}]
    assert _rollout_wait(STEPS, "old") == [{"node": "a", "count": 1, "tag": "pico.spec:aaaa"},
                                           {"node": "c", "count": 1, "tag": "pico.spec:aaaa"}]
    assert _rollout_wait(STEPS, "gone") == [{"node": "a", "tag": "pico.spec:aaaa"}, {"node": "c", "tag": "pico.spec:aaaa"}]


def test_a_scale_down_waits_for_only_the_replicas_that_go():
    two = dict(OLD, replicas=2)
    step = {"node": "a", "action": "scale-down", "old": two, "new": OLD, "drain": [1]}
    assert _rollout_wait([step], "gone") == [{"node": "a", "id": "a/web-1"}]
    assert _rollout_wait([step], "new") == [{"node": "a", "count": 1, "tag": "pico.spec:aaaa"}]


@pytest.mark.parametrize(("steps", "which", "message"), [
    (STEPS, "later", "which must be new, old or gone"),
    ("a", "new", "expects a list of rollout steps"),
    ([{"action": "start"}], "new", "is not a rollout step"),
])
def test_bad_input_is_refused(steps, which, message):
    with pytest.raises(AnsibleFilterError, match=message):
        _rollout_wait(steps, which)


def test_status_puts_the_plan_beside_discovery():
    plan = {"generation": 4, "version": "v4", "drained": ["c"],
            "services": {"web": {"digest": "bbbb", "slots": ["a", "b", "a"]}},
            "nodes": {"a": {"memory_requested": 96 * 1024 ** 2, "cpu_requested": 0.4, "replicas": {"web": 2}},
                      "b": {"memory_requested": 48 * 1024 ** 2, "cpu_requested": 0.2, "replicas": {"web": 1}}}}
    nodes = [{"name": "a", "arch": "armv6l", "board": "pizero", "memory": "352m", "cpus": 1, "power": {"profile": "eco"},
              "services": {"web": NEW}},
             {"name": "b", "arch": "aarch64", "board": "pizero2", "memory": "352m", "cpus": 4, "power": None,
              "services": {"web": NEW}},
             {"name": "c", "arch": "armv6l", "board": "pizero", "memory": "352m", "cpus": 1, "services": {}}]
    instances = {"web": [{"node": "a", "tags": ["pico.spec:bbbb"]}, {"node": "b", "tags": ["pico.spec:aaaa"]},
                         {"node": "b", "tags": ["pico.spec:bbbb", "pico.failover:c:2"]}]}
    status = _cluster_status(plan, nodes, instances)
    web = status["services"][0]
    assert (web["desired"], web["healthy"], web["healthy_current_spec"], web["version"]) == (3, 3, 2, "pico/demo:2.0.0")
    assert web["failed_over"] == [{"node": "b", "owner": "c", "slot": 2}]
    assert web["planned"] == {"a": 2, "b": 1}
    a = status["nodes"][0]
    assert (a["memory_requested_mib"], a["memory_capacity_mib"], a["power_profile"], a["drained"]) == (96, 352, "eco", False)
    assert status["nodes"][2]["drained"] is True
    lines = status["text"].splitlines()
    assert lines[0] == "plan generation 4 (v4)"
    assert "web      3/3              pico/demo:2.0.0  a:2 b:1  b(for c)" in lines
    assert any(line.startswith("c     up     armv6l   pizero   -      0/352 MiB") and line.endswith("(drained)") for line in lines)


def test_status_lists_the_services_pinned_to_nodes_beside_the_plan():
    """The lab's demo runs on every board from the agent role's pico_agent_services, outside any
    plan: the status lists it, marked pinned, and not as "no services"."""
    demo = {"name": "demo", "image": "pico/demo:1.0.0", "port": 8080}
    console = {"name": "console", "port": 22}
    nodes = [{"name": "a", "arch": "armv6l", "board": "pizero", "memory": "352m", "cpus": 1,
              "services": {"demo": demo, "console": console}},
             {"name": "b", "arch": "aarch64", "board": "pizero2", "memory": "352m", "cpus": 4, "services": {"demo": demo}}]
    # console is pinned to a but not healthy: listed all the same, 0 of 1.
    instances = {"demo": [{"node": "a", "tags": []}]}
    status = _cluster_status({}, nodes, instances)
    listed = {s["name"]: (s["desired"], s["healthy"], s["version"], s["planned"], s["pinned"]) for s in status["services"]}
    assert listed == {"console": (1, 0, "-", {"a": 1}, True), "demo": (2, 1, "pico/demo:1.0.0", {"a": 1, "b": 1}, True)}
    assert {row["name"]: row["pinned"] for row in status["nodes"]} == {"a": ["console", "demo"], "b": ["demo"]}
    lines = status["text"].splitlines()
    assert "no services" not in lines
    assert "demo     1/2              pico/demo:1.0.0  a:1 b:1 (pinned)  -" in lines, status["text"]
    assert any(line.startswith("b ") and line.endswith("demo(pinned)") for line in lines), status["text"]
    # A board the run could not look at: what the inventory pins to it.
    fleet = {"group": ["a", "b", "c"], "remaining": ["a", "b"], "pinned": {"a": ["demo"], "b": ["demo"], "c": ["demo"]}}
    status = _cluster_status({}, nodes, instances, fleet, [])
    assert next(s for s in status["services"] if s["name"] == "demo")["planned"] == {"a": 1, "b": 1, "c": 1}
    assert next(row for row in status["nodes"] if row["name"] == "c")["pinned"] == ["demo"]
    # A planned service keeps the plan's slots, even where a node also holds its file.
    plan = {"services": {"demo": {"digest": "d", "slots": ["b"]}}, "nodes": {"b": {"replicas": {"demo": 1}}}}
    status = _cluster_status(plan, nodes, instances)
    listed = {s["name"]: (s["planned"], s["pinned"]) for s in status["services"]}
    assert listed == {"console": ({"a": 1}, True), "demo": ({"b": 1}, False)}


def test_status_writes_a_services_boards_as_a_hostlist_and_sorts_boards_naturally():
    """At 30 boards a service's NODES cell stays one short line, and native-2 comes before native-10."""
    names = ["native-%d" % i for i in range(1, 28)] + ["pizero-1", "pizero-2", "pizero2-1"]
    slots = [n for n in names if n != "native-9"] + ["native-12"]
    plan = {"services": {"web": {"digest": "d", "slots": slots}}}
    nodes = [{"name": n, "arch": "x86_64", "board": "native", "memory": "352m", "cpus": 1} for n in reversed(names)]
    status = _cluster_status(plan, nodes, {})
    web_line = next(line for line in status["text"].splitlines() if line.startswith("web "))
    assert web_line.endswith("0/30             -        native-[1-8,10-11,13-27]:1 native-12:2 pizero-[1-2]:1 pizero2-1:1  -"), web_line
    assert [row["name"] for row in status["nodes"]] == names
    # Names that end in no number, or in the same prefix's number, stay apart; padded numbers keep their zeros.
    # An empty slot (None) is desired but on no node.
    plan = {"services": {"web": {"slots": ["m-pizero", "m-pizero-b", "m-pizero2", "n-01", "n-02", "n-0", None]}}}
    status = _cluster_status(plan, [], {})
    assert "0/7              -        m-pizero:1 m-pizero2:1 m-pizero-b:1 n-0:1 n-0[1-2]:1" in status["text"], status["text"]


def test_status_shows_every_board_of_the_inventory_with_its_state_and_what_it_holds():
    """Boards the run could not look at keep a row: from the plan, the gossip and the power record."""
    plan = {"generation": 5, "version": "v5", "drained": [],
            "services": {"web": {"digest": "bbbb", "slots": ["a", "b", "c"]}},
            "nodes": {"a": {"arch": "armv6l", "cpus": 1.0, "memory": 352 * 1024 ** 2, "memory_requested": 48 * 1024 ** 2,
                            "cpu_requested": 0.2, "replicas": {"web": 1}},
                      "b": {"arch": "aarch64", "cpus": 4.0, "memory": 352 * 1024 ** 2, "memory_requested": 48 * 1024 ** 2,
                            "cpu_requested": 0.2, "replicas": {"web": 1}},
                      "c": {"arch": "armv6l", "cpus": 1.0, "memory": 352 * 1024 ** 2, "memory_requested": 48 * 1024 ** 2,
                            "cpu_requested": 0.2, "replicas": {"web": 1}}},
            "powered_off": {"d": {"name": "d", "arch": "armv6l", "board": "pizero", "memory": "352m", "cpus": 1,
                                  "since": 1796390000}}}
    nodes = [{"name": "a", "arch": "armv6l", "board": "pizero", "memory": "352m", "cpus": 1, "power": {"profile": "eco"},
              "services": {"web": NEW}}]
    fleet = {"group": ["a", "b", "c", "d", "e"], "powered_down": ["d"], "reached": ["a", "b"], "remaining": ["a"],
             "boards": {"a": "pizero", "b": "pizero2", "c": "pizero", "d": "pizero", "e": "pizero"}}
    members = [{"name": "a", "status": "alive", "since": None}, {"name": "b", "status": "failed", "since": 1796391000},
               {"name": "c", "status": "alive", "since": None}, {"name": "d", "status": "left", "since": 1796389999}]
    status = _cluster_status(plan, nodes, {"web": [{"node": "a", "tags": ["pico.spec:bbbb"]}]}, fleet, members)
    rows = {row["name"]: row for row in status["nodes"]}
    assert {name: row["state"] for name, row in rows.items()} == {
        "a": "up",
        "b": "unreachable, failed in the gossip since 2026-12-04 13:30 UTC",
        "c": "unreachable, alive in the gossip",
        "d": "powered down since 2026-12-04 13:13 UTC",
        "e": "unreachable, not in the gossip",
    }
    # What an unreachable board held, and its capacity, from the plan; its board from the inventory.
    assert (rows["b"]["arch"], rows["b"]["board"], rows["b"]["replicas"], rows["b"]["memory_capacity_mib"]) == (
        "aarch64", "pizero2", {"web": 1}, 352)
    assert rows["d"]["arch"] == "armv6l" and rows["e"]["arch"] == "" and rows["e"]["replicas"] == {}
    # Its capacity unknown (never looked at, not in the plan) reads as unknown, not as a board of 0 MiB.
    assert re.search(r"^e +unreachable, not in the gossip +- +pizero +- +- +- *$", status["text"], re.M), status["text"]
    assert re.search(r"^b +unreachable, failed .* 48/352 MiB +0\.2/4 +web:1$", status["text"], re.M), status["text"]


from ansible_collections.pico.cloud.plugins.filter import rollout_away as away_plugin  # noqa: E402

rollout_away = away_plugin.FilterModule().filters()["rollout_away"]
MEMBERS = [{"name": "pz-1", "status": "alive"}, {"name": "pz-2", "status": "failed"}, {"name": "pz-3", "status": "alive"}]


def test_a_node_ansible_cannot_reach_or_the_gossip_counts_failed_is_away_the_rest_is_a_failure():
    results = [
        {"item": {"node": "pz-1"}, "changed": True},
        {"item": {"node": "pz-2"}, "failed": True, "msg": "Mitogen was disconnected from the remote environment"},
        {"item": {"node": "pz-3"}, "failed": True, "msg": "failed to validate"},
        {"item": "pz-4", "unreachable": True, "msg": "Connection timed out"},
    ]
    assert rollout_away(results, MEMBERS) == {"away": ["pz-2", "pz-4"], "failed": [{"node": "pz-3", "msg": "failed to validate"}]}


def test_without_the_members_only_the_unreachable_are_away():
    results = [{"item": {"node": "pz-2"}, "failed": True, "msg": "x"}, {"item": "pz-4", "unreachable": True}]
    assert rollout_away(results, None) == {"away": ["pz-4"], "failed": [{"node": "pz-2", "msg": "x"}]}


def test_results_that_are_not_a_steps_results_are_a_filter_error():
    with pytest.raises(AnsibleFilterError, match="loop results"):
        rollout_away({"results": []}, MEMBERS)
    with pytest.raises(AnsibleFilterError, match="without the node"):
        rollout_away([{"failed": True}], MEMBERS)


from ansible_collections.pico.cloud.plugins.filter import rollout_missed as missed_plugin  # noqa: E402

rollout_missed = missed_plugin.FilterModule().filters()["rollout_missed"]


def test_what_a_rollout_left_undone_on_a_node_found_away_is_said_per_node():
    rollouts = [{"service": "web", "batches": [{"steps": STEPS[:1]}, {"steps": STEPS[1:]}]},
                {"service": "api", "batches": [{"steps": [{"node": "z", "action": "start", "old": None, "new": NEW}]}]}]
    assert rollout_missed(["a", "c", "q"], rollouts) == {
        "a": "not rolled out there, or not all of it: web (replace to 2 of pico/demo:2.0.0); the agents cover its "
             "slots by failover until a deploy reaches it: run deploy.yml again once it is back.",
        "c": "not rolled out there, or not all of it: web (stop); the agents cover its slots by failover until a "
             "deploy reaches it: run deploy.yml again once it is back.",
        "q": "the new plan did not reach it: run deploy.yml again once it is back.",
    }
    with pytest.raises(AnsibleFilterError):
        rollout_missed("a", rollouts)
