#!/usr/bin/env python3
"""Build the pico.cloud collection's tarball: a plain `ansible-galaxy collection build` of
collections/ansible_collections/pico/cloud, the same tarball a Galaxy publish or an install from
git makes (the agent's source ships inside the collection, roles/agent/files/pico_agent).
Optionally install it into a fresh collections path, as a user would.

Usage: build_collection.py [--output-dir dist] [--install-to PATH]
"""

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COLLECTION = REPO / "collections/ansible_collections/pico/cloud"


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


def build(output_dir: Path) -> Path:
    output_dir.mkdir(parents=True, exist_ok=True)
    out = run(galaxy(), "collection", "build", str(COLLECTION), "--output-path", str(output_dir), "--force")
    # "Created collection for pico.cloud at /path/pico-cloud-0.6.0.tar.gz"
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
    tarball = build(args.output_dir)
    print(tarball)
    if args.install_to:
        install(tarball, args.install_to)
        print(f"installed into {args.install_to}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
