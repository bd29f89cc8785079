#!/bin/bash
# A 1 GiB file through a cairn mount: bytes survive a fresh mount (data from
# the chunk servers, not the cache), the client's memory stays bounded, the
# servers hold R copies; fio writes and verifies its own pattern.
. "$(dirname "$0")/lib.sh"

MNT=$T/mnt
SIZE_MB=${CAIRN_BIGFILE_MB:-1024}
SIZE=$((SIZE_MB << 20))
REPLICAS=2
# --cache-mem default (64M) plus the 256 MiB allowed for everything else
RSS_LIMIT_KB=$(((256 + 64) << 10))
# AddressSanitizer's shadow memory and quarantine make RSS meaningless
ASAN=0
ldd "$MOUNT_BIN" 2>/dev/null | grep -q libasan && ASAN=1

rss_case() { # NAME HWM_KB WHAT
  if [ "$ASAN" = 1 ]; then
    skip "$1" "cairn-mount is built with AddressSanitizer"
  elif [ -n "$2" ] && [ "$2" -lt "$RSS_LIMIT_KB" ]; then
    ok "$1"
  else
    fail "$1" "VmHWM of cairn-mount after $3 is ${2:-?} KiB, limit $RSS_LIMIT_KB KiB"
  fi
}

start_cluster 2 || bail setup "cluster did not start"
mount_fs "$MNT" "$T/cache1" || bail setup "mount failed"

t0=$SECONDS
head -c "$SIZE" /dev/urandom >"$T/src" || bail setup "cannot create the source file"
src_sum=$(sha256sum <"$T/src" | cut -d' ' -f1)
note "source: $SIZE_MB MiB of random data ($((SECONDS - t0))s)"

# ---- write
t0=$(date +%s.%N)
dd if="$T/src" of="$MNT/f" bs=1M 2>"$T/dd.err"
rc=$?
dt=$(elapsed "$t0")
note "dd write: ${dt}s, $(awk -v m="$SIZE_MB" -v t="$dt" 'BEGIN { printf "%.1f", m / t }') MiB/s"
if [ $rc -eq 0 ]; then ok dd_write; else fail dd_write "dd exit $rc: $(tail -n 3 "$T/dd.err")"; fi
expect_eq size_after_write "stat -c %s of the written file" "$SIZE" "$(stat -c %s "$MNT/f" 2>&1)"

pid=$(mount_pid "$MNT")
hwm=$(vm_hwm_kb "$pid")
note "peak RSS (VmHWM) of cairn-mount while writing: $((hwm / 1024)) MiB (limit $((RSS_LIMIT_KB / 1024)) MiB)"
rss_case peak_rss_write "$hwm" "writing $SIZE_MB MiB"

# ---- chunk servers hold REPLICAS copies (within 5%)
total=0
for i in "${!CHUNK_ADDRS[@]}"; do
  b=$(du -sb "$T/chunk$i" | cut -f1)
  note "chunkd $i data dir: $b bytes"
  total=$((total + b))
done
want=$((REPLICAS * SIZE))
lo=$((want - want / 20))
hi=$((want + want / 20))
if [ "$total" -ge "$lo" ] && [ "$total" -le "$hi" ]; then
  ok "replicas_on_disk"
else
  fail replicas_on_disk "chunk servers hold $total bytes in total, expected $want +-5% ($REPLICAS x $SIZE)"
fi

# ---- read back through a fresh mount with an empty cache, over HTTP
umount_fs "$MNT" || fail umount_after_write "unmount after the write was not clean"
rm -rf "$T/cache1"
mount_fs "$MNT" "$T/cache2" --no-local-reads || bail remount "fresh mount failed"
served0=$(chunk_metric_sum cairn_http_bytes_out_total)
t0=$(date +%s.%N)
got=$(sha256sum <"$MNT/f" | cut -d' ' -f1)
dt=$(elapsed "$t0")
note "read through a fresh mount: ${dt}s, $(awk -v m="$SIZE_MB" -v t="$dt" 'BEGIN { printf "%.1f", m / t }') MiB/s"
expect_eq sha256_fresh_mount "sha256 of $SIZE_MB MiB read through a fresh mount" "$src_sum" "$got"
if [ "$got" != "$src_sum" ]; then
  cmp "$T/src" "$MNT/f" 2>&1 | head -n 2 | while read -r l; do note "$l"; done
