"""The status page (GET /) and what it draws (GET /v1/status): every board of the gossip and the
plan with its state, services healthy against desired with their takeovers, recent events; small,
self-contained, and without a secret."""

import json
import re

from pico_agent import log as agent_log
from pico_agent._plan_document import Plan, ServicePlan
from pico_agent.api import API
from pico_agent.catalog import Catalog, Instance
from pico_agent.serf import Member
from pico_agent.status_page import PAGE, cluster_status
from test_agent_api import StandIn, call

MiB = 1024 * 1024
SECRET = "hunter2-in-the-plan"


def a_cluster():
    """pz-1 alive running web's slot 0 and a copy of pz-2's slot 1; pz-2 failed; pz-3 powered down
    by energy.yml; a pinned service (no plan) on pz-1."""
    catalog = Catalog("pz-1")
    tags = {"board": "pizero", "arch": "armv6l", "power": "balanced", "api": "8500"}
    catalog.update_member(Member("pz-1", "10.99.0.1", 7946, "alive", tags))
    catalog.update_member(Member("pz-2", "10.99.0.2", 7946, "failed", tags))
    catalog.update_member(Member("pz-3", "10.99.0.3", 7946, "left", tags))
    catalog.set_local([Instance("web", "pz-1", "10.99.0.1", 8080, "pz-1/web-0"),
                       Instance("web", "pz-1", "10.99.0.1", 8081, "pz-1/web-2", ("pico.failover:pz-2:1",)),
                       Instance("ssh", "pz-1", "10.99.0.1", 22, "pz-1/ssh-0")])
    spec = {"name": "web", "image": "pico/demo:2.0.0", "env": {"PASSWORD": SECRET}}
    plan = Plan(4, "c", {"web": ServicePlan(("pz-1", "pz-2", "pz-1"), ("pz-1", "pz-2"), 48 * MiB, 0.2, {"armv6l": spec})},
                {name: _room() for name in ("pz-1", "pz-2")}, {"pz-3": 1796000000})
    failover = {"takeovers": [{"service": "web", "slot": 1, "owner": "pz-2", "draining": False}],
                "waiting": [], "uncovered": []}
    return catalog, plan, failover


def _room():
    from pico_agent._plan_document import NodeRoom
    return NodeRoom("armv6l", 352 * MiB, 1.0, 96 * MiB, 0.4)


def test_every_board_shows_with_its_state_and_what_it_holds():
    catalog, plan, failover = a_cluster()
    status = cluster_status("pz-1", catalog, plan, failover, [])
    boards = {b["name"]: b for b in status["boards"]}
    assert [boards[n]["state"] for n in ("pz-1", "pz-2", "pz-3")] == ["alive", "failed", "powered down"]
    assert boards["pz-3"]["since"] == 1796000000  # as energy.yml recorded it
    assert boards["pz-1"]["holds"] == ["web:0", "web:2"] and boards["pz-2"]["holds"] == ["web:1"]
    assert (boards["pz-1"]["board"], boards["pz-1"]["arch"], boards["pz-1"]["power"]) == ("pizero", "armv6l", "balanced")
    assert (boards["pz-1"]["memory_requested"], boards["pz-1"]["memory"]) == (96 * MiB, 352 * MiB)


def test_services_show_healthy_against_desired_and_their_takeovers_but_never_a_secret():
    catalog, plan, failover = a_cluster()
    status = cluster_status("pz-1", catalog, plan, failover, [])
    services = {s["name"]: s for s in status["services"]}
    assert (services["web"]["healthy"], services["web"]["desired"], services["web"]["images"]) == (2, 3, ["pico/demo:2.0.0"])
    assert [i["takeover_of"] for i in services["web"]["instances"]] == [None, "pz-2 slot 1"]
    assert services["ssh"]["desired"] is None  # a service the role pins to a node, not in the plan
    assert status["takeovers"] == failover["takeovers"] and status["plan_generation"] == 4
    assert SECRET not in json.dumps(status)


def test_recent_events_keep_only_what_a_person_needs():
    agent_log.recent.clear()
    agent_log.log("warning", "health_changed", service="web", replica=0, status="unhealthy", detail="HTTP 500",
                  env={"PASSWORD": SECRET})
    agent_log.log("info", "failover_changed", plan_generation=4,
                  takeovers=[{"service": "web", "slot": 1, "owner": "pz-2", "draining": False}], waiting=[])
    agent_log.log("info", "catalog_published", version="x")  # not one a person follows
    agent_log.log("debug", "member_status", node="pz-2", status="failed", address="10.99.0.2")  # under the log level
    events = cluster_status("pz-1", Catalog("pz-1"), None, {}, list(agent_log.recent))["events"]
    assert [e["event"] for e in events] == ["member_status", "failover_changed", "health_changed"]  # newest first
    assert events[1]["takeovers"] == "web:1 of pz-2" and "waiting" not in events[1]
    assert events[2]["detail"] == "HTTP 500" and SECRET not in json.dumps(events)
    assert "address" not in events[0]
    agent_log.recent.clear()


def test_the_page_is_small_self_contained_and_served_without_a_token():
    assert len(PAGE.encode()) < 50 * 1024
    assert not re.search(r"https?://|\bsrc=|@import|url\(", PAGE)  # nothing fetched from elsewhere
    agent = StandIn()
    agent.cluster_status = lambda: cluster_status("a", agent.catalog, None, {}, [])
    api = API(agent, "s3cret")
    page = call(api, "GET", "/")
    assert page.status == 200 and page.content_type == "text/html; charset=utf-8" and page.body == PAGE
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert call(api, "GET", "/v1/status").body["services"][0]["name"] == "web"
    assert call(api, "POST", "/").status == 405
