#!/bin/bash
# Degraded operation with R=2 on three chunk servers:
#  - a chunk server killed (kill -9) in the middle of a large copy: the copy
#    completes and every file reads back identical; metad marks the server
#    down after --heartbeat-timeout, the map epoch changes and the mount
#    picks up the new map without a remount;
#  - write fallback: a target that is down or answers errors is replaced by
#    the next server in HRW order; close/fsync succeed only with the
#    required copies (--min-replicas) and fail with EIO otherwise;
#  - every replica of a chunk down: its reads fail with EIO within the retry
#    time and the log names the chunk; files with a live copy stay readable;
#  - metad stopped and started again within the retry window: a delay for
#    the application, not an error.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/redundancy.sh"

HB_TIMEOUT=2
BIG_MB=${CAIRN_DEGRADED_MB:-256}
CHUNKD_ARGS=(--repair-delay 1s --repair-interval 0 --gc-interval 0 --scrub-interval 0
  --sha-scrub-interval 0 --maint-rate 0)
start_cluster_x 3 --heartbeat-timeout "${HB_TIMEOUT}s" || bail setup "cluster did not start"
MNT=$T/mnt
mount_fs "$MNT" "$T/cache" --retry-time 20s || bail setup "mount failed"
LOG=$T/logs/mount-mnt.log

state_is() { [ "$(server_state "$1")" = "$2" ]; }
epoch() { cairn status | awk '/cluster map epoch/ { print $NF; exit }'; }
# errno name of a failed step, or ok: create, write N bytes, fsync, close
write_fsync_close() { # PATH BYTES
  python3 - "$1" "$2" <<'PY'
import errno, os, sys
path, n = sys.argv[1], int(sys.argv[2])
step = "open"
try:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    step = "write"
    data = os.urandom(n)
    off = 0
    while off < n:
        off += os.write(fd, data[off:off + (1 << 20)])
    step = "fsync"
    os.fsync(fd)
    step = "close"
    os.close(fd)
    print("ok")
except OSError as e:
    print(step + ":" + errno.errorcode.get(e.errno, str(e.errno)))
PY
}
read_result() { # PATH: ok or the errno name
  python3 -c '
import errno, sys
try:
    open(sys.argv[1], "rb").read(); print("ok")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))' "$1"
}

# ---- 1. kill -9 a chunk server in the middle of a large copy
head -c $((BIG_MB << 20)) /dev/urandom >"$T/big.src" || bail setup "source"
mkdir -p "$T/tree"
for k in $(seq 1 30); do head -c $((100000 + k * 1000)) /dev/urandom >"$T/tree/s$k"; done
e0=$(epoch)
t0=$(date +%s.%N)
cp "$T/big.src" "$MNT/big" &
cpid=$!
progress() { [ "$(chunk_files_total)" -ge 24 ]; }
wait_until 60 progress || note "copy made no visible progress"
kill_chunkd 2
t_kill=$(date +%s.%N)
( wait_until $((HB_TIMEOUT + 20)) state_is 2 down && date +%s.%N >"$T/down.at" ) &
poller=$!
note "chunk server 2 killed after $(chunk_files_total) chunk files were stored"
wait "$cpid"
rc=$?
note "copy of $BIG_MB MiB took $(elapsed "$t0")s with a server killed in the middle"
expect_eq "the copy completes with a chunk server killed in the middle" "cp exit status" 0 "$rc"
cp -r "$T/tree" "$MNT/tree" || fail "copy after the kill" "cp -r failed"
wait "$poller"
if state_is 2 down; then
  ok "metad marks the silent server down"
  note "down $(awk -v a="$t_kill" -v b="$(cat "$T/down.at")" 'BEGIN { printf "%.1f", b - a }')s after the kill (--heartbeat-timeout ${HB_TIMEOUT}s)"
else
  fail "metad marks the silent server down" "state: $(server_state 2)"
fi
e1=$(epoch)
if [ "$e1" -gt "$e0" ]; then ok "the cluster map epoch changes ($e0 -> $e1)"
else fail "the cluster map epoch changes" "$e0 -> $e1"; fi
expect_eq "metad counts one server down" "cairn_metad_servers{state=\"down\"}" 1 \
  "$(metric 'cairn_metad_servers{state="down"}')"
# the mount learns the new map by itself: the next writes go to live servers
t0=$(date +%s.%N)
res=$(write_fsync_close "$MNT/after-down" $((16 << 20)))
took=$(elapsed "$t0")
expect_eq "writes after the map change succeed" "result" ok "$res"
note "16 MiB write + fsync after the map change: ${took}s"
if grep -qE "cluster map epoch ($e1|[0-9]+): " "$LOG" &&
  awk -v e="$e1" '/cluster map epoch/ { for (i = 1; i < NF; i++) if ($i == "epoch") { sub(":", "", $(i + 1)); if ($(i + 1) + 0 >= e) f = 1 } } END { exit !f }' "$LOG"; then
  ok "the mount picked up the new map without a remount"
