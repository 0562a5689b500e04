#!/usr/bin/env python3
"""Ansible's speed on the emulated lab, and a board starting a container, printed as JSON.

    .venv/bin/python bench/ansible_speed.py [--runs 3] [--stock-runs 1] [--keep]
    .venv/bin/python bench/ansible_speed.py --make-lab [--bare] [--only-make-lab]   # `make lab` from a fresh clone

Brings up a lab of its own (pico-bench-speed, the default mix: 2 x Pi Zero, 1 x Pi Zero 2 W) and
measures, in one run so the numbers compare:
- the first site.yml on the fresh lab (the project's default strategy, Mitogen);
- site.yml with nothing to change, Mitogen (median of --runs) beside Ansible's stock linear
  strategy (--stock-runs) and beside Mitogen with its own CPU pinning (--pinned-runs: what the
  project's strategy turns off on a controller with fewer than 4 CPUs), each run checked for
  changed=0 on every node, and the ratios;
- per board kind, `podman run` of the demo image until its /healthz answers 200, timed on the
  board itself;
- the resident memory of the agent and of the demo container on each emulated board. Under
  qemu-user a process's RSS includes the emulator's own memory, so these are labelled emulated:
  an upper bound for a board, not a measurement of one (bench/agent.py measures natively).

--make-lab times the README's `make lab` in a fresh clone of this checkout (the default lab
'pico' must be down; it is taken down again afterwards). With --bare, the node images, demo
archives and debootstrap package cache are deleted first, so the images are rebuilt as on a new
machine (Debian packages and pip's download cache stay).
Run it with the default lab down: both labs would share this machine's two cores.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import benchlib  # noqa: E402  (first: it makes the project's modules importable)

REPO = benchlib.REPO
from lab import cluster, images, model, workloads  # noqa: E402

NAME, SUBNET, PORT_BASE = "pico-bench-speed", "172.28.82.0/24", 2700
BOARDS = {"pizero": "pizero-1", "pizero2": "pizero2-1"}
PROBE_PORT = 18090
# Timed on the board: no docker exec or SSH round trip in the number.
START_SCRIPT = r"""
start=$(date +%s.%N)
podman run -d --rm --name bench-start --network host -e PORT={port} {image} >/dev/null
until curl -sf -o /dev/null http://127.0.0.1:{port}/healthz; do sleep 0.05; done
end=$(date +%s.%N)
podman rm -f -t 0 bench-start >/dev/null
echo "$start $end"
"""
RSS_SCRIPT = r"""
rss() { awk '/^VmRSS/ {print $2}' /proc/$1/status; }
agent=$(systemctl show -p MainPID --value pico-agent)
demo=$(podman inspect --format '{{.State.Pid}}' pico-demo-0)
echo "$(rss $agent) $(rss $demo)"
"""


STOCK = {"ANSIBLE_STRATEGY": "linear"}
PINNED = {"PICO_MITOGEN_CPU_PINNING": "1"}


def site(inventory: Path, *args: str, env: dict[str, str] | None = None) -> float:
    """Seconds of one site.yml run that must change nothing on any node."""
    seconds, output = benchlib.playbook_output(inventory, "site.yml", *args, env=env)
    counts = benchlib.recap(output)
    if len(counts) != len(BOARDS) + 1 or any(c["changed"] or c["failed"] or c["unreachable"] for c in counts.values()):
        sys.exit(f"bench: a re-run of site.yml changed something or failed:\n{output[-3000:]}")
    return seconds


def container_start_s(node: str, version: str) -> float:
    script = START_SCRIPT.format(port=PROBE_PORT, image=f"{workloads.DEMO_IMAGE}:{version}")
    start, end = benchlib.node_exec(NAME, node, "bash", "-c", script).split()
    return float(end) - float(start)


def make_lab(bare: bool) -> dict[str, object]:
    """`make lab` as a new user runs it, in a fresh clone; the default lab must be down."""
    default = cluster.Lab("pico", REPO / ".lab", REPO / "inventories/lab/hosts.yml")
    if default.lab_containers():
        sys.exit("bench: --make-lab needs the default lab down (make lab-down): it brings up its own")
    if bare:
        refs = subprocess.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}", images.IMAGE_REPO + "/*"],
                              capture_output=True, text=True, check=True).stdout.split()
        if refs:
            subprocess.run(["docker", "rmi", "-f", *refs], capture_output=True, check=True)
        shutil.rmtree(workloads.WORKLOAD_DIR, ignore_errors=True)
        shutil.rmtree(images.DEB_CACHE, ignore_errors=True)
    clone = Path(tempfile.mkdtemp(prefix="pico-bench-clone-"))
    try:
        subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
        start = time.monotonic()
        result = subprocess.run(["make", "lab"], cwd=clone, capture_output=True, text=True, check=False)
        seconds = time.monotonic() - start
        if result.returncode != 0:
            sys.exit(f"bench: make lab failed:\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}")
        healthy = result.stdout.count(":healthy")
    finally:
        subprocess.run(["make", "lab-down"], cwd=clone, capture_output=True, check=False)
        shutil.rmtree(clone, ignore_errors=True)
    return {"case": "bare: no node images, demo archives or debootstrap cache" if bare else "images cached",
            "seconds": round(seconds, 1), "healthy_instances_at_the_end": healthy}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="changed=0 runs with Mitogen (median reported)")
    parser.add_argument("--stock-runs", type=int, default=1, help="changed=0 runs with the stock strategy")
    parser.add_argument("--pinned-runs", type=int, default=1, help="changed=0 runs with Mitogen's own CPU pinning")
    parser.add_argument("--starts", type=int, default=3, help="container starts per board kind")
    parser.add_argument("--make-lab", action="store_true", help="also time `make lab` from a fresh clone")
    parser.add_argument("--bare", action="store_true", help="with --make-lab: rebuild images as on a new machine")
    parser.add_argument("--keep", action="store_true", help="leave the bench lab running")
    parser.add_argument("--only-make-lab", action="store_true", help="only time make lab (with --make-lab)")
    args = parser.parse_args()
    if args.runs < 1 or args.stock_runs < 1 or args.pinned_runs < 0 or args.starts < 1:
        parser.error("--runs, --stock-runs and --starts need at least 1; --pinned-runs may be 0 (skipped)")
    if args.only_make_lab:
        print(json.dumps({"make_lab": make_lab(args.bare)}, indent=2))
        return

    with benchlib.own_lab(NAME, model.DEFAULT_MIX, SUBNET, PORT_BASE, keep=args.keep) as (lab, inventory):
        first_s, output = benchlib.playbook_output(inventory, "site.yml")
        first_changed = {host: c["changed"] for host, c in benchlib.recap(output).items()}
        lab.wait_for_services(300)
        mitogen = [site(inventory) for _ in range(args.runs)]
        stock = [site(inventory, env=STOCK) for _ in range(args.stock_runs)]
        pinned = [site(inventory, env=PINNED) for _ in range(args.pinned_runs)]
        starts = {kind: [container_start_s(node, "2.0.0") for _ in range(args.starts)] for kind, node in BOARDS.items()}
        memory = {}
        for kind, node in BOARDS.items():
            agent_kb, demo_kb = benchlib.node_exec(NAME, node, "bash", "-c", RSS_SCRIPT).split()
            memory[kind] = {"agent_rss_mb": round(int(agent_kb) / 1024, 1), "demo_container_rss_mb": round(int(demo_kb) / 1024, 1)}
        report: dict[str, object] = {
            "lab": {"mix": model.DEFAULT_MIX, "machines": {kind: benchlib.node_exec(NAME, node, "uname", "-m").strip()
                                                              for kind, node in BOARDS.items()}},
            "first_provision_s": round(first_s, 1),
            "first_provision_changed": first_changed,
            "site_changed_0_s": {
                "mitogen_median": round(statistics.median(mitogen), 1), "mitogen_all": [round(x, 1) for x in mitogen],
                "stock_median": round(statistics.median(stock), 1), "stock_all": [round(x, 1) for x in stock],
                "stock_over_mitogen": round(statistics.median(stock) / statistics.median(mitogen), 1),
                **({"mitogen_cpu_pinned_median": round(statistics.median(pinned), 1),
                    "mitogen_cpu_pinned_all": [round(x, 1) for x in pinned],
                    "pinned_over_unpinned": round(statistics.median(pinned) / statistics.median(mitogen), 2)}
                   if pinned else {}),
                "target": "mitogen <= 30 s and >= 8x faster than stock",
            },
            "container_start_s": {
                "what": "podman run -d of pico/demo:2.0.0 until /healthz answers 200, timed on the board",
                **{kind: {"median": round(statistics.median(times), 2), "all": [round(t, 2) for t in times]}
                   for kind, times in starts.items()}},
            "memory_emulated": {"note": "RSS under qemu-user includes qemu's own memory: an upper bound, not a board",
                                **memory},
        }
    if args.make_lab:
        report["make_lab"] = make_lab(args.bare)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
