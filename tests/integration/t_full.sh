#!/bin/bash
# Full disks, with R=2 on three chunk servers. Server 2 keeps its data on
# a small tmpfs that other data (a filler file) has nearly filled:
#  - it refuses chunk uploads with 507 (ENOSPC) and the client stores the
#    copy on the next server in HRW order; nothing half-written is left on
#    it (no file in its tmp/ staging area, no chunk file, its free space
#    back to what it was); a direct PUT of a valid chunk answers 507 too;
#  - once its free space is under metad's --full-reserve, metad marks it
#    FULL in the cluster map (cairn status, /metrics) and clients stop
#    sending it new chunks;
#  - every file written while it was full reads back identical through a
#    fresh mount without cache, and cairn fsck counts 2 copies of every
#    chunk (checked on disk as well);
#  - with its space back, metad makes it an ordinary UP server again.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/redundancy.sh"

CHUNK=$((4 << 20))
TMPFS_MB=32
RESERVE=$((1 << 20))         # metad --full-reserve
# Weights follow capacity: give servers 1 and 3 a capacity of the same
# weight class as the 32 MiB tmpfs (HRW weights are max(1, GiB)), so that
# server 2 is a target of about 2/3 of the chunks.
CAP13=1G
CHUNKD_ARGS=(--repair-interval 0 --repair-delay 1h --gc-interval 0 --scrub-interval 0
  --sha-scrub-interval 0)
FULLDIR=$T/chunk2

_full_cleanup() {
  local rc=$?
  # chunk server 2 keeps files open on the tmpfs: stop it (by pid) first
  [ -n "${CHUNK_PIDS[2]:-}" ] && stop_chunkd 2 >/dev/null
  if mountpoint -q "$FULLDIR"; then
    umount "$FULLDIR" 2>/dev/null || umount -l "$FULLDIR" 2>/dev/null ||
      echo "# cannot unmount the tmpfs at $FULLDIR"
  fi
  (exit $rc)
  _cleanup
}
trap _full_cleanup EXIT

# avail bytes of the tmpfs, as statvfs reports it to chunkd
fs_avail() { df -B1 --output=avail "$FULLDIR" | tail -n 1 | tr -d ' '; }
# fill the tmpfs with other data until only $1 bytes are available
leave_free() { # BYTES
  local cur add
  cur=$(fs_avail)
  add=$((cur - $1))
  [ "$add" -gt 0 ] || return 0
  fallocate -l $(($(stat -c %s "$FULLDIR/filler" 2>/dev/null || echo 0) + add)) "$FULLDIR/filler"
}
tmp_files() { find "$FULLDIR/tmp" -mindepth 1 2>/dev/null | wc -l; }
# every file in server 2's data directory but the filler, with its size
data_files() { (cd "$FULLDIR" && find . -type f ! -path ./filler -printf '%p %s\n' | sort); }
req_count() { # I CODE: chunk_put requests of server I answered CODE
  local v
  v=$(chunk_metric "$1" "cairn_http_requests_total{route=\"chunk_put\",code=\"$2\"}")
  echo "${v:-0}"
}
state_is() { [ "$(server_state "$1")" = "$2" ]; }
# chunk ids of FILE (sha256 of each 4 MiB slice), one a line
chunk_ids() {
  python3 - "$1" "$CHUNK" <<'PY'
import hashlib, sys
with open(sys.argv[1], "rb") as f:
    while True:
        b = f.read(int(sys.argv[2]))
        if not b:
            break
        print(hashlib.sha256(b).hexdigest())
PY
}
copies_of() { # ID: servers holding a chunk file for ID
  local i n=0 id=$1
  for i in 1 2 3; do
    [ -f "$T/chunk$i/chunks/${id:0:2}/${id:2:2}/$id" ] && n=$((n + 1))
  done
  echo "$n"
}

# ---- setup: metad, a 32 MiB tmpfs for server 2, three chunk servers
start_metad --format --full-reserve "$RESERVE" --heartbeat-timeout 5s ||
  bail setup "metad did not start"
