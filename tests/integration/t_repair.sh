#!/bin/bash
# Repair and rebalance: after a server dies, returns, joins, is drained and
# removed, or is removed for good while down, the chunk servers' background
# repair passes (run on their own after each cluster map change) bring every
# referenced chunk back to exactly R copies on its current HRW top-R servers
# and drop the copies nobody needs; cairn fsck --strict is the oracle (it
# checks every chunk's copies against the placement, computed the way the
# client computes it). Progress shows in the metrics; the passes keep to
# --maint-rate.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/redundancy.sh"

RATE_MB=8
# Repair runs only after map changes (1 s after each), never on a timer, so
# the counters below belong to the event that caused them.
CHUNKD_ARGS=(--repair-interval 0 --repair-delay 1s --gc-interval 0 --scrub-interval 0
  --sha-scrub-interval 0 --maint-rate "${RATE_MB}M")
start_cluster_x 3 --heartbeat-timeout 2s || bail setup "cluster did not start"
MNT=$T/mnt
mount_fs "$MNT" "$T/cache" --retry-time 30s || bail setup "mount failed"

sum_metric() { # NAME [SERVERS...]: sum over the running chunk servers
  local n=$1 i s=0 v
  shift
  for i in "${@:-${!CHUNK_PIDS[@]}}"; do
    [ -n "${CHUNK_PIDS[$i]:-}" ] || continue
    v=$(chunk_metric "$i" "$n")
    s=$((s + ${v:-0}))
  done
  echo "$s"
}
strict_ok() { cairn --quiet --strict fsck >"$T/.fsck.out" 2>&1; }
state_is() { [ "$(server_state "$1")" = "$2" ]; }
epoch() { cairn status | awk '/cluster map epoch/ { print $NF; exit }'; }
# wait for the background passes alone (no trigger) to reach the placement
settle() { # CASE SECONDS
  local t0=$SECONDS
  if wait_until "$2" strict_ok; then
    ok "$1"
    note "converged in $((SECONDS - t0))s"
  else
    fail "$1" "fsck --strict still fails after $2s:
$(tail -n 8 "$T/.fsck.out")"
  fi
}

# ---- data: one 80 MiB file and 20 small files: 40 chunks, 80 copies
head -c $((80 << 20)) /dev/urandom >"$T/big.src" || bail setup "source"
mkdir -p "$T/src" "$MNT/d"
for k in $(seq 1 20); do head -c 150000 /dev/urandom >"$T/src/f$k"; done
cp "$T/big.src" "$MNT/big" && cp "$T/src"/f* "$MNT/d/" || bail setup "writes failed"
NCHUNKS=40
expect_eq "R=2 copies of each of the 40 chunks" "chunk files" $((2 * NCHUNKS)) "$(chunk_files_total)"
check "fsck --strict: every chunk on its top-2 servers" strict_ok

# ---- 1. a server dies: its chunks get their second copy back elsewhere
held1=$(chunk_files 1)
e0=$(epoch)
kill_chunkd 1
if wait_until 20 state_is 1 down; then ok "metad marks the killed server down"
else fail "metad marks the killed server down" "state: $(server_state 1)"; fi
e1=$(epoch)
if [ "$e1" -gt "$e0" ]; then ok "the cluster map epoch changes"; else fail "the cluster map epoch changes" "$e0 -> $e1"; fi
settle "background repair restores 2 copies on the surviving servers" 60
expect_eq "every chunk is on both surviving servers" "chunk files on 2 and 3" \
  "$NCHUNKS $NCHUNKS" "$(chunk_files 2) $(chunk_files 3)"
expect_eq "chunks pushed = chunks the dead server held" "pushed" "$held1" \
  "$(sum_metric cairn_chunkd_repair_pushed_total 2 3)"
expect_eq "under-replicated chunks seen by the pass (metric)" "under_replicated" "$held1" \
  "$(sum_metric cairn_chunkd_repair_under_replicated 2 3)"
note "server 1 held $held1 chunks; pushed $(sum_metric cairn_chunkd_repair_pushed_bytes_total 2 3) bytes"

# a file written while server 1 is down goes to the two others
head -c $((12 << 20)) /dev/urandom >"$T/late.src"
cp "$T/late.src" "$MNT/late" || fail "write while a server is down" "cp failed"
NCHUNKS=$((NCHUNKS + 3))

# ---- 2. the server returns with its data: extra copies are dropped
pushed0=$(sum_metric cairn_chunkd_repair_pushed_total 2 3)
start_chunkd_x 1 "${CHUNK_PORTS[1]}" || bail restart "chunkd 1"
if wait_until 20 state_is 1 up; then ok "metad marks the returning server up"
else fail "metad marks the returning server up" "state: $(server_state 1)"; fi
settle "background repair rebalances onto the returning server" 60
expect_eq "exactly R copies again" "chunk files" $((2 * NCHUNKS)) "$(chunk_files_total)"
dropped=$(sum_metric cairn_chunkd_repair_dropped_total)
if [ "$dropped" -gt 0 ]; then ok "copies no longer needed are dropped ($dropped)"
else fail "copies no longer needed are dropped" "dropped_total is 0"; fi
note "pushed while server 1 returned: $(( $(sum_metric cairn_chunkd_repair_pushed_total 2 3) - pushed0 )) (chunks written while it was down)"

