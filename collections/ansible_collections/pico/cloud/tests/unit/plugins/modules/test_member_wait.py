"""member_wait's `left`: a leave is gossiped, so a board counts as left only once every other alive
member's own agent sees it so (one the leave has not reached would mark the board failed once
its power is cut, and fail it over)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pico.cloud.tests.unit.plugins.modules.test_service_wait import _Agent

MEMBERS = [{"name": "pz-1", "status": "alive", "address": "127.0.0.1"},
           {"name": "pz-3", "status": "alive", "address": "127.0.0.2"},
           {"name": "pz-5", "status": "alive", "address": "127.0.0.3"},  # no agent answers there
           {"name": "pz-4", "status": "left", "address": "127.0.0.4"}]


def test_left_counts_once_every_alive_members_agent_sees_it(run_module):
    looks = []

    def lagging():
        """pz-3's own view: the leave reaches it at its fourth look."""
        looks.append(1)
        return [dict(m, status="alive" if m["name"] == "pz-4" and len(looks) < 4 else m["status"]) for m in MEMBERS]

    local = _Agent([], MEMBERS)
    peer = _Agent([], lagging, address=("127.0.0.2", local.server.server_address[1]))
    try:
        result = run_module("member_wait", nodes=["pz-4"], status="left", api_url=local.url, timeout=20)
    finally:
        peer.close()
        local.close()
    local = _Agent([], MEMBERS)
    never = _Agent([], [dict(m, status="failed") if m["name"] == "pz-4" else m for m in MEMBERS],
                   address=("127.0.0.2", local.server.server_address[1]))
    try:
        failed = run_module("member_wait", nodes=["pz-4"], status="left", api_url=local.url, timeout=1)
    finally:
        never.close()
        local.close()
    assert result.get("failed") is not True, result["_raw"]
    assert len(looks) >= 4 and result["members"] == {"pz-4": "left"}
    assert failed["failed"] is True
    assert failed["msg"] == "after 1 s, not every node is left: pz-4 left; but pz-3 sees pz-4 failed", failed["msg"]
