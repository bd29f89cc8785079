#!/bin/bash
# cairn test runner: unit tests (build/tests/test_*), server tests
# (build/tests/srv_*), integration tests (tests/integration/*.sh).
# Usage: tests/run.sh [unit] [server] [integration]   (default: all)
# Each C test binary is a cmocka program; each case counts. Each integration
# script prints "ok <name>" / "not ok <name>" lines for its cases (TAP-like)
# and exits non-zero if any failed. Every program runs under a time limit.
# Ends with one line: "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BUILD
ROOT=$(pwd)
export CAIRN_ROOT=$ROOT
TIERS=("$@")
[ ${#TIERS[@]} -eq 0 ] && TIERS=(unit server integration)
UNIT_TIMEOUT=${UNIT_TIMEOUT:-300}
SERVER_TIMEOUT=${SERVER_TIMEOUT:-600}
INTEG_TIMEOUT=${INTEG_TIMEOUT:-1200}
LOGDIR=$(mktemp -d /tmp/cairn-testlogs-XXXXXX)
passed=0; failed=0; failures=()

run_cmocka() { # name timeout cmd...
  local name=$1 to=$2; shift 2
  local log="$LOGDIR/$name.log"
  mkdir -p "$(dirname "$log")"
  local start=$(date +%s)
  timeout -k 10 "$to" "$@" >"$log" 2>&1
  local rc=$?
  local p f
  p=$(grep -E '^\[  PASSED  \] [0-9]+ test' "$log" | awk '{s+=$4} END {print s+0}')
  f=$(grep -E '^\[  FAILED  \] [0-9]+ test' "$log" | awk '{s+=$4} END {print s+0}')
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  passed=$((passed + p)); failed=$((failed + f))
  local dt=$(( $(date +%s) - start ))
  if [ "$f" -gt 0 ]; then
    echo "FAIL $name ($p passed, $f failed, rc=$rc, ${dt}s)"
    grep -E '^\[  (FAILED|ERROR) +\]|^\[ +FAILED +\]|ERROR|error|Assert|assert' "$log" | head -20 | sed 's/^/    /'
    [ "$rc" = 124 ] && echo "    timed out after ${to}s"
    failures+=("$name")
  else
    echo "ok   $name ($p cases, ${dt}s)"
  fi
}

run_script() { # name timeout script
  local name=$1 to=$2 script=$3
  local log="$LOGDIR/$name.log"
  mkdir -p "$(dirname "$log")"
  local start=$(date +%s)
  timeout -k 15 "$to" bash "$script" >"$log" 2>&1
  local rc=$?
  local p f
  p=$(grep -cE '^ok ' "$log")
  f=$(grep -cE '^not ok ' "$log")
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  if [ "$rc" -eq 0 ] && [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then f=1; echo "    (script reported no cases)" >>"$log"; fi
  passed=$((passed + p)); failed=$((failed + f))
  local dt=$(( $(date +%s) - start ))
  if [ "$f" -gt 0 ]; then
    echo "FAIL $name ($p passed, $f failed, rc=$rc, ${dt}s)"
    grep -E '^not ok|^#' "$log" | head -30 | sed 's/^/    /'
    [ "$rc" = 124 ] && echo "    timed out after ${to}s"
    tail -15 "$log" | sed 's/^/    | /'
    failures+=("$name")
  else
    echo "ok   $name ($p cases, ${dt}s)"
  fi
}

for tier in "${TIERS[@]}"; do
  case $tier in
    unit)
      for t in "$BUILD"/tests/test_*; do
        [ -x "$t" ] || continue
        run_cmocka "unit/$(basename "$t")" "$UNIT_TIMEOUT" "$t"
      done ;;
    server)
      for t in "$BUILD"/tests/srv_*; do
        [ -x "$t" ] || continue
        run_cmocka "server/$(basename "$t")" "$SERVER_TIMEOUT" "$t"
      done ;;
    integration)
      for t in tests/integration/t_*.sh; do
        [ -f "$t" ] || continue
        run_script "integration/$(basename "$t" .sh)" "$INTEG_TIMEOUT" "$t"
      done ;;
    *) echo "unknown tier $tier" >&2; exit 2 ;;
  esac
done
echo "logs: $LOGDIR"
[ ${#failures[@]} -gt 0 ] && echo "failed: ${failures[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
