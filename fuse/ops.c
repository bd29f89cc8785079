/*
 * ops.c — FUSE low-level operations for cairn-mount, turning kernel
 * requests into metadata calls (metaclient.h) and file I/O (file.h).
 * fuse_reply_err is used only here (CONVENTIONS.md 6): every negative code
 * is translated once by reply_err.
 */
#include "fuse/cmount.h"
#include "fuse/perm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <uthash.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

#define INO_NAMES 2

struct inode_ent {
    uint64_t ino;
    uint64_t nlookup;
    uint64_t parent;         /* for directories: where it was looked up */
    unsigned opendirs;       /* directory handles open on this client */
    fs_attr last;            /* attributes last given to the kernel */
    int have_last;
    int64_t last_ms;         /* when (monotonic) */
    int last_stale;          /* another client changed it since (change feed) */
    vv kvv;                  /* VV of the attributes last given to the kernel */
    int have_kvv;
    uint32_t kgen;           /* added to metad's generation, see entry_gen */
    /* A regular file's last names given to the kernel, newest first: the
     * change feed drops them when another client changes the file, so
     * that the next lookup replaces the kernel's inode (entry_gen). */
    uint64_t nparent[INO_NAMES];
    char *nname[INO_NAMES];
    UT_hash_handle hh;
};

/* One open file handle. */
typedef struct fh {
    cfile *f;
    cfile_ra ra;
    int flags;
    uint64_t ino;
    int atime_done;          /* this handle already considered atime */
} fh;

/* One open directory: a window of entries fetched from metad. FUSE offsets
 * are positions in this handle's listing (1-based, "." = 1, ".." = 2), so
 * the kernel can resume anywhere; metad's cursor keeps the listing stable
 * under concurrent changes. */
typedef struct dh {
    pthread_mutex_t lock;
    mc_dirent *ents;
    size_t n;                /* entries in ents */
    uint64_t first;          /* FUSE offset of ents[0] */
    uint64_t cursor;         /* metad cursor after the last fetched entry */
    int eof;
    uint64_t ino;
    uint64_t gen;            /* feed generation before the oldest fetch in ents */
} dh;

static cmount *M(fuse_req_t req) { return fuse_req_userdata(req); }

static void reply_err(fuse_req_t req, int err)
{
    fuse_reply_err(req, err == 0 ? 0 : cairn_err_to_posix(err));
}

/* For operations addressed by inode number: an inode metad no longer has
 * was replaced or removed by another client while this kernel still caches
 * its name. ESTALE (not ENOENT) makes the VFS walk the path again with
 * revalidation, so open/stat find the new file, as on NFS. */
static void reply_ino_err(fuse_req_t req, int err)
{
    reply_err(req, err == -ENOENT ? -ESTALE : err);
}

/* ---- inode table ---- */

static void ent_add_name(inode_ent *e, uint64_t parent, const char *name)
{
    for (int i = 0; i < INO_NAMES; i++) {
        if (e->nname[i] && e->nparent[i] == parent && strcmp(e->nname[i], name) == 0)
            return;
    }
    free(e->nname[INO_NAMES - 1]);
    memmove(&e->nname[1], &e->nname[0], (INO_NAMES - 1) * sizeof(e->nname[0]));
    memmove(&e->nparent[1], &e->nparent[0], (INO_NAMES - 1) * sizeof(e->nparent[0]));
    e->nname[0] = xstrdup(name);
    e->nparent[0] = parent;
}

static void ent_free(inode_ent *e)
{
    for (int i = 0; i < INO_NAMES; i++)
        free(e->nname[i]);
    free(e);
}

/* This client renamed a regular file: the kernel moved its name. */
static void ino_renamed(cmount *m, uint64_t ino, uint64_t parent, const char *name)
{
    pthread_mutex_lock(&m->ino_lock);
    inode_ent *e;
    HASH_FIND(hh, m->inodes, &ino, sizeof(ino), e);
    if (e)
        ent_add_name(e, parent, name);
    pthread_mutex_unlock(&m->ino_lock);
}

static void ino_ref(cmount *m, uint64_t ino, uint64_t parent, const char *name, int isdir)
{
    pthread_mutex_lock(&m->ino_lock);
    inode_ent *e;
    HASH_FIND(hh, m->inodes, &ino, sizeof(ino), e);
    if (!e) {
        e = xcalloc(1, sizeof(*e));
        e->ino = ino;
        HASH_ADD(hh, m->inodes, ino, sizeof(e->ino), e);
    }
    e->nlookup++;
    if (isdir && parent)
        e->parent = parent;
    if (!isdir && parent && name)
        ent_add_name(e, parent, name);
    m->nlookups++;
    pthread_mutex_unlock(&m->ino_lock);
}

static void ino_forget(cmount *m, uint64_t ino, uint64_t n)
{
    pthread_mutex_lock(&m->ino_lock);
    inode_ent *e;
    HASH_FIND(hh, m->inodes, &ino, sizeof(ino), e);
    if (e) {
        uint64_t k = MIN(n, e->nlookup);
        e->nlookup -= k;
        m->nlookups -= k;
        if (e->nlookup == 0) {
            HASH_DEL(m->inodes, e);
            ent_free(e);
        }
    }
    pthread_mutex_unlock(&m->ino_lock);
}

static uint64_t ino_parent(cmount *m, uint64_t ino)
{
    uint64_t p = ino;
    pthread_mutex_lock(&m->ino_lock);
    inode_ent *e;
    HASH_FIND(hh, m->inodes, &ino, sizeof(ino), e);
    if (e && e->parent)
        p = e->parent;
    pthread_mutex_unlock(&m->ino_lock);
    return p;
}

uint64_t cmount_lookups(cmount *m, uint64_t ino)
{
    uint64_t n = 0;
    pthread_mutex_lock(&m->ino_lock);
    inode_ent *e;
    HASH_FIND(hh, m->inodes, &ino, sizeof(ino), e);
    if (e)
        n = e->nlookup;
    pthread_mutex_unlock(&m->ino_lock);
    return n;
}

void cmount_forget_all(cmount *m)
{
    pthread_mutex_lock(&m->ino_lock);
    inode_ent *e, *tmp;
    HASH_ITER(hh, m->inodes, e, tmp) {
        HASH_DEL(m->inodes, e);
        ent_free(e);
    }
    m->nlookups = 0;
    pthread_mutex_unlock(&m->ino_lock);
}

/* ---- the change feed's invalidations (on the feed thread) ---- */

/* FUSE_NOTIFY_INC_EPOCH (kernel protocol 7.44, Linux 6.16): every name
 * the kernel caches is looked up again before its next use. libfuse 3.14
 * has no call for it; it is one header written to the device. */
#define NOTIFY_INC_EPOCH 8

int cmount_kernel_epoch(cmount *m)
{
    struct {
        uint32_t len;
        int32_t error;
        uint64_t unique;
    } h = {sizeof(h), NOTIFY_INC_EPOCH, 0};
    if (!m->se)
        return -ENOTCONN;
    ssize_t n = write(fuse_session_fd(m->se), &h, sizeof(h));
    if (n < 0)
        return -errno;
    return n == (ssize_t)sizeof(h) ? 0 : -EIO;
}

void cmount_feed_entry(void *ctx, uint64_t parent, const char *name)
{
    cmount *m = ctx;
    log_debug("change feed: name %s in %llu", name, (unsigned long long)parent);
    dcache_drop(m->dc, parent);
    if (m->se)
        fuse_lowlevel_notify_inval_entry(m->se, parent, name, strlen(name));
}

void cmount_feed_inode(void *ctx, uint64_t ino)
{
    cmount *m = ctx;
    int known = 0, isdir = 0, many = 0;
    uint64_t np[INO_NAMES];
    char *nn[INO_NAMES] = {NULL};
    log_debug("change feed: inode %llu", (unsigned long long)ino);
    dcache_attr_stale(m->dc, ino);
    dcache_forget_attr(m->dc, ino);
    cfile *c = m->fs ? cfs_file_find(m->fs, ino) : NULL;
    if (c) {
        cfile_attr_expire(c);
        cfile_put(c);
    }
    pthread_mutex_lock(&m->ino_lock);
    inode_ent *e;
    HASH_FIND(hh, m->inodes, &ino, sizeof(ino), e);
    if (ino == FS_ROOT_INO)
        m->have_root = 0;
    if (e) {
        known = 1;
        e->last_stale = 1;
        isdir = e->have_last && S_ISDIR(e->last.mode);
        many = e->have_last && e->last.nlink > INO_NAMES;
        for (int i = 0; i < INO_NAMES; i++) {
            np[i] = e->nparent[i];
            nn[i] = e->nname[i] ? xstrdup(e->nname[i]) : NULL;
        }
    }
    pthread_mutex_unlock(&m->ino_lock);
    if (known && m->se) {
        /* A directory's cached listing goes too. A regular file's size and
         * times the kernel keeps itself (writeback cache): its names go, so
         * that the next lookup replaces its inode; with more links than
         * are tracked, every name goes. */
        fuse_lowlevel_notify_inval_inode(m->se, ino, isdir ? 0 : -1, 0);
        for (int i = 0; i < INO_NAMES; i++) {
            if (nn[i])
                fuse_lowlevel_notify_inval_entry(m->se, np[i], nn[i], strlen(nn[i]));
        }
        if (many)
            cmount_kernel_epoch(m);
    }
    for (int i = 0; i < INO_NAMES; i++)
        free(nn[i]);
}

void cmount_feed_all(void *ctx)
{
    cmount *m = ctx;
    dcache_clear(m->dc);
    if (m->fs)
        cfs_ns_changed(m->fs);
    int rc = cmount_kernel_epoch(m);
    if (rc < 0)
        log_warn("cannot make the kernel look names up again: %s", cairn_strerror(rc));
    pthread_mutex_lock(&m->ino_lock);
    size_t n = HASH_COUNT(m->inodes), k = 0;
    uint64_t *inos = malloc((n ? n : 1) * sizeof(*inos));
    inode_ent *e, *tmp;
    m->have_root = 0;
    HASH_ITER(hh, m->inodes, e, tmp) {
        e->last_stale = 1;
        if (inos)
            inos[k++] = e->ino;
    }
    pthread_mutex_unlock(&m->ino_lock);
    if (!inos) {
        log_error("cannot drop the kernel's cached attributes: out of memory");
        return;
    }
    for (size_t i = 0; i < k && m->se; i++)
        fuse_lowlevel_notify_inval_inode(m->se, inos[i], -1, 0);
    free(inos);
}

/* ---- attributes ---- */

/* Bytes a regular file occupies on the servers, when known (set up by
 * cmount_ops_init; NULL means unknown, st_blocks then follows the size). */
static uint64_t (*alloc_hint)(uint64_t ino, uint64_t size);
static cmount *hint_mount;

static uint64_t stored_bytes(uint64_t ino, uint64_t size)
{
    cfile *c = cfs_file_find(hint_mount->fs, ino);
    if (!c)
        return size;
    uint64_t n = cfile_stored_bytes(c, size);
    cfile_put(c);
    return n;
}

/* Nanoseconds since the epoch to a timespec; times before 1970 keep
 * tv_nsec in [0, 1e9) as the kernel requires. */
static void ns_to_ts(int64_t ns, struct timespec *ts)
{
    int64_t sec = ns / 1000000000LL, rem = ns % 1000000000LL;
    if (rem < 0) {
        rem += 1000000000LL;
        sec--;
    }
    ts->tv_sec = (time_t)sec;
    ts->tv_nsec = (long)rem;
}

