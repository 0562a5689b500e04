"""The container runtime role on real lab nodes over SSH: offline images, re-runs, and bad input.

site.yml (the `converged` fixture) gives every node Podman, the Docker API at /run/docker.sock
and the lab's demo images for its architecture. A demo container started through the API runs
on the emulated Pi Zero throughout, so each refused run can show that what was running and
stored is still there.
"""
import json

import pytest

from ansible_collections.pico.cloud.tests.unit.conftest import build_image_archive
from lab.workloads import archive_path

from tests.integration.lab_access import NODES, node_exec, playbook
from tests.playbook_run import expect_refused, expect_success, expect_unchanged

def node_state(node):
    """Images (name=ID) and running containers, read with the podman CLI: no API service to start,
    which on an emulated node of a busy machine can take longer than a client waits."""
    images = node_exec(node, "podman", "images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}}={{.ID}}")
    running = node_exec(node, "podman", "ps", "--format", "{{.Names}}")
    return {"images": sorted(line.replace("localhost/", "", 1) for line in images.split()),
            "running": sorted(running.split())}


@pytest.fixture(scope="module")
def demo_running(converged):
    """The demo service, v1, running on the emulated Pi Zero through the node's Docker API."""
    start = ("import docker; docker.DockerClient(base_url='unix:///run/docker.sock').containers.run("
             "'pico/demo:1.0.0', name='it-demo', detach=True, network_mode='host', environment={'PORT': '18081'})")
    node_exec("pizero-1", "python3", "-c", start)
    yield
    node_exec("pizero-1", "sh", "-c", "podman rm -f it-demo >/dev/null")


def test_every_node_has_its_architectures_demo_images(converged):
    for node, arch in (("native-1", "amd64"), ("native-2", "amd64"), ("pizero-1", "armel")):
        stamp = json.loads((archive_path(arch, "1.0.0").parent / f"pico-demo_{arch}.recipe").read_text())
        images = node_state(node)["images"]
        assert f"pico/demo:1.0.0={stamp['ids']['1.0.0']}" in images, node
        assert f"pico/demo:2.0.0={stamp['ids']['2.0.0']}" in images, node


def test_the_demo_service_answers_through_the_runtime(demo_running):
    answer = node_exec("pizero-1", "python3", "-c", (
        "import json, time, urllib.request\n"
        "for _ in range(300):\n"
        "    try:\n"
        "        print(urllib.request.urlopen('http://127.0.0.1:18081/version').read().decode()); break\n"
        "    except OSError: time.sleep(0.1)\n"))
    assert json.loads(answer)["version"] == "1.0.0"
    # The board's CPU inside the container: the lab runs it with the board's QEMU_CPU.
    assert node_exec("pizero-1", "podman", "exec", "it-demo", "python3", "-c",
                     "import platform; print(platform.machine())").strip() == "armv6l"


def _refused(lab_inventory, *args, nodes=NODES):
    before = {node: node_state(node) for node in ("native-1", "pizero-1")}
    limit = ["--limit", ",".join(nodes)] if nodes != NODES else []
    result = playbook(lab_inventory, "site.yml", "--tags", "container_runtime", *limit, *args)
    expect_refused(result, nodes)
    after = {node: node_state(node) for node in ("native-1", "pizero-1")}
    assert after == before  # same images, same running containers
    assert "it-demo" in after["pizero-1"]["running"]
    return result.text


def test_unknown_runtime_is_refused_before_anything_changes(lab_inventory, demo_running):
    """The role's argument spec refuses it on the controller, the same for every board: one
    native board shows it (the emulated one keeps its demo running, checked by _refused)."""
    output = _refused(lab_inventory, "-e", "pico_container_runtime=containerd", nodes=("native-1",))
    assert "pico_container_runtime" in output and "podman, docker" in output and "containerd" in output


@pytest.mark.parametrize(("make_entry", "message"), [
    (lambda tmp: {"name": "pico/demo:3.0.0", "archive": str(tmp / "missing.tar")},
     "missing.tar does not exist; nothing was changed"),
    (lambda tmp: {"name": "pico/demo:3.0.0", "archive": str(_text_file(tmp))},
     "is not an image archive (not a tar file); create one with `docker save"),
    (lambda tmp: {"name": "pico/demo:1.0.0", "archive": str(archive_path("amd64", "1.0.0")),
                  "digest": "sha256:" + "0" * 64},
     "digest mismatch: the archive's image is sha256:"),
    (lambda tmp: {"name": "pico/demo:3.0.0", "archive": str(archive_path("amd64", "1.0.0"))},
     "the archive holds pico/demo:1.0.0, not pico/demo:3.0.0"),
    (lambda tmp: {"archive": str(archive_path("amd64", "1.0.0"))},
     "each entry needs a `name`"),
], ids=["missing", "not-an-image", "digest-mismatch", "wrong-name", "no-name"])
def test_bad_image_archive_is_refused_before_anything_changes(lab_inventory, demo_running, tmp_path, make_entry, message,
                                                             request):
    """The archive is checked on the controller, the same way for every board: one case runs on
    every board (the emulated one too), the others on one native board, at a fraction of the time."""
    images = {"pico_container_runtime_images": [make_entry(tmp_path)]}
    every_board = request.node.callspec.id == "missing"
    output = _refused(lab_inventory, "-e", json.dumps(images), nodes=NODES if every_board else ("native-1",))
    assert message in output


def _text_file(directory):
    path = directory / "notes.tar"
    path.write_text("not an image\n")
    return path