# ---- 3. a new server joins: chunks move onto it, within --maint-rate
rmetric() { # I NAME: a labelled sample of server I's metrics
  curl -s --max-time 5 "http://${CHUNK_ADDRS[$1]}/metrics" | awk -v n="$2" '$1 == n { print $2; exit }'
}
declare -a b0=() s0=() p0=()
for i in 1 2 3; do
  b0[$i]=$(chunk_metric "$i" cairn_chunkd_repair_pushed_bytes_total)
  s0[$i]=$(rmetric "$i" 'cairn_chunkd_maint_seconds_total{pass="repair"}')
  p0[$i]=$(rmetric "$i" 'cairn_chunkd_maint_passes_total{pass="repair"}')
done
start_chunkd_x 4 || bail setup "chunkd 4"
wait_cluster 4 || fail "new server up" "not up"
settle "background repair rebalances onto the new server" 90
n4=$(chunk_files 4)
if [ "$n4" -gt 0 ]; then ok "the new server holds its share ($n4 chunks)"
else fail "the new server holds its share" "it holds none"; fi
expect_eq "still exactly R copies" "chunk files" $((2 * NCHUNKS)) "$(chunk_files_total)"
# The passes that moved a server's share took at least bytes / rate, less
# the quarter second of burst the token bucket allows once per pass.
rate_ok=1 moved=0
for i in 1 2 3; do
  d=$(( $(chunk_metric "$i" cairn_chunkd_repair_pushed_bytes_total) - b0[i] ))
  s=$(awk -v a="$(rmetric "$i" 'cairn_chunkd_maint_seconds_total{pass="repair"}')" -v b="${s0[$i]}" \
    'BEGIN { printf "%.3f", a - b }')
  np=$(( $(rmetric "$i" 'cairn_chunkd_maint_passes_total{pass="repair"}') - p0[i] ))
  note "server $i pushed $((d >> 20)) MiB to the new server in $np passes taking ${s}s (rate ${RATE_MB} MiB/s)"
  moved=$((moved + d))
  awk -v d="$d" -v s="$s" -v r="$RATE_MB" -v n="$np" \
    'BEGIN { exit !(s >= d / (r * 1048576) - 0.3 * n) }' || rate_ok=0
done
if [ "$rate_ok" = 1 ] && [ "$moved" -gt 0 ]; then ok "rebalance keeps to --maint-rate"
else fail "rebalance keeps to --maint-rate" "see the notes above"; fi
idle_ok=1
for i in 1 2 3 4; do
  maint "$i" repair >/dev/null || idle_ok=0
  [ "$(maint_val "$i" pushed)/$(maint_val "$i" dropped)" = 0/0 ] || idle_ok=0
done
if [ "$idle_ok" = 1 ]; then ok "a pass on a converged cluster moves and drops nothing"
else fail "a pass on a converged cluster moves and drops nothing" "$(cat "$T"/.maint.?)"; fi

# ---- 4. drain server 2, then remove it
id2=$(server_id 2)
cairn drain "$id2" >"$T/drain.out" 2>&1
expect_eq "cairn drain succeeds" "exit status / state" "0 draining" "$? $(server_state 2)"
cairn remove "$(server_id 3)" >/dev/null 2>&1
expect_eq "cairn remove refuses a server that is up" "exit status" 1 "$?"
empty2() { [ "$(chunk_files 2)" = 0 ]; }
if wait_until 90 empty2; then ok "the drained server's chunks move away"
else fail "the drained server's chunks move away" "server 2 still holds $(chunk_files 2)"; fi
settle "placement holds without the draining server" 30
status_chunks=$(cairn -b status | awk -v id="$id2" '$1 == id { print $7 }')
wait_until 10 test "$(cairn -b status | awk -v id="$id2" '$1 == id { print $7 }')" = 0
expect_eq "cairn status shows 0 chunks on the drained server" "chunks" 0 \
  "$(cairn -b status | awk -v id="$id2" '$1 == id { print $7 }')"
note "(status showed $status_chunks right after the move; heartbeats carry the count)"
stop_chunkd 2
cairn remove "$id2" >"$T/remove.out" 2>&1
expect_eq "cairn remove of the drained server" "exit status" 0 "$?"
if cairn status | awk -v id="$id2" '$1 == id { f = 1 } END { exit f }'; then ok "the removed server is gone from the map"
else fail "the removed server is gone from the map" "$(cairn status)"; fi
check "fsck --strict after the removal" strict_ok

# drain and undrain: back to up, nothing lost
cairn drain "$(server_id 3)" >/dev/null && cairn undrain "$(server_id 3)" >/dev/null
expect_eq "undrain makes the server up again" "state" up "$(server_state 3)"

# ---- 5. a server removed for good while down: its copies are rebuilt
held4=$(chunk_files 4)
kill_chunkd 4
wait_until 20 state_is 4 down || fail "server 4 down" "state: $(server_state 4)"
cairn remove "$(server_id 4)" >"$T/remove4.out" 2>&1
expect_eq "cairn remove of a down server" "exit status" 0 "$?"
settle "chunks of the removed server get their copies back" 60
note "server 4 held $held4 chunks when it was removed"
expect_eq "every chunk is on the two remaining servers" "chunk files on 1 and 3" \
  "$NCHUNKS $NCHUNKS" "$(chunk_files 1) $(chunk_files 3)"

# ---- every file reads back identical through a fresh mount
umount_fs "$MNT"
mount_fs "$MNT" "$T/cache2" --cache-size 0 --cache-mem 0 || bail remount "mount failed"
expect_eq "80 MiB file identical" sha256 "$(sha256sum <"$T/big.src")" "$(sha256sum <"$MNT/big")"
expect_eq "file written during the outage identical" sha256 "$(sha256sum <"$T/late.src")" "$(sha256sum <"$MNT/late")"
expect_eq "small files identical" sums "$(cd "$T/src" && sha256sum f* | sort)" \
  "$(cd "$MNT/d" && sha256sum f* | sort)"
finish
