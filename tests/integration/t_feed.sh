#!/bin/bash
# The change feed: two mounts keep names, absent names and attributes for
# 60 s (--entry-timeout, --negative-timeout, --attr-timeout 60s). L follows
# metad's change feed (the default); N does not (--coherent-timeout 0).
# What mount A changes, L sees within a few seconds (metad pushes it),
# while N still shows what it cached: the caching is real, and L's
# freshness comes from the feed. Also across a metad restart (a new feed).
#   A: the writer (default options)
. "$(dirname "$0")/lib.sh"

A=$T/a
L=$T/l
N=$T/n
POLL=${CAIRN_FEED_POLL:-5}
LONG=(--entry-timeout 60s --negative-timeout 60s --attr-timeout 60s)

start_cluster 2 || bail setup "cluster did not start"
mount_fs "$A" "$T/cache-a" || bail setup "mount A failed"
mount_fs "$L" "$T/cache-l" "${LONG[@]}" || bail setup "mount L failed"
mount_fs "$N" "$T/cache-n" "${LONG[@]}" --coherent-timeout 0 || bail setup "mount N failed"
LLOG=$T/logs/mount-l.log

feed_up() { grep -q "change feed from metad up" "$LLOG"; }
if grep -q "cannot drop all cached names" "$LLOG"; then
  skip feed "this kernel has no FUSE_NOTIFY_INC_EPOCH (Linux 6.16): the mount does not follow the feed"
  finish
fi
wait_until 10 feed_up || bail feed_up "mount L never reported the change feed up: $(tail -n 3 "$LLOG")"
ok feed_up

STATE=
exists() { STATE="$2 exists: $([ -e "$1/$2" ] && echo yes || echo no)"; [ -e "$1/$2" ]; }
absent() { STATE="$2 exists: $([ -e "$1/$2" ] && echo yes || echo no)"; [ ! -e "$1/$2" ]; }
mode_is() { STATE="mode $(stat -c %a "$1/$2" 2>&1), expected $3"; [ "$(stat -c %a "$1/$2" 2>/dev/null)" = "$3" ]; }
size_is() { STATE="size $(stat -c %s "$1/$2" 2>&1), expected $3"; [ "$(stat -c %s "$1/$2" 2>/dev/null)" = "$3" ]; }
bytes_are() { STATE="bytes $(head -c 40 "$1/$2" 2>&1 | od -An -c | head -c 80)"; [ "$(cat "$1/$2" 2>/dev/null)" = "$3" ]; }
lists() { local l; l=$(ls -a "$1/$2" 2>&1); STATE="ls $2: $(echo $l | head -c 200)"; grep -qx -- "$3" <<<"$l"; }

# fresh NAME DESCRIPTION cond...: L must see it within $POLL s
fresh() {
  local name=$1 what=$2
  shift 2
  if wait_until "$POLL" "$@"; then ok "${name}_L"; else fail "${name}_L" "mount L, after ${POLL}s: $what: $(last)"; fi
}
# stale NAME DESCRIPTION cond...: N (no feed, 60 s caches) still shows the old state
stale() {
  local name=$1 what=$2
  shift 2
  if "$@"; then ok "${name}_N_cached"; else fail "${name}_N_cached" "mount N without the feed: $what: $(last)"; fi
}
last() { echo "$STATE"; }

# ---- a name that was absent (negative entries cached for 60 s)
for m in "$L" "$N"; do stat "$m/new" >/dev/null 2>&1; done
echo "one" >"$A/new"
fresh create "new created on A" bytes_are "$L" new one
stale create "new created on A" absent "$N" new

# ---- attributes (cached for 60 s)
for m in "$L" "$N"; do stat "$m/new" >/dev/null 2>&1; done
chmod 600 "$A/new"
fresh chmod "chmod 600 on A" mode_is "$L" new 600
echo "one two three" >"$A/new"
fresh size "rewritten on A (14 bytes)" size_is "$L" new 14
fresh bytes "rewritten on A" bytes_are "$L" new "one two three"

# ---- rename and delete (names cached for 60 s)
echo "r" >"$A/r"
for m in "$L" "$N"; do
  wait_until "$POLL" exists "$m" r || fail "rename_setup_$(basename "$m")" "r never appeared: $(last)"
  stat "$m/r2" >/dev/null 2>&1
done
mv "$A/r" "$A/r2"
fresh rename_old "r renamed to r2 on A" absent "$L" r
fresh rename_new "r renamed to r2 on A" bytes_are "$L" r2 r
stale rename "r renamed to r2 on A" exists "$N" r
stale rename_target "r renamed to r2 on A" absent "$N" r2
rm "$A/r2"
fresh delete "r2 deleted on A" absent "$L" r2

# ---- a directory's listing
mkdir -p "$A/dir"
fresh mkdir "dir made on A" exists "$L" dir
ls -a "$L/dir" >/dev/null
mkdir "$A/dir/sub"
fresh listing "dir/sub made on A" lists "$L" dir sub

# ---- L's own changes (not sent back to it) read back right
for i in 1 2 3 4 5; do echo "$i" >"$L/dir/own$i"; done
for i in 1 2 3 4 5; do [ "$(cat "$L/dir/own$i")" = "$i" ] || fail own_reads "L/dir/own$i reads $(cat "$L/dir/own$i" 2>&1)"; done
fresh own_seen_by_A "own1..5 created on L, seen from A" exists "$A" dir/own5

# ---- a restarted metad is a new feed: L starts over and follows it
stat "$L/dir/own1" >/dev/null
restart_metad || bail restart "metad did not come back"
mv "$A/dir/own1" "$A/dir/renamed1"
fresh restart_rename "dir/own1 renamed on A after a metad restart" exists "$L" dir/renamed1
fresh restart_old "dir/own1 renamed on A after a metad restart" absent "$L" dir/own1

for m in "$A" "$L" "$N"; do
  if umount_fs "$m"; then ok "umount_clean_$(basename "$m")"; else fail "umount_clean_$(basename "$m")" "unmount was not clean"; fi
done
finish
