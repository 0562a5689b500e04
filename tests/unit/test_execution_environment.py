"""execution-environment.yml, as ansible-builder reads it: it makes a build context whose
Containerfile installs the controller tools and this checkout's pico.cloud tarball. (Building the
image needs its base image from a registry, which this lab's machine has none of.)"""

import subprocess
import sys
from pathlib import Path

from ansible_collections.pico.cloud.tests.unit.plugins.action.service_plan_play import ansible_tool

REPO = Path(__file__).resolve().parents[2]


def test_ansible_builder_makes_a_context_that_installs_the_tarball(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, str(REPO / "scripts/build_collection.py"), "--output-dir", str(dist)], check=True,
                   capture_output=True)
    tarball = next(dist.glob("pico-cloud-*.tar.gz"))
    # The definition names dist/ relative to itself: a copy beside the fresh tarball.
    (tmp_path / "execution-environment.yml").write_text((REPO / "execution-environment.yml").read_text())
    (tmp_path / "requirements.yml").write_text((REPO / "requirements.yml").read_text())
    context = tmp_path / "context"
    result = subprocess.run([ansible_tool("ansible-builder"), "create", "-f", str(tmp_path / "execution-environment.yml"),
                             "-c", str(context), "--output-filename", "Containerfile"],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    containerfile = (context / "Containerfile").read_text()
    assert (context / "_build/collections" / tarball.name).read_bytes() == tarball.read_bytes()
    assert "ansible-galaxy collection install --offline" in containerfile and "pico-cloud-*.tar.gz" in containerfile
    python_requirements = (context / "_build/requirements.txt").read_text()
    assert "mitogen==" in python_requirements
    collections = (context / "_build/requirements.yml").read_text()
    assert "ansible.posix" in collections and "community.docker" in collections
