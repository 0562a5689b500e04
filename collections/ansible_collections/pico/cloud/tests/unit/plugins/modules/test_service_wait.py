"""What service_wait counts: a node's own instances of a spec, never a takeover it runs for a
failed peer (same spec tag, but the agent retires it on its own)."""
from ansible_collections.pico.cloud.plugins.modules.service_wait import _matches

SPEC = "pico.spec:5174b834113e4c34"
OWN = {"node": "pz-2", "id": "pz-2/web-0", "tags": [SPEC]}
TAKEOVER = {"node": "pz-2", "id": "pz-2/web-4", "tags": [SPEC, "pico.failover:pz-3:1"]}


def test_a_takeover_beside_the_nodes_own_replica_is_not_counted():
    want = [{"node": "pz-2", "count": 1, "tag": SPEC}]
    assert _matches([OWN, TAKEOVER], want, []) is None
    assert _matches([TAKEOVER], want, []) == "pz-2 has 0 healthy instances tagged %s in discovery, 1 wanted" % SPEC
    assert _matches([OWN, dict(OWN, id="pz-2/web-1")], want, []).startswith("pz-2 has 2 healthy instances")


def test_a_takeover_left_on_a_node_does_not_hold_up_its_old_instances_going():
    assert _matches([TAKEOVER], [], [{"node": "pz-2", "tag": SPEC}]) is None
    assert _matches([OWN], [], [{"node": "pz-2", "tag": SPEC}]) == "pz-2 still has 1 instance in discovery"
