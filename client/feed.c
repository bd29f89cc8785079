/*
 * feed.c — the change feed reader; see feed.h.
 *
 * One thread asks metad for the records after its position, each request
 * waiting at metad up to wait_ms for one. An answer is checked whole before
 * any of it is applied; a malformed one counts as an error. gen, up and
 * last_ok are atomics read by the mount's request threads; lock and cv
 * only serve stopping.
 */
#include "client/feed.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/fsrec.h"
#include "common/httpc.h"
#include "common/log.h"
#include "common/rec.h"
#include "common/util.h"

/* Time an answer may be late past wait_ms before the feed counts as down,
 * and the pause before asking again after an error. */
#define FEED_GRACE_MS 1000
#define FEED_RETRY_MS 1000

struct cfeed {
    char url[300];
    httpc *http;
    mc *m;
    uint64_t wait_ms;
    int64_t settle_ms;
    cfeed_ops ops;
    void *ctx;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cv;
    int stop;
    int starting;            /* the mount caches nothing yet (cfeed_wait_up) */
    /* atomics */
    uint64_t gen;
    int up;
    int64_t last_ok_ms;
    int64_t last_bump_ms;
    uint64_t answers, records, gaps, downs;
};

uint64_t cfeed_gen(cfeed *f)
{
    return f ? __atomic_load_n(&f->gen, __ATOMIC_ACQUIRE) : 0;
}

int cfeed_long(cfeed *f, uint64_t gen)
{
    if (!f || !__atomic_load_n(&f->up, __ATOMIC_ACQUIRE))
        return 0;
    int64_t now = now_mono_ms();
    if (now - __atomic_load_n(&f->last_ok_ms, __ATOMIC_ACQUIRE) >
            (int64_t)(f->wait_ms + FEED_GRACE_MS) ||
        now - __atomic_load_n(&f->last_bump_ms, __ATOMIC_ACQUIRE) < f->settle_ms)
        return 0;
    return __atomic_load_n(&f->gen, __ATOMIC_ACQUIRE) == gen;
}

static void bump(cfeed *f)
{
    __atomic_store_n(&f->last_bump_ms, now_mono_ms(), __ATOMIC_RELEASE);
    __atomic_add_fetch(&f->gen, 1, __ATOMIC_ACQ_REL);
}

/* The first answer, before the mount caches anything: nothing can be
 * stale, so no settling time. */
static int quiet_start(cfeed *f)
{
    pthread_mutex_lock(&f->lock);
    int q = f->starting;
    pthread_mutex_unlock(&f->lock);
    return q;
}

static void go_down(cfeed *f, const char *why)
{
    if (!__atomic_load_n(&f->up, __ATOMIC_ACQUIRE))
        return;
    __atomic_store_n(&f->up, 0, __ATOMIC_RELEASE);
    bump(f);
    f->ops.all(f->ctx);
    __atomic_add_fetch(&f->downs, 1, __ATOMIC_RELAXED);
    log_warn("change feed from metad down (%s): caching names and attributes briefly", why);
}

static void set_up(cfeed *f)
{
    __atomic_store_n(&f->last_ok_ms, now_mono_ms(), __ATOMIC_RELEASE);
    if (!__atomic_load_n(&f->up, __ATOMIC_ACQUIRE)) {
        __atomic_store_n(&f->up, 1, __ATOMIC_RELEASE);
        log_info("change feed from metad up");
        pthread_mutex_lock(&f->lock);
        pthread_cond_broadcast(&f->cv);
        pthread_mutex_unlock(&f->lock);
    }
}

int cfeed_wait_up(cfeed *f, int64_t ms)
{
    struct timespec dl = mono_deadline(ms * 1000000LL);
    pthread_mutex_lock(&f->lock);
    while (!f->stop && !__atomic_load_n(&f->up, __ATOMIC_ACQUIRE) &&
           pthread_cond_timedwait(&f->cv, &f->lock, &dl) != ETIMEDOUT)
        ;
    f->starting = 0;
    pthread_mutex_unlock(&f->lock);
    return __atomic_load_n(&f->up, __ATOMIC_ACQUIRE);
}

/* One change record: 0 with its parts (*name NULL for an inode record;
 * name points into the record, NUL-terminated in namebuf), or -1. */
