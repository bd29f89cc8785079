#!/bin/bash
# Scrub: chunk files are re-verified (CRC32C; SHA-256 on the slower cadence);
# a corrupted file is moved aside to DATA/corrupt/ and replaced by a good
# copy fetched from another server; corrupt bytes are never served (a GET
# of a damaged file answers 500, and with every copy damaged a read through
# the mount fails with EIO instead of returning wrong data).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/redundancy.sh"

CHUNKD_ARGS=(--scrub-interval 0 --sha-scrub-interval 0 --repair-interval 0 --gc-interval 0
  --maint-rate 0)
start_cluster_x 3 || bail setup "cluster did not start"
MNT=$T/mnt
mount_fs "$MNT" "$T/cache" --retry-time 5s || bail setup "mount failed"

head -c $((40 << 20)) /dev/urandom >"$T/a.src"
head -c 100000 /dev/urandom >"$T/small.src"
cp "$T/a.src" "$MNT/a" && cp "$T/small.src" "$MNT/small" || bail setup "writes failed"
SMALL_ID=$(sha256sum <"$T/small.src" | cut -c1-64)

flip() { # FILE OFFSET: flip one bit of one byte in place
  python3 - "$1" "$2" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2])); b = f.read(1); f.seek(int(sys.argv[2]))
    f.write(bytes([b[0] ^ 0x04]))
PY
}

