"""scripts/build_collection.py: the tarball holds the collection and the current agent, installs
into a fresh path, and leaves the checkout as it was. (Molecule's default scenario converges the
emulated boards from such an installed copy.)"""

import subprocess
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COLLECTION = REPO / "collections/ansible_collections/pico/cloud"
BUILD_BUNDLE = COLLECTION / "roles/agent/files/build_bundle.py"


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
    assert not any("__pycache__" in name or name.startswith("tests/output") for name in names)

    fresh = tmp_path / "fresh.pyz"
    subprocess.run([sys.executable, str(BUILD_BUNDLE), str(REPO / "runtime/src/pico_agent"), str(fresh)], check=True,
                   capture_output=True)
    assert shipped == fresh.read_bytes(), "the tarball's agent is not the one runtime/ builds now"

    installed = tmp_path / "installed/ansible_collections/pico/cloud"
    assert (installed / "roles/agent/files/pico-agent.pyz").read_bytes() == shipped
    assert not (COLLECTION / "roles/agent/files/pico-agent.pyz").exists(), "the build wrote into the checkout"