static int decode_change(const uint8_t *p, size_t len, uint64_t *ino, char *namebuf)
{
    recr x;
    const uint8_t *np;
    size_t nl;

    if (rec_open(&x, p, len) < 0 || x.type != FSREC_REQ)
        return -1;
    if (rec_get_u64(&x, FT_INO, ino) == 0) {
        namebuf[0] = '\0';
        return *ino != 0 && !rec_has(&x, FT_NAME) ? 0 : -1;
    }
    if (rec_get_u64(&x, FT_PARENT, ino) < 0 || *ino == 0 ||
        rec_get_bytes(&x, FT_NAME, &np, &nl) < 0 || nl == 0 || nl > FS_NAME_MAX ||
        memchr(np, '\0', nl) || memchr(np, '/', nl))
        return -1;
    memcpy(namebuf, np, nl);
    namebuf[nl] = '\0';
    return 1;
}

/* Check and apply one answer. 0, or -1 when it is malformed (nothing
 * applied). */
static int apply_answer(cfeed *f, const httpc_resp *resp, uint64_t *feed, uint64_t *since)
{
    recr r;
    rec_iter it;
    uint16_t tag;
    const uint8_t *p;
    size_t len, n = 0;
    uint64_t nf, ns, gap = 0, ino;
    char name[FS_NAME_MAX + 1];

    if (rec_open(&r, resp->body, resp->len) < 0 || r.type != FSREC_REPLY ||
        rec_get_u64(&r, FT_FEED, &nf) < 0 || nf == 0 || rec_get_u64(&r, FT_SEQ, &ns) < 0 ||
        (rec_has(&r, FT_GAP) && rec_get_u64(&r, FT_GAP, &gap) < 0))
        return -1;
    rec_iter_init(&it);
    while (rec_next(&r, &it, &tag, &p, &len)) {
        if (tag != FT_CHANGE)
            continue;
        if (decode_change(p, len, &ino, name) < 0)
            return -1;
        n++;
    }
    if (gap || nf != *feed) {
        /* Records this mount needs are gone (or metad is another process,
         * or this is the first answer): drop everything, go on from here. */
        if (n)
            return -1;
        if (quiet_start(f))
            __atomic_add_fetch(&f->gen, 1, __ATOMIC_ACQ_REL);
        else
            bump(f);
        f->ops.all(f->ctx);
        __atomic_add_fetch(&f->gaps, 1, __ATOMIC_RELAXED);
        *feed = nf;
        *since = ns;
        return 0;
    }
    if (ns < *since)
        return -1;
    if (n) {
        bump(f);
        rec_iter_init(&it);
        while (rec_next(&r, &it, &tag, &p, &len)) {
            if (tag != FT_CHANGE)
                continue;
            if (decode_change(p, len, &ino, name) == 1)
                f->ops.entry(f->ctx, ino, name);
            else
                f->ops.inode(f->ctx, ino);
        }
        __atomic_add_fetch(&f->records, n, __ATOMIC_RELAXED);
    }
    *since = ns;
    return 0;
}

/* Wait ms or until stopped; 1 when stopped. */
static int pause_or_stop(cfeed *f, int64_t ms)
{
    struct timespec dl = mono_deadline(ms * 1000000LL);
    int stop;

    pthread_mutex_lock(&f->lock);
    while (!f->stop && pthread_cond_timedwait(&f->cv, &f->lock, &dl) != ETIMEDOUT)
        ;
    stop = f->stop;
    pthread_mutex_unlock(&f->lock);
    return stop;
}

static int stopping(cfeed *f)
{
    pthread_mutex_lock(&f->lock);
    int s = f->stop;
    pthread_mutex_unlock(&f->lock);
    return s;
}

/* POST /v1/changes with body w (freed here) as the mount's session. */
static int post_changes(cfeed *f, recw *w, int timeout_ms, httpc_resp *resp)
{
    size_t blen;
    char sh[64];
    const char *hdrs[3] = {"Content-Type: application/x-cairn-record", NULL, NULL};
    uint64_t sid = mc_session(f->m);

    if (sid) {
        snprintf(sh, sizeof(sh), "Cairn-Session: %" PRIu64, sid);
        hdrs[1] = sh;
    }
    const uint8_t *body = recw_finish(w, &blen);
    int rc = httpc_do(f->http, "POST", f->url, hdrs, body, blen, timeout_ms, resp);
    recw_free(w);
    return rc;
}