mkdir -p "$FULLDIR"
mount -t tmpfs -o size=${TMPFS_MB}M tmpfs "$FULLDIR" || bail setup "cannot mount a tmpfs on $FULLDIR"
start_chunkd_x 1 0 --capacity "$CAP13" || bail setup "chunkd 1"
start_chunkd_x 2 || bail setup "chunkd 2"
start_chunkd_x 3 0 --capacity "$CAP13" || bail setup "chunkd 3"
wait_cluster 3 || bail setup "cluster did not come up"
MNT=$T/mnt
mount_fs "$MNT" "$T/cache" --retry-time 20s || bail setup "mount failed"
LOG=$T/logs/mount-mnt.log
SID2=$(server_id 2)

# ---- 1. the disk is nearly full (3 MiB left, above the reserve): metad
# still places chunks on server 2, which cannot hold a 4 MiB chunk
leave_free $((3 << 20)) || bail setup "cannot fill the tmpfs"
avail0=$(fs_avail)
files0=$(data_files)
note "server 2 (id $SID2): tmpfs of ${TMPFS_MB} MiB with $avail0 bytes available; metad --full-reserve $RESERVE"
expect_eq "server 2 is still UP with 3 MiB free (reserve 1 MiB)" state up "$(server_state 2)"

mkdir -p "$T/src"
for k in 1 2 3 4 5 6; do head -c $((8 << 20)) /dev/urandom >"$T/src/a$k"; done
e507=$(req_count 2 507)
rc=0
for k in 1 2 3 4 5 6; do cp "$T/src/a$k" "$MNT/a$k" || rc=$?; done
expect_eq "writes succeed while a target's disk is full" "cp exit status" 0 "$rc"
n507=$(($(req_count 2 507) - e507))
if [ "$n507" -gt 0 ]; then
  ok "the full server answered 507 to uploads ($n507 times)"
else
  fail "the full server answered 507 to uploads" "chunk_put 507 count: $n507"
fi
if grep -qE "PUT to server $SID2 \([^)]*\) answered 507" "$LOG"; then
  ok "the client saw the 507 and stored the copy on the next server in HRW order"
else
  fail "the client saw the 507 and stored the copy on the next server in HRW order" \
    "no 'PUT to server $SID2 ... answered 507' line in $LOG"
fi
expect_eq "nothing is left in the full server's tmp/ staging area" "entries in $FULLDIR/tmp" 0 "$(tmp_files)"
expect_eq "no chunk file (whole or partial) on the full server" "chunk files on server 2" 0 "$(chunk_files 2)"
expect_eq "the full server's free space is what it was before the refused uploads" "available bytes" \
  "$avail0" "$(fs_avail)"
expect_eq "no file appeared anywhere in the full server's data directory" "files (path size)" \
  "$files0" "$(data_files)"
grep -q 'ENOSPC\|No space' "$T/logs/chunkd2.log" && note "chunkd 2 log: $(grep -m1 'ENOSPC\|No space' "$T/logs/chunkd2.log")"

# the chunk server's own answer, directly: a valid 4 MiB chunk
head -c "$CHUNK" /dev/urandom >"$T/probe"
pid_=$(sha256sum <"$T/probe" | cut -c1-64)
code=$(curl -s --max-time 30 -o "$T/probe.body" -D "$T/probe.hdr" -w '%{http_code}' -X PUT \
  -H 'Content-Type: application/octet-stream' --data-binary @"$T/probe" \
  "http://${CHUNK_ADDRS[2]}/chunks/$pid_")
expect_eq "a direct PUT of a valid chunk to the full server answers 507" "HTTP status" 507 "$code"
expect_eq "the 507 names ENOSPC" "Cairn-Errno" ENOSPC \
  "$(awk -F': *' 'tolower($1) == "cairn-errno" { sub(/\r$/, "", $2); print $2 }' "$T/probe.hdr")"
expect_eq "after it, tmp/ holds nothing" "entries in $FULLDIR/tmp" 0 "$(tmp_files)"
expect_eq "after it, no chunk file for that id on the full server" "copies on server 2" 0 \
  "$([ -e "$FULLDIR/chunks/${pid_:0:2}/${pid_:2:2}/$pid_" ] && echo 1 || echo 0)"
expect_eq "after it, the data directory holds the same files as before" "files (path size)" \
  "$files0" "$(data_files)"
code=$(curl -s --max-time 30 -o /dev/null -w '%{http_code}' -X PUT \
  -H 'Content-Type: application/octet-stream' --data-binary @"$T/probe" \
  "http://${CHUNK_ADDRS[1]}/chunks/$pid_")
