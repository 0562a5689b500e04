"""The lab's node planning and input validation: every bad input is a LabError naming the fix."""
import pytest

from lab import cluster, images, model
from lab.shell import LabError


def test_default_lab_is_two_pizero_and_one_pizero2():
    spec = model.plan("pico", model.DEFAULT_MIX, model.DEFAULT_SUBNET, 2220)
    assert [(n.name, n.kind.name) for n in spec.nodes] == [("pizero-1", "pizero"), ("pizero-2", "pizero"), ("pizero2-1", "pizero2")]
    assert [n.address for n in spec.nodes] == ["172.28.10.11", "172.28.10.12", "172.28.10.13"]
    assert [n.ssh_port for n in spec.nodes] == [2221, 2222, 2223]


def test_spec_fingerprint_changes_with_shape():
    one = model.plan("pico", "pizero=2", "172.28.10.0/24", 2220)
    two = model.plan("pico", "pizero=3", "172.28.10.0/24", 2220)
    assert one.fingerprint() == model.plan("pico", "pizero=2", "172.28.10.0/24", 2220).fingerprint()
    assert one.fingerprint() != two.fingerprint()


@pytest.mark.parametrize(
    ("mix", "message"),
    [
        ("pizero3=1", "unknown node kind 'pizero3': choose from pizero, pizero2, native"),
        ("pizero", "write KIND=COUNT"),
        ("pizero=two", "write KIND=COUNT"),
        ("pizero=0", "a lab has 1 to 32"),
        ("native=40", "a lab has 1 to 32"),
    ],
)
def test_bad_mix_is_rejected_with_the_fix(mix, message):
    with pytest.raises(LabError, match=message):
        model.parse_mix(mix)


@pytest.mark.parametrize(
    ("subnet", "message"),
    [("10.0.0.300/24", "bad subnet"), ("172.28.10.1/24", "bad subnet"), ("172.28.10.0/29", "too small")],
)
def test_bad_subnet_is_rejected(subnet, message):
    with pytest.raises(LabError, match=message):
        model.plan("pico", "pizero=3", subnet, 2220)


def test_bad_lab_name_and_port_base_are_rejected():
    with pytest.raises(LabError, match="bad lab name"):
        model.plan("-x", "pizero=1", model.DEFAULT_SUBNET, 2220)
    with pytest.raises(LabError, match="bad SSH port base"):
        model.plan("pico", "pizero=1", model.DEFAULT_SUBNET, 80)


def test_busy_port_is_reported_before_anything_starts():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        spec = model.plan("pico", "native=1", model.DEFAULT_SUBNET, port - 1)
        with pytest.raises(LabError, match=f"port 127.0.0.1:{port} .* is in use: pass another --ssh-port-base"):
            cluster.Lab._check_ports_free(spec)


def test_kinds_emulate_the_boards():
    assert model.KINDS["pizero"].qemu_cpu == "arm1176"
    assert model.KINDS["pizero"].debian_arch == "armel"
    assert model.KINDS["pizero2"].debian_arch == "arm64"


def test_recipe_hash_is_stable_and_follows_the_recipe(monkeypatch):
    kind = model.KINDS["pizero"]
    first = images.recipe_hash(kind)
    assert first == images.recipe_hash(kind)
    assert images.image_ref(kind) == f"pico-lab/pizero:{first}"
    monkeypatch.setattr(images, "PACKAGES", images.PACKAGES + ("htop",))
    assert images.recipe_hash(kind) != first
    assert images.recipe_hash(model.KINDS["native"]) != images.recipe_hash(kind)


def test_mirror_comes_from_apt_sources_unless_overridden(monkeypatch, tmp_path):
    monkeypatch.delenv("PICO_LAB_MIRROR", raising=False)
    deb822, legacy = tmp_path / "debian.sources", tmp_path / "sources.list"
    monkeypatch.setattr(images, "APT_SOURCES", deb822)
    monkeypatch.setattr(images, "APT_LEGACY_SOURCES", legacy)
    deb822.write_text("Types: deb\nURIs: http://security.example/debian-security\n\n"
                      "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n")
    assert images.debian_mirror() == "http://mirror.example/debian"  # the first that is not -security
    deb822.unlink()
    legacy.write_text("deb http://security.example/debian-security bookworm-security main\n"
                      "deb [arch=amd64] http://legacy.example/debian bookworm main\n")
    assert images.debian_mirror() == "http://legacy.example/debian"
    legacy.unlink()
    assert images.debian_mirror() == images.FALLBACK_MIRROR
    monkeypatch.setenv("PICO_LAB_MIRROR", "http://override.example/debian")
    assert images.debian_mirror() == "http://override.example/debian"


def test_emulated_recipes_follow_the_native_runtime_they_copy(monkeypatch):
    kind = model.KINDS["pizero2"]
    first = images.recipe_hash(kind)
    monkeypatch.setattr(images, "native_runtime_digest", lambda: "another-crun")
    assert images.recipe_hash(kind) != first
    assert "native_runtime" not in images.recipe(model.KINDS["native"])  # native nodes use their own
    # Inside an emulated board, Podman uses the copied crun and hands the board's CPU to containers.
    setup = images.setup_script(model.KINDS["pizero"])
    assert f'crun-native = ["{images.NODE_CRUN}"]' in setup and '"QEMU_CPU=arm1176"' in setup
    assert [dest for _, dest in images.native_runtime_files()][:1] == [images.NODE_CRUN.lstrip("/")]
    assert images.NATIVE_LOADER in [dest for _, dest in images.native_runtime_files()]


def test_a_machine_without_crun_is_told_the_fix_before_any_lab_exists(monkeypatch, tmp_path):
    import subprocess

    monkeypatch.setattr(images, "HOST_CRUN", tmp_path / "no-crun")
    lab = cluster.Lab("unit-nocrun", tmp_path, tmp_path / "hosts.yml")
    with pytest.raises(LabError, match=r"pizero nodes run their containers with this machine's own crun, and "
                                       r".*no-crun is missing: run `make bootstrap`"):
        lab.up(model.plan("unit-nocrun", "pizero=1", "172.28.99.0/24", 2990))
    networks = subprocess.run(["docker", "network", "ls", "--format", "{{.Name}}"], capture_output=True, text=True,
                              check=True).stdout.split()
    assert "unit-nocrun-lab" not in networks
    assert not (tmp_path / "unit-nocrun").exists()  # no key, no state