# Replace a chunk file's payload with other bytes and fix both CRCs, so only
# a SHA-256 check can tell (chunk file format: server/chunk/chunkfile.h).
forge() { # FILE
  python3 - "$1" <<'PY'
import struct, sys
T = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    T.append(c)
def crc32c(b):
    c = 0xFFFFFFFF
    for x in b:
        c = T[(c ^ x) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF
d = bytearray(open(sys.argv[1], "rb").read())
hdr, payload = d[:64], bytearray(d[64:])
assert hdr[5] == 0, "compressed chunk"
payload[len(payload) // 2] ^= 0xFF
struct.pack_into("<I", hdr, 24, crc32c(payload))
struct.pack_into("<I", hdr, 60, crc32c(hdr[:60]))
open(sys.argv[1], "wb").write(hdr + payload)
PY
}

chunk_path() { # I ID
  echo "$T/chunk$1/chunks/${2:0:2}/${2:2:2}/$2"
}
# a chunk id held by server I (first in directory order), optionally not ID2
some_chunk() { # I [EXCEPT]
  find "$T/chunk$1/chunks" -type f -printf '%f\n' | sort | grep -v "^${2:-none}\$" | head -n 1
}
# the servers holding ID
holders() { # ID
  local i
  for i in 1 2 3; do [ -f "$(chunk_path "$i" "$1")" ] && echo "$i"; done
}
good_copy() { # I ID: the server serves bytes that hash to the id
  [ "$(curl -s --max-time 10 "http://${CHUNK_ADDRS[$1]}/chunks/$2" | sha256sum | cut -c1-64)" = "$2" ]
}
corrupt_files() { find "$T/chunk$1/corrupt" -type f | wc -l; }

# ---- 1. a client GET never receives a damaged file; the server re-fetches it
id=$(some_chunk 1)
flip "$(chunk_path 1 "$id")" 5000
code=$(curl -s -o "$T/got" -w '%{http_code}' "http://${CHUNK_ADDRS[1]}/chunks/$id")
expect_eq "GET of a damaged chunk file answers 500, not the bytes" "status" 500 "$code"
expect_eq "the damaged file is moved to DATA/corrupt/" "files in corrupt/" 1 "$(corrupt_files 1)"
if wait_until 20 good_copy 1 "$id"; then ok "a good copy is fetched from another server on its own"
else fail "a good copy is fetched from another server on its own" "server 1 does not serve $id"; fi
note "$(grep -m1 "chunk $id: good copy fetched" "$T/logs/chunkd1.log" | cut -d' ' -f4-)"

# ---- 2. the scrub pass finds a damaged payload and repairs it
id2=$(some_chunk 2 "$id")
flip "$(chunk_path 2 "$id2")" 70000
maint 2 scrub >"$T/scrub2.out"
expect_eq "scrub reports the corrupt file" "corrupt" 1 "$(maint_val 2 corrupt)"
expect_eq "scrub re-fetched it" "refetched" 1 "$(maint_val 2 refetched)"
note "scrub of server 2: $(maint_val 2 scanned) chunks, $(maint_val 2 bytes) bytes in $(maint_val 2 seconds)s"
check "the repaired copy is good" good_copy 2 "$id2"
expect_eq "the damaged file is kept in corrupt/ for inspection" "files in corrupt/" 1 "$(corrupt_files 2)"
expect_eq "metrics: cairn_chunkd_scrub_corrupt_total" "value" 1 "$(chunk_metric 2 cairn_chunkd_scrub_corrupt_total)"
expect_eq "metrics: cairn_chunkd_refetched_total" "value" 1 "$(chunk_metric 2 cairn_chunkd_refetched_total)"

# a damaged header is caught as well
id3=$(some_chunk 3)
flip "$(chunk_path 3 "$id3")" 20
maint 3 scrub >/dev/null
expect_eq "scrub catches a damaged header" "corrupt/refetched" "1/1" \
  "$(maint_val 3 corrupt)/$(maint_val 3 refetched)"

# ---- 3. a payload with valid CRCs but wrong bytes: only the SHA-256 scrub sees it
h=$(holders "$SMALL_ID" | head -n 1)
if [ -z "$h" ]; then
  bail "small chunk on disk" "no server holds $SMALL_ID"
fi
forge "$(chunk_path "$h" "$SMALL_ID")"
maint "$h" scrub >/dev/null
expect_eq "a CRC scrub cannot see a forged payload" "corrupt" 0 "$(maint_val "$h" corrupt)"
maint "$h" sha-scrub >/dev/null
expect_eq "the SHA-256 scrub finds it and re-fetches it" "corrupt/refetched" "1/1" \
  "$(maint_val "$h" corrupt)/$(maint_val "$h" refetched)"
check "the forged copy was replaced by a good one" good_copy "$h" "$SMALL_ID"

# ---- 4. every file reads back identical through a fresh mount
umount_fs "$MNT"
mount_fs "$MNT" "$T/cache2" --retry-time 5s --cache-size 0 --cache-mem 0 || bail remount "mount failed"
expect_eq "40 MiB file reads back identical (fresh mount)" sha256 "$(sha256sum <"$T/a.src")" "$(sha256sum <"$MNT/a")"
expect_eq "small file reads back identical (fresh mount)" sha256 "$(sha256sum <"$T/small.src")" "$(sha256sum <"$MNT/small")"
check "fsck: every chunk has its copies again" cairn --quiet --strict fsck

# ---- 5. every copy damaged: reads fail with EIO, never wrong bytes
for i in $(holders "$SMALL_ID"); do flip "$(chunk_path "$i" "$SMALL_ID")" 99; done
umount_fs "$MNT" # nothing of the file may come from the kernel's page cache
mount_fs "$MNT" "$T/cache3" --retry-time 3s --cache-size 0 --cache-mem 0 || bail remount "mount failed"
res=$(python3 -c '
import errno, sys
try:
    open(sys.argv[1], "rb").read(); print("ok")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))' "$MNT/small")
expect_eq "a chunk whose every copy is damaged reads as EIO" "read result" EIO "$res"
for i in 1 2 3; do maint "$i" scrub >/dev/null; done
if [ -z "$(holders "$SMALL_ID")" ]; then ok "damaged copies are all moved aside, none is served"
else fail "damaged copies are all moved aside, none is served" "still on: $(holders "$SMALL_ID")"; fi
failed=0
for i in 1 2 3; do failed=$((failed + $(chunk_metric "$i" cairn_chunkd_refetch_failed_total))); done
if [ "$failed" -ge 1 ]; then ok "a chunk with no good copy left is reported (refetch_failed)"
else fail "a chunk with no good copy left is reported (refetch_failed)" "refetch_failed_total is 0"; fi
cairn --quiet fsck >"$T/fsck.out" 2>&1
rc=$?
expect_eq "fsck exits non-zero when a chunk is missing" "exit status" 1 "$rc"
if grep -q "missing chunk $SMALL_ID" "$T/fsck.out"; then ok "fsck names the missing chunk and its file"
else fail "fsck names the missing chunk and its file" "$(cat "$T/fsck.out")"; fi

# ---- 6. the background scrub runs on its cadence, rate limited
stop_chunkd 3
start_chunkd_x 3 "${CHUNK_PORTS[3]}" --scrub-interval 3s --maint-rate 8M || bail restart "chunkd 3"
id4=$(some_chunk 3)
flip "$(chunk_path 3 "$id4")" 4096
bg_repaired() { [ "$(chunk_metric 3 cairn_chunkd_refetched_total)" = 1 ] && good_copy 3 "$id4"; }
if wait_until 40 bg_repaired; then ok "the background scrub finds and repairs a damaged file"
else fail "the background scrub finds and repairs a damaged file" "refetched_total: $(chunk_metric 3 cairn_chunkd_refetched_total)"; fi
maint 3 sha-scrub >/dev/null
bytes=$(maint_val 3 bytes)
secs=$(maint_val 3 seconds)
note "sha-scrub of server 3 at --maint-rate 8M: $bytes bytes in ${secs}s"
# a quarter second of budget may be spent at once (maint.c)
if awk -v b="$bytes" -v s="$secs" 'BEGIN { exit !(b > 8 * 1048576 && s >= b / (8 * 1048576) - 0.3) }'; then
  ok "scrub reads at most --maint-rate"
else
  fail "scrub reads at most --maint-rate" "$bytes bytes in ${secs}s"
fi
finish
