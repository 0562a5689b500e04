"""Health state machine, metrics text, state file, container bodies and API routing."""

import asyncio
import json

from pico_agent.api import API, Reply, Request
from pico_agent.catalog import Catalog, Instance
from pico_agent.health import HEALTHY, STARTING, UNHEALTHY, HealthTracker
from pico_agent.metrics import Metrics
from pico_agent.spec import HealthSpec, parse_spec
from pico_agent.state import StateFile
from pico_agent.supervisor import container_body


def test_failures_in_the_start_period_do_not_count():
    tracker = HealthTracker(HealthSpec("http", interval=1, retries=2, start_period=10), started_at=0)
    assert tracker.status == STARTING
    tracker.record(False, "HTTP 500", now=5)
    tracker.record(False, "HTTP 500", now=6)
    assert tracker.status == STARTING and tracker.failures == 0
    assert tracker.record(True, "HTTP 200", now=7) and tracker.status == HEALTHY
    tracker.record(False, "HTTP 500", now=11)
    assert tracker.status == HEALTHY  # one failure of two allowed
    assert tracker.record(False, "HTTP 500", now=12) and tracker.status == UNHEALTHY
    assert tracker.next_check == 13


def test_no_check_means_healthy_while_running():
    tracker = HealthTracker(HealthSpec("none"), started_at=0)
    assert tracker.status == HEALTHY and not tracker.due(100)


def test_container_body_for_host_and_bridge_networks():
    spec = parse_spec({"name": "web", "image": "pico/demo:1.0.0", "port": 8080, "replicas": 2, "memory": "64m",
                       "cpus": 0.5, "command": ["serve"], "env": {"MODE": "x"}})
    body = container_body(spec, 1, "pz-1")
    assert body["Env"] == ["MODE=x", "PORT=8081"]
    assert body["Labels"] == {"pico.service": "web", "pico.replica": "1", "pico.spec": spec.digest, "pico.node": "pz-1"}
    assert body["HostConfig"]["NanoCpus"] == 500_000_000 and body["Cmd"] == ["serve"]
    bridge = parse_spec({"name": "web", "image": "x", "port": 9000, "network": "bridge", "container_port": 80})
    body = container_body(bridge, 0, "pz-1")
    assert body["HostConfig"]["PortBindings"] == {"80/tcp": [{"HostPort": "9000"}]}
    assert body["Env"] == ["PORT=80"]


def test_metrics_text(tmp_path):
    catalog = Catalog("a")
    catalog.set_local([Instance("web", "a", "10.99.0.1", 80, "a/web-0")])
    thermal = tmp_path / "temp"
    thermal.write_text("48312\n")
    throttled = tmp_path / "throttled"
    throttled.write_text("50005\n")
    metrics = Metrics()
    metrics.observe_reconcile(0.25)
    text = metrics.render(catalog, [{"service": "web", "health": "healthy"}], {"web": 3}, 1, True, thermal, throttled)
    assert 'pico_service_instances{service="web"} 1' in text
    assert 'pico_restarts_total{service="web"} 3' in text
    assert 'pico_local_instances{service="web",health="healthy"} 1' in text
    assert "pico_node_temperature_celsius 48.312" in text
    assert 'pico_node_throttled{reason="under_voltage"} 1' in text
    assert 'pico_node_throttled{reason="throttled"} 1' in text
    assert 'pico_node_throttled_since_boot{reason="under_voltage"} 1' in text
    assert "pico_reconcile_duration_seconds_count 1" in text
    absent = metrics.render(catalog, [], {}, 0, False, tmp_path / "x", tmp_path / "y")
    assert "temperature" not in absent and "pico_serf_connected 0" in absent


def test_state_survives_and_a_corrupt_file_is_kept_aside(tmp_path):
    state = StateFile(tmp_path / "state.json")
    state.save({"restarts": {"web": 2}})
    assert StateFile(tmp_path / "state.json").load() == {"restarts": {"web": 2}}
    (tmp_path / "state.json").write_text('{"restarts": {"web"')
    broken = StateFile(tmp_path / "state.json")
    assert broken.load() == {}
    assert "unreadable" in broken.problem
    kept = list(tmp_path.glob("state.json.corrupt-*"))
    assert len(kept) == 1 and kept[0].read_text() == '{"restarts": {"web"'


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


def test_a_drained_replica_stays_up_but_leaves_discovery_until_replaced(tmp_path):
    """Before a rollout stops an instance it is drained: running and checked, not published. A
    replica made for a new spec starts published; undraining publishes the drained ones again."""
    from pico_agent.config import SupervisorConfig
    from pico_agent.supervisor import Replica, Supervisor

    published = []
    sup = Supervisor(SupervisorConfig(), tmp_path, None, "a", Metrics(), published.append)
    old = parse_spec({"name": "web", "image": "pico/demo:1.0.0", "port": 8080, "replicas": 2})

    def healthy(spec, index):
        tracker = HealthTracker(spec.health, 0.0)
        tracker.status = HEALTHY
        return Replica(spec, index, container_id=f"c{index}", running=True, health=tracker)

    sup.replicas = {"web-0": healthy(old, 0), "web-1": healthy(old, 1)}
    sup.publish()
    assert [i.id for i in published[-1]] == ["a/web-0", "a/web-1"]
    assert sup.drain("web", {1}) == ["web-1"]  # scaling down: only the replica that goes
    assert [i.id for i in published[-1]] == ["a/web-0"]
    assert sup.drain("web") == ["web-0", "web-1"]
    assert published[-1] == []
    assert [r["drained"] for r in sup.status()] == [True, True] and all(r["running"] for r in sup.status())
    sup.replicas = {"web-0": healthy(parse_spec({"name": "web", "image": "pico/demo:2.0.0", "port": 8080}), 0)}
    sup.publish()
    assert [i.id for i in published[-1]] == ["a/web-0"]  # the new version's replica is not drained
    sup.replicas = {"web-0": healthy(old, 0), "web-1": healthy(old, 1)}
    sup.drain("web")
    assert sup.undrain("web") is True and [i.id for i in published[-1]] == ["a/web-0", "a/web-1"]
    assert sup.undrain("web") is False
    assert sup.drain("nothing") == []
