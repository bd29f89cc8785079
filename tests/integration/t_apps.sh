#!/bin/bash
# Real applications on the mount, each checked by its own integrity tool and
# again through a second, fresh mount (data from the servers, not the cache):
#  - tar: /usr/include archived, extracted on the mount, `tar --compare`
#    finds no difference in content, mode, owner, mtime or link targets;
#  - git: init, add and commit a tree, amend, branch and merge; `git fsck
#    --full` is clean, `git status` is clean, and a clone from the mount has
#    the same tree;
#  - sqlite3: 10,000 inserts in transactions (rollback journal and WAL mode),
#    `PRAGMA integrity_check` says ok and the sums match what was inserted.
. "$(dirname "$0")/lib.sh"

for tool in tar git sqlite3; do
  command -v "$tool" >/dev/null || bail setup "$tool is not installed (make deps installs it)"
done
start_cluster 3 || bail setup "cluster did not start"
MNT=$T/mnt
mount_fs "$MNT" "$T/cache" || bail setup "mount failed"
M2=$T/mnt2

# ---- tar
SRC=/usr/include
t0=$(date +%s.%N)
tar -C "$(dirname "$SRC")" -cf "$T/inc.tar" "$(basename "$SRC")" 2>"$T/tar.err" ||
  bail setup "tar -c of $SRC failed: $(tail -n 3 "$T/tar.err")"
mkdir -p "$MNT/tar"
if tar -C "$MNT/tar" -xpf "$T/inc.tar" 2>"$T/tarx.err"; then ok tar_extract
else fail tar_extract "tar -x on the mount: $(tail -n 5 "$T/tarx.err")"; fi
note "tar -x of $(du -sh "$T/inc.tar" | cut -f1) archive: $(elapsed "$t0")s"
# --compare checks size, mode, uid, gid, mtime, link targets and content
if tar -C "$MNT/tar" --compare -f "$T/inc.tar" >"$T/tard.out" 2>&1; then ok tar_compare
else fail tar_compare "tar --compare found differences:
$(head -n 15 "$T/tard.out")"; fi
# archive again from the mount: the same members with the same metadata
# (in another order: readdir order is the file system's own)
tar -C "$MNT/tar" -cf "$T/inc2.tar" "$(basename "$SRC")" 2>"$T/tarc2.err" ||
  fail tar_recreate "tar -c from the mount: $(tail -n 3 "$T/tarc2.err")"
expect_eq tar_listing_same "tar -tv listing of the archive made from the mount" \
  "$(tar -tvf "$T/inc.tar" | sort | sha256sum)" "$(tar -tvf "$T/inc2.tar" 2>&1 | sort | sha256sum)"

# ---- git
export GIT_AUTHOR_NAME=cairn GIT_AUTHOR_EMAIL=cairn@localhost
export GIT_COMMITTER_NAME=cairn GIT_COMMITTER_EMAIL=cairn@localhost
export GIT_CONFIG_NOSYSTEM=1 HOME=$T/home
mkdir -p "$HOME"
git config --global init.defaultBranch main
git config --global safe.directory '*'
REPO=$MNT/repo
gitlog=$T/git.log
if (
  set -e
  git init -q "$REPO"
  cp -a "$MNT/tar/include/linux" "$REPO/linux"
  cd "$REPO"
  git add -A
  git commit -q -m "import linux headers"
  echo "first line" >notes.txt
  git add notes.txt
  git commit -q -m "notes"
  git checkout -q -b topic
  echo "topic line" >>notes.txt
  git rm -q -r linux/netfilter
  git commit -q -am "topic: edit notes, drop netfilter"
  git checkout -q main
  echo "main change" >other.txt
  git add other.txt
  git commit -q -m "other"
  git merge -q --no-edit topic
  git gc -q
) >"$gitlog" 2>&1; then
  ok git_workflow
else
  fail git_workflow "git commands failed: $(tail -n 10 "$gitlog")"
fi
if git -C "$REPO" fsck --full --strict >"$T/fsck.out" 2>&1; then ok git_fsck
else fail git_fsck "git fsck --full: $(head -n 10 "$T/fsck.out")"; fi
st=$(git -C "$REPO" status --porcelain 2>&1)
expect_eq git_status_clean "git status --porcelain" "" "$st"
expect_eq git_merge_result "notes.txt after the merge" "first line
topic line" "$(cat "$REPO/notes.txt" 2>&1)"
if [ ! -e "$REPO/linux/netfilter" ] && [ -f "$REPO/linux/fs.h" ] && [ -f "$REPO/other.txt" ]; then
  ok git_tree_content
else
  fail git_tree_content "after the merge: netfilter $([ -e "$REPO/linux/netfilter" ] && echo present || echo gone), fs.h $([ -f "$REPO/linux/fs.h" ] && echo present || echo missing)"
fi
# the working tree matches the committed tree byte for byte
expect_eq git_worktree_matches "linux/ on the mount vs the import, minus netfilter" \
  "$(cd "$MNT/tar/include/linux" && find . -path ./netfilter -prune -o -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum)" \
  "$(cd "$REPO/linux" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum)"
