#!/usr/bin/env python3
"""Rollouts through playbooks/deploy.yml on the emulated lab, printed as JSON:

    .venv/bin/python bench/rollout.py [--keep]

Brings up a lab of its own (pico-bench-rollout: 2 x Pi Zero, 1 x Pi Zero 2 W), provisions it with
site.yml (no pinned services), then, with a client on a board resolving the service through its
agent's DNS and calling it in a loop (lab/load_client.py):
- the first deploy of web (pico/demo:1.0.0, 3 replicas, one per board);
- a rolling update to 2.0.0: wall time, batches, time per batch, requests served and failed;
- a version whose /healthz fails (DEMO_FAIL_HEALTH, healthy_deadline 30 s): wall time until the
  play fails, the time of the rollback itself, requests served and failed.
Run it with the default lab down: both labs would share this machine's two cores.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import benchlib  # noqa: E402  (first: it makes the project's modules importable)

REPO = benchlib.REPO
from lab import model  # noqa: E402
from lab.board_load import BoardLoad  # noqa: E402

NAME, SUBNET, PORT_BASE = "pico-bench-rollout", "172.28.83.0/24", 2750
CLIENT, PORT = "pizero2-1", 8090
ROLLBACK_TASKS = ("Put the previous service files back", "Remove the service where it did not run before",
                  "Publish the previous instances again", "Wait until the previous version is healthy in discovery again")
BATCH_START = "Note the batch and the node that watches it"
BATCH_TASKS = (BATCH_START, "Drain the old instances", "Wait until no peer publishes them",
               "Let requests already under way finish", "Write the new service files", "Remove the service where it stops",
               "Wait until the new instances are healthy in the cluster's discovery")


def web(version: str, **update) -> dict:
    return {"name": "web", "image": f"pico/demo:{version}", "replicas": 3, "port": PORT,
            "health": {"type": "http", "path": "/healthz", "interval": 1, "timeout": 1, "retries": 2, "start_period": 60},
            "resources": {"memory": "48m", "cpu": 0.2},
            "update": {"min_healthy_time": 3, "healthy_deadline": 90, "drain_time": 2, **update}}


def deploy(inventory: Path, services: list[dict], expect_failure: bool = False) -> tuple[float, str]:
    extra = inventory.parent / "services.json"
    extra.write_text(json.dumps({"pico_services": services, "pico_agent_services": []}))
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
           "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(inventory.parent / "facts"),
           "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks"}
    start = time.monotonic()
    result = subprocess.run([benchlib.ANSIBLE_PLAYBOOK, "-i", str(inventory), "playbooks/deploy.yml", "-e", f"@{extra}"],
                            cwd=REPO, env=env, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - start
    if (result.returncode != 0) != expect_failure:
        sys.exit(f"bench: deploy {'succeeded' if expect_failure else 'failed'}:\n{result.stdout[-3000:]}")
    return seconds, result.stdout


def task_seconds(output: str) -> list[tuple[str, float]]:
    """(task name, seconds) in order, from profile_tasks' lines (each gives the previous task's time)."""
    found = re.findall(r"^(?:TASK|RUNNING HANDLER) \[(.*?)\] \*+\n.*?\((\d+):(\d+):([\d.]+)\)", output, re.M)
    return [(found[i][0], int(found[i + 1][1]) * 3600 + int(found[i + 1][2]) * 60 + float(found[i + 1][3]))
            for i in range(len(found) - 1)]


def batch_seconds(output: str) -> list[float]:
    """Seconds of each batch: its tasks (batch.yml), from drain to healthy in discovery."""
    batches: list[float] = []
    for name, seconds in task_seconds(output):
        short = name.split(" : ")[-1]
        if short == BATCH_START:
            batches.append(0.0)
        if batches and short in BATCH_TASKS:
            batches[-1] += seconds
    return [round(b, 1) for b in batches]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="leave the bench lab running")
    args = parser.parse_args()
    with benchlib.own_lab(NAME, model.DEFAULT_MIX, SUBNET, PORT_BASE, keep=args.keep) as (_, inventory):
        (inventory.parent / "no-pins.json").write_text(json.dumps({"pico_agent_services": []}))
        benchlib.playbook(inventory, "site.yml", "-e", f"@{inventory.parent / 'no-pins.json'}")
        first_s, _ = deploy(inventory, [web("1.0.0")])
        with BoardLoad(benchlib.container(NAME, CLIENT), "web", PORT) as update_load:
            update_s, update_out = deploy(inventory, [web("2.0.0")])
        batches = batch_seconds(update_out)
        with BoardLoad(benchlib.container(NAME, CLIENT), "web", PORT) as rollback_load:
            failed_s, failed_out = deploy(inventory, [web("1.0.0", healthy_deadline=30) | {"env": {"DEMO_FAIL_HEALTH": "1"}}],
                                          expect_failure=True)
        rollback_s = sum(s for name, s in task_seconds(failed_out) if name.split(" : ")[-1] in ROLLBACK_TASKS)
        report = {
            "lab": {"mix": model.DEFAULT_MIX, "client": CLIENT, "service": "web: 3 replicas, one per board"},
            "first_deploy_s": round(first_s, 1),
            "rolling_update": {"wall_s": round(update_s, 1), "batches": len(batches),
                               "per_batch_s": batches,
                               "requests_ok": update_load.result["ok"], "requests_failed": update_load.result["failed"],
                               "versions_served": update_load.result["versions"]},
            "failing_version_rolled_back": {"wall_s": round(failed_s, 1), "rollback_s": round(rollback_s, 1),
                                            "healthy_deadline_s": 30,
                                            "requests_ok": rollback_load.result["ok"],
                                            "requests_failed": rollback_load.result["failed"]},
        }
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
