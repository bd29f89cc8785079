/*
 * srv_metad_session.c — drives a real cairn-metad over HTTP on 127.0.0.1:
 * client sessions, files unlinked while open (orphans), the change feed
 * and cluster administration (drain, undrain, remove, FULL servers).
 *
 * Every case starts its own server in its own temp dir (most need a short
 * --session-lease or --heartbeat-timeout). Every wait is bounded and polls
 * a condition; short leases make expiry observable in about a second.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/fsrec.h"
#include "common/hash.h"
#include "common/httpc.h"
#include "common/rec.h"
#include "common/util.h"
#include "common/vv.h"
#include "tests/lib/harness.h"

#define ROOT FS_ROOT_INO
#define STOP_MS 20000
#define WAIT_MS 15000
#define GIB (1ull << 30)
#define MIB (1ull << 20)

static httpc *g_http;

typedef struct srv {
    char *dir;
    proc p;
} srv;

/* The server the helpers talk to. */
static srv *g_s;

static void srv_start(srv *s, const char *tag, const char *const *extra)
{
    if (tag)
        s->dir = tmpdir_make(tag);
    assert_non_null(s->dir);
    assert_int_equal(start_metad(&s->p, s->dir, extra), 0);
    g_s = s;
}

static void srv_restart(srv *s, const char *const *extra, int crash)
{
    if (crash) {
        proc_kill9(&s->p);
    } else {
        int st = proc_stop(&s->p, STOP_MS);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    srv_start(s, NULL, extra);
}

static void srv_done(srv *s)
{
    int st = proc_stop(&s->p, STOP_MS);

    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    tmpdir_remove(s->dir);
    free(s->dir);
    g_s = NULL;
}

/* ------------------------------------------------------------------ */
/* requests */

typedef struct rsp {
    httpc_resp h;
    recr r;
    int has_rec;
    int err;            /* 0 for 2xx, else the negative code the client sees */
} rsp;

static void rsp_free(rsp *r)
{
    httpc_resp_free(&r->h);
    memset(r, 0, sizeof(*r));
}

/* POST w (or GET with w == NULL) to path; frees w. hdr: one optional
 * "Name: value" header. */
static void call(const char *path, recw *w, const char *hdr, rsp *out)
{
    char url[256];
    const char *hdrs[2] = {hdr, NULL};
    const uint8_t *body = NULL;
    size_t len = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    snprintf(url, sizeof(url), "%s%s", g_s->p.url, path);
    if (w)
        body = recw_finish(w, &len);
    rc = httpc_do(g_http, w ? "POST" : "GET", url, hdr ? hdrs : NULL, body, len, 20000, &out->h);
    if (w)
        recw_free(w);
    assert_int_equal(rc, 0);
    out->err = out->h.status >= 200 && out->h.status < 300
                   ? 0
                   : cairn_http_to_err(out->h.status, out->h.errname[0] ? out->h.errname : NULL);
    if (out->h.len && rec_open(&out->r, out->h.body, out->h.len) == 0)
        out->has_rec = 1;
}

/* Call and keep only the error. */
static int call_err(const char *path, recw *w, const char *hdr)
{
    rsp r;
    int err;

    call(path, w, hdr, &r);
    err = r.err;
    rsp_free(&r);
    return err;
}

static void session_hdr(uint64_t sid, char *out, size_t cap)
{
    snprintf(out, cap, "Cairn-Session: %" PRIu64, sid);
}

static void rsp_attr(const rsp *r, fs_attr *a)
{
    assert_true(r->has_rec);
    assert_int_equal(r->r.type, FSREC_INODE);
    assert_int_equal(fsrec_get_attr(&r->r, a), 0);
}

/* create(2) of a regular file; with sid != 0 also held open by it. */
static uint64_t create_file(uint64_t parent, const char *name, uint64_t sid)
{
    recw w;
    rsp r;
    fs_attr a;
    char hdr[64];

    recw_init(&w, FSREC_REQ);
    recw_u64(&w, FT_PARENT, parent);
    recw_str(&w, FT_NAME, name);
    recw_u64(&w, FT_MODE, S_IFREG | 0644);
    if (sid) {
        recw_u64(&w, FT_OPEN, 1);
        session_hdr(sid, hdr, sizeof(hdr));
    }
    call("/v1/create", &w, sid ? hdr : NULL, &r);
    assert_int_equal(r.err, 0);
    rsp_attr(&r, &a);
    rsp_free(&r);
    return a.ino;
}

static int getattr(uint64_t ino, fs_attr *out)
{
    recw w;
    rsp r;
    int err;

    recw_init(&w, FSREC_REQ);
    recw_u64(&w, FT_INO, ino);
    call("/v1/getattr", &w, NULL, &r);
    err = r.err;
    if (!err && out)
        rsp_attr(&r, out);
    rsp_free(&r);
    return err;
}

static int lookup(uint64_t parent, const char *name)
{
    recw w;

    recw_init(&w, FSREC_REQ);
    recw_u64(&w, FT_PARENT, parent);
    recw_str(&w, FT_NAME, name);
    return call_err("/v1/lookup", &w, NULL);
}

/* map; with sid != 0 and open, the map also holds the file. Returns the
 * number of slots (or the negative error). */
static int map(uint64_t ino, uint64_t sid, fs_attr *attr)
{
    recw w;
    rsp r;
    char hdr[64];
    int n;

    recw_init(&w, FSREC_REQ);
    recw_u64(&w, FT_INO, ino);
    if (sid) {
        recw_u64(&w, FT_OPEN, 1);
        session_hdr(sid, hdr, sizeof(hdr));
    }
    call("/v1/map", &w, sid ? hdr : NULL, &r);
    if (r.err) {
        n = r.err;
    } else {
        assert_true(rec_has(&r.r, FT_HASMAP));
        if (attr)
            rsp_attr(&r, attr);
        n = (int)rec_count(&r.r, FT_SLOT);
    }
    rsp_free(&r);
    return n;
}

static void fill_id(uint8_t id[CHUNK_ID_LEN], unsigned seed)
{
    char s[32];

    snprintf(s, sizeof(s), "session-chunk-%u", seed);
    sha256(s, strlen(s), id);
}

/* Commit one full 4 MiB chunk (seed) at slot index on top of version v. */
static int commit(uint64_t ino, const vv *v, uint64_t index, unsigned seed, uint64_t size)
{
    recw w;
    char t[VV_TEXT_MAX], hdr[VV_TEXT_MAX + 16];
    fs_slot s = {.index = index, .len = 4u << 20};

    fill_id(s.id, seed);
    recw_init(&w, FSREC_REQ);
    recw_u64(&w, FT_INO, ino);
    recw_u64(&w, FT_SIZE, size);
    fsrec_put_slot(&w, &s);
    vv_format(v, t, sizeof(t));
    snprintf(hdr, sizeof(hdr), "If-Match: \"%s\"", t);
    return call_err("/v1/commit", &w, hdr);
}

static int referenced(unsigned seed)
{
    recw w;
    rsp r;
    uint8_t id[CHUNK_ID_LEN];
    const uint8_t *bits;
    size_t n;
    int v;

    fill_id(id, seed);
    recw_init(&w, FSREC_IDS);
    recw_bytes(&w, FT_ID, id, CHUNK_ID_LEN);
    call("/v1/refs", &w, NULL, &r);
    assert_int_equal(r.err, 0);
    assert_int_equal(rec_get_bytes(&r.r, FT_BITS, &bits, &n), 0);
    assert_int_equal(n, 1);
    v = bits[0];
    rsp_free(&r);
    return v;
}

/* unlink; *child gets the child's attributes after the change. */
static int unlink_name(uint64_t parent, const char *name, fs_attr *child)
{
    recw w;
    rsp r;
    recr x;
    rec_iter it;
    uint16_t tag;
    const uint8_t *p;
    size_t n;
    int err, k = 0;

    recw_init(&w, FSREC_REQ);
    recw_u64(&w, FT_PARENT, parent);
    recw_str(&w, FT_NAME, name);
    call("/v1/unlink", &w, NULL, &r);
    err = r.err;
    if (!err && child) {
        rec_iter_init(&it);
        while (rec_next(&r.r, &it, &tag, &p, &n))
            if (tag == FT_INODE && k++ == 1) {
                assert_int_equal(rec_open(&x, p, n), 0);
                assert_int_equal(fsrec_get_attr(&x, child), 0);
            }
        assert_int_equal(k, 2);
    }
    rsp_free(&r);
    return err;
}

static int rename_over(uint64_t parent, const char *from, const char *to)
{
    recw w;

    recw_init(&w, FSREC_REQ);
    recw_u64(&w, FT_PARENT, parent);
    recw_str(&w, FT_NAME, from);
    recw_u64(&w, FT_NEWPARENT, parent);
    recw_str(&w, FT_NEWNAME, to);
    return call_err("/v1/rename", &w, NULL);
}

/* ---- sessions ---- */

static uint64_t session_new(uint64_t *lease)
{
    recw w;
    rsp r;
    uint64_t sid, l;

    recw_init(&w, FSREC_REQ);
    recw_str(&w, FT_CLIENT, "testhost:4242");
    call("/v1/session_new", &w, NULL, &r);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.r.type, FSREC_REPLY);
    assert_int_equal(rec_get_u64(&r.r, FT_SESSION, &sid), 0);
    assert_int_equal(rec_get_u64(&r.r, FT_LEASE_MS, &l), 0);
    assert_true(sid != 0);
    if (lease)
        *lease = l;
    rsp_free(&r);
    return sid;
}