static void to_stat(const fs_attr *a, struct stat *st)
{
    memset(st, 0, sizeof(*st));
    st->st_ino = a->ino;
    st->st_mode = a->mode;
    st->st_nlink = a->nlink;
    st->st_uid = a->uid;
    st->st_gid = a->gid;
    st->st_rdev = a->rdev;
    st->st_size = (off_t)a->size;
    /* Large st_blksize makes cp, rsync and friends use 1 MiB buffers. */
    st->st_blksize = 1 << 20;
    st->st_blocks = (blkcnt_t)((a->size + 511) / 512);
    if (S_ISREG(a->mode) && alloc_hint)
        st->st_blocks = (blkcnt_t)((alloc_hint(a->ino, a->size) + 511) / 512);
    ns_to_ts(a->atime, &st->st_atim);
    ns_to_ts(a->mtime, &st->st_mtim);
    ns_to_ts(a->ctime, &st->st_ctim);
}

static int last_attr(cmount *m, uint64_t ino, fs_attr *out)
{
    int rc = -ENOENT;
    pthread_mutex_lock(&m->ino_lock);
    inode_ent *e;
    HASH_FIND(hh, m->inodes, &ino, sizeof(ino), e);
    if (e && e->have_last) {
        *out = e->last;
        rc = 0;
    }
    pthread_mutex_unlock(&m->ino_lock);
    return rc;
}

static int dir_open(cmount *m, uint64_t ino)
{
    pthread_mutex_lock(&m->ino_lock);
    inode_ent *e;
    HASH_FIND(hh, m->inodes, &ino, sizeof(ino), e);
    int open = e && e->opendirs > 0;
    pthread_mutex_unlock(&m->ino_lock);
    return open;
}

static void dir_opened(cmount *m, uint64_t ino, int delta)
{
    pthread_mutex_lock(&m->ino_lock);
    inode_ent *e;
    HASH_FIND(hh, m->inodes, &ino, sizeof(ino), e);
    if (e && (delta > 0 || e->opendirs > 0))
        e->opendirs += (unsigned)delta;
    pthread_mutex_unlock(&m->ino_lock);
}

/* ino_lock held. */
static void ent_set_last(inode_ent *e, const fs_attr *a)
{
    e->last = *a;
    e->have_last = 1;
    e->last_ms = now_mono_ms();
    e->last_stale = 0;
}

static void remember_attr(cmount *m, const fs_attr *a)
{
    pthread_mutex_lock(&m->ino_lock);
    inode_ent *e;
    HASH_FIND(hh, m->inodes, &a->ino, sizeof(a->ino), e);
    if (e)
        ent_set_last(e, a);
    if (a->ino == FS_ROOT_INO) {
        m->root_attr = *a;
        m->root_ms = now_mono_ms();
        m->have_root = 1;
    }
    pthread_mutex_unlock(&m->ino_lock);
}

/* Lay this client's unflushed size/mtime over metad's attributes. */
static void dir_atime_overlay(cmount *m, fs_attr *a);
static int dir_atime_take(cmount *m, uint64_t ino, int64_t *t);

static void overlay(cmount *m, fs_attr *a)
{
    if (S_ISDIR(a->mode))
        dir_atime_overlay(m, a);
    if (!S_ISREG(a->mode))
        return;
    cfile *c = cfs_file_find(m->fs, a->ino);
    if (c) {
        cfile_note_attr(c, a);
        cfile_overlay(c, a);
        cfile_put(c);
    }
}

/*
 * The generation the kernel gets for an entry. With the writeback cache the
 * kernel trusts its own size and mtime of a cached regular file and ignores
 * metad's; when another client changed the file (its VV moved and this
 * client neither produced nor revalidated that VV) and nothing here has it
 * open, a new generation makes the kernel drop the stale inode and build a
 * fresh one from these attributes.
 */
static uint64_t entry_gen(cmount *m, const fs_attr *a)
{
    int candidate = 0;
    if (m->writeback && S_ISREG(a->mode) && !csession_is_open(m->session, a->ino)) {
        cfile *c = cfs_file_find(m->fs, a->ino);
        candidate = !c || !cfile_dirty(c);
        if (c)
            cfile_put(c);
    }
    pthread_mutex_lock(&m->ino_lock);
    inode_ent *e;
    uint32_t kgen = 0;
    HASH_FIND(hh, m->inodes, &a->ino, sizeof(a->ino), e);
    if (e) {
        if (!e->have_kvv) {
            e->kvv = a->vv;
            e->have_kvv = 1;
        } else if (!vv_equal(&e->kvv, &a->vv) && candidate) {
            e->kgen++;
            e->kvv = a->vv;
        }
        /* Otherwise the kernel's inode stays as it is (kvv unchanged), and
         * a later lookup without open handles replaces it. */
        kgen = e->kgen;
        ent_set_last(e, a);
    }
    pthread_mutex_unlock(&m->ino_lock);
    /* The kernel keeps and compares generations as 32-bit values. */
    return (uint32_t)(a->gen ^ ((uint64_t)kgen * 0x9E3779B1u));
}

/* This client committed writes made through the kernel's inode, moving the
 * VV from before to the cfile's current one: if the kernel's inode was
 * current before, it still is. */
static void note_own_vv(cmount *m, uint64_t ino, cfile *c, const vv *before)
{
    vv cur;
    cfile_vv(c, &cur);
    if (vv_equal(&cur, before))
        return;
    fs_attr b;
    if (cfile_base_attr(c, &b) == 0 && vv_equal(&b.vv, &cur))
        dcache_attr_set(m->dc, &b);
    else
        dcache_attr_stale(m->dc, ino);
    if (!m->writeback)
        return;
    pthread_mutex_lock(&m->ino_lock);
    inode_ent *e;
    HASH_FIND(hh, m->inodes, &ino, sizeof(ino), e);
    if (e && e->have_kvv && vv_equal(&e->kvv, before))
        e->kvv = cur;
    pthread_mutex_unlock(&m->ino_lock);
}

/* This client's rename, link or unlink answered with a's new attributes:
 * only its ctime and link count moved. When a's VV is exactly one step past
 * what the cfile and the kernel hold, that step was this operation and what
 * they hold is still current (the kernel updates its own ctime); a VV further
 * on means another change came in between and revalidation goes its usual
 * way. */
static void own_step(cmount *m, const fs_attr *a)
{
    if (a->ino == 0 || !S_ISREG(a->mode))
        return;
    cfile *c = cfs_file_find(m->fs, a->ino);
    if (c) {
        fs_attr b;
        if (cfile_base_attr(c, &b) == 0 && vv_is_step(&b.vv, &a->vv))
            cfile_attr_changed(c, &b.vv, a);
        cfile_put(c);
    }
    if (!m->writeback)
        return;
    pthread_mutex_lock(&m->ino_lock);
    inode_ent *e;
    HASH_FIND(hh, m->inodes, &a->ino, sizeof(a->ino), e);
    if (e && e->have_kvv && vv_is_step(&e->kvv, &a->vv))
        e->kvv = a->vv;
    pthread_mutex_unlock(&m->ino_lock);
}

/*
 * The kernel leaves clearing set-user-ID and set-group-ID to this mount
 * (FUSE_HANDLE_KILLPRIV_V2, main.c). They are cleared as Linux clears them:
 * on a write, truncate or fallocate by a caller without CAP_FSETID, and on
 * every chown of a regular file; set-group-ID only together with group
 * execute. libfuse does not pass on the kernel's own verdict about the
 * caller's capabilities, so uid 0 stands for CAP_FSETID. A file being
 * written carries the new mode into its next commit, like a chmod.
 */
static uint32_t privs_killed(uint32_t mode)
{
    uint32_t m = mode & ~(uint32_t)S_ISUID;
    if ((mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP))
        m &= ~(uint32_t)S_ISGID;
    return m;
}

/* Whether a (a regular file) has set-user/group-ID bits to clear; *nm
 * receives its permission bits without them. */
static int privs_to_kill(const fs_attr *a, uint32_t *nm)
{
    uint32_t mode = a->mode & 07777;
    *nm = privs_killed(mode);
    return S_ISREG(a->mode) && *nm != mode;
}

/* Whether a write or truncate by the caller leaves set-user/group-ID bits:
 * root with CAP_FSETID (read from /proc only for such a file). */
static int caller_keeps_privs(fuse_req_t req)
{
    const struct fuse_ctx *c = fuse_req_ctx(req);
    if (c->uid != 0)
        return 0;
    perm_who w;
    perm_who_init(&w, req, c->uid, c->gid, c->pid);
    return perm_capable(&w, PERM_CAP_FSETID);
}

/* ino's attributes as this client shows them (its own unflushed changes
 * laid over), from what it has at hand. */
static int known_attr(cmount *m, uint64_t ino, fs_attr *a)
{
    cfile *c = cfs_file_find(m->fs, ino);
    int rc = c ? cfile_base_attr(c, a) : -ENOENT;
    if (rc == 0)
        cfile_overlay(c, a);
    if (c)
        cfile_put(c);
    return rc == 0 ? 0 : last_attr(m, ino, a);
}

/* A setattr of ino was answered (a: the new attributes, NULL on failure):
 * the caches learn of it. For the cfile (c, whose VV was before) it is our
 * own change: a buffered commit goes on from it rather than meeting a 412
 * for the VV it moved. */
static void setattr_answered(cmount *m, uint64_t ino, cfile *c, const vv *before,
                             const fs_attr *a)
{
    dcache_forget_attr(m->dc, ino);
    if (!a)
        return;
    dcache_attr_set(m->dc, a);
    dcache_dir_attr_own(m->dc, a);
    if (c) {
        cfile_attr_changed(c, before, a);
        note_own_vv(m, ino, c, before);
    }
}

static void kill_privs(fuse_req_t req, uint64_t ino, cfile *c)
{
    cmount *m = M(req);
    if (!m->killpriv)
        return;
    fs_attr a;
    uint32_t nm;
    if (known_attr(m, ino, &a) < 0 || !privs_to_kill(&a, &nm) || caller_keeps_privs(req))
        return;
    if (!c || !cfile_fold_attrs(c, 1, nm, 0, 0, 0, 0)) {
        mc_setattr_in in = {.valid = SA_MODE, .mode = nm};
        vv before;
        if (c)
            cfile_vv(c, &before);
        mc_inode r;
        int rc = mc_setattr(m->meta, ino, &in, &r);
        setattr_answered(m, ino, c, &before, rc == 0 ? &r.a : NULL);
        if (rc < 0) {
            log_warn("inode %llu: clearing set-user/group-ID after a write failed: %s",
                     (unsigned long long)ino, cairn_strerror(rc));
            return;
        }
        remember_attr(m, &r.a);
        mc_inode_clear(&r);
    }
    /* The kernel still has the old mode cached. */
    if (m->se)
        fuse_lowlevel_notify_inval_inode(m->se, ino, -1, 0);
}

/* cfile_flush, remembering our own VV change for the writeback cache. */
static int flush_noting(cmount *m, uint64_t ino, cfile *c)
{
    vv before;
    cfile_vv(c, &before);
    int rc = cfile_flush(c);
    if (rc == 0)
        note_own_vv(m, ino, c, &before);
    return rc;
}

/* ---- permission checks (mounts without default_permissions, perm.h) ---- */

static void who_of(fuse_req_t req, perm_who *w)
{
    const struct fuse_ctx *c = fuse_req_ctx(req);
    perm_who_init(w, req, c->uid, c->gid, c->pid);
}

/* Mode, owner and group of ino for a check: what was last given to the
 * kernel while fresh (the change feed up, or within the attribute
 * timeout, and not changed by another client since), else metad's. */
