/*
 * ops.c — cairn-metad's namespace handlers (docs/PROTOCOL.md), the route
 * table, /metrics and the per-response epoch header. Sessions and orphans
 * are in ops_session.c, the cluster map in ops_cluster.c (ops_i.h).
 *
 * Every handler runs on its connection's thread. Readers take ns_lock
 * shared; mutations follow one path (ops_mutate()): take ns_lock exclusive,
 * fill the op with everything nondeterministic (new ino, generation, the
 * server clock, this replica's id), apply it with fs_apply, append the
 * record to the WAL, encode the answer from the result, unlock, wait for
 * the record to be durable, answer. Input is validated here for clear
 * errors and again by the apply function (which is what protects replay).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/err.h"
#include "common/fsrec.h"
#include "common/log.h"
#include "common/util.h"
#include "common/vv.h"
#include "server/meta/changes.h"
#include "server/meta/metad.h"
#include "server/meta/ops_i.h"
#include "server/meta/persist.h"
#include "server/meta/session.h"

#define BODY_XATTR (FS_XATTR_VALUE_MAX + (8u << 10))
#define BODY_COMMIT (32u << 20)                      /* ~600k slots */
#define REFS_MAX 65536

/* ---- small helpers ---- */

static void add_etag(httpd_req *rq, const vv *v)
{
    char text[VV_TEXT_MAX], quoted[VV_TEXT_MAX + 3];

    vv_format(v, text, sizeof(text));
    snprintf(quoted, sizeof(quoted), "\"%s\"", text);
    httpd_add_header(rq, "ETag", quoted);
}

/* Answer a finished record (ownership of its bytes moves to httpd). */
void ops_reply_rec(httpd_req *rq, int status, recw *w, const vv *etag)
{
    size_t len;
    uint8_t *p = recw_steal(w, &len);

    if (etag)
        add_etag(rq, etag);
    httpd_reply(rq, status, METAD_CT_REC, p, len);
}

typedef struct answer {
    recw w;
    int has;            /* w holds a record to send */
    vv etag;
    int has_etag;
    int status;
} answer;

static void answer_send(httpd_req *rq, answer *a)
{
    if (a->has)
        ops_reply_rec(rq, a->status ? a->status : 200, &a->w, a->has_etag ? &a->etag : NULL);
    else
        httpd_reply(rq, a->status ? a->status : 200, NULL, NULL, 0);
}

int ops_open_body(httpd_req *rq, recr *r, uint8_t type)
{
    size_t len;
    const uint8_t *p = httpd_body(rq, &len);

    if (!p || len == 0 || rec_open(r, p, len) < 0 || r->type != type)
        return -EINVAL;
    return 0;
}

int ops_need_u64(const recr *r, uint16_t tag, uint64_t *out)
{
    return rec_get_u64(r, tag, out) < 0 ? -EINVAL : 0;
}

int ops_opt_u64(const recr *r, uint16_t tag, uint64_t *out, uint64_t def)
{
    int rc = rec_get_u64(r, tag, out);

    if (rc == -ENOENT) {
        *out = def;
        return 0;
    }
    return rc < 0 ? -EINVAL : 0;
}

static int need_u32(const recr *r, uint16_t tag, uint32_t *out)
{
    uint64_t v;

    if (rec_get_u64(r, tag, &v) < 0 || v > UINT32_MAX)
        return -EINVAL;
    *out = (uint32_t)v;
    return 0;
}

static int opt_u32(const recr *r, uint16_t tag, uint32_t *out)
{
    if (!rec_has(r, tag)) {
        *out = 0;
        return 0;
    }
    return need_u32(r, tag, out);
}

