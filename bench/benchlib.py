"""What every benchmark needs: the project's modules importable, commands on its own lab's nodes
and timed playbook runs. Every bench imports it first."""
from __future__ import annotations

import configparser
import os
import re
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _import_roots() -> list[Path]:
    """The directories pytest.ini puts on sys.path (the repository for lab/ and tests/, the
    collections, the agent's sources and its test harness): tests and benches share one list."""
    config = configparser.ConfigParser()
    config.read(REPO / "pytest.ini")
    return [REPO / entry for entry in config["pytest"]["pythonpath"].split()]


sys.path[:0] = [str(root) for root in _import_roots() if str(root) not in sys.path]
# The ansible-playbook of the Python running the bench (.venv/bin/python bench/...), PATH or not.
ANSIBLE_PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook")) \
    if Path(sys.executable).with_name("ansible-playbook").exists() else "ansible-playbook"


def container(lab: str, node: str) -> str:
    return f"{lab}-lab-{node}"


def containers_cpu_s(names: list[str]) -> float | None:
    """CPU seconds the containers have used since they started, from their cgroups (v1 cpuacct
    or v2 cpu.stat; the cgroupfs or the systemd driver), or None where a cgroup is not found.
    In a lab the boards share the controller's cores: this tells their share of a run apart."""
    ids = subprocess.run(["docker", "inspect", "-f", "{{.Id}}", *names], capture_output=True, text=True,
                         check=True).stdout.split()
    total = 0.0
    for cid in ids:
        for path, number, scale in ((f"/sys/fs/cgroup/cpuacct/docker/{cid}/cpuacct.usage", r"^(\d+)$", 1e-9),
                                    (f"/sys/fs/cgroup/docker/{cid}/cpu.stat", r"^usage_usec (\d+)$", 1e-6),
                                    (f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/cpu.stat", r"^usage_usec (\d+)$", 1e-6)):
            if os.path.exists(path):
                total += int(re.search(number, Path(path).read_text(), re.M).group(1)) * scale
                break
        else:
            return None
    return total


def node_exec(lab: str, node: str, *cmd: str) -> str:
    return subprocess.run(["docker", "exec", container(lab, node), *cmd], capture_output=True, text=True,
                          check=True).stdout


def playbook(inventory: Path, *args: str) -> float:
    """Seconds one ansible-playbook run took; a failed run ends the benchmark with its output."""
    return playbook_output(inventory, *args)[0]


def playbook_output(inventory: Path, *args: str, env: dict[str, str] | None = None) -> tuple[float, str]:
    """Seconds and output of one ansible-playbook run; a failed run ends the benchmark."""
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
           "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(inventory.parent / "facts"), **(env or {})}
    start = time.monotonic()
    result = subprocess.run([ANSIBLE_PLAYBOOK, "-i", str(inventory), *args], cwd=REPO, env=env,
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"bench: ansible-playbook {' '.join(args)} failed:\n{result.stdout[-3000:]}")
    return time.monotonic() - start, result.stdout


def recap(output: str) -> dict[str, dict[str, int]]:
    """{host: {ok: n, changed: n, ...}} from a PLAY RECAP, the boards only (the playbooks open
    with a play on localhost that checks the inventory names boards)."""
    return {host: {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", counts)}
            for host, counts in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", output, re.M) if host != "localhost"}


@contextmanager
def own_lab(name: str, mix: str, subnet: str, port_base: int, keep: bool = False):
    """A fresh lab of the bench's own, taken down afterwards unless keep: yields (lab, inventory)."""
    from lab import cluster, model

    inventory = REPO / ".lab" / name / "hosts.yml"
    lab = cluster.Lab(name, REPO / ".lab", inventory)
    lab.down()
    lab.up(model.plan(name, mix, subnet, port_base))
    try:
        yield lab, inventory
    finally:
        if not keep:
            lab.down()


def percentiles(values: list[float]) -> dict:
    """p50, p99 (nearest rank: the max below 100 values), max and count of a sample."""
    ordered = sorted(values)
    return {"p50": round(statistics.median(ordered), 2),
            "p99": round(ordered[max(0, int(len(ordered) * 0.99 + 0.5) - 1)], 2),
            "max": round(ordered[-1], 2), "rounds": len(ordered)}
