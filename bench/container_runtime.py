#!/usr/bin/env python3
"""Container runtime numbers, Podman beside Docker on native lab nodes, printed as JSON.

    .venv/bin/python bench/container_runtime.py [--samples 3] [--keep]

Brings up a lab of its own (pico-bench-rt: two native nodes), provisions one with Podman and one
with Docker through site.yml, then measures on both in the same run, so they compare:
- resident memory (RSS, and PSS, which splits shared pages fairly) of the runtime's processes
  with no container, with the demo service running, and for Podman also while its socket-
  activated API service is up (it exits after 5 s without requests);
- time for the container_image task to copy and load the demo archive (cold), and for a re-run
  that finds the image present (no copy), as ansible-playbook wall time, median of --samples.

Memory is measured on native nodes: nested containers cannot run under qemu-user (see
docs/containers.md). Runtime binaries are the same programs on a Pi, compiled for ARM.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import benchlib  # noqa: E402  (first: it makes the project's modules importable)

REPO = benchlib.REPO
from lab import cluster, model, workloads  # noqa: E402

NAME, SUBNET, PORT_BASE = "pico-bench-rt", "172.28.81.0/24", 2650
NODES = {"podman": "native-1", "docker": "native-2"}
# What stays resident for each runtime (the API service of Podman only while it serves), as
# /proc/PID/comm names them (15 characters at most: containerd-shim-runc-v2 is containerd-shim).
PROCESSES = {
    "podman": ["podman", "conmon", "crun", "catatonit", "netavark", "aardvark-dns"],
    "docker": ["dockerd", "containerd", "containerd-shim", "docker-proxy", "runc", "tini"],
}
SETTLE_S = 12  # longer than Podman's 5 s idle timeout of its API service
DEMO = "pico/demo:2.0.0"
LOAD_PLAY = """\
- name: Load one image archive (bench)
  hosts: pico_nodes
  become: true
  gather_facts: false
  tasks:
    - name: Load the demo image where it is missing
      pico.cloud.container_image:
        name: "{{ demo_name }}"
        archive: "{{ demo_archive }}"
"""


def container(node: str) -> str:
    return benchlib.container(NAME, node)


def node_exec(node: str, *cmd: str) -> str:
    return benchlib.node_exec(NAME, node, *cmd)


playbook = benchlib.playbook


MEMORY_SCRIPT = r"""
import json, os, sys
names = set(sys.argv[1:])
found = {}
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        comm = open(f"/proc/{pid}/comm").read().strip()
        if comm not in names:
            continue
        rss = pss = 0
        for line in open(f"/proc/{pid}/smaps_rollup"):
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    except OSError:
        continue
    entry = found.setdefault(comm, {"count": 0, "rss_kb": 0, "pss_kb": 0})
    entry["count"] += 1; entry["rss_kb"] += rss; entry["pss_kb"] += pss
print(json.dumps(found))
"""


def memory(node: str, runtime: str) -> dict[str, object]:
    per_process = json.loads(node_exec(node, "python3", "-c", MEMORY_SCRIPT, *PROCESSES[runtime]))
    return {
        "rss_mb": round(sum(p["rss_kb"] for p in per_process.values()) / 1024, 1),
        "pss_mb": round(sum(p["pss_kb"] for p in per_process.values()) / 1024, 1),
        "processes": per_process,
    }


def api(node: str, code: str) -> str:
    return node_exec(node, "python3", "-c", "import docker; c = docker.DockerClient(base_url='unix:///run/docker.sock'); " + code)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=3, help="runs per load timing (median reported)")
    parser.add_argument("--keep", action="store_true", help="leave the bench lab running")
    args = parser.parse_args()

    state = REPO / ".lab"
    inventory = state / NAME / "hosts.yml"
    lab = cluster.Lab(NAME, state, inventory)
    lab.down()
    lab.up(model.plan(NAME, "native=2", SUBNET, PORT_BASE))
    try:
        host_vars = inventory.parent / "host_vars"
        host_vars.mkdir(exist_ok=True)
        (host_vars / f"{NODES['docker']}.yml").write_text("pico_container_runtime: docker\n")
        no_images = json.dumps({"pico_container_runtime_images": []})
        provision_s = playbook(inventory, "site.yml", "--tags", "base,container_runtime", "-e", no_images)

        play = inventory.parent / "load-image.yml"
        play.write_text(LOAD_PLAY)
        load_vars = json.dumps({"demo_name": DEMO, "demo_archive": str(workloads.archive_path("amd64", DEMO.split(":")[1]))})
        cold: dict[str, list[float]] = {rt: [] for rt in NODES}
        warm: dict[str, list[float]] = {rt: [] for rt in NODES}
        for _ in range(args.samples):
            for runtime, node in NODES.items():
                api(node, f"import contextlib\nwith contextlib.suppress(docker.errors.NotFound): c.images.remove({DEMO!r}, force=True)")
                cold[runtime].append(playbook(inventory, str(play), "--limit", node, "-e", load_vars))
                warm[runtime].append(playbook(inventory, str(play), "--limit", node, "-e", load_vars))

        time.sleep(SETTLE_S)
        idle = {rt: memory(node, rt) for rt, node in NODES.items()}
        for node in NODES.values():
            api(node, f"c.containers.run({DEMO!r}, name='bench-demo', detach=True, network_mode='host')")
        time.sleep(SETTLE_S)
        with_demo = {rt: memory(node, rt) for rt, node in NODES.items()}
        api(NODES["podman"], "c.ping()")  # wakes Podman's API service
        podman_serving = memory(NODES["podman"], "podman")

        print(json.dumps({
            "lab": {"nodes": NODES, "machine": node_exec(NODES["podman"], "uname", "-m").strip(),
                    "versions": {rt: api(node, "print(c.version()['Version'])").strip() for rt, node in NODES.items()}},
            "provision_s": round(provision_s, 1),
            "idle_no_containers": idle,
            "idle_with_demo_running": with_demo,
            "podman_while_api_service_runs": podman_serving,
            "docker_minus_podman_rss_mb": {
                "idle": round(idle["docker"]["rss_mb"] - idle["podman"]["rss_mb"], 1),
                "with_demo_running": round(with_demo["docker"]["rss_mb"] - with_demo["podman"]["rss_mb"], 1)},
            "demo_archive_mb": round(workloads.archive_path("amd64", "2.0.0").stat().st_size / 2**20, 1),
            "load_demo_archive_s": {
                rt: {"copy_and_load_median": round(statistics.median(cold[rt]), 2),
                     "image_present_median": round(statistics.median(warm[rt]), 2),
                     "copy_and_load_all": [round(x, 2) for x in cold[rt]],
                     "image_present_all": [round(x, 2) for x in warm[rt]]}
                for rt in NODES},
            "load_note": "ansible-playbook wall time of one container_image task on one node, Ansible's start-up included",
        }, indent=2))
    finally:
        if not args.keep:
            lab.down()


if __name__ == "__main__":
    main()
