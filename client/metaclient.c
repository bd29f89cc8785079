/*
 * metaclient.c — typed calls to cairn-metad; see metaclient.h.
 */
#include "client/metaclient.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/err.h"
#include "common/httpc.h"
#include "common/log.h"
#include "common/util.h"

#define MC_MAX_RESP (512u << 20)

struct mc {
    char addr[128];
    char base[160];            /* "http://host:port" */
    httpc *http;
    unsigned retry_ms, timeout_ms;
    uint64_t epoch;            /* atomic: highest Cairn-Epoch seen */
    uint64_t session;          /* atomic: current session id, 0 = none */
};

mc *mc_new(const mc_config *cfg)
{
    mc *m = xcalloc(1, sizeof(*m));
    snprintf(m->addr, sizeof(m->addr), "%s", cfg->addr);
    snprintf(m->base, sizeof(m->base), "http://%s", cfg->addr);
    m->retry_ms = cfg->retry_ms ? cfg->retry_ms : 60000;
    m->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 30000;
    httpc_config hc = {
        .handles = cfg->connections ? cfg->connections : 32,
        .connect_timeout_ms = 2000,
        .max_resp = MC_MAX_RESP,
        /* small requests to one server, answered in tens of microseconds:
         * curl's transfer loop costs 40-50 us a request more than a plain
         * socket exchange on loopback, on every metadata operation */
        .lean = 1,
    };
    m->http = httpc_new(&hc);
    if (!m->http) {
        free(m);
        return NULL;
    }
    return m;
}

void mc_free(mc *m)
{
    if (!m)
        return;
    httpc_free(m->http);
    free(m);
}

uint64_t mc_epoch(mc *m) { return __atomic_load_n(&m->epoch, __ATOMIC_ACQUIRE); }
const char *mc_addr(mc *m) { return m->addr; }

