/*
 * fs.h — cairn-metad's namespace: inodes, directories, chunk maps, xattrs,
 * and the apply functions that change them (DESIGN.md §2, CONVENTIONS 12).
 *
 * Ownership: an fs owns every inode, directory entry, chunk map and xattr,
 * and the chunk reference table (refs.h) that mirrors the chunk maps.
 *
 * Threads: an fs has no lock of its own. The caller (cairn-metad) guards it
 * with one rwlock: read-only functions (fs_get, fs_lookup, fs_readdir,
 * fs_put_*, fs_statfs counters, fs_snapshot_write) under the read lock;
 * fs_apply and fs_snapshot_load_* under the write lock (or before threads).
 *
 * Mutations: every change is described by an op record (an fs_op encoded by
 * fs_op_encode into a rec.h record of a private type FSOP_*), and made by
 * fs_apply, the one function used both live and on WAL replay. An op record
 * carries everything nondeterministic already resolved (new ino,
 * generation, timestamps, the replica id whose VV counter is bumped), so
 * replaying it reproduces the same state. fs_apply validates first and then
 * mutates: on failure it returns a negative errno and changed nothing.
 *
 * Errors: -ENOENT, -EEXIST, -ENOTDIR, -EISDIR, -ENOTEMPTY, -EINVAL,
 * -ENAMETOOLONG, -EMLINK, -EPERM, -ENODATA, -E2BIG, -ENOSPC, -EFBIG,
 * CAIRN_EPROTO (malformed op record), as POSIX defines them for the
 * operation.
 *
 * Pointers to inodes (fs_inode *) stay valid only while the caller holds the
 * lock under which it got them.
 */
#ifndef CAIRN_META_FS_H
#define CAIRN_META_FS_H

#include <stddef.h>
#include <stdint.h>

#include "common/fsrec.h"
#include "common/rec.h"
#include "server/meta/refs.h"

typedef struct fs fs;
typedef struct fs_inode fs_inode;

/* Op record types (private WAL range 32..127 of fsrec.h; 32..47 are the
 * namespace's, cluster.h uses 48..63, snapshots 64..79). */
enum fsop_type {
    FSOP_INIT = 32,         /* create the root directory */
    FSOP_CREATE = 33,       /* create, mknod, mkdir, symlink (mode says which) */
    FSOP_LINK = 34,
    FSOP_UNLINK = 35,
    FSOP_RMDIR = 36,
    FSOP_RENAME = 37,
    FSOP_SETATTR = 38,
    FSOP_COMMIT = 39,
    FSOP_XATTR_SET = 40,
    FSOP_XATTR_REMOVE = 41,
    FSOP_ORPHAN_FREE = 42,  /* free an orphan nobody holds any more */
    FSOP_LAST = 47,
};

/* Private tags of op and snapshot records (fsrec.h's namespace ends below
 * 100; these never travel on the wire). */
enum {
    FT_OP_REPLICA = 200,    /* u64: replica whose VV counter the op bumps */
    FT_OP_NOW = 201,        /* i64: server clock for ctime/mtime updates */
    FT_SNAP_SEQ = 202,      /* u64: a directory entry's cursor sequence */
    FT_SNAP_NEXT_SEQ = 203, /* u64: a directory's next sequence */
    FT_SNAP_NEXT_INO = 204, /* u64: the inode number counter */
    FT_SNAP_DPARENT = 205,  /* u64: a directory's parent */
    FT_OP_KEEP = 206,       /* u64: unlink/rename: keep this ino as an orphan
                             * if it loses its last link (a session holds it) */
};

/* Rename flags (FT_FLAGS), as renameat2. */
enum { FS_RENAME_NOREPLACE = 1, FS_RENAME_EXCHANGE = 2 };
/* xattr_set flags (FT_FLAGS), as setxattr. */
enum { FS_XATTR_CREATE = 1, FS_XATTR_REPLACE = 2 };

/* Per-inode bound on stored xattr values (names are bounded by
 * FS_XATTR_LIST_MAX): keeps an inode record far below WAL_MAX_RECORD. */
#define FS_XATTR_TOTAL_MAX (1u << 20)
/* Chunk-map slots per file (64 TiB at the default 4 MiB chunk size). */
#define FS_MAX_SLOTS (1u << 24)
/* Hard links per non-directory inode (ext4's limit). */
#define FS_LINK_MAX 65000
#define FS_MAX_FILE_SIZE ((uint64_t)INT64_MAX)

/* A decoded op. Strings are NUL-terminated copies; value, inline data and
 * slots point into the record (or caller memory when encoding). */
typedef struct fs_op {
    uint8_t type;
    uint32_t replica;
    int64_t now;
    uint64_t ino, parent, newparent, gen, rdev, size, valid, flags;
    uint64_t keep;                      /* FT_OP_KEEP, 0 = none */
    uint32_t mode, uid, gid, umask;
    int64_t atime, mtime, ctime;
    int has_mtime;
    int has_atime, has_mode;            /* commit: also sets atime / permission bits */
    char name[FS_XATTR_NAME_MAX + 1];   /* entry name or xattr name */
    char newname[FS_NAME_MAX + 1];
    char target[FS_SYMLINK_MAX + 1];
    const uint8_t *value;               /* xattr value or inline data */
    size_t value_len;
    int has_inline, clear_inline;
    const fs_slot *slots;
    size_t nslots;
    fs_slot *slots_owned;               /* set by fs_op_decode */
    uint64_t origin;                    /* session that asked (change feed); not logged */
} fs_op;

