#!/bin/bash
# Several clients on one filesystem: what one mount writes and closes, the
# others see after open (close-to-open), including size changes, new
# directories, renames and deletes.
#   A: the writer (default options)
#   B: default options (attributes and names cached 1 s): polled, bound 5 s
#   C: --attr-timeout 0 --entry-timeout 0: must see every change at once
. "$(dirname "$0")/lib.sh"

A=$T/a
B=$T/b
C=$T/c
POLL=${CAIRN_TWOMOUNTS_POLL:-5}

start_cluster 2 || bail setup "cluster did not start"
mount_fs "$A" "$T/cache-a" || bail setup "mount A failed"
mount_fs "$B" "$T/cache-b" || bail setup "mount B failed"
mount_fs "$C" "$T/cache-c" --attr-timeout 0 --entry-timeout 0 || bail setup "mount C failed"

sha() { { sha256sum <"$1" | cut -d' ' -f1; } 2>/dev/null; }

# seen NAME MNT DESCRIPTION cond...: B may take up to $POLL s, C must see it now
seen() {
  local name=$1 mnt=$2 what=$3
  shift 3
  if [ "$mnt" = "$C" ]; then
    if "$@"; then ok "${name}_C"; else fail "${name}_C" "mount C (timeouts 0): $what: $(last_state)"; fi
  else
    if wait_until "$POLL" "$@"; then ok "${name}_B"; else fail "${name}_B" "mount B, after ${POLL}s: $what: $(last_state)"; fi
  fi
}
STATE=
last_state() { echo "$STATE"; }

# file_is MNT PATH SRC: size and bytes of MNT/PATH equal SRC
file_is() {
  local sz got
  sz=$(stat -c %s "$1/$2" 2>&1)
  got=$(sha "$1/$2")
  STATE="size $sz (expected $(stat -c %s "$3")), sha256 ${got:-unreadable} (expected $(sha "$3"))"
  [ "$sz" = "$(stat -c %s "$3")" ] && [ "$got" = "$(sha "$3")" ]
}
# size_is MNT PATH SIZE
size_is() {
  STATE="size $(stat -c %s "$1/$2" 2>&1), expected $3"
  [ "$(stat -c %s "$1/$2" 2>/dev/null)" = "$3" ]
}
exists() { STATE="$2 exists: $([ -e "$1/$2" ] && echo yes || echo no)"; [ -e "$1/$2" ]; }
absent() { STATE="$2 exists: $([ -e "$1/$2" ] && echo yes || echo no)"; [ ! -e "$1/$2" ]; }
lists() { # MNT DIR NAME: NAME is in ls MNT/DIR
  local l
  l=$(ls -a "$1/$2" 2>&1)
  STATE="ls $2: $(echo $l | head -c 200)"
  grep -qx -- "$3" <<<"$l"
}
not_lists() { ! lists "$@"; }

mk() { head -c "$2" /dev/urandom >"$T/$1"; }
mk small 1000
mk mid $((1 << 20))
mk big $((9 << 20))      # three 4 MiB chunks
mk v2 $(((5 << 20) + 12345))
mk v3 777
mk v4 $((6 << 20))

# ---- written and closed on A, read on B and C
for f in small mid big; do
  cp "$T/$f" "$A/$f" || fail "write_$f" "cp to mount A failed"
done
for m in "$B" "$C"; do
  for f in small mid big; do
    seen "read_${f}" "$m" "$f written on A" file_is "$m" "$f" "$T/$f"
  done
done

# ---- overwritten on A with a different size: B and C read it first so that
# they hold cached attributes and pages of the old version
cp "$T/mid" "$A/x"
for m in "$B" "$C"; do wait_until "$POLL" file_is "$m" x "$T/mid" >/dev/null; cat "$m/x" >/dev/null; done
cp "$T/v2" "$A/x"                                      # grows, crosses a chunk
for m in "$B" "$C"; do
  seen overwrite_grow_size "$m" "x rewritten on A" size_is "$m" x "$(stat -c %s "$T/v2")"
  seen overwrite_grow_bytes "$m" "x rewritten on A" file_is "$m" x "$T/v2"
done
cp "$T/v3" "$A/x"                                      # shrinks to inline size
for m in "$B" "$C"; do
  seen overwrite_shrink_size "$m" "x rewritten smaller on A" size_is "$m" x 777
  seen overwrite_shrink_bytes "$m" "x rewritten smaller on A" file_is "$m" x "$T/v3"
