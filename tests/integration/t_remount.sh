#!/bin/bash
# Durability across a remount, a clean restart of every server, and a
# kill -9 of cairn-metad in the middle of a copy.
. "$(dirname "$0")/lib.sh"

MNT=$T/mnt
REF=$T/ref            # the reference tree, on local disk
NFILES=${CAIRN_REMOUNT_FILES:-300}

start_cluster 2 || bail setup "cluster did not start"
mount_fs "$MNT" "$T/cache1" || bail setup "mount failed"

# ---- the reference tree: nested dirs, a few hundred files of varied sizes
# (inline and chunked), a 20 MB file, an empty file, an empty dir, symlinks
mkdir -p "$REF/tree/empty_dir"
for ((i = 0; i < NFILES; i++)); do
  d=$REF/tree/d$((i % 5))/s$((i % 3))
  [ $((i % 7)) = 0 ] && d=$d/deep/er
  mkdir -p "$d"
  case $((i % 4)) in
    0) n=$((RANDOM % 4000 + 1)) ;;              # inline
    1) n=$((RANDOM * 4 + 4097)) ;;              # up to ~130 KB
    2) n=$((RANDOM % 100)) ;;
    3) n=$((RANDOM * 16 + 5000)) ;;             # up to ~520 KB
  esac
  head -c "$n" /dev/urandom >"$d/f$i.bin"
done
head -c $((20 << 20)) /dev/urandom >"$REF/tree/big20M.bin"
: >"$REF/tree/empty"
ln -s d3/s0/f3.bin "$REF/tree/link_rel"
ln -s /nonexistent/target "$REF/tree/link_dangling"
chmod 0640 "$REF/tree/d1/s1/f1.bin"
chmod 0700 "$REF/tree/d2"
tree_sums "$REF/tree" >"$T/sums.ref"
tree_listing "$REF/tree" >"$T/list.ref"

t0=$SECONDS
check write_tree cp -a "$REF/tree" "$MNT/tree"
note "copied $(wc -l <"$T/sums.ref") files ($(du -sh "$REF/tree" | cut -f1)) in $((SECONDS - t0))s"

# xattrs: text, binary, a 2000-byte value, on a file, a directory and the big file
setfattr -n user.color -v blue "$MNT/tree/d3/s0/f3.bin" &&
  setfattr -n user.bin -v 0x00ff10e2 "$MNT/tree/d3/s0/f3.bin" &&
  setfattr -n user.dir -v "a directory" "$MNT/tree/d1" &&
  setfattr -n user.long -v "$(head -c 2000 /dev/zero | tr '\0' 'x')" "$MNT/tree/big20M.bin" &&
  setfattr -n user.gone -v bye "$MNT/tree/empty" &&
  setfattr -x user.gone "$MNT/tree/empty"
rc=$?
tree_xattrs "$MNT/tree" >"$T/xattr.ref"
if [ $rc -eq 0 ] && [ "$(wc -l <"$T/xattr.ref")" = 4 ] &&
  grep -q 'user.color=0x626c7565$' "$T/xattr.ref" && grep -q 'user.bin=0x00ff10e2$' "$T/xattr.ref"; then
  ok setfattr_getfattr
else
  fail setfattr_getfattr "setfattr exit $rc; getfattr lists (expected user.color, user.bin, user.dir, user.long):
$(cut -c1-120 "$T/xattr.ref")"
fi