/* session_renew / session_hold with n inos; session_end with n == 0. */
static int session_op(const char *op, uint64_t sid, const uint64_t *inos, size_t n)
{
    recw w;
    rsp r;
    uint64_t l;
    int err;

    recw_init(&w, FSREC_REQ);
    recw_u64(&w, FT_SESSION, sid);
    for (size_t i = 0; i < n; i++)
        recw_u64(&w, FT_INO, inos[i]);
    call(op, &w, NULL, &r);
    err = r.err;
    if (!err) {
        assert_true(r.has_rec);
        assert_int_equal(r.r.type, FSREC_REPLY);
        if (strcmp(op, "/v1/session_end") != 0) {
            assert_int_equal(rec_get_u64(&r.r, FT_LEASE_MS, &l), 0);
            assert_true(l > 0);
        }
    }
    rsp_free(&r);
    return err;
}

static int renew(uint64_t sid, const uint64_t *released, size_t n)
{
    return session_op("/v1/session_renew", sid, released, n);
}

static int hold(uint64_t sid, const uint64_t *inos, size_t n)
{
    return session_op("/v1/session_hold", sid, inos, n);
}

static int end_session(uint64_t sid)
{
    return session_op("/v1/session_end", sid, NULL, 0);
}

/* A gauge or counter from /metrics (exact line name incl. labels). */
static double metric(const char *name)
{
    rsp r;

    call("/metrics", NULL, NULL, &r);
    assert_int_equal(r.err, 0);
    double v = metrics_find(r.h.body, r.h.len, name);
    rsp_free(&r);
    assert_true(v >= 0);
    return v;
}

static uint64_t g_wait_ino;
static int ino_gone(void *ctx)
{
    (void)ctx;
    return getattr(g_wait_ino, NULL) == -ENOENT;
}

/* ------------------------------------------------------------------ */
/* sessions */

static void test_session_lifecycle(void **state)
{
    (void)state;
    srv s = {0};
    const char *extra[] = {"--session-lease", "1s", NULL};
    uint64_t a, b, lease, ino;
    int64_t t0;
    recw w;

    srv_start(&s, "sess-life", extra);
    a = session_new(&lease);
    assert_int_equal(lease, 1000);
    b = session_new(NULL);
    assert_true(a != b);
    assert_int_equal(metric("cairn_metad_sessions"), 2);
    ino = create_file(ROOT, "f", 0);
    /* Renewing in time keeps a session for longer than its lease. */
    t0 = now_mono_ms();
    while (now_mono_ms() - t0 < 1600) {
        assert_int_equal(renew(a, NULL, 0), 0);
        usleep(200 * 1000);
    }
    assert_int_equal(hold(a, &ino, 1), 0);
    /* b was never renewed: it expired, and says so with 404 ENOENT. */
    assert_int_equal(renew(b, NULL, 0), -ENOENT);
    assert_int_equal(hold(b, &ino, 1), -ENOENT);
    assert_int_equal(end_session(b), -ENOENT);
    assert_int_equal(metric("cairn_metad_sessions"), 1);
    /* Holding an inode that does not exist is ignored. */
    {
        uint64_t v[2] = {ino, 999999};
        assert_int_equal(hold(a, v, 2), 0);
    }
    assert_int_equal(metric("cairn_metad_session_holds"), 1);
    /* A clean end; then the id is unknown. */
    assert_int_equal(end_session(a), 0);
    assert_int_equal(renew(a, NULL, 0), -ENOENT);
    assert_int_equal(metric("cairn_metad_sessions"), 0);
    assert_true(metric("cairn_metad_sessions_expired_total") >= 1);
    /* Malformed requests. */
    recw_init(&w, FSREC_REQ);
    assert_int_equal(call_err("/v1/session_renew", &w, NULL), -EINVAL);
    recw_init(&w, FSREC_REQ);
    recw_u64(&w, FT_SESSION, a);
    recw_bytes(&w, FT_INO, "abc", 3);
    assert_int_equal(call_err("/v1/session_hold", &w, NULL), -EINVAL);
    recw_init(&w, FSREC_IDS);
    assert_int_equal(call_err("/v1/session_new", &w, NULL), -EINVAL);
    /* FT_OPEN with a bad session header is refused; without one, ignored. */
    recw_init(&w, FSREC_REQ);
    recw_u64(&w, FT_INO, ino);
    recw_u64(&w, FT_OPEN, 1);
    assert_int_equal(call_err("/v1/map", &w, "Cairn-Session: nope"), -EINVAL);
    recw_init(&w, FSREC_REQ);
    recw_u64(&w, FT_INO, ino);
    recw_u64(&w, FT_OPEN, 1);
    assert_int_equal(call_err("/v1/map", &w, NULL), 0);
    /* An unknown (e.g. expired) session in the header: the map works. */
    assert_int_equal(map(ino, 12345, NULL), 0);
    srv_done(&s);
}