static int perm_attr(cmount *m, uint64_t ino, fs_attr *a)
{
    int64_t now = now_mono_ms();
    int64_t max_ms = (int64_t)(m->attr_timeout * 1000.0);
    int coherent = m->feed && cfeed_long(m->feed, cfeed_gen(m->feed));
    int ok = 0;
    pthread_mutex_lock(&m->ino_lock);
    if (ino == FS_ROOT_INO) {
        if (m->have_root && (coherent || now - m->root_ms < max_ms)) {
            *a = m->root_attr;
            ok = 1;
        }
    } else {
        inode_ent *e;
        HASH_FIND(hh, m->inodes, &ino, sizeof(ino), e);
        if (e && e->have_last && !e->last_stale && (coherent || now - e->last_ms < max_ms)) {
            *a = e->last;
            ok = 1;
        }
    }
    pthread_mutex_unlock(&m->ino_lock);
    if (ok)
        return 0;
    mc_inode in;
    int rc = mc_getattr(m->meta, ino, NULL, &in);
    if (rc < 0)
        return rc == -ENOENT ? -ESTALE : rc;
    remember_attr(m, &in.a);
    *a = in.a;
    mc_inode_clear(&in);
    return 0;
}

/* 0, or the error to answer: may the caller access ino for mask. Always 0
 * when the kernel checks (default_permissions). */
static int may(cmount *m, perm_who *w, uint64_t ino, int mask)
{
    if (!m->own_perms)
        return 0;
    fs_attr a;
    int rc = perm_attr(m, ino, &a);
    if (rc < 0)
        return rc;
    return perm_access(w, a.mode, a.uid, a.gid, mask);
}

/* A directory operation that adds or removes names in dir. */
static int may_change_dir(fuse_req_t req, uint64_t dir)
{
    cmount *m = M(req);
    if (!m->own_perms)
        return 0;
    perm_who w;
    who_of(req, &w);
    return may(m, &w, dir, PERM_W | PERM_X);
}

#ifndef __FMODE_EXEC
#define __FMODE_EXEC 040
#endif

/* What opening with flags asks for. */
static int open_mask(int flags)
{
    int mask = 0;
    if (flags & __FMODE_EXEC)
        return PERM_X;
    switch (flags & O_ACCMODE) {
    case O_RDONLY: mask = PERM_R; break;
    case O_WRONLY: mask = PERM_W; break;
    default: mask = PERM_R | PERM_W; break;
    }
    if (flags & O_TRUNC)
        mask |= PERM_W;
    return mask;
}

static int may_open_attr(fuse_req_t req, const fs_attr *a, int flags)
{
    cmount *m = M(req);
    if (!m->own_perms)
        return 0;
    perm_who w;
    who_of(req, &w);
    return perm_access(&w, a->mode, a->uid, a->gid, open_mask(flags));
}

static int may_open(fuse_req_t req, uint64_t ino, int flags)
{
    cmount *m = M(req);
    if (!m->own_perms)
        return 0;
    fs_attr a;
    int rc = perm_attr(m, ino, &a);
    return rc < 0 ? rc : may_open_attr(req, &a, flags);
}

/* A setattr: chmod and utimes with explicit times by the owner (or
 * CAP_FOWNER), chown by CAP_CHOWN (the owner may change the group to one
 * of its own), truncate by path and utimes to now with write permission.
 * Clears S_ISGID from a new mode when the caller is not in the file's
 * group (nor has CAP_FSETID). The kernel's own flushes of a written
 * file's mtime and ctime are not checked. */
static int may_setattr(fuse_req_t req, uint64_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi)
{
    cmount *m = M(req);
    int checked = FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID |
                  FUSE_SET_ATTR_ATIME | (fi ? 0 : FUSE_SET_ATTR_SIZE);
    if (!m->own_perms || !(to_set & checked))
        return 0;
    perm_who w;
    who_of(req, &w);
    fs_attr a;
    int rc = perm_attr(m, ino, &a);
    if (rc < 0)
        return rc;
    int owner = w.uid == a.uid;
    if ((to_set & FUSE_SET_ATTR_MODE) && !owner && !perm_capable(&w, PERM_CAP_FOWNER))
        return -EPERM;
    /* The owner may "change" the owner to itself and the group to one of
     * its own; anything else needs CAP_CHOWN. */
    if ((to_set & FUSE_SET_ATTR_UID) && (attr->st_uid != a.uid || !owner) &&
        !perm_capable(&w, PERM_CAP_CHOWN))
        return -EPERM;
    if ((to_set & FUSE_SET_ATTR_GID) &&
        !(owner && (attr->st_gid == a.gid || perm_in_group(&w, attr->st_gid))) &&
        !perm_capable(&w, PERM_CAP_CHOWN))
        return -EPERM;
    if ((to_set & FUSE_SET_ATTR_MODE) && (attr->st_mode & S_ISGID) &&
        !perm_in_group(&w, (to_set & FUSE_SET_ATTR_GID) ? attr->st_gid : a.gid) &&
        !perm_capable(&w, PERM_CAP_FSETID))
        attr->st_mode &= ~(mode_t)S_ISGID;
    if ((to_set & FUSE_SET_ATTR_SIZE) && !fi &&
        (rc = perm_access(&w, a.mode, a.uid, a.gid, PERM_W)) < 0)
        return rc;
    if (to_set & FUSE_SET_ATTR_ATIME) {
        int now = (to_set & FUSE_SET_ATTR_ATIME_NOW) &&
                  (!(to_set & FUSE_SET_ATTR_MTIME) || (to_set & FUSE_SET_ATTR_MTIME_NOW));
        if (!owner && !perm_capable(&w, PERM_CAP_FOWNER)) {
            if (!now)
                return -EPERM;
            if ((rc = perm_access(&w, a.mode, a.uid, a.gid, PERM_W)) < 0)
                return rc;
        }
    }
    return 0;
}

/* xattrs: the kernel leaves user.* (and names outside its namespaces, such
 * as cairn.*) to inode permissions: read to get, write to set or remove. */
static int may_xattr(fuse_req_t req, uint64_t ino, const char *name, int mask)
{
    cmount *m = M(req);
    if (!m->own_perms || (strncmp(name, "user.", 5) != 0 && strncmp(name, "cairn.", 6) != 0))
        return 0;
    perm_who w;
    who_of(req, &w);
    return may(m, &w, ino, mask);
}

/* access(2) and chdir: asked of the mount without default_permissions. */
static void op_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
    cmount *m = M(req);
    int rc = 0;
    if (m->own_perms && (mask & (R_OK | W_OK | X_OK))) {
        perm_who w;
        who_of(req, &w);
        rc = may(m, &w, ino, mask & (R_OK | W_OK | X_OK));
    }
    reply_ino_err(req, rc);
}

/* A rename: both directories change; a directory moved to another one
 * also changes (its ".."), which needs write permission on it. */
static int may_rename(fuse_req_t req, uint64_t parent, const char *name, uint64_t newparent,
                      const char *newname, unsigned flags)
{
    cmount *m = M(req);
    if (!m->own_perms)
        return 0;
    perm_who w;
    who_of(req, &w);
    int rc = may(m, &w, parent, PERM_W | PERM_X);
    if (rc == 0 && newparent != parent)
        rc = may(m, &w, newparent, PERM_W | PERM_X);
    if (rc < 0 || newparent == parent)
        return rc;
    for (int side = 0; side < ((flags & RENAME_EXCHANGE) ? 2 : 1); side++) {
        fs_attr a;
        int known = dcache_lookup(m->dc, side ? newparent : parent, side ? newname : name, &a);
        if (known < 0) {
            mc_inode in;
            rc = mc_lookup(m->meta, side ? newparent : parent, side ? newname : name, &in);
            if (rc < 0)
                return rc;
            a = in.a;
            mc_inode_clear(&in);
        } else if (known == 0) {
            return -ENOENT;
        }
        if (S_ISDIR(a.mode) && (rc = perm_access(&w, a.mode, a.uid, a.gid, PERM_W)) < 0)
            return rc;
    }
    return 0;
}

/* ---- how long the kernel may keep an answer ----
 *
 * While metad's change feed is up (feed.h), the kernel keeps names and
 * attributes for --coherent-timeout: what another client changes is
 * invalidated as it happens. An answer is given that long only if the feed
 * was up and invalidated nothing from the start of the request that built
 * it: each handler that answers with names or attributes takes the feed's
 * generation first (req_gen). A handler that does not keeps its thread's
 * older generation, which can only make an answer short. */
static __thread uint64_t req_gen;

static void gen_start(cmount *m)
{
    req_gen = cfeed_gen(m->feed);
}

static int long_ok(cmount *m)
{
    return m->feed && cfeed_long(m->feed, req_gen);
}

/* A timeout of 0 (caching off) stays 0. */
static double attr_ttl(cmount *m)
{
    return m->attr_timeout > 0 && long_ok(m) ? m->long_timeout : m->attr_timeout;
}

static double entry_ttl(cmount *m)
{
    return m->entry_timeout > 0 && long_ok(m) ? m->long_timeout : m->entry_timeout;
}

static double neg_ttl(cmount *m)
{
    return m->neg_timeout > 0 && long_ok(m) ? m->long_timeout : m->neg_timeout;
}

/* Attributes from this mount's own cache, age_ms old. */
static double cached_attr_ttl(cmount *m, uint64_t age_ms)
{
    return m->attr_timeout > 0 && long_ok(m) ? m->long_timeout
                                              : m->attr_timeout - (double)age_ms / 1000.0;
}

static void fill_entry(cmount *m, const fs_attr *a, struct fuse_entry_param *e)
{
    memset(e, 0, sizeof(*e));
    e->ino = a->ino;
    e->generation = entry_gen(m, a);
    e->attr_timeout = attr_ttl(m);
    e->entry_timeout = entry_ttl(m);
    fs_attr b = *a;
    overlay(m, &b);
    to_stat(&b, &e->attr);
}

static void reply_entry(fuse_req_t req, uint64_t parent, const char *name, const fs_attr *a)
{
    cmount *m = M(req);
    struct fuse_entry_param e;
    ino_ref(m, a->ino, parent, S_ISREG(a->mode) ? name : NULL, S_ISDIR(a->mode));
    fill_entry(m, a, &e);
    if (fuse_reply_entry(req, &e) != 0)
        ino_forget(m, a->ino, 1); /* the kernel did not take the reference */
}

/* This client changed name in dir (a: what it is now, NULL: gone). */
static void dc_set(cmount *m, uint64_t dir, const char *name, const fs_attr *a)
{
    uint64_t pp = ino_parent(m, dir);
    dcache_set(m->dc, dir, pp == dir ? 0 : pp, name, a);
}

/* The directories a change answered with, as they are now. */
static void dc_dirs(cmount *m, const mc_inode *in)
{
    for (unsigned i = 0; i < in->ndirs; i++)
        dcache_dir_attr_own(m->dc, &in->dirs[i]);
}

/* Ask metad for a listing of dir when the dcache wants one (called after
 * the kernel has its answer, so no lookup waits for it). */
static void dc_maybe_list(cmount *m, uint64_t dir)
{
    uint64_t token;
    if (!dcache_want(m->dc, dir, &token))
        return;
    mc_dirent *ents = NULL;
    size_t n = 0;
    uint64_t next = 0;
    int eof = 0;
    vv dv;
    int rc = mc_readdir_vv(m->meta, dir, 0, DCACHE_LIST_MAX, &ents, &n, &next, &eof, &dv);
    dcache_fill(m->dc, dir, token, ents, rc == 0 ? n : 0, rc == 0 && eof, rc == 0 ? &dv : NULL);
    mc_dirents_free(ents, n);
}

static int name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n > FS_NAME_MAX)
        return -ENAMETOOLONG;
    return 0;
}

