"""The zipapp the agent role installs: reproducible, runnable, refuses a wrong source."""

import json
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
BUILD = REPO / "collections/ansible_collections/pico/cloud/roles/agent/files/build_bundle.py"
SOURCE = REPO / "runtime/src/pico_agent"


def build(source, dest):
    return subprocess.run([sys.executable, str(BUILD), str(source), str(dest)], capture_output=True, text=True)


def test_the_same_sources_give_the_same_bytes(tmp_path):
    first = build(SOURCE, tmp_path / "a.pyz")
    second = build(SOURCE, tmp_path / "b.pyz")
    assert first.stdout.strip() == second.stdout.strip() == "changed"
    assert (tmp_path / "a.pyz").read_bytes() == (tmp_path / "b.pyz").read_bytes()
    assert build(SOURCE, tmp_path / "a.pyz").stdout.strip() == "unchanged"


def test_the_bundle_runs_with_python_alone_and_carries_bytecode(tmp_path):
    bundle = tmp_path / "pico-agent.pyz"
    build(SOURCE, bundle)
    names = zipfile.ZipFile(bundle).namelist()
    assert "__main__.py" in names and "pico_agent/supervisor.pyc" in names
    spec = tmp_path / "web.json"
    spec.write_text(json.dumps({"name": "web", "image": "pico/demo:1.0.0", "replicas": 99}))
    result = subprocess.run([sys.executable, str(bundle), "check-service", str(spec)], capture_output=True, text=True)
    assert result.returncode == 2 and "replicas = 99" in result.stderr
    spec.write_text(json.dumps({"name": "web", "image": "pico/demo:1.0.0"}))
    assert subprocess.run([sys.executable, str(bundle), "check-service", str(spec)]).returncode == 0


def test_a_wrong_source_directory_is_named(tmp_path):
    result = build(tmp_path, tmp_path / "x.pyz")
    assert result.returncode == 2 and "set pico_agent_source" in result.stderr
    assert not (tmp_path / "x.pyz").exists()
