"""What every benchmark needs: commands on its own lab's nodes and timed playbook runs."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def container(lab: str, node: str) -> str:
    return f"{lab}-lab-{node}"


def node_exec(lab: str, node: str, *cmd: str) -> str:
    return subprocess.run(["docker", "exec", container(lab, node), *cmd], capture_output=True, text=True,
                          check=True).stdout


def playbook(inventory: Path, *args: str) -> float:
    """Seconds one ansible-playbook run took; a failed run ends the benchmark with its output."""
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
           "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(inventory.parent / "facts")}
    start = time.monotonic()
    result = subprocess.run(["ansible-playbook", "-i", str(inventory), *args], cwd=REPO, env=env,
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"bench: ansible-playbook {' '.join(args)} failed:\n{result.stdout[-3000:]}")
    return time.monotonic() - start
