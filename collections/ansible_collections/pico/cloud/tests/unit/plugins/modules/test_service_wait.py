"""What service_wait counts: a node's own instances of a spec, never a takeover it runs for a
failed peer (same spec tag, but the agent retires it on its own)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

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


class _Agent:
    """An agent's read-only API on loopback, answering what a test sets (the module as a whole is
    run against real agents in the integration tests; here only what it concludes is checked)."""

    def __init__(self, instances, members, address=("127.0.0.1", 0)):
        import http.server
        import json
        import threading
        agent = self
        self.instances, self.members = instances, members

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path.startswith("/v1/services/"):
                    body = {"instances": agent.instances() if callable(agent.instances) else agent.instances}
                else:
                    body = {"members": agent.members() if callable(agent.members) else agent.members}
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(address, Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]

    def close(self):
        self.server.shutdown()


def test_a_node_the_gossip_counts_failed_is_not_waited_for_and_is_returned(run_module):
    agent = _Agent([dict(OWN, node="pz-1", id="pz-1/web-0")],
                   [{"name": "pz-1", "status": "alive"}, {"name": "pz-2", "status": "failed"}])
    try:
        result = run_module("service_wait", name="web", api_url=agent.url, timeout=20,
                            present=[{"node": "pz-1", "count": 1, "tag": SPEC}, {"node": "pz-2", "count": 1, "tag": SPEC}])
    finally:
        agent.close()
    assert result.get("failed") is not True, result["_raw"]
    assert result["gone"] == ["pz-2"] and result["waited"] < 10


def test_a_node_that_is_alive_is_waited_for_and_named(run_module):
    agent = _Agent([dict(OWN, node="pz-1", id="pz-1/web-0")],
                   [{"name": "pz-1", "status": "alive", "address": "127.0.0.1"}, {"name": "pz-2", "status": "alive", "address": "127.0.0.1"}])
    try:
        result = run_module("service_wait", name="web", api_url=agent.url, timeout=1, interval=0.2,
                            present=[{"node": "pz-1", "count": 1, "tag": SPEC}, {"node": "pz-2", "count": 1, "tag": SPEC}])
    finally:
        agent.close()
    assert result["failed"] is True and result["gone"] == []
    assert result["msg"].startswith("service web: pz-2 has 0 healthy instances")


MEMBERS = [{"name": "pz-1", "status": "alive", "address": "127.0.0.1"}]
WANT = [{"node": "pz-1", "count": 1, "tag": SPEC}]


def test_healthy_counts_only_once_it_held_for_min_healthy_time(run_module):
    agent = _Agent([dict(OWN, node="pz-1", id="pz-1/web-0")], MEMBERS)
    try:
        result = run_module("service_wait", name="web", api_url=agent.url, timeout=20, interval=0.1,
                            min_healthy_time=1.5, present=WANT)
    finally:
        agent.close()
    assert result.get("failed") is not True, result["_raw"]
    assert result["waited"] >= 1.5


def test_a_flap_starts_the_hold_again(run_module):
    """Healthy at every other look: never min_healthy_time without a break, so the wait fails
    however long it is healthy in total, and says so as the last look found it. (By looks, not
    by the clock: a loaded machine must not make it pass.)"""
    looks = []

    def flapping():
        looks.append(1)
        return [dict(OWN, node="pz-1", id="pz-1/web-0")] if len(looks) % 2 else []

    agent = _Agent(flapping, MEMBERS)
    try:
        result = run_module("service_wait", name="web", api_url=agent.url, timeout=2, interval=0.05,
                            min_healthy_time=0.5, present=WANT)
    finally:
        agent.close()
    assert len(looks) >= 4 and result["failed"] is True, result
    assert ("healthy, but not for 0.5 s without a break (it flapped)" in result["msg"]
            or "pz-1 has 0 healthy instances" in result["msg"]), result["msg"]


def test_drained_instances_are_gone_only_once_no_alive_members_discovery_lists_them(run_module):
    """Each agent answers DNS from its own copy of the catalog: a client on pz-3 would still be
    given pz-2's drained instance while pz-3's copy lists it, so the wait holds until it does not
    (a member whose agent does not answer is not waited for), and names the member that lags."""
    drained = [dict(OWN, node="pz-1", id="pz-1/web-0")]
    looks = []

    def lagging():
        looks.append(1)
        return [OWN] if len(looks) < 4 else []

    members = [{"name": "pz-1", "status": "alive", "address": "127.0.0.1"},
               {"name": "pz-3", "status": "alive", "address": "127.0.0.2"},
               {"name": "pz-4", "status": "alive", "address": "127.0.0.3"}]  # no agent answers there
    local = _Agent(drained, members)
    port = local.server.server_address[1]
    peer = _Agent(lagging, members, address=("127.0.0.2", port))
    try:
        result = run_module("service_wait", name="web", api_url=local.url, timeout=20, interval=0.05,
                            absent=[{"node": "pz-2", "tag": SPEC}])
        assert result.get("failed") is not True, result["_raw"]
        assert len(looks) >= 4
        local_two = _Agent(drained, members)
        never = _Agent([OWN], members, address=("127.0.0.2", local_two.server.server_address[1]))
        try:
            failed = run_module("service_wait", name="web", api_url=local_two.url, timeout=0.5, interval=0.05,
                                absent=[{"node": "pz-2", "tag": SPEC}])
        finally:
            never.close()
            local_two.close()
    finally:
        local.close()
        peer.close()
    assert failed["failed"] is True
    assert "pz-2 still has 1 instance in discovery (as pz-3's discovery lists them)" in failed["msg"], failed["msg"]