/* ------------------------------------------------------------------ */
/* the change feed */

#define FEED_MAX 64

typedef struct feedans {
    uint64_t feed, seq;
    int gap;
    size_t n;
    uint64_t ino[FEED_MAX];       /* the inode, or the parent of a name */
    char name[FEED_MAX][32];      /* "" for an inode record */
} feedans;

/* POST /v1/changes; 0 with the answer decoded, or the error. */
static int feed_read(uint64_t feed, uint64_t since, uint64_t wait_ms, uint64_t sid,
                     feedans *out)
{
    recw w;
    rsp r;
    char hdr[64];
    rec_iter it;
    uint16_t tag;
    const uint8_t *p;
    size_t len;
    uint64_t gap = 0;

    memset(out, 0, sizeof(*out));
    recw_init(&w, FSREC_REQ);
    recw_u64(&w, FT_FEED, feed);
    recw_u64(&w, FT_SEQ, since);
    recw_u64(&w, FT_WAIT_MS, wait_ms);
    if (sid)
        session_hdr(sid, hdr, sizeof(hdr));
    call("/v1/changes", &w, sid ? hdr : NULL, &r);
    if (r.err) {
        int err = r.err;
        rsp_free(&r);
        return err;
    }
    assert_true(r.has_rec);
    assert_int_equal(r.r.type, FSREC_REPLY);
    assert_int_equal(rec_get_u64(&r.r, FT_FEED, &out->feed), 0);
    assert_int_equal(rec_get_u64(&r.r, FT_SEQ, &out->seq), 0);
    if (rec_has(&r.r, FT_GAP))
        assert_int_equal(rec_get_u64(&r.r, FT_GAP, &gap), 0);
    out->gap = gap == 1;
    rec_iter_init(&it);
    while (rec_next(&r.r, &it, &tag, &p, &len)) {
        recr x;
        const uint8_t *np;
        size_t nl;
        if (tag != FT_CHANGE)
            continue;
        assert_true(out->n < FEED_MAX);
        assert_int_equal(rec_open(&x, p, len), 0);
        if (rec_get_u64(&x, FT_INO, &out->ino[out->n]) < 0) {
            assert_int_equal(rec_get_u64(&x, FT_PARENT, &out->ino[out->n]), 0);
            assert_int_equal(rec_get_bytes(&x, FT_NAME, &np, &nl), 0);
            assert_true(nl > 0 && nl < 32);
            memcpy(out->name[out->n], np, nl);
        }
        out->n++;
    }
    rsp_free(&r);
    return 0;
}

/* Whether the answer names parent/name, or inode ino (name NULL). */
static int feed_has(const feedans *a, uint64_t ino, const char *name)
{
    for (size_t i = 0; i < a->n; i++) {
        if (a->ino[i] == ino && strcmp(a->name[i], name ? name : "") == 0)
            return 1;
    }
    return 0;
}

typedef struct feed_bg {
    uint64_t feed, since, wait_ms, sid;
    feedans ans;
    int rc;
    int64_t took_ms;
} feed_bg;

static void *feed_bg_main(void *arg)
{
    feed_bg *b = arg;
    int64_t t0 = now_mono_ms();

    b->rc = feed_read(b->feed, b->since, b->wait_ms, b->sid, &b->ans);
    b->took_ms = now_mono_ms() - t0;
    return NULL;
}

/* Wait until metad has n readers waiting (bounded). */
static void feed_wait_readers(double n)
{
    int64_t t0 = now_mono_ms();

    while (metric("cairn_metad_change_readers") < n) {
        assert_true(now_mono_ms() - t0 < WAIT_MS);
        usleep(10 * 1000);
    }
}

