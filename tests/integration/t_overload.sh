#!/bin/bash
# Overload: chunk servers cap the upload bytes they hold at once
# (cairn-chunkd --max-inflight); past the cap a PUT is answered 503 with
# Retry-After, and clients back off and retry. Three chunk servers with an
# 8 MiB cap (two 4 MiB chunks), R=2, and far more concurrent uploads than
# that (several mounts, many parallel writers):
#  - a direct PUT while a server's budget is held answers 503 + Retry-After
#    and stores nothing; once the budget is free the same PUT is stored;
#  - under load the servers did answer 503s, yet every writer exits 0 and
#    every file reads back identical (fresh mount, no cache);
#  - chunkd memory stays bounded: peak RSS (VmHWM) below a stated bound.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/redundancy.sh"

CHUNK=$((4 << 20))
CAP_MB=8
NMOUNTS=${CAIRN_OVERLOAD_MOUNTS:-3}
PER_MOUNT=${CAIRN_OVERLOAD_WRITERS:-4}   # parallel writers per mount
FILE_MB=${CAIRN_OVERLOAD_FILE_MB:-24}
# Peak RSS bound per chunkd, in MiB: the cap plus room for the program,
# its libraries and its connection threads. Measured on 2 cores with 3
# mounts x 4 writers: about 20 MiB (64-82 MiB before chunkd fixed its
# malloc mmap threshold, when freed bodies stayed cached in every arena).
HWM_BOUND_MB=$((CAP_MB + 32))
CHUNKD_ARGS=(--max-inflight "${CAP_MB}M" --repair-interval 0 --repair-delay 1h --gc-interval 0
  --scrub-interval 0 --sha-scrub-interval 0)

start_cluster_x 3 || bail setup "cluster did not start"

put_code() { # I CODE: chunk_put requests of server I answered CODE
  local v
  v=$(chunk_metric "$1" "cairn_http_requests_total{route=\"chunk_put\",code=\"$2\"}")
  echo "${v:-0}"
}
sum_code() { # CODE: the same summed over the three servers
  echo $(($(put_code 1 "$1") + $(put_code 2 "$1") + $(put_code 3 "$1")))
}
inflight() { # I
  local v
  v=$(chunk_metric "$1" cairn_http_inflight_body_bytes)
  echo "${v:-0}"
}

# ---- 1. the server's own answer: hold server 1's whole budget with one
# upload that announces 8 MiB and sends only a few bytes, then PUT
HOLD_FIFO=$T/hold.fifo
mkfifo "$HOLD_FIFO"
HOLD_PY=$(cat <<'PY'
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
n = int(sys.argv[2])
s = socket.create_connection((host, int(port)))
s.sendall(("PUT /chunks/%s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\n"
           "Content-Length: %d\r\n\r\n" % ("ab" * 32, sys.argv[1], n)).encode() + b"x" * 4096)
sys.stdin.read()              # until the test closes the fifo
s.close()
PY
)
python3 -c "$HOLD_PY" "${CHUNK_ADDRS[1]}" $((CAP_MB << 20)) <"$HOLD_FIFO" >"$T/hold.out" 2>&1 &
HOLD_PID=$!
exec 7>"$HOLD_FIFO"           # opening the writer end lets python start
held() { [ "$(inflight 1)" -ge $((CAP_MB << 20)) ]; }
if ! wait_until 10 held; then
  fail "a held upload reserves the whole budget" "cairn_http_inflight_body_bytes of server 1: $(inflight 1)"
fi
head -c "$CHUNK" /dev/urandom >"$T/probe"
pid_=$(sha256sum <"$T/probe" | cut -c1-64)
probe() { # I: PUT the probe chunk to server I; status on stdout, headers in $T/probe.hdr
  curl -s --max-time 30 -o /dev/null -D "$T/probe.hdr" -w '%{http_code}' -X PUT \
    -H 'Content-Type: application/octet-stream' --data-binary @"$T/probe" \
    "http://${CHUNK_ADDRS[$1]}/chunks/$pid_"
}
b503=$(put_code 1 503)
code=$(probe 1)
expect_eq "a PUT past the in-flight cap answers 503" "HTTP status" 503 "$code"
ra=$(awk -F': *' 'tolower($1) == "retry-after" { sub(/\r$/, "", $2); print $2 }' "$T/probe.hdr")
if [[ "$ra" =~ ^[0-9]+$ ]] && [ "$ra" -ge 1 ]; then
  ok "the 503 carries Retry-After ($ra s)"
else
  fail "the 503 carries Retry-After" "Retry-After: '$ra'"
fi
# the client of cairn (libcurl without "Expect: 100-continue") sends the
# body right behind the headers: it must still read the 503, not a reset
rm -f "$T/probe.hdr"
code=$(curl -s --max-time 30 -o /dev/null -D "$T/probe.hdr" -w '%{http_code}' -X PUT \
  -H 'Expect:' -H 'Content-Type: application/octet-stream' --data-binary @"$T/probe" \
  "http://${CHUNK_ADDRS[1]}/chunks/$pid_")
crc=$?
expect_eq "a PUT sending its body at once reads the 503 too (no connection reset)" \
  "curl exit status and HTTP status" "0 503" "$crc $code"
# (a request is counted once MHD is done with it, just after the answer)
counted() { [ "$(put_code 1 503)" -ge $((b503 + 2)) ]; }
wait_until 5 counted
expect_eq "the server counts the 503s in its metrics" "chunk_put 503 answers" $((b503 + 2)) "$(put_code 1 503)"
expect_eq "the refused chunk was not stored" "chunk file" 0 \
  "$([ -e "$T/chunk1/chunks/${pid_:0:2}/${pid_:2:2}/$pid_" ] && echo 1 || echo 0)"
