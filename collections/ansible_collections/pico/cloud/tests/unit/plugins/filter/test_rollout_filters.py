"""The filters deploy.yml and status.yml use: what to wait for, and the status table."""
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
    assert any(line.startswith("c     armv6l   pizero   -      0/352 MiB") and line.endswith("(drained)") for line in lines)
