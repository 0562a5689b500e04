#!/usr/bin/env python3
"""ESTIMATED cluster draw, stock against the power profiles and against consolidation with
power-down, printed as JSON (no lab needed):

    .venv/bin/python bench/energy.py                    # the model only
    .venv/bin/python bench/energy.py --wake-rounds 5    # and the wake time, on a lab of its own

For the 6-board lab shape and a modelled 20-board fleet of Pi Zeros, at 10 %, 30 % and 60 % of
the fleet's CPU in use:
- stock: every board on, stock configuration, the load spread evenly;
- balanced: every board on, the power role's balanced profile, the load spread evenly;
- eco + consolidation + power-down: the work placed by the real planner with strategy pack
  (services of 0.1-CPU replicas, min_nodes 2, each board offering 0.8 CPU so packed boards keep
  20 % headroom), the eco profile on the boards that run it, the rest powered down at 0 mA.

Every draw comes from the collection's power model (public measurements, docs/power.md): these
are estimates, never measurements. A powered-down board counts 0 mA: its supply is cut, and the
switch's own draw (a ClusterHAT's, a hub's) is the same in every case, so it is left out.

With --wake-rounds N, a lab of three native boards (pico-bench-energy; the default lab should be
down) measures, N times: energy.yml powering the third board down (web packed on two boards),
then deploy.yml needing that board's room for a new service: the deploy's wall time, and the time
from the board's power on (its container's start) until the new service's instance on it is
healthy in the cluster's discovery, seen from another board.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import subprocess
import threading
import time

import benchlib  # noqa: F401  (first: it makes the project's modules importable)

from ansible_collections.pico.cloud.plugins.module_utils._placement import consolidate, validate_services  # noqa: E402
from ansible_collections.pico.cloud.plugins.module_utils._power_model import estimate  # noqa: E402

MB = 1024 ** 2
BOARD = "pizero"
# The power role's profiles, as knobs of the model (roles/power/vars/main.yml).
PROFILES = {
    "balanced": {"hdmi": False, "leds": True, "bluetooth": False, "audio": False},
    "eco": {"hdmi": False, "leds": False, "bluetooth": False, "audio": False},
}
REPLICA_CPU = 0.1
BOARD_CPU_OFFERED = 0.8
SERVICES = 4


def fleet(count: int) -> list[dict]:
    return [{"name": "zero-%02d" % i, "arch": "armv6l", "board": BOARD, "memory": 352 * MB, "cpus": BOARD_CPU_OFFERED,
             "labels": {}, "images": ["app:1"], "alive": True} for i in range(1, count + 1)]


def work(boards: int, load: float) -> list[dict]:
    """Services whose replicas add up to `load` of the fleet's CPU."""
    replicas = max(SERVICES * 2, round(boards * load / REPLICA_CPU))
    per_service = [replicas // SERVICES + (1 if i < replicas % SERVICES else 0) for i in range(SERVICES)]
    return validate_services([{"name": "svc-%d" % i, "image": "app:1", "replicas": n, "strategy": "pack", "min_nodes": 2,
                               "resources": {"memory": "16m", "cpu": REPLICA_CPU}} for i, n in enumerate(per_service)])


def case(boards: int, load: float) -> dict:
    services = work(boards, load)
    placed = consolidate(services, fleet(boards))
    on = [name for name, node in placed["nodes"].items() if node["replicas"]]
    cpu_used = sum(s["replicas"] * REPLICA_CPU for s in services)
    spread_load = cpu_used / boards
    stock = boards * estimate(BOARD, {}, spread_load)["ma"]
    balanced = boards * estimate(BOARD, PROFILES["balanced"], spread_load)["ma"]
    consolidated = sum(estimate(BOARD, PROFILES["eco"], min(1.0, placed["nodes"][name]["cpu_requested"]))["ma"]
                       for name in on)
    return {
        "boards": boards, "load": load, "cpu_in_use": round(cpu_used, 2), "boards_on": len(on),
        # what no placement could beat: the CPU over what a board offers, and min_nodes
        "boards_on_lower_bound": max(2, math.ceil(cpu_used / BOARD_CPU_OFFERED - 1e-9)),
        "boards_powered_down": boards - len(on),
        "stock_ma": round(stock, 1), "balanced_ma": round(balanced, 1), "eco_consolidated_ma": round(consolidated, 1),
        "balanced_below_stock_pct": round(100 * (1 - balanced / stock), 1),
        "eco_consolidated_below_stock_pct": round(100 * (1 - consolidated / stock), 1),
        "estimate": True,
    }


LAB, SUBNET, PORT_BASE = "pico-bench-energy", "172.28.85.0/24", 2800


def lab_service(name: str, port: int, replicas: int, memory: str, min_nodes: int) -> dict:
    return {"name": name, "image": "pico/demo:1.0.0", "replicas": replicas, "port": port, "strategy": "pack",
            "min_nodes": min_nodes, "resources": {"memory": memory, "cpu": 0.2},
            "health": {"type": "http", "path": "/healthz", "interval": 1, "timeout": 1, "retries": 2, "start_period": 30},
            "update": {"min_healthy_time": 1, "healthy_deadline": 90, "drain_time": 1}}


def started_at(node: str) -> float:
    """When the board's container last started (its power on), as Unix time."""
    text = subprocess.run(["docker", "inspect", "--format", "{{.State.StartedAt}}", benchlib.container(LAB, node)],
                          capture_output=True, text=True, check=True).stdout.strip()
    whole, _, fraction = text.rstrip("Z").partition(".")
    stamp = datetime.datetime.fromisoformat(whole).replace(tzinfo=datetime.timezone.utc).timestamp()
    return stamp + float("0." + (fraction or "0")[:6])


def healthy_on(observer: str, service: str, node: str, stop: threading.Event, seen: list[float]) -> None:
    script = (f"import json,urllib.request; print(any(i['node'] == '{node}' for i in json.load(urllib.request.urlopen("
              f"'http://127.0.0.1:8500/v1/services/{service}'))['instances']))")
    while not stop.is_set():
        try:
            if benchlib.node_exec(LAB, observer, "python3", "-c", script).strip() == "True":
                seen.append(time.time())
                return
        except subprocess.CalledProcessError:
            pass
        time.sleep(0.2)


def wake_rounds(rounds: int) -> dict:
    """Power the third board down with energy.yml, then wake it with a deploy that needs its room."""
    web = lab_service("web", 8090, 2, "100m", 2)
    batch = lab_service("batch", 8092, 1, "150m", 1)
    settings = {"pico_agent_services": [], "pico_node_capacity": {"memory": "200m", "cpus": 1}}
    deploy_s, serving_s = [], []
    with benchlib.own_lab(LAB, "native=3", SUBNET, PORT_BASE) as (_, inventory):
        extra = inventory.parent / "energy.json"

        def run(playbook: str, services: list[dict]) -> tuple[float, str]:
            extra.write_text(json.dumps({**settings, "pico_services": services}))
            return benchlib.playbook_output(inventory, playbook, "-e", f"@{extra}")

        run("site.yml", [])
        run("playbooks/deploy.yml", [web])
        for _ in range(rounds):
            _, out = run("playbooks/energy.yml", [web])
            if "Powering down native-3" not in " ".join(out.split()):
                raise SystemExit("bench: energy.yml did not power native-3 down:\n" + out[-3000:])
            stop, seen = threading.Event(), []
            watcher = threading.Thread(target=healthy_on, args=("native-1", "batch", "native-3", stop, seen))
            watcher.start()
            seconds, out = run("playbooks/deploy.yml", [web, batch])
            stop.set()
            watcher.join()
            if "powering up native-3 for room" not in " ".join(out.split()) or not seen:
                raise SystemExit("bench: the deploy did not wake native-3 and serve batch there:\n" + out[-3000:])
            deploy_s.append(seconds)
            serving_s.append(seen[0] - started_at("native-3"))
    return {"lab": "3 native boards (x86_64 containers, not Pi Zeros)",
            "deploy_that_wakes_a_board_s": benchlib.percentiles(deploy_s),
            "power_on_to_serving_in_discovery_s": benchlib.percentiles(serving_s)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wake-rounds", type=int, default=0, help="also measure waking a board on a lab, N times")
    args = parser.parse_args()
    results = [case(boards, load) for boards in (6, 20) for load in (0.1, 0.3, 0.6)]
    wake = wake_rounds(args.wake_rounds) if args.wake_rounds else None
    print(json.dumps({
        "what": "estimated cluster supply current, stock vs balanced vs eco + consolidation + power-down",
        "model": "collection power model (docs/power.md); powered-down boards at 0 mA; planner strategy pack, min_nodes 2",
        "board": BOARD, "replica_cpu": REPLICA_CPU, "board_cpu_offered": BOARD_CPU_OFFERED,
        "cases": results,
        "light_load_target_met": all(r["eco_consolidated_below_stock_pct"] >= 60 for r in results if r["load"] == 0.1),
        "wake": wake,
    }, indent=2))


if __name__ == "__main__":
    main()