fi
served=$(($(chunk_metric_sum cairn_http_bytes_out_total) - served0))
note "chunk servers sent $served bytes during the read"
if [ "$served" -ge "$SIZE" ]; then
  ok read_from_chunk_servers
else
  fail read_from_chunk_servers "chunk servers sent $served bytes while a fresh mount read $SIZE bytes (expected at least $SIZE)"
fi
pid=$(mount_pid "$MNT")
hwm=$(vm_hwm_kb "$pid")
note "peak RSS (VmHWM) of cairn-mount while reading: $((hwm / 1024)) MiB"
rss_case peak_rss_read "$hwm" "reading $SIZE_MB MiB"

# ---- and through a fresh mount that reads the chunk servers' files here
umount_fs "$MNT" || fail umount_after_read "unmount after the read was not clean"
rm -rf "$T/cache2"
mount_fs "$MNT" "$T/cache3" || bail remount "fresh mount failed"
served0=$(chunk_metric_sum cairn_http_bytes_out_total)
t0=$(date +%s.%N)
got=$(sha256sum <"$MNT/f" | cut -d' ' -f1)
note "read through a fresh mount with local reads: $(elapsed "$t0")s"
expect_eq sha256_local_reads "sha256 of $SIZE_MB MiB read from local chunk files" "$src_sum" "$got"
served=$(($(chunk_metric_sum cairn_http_bytes_out_total) - served0))
umount_fs "$MNT" || fail umount_after_local_read "unmount after the read was not clean"
local_line=$(grep -a "chunks fetched:" "$T/logs/mount-$(basename "$MNT").log" | tail -n 1)
note "${local_line#*mount: }"
nlocal=$(sed -n 's/.*of which \([0-9]*\) from local chunk files.*/\1/p' <<<"$local_line")
# the first chunks may come over HTTP while the servers are asked
if [ "$served" -lt $((SIZE / 10)) ] && [ "${nlocal:-0}" -ge $((SIZE / (4 << 20) * 9 / 10)) ]; then
  ok read_local_chunk_files
else
  fail read_local_chunk_files "chunk servers sent $served bytes of $SIZE; $nlocal chunks read locally"
fi
mount_fs "$MNT" "$T/cache4" || bail remount "mount failed"
rm -f "$T/src"

# ---- fio: write with its own checksums and verify, then verify through a fresh mount
if command -v fio >/dev/null; then
  FIO=(fio --name=w --filename="$MNT/fio" --bs=1M --size=256M --ioengine=psync --verify=crc32c)
  t0=$SECONDS
  if "${FIO[@]}" --rw=write --end_fsync=1 --do_verify=1 >"$T/fio1.out" 2>&1 &&
    ! grep -qiE 'verify failed|bad magic|err= *[1-9]' "$T/fio1.out"; then
    ok fio_write_verify
  else
    fail fio_write_verify "fio write + verify failed:
$(grep -iE 'verify|error|err=' "$T/fio1.out" | head -n 6)"
  fi
  note "fio write+verify 256 MiB: $((SECONDS - t0))s"
  umount_fs "$MNT" || fail umount_after_fio "unmount after fio was not clean"
  mount_fs "$MNT" "$T/cache3" || bail remount "fresh mount failed"
  if "${FIO[@]}" --rw=read >"$T/fio2.out" 2>&1 &&
    ! grep -qiE 'verify failed|bad magic|err= *[1-9]' "$T/fio2.out"; then
    ok fio_read_verify_fresh_mount
  else
    fail fio_read_verify_fresh_mount "fio read with --verify=crc32c through a fresh mount failed:
$(grep -iE 'verify|error|err=' "$T/fio2.out" | head -n 6)"
  fi
else
  skip fio_write_verify "fio not installed"
  skip fio_read_verify_fresh_mount "fio not installed"
fi

if umount_fs "$MNT"; then ok umount_clean; else fail umount_clean "unmount was not clean"; fi
finish