static void test_change_feed(void **state)
{
    (void)state;
    srv s = {0};
    const char *extra[] = {"--change-log", "16", NULL};
    uint64_t a, b, F, S, x;
    feedans f;
    feed_bg bg;
    pthread_t t;
    recw w;
    char hdr[64];

    srv_start(&s, "feed", extra);
    a = session_new(NULL);
    b = session_new(NULL);
    /* Position 0 (a new reader) is a gap that says where to start. */
    assert_int_equal(feed_read(0, 0, 0, b, &f), 0);
    assert_true(f.gap && f.feed != 0 && f.n == 0);
    F = f.feed;
    S = f.seq;
    /* Nothing happened: an answer at once, or after the wait, with nothing. */
    assert_int_equal(feed_read(F, S, 0, b, &f), 0);
    assert_true(!f.gap && f.n == 0 && f.seq == S && f.feed == F);

    /* A create by session a: the name, the new inode and the directory. */
    x = create_file(ROOT, "x", a);
    assert_int_equal(feed_read(F, S, 0, b, &f), 0);
    assert_false(f.gap);
    assert_int_equal(f.n, 3);
    assert_true(feed_has(&f, ROOT, "x") && feed_has(&f, x, NULL) && feed_has(&f, ROOT, NULL));
    assert_int_equal(f.seq, S + 3);
    /* Without a session a reader gets the same records; session a gets
     * none of its own, and moves past them. */
    assert_int_equal(feed_read(F, S, 0, 0, &f), 0);
    assert_int_equal(f.n, 3);
    assert_int_equal(feed_read(F, S, 300, a, &f), 0);
    assert_true(!f.gap && f.n == 0 && f.seq == S + 3);
    S += 3;

    /* A waiting reader of session b is answered by a's change. */
    bg = (feed_bg){.feed = F, .since = S, .wait_ms = 20000, .sid = b};
    assert_int_equal(pthread_create(&t, NULL, feed_bg_main, &bg), 0);
    feed_wait_readers(1);
    create_file(ROOT, "y", a);
    pthread_join(t, NULL);
    assert_int_equal(bg.rc, 0);
    assert_true(feed_has(&bg.ans, ROOT, "y"));
    assert_true(bg.took_ms < 15000);
    S = bg.ans.seq;

    /* A waiting reader of session a is not answered by a's own change,
     * but at once when a asks for it (unmount). */
    bg = (feed_bg){.feed = F, .since = S, .wait_ms = 30000, .sid = a};
    assert_int_equal(pthread_create(&t, NULL, feed_bg_main, &bg), 0);
    feed_wait_readers(1);
    create_file(ROOT, "z", a);
    usleep(300 * 1000);
    assert_int_equal(metric("cairn_metad_change_readers"), 1);
    recw_init(&w, FSREC_REQ);
    recw_u64(&w, FT_FLAGS, CHANGES_KICK);
    session_hdr(a, hdr, sizeof(hdr));
    assert_int_equal(call_err("/v1/changes", &w, hdr), 0);
    pthread_join(t, NULL);
    assert_int_equal(bg.rc, 0);
    assert_int_equal(bg.ans.n, 0);
    assert_true(bg.took_ms < 25000);
    /* b still gets z. */
    assert_int_equal(feed_read(F, S, 0, b, &f), 0);
    assert_true(feed_has(&f, ROOT, "z"));
    S = f.seq;

    /* Access times written behind by session a: its own change too. */
    {
        fs_attr xa;
        recw item;
        assert_int_equal(getattr(x, &xa), 0);
        recw_init(&w, FSREC_REQ);
        recw_init(&item, FSREC_REQ);
        recw_u64(&item, FT_INO, x);
        recw_i64(&item, FT_ATIME, xa.atime + 1000000000LL);
        recw_i64(&item, FT_CTIME, xa.ctime);
        fsrec_put_vv(&item, FT_VV, &xa.vv);
        recw_rec(&w, FT_INODE, &item);
        recw_free(&item);
        assert_int_equal(call_err("/v1/atimes", &w, hdr), 0);
        assert_int_equal(feed_read(F, S, 0, a, &f), 0);
        assert_true(!f.gap && f.n == 0);
        assert_int_equal(feed_read(F, S, 0, b, &f), 0);
        assert_true(feed_has(&f, x, NULL));
        S = f.seq;
    }

    /* Bad requests change nothing and say so. */
    recw_init(&w, FSREC_REQ);
    recw_u64(&w, FT_WAIT_MS, 60001);
    assert_int_equal(call_err("/v1/changes", &w, NULL), -EINVAL);
    recw_init(&w, FSREC_REQ);
    assert_int_equal(call_err("/v1/changes", &w, "Cairn-Session: nope"), -EINVAL);
    recw_init(&w, FSREC_REQ);
    recw_u64(&w, FT_FLAGS, CHANGES_KICK);
    assert_int_equal(call_err("/v1/changes", &w, NULL), -EINVAL);
    recw_init(&w, FSREC_REQ);
    recw_u64(&w, FT_FLAGS, 2);
    assert_int_equal(call_err("/v1/changes", &w, hdr), -EINVAL);
    recw_init(&w, FSREC_DIRLIST);
    assert_int_equal(call_err("/v1/changes", &w, NULL), -EINVAL);

    /* Another feed id, or a position past the end: a gap. */
    assert_int_equal(feed_read(F + 1, S, 0, b, &f), 0);
    assert_true(f.gap && f.feed == F && f.seq == S);
    assert_int_equal(feed_read(F, S + 100, 0, b, &f), 0);
    assert_true(f.gap && f.seq == S);
    /* Records older than the log keeps (16): a gap. */
    for (int i = 0; i < 8; i++) {
        char nm[16];
        snprintf(nm, sizeof(nm), "g%d", i);
        create_file(ROOT, nm, a);
    }
    assert_int_equal(feed_read(F, S, 0, b, &f), 0);
    assert_true(f.gap && f.n == 0 && f.seq == S + 24);
    assert_true(metric("cairn_metad_change_gaps_total") >= 4);

    /* A restarted metad is another feed. */
    srv_restart(&s, extra, 0);
    assert_int_equal(feed_read(F, S + 24, 0, b, &f), 0);
    assert_true(f.gap && f.feed != F);
    srv_done(&s);
}

/* ------------------------------------------------------------------ */
/* orphans */

static void test_orphan_until_released(void **state)
{
    (void)state;
    srv s = {0};
    uint64_t sid, ino, other;
    fs_attr a, c;
    recw w;
    char val[8];
    rsp r;

    srv_start(&s, "sess-orphan", NULL);
    sid = session_new(NULL);
    ino = create_file(ROOT, "open", sid);
    assert_int_equal(getattr(ino, &a), 0);
    assert_int_equal(commit(ino, &a.vv, 0, 1, 4u << 20), 0);
    assert_true(referenced(1));
    /* unlink: the name goes, the inode stays (nlink 0). */
    assert_int_equal(unlink_name(ROOT, "open", &c), 0);
    assert_int_equal(c.ino, ino);
    assert_int_equal(c.nlink, 0);
    assert_int_equal(lookup(ROOT, "open"), -ENOENT);
    assert_int_equal(getattr(ino, &a), 0);
    assert_int_equal(a.nlink, 0);
    assert_int_equal(metric("cairn_metad_orphans"), 1);
    /* Readable and writable by ino; its chunks stay referenced. */
    assert_int_equal(map(ino, 0, NULL), 1);
    assert_true(referenced(1));
    assert_int_equal(commit(ino, &a.vv, 1, 2, 8u << 20), 0);
    assert_int_equal(map(ino, 0, &a), 2);
    assert_int_equal(a.size, 8u << 20);
    assert_true(referenced(2));
    recw_init(&w, FSREC_REQ);
    recw_u64(&w, FT_INO, ino);
    recw_str(&w, FT_NAME, "user.k");
    recw_bytes(&w, FT_VALUE, "v1", 2);
    assert_int_equal(call_err("/v1/xattr_set", &w, NULL), 0);
    recw_init(&w, FSREC_REQ);
    recw_u64(&w, FT_INO, ino);
    recw_str(&w, FT_NAME, "user.k");
    call("/v1/xattr_get", &w, NULL, &r);
    assert_int_equal(r.err, 0);
    {
        const uint8_t *p;
        size_t n;
        assert_int_equal(rec_get_bytes(&r.r, FT_VALUE, &p, &n), 0);
        assert_int_equal(n, 2);
        memcpy(val, p, 2);
        assert_memory_equal(val, "v1", 2);
    }
    rsp_free(&r);
    recw_init(&w, FSREC_REQ);
    recw_u64(&w, FT_INO, ino);
    recw_u64(&w, FT_VALID, SA_MODE);
    recw_u64(&w, FT_MODE, 0600);
    assert_int_equal(call_err("/v1/setattr", &w, NULL), 0);
    /* It cannot get a name again. */
    recw_init(&w, FSREC_REQ);
    recw_u64(&w, FT_INO, ino);
    recw_u64(&w, FT_NEWPARENT, ROOT);
    recw_str(&w, FT_NEWNAME, "back");
    assert_int_equal(call_err("/v1/link", &w, NULL), -ENOENT);
    /* A renew that releases another inode changes nothing. */
    other = create_file(ROOT, "other", 0);
    assert_int_equal(renew(sid, &other, 1), 0);
    assert_int_equal(getattr(ino, NULL), 0);
    /* The renew that releases it frees it, chunks and all, at once. */
    assert_int_equal(renew(sid, &ino, 1), 0);
    assert_int_equal(getattr(ino, NULL), -ENOENT);
    assert_false(referenced(1));
    assert_false(referenced(2));
    assert_int_equal(metric("cairn_metad_orphans"), 0);
    assert_int_equal(metric("cairn_metad_orphans_freed_total"), 1);
    assert_int_equal(metric("cairn_metad_ops_applied_total{op=\"orphan_free\"}"), 1);
    srv_done(&s);
}

