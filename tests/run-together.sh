#!/usr/bin/env bash
# Runs each argument, a command, at the same time as the others, each into a log of its own; then
# prints the logs in argument order and fails if any command failed. `make integration` runs the
# lab's tests (CPU-bound: Ansible and emulated boards) beside the agent's loopback and
# network-namespace tests, which mostly wait on gossip timers and hold-downs.
set -uo pipefail
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
pids=()
index=0
for command in "$@"; do
  bash -c "$command" >"$logs/$index" 2>&1 &
  pids+=($!)
  index=$((index + 1))
done
failed=0 index=0
for command in "$@"; do
  wait "${pids[$index]}"; status=$?
  echo "--- $command (exit $status)"
  cat "$logs/$index"
  [ "$status" -eq 0 ] || failed=1
  index=$((index + 1))
done
exit "$failed"
