"""scripts/build_collection.py: the tarball holds the collection and the current agent, installs
into a fresh path, and leaves the checkout as it was. (Molecule's default scenario converges the
emulated boards from such an installed copy.)"""

import os
import subprocess
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COLLECTION = REPO / "collections/ansible_collections/pico/cloud"
BUILD_BUNDLE = COLLECTION / "roles/agent/files/build_bundle.py"
PLAYBOOKS = ["site", "deploy", "drain", "energy", "status", "power_report", "rotate_wireguard_keys"]


def test_the_tarball_ships_the_current_agent_and_installs(tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "scripts/build_collection.py"), "--output-dir",
                             str(tmp_path / "dist"), "--install-to", str(tmp_path / "installed")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    tarball = Path(result.stdout.splitlines()[0])
    with tarfile.open(tarball) as archive:
        names = set(archive.getnames())
        shipped = archive.extractfile("roles/agent/files/pico-agent.pyz").read()
    assert {"MANIFEST.json", "roles/agent/tasks/main.yml", "plugins/modules/service_plan.py"} <= names
    assert {f"playbooks/{name}.yml" for name in PLAYBOOKS} <= names
    assert not any("__pycache__" in name or name.startswith("tests/output") for name in names)

    fresh = tmp_path / "fresh.pyz"
    subprocess.run([sys.executable, str(BUILD_BUNDLE), str(REPO / "runtime/src/pico_agent"), str(fresh)], check=True,
                   capture_output=True)
    assert shipped == fresh.read_bytes(), "the tarball's agent is not the one runtime/ builds now"

    installed = tmp_path / "installed/ansible_collections/pico/cloud"
    assert (installed / "roles/agent/files/pico-agent.pyz").read_bytes() == shipped
    assert not (COLLECTION / "roles/agent/files/pico-agent.pyz").exists(), "the build wrote into the checkout"

    # The playbooks run from the installed copy with no file of this repository beside them and
    # Ansible's stock configuration: every one parses, and a run reaches the collection's roles
    # (here its check that the inventory names boards).
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "ansible.cfg").write_text("")
    (outside / "hosts.yml").write_text("all:\n  hosts:\n    printer-1:\n")
    env = {**os.environ, "ANSIBLE_CONFIG": str(outside / "ansible.cfg"), "ANSIBLE_COLLECTIONS_PATH": str(tmp_path / "installed"),
           "ANSIBLE_FORCE_COLOR": "0"}
    playbook = str(Path(sys.executable).with_name("ansible-playbook"))
    parsed = subprocess.run([playbook, "--syntax-check", "-i", "hosts.yml", *(f"pico.cloud.{name}" for name in PLAYBOOKS)],
                            cwd=outside, env=env, capture_output=True, text=True)
    assert parsed.returncode == 0, parsed.stdout + parsed.stderr
    ran = subprocess.run([playbook, "-i", "hosts.yml", "pico.cloud.status"], cwd=outside, env=env, capture_output=True,
                         text=True)
    assert ran.returncode == 2 and "No boards to work on" in " ".join(ran.stdout.split()), ran.stdout + ran.stderr