head_before=$(git -C "$REPO" rev-parse HEAD 2>&1)

# ---- sqlite3
DB=$MNT/db
mkdir -p "$DB"
sqlite_load() { # FILE JOURNAL_MODE: 10,000 rows in 20 transactions
  local f=$1 mode=$2 b
  {
    echo "PRAGMA journal_mode=$mode;"
    echo "CREATE TABLE t(id INTEGER PRIMARY KEY, v INTEGER NOT NULL, s TEXT NOT NULL);"
    echo "CREATE INDEX t_v ON t(v);"
    for b in $(seq 0 19); do
      echo "BEGIN;"
      echo "WITH RECURSIVE c(i) AS (SELECT $((b * 500 + 1)) UNION ALL SELECT i + 1 FROM c WHERE i < $((b * 500 + 500)))"
      echo "INSERT INTO t(id, v, s) SELECT i, (i * 7919) % 10007, printf('row-%06d-%s', i, hex(randomblob(16))) FROM c;"
      echo "COMMIT;"
    done
    # churn: updates and deletes that move pages around
    echo "BEGIN; UPDATE t SET v = v + 1 WHERE id % 3 = 0; DELETE FROM t WHERE id % 10 = 5; COMMIT;"
    echo "BEGIN; INSERT INTO t(id, v, s) SELECT id + 100000, v, s FROM t WHERE id % 10 = 4; ROLLBACK;"
  } | sqlite3 "$f"
}
# expected sums, computed by the same SQL on a local disk
sqlite_sums() { sqlite3 "$1" "SELECT count(*), sum(v), sum(length(s)) FROM t;"; }
mkdir -p "$T/localdb"
sqlite_load "$T/localdb/ref.db" delete >/dev/null 2>&1 || bail setup "sqlite3 on a local disk failed"
want=$(sqlite_sums "$T/localdb/ref.db")
for mode in delete wal; do
  t0=$(date +%s.%N)
  if sqlite_load "$DB/$mode.db" "$mode" >"$T/sqlite-$mode.out" 2>&1; then ok "sqlite_inserts_$mode"
  else fail "sqlite_inserts_$mode" "sqlite3 (journal_mode=$mode): $(tail -n 5 "$T/sqlite-$mode.out")"; fi
  note "sqlite3 journal_mode=$mode: 10,000 inserts in 20 transactions, updates, deletes: $(elapsed "$t0")s"
  expect_eq "sqlite_integrity_$mode" "PRAGMA integrity_check" ok \
    "$(sqlite3 "$DB/$mode.db" 'PRAGMA integrity_check;' 2>&1)"
  expect_eq "sqlite_content_$mode" "count, sum(v), sum(length(s))" "$want" "$(sqlite_sums "$DB/$mode.db" 2>&1)"
done
# a WAL database checkpointed into its main file survives a remount
sqlite3 "$DB/wal.db" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null 2>&1

# ---- everything again through a fresh mount with no cache
sums_tar=$(tree_sums "$MNT/tar")
umount_fs "$MNT" || fail umount_clean "unmount was not clean"
mount_fs "$M2" "$T/cache2" --cache-size 0 --cache-mem 0 || bail remount "fresh mount failed"
expect_eq tar_fresh_mount "sha256 of every extracted file through a fresh mount" \
  "$sums_tar" "$(tree_sums "$M2/tar")"
if tar -C "$M2/tar" --compare -f "$T/inc.tar" >"$T/tard2.out" 2>&1; then ok tar_compare_fresh_mount
else fail tar_compare_fresh_mount "tar --compare after remount: $(head -n 10 "$T/tard2.out")"; fi
if git -C "$M2/repo" fsck --full --strict >"$T/fsck2.out" 2>&1; then ok git_fsck_fresh_mount
else fail git_fsck_fresh_mount "$(head -n 10 "$T/fsck2.out")"; fi
expect_eq git_head_fresh_mount "HEAD" "$head_before" "$(git -C "$M2/repo" rev-parse HEAD 2>&1)"
if git clone -q "$M2/repo" "$T/clone" >"$T/clone.out" 2>&1; then
  expect_eq git_clone_tree "tree of HEAD in a clone from the mount" \
    "$(git -C "$M2/repo" rev-parse 'HEAD^{tree}')" "$(git -C "$T/clone" rev-parse 'HEAD^{tree}' 2>&1)"
else
  fail git_clone_tree "git clone from the mount: $(tail -n 5 "$T/clone.out")"
fi
for mode in delete wal; do
  expect_eq "sqlite_fresh_mount_$mode" "integrity_check and sums" "ok $want" \
    "$(sqlite3 "$M2/db/$mode.db" 'PRAGMA integrity_check;' 2>&1) $(sqlite_sums "$M2/db/$mode.db" 2>&1)"
done
umount_fs "$M2" || fail umount_clean "unmount of the fresh mount was not clean"
finish