/* ---- operations ---- */

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
    cmount *m = userdata;
    hint_mount = m;
    alloc_hint = stored_bytes;
    /* Reads may run in parallel; the kernel need not serialise them. */
    if (conn->capable & FUSE_CAP_ASYNC_READ)
        conn->want |= FUSE_CAP_ASYNC_READ;
    /* open(O_TRUNC) arrives as one open call: truncate is then atomic. */
    if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
        conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
    /* readdir with attributes saves a lookup per entry for ls -l, rsync. */
    if (conn->capable & FUSE_CAP_READDIRPLUS)
        conn->want |= FUSE_CAP_READDIRPLUS;
    /* ...but only when the kernel thinks the caller wants attributes. */
    if (conn->capable & FUSE_CAP_READDIRPLUS_AUTO)
        conn->want |= FUSE_CAP_READDIRPLUS_AUTO;
    /* Directory operations on different names may run in parallel; metad
     * makes each one atomic. */
    if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
        conn->want |= FUSE_CAP_PARALLEL_DIROPS;
    /* Symlink targets never change (a new symlink gets a new inode). */
    if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
        conn->want |= FUSE_CAP_CACHE_SYMLINKS;
    /* Page cache is kept across opens only when open() revalidated the VV
     * (keep_cache); no automatic invalidation on mtime changes needed. */
    conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
    /* The kernel writeback cache buffers writes and writes them back in
     * offset order, so small and random writes reach cairn as whole chunks.
     * It makes the kernel the authority for size and mtime of cached
     * inodes; entry_gen replaces an inode another client changed. */
    if (m->writeback && (conn->capable & FUSE_CAP_WRITEBACK_CACHE))
        conn->want |= FUSE_CAP_WRITEBACK_CACHE;
    else
        conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
    /* Splice moves pages from the kernel into our buffers without a copy. */
    if (conn->capable & FUSE_CAP_SPLICE_READ)
        conn->want |= FUSE_CAP_SPLICE_READ;
    /* Large requests: one FUSE round trip per MiB of streaming I/O. */
    conn->max_write = m->max_write;
    conn->max_readahead = m->max_write;
    conn->max_background = 64;
    conn->congestion_threshold = 48;
    /* Timestamps are kept in nanoseconds by metad. */
    conn->time_gran = 1;
}

static void op_destroy(void *userdata)
{
    cmount_forget_all(userdata);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    cmount *m = M(req);
    gen_start(m);
    int rc = name_ok(name);
    if (rc < 0) {
        reply_err(req, rc);
        return;
    }
    if (m->own_perms) {
        perm_who w;
        who_of(req, &w);
        if ((rc = may(m, &w, parent, PERM_X)) < 0) {
            reply_err(req, rc);
            return;
        }
    }
    /* A fresh listing answers without metad; a regular file this client
     * has state for is asked about, since that state may be newer. */
    fs_attr ca;
    int known = dcache_lookup(m->dc, parent, name, &ca);
    if (known == 1 && S_ISREG(ca.mode)) {
        cfile *c = cfs_file_find(m->fs, ca.ino);
        if (c) {
            fs_attr b;
            if (cfile_dirty(c) || cfile_base_attr(c, &b) < 0 || !vv_equal(&b.vv, &ca.vv))
                known = -1;
                    cfile_put(c);
        }
    }
    mc_inode in;
    memset(&in, 0, sizeof(in));
    if (known == 1) {
        in.a = ca;
        rc = 0;
    } else if (known == 0) {
        rc = -ENOENT;
    } else {
        rc = mc_lookup(m->meta, parent, name, &in);
    }
    double neg = neg_ttl(m);
    if (rc == -ENOENT && neg > 0) {
        struct fuse_entry_param e;
        memset(&e, 0, sizeof(e));
        e.entry_timeout = neg;
        fuse_reply_entry(req, &e);
    } else if (rc < 0) {
        reply_err(req, rc);
    } else {
        reply_entry(req, parent, name, &in.a);
        if (known != 1)
            mc_inode_clear(&in);
    }
    if (known < 0 && (rc == 0 || (rc == -ENOENT && m->neg_timeout > 0)))
        dc_maybe_list(m, parent);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    ino_forget(M(req), ino, nlookup);
    fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
    for (size_t i = 0; i < count; i++)
        ino_forget(M(req), forgets[i].ino, forgets[i].nlookup);
    fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)fi;
    cmount *m = M(req);
    gen_start(m);
    /* The kernel asks again after its own invalidations (a write, a
     * setattr of another attribute, a close): what metad told this client
     * within the attribute timeout is as good as its answer would be. */
    cfile *c = cfs_file_find(m->fs, ino);
    if (c) {
        fs_attr a;
        uint64_t age;
        int frc = cfile_fresh_attr(c, (uint64_t)(m->attr_timeout * 1000.0), &a, &age);
        cfile_put(c);
        if (frc == 0) {
            struct stat st;
            to_stat(&a, &st);
            fuse_reply_attr(req, &st, cached_attr_ttl(m, age));
            return;
        }
    }
    /* A directory this client changed: metad's answer to that change. */
    fs_attr da;
    uint64_t dage;
    if (!c && dcache_get_dir_attr(m->dc, ino, &da, &dage)) {
        struct stat st;
        dir_atime_overlay(m, &da);
        to_stat(&da, &st);
        fuse_reply_attr(req, &st, cached_attr_ttl(m, dage));
        return;
    }
    mc_inode in;
    int rc = mc_getattr(m->meta, ino, NULL, &in);
    if (rc == -ENOENT && (fi || dir_open(m, ino))) {
        /* fstat of a handle whose inode is gone (a removed directory, or a
         * file on a metad without sessions): what was last known, with no
         * links left, as a local file system answers. */
        fs_attr last;
        if (last_attr(m, ino, &last) == 0) {
            last.nlink = 0;
            struct stat st;
            to_stat(&last, &st);
            fuse_reply_attr(req, &st, 0);
            return;
        }
    }
    if (rc < 0) {
        reply_ino_err(req, rc);
        return;
    }
    remember_attr(m, &in.a);
    dcache_dir_attr(m->dc, &in.a);
    overlay(m, &in.a);
    struct stat st;
    to_stat(&in.a, &st);
    fuse_reply_attr(req, &st, attr_ttl(m));
    mc_inode_clear(&in);
}

static int64_t ts_ns(const struct timespec *t)
{
    return (int64_t)t->tv_sec * 1000000000LL + t->tv_nsec;
}

/*
 * With the writeback cache the kernel keeps a regular file's times itself
 * and, after a rename, link or unlink it asked us to carry out, sends them
 * back: mtime as it was, ctime from its coarse clock (often older than the
 * ctime metad stamped on that operation). When the mtime is the one this
 * client knows and nothing of the file is unflushed, such a setattr has
 * nothing for metad and costs no logged round trip; metad's ctime stands.
 * (Applications cannot set ctime: only the kernel sends it, and only with
 * its mtime.) Fills *out and returns 1 then.
 */
