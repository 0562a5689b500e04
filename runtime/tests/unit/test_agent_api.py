"""API routing and authorization, against a stand-in for the agent's operations."""

import asyncio
import json

from pico_agent.api import API, Reply, Request
from pico_agent.catalog import Catalog, Instance
from pico_agent.metrics import Metrics


class StandIn:
    """The parts of the agent the API reads, with a real catalog and metrics."""

    def __init__(self):
        self.catalog = Catalog("a")
        self.catalog.set_local([Instance("web", "a", "10.99.0.1", 80, "a/web-0")])
        self.metrics = Metrics()
        self.reconciles = 0

    def render_metrics(self):
        return "pico_members 1\n"

    def health_report(self):
        return {"status": "ok"}

    async def request_reconcile(self):
        self.reconciles += 1
        return Reply(202, {})

    async def restart_service(self, name):
        return Reply(202, {"restarting": [name]})

    async def drain_service(self, name, drain, replicas=None):
        return Reply(200, {"drained" if drain else "undrained": [name]})


def call(api, method, path, token=None):
    headers = {"authorization": f"Bearer {token}"} if token else {}
    path, _, query = path.partition("?")
    return asyncio.run(api.dispatch(Request(method, path, headers, query)))


def test_api_routes():
    agent = StandIn()
    api = API(agent, "s3cret")
    assert call(api, "GET", "/v1/services").body == {"services": {"web": 1}}
    assert call(api, "GET", "/v1/services/web").body["instances"][0]["id"] == "a/web-0"
    assert call(api, "GET", "/v1/services/db").body["instances"] == []
    assert call(api, "GET", "/v1/catalog/local").body["version"] == agent.catalog.local_version
    assert call(api, "GET", "/metrics").content_type.startswith("text/plain")
    assert call(api, "GET", "/v1/services/Web").status == 400
    assert call(api, "DELETE", "/v1/services").status == 405
    assert call(api, "GET", "/v2/x").status == 404
    assert call(api, "POST", "/v1/reconcile").status == 401
    assert call(api, "POST", "/v1/reconcile", token="guess").status == 403
    assert agent.reconciles == 0
    assert call(api, "POST", "/v1/reconcile", token="s3cret").status == 202 and agent.reconciles == 1
    assert call(api, "POST", "/v1/services/web/restart", token="s3cret").body == {"restarting": ["web"]}
    assert call(api, "POST", "/v1/services/web/drain").status == 401
    assert call(api, "POST", "/v1/services/web/drain", token="s3cret").body == {"drained": ["web"]}
    assert call(api, "DELETE", "/v1/services/web/drain", token="s3cret").body == {"undrained": ["web"]}
    assert call(api, "GET", "/v1/services/web/drain", token="s3cret").status == 405
    assert call(api, "POST", "/v1/services/web/drain?replicas=1,x", token="s3cret").status == 400
    reply = call(api, "GET", "/v1/services/web").encode()
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n") and b"Content-Length: " in reply
    assert json.loads(reply.split(b"\r\n\r\n", 1)[1])["service"] == "web"


def test_prometheus_finds_every_member_through_any_agent_and_keeps_a_failed_one():
    """http_sd_configs' format: a target per member announcing its API port, with its node, board
    and CPU as labels. A failed member stays one (Prometheus' `up` for it goes to 0); one that left
    on purpose, or announces no port, is not one."""
    from pico_agent.serf import Member
    agent = StandIn()
    tags = {"api": "8500", "board": "pizero", "arch": "armv6l"}
    agent.catalog.update_member(Member("b", "10.99.0.2", 7946, "alive", tags))
    agent.catalog.update_member(Member("c", "fd00::3", 7946, "alive", {**tags, "board": "pizero2", "arch": "aarch64"}))
    agent.catalog.update_member(Member("d", "10.99.0.4", 7946, "failed", tags))
    agent.catalog.update_member(Member("e", "10.99.0.5", 7946, "alive", {"board": "pizero"}))
    agent.catalog.update_member(Member("f", "10.99.0.6", 7946, "left", tags))
    reply = call(API(agent, "s3cret"), "GET", "/v1/prometheus/targets")
    assert reply.status == 200
    assert reply.body == [
        {"targets": ["10.99.0.2:8500"], "labels": {"node": "b", "board": "pizero", "arch": "armv6l"}},
        {"targets": ["[fd00::3]:8500"], "labels": {"node": "c", "board": "pizero2", "arch": "aarch64"}},
        {"targets": ["10.99.0.4:8500"], "labels": {"node": "d", "board": "pizero", "arch": "armv6l"}},
    ]
