#!/bin/bash
# Everyday tools on a cairn mount: cp -a, diff -r, find/ls attributes,
# mtimes, rsync, symlinks, hard links, rm -rf, metad's inode count and the
# chunk servers' chunk count after garbage collection.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/redundancy.sh"

SRC=${CAIRN_TOOLS_SRC:-/usr/include}
MNT=$T/mnt

# A short GC grace so that the chunks of deleted files can be collected
# within the test; GC runs only when asked (POST /maint/run).
CHUNKD_ARGS=(--gc-grace 3s --gc-interval 0)
start_cluster_x 2 || bail setup "cluster did not start"
mount_fs "$MNT" "$T/cache" || bail setup "mount failed"
inodes0=$(metric cairn_metad_inodes)
note "metad inodes before: $inodes0"

# ---- cp -a and diff -r
t0=$SECONDS
check cp_a cp -a "$SRC" "$MNT/inc"
note "cp -a of $(du -sh "$SRC" | cut -f1) ($(find "$SRC" | wc -l) entries): $((SECONDS - t0))s"
check diff_r diff -r --no-dereference "$SRC" "$MNT/inc"

# ---- listing: type, mode, owner, size, link count, path
tree_listing "$SRC" >"$T/list.src"
tree_listing "$MNT/inc" >"$T/list.mnt"
if cmp -s "$T/list.src" "$T/list.mnt"; then
  ok find_attrs
else
  fail find_attrs "find -printf '%y %m %U:%G %s %n %P %l' differs (< source, > mount):
$(diff "$T/list.src" "$T/list.mnt" | head -n 12)"
fi

# ls -lR must list every entry and print no errors
lsr_err=$( (cd "$MNT/inc" && ls -lR >"$T/lsr.mnt") 2>&1)
n_src=$(cd "$SRC" && ls -lR | grep -c '^[-dlcbps]')
n_mnt=$(grep -c '^[-dlcbps]' "$T/lsr.mnt")
if [ -z "$lsr_err" ] && [ "$n_src" = "$n_mnt" ]; then
  ok ls_lR
else
  fail ls_lR "ls -lR: $n_mnt entries on the mount, $n_src in the source; errors: ${lsr_err:-none}"
fi

# ---- mtimes (to the second)
mtimes() { # DIR TYPE
  (cd "$1" && find . -mindepth 1 -type "$2" -printf '%Ts %P\n' | LC_ALL=C sort -k2)
}
mtimes "$SRC" f >"$T/mt.src"
mtimes "$MNT/inc" f >"$T/mt.mnt"
if cmp -s "$T/mt.src" "$T/mt.mnt"; then
  ok mtime_files
else
  fail mtime_files "file mtimes differ after cp -a (< source, > mount):
$(diff "$T/mt.src" "$T/mt.mnt" | head -n 8)"
fi
mtimes "$SRC" d >"$T/mtd.src"
mtimes "$MNT/inc" d >"$T/mtd.mnt"
if cmp -s "$T/mtd.src" "$T/mtd.mnt"; then
  ok mtime_dirs
else
  fail mtime_dirs "directory mtimes differ after cp -a (< source, > mount):
$(diff "$T/mtd.src" "$T/mtd.mnt" | head -n 8)"
fi

# ---- symlinks
links() { (cd "$1" && find . -type l -printf '%P -> %l\n' | LC_ALL=C sort); }
links "$SRC" >"$T/ln.src"
links "$MNT/inc" >"$T/ln.mnt"
n_links=$(wc -l <"$T/ln.src")
if cmp -s "$T/ln.src" "$T/ln.mnt"; then
  note "$n_links symlinks, readlink equal"
  ok symlinks
else
  fail symlinks "symlink targets differ (< source, > mount):
$(diff "$T/ln.src" "$T/ln.mnt" | head -n 8)"
fi
# following a link on the mount reaches the same bytes (links that stay inside the tree)
nfollow=0
bad=
while IFS= read -r l; do
  p=${l%% -> *}
  tgt=$(realpath -m "$SRC/$p")
  case $tgt in "$SRC"/*) ;; *) continue ;; esac
  if [ -f "$tgt" ]; then
    cmp -s "$SRC/$p" "$MNT/inc/$p" || bad="$bad $p"
  elif [ -d "$tgt" ]; then
    [ "$(ls "$SRC/$p/")" = "$(ls "$MNT/inc/$p/" 2>&1)" ] || bad="$bad $p/"
  else
    continue
  fi
  nfollow=$((nfollow + 1))
done <"$T/ln.src"
if [ "$nfollow" -gt 0 ] && [ -z "$bad" ]; then
  note "$nfollow symlinks followed to the same content"
  ok symlink_follow
else
  fail symlink_follow "$nfollow symlinks inside the tree followed; content differs through:$bad"
fi

# ---- rsync twice: the second run transfers nothing
t0=$SECONDS
check rsync_first rsync -a --checksum "$SRC/" "$MNT/inc2/"
note "rsync -a --checksum (first): $((SECONDS - t0))s"
check rsync_diff diff -r --no-dereference "$SRC" "$MNT/inc2"
rsync -a --checksum --stats "$SRC/" "$MNT/inc2/" >"$T/rsync2.out" 2>&1
rc=$?
xfer=$(sed -n 's/^Number of regular files transferred: *//p' "$T/rsync2.out" | tr -d ,)
if [ $rc -eq 0 ] && [ "$xfer" = 0 ]; then
  ok rsync_second_noop