exec 7>&-                     # release the held upload
wait "$HOLD_PID" 2>/dev/null
free_again() { [ "$(inflight 1)" = 0 ]; }
wait_until 10 free_again || note "server 1 still holds $(inflight 1) in-flight bytes"
expect_eq "with the budget free again the same PUT is stored" "HTTP status" 201 "$(probe 1)"
curl -s --max-time 10 -o /dev/null -X DELETE "http://${CHUNK_ADDRS[1]}/chunks/$pid_"
expect_eq "the abandoned upload left nothing in tmp/" "entries in tmp/" 0 \
  "$(find "$T/chunk1/tmp" -mindepth 1 | wc -l)"

# ---- 2. many concurrent writers through several mounts
for m in $(seq 1 "$NMOUNTS"); do
  mount_fs "$T/mnt$m" "$T/cache$m" || bail setup "mount $m failed"
done
mkdir -p "$T/src"
for m in $(seq 1 "$NMOUNTS"); do
  for w in $(seq 1 "$PER_MOUNT"); do
    head -c $((FILE_MB << 20)) /dev/urandom >"$T/src/f$m-$w"
  done
done
total_mb=$((NMOUNTS * PER_MOUNT * FILE_MB))
s503=$(sum_code 503)
s201=$(sum_code 201)
t0=$(date +%s.%N)
declare -a WPIDS=()
for m in $(seq 1 "$NMOUNTS"); do
  for w in $(seq 1 "$PER_MOUNT"); do
    cp "$T/src/f$m-$w" "$T/mnt$m/f$m-$w" &
    WPIDS+=($!)
  done
done
bad=0
for p in "${WPIDS[@]}"; do wait "$p" || bad=$((bad + 1)); done
took=$(elapsed "$t0")
# a request is counted once the server is done with it, just after its answer
all_counted() { [ $(($(sum_code 201) - s201)) -ge $((2 * total_mb / 4)) ]; }
wait_until 5 all_counted
n503=$(($(sum_code 503) - s503))
n201=$(($(sum_code 201) - s201))
note "$((NMOUNTS * PER_MOUNT)) writers on $NMOUNTS mounts wrote $total_mb MiB in ${took}s; chunk servers answered $n201 PUTs 201 and $n503 PUTs 503"
expect_eq "every writer exits 0" "writers that failed" 0 "$bad"
if [ "$n503" -gt 0 ]; then
  ok "the servers refused uploads past the cap with 503 ($n503 times)"
else
  fail "the servers refused uploads past the cap with 503" "no chunk_put 503 during the load"
fi
expect_eq "every chunk was stored twice (2 x 201 per chunk)" "201 answers" \
  $((2 * total_mb / 4)) "$n201"
for m in $(seq 1 "$NMOUNTS"); do
  log=$T/logs/mount-mnt$m.log
  if grep -qE 'upload failed|PUT to server .* failed' "$log"; then
    note "mount $m: $(grep -cE 'upload failed|PUT to server .* failed' "$log") failed PUT lines, e.g. $(grep -m1 -E 'upload failed|PUT to server .* failed' "$log")"
  fi
done
fails=$(cat "$T"/logs/mount-mnt*.log | grep -cE 'upload failed')
expect_eq "no upload failed for good" "'upload failed' lines in the mount logs" 0 "$fails"
# A 503 means "busy, retry here": the client must back off and retry the
# same server, not take it for a failed one (a transport error or any
# other answer moves the copy to the next server in HRW order).
moved=$(cat "$T"/logs/mount-mnt*.log | grep -cE 'PUT to server [0-9]+ \([^)]*\) (failed|answered)')
expect_eq "no PUT to a busy server failed or was answered other than 503" \
  "'PUT to server ... failed/answered' lines in the mount logs" 0 "$moved"

# ---- 3. chunkd memory stays bounded
for i in 1 2 3; do
  hwm=$(vm_hwm_kb "${CHUNK_PIDS[$i]}")
  note "chunkd $i: VmHWM $((hwm / 1024)) MiB (${hwm} KiB), bound ${HWM_BOUND_MB} MiB"
  if [ -n "$hwm" ] && [ "$hwm" -lt $((HWM_BOUND_MB * 1024)) ]; then
    ok "chunkd $i peak memory stays under the cap + 32 MiB"
  else
    fail "chunkd $i peak memory stays under the cap + 32 MiB" "VmHWM ${hwm:-?} KiB"
  fi
done

# ---- 4. every file reads back identical
for m in $(seq 1 "$NMOUNTS"); do umount_fs "$T/mnt$m" || note "unmount of mount $m reported a problem"; done
mount_fs "$T/check" "$T/cache-check" --cache-size 0 --cache-mem 0 || bail remount "mount failed"
expect_eq "every file reads back identical (fresh mount, no cache)" "sha256 of each file" \
  "$(cd "$T/src" && sha256sum f* | sort)" "$(cd "$T/check" && sha256sum f* | sort)"
# --strict: 2 copies of every chunk, each on one of its 2 HRW targets
# (a busy target was waited for, not replaced)
cairn --quiet --strict fsck >"$T/fsck.out" 2>&1
if [ $? = 0 ] && grep -q '^ok  *'$((total_mb / 4))'$' "$T/fsck.out"; then
  ok "cairn fsck --strict: every chunk has its 2 copies on its target servers"
else
  fail "cairn fsck --strict: every chunk has its 2 copies on its target servers" "$(cat "$T/fsck.out")"
fi
finish
