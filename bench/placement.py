#!/usr/bin/env python3
"""The placement planner's numbers, printed as JSON (no lab needed):

    .venv/bin/python bench/placement.py [--repeat 5]

- planning time for 1,000 replicas on 200 nodes (target <= 100 ms) and 10,000 on 2,000, first
  plan and re-plan with nothing changed (median of --repeat);
- replicas moved when a node is added or removed, beside the fewest any plan could move
  (adding: what spreading needs; removing: the node's own replicas).

The rollout numbers (wall time per rollout and per batch, rollback time, requests served and
failed) come from bench/rollout.py on a lab.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import benchlib  # noqa: E402  (first: it makes the project's modules importable)

REPO = benchlib.REPO

from ansible_collections.pico.cloud.plugins.module_utils._placement import moves, plan, validate_services  # noqa: E402

MB = 1024 ** 2


def nodes(count: int) -> list[dict]:
    return [{"name": "n%05d" % i, "arch": "armv6l" if i % 3 else "aarch64", "board": "pizero" if i % 3 else "pizero2",
             "memory": 352 * MB, "cpus": 1.0 if i % 3 else 4.0, "labels": {"site": "s%d" % (i % 8)},
             "images": ["app:1"], "alive": True} for i in range(count)]


def services(count: int, replicas: int) -> list[dict]:
    declared = []
    for i in range(count):
        declared.append({"name": "svc-%04d" % i, "image": "app:1", "replicas": replicas,
                         "resources": {"memory": "%dm" % (8 + i % 5 * 4), "cpu": 0.02},
                         "spread": "label:site" if i % 4 == 0 else "node",
                         "strategy": "pack" if i % 10 == 0 else "spread"})
    return validate_services(declared)


def timed(function, repeat: int) -> tuple[float, object]:
    samples, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), result


def case(service_count: int, replicas: int, node_count: int, repeat: int) -> dict:
    declared, cluster = services(service_count, replicas), nodes(node_count)
    first_s, first = timed(lambda: plan(declared, cluster), repeat)
    again_s, again = timed(lambda: plan(declared, cluster, first["services"]), repeat)
    grown = cluster + [{**cluster[0], "name": "n-new"}]
    added = plan(declared, grown, first["services"])
    # Adding a node: spreading asks no replica to move unless a node now holds more than its share.
    removed_node = cluster[node_count // 2]["name"]
    shrunk = [n for n in cluster if n["name"] != removed_node]
    removed = plan(declared, shrunk, first["services"])
    own = sum(slots.count(removed_node) for slots in (e["slots"] for e in first["services"].values()))
    return {
        "replicas": service_count * replicas, "nodes": node_count, "services": service_count,
        "plan_ms": round(first_s * 1000, 1), "replan_unchanged_ms": round(again_s * 1000, 1),
        "moved_when_nothing_changed": len(moves(first, again)),
        "moved_when_a_node_is_added": len(moves(first, added)),
        "moved_when_a_node_is_removed": len(moves(first, removed)), "fewest_possible_when_removed": own,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps({
        "small": case(50, 20, 200, args.repeat),
        "large": case(500, 20, 2000, max(1, args.repeat // 2)),
        "target": "plan_ms <= 100 for 1,000 replicas on 200 nodes",
    }, indent=2))


if __name__ == "__main__":
    main()
