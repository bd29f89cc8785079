/*
 * cluster.c — cluster map, its op records and the DOWN-marking thread
 * (cluster.h).
 */
#include "server/meta/cluster.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <uthash.h>

#include "common/err.h"
#include "common/fsrec.h"
#include "common/log.h"
#include "common/util.h"

typedef struct server {
    UT_hash_handle hh;
    uint32_t sid;
    uint32_t state;         /* SERVER_*: what clients see */
    int drain;              /* an operator asked to drain it (logged) */
    char addr[CLUSTER_ADDR_MAX + 1];
    uint64_t capacity;
    /* volatile, never logged */
    uint64_t used, chunks;
    int64_t last_seen_ms;   /* monotonic */
} server;

struct cluster {
    pthread_mutex_t mu;     /* guards everything below */
    pthread_cond_t cv;      /* wakes the checker for shutdown */
    server *servers;        /* uthash by sid */
    uint32_t next_sid;
    uint64_t epoch;         /* also read without mu (atomic) for headers */
    uint64_t hb_timeout_ms;
    uint64_t full_reserve;  /* CLUSTER_RESERVE_AUTO, 0 = never FULL, or bytes */
    cluster_log_fn log_fn;
    void *log_ctx;
    pthread_t thread;
    int running, stop;
};

cluster *cluster_new(uint64_t hb_timeout_ms, uint64_t full_reserve, cluster_log_fn log_fn,
                     void *ctx)
{
    cluster *c = xcalloc(1, sizeof(*c));

    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    c->next_sid = 1;
    c->epoch = 1;
    c->hb_timeout_ms = hb_timeout_ms ? hb_timeout_ms : 10000;
    c->full_reserve = full_reserve;
    c->log_fn = log_fn;
    c->log_ctx = ctx;
    return c;
}