done
# in place (same name, same inode, no truncate): dd conv=notrunc over the start
cp "$T/big" "$A/y"
for m in "$B" "$C"; do wait_until "$POLL" file_is "$m" y "$T/big" >/dev/null; cat "$m/y" >/dev/null; done
cp "$T/big" "$T/y2"
dd if="$T/v4" of="$T/y2" bs=1M count=2 conv=notrunc status=none
dd if="$T/v4" of="$A/y" bs=1M count=2 conv=notrunc status=none
for m in "$B" "$C"; do
  seen overwrite_in_place "$m" "first 2 MiB of y rewritten in place on A" file_is "$m" y "$T/y2"
done

# ---- the other direction: written on B, read on A
cp "$T/v4" "$B/from_b"
seen_a() { wait_until "$POLL" file_is "$A" from_b "$T/v4"; }
if seen_a; then ok read_on_A_written_on_B; else fail read_on_A_written_on_B "file written on B, read on A: $STATE"; fi

# ---- directories
mkdir "$A/dir" && cp "$T/small" "$A/dir/inner"
for m in "$B" "$C"; do
  seen mkdir_lists "$m" "dir created on A" lists "$m" . dir
  seen mkdir_inner "$m" "dir/inner created on A" file_is "$m" dir/inner "$T/small"
done
mkdir -p "$A/d1/d2/d3" && echo deep >"$A/d1/d2/d3/leaf"
for m in "$B" "$C"; do
  seen nested_dirs "$m" "d1/d2/d3/leaf created on A" lists "$m" d1/d2/d3 leaf
done

# ---- rename: B and C look the old name up first
cp "$T/mid" "$A/old"
for m in "$B" "$C"; do wait_until "$POLL" exists "$m" old >/dev/null; stat "$m/old" >/dev/null 2>&1; done
mv "$A/old" "$A/dir/new"
for m in "$B" "$C"; do
  seen rename_old_gone "$m" "old renamed on A" absent "$m" old
  seen rename_new_there "$m" "old renamed to dir/new on A" file_is "$m" dir/new "$T/mid"
  seen rename_listing "$m" "old renamed on A" not_lists "$m" . old
done
# rename over an existing file
cp "$T/small" "$A/r1"
cp "$T/v3" "$A/r2"
for m in "$B" "$C"; do wait_until "$POLL" file_is "$m" r2 "$T/v3" >/dev/null; done
mv -f "$A/r1" "$A/r2"
for m in "$B" "$C"; do
  seen rename_replace "$m" "r1 renamed over r2 on A" file_is "$m" r2 "$T/small"
done

# rename over a file that B has open()ed before (as rsync, editors and git
# replace files): the name exists throughout, so every open on B returns the
# old or the new content, never ENOENT, and the new content once the kernel's
# entry cache expires
cp "$T/v3" "$A/s2"
cp "$T/small" "$A/s1"
wait_until "$POLL" file_is "$B" s2 "$T/v3" >/dev/null
mv -f "$A/s1" "$A/s2"
errs=0 newseen=0 foreign=0 first_err=
for ((i = 0; i < 25; i++)); do
  if out=$(cat "$B/s2" 2>"$T/cat.err" | sha256sum | cut -d' ' -f1); then
    if [ "$out" = "$(sha "$T/small")" ]; then
      newseen=$((newseen + 1))
    elif [ "$out" != "$(sha "$T/v3")" ]; then
      foreign=$((foreign + 1))
    fi
  else
    errs=$((errs + 1))
    [ -z "$first_err" ] && first_err="open $i ($((i * 100)) ms after the rename): $(head -n1 "$T/cat.err")"
  fi
  sleep 0.1
done
if [ "$errs" = 0 ] && [ "$foreign" = 0 ] && [ "$newseen" -gt 0 ]; then
  ok rename_replace_atomic_B
else
  fail rename_replace_atomic_B "after 'mv -f s1 s2' on A, 25 opens of s2 on B over 2.5s: $errs failed (first error: ${first_err:-none}), $foreign returned neither the old nor the new bytes, $newseen returned the new bytes (expected 0 failures, 0 foreign, >0 new)"
fi

# ---- a file published here with write-to-temp + rename (git, ccache and
# rsync do this) keeps what this mount knows of it: the rename moved its VV
# by exactly that one step, so when C (timeouts 0) opens it again, metad
# answers the open's VV check with 304 and sends no new chunk map (the
# kernel keeps the pages). A change made on B after that is still seen at
# C's next open.
maps() { metrics | awk '$1 == "cairn_http_requests_total{route=\"map\",code=\"200\"}" { n = $2 } END { print n + 0 }'; }
mk pub1 70000
mk pub2 3000
cp "$T/pub1" "$C/pub.tmp" && cat "$C/pub.tmp" >/dev/null || fail publish_setup "cannot write $C/pub.tmp"
m0=$(maps)
mv "$C/pub.tmp" "$C/pub" || fail publish_setup "cannot rename $C/pub.tmp"
got=$(sha "$C/pub")
m1=$(maps)
if [ "$got" = "$(sha "$T/pub1")" ] && [ "$m1" = "$m0" ]; then
  ok renamed_here_stays_cached
