"""The supervisor against this machine's dockerd and the demo image: self-healing, desired state,
and a node coming back with neither network nor controller."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from agentlab import DEMO_IMAGE, DOCKER_SOCKET, AgentLab, docker, free_ports, load_demo_image, wait_for

REPO = Path(__file__).resolve().parents[3]
BUNDLE_BUILDER = REPO / "collections/ansible_collections/pico/cloud/roles/agent/files/build_bundle.py"
AGENT_SOURCE = REPO / "runtime/src/pico_agent"
IMAGE = DEMO_IMAGE
SOCKET = DOCKER_SOCKET


@pytest.fixture(scope="module")
def demo_image():
    try:
        return load_demo_image()
    except AssertionError as err:
        pytest.fail(str(err))


@pytest.fixture
def node(tmp_path, demo_image):
    lab = AgentLab(tmp_path, 1, docker_socket=SOCKET, interval=2, prefix="sup")
    lab.start()
    node = lab.nodes[0]
    wait_for(lambda: node.get("/v1/health")[0], 20, what="agent answering")
    yield node
    lab.stop()
    for cid in docker("ps", "-aq", "--filter", f"label=pico.node={node.name}").split():
        docker("rm", "-f", cid)


def containers(node):
    """name -> (id, state) of the node's managed containers."""
    out = docker("ps", "-a", "--filter", f"label=pico.node={node.name}", "--format", "{{.Names}} {{.ID}} {{.State}}")
    return {name: (cid, state) for name, cid, state in (line.split() for line in out.splitlines())}


def demo(port, **extra):
    spec = {"name": "demo", "image": IMAGE, "port": port,
            "health": {"type": "http", "path": "/healthz", "interval": 0.5, "timeout": 0.5, "retries": 2,
                       "start_period": 10}}
    spec.update(extra)
    return spec


def reconcile_passes(node) -> int:
    """How many reconcile passes the agent has made (its metrics count each one)."""
    status, text = node.get("/metrics")
    assert status == 200
    return int(next(line.split()[-1] for line in text.splitlines()
                    if line.startswith("pico_reconcile_duration_seconds_count")))


def healthy_local(node, service="demo"):
    status, body = node.get("/v1/catalog/local")
    return sorted(i["id"] for i in body["instances"] if i["service"] == service) if status == 200 else []


def restarts(node):
    _, text = node.get("/metrics")
    for line in text.splitlines():
        if line.startswith('pico_restarts_total{service="demo"}'):
            return int(float(line.split()[-1]))
    return 0


def test_starts_replicas_and_publishes_them_when_healthy(node):
    port = free_ports(1)[0]
    node.add_service(demo(port, replicas=2, memory="64m"))
    wait_for(lambda: healthy_local(node) == [f"{node.name}/demo-0", f"{node.name}/demo-1"], 30, what="2 healthy")
    assert sorted(containers(node)) == ["pico-demo-0", "pico-demo-1"]
    inspect = json.loads(docker("inspect", "pico-demo-1"))[0]
    assert f"PORT={port + 1}" in inspect["Config"]["Env"]
    assert inspect["HostConfig"]["Memory"] == 64 * 1024 * 1024
    assert inspect["HostConfig"]["RestartPolicy"]["Name"] == "no"  # the agent decides, with back-off
    assert sorted(i["port"] for i in node.instances("demo")) == [port, port + 1]


def test_a_killed_container_is_restarted(node):
    node.add_service(demo(free_ports(1)[0]))
    wait_for(lambda: healthy_local(node), 30, what="healthy")
    docker("kill", "pico-demo-0")
    wait_for(lambda: containers(node).get("pico-demo-0", ("", ""))[1] == "running" and healthy_local(node), 20,
             what="restarted and healthy")
    assert restarts(node) == 1


def test_a_restart_asked_through_the_api_starts_every_replica_again(node):
    node.add_service(demo(free_ports(1)[0], replicas=2))
    wait_for(lambda: len(healthy_local(node)) == 2, 30, what="2 healthy")

    def started():
        return {name: docker("inspect", "-f", "{{.State.StartedAt}}", name) for name in containers(node)}

    before = started()
    assert node.get("/v1/services/demo/restart", token=node.token, method="POST", body=b"") == (
        202, {"restarting": ["demo-0", "demo-1"]})
    wait_for(lambda: len(healthy_local(node)) == 2 and all(
        when != before[name] for name, when in started().items()), 30, what="both started again and healthy")


