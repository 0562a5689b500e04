#!/usr/bin/env python3
"""The playbooks at fleet scale, all boards up and with some away, printed as JSON.

    .venv/bin/python bench/fleet.py [--sizes 3,10,30] [--away 1,3] [--keep] [--outputs DIR]

For each size, a lab of its own (pico-bench-fleet: the default lab's 2 Pi Zero and 1 Pi Zero 2 W,
emulated, then native boards: 3 = the default lab, 10 = 3 + 7 native, 30 = 3 + 27 native), and
in one run so the numbers compare:
- the first site.yml; site.yml with nothing to change (median of --runs after one run not timed,
  while the boards settle; each checked changed=0),
  and the CPU seconds the controller spent on it (ansible-playbook and every process it started:
  workers, Mitogen, SSH; not the boards, which share this machine's cores in the lab, so this
  grows with the controller's own work whatever the lab's load), and the CPU seconds the boards
  spent in the same time (their containers' cgroups: in the lab the boards, emulated or native,
  run on the controller's cores; on a real fleet each has its own);
- deploy.yml of a new service with one replica per board; a rolling update of it in three
  batches; status.yml;
- with N boards away (native boards frozen: `docker pause`, a board that lost its network): the
  same, each run checked to exit 4 with the away boards named and unreachable and the others not
  failed; and what a board away costs: the task that first reaches every board ("Find the
  boards that answer"), and the whole run, against the same with every board up.

Targets (the bench exits 1 when one is missed, after printing every number):
- site.yml with nothing to change on 30 boards in at most 3 times its time on 3;
- status.yml on 30 boards within 30 s;
- a board away costs at most one connect timeout (ansible.cfg's `timeout`), not one per task:
  the first task, and the whole run, with boards away at most the timeout plus 20 % (and 5 s)
  longer than with every board up.
Run it with the default lab down: labs share this machine's two cores.
"""
from __future__ import annotations

import argparse
import configparser
import json
import math
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import benchlib  # noqa: E402  (first: it makes the project's modules importable)

REPO = benchlib.REPO
NAME, SUBNET, PORT_BASE = "pico-bench-fleet", "172.28.84.0/24", 3100
EMULATED = "pizero=2,pizero2=1"
PROBE_TASK = "pico.cloud.fleet : Find the boards that answer"
# --outputs: where each run's output is kept (the profiled runs' task times tell where a case
# with boards away spends its time), numbered in the order the runs ran and named by their case.
KEPT = {"outputs": None, "case": ""}


def mix(size: int) -> str:
    return EMULATED if size == 3 else f"{EMULATED},native={size - 3}"


def connect_timeout() -> int:
    config = configparser.ConfigParser()
    config.read(REPO / "ansible.cfg")
    return config.getint("defaults", "timeout", fallback=10)


def service(replicas: int, image: str = "pico/demo:1.0.0") -> dict:
    return {"name": "fleetbench", "image": image, "replicas": replicas, "port": 8290, "strategy": "spread",
            "resources": {"memory": "16m", "cpu": 0.05},
            "health": {"type": "http", "path": "/healthz", "interval": 2, "start_period": 60},
            "update": {"batch_size": math.ceil(replicas / 3), "min_healthy_time": 2, "healthy_deadline": 180,
                       "drain_time": 1}}


def declare(inventory: Path, replicas: int = 0, image: str = "pico/demo:1.0.0") -> None:
    """The cluster's services, as a site keeps them in group variables: every run reads them."""
    declared = [service(replicas, image)] if replicas else []
    (inventory.parent / "bench-services.json").write_text(json.dumps({"pico_services": declared}))