static void note_epoch(mc *m, uint64_t e)
{
    uint64_t cur = __atomic_load_n(&m->epoch, __ATOMIC_RELAXED);
    while (e > cur &&
           !__atomic_compare_exchange_n(&m->epoch, &cur, e, 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED))
        ;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

static int transport_retryable(int err)
{
    return err == -ECONNREFUSED || err == -ECONNRESET || err == -ETIMEDOUT ||
           err == -EHOSTUNREACH || err == -ENETUNREACH || err == -EPIPE || err == -EAGAIN ||
           err == CAIRN_EPROTO;
}

/*
 * One call with the retry policy of the header. On return 0 the response is
 * in *resp (any 2xx/3xx/4xx status; callers map it). *retried tells whether
 * an earlier attempt may have reached the server.
 */
static int mc_http(mc *m, const char *method, const char *op, const char *path,
                   const char *const *hdrs, const void *body, size_t len, httpc_resp *resp,
                   int *retried)
{
    char url[256];
    snprintf(url, sizeof(url), "%s%s", m->base, path);
    int64_t start = now_mono_ms();
    unsigned backoff = 50;
    int attempts = 0;
    if (retried)
        *retried = 0;
    for (;;) {
        memset(resp, 0, sizeof(*resp));
        int rc = httpc_do(m->http, method, url, hdrs, body, len, (int)m->timeout_ms, resp);
        attempts++;
        if (rc == 0 && resp->epoch)
            note_epoch(m, resp->epoch);
        int again = 0;
        unsigned wait = backoff;
        if (rc < 0) {
            if (!transport_retryable(rc))
                return rc;
            again = 1;
            /* A refused connection never delivered the request. */
            if (retried && rc != -ECONNREFUSED)
                *retried = 1;
        } else if (resp->status == 503) {
            again = 1;
            if (resp->retry_after_s > 0)
                wait = (unsigned)MIN(resp->retry_after_s * 1000, 2000);
            httpc_resp_free(resp);
        } else {
            return 0;
        }
        int64_t elapsed = now_mono_ms() - start;
        if (!again || elapsed + wait > m->retry_ms) {
            log_error("metad %s: %s failed after %d attempts in %lld ms: %s", m->addr, op,
                      attempts, (long long)elapsed,
                      rc < 0 ? cairn_strerror(rc) : "server overloaded (503)");
            return CAIRN_EUNAVAIL;
        }
        if (attempts == 1)
            log_warn("metad %s: %s: %s; retrying", m->addr, op,
                     rc < 0 ? cairn_strerror(rc) : "503");
        sleep_ms(wait);
        backoff = MIN(backoff * 2, 1000u);
    }
}

static int status_err(const httpc_resp *r)
{
    return cairn_http_to_err(r->status, r->errname[0] ? r->errname : NULL);
}

static int decode_inode(const recr *r, mc_inode *out)
{
    memset(out, 0, sizeof(*out));
    int rc = fsrec_get_attr(r, &out->a);
    if (rc < 0)
        return CAIRN_EPROTO;
    if (rec_has(r, FT_TARGET)) {
        if (rec_get_str(r, FT_TARGET, FS_SYMLINK_MAX, &out->target) < 0)
            return CAIRN_EPROTO;
    }
    uint64_t v;
    if (rec_get_u64(r, FT_EXISTED, &v) == 0)
        out->existed = v != 0;
    const uint8_t *pp;
    size_t pl;
    if (rec_get_bytes(r, FT_PARENT_ATTR, &pp, &pl) == 0) {
        recr pr;
        if (rec_open(&pr, pp, pl) < 0 || fsrec_get_attr(&pr, &out->dirs[0]) < 0 ||
            !S_ISDIR(out->dirs[0].mode))
            return CAIRN_EPROTO;
        out->ndirs = 1;
    }
    if (rec_get_u64(r, FT_HASMAP, &v) == 0 && v) {
        out->hasmap = 1;
        size_t n = rec_count(r, FT_SLOT);
        if (n) {
            out->slots = malloc(n * sizeof(fs_slot));
            if (!out->slots)
                return -ENOMEM;
        }
        rec_iter it;
        rec_iter_init(&it);
        uint16_t tag;
        const uint8_t *p;
        size_t len;
        while (rec_next(r, &it, &tag, &p, &len)) {
            if (tag != FT_SLOT)
                continue;
            if (fsrec_slot_decode(p, len, &out->slots[out->nslots]) < 0)
                return CAIRN_EPROTO;
            if (out->nslots && out->slots[out->nslots].index <= out->slots[out->nslots - 1].index)
                return CAIRN_EPROTO;
            out->nslots++;
        }
    }
    const uint8_t *ip;
    size_t il;
    if (rec_get_bytes(r, FT_INLINE, &ip, &il) == 0) {
        out->has_inline = 1;
        out->inl = malloc(il ? il : 1);
        if (!out->inl)
            return -ENOMEM;
        memcpy(out->inl, ip, il);
        out->inl_len = il;
    }
    return 0;
}

void mc_inode_clear(mc_inode *i)
{
    if (!i)
        return;
    free(i->target);
    free(i->slots);
    free(i->inl);
    memset(i, 0, sizeof(*i));
}

void mc_dirents_free(mc_dirent *d, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(d[i].name);
    free(d);
}

void mc_cluster_clear(mc_cluster *c)
{
    free(c->servers);
    memset(c, 0, sizeof(*c));
}

/* Build the If-Match / If-None-Match header for a VV. */
static void vv_header(char *out, size_t outlen, const char *name, const vv *v)
{
    char t[VV_TEXT_MAX];
    vv_format(v, t, sizeof(t));
    snprintf(out, outlen, "%s: \"%s\"", name, t);
}

/*
 * POST /v1/<op> with a record body; decode an inode answer into out when
 * out is non-NULL. On CAIRN_ECONFLICT the current record is decoded too.
 */
static int mc_post(mc *m, const char *op, recw *req, const char *cond_hdr, mc_inode *out,
                   httpc_resp *keep, int *retried)
{
    size_t len;
    const uint8_t *body = recw_finish(req, &len);
    char sh[64];
    uint64_t sid = mc_session(m);
    const char *hdrs[4] = {"Content-Type: application/x-cairn-record", NULL, NULL, NULL};
    int k = 1;
    if (cond_hdr)
        hdrs[k++] = cond_hdr;
    if (sid) {
        snprintf(sh, sizeof(sh), "Cairn-Session: %llu", (unsigned long long)sid);
        hdrs[k++] = sh;
    }
    char path[64];
    snprintf(path, sizeof(path), "/v1/%s", op);
    httpc_resp resp;
    int rc = mc_http(m, "POST", op, path, hdrs, body, len, &resp, retried);
    if (rc < 0)
        return rc;
    rc = status_err(&resp);
    if ((rc == 0 || rc == CAIRN_ECONFLICT) && out && resp.len) {
        recr r;
        int drc = rec_open(&r, resp.body, resp.len);
        if (drc == 0)
            drc = decode_inode(&r, out);
        if (drc < 0) {
            log_warn("metad %s: %s: undecodable answer (%s)", m->addr, op, cairn_strerror(drc));
            mc_inode_clear(out);
            rc = drc == -ENOMEM ? -ENOMEM : CAIRN_EPROTO;
        }
    } else if (rc == 0 && out) {
        memset(out, 0, sizeof(*out));
    }
    if (keep && rc == 0)
        *keep = resp;
    else
        httpc_resp_free(&resp);
    return rc;
}

int mc_fsinfo_get(mc *m, mc_fsinfo *out)
{
    httpc_resp resp;
    int rc = mc_http(m, "GET", "fsinfo", "/v1/fsinfo", NULL, NULL, 0, &resp, NULL);
    if (rc < 0)
        return rc;
    rc = status_err(&resp);
    if (rc == 0) {
        recr r;
        const uint8_t *p;
        size_t n;
        uint64_t cs = 0, rep = 0, minrep = 0, inl = 0;
        if (rec_open(&r, resp.body, resp.len) < 0 || rec_get_u64(&r, FT_CHUNK_SIZE, &cs) < 0 ||
            rec_get_u64(&r, FT_REPLICAS, &rep) < 0 || rec_get_u64(&r, FT_INLINE_MAX, &inl) < 0 ||
            rec_get_bytes(&r, FT_FSID, &p, &n) < 0 || n != 16) {
            rc = CAIRN_EPROTO;
        } else {
            if (rec_get_u64(&r, FT_MIN_REPLICAS, &minrep) < 0)
                minrep = rep;
            memcpy(out->fsid, p, 16);
            out->chunk_size = cs;
            out->replicas = (uint32_t)rep;
            out->min_replicas = (uint32_t)minrep;
            out->inline_max = (uint32_t)inl;
            if (cs < 4096 || cs > (256u << 20) || rep < 1 || rep > 16 || inl > cs ||
                minrep < 1 || minrep > rep)
                rc = CAIRN_EPROTO;
        }
    }
    httpc_resp_free(&resp);
    return rc;
}

static void req_init(recw *w) { recw_init(w, FSREC_REQ); }

int mc_lookup(mc *m, uint64_t parent, const char *name, mc_inode *out)
{
    recw w;
    req_init(&w);
    recw_u64(&w, FT_PARENT, parent);
    recw_str(&w, FT_NAME, name);
    int rc = mc_post(m, "lookup", &w, NULL, out, NULL, NULL);
    recw_free(&w);
    return rc;
}

int mc_getattr(mc *m, uint64_t ino, const vv *inm, mc_inode *out)
{
    recw w;
    char h[VV_TEXT_MAX + 32];
    req_init(&w);
    recw_u64(&w, FT_INO, ino);
    if (inm)
        vv_header(h, sizeof(h), "If-None-Match", inm);
    int rc = mc_post(m, "getattr", &w, inm ? h : NULL, out, NULL, NULL);
    recw_free(&w);
    return rc;
}

int mc_setattr(mc *m, uint64_t ino, const mc_setattr_in *in, mc_inode *out)
{
    recw w;
    char h[VV_TEXT_MAX + 32];
    req_init(&w);
    recw_u64(&w, FT_INO, ino);
    recw_u64(&w, FT_VALID, in->valid);
    if (in->valid & SA_MODE)
        recw_u64(&w, FT_MODE, in->mode);
    if (in->valid & SA_UID)
        recw_u64(&w, FT_UID, in->uid);
    if (in->valid & SA_GID)
        recw_u64(&w, FT_GID, in->gid);
    if (in->valid & SA_SIZE)
        recw_u64(&w, FT_SIZE, in->size);
    if (in->valid & SA_ATIME)
        recw_i64(&w, FT_ATIME, in->atime);
    if (in->valid & SA_MTIME)
        recw_i64(&w, FT_MTIME, in->mtime);
    if (in->valid & SA_CTIME)
        recw_i64(&w, FT_CTIME, in->ctime);
    if (in->if_match)
        vv_header(h, sizeof(h), "If-Match", in->if_match);
    int rc = mc_post(m, "setattr", &w, in->if_match ? h : NULL, out, NULL, NULL);
    recw_free(&w);
    return rc;
}

int mc_atimes(mc *m, mc_atime_item *items, size_t n)
{
    if (n == 0 || n > ATIMES_MAX)
        return -EINVAL;
    recw w;
    req_init(&w);
    for (size_t i = 0; i < n; i++) {
        recw x;
        recw_init(&x, FSREC_REQ);
        recw_u64(&x, FT_INO, items[i].ino);
        recw_i64(&x, FT_ATIME, items[i].atime);
        recw_i64(&x, FT_CTIME, items[i].ctime);
        fsrec_put_vv(&x, FT_VV, &items[i].if_match);
        recw_rec(&w, FT_INODE, &x);
        recw_free(&x);
    }
    httpc_resp resp;
    int rc = mc_post(m, "atimes", &w, NULL, NULL, &resp, NULL);
    recw_free(&w);
    if (rc < 0)
        return rc;
    /* one FT_INODE per item, in order */
    recr r;
    rec_iter it;
    uint16_t tag;
    const uint8_t *p;
    size_t len, k = 0;
    rc = rec_open(&r, resp.body, resp.len) < 0 ? CAIRN_EPROTO : 0;
    rec_iter_init(&it);
    while (rc == 0 && rec_next(&r, &it, &tag, &p, &len)) {
        recr x;
        uint64_t st = ATIMES_DONE, ino;
        if (tag != FT_INODE)
            continue;
        if (k == n || rec_open(&x, p, len) < 0 || rec_get_u64(&x, FT_INO, &ino) < 0 ||
            ino != items[k].ino || (rec_has(&x, FT_STATUS) && rec_get_u64(&x, FT_STATUS, &st) < 0) ||
            st > ATIMES_GONE || (st != ATIMES_GONE && fsrec_get_attr(&x, &items[k].a) < 0)) {
            rc = CAIRN_EPROTO;
            break;
        }
        items[k++].status = (int)st;
    }
    if (rc == 0 && k != n)
        rc = CAIRN_EPROTO;
    if (rc < 0)
        log_warn("metad %s: atimes: undecodable answer", m->addr);
    httpc_resp_free(&resp);
    return rc;
}

/* After a possibly-duplicated create-type call answered EEXIST: if the name
 * now resolves to an inode of the wanted type, that is our own creation. */
static int resolve_dup_create(mc *m, uint64_t parent, const char *name, uint32_t type,
                              mc_inode *out)
{
    mc_inode tmp;
    if (mc_lookup(m, parent, name, &tmp) < 0)
        return -EEXIST;
    if ((tmp.a.mode & S_IFMT) != type) {
        mc_inode_clear(&tmp);
        return -EEXIST;
    }
    if (out)
        *out = tmp;
    else
        mc_inode_clear(&tmp);
    return 0;
}

static int create_call(mc *m, const char *op, uint64_t parent, const char *name, uint32_t mode,
                       uint32_t uid, uint32_t gid, uint64_t rdev, uint32_t flags, mc_inode *out,
                       int hold)
{
    recw w;
    int retried = 0;
    req_init(&w);
    if (hold && mc_session(m))
        recw_u64(&w, FT_OPEN, 1);
    recw_u64(&w, FT_PARENT, parent);
    recw_str(&w, FT_NAME, name);
    recw_u64(&w, FT_MODE, mode);
    recw_u64(&w, FT_UID, uid);
    recw_u64(&w, FT_GID, gid);
    recw_u64(&w, FT_RDEV, rdev);
    recw_u64(&w, FT_FLAGS, flags);
    int rc = mc_post(m, op, &w, NULL, out, NULL, &retried);
    recw_free(&w);
    if (rc == -EEXIST && retried)
        rc = resolve_dup_create(m, parent, name, mode & S_IFMT, out);
    return rc;
}

int mc_create(mc *m, const char *op, uint64_t parent, const char *name, uint32_t mode,
              uint32_t uid, uint32_t gid, uint64_t rdev, uint32_t flags, mc_inode *out)
{
    return create_call(m, op, parent, name, mode, uid, gid, rdev, flags, out, 0);
}

int mc_create_open(mc *m, uint64_t parent, const char *name, uint32_t mode, uint32_t uid,
                   uint32_t gid, uint32_t flags, mc_inode *out)
{
    return create_call(m, "create", parent, name, mode, uid, gid, 0, flags, out, 1);
}

int mc_mkdir(mc *m, uint64_t parent, const char *name, uint32_t mode, uint32_t uid,
             uint32_t gid, mc_inode *out)
{
    recw w;
    int retried = 0;
    req_init(&w);
    recw_u64(&w, FT_PARENT, parent);
    recw_str(&w, FT_NAME, name);
    recw_u64(&w, FT_MODE, mode);
    recw_u64(&w, FT_UID, uid);
    recw_u64(&w, FT_GID, gid);
    int rc = mc_post(m, "mkdir", &w, NULL, out, NULL, &retried);
    recw_free(&w);
    if (rc == -EEXIST && retried)
        rc = resolve_dup_create(m, parent, name, S_IFDIR, out);
    return rc;
}

int mc_symlink(mc *m, uint64_t parent, const char *name, const char *target, uint32_t uid,
               uint32_t gid, mc_inode *out)
{
    recw w;
    int retried = 0;
    req_init(&w);
    recw_u64(&w, FT_PARENT, parent);
    recw_str(&w, FT_NAME, name);
    recw_str(&w, FT_TARGET, target);
    recw_u64(&w, FT_UID, uid);
    recw_u64(&w, FT_GID, gid);
    int rc = mc_post(m, "symlink", &w, NULL, out, NULL, &retried);
    recw_free(&w);
    if (rc == -EEXIST && retried)
        rc = resolve_dup_create(m, parent, name, S_IFLNK, out);
    return rc;
}

int mc_readlink(mc *m, uint64_t ino, mc_inode *out)
{
    recw w;
    req_init(&w);
    recw_u64(&w, FT_INO, ino);
    int rc = mc_post(m, "readlink", &w, NULL, out, NULL, NULL);
    recw_free(&w);
    if (rc == 0 && !out->target) {
        mc_inode_clear(out);
        rc = -EINVAL;
    }
    return rc;
}

int mc_link(mc *m, uint64_t ino, uint64_t newparent, const char *newname, mc_inode *out)
{
    recw w;
    int retried = 0;
    req_init(&w);
    recw_u64(&w, FT_INO, ino);
    recw_u64(&w, FT_NEWPARENT, newparent);
    recw_str(&w, FT_NEWNAME, newname);
    int rc = mc_post(m, "link", &w, NULL, out, NULL, &retried);
    recw_free(&w);
    if (rc == -EEXIST && retried) {
        mc_inode tmp;
        if (mc_lookup(m, newparent, newname, &tmp) == 0) {
            if (tmp.a.ino == ino) {
                rc = 0;
                if (out) {
                    *out = tmp;
                    return rc;
                }
            }
            mc_inode_clear(&tmp);
        }
    }
    return rc;
}

/* The first FT_INODE of an FSREC_REPLY whose ino is want (want != 0) or,
 * with want 0, differs from skip (the child of an unlink: not its
 * parent), decoded into *out. */
static int reply_inode(const httpc_resp *resp, uint64_t skip, uint64_t want, mc_inode *out)
{
    recr r;
    if (rec_open(&r, resp->body, resp->len) < 0)
        return CAIRN_EPROTO;
    rec_iter it;
    rec_iter_init(&it);
    uint16_t tag;
    const uint8_t *p;
    size_t n;
    while (rec_next(&r, &it, &tag, &p, &n)) {
        if (tag != FT_INODE)
            continue;
        recr in;
        mc_inode tmp;
        if (rec_open(&in, p, n) < 0 || decode_inode(&in, &tmp) < 0)
            return CAIRN_EPROTO;
        if (want ? tmp.a.ino == want : tmp.a.ino != skip) {
            *out = tmp;
            return 0;
        }
        mc_inode_clear(&tmp);
    }
    return -ENOENT;
}

static int reply_child(const httpc_resp *resp, uint64_t parent, mc_inode *child)
{
    return reply_inode(resp, parent, 0, child);
}

/* The attributes of directory ino in a multi-inode answer. */
static int reply_dir(const httpc_resp *resp, uint64_t ino, fs_attr *out)
{
    mc_inode tmp;
    int rc = reply_inode(resp, 0, ino, &tmp);
    if (rc < 0)
        return rc;
    rc = S_ISDIR(tmp.a.mode) ? 0 : -ENOENT;
    if (rc == 0)
        *out = tmp.a;
    mc_inode_clear(&tmp);
    return rc;
}

int mc_unlink(mc *m, uint64_t parent, const char *name, const uint64_t *released,
              size_t nreleased, mc_inode *child_out)
{
    recw w;
    int retried = 0;
    httpc_resp keep;
    req_init(&w);
    recw_u64(&w, FT_PARENT, parent);
    recw_str(&w, FT_NAME, name);
    for (size_t i = 0; i < nreleased; i++)
        recw_u64(&w, FT_RELEASED, released[i]);
    int rc = mc_post(m, "unlink", &w, NULL, NULL, &keep, &retried);
    recw_free(&w);
    if (child_out)
        memset(child_out, 0, sizeof(*child_out));
    if (rc == 0) {
        if (child_out && reply_child(&keep, parent, child_out) < 0)
            memset(child_out, 0, sizeof(*child_out));
        if (child_out && reply_dir(&keep, parent, &child_out->dirs[0]) == 0)
            child_out->ndirs = 1;
        httpc_resp_free(&keep);
    } else if (rc == -ENOENT && retried) {
        rc = 0;
    }
    return rc;
}

int mc_rmdir(mc *m, uint64_t parent, const char *name)
{
    recw w;
    int retried = 0;
    req_init(&w);
    recw_u64(&w, FT_PARENT, parent);
    recw_str(&w, FT_NAME, name);
    int rc = mc_post(m, "rmdir", &w, NULL, NULL, NULL, &retried);
    recw_free(&w);
    if (rc == -ENOENT && retried)
        rc = 0;
    return rc;
}

int mc_rename(mc *m, uint64_t parent, const char *name, uint64_t newparent,
              const char *newname, uint32_t flags, const uint64_t *released, size_t nreleased,
              mc_inode *moved_out)
{
    recw w;
    httpc_resp keep;
    req_init(&w);
    recw_u64(&w, FT_PARENT, parent);
    recw_str(&w, FT_NAME, name);
    recw_u64(&w, FT_NEWPARENT, newparent);
    recw_str(&w, FT_NEWNAME, newname);
    recw_u64(&w, FT_FLAGS, flags);
    for (size_t i = 0; i < nreleased; i++)
        recw_u64(&w, FT_RELEASED, released[i]);
    int rc = mc_post(m, "rename", &w, NULL, NULL, &keep, NULL);
    recw_free(&w);
    if (moved_out)
        memset(moved_out, 0, sizeof(*moved_out));
    if (rc == 0) {
        /* The moved inode comes first. */
        if (moved_out && reply_child(&keep, 0, moved_out) < 0)
            memset(moved_out, 0, sizeof(*moved_out));
        if (moved_out && moved_out->a.ino) {
            if (reply_dir(&keep, newparent, &moved_out->dirs[0]) == 0)
                moved_out->ndirs = 1;
            if (parent != newparent && moved_out->ndirs == 1 &&
                reply_dir(&keep, parent, &moved_out->dirs[1]) == 0)
                moved_out->ndirs = 2;
        }
        httpc_resp_free(&keep);
    }
    return rc;
}

int mc_readdir(mc *m, uint64_t ino, uint64_t cursor, uint32_t max, mc_dirent **out,
               size_t *n, uint64_t *next, int *eof)
{
    return mc_readdir_vv(m, ino, cursor, max, out, n, next, eof, NULL);
}

int mc_readdir_vv(mc *m, uint64_t ino, uint64_t cursor, uint32_t max, mc_dirent **out,
                  size_t *n, uint64_t *next, int *eof, vv *dir_vv)
{
    recw w;
    httpc_resp resp;
    req_init(&w);
    recw_u64(&w, FT_INO, ino);
    recw_u64(&w, FT_CURSOR, cursor);
    recw_u64(&w, FT_MAX, max);
    *out = NULL;
    *n = 0;
    int rc = mc_post(m, "readdir", &w, NULL, NULL, &resp, NULL);
    recw_free(&w);
    if (rc < 0)
        return rc;
    recr r;
    uint64_t v;
    if (rec_open(&r, resp.body, resp.len) < 0 || rec_get_u64(&r, FT_CURSOR, &v) < 0) {
        rc = CAIRN_EPROTO;
        goto out;
    }
    *next = v;
    *eof = rec_get_u64(&r, FT_EOF, &v) == 0 && v;
    size_t cnt = rec_count(&r, FT_DIRENT);
    if (cnt > FS_READDIR_MAX) {
        rc = CAIRN_EPROTO;
        goto out;
    }
    mc_dirent *d = cnt ? calloc(cnt, sizeof(*d)) : NULL;
    if (cnt && !d) {
        rc = -ENOMEM;
        goto out;
    }
    rec_iter it;
    rec_iter_init(&it);
    uint16_t tag;
    const uint8_t *p;
    size_t len, i = 0;
    while (rec_next(&r, &it, &tag, &p, &len)) {
        if (tag != FT_DIRENT)
            continue;
        recr e;
        if (rec_open(&e, p, len) < 0 || fsrec_get_attr(&e, &d[i].a) < 0 ||
            rec_get_str(&e, FT_NAME, FS_NAME_MAX, &d[i].name) < 0) {
            mc_dirents_free(d, i + 1);
            rc = CAIRN_EPROTO;
            goto out;
        }
        i++;
    }
    *out = d;
    *n = i;
    if (dir_vv) {
        /* The directory's VV as of this page of the listing, from the
         * ETag; none or one that does not parse: unknown (empty). */
        vv_init(dir_vv);
        if (vv_parse(resp.etag, dir_vv) < 0)
            vv_init(dir_vv);
    }
out:
    httpc_resp_free(&resp);
    return rc;
}

int mc_statfs_get(mc *m, mc_statfs *out)
{
    httpc_resp resp;
    int rc = mc_http(m, "GET", "statfs", "/v1/statfs", NULL, NULL, 0, &resp, NULL);
    if (rc < 0)
        return rc;
    rc = status_err(&resp);
    if (rc == 0) {
        recr r;
        memset(out, 0, sizeof(*out));
        if (rec_open(&r, resp.body, resp.len) < 0 || rec_get_u64(&r, FT_TOTAL, &out->total) < 0 ||
            rec_get_u64(&r, FT_FREE, &out->free) < 0) {
            rc = CAIRN_EPROTO;
        } else {
            rec_get_u64(&r, FT_FILES, &out->files);
            rec_get_u64(&r, FT_FFREE, &out->ffree);
            if (rec_get_u64(&r, FT_BSIZE, &out->bsize) < 0 || !out->bsize)
                out->bsize = 4096;
        }
    }
    httpc_resp_free(&resp);
    return rc;
}

static int map_call(mc *m, uint64_t ino, const vv *inm, mc_inode *out, int hold)
{
    recw w;
    char h[VV_TEXT_MAX + 32];
    req_init(&w);
    recw_u64(&w, FT_INO, ino);
    if (hold && mc_session(m))
        recw_u64(&w, FT_OPEN, 1);
    if (inm)
        vv_header(h, sizeof(h), "If-None-Match", inm);
    int rc = mc_post(m, "map", &w, inm ? h : NULL, out, NULL, NULL);
    recw_free(&w);
    if (rc == 0 && !out->hasmap && S_ISREG(out->a.mode)) {
        /* An answer without the map would leave the caller reading holes. */
        mc_inode_clear(out);
        rc = CAIRN_EPROTO;
    }
    return rc;
}

int mc_map(mc *m, uint64_t ino, const vv *inm, mc_inode *out)
{
    return map_call(m, ino, inm, out, 0);
}

int mc_map_open(mc *m, uint64_t ino, const vv *inm, mc_inode *out)
{
    return map_call(m, ino, inm, out, 1);
}

int mc_commit(mc *m, const mc_commit_in *in, mc_inode *out)
{
    recw w;
    char h[VV_TEXT_MAX + 32];
    req_init(&w);
    recw_u64(&w, FT_INO, in->ino);
    for (size_t i = 0; i < in->nslots; i++)
        fsrec_put_slot(&w, &in->slots[i]);
    recw_u64(&w, FT_SIZE, in->size);
    recw_i64(&w, FT_MTIME, in->mtime);
    if (in->has_atime)
        recw_i64(&w, FT_ATIME, in->atime);
    if (in->has_mode)
        recw_u64(&w, FT_MODE, in->mode & 07777);
    if (in->set_inline)
        recw_bytes(&w, FT_INLINE, in->inl, in->inl_len);
    if (in->clear_inline)
        recw_u64(&w, FT_CLEAR_INLINE, 1);
    vv_header(h, sizeof(h), "If-Match", in->if_match);
    int rc = mc_post(m, "commit", &w, h, out, NULL, NULL);
    recw_free(&w);
    return rc;
}

int mc_xattr_get(mc *m, uint64_t ino, const char *name, uint8_t **val, size_t *len)
{
    recw w;
    httpc_resp resp;
    req_init(&w);
    recw_u64(&w, FT_INO, ino);
    recw_str(&w, FT_NAME, name);
    int rc = mc_post(m, "xattr_get", &w, NULL, NULL, &resp, NULL);
    recw_free(&w);
    if (rc < 0)
        return rc;
    recr r;
    const uint8_t *p;
    size_t n;
    if (rec_open(&r, resp.body, resp.len) < 0 || rec_get_bytes(&r, FT_VALUE, &p, &n) < 0 ||
        n > FS_XATTR_VALUE_MAX) {
        rc = CAIRN_EPROTO;
    } else {
        *val = malloc(n ? n : 1);
        if (!*val) {
            rc = -ENOMEM;
        } else {
            memcpy(*val, p, n);
            *len = n;
        }
    }
    httpc_resp_free(&resp);
    return rc;
}

int mc_xattr_set(mc *m, uint64_t ino, const char *name, const void *val, size_t len,
                 uint32_t flags)
{
    recw w;
    req_init(&w);
    recw_u64(&w, FT_INO, ino);
    recw_str(&w, FT_NAME, name);
    recw_bytes(&w, FT_VALUE, val, len);
    recw_u64(&w, FT_FLAGS, flags);
    int rc = mc_post(m, "xattr_set", &w, NULL, NULL, NULL, NULL);
    recw_free(&w);
    return rc;
}

int mc_xattr_list(mc *m, uint64_t ino, char **names, size_t *len)
{
    recw w;
    httpc_resp resp;
    req_init(&w);
    recw_u64(&w, FT_INO, ino);
    int rc = mc_post(m, "xattr_list", &w, NULL, NULL, &resp, NULL);
    recw_free(&w);
    if (rc < 0)
        return rc;
    recr r;
    buf b = {0};
    if (rec_open(&r, resp.body, resp.len) < 0) {
        rc = CAIRN_EPROTO;
        goto out;
    }
    rec_iter it;
    rec_iter_init(&it);
    uint16_t tag;
    const uint8_t *p;
    size_t n;
    while (rec_next(&r, &it, &tag, &p, &n)) {
        if (tag != FT_NAME)
            continue;
        if (n == 0 || n > FS_XATTR_NAME_MAX || memchr(p, 0, n) || b.len + n + 1 > FS_XATTR_LIST_MAX) {
            rc = CAIRN_EPROTO;
            goto out;
        }
        buf_append(&b, p, n);
        buf_append(&b, "", 1);
    }
    *len = b.len;
    *names = b.len ? (char *)buf_steal(&b, len) : NULL;
out:
    buf_free(&b);
    httpc_resp_free(&resp);
    return rc;
}

int mc_xattr_remove(mc *m, uint64_t ino, const char *name)
{
    recw w;
    req_init(&w);
    recw_u64(&w, FT_INO, ino);
    recw_str(&w, FT_NAME, name);
    int rc = mc_post(m, "xattr_remove", &w, NULL, NULL, NULL, NULL);
    recw_free(&w);
    return rc;
}

int mc_cluster_get(mc *m, mc_cluster *out)
{
    httpc_resp resp;
    memset(out, 0, sizeof(*out));
    int rc = mc_http(m, "GET", "cluster", "/v1/cluster", NULL, NULL, 0, &resp, NULL);
    if (rc < 0)
        return rc;
    rc = status_err(&resp);
    if (rc < 0)
        goto out;
    recr r;
    if (rec_open(&r, resp.body, resp.len) < 0 || rec_get_u64(&r, FT_EPOCH, &out->epoch) < 0) {
        rc = CAIRN_EPROTO;
        goto out;
    }
    size_t cnt = rec_count(&r, FT_SERVER);
    if (cnt > 65536) {
        rc = CAIRN_EPROTO;
        goto out;
    }
    out->servers = cnt ? calloc(cnt, sizeof(mc_server)) : NULL;
    if (cnt && !out->servers) {
        rc = -ENOMEM;
        goto out;
    }
    rec_iter it;
    rec_iter_init(&it);
    uint16_t tag;
    const uint8_t *p;
    size_t n;
    while (rec_next(&r, &it, &tag, &p, &n)) {
        if (tag != FT_SERVER)
            continue;
        recr s;
        uint64_t id, st = SERVER_UP;
        const uint8_t *ap;
        size_t al;
        mc_server *sv = &out->servers[out->n];
        if (rec_open(&s, p, n) < 0 || rec_get_u64(&s, FT_SID, &id) < 0 ||
            rec_get_bytes(&s, FT_ADDR, &ap, &al) < 0 || al == 0 || al >= sizeof(sv->addr) ||
            memchr(ap, 0, al)) {
            rc = CAIRN_EPROTO;
            mc_cluster_clear(out);
            goto out;
        }
        sv->id = (uint32_t)id;
        memcpy(sv->addr, ap, al);
        sv->addr[al] = 0;
        rec_get_u64(&s, FT_CAPACITY, &sv->capacity);
        rec_get_u64(&s, FT_USED, &sv->used);
        rec_get_u64(&s, FT_CHUNKS, &sv->chunks);
        rec_get_u64(&s, FT_STATE, &st);
        sv->state = (uint32_t)st;
        out->n++;
    }
    note_epoch(m, out->epoch);
out:
    httpc_resp_free(&resp);
    return rc;
}

int mc_refs(mc *m, const uint8_t (*ids)[CHUNK_ID_LEN], size_t n, uint8_t *bits)
{
    recw w;
    httpc_resp resp;
    recw_init(&w, FSREC_IDS);
    for (size_t i = 0; i < n; i++)
        recw_bytes(&w, FT_ID, ids[i], CHUNK_ID_LEN);
    int rc = mc_post(m, "refs", &w, NULL, NULL, &resp, NULL);
    recw_free(&w);
    if (rc < 0)
        return rc;
    recr r;
    const uint8_t *p;
    size_t len;
    if (rec_open(&r, resp.body, resp.len) < 0 || rec_get_bytes(&r, FT_BITS, &p, &len) < 0 ||
        len != n)
        rc = CAIRN_EPROTO;
    else
        memcpy(bits, p, n);
    httpc_resp_free(&resp);
    return rc;
}

/* ---- sessions ---- */

void mc_set_session(mc *m, uint64_t sid) { __atomic_store_n(&m->session, sid, __ATOMIC_RELEASE); }
uint64_t mc_session(mc *m) { return __atomic_load_n(&m->session, __ATOMIC_ACQUIRE); }

/* POST a session op; on success decode FT_LEASE_MS / FT_SESSION if asked. */
static int session_call(mc *m, const char *op, recw *w, uint64_t *sid, uint64_t *lease_ms)
{
    httpc_resp resp;
    int rc = mc_post(m, op, w, NULL, NULL, &resp, NULL);
    if (rc < 0)
        return rc;
    recr r;
    if (rec_open(&r, resp.body, resp.len) < 0) {
        rc = CAIRN_EPROTO;
    } else {
        if (sid && rec_get_u64(&r, FT_SESSION, sid) < 0)
            rc = CAIRN_EPROTO;
        if (lease_ms && rec_get_u64(&r, FT_LEASE_MS, lease_ms) < 0)
            rc = CAIRN_EPROTO;
    }
    httpc_resp_free(&resp);
    return rc;
}

int mc_session_new(mc *m, const char *client, uint64_t *sid, uint64_t *lease_ms)
{
    recw w;
    req_init(&w);
    recw_str(&w, FT_CLIENT, client);
    int rc = session_call(m, "session_new", &w, sid, lease_ms);
    recw_free(&w);
    return rc;
}

int mc_session_renew(mc *m, uint64_t sid, const uint64_t *released, size_t n, uint64_t *lease_ms)
{
    recw w;
    req_init(&w);
    recw_u64(&w, FT_SESSION, sid);
    for (size_t i = 0; i < n; i++)
        recw_u64(&w, FT_INO, released[i]);
    int rc = session_call(m, "session_renew", &w, NULL, lease_ms);
    recw_free(&w);
    return rc;
}

int mc_session_hold(mc *m, uint64_t sid, const uint64_t *inos, size_t n)
{
    recw w;
    req_init(&w);
    recw_u64(&w, FT_SESSION, sid);
    for (size_t i = 0; i < n; i++)
        recw_u64(&w, FT_INO, inos[i]);
    int rc = session_call(m, "session_hold", &w, NULL, NULL);
    recw_free(&w);
    return rc;
}

int mc_session_end(mc *m, uint64_t sid)
{
    recw w;
    req_init(&w);
    recw_u64(&w, FT_SESSION, sid);
    int rc = session_call(m, "session_end", &w, NULL, NULL);
    recw_free(&w);
    return rc;
}
