#!/bin/bash
# make bench: cairn's benchmark suite.
#
# Starts a fresh local cluster (one cairn-metad, three cairn-chunkd, two
# replicas) on 127.0.0.1 and mounts it, builds libfuse's passthrough_ll
# example, and runs every test against three targets, interleaved within each
# repetition (for rep: for test: for target):
#   local        a plain directory on the same disk
#   passthrough  passthrough_ll exporting such a directory (the FUSE limit)
#   cairn        the cairn mount
# Prints one line per figure (medians over the repetitions) with the ratios
# cairn/passthrough and cairn/local and whether cairn meets its target, and
# from a full run writes docs/BENCHMARKS.md.
#
# Environment:
#   BENCH_REPS=N       repetitions (default 3; 1 with BENCH_QUICK)
#   BENCH_QUICK=1      a smoke run: sizes divided by 8, 5 s timed runs,
#                      /usr/include/linux instead of /usr/include, one library
#                      for the ccache build, 1 repetition
#   BENCH_ONLY=LIST    comma-separated subset of: seqwrite seqread randread
#                      randwrite smallfiles cp ccache rss
#   BENCH_WRITE_DOC=1  write docs/BENCHMARKS.md from a quick or partial run too;
#                      BENCH_WRITE_DOC=0: never write it
#   BENCH_DIR=DIR      where the work dir is created (default /var/tmp); it
#                      must be on the disk you want to measure
#   BENCH_KEEP=1       keep the work dir (logs, fio output) at exit
#   BENCH_EXTRA_MOUNT_OPTS="..."  more cairn-mount options (e.g. to compare
#                      --coherent-timeout 0); the report names them
#
# Everything (cluster data, client cache, the local and passthrough targets)
# lives in one mktemp -d work dir, removed at exit. Needs root: it drops the
# kernel caches and mounts FUSE file systems. Exit status: 0 when every run
# produced its figures (missed targets are reported, not failures), 1 when some
# run failed, 2 on a setup error.
set -u
set -o pipefail
cd "$(dirname "$0")/.." || exit 2
ROOT=$(pwd)
BUILD=${BUILD:-build}
case $BUILD in
  /*) BIN=$BUILD/bin ;;
  *) BIN=$ROOT/$BUILD/bin ;;
esac
REPORT=$ROOT/scripts/bench_report.py
FILES=$ROOT/scripts/bench_files.py
DOC=$ROOT/docs/BENCHMARKS.md
PT_SRC=/usr/share/doc/libfuse3-dev/examples/passthrough_ll.c

QUICK=${BENCH_QUICK:-0}
ALL_TESTS=(seqwrite seqread randread randwrite smallfiles cp ccache rss)
TARGETS=(local passthrough cairn)
CACHE_MEM_MIB=64              # cairn-mount --cache-mem (RSS target: 256 MiB + this)
JOBS=$(nproc)

if [ "$QUICK" = 1 ]; then
  REPS=${BENCH_REPS:-1}
  SEQ_MB=128 RAND_MB=128 BIG_MB=512 NFILES=625 RUNTIME=5
  CP_SRC=/usr/include/linux
  CC_TARGETS=(bld/lib/libcommon.a)
else
  REPS=${BENCH_REPS:-3}
  SEQ_MB=1024 RAND_MB=1024 BIG_MB=4096 NFILES=5000 RUNTIME=20
  CP_SRC=/usr/include
  CC_TARGETS=(bld/bin/cairn-metad bld/bin/cairn-chunkd bld/bin/cairn-mount)
fi

die() { echo "bench: $*" >&2; exit 2; }

# ---------------------------------------------------------------- arguments

TESTS=()
if [ -n "${BENCH_ONLY:-}" ]; then
  IFS=', ' read -r -a want <<<"$BENCH_ONLY"
  for w in "${want[@]}"; do
    [ -n "$w" ] || continue
    found=0
    for t in "${ALL_TESTS[@]}"; do [ "$t" = "$w" ] && found=1; done
    [ $found = 1 ] || die "BENCH_ONLY: unknown test '$w' (tests: ${ALL_TESTS[*]})"
  done
  for t in "${ALL_TESTS[@]}"; do
    for w in "${want[@]}"; do [ "$t" = "$w" ] && TESTS+=("$t"); done
  done
  [ ${#TESTS[@]} -gt 0 ] || die "BENCH_ONLY names no test"
else
  TESTS=("${ALL_TESTS[@]}")
fi
[[ $REPS =~ ^[1-9][0-9]*$ ]] || die "BENCH_REPS must be a positive number"

# The doc is written from full runs only, unless BENCH_WRITE_DOC says otherwise.
WRITE_DOC=0
if [ -n "${BENCH_WRITE_DOC:-}" ]; then
  [ "$BENCH_WRITE_DOC" = 1 ] && WRITE_DOC=1
elif [ "$QUICK" != 1 ] && [ -z "${BENCH_ONLY:-}" ] && [ "$REPS" -ge 3 ]; then
  WRITE_DOC=1
fi

# ---------------------------------------------------------------- checks

[ "$(id -u)" = 0 ] || die "needs root (drop_caches, FUSE mounts)"
for c in fio ccache gcc make pkg-config python3 fusermount3 curl timeout diff cp; do
  command -v "$c" >/dev/null 2>&1 || die "$c not found: run make deps"
done
pkg-config --exists fuse3 || die "fuse3 development files missing: run make deps"
[ -f "$PT_SRC" ] || die "$PT_SRC missing (Debian package libfuse3-dev)"
for b in cairn-metad cairn-chunkd cairn-mount; do
  [ -x "$BIN/$b" ] || die "$BIN/$b missing: run make"
done
[ -d "$CP_SRC" ] || die "$CP_SRC missing"
# The passthrough mounts and make must not inherit a parent make's state.
unset MAKEFLAGS MFLAGS MAKELEVEL
unset CCACHE_DISABLE CCACHE_RECACHE CCACHE_READONLY CCACHE_NODIRECT CCACHE_PREFIX \
  CCACHE_DIR CCACHE_CONFIGPATH CCACHE_BASEDIR CCACHE_NOHASHDIR

PARENT=${BENCH_DIR:-/var/tmp}
[ -d "$PARENT" ] || die "BENCH_DIR $PARENT is not a directory"
# The chunk servers keep two replicas of everything written until their
# garbage collection catches up (possibly not within the run), plus the local
# and passthrough copies, the client's cache dir (4 GiB at most) and slack.
need_mb=$(( REPS * (SEQ_MB + 2 * RAND_MB + BIG_MB + 256) * 2 + (SEQ_MB + RAND_MB) * 2 + 4096 + 1024 ))
avail_mb=$(df -Pm "$PARENT" | awk 'NR == 2 { print $4 }')
[ "${avail_mb:-0}" -ge "$need_mb" ] || die "$PARENT has ${avail_mb} MiB free, the run needs about $need_mb MiB"

W=$(mktemp -d "$PARENT/cairn-bench-XXXXXX") || die "mktemp failed"
LOGS=$W/logs
RES=$W/results.tsv
mkdir -p "$LOGS" "$W/local" "$W/ptsrc" "$W/pt" "$W/cairn" "$W/cache"
: >"$RES"

# ---------------------------------------------------------------- processes

declare -a OWN_PIDS=()
METAD_PID='' METAD_ADDR='' PT_PID='' CAIRN_PID=''
declare -a ERRORS=()

pid_alive() {
  local st
  [ -n "$1" ] && [ -r "/proc/$1/stat" ] || return 1
  st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# wait_for SECONDS cmd...: poll every 0.1 s, bounded
wait_for() {
  local end=$((SECONDS + $1))
  shift
  while :; do
    "$@" && return 0
    [ "$SECONDS" -ge "$end" ] && return 1
    sleep 0.1
  done
}

not_alive() { ! pid_alive "$1"; }

# stop_pid PID: SIGTERM, wait up to 20 s, then SIGKILL
stop_pid() {
  local p=$1
  [ -n "$p" ] || return 0
  if pid_alive "$p"; then
    kill -TERM "$p" 2>/dev/null
    wait_for 20 not_alive "$p" || { kill -KILL "$p" 2>/dev/null; wait_for 10 not_alive "$p"; }
  fi
  wait "$p" 2>/dev/null
  return 0
}

is_mounted() { awk -v m="$1" '$2 == m { f = 1 } END { exit !f }' /proc/self/mounts; }

# fuse_umount MNT PID WHAT: fusermount3 -u (retried while busy), then wait for
# the daemon to exit (it may have data to flush). Sets UMOUNT_STATUS.
fuse_umount() {
  local mnt=$1 pid=$2 what=$3
  UMOUNT_STATUS=0
  if is_mounted "$mnt"; then
    if ! wait_for 15 timeout 10 fusermount3 -u "$mnt" 2>/dev/null; then
      echo "bench: fusermount3 -u $mnt keeps failing ($(timeout 10 fusermount3 -u "$mnt" 2>&1)); lazy unmount" >&2
      timeout 10 umount -l "$mnt" 2>/dev/null
      UMOUNT_STATUS=1
    fi
  fi
  if [ -n "$pid" ]; then
    if ! wait_for 180 not_alive "$pid"; then
      echo "bench: $what (pid $pid) still running 180 s after unmounting $mnt; SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null
      wait_for 10 not_alive "$pid"
      UMOUNT_STATUS=1
    fi
    wait "$pid" 2>/dev/null
    local st=$?
    if [ $st -ne 0 ] && [ $UMOUNT_STATUS = 0 ]; then
      UMOUNT_STATUS=$st
    fi
  fi
  return 0
}

# wait_mounted MNT PID WHAT LOG
wait_mounted() {
  local end=$((SECONDS + 30))
  while ! is_mounted "$1"; do
    if ! pid_alive "$2"; then
      echo "bench: $3 exited before $1 was mounted:" >&2
      tail -n 5 "$4" >&2
      return 1
    fi
    if [ "$SECONDS" -ge "$end" ]; then
      echo "bench: $1 not mounted 30 s after starting $3" >&2
      return 1
    fi
    sleep 0.1
  done
}

# wait_addr FILE PID WHAT: a daemon writes its address file
wait_addr() {
  local end=$((SECONDS + 20))
  while ! [ -s "$1" ]; do
    pid_alive "$2" || { echo "bench: $3 exited at start; see $LOGS" >&2; return 1; }
    [ "$SECONDS" -ge "$end" ] && { echo "bench: $3 wrote no address in 20 s" >&2; return 1; }
    sleep 0.1
  done
}

cluster_up() {
  local n
  n=$(curl -s --max-time 5 "http://$METAD_ADDR/metrics" |
    awk '$1 == "cairn_metad_servers{state=\"up\"}" { print $2; exit }')
  [ "${n:-0}" = 3 ]
}

start_cluster() {
  "$BIN/cairn-metad" --data "$W/meta" --listen 127.0.0.1:0 --addr-file "$W/metad.addr" \
    --format --replicas 2 >>"$LOGS/metad.log" 2>&1 </dev/null &
  METAD_PID=$!
  OWN_PIDS+=("$METAD_PID")
  wait_addr "$W/metad.addr" "$METAD_PID" cairn-metad || return 1
  METAD_ADDR=$(head -n1 "$W/metad.addr")
  local i p
  for i in 1 2 3; do
    "$BIN/cairn-chunkd" --data "$W/chunk$i" --listen 127.0.0.1:0 --addr-file "$W/chunk$i.addr" \
      --meta "$METAD_ADDR" --heartbeat-interval 1s >>"$LOGS/chunkd$i.log" 2>&1 </dev/null &
    p=$!
    OWN_PIDS+=("$p")
    wait_addr "$W/chunk$i.addr" "$p" "cairn-chunkd $i" || return 1
  done
  wait_for 30 cluster_up || { echo "bench: metad does not list 3 chunk servers up after 30 s" >&2; return 1; }
}

MOUNT_OPTS=(--cache-dir "$W/cache" --cache-mem "${CACHE_MEM_MIB}M" ${BENCH_EXTRA_MOUNT_OPTS:-})

cairn_mount() {
  "$BIN/cairn-mount" -f "${MOUNT_OPTS[@]}" "$METAD_ADDR" "$W/cairn" \
    >>"$LOGS/cairn-mount.log" 2>&1 </dev/null &
  CAIRN_PID=$!
  wait_mounted "$W/cairn" "$CAIRN_PID" cairn-mount "$LOGS/cairn-mount.log"
}

cairn_umount() {
  fuse_umount "$W/cairn" "$CAIRN_PID" cairn-mount
  if [ "$UMOUNT_STATUS" != 0 ]; then
    error "cairn-mount (pid $CAIRN_PID) did not unmount cleanly (status $UMOUNT_STATUS); log: $(tail -n 3 "$LOGS/cairn-mount.log" | tr '\n' ' ')"
  fi
  CAIRN_PID=
}

pt_mount() {
  "$W/passthrough_ll" -f -o source="$W/ptsrc" "$W/pt" >>"$LOGS/passthrough.log" 2>&1 </dev/null &
  PT_PID=$!
  wait_mounted "$W/pt" "$PT_PID" passthrough_ll "$LOGS/passthrough.log"
}

pt_umount() {
  fuse_umount "$W/pt" "$PT_PID" passthrough_ll
  PT_PID=
}

drop_caches() {
  sync
  echo 3 >/proc/sys/vm/drop_caches
}

# fresh TARGET: cold state. Unmount, empty cairn's cache dir, drop the kernel
# caches, mount again.
fresh() {
  case $1 in
    local) drop_caches ;;
    passthrough) pt_umount; drop_caches; pt_mount ;;
    cairn)
      cairn_umount
      rm -rf "$W/cache"
      mkdir -p "$W/cache"
      drop_caches
      cairn_mount
      ;;
  esac
}

# remount_cairn: a new cairn-mount process (resets its peak RSS); cache kept
remount_cairn() {
  cairn_umount
  cairn_mount
}

cleanup() {
  local rc=$? p
  trap - EXIT INT TERM HUP
  cd /
  for m in "$W/cairn" "$W/pt"; do
    if is_mounted "$m"; then
      timeout 10 fusermount3 -u "$m" 2>/dev/null || timeout 10 umount -l "$m" 2>/dev/null
    fi
  done
  for p in "$CAIRN_PID" "$PT_PID"; do
    [ -n "$p" ] || continue
    wait_for 60 not_alive "$p" || kill -KILL "$p" 2>/dev/null
  done
  for ((i = ${#OWN_PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${OWN_PIDS[$i]}"; done
  if awk -v t="$W/" 'index($2, t) == 1 { f = 1 } END { exit !f }' /proc/self/mounts; then
    echo "bench: a mount is still below $W; not removed" >&2
  elif [ "${BENCH_KEEP:-0}" = 1 ]; then
    echo "bench: work dir kept: $W"
  else
    rm -rf "$W"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
trap 'exit 129' HUP

# ---------------------------------------------------------------- results

error() {
  ERRORS+=("$*")
  echo "ERROR: $*"
}

# record FIG TARGET REP VALUE
record() {
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$RES"
}

show() { # TEST TARGET TEXT
  printf '  [%s/%s] %-10s %-11s %s\n' "$REP" "$REPS" "$1" "$2" "$3"
}

now() { echo "$EPOCHREALTIME"; }
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }'; }
r0() { printf '%.0f' "$1"; }
r1() { printf '%.1f' "$1"; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.1f", (s > 0 ? n / s : 0) }'; }

# peak RSS of a pid in MiB
hwm_mib() { awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null; }

# run TIMEOUT cmd...: output to $LOGS/run.out; on failure sets ERRMSG
run() {
  local lim=$1
  shift
  timeout -k 10 "$lim" "$@" >"$LOGS/run.out" 2>&1
  local st=$?
  if [ $st -ne 0 ]; then
    ERRMSG="'$*' exited with status $st$([ $st = 124 ] && echo " (timed out after ${lim}s)"): $(tail -n 3 "$LOGS/run.out" | tr '\n' ' ')"
    return 1
  fi
}

# timed VAR TIMEOUT cmd...: VAR = seconds taken
timed() {
  local __var=$1 __t0
  shift
  __t0=$(now)
  run "$@" || return 1
  printf -v "$__var" '%s' "$(since "$__t0")"
}

# fio_job TIMEOUT args...: one fio job; sets FIO_MIBS FIO_IOPS FIO_P99 (us)
fio_job() {
  local lim=$1
  shift
  local out=$LOGS/fio.json
  rm -f "$out"
  run "$lim" fio --name=bench --ioengine=psync --direct=0 --numjobs=1 --fallocate=none \
    --output-format=json --output="$out" "$@" || return 1
  local r
  if ! r=$(python3 "$REPORT" fio "$out" 2>&1); then
    ERRMSG="fio $*: $r"
    return 1
  fi
  read -r FIO_MIBS FIO_IOPS FIO_P99 <<<"$r"
}

# write timeout: 60 s plus 2 s per MiB (fails below 0.5 MiB/s)
wlim() { echo $((60 + $1 * 2)); }

# layout FILE MB: write FILE sequentially if it is not already that size
layout() {
  local f=$1 mb=$2
  [ -f "$f" ] && [ "$(stat -c %s "$f")" = $((mb << 20)) ] && return 0
  rm -f "$f"
  fio_job "$(wlim "$mb")" --filename="$f" --rw=write --bs=1M --size="${mb}M" --end_fsync=1
}

# ---------------------------------------------------------------- tests
# test_NAME TARGET DIR: record the figures of one run; 1 + ERRMSG on failure.

test_seqwrite() {
  local f=$2/seq.dat
  rm -f "$f"
  sync
  if [ "$1" = cairn ]; then remount_cairn || { ERRMSG="remounting cairn failed"; return 1; }; fi
  fio_job "$(wlim $SEQ_MB)" --filename="$f" --rw=write --bs=1M --size="${SEQ_MB}M" --end_fsync=1 || return 1
  record seqwrite "$1" "$REP" "$FIO_MIBS"
  local extra=
  if [ "$1" = cairn ]; then
    local h
    h=$(hwm_mib "$CAIRN_PID")
    [ -n "$h" ] && record rss_seq cairn "$REP" "$h" && extra="  (cairn-mount VmHWM $h MiB)"
  fi
  show seqwrite "$1" "$(r1 "$FIO_MIBS") MiB/s$extra"
}

test_seqread() {
  local f=$2/seq.dat
  layout "$f" $SEQ_MB || return 1
  fresh "$1" || { ERRMSG="fresh mount of $1 failed"; return 1; }
  fio_job "$(wlim $SEQ_MB)" --filename="$f" --rw=read --bs=1M --size="${SEQ_MB}M" || return 1
  record seqread_cold "$1" "$REP" "$FIO_MIBS"
  local cold=$FIO_MIBS
  # --invalidate=0: fio would otherwise drop the file's page cache first
  fio_job "$(wlim $SEQ_MB)" --filename="$f" --rw=read --bs=1M --size="${SEQ_MB}M" --invalidate=0 || return 1
  record seqread_warm "$1" "$REP" "$FIO_MIBS"
  show seqread "$1" "cold $(r1 "$cold") MiB/s, warm $(r1 "$FIO_MIBS") MiB/s"
}

test_randread() {
  local f=$2/rand.dat
  layout "$f" $RAND_MB || return 1
  # fio's default --invalidate=1 drops the file's page cache on the target
  # first: local reads start from the disk, the FUSE daemons from wherever
  # their own data lives (passthrough: the backing file's page cache)
  fio_job $((RUNTIME + 300)) --filename="$f" --rw=randread --bs=4k --iodepth=1 \
    --size="${RAND_MB}M" --time_based --runtime="$RUNTIME" --invalidate=1 || return 1
  record randread "$1" "$REP" "$FIO_IOPS"
  record randread_p99 "$1" "$REP" "$FIO_P99"
  show randread "$1" "$(r0 "$FIO_IOPS") IOPS, p99 $(r0 "$FIO_P99") us"
}

test_randwrite() {
  local f=$2/rand.dat
  layout "$f" $RAND_MB || return 1
  sync
  fio_job $((RUNTIME + 600)) --filename="$f" --rw=randwrite --bs=4k --iodepth=1 \
    --size="${RAND_MB}M" --time_based --runtime="$RUNTIME" --invalidate=1 --end_fsync=1 || return 1
  record randwrite "$1" "$REP" "$FIO_IOPS"
  show randwrite "$1" "$(r0 "$FIO_IOPS") IOPS"
}

# files PHASE DIR: runs one phase of bench_files.py; sets OPS_RATE
files() {
  run 900 python3 "$FILES" "$1" "$2" "$NFILES" || return 1
  local n s
  read -r n s <"$LOGS/run.out"
  OPS_RATE=$(rate "$n" "$s" | cut -d. -f1)
}

test_smallfiles() {
  local d=$2/files
  rm -rf "$d"
  mkdir -p "$d"
  sync
  files create "$d" || return 1
  record sf_create "$1" "$REP" "$OPS_RATE"
  local c=$OPS_RATE
  fresh "$1" || { ERRMSG="fresh mount of $1 failed"; return 1; }
  files stat "$d" || return 1
  record sf_stat_cold "$1" "$REP" "$OPS_RATE"
  local sc=$OPS_RATE
  files stat "$d" || return 1
  record sf_stat_warm "$1" "$REP" "$OPS_RATE"
  local sw=$OPS_RATE
  fresh "$1" || { ERRMSG="fresh mount of $1 failed"; return 1; }
  files read "$d" || return 1
  record sf_read_cold "$1" "$REP" "$OPS_RATE"
  local rc=$OPS_RATE
  files delete "$d" || return 1
  record sf_delete "$1" "$REP" "$OPS_RATE"
  rm -rf "$d"
  show smallfiles "$1" "create $c/s, stat cold $sc/s, warm $sw/s, read cold $rc/s, delete $OPS_RATE/s"
}

test_cp() {
  local d=$2/tree t1 t2 t3
  rm -rf "$d"
  mkdir -p "$d"
  sync
  timed t1 1800 cp -a "$CP_SRC" "$d/" || return 1
  record cp "$1" "$REP" "$t1"
  timed t2 1800 diff -r --no-dereference "$CP_SRC" "$d/$(basename "$CP_SRC")" || {
    ERRMSG="the copy differs from $CP_SRC: $ERRMSG"
    return 1
  }
  record diff "$1" "$REP" "$t2"
  timed t3 1800 rm -rf "$d" || return 1
  record rm "$1" "$REP" "$t3"
  show cp "$1" "cp -a ${t1}s, diff -r ${t2}s, rm -rf ${t3}s"
}

test_ccache() {
  local cd=$2/ccache b=$W/src/bld t1 t2 hm
  rm -rf "$cd" "$b"
  mkdir -p "$cd"
  local -a e=(env -u CFLAGS -u LDFLAGS -u CPPFLAGS CCACHE_DIR="$cd" CCACHE_CONFIGPATH="$W/ccache.conf")
  local -a mk=(make -C "$W/src" -j"$JOBS" BUILD=bld SANITIZE=0 CC="ccache gcc" "${CC_TARGETS[@]}")
  run 60 "${e[@]}" ccache -z || return 1
  sync
  timed t1 1800 "${e[@]}" "${mk[@]}" || return 1
  record ccache_cold "$1" "$REP" "$t1"
  rm -rf "$b"
  run 60 "${e[@]}" ccache -z || return 1
  sync
  timed t2 1800 "${e[@]}" "${mk[@]}" || return 1
  record ccache_warm "$1" "$REP" "$t2"
  run 60 "${e[@]}" ccache --print-stats || return 1
  hm=$(python3 "$REPORT" stats "$LOGS/run.out")
  local hits=${hm% *} miss=${hm#* }
  local pct
  pct=$(awk -v h="$hits" -v m="$miss" 'BEGIN { printf "%.1f", (h + m > 0 ? 100 * h / (h + m) : 0) }')
  record ccache_hits "$1" "$REP" "$pct"
  rm -rf "$b" "$cd"
  show ccache "$1" "cold ${t1}s, warm ${t2}s, warm hits $hits, misses $miss"
}

test_rss() {
  [ "$1" = cairn ] || return 0
  local f=$2/big.dat h
  rm -f "$f"
  sync
  remount_cairn || { ERRMSG="remounting cairn failed"; return 1; }
  fio_job "$(wlim $BIG_MB)" --filename="$f" --rw=write --bs=1M --size="${BIG_MB}M" --end_fsync=1 || return 1
  h=$(hwm_mib "$CAIRN_PID")
  rm -f "$f"
  [ -n "$h" ] || { ERRMSG="no VmHWM for cairn-mount pid $CAIRN_PID"; return 1; }
  record rss_big cairn "$REP" "$h"
  show rss "$1" "cairn-mount VmHWM $h MiB while writing $(size_label $BIG_MB) ($(r1 "$FIO_MIBS") MiB/s)"
}

# the mount still answers; if not, say so and mount it again
check_target() {
  case $1 in
    cairn)
      if ! pid_alive "$CAIRN_PID" || ! timeout 20 stat -t "$W/cairn/." >/dev/null 2>&1; then
        error "cairn mount is dead or hangs (cairn-mount pid $CAIRN_PID); log: $(tail -n 5 "$LOGS/cairn-mount.log" | tr '\n' ' ')"
        cairn_umount
        cairn_mount || return 1
      fi
      ;;
    passthrough)
      if ! pid_alive "$PT_PID" || ! timeout 20 stat -t "$W/pt/." >/dev/null 2>&1; then
        error "passthrough mount is dead or hangs (pid $PT_PID)"
        pt_umount
        pt_mount || return 1
      fi
      ;;
  esac
}

dir_of() {
  case $1 in
    local) echo "$W/local" ;;
    passthrough) echo "$W/pt" ;;
    cairn) echo "$W/cairn" ;;
  esac
}

size_label() { # MiB -> "1GiB" / "128MiB"
  if [ $(($1 % 1024)) = 0 ]; then echo "$(($1 / 1024))GiB"; else echo "${1}MiB"; fi
}

# ---------------------------------------------------------------- setup

echo "cairn bench: work dir $W ($(findmnt -no SOURCE,FSTYPE -T "$W" | tr -s ' ')), $REPS repetition(s), tests: ${TESTS[*]}"
[ "$QUICK" = 1 ] && echo "BENCH_QUICK: sizes / 8, ${RUNTIME} s timed runs; figures are not comparable with a full run"

gcc -O2 -Wall "$PT_SRC" $(pkg-config --cflags --libs fuse3) -o "$W/passthrough_ll" \
  >"$LOGS/passthrough-build.log" 2>&1 || { cat "$LOGS/passthrough-build.log" >&2; die "building passthrough_ll failed"; }

start_cluster || die "the cairn cluster did not start (logs in $LOGS; BENCH_KEEP=1 keeps them)"
cairn_mount || die "cairn-mount failed"
pt_mount || die "passthrough_ll failed to mount"
echo "cluster: metad $METAD_ADDR, chunk servers $(cat "$W"/chunk?.addr | tr '\n' ' ')"

for t in "${TESTS[@]}"; do
  case $t in
    ccache)
      mkdir -p "$W/src"
      if git -C "$ROOT" rev-parse --verify -q HEAD >/dev/null 2>&1; then
        git -C "$ROOT" archive HEAD | tar -x -C "$W/src" || die "git archive failed"
      else
        (cd "$ROOT" && tar -c --exclude='./build*' --exclude=./.git --exclude=./.demo .) | tar -x -C "$W/src"
      fi
      : >"$W/ccache.conf"
      ;;
    cp)
      # the source tree comes from the page cache in every run
      tar -cf - "$CP_SRC" 2>/dev/null | cat >/dev/null
      ;;
  esac
done

# ---------------------------------------------------------------- runs

T_START=$SECONDS
for ((REP = 1; REP <= REPS; REP++)); do
  for t in "${TESTS[@]}"; do
    for target in "${TARGETS[@]}"; do
      [ "$t" = rss ] && [ "$target" != cairn ] && continue
      ERRMSG=
      if ! "test_$t" "$target" "$(dir_of "$target")"; then
        error "$t on $target (rep $REP): ${ERRMSG:-failed}"
        check_target "$target" || die "could not mount $target again"
      fi
    done
  done
done
# files left for the next test are removed before the summary
for target in "${TARGETS[@]}"; do rm -f "$(dir_of "$target")"/{seq,rand,big}.dat; done
echo "runs took $((SECONDS - T_START)) s"

# ---------------------------------------------------------------- report

export BR_SEQ BR_RAND BR_BIG BR_NFILES BR_SRC BR_RUNTIME BR_CACHE_MEM_MIB BR_JOBS BR_REPS \
  BR_CMD BR_WORK BR_ROOT BR_MOUNT_OPTS BR_ERRORS
BR_SEQ=$(size_label $SEQ_MB)
BR_RAND=$(size_label $RAND_MB)
BR_BIG=$(size_label $BIG_MB)
BR_NFILES=$NFILES
BR_SRC=$CP_SRC
BR_RUNTIME=$RUNTIME
BR_CACHE_MEM_MIB=$CACHE_MEM_MIB
BR_JOBS=$JOBS
BR_REPS=$REPS
BR_WORK=$W
BR_ROOT=$ROOT
BR_MOUNT_OPTS="--cache-mem ${CACHE_MEM_MIB}M, its own --cache-dir${BENCH_EXTRA_MOUNT_OPTS:+, $BENCH_EXTRA_MOUNT_OPTS} and otherwise default options"
cmd="make bench"
for v in BENCH_REPS BENCH_QUICK BENCH_ONLY BENCH_DIR; do
  [ -n "${!v:-}" ] && cmd="$v=${!v} $cmd"
done
BR_CMD=$cmd
BR_ERRORS=$(printf '%s\n' "${ERRORS[@]}")

echo
echo "== cairn bench: medians of $REPS repetition(s) =="
doc=()
[ $WRITE_DOC = 1 ] && doc=("$DOC")
python3 "$REPORT" report "$RES" "${doc[@]}"
if [ ${#ERRORS[@]} -gt 0 ]; then
  echo
  echo "${#ERRORS[@]} run(s) failed:"
  printf '  %s\n' "${ERRORS[@]}"
  for f in "$LOGS"/cairn-mount.log "$LOGS"/metad.log "$LOGS"/chunkd?.log; do
    [ -s "$f" ] || continue
    echo "--- $(basename "$f") (last lines)"
    tail -n 5 "$f"
  done
  exit 1
fi
exit 0
