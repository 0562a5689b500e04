#!/usr/bin/env bash
# Runs each argument, a command, one after the other, all of them even if one fails; fails if any
# failed. A lane of tests/run-together.sh.
set -uo pipefail
failed=0
for command in "$@"; do
  bash -c "$command" || failed=1
done
exit "$failed"
