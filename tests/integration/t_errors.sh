#!/bin/bash
# Unreachable servers: bounded retries, then EIO with a log line that names
# the server and the operation; a metad restart within the retry window is a
# delay, not an error; never a silent short write or success.
. "$(dirname "$0")/lib.sh"

start_cluster 3 || bail setup "cluster did not start"
MNT=$T/mnt
mount_fs "$MNT" "$T/cache" --retry-time 3s || bail setup "mount failed"
LOG=$T/logs/mount-mnt.log

# write + close of a whole file; prints "ok" or the errno name of the failure
write_close() { # PATH BYTES
  python3 - "$1" "$2" <<'PY'
import errno, os, sys
path, n = sys.argv[1], int(sys.argv[2])
try:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    data = os.urandom(n)
    off = 0
    while off < n:
        off += os.write(fd, data[off:off + (1 << 20)])
    os.close(fd)
    print("ok")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
PY
}

# 1. all chunk servers down: close() fails with EIO, the log names the chunk
check "write before failure" test "$(write_close "$MNT/before" 3000000)" = ok
for i in 1 2 3; do stop_chunkd "$i"; done
start=$(date +%s.%N)
res=$(write_close "$MNT/lost" 5000000)
took=$(elapsed "$start")
expect_eq "close fails with EIO when no chunk server is reachable" "close() result" EIO "$res"
note "failed after ${took}s (retry time 3s)"
if awk -v t="$took" 'BEGIN { exit !(t < 30) }'; then ok "failure is bounded in time"; else fail "failure is bounded in time" "took ${took}s"; fi
if grep -qE "chunk [0-9a-f]{64}: upload failed" "$LOG"; then ok "log names the chunk that failed"
else fail "log names the chunk that failed" "no 'chunk <id>: upload failed' line in $LOG"; fi
if grep -qE "PUT to server [0-9]+ \(127\.0\.0\.1:[0-9]+\) failed" "$LOG"; then ok "log names the server that failed"
else fail "log names the server that failed" "no 'PUT to server N (addr) failed' line"; fi

# 2. reads of a chunk whose every replica is down fail with EIO (fresh cache)
for i in 1 2 3; do start_chunkd "$i" "${CHUNK_PORTS[$i]}" || bail restart "chunkd $i"; done
wait_cluster 3 || bail restart "cluster"
check "write works again once servers are back" test "$(write_close "$MNT/after" 3000000)" = ok
sum=$(sha256sum < "$MNT/after")
umount_fs "$MNT"
mount_fs "$MNT" "$T/cache2" --retry-time 3s --cache-size 0 --cache-mem 0 || bail remount "mount failed"
LOG=$T/logs/mount-mnt.log
for i in 1 2 3; do stop_chunkd "$i"; done
res=$(python3 -c '
import errno, sys
try:
    open(sys.argv[1], "rb").read(); print("ok")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))' "$MNT/after")
expect_eq "read with every replica down fails with EIO" "read result" EIO "$res"
if grep -qE "chunk [0-9a-f]{64}: no server returned a good copy" "$LOG"; then ok "log names the unreadable chunk"
else fail "log names the unreadable chunk" "no 'chunk <id>: no server returned a good copy' line"; fi
for i in 1 2 3; do start_chunkd "$i" "${CHUNK_PORTS[$i]}" || bail restart "chunkd $i"; done
wait_cluster 3 || bail restart "cluster"
expect_eq "the file reads back once a replica is back" "sha256" "$sum" "$(sha256sum < "$MNT/after")"

# 3. metad down for longer than the retry time: EIO naming metad and the op
stop_metad
res=$(python3 -c '
import errno, os, sys
try:
    os.stat(sys.argv[1]); print("ok")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))' "$MNT/no-such-name")
expect_eq "lookup with metad down fails with EIO" "stat result" EIO "$res"
# (the kernel asks for the directory's attributes first when its cached
# ones have expired: then that is the request that fails)
if grep -qE "metad 127\.0\.0\.1:$METAD_PORT: (lookup|getattr) failed after [0-9]+ attempts" "$LOG"; then
  ok "log names metad and the operation"
else
  fail "log names metad and the operation" "no 'metad ADDR: lookup (or getattr) failed after N attempts' line"
fi

# 4. metad restarted within the retry window: a delay, not an error
start_metad || bail restart "metad"
wait_cluster 3 || bail restart "cluster"
umount_fs "$MNT"
mount_fs "$MNT" "$T/cache3" --retry-time 20s || bail remount "mount failed"
stop_metad
# The outage lasts 2 s on purpose; the restarted pid is handed back so the
# EXIT trap stops it.
( sleep 2; start_metad >/dev/null 2>&1; echo "$METAD_PID" > "$T/metad.restarted" ) &
restarter=$!
res=$(write_close "$MNT/during-restart" 100000)
wait "$restarter"
METAD_PID=$(cat "$T/metad.restarted" 2>/dev/null)
[ -n "$METAD_PID" ] && OWN_PIDS+=("$METAD_PID")
expect_eq "create + write + close while metad restarts succeeds" "result" ok "$res"
check "the file is there after the restart" test "$(stat -c %s "$MNT/during-restart")" = 100000

finish