else
  fail "the mount picked up the new map without a remount" "no 'cluster map epoch $e1' line in $LOG"
fi
check "background repair restores 2 copies of every chunk" converge 60
umount_fs "$MNT"
mount_fs "$MNT" "$T/cache2" --retry-time 20s --cache-size 0 --cache-mem 0 || bail remount "mount failed"
expect_eq "the big file reads back identical (fresh mount, no cache)" sha256 \
  "$(sha256sum <"$T/big.src")" "$(sha256sum <"$MNT/big")"
expect_eq "the files copied after the kill read back identical" sums \
  "$(cd "$T/tree" && sha256sum s* | sort)" "$(cd "$MNT/tree" && sha256sum s* | sort)"
rm -f "$T/big.src"

# ---- 2. write fallback: a target that answers errors is skipped
start_chunkd_x 2 "${CHUNK_PORTS[2]}" || bail restart "chunkd 2"
stop_chunkd 3
# server 3 now refuses every 4 MiB chunk (413): it answers, with an error
start_chunkd_x 3 "${CHUNK_PORTS[3]}" --max-chunk 1M || bail restart "chunkd 3"
wait_cluster 3 || bail restart "cluster"
head -c $((40 << 20)) /dev/urandom >"$T/fb.src"
cp "$T/fb.src" "$MNT/fallback" 
expect_eq "writes succeed while one target answers errors" "cp exit status" 0 "$?"
if grep -qE "PUT to server $(server_id 3) \([^)]*\) answered 413" "$T/logs/mount-mnt.log"; then
  ok "the erroring server was tried and the next one in HRW order took the copy"
else
  fail "the erroring server was tried and the next one in HRW order took the copy" \
    "no 'PUT to server $(server_id 3) ... answered 413' in the mount log"
fi
fb_ok() { cairn --quiet fsck >"$T/.fsck.out" 2>&1 && grep -q '^under-replicated  0' "$T/.fsck.out"; }
check "every chunk of the file has 2 copies" fb_ok
expect_eq "the file reads back identical" sha256 "$(sha256sum <"$T/fb.src")" "$(sha256sum <"$MNT/fallback")"

# ---- 3. fewer servers than the required copies: fsync and close fail loudly
stop_chunkd 2
wait_until $((HB_TIMEOUT + 10)) state_is 2 down
umount_fs "$MNT"
mount_fs "$MNT" "$T/cache3" --retry-time 2s || bail remount "mount failed"
LOG=$T/logs/mount-mnt.log
t0=$(date +%s.%N)
res=$(write_fsync_close "$MNT/one-copy" $((8 << 20)))
took=$(elapsed "$t0")
expect_eq "fsync fails with EIO when only 1 of 2 required copies can be stored" "result" fsync:EIO "$res"
note "failed after ${took}s (--retry-time 2s)"
if grep -qE "chunk [0-9a-f]{64}: upload failed: 1 of 2 required copies stored" "$LOG"; then
  ok "the log names the chunk and the copies missing"
else
  fail "the log names the chunk and the copies missing" "$(grep -m2 'upload failed' "$LOG")"
fi
res=$(python3 -c '
import errno, os, sys
try:
    fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, os.urandom(6 << 20)); os.close(fd); print("ok")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))' "$MNT/one-copy-close")
expect_eq "close fails with EIO as well (no fsync)" "result" EIO "$res"

# ---- 4. every replica of some chunks down: EIO for those, the rest readable
stop_chunkd 3
start_chunkd_x 2 "${CHUNK_PORTS[2]}" || bail restart "chunkd 2"
start_chunkd_x 3 "${CHUNK_PORTS[3]}" || bail restart "chunkd 3"
wait_cluster 3 || bail restart "cluster"
check "cluster converges before the double failure" converge 60
umount_fs "$MNT"
mount_fs "$MNT" "$T/cache4" --retry-time 3s --cache-size 0 --cache-mem 0 || bail remount "mount failed"
LOG=$T/logs/mount-mnt.log
kill_chunkd 2
kill_chunkd 3
readable=0 lost=0 wrong=0 slow=0
for k in $(seq 1 15); do
  id=$(sha256sum <"$T/tree/s$k" | cut -c1-64)
  on1=0
  [ -f "$T/chunk1/chunks/${id:0:2}/${id:2:2}/$id" ] && on1=1
  t0=$(date +%s.%N)
  r=$(read_result "$MNT/tree/s$k")
  dt=$(elapsed "$t0")
  awk -v t="$dt" 'BEGIN { exit !(t > 30) }' && slow=$((slow + 1))
  if [ "$on1" = 1 ]; then
    [ "$r" = ok ] && [ "$(sha256sum <"$MNT/tree/s$k" | cut -c1-64)" = "$id" ] && readable=$((readable + 1)) || wrong=$((wrong + 1))
  else
    [ "$r" = EIO ] && lost=$((lost + 1)) || wrong=$((wrong + 1))
    [ "$r" = EIO ] && last_lost=$id
  fi
