/*
 * cmount.h — state of one cairn mount, shared by the FUSE operations
 * (ops.c) and the program that sets it up (main.c).
 *
 * The FUSE node id of an inode is its metad inode number (root = 1); the
 * generation reported to the kernel is metad's. The inode table counts
 * kernel lookups exactly (lookup, create, mknod, mkdir, symlink, link and
 * every readdirplus entry add one; forget subtracts) and remembers a
 * directory's parent for "..". Entries are freed when the count reaches 0.
 *
 * Threads: the operations run on libfuse's worker threads; ino_lock guards
 * the inode table. Kernel invalidations are not sent from request handlers
 * (the change feed's run on its own thread).
 */
#ifndef CAIRN_CMOUNT_H
#define CAIRN_CMOUNT_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <pthread.h>

#include "cache/bufpool.h"
#include "cache/chunkcache.h"
#include "client/chunkio.h"
#include "client/dcache.h"
#include "client/feed.h"
#include "client/file.h"
#include "client/metaclient.h"
#include "client/session.h"

typedef struct inode_ent inode_ent;

/* When a read updates the access time (cairn-mount --atime). */
enum { ATIME_RELATIME = 0, ATIME_NOATIME = 1, ATIME_STRICT = 2 };

/* A queued access time: the file (a reference; NULL for a directory,
 * whose time waits in cmount.dir_atimes), its inode, when queued. */
typedef struct dir_atime dir_atime;
typedef struct atime_item {
    cfile *c;
    uint64_t ino;
    int64_t queued;          /* monotonic ns */
} atime_item;

typedef struct cmount {
    mc *meta;
    cio *io;
    ccache *cache;
    bufpool *pool;
    cfs *fs;
    csession *session;
    dcache *dc;              /* recent directory listings for lookups */
    mc_fsinfo info;
    double attr_timeout, entry_timeout, neg_timeout;
    cfeed *feed;             /* metad's change feed; NULL: not followed */
    double long_timeout;     /* what the kernel keeps while the feed is up */
    int writeback;           /* kernel writeback cache requested */
    int killpriv;            /* the kernel leaves clearing set-user/group-ID to us (main.c) */
    struct fuse_session *se; /* for invalidations sent to the kernel */
    int direct_io;           /* every open bypasses the page cache */
    int atime;               /* ATIME_* policy */
    unsigned max_write;
    /* Access times written behind (ops.c): a bounded queue, one thread. */
    pthread_mutex_t aq_lock;
    pthread_cond_t aq_cv;
    atime_item *aq;
    size_t aq_head, aq_len;
    int aq_stop, aq_running;
    pthread_t aq_thread;
    dir_atime *dir_atimes;   /* directories' queued access times, by inode */
    int own_perms;           /* no default_permissions: the mount checks (perm.h) */
    pthread_mutex_t ino_lock;
    inode_ent *inodes;
    fs_attr root_attr;       /* the root's attributes last seen (ino_lock) */
    int64_t root_ms;
    int have_root;
    uint64_t nlookups;       /* sum of counts, for tests via metrics */
} cmount;

const struct fuse_lowlevel_ops *cmount_ops(void);
/* Current lookup count of an inode (0 if unknown); for diagnostics. */
uint64_t cmount_lookups(cmount *m, uint64_t ino);
/* Drop everything left in the inode table at unmount. */
void cmount_forget_all(cmount *m);
/* The change feed's callbacks (feed.h; ctx = the cmount). They drop the
 * kernel's and this mount's cached names and attributes. */
void cmount_feed_entry(void *ctx, uint64_t parent, const char *name);
void cmount_feed_inode(void *ctx, uint64_t ino);
void cmount_feed_all(void *ctx);
/* Make the kernel look every cached name up again before its next use:
 * 0, or -errno (-EINVAL: a kernel without it, before Linux 6.16). */
int cmount_kernel_epoch(cmount *m);
/* Start / stop (after writing what is queued) the access-time writer. */
void cmount_atime_start(cmount *m);
void cmount_atime_stop(cmount *m);

#endif