else
  fail renamed_here_stays_cached "read of pub on C after its own rename: sha256 ${got:-unreadable} (expected $(sha "$T/pub1")), full map answers $m0 -> $m1 (expected none)"
fi
wait_until "$POLL" file_is "$B" pub "$T/pub1" >/dev/null
cp "$T/pub2" "$B/pub"
seen renamed_here_changed_elsewhere "$C" "pub rewritten on B after C renamed it into place" file_is "$C" pub "$T/pub2"

# ---- a name found absent stays absent for the negative timeout (1 s by
# default, never longer than the entry timeout): B may take that long to
# see a name A creates after B looked for it; C (entry timeout 0) sees it
# at once.
for m in "$B" "$C"; do
  stat "$m/late" >/dev/null 2>&1 && fail absent_setup "$m/late exists before A created it"
done
cp "$T/small" "$A/late"
for m in "$C" "$B"; do
  seen absent_then_created "$m" "late created on A after a failed lookup here" file_is "$m" late "$T/small"
done

# ---- a directory this mount created is known to be empty: looking up names
# in it before creating them (cp -a, tar x) asks metad nothing while the
# listing is fresh; on C (timeouts 0) every such lookup is asked.
absent404() { metrics | awk '$1 == "cairn_http_requests_total{route=\"lookup\",code=\"404\"}" { n = $2 } END { print n + 0 }'; }
for m in "$B" "$C"; do
  mm=B; [ "$m" = "$C" ] && mm=C
  mkdir "$m/fresh_$mm" || fail new_dir_setup "mkdir $m/fresh_$mm failed"
  l0=$(absent404)
  present=0
  for i in $(seq 1 20); do [ -e "$m/fresh_$mm/n$i" ] && present=$((present + 1)); done
  cp "$T/small" "$m/fresh_$mm/n1"
  [ -e "$m/fresh_$mm/n1" ] || present=-1
  l1=$(absent404)
  if [ "$m" = "$B" ]; then
    want="0 absent lookups"
    [ "$present" = 0 ] && [ "$l1" = "$l0" ]
  else
    want="at least 20 absent lookups"
    [ "$present" = 0 ] && [ $((l1 - l0)) -ge 20 ]
  fi
  r=$?
  if [ "$r" = 0 ]; then
    ok "new_dir_lookups_$mm"
  else
    fail "new_dir_lookups_$mm" "20 lookups of absent names in a directory made here, then a copy into it: $present found before the copy (-1: the copy is not seen), metad answered $((l1 - l0)) absent lookups ($want)"
  fi
done
# ---- ... and stays known while only this mount changes it: each answer to
# a change here shows the directory's VV one step on, so the listing is
# still exact after its 1 s are up. Filling it over 1.5 s (the pauses are
# what is tested) asks metad about none of the absent names (an expired
# listing would send the next one to metad); once A adds a name, B sees it
# within its timeouts.
mkdir "$B/slow" || fail slow_dir_setup "mkdir $B/slow failed"
l0=$(absent404)
present=0
for i in $(seq 1 15); do
  [ -e "$B/slow/s$i" ] && present=$((present + 1))
  echo "$i" >"$B/slow/s$i"
  sleep 0.1
done
l1=$(absent404)
if [ "$present" = 0 ] && [ "$l1" = "$l0" ]; then
  ok new_dir_kept_by_own_changes_B
else
  fail new_dir_kept_by_own_changes_B "15 creates in $B/slow over 1.5 s, each after a lookup: $present found before their create, metad answered $((l1 - l0)) absent lookups (expected 0)"
fi
cp "$T/small" "$A/slow/fromA"
seen slow_dir_change_elsewhere "$B" "slow/fromA created on A" file_is "$B" slow/fromA "$T/small"
rm -rf "$A/fresh_B" "$A/fresh_C" "$A/late" "$A/slow"

# ---- delete
for m in "$B" "$C"; do stat "$m/big" >/dev/null 2>&1; done
rm "$A/big"
rm -rf "$A/d1/d2/d3"
for m in "$B" "$C"; do
  seen delete_gone "$m" "big deleted on A" absent "$m" big
  seen delete_listing "$m" "big deleted on A" not_lists "$m" . big
  seen rmdir_gone "$m" "d1/d2/d3 removed on A" absent "$m" d1/d2/d3
done

for m in "$A" "$B" "$C"; do
  if umount_fs "$m"; then ok "umount_clean_$(basename "$m")"; else fail "umount_clean_$(basename "$m")" "unmount was not clean"; fi
done
finish