done
note "with servers 2 and 3 down: $readable files readable (copy on server 1), $lost EIO (no live copy)"
expect_eq "files with a live copy read back, files without one fail with EIO" "mismatches" 0 "$wrong"
expect_eq "each failing read is bounded in time" "reads over 30 s" 0 "$slow"
if [ "$lost" -gt 0 ] && grep -q "chunk ${last_lost:-none}: no server returned a good copy" "$LOG"; then
  ok "the client log names the unreadable chunk"
elif [ "$lost" = 0 ]; then
  skip "the client log names the unreadable chunk" "every small file had a copy on server 1"
else
  fail "the client log names the unreadable chunk" "no line for chunk $last_lost"
fi
start_chunkd_x 2 "${CHUNK_PORTS[2]}" || bail restart "chunkd 2"
start_chunkd_x 3 "${CHUNK_PORTS[3]}" || bail restart "chunkd 3"
wait_cluster 3 || bail restart "cluster"

# ---- 5. metad down for a few seconds during a copy: a delay, not an error
umount_fs "$MNT"
mount_fs "$MNT" "$T/cache5" --retry-time 30s || bail remount "mount failed"
head -c $((64 << 20)) /dev/urandom >"$T/m.src"
( cp "$T/m.src" "$MNT/during-outage" && cp -r "$T/tree" "$MNT/tree2"; echo $? >"$T/cp.rc" ) &
cpid=$!
sleep 0.5
stop_metad
t_stop=$SECONDS
( sleep 3; start_metad >/dev/null 2>&1; echo "$METAD_PID" >"$T/metad.pid" ) &
rpid=$!
wait "$cpid"
# the copy can end before the restarting subshell has written the pid
wait "$rpid"
METAD_PID=$(cat "$T/metad.pid" 2>/dev/null)
[ -n "$METAD_PID" ] && OWN_PIDS+=("$METAD_PID")
expect_eq "a copy across a 3 s metad outage succeeds" "exit status" 0 "$(cat "$T/cp.rc")"
note "copy finished $((SECONDS - t_stop))s after metad was stopped"
expect_eq "its data is intact" sha256 "$(sha256sum <"$T/m.src")" "$(sha256sum <"$MNT/during-outage")"

# ---- 6. the minimum is configurable: --min-replicas 1 accepts one copy
umount_fs "$MNT"
for i in 1 2 3; do stop_chunkd "$i"; unset "CHUNK_ADDRS[$i]" "CHUNK_PORTS[$i]" "CHUNK_PIDS[$i]"; done
stop_metad
METAD_PORT= METAD_DATA=$T/metad-min1
start_metad --format --min-replicas 1 --heartbeat-timeout "${HB_TIMEOUT}s" || bail setup "metad (min 1)"
start_chunkd_x 4 && start_chunkd_x 5 && wait_cluster 2 || bail setup "cluster (min 1)"
stop_chunkd 5
wait_until $((HB_TIMEOUT + 10)) state_is 5 down
mount_fs "$MNT" "$T/cache6" --retry-time 2s || bail setup "mount (min 1)"
LOG=$T/logs/mount-mnt.log
head -c $((8 << 20)) /dev/urandom >"$T/min1.src"
cp "$T/min1.src" "$MNT/min1"
expect_eq "with --min-replicas 1, close succeeds with one server up" "cp exit status" 0 "$?"
if grep -qE "chunk [0-9a-f]{64}: stored on 1 of 2 servers \(under-replicated\)" "$LOG"; then
  ok "the client logs the under-replicated write"
else
  fail "the client logs the under-replicated write" "no 'stored on 1 of 2 servers' line"
fi
cairn --quiet fsck >"$T/fsck6.out" 2>&1
expect_eq "fsck reports the chunks under-replicated" "under-replicated" 2 \
  "$(awk '$1 == "under-replicated" && $2 ~ /^[0-9]+$/ { print $2 }' "$T/fsck6.out")"
start_chunkd_x 5 "${CHUNK_PORTS[5]}" || bail restart "chunkd 5"
wait_cluster 2 || bail restart "cluster (min 1)"
check "repair brings them to 2 copies once the server is back" converge 60
finish