void cluster_free(cluster *c)
{
    server *s, *tmp;

    if (!c)
        return;
    HASH_ITER(hh, c->servers, s, tmp) {
        HASH_DEL(c->servers, s);
        free(s);
    }
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

uint64_t cluster_epoch(cluster *c)
{
    return __atomic_load_n(&c->epoch, __ATOMIC_ACQUIRE);
}

uint64_t cluster_hb_interval_ms(const cluster *c)
{
    return MAX(c->hb_timeout_ms / 5, (uint64_t)50);
}

static void set_epoch(cluster *c, uint64_t e)
{
    __atomic_store_n(&c->epoch, e, __ATOMIC_RELEASE);
}

static server *find(cluster *c, uint32_t sid)
{
    server *s;

    HASH_FIND(hh, c->servers, &sid, sizeof(uint32_t), s);
    return s;
}

/* ---- records ---- */

static void encode_server(recw *w, uint8_t type, uint32_t sid, const char *addr,
                          uint64_t capacity, uint32_t state, int drain, uint64_t epoch)
{
    recw_init(w, type);
    recw_u64(w, FT_SID, sid);
    recw_str(w, FT_ADDR, addr);
    recw_u64(w, FT_CAPACITY, capacity);
    recw_u64(w, FT_STATE, state);
    recw_u64(w, FT_EPOCH, epoch);
    if (drain)
        recw_u64(w, FT_CL_DRAIN, 1);
}

static int decode_server(const recr *r, uint32_t *sid, char *addr, uint64_t *capacity,
                         uint32_t *state, int *drain)
{
    uint64_t v, st, d = 0;
    const uint8_t *p;
    size_t n;

    if (rec_get_u64(r, FT_SID, &v) < 0 || v == 0 || v > CLUSTER_SID_MAX ||
        rec_get_bytes(r, FT_ADDR, &p, &n) < 0 || n == 0 || n > CLUSTER_ADDR_MAX ||
        memchr(p, 0, n) || rec_get_u64(r, FT_CAPACITY, capacity) < 0 ||
        rec_get_u64(r, FT_STATE, &st) < 0 || st < SERVER_UP || st > SERVER_FULL ||
        (rec_has(r, FT_CL_DRAIN) && rec_get_u64(r, FT_CL_DRAIN, &d) < 0))
        return CAIRN_EPROTO;
    *sid = (uint32_t)v;
    memcpy(addr, p, n);
    addr[n] = '\0';
    *state = (uint32_t)st;
    *drain = d != 0 || st == SERVER_DRAINING;
    return 0;
}

/* Apply a server's persistent fields; creates it if new. Never fails once
 * the record decoded. */
static void apply_server(cluster *c, uint32_t sid, const char *addr, uint64_t capacity,
                         uint32_t state, int drain)
{
    server *s = find(c, sid);

    if (!s) {
        s = xcalloc(1, sizeof(*s));
        s->sid = sid;
        HASH_ADD(hh, c->servers, sid, sizeof(uint32_t), s);
        /* A server learnt from the log gets a full timeout to report in. */
        s->last_seen_ms = now_mono_ms();
    }
    snprintf(s->addr, sizeof(s->addr), "%s", addr);
    s->capacity = capacity;
    if (s->state == SERVER_DOWN && state != SERVER_DOWN)
        s->last_seen_ms = now_mono_ms();
    s->state = state;
    s->drain = drain;
    if (sid >= c->next_sid)
        c->next_sid = sid + 1;
}

static int apply_locked(cluster *c, const uint8_t *rec, size_t len)
{
    recr r;
    uint32_t sid, state;
    uint64_t capacity, v;
    char addr[CLUSTER_ADDR_MAX + 1];
    int drain, rc = rec_open(&r, rec, len);
    server *s;

    if (rc < 0)
        return CAIRN_EPROTO;
    switch (r.type) {
    case CLOP_SERVER:
    case CLSNAP_SERVER:
        if ((rc = decode_server(&r, &sid, addr, &capacity, &state, &drain)) < 0)
            return rc;
        apply_server(c, sid, addr, capacity, state, drain);
        if (rec_get_u64(&r, FT_EPOCH, &v) == 0 && v > c->epoch)
            set_epoch(c, v);
        return 0;
    case CLOP_REMOVE:
        if (rec_get_u64(&r, FT_SID, &v) < 0 || v == 0 || v > CLUSTER_SID_MAX)
            return CAIRN_EPROTO;
        s = find(c, (uint32_t)v);
        if (!s)
            return -ENOENT;
        HASH_DEL(c->servers, s);
        free(s);
        if (rec_get_u64(&r, FT_EPOCH, &v) == 0 && v > c->epoch)
            set_epoch(c, v);
        return 0;
    case CLSNAP_CLUSTER:
        if (rec_get_u64(&r, FT_EPOCH, &v) < 0)
            return CAIRN_EPROTO;
        if (v > c->epoch)
            set_epoch(c, v);
        if (rec_get_u64(&r, FT_SID, &v) == 0 && v > c->next_sid && v <= CLUSTER_SID_MAX + 1ull)
            c->next_sid = (uint32_t)v;
        return 0;
    default:
        return CAIRN_EPROTO;
    }
}

int cluster_apply(cluster *c, const uint8_t *rec, size_t len)
{
    int rc;

    pthread_mutex_lock(&c->mu);
    rc = apply_locked(c, rec, len);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

/* Apply and log one record of ours (its epoch is c->epoch + 1); returns
 * the lsn. Called with mu held. */
static uint64_t log_locked(cluster *c, recw *w)
{
    size_t len;
    const uint8_t *p;
    uint64_t lsn;
    int rc;

    p = recw_finish(w, &len);
    rc = apply_locked(c, p, len);
    if (rc < 0) {
        log_error("cluster: cannot apply own record: %s", cairn_strerror(rc));
        abort();
    }
    lsn = c->log_fn(p, len, c->log_ctx);
    recw_free(w);
    return lsn;
}

/* Log and apply a change of a server's persistent fields, bumping the
 * epoch; returns the lsn. Called with mu held. */
static uint64_t change_locked(cluster *c, uint32_t sid, const char *addr, uint64_t capacity,
                              uint32_t state, int drain)
{
    recw w;

    encode_server(&w, CLOP_SERVER, sid, addr, capacity, state, drain, c->epoch + 1);
    return log_locked(c, &w);
}

/* Free space below which a server of this capacity is FULL (0 = never). */
static uint64_t reserve_for(const cluster *c, uint64_t capacity)
{
    if (c->full_reserve != CLUSTER_RESERVE_AUTO)
        return c->full_reserve;
    return MIN((uint64_t)1 << 30, capacity / 20);
}

/* Whether a server reporting capacity/used is full. Once FULL it stays so
 * until its free space is 1/16 above the reserve, so a server hovering at
 * the line does not change the epoch on every heartbeat. */
static int is_full(const cluster *c, const server *s, uint64_t capacity, uint64_t used)
{
    uint64_t r = reserve_for(c, capacity), freeb = capacity > used ? capacity - used : 0;

    if (r == 0)
        return 0;
    if (s && s->state == SERVER_FULL)
        return freeb < r + r / 16;
    return freeb < r;
}

/* State of a server that is being heard from. */
static uint32_t heard_state(const cluster *c, const server *s, int drain, uint64_t capacity,
                            uint64_t used)
{
    if (drain)
        return SERVER_DRAINING;
    return is_full(c, s, capacity, used) ? SERVER_FULL : SERVER_UP;
}

int cluster_report_in(cluster *c, const cluster_report *in, int heartbeat, uint32_t *sid,
                      uint64_t *epoch, uint64_t *lsn)
{
    server *s;
    uint32_t st;
    int rc = 0;

    *lsn = 0;
    if (in->addr[0] == '\0' || in->sid > CLUSTER_SID_MAX || (heartbeat && in->sid == 0))
        return -EINVAL;
    pthread_mutex_lock(&c->mu);
    s = in->sid ? find(c, in->sid) : NULL;
    if (!s && heartbeat) {
        rc = -ENOENT;
        goto out;
    }
    if (!s) {
        /* Ids are handed out in order, so a known-range id that is not in
         * the map was removed: it is retired and the server gets a new one. */
        uint32_t id = in->sid && in->sid >= c->next_sid ? in->sid : c->next_sid;
        if (id > CLUSTER_SID_MAX) {
            rc = -ENOSPC;
            goto out;
        }
        st = heard_state(c, NULL, 0, in->capacity, in->used);
        *lsn = change_locked(c, id, in->addr, in->capacity, st, 0);
        s = find(c, id);
        log_info("cluster: server %u registered at %s (epoch %llu)%s", id, in->addr,
                 (unsigned long long)c->epoch, st == SERVER_FULL ? ", full" : "");
    } else {
        st = heard_state(c, s, s->drain, in->capacity, in->used);
        if (strcmp(s->addr, in->addr) != 0 || s->capacity != in->capacity || s->state != st) {
            if (s->state == SERVER_DOWN)
                log_info("cluster: server %u is back", s->sid);
            if (st == SERVER_FULL && s->state != SERVER_FULL)
                log_warn("cluster: server %u is full (%llu of %llu bytes used, reserve %llu)",
                         s->sid, (unsigned long long)in->used,
                         (unsigned long long)in->capacity,
                         (unsigned long long)reserve_for(c, in->capacity));
            else if (s->state == SERVER_FULL && st != SERVER_FULL)
                log_info("cluster: server %u has room again", s->sid);
            *lsn = change_locked(c, s->sid, in->addr, in->capacity, st, s->drain);
        }
    }
    s->used = in->used;
    s->chunks = in->chunks;
    s->last_seen_ms = now_mono_ms();
    *sid = s->sid;
out:
    *epoch = c->epoch;
    pthread_mutex_unlock(&c->mu);
    return rc;
}

/* The fields of one server as clients see them, into a started record. */
static void put_server(recw *x, const server *s)
{
    int64_t now_ms = now_mono_ms(), now_ns = now_realtime_ns();

    recw_u64(x, FT_SID, s->sid);
    recw_str(x, FT_ADDR, s->addr);
    recw_u64(x, FT_CAPACITY, s->capacity);
    recw_u64(x, FT_USED, s->used);
    recw_u64(x, FT_CHUNKS, s->chunks);
    recw_u64(x, FT_STATE, s->state);
    /* Wall-clock ns of the last heartbeat. */
    recw_i64(x, FT_LAST_SEEN, now_ns - (now_ms - s->last_seen_ms) * 1000000);
}

void cluster_encode(cluster *c, recw *w)
{
    server *s, *tmp;
    recw x;

    recw_init(w, FSREC_CLUSTER);
    pthread_mutex_lock(&c->mu);
    recw_u64(w, FT_EPOCH, c->epoch);
    HASH_ITER(hh, c->servers, s, tmp) {
        recw_init(&x, FSREC_SERVER);
        put_server(&x, s);
        recw_rec(w, FT_SERVER, &x);
        recw_free(&x);
    }
    pthread_mutex_unlock(&c->mu);
}

int cluster_set_drain(cluster *c, uint32_t sid, int drain, recw *w, uint64_t *lsn)
{
    server *s;
    uint32_t st;

    *lsn = 0;
    pthread_mutex_lock(&c->mu);
    s = find(c, sid);
    if (!s) {
        pthread_mutex_unlock(&c->mu);
        return -ENOENT;
    }
    drain = drain != 0;
    if (s->state == SERVER_DOWN)
        st = SERVER_DOWN;   /* DOWN wins; the drain flag applies once it is back */
    else
        st = heard_state(c, NULL, drain, s->capacity, s->used);
    if (st != s->state || drain != s->drain) {
        *lsn = change_locked(c, sid, s->addr, s->capacity, st, drain);
        log_info("cluster: server %u %s (epoch %llu)", sid,
                 drain ? "draining" : "no longer draining", (unsigned long long)c->epoch);
    }
    recw_init(w, FSREC_SERVER);
    put_server(w, s);
    recw_u64(w, FT_EPOCH, c->epoch);
    pthread_mutex_unlock(&c->mu);
    return 0;
}

int cluster_remove(cluster *c, uint32_t sid, recw *w, uint64_t *lsn)
{
    server *s;
    recw r;
    uint32_t st;

    *lsn = 0;
    pthread_mutex_lock(&c->mu);
    s = find(c, sid);
    if (!s) {
        pthread_mutex_unlock(&c->mu);
        return -ENOENT;
    }
    st = s->state;
    if (st != SERVER_DRAINING && st != SERVER_DOWN) {
        pthread_mutex_unlock(&c->mu);
        return -EBUSY;
    }
    recw_init(&r, CLOP_REMOVE);
    recw_u64(&r, FT_SID, sid);
    recw_u64(&r, FT_EPOCH, c->epoch + 1);
    *lsn = log_locked(c, &r);
    log_info("cluster: server %u removed (epoch %llu)", sid, (unsigned long long)c->epoch);
    recw_init(w, FSREC_SERVER);
    recw_u64(w, FT_SID, sid);
    recw_u64(w, FT_STATE, st);
    recw_u64(w, FT_EPOCH, c->epoch);
    pthread_mutex_unlock(&c->mu);
    return 0;
}

void cluster_get_counts(cluster *c, cluster_counts *out)
{
    server *s, *tmp;

    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&c->mu);
    HASH_ITER(hh, c->servers, s, tmp) {
        switch (s->state) {
        case SERVER_UP: out->up++; break;
        case SERVER_DOWN: out->down++; break;
        case SERVER_DRAINING: out->draining++; break;
        case SERVER_FULL: out->full++; break;
        default: break;
        }
        out->capacity += s->capacity;
        out->used += s->used;
        out->chunks += s->chunks;
    }
    pthread_mutex_unlock(&c->mu);
}

int cluster_snapshot_write(cluster *c, int (*emit)(const uint8_t *rec, size_t len, void *ctx),
                           void (*at_end)(void *ctx), void *ctx)
{
    server *s, *tmp;
    recw w;
    size_t len;
    const uint8_t *p;
    int rc;

    pthread_mutex_lock(&c->mu);
    recw_init(&w, CLSNAP_CLUSTER);
    recw_u64(&w, FT_EPOCH, c->epoch);
    recw_u64(&w, FT_SID, c->next_sid);
    p = recw_finish(&w, &len);
    rc = emit(p, len, ctx);
    recw_free(&w);
    HASH_ITER(hh, c->servers, s, tmp) {
        if (rc < 0)
            break;
        encode_server(&w, CLSNAP_SERVER, s->sid, s->addr, s->capacity, s->state, s->drain,
                      c->epoch);
        p = recw_finish(&w, &len);
        rc = emit(p, len, ctx);
        recw_free(&w);
    }
    if (rc == 0 && at_end)
        at_end(ctx);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

/* ---- DOWN marking ---- */

static void *checker_main(void *arg)
{
    cluster *c = arg;
    uint64_t period = MIN(MAX(c->hb_timeout_ms / 4, (uint64_t)20), (uint64_t)1000);
    struct timespec ts;
    server *s, *tmp;

    pthread_mutex_lock(&c->mu);
    while (!c->stop) {
        int64_t now = now_mono_ms();
        HASH_ITER(hh, c->servers, s, tmp) {
            if (s->state != SERVER_DOWN && now - s->last_seen_ms > (int64_t)c->hb_timeout_ms) {
                log_warn("cluster: server %u (%s) silent for %lld ms: marking it down", s->sid,
                         s->addr, (long long)(now - s->last_seen_ms));
                /* Nobody waits for this record: losing it in a crash only
                 * means the server is marked down again after restart. */
                change_locked(c, s->sid, s->addr, s->capacity, SERVER_DOWN, s->drain);
            }
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (long)(period % 1000) * 1000000L;
        ts.tv_sec += (time_t)(period / 1000) + ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

int cluster_start(cluster *c)
{
    int rc = pthread_create(&c->thread, NULL, checker_main, c);

    if (rc != 0)
        return -rc;
    c->running = 1;
    return 0;
}

void cluster_stop(cluster *c)
{
    if (!c->running)
        return;
    pthread_mutex_lock(&c->mu);
    c->stop = 1;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    c->running = 0;
}
