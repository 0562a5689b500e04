"""Verify on native nodes that the runtime runs the demo service for real, through the Docker API.

Each node runs a small script with the node's own Python docker SDK (Debian's python3-docker)
against /run/docker.sock: the same path and API whether Podman or Docker serves it.
"""
import json
import os
import shlex
from pathlib import Path

import testinfra.utils.ansible_runner

testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(
    os.environ["MOLECULE_INVENTORY_FILE"]
).get_hosts("pico_nodes")

ENGINE = {"molecule-podman": "Podman Engine", "molecule-docker": "Engine"}
STAMP = Path("/var/cache/pico-lab/workloads/pico-demo_amd64.recipe")

RUN_DEMO = r"""
import json, time, urllib.request
import docker

client = docker.DockerClient(base_url="unix:///run/docker.sock")
container = client.containers.run("pico/demo:2.0.0", name="verify-demo", detach=True,
                                  network_mode="host", environment={"PORT": "18080"})
try:
    deadline, answer = time.monotonic() + 30, None
    while time.monotonic() < deadline:
        try:
            health = urllib.request.urlopen("http://127.0.0.1:18080/healthz", timeout=2)
            version = json.load(urllib.request.urlopen("http://127.0.0.1:18080/version", timeout=2))
            answer = {"healthz": health.status, "version": version["version"]}
            break
        except OSError:
            time.sleep(0.2)
    container.reload()
    print(json.dumps({"answer": answer, "status": container.status,
                      "listed": [c.name for c in client.containers.list()]}))
finally:
    container.remove(force=True)
"""


def _name(host):
    return host.backend.get_hostname()


def test_docker_api_socket_is_served_by_the_chosen_runtime(host):
    version = json.loads(host.check_output(
        "python3 -c 'import docker, json; print(json.dumps(docker.DockerClient(base_url=\"unix:///run/docker.sock\").version()))'"))
    assert version["Components"][0]["Name"] == ENGINE[_name(host)]


def test_only_one_runtime_serves_the_socket(host):
    if _name(host) == "molecule-podman":
        assert host.file("/run/docker.sock").linked_to == "/run/podman/podman.sock"
        assert host.service("podman.socket").is_enabled
        assert not host.service("docker.service").is_running
    else:
        assert host.socket("unix:///run/docker.sock").is_listening
        assert host.service("docker.service").is_running
        assert not host.service("podman.socket").is_running


def test_demo_images_loaded_offline_with_the_archives_ids(host):
    expected = json.loads(STAMP.read_text())["ids"]
    script = ("import docker, json; c = docker.DockerClient(base_url='unix:///run/docker.sock'); "
              "print(json.dumps({v: c.images.get('pico/demo:' + v).id for v in ('1.0.0', '2.0.0')}))")
    assert json.loads(host.check_output(f'python3 -c "{script}"')) == expected


def test_demo_service_runs_and_answers_healthz(host):
    result = json.loads(host.check_output(f"python3 - <<'EOF'\n{RUN_DEMO}\nEOF"))
    assert result["answer"] == {"healthz": 200, "version": "2.0.0"}
    assert result["status"] == "running"
    assert "verify-demo" in result["listed"]


def test_runtime_settings_for_a_small_board(host):
    if _name(host) == "molecule-podman":
        containers_conf = host.file("/etc/containers/containers.conf").content_string
        assert 'log_driver = "journald"' in containers_conf
        # the node is a container: overlay cannot stack on its overlayfs root, cgroups are not delegated
        assert 'driver = "vfs"' in host.file("/etc/containers/storage.conf").content_string
        assert 'cgroup_manager = "cgroupfs"' in containers_conf
    else:
        daemon = json.loads(host.file("/etc/docker/daemon.json").content_string)
        assert daemon["log-driver"] == "journald"
        assert daemon["live-restore"] is True
        assert daemon["exec-opts"] == ["native.cgroupdriver=cgroupfs"]


def test_the_agent_runs_the_service_and_every_node_reaches_it_by_name(host):
    """The agent on molecule-podman runs `web` through Podman's Docker API; on both nodes DNS gives
    its mesh address, and the demo answers there over WireGuard."""
    script = """
import json, time, urllib.request
from dnslib import DNSRecord
deadline = time.time() + 120
while True:
    try:
        reply = DNSRecord.parse(DNSRecord.question('web.service.pico').send('127.0.0.1', 8600, timeout=5))
        address = str(reply.rr[0].rdata)
        print(address, json.load(urllib.request.urlopen(f'http://{address}:8090/version', timeout=5))['version'])
        break
    except Exception:
        if time.time() > deadline:
            raise
        time.sleep(2)
"""
    address, version = host.check_output(f"python3 -c {shlex.quote(script)}").split()
    assert address.startswith("10.99.") and version == "1.0.0"
    if host.backend.get_hostname() == "molecule-podman":
        assert "pico-web-0" in host.check_output("podman ps --format '{{.Names}}'")