static int ctime_restamp(cmount *m, uint64_t ino, const mc_setattr_in *in, fs_attr *out)
{
    if (in->valid != (SA_MTIME | SA_CTIME))
        return 0;
    fs_attr a;
    int known;
    cfile *c = cfs_file_find(m->fs, ino);
    if (c) {
        known = !cfile_dirty(c) && cfile_base_attr(c, &a) == 0;
        cfile_put(c);
    } else {
        known = last_attr(m, ino, &a) == 0;
    }
    if (!known || !S_ISREG(a.mode) || a.mtime != in->mtime)
        return 0;
    *out = a;
    return 1;
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi)
{
    (void)fi;
    cmount *m = M(req);
    gen_start(m);
    int rc = may_setattr(req, ino, attr, to_set, fi);
    if (rc < 0) {
        reply_ino_err(req, rc);
        return;
    }
    fs_attr out;
    int have = 0;
    if (to_set & FUSE_SET_ATTR_SIZE) {
        if (attr->st_size < 0) {
            reply_err(req, -EINVAL);
            return;
        }
        cfile *c = cfs_file(m->fs, ino);
        vv before;
        cfile_vv(c, &before);
        rc = cfile_truncate(c, (uint64_t)attr->st_size, &out);
        if (rc == 0)
            note_own_vv(m, ino, c, &before);
        cfile_put(c);
        if (rc < 0) {
            reply_ino_err(req, rc);
            return;
        }
        have = 1;
    }
    mc_setattr_in in = {0};
    if (to_set & FUSE_SET_ATTR_MODE) {
        in.valid |= SA_MODE;
        in.mode = attr->st_mode & 07777;
    }
    if (to_set & FUSE_SET_ATTR_UID) {
        in.valid |= SA_UID;
        in.uid = attr->st_uid;
    }
    if (to_set & FUSE_SET_ATTR_GID) {
        in.valid |= SA_GID;
        in.gid = attr->st_gid;
    }
    if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
        in.valid |= SA_ATIME_NOW;
    } else if (to_set & FUSE_SET_ATTR_ATIME) {
        in.valid |= SA_ATIME;
        in.atime = ts_ns(&attr->st_atim);
    }
    if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
        in.valid |= SA_MTIME_NOW;
    } else if (to_set & FUSE_SET_ATTR_MTIME) {
        in.valid |= SA_MTIME;
        in.mtime = ts_ns(&attr->st_mtim);
    }
    if (to_set & FUSE_SET_ATTR_CTIME) {
        in.valid |= SA_CTIME;
        in.ctime = ts_ns(&attr->st_ctim);
    }
    /* A chown of a regular file clears set-user/group-ID for every caller,
     * a truncate for callers without CAP_FSETID (see kill_privs). */
    if (m->killpriv && !(in.valid & SA_MODE) && ((in.valid & (SA_UID | SA_GID)) || have)) {
        fs_attr cur;
        uint32_t nm;
        if (have)
            cur = out;   /* the truncate's answer */
        if ((have || known_attr(m, ino, &cur) == 0) && privs_to_kill(&cur, &nm) &&
            ((in.valid & (SA_UID | SA_GID)) || !caller_keeps_privs(req))) {
            in.valid |= SA_MODE;
            in.mode = nm;
        }
    }
    fs_attr kept;
    if (!have && ctime_restamp(m, ino, &in, &kept)) {
        struct stat st;
        to_stat(&kept, &st);
        fuse_reply_attr(req, &st, attr_ttl(m));
        return;
    }
    if (in.valid) {
        /* An mtime must not be overwritten by a later commit of buffered
         * writes, so the cfile carries it into that commit. No flush here:
         * with the writeback cache the kernel sends its mtime every few
         * seconds while a file is being written, and sealing the partial
         * chunks each time would upload chunks that the next writes
         * replace. (For utimensat the kernel has already written its dirty
         * pages back before it sends the setattr.) When only times change
         * and a commit is coming anyway, metad hears of them in that
         * commit: the kernel's time updates cost no round trip. */
        cfile *c = cfs_file_find(m->fs, ino);
        vv before;
        if (c)
            cfile_vv(c, &before);
        /* An explicit atime makes one still queued by a read moot. */
        int64_t lt;
        fs_attr lb;
        if (c && (in.valid & (SA_ATIME | SA_ATIME_NOW)) && cfile_lazy_atime_get(c, &lt, &lb))
            cfile_lazy_atime_done(c, lt, NULL, NULL);
        else if (!c && (in.valid & (SA_ATIME | SA_ATIME_NOW)))
            dir_atime_take(m, ino, &lt);
        const uint64_t foldable =
            SA_MODE | SA_ATIME | SA_ATIME_NOW | SA_MTIME | SA_MTIME_NOW | SA_CTIME;
        int64_t now = now_realtime_ns();
        int has_m = (in.valid & (SA_MTIME | SA_MTIME_NOW)) != 0;
        int has_a = (in.valid & (SA_ATIME | SA_ATIME_NOW)) != 0;
        int64_t mt = (in.valid & SA_MTIME) ? in.mtime : now;
        int64_t at = (in.valid & SA_ATIME) ? in.atime : now;
        fs_attr a;
        /* Likewise a chmod or utimensat of a file being written (cp -a,
         * tar -x): the commit at close carries them. */
        if (c && !(in.valid & ~foldable) && (in.valid & ~(uint64_t)SA_CTIME) &&
            cfile_base_attr(c, &a) == 0 &&
            cfile_fold_attrs(c, (in.valid & SA_MODE) != 0, in.mode, has_a, at, has_m, mt)) {
            cfile_overlay(c, &a);
            if (has_m)
                a.mtime = mt;
            a.ctime = MAX(a.ctime, MAX(has_m ? mt : 0, (in.valid & SA_CTIME) ? in.ctime : 0));
            if (in.valid & (SA_MODE | SA_ATIME | SA_ATIME_NOW))
                a.ctime = MAX(a.ctime, now);
            cfile_put(c);
            struct stat st;
            to_stat(&a, &st);
            fuse_reply_attr(req, &st, attr_ttl(m));
            return;
        }
        if (c && has_m)
            cfile_set_mtime(c, mt);
        mc_inode r;
        rc = mc_setattr(m->meta, ino, &in, &r);
        setattr_answered(m, ino, c, &before, rc == 0 ? &r.a : NULL);
        if (c)
            cfile_put(c);
        fs_attr last;
        if (rc == -ENOENT && !(in.valid & (SA_MODE | SA_UID | SA_GID)) &&
            last_attr(m, ino, &last) == 0) {
            /* Time updates the kernel flushes for an inode that no longer
             * exists anywhere (no client holds it open): nothing left to
             * change. */
            last.nlink = 0;
            struct stat st;
            to_stat(&last, &st);
            fuse_reply_attr(req, &st, 0);
            return;
        }
        if (rc < 0) {
            reply_ino_err(req, rc);
            return;
        }
        out = r.a;
        have = 1;
        mc_inode_clear(&r);
    }
    if (!have) {
        op_getattr(req, ino, fi);
        return;
    }
    remember_attr(m, &out);
    overlay(m, &out);
    struct stat st;
    to_stat(&out, &st);
    fuse_reply_attr(req, &st, attr_ttl(m));
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
    mc_inode in;
    int rc = mc_readlink(M(req)->meta, ino, &in);
    if (rc < 0) {
        reply_ino_err(req, rc);
        return;
    }
    fuse_reply_readlink(req, in.target);
    mc_inode_clear(&in);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
    cmount *m = M(req);
    gen_start(m);
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    int rc = name_ok(name);
    mc_inode in;
    if (rc == 0)
        rc = may_change_dir(req, parent);
    if (rc == 0)
        rc = mc_create(m->meta, "mknod", parent, name, mode, ctx->uid, ctx->gid, rdev, FSC_EXCL,
                       &in);
    if (rc < 0) {
        dcache_drop(m->dc, parent);
        reply_err(req, rc);
        return;
    }
    dc_set(m, parent, name, &in.a);
    dc_dirs(m, &in);
    reply_entry(req, parent, name, &in.a);
    mc_inode_clear(&in);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
    cmount *m = M(req);
    gen_start(m);
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    int rc = name_ok(name);
    mc_inode in;
    if (rc == 0)
        rc = may_change_dir(req, parent);
    if (rc == 0)
        rc = mc_mkdir(m->meta, parent, name, S_IFDIR | (mode & 07777), ctx->uid, ctx->gid, &in);
    if (rc < 0) {
        dcache_drop(m->dc, parent);
        reply_err(req, rc);
        return;
    }
    dc_set(m, parent, name, &in.a);
    dc_dirs(m, &in);
    /* Filling a new directory (cp -a, tar x) looks up each name before
     * creating it: those lookups need not ask metad. */
    dcache_new_dir(m->dc, &in.a);
    reply_entry(req, parent, name, &in.a);
    mc_inode_clear(&in);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
    cmount *m = M(req);
    gen_start(m);
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    int rc = name_ok(name);
    if (rc == 0 && strlen(link) > FS_SYMLINK_MAX)
        rc = -ENAMETOOLONG;
    mc_inode in;
    if (rc == 0)
        rc = may_change_dir(req, parent);
    if (rc == 0)
        rc = mc_symlink(m->meta, parent, name, link, ctx->uid, ctx->gid, &in);
    if (rc < 0) {
        dcache_drop(m->dc, parent);
        reply_err(req, rc);
        return;
    }
    dc_set(m, parent, name, &in.a);
    dc_dirs(m, &in);
    reply_entry(req, parent, name, &in.a);
    mc_inode_clear(&in);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
    cmount *m = M(req);
    gen_start(m);
    int rc = name_ok(newname);
    mc_inode in;
    if (rc == 0)
        rc = may_change_dir(req, newparent);
    if (rc == 0)
        rc = mc_link(m->meta, ino, newparent, newname, &in);
    cfs_ns_changed(m->fs);
    if (rc < 0) {
        dcache_drop(m->dc, newparent);
        reply_ino_err(req, rc);
        return;
    }
    dc_set(m, newparent, newname, &in.a);
    own_step(m, &in.a);
    dcache_attr_set(m->dc, &in.a);   /* its nlink, under its other names */
    dc_dirs(m, &in);
    dcache_forget_attr(m->dc, in.a.ino);
    reply_entry(req, newparent, newname, &in.a);
    mc_inode_clear(&in);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    int rc = name_ok(name);
    if (rc == 0)
        rc = may_change_dir(req, parent);
    if (rc == 0) {
        cmount *m = M(req);
        size_t nrel;
        uint64_t *rel = csession_take_releases(m->session, &nrel);
        mc_inode child;
        rc = mc_unlink(m->meta, parent, name, rel, nrel, &child);
        csession_releases_sent(m->session, rel, nrel, rc == 0);
        cfs_ns_changed(m->fs);
        if (rc == 0) {
            dc_set(m, parent, name, NULL);
            dc_dirs(m, &child);
            /* Other names of the inode now show one link less. */
            if (child.a.ino == 0) {
                dcache_attr_changed(m->dc);
            } else {
                own_step(m, &child.a);
                dcache_attr_set(m->dc, &child.a);
            }
            mc_inode_clear(&child);
        } else {
            dcache_drop(m->dc, parent);
        }
    }
    reply_err(req, rc);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    int rc = name_ok(name);
    if (rc == 0)
        rc = may_change_dir(req, parent);
    if (rc == 0)
        rc = mc_rmdir(M(req)->meta, parent, name);
    if (rc == 0)
        dc_set(M(req), parent, name, NULL);
    else
        dcache_drop(M(req)->dc, parent);
    reply_err(req, rc);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags)
{
    int rc = name_ok(name);
    if (rc == 0)
        rc = name_ok(newname);
    if (rc == 0 && (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE)))
        rc = -EINVAL;
    if (rc == 0)
        rc = may_rename(req, parent, name, newparent, newname, flags);
    if (rc == 0) {
        cmount *m = M(req);
        size_t nrel;
        uint64_t *rel = csession_take_releases(m->session, &nrel);
        mc_inode moved;
        rc = mc_rename(m->meta, parent, name, newparent, newname, flags, rel, nrel, &moved);
        csession_releases_sent(m->session, rel, nrel, rc == 0);
        if (rc == 0 && !(flags & RENAME_EXCHANGE) && moved.a.ino != 0) {
            /* Replacing a name's entry accounts for the links of what it
             * named; the moved inode's ctime changed. */
            dc_set(m, parent, name, NULL);
            dc_set(m, newparent, newname, &moved.a);
            if (S_ISREG(moved.a.mode))
                ino_renamed(m, moved.a.ino, newparent, newname);
            own_step(m, &moved.a);
            dcache_attr_set(m->dc, &moved.a);
            dcache_forget_attr(m->dc, moved.a.ino);
            dc_dirs(m, &moved);
        } else {
            /* An exchange (or an answer without attributes): forget what
             * either side showed. */
            dcache_attr_changed(m->dc);
            dcache_drop(m->dc, parent);
            dcache_drop(m->dc, newparent);
            dcache_forget_attr(m->dc, parent);
            dcache_forget_attr(m->dc, newparent);
            if (moved.a.ino)
                dcache_forget_attr(m->dc, moved.a.ino);
        }
        mc_inode_clear(&moved);
        cfs_ns_changed(M(req)->fs);
    }
    reply_err(req, rc);
}

static int atime_due(const cmount *m, const fs_attr *a);

static void open_reply(fuse_req_t req, cmount *m, cfile *c, uint64_t ino,
                       struct fuse_file_info *fi, int changed)
{
    fh *h = xcalloc(1, sizeof(*h));
    h->f = c;
    h->ino = ino;
    h->flags = fi->flags;
    fi->fh = (uint64_t)(uintptr_t)h;
    fi->keep_cache = !changed;
    /* Access times are kept here, on the first read that reaches us: when
     * this handle's first read is due to update atime, the kernel must not
     * answer it from its page cache. Under relatime that is once after each
     * change of the file or once a day. */
    fs_attr a;
    if (fi->keep_cache && (fi->flags & O_ACCMODE) != O_WRONLY && cfile_base_attr(c, &a) == 0 &&
        !cfile_dirty(c) && atime_due(m, &a))
        fi->keep_cache = 0;
    if (m->direct_io || (fi->flags & O_DIRECT))
        fi->direct_io = 1;
    if (fuse_reply_open(req, fi) != 0) {
        csession_closed(m->session, ino);
        cfile_put(c);
        free(h);
    }
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    cmount *m = M(req);
    int rc = may_open(req, ino, fi->flags);
    if (rc < 0) {
        reply_ino_err(req, rc);
        return;
    }
    cfile *c = cfs_file(m->fs, ino);
    int changed = 0;
    int first = csession_opened(m->session, ino);
    rc = cfile_open(c, &changed, first && csession_active(m->session));
    if (rc == 0 && (fi->flags & O_TRUNC)) {
        fs_attr a;
        rc = cfile_truncate(c, 0, &a);
        if (rc == 0)
            dcache_attr_set(m->dc, &a);
        else
            dcache_attr_stale(m->dc, ino);
        if (rc == 0)
            kill_privs(req, ino, c);
        changed = 1;
    }
    if (rc < 0) {
        csession_closed(m->session, ino);
        cfile_put(c);
        reply_ino_err(req, rc);
        return;
    }
    open_reply(req, m, c, ino, fi, changed);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
    cmount *m = M(req);
    gen_start(m);
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    int rc = name_ok(name);
    mc_inode in;
    if (rc == 0)
        rc = may_change_dir(req, parent);
    if (rc == 0)
        rc = mc_create_open(m->meta, parent, name, S_IFREG | (mode & 07777), ctx->uid, ctx->gid,
                            (fi->flags & O_EXCL) ? FSC_EXCL : 0, &in);
    if (rc < 0) {
        dcache_drop(m->dc, parent);
        reply_err(req, rc);
        return;
    }
    dc_set(m, parent, name, &in.a);
    dc_dirs(m, &in);
    if (!S_ISREG(in.a.mode)) {
        mc_inode_clear(&in);
        reply_err(req, -EISDIR);
        return;
    }
    cfile *c = cfs_file(m->fs, in.a.ino);
    int changed = 0;
    /* The create request itself held the inode when a session exists. */
    csession_opened(m->session, in.a.ino);
    if (!in.existed) {
        /* A new file: its (empty) map is known without asking metad, and
         * so is the absence of xattrs. */
        cfile_seed(c, &in);
        cfile_set_noxattr(c, 1);
        if ((fi->flags & O_ACCMODE) != O_RDONLY)
            cfile_set_fresh(c);
    } else {
        /* An existing file (created by another client meanwhile): opened
         * as it is, if the caller may. */
        rc = may_open_attr(req, &in.a, fi->flags & ~O_CREAT);
        if (rc == 0)
            rc = cfile_open(c, &changed, 0);
        if (rc == 0 && (fi->flags & O_TRUNC)) {
            fs_attr a;
            rc = cfile_truncate(c, 0, &a);
            if (rc == 0)
                dcache_attr_set(m->dc, &a);
            else
                dcache_attr_stale(m->dc, in.a.ino);
            if (rc == 0) {
                kill_privs(req, in.a.ino, c);
                if (cfile_base_attr(c, &a) == 0)
                    cfile_overlay(c, &a);
                in.a = a;
            }
        }
        if (rc < 0) {
            csession_closed(m->session, in.a.ino);
            cfile_put(c);
            mc_inode_clear(&in);
            reply_err(req, rc);
            return;
        }
    }
    struct fuse_entry_param e;
    ino_ref(m, in.a.ino, parent, name, 0);
    fill_entry(m, &in.a, &e);
    fh *h = xcalloc(1, sizeof(*h));
    h->f = c;
    h->ino = in.a.ino;
    h->flags = fi->flags;
    fi->fh = (uint64_t)(uintptr_t)h;
    fi->keep_cache = !changed;
    if (m->direct_io || (fi->flags & O_DIRECT))
        fi->direct_io = 1;
    if (fuse_reply_create(req, &e, fi) != 0) {
        ino_forget(m, in.a.ino, 1);
        csession_closed(m->session, in.a.ino);
        cfile_put(c);
        free(h);
    }
    mc_inode_clear(&in);
}

