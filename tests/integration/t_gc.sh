#!/bin/bash
# Garbage collection on the chunk servers: chunks no file references (after
# an overwrite, a truncate, an unlink, or an upload whose commit never came
# because the client was killed) are deleted once the grace period has
# passed, and only then; nothing is deleted while metad cannot be asked;
# referenced chunks always stay; deleting a big file frees its space within
# a bounded time. The background pass runs on its own (--gc-interval); the
# admin trigger (POST /maint/run?pass=gc) is used where a case needs a pass
# at a known moment.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/redundancy.sh"

GRACE=15
INTERVAL=2
BIG_MB=${CAIRN_GC_BIG_MB:-1024}
CHUNKD_ARGS=(--gc-grace "${GRACE}s" --gc-interval "${INTERVAL}s" --repair-interval 0
  --scrub-interval 0 --sha-scrub-interval 0)
start_cluster_x 3 || bail setup "cluster did not start"
MNT=$T/mnt
mount_fs "$MNT" "$T/cache" --retry-time 30s || bail setup "mount failed"

files_are() { [ "$(chunk_files_total)" = "$1" ]; }
sum_metric() { # NAME: sum over the chunk servers
  local i s=0 v
  for i in "${!CHUNK_ADDRS[@]}"; do v=$(chunk_metric "$i" "$1"); s=$((s + ${v:-0})); done
  echo "$s"
}

# ---- 1. four files of 3 chunks each: 12 distinct chunks, 24 chunk files
for f in keep ovw trunc del; do head -c $((12 << 20)) /dev/urandom >"$T/$f.src"; done
head -c $((12 << 20)) /dev/urandom >"$T/ovw2.src"
for f in keep ovw trunc del; do cp "$T/$f.src" "$MNT/$f" || bail setup "cp $f"; done
expect_eq "each chunk is stored R=2 times" "chunk files" 24 "$(chunk_files_total)"

# ---- 2. overwrite, truncate, unlink: 9 chunks lose their last reference
# (the unlinked file's only when the mount releases its open-file hold on
# the orphan, at its next session renewal)
cp "$T/ovw2.src" "$MNT/ovw" && truncate -s 0 "$MNT/trunc" && rm "$MNT/del" ||
  bail setup "overwrite/truncate/unlink"
t_unref=$SECONDS
expect_eq "the overwrite stored its new chunks" "chunk files" 30 "$(chunk_files_total)"
deleted=0 unref=0
for i in 1 2 3; do
  maint "$i" gc >/dev/null
  deleted=$((deleted + $(maint_val "$i" deleted)))
  unref=$((unref + $(maint_val "$i" unreferenced)))
done
if [ $((SECONDS - t_unref)) -lt "$GRACE" ]; then
  expect_eq "within the grace period nothing is deleted" "chunks deleted" 0 "$deleted"
  if [ "$unref" -ge 12 ]; then ok "gc sees the unreferenced chunks and keeps them"
  else fail "gc sees the unreferenced chunks and keeps them" "unreferenced: $unref, expected at least 12"; fi
  note "unreferenced chunk files seen: $unref (18 once the unlinked file's hold is released)"
else
  skip "within the grace period nothing is deleted" "setup took longer than the grace period"
  skip "gc sees the unreferenced chunks and keeps them" "setup too slow"
fi

# ---- 3. after the grace period the background pass deletes exactly those
t0=$SECONDS
if wait_until $((GRACE + 45)) files_are 12; then
  ok "unreferenced chunks deleted after the grace period by the background pass"
  note "deleted $((SECONDS - t_unref))s after they lost their references (grace ${GRACE}s, interval ${INTERVAL}s)"
else
  fail "unreferenced chunks deleted after the grace period by the background pass" \
    "chunk files: $(chunk_files_total), expected 12 after $((SECONDS - t0))s"
fi
expect_eq "gc_deleted_total counts them" "sum of cairn_chunkd_gc_deleted_total" 18 \
  "$(sum_metric cairn_chunkd_gc_deleted_total)"
check "fsck: every referenced chunk still has its copies" cairn --quiet --strict fsck

umount_fs "$MNT"
mount_fs "$MNT" "$T/cache2" --cache-size 0 || bail remount "mount failed"
expect_eq "kept file reads back identical (fresh mount, no cache)" sha256 \
  "$(sha256sum <"$T/keep.src")" "$(sha256sum <"$MNT/keep")"
