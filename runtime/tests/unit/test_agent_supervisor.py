"""The supervisor without Docker: the container bodies it asks for, and draining."""

from pico_agent.config import SupervisorConfig
from pico_agent.health import HEALTHY, HealthTracker
from pico_agent.metrics import Metrics
from pico_agent.spec import parse_spec
from pico_agent.supervisor import Replica, Supervisor, container_body


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


def test_a_drained_replica_stays_up_but_leaves_discovery_until_replaced(tmp_path):
    """Before a rollout stops an instance it is drained: running and checked, not published. A
    replica made for a new spec starts published; undraining publishes the drained ones again."""
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


def test_a_services_directory_that_cannot_be_listed_keeps_the_last_desired_state(tmp_path):
    """Not read as "no services" (which would stop them all), and reported until it can be listed
    again: a descriptor limit reached under a connection flood fails the listing the same way."""
    services = tmp_path / "services"
    services.mkdir()
    (services / "web.json").write_text('{"name": "web", "image": "pico/demo:1.0.0", "port": 8080}')
    sup = Supervisor(SupervisorConfig(), services, None, "a", Metrics(), lambda instances: None)
    sup._reload()
    assert list(sup.desired.services) == ["web"] and sup.directory_problem is None
    (services / "web.json").unlink()
    services.rmdir()
    services.write_text("")  # listing it now fails (ENOTDIR), as it would with EMFILE
    sup._reload()
    assert list(sup.desired.services) == ["web"]
    assert sup.directory_problem == (f"services directory {services}: Not a directory; "
                                     "keeping the last desired state")
    services.unlink()
    services.mkdir()
    sup._reload()
    assert sup.directory_problem is None and sup.desired.services == {}
