/*
 * metaclient.h — typed calls to cairn-metad (docs/PROTOCOL.md).
 *
 * Each call is one HTTP request over a pooled keep-alive connection. Calls
 * are thread-safe and may run concurrently from any thread.
 *
 * Retries: when metad cannot be reached (connection refused, reset,
 * timeout) or answers 503, a call is retried with exponential backoff (50 ms
 * doubling to 1 s) until retry_ms has passed since the call began; then it
 * fails with CAIRN_EUNAVAIL and a log line naming the server and the
 * operation. So a metad restart within the retry window is a delay, not an
 * error. A namespace mutation that was retried after its first attempt may
 * have been applied before the connection broke: a retried create-type call
 * that then answers EEXIST looks the name up and returns that inode when it
 * has the requested type, and a retried unlink/rmdir that answers ENOENT is
 * reported as success (the outcome the caller asked for is in place).
 *
 * Errors: POSIX errors from metad come back as negative errno (from the
 * Cairn-Errno header); CAIRN_ECONFLICT for a failed CAS (the current record
 * is decoded into *out); CAIRN_ENOTMODIFIED for a 304; CAIRN_EPROTO for an
 * undecodable answer; CAIRN_EUNAVAIL as above.
 *
 * Ownership: mc_inode and mc_dirent results own heap memory released with
 * mc_inode_clear / mc_dirents_free. Every response's Cairn-Epoch is tracked;
 * mc_epoch returns the highest seen (the chunk layer compares it with its
 * cluster map to know when to refresh).
 */
#ifndef CAIRN_METACLIENT_H
#define CAIRN_METACLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "common/fsrec.h"

typedef struct mc mc;

typedef struct mc_config {
    const char *addr;         /* "host:port" of cairn-metad */
    unsigned retry_ms;        /* total retry window per call; 0 = 60000 */
    unsigned timeout_ms;      /* per attempt; 0 = 30000 */
    unsigned connections;     /* pooled handles; 0 = 32 */
} mc_config;

mc *mc_new(const mc_config *cfg);
void mc_free(mc *m);
uint64_t mc_epoch(mc *m);
const char *mc_addr(mc *m);

typedef struct mc_fsinfo {
    uint8_t fsid[16];
    uint64_t chunk_size;
    uint32_t replicas, min_replicas;
    uint32_t inline_max;
} mc_fsinfo;

typedef struct mc_inode {
    fs_attr a;
    char *target;            /* symlink target or NULL */
    int hasmap;              /* slots/inline below are the whole map */
    fs_slot *slots;          /* sorted by index, holes omitted */
    size_t nslots;
    int has_inline;
    uint8_t *inl;
    size_t inl_len;
    int existed;             /* create found an existing file */
    fs_attr dirs[2];         /* directories a namespace change touched, after it */
    unsigned ndirs;
} mc_inode;

void mc_inode_clear(mc_inode *i);

typedef struct mc_dirent {
    char *name;
    fs_attr a;
} mc_dirent;

void mc_dirents_free(mc_dirent *d, size_t n);

typedef struct mc_statfs {
    uint64_t total, free, files, ffree, bsize;
} mc_statfs;

typedef struct mc_server {
    uint32_t id;
    char addr[64];
    uint64_t capacity, used, chunks;
    uint32_t state;          /* SERVER_UP / SERVER_DOWN / SERVER_DRAINING */
} mc_server;

typedef struct mc_cluster {
    uint64_t epoch;
    mc_server *servers;
    size_t n;
} mc_cluster;

void mc_cluster_clear(mc_cluster *c);

typedef struct mc_setattr_in {
    uint32_t valid;          /* SA_* */
    uint32_t mode, uid, gid;
    uint64_t size;
    int64_t atime, mtime, ctime;
    const vv *if_match;      /* optional CAS */
} mc_setattr_in;

int mc_fsinfo_get(mc *m, mc_fsinfo *out);
int mc_lookup(mc *m, uint64_t parent, const char *name, mc_inode *out);
int mc_getattr(mc *m, uint64_t ino, const vv *if_none_match, mc_inode *out);
int mc_setattr(mc *m, uint64_t ino, const mc_setattr_in *in, mc_inode *out);

/* Access times written behind, up to ATIMES_MAX in one request: item i
 * sets ino's atime (and ctime, kept) if its VV is still if_match. On 0,
 * each item's status is ATIMES_DONE (a: the new attributes),
 * ATIMES_CONFLICT (a: the current ones) or ATIMES_GONE. */