static void test_orphan_two_holders_and_end(void **state)
{
    (void)state;
    srv s = {0};
    uint64_t a, b, ino, ino2;
    fs_attr at;

    srv_start(&s, "sess-two", NULL);
    a = session_new(NULL);
    b = session_new(NULL);
    ino = create_file(ROOT, "shared", 0);
    /* Both open it through map with FT_OPEN. */
    assert_int_equal(map(ino, a, &at), 0);
    assert_int_equal(map(ino, b, NULL), 0);
    assert_int_equal(commit(ino, &at.vv, 0, 10, 4u << 20), 0);
    /* Rename over it: the replaced file becomes the orphan. */
    ino2 = create_file(ROOT, "new", 0);
    assert_int_equal(rename_over(ROOT, "new", "shared"), 0);
    assert_int_equal(getattr(ino, &at), 0);
    assert_int_equal(at.nlink, 0);
    assert_true(referenced(10));
    /* One holder leaves: still there. */
    assert_int_equal(end_session(a), 0);
    assert_int_equal(getattr(ino, NULL), 0);
    assert_true(referenced(10));
    /* The other one leaves: freed. */
    assert_int_equal(end_session(b), 0);
    assert_int_equal(getattr(ino, NULL), -ENOENT);
    assert_false(referenced(10));
    assert_int_equal(getattr(ino2, NULL), 0);
    srv_done(&s);
}

static void test_unheld_unlink_frees_at_once(void **state)
{
    (void)state;
    srv s = {0};
    uint64_t sid, held, plain;
    fs_attr at;

    srv_start(&s, "sess-unheld", NULL);
    sid = session_new(NULL);
    held = create_file(ROOT, "held", sid);
    plain = create_file(ROOT, "plain", 0);
    assert_int_equal(getattr(plain, &at), 0);
    assert_int_equal(commit(plain, &at.vv, 0, 20, 4u << 20), 0);
    assert_true(referenced(20));
    /* Nobody holds "plain": gone with its last link, chunks unreferenced. */
    assert_int_equal(unlink_name(ROOT, "plain", &at), 0);
    assert_int_equal(at.nlink, 0);
    assert_int_equal(getattr(plain, NULL), -ENOENT);
    assert_false(referenced(20));
    assert_int_equal(metric("cairn_metad_orphans"), 0);
    /* A file with a second name is not orphaned by losing one. */
    {
        recw w;
        recw_init(&w, FSREC_REQ);
        recw_u64(&w, FT_INO, held);
        recw_u64(&w, FT_NEWPARENT, ROOT);
        recw_str(&w, FT_NEWNAME, "held2");
        assert_int_equal(call_err("/v1/link", &w, NULL), 0);
    }
    assert_int_equal(unlink_name(ROOT, "held", NULL), 0);
    assert_int_equal(metric("cairn_metad_orphans"), 0);
    assert_int_equal(unlink_name(ROOT, "held2", NULL), 0);
    assert_int_equal(metric("cairn_metad_orphans"), 1);
    assert_int_equal(end_session(sid), 0);
    assert_int_equal(getattr(held, NULL), -ENOENT);
    srv_done(&s);
}

/* unlink/rename of parent/name (rename: to newname in the same directory)
 * carrying FT_RELEASED rel[0..n) with session sid's header (sid 0: no
 * header); returns the error. */
static int change_releasing(const char *op, const char *name, const char *newname, uint64_t sid,
                            const uint64_t *rel, size_t n)
{
    recw w;
    char hdr[64];

    recw_init(&w, FSREC_REQ);
    recw_u64(&w, FT_PARENT, ROOT);
    recw_str(&w, FT_NAME, name);
    if (newname) {
        recw_u64(&w, FT_NEWPARENT, ROOT);
        recw_str(&w, FT_NEWNAME, newname);
    }
    for (size_t i = 0; i < n; i++)
        recw_u64(&w, FT_RELEASED, rel[i]);
    if (sid)
        session_hdr(sid, hdr, sizeof(hdr));
    return call_err(op, &w, sid ? hdr : NULL);
}

/* Releases carried by unlink and rename drop the holds before the change:
 * no orphan is left by a file the client already closed. */