static fh *FH(struct fuse_file_info *fi) { return (fh *)(uintptr_t)fi->fh; }

/* Per-thread read buffer: worker threads are bounded, so is this memory. */
static __thread uint8_t *rbuf;
static __thread size_t rbuf_cap;

/*
 * The kernel leaves access times to FUSE file systems. relatime (the
 * default) updates atime on the first read through a handle when atime is
 * not newer than mtime/ctime or is a day old, like Linux; strictatime on
 * every handle's first read; noatime never. The update keeps ctime and is
 * a CAS on the VV this client holds, so it never undoes another change; a
 * conflict just skips it.
 */
/* Whether the policy wants atime updated by a read, given attributes a. */
static int atime_due(const cmount *m, const fs_attr *a)
{
    if (m->atime == ATIME_NOATIME)
        return 0;
    if (m->atime == ATIME_RELATIME && a->atime > a->mtime && a->atime > a->ctime &&
        now_realtime_ns() - a->atime < 86400LL * 1000000000LL)
        return 0;
    return 1;
}

/* Set ino's atime to t (0: now, when the policy finds it due; else when
 * it is newer than the atime), keeping ctime, by CAS on a: returns 1 with
 * *out when atime was updated, 0 when nothing was due or a conflict
 * persisted. A conflict answers the current attributes, which are judged
 * again once; *cas (may be NULL) gets the VV the update was made on, which
 * is a's only when nobody else changed the inode since a. */
static int atime_update(cmount *m, uint64_t ino, fs_attr a, int64_t t, fs_attr *out, vv *cas)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        int64_t at = t ? t : now_realtime_ns();
        if (t ? a.atime >= t : !atime_due(m, &a))
            return 0;
        mc_setattr_in in = {
            .valid = SA_ATIME | SA_CTIME, .atime = at, .ctime = a.ctime, .if_match = &a.vv,
        };
        mc_inode r;
        memset(&r, 0, sizeof(r));
        int rc = mc_setattr(m->meta, ino, &in, &r);
        dcache_forget_attr(m->dc, ino);
        if (rc == 0) {
            dcache_attr_set(m->dc, &r.a);
            dcache_dir_attr_own(m->dc, &r.a);
        }
        int again = rc == CAIRN_ECONFLICT && r.a.ino == ino;
        if (rc == 0) {
            *out = r.a;
            if (cas)
                *cas = a.vv;
        }
        if (again)
            a = r.a;
        mc_inode_clear(&r);
        if (rc == 0)
            return 1;
        if (!again)
            return 0;
    }
    return 0;
}

/*
 * Access times of files are written behind: the read that makes one due
 * lays it over the file's attributes (so stat shows it at once) and queues
 * it; one thread sends them, many per request (POST /v1/atimes, one
 * durable write for all), half a second to a second later. A read does not
 * wait for metad's durable write of a time nobody asked for, which would
 * double the cost of opening and reading a small file, and an explicit
 * utimensat meanwhile (a build cache marking an entry used) makes the
 * queued one moot. The queue is bounded; when it is full the reader writes
 * its atime itself. An atime still queued when the client dies is lost, as
 * with lazytime on a local file system; an unmount sends them all first.
 */
#define ATIME_QUEUE_MAX 4096
#define ATIME_DELAY_NS (1000LL * 1000000LL)
/* A batch also takes the times that would be due within this much more,
 * so that a burst of reads goes out in a few requests. */
#define ATIME_SLACK_NS (500LL * 1000000LL)

/* Append an item (room checked by the caller; aq_lock held). */
static void aq_push_locked(cmount *m, cfile *c, uint64_t ino)
{
    atime_item *q = &m->aq[(m->aq_head + m->aq_len++) % ATIME_QUEUE_MAX];
    q->c = c;
    q->ino = ino;
    q->queued = now_mono_ns();
    pthread_cond_signal(&m->aq_cv);
}

struct dir_atime {
    uint64_t ino;
    int64_t t;               /* the access time to set */
    UT_hash_handle hh;
};

/* A directory's access time still queued shows in what this client
 * answers for it (like a file's, see cfile_lazy_atime). */
static void dir_atime_overlay(cmount *m, fs_attr *a)
{
    if (!__atomic_load_n(&m->dir_atimes, __ATOMIC_RELAXED))
        return;
    pthread_mutex_lock(&m->aq_lock);
    dir_atime *d;
    HASH_FIND(hh, m->dir_atimes, &a->ino, sizeof(a->ino), d);
    if (d && d->t > a->atime)
        a->atime = d->t;
    pthread_mutex_unlock(&m->aq_lock);
}

/* Queue directory ino's access time t: 1 when queued (or one is queued
 * already, now carrying t), 0 when the queue is full or stopped. */
static int dir_atime_queue(cmount *m, uint64_t ino, int64_t t)
{
    pthread_mutex_lock(&m->aq_lock);
    dir_atime *d;
    HASH_FIND(hh, m->dir_atimes, &ino, sizeof(ino), d);
    int queued = d != NULL;
    if (d) {
        d->t = MAX(d->t, t);
    } else if (m->aq_running && !m->aq_stop && m->aq_len < ATIME_QUEUE_MAX) {
        d = xmalloc(sizeof(*d));
        d->ino = ino;
        d->t = t;
        HASH_ADD(hh, m->dir_atimes, ino, sizeof(d->ino), d);
        aq_push_locked(m, NULL, ino);
        queued = 1;
    }
    pthread_mutex_unlock(&m->aq_lock);
    return queued;
}

/* Take directory ino's queued access time (an explicit utimensat makes it
 * moot, or it is being sent): 1 with *t, 0 if none was queued. */
static int dir_atime_take(cmount *m, uint64_t ino, int64_t *t)
{
    pthread_mutex_lock(&m->aq_lock);
    dir_atime *d;
    HASH_FIND(hh, m->dir_atimes, &ino, sizeof(ino), d);
    if (d) {
        *t = d->t;
        HASH_DEL(m->dir_atimes, d);
        free(d);
    }
    pthread_mutex_unlock(&m->aq_lock);
    return d != NULL;
}

static int dir_atime_peek(cmount *m, uint64_t ino, int64_t *t)
{
    pthread_mutex_lock(&m->aq_lock);
    dir_atime *d;
    HASH_FIND(hh, m->dir_atimes, &ino, sizeof(ino), d);
    if (d)
        *t = d->t;
    pthread_mutex_unlock(&m->aq_lock);
    return d != NULL;
}

/* Time t of directory ino went out (it stayed visible meanwhile): forget
 * it, unless a later listing moved it on; that one is queued again (or,
 * with the queue full, dropped like any atime that finds no room). */
static void dir_atime_sent(cmount *m, uint64_t ino, int64_t t)
{
    pthread_mutex_lock(&m->aq_lock);
    dir_atime *d;
    HASH_FIND(hh, m->dir_atimes, &ino, sizeof(ino), d);
    if (d && d->t != t && !m->aq_stop && m->aq_len < ATIME_QUEUE_MAX) {
        aq_push_locked(m, NULL, ino);
        d = NULL;
    }
    if (d) {
        HASH_DEL(m->dir_atimes, d);
        free(d);
    }
    pthread_mutex_unlock(&m->aq_lock);
}

/* The attributes this client last saw of ino, else metad's. */
static int seen_attr(cmount *m, uint64_t ino, fs_attr *a)
{
    if (last_attr(m, ino, a) == 0)
        return 0;
    mc_inode in;
    int rc = mc_getattr(m->meta, ino, NULL, &in);
    if (rc == 0) {
        *a = in.a;
        mc_inode_clear(&in);
    }
    return rc;
}

static int atime_queue(cmount *m, uint64_t ino, int64_t t)
{
    pthread_mutex_lock(&m->aq_lock);
    int queued = m->aq_running && !m->aq_stop && m->aq_len < ATIME_QUEUE_MAX;
    if (queued) {
        cfile *c = cfs_file(m->fs, ino);
        cfile_lazy_atime(c, t);
        aq_push_locked(m, c, ino);
    }
    pthread_mutex_unlock(&m->aq_lock);
    return queued;
}

/* One access time of a batch: what was sent, and for whom. */
typedef struct atime_send {
    cfile *c;                /* NULL: a directory's */
    int64_t t;
    vv base;                 /* the VV the update is made on */
} atime_send;

/* The update q asks for, as item *it: 1 when one is due, else 0 (and the
 * queued time is dropped). */
static int atime_prepare(cmount *m, const atime_item *q, mc_atime_item *it, atime_send *snd)
{
    fs_attr a;
    int64_t t;
    if (q->c) {
        if (!cfile_lazy_atime_get(q->c, &t, &a))
            return 0;
    } else if (!dir_atime_peek(m, q->ino, &t) || seen_attr(m, q->ino, &a) < 0) {
        return 0;
    }
    if (a.atime >= t) {
        if (q->c)
            cfile_lazy_atime_done(q->c, t, NULL, NULL);
        else
            dir_atime_sent(m, q->ino, t);
        return 0;
    }
    memset(it, 0, sizeof(*it));
    it->ino = q->ino;
    it->atime = t;
    it->ctime = a.ctime;
    it->if_match = a.vv;
    snd->c = q->c;
    snd->t = t;
    snd->base = a.vv;
    return 1;
}

/* After metad's answer to item it (sent != 0) or no answer (sent == 0).
 * A conflict is judged again, once, on the current attributes by a setattr
 * of its own. Made on the cfile's base, the base moves with the update and
 * so does the kernel's view; made after another change (a conflict first),
 * the cfile's base is stale and stays so, to be revalidated at the next
 * open. */
static void atime_finish(cmount *m, const mc_atime_item *it, const atime_send *snd, int sent)
{
    fs_attr out;
    vv cas;
    int ok = sent && it->status == ATIMES_DONE;
    dcache_forget_attr(m->dc, it->ino);
    if (ok) {
        out = it->a;
        cas = snd->base;
        dcache_attr_set(m->dc, &out);
        dcache_dir_attr_own(m->dc, &out);
    } else if (sent && it->status == ATIMES_CONFLICT) {
        ok = atime_update(m, it->ino, it->a, snd->t, &out, &cas) == 1;
    }
    if (!snd->c) {
        if (ok)
            remember_attr(m, &out);
        dir_atime_sent(m, it->ino, snd->t);
        return;
    }
    if (!ok) {
        cfile_lazy_atime_done(snd->c, snd->t, NULL, NULL);
        return;
    }
    cfile_lazy_atime_done(snd->c, snd->t, &cas, &out);
    if (vv_equal(&cas, &snd->base))
        note_own_vv(m, it->ino, snd->c, &snd->base);
}