typedef struct mc_atime_item {
    uint64_t ino;
    int64_t atime, ctime;
    vv if_match;
    int status;              /* out */
    fs_attr a;               /* out */
} mc_atime_item;
int mc_atimes(mc *m, mc_atime_item *items, size_t n);
/* op is "create" (flags FSC_EXCL) or "mknod" (rdev). */
int mc_create(mc *m, const char *op, uint64_t parent, const char *name, uint32_t mode,
              uint32_t uid, uint32_t gid, uint64_t rdev, uint32_t flags, mc_inode *out);
int mc_mkdir(mc *m, uint64_t parent, const char *name, uint32_t mode, uint32_t uid,
             uint32_t gid, mc_inode *out);
int mc_symlink(mc *m, uint64_t parent, const char *name, const char *target, uint32_t uid,
               uint32_t gid, mc_inode *out);
int mc_readlink(mc *m, uint64_t ino, mc_inode *out);
int mc_link(mc *m, uint64_t ino, uint64_t newparent, const char *newname, mc_inode *out);
/* child_out (may be NULL) receives the unlinked inode's attributes after the
 * change (nlink may be 0) when metad sends them. released[0..nreleased):
 * inodes this client's session stopped holding (FT_RELEASED), dropped on
 * metad before the change. */
int mc_unlink(mc *m, uint64_t parent, const char *name, const uint64_t *released,
              size_t nreleased, mc_inode *child_out);
int mc_rmdir(mc *m, uint64_t parent, const char *name);
/* moved_out (may be NULL) receives the moved inode's attributes after the
 * change when metad sends them (zeroed otherwise). */
int mc_rename(mc *m, uint64_t parent, const char *name, uint64_t newparent,
              const char *newname, uint32_t flags, const uint64_t *released, size_t nreleased,
              mc_inode *moved_out);
int mc_readdir(mc *m, uint64_t ino, uint64_t cursor, uint32_t max, mc_dirent **out,
               size_t *n, uint64_t *next, int *eof);
/* The same, and the directory's VV as of the page sent (empty, n == 0,
 * when metad did not send it). */
int mc_readdir_vv(mc *m, uint64_t ino, uint64_t cursor, uint32_t max, mc_dirent **out,
                  size_t *n, uint64_t *next, int *eof, vv *dir_vv);
int mc_statfs_get(mc *m, mc_statfs *out);
int mc_map(mc *m, uint64_t ino, const vv *if_none_match, mc_inode *out);

typedef struct mc_commit_in {
    uint64_t ino;
    const vv *if_match;      /* required */
    const fs_slot *slots;    /* changed slots; len 0 = hole */
    size_t nslots;
    uint64_t size;
    int64_t mtime;
    int has_atime, has_mode; /* also set atime / permission bits */
    int64_t atime;
    uint32_t mode;
    int set_inline;          /* inl/inl_len become the inline data */
    const uint8_t *inl;
    size_t inl_len;
    int clear_inline;
} mc_commit_in;
int mc_commit(mc *m, const mc_commit_in *in, mc_inode *out);

int mc_xattr_get(mc *m, uint64_t ino, const char *name, uint8_t **val, size_t *len);
int mc_xattr_set(mc *m, uint64_t ino, const char *name, const void *val, size_t len,
                 uint32_t flags);
/* names: NUL-separated list as listxattr(2) returns it. */
int mc_xattr_list(mc *m, uint64_t ino, char **names, size_t *len);
int mc_xattr_remove(mc *m, uint64_t ino, const char *name);
int mc_cluster_get(mc *m, mc_cluster *out);

/* Sessions (docs/PROTOCOL.md "Sessions and open files"). mc_set_session
 * makes later calls carry "Cairn-Session: <id>"; mc_map_open and create
 * with hold != 0 also mark the inode as held open by the session. */
int mc_session_new(mc *m, const char *client, uint64_t *sid, uint64_t *lease_ms);
/* -ENOENT when the session expired. released: inodes no longer held. */
int mc_session_renew(mc *m, uint64_t sid, const uint64_t *released, size_t n, uint64_t *lease_ms);
int mc_session_hold(mc *m, uint64_t sid, const uint64_t *inos, size_t n);
int mc_session_end(mc *m, uint64_t sid);
void mc_set_session(mc *m, uint64_t sid);
uint64_t mc_session(mc *m);
int mc_map_open(mc *m, uint64_t ino, const vv *if_none_match, mc_inode *out);
int mc_create_open(mc *m, uint64_t parent, const char *name, uint32_t mode, uint32_t uid,
                   uint32_t gid, uint32_t flags, mc_inode *out);
/* Which chunk ids are referenced by some file: bits[i] = 0/1. */
int mc_refs(mc *m, const uint8_t (*ids)[CHUNK_ID_LEN], size_t n, uint8_t *bits);

#endif