def controller_cpu_s() -> float:
    """CPU seconds of the processes this bench started and waited for, and of theirs."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def run(inventory: Path, *args: str, profile: bool = False) -> tuple[float, int, str, float]:
    """Seconds, exit code, output and controller CPU seconds of one run (any exit code: the caller judges it)."""
    args = (*args, "-e", f"@{inventory.parent / 'bench-services.json'}")
    env = {**benchlib.os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
           "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(inventory.parent / "facts")}
    if profile:
        env.update(ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks", PROFILE_TASKS_TASK_OUTPUT_LIMIT="all")
    start, cpu = time.monotonic(), controller_cpu_s()
    result = subprocess.run([benchlib.ANSIBLE_PLAYBOOK, "-i", str(inventory), *args], cwd=REPO, env=env,
                            capture_output=True, text=True, check=False)
    if KEPT["outputs"]:
        number = len(list(KEPT["outputs"].glob("*.log"))) + 1
        name = f"{number:03d}-{KEPT['case']}-{Path(args[0]).stem}{'-profiled' if profile else ''}.log"
        (KEPT["outputs"] / name).write_text(result.stdout + result.stderr)
    return time.monotonic() - start, result.returncode, result.stdout + result.stderr, controller_cpu_s() - cpu


def judged(inventory: Path, boards: list[str], away: list[str], *args: str, unchanged: bool = False,
           profile: bool = False) -> tuple[float, str, float]:
    """A run that must reach every board but `away`: exit 0 (4 with boards away), none failed,
    the away ones unreachable and named; with unchanged, changed=0 on every board reached."""
    seconds, code, output, cpu = run(inventory, *args, profile=profile)
    counts = benchlib.recap(output)
    reached = [b for b in boards if b not in away]
    problems = []
    if code != (4 if away else 0):
        problems.append(f"exit {code}")
    for board in reached:
        c = counts.get(board)
        if not c or c["failed"] or c["unreachable"] or (unchanged and c["changed"]):
            problems.append(f"{board}: {c}")
    for board in away:
        if (counts.get(board) or {}).get("unreachable") != 1 or board not in output.split("PLAY RECAP")[0]:
            problems.append(f"{board} away but not unreachable and named")
    if problems:
        sys.exit(f"bench: ansible-playbook {' '.join(args)}: {'; '.join(problems)}\n{failures(output)}\n"
                 f"{changed_tasks(output)}\n{output[-4000:]}")
    return seconds, output, cpu


def _task_lines(output: str, starts: tuple[str, ...]) -> list[tuple[str, str]]:
    """(task, line) for each line of the output that starts with one of `starts`."""
    found, task = [], ""
    for line in output.splitlines():
        if line.startswith(("TASK [", "RUNNING HANDLER [")):
            task = line.rstrip(" *")
        elif line.startswith(starts):
            found.append((task, line))
    return found


def failures(output: str) -> str:
    """What each failed task said (the tail alone shows only the recap of a long run)."""
    lines = [f"{task}: {line[:1500]}" for task, line in _task_lines(output, ("fatal: [", "failed: [", "[ERROR]"))]
    return "failed:\n" + "\n".join(lines) if lines else "no task reported failed"


def changed_tasks(output: str) -> str:
    """The tasks that reported changed, with the hosts: what a run that should change nothing did."""
    lines = [f"{task}: {line.split(']')[0]}]" for task, line in _task_lines(output, ("changed: [",))]
    return "changed:\n" + "\n".join(lines) if lines else "no task reported changed"


def task_seconds(output: str, task: str) -> float:
    """A task's time in profile_tasks' recap."""
    found = re.search(rf"^{re.escape(task)} -+ ([0-9.]+)s$", output, re.M)
    if not found:
        sys.exit(f"bench: no time for task {task!r} in the run's profile")
    return float(found.group(1))


def measure(inventory: Path, boards: list[str], away: list[str], runs: int) -> dict:
    """site.yml with nothing to change, status.yml, a new service on every board reached, its update."""
    reached = len(boards) - len(away)
    containers = [benchlib.container(NAME, board) for board in boards]
    # Not timed: after the first site.yml the boards still load and start what it gave them (the
    # emulated ones for most of a 3-board run), which a run with nothing to change would pay for.
    judged(inventory, boards, away, "site.yml", unchanged=True)
    noop, noop_cpu, noop_boards_cpu = [], [], []
    for _ in range(runs):
        boards_before = benchlib.containers_cpu_s(containers)
        seconds, _, cpu = judged(inventory, boards, away, "site.yml", unchanged=True)
        boards_after = benchlib.containers_cpu_s(containers)
        noop.append(seconds)
        noop_cpu.append(cpu)
        if boards_before is not None and boards_after is not None:
            noop_boards_cpu.append(boards_after - boards_before)
    profiled, output, _ = judged(inventory, boards, away, "site.yml", unchanged=True, profile=True)
    status = judged(inventory, boards, away, "playbooks/status.yml")[0]
    declare(inventory, reached)
    deploy = judged(inventory, boards, away, "playbooks/deploy.yml")[0]
    declare(inventory, reached, "pico/demo:2.0.0")
    update = judged(inventory, boards, away, "playbooks/deploy.yml")[0]
    # Back to no service, so the next measurement deploys a new one.
    declare(inventory)
    judged(inventory, boards, away, "playbooks/deploy.yml")
    return {"site_unchanged_s": round(statistics.median(noop), 1), "site_unchanged_runs_s": [round(s, 1) for s in noop],
            "site_unchanged_controller_cpu_s": round(statistics.median(noop_cpu), 1),
            "site_unchanged_boards_cpu_s": round(statistics.median(noop_boards_cpu), 1) if noop_boards_cpu else None,
            "site_unchanged_profiled_s": round(profiled, 1), "first_task_s": task_seconds(output, PROBE_TASK),
            "status_s": round(status, 1), "deploy_new_service_s": round(deploy, 1),
            "rolling_update_s": round(update, 1), "replicas": reached}


def one_size(size: int, away_counts: list[int], runs: int, keep: bool) -> dict:
    with benchlib.own_lab(NAME, mix(size), SUBNET, PORT_BASE, keep=keep) as (lab, inventory):
        boards = [node.name for node in lab.load_spec().nodes]
        KEPT["case"] = f"{size}-boards"
        declare(inventory)
        first = judged(inventory, boards, [], "site.yml")[0]
        result = {"boards": size, "mix": mix(size), "first_site_s": round(first, 1),
                  "all_up": measure(inventory, boards, [], runs)}
        natives = [b for b in boards if b.startswith("native-")]
        for count in away_counts:
            away = natives[-count:] if count <= len(natives) else boards[1:1 + count]
            if count >= size:
                continue
            KEPT["case"] = f"{size}-boards-{count}-away"
            for board in away:
                subprocess.run(["docker", "pause", benchlib.container(NAME, board)], check=True, capture_output=True)
            try:
                result[f"{count}_away"] = dict(measure(inventory, boards, away, runs), away=away)
            finally:
                for board in away:
                    subprocess.run(["docker", "unpause", benchlib.container(NAME, board)], check=False, capture_output=True)
            # Back: they rejoin by themselves; one site.yml converges them (they missed the service's
            # removal) and changes nothing elsewhere, one deploy gives them the plan.
            time.sleep(15)
            seconds, output, _ = judged(inventory, boards, [], "site.yml")
            elsewhere = [b for b, c in benchlib.recap(output).items() if c["changed"] and b not in away]
            if elsewhere:
                sys.exit(f"bench: site.yml after boards came back changed {elsewhere} too:\n{output[-3000:]}")
            judged(inventory, boards, [], "playbooks/deploy.yml")
            result[f"{count}_away"]["rejoin_site_s"] = round(seconds, 1)
        return result


def targets(sizes: dict[int, dict], timeout: int) -> list[dict]:
    checks = []
    if 3 in sizes and 30 in sizes:
        ratio = sizes[30]["all_up"]["site_unchanged_s"] / sizes[3]["all_up"]["site_unchanged_s"]
        checks.append({"target": "site.yml with nothing to change on 30 boards within 3x its 3-board time",
                       "value": round(ratio, 2), "limit": 3.0, "met": ratio <= 3.0})
    if 30 in sizes:
        status = sizes[30]["all_up"]["status_s"]
        checks.append({"target": "status.yml on 30 boards within 30 s", "value": status, "limit": 30, "met": status <= 30})
    for size, result in sizes.items():
        for key, away in result.items():
            if not key.endswith("_away"):
                continue
            allowed = max(timeout * 1.2, timeout + 5)
            # What the boards away cost: the time beyond the same run with every board up. (The
            # first task's own time is the all-up time or the timeout, whichever ends later: a board
            # whose worker starts last, after the first `forks` boards, times out that much later.)
            first = away["first_task_s"] - result["all_up"]["first_task_s"]
            extra = away["site_unchanged_profiled_s"] - result["all_up"]["site_unchanged_profiled_s"]
            checks.append({"target": f"{size} boards, {key.replace('_', ' ')}: the first task at most one connect timeout longer",
                           "value": round(first, 1), "limit": round(allowed, 1), "met": first <= allowed})
            checks.append({"target": f"{size} boards, {key.replace('_', ' ')}: site.yml at most one connect timeout longer",
                           "value": round(extra, 1), "limit": round(allowed, 1), "met": extra <= allowed})
    return checks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="3,10,30", help="lab sizes (default: %(default)s; up to 32)")
    parser.add_argument("--away", default="1,3", help="boards away, measured for every size above it (default: %(default)s)")
    parser.add_argument("--runs", type=int, default=2, help="site.yml runs with nothing to change, median reported")
    parser.add_argument("--keep", action="store_true", help="leave the last lab up")
    parser.add_argument("--outputs", type=Path, help="keep every run's output in this directory")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    away = [int(a) for a in args.away.split(",") if a]
    if any(not 3 <= s <= 32 for s in sizes) or args.runs < 1:
        parser.error("sizes are 3 to 32 boards (the lab's), runs at least 1")
    timeout = connect_timeout()
    if args.outputs:
        args.outputs.mkdir(parents=True, exist_ok=True)
        KEPT["outputs"] = args.outputs
    results = {}
    for size in sizes:
        results[size] = one_size(size, away, args.runs, args.keep and size == sizes[-1])
        # Each size as it ends (a long run stopped later keeps what it measured).
        print(json.dumps({"size_done": size, **results[size]}), file=sys.stderr, flush=True)
    base = results.get(min(results))["all_up"]
    growth = {size: {key: round(value / base[key], 2) for key, value in r["all_up"].items()
                     if key.endswith("_s") and isinstance(value, (int, float)) and base.get(key)}
              for size, r in results.items()}
    checks = targets(results, timeout)
    print(json.dumps({"connect_timeout_s": timeout, "sizes": results, "growth_vs_smallest": growth,
                      "targets": checks}, indent=2))
    return 0 if all(check["met"] for check in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
