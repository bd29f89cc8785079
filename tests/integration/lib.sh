# Shared library of the cairn integration tests. Source it from a t_*.sh
# script:  . "$(dirname "$0")/lib.sh"
#
# What it gives a script:
#   - $T, a private temp dir removed at exit (kept when CAIRN_KEEP_TMP=1);
#   - start_metad / stop_metad / kill_metad / restart_metad (same port, same
#     data dir), start_chunkd / stop_chunkd / start_cluster N, wait_cluster N;
#   - mount_fs / umount_fs (cairn-mount in the foreground, one pid per mount);
#   - ok / fail / skip / check, and finish (summary line, exit code);
#   - an EXIT trap that unmounts every mount and stops every process this
#     script started, by pid only (other tests may run on the same machine).
# Every wait is bounded. Servers listen on 127.0.0.1 only.
#
# Output (read by tests/run.sh): one "ok NAME" or "not ok NAME" line per
# case, "# ..." lines for reasons and measurements.

set -u
set -o pipefail

ROOT=${CAIRN_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BUILD=${BUILD:-build}
case $BUILD in
  /*) BIN=$BUILD/bin ;;
  *) BIN=$ROOT/$BUILD/bin ;;
esac
METAD_BIN=$BIN/cairn-metad
CHUNKD_BIN=$BIN/cairn-chunkd
MOUNT_BIN=$BIN/cairn-mount

T=$(mktemp -d "${TMPDIR:-/tmp}/cairn-it-$(basename "$0" .sh)-XXXXXX") || exit 1
PASSED=0
FAILED=0
SKIPPED=0
declare -a OWN_PIDS=()       # every daemon pid this script started
declare -A MOUNT_PIDS=()     # mountpoint -> cairn-mount pid
declare -a CHUNK_PIDS=() CHUNK_ADDRS=() CHUNK_PORTS=()
METAD_PID='' METAD_ADDR='' METAD_PORT=''
METAD_DATA=$T/metad
METAD_N=0                    # how many times metad was started (addr file names)
declare -a CHUNK_N=()

# Timeouts in seconds; each wait below is bounded by one of these.
T_ADDR=${T_ADDR:-20}         # daemon writes its addr file
T_CLUSTER=${T_CLUSTER:-30}   # metad lists the chunk servers up
T_MOUNT=${T_MOUNT:-20}       # mountpoint appears
T_UMOUNT=${T_UMOUNT:-60}     # cairn-mount exits after fusermount3 -u
T_STOP=${T_STOP:-20}         # daemon exits after SIGTERM

# ---------------------------------------------------------------- reporting

note() { # text...: a diagnostic line
  local l
  while IFS= read -r l; do echo "# $l"; done <<<"$*"
}

ok() { # NAME [# SKIP ...]
  echo "ok $*"
  PASSED=$((PASSED + 1))
}

fail() { # NAME REASON...
  local name=$1
  shift
  [ $# -gt 0 ] && note "$*"
  echo "not ok $name"
  FAILED=$((FAILED + 1))
}

skip() { # NAME REASON
  echo "ok $1 # SKIP $2"
  SKIPPED=$((SKIPPED + 1))
  PASSED=$((PASSED + 1))
}

# check NAME cmd...: ok if cmd exits 0, else not ok with the tail of its output.
check() {
  local name=$1
  shift
  local out=$T/.check.out
  if "$@" >"$out" 2>&1; then
    ok "$name"
  else
    local rc=$?
    fail "$name" "command failed (exit $rc): $*
$(tail -n 15 "$out")"
  fi
}

# expect_eq NAME WHAT EXPECTED ACTUAL
expect_eq() {
  if [ "$3" == "$4" ]; then
    ok "$1"
  else
    fail "$1" "$2: expected '$3', got '$4'"
  fi
}

# show the last lines of every daemon log (after a failure)
dump_logs() {
  local f
  for f in "$T"/logs/*.log; do
    [ -s "$f" ] || continue
    echo "--- $(basename "$f") (last lines)"
    tail -n 8 "$f"
  done
}

finish() {
  [ "$FAILED" -gt 0 ] && dump_logs
  local sk=
  [ "$SKIPPED" -gt 0 ] && sk=", $SKIPPED skipped"
  echo "# $(basename "$0" .sh): $PASSED passed, $FAILED failed$sk (${SECONDS}s)"
  [ "$FAILED" -eq 0 ]
  exit $?
}

# Abort the whole script (setup failed, nothing more can be tested).
bail() { # NAME REASON
  fail "$1" "$2"
  finish
}

# ---------------------------------------------------------------- waiting

# wait_until SECONDS cmd...: poll cmd every 0.1 s; 0 once it succeeds, 1 on timeout
wait_until() {
  local limit=$1
  shift
  local end=$((SECONDS + limit))
  while :; do
    "$@" && return 0
    [ "$SECONDS" -ge "$end" ] && return 1
    sleep 0.1
  done
}

# a pid that is gone or a zombie counts as dead
pid_alive() {
  local st
  [ -r "/proc/$1/stat" ] || return 1
  st=$(cut -d')' -f2 "/proc/$1/stat" 2>/dev/null | awk '{print $1}')
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}
pid_dead() { ! pid_alive "$1"; }

# stop_pid PID SECONDS [SIG]: signal, wait bounded, SIGKILL as a last resort.
# Returns 0 if it exited by itself after SIG, 1 if it had to be killed; its
# exit status is left in LAST_STATUS (128+n for a signal).
stop_pid() {
  local pid=$1 limit=$2 sig=${3:-TERM}
  [ -n "$pid" ] || return 0
  LAST_STATUS=
  if pid_alive "$pid"; then
    kill "-$sig" "$pid" 2>/dev/null
    wait_until "$limit" pid_dead "$pid"
  fi
  if pid_dead "$pid"; then
    wait "$pid" 2>/dev/null
    LAST_STATUS=$?
    return 0
  fi
  note "pid $pid did not exit within ${limit}s of SIG$sig; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null
  wait_until 10 pid_dead "$pid"
  wait "$pid" 2>/dev/null
  LAST_STATUS=137
  return 1
}

# ---------------------------------------------------------------- servers

mkdir -p "$T/logs"

# addr_port HOST:PORT -> PORT
addr_port() { echo "${1##*:}"; }

# wait for an addr file written by a daemon (pid must stay alive)
_wait_addr() { # FILE PID
  [ -s "$1" ] && return 0
  pid_alive "$2" || return 2
  return 1
}
_await_addr() { # FILE PID WHAT
  local end=$((SECONDS + T_ADDR)) r
  while :; do
    _wait_addr "$1" "$2"
    r=$?
    [ $r -eq 0 ] && return 0
    if [ $r -eq 2 ]; then
      note "$3 (pid $2) exited before writing $1"
      return 1
    fi
    if [ "$SECONDS" -ge "$end" ]; then
      note "$3 (pid $2) wrote no address to $1 within ${T_ADDR}s"
      return 1
    fi
    sleep 0.1
  done
}

# start_metad [--format] [extra args...]: starts cairn-metad on $METAD_DATA.
# The first start picks a free port; later starts reuse $METAD_PORT.
start_metad() {
  local listen=127.0.0.1:0
  [ -n "$METAD_PORT" ] && listen=127.0.0.1:$METAD_PORT
  mkdir -p "$METAD_DATA"
  METAD_N=$((METAD_N + 1))
  local af=$T/metad.addr.$METAD_N
  rm -f "$af"
  "$METAD_BIN" --data "$METAD_DATA" --listen "$listen" --addr-file "$af" "$@" \
    >>"$T/logs/metad.log" 2>&1 &
  METAD_PID=$!
  OWN_PIDS+=("$METAD_PID")
  _await_addr "$af" "$METAD_PID" cairn-metad || return 1
  METAD_ADDR=$(head -n1 "$af")
  if [ -n "$METAD_PORT" ] && [ "$(addr_port "$METAD_ADDR")" != "$METAD_PORT" ]; then
    note "cairn-metad restarted on $METAD_ADDR, expected port $METAD_PORT"
    return 1
  fi
  METAD_PORT=$(addr_port "$METAD_ADDR")
  return 0
}

stop_metad() { # clean stop (SIGTERM); 1 if it needed SIGKILL
  local pid=$METAD_PID
  METAD_PID=
  stop_pid "$pid" "$T_STOP" TERM
}

kill_metad() { # crash (SIGKILL)
  local pid=$METAD_PID
  METAD_PID=
  [ -n "$pid" ] || return 0
  kill -KILL "$pid" 2>/dev/null
  wait_until 10 pid_dead "$pid"
  wait "$pid" 2>/dev/null
  return 0
}

restart_metad() { # [--kill]: stop metad and start it again on the same port and data
  if [ "${1:-}" = --kill ]; then kill_metad; else stop_metad; fi
  start_metad
}

# start_chunkd I [PORT]: starts chunk server I (data $T/chunk$I); PORT reuses a port
start_chunkd() {
  local i=$1 port=${2:-0}
  mkdir -p "$T/chunk$i"
  CHUNK_N[$i]=$(( ${CHUNK_N[$i]:-0} + 1 ))
  local af=$T/chunk$i.addr.${CHUNK_N[$i]}
  rm -f "$af"
  "$CHUNKD_BIN" --data "$T/chunk$i" --listen "127.0.0.1:$port" --addr-file "$af" \
    --meta "$METAD_ADDR" --heartbeat-interval 1s >>"$T/logs/chunkd$i.log" 2>&1 &
  CHUNK_PIDS[$i]=$!
  OWN_PIDS+=("${CHUNK_PIDS[$i]}")
  _await_addr "$af" "${CHUNK_PIDS[$i]}" "cairn-chunkd $i" || return 1
  CHUNK_ADDRS[$i]=$(head -n1 "$af")
  if [ "$port" != 0 ] && [ "$(addr_port "${CHUNK_ADDRS[$i]}")" != "$port" ]; then
    note "cairn-chunkd $i restarted on ${CHUNK_ADDRS[$i]}, expected port $port"
    return 1
  fi
  CHUNK_PORTS[$i]=$(addr_port "${CHUNK_ADDRS[$i]}")
}

stop_chunkd() { # I
  local pid=${CHUNK_PIDS[$1]:-}
  CHUNK_PIDS[$1]=
  stop_pid "$pid" "$T_STOP" TERM
}

chunk_count() { echo "${#CHUNK_ADDRS[@]}"; }

metrics() { curl -s --max-time 5 "http://$METAD_ADDR/metrics"; }

# metric NAME: the value of one sample line of metad's /metrics ("" if absent)
metric() {
  metrics | awk -v n="$1" '$1 == n { print $2; exit }'
}

# chunk_metric_sum NAME: sum of one sample over every running chunk server
chunk_metric_sum() {
  local i a sum=0 v
  for i in "${!CHUNK_ADDRS[@]}"; do
    a=${CHUNK_ADDRS[$i]}
    v=$(curl -s --max-time 5 "http://$a/metrics" | awk -v n="$1" '$1 == n { print $2; exit }')
    sum=$((sum + ${v:-0}))
  done
  echo "$sum"
}

# every chunk server's address is in the cluster map and metad counts N up
_cluster_ready() { # N
  local body=$T/.cluster.bin i up
  curl -s --max-time 5 -o "$body" "http://$METAD_ADDR/v1/cluster" || return 1
  for i in "${!CHUNK_ADDRS[@]}"; do
    [ "$(grep -c -a -F "${CHUNK_ADDRS[$i]}" "$body")" -ge 1 ] || return 1
  done
  up=$(metric 'cairn_metad_servers{state="up"}')
  [ "${up:-0}" = "$1" ]
}

wait_cluster() { # N
  if ! wait_until "$T_CLUSTER" _cluster_ready "$1"; then
    note "metad $METAD_ADDR does not list $1 chunk servers up within ${T_CLUSTER}s" \
      "(up: $(metric 'cairn_metad_servers{state="up"}'), addresses: ${CHUNK_ADDRS[*]})"
    return 1
  fi
}

# start_cluster N [metad args...]: format a new filesystem, N chunk servers
start_cluster() {
  local n=$1 i
  shift
  start_metad --format "$@" || return 1
  for ((i = 1; i <= n; i++)); do
    start_chunkd "$i" || return 1
  done
  wait_cluster "$n"
}

# stop every server cleanly (SIGTERM) and start them again on the same ports
restart_cluster() {
  local i rc=0
  for i in "${!CHUNK_PIDS[@]}"; do stop_chunkd "$i" || rc=1; done
  stop_metad || rc=1
  start_metad || return 1
  for i in "${!CHUNK_PORTS[@]}"; do start_chunkd "$i" "${CHUNK_PORTS[$i]}" || return 1; done
  wait_cluster "${#CHUNK_PORTS[@]}" || return 1
  return $rc
}

# ---------------------------------------------------------------- mounts

# mount_fs MNT CACHE_DIR [cairn-mount options...]: mounts in the foreground
# (pid in MOUNT_PIDS[MNT]) and waits until MNT is a mountpoint.
mount_fs() {
  local mnt=$1 cache=$2
  shift 2
  mkdir -p "$mnt" "$cache"
  mnt=$(cd "$mnt" && pwd)
  local log=$T/logs/mount-$(basename "$mnt").log
  "$MOUNT_BIN" -f --cache-dir "$cache" "$@" "$METAD_ADDR" "$mnt" >>"$log" 2>&1 &
  local pid=$!
  MOUNT_PIDS[$mnt]=$pid
  local end=$((SECONDS + T_MOUNT))
  while ! mountpoint -q "$mnt"; do
    if pid_dead "$pid"; then
      note "cairn-mount (pid $pid) exited before $mnt was mounted:
$(tail -n 5 "$log")"
      unset "MOUNT_PIDS[$mnt]"
      wait "$pid" 2>/dev/null
      return 1
    fi
    if [ "$SECONDS" -ge "$end" ]; then
      note "$mnt is not a mountpoint ${T_MOUNT}s after starting cairn-mount (pid $pid)"
      return 1
    fi
    sleep 0.1
  done
}

mount_pid() { # MNT
  local mnt
  mnt=$(cd "$1" && pwd)
  echo "${MOUNT_PIDS[$mnt]:-}"
}

# umount_fs MNT: fusermount3 -u, then wait for cairn-mount to exit. Returns 1
# if the clean path failed (and the last resorts were used).
umount_fs() {
  local mnt=$1 rc=0
  mnt=$(cd "$mnt" 2>/dev/null && pwd) || mnt=$1
  local pid=${MOUNT_PIDS[$mnt]:-}
  if mountpoint -q "$mnt"; then
    # "busy" right after the last close can be transient: retry briefly
    if ! wait_until 10 timeout 10 fusermount3 -u "$mnt" 2>/dev/null; then
      note "fusermount3 -u $mnt failed: $(timeout 10 fusermount3 -u "$mnt" 2>&1)"
      rc=1
      timeout 10 umount -l "$mnt" 2>/dev/null
    fi
  fi
  if [ -n "$pid" ]; then
    if ! wait_until "$T_UMOUNT" pid_dead "$pid"; then
      note "cairn-mount (pid $pid) still running ${T_UMOUNT}s after unmounting $mnt; SIGKILL"
      kill -KILL "$pid" 2>/dev/null
      wait_until 10 pid_dead "$pid"
      rc=1
    fi
    wait "$pid" 2>/dev/null
    local st=$?
    if [ $rc -eq 0 ] && [ $st -ne 0 ]; then
      note "cairn-mount (pid $pid) exited with status $st after unmounting $mnt"
      rc=1
    fi
  fi
  mountpoint -q "$mnt" && { timeout 10 umount -l "$mnt" 2>/dev/null; rc=1; }
  unset "MOUNT_PIDS[$mnt]"
  return $rc
}

# ---------------------------------------------------------------- helpers

# tree_sums DIR: "sha256  relative/path" of every regular file, sorted
tree_sums() {
  (cd "$1" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum)
}

# tree_listing DIR: type, mode, owner, size, link count and path of files and
# symlinks (with the target), type, mode, owner and path of directories (whose
# sizes and link counts are file system specific), sorted
tree_listing() {
  (cd "$1" && {
    find . -mindepth 1 \( -type f -o -type l \) -printf '%y %m %U:%G %s %n %P %l\n'
    find . -mindepth 1 -type d -printf '%y %m %U:%G %P\n'
  } | LC_ALL=C sort)
}

# user.* xattrs of every entry below DIR, hex-encoded, stable order
tree_xattrs() {
  (cd "$1" && getfattr -R -P -h -d -e hex -m '^user\.' . 2>&1 | awk '
    /^# file: / { f = $0; next }
    /^$/ { next }
    { print f " " $0 }' | LC_ALL=C sort)
}

# elapsed T0: seconds since T0 (a `date +%s.%N` value), 2 decimals
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'; }

# peak resident memory (VmHWM) of a pid in KiB
vm_hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }

# ---------------------------------------------------------------- cleanup

_cleanup() {
  local rc=$? m p
  trap - EXIT INT TERM HUP
  cd /
  for m in "${!MOUNT_PIDS[@]}"; do
    if mountpoint -q "$m"; then
      timeout 10 fusermount3 -u "$m" 2>/dev/null || timeout 10 umount -l "$m" 2>/dev/null
    fi
  done
  for m in "${!MOUNT_PIDS[@]}"; do
    p=${MOUNT_PIDS[$m]}
    wait_until 10 pid_dead "$p" || kill -KILL "$p" 2>/dev/null
  done
  for p in "${OWN_PIDS[@]}"; do
    pid_alive "$p" && kill -TERM "$p" 2>/dev/null
  done
  for p in "${OWN_PIDS[@]}"; do
    wait_until 10 pid_dead "$p" || kill -KILL "$p" 2>/dev/null
  done
  # never rm -rf through a live mount
  if awk -v t="$T" 'index($2, t) == 1 { found = 1 } END { exit !found }' /proc/self/mounts; then
    echo "# $T still has a mount below it; not removed"
  elif [ "${CAIRN_KEEP_TMP:-0}" = 1 ]; then
    echo "# temp dir kept: $T"
  else
    rm -rf "$T"
  fi
  exit $rc
}
trap _cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
trap 'exit 129' HUP

for b in "$METAD_BIN" "$CHUNKD_BIN" "$MOUNT_BIN"; do
  if [ ! -x "$b" ]; then
    echo "# $b missing: run make first"
    echo "not ok setup"
    exit 1
  fi
done
