#!/bin/bash
# fsx on the mount: random reads, writes, truncates, fallocate/punch, mmap
# reads and writes, copy_file_range, close/reopen and remounts, every byte
# checked against a model. The cluster uses a small chunk size so that
# operations cross many chunk boundaries. One case: "ok fsx" / "not ok fsx".
#
# Environment: FSX_OPS (default 100000), FSX_SEED (default 20261122),
# FSX_CHUNK (metad --chunk-size, default 64K), FSX_MAXLEN (largest file,
# default 1M), FSX_MAXOP (largest single operation, default 128K), FSX_REMOUNTS (remounts in the run, default 10), FSX_TIMEOUT
# (seconds, default 600 + 1 per 1000 ops), FSX_GC_INTERVAL and FSX_GC_GRACE
# (chunk servers' garbage collection, default 15s and 30s), FSX_MOUNT_OPTS
# (extra cairn-mount options, e.g. a small --mem-budget). A soak:
#   FSX_OPS=2000000 bash tests/integration/t_fsx.sh
# On failure the operation log is kept as ${TMPDIR:-/tmp}/cairn-fsx-SEED.log.
. "$(dirname "$0")/lib.sh"

case $BUILD in
  /*) FSX=$BUILD/tests/fsx ;;
  *) FSX=$ROOT/$BUILD/tests/fsx ;;
esac
OPS=${FSX_OPS:-100000}
SEED=${FSX_SEED:-20261122}
CHUNK=${FSX_CHUNK:-64K}
MAXLEN=${FSX_MAXLEN:-1M}
MAXOP=${FSX_MAXOP:-128K}
REMOUNTS=${FSX_REMOUNTS:-10}
TIMEOUT=${FSX_TIMEOUT:-$((600 + OPS / 1000))}
[ -x "$FSX" ] || bail fsx "$FSX missing: make $BUILD/tests/fsx"

# start_chunkd_gc I: lib.sh's start_chunkd, plus garbage collection every
# FSX_GC_INTERVAL with a grace of FSX_GC_GRACE, so that the chunks fsx
# makes unreferenced are deleted while it runs (the disk stays small, and
# collection runs alongside live writes, copies and remounts).
start_chunkd_gc() {
  local i=$1
  mkdir -p "$T/chunk$i"
  local af=$T/chunk$i.addr.1
  rm -f "$af"
  "$CHUNKD_BIN" --data "$T/chunk$i" --listen 127.0.0.1:0 --addr-file "$af" \
    --meta "$METAD_ADDR" --heartbeat-interval 1s \
    --gc-interval "${FSX_GC_INTERVAL:-15s}" --gc-grace "${FSX_GC_GRACE:-30s}" \
    >>"$T/logs/chunkd$i.log" 2>&1 &
  CHUNK_PIDS[$i]=$!
  OWN_PIDS+=("${CHUNK_PIDS[$i]}")
  _await_addr "$af" "${CHUNK_PIDS[$i]}" "cairn-chunkd $i" || return 1
  CHUNK_ADDRS[$i]=$(head -n1 "$af")
  CHUNK_PORTS[$i]=$(addr_port "${CHUNK_ADDRS[$i]}")
}

start_metad --format --chunk-size "$CHUNK" || bail fsx "metad did not start"
for i in 1 2 3; do start_chunkd_gc "$i" || bail fsx "chunkd $i did not start"; done
wait_cluster 3 || bail fsx "cluster did not come up"
MNT=$T/mnt
read -r -a MOUNT_OPTS <<<"${FSX_MOUNT_OPTS:-}"
mount_fs "$MNT" "$T/cache" "${MOUNT_OPTS[@]}" || bail fsx "mount failed"
mkdir -p "$MNT/fsx" || bail fsx "mkdir on the mount failed"

# The remount helper restarts cairn-mount outside this shell; its pid file
# is how this script (and its EXIT trap) keeps track of the current one.
PIDFILE=$T/mount.pid
mount_pid "$MNT" >"$PIDFILE"
_fsx_cleanup() {
  local rc=$? p
  p=$(cat "$PIDFILE" 2>/dev/null)
  [ -n "$p" ] && MOUNT_PIDS[$MNT]=$p
  (exit $rc)
  _cleanup
}
trap _fsx_cleanup EXIT

every=$(((OPS + REMOUNTS) / (REMOUNTS + 1)))
[ "$every" -lt 1 ] && every=1
[ "$REMOUNTS" = 0 ] && every=0
REMOUNT_CMD="bash '$ROOT/tests/fsx/remount.sh' '$PIDFILE' '$MNT' '$T/logs/mount-mnt.log' --wipe '$T/cache' -- '$MOUNT_BIN' -f --cache-dir '$T/cache' ${FSX_MOUNT_OPTS:-} '$METAD_ADDR' '$MNT'"

start=$(date +%s.%N)
timeout -k 10 "$TIMEOUT" "$FSX" --seed "$SEED" --ops "$OPS" --chunk "$CHUNK" --maxlen "$MAXLEN" --maxop "$MAXOP" \
  --remount-every "$every" --remount-cmd "$REMOUNT_CMD" --log "$T/fsx.log" "$MNT/fsx" \
  >"$T/fsx.out" 2>&1
rc=$?
took=$(elapsed "$start")
MOUNT_PIDS[$MNT]=$(cat "$PIDFILE")

note "$(head -n 1 "$T/fsx.out")"
if [ $rc = 0 ]; then
  note "$(tail -n 2 "$T/fsx.out")"
  ok fsx
else
  [ $rc = 124 ] && note "fsx did not finish within ${TIMEOUT}s"
  keep=${TMPDIR:-/tmp}/cairn-fsx-$SEED.log
  cp "$T/fsx.log" "$keep" 2>/dev/null
  fail fsx "fsx exit $rc after ${took}s; operation log kept as $keep
$(grep -v '^fsx: [0-9]* ops, ' "$T/fsx.out" | tail -n 60)"
fi
note "fsx: $OPS ops, seed $SEED, chunk size $CHUNK, $REMOUNTS remounts planned, ${took}s"

# a clean unmount of whichever cairn-mount is current
p=$(cat "$PIDFILE")
if mountpoint -q "$MNT"; then
  wait_until 10 timeout 10 fusermount3 -u "$MNT" 2>/dev/null || note "fusermount3 -u $MNT failed"
fi
wait_until "$T_UMOUNT" pid_dead "$p" || note "cairn-mount (pid $p) did not exit after unmount"
finish
