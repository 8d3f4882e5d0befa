#!/usr/bin/env bash
# Sets up a fresh machine (see setup.sh; with --browser, for the web page's test in headless Chromium) and runs every
# test of the solution.
# Ends with the line "N passed, N failed" summed over all test projects.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
"$root/scripts/setup.sh" --browser || exit 1

log=$(mktemp)
trap 'rm -f "$log"' EXIT
dotnet test MiniGemini.Core.sln -c Release --no-restore --logger "console;verbosity=normal" "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

# dotnet test prints one summary per test project: "Passed!  - Failed: 0, Passed: 42, Skipped: 1, Total: 43" with the
# minimal console logger, or "Total tests: 43 / Passed: 42 / Failed: 0 / Skipped: 1" lines with the normal one.
read -r passed failed skipped < <(awk '
  /(Passed|Failed)! +- +Failed: / {
    for (i = 1; i <= NF; i++) {
      if ($i == "Failed:")  { f += $(i+1) + 0 }
      if ($i == "Passed:")  { p += $(i+1) + 0 }
      if ($i == "Skipped:") { s += $(i+1) + 0 }
    }
    next
  }
  /^Total tests: /        { summary = 1; next }
  summary && /^ +Passed: /  { p += $2; next }
  summary && /^ +Failed: /  { f += $2; next }
  summary && /^ +Skipped: / { s += $2; next }
  summary && /^ +Total time: / { summary = 0 }
  END { printf "%d %d %d\n", p, f, s }' "$log")
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo "${skipped} skipped"
echo "${passed} passed, ${failed} failed"
exit "$status"
