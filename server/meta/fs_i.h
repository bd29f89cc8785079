/*
 * fs_i.h — private layout of the namespace, shared by fs.c (structures and
 * queries), fsop.c (op records and apply functions) and fssnap.c
 * (snapshot write/load). Not for use outside those files.
 *
 * Directory entries: each directory keeps its entries twice, as a uthash by
 * name (O(1) lookup) and as an array ordered by a per-directory sequence
 * number assigned at insertion (the readdir cursor). Removing an entry
 * leaves a tombstone (e == NULL, seq kept) so positions never shift under a
 * binary search; tombstones are compacted away when they outnumber the
 * live entries. A cursor is the last sequence a listing returned, so a
 * listing continues with the first entry whose sequence is greater: no
 * entry is returned twice, and an entry that exists for the whole listing
 * is never skipped. A renamed entry gets a new sequence (it is a new entry).
 */
#ifndef CAIRN_META_FS_I_H
#define CAIRN_META_FS_I_H

#include <uthash.h>

#include "server/meta/fs.h"

typedef struct fs_xattr {
    char *name;
    uint8_t *value;
    uint32_t nlen, vlen;
} fs_xattr;

typedef struct fs_dirent {
    UT_hash_handle hh;      /* in fs_dir.by_name, keyed by name */
    uint64_t ino;
    uint64_t seq;
    uint16_t namelen;
    char name[];            /* NUL-terminated */
} fs_dirent;

typedef struct fs_seqslot {
    uint64_t seq;
    fs_dirent *e;           /* NULL: tombstone */
} fs_seqslot;

typedef struct fs_dir {
    fs_dirent *by_name;
    fs_seqslot *by_seq;     /* ascending seq */
    size_t nseq, cap, live;
    uint64_t next_seq;      /* first sequence is 1; cursor 0 = start */
    uint64_t parent;        /* parent directory (root: itself) */
    uint32_t subdirs;
} fs_dir;

struct fs_inode {
    UT_hash_handle hh;      /* in fs.inodes, keyed by a.ino */
    fs_attr a;
    char *target;           /* symlinks */
    fs_xattr *xattrs;       /* sorted by name */
    uint32_t nxattrs;
    uint32_t xattr_names;   /* sum of (name + NUL) */
    uint64_t xattr_bytes;   /* sum of values */
    uint8_t *inl;           /* inline data (regular files), inl_len bytes */
    uint32_t inl_len;
    fs_slot *slots;         /* sorted by index, no holes, no duplicates */
    size_t nslots;
    fs_dir *dir;            /* directories */
    uint32_t seen_links;    /* scratch for fs_check */
    int orphan;             /* in fs.orphans (nlink 0, kept for a session) */
    fs_inode *orph_prev, *orph_next;
};

struct fs {
    fs_inode *inodes;
    uint64_t next_ino;
    uint64_t ninodes, ndirents, ndirs, nfiles, nslots, inline_bytes;
    uint32_t chunk_size, inline_max;
    refs *refs;
    fs_inode *orphans;      /* doubly linked through orph_prev/orph_next */
    uint64_t norphans;
    uint64_t applied[FSOP_LAST - FSOP_INIT + 1];
};

/* fs.c internals used by fsop.c and fssnap.c. */
fs_inode *fsi_inode_new(fs *f, uint64_t ino, uint32_t mode);
/* Free an inode (drops its chunk references; leaves the orphan list). */
void fsi_inode_free(fs *f, fs_inode *ip);
/* Put an unlinked regular file on the orphan list. */
void fsi_orphan_add(fs *f, fs_inode *ip);
fs_dirent *fsi_dir_find(const fs_dir *d, const char *name, size_t len);
/* Insert with a given sequence (>= d->next_seq; replay and load keep
 * order); seq 0 = the next one. */
fs_dirent *fsi_dir_add(fs *f, fs_dir *d, const char *name, size_t len, uint64_t ino,
                       uint64_t seq);
void fsi_dir_del(fs *f, fs_dir *d, fs_dirent *e);
/* Replace the chunk map with slots[n] (taking ownership), adjusting refs. */
void fsi_set_slots(fs *f, fs_inode *ip, fs_slot *slots, size_t n);
/* Cut map and inline data to size (slots wholly past it dropped, the last
 * one shortened). */
void fsi_trim(fs *f, fs_inode *ip, uint64_t size);
void fsi_set_inline(fs *f, fs_inode *ip, const uint8_t *p, uint32_t n);
int fsi_xattr_find(const fs_inode *ip, const char *name, uint32_t *pos);
void fsi_xattr_put(fs_inode *ip, const char *name, const uint8_t *v, uint32_t vlen);
void fsi_xattr_del(fs_inode *ip, uint32_t pos);
void fsi_bump(fs_inode *ip, uint32_t replica);

static inline int fsi_is_dir(const fs_inode *ip)
{
    return (ip->a.mode & 0170000) == 0040000;
}

#endif
