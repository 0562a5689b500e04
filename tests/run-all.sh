#!/usr/bin/env bash
# The whole suite: prints each step's time and a closing summary line.
#
# Stages run one after the other. Within a stage, lanes (split by "|") run side by side, each
# lane's steps one after the other, so the CPU-bound work (Ansible, emulated boards) overlaps
# with work that mostly waits (gossip timers, hold-downs, boots) on a 2-core machine. A lane runs
# all its steps even if one fails; a line says so as each step ends, and a lane's output is
# printed once the stage ends.
set -uo pipefail
# A skipped test could not fail: skips off the allow-list in tests/skip_policy.py fail the suite.
export PICO_STRICT_SKIPS=1
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# One stage, four lanes started together, no barrier between them. The suite is bound by the
# machine's CPU (busy 86% of a 1387 s run, idle once the lanes ran out of work unevenly), so what
# counts is that every lane ends at about the same time: Molecule default (converge, idempotence
# and verify on emulated boards) is the longest chain and has a lane of its own; the lab's steps
# and the fleet's, each about as long under that load, lead the next two; the chaos suite and the
# agent's tests, which mostly wait out partitions, lost links and gossip timers, share the fourth
# with Molecule containers (measured, step by step: docs/measurements.md).
stages=(
  "lint integration-lab collection-oldest | molecule-default | syntax unit collection fleet | chaos integration-agent molecule-containers"
)

cpu_busy_idle() {  # "busy idle" jiffies of all CPUs since boot (/proc/stat)
  local _ user nice system idle iowait irq softirq steal
  read -r _ user nice system idle iowait irq softirq steal _ </proc/stat
  echo "$((user + nice + system + irq + softirq + steal)) $((idle + iowait))"
}

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

run_lane() {  # run_lane LOG STEP...: each step, timed, into LOG; one "=== step passed/FAILED" line each
  local log=$1 step t0
  shift
  for step in "$@"; do
    t0=$SECONDS
    echo "=== make $step" >>"$log"
    if make --no-print-directory "$step" >>"$log" 2>&1; then
      echo "=== step $step passed in $((SECONDS - t0)) s" >>"$log"
    else
      echo "=== step $step FAILED after $((SECONDS - t0)) s" >>"$log"
    fi
    # Progress at once (a lane's whole output comes when the stage ends).
    echo "--- at $((SECONDS - start)) s: $(tail -n 1 "$log" | cut -c5-)"
  done
}

start=$SECONDS
read -r busy0 idle0 < <(cpu_busy_idle)
for stage in "${stages[@]}"; do
  t0=$SECONDS
  IFS='|' read -ra lanes <<<"$stage"
  pids=() index=0
  for lane in "${lanes[@]}"; do
    # shellcheck disable=SC2086  # a lane is a list of step names
    run_lane "$logs/lane$index" $lane &
    pids+=($!)
    index=$((index + 1))
  done
  wait "${pids[@]}"
  for index in "${!lanes[@]}"; do
    cat "$logs/lane$index"
    cat "$logs/lane$index" >>"$logs/all"
    rm -f "$logs/lane$index"
  done
  echo "=== stage '$stage' took $((SECONDS - t0)) s"
done
passed=$(grep -c "^=== step .* passed in " "$logs/all")
failed=$(grep -c "^=== step .* FAILED after " "$logs/all")
read -r busy1 idle1 < <(cpu_busy_idle)
busy=$((busy1 - busy0)) idle=$((idle1 - idle0))
echo "=== suite took $((SECONDS - start)) s, CPU busy $((100 * busy / (busy + idle + 1)))% of the time"
echo "steps: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
