#!/usr/bin/env python3
"""WireGuard mesh numbers on an emulated lab, printed as JSON.

    .venv/bin/python bench/wireguard_mesh.py [--mix pizero=2,pizero2=1] [--keep]

Brings up a lab of its own (pico-bench), provisions all nodes but the last with site.yml, then
measures, all in one run so the numbers compare:
- first ping after the interface comes up (restart of wg-quick, handshake, first echo), per node;
- mesh RTT versus plain lab-network RTT between every ordered pair (p50/p99);
- packets lost by a ping between two nodes while site.yml adds the last node;
- the longest interruption of any pair while playbooks/rotate-wireguard-keys.yml rotates every key.
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
from itertools import permutations

import benchlib  # noqa: E402  (first: it makes the project's modules importable)

REPO = benchlib.REPO
from lab import cluster, model  # noqa: E402

NAME, SUBNET, PORT_BASE = "pico-bench", "172.28.80.0/24", 2600
PING_INTERVAL_S = 0.1
REPLY = re.compile(r"^\[(\d+\.\d+)\] \d+ bytes from .*time=([\d.]+) ms", re.M)


def container(node: str) -> str:
    return benchlib.container(NAME, node)


def node_exec(node: str, *cmd: str) -> str:
    return benchlib.node_exec(NAME, node, *cmd)


playbook = benchlib.playbook


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))], 3)


def mesh_address(node: str) -> str:
    return json.loads(node_exec(node, "cat", "/etc/wireguard/wg0.interface.json"))["address"]


def rtts(src: str, dst: str, count: int) -> list[float]:
    out = node_exec(src, "ping", "-D", "-n", "-c", str(count), "-i", "0.05", "-W", "2", dst)
    return [float(ms) for _, ms in REPLY.findall(out)]


def first_ping_after_restart(node: str, peers: list[str]) -> float:
    """Seconds from `systemctl restart wg-quick@wg0` to an echo reply from every peer."""
    script = (
        "start=$(date +%s%N); systemctl restart wg-quick@wg0; "
        + " ".join(f"until ping -c1 -W1 {p} >/dev/null 2>&1; do :; done;" for p in peers)
        + " echo $(( $(date +%s%N) - start ))"
    )
    return int(node_exec(node, "sh", "-c", script).strip()) / 1e9


def start_pinger(src: str, dst: str) -> subprocess.Popen[str]:
    return subprocess.Popen(["docker", "exec", container(src), "ping", "-D", "-n", "-i", str(PING_INTERVAL_S), dst],
                            stdout=subprocess.PIPE, text=True)


def stop_pingers(nodes: list[str], pingers: dict[tuple[str, str], subprocess.Popen[str]]) -> dict[tuple[str, str], str]:
    for node in nodes:
        subprocess.run(["docker", "exec", container(node), "pkill", "-INT", "-x", "ping"], capture_output=True, check=False)
    return {pair: proc.communicate(timeout=30)[0] for pair, proc in pingers.items()}


def longest_gap(output: str) -> float:
    """Longest silence between two consecutive replies, minus the ping interval (0 = none lost)."""
    stamps = [float(ts) for ts, _ in REPLY.findall(output)]
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    return round(max(0.0, max(gaps, default=0.0) - PING_INTERVAL_S), 3)


def lost(output: str) -> int:
    """Echoes with no reply before the last reply (-1: none answered). ping's own count would
    include the echo that stopping it (SIGINT) caught on its way back."""
    replied = {int(seq) for seq in re.findall(r"icmp_seq=(\d+) ttl=", output)}
    return max(replied) - len(replied) if replied else -1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mix", default=model.DEFAULT_MIX)
    parser.add_argument("--keep", action="store_true", help="leave the bench lab running")
    args = parser.parse_args()

    state = REPO / ".lab"
    inventory = state / NAME / "hosts.yml"
    lab = cluster.Lab(NAME, state, inventory)
    lab.down()
    spec = model.plan(NAME, args.mix, SUBNET, PORT_BASE)
    lab.up(spec)
    try:
        nodes = [n.name for n in spec.nodes]
        first, last = nodes[:-1], nodes[-1]
        partial = state / NAME / "partial.yml"
        partial.write_text(_without_host(inventory.read_text(), last))

        provision_s = playbook(partial, "site.yml")
        mesh = {n: mesh_address(n) for n in first}
        lan = {n.name: n.address for n in spec.nodes}

        first_ping = {n: round(first_ping_after_restart(n, [mesh[p] for p in first if p != n]), 3) for n in first}

        mesh_rtt, lan_rtt = [], []
        for a, b in permutations(first, 2):
            mesh_rtt += rtts(a, mesh[b], 40)
            lan_rtt += rtts(a, lan[b], 40)

        a, b = first[0], first[1]
        pinger = {(a, b): start_pinger(a, mesh[b])}
        add_s = playbook(inventory, "site.yml")
        add_out = stop_pingers([a], pinger)[(a, b)]

        mesh[last] = mesh_address(last)
        pingers = {(x, y): start_pinger(x, mesh[y]) for x, y in permutations(nodes, 2)}
        rotate_s = playbook(inventory, "playbooks/rotate-wireguard-keys.yml", "-e", "pico_wireguard_rotate_min_age_hours=0")
        outputs = stop_pingers(nodes, pingers)
        gaps = {f"{x}->{y}": longest_gap(out) for (x, y), out in outputs.items()}

        print(json.dumps({
            "lab": {"nodes": nodes, "machines": {n: node_exec(n, "uname", "-m").strip() for n in nodes}},
            "provision_first_nodes_s": round(provision_s, 1),
            "interface_restart_to_first_ping_s": {"per_node": first_ping, "p50": percentile(list(first_ping.values()), 50),
                                                  "max": max(first_ping.values())},
            "rtt_ms": {"mesh_p50": percentile(mesh_rtt, 50), "mesh_p99": percentile(mesh_rtt, 99),
                       "lan_p50": percentile(lan_rtt, 50), "lan_p99": percentile(lan_rtt, 99),
                       "mesh_over_lan_p50": round(statistics.median(mesh_rtt) / statistics.median(lan_rtt), 2),
                       "samples_each": len(mesh_rtt)},
            "add_node": {"site_yml_s": round(add_s, 1), "ping": f"{a}->{b}", "lost_packets": lost(add_out),
                         "longest_gap_s": longest_gap(add_out)},
            "rotate_all_keys": {"playbook_s": round(rotate_s, 1), "longest_interruption_s": max(gaps.values()),
                                "per_pair_s": gaps},
        }, indent=2))
    finally:
        if not args.keep:
            lab.down()


def _without_host(text: str, host: str) -> str:
    """The lab inventory minus one host, so site.yml can add it later."""
    import yaml

    data = yaml.safe_load(text)
    groups = data["all"]["children"]["pico_nodes"]["children"]
    for name, group in list(groups.items()):
        group["hosts"].pop(host, None)
        if not group["hosts"]:
            del groups[name]
    return yaml.safe_dump(data)


if __name__ == "__main__":
    main()
