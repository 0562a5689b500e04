#!/usr/bin/env python3
"""Failover at scale, across a healed partition and on a lossy link, printed as JSON:

    .venv/bin/python bench/failover_chaos.py scale [--sizes 5,20,50] [--rounds 20]
    .venv/bin/python bench/failover_chaos.py two [--rounds 20]
    .venv/bin/python bench/failover_chaos.py partition [--rounds 20] [--cut 30] [--reconnect 5s,30s]
    .venv/bin/python bench/failover_chaos.py loss [--minutes 5] [--profiles lan,local] [--rounds 10] [--delay 0.1]

Real `serf agent` and pico-agent processes, each pair in a network namespace of its own on one
bridge (runtime/tests/agentlab.py NetnsLab: the role's ports and Serf settings), this machine's
dockerd, and the plan every node holds. The services are containers with no port, one name per
case, so the cases can run at once on one dockerd.

- scale: N nodes, one slot owned by n1. Each round n1 loses power (Serf and agent SIGKILLed, its
  container removed); measured from the kill: until every surviving agent shows n1 failed
  (agree), and until every surviving agent lists the takeover healthy (replaced); the agents'
  and Serf's CPU over that window. Then n1 returns and the takeover is handed back.
- two: 5 nodes, slots owned by n1 and n2, which lose power at once. Per round: until every
  survivor lists both takeovers (replaced), and the spread between the first and the last
  survivor (a catalog change's gossip can miss a peer while members are freshly dead).
- partition: 4 nodes, slots owned by n1 and n3; the mesh is cut into {n1,n2} | {n3,n4} for
  --cut seconds (each half takes the other's slot: duplicates), then healed: the time until
  every agent lists one copy per slot, the owner's, with no takeover container left. Per Serf
  reconnect_interval (Serf's default 30s, the role's 5s).
- loss: 4 nodes, slot owned by n1; 30 % of the packets on n1's link lost each way, and --delay
  seconds added to all it sends (runtime/tests/netdelay.py: this kernel has no netem), for
  --minutes per Serf profile: how often a peer saw n1 failed and how many takeovers started
  (false failovers); and, per profile, --rounds power cuts of n1 without loss: time to replaced.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import benchlib  # noqa: E402  (first: it makes the project's modules importable)

REPO = benchlib.REPO

from agentlab import (DOCKER_SOCKET, ROLE_SERF_SETTINGS, NetnsLab, failover_plan, load_demo_image,  # noqa: E402
                      plan_restored, remove_containers, use_plan, wait_for, worker_containers, worker_copies,
                      worker_spec)

TICK = os.sysconf("SC_CLK_TCK")
HOLD_DOWN, DRAIN = 10, 3  # the agent's defaults
# Each case's service has a name of its own (containers are named after it on the one dockerd),
# so the cases can run at once; partition uses worker and helper.
SCALED, LOSSY = "scaled", "lossy"


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


@contextmanager
def running_lab(name: str, count: int, owned: dict[str, int], net: int, prefix: str, hold_down: float = HOLD_DOWN,
                drain: float = DRAIN, **lab_options):
    """A NetnsLab running the plan, {service: index of the node owning its one slot}, as
    (lab, {service: owner node}); stopped and removed on the way out."""
    root = Path(tempfile.mkdtemp(prefix=f"pico-bench-{name}-"))
    image = load_demo_image()
    lab = NetnsLab(root, count, net=net, docker_socket=DOCKER_SOCKET, interval=1, prefix=prefix, **lab_options)
    owners = {service: lab.nodes[index] for service, index in owned.items()}
    use_plan(lab.nodes, failover_plan(lab.nodes, image, {s: [o.name] for s, o in owners.items()}), hold_down, drain)
    try:
        lab.start()
        for service, owner in owners.items():
            owner.add_service(dict(worker_spec(image, service), replicas=1))
        wait_for(lambda: lab.all_see(count), 60 + 3 * count, interval=1, what="every member alive everywhere")
        wait_for(lambda: plan_restored(lab.nodes, owners), 120, interval=0.5, what="the plan running")
        yield lab, owners
    finally:
        lab.stop()
        remove_containers(lab.nodes)
        shutil.rmtree(root, ignore_errors=True)


def taken_over(nodes, service: str = "worker") -> bool:
    return all(any(tag for _, tag in worker_copies(n, service)) for n in nodes)


def power_cut(lab: NetnsLab, node) -> float:
    start = time.monotonic()
    node.kill()
    remove_containers([node])
    return start


def scale(sizes: list[int], rounds: int) -> dict:
    results = {}
    for size in sizes:
        try:
            results[str(size)] = scale_one(size, rounds)
        except (AssertionError, TimeoutError) as err:  # reported, and the other sizes still run
            results[str(size)] = {"failed": str(err)}
        print(json.dumps({str(size): results[str(size)]}), file=sys.stderr, flush=True)
    return {"what": "power cut of the slot's owner: until every survivor shows it failed (agree) and lists the "
                    "takeover healthy (replaced); mean CPU per surviving node over that window (100 = one core)",
            "sizes": results}


def scale_one(size: int, rounds: int) -> dict:
    # A short hand-back: it is not what this measures, and it makes the rounds quicker.
    with running_lab(f"scale{size}", size, {SCALED: 0}, net=60, prefix="bs", hold_down=3, drain=1) as (lab, owners):
        owner, survivors = lab.nodes[0], lab.nodes[1:]
        agree, replaced, agent_cpu, serf_cpu = [], [], [], []
        for _ in range(rounds):
            before = {n.name: (cpu_seconds(n.agent.pid), cpu_seconds(n.serf.pid)) for n in survivors}
            start = power_cut(lab, owner)
            agreed_at = None
            while True:
                now = time.monotonic()
                if agreed_at is None and all(n.members().get(owner.name) == "failed" for n in survivors):
                    agreed_at = now
                if agreed_at and taken_over(survivors, SCALED):
                    break
                if now - start > 120:
                    raise TimeoutError(f"no failover within 120 s with {size} nodes")
                time.sleep(0.2)
            window = time.monotonic() - start
            agree.append(agreed_at - start)
            replaced.append(window)
            agent_cpu.append(statistics.mean((cpu_seconds(n.agent.pid) - before[n.name][0]) / window
                                             for n in survivors) * 100)
            serf_cpu.append(statistics.mean((cpu_seconds(n.serf.pid) - before[n.name][1]) / window
                                            for n in survivors) * 100)
            lab.start([owner])
            wait_for(lambda: plan_restored(lab.nodes, owners), 120, interval=0.5, what="the slot handed back")
    return {"agree_s": benchlib.percentiles(agree), "replaced_s": benchlib.percentiles(replaced),
            "agent_cpu_percent_mean_per_node": benchlib.percentiles(agent_cpu),
            "serf_cpu_percent_mean_per_node": benchlib.percentiles(serf_cpu)}


def two_boards(rounds: int) -> dict:
    """Two owners lose power at once. Per round: until every survivor lists both takeovers
    (replaced), and the spread between the first and the last survivor to list them (the
    gossip of a catalog change can miss a peer while members are freshly dead)."""
    with running_lab("two", 5, {"pair-a": 0, "pair-b": 1}, net=63, prefix="b2", hold_down=3, drain=1) as (lab, owners):
        dead, survivors = list(owners.values()), lab.nodes[2:]
        replaced, spread = [], []
        for _ in range(rounds):
            start = min(power_cut(lab, node) for node in dead)
            seen_at: dict[str, float] = {}
            while len(seen_at) < len(survivors):
                now = time.monotonic()
                for node in survivors:
                    if node.name not in seen_at and all(any(tag for _, tag in worker_copies(node, service))
                                                        for service in owners):
                        seen_at[node.name] = now
                if now - start > 120:
                    raise TimeoutError(f"not every survivor listed both takeovers within 120 s: {seen_at}")
                time.sleep(0.1)
            replaced.append(max(seen_at.values()) - start)
            spread.append(max(seen_at.values()) - min(seen_at.values()))
            lab.start(dead)
            wait_for(lambda: plan_restored(lab.nodes, owners), 120, interval=0.5, what="both slots handed back")
    return {"what": "two slot owners lose power at once (5 nodes): until every survivor lists both takeovers, and "
                    "the spread between the first and the last survivor",
            "replaced_s": benchlib.percentiles(replaced), "spread_s": benchlib.percentiles(spread),
            "spread_over_5_s": sum(1 for s in spread if s > 5), "rounds": rounds}


def partition(rounds: int, cut: float, reconnects: list[str]) -> dict:
    results = {}
    for reconnect in reconnects:
        with running_lab("partition", 4, {"worker": 0, "helper": 2}, net=61, prefix="bp",
                         serf_settings={"reconnect_interval": reconnect}) as (lab, owners):
            left, right = lab.nodes[:2], lab.nodes[2:]
            most, resolve = [], []
            for _ in range(rounds):
                lab.partition(left, right)
                start, peak = time.monotonic(), 0
                while time.monotonic() - start < cut:
                    peak = max(peak, sum(len(worker_containers(n, s)) for n in lab.nodes for s in owners))
                    time.sleep(0.5)
                healed = time.monotonic()
                lab.heal()
                wait_for(lambda: plan_restored(lab.nodes, owners), 180, interval=0.2,
                         what="one copy per slot after the heal")
                resolve.append(time.monotonic() - healed)
                most.append(peak)
                time.sleep(2)
        results[f"reconnect_interval {reconnect}"] = {
            "copies_running_at_most_during_the_cut": {"planned": 2, "all": most},
            "heal_to_one_copy_per_slot_s": benchlib.percentiles(resolve)}
    return {"what": f"4 nodes cut into two halves for {cut:g} s and healed; the agents' hold-down {HOLD_DOWN} s and "
                    f"drain {DRAIN} s; the role sets {ROLE_SERF_SETTINGS}", "rounds": rounds, "cases": results}


def loss(minutes: float, profiles: list[str], rounds: int, delay: float, probability: float = 0.3) -> dict:
    results = {}
    for profile in profiles:
        with running_lab(f"loss-{profile}", 4, {LOSSY: 0}, net=62, prefix="bl", serf_profile=profile) as (lab, owners):
            owner, others = lab.nodes[0], lab.nodes[1:]
            failed_seen, takeovers, replaced = 0, 0, []
            lab.lossy(owner, probability)
            if delay:
                lab.delayed(owner, delay)
            end, was_failed, running = time.monotonic() + minutes * 60, False, set()
            while time.monotonic() < end:
                failed_now = any(n.members().get(owner.name) == "failed" for n in others)
                failed_seen += failed_now and not was_failed
                was_failed = failed_now
                for node in others:
                    for cid in worker_containers(node, LOSSY):
                        if cid not in running:
                            running.add(cid)
                            takeovers += 1
                time.sleep(0.5)
            lab.heal()
            wait_for(lambda: plan_restored(lab.nodes, owners), 120, interval=0.5, what="the plan after the loss")
            for _ in range(rounds):
                start = power_cut(lab, owner)
                wait_for(lambda: taken_over(others, LOSSY), 120, interval=0.2, what="the takeover")
                replaced.append(time.monotonic() - start)
                lab.start([owner])
                wait_for(lambda: plan_restored(lab.nodes, owners), 120, interval=0.5, what="the slot handed back")
        results[profile] = {"times_a_peer_saw_the_lossy_node_failed": failed_seen,
                            "false_failovers_started": takeovers,
                            "power_cut_to_replaced_without_loss_s": benchlib.percentiles(replaced)}
    return {"what": f"{probability:.0%} packet loss each way and {delay * 1000:g} ms delay out on the slot owner's link "
                    f"for {minutes:g} min per Serf "
                    "profile (target: 0 false failovers), and the same profile's failover time after a power cut",
            "profiles": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="case", required=True)
    p = sub.add_parser("scale")
    p.add_argument("--sizes", default="5,20,50")
    p.add_argument("--rounds", type=int, default=20)
    p = sub.add_parser("two")
    p.add_argument("--rounds", type=int, default=20)
    p = sub.add_parser("partition")
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--cut", type=float, default=30, help="seconds the mesh stays cut (detection takes up to ~20 s)")
    p.add_argument("--reconnect", default="5s,30s", help="Serf reconnect_interval values to compare")
    p = sub.add_parser("loss")
    p.add_argument("--minutes", type=float, default=5)
    p.add_argument("--profiles", default="lan,local")
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--delay", type=float, default=0.1, help="seconds added to what the lossy node sends")
    args = parser.parse_args()
    if args.case == "scale":
        report = scale([int(s) for s in args.sizes.split(",")], args.rounds)
    elif args.case == "two":
        report = two_boards(args.rounds)
    elif args.case == "partition":
        report = partition(args.rounds, args.cut, args.reconnect.split(","))
    else:
        report = loss(args.minutes, args.profiles.split(","), args.rounds, args.delay)
    print(json.dumps({args.case: report}, indent=2))


if __name__ == "__main__":
    main()