/* Attribute snapshots of the inodes an op touched, taken after the change
 * (an unlinked inode may be gone from the table; its copy shows nlink 0). */
typedef struct fs_result {
    fs_attr attr[6];
    unsigned n;
    int existed;            /* create found an existing regular file */
    int changed;            /* 0: nothing changed (no record to log) */
} fs_result;

/* New empty namespace (no root until FSOP_INIT is applied). chunk_size and
 * inline_max come from fs.info and bound slot lengths and inline data. */
fs *fs_new(uint32_t chunk_size, uint32_t inline_max);
void fs_free(fs *f);

/* Encode op into a fresh writer (w is initialised here; recw_free it). */
void fs_op_encode(const fs_op *op, recw *w);
/* Decode an op record; fs_op_release frees what it allocated. */
int fs_op_decode(const uint8_t *rec, size_t len, fs_op *op);
void fs_op_release(fs_op *op);

/* Apply one op record (live or replay). res may be NULL. */
int fs_apply(fs *f, const uint8_t *rec, size_t len, fs_result *res);

/* Next inode number the live path should put into a create op. */
uint64_t fs_next_ino(const fs *f);

/* Input checks shared by the HTTP handlers and the apply functions:
 * 0, -EINVAL (empty, '/', NUL, "." or ".."), -ENAMETOOLONG. */
int fs_name_check(const char *name, size_t len);
int fs_xattr_name_check(const char *name, size_t len);

/* Read-only access. */
fs_inode *fs_get(fs *f, uint64_t ino);
/* Child by name: 0 with *out, -ENOENT, -ENOTDIR, or a name error. */
int fs_lookup(fs *f, uint64_t parent, const char *name, size_t len, fs_inode **out);
const fs_attr *fs_inode_attr(const fs_inode *ip);
const char *fs_inode_target(const fs_inode *ip);   /* NULL unless symlink */
/* Would giving ino `len` bytes of inline data keep the filesystem's inline
 * total within budget? A change that does not grow the total always fits. */
int fs_inline_fits(const fs *f, uint64_t ino, uint64_t len, uint64_t budget);
/* Xattr value: 0 with pointer into the inode, or -ENODATA. */
int fs_xattr_get(const fs_inode *ip, const char *name, const uint8_t **val, size_t *len);

/* Write attributes (+ FT_TARGET for symlinks) as one FSREC_INODE into w
 * (initialised here). With map != 0 also FT_HASMAP, FT_SLOT*, FT_INLINE. */
void fs_put_inode(recw *w, const fs_inode *ip, int map);
/* Same from an attribute copy (fs_result). */
void fs_put_attr_rec(recw *w, const fs_attr *a, const char *target);
/* FSREC_XATTRS with FT_NAME* into w (initialised here). */
void fs_put_xattr_list(recw *w, const fs_inode *ip);
/* FSREC_DIRLIST: up to max entries with sequence > cursor. 0, -ENOENT,
 * -ENOTDIR. */
int fs_readdir(fs *f, uint64_t ino, uint64_t cursor, uint32_t max, recw *w);

typedef struct fs_counts {
    uint64_t inodes, dirents, dirs, files, slots, inline_bytes, chunk_refs, orphans;
    uint64_t applied[FSOP_LAST - FSOP_INIT + 1];   /* ops by type */
} fs_counts;
void fs_get_counts(const fs *f, fs_counts *out);

/* Orphans: regular files whose last link went away while a client session
 * held them open (the live path asked for it with FT_OP_KEEP). An orphan
 * has nlink 0, is in no directory, keeps its chunk map (its chunks stay
 * referenced) and stays reachable by ino for getattr, setattr, map,
 * commit and xattr ops, until an FSOP_ORPHAN_FREE record frees it. Link
 * to an orphan is -ENOENT. Orphans are saved in snapshots (an inode with
 * nlink 0) and fs_check accepts them. */
int fs_inode_is_orphan(const fs_inode *ip);
/* The inos of every orphan (malloc'd array, *n entries; NULL if none). */
uint64_t *fs_orphan_list(const fs *f, size_t *n);

/* The chunk reference table (read-only use under the read lock). */
const refs *fs_refs(const fs *f);

/* Snapshots: emit the whole namespace as records (FSSNAP_*), in an order
 * fs_snapshot_load accepts (header, inodes, then entries per directory in
 * cursor order). emit returns 0 or a negative errno, which stops the walk. */
enum { FSSNAP_HEADER = 64, FSSNAP_INODE = 65, FSSNAP_DIRENT = 66 };
typedef int (*fs_emit_fn)(const uint8_t *rec, size_t len, void *ctx);
int fs_snapshot_write(fs *f, fs_emit_fn emit, void *ctx);
/* Load one snapshot record into an fs from fs_new (records of other types
 * are not passed here); CAIRN_ECORRUPT for a record that does not fit. */
int fs_snapshot_load(fs *f, const uint8_t *rec, size_t len);
/* Check the structure (every entry points at an existing inode, link
 * counts equal the names and subdirectories, directory parents match,
 * orphans are regular files with nlink 0 and no name):
 * 0 or CAIRN_ECORRUPT with the first problem logged. Run after loading a
 * snapshot and by tests; O(inodes + entries), under the write lock. */
int fs_check(fs *f);

#endif