expect_eq "overwritten file reads back its new content" sha256 \
  "$(sha256sum <"$T/ovw2.src")" "$(sha256sum <"$MNT/ovw")"
expect_eq "truncated file is empty" size 0 "$(stat -c %s "$MNT/trunc")"

# ---- 4. a client killed before its commit: uploads stay through the grace
# period, then go; nothing is deleted while metad is unreachable
M2=$T/mnt2
mount_fs "$M2" "$T/cache3" || bail setup "second mount failed"
python3 - "$M2/dead" "$T/writer.ready" <<'PY' &
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
for i in range(10):
    os.write(fd, os.urandom(4 << 20))
# hand the kernel's dirty pages (writeback cache) to cairn-mount without an
# fsync, which would commit
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
open(sys.argv[2], "w").close()
time.sleep(300)   # never closes: the client dies first
PY
writer=$!
wait_until 60 test -e "$T/writer.ready" || fail "writer wrote 40 MiB" "no progress"
# the 10 sealed chunks upload in the background; wait for their 20 copies
if wait_until 30 files_are 32; then ok "uploads of the uncommitted file reached the servers"
else fail "uploads of the uncommitted file reached the servers" "chunk files: $(chunk_files_total), expected 32"; fi
kill -KILL "$(mount_pid "$M2")" 2>/dev/null
kill -KILL "$writer" 2>/dev/null
wait "$writer" 2>/dev/null
timeout 10 fusermount3 -uz "$M2" 2>/dev/null || timeout 10 umount -l "$M2" 2>/dev/null
t_dead=$SECONDS
maint_all gc
expect_eq "uploads never committed survive gc within the grace period" "chunk files" 32 "$(chunk_files_total)"
stop_metad
# wait until every chunk file is older than the grace period
old_enough() { [ -z "$(find "$T"/chunk?/chunks -type f -newermt "-${GRACE} seconds" | head -n 1)" ]; }
wait_until $((GRACE + 10)) old_enough
if maint 1 gc >/dev/null; then
  fail "gc without metad deletes nothing and reports failure" "the pass reported success"
else
  expect_eq "gc without metad deletes nothing and reports failure" "chunk files" 32 "$(chunk_files_total)"
fi
note "chunkd 1: $(grep -m1 'gc pass stopped' "$T/logs/chunkd1.log" | cut -d' ' -f4-)"
start_metad || bail restart "metad"
if wait_until 30 files_are 12; then
  ok "uploads of the dead client deleted after the grace period once metad answers"
  note "gone $((SECONDS - t_dead))s after the client was killed"
else
  fail "uploads of the dead client deleted after the grace period once metad answers" \
    "chunk files: $(chunk_files_total), expected 12"
fi
expect_eq "the kept file is intact" sha256 "$(sha256sum <"$T/keep.src")" "$(sha256sum <"$MNT/keep")"

# ---- 5. deleting a big file frees its space within a bounded time
before=$(chunk_files_total)
t0=$(date +%s.%N)
dd if=/dev/urandom of="$MNT/big" bs=1M count="$BIG_MB" status=none || fail "write ${BIG_MB} MiB" "dd failed"
note "wrote ${BIG_MB} MiB in $(elapsed "$t0")s"
stored=$(sum_metric cairn_chunkd_bytes_stored)
held=$(( $(chunk_files_total) - before ))
expect_eq "the big file is stored twice" "chunk files" $((2 * ((BIG_MB + 3) / 4))) "$held"
rm "$MNT/big"
t_rm=$SECONDS
bound=$((GRACE + 4 * INTERVAL + 30))
if wait_until "$bound" files_are "$before"; then
  ok "deleting a ${BIG_MB} MiB file frees its chunks within ${bound}s"
  note "space freed $((SECONDS - t_rm))s after rm (grace ${GRACE}s, gc interval ${INTERVAL}s)"
else
  fail "deleting a ${BIG_MB} MiB file frees its chunks within ${bound}s" \
    "$(( $(chunk_files_total) - before )) chunk files left after $((SECONDS - t_rm))s"
fi
# heartbeats carry the new usage to metad
freed=$((stored - $(sum_metric cairn_chunkd_bytes_stored)))
note "bytes stored on the chunk servers dropped by $((freed >> 20)) MiB"
if [ "$freed" -ge $((2 * BIG_MB * 1048576)) ]; then ok "bytes_stored drops by twice the file size"
else fail "bytes_stored drops by twice the file size" "dropped by $freed bytes"; fi
check "fsck after gc: nothing missing" cairn --quiet --strict fsck
finish
