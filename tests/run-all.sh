#!/usr/bin/env bash
# The whole suite: prints each step's time and a closing summary line.
#
# Stages run one after the other, fastest checks first. Within a stage, lanes (split by "|") run
# side by side, each lane's steps one after the other, so the CPU-bound work (Ansible, emulated
# boards) overlaps with work that mostly waits (gossip timers, hold-downs, boots) on a 2-core
# machine. A lane runs all its steps even if one fails; its output is printed once the stage ends.
set -uo pipefail
# A skipped test could not fail: skips off the allow-list in tests/skip_policy.py fail the suite.
export PICO_STRICT_SKIPS=1
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Molecule default is the longest lane. Its converge and idempotence on emulated boards are the
# most CPU-hungry part of the suite (3 times slower beside another converge), so the lane beside
# it opens with the chaos suite, which mostly waits; the lab's tests run beside light steps too.
stages=(
  "unit | lint syntax"
  "integration-lab | collection integration-agent"
  "molecule-default | chaos molecule-containers fleet"
)

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
  done
}

start=$SECONDS
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
echo "=== suite took $((SECONDS - start)) s"
echo "steps: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