static void test_releases_with_unlink_and_rename(void **state)
{
    (void)state;
    srv s = {0};
    uint64_t sid, a, b, c, zero = 0;
    fs_attr at;

    srv_start(&s, "sess-released", NULL);
    sid = session_new(NULL);
    a = create_file(ROOT, "a", sid);
    b = create_file(ROOT, "b", sid);
    c = create_file(ROOT, "c", sid);
    create_file(ROOT, "tmp", 0);

    /* Bad requests change nothing: a zero inode, or releases without a
     * session header. */
    assert_int_equal(change_releasing("/v1/unlink", "a", NULL, sid, &zero, 1), -EINVAL);
    assert_int_equal(change_releasing("/v1/unlink", "a", NULL, 0, &a, 1), -EINVAL);
    assert_int_equal(getattr(a, &at), 0);
    assert_int_equal(at.nlink, 1);

    /* unlink carrying its own inode's release: freed at once. */
    assert_int_equal(change_releasing("/v1/unlink", "a", NULL, sid, &a, 1), 0);
    assert_int_equal(getattr(a, NULL), -ENOENT);
    assert_int_equal(metric("cairn_metad_orphans"), 0);

    /* rename over b carrying b's release: b goes, no orphan. */
    assert_int_equal(change_releasing("/v1/rename", "tmp", "b", sid, &b, 1), 0);
    assert_int_equal(getattr(b, NULL), -ENOENT);
    assert_int_equal(metric("cairn_metad_orphans"), 0);

    /* Without the release, a held file becomes an orphan; a later unlink
     * carrying that release frees it. */
    assert_int_equal(unlink_name(ROOT, "c", NULL), 0);
    assert_int_equal(metric("cairn_metad_orphans"), 1);
    assert_int_equal(getattr(c, &at), 0);
    assert_int_equal(at.nlink, 0);
    create_file(ROOT, "d", 0);
    assert_int_equal(change_releasing("/v1/unlink", "d", NULL, sid, &c, 1), 0);
    assert_int_equal(getattr(c, NULL), -ENOENT);
    assert_int_equal(metric("cairn_metad_orphans"), 0);

    /* A failing unlink still drops the releases it carries (they are
     * idempotent; the client sends them again anyway). */
    assert_int_equal(change_releasing("/v1/unlink", "missing", NULL, sid, &c, 1), -ENOENT);
    assert_int_equal(end_session(sid), 0);
    srv_done(&s);
}

static void test_orphan_freed_on_expiry(void **state)
{
    (void)state;
    srv s = {0};
    const char *extra[] = {"--session-lease", "1s", NULL};
    uint64_t sid, ino;
    fs_attr at;
    int64_t t0;

    srv_start(&s, "sess-expire", extra);
    sid = session_new(NULL);
    ino = create_file(ROOT, "f", sid);
    assert_int_equal(getattr(ino, &at), 0);
    assert_int_equal(commit(ino, &at.vv, 0, 30, 4u << 20), 0);
    assert_int_equal(unlink_name(ROOT, "f", NULL), 0);
    assert_int_equal(getattr(ino, NULL), 0);
    /* The holder stops renewing: one lease later the orphan goes. */
    t0 = now_mono_ms();
    g_wait_ino = ino;
    assert_true(wait_until(ino_gone, NULL, WAIT_MS));
    assert_true(now_mono_ms() - t0 >= 500);
    assert_false(referenced(30));
    assert_int_equal(renew(sid, NULL, 0), -ENOENT);
    assert_int_equal(metric("cairn_metad_orphans_freed_total"), 1);
    srv_done(&s);
}

static void test_orphans_across_restart(void **state)
{
    (void)state;
    srv s = {0};
    const char *extra[] = {"--session-lease", "2s", NULL};
    uint64_t sid, keep, drop, late, s2;
    fs_attr at;
    int64_t t0;

    srv_start(&s, "sess-restart", extra);
    sid = session_new(NULL);
    keep = create_file(ROOT, "keep", sid);
    drop = create_file(ROOT, "drop", sid);
    assert_int_equal(getattr(keep, &at), 0);
    assert_int_equal(commit(keep, &at.vv, 0, 40, 4u << 20), 0);
    assert_int_equal(getattr(drop, &at), 0);
    assert_int_equal(commit(drop, &at.vv, 0, 41, 4u << 20), 0);
    assert_int_equal(unlink_name(ROOT, "keep", NULL), 0);
    assert_int_equal(unlink_name(ROOT, "drop", NULL), 0);

    /* A crash: the orphans come back from the WAL. No session survives. */
    srv_restart(&s, extra, 1);
    assert_int_equal(getattr(keep, NULL), 0);
    assert_int_equal(getattr(drop, NULL), 0);
    assert_true(referenced(40) && referenced(41));
    assert_int_equal(metric("cairn_metad_orphans"), 2);
    /* The client's renew fails; it opens a new session and holds again
     * what it still has open ("keep" only). */
    assert_int_equal(renew(sid, NULL, 0), -ENOENT);
    s2 = session_new(NULL);
    assert_int_equal(hold(s2, &keep, 1), 0);
    /* During the grace period even a file nobody holds is kept when it
     * loses its last link (clients may not have held it again yet). */
    late = create_file(ROOT, "late", 0);
    assert_int_equal(unlink_name(ROOT, "late", NULL), 0);
    assert_int_equal(getattr(late, NULL), 0);
    /* After the grace period: what nobody held again is freed... */
    t0 = now_mono_ms();
    g_wait_ino = drop;
    while (!ino_gone(NULL) && now_mono_ms() - t0 < WAIT_MS) {
        assert_int_equal(renew(s2, NULL, 0), 0);
        usleep(100 * 1000);
    }
    assert_int_equal(getattr(drop, NULL), -ENOENT);
    assert_int_equal(getattr(late, NULL), -ENOENT);
    assert_false(referenced(41));
    /* ...and what was held again stays, as long as the session lives. */
    t0 = now_mono_ms();
    while (now_mono_ms() - t0 < 2500) {
        assert_int_equal(renew(s2, NULL, 0), 0);
        usleep(300 * 1000);
    }
    assert_int_equal(getattr(keep, NULL), 0);
    assert_true(referenced(40));

    /* A clean restart (snapshot): the orphan is still there, nobody holds
     * it again, and it is freed after the grace period. */
    srv_restart(&s, extra, 0);
    assert_int_equal(getattr(keep, NULL), 0);
    assert_true(referenced(40));
    g_wait_ino = keep;
    assert_true(wait_until(ino_gone, NULL, WAIT_MS));
    assert_false(referenced(40));
    assert_int_equal(metric("cairn_metad_orphans"), 0);
    /* And the freeing was logged: it stays freed after a crash. (The WAL
     * is sequential: once this create is acknowledged, the free before it
     * is durable too.) */
    create_file(ROOT, "marker", 0);
    srv_restart(&s, extra, 1);
    assert_int_equal(getattr(keep, NULL), -ENOENT);
    assert_int_equal(metric("cairn_metad_orphans"), 0);
    srv_done(&s);
}

/* ------------------------------------------------------------------ */
/* cluster administration */

