#!/usr/bin/env python3
"""Runtime agent numbers, printed as JSON.

    .venv/bin/python bench/agent.py [--nodes 5] [--rounds 10] [--idle-seconds 60]

Everything runs for real on this machine: `serf agent` processes and pico-agents on loopback
(each node its own ports), the agent started from the same zipapp the agent role installs.
- resident memory (RSS) and CPU of an idle agent supervising 5 demo containers through this
  machine's dockerd, with Serf's RSS beside it (targets: agent <= 25 MB RSS, <= 1% of a core);
- propagation: from the moment an agent marks a service healthy (its own log line) until every
  other node's DNS resolves it (target <= 2 s at 5 nodes);
- failure: from killing a node (SIGKILL to its Serf and agent) until no other node resolves
  its service any more;
- DNS latency p50/p99 of one agent answering A queries for a service with instances on every node.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import benchlib  # noqa: E402  (first: it makes the project's modules importable)

REPO = benchlib.REPO

from agentlab import AgentLab, PortListener, free_ports, wait_for  # noqa: E402

BUILD = REPO / "collections/ansible_collections/pico/cloud/roles/agent/files/build_bundle.py"
ARCHIVE = Path("/var/cache/pico-lab/workloads/pico-demo_1.0.0_amd64.tar")


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in USER_HZ (100)


def tcp_service(name: str, port: int) -> dict:
    return {"name": name, "port": port, "health": {"type": "tcp", "interval": 0.5, "timeout": 0.4, "retries": 1}}


def healthy_at(node, service: str) -> float:
    """Wall time at which the node's agent logged the service healthy in its catalog."""
    for line in reversed((node.root / "agent.log").read_text().splitlines()):
        record = json.loads(line) if line.startswith("{") else {}
        if record.get("event") == "local_catalog" and any(i.endswith(f"/{service}-0") for i in record["healthy"]):
            return record["ts"]
    raise AssertionError(f"{node.name} never logged {service} healthy")


def idle_footprint(root: Path, bundle: Path, seconds: float) -> dict:
    subprocess.run(["docker", "load", "-q", "-i", str(ARCHIVE)], check=True, capture_output=True)
    lab = AgentLab(root / "idle", 1, docker_socket="/var/run/docker.sock", interval=10, prefix="idle")
    node = lab.nodes[0]
    lab.start(bundle=bundle)
    try:
        ports = free_ports(5)
        for index, port in enumerate(ports):
            node.add_service({"name": f"demo-{index}", "image": "pico/demo:1.0.0", "port": port,
                              "health": {"type": "http", "path": "/healthz", "interval": 10, "start_period": 30}})
        wait_for(lambda: len((node.get("/v1/catalog/local")[1] or {}).get("instances", [])) == 5, 120,
                 what="5 healthy services")
        time.sleep(5)
        pid = node.agent.pid
        cpu_before, start = cpu_seconds(pid), time.monotonic()
        time.sleep(seconds)
        cpu = (cpu_seconds(pid) - cpu_before) / (time.monotonic() - start)
        return {
            "services": 5,
            "agent_rss_mb": round(status_kb(pid, "VmRSS") / 1024, 1),
            "agent_peak_rss_mb": round(status_kb(pid, "VmHWM") / 1024, 1),
            "agent_cpu_percent_of_one_core": round(cpu * 100, 2),
            "serf_rss_mb": round(status_kb(node.serf.pid, "VmRSS") / 1024, 1),
            "window_s": seconds,
            "health_check_interval_s": 10,
        }
    finally:
        lab.stop()
        ids = subprocess.run(["docker", "ps", "-aq", "--filter", "label=pico.node=idle1"], capture_output=True,
                             text=True).stdout.split()
        if ids:
            subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)


def first_resolved(nodes, name: str, timeout: float) -> dict[str, float]:
    seen: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while len(seen) < len(nodes) and time.monotonic() < deadline:
        for node in nodes:
            if node.name not in seen and node.resolve(name):
                seen[node.name] = time.time()
        time.sleep(0.005)
    return seen


def cluster_numbers(root: Path, bundle: Path, count: int, rounds: int) -> dict:
    lab = AgentLab(root / "cluster", count)
    lab.start(bundle=bundle)
    listeners = []
    try:
        wait_for(lambda: lab.all_see(count), 60, what=f"{count} members")
        owner, others = lab.nodes[0], lab.nodes[1:]
        propagation = []
        for round_ in range(rounds):
            name = f"prop-{round_}"
            listener = PortListener(free_ports(1)[0])
            listener.open()
            listeners.append(listener)
            owner.add_service(tcp_service(name, listener.port))
            seen = first_resolved(others, f"{name}.service.pico", 30)
            if len(seen) < len(others):
                sys.exit(f"bench: {name} did not reach every node: {sorted(seen)}")
            propagation.append(max(seen.values()) - healthy_at(owner, name))

        # DNS latency: a service with an instance on every node.
        for node in lab.nodes:
            listener = PortListener(free_ports(1)[0])
            listener.open()
            listeners.append(listener)
            node.add_service(tcp_service("everywhere", listener.port))
        wait_for(lambda: len(owner.resolve("everywhere.service.pico")) >= 1 and
                 len(owner.instances("everywhere")) == count, 30, what="everywhere on every node")
        latencies = []
        for _ in range(2000):
            start = time.perf_counter()
            reply = owner.dns("everywhere.service.pico")
            latencies.append(time.perf_counter() - start)
            assert reply is not None and reply.rr
        latencies.sort()

        failure = []
        victim = lab.nodes[-1]
        watchers = lab.nodes[:-1]
        for _ in range(3):
            wait_for(lambda: all(n.resolve("everywhere.service.pico").count("127.0.0.1") and
                                 len(n.instances("everywhere")) == count for n in watchers), 60,
                     what="victim's instance everywhere")
            killed = time.time()
            victim.kill()
            gone: dict[str, float] = {}
            while len(gone) < len(watchers) and time.time() - killed < 60:
                for node in watchers:
                    if node.name not in gone and not any(i["node"] == victim.name for i in node.instances("everywhere")):
                        gone[node.name] = time.time()
                time.sleep(0.02)
            failure.append(max(gone.values()) - killed)
            lab.start([victim], bundle=bundle)
        return {
            "nodes": count,
            "propagation_s": {"median": round(statistics.median(propagation), 3), "max": round(max(propagation), 3),
                              "rounds": rounds},
            "node_death_to_gone_s": {"median": round(statistics.median(failure), 2), "max": round(max(failure), 2),
                                     "rounds": len(failure), "serf_profile": "lan (serf's default)"},
            "dns_latency_ms": {"p50": round(latencies[len(latencies) // 2] * 1000, 3),
                               "p99": round(latencies[int(len(latencies) * 0.99)] * 1000, 3),
                               "queries": len(latencies), "answers_per_query": count},
        }
    finally:
        for listener in listeners:
            listener.close()
        lab.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--idle-seconds", type=float, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pico-bench-agent-") as tmp:
        root = Path(tmp)
        bundle = root / "pico-agent.pyz"
        subprocess.run([sys.executable, str(BUILD), str(REPO / "runtime/src/pico_agent"), str(bundle)],
                       check=True, capture_output=True)
        result = {
            "machine": "this host (x86_64), Python " + sys.version.split()[0] + ", the agent zipapp as installed on nodes",
            "idle_with_5_services": idle_footprint(root, bundle, args.idle_seconds),
            "cluster": cluster_numbers(root, bundle, args.nodes, args.rounds),
            "targets": {"agent_rss_mb": 25, "agent_cpu_percent": 1, "propagation_s": 2},
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