/* An entry name into out[FS_NAME_MAX + 1], checked like fs_name_check. */
static int get_name(const recr *r, uint16_t tag, char *out)
{
    const uint8_t *p;
    size_t n;
    int rc;

    if (rec_get_bytes(r, tag, &p, &n) < 0)
        return -EINVAL;
    if ((rc = fs_name_check((const char *)p, n)) < 0)
        return rc;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

static int get_xattr_name(const recr *r, char *out)
{
    const uint8_t *p;
    size_t n;
    int rc;

    if (rec_get_bytes(r, FT_NAME, &p, &n) < 0)
        return -EINVAL;
    if ((rc = fs_xattr_name_check((const char *)p, n)) < 0)
        return rc;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

/* If-Match / If-None-Match: 1 with *out parsed, 0 if absent, -EINVAL. */
static int header_vv(httpd_req *rq, const char *name, vv *out)
{
    const char *h = httpd_header(rq, name);

    if (!h)
        return 0;
    return vv_parse(h, out) < 0 ? -EINVAL : 1;
}

static void count(uint64_t *c)
{
    __atomic_add_fetch(c, 1, __ATOMIC_RELAXED);
}

/* ---- the mutation path ---- */

/* The change feed's records for an applied op (ns_lock exclusive, so that
 * records follow the namespace's order): the names it made, removed or
 * moved, then every inode it touched (the directories included). */
static void feed_changes(metad *m, const fs_op *op, const fs_result *res)
{
    switch (op->type) {
    case FSOP_CREATE:
    case FSOP_UNLINK:
    case FSOP_RMDIR:
        changes_add(m->chg, op->origin, CHG_ENTRY, op->parent, op->name);
        break;
    case FSOP_RENAME:
        changes_add(m->chg, op->origin, CHG_ENTRY, op->parent, op->name);
        changes_add(m->chg, op->origin, CHG_ENTRY, op->newparent, op->newname);
        break;
    case FSOP_LINK:
        changes_add(m->chg, op->origin, CHG_ENTRY, op->newparent, op->newname);
        break;
    default:
        break;
    }
    for (unsigned i = 0; i < res->n && i < ARRAY_LEN(res->attr); i++)
        changes_add(m->chg, op->origin, CHG_INODE, res->attr[i].ino, NULL);
}

/* Caller holds ns_lock exclusive. Applies op and logs it; *lsn is what to
 * wait for after unlocking (for an op that changed nothing, the last
 * logged lsn: what the answer shows may come from a record not yet
 * durable). */
int ops_mutate(metad *m, fs_op *op, fs_result *res, uint64_t *lsn)
{
    recw w;
    size_t len;
    const uint8_t *p;
    int rc;

    op->replica = m->replica;
    op->now = now_realtime_ns();
    fs_op_encode(op, &w);
    p = recw_finish(&w, &len);
    rc = fs_apply(m->fs, p, len, res);
    *lsn = 0;
    if (rc == 0 && res->changed) {
        *lsn = persist_log_waited(m, p, len);
        feed_changes(m, op, res);
    } else if (rc == 0) {
        uint64_t last = wal_last_lsn(m->wal);
        *lsn = last > wal_durable_lsn(m->wal) ? last : 0;
    }
    recw_free(&w);
    return rc;
}

static fs_op *op_new(httpd_req *rq, uint8_t type)
{
    fs_op *op = xcalloc(1, sizeof(*op));

    op->type = type;
    op->origin = ops_origin(rq);
    return op;
}

/* ---- read-only handlers ---- */

static void h_fsinfo(httpd_req *rq, void *ctx)
{
    metad *m = ctx;
    recw w;

    fsinfo_encode(&m->info, &w);
    ops_reply_rec(rq, 200, &w, NULL);
}

static void h_lookup(httpd_req *rq, void *ctx)
{
    metad *m = ctx;
    recr r;
    uint64_t parent;
    char name[FS_NAME_MAX + 1];
    fs_inode *ip;
    answer a = {0};
    int rc;

    if ((rc = ops_open_body(rq, &r, FSREC_REQ)) < 0 ||
        (rc = ops_need_u64(&r, FT_PARENT, &parent)) < 0 ||
        (rc = get_name(&r, FT_NAME, name)) < 0)
        goto fail;
    pthread_rwlock_rdlock(&m->ns_lock);
    rc = fs_lookup(m->fs, parent, name, strlen(name), &ip);
    if (rc == 0) {
        fs_put_inode(&a.w, ip, 0);
        a.has = a.has_etag = 1;
        a.etag = fs_inode_attr(ip)->vv;
    }
    pthread_rwlock_unlock(&m->ns_lock);
    if (rc < 0)
        goto fail;
    answer_send(rq, &a);
    return;
fail:
    httpd_reply_err(rq, rc, "lookup");
}

/* The change feed: records after FT_SEQ of feed FT_FEED, waiting up to
 * FT_WAIT_MS for one; the Cairn-Session header's own changes left out. */
#define CHANGES_WAIT_MAX_MS 60000

static void h_changes(httpd_req *rq, void *ctx)
{
    metad *m = ctx;
    recr r;
    recw w;
    uint64_t feed, since, wait_ms, flags, sid = ops_origin(rq);
    int rc;

    if ((rc = ops_open_body(rq, &r, FSREC_REQ)) < 0 ||
        (rc = ops_opt_u64(&r, FT_FEED, &feed, 0)) < 0 ||
        (rc = ops_opt_u64(&r, FT_SEQ, &since, 0)) < 0 ||
        (rc = ops_opt_u64(&r, FT_WAIT_MS, &wait_ms, 0)) < 0 ||
        (rc = ops_opt_u64(&r, FT_FLAGS, &flags, 0)) < 0)
        goto fail;
    if (wait_ms > CHANGES_WAIT_MAX_MS || (sid == 0 && httpd_header(rq, "Cairn-Session")) ||
        (flags & ~(uint64_t)CHANGES_KICK) || (flags && sid == 0)) {
        rc = -EINVAL;
        goto fail;
    }
    recw_init(&w, FSREC_REPLY);
    if (flags & CHANGES_KICK) {
        /* A client going away: its waiting request answers now. */
        changes_kick(m->chg, sid);
        ops_reply_rec(rq, 200, &w, NULL);
        return;
    }
    changes_read(m->chg, feed, since, sid, (int64_t)wait_ms, &w);
    ops_reply_rec(rq, 200, &w, NULL);
    return;
fail:
    httpd_reply_err(rq, rc, "changes");
}

/* getattr, readlink and map: one inode, optionally with If-None-Match. */
enum { GET_ATTR, GET_LINK, GET_MAP };

static void get_inode(httpd_req *rq, metad *m, int what)
{
    recr r;
    uint64_t ino;
    vv inm;
    fs_inode *ip;
    answer a = {0};
    uint64_t sid = 0;
    int rc, has_inm = 0;

    if ((rc = ops_open_body(rq, &r, FSREC_REQ)) < 0 || (rc = ops_need_u64(&r, FT_INO, &ino)) < 0)
        goto fail;
    if (what == GET_MAP && (rc = ops_open_request(rq, &r, &sid)) < 0)
        goto fail;
    if (what != GET_LINK && (has_inm = header_vv(rq, "If-None-Match", &inm)) < 0) {
        rc = has_inm;
        goto fail;
    }
    pthread_rwlock_rdlock(&m->ns_lock);
    ip = fs_get(m->fs, ino);
    if (!ip) {
        rc = -ENOENT;
    } else if (what == GET_LINK && !S_ISLNK(fs_inode_attr(ip)->mode)) {
        rc = -EINVAL;
    } else {
        if (sid)
            ops_hold(m, sid, ip);
        a.etag = fs_inode_attr(ip)->vv;
        a.has_etag = 1;
        if (has_inm && vv_equal(&inm, &a.etag)) {
            a.status = 304;
        } else {
            fs_put_inode(&a.w, ip, what == GET_MAP);
            a.has = 1;
        }
    }
    pthread_rwlock_unlock(&m->ns_lock);
    if (rc < 0)
        goto fail;
    if (a.status == 304) {
        count(&m->not_modified);
        add_etag(rq, &a.etag);
    }
    answer_send(rq, &a);
    return;
fail:
    httpd_reply_err(rq, rc, "getattr");
}

static void h_getattr(httpd_req *rq, void *ctx)
{
    get_inode(rq, ctx, GET_ATTR);
}

static void h_readlink(httpd_req *rq, void *ctx)
{
    get_inode(rq, ctx, GET_LINK);
}

static void h_map(httpd_req *rq, void *ctx)
{
    get_inode(rq, ctx, GET_MAP);
}

static void h_readdir(httpd_req *rq, void *ctx)
{
    metad *m = ctx;
    recr r;
    uint64_t ino, cursor, max;
    fs_inode *ip;
    answer a = {0};
    int rc;

    if ((rc = ops_open_body(rq, &r, FSREC_REQ)) < 0 || (rc = ops_need_u64(&r, FT_INO, &ino)) < 0 ||
        (rc = ops_opt_u64(&r, FT_CURSOR, &cursor, 0)) < 0 ||
        (rc = ops_opt_u64(&r, FT_MAX, &max, FS_READDIR_MAX)) < 0)
        goto fail;
    pthread_rwlock_rdlock(&m->ns_lock);
    rc = fs_readdir(m->fs, ino, cursor, (uint32_t)MIN(max, (uint64_t)FS_READDIR_MAX), &a.w);
    if (rc == 0) {
        ip = fs_get(m->fs, ino);
        a.etag = fs_inode_attr(ip)->vv;
        a.has = a.has_etag = 1;
    }
    pthread_rwlock_unlock(&m->ns_lock);
    if (rc < 0)
        goto fail;
    answer_send(rq, &a);
    return;
fail:
    httpd_reply_err(rq, rc, "readdir");
}

static void h_xattr_get(httpd_req *rq, void *ctx)
{
    metad *m = ctx;
    recr r;
    uint64_t ino;
    char name[FS_XATTR_NAME_MAX + 1];
    fs_inode *ip;
    const uint8_t *val;
    size_t vlen;
    answer a = {0};
    int rc;

    if ((rc = ops_open_body(rq, &r, FSREC_REQ)) < 0 || (rc = ops_need_u64(&r, FT_INO, &ino)) < 0 ||
        (rc = get_xattr_name(&r, name)) < 0)
        goto fail;
    pthread_rwlock_rdlock(&m->ns_lock);
    ip = fs_get(m->fs, ino);
    if (!ip) {
        rc = -ENOENT;
    } else if ((rc = fs_xattr_get(ip, name, &val, &vlen)) == 0) {
        recw_init(&a.w, FSREC_REPLY);
        recw_bytes(&a.w, FT_VALUE, val, vlen);
        a.has = a.has_etag = 1;
        a.etag = fs_inode_attr(ip)->vv;
    }
    pthread_rwlock_unlock(&m->ns_lock);
    if (rc < 0)
        goto fail;
    answer_send(rq, &a);
    return;
fail:
    httpd_reply_err(rq, rc, "xattr_get");
}

static void h_xattr_list(httpd_req *rq, void *ctx)
{
    metad *m = ctx;
    recr r;
    uint64_t ino;
    fs_inode *ip;
    answer a = {0};
    int rc;

    if ((rc = ops_open_body(rq, &r, FSREC_REQ)) < 0 || (rc = ops_need_u64(&r, FT_INO, &ino)) < 0)
        goto fail;
    pthread_rwlock_rdlock(&m->ns_lock);
    ip = fs_get(m->fs, ino);
    if (!ip) {
        rc = -ENOENT;
    } else {
        fs_put_xattr_list(&a.w, ip);
        a.has = a.has_etag = 1;
        a.etag = fs_inode_attr(ip)->vv;
    }
    pthread_rwlock_unlock(&m->ns_lock);
    if (rc < 0)
        goto fail;
    answer_send(rq, &a);
    return;
fail:
    httpd_reply_err(rq, rc, "xattr_list");
}

static void h_statfs(httpd_req *rq, void *ctx)
{
    metad *m = ctx;
    cluster_counts cc;
    fs_counts fc;
    recw w;
    uint64_t r = m->info.replicas, freeb;

    cluster_get_counts(m->cl, &cc);
    pthread_rwlock_rdlock(&m->ns_lock);
    fs_get_counts(m->fs, &fc);
    pthread_rwlock_unlock(&m->ns_lock);
    /* Usable bytes: every byte a file stores costs `replicas` raw bytes. */
    freeb = cc.capacity > cc.used ? cc.capacity - cc.used : 0;
    recw_init(&w, FSREC_STATFS);
    recw_u64(&w, FT_TOTAL, cc.capacity / r);
    recw_u64(&w, FT_FREE, freeb / r);
    recw_u64(&w, FT_FILES, fc.inodes);
    recw_u64(&w, FT_FFREE, fc.inodes < (1ull << 32) ? (1ull << 32) - fc.inodes : 0);
    recw_u64(&w, FT_BSIZE, 4096);
    ops_reply_rec(rq, 200, &w, NULL);
}

static void h_refs(httpd_req *rq, void *ctx)
{
    metad *m = ctx;
    recr r;
    rec_iter it;
    uint16_t tag;
    const uint8_t *p;
    size_t n, cnt, i = 0;
    uint8_t *bits = NULL;
    recw w;
    int rc;

    if ((rc = ops_open_body(rq, &r, FSREC_IDS)) < 0)
        goto fail;
    cnt = rec_count(&r, FT_ID);
    if (cnt > REFS_MAX) {
        rc = -E2BIG;
        goto fail;
    }
    rec_iter_init(&it);
    while (rec_next(&r, &it, &tag, &p, &n))
        if (tag == FT_ID && n != CHUNK_ID_LEN) {
            rc = -EINVAL;
            goto fail;
        }
    bits = xcalloc(cnt ? cnt : 1, 1);
    pthread_rwlock_rdlock(&m->ns_lock);
    rec_iter_init(&it);
    while (rec_next(&r, &it, &tag, &p, &n))
        if (tag == FT_ID)
            bits[i++] = refs_get(fs_refs(m->fs), p) > 0;
    pthread_rwlock_unlock(&m->ns_lock);
    recw_init(&w, FSREC_IDS);
    recw_bytes(&w, FT_BITS, bits, cnt);
    free(bits);
    ops_reply_rec(rq, 200, &w, NULL);
    return;
fail:
    httpd_reply_err(rq, rc, "refs");
}

/* ---- namespace mutations ---- */

enum { MK_CREATE, MK_MKNOD, MK_MKDIR, MK_SYMLINK };

/* The directory a create or link changed (dir), after the change, as
 * FT_PARENT_ATTR: the client answers its next getattr without asking. */
static void put_parent_attr(recw *w, const fs_result *res, uint64_t dir)
{
    recw x;

    for (unsigned i = 1; i < res->n; i++) {
        if (res->attr[i].ino == dir && S_ISDIR(res->attr[i].mode)) {
            fs_put_attr_rec(&x, &res->attr[i], NULL);
            recw_rec(w, FT_PARENT_ATTR, &x);
            recw_free(&x);
            return;
        }
    }
}

static void make_node(httpd_req *rq, metad *m, int kind)
{
    recr r;
    fs_op *op = op_new(rq, FSOP_CREATE);
    fs_result res;
    answer a = {0};
    uint64_t lsn = 0, sid = 0;
    const uint8_t *p;
    size_t n;
    uint32_t fmt;
    int rc;

    if ((rc = ops_open_body(rq, &r, FSREC_REQ)) < 0 ||
        (rc = ops_need_u64(&r, FT_PARENT, &op->parent)) < 0 ||
        (rc = get_name(&r, FT_NAME, op->name)) < 0 || (rc = opt_u32(&r, FT_UID, &op->uid)) < 0 ||
        (rc = opt_u32(&r, FT_GID, &op->gid)) < 0 || (rc = opt_u32(&r, FT_UMASK, &op->umask)) < 0 ||
        (rc = ops_opt_u64(&r, FT_FLAGS, &op->flags, 0)) < 0)
        goto fail;
    if (kind == MK_SYMLINK) {
        op->mode = S_IFLNK | 0777;
        if (rec_get_bytes(&r, FT_TARGET, &p, &n) < 0) {
            rc = -EINVAL;
            goto fail;
        }
        if (n > FS_SYMLINK_MAX) {
            rc = -ENAMETOOLONG;
            goto fail;
        }
        if (n == 0) {
            rc = -ENOENT;
            goto fail;
        }
        if (memchr(p, 0, n)) {
            rc = -EINVAL;
            goto fail;
        }
        memcpy(op->target, p, n);
        op->target[n] = '\0';
    } else {
        if ((rc = need_u32(&r, FT_MODE, &op->mode)) < 0)
            goto fail;
        fmt = op->mode & S_IFMT;
        if (fmt == 0)
            fmt = kind == MK_MKDIR ? S_IFDIR : S_IFREG;
        if ((kind == MK_CREATE && fmt != S_IFREG) || (kind == MK_MKDIR && fmt != S_IFDIR) ||
            (kind == MK_MKNOD && fmt != S_IFREG && fmt != S_IFIFO && fmt != S_IFCHR &&
             fmt != S_IFBLK && fmt != S_IFSOCK) ||
            (op->mode & ~(S_IFMT | 07777u))) {
            rc = -EINVAL;
            goto fail;
        }
        op->mode = fmt | (op->mode & 07777);
        if (kind == MK_MKNOD && (rc = ops_opt_u64(&r, FT_RDEV, &op->rdev, 0)) < 0)
            goto fail;
    }
    if (kind != MK_CREATE)
        op->flags |= FSC_EXCL;   /* only create(2) without O_EXCL may find a file */
    else if ((rc = ops_open_request(rq, &r, &sid)) < 0)
        goto fail;

    pthread_rwlock_wrlock(&m->ns_lock);
    op->ino = fs_next_ino(m->fs);
    op->gen = (uint64_t)now_realtime_ns();
    rc = ops_mutate(m, op, &res, &lsn);
    if (rc == 0 && sid)
        ops_hold(m, sid, fs_get(m->fs, res.attr[0].ino));
    if (rc == 0) {
        fs_put_attr_rec(&a.w, &res.attr[0], kind == MK_SYMLINK ? op->target : NULL);
        if (res.existed)
            recw_u64(&a.w, FT_EXISTED, 1);
        put_parent_attr(&a.w, &res, op->parent);
        a.has = a.has_etag = 1;
        a.etag = res.attr[0].vv;
    }
    pthread_rwlock_unlock(&m->ns_lock);
    if (rc < 0)
        goto fail;
    persist_wait(m, lsn);
    free(op);
    answer_send(rq, &a);
    return;
fail:
    free(op);
    httpd_reply_err(rq, rc, "create");
}

static void h_create(httpd_req *rq, void *ctx)
{
    make_node(rq, ctx, MK_CREATE);
}

static void h_mknod(httpd_req *rq, void *ctx)
{
    make_node(rq, ctx, MK_MKNOD);
}

static void h_mkdir(httpd_req *rq, void *ctx)
{
    make_node(rq, ctx, MK_MKDIR);
}

static void h_symlink(httpd_req *rq, void *ctx)
{
    make_node(rq, ctx, MK_SYMLINK);
}

/* link, unlink, rmdir, rename: parse, mutate, answer the touched inodes. */
static void change_names(httpd_req *rq, metad *m, uint8_t type)
{
    recr r;
    fs_op *op = op_new(rq, type);
    fs_result res;
    answer a = {0};
    uint64_t lsn = 0, rel_lsn = 0, sid = 0;
    recw x;
    unsigned i;
    int rc;

    if ((rc = ops_open_body(rq, &r, FSREC_REQ)) < 0)
        goto fail;
    if ((type == FSOP_UNLINK || type == FSOP_RENAME) &&
        (rc = ops_released_request(rq, &r, &sid)) < 0)
        goto fail;
    if (type == FSOP_LINK) {
        if ((rc = ops_need_u64(&r, FT_INO, &op->ino)) < 0)
            goto fail;
    } else if ((rc = ops_need_u64(&r, FT_PARENT, &op->parent)) < 0 ||
               (rc = get_name(&r, FT_NAME, op->name)) < 0) {
        goto fail;
    }
    if (type == FSOP_LINK || type == FSOP_RENAME) {
        if ((rc = ops_need_u64(&r, FT_NEWPARENT, &op->newparent)) < 0 ||
            (rc = get_name(&r, FT_NEWNAME, op->newname)) < 0 ||
            (rc = ops_opt_u64(&r, FT_FLAGS, &op->flags, 0)) < 0)
            goto fail;
    }
    pthread_rwlock_wrlock(&m->ns_lock);
    /* First the holds the client gave up, so that a file it closed is not
     * kept as an orphan by this very unlink or rename. */
    rel_lsn = ops_released_apply(m, &r, sid);
    if (type == FSOP_UNLINK ||
        (type == FSOP_RENAME && !(op->flags & (FS_RENAME_EXCHANGE | FS_RENAME_NOREPLACE)))) {
        /* The file that may lose its last link here: keep it as an orphan
         * if a session holds it open (decided now, recorded in the op). */
        fs_inode *victim = NULL;
        int found = type == FSOP_UNLINK
                        ? fs_lookup(m->fs, op->parent, op->name, strlen(op->name), &victim)
                        : fs_lookup(m->fs, op->newparent, op->newname, strlen(op->newname),
                                    &victim);
        if (found == 0)
            op->keep = ops_keep(m, victim);
    }
    rc = ops_mutate(m, op, &res, &lsn);
    if (rc == 0) {
        if (type == FSOP_LINK) {
            fs_put_attr_rec(&a.w, &res.attr[0], NULL);
            put_parent_attr(&a.w, &res, op->newparent);
            a.etag = res.attr[0].vv;
            a.has_etag = 1;
        } else {
            /* unlink: parent, child; rmdir: parent; rename: the moved
             * inode, the exchanged or replaced one, then the parents. */
            unsigned n = type == FSOP_RMDIR ? 1 : res.n;
            recw_init(&a.w, FSREC_REPLY);
            for (i = 0; i < n; i++) {
                fs_put_attr_rec(&x, &res.attr[i], NULL);
                recw_rec(&a.w, FT_INODE, &x);
                recw_free(&x);
            }
        }
        a.has = 1;
    }
    pthread_rwlock_unlock(&m->ns_lock);
    persist_wait(m, MAX(lsn, rel_lsn));
    if (rc < 0)
        goto fail;
    free(op);
    answer_send(rq, &a);
    return;
fail:
    free(op);
    httpd_reply_err(rq, rc, type == FSOP_RENAME ? "rename" : "unlink");
}

static void h_link(httpd_req *rq, void *ctx)
{
    change_names(rq, ctx, FSOP_LINK);
}

static void h_unlink(httpd_req *rq, void *ctx)
{
    change_names(rq, ctx, FSOP_UNLINK);
}

static void h_rmdir(httpd_req *rq, void *ctx)
{
    change_names(rq, ctx, FSOP_RMDIR);
}

static void h_rename(httpd_req *rq, void *ctx)
{
    change_names(rq, ctx, FSOP_RENAME);
}

/* CAS (DESIGN.md §3): with ns_lock held exclusive, compare the inode's VV
 * with If-Match. 0 = go ahead; 1 = conflict, a holds the 412 answer. */
/* Whether ip's VV is still want; a mismatch is counted as a CAS conflict. */
static int vv_still(metad *m, fs_inode *ip, const vv *want)
{
    if (vv_equal(want, &fs_inode_attr(ip)->vv))
        return 1;
    count(&m->cas_conflicts);
    return 0;
}

static int cas_check(metad *m, uint64_t ino, const vv *want, int map, answer *a, int *rc)
{
    fs_inode *ip = fs_get(m->fs, ino);

    if (!ip) {
        *rc = -ENOENT;
        return 1;
    }
    if (vv_still(m, ip, want))
        return 0;
    fs_put_inode(&a->w, ip, map);
    a->has = a->has_etag = 1;
    a->etag = fs_inode_attr(ip)->vv;
    a->status = 412;
    return 1;
}

static void h_setattr(httpd_req *rq, void *ctx)
{
    metad *m = ctx;
    recr r;
    fs_op *op = op_new(rq, FSOP_SETATTR);
    fs_result res;
    answer a = {0};
    uint64_t lsn = 0, v;
    vv want;
    int rc, has_im;

    if ((rc = ops_open_body(rq, &r, FSREC_REQ)) < 0 ||
        (rc = ops_need_u64(&r, FT_INO, &op->ino)) < 0 ||
        (rc = ops_need_u64(&r, FT_VALID, &op->valid)) < 0)
        goto fail;
    v = op->valid;
    if (((v & SA_MODE) && (rc = need_u32(&r, FT_MODE, &op->mode)) < 0) ||
        ((v & SA_UID) && (rc = need_u32(&r, FT_UID, &op->uid)) < 0) ||
        ((v & SA_GID) && (rc = need_u32(&r, FT_GID, &op->gid)) < 0) ||
        ((v & SA_SIZE) && (rc = ops_need_u64(&r, FT_SIZE, &op->size)) < 0))
        goto fail;
    if (((v & SA_ATIME) && !(v & SA_ATIME_NOW) && rec_get_i64(&r, FT_ATIME, &op->atime) < 0) ||
        ((v & SA_MTIME) && !(v & SA_MTIME_NOW) && rec_get_i64(&r, FT_MTIME, &op->mtime) < 0) ||
        ((v & SA_CTIME) && rec_get_i64(&r, FT_CTIME, &op->ctime) < 0)) {
        rc = -EINVAL;
        goto fail;
    }
    if ((has_im = header_vv(rq, "If-Match", &want)) < 0) {
        rc = has_im;
        goto fail;
    }
    pthread_rwlock_wrlock(&m->ns_lock);
    if (!has_im || !cas_check(m, op->ino, &want, 0, &a, &rc)) {
        rc = ops_mutate(m, op, &res, &lsn);
        if (rc == 0) {
            fs_put_attr_rec(&a.w, &res.attr[0], NULL);
            a.has = a.has_etag = 1;
            a.etag = res.attr[0].vv;
        }
    }
    pthread_rwlock_unlock(&m->ns_lock);
    if (rc < 0)
        goto fail;
    persist_wait(m, lsn);
    free(op);
    answer_send(rq, &a);
    return;
fail:
    free(op);
    httpd_reply_err(rq, rc, "setattr");
}

/*
 * Access times written behind by a client, many in one request: each item
 * (a nested record: FT_INO, FT_ATIME, FT_CTIME, FT_VV) is a setattr of
 * atime and ctime made only if the inode's VV is still FT_VV. Every item
 * is checked before any is applied (a malformed one: 400, nothing
 * changed); then all are applied under one hold of ns_lock and made
 * durable by one wait. The answer has one FT_INODE per item, in order,
 * with FT_STATUS: ATIMES_DONE and the new attributes, ATIMES_CONFLICT and
 * the current ones, or ATIMES_GONE (no such inode).
 */
typedef struct atime_item {
    uint64_t ino;
    int64_t atime, ctime;
    vv want;
} atime_item;

static void h_atimes(httpd_req *rq, void *ctx)
{
    metad *m = ctx;
    recr r;
    rec_iter it;
    uint16_t tag;
    const uint8_t *p;
    size_t len, n = 0, i;
    uint64_t lsn = 0, l;
    answer a = {0};
    atime_item *items = NULL;
    fs_op *op = NULL;
    int rc;

    if ((rc = ops_open_body(rq, &r, FSREC_REQ)) < 0)
        goto fail;
    n = rec_count(&r, FT_INODE);
    if (n == 0 || n > ATIMES_MAX) {
        rc = -EINVAL;
        goto fail;
    }
    items = xcalloc(n, sizeof(*items));
    rec_iter_init(&it);
    for (i = 0; rec_next(&r, &it, &tag, &p, &len);) {
        recr x;
        if (tag != FT_INODE)
            continue;
        if (rec_open(&x, p, len) < 0 || x.type != FSREC_REQ ||
            ops_need_u64(&x, FT_INO, &items[i].ino) < 0 ||
            rec_get_i64(&x, FT_ATIME, &items[i].atime) < 0 ||
            rec_get_i64(&x, FT_CTIME, &items[i].ctime) < 0 ||
            fsrec_get_vv(&x, FT_VV, &items[i].want) < 0) {
            rc = -EINVAL;
            goto fail;
        }
        i++;
    }
    op = op_new(rq, FSOP_SETATTR);
    recw_init(&a.w, FSREC_REPLY);
    a.has = 1;
    pthread_rwlock_wrlock(&m->ns_lock);
    for (i = 0; i < n; i++) {
        recw x;
        fs_result res;
        fs_inode *ip = fs_get(m->fs, items[i].ino);
        if (!ip) {
            recw_init(&x, FSREC_INODE);
            recw_u64(&x, FT_INO, items[i].ino);
            recw_u64(&x, FT_STATUS, ATIMES_GONE);
        } else if (!vv_still(m, ip, &items[i].want)) {
            fs_put_attr_rec(&x, fs_inode_attr(ip), NULL);
            recw_u64(&x, FT_STATUS, ATIMES_CONFLICT);
        } else {
            uint64_t origin = op->origin;
            memset(op, 0, sizeof(*op));
            op->type = FSOP_SETATTR;
            op->origin = origin;
            op->ino = items[i].ino;
            op->valid = SA_ATIME | SA_CTIME;
            op->atime = items[i].atime;
            op->ctime = items[i].ctime;
            if ((rc = ops_mutate(m, op, &res, &l)) < 0) {
                pthread_rwlock_unlock(&m->ns_lock);
                persist_wait(m, lsn);
                goto fail;
            }
            lsn = MAX(lsn, l);
            fs_put_attr_rec(&x, &res.attr[0], NULL);
            recw_u64(&x, FT_STATUS, ATIMES_DONE);
        }
        recw_rec(&a.w, FT_INODE, &x);
        recw_free(&x);
    }
    pthread_rwlock_unlock(&m->ns_lock);
    persist_wait(m, lsn);
    free(op);
    free(items);
    answer_send(rq, &a);
    return;
fail:
    if (a.has)
        recw_free(&a.w);
    free(op);
    free(items);
    httpd_reply_err(rq, rc, "atimes");
}

static int slot_cmp(const void *x, const void *y)
{
    const fs_slot *a = x, *b = y;

    return a->index < b->index ? -1 : a->index > b->index;
}

static void h_commit(httpd_req *rq, void *ctx)
{
    metad *m = ctx;
    recr r;
    fs_op *op = op_new(rq, FSOP_COMMIT);
    fs_result res;
    answer a = {0};
    uint64_t lsn = 0, clear = 0;
    fs_slot *slots = NULL;
    size_t cnt, i = 0, n;
    rec_iter it;
    uint16_t tag;
    const uint8_t *p;
    vv want;
    int rc;

    if ((rc = ops_open_body(rq, &r, FSREC_REQ)) < 0 ||
        (rc = ops_need_u64(&r, FT_INO, &op->ino)) < 0 ||
        (rc = ops_need_u64(&r, FT_SIZE, &op->size)) < 0 ||
        (rc = ops_opt_u64(&r, FT_CLEAR_INLINE, &clear, 0)) < 0)
        goto fail;
    if ((rc = header_vv(rq, "If-Match", &want)) <= 0) {
        rc = -EINVAL;   /* commit is CAS only: If-Match is required */
        goto fail;
    }
    rc = 0;
    if (rec_has(&r, FT_MTIME)) {
        if (rec_get_i64(&r, FT_MTIME, &op->mtime) < 0) {
            rc = -EINVAL;
            goto fail;
        }
        op->has_mtime = 1;
    }
    /* A chmod or utimensat the client folded into this commit. */
    if (rec_has(&r, FT_ATIME)) {
        if (rec_get_i64(&r, FT_ATIME, &op->atime) < 0) {
            rc = -EINVAL;
            goto fail;
        }
        op->has_atime = 1;
    }
    if (rec_has(&r, FT_MODE)) {
        uint64_t mode;
        if (rec_get_u64(&r, FT_MODE, &mode) < 0 || mode > 07777) {
            rc = -EINVAL;
            goto fail;
        }
        op->mode = (uint32_t)mode;
        op->has_mode = 1;
    }
    op->clear_inline = clear != 0;
    if (rec_get_bytes(&r, FT_INLINE, &op->value, &op->value_len) == 0)
        op->has_inline = 1;
    cnt = rec_count(&r, FT_SLOT);
    if (cnt) {
        slots = xmalloc(cnt * sizeof(fs_slot));   /* bounded by the body limit */
        rec_iter_init(&it);
        while (rec_next(&r, &it, &tag, &p, &n)) {
            if (tag != FT_SLOT)
                continue;
            if (fsrec_slot_decode(p, n, &slots[i]) < 0 || slots[i].len > m->info.chunk_size) {
                rc = -EINVAL;
                goto fail;
            }
            i++;
        }
        qsort(slots, cnt, sizeof(fs_slot), slot_cmp);
        for (i = 1; i < cnt; i++)
            if (slots[i].index == slots[i - 1].index) {
                rc = -EINVAL;
                goto fail;
            }
        op->slots = slots;
        op->nslots = cnt;
    }
    if (op->has_inline && op->value_len > m->info.inline_max) {
        rc = -EFBIG;
        goto fail;
    }
    pthread_rwlock_wrlock(&m->ns_lock);
    if (op->has_inline && !fs_inline_fits(m->fs, op->ino, op->value_len, m->inline_budget)) {
        /* Bounded memory: the client stores the file in chunks instead. */
        count(&m->inline_refused);
        rc = -ENOSPC;
    } else if (!cas_check(m, op->ino, &want, 1, &a, &rc)) {
        rc = ops_mutate(m, op, &res, &lsn);
        if (rc == 0) {
            fs_put_attr_rec(&a.w, &res.attr[0], NULL);
            a.has = a.has_etag = 1;
            a.etag = res.attr[0].vv;
        }
    }
    pthread_rwlock_unlock(&m->ns_lock);
    if (rc < 0)
        goto fail;
    persist_wait(m, lsn);
    free(slots);
    free(op);
    answer_send(rq, &a);
    return;
fail:
    free(slots);
    free(op);
    httpd_reply_err(rq, rc, "commit");
}

static void xattr_change(httpd_req *rq, metad *m, uint8_t type)
{
    recr r;
    fs_op *op = op_new(rq, type);
    fs_result res;
    answer a = {0};
    uint64_t lsn = 0;
    int rc;

    if ((rc = ops_open_body(rq, &r, FSREC_REQ)) < 0 ||
        (rc = ops_need_u64(&r, FT_INO, &op->ino)) < 0 ||
        (rc = get_xattr_name(&r, op->name)) < 0)
        goto fail;
    if (type == FSOP_XATTR_SET) {
        if (rec_get_bytes(&r, FT_VALUE, &op->value, &op->value_len) < 0 ||
            (rc = ops_opt_u64(&r, FT_FLAGS, &op->flags, 0)) < 0) {
            rc = rc < 0 ? rc : -EINVAL;
            goto fail;
        }
        if (op->value_len > FS_XATTR_VALUE_MAX) {
            rc = -E2BIG;
            goto fail;
        }
    }
    pthread_rwlock_wrlock(&m->ns_lock);
    rc = ops_mutate(m, op, &res, &lsn);
    if (rc == 0) {
        fs_put_attr_rec(&a.w, &res.attr[0], NULL);
        a.has = a.has_etag = 1;
        a.etag = res.attr[0].vv;
    }
    pthread_rwlock_unlock(&m->ns_lock);
    if (rc < 0)
        goto fail;
    persist_wait(m, lsn);
    free(op);
    answer_send(rq, &a);
    return;
fail:
    free(op);
    httpd_reply_err(rq, rc, "xattr");
}

static void h_xattr_set(httpd_req *rq, void *ctx)
{
    xattr_change(rq, ctx, FSOP_XATTR_SET);
}

static void h_xattr_remove(httpd_req *rq, void *ctx)
{
    xattr_change(rq, ctx, FSOP_XATTR_REMOVE);
}

static void h_healthz(httpd_req *rq, void *ctx)
{
    (void)ctx;
    httpd_reply_text(rq, 200, "ok");
}

/* ---- routes, headers, metrics ---- */

const httpd_route metad_routes[] = {
    {"GET", "/healthz", h_healthz, "healthz", 0},
    {"GET", "/v1/fsinfo", h_fsinfo, "fsinfo", 0},
    {"GET", "/v1/statfs", h_statfs, "statfs", 0},
    {"GET", "/v1/cluster", ops_cluster_get, "cluster", 0},
    {"POST", "/v1/lookup", h_lookup, "lookup", BODY_SMALL},
    {"POST", "/v1/getattr", h_getattr, "getattr", BODY_SMALL},
    {"POST", "/v1/setattr", h_setattr, "setattr", BODY_SMALL},
    {"POST", "/v1/atimes", h_atimes, "atimes", BODY_LIST},
    {"POST", "/v1/readdir", h_readdir, "readdir", BODY_SMALL},
    {"POST", "/v1/create", h_create, "create", BODY_SMALL},
    {"POST", "/v1/mknod", h_mknod, "mknod", BODY_SMALL},
    {"POST", "/v1/mkdir", h_mkdir, "mkdir", BODY_SMALL},
    {"POST", "/v1/symlink", h_symlink, "symlink", BODY_SMALL},
    {"POST", "/v1/readlink", h_readlink, "readlink", BODY_SMALL},
    {"POST", "/v1/link", h_link, "link", BODY_SMALL},
    {"POST", "/v1/unlink", h_unlink, "unlink", BODY_SMALL},
    {"POST", "/v1/rmdir", h_rmdir, "rmdir", BODY_SMALL},
    {"POST", "/v1/rename", h_rename, "rename", BODY_SMALL},
    {"POST", "/v1/map", h_map, "map", BODY_SMALL},
    {"POST", "/v1/commit", h_commit, "commit", BODY_COMMIT},
    {"POST", "/v1/xattr_get", h_xattr_get, "xattr_get", BODY_SMALL},
    {"POST", "/v1/xattr_set", h_xattr_set, "xattr_set", BODY_XATTR},
    {"POST", "/v1/xattr_list", h_xattr_list, "xattr_list", BODY_SMALL},
    {"POST", "/v1/xattr_remove", h_xattr_remove, "xattr_remove", BODY_SMALL},
    {"POST", "/v1/refs", h_refs, "refs", BODY_LIST},
    {"POST", "/v1/register", ops_register, "register", BODY_SMALL},
    {"POST", "/v1/heartbeat", ops_heartbeat, "heartbeat", BODY_SMALL},
    {"POST", "/v1/cluster_drain", ops_cluster_drain, "cluster_drain", BODY_SMALL},
    {"POST", "/v1/cluster_undrain", ops_cluster_undrain, "cluster_undrain", BODY_SMALL},
    {"POST", "/v1/cluster_remove", ops_cluster_remove, "cluster_remove", BODY_SMALL},
    {"POST", "/v1/changes", h_changes, "changes", BODY_SMALL},
    {"POST", "/v1/session_new", ops_session_new, "session_new", BODY_SMALL},
    {"POST", "/v1/session_renew", ops_session_renew, "session_renew", BODY_LIST},
    {"POST", "/v1/session_hold", ops_session_hold, "session_hold", BODY_LIST},
    {"POST", "/v1/session_end", ops_session_end, "session_end", BODY_SMALL},
};
const size_t metad_nroutes = ARRAY_LEN(metad_routes);

void metad_global_headers(httpd_req *req, void *ctx)
{
    metad *m = ctx;
    char v[24];

    snprintf(v, sizeof(v), "%" PRIu64, cluster_epoch(m->cl));
    httpd_add_header(req, "Cairn-Epoch", v);
}

/* One series without labels: its TYPE line and its value. */
static void metric_u64(buf *out, const char *type, const char *name, uint64_t v)
{
    buf_printf(out, "# TYPE %s %s\n%s %" PRIu64 "\n", name, type, name, v);
}

void metad_metrics(buf *out, void *ctx)
{
    static const char *const opnames[] = {
        "init", "create", "link", "unlink", "rmdir", "rename",
        "setattr", "commit", "xattr_set", "xattr_remove", "orphan_free",
    };
    metad *m = ctx;
    fs_counts fc;
    cluster_counts cc;
    wal_stats ws;
    persist_stats ps;
    sessions_stats ss;
    changes_stats chs;
    size_t i;
    int64_t now = now_realtime_ns();

    pthread_rwlock_rdlock(&m->ns_lock);
    fs_get_counts(m->fs, &fc);
    pthread_rwlock_unlock(&m->ns_lock);
    cluster_get_counts(m->cl, &cc);
    wal_get_stats(m->wal, &ws);
    persist_get_stats(m, &ps);
    sessions_get_stats(m->ss, &ss);
    changes_get_stats(m->chg, &chs);

    buf_printf(out, "# TYPE cairn_metad_ops_applied_total counter\n");
    for (i = 0; i < ARRAY_LEN(opnames); i++)
        buf_printf(out, "cairn_metad_ops_applied_total{op=\"%s\"} %" PRIu64 "\n", opnames[i],
                   fc.applied[i]);
    buf_printf(out, "# TYPE cairn_metad_inodes gauge\ncairn_metad_inodes %" PRIu64 "\n",
               fc.inodes);
    buf_printf(out, "# TYPE cairn_metad_dirents gauge\ncairn_metad_dirents %" PRIu64 "\n",
               fc.dirents);
    buf_printf(out, "# TYPE cairn_metad_directories gauge\ncairn_metad_directories %" PRIu64 "\n",
               fc.dirs);
    buf_printf(out, "# TYPE cairn_metad_files gauge\ncairn_metad_files %" PRIu64 "\n", fc.files);
    buf_printf(out, "# TYPE cairn_metad_map_slots gauge\ncairn_metad_map_slots %" PRIu64 "\n",
               fc.slots);
    buf_printf(out, "# TYPE cairn_metad_chunks_referenced gauge\n"
               "cairn_metad_chunks_referenced %" PRIu64 "\n", fc.chunk_refs);
    buf_printf(out, "# TYPE cairn_metad_inline_bytes gauge\ncairn_metad_inline_bytes %" PRIu64
               "\n", fc.inline_bytes);
    buf_printf(out, "# TYPE cairn_metad_inline_refused_total counter\n"
               "cairn_metad_inline_refused_total %" PRIu64 "\n",
               __atomic_load_n(&m->inline_refused, __ATOMIC_RELAXED));
    buf_printf(out, "# TYPE cairn_metad_cas_conflicts_total counter\n"
               "cairn_metad_cas_conflicts_total %" PRIu64 "\n",
               __atomic_load_n(&m->cas_conflicts, __ATOMIC_RELAXED));
    buf_printf(out, "# TYPE cairn_metad_not_modified_total counter\n"
               "cairn_metad_not_modified_total %" PRIu64 "\n",
               __atomic_load_n(&m->not_modified, __ATOMIC_RELAXED));
    buf_printf(out, "# TYPE cairn_metad_wal_records_total counter\n"
               "cairn_metad_wal_records_total %" PRIu64 "\n", ws.records);
    buf_printf(out, "# TYPE cairn_metad_wal_bytes_total counter\n"
               "cairn_metad_wal_bytes_total %" PRIu64 "\n", ws.bytes);
    buf_printf(out, "# TYPE cairn_metad_wal_syncs_total counter\n"
               "cairn_metad_wal_syncs_total %" PRIu64 "\n", ws.syncs);
    buf_printf(out, "# TYPE cairn_metad_wal_sync_seconds_total counter\n"
               "cairn_metad_wal_sync_seconds_total %.6f\n", (double)ws.sync_ns_total / 1e9);
    buf_printf(out, "# TYPE cairn_metad_wal_last_lsn gauge\ncairn_metad_wal_last_lsn %" PRIu64
               "\n", wal_last_lsn(m->wal));
    buf_printf(out, "# TYPE cairn_metad_snapshots_total counter\n"
               "cairn_metad_snapshots_total %" PRIu64 "\n", ps.snapshots);
    buf_printf(out, "# TYPE cairn_metad_snapshot_failures_total counter\n"
               "cairn_metad_snapshot_failures_total %" PRIu64 "\n", ps.snapshot_failures);
    buf_printf(out, "# TYPE cairn_metad_snapshot_age_seconds gauge\n"
               "cairn_metad_snapshot_age_seconds %.3f\n",
               ps.last_done_ns ? (double)(now - ps.last_done_ns) / 1e9 : -1.0);
    buf_printf(out, "# TYPE cairn_metad_snapshot_pause_seconds gauge\n"
               "cairn_metad_snapshot_pause_seconds %.6f\n", (double)ps.last_pause_ns / 1e9);
    buf_printf(out, "# TYPE cairn_metad_snapshot_write_seconds gauge\n"
               "cairn_metad_snapshot_write_seconds %.6f\n", (double)ps.last_write_ns / 1e9);
    buf_printf(out, "# TYPE cairn_metad_snapshot_lsn gauge\ncairn_metad_snapshot_lsn %" PRIu64
               "\n", ps.last_lsn);
    buf_printf(out, "# TYPE cairn_metad_recovery_seconds gauge\n"
               "cairn_metad_recovery_seconds %.6f\n", (double)ps.recovery_ns / 1e9);
    buf_printf(out, "# TYPE cairn_metad_servers gauge\ncairn_metad_servers{state=\"up\"} %" PRIu64
               "\ncairn_metad_servers{state=\"down\"} %" PRIu64
               "\ncairn_metad_servers{state=\"draining\"} %" PRIu64
               "\ncairn_metad_servers{state=\"full\"} %" PRIu64 "\n", cc.up, cc.down,
               cc.draining, cc.full);
    metric_u64(out, "gauge", "cairn_metad_capacity_bytes", cc.capacity);
    metric_u64(out, "gauge", "cairn_metad_used_bytes", cc.used);
    metric_u64(out, "gauge", "cairn_metad_epoch", cluster_epoch(m->cl));
    metric_u64(out, "gauge", "cairn_metad_sessions", ss.live);
    metric_u64(out, "gauge", "cairn_metad_session_holds", ss.holds);
    metric_u64(out, "counter", "cairn_metad_sessions_opened_total", ss.opened);
    metric_u64(out, "counter", "cairn_metad_sessions_expired_total", ss.expired);
    metric_u64(out, "gauge", "cairn_metad_orphans", fc.orphans);
    metric_u64(out, "counter", "cairn_metad_orphans_freed_total",
               __atomic_load_n(&m->orphans_freed, __ATOMIC_RELAXED));
    metric_u64(out, "counter", "cairn_metad_changes_total", chs.appended);
    metric_u64(out, "counter", "cairn_metad_change_answers_total", chs.answers);
    metric_u64(out, "counter", "cairn_metad_change_gaps_total", chs.gaps);
    metric_u64(out, "gauge", "cairn_metad_change_readers", chs.waiting);
}