def test_a_container_that_exits_is_restarted_with_growing_back_off(node):
    # A command that exits at once: the container dies every time it starts.
    port = free_ports(1)[0]
    spec = demo(port, command=["python3", "-c", "import sys; sys.exit(3)"])
    node.add_service(spec)
    wait_for(lambda: restarts(node) >= 3, 30, what="three restarts")
    log = (node.root / "agent.log").read_text().splitlines()
    delays = [json.loads(line)["next_restart_after_s"] for line in log if '"container_started"' in line]
    assert delays[:4] == [0.5, 1.0, 2.0, 4.0][: len(delays[:4])] and len(delays) >= 3
    assert healthy_local(node) == []


def test_a_container_failing_its_health_check_is_restarted(node):
    spec = demo(free_ports(1)[0], env={"DEMO_FAIL_HEALTH": "1"})
    spec["health"]["start_period"] = 3  # the app is up by then: what fails is /healthz (HTTP 500)
    node.add_service(spec)
    wait_for(lambda: restarts(node) >= 2, 60, what="restarts after failed checks")
    assert healthy_local(node) == []
    events = [json.loads(line) for line in (node.root / "agent.log").read_text().splitlines()]
    assert any(e["event"] == "health_changed" and e["status"] == "unhealthy" and e["detail"] == "HTTP 500"
               for e in events)
    assert any(e["event"] == "container_started" and e["reason"] == "unhealthy" for e in events)


def test_a_changed_spec_replaces_the_container_and_a_removed_one_removes_it(node):
    port = free_ports(1)[0]
    node.add_service(demo(port))
    wait_for(lambda: healthy_local(node), 30, what="healthy")
    first = containers(node)["pico-demo-0"][0]
    node.add_service(demo(port, env={"GREETING": "hello"}))
    wait_for(lambda: containers(node).get("pico-demo-0", (first,))[0] != first and healthy_local(node), 30,
             what="replaced and healthy")
    assert "GREETING=hello" in json.loads(docker("inspect", "pico-demo-0"))[0]["Config"]["Env"]
    node.remove_service("demo")
    wait_for(lambda: containers(node) == {}, 20, what="container removed")


def test_strays_are_removed_and_other_containers_left_alone(node):
    stray = docker("create", "--name", f"stray-{node.name}", "-l", "pico.service=ghost", "-l", "pico.replica=0",
                   "-l", f"pico.node={node.name}", IMAGE)
    other = docker("create", "--name", f"unmanaged-{node.name}", IMAGE)
    try:
        node.get("/v1/reconcile", token=node.token, method="POST", body=b"")
        wait_for(lambda: docker("ps", "-aq", "--no-trunc", "--filter", f"id={stray}") == "", 20, what="stray removed")
        assert docker("ps", "-aq", "--no-trunc", "--filter", f"id={other}") == other
    finally:
        docker("rm", "-f", other)


def test_an_invalid_file_leaves_the_running_service_untouched(node):
    port = free_ports(1)[0]
    node.add_service(demo(port))
    wait_for(lambda: healthy_local(node), 30, what="healthy")
    before = containers(node)["pico-demo-0"]
    (node.services_dir / "demo.json").write_text('{"name": "demo", "image": "pico/demo:1.0.0", "replicas": 99}')
    wait_for(lambda: node.get("/v1/health")[0] == 503, 15, what="health degraded")
    status, health = node.get("/v1/health")
    assert any("replicas = 99" in p for p in health["problems"]), health
    # Not a fixed sleep: three full reconcile passes must have seen the invalid file.
    seen = reconcile_passes(node)
    wait_for(lambda: reconcile_passes(node) >= seen + 3, 30, what="three reconcile passes")
    assert containers(node)["pico-demo-0"] == before
    assert healthy_local(node) == [f"{node.name}/demo-0"]


def test_a_missing_image_is_reported_not_pulled(node):
    node.add_service(demo(free_ports(1)[0], image="pico/not-loaded:9.9"))
    wait_for(lambda: "not on this node" in json.dumps(node.get("/v1/health")[1]), 20, what="image problem reported")
    assert containers(node) == {}