def test_other_runtime_holding_the_socket_is_refused(lab_inventory, demo_running):
    output = _refused(lab_inventory, "-e", "pico_container_runtime=docker", nodes=("native-1",))
    assert "native-1 runs podman.socket" in output and "but pico_container_runtime is docker" in output
    assert "systemctl disable --now podman.socket" in output


def test_full_staging_disk_fails_clearly_and_keeps_everything(lab_inventory, demo_running):
    """A card too full for the archive: the image is not loaded, and nothing else is lost."""
    node_exec("native-1", "sh", "-c", "podman rmi pico/demo:2.0.0 >/dev/null && mkdir -p /var/tmp/small "
                                      "&& mount -t tmpfs -o size=16m tmpfs /var/tmp/small")
    try:
        before = node_state("native-1")
        result = playbook(lab_inventory, "site.yml", "--tags", "container_runtime", "--limit", "native-1",
                          "-e", "pico_container_runtime_staging_dir=/var/tmp/small")
        expect_refused(result, ["native-1"], "not enough disk space to load the image (/var/tmp/small has 16 MiB free, needs 2",
                       "nothing was changed")
        assert node_state("native-1") == before
        assert node_exec("native-1", "ls", "-A", "/var/tmp/small") == ""
    finally:
        node_exec("native-1", "umount", "/var/tmp/small")
    # With room again, the same run loads it.
    expect_success(playbook(lab_inventory, "site.yml", "--tags", "container_runtime", "--limit", "native-1"), ["native-1"],
                   changed=True)
    assert any(i.startswith("pico/demo:2.0.0=") for i in node_state("native-1")["images"])


def test_pull_from_a_site_registry_only_when_missing(lab_inventory, converged):
    """A registry on the LAN (Debian's docker-registry on native-2): native-1 pulls the image once.

    Debian's own registry config asks for htpasswd auth with no password file; the test serves
    the same config without the auth section, as a transient unit."""
    registry = "172.28.60.12:5000"
    image = f"{registry}/pico/demo:2.0.0"
    expected = json.loads((archive_path("amd64", "2.0.0").parent / "pico-demo_amd64.recipe").read_text())["ids"]["2.0.0"]
    node_exec("native-2", "sh", "-c", "sed '/^auth:/,/^    path:/d' /etc/docker/registry/config.yml >/root/registry.yml"
                                      " && systemd-run --unit pico-test-registry docker-registry serve /root/registry.yml")
    try:
        node_exec("native-2", "podman", "push", "--quiet", "--tls-verify=false", "pico/demo:2.0.0", image)
        # native-1 must lack the image, or the module only tags the copy it has.
        node_exec("native-1", "podman", "rmi", "pico/demo:2.0.0")
        site = json.dumps({"pico_container_runtime_images": [{"name": image, "pull": True, "digest": expected}],
                           "pico_container_runtime_insecure_registries": [registry]})
        first = playbook(lab_inventory, "site.yml", "--tags", "container_runtime", "--limit", "native-1", "-e", site, "-v")
        expect_success(first, ["native-1"], changed=True)
        assert "action: pulled" in first.stdout
        assert f"{image}={expected}" in node_state("native-1")["images"]
        again = playbook(lab_inventory, "site.yml", "--tags", "container_runtime", "--limit", "native-1", "-e", site)
        expect_unchanged(again, ["native-1"])
    finally:
        node_exec("native-2", "systemctl", "stop", "pico-test-registry")
        node_exec("native-1", "sh", "-c", f"podman rmi {image} >/dev/null 2>&1 || true")
        expect_success(playbook(lab_inventory, "site.yml", "--tags", "container_runtime", "--limit", "native-1"), ["native-1"])


def test_the_role_prunes_the_oldest_unused_version_as_new_ones_arrive(lab_inventory, converged, tmp_path):
    """keep=2 at role level: v1 and v2 loaded, then v2 and v3 asked for: v1, no longer listed and
    used by no container, is removed; the lab's own demo images, in use, stay."""
    repo = "pico-test/prune"
    archives = {}
    for day, version in enumerate(("1.0.0", "2.0.0", "3.0.0"), start=1):
        path = tmp_path / f"prune-{version}.tar"
        build_image_archive(path, f"{repo}:{version}", payload=version.encode(), created=f"2024-01-0{day}T00:00:00Z")
        archives[version] = {"name": f"{repo}:{version}", "archive": str(path)}

    def role_with(*versions):
        images = json.dumps({"pico_container_runtime_images": [archives[v] for v in versions]})
        return playbook(lab_inventory, "site.yml", "--tags", "container_runtime", "--limit", "native-2", "-e", images)

    def versions():
        return sorted(i.split("=")[0].split(":")[1] for i in node_state("native-2")["images"] if i.startswith(repo))

    lab_demo = [i for i in node_state("native-2")["images"] if i.startswith("pico/demo:1.0.0=")]
    try:
        expect_success(role_with("1.0.0", "2.0.0"), ["native-2"], changed=True)
        assert versions() == ["1.0.0", "2.0.0"]
        expect_success(role_with("2.0.0", "3.0.0"), ["native-2"], changed=True)
        assert versions() == ["2.0.0", "3.0.0"]
        assert lab_demo and lab_demo[0] in node_state("native-2")["images"]  # in use by the lab's demo service
        expect_unchanged(role_with("2.0.0", "3.0.0"), ["native-2"])
    finally:
        node_exec("native-2", "sh", "-c", f"podman images -q {repo} | xargs -r podman rmi -f >/dev/null")