static void *feed_main(void *arg)
{
    cfeed *f = arg;
    uint64_t feed = 0, since = 0;

    while (!stopping(f)) {
        recw w;
        uint64_t wait = feed ? f->wait_ms : 0;
        httpc_resp resp;

        recw_init(&w, FSREC_REQ);
        recw_u64(&w, FT_FEED, feed);
        recw_u64(&w, FT_SEQ, since);
        recw_u64(&w, FT_WAIT_MS, wait);
        int rc = post_changes(f, &w, (int)(wait + FEED_GRACE_MS), &resp);
        if (rc == 0 && resp.status == 200 && apply_answer(f, &resp, &feed, &since) == 0) {
            httpc_resp_free(&resp);
            __atomic_add_fetch(&f->answers, 1, __ATOMIC_RELAXED);
            set_up(f);
            continue;
        }
        char why[64];
        if (rc < 0)
            snprintf(why, sizeof(why), "%s", cairn_strerror(rc));
        else if (resp.status != 200)
            snprintf(why, sizeof(why), "HTTP %d", resp.status);
        else
            snprintf(why, sizeof(why), "malformed answer");
        if (rc == 0)
            httpc_resp_free(&resp);
        go_down(f, why);
        /* Asking again from the same position is fine: the records are
         * still there, or the answer will be a gap. */
        if (pause_or_stop(f, FEED_RETRY_MS))
            break;
    }
    return NULL;
}

cfeed *cfeed_start(const char *addr, mc *m, uint64_t wait_ms, uint64_t settle_ms,
                   const cfeed_ops *ops, void *ctx)
{
    if (!addr || !m || !ops || !ops->entry || !ops->inode || !ops->all || wait_ms < 100 ||
        wait_ms > 60000 || strlen(addr) > 200)
        return NULL;
    cfeed *f = xcalloc(1, sizeof(*f));
    /* Two connections: the waiting request's, and cfeed_stop's. */
    httpc_config hc = {.handles = 2, .lean = 1, .max_resp = 4u << 20};

    snprintf(f->url, sizeof(f->url), "http://%s/v1/changes", addr);
    f->http = httpc_new(&hc);
    f->m = m;
    f->wait_ms = wait_ms;
    f->settle_ms = (int64_t)settle_ms;
    f->last_bump_ms = now_mono_ms() - f->settle_ms;
    f->starting = 1;
    f->ops = *ops;
    f->ctx = ctx;
    pthread_mutex_init(&f->lock, NULL);
    cond_init_mono(&f->cv);
    if (!f->http || pthread_create(&f->thread, NULL, feed_main, f) != 0) {
        if (f->http)
            httpc_free(f->http);
        pthread_cond_destroy(&f->cv);
        pthread_mutex_destroy(&f->lock);
        free(f);
        return NULL;
    }
    return f;
}

void cfeed_quit(cfeed *f)
{
    if (!f)
        return;
    pthread_mutex_lock(&f->lock);
    f->stop = 1;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->lock);
}

void cfeed_stop(cfeed *f)
{
    if (!f)
        return;
    cfeed_quit(f);
    /* Ask metad to answer this session's waiting request now. */
    if (mc_session(f->m)) {
        recw w;
        httpc_resp resp;

        recw_init(&w, FSREC_REQ);
        recw_u64(&w, FT_FLAGS, CHANGES_KICK);
        if (post_changes(f, &w, 2000, &resp) == 0)
            httpc_resp_free(&resp);
    }
    /* A request waiting at metad ends within wait_ms + the grace. */
    pthread_join(f->thread, NULL);
    httpc_free(f->http);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

void cfeed_get_stats(cfeed *f, cfeed_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!f)
        return;
    out->answers = __atomic_load_n(&f->answers, __ATOMIC_RELAXED);
    out->records = __atomic_load_n(&f->records, __ATOMIC_RELAXED);
    out->gaps = __atomic_load_n(&f->gaps, __ATOMIC_RELAXED);
    out->downs = __atomic_load_n(&f->downs, __ATOMIC_RELAXED);
    out->up = __atomic_load_n(&f->up, __ATOMIC_RELAXED);
}
