#!/usr/bin/env bash
# The whole suite, fastest checks first; prints each step's time and a closing summary line.
set -uo pipefail
# A skipped test could not fail: skips off the allow-list in tests/skip_policy.py fail the suite.
export PICO_STRICT_SKIPS=1
cd "$(dirname "${BASH_SOURCE[0]}")/.."

steps=(unit lint syntax collection integration molecule-default)
passed=0 failed=0 start=$SECONDS
for step in "${steps[@]}"; do
  t0=$SECONDS
  echo "=== make $step"
  if make --no-print-directory "$step"; then
    passed=$((passed + 1)); echo "=== $step passed in $((SECONDS - t0)) s"
  else
    failed=$((failed + 1)); echo "=== $step FAILED after $((SECONDS - t0)) s"
  fi
done
echo "=== suite took $((SECONDS - start)) s"
echo "steps: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