/*
 * The writer: it waits until the oldest queued time is due, then takes
 * every one due within ATIME_SLACK_NS (up to ATIMES_MAX) and sends them in
 * one request, which
 * metad makes durable with one flush: reading a few thousand files costs
 * a few requests, not a few thousand durable setattrs.
 */
static void *atime_main(void *arg)
{
    cmount *m = arg;
    atime_item *batch = xcalloc(ATIMES_MAX, sizeof(*batch));
    mc_atime_item *items = xcalloc(ATIMES_MAX, sizeof(*items));
    atime_send *snd = xcalloc(ATIMES_MAX, sizeof(*snd));
    pthread_mutex_lock(&m->aq_lock);
    for (;;) {
        while (m->aq_len == 0 && !m->aq_stop)
            pthread_cond_wait(&m->aq_cv, &m->aq_lock);
        if (m->aq_len == 0)
            break;
        int64_t due = m->aq[m->aq_head].queued + ATIME_DELAY_NS, now = now_mono_ns();
        if (!m->aq_stop && now < due) {
            struct timespec ts = mono_deadline(due - now);
            pthread_cond_timedwait(&m->aq_cv, &m->aq_lock, &ts);
            continue;
        }
        size_t nb = 0;
        while (m->aq_len && nb < ATIMES_MAX &&
               (m->aq_stop || m->aq[m->aq_head].queued + ATIME_DELAY_NS <= now + ATIME_SLACK_NS)) {
            batch[nb++] = m->aq[m->aq_head];
            m->aq_head = (m->aq_head + 1) % ATIME_QUEUE_MAX;
            m->aq_len--;
        }
        pthread_mutex_unlock(&m->aq_lock);
        size_t n = 0;
        for (size_t i = 0; i < nb; i++) {
            if (atime_prepare(m, &batch[i], &items[n], &snd[n]))
                n++;
            else if (batch[i].c)
                cfile_put(batch[i].c);
        }
        int sent = n && mc_atimes(m->meta, items, n) == 0;
        for (size_t i = 0; i < n; i++) {
            atime_finish(m, &items[i], &snd[i], sent);
            if (snd[i].c)
                cfile_put(snd[i].c);
        }
        pthread_mutex_lock(&m->aq_lock);
    }
    pthread_mutex_unlock(&m->aq_lock);
    free(batch);
    free(items);
    free(snd);
    return NULL;
}

void cmount_atime_start(cmount *m)
{
    pthread_mutex_init(&m->aq_lock, NULL);
    cond_init_mono(&m->aq_cv);
    m->aq = xcalloc(ATIME_QUEUE_MAX, sizeof(*m->aq));
    m->aq_running = pthread_create(&m->aq_thread, NULL, atime_main, m) == 0;
    if (!m->aq_running)
        log_warn("no access-time writer thread: reads write access times themselves");
}

void cmount_atime_stop(cmount *m)
{
    if (!m->aq)
        return;
    pthread_mutex_lock(&m->aq_lock);
    m->aq_stop = 1;
    pthread_cond_broadcast(&m->aq_cv);
    pthread_mutex_unlock(&m->aq_lock);
    if (m->aq_running)
        pthread_join(m->aq_thread, NULL);
    m->aq_running = 0;
    dir_atime *d, *tmp;
    HASH_ITER(hh, m->dir_atimes, d, tmp) {
        HASH_DEL(m->dir_atimes, d);
        free(d);
    }
    free(m->aq);
    m->aq = NULL;
    pthread_cond_destroy(&m->aq_cv);
    pthread_mutex_destroy(&m->aq_lock);
}

static void touch_atime(cmount *m, fh *h)
{
    h->atime_done = 1;
    fs_attr a, out;
    if (m->atime == ATIME_NOATIME || cfile_base_attr(h->f, &a) < 0 || cfile_dirty(h->f))
        return;
    /* An atime already waiting to be written counts. */
    cfile_overlay(h->f, &a);
    if (!atime_due(m, &a))
        return;
    if (atime_queue(m, h->ino, now_realtime_ns()))
        return;
    vv cas;
    /* Only an update made on the cfile's own base moves that base. */
    if (atime_update(m, h->ino, a, 0, &out, &cas) == 1)
        cfile_attr_changed(h->f, &cas, &out);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    (void)ino;
    fh *h = FH(fi);
    /* Reads through a write-only handle are the kernel filling pages for
     * partial writes (writeback cache), not the application reading. */
    if (!h->atime_done && (h->flags & O_ACCMODE) != O_WRONLY)
        touch_atime(M(req), h);
    if (off < 0) {
        reply_err(req, -EINVAL);
        return;
    }
    if (rbuf_cap < size) {
        free(rbuf);
        rbuf = malloc(size);
        rbuf_cap = rbuf ? size : 0;
        if (!rbuf) {
            reply_err(req, -ENOMEM);
            return;
        }
    }
    long n = cfile_read(h->f, (uint64_t)off, size, rbuf, &h->ra);
    if (n < 0) {
        reply_err(req, (int)n);
        return;
    }
    fuse_reply_buf(req, (const char *)rbuf, (size_t)n);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *data, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
    (void)ino;
    fh *h = FH(fi);
    if (off < 0) {
        reply_err(req, -EINVAL);
        return;
    }
    long n = cfile_write(h->f, (uint64_t)off, (const uint8_t *)data, size);
    if (n < 0) {
        reply_err(req, (int)n);
        return;
    }
    /* Write-back of cached pages never needs it (the kernel writes through
     * whatever it wants cleared). */
    if (!fi->writepage)
        kill_privs(req, h->ino, h->f);
    fuse_reply_write(req, (size_t)n);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    reply_err(req, flush_noting(M(req), ino, FH(fi)->f));
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    (void)datasync;
    reply_err(req, flush_noting(M(req), ino, FH(fi)->f));
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    fh *h = FH(fi);
    /* flush already ran at close(); this catches writes through mmap or a
     * handle that was never flushed. The error has nowhere to go but the log. */
    int rc = flush_noting(M(req), ino, h->f);
    if (rc < 0)
        log_error("inode %llu: data not committed at release: %s", (unsigned long long)ino,
                  cairn_strerror(rc));
    cfile_put(h->f);
    csession_closed(M(req)->session, h->ino);
    free(h);
    reply_err(req, 0);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    int rc = may_open(req, ino, fi->flags & ~O_TRUNC);
    if (rc < 0) {
        reply_ino_err(req, rc);
        return;
    }
    dh *d = xcalloc(1, sizeof(*d));
    pthread_mutex_init(&d->lock, NULL);
    d->first = 3;
    d->ino = ino;
    dir_opened(M(req), ino, 1);
    fi->fh = (uint64_t)(uintptr_t)d;
    /* Directory contents are fetched fresh at every opendir. */
    fi->cache_readdir = 0;
    if (fuse_reply_open(req, fi) != 0) {
        dir_opened(M(req), ino, -1);
        pthread_mutex_destroy(&d->lock);
        free(d);
    }
}

/* Make sure the handle's window contains FUSE offset off (>= 3) or is at
 * the end of the directory. d->lock held. */
static int dh_fill(cmount *m, fuse_ino_t ino, dh *d, uint64_t off)
{
    if (off < d->first) {
        /* Seek backwards: list again from the start. */
        mc_dirents_free(d->ents, d->n);
        d->ents = NULL;
        d->n = 0;
        d->first = 3;
        d->cursor = 0;
        d->eof = 0;
    }
    while (off >= d->first + d->n && !d->eof) {
        mc_dirent *ents;
        size_t n;
        uint64_t next;
        int eof;
        uint64_t g = cfeed_gen(m->feed);
        int rc = mc_readdir(m->meta, ino, d->cursor, 512, &ents, &n, &next, &eof);
        if (rc < 0)
            return rc;
        /* Drop what the kernel has already consumed, keep the rest. */
        uint64_t drop = MIN((uint64_t)d->n, off - d->first);
        for (uint64_t i = 0; i < drop; i++)
            free(d->ents[i].name);
        size_t keep = d->n - (size_t)drop;
        if (keep == 0)
            d->gen = g;
        mc_dirent *nv = xmalloc((keep + n + 1) * sizeof(mc_dirent));
        if (keep)
            memcpy(nv, d->ents + drop, keep * sizeof(mc_dirent));
        if (n)
            memcpy(nv + keep, ents, n * sizeof(mc_dirent));
        free(d->ents);
        free(ents);
        d->ents = nv;
        d->n = keep + n;
        d->first += drop;
        d->cursor = next;
        d->eof = eof || n == 0;
    }
    return 0;
}

/* A listing from the start reads the directory: its atime follows the
 * same policy as a file's (see touch_atime), judged on the attributes this
 * client last saw; a CAS on their VV keeps it from undoing other changes. */
static void touch_dir_atime(cmount *m, uint64_t ino)
{
    if (m->atime == ATIME_NOATIME)
        return;
    fs_attr a, out;
    if (seen_attr(m, ino, &a) < 0)
        return;
    /* Written behind, like a file's (see atime_queue); shown at once. */
    dir_atime_overlay(m, &a);
    if (!atime_due(m, &a))
        return;
    if (dir_atime_queue(m, ino, now_realtime_ns()))
        return;
    if (atime_update(m, ino, a, 0, &out, NULL) == 1)
        remember_attr(m, &out);
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi, int plus)
{
    cmount *m = M(req);
    dh *d = (dh *)(uintptr_t)fi->fh;
    char *out = malloc(size);
    if (!out) {
        reply_err(req, -ENOMEM);
        return;
    }
    size_t pos = 0;
    uint64_t o = off < 0 ? 0 : (uint64_t)off;
    if (o == 0)
        touch_dir_atime(m, ino);
    pthread_mutex_lock(&d->lock);
    int rc = 0;
    while (o < 2) {
        struct stat st;
        memset(&st, 0, sizeof(st));
        st.st_mode = S_IFDIR;
        st.st_ino = o == 0 ? ino : ino_parent(m, ino);
        const char *nm = o == 0 ? "." : "..";
        size_t need;
        if (plus) {
            struct fuse_entry_param e;
            memset(&e, 0, sizeof(e));
            e.attr = st;
            need = fuse_add_direntry_plus(req, out + pos, size - pos, nm, &e, (off_t)(o + 1));
        } else {
            need = fuse_add_direntry(req, out + pos, size - pos, nm, &st, (off_t)(o + 1));
        }
        if (need > size - pos)
            goto out;
        pos += need;
        o++;
    }
    for (;;) {
        uint64_t want = o + 1; /* FUSE offset of the next entry to return */
        rc = dh_fill(m, ino, d, want);
        if (rc < 0)
            break;
        if (want >= d->first + d->n)
            break;
        mc_dirent *de = &d->ents[want - d->first];
        size_t need;
        if (plus) {
            struct fuse_entry_param e;
            /* The window may be older than this request: long only if
             * nothing was invalidated since it was fetched. */
            req_gen = d->gen;
            fill_entry(m, &de->a, &e);
            need = fuse_add_direntry_plus(req, out + pos, size - pos, de->name, &e,
                                          (off_t)(want));
            if (need <= size - pos)
                ino_ref(m, de->a.ino, ino, S_ISREG(de->a.mode) ? de->name : NULL,
                        S_ISDIR(de->a.mode));
        } else {
            struct stat st;
            to_stat(&de->a, &st);
            need = fuse_add_direntry(req, out + pos, size - pos, de->name, &st, (off_t)want);
        }
        if (need > size - pos)
            break;
        pos += need;
        o = want;
    }
out:
    pthread_mutex_unlock(&d->lock);
    if (rc < 0 && pos == 0)
        reply_err(req, rc);
    else
        fuse_reply_buf(req, out, pos);
    free(out);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
    do_readdir(req, ino, size, off, fi, 0);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                           struct fuse_file_info *fi)
{
    do_readdir(req, ino, size, off, fi, 1);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    dh *d = (dh *)(uintptr_t)fi->fh;
    dir_opened(M(req), d->ino, -1);
    mc_dirents_free(d->ents, d->n);
    pthread_mutex_destroy(&d->lock);
    free(d);
    reply_err(req, 0);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    (void)ino;
    (void)datasync;
    (void)fi;
    /* Every namespace operation is durable on metad when it returns. */
    reply_err(req, 0);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
    (void)ino;
    cmount *m = M(req);
    mc_statfs s;
    int rc = mc_statfs_get(m->meta, &s);
    if (rc < 0) {
        reply_err(req, rc);
        return;
    }
    struct statvfs v;
    memset(&v, 0, sizeof(v));
    v.f_bsize = 1 << 20;
    v.f_frsize = 4096;
    v.f_blocks = s.total / v.f_frsize;
    v.f_bfree = s.free / v.f_frsize;
    v.f_bavail = v.f_bfree;
    v.f_files = s.files + s.ffree;
    v.f_ffree = s.ffree;
    v.f_favail = s.ffree;
    v.f_namemax = FS_NAME_MAX;
    fuse_reply_statfs(req, &v);
}

