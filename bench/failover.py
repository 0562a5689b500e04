#!/usr/bin/env python3
"""Failover with no controller on a lab of its own, printed as JSON:

    .venv/bin/python bench/failover.py [--rounds 20] [--mix native=4] [--keep]

Brings up pico-bench-failover (4 native nodes by default; `--mix pizero=2,pizero2=1` for the
emulated boards), provisions it with site.yml, deploys web (the demo, 2 replicas, spread) with
deploy.yml, then for each round:
- SIGKILLs one node's container (a board losing power: its Serf, agent and containers go at once);
- a client on a surviving node that holds no slot resolves web's SRV records through its own
  agent's DNS every 50 ms and calls each new (node, port) it sees until one answers /healthz:
  the time from the kill to that first successful request to the replacement. Meanwhile another
  client on that node calls web every 50 ms, each time on the next instance its DNS lists,
  retrying once on another on failure: its requests, and those failed before and after the
  retry, until the replacement served;
- starts the node again and measures until discovery shows the planned instances only (the
  takeover handed back after its hold-down).
Reports p50/p99/max of both. Run it with the default lab down: labs share this machine's cores.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import benchlib  # noqa: E402  (first: it makes the project's modules importable)

REPO = benchlib.REPO

NAME, SUBNET, PORT_BASE = "pico-bench-failover", "172.28.84.0/24", 2780
PORT = 8095
WEB = {"name": "web", "image": "pico/demo:1.0.0", "replicas": 2, "port": PORT,
       # start_period: under qemu the demo needs a few seconds to listen; without it every new
       # container failed its first checks and was restarted with back-off (about 45 s lost).
       "health": {"type": "http", "path": "/healthz", "interval": 1, "timeout": 1, "retries": 2, "start_period": 30},
       "resources": {"memory": "48m", "cpu": 0.2}}

# Runs on the client node. Prints the wall time of the first successful request to an instance
# that was not in discovery when it started; meanwhile a client calls web every 50 ms through the
# same DNS, on the next instance in turn, and on failure retries once on another: its counts
# until the replacement served are printed with it.
PROBE = r"""
import json, sys, threading, time, urllib.request
from dnslib import QTYPE, DNSRecord
def pairs():
    try:
        answer = DNSRecord.parse(DNSRecord.question("web.service.pico", "SRV").send("127.0.0.1", 8600, timeout=0.5))
    except Exception:
        return set()
    addresses = {str(rr.rname): str(rr.rdata) for rr in answer.ar if rr.rtype == QTYPE.A}
    return {(addresses.get(str(rr.rdata.target)), rr.rdata.port) for rr in answer.rr if rr.rtype == QTYPE.SRV}
def served(pair):
    try:
        with urllib.request.urlopen(f"http://{pair[0]}:{pair[1]}/healthz", timeout=1) as response:
            return response.status == 200
    except Exception:
        return False
counts = {"requests": 0, "failed_first_try": 0, "failed_after_one_retry": 0}
done = threading.Event()
def client():
    turn = 0
    while not done.is_set():
        found, turn = sorted(pairs()), turn + 1
        tries = [found[(turn + i) % len(found)] for i in range(min(2, len(found)))] if found else []
        counts["requests"] += 1
        if not tries or not served(tries[0]):
            counts["failed_first_try"] += 1
            if len(tries) < 2 or not served(tries[1]):
                counts["failed_after_one_retry"] += 1
        time.sleep(0.05)
before = pairs()
calls = threading.Thread(target=client)
calls.start()
print(json.dumps({"ready": time.time(), "before": sorted(map(list, before))}), flush=True)
deadline = time.time() + 120
while time.time() < deadline:
    for pair in pairs() - before:
        if served(pair):
            at = time.time()
            done.set()
            calls.join()
            print(json.dumps({"served": at, "by": list(pair), "calls": counts}), flush=True)
            sys.exit(0)
    time.sleep(0.05)
sys.exit(1)
"""


def docker(*args: str, check: bool = True) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check).stdout


def discovery(container: str) -> list[dict]:
    script = "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8500/v1/services/web', timeout=3).read().decode())"
    out = subprocess.run(["docker", "exec", container, "python3", "-c", script], capture_output=True, text=True)
    return json.loads(out.stdout)["instances"] if out.returncode == 0 else []


def wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    sys.exit(f"bench: {what} not reached within {timeout} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--mix", default="native=4")
    parser.add_argument("--keep", action="store_true", help="leave the bench lab running")
    args = parser.parse_args()
    with benchlib.own_lab(NAME, args.mix, SUBNET, PORT_BASE, keep=args.keep) as (_, inventory):
        extra = inventory.parent / "services.json"
        extra.write_text(json.dumps({"pico_agent_services": [], "pico_services": [WEB]}))
        benchlib.playbook(inventory, "site.yml", "-e", f"@{extra}")
        benchlib.playbook(inventory, "playbooks/deploy.yml", "-e", f"@{extra}")
        nodes = sorted(line.split()[0] for line in docker("ps", "--filter", f"name={NAME}-lab-", "--format",
                                                            "{{.Names}}").splitlines())
        names = {container: container.removeprefix(f"{NAME}-lab-") for container in nodes}
        planned = sorted(i["node"] for i in discovery(nodes[0]))
        victim = next(c for c in nodes if names[c] == planned[0])
        client = next(c for c in nodes if names[c] not in planned)
        failover_s, handback_s, rounds, calls = [], [], [], []
        for number in range(args.rounds):
            probe = subprocess.Popen(["docker", "exec", client, "python3", "-c", PROBE],
                                     stdout=subprocess.PIPE, text=True)
            json.loads(probe.stdout.readline())  # its baseline is taken
            killed = time.time()
            docker("kill", victim)
            line = probe.stdout.readline()
            probe.wait(10)
            if not line:
                sys.exit(f"bench: round {number}: no replacement answered within 120 s")
            served = json.loads(line)
            failover_s.append(served["served"] - killed)
            started = time.monotonic()
            docker("start", victim)
            wait(lambda: sorted(i["node"] for i in discovery(client)) == planned
                 and not any(t.startswith("pico.failover:") for i in discovery(client) for t in i["tags"]),
                 180, "the owner back and the takeover handed back")
            handback_s.append(time.monotonic() - started)
            calls.append(served["calls"])
            rounds.append({"failover_s": round(failover_s[-1], 2), "replacement": served["by"], "calls": served["calls"],
                           "handback_s": round(handback_s[-1], 1)})
        report = {
            "lab": {"mix": args.mix, "victim": names[victim], "client": names[client],
                    "service": "web (demo), 2 replicas, spread", "serf_profile": "lan"},
            "kill_to_first_request_served_by_the_replacement_s": benchlib.percentiles(failover_s),
            "restart_to_takeover_handed_back_s": benchlib.percentiles(handback_s),
            "client_kill_to_replacement_served": {key: sum(c[key] for c in calls) for key in calls[0]},
            "target": {"p50_s": 10, "p99_s": 15},
            "rounds": rounds,
        }
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
