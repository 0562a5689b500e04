#!/usr/bin/env python3
"""The placement planner's numbers, printed as JSON (no lab needed):

    .venv/bin/python bench/placement.py [--repeat 5]

For 1,000 replicas on 200 nodes in four shapes side by side (1 service x 1,000 replicas, 50 x 20,
1,000 x 1, and 1,000 x 1 each with its own memory request), and 10,000 on 1,000 (500 x 20 and
10,000 x 1): planning time, first plan and re-plan with nothing changed (median of --repeat);
replicas moved when a node is added or removed, beside the fewest any plan could move (removing:
the node's own replicas); the most replicas on one node against the mean; and how time grows
from the small to the large cluster against replicas + nodes.

Targets (exit 1 when one is missed, after printing every number): every 1,000-on-200 shape
within 100 ms, every 10,000-on-1,000 shape within 1 s, time growing at most 3 times faster
than replicas + nodes, and nothing moved when nothing changed.

The rollout numbers (wall time per rollout and per batch, rollback time, requests served and
failed) come from bench/rollout.py on a lab.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import benchlib  # noqa: E402  (first: it makes the project's modules importable)

REPO = benchlib.REPO

from ansible_collections.pico.cloud.plugins.module_utils._placement import moves, plan, validate_services  # noqa: E402

MB = 1024 ** 2


def nodes(count: int) -> list[dict]:
    return [{"name": "n%05d" % i, "arch": "armv6l" if i % 3 else "aarch64", "board": "pizero" if i % 3 else "pizero2",
             "memory": 352 * MB, "cpus": 1.0 if i % 3 else 4.0, "labels": {"site": "s%d" % (i % 8)},
             "images": ["app:1"], "alive": True} for i in range(count)]


def services(count: int, replicas: int, distinct: bool = False) -> list[dict]:
    declared = []
    for i in range(count):
        memory = "%dk" % (4000 + i) if distinct else "%dm" % (8 + i % 5 * 4)  # distinct: every request its own
        declared.append({"name": "svc-%04d" % i, "image": "app:1", "replicas": replicas,
                         "resources": {"memory": memory, "cpu": 0.02},
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


def case(service_count: int, replicas: int, node_count: int, repeat: int, distinct: bool = False) -> dict:
    declared, cluster = services(service_count, replicas, distinct), nodes(node_count)
    first_s, first = timed(lambda: plan(declared, cluster), repeat)
    again_s, again = timed(lambda: plan(declared, cluster, first["services"]), repeat)
    grown = cluster + [{**cluster[0], "name": "n-new"}]
    added = plan(declared, grown, first["services"])
    # Adding a node: spreading asks no replica to move unless a node now holds more than its share.
    removed_node = cluster[node_count // 2]["name"]
    shrunk = [n for n in cluster if n["name"] != removed_node]
    removed = plan(declared, shrunk, first["services"])
    own = sum(slots.count(removed_node) for slots in (e["slots"] for e in first["services"].values()))
    held = [sum(node["replicas"].values()) for node in first["nodes"].values()]
    return {
        "replicas": service_count * replicas, "nodes": node_count, "services": service_count,
        "distinct_requests": distinct, "most_on_one_node_vs_mean": round(max(held) / (sum(held) / len(held)), 2),
        "plan_ms": round(first_s * 1000, 1), "replan_unchanged_ms": round(again_s * 1000, 1),
        "moved_when_nothing_changed": len(moves(first, again)),
        "moved_when_a_node_is_added": len(moves(first, added)),
        "moved_when_a_node_is_removed": len(moves(first, removed)), "fewest_possible_when_removed": own,
    }


SHAPES = {  # name: (services, replicas each, nodes, distinct requests)
    "1000_on_200_as_1x1000": (1, 1000, 200, False),
    "1000_on_200_as_50x20": (50, 20, 200, False),
    "1000_on_200_as_1000x1": (1000, 1, 200, False),
    "1000_on_200_as_1000x1_distinct": (1000, 1, 200, True),
    "10000_on_1000_as_500x20": (500, 20, 1000, False),
    "10000_on_1000_as_10000x1": (10000, 1, 1000, False),
}


def targets(results: dict) -> list[dict]:
    checks = []
    for name, result in results.items():
        limit = 100 if name.startswith("1000_") else 1000
        worst = max(result["plan_ms"], result["replan_unchanged_ms"])
        checks.append({"target": f"{name}: plan and re-plan within {limit} ms", "value": worst, "limit": limit,
                       "met": worst <= limit})
        checks.append({"target": f"{name}: nothing moved when nothing changed", "value": result["moved_when_nothing_changed"],
                       "limit": 0, "met": result["moved_when_nothing_changed"] == 0})
    for small, large in (("1000_on_200_as_50x20", "10000_on_1000_as_500x20"), ("1000_on_200_as_1000x1", "10000_on_1000_as_10000x1")):
        size = (results[large]["replicas"] + results[large]["nodes"]) / (results[small]["replicas"] + results[small]["nodes"])
        growth = results[large]["plan_ms"] / max(results[small]["plan_ms"], 0.1) / size
        checks.append({"target": f"{large} against {small}: time grows at most 3x faster than replicas + nodes",
                       "value": round(growth, 2), "limit": 3.0, "met": growth <= 3.0})
    return checks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat is at least 1")
    results = {name: case(count, replicas, node_count, args.repeat, distinct)
               for name, (count, replicas, node_count, distinct) in SHAPES.items()}
    checks = targets(results)
    print(json.dumps({"shapes": results, "targets": checks}, indent=2))
    return 0 if all(check["met"] for check in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