/* POSIX ACLs are not supported: their xattrs must not be stored as plain
 * attributes, or the kernel would show an ACL it does not enforce. */
static int is_acl(const char *name)
{
    return strcmp(name, "system.posix_acl_access") == 0 ||
           strcmp(name, "system.posix_acl_default") == 0;
}

/* Read-only attributes cairn computes (DESIGN.md §9). */
static int virtual_xattr(cmount *m, fuse_ino_t ino, const char *name, char *out, size_t *len)
{
    if (strcmp(name, "cairn.vv") != 0 && strcmp(name, "cairn.sha256") != 0)
        return 0;
    if (strcmp(name, "cairn.vv") == 0) {
        mc_inode in;
        int rc = mc_getattr(m->meta, ino, NULL, &in);
        if (rc < 0)
            return rc;
        *len = vv_format(&in.a.vv, out, VV_TEXT_MAX);
        mc_inode_clear(&in);
        return 1;
    }
    mc_inode in;
    int rc = mc_getattr(m->meta, ino, NULL, &in);
    if (rc < 0)
        return rc;
    int reg = S_ISREG(in.a.mode);
    mc_inode_clear(&in);
    if (!reg)
        return -ENODATA;
    cfile *c = cfs_file(m->fs, ino);
    uint8_t d[CHUNK_ID_LEN];
    rc = cfile_sha256(c, d);
    cfile_put(c);
    if (rc < 0)
        return rc;
    chunk_id_hex(d, out);
    *len = CHUNK_ID_HEX;
    return 1;
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
    cmount *m = M(req);
    int prc = may_xattr(req, ino, name, PERM_R);
    if (prc < 0) {
        reply_ino_err(req, prc);
        return;
    }
    char vbuf[VV_TEXT_MAX + CHUNK_ID_HEX + 1];
    size_t vlen = 0;
    int v = virtual_xattr(m, ino, name, vbuf, &vlen);
    if (v < 0) {
        reply_err(req, v);
        return;
    }
    uint8_t *val = NULL;
    size_t len = 0;
    if (is_acl(name)) {
        reply_err(req, -EOPNOTSUPP);
        return;
    }
    if (v == 0 && strcmp(name, "security.capability") == 0) {
        cfile *c = cfs_file_find(m->fs, ino);
        int none = c && cfile_noxattr(c);
        if (c)
            cfile_put(c);
        if (none) {
            reply_err(req, -ENODATA);
            return;
        }
    }
    if (v == 1) {
        val = (uint8_t *)vbuf;
        len = vlen;
    } else {
        int rc = mc_xattr_get(m->meta, ino, name, &val, &len);
        if (rc < 0) {
            reply_ino_err(req, rc);
            return;
        }
    }
    if (size == 0)
        fuse_reply_xattr(req, len);
    else if (size < len)
        reply_err(req, -ERANGE);
    else
        fuse_reply_buf(req, (const char *)val, len);
    if (v != 1)
        free(val);
}

/* Linux's rules for names: a known namespace and something after it. */
static int xattr_name_ok(const char *name)
{
    static const char *const ns[] = {"user.", "trusted.", "security.", "system.", NULL};
    for (int i = 0; ns[i]; i++) {
        size_t n = strlen(ns[i]);
        if (strncmp(name, ns[i], n) == 0)
            return name[n] ? 0 : -EINVAL;
    }
    return -EOPNOTSUPP;
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                        size_t size, int flags)
{
    if (is_acl(name)) {
        reply_err(req, -EOPNOTSUPP);
        return;
    }
    int prc = may_xattr(req, ino, name, PERM_W);
    if (prc < 0) {
        reply_ino_err(req, prc);
        return;
    }
    if (strncmp(name, "cairn.", 6) == 0 &&
        (strcmp(name, "cairn.vv") == 0 || strcmp(name, "cairn.sha256") == 0)) {
        reply_err(req, -EPERM);
        return;
    }
    if (strlen(name) > FS_XATTR_NAME_MAX) {
        reply_err(req, -ERANGE);
        return;
    }
    int nrc = xattr_name_ok(name);
    if (nrc < 0) {
        reply_err(req, nrc);
        return;
    }
    if (size > FS_XATTR_VALUE_MAX) {
        reply_err(req, -E2BIG);
        return;
    }
    cfile *c = cfs_file_find(M(req)->fs, ino);
    if (c) {
        cfile_set_noxattr(c, 0);
        cfile_put(c);
    }
    uint32_t f = 0;
    if (flags & XATTR_CREATE)
        f |= 1;
    if (flags & XATTR_REPLACE)
        f |= 2;
    int rc = mc_xattr_set(M(req)->meta, ino, name, value, size, f);
    cfs_ns_changed(M(req)->fs);
    dcache_attr_stale(M(req)->dc, ino);
    dcache_forget_attr(M(req)->dc, ino);
    reply_ino_err(req, rc);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
    char *names = NULL;
    size_t len = 0;
    int rc = mc_xattr_list(M(req)->meta, ino, &names, &len);
    if (rc < 0) {
        reply_ino_err(req, rc);
        return;
    }
    if (fuse_req_ctx(req)->uid != 0 && names) {
        /* trusted.* is visible only to privileged callers, as on ext4. */
        size_t k = 0;
        for (size_t i = 0; i < len;) {
            size_t n = strlen(names + i) + 1;
            if (strncmp(names + i, "trusted.", 8) != 0) {
                memmove(names + k, names + i, n);
                k += n;
            }
            i += n;
        }
        len = k;
    }
    if (size == 0)
        fuse_reply_xattr(req, len);
    else if (size < len)
        reply_err(req, -ERANGE);
    else
        fuse_reply_buf(req, names ? names : "", len);
    free(names);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
    int rc = may_xattr(req, ino, name, PERM_W);
    if (rc < 0) {
        reply_ino_err(req, rc);
        return;
    }
    rc = mc_xattr_remove(M(req)->meta, ino, name);
    cfs_ns_changed(M(req)->fs);
    dcache_attr_stale(M(req)->dc, ino);
    dcache_forget_attr(M(req)->dc, ino);
    reply_ino_err(req, rc);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
                         struct fuse_file_info *fi)
{
    cmount *m = M(req);
    fh *h = FH(fi);
    if (off < 0 || len <= 0) {
        reply_err(req, -EINVAL);
        return;
    }
    uint64_t end = (uint64_t)off + (uint64_t)len;
    if (mode != FALLOC_FL_KEEP_SIZE)
        kill_privs(req, ino, h->f);
    if (mode == 0) {
        /* Space is not reserved per file; extending the size is what the
         * caller can observe. */
        mc_inode in;
        int rc = mc_getattr(m->meta, ino, NULL, &in);
        if (rc == 0) {
            overlay(m, &in.a);
            if (end > in.a.size) {
                fs_attr a;
                rc = cfile_truncate(h->f, end, &a);
                if (rc == 0)
                    dcache_attr_set(m->dc, &a);
                else
                    dcache_attr_stale(m->dc, ino);
            }
            mc_inode_clear(&in);
        }
        reply_err(req, rc);
        return;
    }
    if (mode == FALLOC_FL_KEEP_SIZE) {
        /* Space is not reserved per file and the size stays: nothing to do. */
        reply_err(req, 0);
        return;
    }
    if (mode == (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)) {
        mc_inode in;
        int rc = mc_getattr(m->meta, ino, NULL, &in);
        if (rc < 0) {
            reply_err(req, rc);
            return;
        }
        overlay(m, &in.a);
        uint64_t size = in.a.size;
        mc_inode_clear(&in);
        if (end > size)
            end = size;
        /* Zeros over the range: whole chunks of zeros become holes. */
        static const size_t step = 1 << 20;
        uint8_t *z = calloc(1, step);
        if (!z) {
            reply_err(req, -ENOMEM);
            return;
        }
        for (uint64_t p = (uint64_t)off; p < end && rc == 0;) {
            size_t n = (size_t)MIN((uint64_t)step, end - p);
            long w = cfile_write(h->f, p, z, n);
            if (w < 0)
                rc = (int)w;
            else
                p += (uint64_t)w;
        }
        free(z);
        reply_err(req, rc);
        return;
    }
    reply_err(req, -EOPNOTSUPP);
}

static void op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
                               struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
                               struct fuse_file_info *fi_out, size_t len, int flags)
{
    (void)ino_in;
    (void)ino_out;
    if (flags != 0 || off_in < 0 || off_out < 0) {
        reply_err(req, -EINVAL);
        return;
    }
    long n = cfile_copy_range(FH(fi_in)->f, (uint64_t)off_in, FH(fi_out)->f, (uint64_t)off_out,
                              len);
    if (n < 0) {
        reply_err(req, (int)n);
        return;
    }
    kill_privs(req, FH(fi_out)->ino, FH(fi_out)->f);
    fuse_reply_write(req, (size_t)n);
}

static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
                     struct fuse_file_info *fi)
{
    (void)ino;
    if ((whence != SEEK_DATA && whence != SEEK_HOLE) || off < 0) {
        reply_err(req, -EINVAL);
        return;
    }
    long long r = cfile_seek(FH(fi)->f, (uint64_t)off, whence == SEEK_DATA);
    if (r < 0) {
        reply_err(req, (int)r);
        return;
    }
    fuse_reply_lseek(req, (off_t)r);
}

static const struct fuse_lowlevel_ops ops = {
    .init = op_init,
    .destroy = op_destroy,
    .lookup = op_lookup,
    .forget = op_forget,
    .forget_multi = op_forget_multi,
    .getattr = op_getattr,
    .setattr = op_setattr,
    .readlink = op_readlink,
    .mknod = op_mknod,
    .mkdir = op_mkdir,
    .symlink = op_symlink,
    .link = op_link,
    .unlink = op_unlink,
    .rmdir = op_rmdir,
    .rename = op_rename,
    .open = op_open,
    .create = op_create,
    .read = op_read,
    .write = op_write,
    .flush = op_flush,
    .fsync = op_fsync,
    .release = op_release,
    .opendir = op_opendir,
    .access = op_access,
    .readdir = op_readdir,
    .readdirplus = op_readdirplus,
    .releasedir = op_releasedir,
    .fsyncdir = op_fsyncdir,
    .statfs = op_statfs,
    .setxattr = op_setxattr,
    .getxattr = op_getxattr,
    .listxattr = op_listxattr,
    .removexattr = op_removexattr,
    .fallocate = op_fallocate,
    .copy_file_range = op_copy_file_range,
    .lseek = op_lseek,
};

const struct fuse_lowlevel_ops *cmount_ops(void) { return &ops; }