expect_eq "the same PUT to a server with room stores it (the body was valid)" "HTTP status" 201 "$code"
curl -s --max-time 10 -o /dev/null -X DELETE "http://${CHUNK_ADDRS[1]}/chunks/$pid_"

# ---- 2. less free space than the reserve: metad marks the server FULL
leave_free $((256 << 10)) || fail "fill the tmpfs further" "fallocate failed"
note "server 2 now has $(fs_avail) bytes available"
if wait_until 15 state_is 2 full; then
  ok "metad marks the server FULL in the cluster map (cairn status)"
else
  fail "metad marks the server FULL in the cluster map (cairn status)" \
    "state of server 2: $(server_state 2); status:
$(cairn status 2>&1)"
fi
expect_eq "metad /metrics counts one full server" 'cairn_metad_servers{state="full"}' 1 \
  "$(metric 'cairn_metad_servers{state="full"}')"
if cairn status 2>/dev/null | grep -qE '^servers 3: 2 up, 1 full'; then
  ok "cairn status summarises 2 up, 1 full"
else
  fail "cairn status summarises 2 up, 1 full" "$(cairn status 2>&1 | head -n 3)"
fi
grep -q "cluster: server $SID2 is full" "$T/logs/metad.log" &&
  note "metad log: $(grep -m1 "cluster: server $SID2 is full" "$T/logs/metad.log")"

# writes while it is FULL: new chunks go to the other two only
for k in 1 2 3 4; do head -c $((8 << 20)) /dev/urandom >"$T/src/b$k"; done
head -c $((5 << 20 | 12345)) /dev/urandom >"$T/src/b5"
puts2=$(req_count 2 507)
created2=$(req_count 2 201)
rc=0
for k in 1 2 3 4 5; do cp "$T/src/b$k" "$MNT/b$k" || rc=$?; done
expect_eq "writes succeed while a server is FULL" "cp exit status" 0 "$rc"
expect_eq "no upload is sent to the FULL server" "chunk_put 201+507 answers of server 2" 0 \
  "$(($(req_count 2 507) - puts2 + $(req_count 2 201) - created2))"
expect_eq "tmp/ of the full server is still empty" "entries in $FULLDIR/tmp" 0 "$(tmp_files)"

# ---- 3. every file reads back identical, every chunk has its 2 copies
umount_fs "$MNT" || note "unmount reported a problem"
mount_fs "$MNT" "$T/cache2" --retry-time 20s --cache-size 0 --cache-mem 0 || bail remount "mount failed"
expect_eq "every file reads back identical (fresh mount, no cache)" "sha256 of each file" \
  "$(cd "$T/src" && sha256sum a* b* | sort)" "$(cd "$MNT" && sha256sum a* b* | sort)"

cairn --quiet fsck >"$T/fsck.out" 2>&1
frc=$?
kind() { awk -v k="$1" '$1 == k && $2 ~ /^[0-9]+$/ { print $2 }' "$T/fsck.out"; }
distinct=$(awk '/^files/ { for (i = 1; i < NF; i++) if ($i == "chunks") { v = $(i + 1); sub(",", "", v); print v } }' "$T/fsck.out")
for f in "$T"/src/*; do chunk_ids "$f"; done | sort -u >"$T/ids"
nids=$(wc -l <"$T/ids")
if [ "$frc" = 0 ] && [ "$(kind missing)" = 0 ] && [ "$(kind under-replicated)" = 0 ] &&
  [ "$distinct" = "$nids" ] &&
  [ $(($(kind ok) + $(kind misplaced))) = "$nids" ]; then
  ok "cairn fsck: all $nids chunks have their 2 copies ($(kind ok) on their targets, $(kind misplaced) moved off the full server)"
else
  fail "cairn fsck: every chunk has its 2 copies" "exit $frc, $nids source chunks:
$(cat "$T/fsck.out")"
fi
bad=0
while read -r id; do
  [ "$(copies_of "$id")" = 2 ] || { bad=$((bad + 1)); note "chunk $id: $(copies_of "$id") copies on disk"; }
done <"$T/ids"
expect_eq "on disk, every chunk file exists on exactly 2 servers" "chunks without 2 copies" 0 "$bad"

# ---- 4. space freed: the server becomes UP again
rm -f "$FULLDIR/filler"
if wait_until 15 state_is 2 up; then
  ok "with its space back the server is UP again"
else
  fail "with its space back the server is UP again" "state: $(server_state 2)"
fi
finish