def test_services_come_back_after_a_reboot_with_no_network_and_no_controller(tmp_path, demo_image):
    lab = AgentLab(tmp_path, 1, docker_socket=SOCKET, interval=2, prefix="boot")
    node = lab.nodes[0]
    lab.start()
    try:
        node.add_service(demo(free_ports(1)[0]))
        wait_for(lambda: healthy_local(node), 30, what="healthy")
        # Power cut: agent and Serf die, every container stops.
        node.kill()
        docker("kill", "pico-demo-0")
        # Boot without a network: Serf is not running (nothing to join), no controller; only the agent.
        node.start_agent()
        wait_for(lambda: healthy_local(node), 30, what="service back after reboot")
        assert node.resolve("demo.service.pico") == ["127.0.0.1"]  # its own DNS still answers
        assert node.get("/v1/health")[1]["serf_connected"] is False
    finally:
        lab.stop()
        for cid in docker("ps", "-aq", "--filter", f"label=pico.node={node.name}").split():
            docker("rm", "-f", cid)


def test_back_off_restarts_from_the_beginning_after_a_healthy_spell(tmp_path, demo_image):
    """restarts_in_a_row counts up with each restart and goes back to 0 once the instance has been
    healthy for backoff_reset seconds (60 by default; 3 here)."""
    lab = AgentLab(tmp_path, 1, docker_socket=SOCKET, interval=1, prefix="reset")
    node = lab.nodes[0]
    node.supervisor_config = {"backoff_initial": 0.5, "backoff_max": 4, "backoff_reset": 3, "stop_timeout": 2}
    lab.start()

    def in_a_row():
        status, health = node.get("/v1/health")
        return next((i["restarts_in_a_row"] for i in health["instances"] if i["service"] == "demo"), None) \
            if status in (200, 503) else None

    try:
        node.add_service(demo(free_ports(1)[0]))
        wait_for(lambda: healthy_local(node), 30, what="healthy")
        docker("kill", "pico-demo-0")
        wait_for(lambda: restarts(node) == 1, 20, what="restarted")
        assert in_a_row() == 2  # the first start and the restart
        wait_for(lambda: in_a_row() == 0, 20, what="back-off reset after 3 s healthy")
        assert healthy_local(node)
    finally:
        lab.stop()
        for cid in docker("ps", "-aq", "--filter", f"label=pico.node={node.name}").split():
            docker("rm", "-f", cid)


def test_containers_survive_an_agent_stop_and_upgrade_and_restart_counts_survive(tmp_path, demo_image):
    """SIGTERM the agent: its container keeps running. Start the installed form of the agent (the
    role's zipapp) in its place: the same container is adopted, nothing restarts, and the restart
    counted before is still counted."""
    bundle = tmp_path / "pico-agent.pyz"
    built = subprocess.run([sys.executable, str(BUNDLE_BUILDER), str(AGENT_SOURCE), str(bundle)],
                           capture_output=True, text=True, check=False)
    assert built.returncode == 0, built.stderr
    lab = AgentLab(tmp_path / "lab", 1, docker_socket=SOCKET, interval=1, prefix="upgrade")
    node = lab.nodes[0]
    lab.start()
    try:
        node.add_service(demo(free_ports(1)[0]))
        wait_for(lambda: healthy_local(node), 30, what="healthy")
        docker("kill", "pico-demo-0")
        wait_for(lambda: restarts(node) == 1 and healthy_local(node), 30, what="restarted once and healthy")
        container = containers(node)["pico-demo-0"]

        assert node.stop_agent() == 0
        assert containers(node)["pico-demo-0"] == container  # still running without its agent

        node.start_agent(bundle)
        wait_for(lambda: healthy_local(node), 30, what="the new agent publishing the same instance")
        seen = reconcile_passes(node)
        wait_for(lambda: reconcile_passes(node) >= seen + 2, 20, what="two reconcile passes of the new agent")
        assert containers(node)["pico-demo-0"] == container  # adopted, not replaced
        assert restarts(node) == 1
    finally:
        lab.stop()
        for cid in docker("ps", "-aq", "--filter", f"label=pico.node={node.name}").split():
            docker("rm", "-f", cid)
