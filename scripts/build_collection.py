#!/usr/bin/env python3
"""Build the pico.cloud collection's tarball, complete: the collection as it is in the checkout,
plus the agent as one zipapp in roles/agent/files (the agent's source, runtime/, is not part of
the collection). Optionally install the tarball into a fresh collections path, as a user would.

Usage: build_collection.py [--output-dir dist] [--install-to PATH]

The checkout itself never holds the zipapp: the collection is copied to a temporary directory
first, so a checkout's agent role always builds from the current runtime/ and never installs a
stale copy.
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COLLECTION = REPO / "collections/ansible_collections/pico/cloud"
AGENT_SOURCE = REPO / "runtime/src/pico_agent"
# Test output and caches never ship; galaxy.yml's build_ignore leaves out the rest.
NOT_SHIPPED = shutil.ignore_patterns("__pycache__", "*.pyc", "output", ".pytest_cache")


def galaxy() -> str:
    """ansible-galaxy beside this Python (the project's .venv), or on PATH."""
    beside = Path(sys.executable).parent / "ansible-galaxy"
    found = str(beside) if beside.exists() else shutil.which("ansible-galaxy")
    return found or sys.exit("ansible-galaxy not found: run make bootstrap, then .venv/bin/python " + __file__)


def run(*command: str) -> str:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return result.stdout


def stage(into: Path) -> Path:
    staged = into / "ansible_collections/pico/cloud"
    shutil.copytree(COLLECTION, staged, ignore=NOT_SHIPPED)
    run(sys.executable, str(staged / "roles/agent/files/build_bundle.py"), str(AGENT_SOURCE),
        str(staged / "roles/agent/files/pico-agent.pyz"))
    return staged


def build(staged: Path, output_dir: Path) -> Path:
    output_dir.mkdir(parents=True, exist_ok=True)
    out = run(galaxy(), "collection", "build", str(staged), "--output-path", str(output_dir), "--force")
    # "Created collection for pico.cloud at /path/pico-cloud-0.5.0.tar.gz"
    return Path(out.strip().splitlines()[-1].split(" at ", 1)[1])


def install(tarball: Path, path: Path) -> None:
    """Into a fresh path: nothing of an earlier install can hide a file the tarball lacks."""
    if path.exists():
        shutil.rmtree(path)
    run(galaxy(), "collection", "install", str(tarball), "-p", str(path), "--offline",
        "--no-deps", "--force")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=REPO / "dist")
    parser.add_argument("--install-to", type=Path, help="a collections path to install the tarball into (emptied first)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pico-collection-") as scratch:
        tarball = build(stage(Path(scratch)), args.output_dir)
    print(tarball)
    if args.install_to:
        install(tarball, args.install_to)
        print(f"installed into {args.install_to}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