static int report(const char *op, uint64_t sid, const char *addr, uint64_t cap, uint64_t used,
                  uint64_t *sid_out, uint64_t *epoch)
{
    recw w;
    rsp r;
    int err;

    recw_init(&w, FSREC_SERVER);
    recw_u64(&w, FT_SID, sid);
    recw_str(&w, FT_ADDR, addr);
    recw_u64(&w, FT_CAPACITY, cap);
    recw_u64(&w, FT_USED, used);
    recw_u64(&w, FT_CHUNKS, 1);
    call(op, &w, NULL, &r);
    err = r.err;
    if (!err) {
        assert_int_equal(rec_get_u64(&r.r, FT_SID, sid_out), 0);
        assert_int_equal(rec_get_u64(&r.r, FT_EPOCH, epoch), 0);
    }
    rsp_free(&r);
    return err;
}

/* State of sid in the map (0 if absent) and the epoch. */
static uint64_t state_of(uint64_t sid, uint64_t *epoch)
{
    rsp r;
    rec_iter it;
    uint16_t tag;
    const uint8_t *v;
    size_t n;
    uint64_t st = 0, e;

    call("/v1/cluster", NULL, NULL, &r);
    assert_int_equal(r.err, 0);
    assert_int_equal(rec_get_u64(&r.r, FT_EPOCH, &e), 0);
    if (epoch)
        *epoch = e;
    rec_iter_init(&it);
    while (rec_next(&r.r, &it, &tag, &v, &n)) {
        recr x;
        uint64_t id;
        if (tag != FT_SERVER)
            continue;
        assert_int_equal(rec_open(&x, v, n), 0);
        assert_int_equal(rec_get_u64(&x, FT_SID, &id), 0);
        if (id == sid)
            assert_int_equal(rec_get_u64(&x, FT_STATE, &st), 0);
    }
    rsp_free(&r);
    return st;
}

/* cluster_drain / _undrain / _remove; *state and *epoch from the answer. */
static int admin(const char *op, uint64_t sid, uint64_t *state, uint64_t *epoch)
{
    recw w;
    rsp r;
    int err;

    recw_init(&w, FSREC_REQ);
    recw_u64(&w, FT_SID, sid);
    call(op, &w, NULL, &r);
    err = r.err;
    if (!err) {
        assert_int_equal(r.r.type, FSREC_SERVER);
        assert_int_equal(rec_get_u64(&r.r, FT_STATE, state), 0);
        assert_int_equal(rec_get_u64(&r.r, FT_EPOCH, epoch), 0);
        assert_int_equal(r.h.epoch, *epoch);
    }
    rsp_free(&r);
    return err;
}

static uint64_t statfs_total(void)
{
    rsp r;
    uint64_t v;

    call("/v1/statfs", NULL, NULL, &r);
    assert_int_equal(r.err, 0);
    assert_int_equal(rec_get_u64(&r.r, FT_TOTAL, &v), 0);
    rsp_free(&r);
    return v;
}

static uint64_t g_watch_sid;
static int watch_down(void *ctx)
{
    (void)ctx;
    return state_of(g_watch_sid, NULL) == SERVER_DOWN;
}

static void test_drain_undrain_remove(void **state)
{
    (void)state;
    srv s = {0};
    /* Slow: nothing goes DOWN unless the case wants it (fast). */
    const char *slow[] = {"--heartbeat-timeout", "60s", NULL};
    const char *fast[] = {"--heartbeat-timeout", "500ms", NULL};
    uint64_t s1, s2, s3, e0, e1, e, st, sid;

    srv_start(&s, "sess-admin", slow);
    assert_int_equal(report("/v1/register", 0, "127.0.0.1:9201", 10 * GIB, GIB, &s1, &e0), 0);
    assert_int_equal(report("/v1/register", 0, "127.0.0.1:9202", 10 * GIB, GIB, &s2, &e0), 0);
    assert_int_equal(report("/v1/register", 0, "127.0.0.1:9203", 10 * GIB, GIB, &s3, &e0), 0);
    assert_int_equal(statfs_total(), 30 * GIB / 2);
    /* Unknown ids, bad bodies, and an UP server cannot be removed. */
    assert_int_equal(admin("/v1/cluster_drain", 77, &st, &e), -ENOENT);
    assert_int_equal(admin("/v1/cluster_remove", 77, &st, &e), -ENOENT);
    assert_int_equal(admin("/v1/cluster_drain", 0, &st, &e), -EINVAL);
    assert_int_equal(admin("/v1/cluster_remove", s1, &st, &e), -EBUSY);
    state_of(s1, &e);
    assert_int_equal(e, e0);
    /* Drain: DRAINING, epoch bumped; again: nothing changes. */
    assert_int_equal(admin("/v1/cluster_drain", s1, &st, &e1), 0);
    assert_int_equal(st, SERVER_DRAINING);
    assert_true(e1 > e0);
    assert_int_equal(admin("/v1/cluster_drain", s1, &st, &e), 0);
    assert_int_equal(e, e1);
    /* Heartbeats keep it DRAINING. */
    assert_int_equal(report("/v1/heartbeat", s1, "127.0.0.1:9201", 10 * GIB, GIB, &sid, &e), 0);
    assert_int_equal(e, e1);
    assert_int_equal(state_of(s1, NULL), SERVER_DRAINING);
    /* Undrain: UP again, epoch bumped. */
    assert_int_equal(admin("/v1/cluster_undrain", s1, &st, &e), 0);
    assert_int_equal(st, SERVER_UP);
    assert_true(e > e1);
    e1 = e;
    /* Drain and remove: gone from the map, epoch bumped. */
    assert_int_equal(admin("/v1/cluster_drain", s1, &st, &e), 0);
    assert_int_equal(admin("/v1/cluster_remove", s1, &st, &e), 0);
    assert_int_equal(st, SERVER_DRAINING);
    assert_true(e > e1 + 1);
    assert_int_equal(state_of(s1, &e1), 0);
    assert_int_equal(e1, e);
    /* statfs counts the servers still in the map. */
    assert_int_equal(statfs_total(), 20 * GIB / 2);
    /* The removed server's heartbeat is unknown; registering again with its
     * old id gives it a new one. */
    assert_int_equal(report("/v1/heartbeat", s1, "127.0.0.1:9201", 10 * GIB, GIB, &sid, &e),
                     -ENOENT);
    assert_int_equal(report("/v1/register", s1, "127.0.0.1:9201", 10 * GIB, GIB, &sid, &e), 0);
    assert_true(sid > s3);
    /* Drained state and removals survive a crash. */
    assert_int_equal(admin("/v1/cluster_drain", s2, &st, &e), 0);
    srv_restart(&s, slow, 1);
    assert_int_equal(state_of(s2, &e1), SERVER_DRAINING);
    assert_int_equal(e1, e);
    assert_int_equal(state_of(s1, NULL), 0);
    /* Silence: DOWN wins over DRAINING, the drain is kept for when it is
     * back; a DOWN server can be removed without draining. */
    srv_restart(&s, fast, 0);
    g_watch_sid = s3;
    assert_true(wait_until(watch_down, NULL, WAIT_MS));
    g_watch_sid = s2;
    assert_true(wait_until(watch_down, NULL, WAIT_MS));
    assert_int_equal(report("/v1/heartbeat", s2, "127.0.0.1:9202", 10 * GIB, GIB, &sid, &e), 0);
    assert_int_equal(state_of(s2, NULL), SERVER_DRAINING);
    state_of(s3, &e1);
    assert_int_equal(admin("/v1/cluster_remove", s3, &st, &e), 0);
    assert_int_equal(st, SERVER_DOWN);
    assert_true(e > e1);
    /* After a clean restart: s1 and s3 gone, s2 still drained, the epoch
     * not gone back. */
    srv_restart(&s, slow, 0);
    assert_int_equal(state_of(s3, &e1), 0);
    assert_int_equal(state_of(s1, NULL), 0);
    assert_true(e1 >= e);
    assert_int_equal(report("/v1/heartbeat", s2, "127.0.0.1:9202", 10 * GIB, GIB, &sid, &e), 0);
    assert_int_equal(state_of(s2, NULL), SERVER_DRAINING);
    srv_done(&s);
}