# ---- chmod and utimensat of a file being written travel with its commit
# (no setattr request of their own) and are what metad keeps. Nothing on
# the mount has been read yet, so no access time written behind can
# send a setattr meanwhile.
setattrs() { metrics | awk '$1 == "cairn_http_requests_total{route=\"setattr\",code=\"200\"}" { print $2; exit }'; }
sa0=$(setattrs)
out=$(python3 - "$MNT/folded" "$MNT/folded_new" "$MNT/folded_empty" <<'PY' 2>&1
import os, sys
# a new file chmod'ed before its first write (mkstemp + fchmod + write,
# as ccache does), and one chmod'ed and closed without a write
fd = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
os.fchmod(fd, 0o644)
assert os.fstat(fd).st_mode & 0o7777 == 0o644, "mode of the new file while open"
os.write(fd, b"n" * 5000)
os.close(fd)
fd = os.open(sys.argv[3], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
os.fchmod(fd, 0o604)
os.close(fd)
p = sys.argv[1]
fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
os.write(fd, b"a" * 100000)
os.fchmod(fd, 0o640)
os.utime(fd, ns=(1000000000123, 2000000000456))
st = os.fstat(fd)
assert st.st_mode & 0o7777 == 0o640, "mode while open: %o" % st.st_mode
assert (st.st_atime_ns, st.st_mtime_ns) == (1000000000123, 2000000000456), \
    "times while open: %d %d" % (st.st_atime_ns, st.st_mtime_ns)
os.close(fd)
print("ok")
PY
)
sa1=$(setattrs)
expect_eq folded_attrs_while_writing "mode and times through the open file" ok "$out"
expect_eq folded_attrs_no_setattr_request "setattr requests metad answered" "${sa0:-0}" "${sa1:-0}"

# verify_tree NAME: the mount's tree equals the reference (bytes, listing, xattrs)
verify_tree() {
  local name=$1
  tree_sums "$MNT/tree" >"$T/sums.got" 2>"$T/sums.err"
  if cmp -s "$T/sums.ref" "$T/sums.got"; then
    ok "${name}_sha256"
  else
    fail "${name}_sha256" "sha256 of the tree differs from the reference (< reference, > mount):
$(diff "$T/sums.ref" "$T/sums.got" | head -n 8)
$(head -n 3 "$T/sums.err")"
  fi
  tree_listing "$MNT/tree" >"$T/list.got"
  if cmp -s "$T/list.ref" "$T/list.got"; then
    ok "${name}_listing"
  else
    fail "${name}_listing" "type/mode/owner/size/links/symlink target differ (< reference, > mount):
$(diff "$T/list.ref" "$T/list.got" | head -n 8)"
  fi
  tree_xattrs "$MNT/tree" >"$T/xattr.got"
  if cmp -s "$T/xattr.ref" "$T/xattr.got"; then
    ok "${name}_xattrs"
  else
    fail "${name}_xattrs" "user.* xattrs differ (< before, > now):
$(diff "$T/xattr.ref" "$T/xattr.got" | cut -c1-150 | head -n 8)"
  fi
}

verify_tree written

# ---- a directory's access time (relatime: its atime is older than its
# mtime) moves with the first listing and shows at once; it is written
# behind, and an unmount right after sends it: metad has it afterwards
mkdir "$MNT/adir" && echo x >"$MNT/adir/f" &&
  touch -a -d @1000 "$MNT/adir" && touch -m -d @2000 "$MNT/adir" ||
  fail dir_atime_setup "cannot prepare $MNT/adir"
DIR_LISTED=$(date +%s)
for k in 1 2 3; do ls "$MNT/adir" >/dev/null; done
dir_atime_now=$(stat -c %X "$MNT/adir")
if [ "$dir_atime_now" -ge "$DIR_LISTED" ]; then
  ok dir_atime_shown
else
  fail dir_atime_shown "atime $dir_atime_now after listing at $DIR_LISTED"
fi

# ---- access times written behind travel in batches: reading 40 files
# whose atime is older than their mtime sends no setattr of its own; a
# few atimes requests carry them all (counted once the unmount below has
# sent whatever was still queued), and metad keeps them (checked after
# the remount)
mkdir "$MNT/atb" && for i in $(seq 40); do echo "$i" >"$MNT/atb/f$i"; done &&
  touch -a -d @1000 "$MNT"/atb/f* || fail atime_batch_setup "cannot prepare $MNT/atb"
atimes() { metrics | awk '$1 == "cairn_http_requests_total{route=\"atimes\",code=\"200\"}" { print $2; exit }'; }
sa0=$(setattrs)
ab0=$(atimes)
ATB_READ=$(date +%s)
cat "$MNT"/atb/f* >/dev/null

# ---- unmount, mount again (same cache dir)
umount_fs "$MNT" || fail umount_1 "unmount was not clean"
ab1=$(atimes)
sa1=$(setattrs)
if [ "${sa1:-0}" = "${sa0:-0}" ] && [ $(( ${ab1:-0} - ${ab0:-0} )) -ge 1 ] &&
  [ $(( ${ab1:-0} - ${ab0:-0} )) -le 10 ]; then
  ok atime_batched
else
  fail atime_batched "40 reads: setattr requests ${sa0:-0} -> ${sa1:-0} (expected none), atimes requests ${ab0:-0} -> ${ab1:-0} (expected 1 to 10)"
fi
mount_fs "$MNT" "$T/cache1" || bail remount "remount failed"
verify_tree remount
expect_eq folded_new_after_remount "mode and size of the two new files" "644 5000 604 0" \
  "$(stat -c '%a %s' "$MNT/folded_new" "$MNT/folded_empty" | tr '\n' ' ' | sed 's/ $//')"
expect_eq folded_attrs_after_remount "mode, atime, mtime (ns), size" \
  "640 1000000000123 2000000000456 100000" \
  "$(python3 -c 'import os, sys; st = os.stat(sys.argv[1]); print("%o %d %d %d" % (st.st_mode & 0o7777, st.st_atime_ns, st.st_mtime_ns, st.st_size))' "$MNT/folded")"
expect_eq dir_atime_after_remount "atime and mtime of adir" \
  "$dir_atime_now 2000" "$(stat -c '%X %Y' "$MNT/adir")"
expect_eq atime_batch_after_remount "files of atb with an atime from the read" 40 \
  "$(stat -c %X "$MNT"/atb/f* | awk -v t="$ATB_READ" '$1 >= t' | wc -l)"

# ---- stop every server with SIGTERM, start them on the same ports and data
umount_fs "$MNT" || fail umount_2 "unmount was not clean"
bad=
for i in "${!CHUNK_PIDS[@]}"; do
  stop_chunkd "$i"
  [ "$LAST_STATUS" = 0 ] || bad="$bad chunkd$i:status=$LAST_STATUS"
done
stop_metad
[ "$LAST_STATUS" = 0 ] || bad="$bad metad:status=$LAST_STATUS"
if [ -z "$bad" ]; then
  ok servers_sigterm_exit_0
else
  fail servers_sigterm_exit_0 "after SIGTERM, expected every server to exit with status 0 within ${T_STOP}s:$bad"
fi
start_metad || bail restart_servers "metad did not start again on port $METAD_PORT"
for i in "${!CHUNK_PORTS[@]}"; do
  start_chunkd "$i" "${CHUNK_PORTS[$i]}" || bail restart_servers "chunkd $i did not start again on port ${CHUNK_PORTS[$i]}"
done
if wait_cluster 2; then ok restart_servers; else bail restart_servers "cluster not up after the restart"; fi
mount_fs "$MNT" "$T/cache2" || bail restart_servers "mount after the server restart failed"
verify_tree servers_restarted

# ---- kill -9 of metad while files are being copied
POOL=$T/pool
mkdir -p "$POOL" "$MNT/crash"
NCOPY=${CAIRN_CRASH_FILES:-80}
KILL_AFTER=${CAIRN_CRASH_KILL_AFTER:-25}
for ((i = 0; i < NCOPY; i++)); do
  case $((i % 4)) in
    0) n=$((RANDOM % 4000 + 1)) ;;
    1) n=$((RANDOM * 8 + 5000)) ;;
    2) n=$((RANDOM % 2 * 4194304 + RANDOM * 32)) ;;   # across the 4 MiB chunk border
    3) n=$((RANDOM * 64)) ;;
  esac
  head -c "$n" /dev/urandom >"$POOL/c$i"
