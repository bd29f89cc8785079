#!/bin/bash
# POSIX conformance of the mount, compared with a local directory.
#
# build/tests/posix_suite runs every case as root and as an unprivileged
# user (uid/gid 65534, supplementary group 65533) in a local temp dir and
# in a cairn mount (--allow-other, so the user can enter it). A case that
# passes locally and fails on cairn is "not ok posix/<mode>/<case>" unless
# tests/posix/EXPECTED_DIFFERENCES names it (as "<case>" for both modes or
# "<mode>/<case>") with the reason it cannot hold on FUSE. Every other case
# is "ok". Then a few checks that need more than one mount or the servers:
# allow_other, noatime, unlink-while-open and mmap across clients,
# copy_file_range sharing chunks, statfs against the cluster's capacity.
#
# Environment: POSIX_USER (UID:GID[:SUPP], default 65534:65534:65533),
# POSIX_CHUNK_SIZE (metad --chunk-size, default the file system default),
# POSIX_ONLY (passed to posix_suite --only), POSIX_TIMEOUT (seconds per
# suite run, default 900).
. "$(dirname "$0")/lib.sh"

case $BUILD in
  /*) SUITE=$BUILD/tests/posix_suite ;;
  *) SUITE=$ROOT/$BUILD/tests/posix_suite ;;
esac
EXPECTED=$ROOT/tests/posix/EXPECTED_DIFFERENCES
PUSER=${POSIX_USER:-65534:65534:65533}
PUID=${PUSER%%:*}
PGID=$(cut -d: -f2 <<<"$PUSER")
SUITE_TIMEOUT=${POSIX_TIMEOUT:-900}
ONLY=()
[ -n "${POSIX_ONLY:-}" ] && ONLY=(--only "$POSIX_ONLY")

[ -x "$SUITE" ] || bail setup "$SUITE missing: make $BUILD/tests/posix_suite"
# the unprivileged user must be able to walk into $T
chmod 755 "$T"

metad_args=()
[ -n "${POSIX_CHUNK_SIZE:-}" ] && metad_args=(--chunk-size "$POSIX_CHUNK_SIZE")
start_cluster 3 "${metad_args[@]}" || bail setup "cluster did not start"
MNT=$T/mnt
mount_fs "$MNT" "$T/cache" --allow-other || bail setup "mount failed"

# ---------------------------------------------------------------- the suite

# run_suite NAME DIR [--as-user U:G:S]: results in $T/res.NAME
run_suite() {
  local name=$1 dir=$2
  shift 2
  mkdir -p "$dir"
  local t0=$SECONDS
  timeout -k 10 "$SUITE_TIMEOUT" "${SUITE_WRAP[@]}" "$SUITE" "$@" "${ONLY[@]}" "$dir" >"$T/res.$name" 2>&1
  local rc=$?
  note "posix_suite $name: $(tail -n 1 "$T/res.$name") ($((SECONDS - t0))s, exit $rc)"
  [ $rc = 124 ] && note "posix_suite $name timed out after ${SUITE_TIMEOUT}s"
}

SUITE_WRAP=()
run_suite local-root "$T/local/root"
run_suite cairn-root "$MNT/root"
run_suite local-user "$T/local/user" --as-user "$PUSER"
run_suite cairn-user "$MNT/user" --as-user "$PUSER"

# expected_reason MODE CASE: the reason listed for it, or nothing
expected_reason() {
  [ -f "$EXPECTED" ] || return 0
  awk -v a="$2" -v b="$1/$2" '
    /^[ \t]*(#|$)/ { next }
    $1 == a || $1 == b { $1 = ""; sub(/^[ \t]+/, ""); print; exit }' "$EXPECTED"
}

# result FILE CASE: sets RES (PASS, FAIL or "") and RES_DETAIL
result() {
  local line
  line=$(grep -m1 -E "^(PASS|FAIL) $2( |\$)" "$1")
  RES=${line%% *}
  RES_DETAIL=${line#* "$2"}
  RES_DETAIL=${RES_DETAIL# }
}

compare() { # MODE
  local mode=$1 lf=$T/res.local-$1 cf=$T/res.cairn-$1 c lr cr why
  local lp=0 lfl=0 cp=0 cfl=0
  shift
  for c in $("$SUITE" --list "$@" "${ONLY[@]}"); do
    result "$lf" "$c"
    lr=$RES
    local ldetail=$RES_DETAIL
    result "$cf" "$c"
    cr=$RES
    local cdetail=$RES_DETAIL
    case $lr in PASS) lp=$((lp + 1)) ;; *) lfl=$((lfl + 1)) ;; esac
    case $cr in PASS) cp=$((cp + 1)) ;; *) cfl=$((cfl + 1)) ;; esac
    why=$(expected_reason "$mode" "$c")
    if [ "$cr" = PASS ]; then
      if [ -n "$why" ]; then
        ok "posix/$mode/$c # listed in EXPECTED_DIFFERENCES but passes"
      else
        ok "posix/$mode/$c"
      fi
    elif [ "$lr" != PASS ]; then
      ok "posix/$mode/$c # fails locally too: ${ldetail:-no result}"
    elif [ -n "$why" ]; then
      ok "posix/$mode/$c # expected difference: $why"
      note "  cairn: ${cdetail:-no result}"
    else
      fail "posix/$mode/$c" "local: PASS; cairn: ${cdetail:-no result (suite crashed or timed out)}"
    fi
  done
  note "$mode: local: $lp passed, $lfl failed; cairn: $cp passed, $cfl failed"
  TOT_LP=$((TOT_LP + lp)) TOT_LF=$((TOT_LF + lfl)) TOT_CP=$((TOT_CP + cp)) TOT_CF=$((TOT_CF + cfl))
}

TOT_LP=0 TOT_LF=0 TOT_CP=0 TOT_CF=0
compare root
compare user --as-user "$PUSER"

# The mount's own permission checks (fuse/perm.h): a mount by root without
# --allow-other has no default_permissions (it shows the file system the
# runs above used: other directories). Root, and root without any
# capability (setpriv), must see there what they see on the local disk.
# statfs/usage_follows_writes is left out: the same bytes written again are
# deduplicated, so the used space would not grow.
OWN=$T/own
mount_fs "$OWN" "$T/cache-own" || bail setup "mount without --allow-other failed"
opts=$(awk -v m="$OWN" '$2 == m { print $4 }' /proc/mounts)
if [ -n "$opts" ] && ! grep -q default_permissions <<<"$opts"; then
  ok "posix/mount/own_permission_checks"
else
  fail "posix/mount/own_permission_checks" "mount options of $OWN: ${opts:-not mounted} (expected no default_permissions)"
fi
NOSTAT=$("$SUITE" --list | grep -vx 'statfs/usage_follows_writes' | paste -sd, -)
run_suite cairn-ownroot "$OWN/ownroot" --only "$NOSTAT"
cp "$T/res.local-root" "$T/res.local-ownroot"
SUITE_WRAP=(setpriv --bounding-set=-all --inh-caps=-all --)
run_suite local-capless "$T/local/capless" --only "$NOSTAT"
run_suite cairn-capless "$OWN/capless" --only "$NOSTAT"
SUITE_WRAP=()
compare ownroot --only "$NOSTAT"
compare capless --only "$NOSTAT"
umount_fs "$OWN" || fail "posix/mount/own_umount" "unmount of $OWN was not clean"
note "local: $TOT_LP passed, $TOT_LF failed; cairn: $TOT_CP passed, $TOT_CF failed"

# ---------------------------------------------------------------- mounts

as_user() { setpriv --reuid="$PUID" --regid="$PGID" --clear-groups "$@"; }

# allow_other: the user can use the --allow-other mount, not another one
mkdir -p "$MNT/shared" && chmod 1777 "$MNT/shared"
if as_user sh -c "echo hi > '$MNT/shared/by-user' && cat '$MNT/shared/by-user'" >/dev/null 2>&1 &&
   [ "$(stat -c %u "$MNT/shared/by-user")" = "$PUID" ]; then
  ok "posix/mount/allow_other_lets_users_in"
else
  fail "posix/mount/allow_other_lets_users_in" "user $PUID cannot create a file in $MNT/shared"
fi
# --kernel-dirty: the kernel may keep that much written data for the mount
# (its default for FUSE is 1% of its dirty limit). The kernel stores the
# limit as a fraction of its own, so it reads back within a few per mille either way.
bdi_max() { cat "/sys/class/bdi/$(mountpoint -d "$1")/max_bytes" 2>/dev/null; }
near() { [ -n "$1" ] && [ "$1" -le $(($2 + $2 / 50)) ] && [ "$1" -ge $(($2 - $2 / 50)) ]; }
got=$(bdi_max "$MNT")
if near "$got" $((256 << 20)); then
  ok "posix/mount/kernel_dirty_default"
else
  fail "posix/mount/kernel_dirty_default" "max_bytes of the mount's bdi: ${got:-unreadable}, expected about $((256 << 20))"
fi
# (a mount point with a space: /proc/self/mountinfo writes it as \040)
PRIV="$T/private mount"
if mount_fs "$PRIV" "$T/cache-private" --kernel-dirty 64M; then
  got=$(bdi_max "$PRIV")
  if near "$got" $((64 << 20)); then
    ok "posix/mount/kernel_dirty_option"
  else
    fail "posix/mount/kernel_dirty_option" "max_bytes with --kernel-dirty 64M: ${got:-unreadable}, expected about $((64 << 20))"
  fi
  out=$(as_user stat "$PRIV" 2>&1)
  if [ $? -ne 0 ] && grep -q "Permission denied" <<<"$out" && stat "$PRIV/shared" >/dev/null 2>&1; then
    ok "posix/mount/without_allow_other_only_the_mounter"
  else
    fail "posix/mount/without_allow_other_only_the_mounter" "user stat of a mount without allow_other: $out"
  fi
  umount_fs "$PRIV"
else
  fail "posix/mount/without_allow_other_only_the_mounter" "second mount failed"
fi

# noatime: a mount with -o noatime never changes atime on read, where the
# default (relatime) mount does because atime is older than mtime
NOA=$T/noatime
if mount_fs "$NOA" "$T/cache-noatime" -o noatime; then
  echo data >"$MNT/atime-file"
  touch -a -d "2001-01-01 00:00:00" "$MNT/atime-file"
  before=$(stat -c %X "$MNT/atime-file")
  cat "$NOA/atime-file" >/dev/null
  a_noatime=$(stat -c %X "$NOA/atime-file")
  if [ "$a_noatime" = "$before" ]; then
    ok "posix/mount/noatime_read_keeps_atime"
  else
    fail "posix/mount/noatime_read_keeps_atime" "atime went from $before to $a_noatime on a noatime mount"
  fi
  umount_fs "$NOA"
  cat "$MNT/atime-file" >/dev/null
  # attributes are cached for up to --attr-timeout (1 s) on this mount
  if wait_until 3 sh -c "[ \"\$(stat -c %X '$MNT/atime-file')\" != '$before' ]"; then
    ok "posix/mount/relatime_read_updates_old_atime"
  else
    fail "posix/mount/relatime_read_updates_old_atime" "atime still $before after a read on the default mount (atime < mtime)"
  fi
else
  fail "posix/mount/noatime_read_keeps_atime" "mount -o noatime failed"
fi

# ---------------------------------------------------------------- two clients

B=$T/b
mount_fs "$B" "$T/cache-b" --attr-timeout 0 --entry-timeout 0 || bail setup "mount B failed"

# unlink on one client while the file is open on the other
out=$(python3 - "$MNT/uo" "$B/uo" <<'PY' 2>&1
import os, sys, hashlib, time
a, b = sys.argv[1], sys.argv[2]
data = os.urandom(3 * 1024 * 1024 + 77)
with open(a, "wb") as f:
    f.write(data)
fd = os.open(a, os.O_RDWR)              # held open on client A
os.unlink(b)                            # removed through client B
assert not os.path.exists(b), "name still visible on B"
got = os.pread(fd, len(data) + 10, 0)
assert got == data, "read on A after unlink on B differs (%d bytes)" % len(got)
extra = os.urandom(200000)
os.pwrite(fd, extra, len(data))         # grow it
os.fsync(fd)
got = os.pread(fd, len(data) + len(extra), 0)
assert got == data + extra, "read back of data written after the unlink differs"
assert os.fstat(fd).st_nlink == 0, "nlink %d" % os.fstat(fd).st_nlink
fd2 = os.open(b + "2", os.O_RDWR | os.O_CREAT, 0o644)   # the reverse: open on B
os.write(fd2, b"other way")
os.fsync(fd2)
# A takes a name as absent for its negative timeout (1 s): wait, bounded,
# until the name B created is seen there.
deadline = time.monotonic() + 5
while not os.path.exists(a + "2") and time.monotonic() < deadline:
    time.sleep(0.05)
os.unlink(a + "2")                      # removed through A
os.lseek(fd2, 0, 0)
assert os.read(fd2, 100) == b"other way", "B lost its open file unlinked on A"
os.write(fd2, b"!")
os.fsync(fd2)
assert os.pread(fd2, 100, 0) == b"other way!"
os.close(fd2)
os.close(fd)
print("ok")
PY
)
if [ "$out" = ok ]; then ok "posix/twomount/unlink_while_open"; else fail "posix/twomount/unlink_while_open" "$out"; fi

# a shared writable mapping: its data reaches the servers on msync (seen by
# a fresh open on another client), and on munmap + close
out=$(python3 - "$MNT/mm" "$B/mm" <<'PY' 2>&1
import mmap, os, sys
a, b = sys.argv[1], sys.argv[2]
size = 5 * 65536 + 321
fd = os.open(a, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
os.ftruncate(fd, size)
m = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
first = os.urandom(size)
m[:] = first
m.flush()                                # msync(MS_SYNC)
with open(b, "rb") as f:
    got = f.read()
assert got == first, "after msync, another client reads %d bytes, %s" % (
    len(got), "same" if got == first else "different")
second = os.urandom(70000)
m[1000:71000] = second
m.close()                                # munmap, no msync
os.close(fd)
with open(b, "rb") as f:
    got = f.read()
want = first[:1000] + second + first[71000:]
assert got == want, "after munmap+close, another client reads different bytes"
print("ok")
PY
)
if [ "$out" = ok ]; then ok "posix/twomount/mmap_reaches_servers"; else fail "posix/twomount/mmap_reaches_servers" "$out"; fi

# ---------------------------------------------------------------- servers

chunk_traffic() { # bytes in + out over every chunk server's HTTP
  local s a
  s=0
  for a in "${CHUNK_ADDRS[@]}"; do
    s=$((s + $(curl -s --max-time 5 "http://$a/metrics" |
      awk '$1 == "cairn_http_bytes_in_total" || $1 == "cairn_http_bytes_out_total" { s += $2 } END { print s + 0 }')))
  done
  echo "$s"
}

# copy_file_range of whole chunks shares them by reference: no chunk bytes
# move (checked on a mount without a chunk cache, where a data copy would
# have to fetch every source chunk); partial chunks are copied; the copy
# reads back equal.
CS=$(python3 -c 'import sys
s = sys.argv[1].upper() if len(sys.argv) > 1 and sys.argv[1] else "4M"
m = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
print(int(s[:-1]) * m[s[-1]] if s[-1] in m else int(s))' "${POSIX_CHUNK_SIZE:-}")
head -c $((4 * CS + 1000)) /dev/urandom >"$T/cfr-src"
cp "$T/cfr-src" "$MNT/cfr-src"
NC=$T/nocache
if mount_fs "$NC" "$T/cache-nc" --cache-size 0 --cache-mem 0; then
  before=$(chunk_traffic)
  out=$(python3 - "$NC/cfr-src" "$NC/cfr-dst" "$((4 * CS + 1000))" <<'PY' 2>&1
import os, sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
i = os.open(src, os.O_RDONLY)
o = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
done = 0
while done < n:
    r = os.copy_file_range(i, o, n - done, done, done)
    if r == 0:
        break
    done += r
os.close(o)
os.close(i)
print(done)
PY
)
  after=$(chunk_traffic)
  moved=$((after - before))
  if [ "$out" != "$((4 * CS + 1000))" ]; then
    fail "posix/cairn/copy_file_range_shares_whole_chunks" "copy_file_range: $out"
  elif [ "$moved" -lt "$CS" ]; then
    ok "posix/cairn/copy_file_range_shares_whole_chunks"
  else
    fail "posix/cairn/copy_file_range_shares_whole_chunks" \
      "copying 4 whole chunks of $CS bytes moved $moved bytes through the chunk servers"
  fi
  note "copy_file_range of $((4 * CS + 1000)) bytes: $moved bytes of chunk server traffic"
  if cmp -s "$T/cfr-src" "$NC/cfr-dst" && cmp -s "$T/cfr-src" "$B/cfr-dst"; then
    ok "posix/cairn/copy_file_range_copy_reads_back"
  else
    fail "posix/cairn/copy_file_range_copy_reads_back" "destination differs from the source"
  fi
  umount_fs "$NC"
else
  fail "posix/cairn/copy_file_range_shares_whole_chunks" "mount without cache failed"
fi

# statfs: capacity is what the chunk servers offer (each the size of the
# file system holding its data), divided by the replica count
out=$(python3 - "$MNT" "$T" "$(chunk_count)" <<'PY' 2>&1
import os, sys
mnt, tdir, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
v = os.statvfs(mnt)
l = os.statvfs(tdir)
total = v.f_blocks * v.f_frsize
want = n * l.f_blocks * l.f_frsize // 2
free = v.f_bfree * v.f_frsize
if abs(total - want) > want // 100:
    print("capacity %d, expected %d (%d servers x %d / 2 replicas)" % (total, want, n, l.f_blocks * l.f_frsize))
elif free > total:
    print("free %d > total %d" % (free, total))
else:
    print("ok")
PY
)
if [ "$out" = ok ]; then ok "posix/cairn/statfs_cluster_capacity"; else fail "posix/cairn/statfs_cluster_capacity" "$out"; fi

umount_fs "$B"
finish
