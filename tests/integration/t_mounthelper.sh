#!/bin/bash
# mount -t cairn and /etc/fstab-style lines through mount.cairn, the helper
# mount(8) runs for file systems of type cairn, and umount leaving no
# cairn-mount process behind.
#
# mount(8) looks for its helpers in /sbin only. So that the test changes
# nothing on the machine, it runs in a private mount namespace (unshare -m)
# in which an overlay adds this build's mount.cairn and cairn-mount to
# /usr/sbin (what /sbin points to on Debian); the real /usr/sbin is never
# written. The fstab lines come from a file of the test's own (mount -T).
. "$(dirname "$0")/lib.sh"

command -v unshare >/dev/null || bail setup "unshare (util-linux) is missing"
[ -x "$BIN/mount.cairn" ] || bail setup "$BIN/mount.cairn is missing"
start_cluster 3 || bail setup "cluster did not start"
SBIN=$(readlink -f /sbin)
MNT=$T/mnt
RES=$T/results
mkdir -p "$MNT" "$T/upper" "$T/work"
cp "$BIN/mount.cairn" "$BIN/cairn-mount" "$T/upper/"
head -c $((6 << 20)) /dev/urandom >"$T/big.src"
printf 'hello from mount -t cairn\n' >"$T/small.src"
cat >"$T/fstab" <<EOF
# a line as in /etc/fstab
$METAD_ADDR  $MNT  cairn  _netdev,cache_dir=$T/cache2,cache_size=64M,noatime  0  0
EOF

cat >"$T/inner.sh" <<'EOF'
# runs inside the private mount namespace; one line per case into $RES:
# "ok NAME" or "not ok NAME: reason"
set -u
say() { echo "$*" >>"$RES"; }
# every wait is bounded: poll CMD for at most N seconds
poll() { local n=$1 end; shift; end=$((SECONDS + n)); until "$@"; do [ $SECONDS -ge $end ] && return 1; sleep 0.1; done; }
mount_procs() { pgrep -f "cairn-mount .*$MNT\$" 2>/dev/null; }
no_procs() { [ -z "$(mount_procs)" ]; }
cleanup() { # never leave a daemon behind, whatever happened
  mountpoint -q "$MNT" && umount -l "$MNT" 2>/dev/null
  local p
  for p in $(mount_procs); do kill -KILL "$p" 2>/dev/null; done
}
trap cleanup EXIT
mount -t overlay overlay -o "lowerdir=$SBIN,upperdir=$T/upper,workdir=$T/work" "$SBIN" ||
  { say "not ok helper_visible: overlay on $SBIN failed"; exit 1; }
if [ -x /sbin/mount.cairn ]; then say "ok helper_visible"; else say "not ok helper_visible: no /sbin/mount.cairn"; exit 1; fi

# ---- mount -t cairn ADDR DIR -o options
out=$(mount -t cairn "$METAD_ADDR" "$MNT" -o "cache_dir=$T/cache1,cache_size=64M" 2>&1)
rc=$?
if [ $rc = 0 ] && mountpoint -q "$MNT"; then say "ok mount_t_cairn"
else say "not ok mount_t_cairn: exit $rc: $out"; exit 1; fi
fstype=$(findmnt -n -o FSTYPE --target "$MNT")
src=$(findmnt -n -o SOURCE --target "$MNT")
case $fstype in
  fuse.cairn*) say "ok mount_table_type" ;;
  *) say "not ok mount_table_type: findmnt says type '$fstype'" ;;
esac
[ -n "$(mount_procs)" ] && say "ok daemon_running" || say "not ok daemon_running: no cairn-mount for $MNT"
cp "$T/big.src" "$MNT/big" && cp "$T/small.src" "$MNT/small"
if cmp -s "$T/big.src" "$MNT/big" && cmp -s "$T/small.src" "$MNT/small"; then say "ok write_read"
else say "not ok write_read: files differ after cp"; fi
say "# mounted as $src, type $fstype"
umount "$MNT"
rc=$?
if [ $rc = 0 ] && poll 30 no_procs && ! mountpoint -q "$MNT"; then say "ok umount_no_process_left"
else say "not ok umount_no_process_left: umount exit $rc; left: $(mount_procs | tr '\n' ' ')"; fi

# ---- an fstab line: mount DIR alone finds it
out=$(mount -T "$T/fstab" "$MNT" 2>&1)
rc=$?
if [ $rc = 0 ] && mountpoint -q "$MNT"; then say "ok fstab_mount"
else say "not ok fstab_mount: exit $rc: $out"; exit 1; fi
if cmp -s "$T/big.src" "$MNT/big" && cmp -s "$T/small.src" "$MNT/small"; then say "ok fstab_data_intact"
else say "not ok fstab_data_intact: files differ through the fstab mount"; fi
opts=$(ps -o args= -p "$(mount_procs | head -n 1)" 2>/dev/null)
case $opts in
  *cache_size=64M*noatime* | *noatime*cache_size=64M*) say "ok fstab_options_passed" ;;
  *) say "not ok fstab_options_passed: cairn-mount runs as: $opts" ;;
esac
ls "$T/cache2" >/dev/null 2>&1 && say "ok fstab_cache_dir_used" || say "not ok fstab_cache_dir_used: $T/cache2 missing"
umount "$MNT"
rc=$?
if [ $rc = 0 ] && poll 30 no_procs; then say "ok fstab_umount_no_process_left"
else say "not ok fstab_umount_no_process_left: umount exit $rc; left: $(mount_procs | tr '\n' ' ')"; fi

# ---- a bad address fails the mount with an error and leaves nothing
out=$(timeout 60 mount -t cairn 127.0.0.1:1 "$MNT" -o "cache_dir=$T/cache3,retry_time=2s" 2>&1)
rc=$?
if [ $rc != 0 ] && ! mountpoint -q "$MNT" && poll 10 no_procs; then say "ok bad_address_fails"
else say "not ok bad_address_fails: exit $rc, mounted: $(mountpoint -q "$MNT" && echo yes || echo no): $out"; fi
say "# bad address: $(echo "$out" | head -n 2 | tr '\n' ' ')"
EOF

export T MNT RES SBIN METAD_ADDR
timeout -k 10 240 unshare -m --propagation private bash "$T/inner.sh" >"$T/inner.out" 2>&1
rc=$?
[ $rc != 0 ] && note "inner script exit $rc: $(tail -n 5 "$T/inner.out")"
while IFS= read -r line; do
  case $line in
    "ok "*) ok "${line#ok }" ;;
    "not ok "*) l=${line#not ok }; fail "${l%%:*}" "${l#*: }" ;;
    "# "*) note "${line#\# }" ;;
  esac
done <"$RES"
n=$(grep -c '^ok ' "$RES" 2>/dev/null)
[ "${n:-0}" -ge 10 ] || fail all_cases_ran "only ${n:-0} cases passed of 11; $(tail -n 3 "$T/inner.out")"
# the namespace is gone with its last process: nothing of it is left here
if pgrep -f "cairn-mount .*$MNT\$" >/dev/null; then fail namespace_clean "a cairn-mount for $MNT still runs"
else ok namespace_clean; fi
finish