done
(cd "$POOL" && sha256sum c*) | LC_ALL=C sort -k2 >"$T/crash.ref"
: >"$T/done.list"
: >"$T/fail.list"
(
  for ((i = 0; i < NCOPY; i++)); do
    if cp "$POOL/c$i" "$MNT/crash/c$i" 2>>"$T/copy.err"; then
      echo "c$i" >>"$T/done.list"
    else
      echo "c$i exit $?" >>"$T/fail.list"
    fi
  done
) &
loop=$!
OWN_PIDS+=("$loop")
_done_n() { [ "$(wc -l <"$T/done.list")" -ge "$1" ]; }
if ! wait_until 60 _done_n "$KILL_AFTER"; then
  fail crash_setup "only $(wc -l <"$T/done.list") files copied within 60s, expected $KILL_AFTER before the crash"
fi
kill_metad
note "cairn-metad killed with SIGKILL after $(wc -l <"$T/done.list") of $NCOPY files were copied"
sleep 2
n_at_restart=$(wc -l <"$T/done.list")
start_metad || bail crash_restart "metad did not start again on port $METAD_PORT after kill -9"
if [ "$n_at_restart" -lt "$NCOPY" ] && pid_alive "$loop"; then
  note "$n_at_restart files done when metad came back"
  ok crash_during_copy