else
  fail rsync_second_noop "second rsync -a --checksum: exit $rc, regular files transferred '$xfer' (expected 0):
$(grep -E '^(Number|rsync|deleting)|error' "$T/rsync2.out" | head -n 8)"
fi
# and what rsync would change with itemized output: nothing
rsync -a --checksum -n -i "$SRC/" "$MNT/inc2/" >"$T/rsync3.out" 2>&1
if [ ! -s "$T/rsync3.out" ]; then
  ok rsync_itemize_empty
else
  fail rsync_itemize_empty "rsync -a --checksum -n -i still finds differences:
$(head -n 8 "$T/rsync3.out")"
fi

# ---- hard links
printf 'hard link payload\n' >"$MNT/h1"
ln "$MNT/h1" "$MNT/h2"
n1=$(stat -c %h "$MNT/h1" 2>&1)
n2=$(stat -c %h "$MNT/h2" 2>&1)
i1=$(stat -c %i "$MNT/h1" 2>&1)
i2=$(stat -c %i "$MNT/h2" 2>&1)
if [ "$n1" = 2 ] && [ "$n2" = 2 ] && [ "$i1" = "$i2" ]; then
  ok hardlink_nlink_ino
else
  fail hardlink_nlink_ino "after ln h1 h2: nlink h1=$n1 h2=$n2 (expected 2), inode h1=$i1 h2=$i2 (expected equal)"
fi
printf 'appended via h2\n' >>"$MNT/h2"
expect_eq hardlink_shared_data "h1 content after appending through h2" \
  "$(printf 'hard link payload\nappended via h2\n')" "$(cat "$MNT/h1")"
rm -f "$MNT/h1"
n2=$(stat -c %h "$MNT/h2" 2>&1)
c2=$(cat "$MNT/h2" 2>&1)
if [ "$n2" = 1 ] && [ "$c2" = "$(printf 'hard link payload\nappended via h2\n')" ] && [ ! -e "$MNT/h1" ]; then
  ok hardlink_unlink_one
else
  fail hardlink_unlink_one "after rm h1: h2 nlink=$n2 (expected 1), h2 content '$c2', h1 exists: $([ -e "$MNT/h1" ] && echo yes || echo no)"
fi
# hard link of a chunked file (larger than the inline limit)
head -c $((5 << 20)) /dev/urandom >"$T/big"
cp "$T/big" "$MNT/hb1" && ln "$MNT/hb1" "$MNT/hb2"
if cmp -s "$T/big" "$MNT/hb2" && [ "$(stat -c %h "$MNT/hb2")" = 2 ]; then
  ok hardlink_big_file
else
  fail hardlink_big_file "5 MiB file linked: hb2 nlink $(stat -c %h "$MNT/hb2" 2>&1), content equal: $(cmp "$T/big" "$MNT/hb2" 2>&1 || true)"
fi

chunks_copied=$(chunk_files_total)

# ---- rm -rf: everything goes, and metad forgets the inodes
t0=$SECONDS
rm_err=$(rm -rf "${MNT:?}"/* "${MNT:?}"/.[!.]* 2>&1)
note "rm -rf: $((SECONDS - t0))s"
left=$(ls -A "$MNT" 2>&1)
if [ -z "$rm_err" ] && [ -z "$left" ]; then
  ok rm_rf_empty
else
  fail rm_rf_empty "after rm -rf the mount root lists: '$(echo $left | head -c 300)'; rm said: '$(echo "$rm_err" | head -n 3)'"
fi
_inodes_back() { [ "$(metric cairn_metad_inodes)" = "$inodes0" ]; }
if wait_until 30 _inodes_back; then
  ok metad_inodes_freed
else
  fail metad_inodes_freed "cairn_metad_inodes is $(metric cairn_metad_inodes) 30s after rm -rf, expected $inodes0 (as before the copy); cairn_metad_files=$(metric cairn_metad_files)"
fi

# ---- the chunk servers' chunks fall to zero once GC has run
chunks_after_copy=$chunks_copied
note "chunk files on the servers after the copies: $chunks_after_copy"
_gc_empty() { maint_all gc >/dev/null 2>&1; [ "$(chunk_files_total)" -eq 0 ]; }
if [ "${chunks_after_copy:-0}" -gt 0 ] && wait_until 60 _gc_empty; then
  ok chunks_collected_after_rm
else
  fail chunks_collected_after_rm "chunk files: $chunks_after_copy after the copies, $(chunk_files_total) after rm -rf and GC (expected 0)"
fi

if umount_fs "$MNT"; then ok umount_clean; else fail umount_clean "unmount was not clean"; fi
finish