static void test_full_servers(void **state)
{
    (void)state;
    srv s = {0};
    const char *slow[] = {"--heartbeat-timeout", "60s", NULL};
    const char *fast[] = {"--heartbeat-timeout", "500ms", NULL};
    const char *none[] = {"--full-reserve", "0", NULL};
    const char *fixed[] = {"--full-reserve", "100M", NULL};
    uint64_t s1, s2, e0, e1, e, sid;

    srv_start(&s, "sess-full", slow);
    /* Auto reserve of a 10 GiB server: 5 % = 512 MiB. */
    assert_int_equal(report("/v1/register", 0, "127.0.0.1:9301", 10 * GIB, 10 * GIB - 100 * MIB,
                            &s1, &e0), 0);
    assert_int_equal(state_of(s1, NULL), SERVER_FULL);
    assert_int_equal(metric("cairn_metad_servers{state=\"full\"}"), 1);
    /* Room again: UP, epoch bumped. */
    assert_int_equal(report("/v1/heartbeat", s1, "127.0.0.1:9301", 10 * GIB, 2 * GIB, &sid, &e1),
                     0);
    assert_int_equal(state_of(s1, NULL), SERVER_UP);
    assert_true(e1 > e0);
    /* Just under the reserve: FULL; just over it: still FULL (hysteresis);
     * well over: UP. */
    assert_int_equal(report("/v1/heartbeat", s1, "127.0.0.1:9301", 10 * GIB,
                            10 * GIB - 511 * MIB, &sid, &e), 0);
    assert_int_equal(state_of(s1, NULL), SERVER_FULL);
    assert_true(e > e1);
    e1 = e;
    assert_int_equal(report("/v1/heartbeat", s1, "127.0.0.1:9301", 10 * GIB,
                            10 * GIB - 520 * MIB, &sid, &e), 0);
    assert_int_equal(state_of(s1, NULL), SERVER_FULL);
    assert_int_equal(e, e1);
    assert_int_equal(report("/v1/heartbeat", s1, "127.0.0.1:9301", 10 * GIB,
                            10 * GIB - 600 * MIB, &sid, &e), 0);
    assert_int_equal(state_of(s1, NULL), SERVER_UP);
    /* A big server: the reserve is 1 GiB, not 5 %. */
    assert_int_equal(report("/v1/register", 0, "127.0.0.1:9302", 100 * GIB, 98 * GIB, &s2, &e), 0);
    assert_int_equal(state_of(s2, NULL), SERVER_UP);
    assert_int_equal(report("/v1/heartbeat", s2, "127.0.0.1:9302", 100 * GIB,
                            99 * GIB + 100 * MIB, &sid, &e), 0);
    assert_int_equal(state_of(s2, NULL), SERVER_FULL);
    /* statfs still counts a FULL server. */
    assert_int_equal(statfs_total(), 110 * GIB / 2);
    assert_int_equal(metric("cairn_metad_servers{state=\"full\"}"), 1);
    /* FULL is kept across a restart until a heartbeat says otherwise. */
    srv_restart(&s, slow, 0);
    assert_int_equal(state_of(s2, NULL), SERVER_FULL);
    /* Silence: DOWN wins over FULL; a heartbeat with no room: FULL again. */
    srv_restart(&s, fast, 0);
    g_watch_sid = s2;
    assert_true(wait_until(watch_down, NULL, WAIT_MS));
    assert_int_equal(report("/v1/heartbeat", s2, "127.0.0.1:9302", 100 * GIB, 100 * GIB, &sid,
                            &e), 0);
    assert_int_equal(state_of(s2, NULL), SERVER_FULL);
    srv_done(&s);

    /* --full-reserve 0: never FULL. */
    srv_start(&s, "sess-full0", none);
    assert_int_equal(report("/v1/register", 0, "127.0.0.1:9303", GIB, GIB, &s1, &e), 0);
    assert_int_equal(state_of(s1, NULL), SERVER_UP);
    srv_done(&s);
    /* A fixed reserve. */
    srv_start(&s, "sess-fullfix", fixed);
    assert_int_equal(report("/v1/register", 0, "127.0.0.1:9304", GIB, GIB - 150 * MIB, &s1, &e),
                     0);
    assert_int_equal(state_of(s1, NULL), SERVER_UP);
    assert_int_equal(report("/v1/heartbeat", s1, "127.0.0.1:9304", GIB, GIB - 50 * MIB, &sid, &e),
                     0);
    assert_int_equal(state_of(s1, NULL), SERVER_FULL);
    srv_done(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_session_lifecycle),
        cmocka_unit_test(test_orphan_until_released),
        cmocka_unit_test(test_orphan_two_holders_and_end),
        cmocka_unit_test(test_unheld_unlink_frees_at_once),
        cmocka_unit_test(test_releases_with_unlink_and_rename),
        cmocka_unit_test(test_orphan_freed_on_expiry),
        cmocka_unit_test(test_orphans_across_restart),
        cmocka_unit_test(test_drain_undrain_remove),
        cmocka_unit_test(test_full_servers),
        cmocka_unit_test(test_change_feed),
    };
    int fails;

    g_http = httpc_new(&(httpc_config){.handles = 16});
    fails = cmocka_run_group_tests_name("metad sessions and cluster admin", tests, NULL, NULL);
    httpc_free(g_http);
    return fails;
}