else
  fail crash_during_copy "the copy loop was not running while metad was down ($n_at_restart of $NCOPY done)"
fi
if wait_cluster 2; then ok crash_metad_restarted; else fail crash_metad_restarted "chunk servers did not come back"; fi
if wait_until 120 pid_dead "$loop"; then
  wait "$loop" 2>/dev/null
  ok crash_copy_loop_ended
else
  fail crash_copy_loop_ended "the copy loop still runs 120s after metad came back ($(wc -l <"$T/done.list") of $NCOPY done)"
  kill "$loop" 2>/dev/null
fi
ndone=$(wc -l <"$T/done.list")
note "copy loop: $ndone of $NCOPY copies returned 0, $(wc -l <"$T/fail.list") failed"
if [ ! -s "$T/fail.list" ] && [ "$ndone" = "$NCOPY" ]; then
  ok crash_copies_survived_outage
else
  fail crash_copies_survived_outage "every cp should succeed across a metad restart within the client's retry time; failed: $(head -n 5 "$T/fail.list" | tr '\n' ' ')
$(head -n 3 "$T/copy.err")"
fi

# every file that cp reported as copied is intact
check_done() { # NAME
  local bad=0 f want got msg=
  while read -r f; do
    want=$(awk -v f="$f" '$2 == f { print $1 }' "$T/crash.ref")
    got=$(sha256sum <"$MNT/crash/$f" 2>&1 | cut -d' ' -f1)
    if [ "$want" != "$got" ]; then
      bad=$((bad + 1))
      [ $bad -le 5 ] && msg="$msg
$f ($(stat -c %s "$POOL/$f") bytes): sha256 $got, expected $want (size on mount: $(stat -c %s "$MNT/crash/$f" 2>&1))"
    fi
  done <"$T/done.list"
  if [ "$bad" = 0 ] && [ -s "$T/done.list" ]; then
    ok "$1"
  else
    fail "$1" "$bad of $(wc -l <"$T/done.list") files on the done-list are not intact:$msg"
  fi
}
check_done crash_done_files_intact
umount_fs "$MNT" || fail umount_3 "unmount was not clean"
mount_fs "$MNT" "$T/cache3" || bail crash_remount "mount after the crash failed"
check_done crash_done_files_after_remount
verify_tree crash_tree

if umount_fs "$MNT"; then ok umount_clean; else fail umount_clean "unmount was not clean"; fi
finish
