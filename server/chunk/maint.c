/*
 * maint.c — the maintenance thread: schedule, admin trigger, rate limit,
 * cluster map and filesystem checks, re-fetch of corrupt chunks, metrics
 * (see maint.h; the passes are in scrub.c, repair.c and gc.c).
 */
#include "server/chunk/maint_i.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "common/fsrec.h"
#include "common/log.h"
#include "common/util.h"

/* How often the idle thread looks for a cluster map epoch change. */
#define MAINT_POLL_MS 1000
/* Longest wait between follow-up repair passes while work remains. */
#define MAINT_FOLLOWUP_MAX_MS (10 * 60 * 1000)
/* A map older than this is fetched again before it is used. */
#define MAINT_MAP_MAX_AGE_MS 5000

static const char *const pass_names[MAINT_NPASSES] = {"scrub", "sha-scrub", "repair", "gc"};

const char *maint_pass_name(enum maint_pass pass)
{
    return (unsigned)pass < MAINT_NPASSES ? pass_names[pass] : "unknown";
}

int maint_pass_parse(const char *name, enum maint_pass *out)
{
    for (int i = 0; i < MAINT_NPASSES; i++)
        if (name && strcmp(name, pass_names[i]) == 0) {
            *out = (enum maint_pass)i;
            return 0;
        }
    return -EINVAL;
}

/* ---- corrupt-id queue ---- */

static void maint_on_corrupt(void *ctx, const uint8_t id[CHUNK_ID_LEN])
{
    maint *m = ctx;
    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < m->q_len; i++)
        if (memcmp(m->queue[(m->q_head + i) % MAINT_REFETCH_QUEUE], id, CHUNK_ID_LEN) == 0) {
            pthread_mutex_unlock(&m->lock);
            return;
        }
    if (m->q_len == MAINT_REFETCH_QUEUE) {
        pthread_mutex_unlock(&m->lock);
        maint_count(m, MC_REFETCH_DROPPED, 1);
        return;
    }
    memcpy(m->queue[(m->q_head + m->q_len) % MAINT_REFETCH_QUEUE], id, CHUNK_ID_LEN);
    m->q_len++;
    pthread_cond_signal(&m->wake);
    pthread_mutex_unlock(&m->lock);
}

static int maint_dequeue(maint *m, uint8_t id[CHUNK_ID_LEN])
{
    pthread_mutex_lock(&m->lock);
    int got = m->q_len > 0;
    if (got) {
        memcpy(id, m->queue[m->q_head], CHUNK_ID_LEN);
        m->q_head = (m->q_head + 1) % MAINT_REFETCH_QUEUE;
        m->q_len--;
    }
    pthread_mutex_unlock(&m->lock);
    return got;
}

/* ---- lifecycle ---- */

maint *maint_new(const maint_config *cfg)
{
    maint *m = xcalloc(1, sizeof *m);
    m->cfg = *cfg;
    m->cfg.dir = xstrdup(cfg->dir);
    m->cfg.meta = cfg->meta ? xstrdup(cfg->meta) : NULL;
    m->store = cfg->store;
    m->peer = peer_new(m->cfg.meta, cfg->max_chunk);
    if (!m->peer) {
        log_error("maintenance: cannot create an HTTP client");
        abort();
    }
    m->map = xcalloc(1, sizeof *m->map);
    pthread_mutex_init(&m->lock, NULL);
    cond_init_mono(&m->wake);
    cond_init_mono(&m->done);
    chunkstore_set_corrupt_hook(m->store, maint_on_corrupt, m);
    return m;
}

void maint_free(maint *m)
{
    if (!m)
        return;
    chunkstore_set_corrupt_hook(m->store, NULL, NULL);
    peer_free(m->peer);
    free(m->map);
    pthread_cond_destroy(&m->wake);
    pthread_cond_destroy(&m->done);
    pthread_mutex_destroy(&m->lock);
    free((char *)m->cfg.dir);
    free((char *)m->cfg.meta);
    free(m);
}

int maint_stopping(maint *m)
{
    pthread_mutex_lock(&m->lock);
    int s = m->stop;
    pthread_mutex_unlock(&m->lock);
    return s;
}

/* Wait on cv until the monotonic deadline or stop; 1 if stopping. Called
 * with m->lock held. */
static int maint_wait_locked(maint *m, pthread_cond_t *cv, int64_t deadline_ns)
{
    struct timespec ts = {.tv_sec = deadline_ns / 1000000000LL,
                          .tv_nsec = deadline_ns % 1000000000LL};
    if (!m->stop)
        pthread_cond_timedwait(cv, &m->lock, &ts);
    return m->stop;
}

/* ---- rate limit ---- */

void maint_throttle(maint *m, maint_result *res, uint64_t bytes)
{
    if (res)
        res->bytes += bytes;
    if (!m->cfg.rate || !bytes)
        return;
    int64_t now = now_mono_ns();
    /* A quarter second of unused budget may be spent at once. */
    int64_t floor = now - 250000000LL;
    if (m->tb_next_ns < floor)
        m->tb_next_ns = floor;
    m->tb_next_ns += (int64_t)((double)bytes * 1e9 / (double)m->cfg.rate);
    if (m->tb_next_ns <= now)
        return;
    maint_count(m, MC_THROTTLE_MS, (uint64_t)((m->tb_next_ns - now) / 1000000));
    pthread_mutex_lock(&m->lock);
    while (!m->stop && now_mono_ns() < m->tb_next_ns)
        maint_wait_locked(m, &m->wake, m->tb_next_ns);
    pthread_mutex_unlock(&m->lock);
}

/* ---- cluster map and filesystem ---- */

int maint_refresh_map(maint *m, int64_t max_age_ms)
{
    int64_t now = now_mono_ms();
    uint64_t epoch = chunkreg_epoch(m->reg);
    if (m->map_ms && now - m->map_ms <= max_age_ms && (!epoch || epoch <= m->map->epoch))
        return 0;
    int rc = peer_cluster_get(m->peer, m->map);
    if (rc < 0) {
        m->map_ms = 0;
        m->map->n = 0;
        return rc;
    }
    m->map_ms = now;
    return 0;
}

static int maint_read_fsid(const char *dir, uint8_t fsid[16], int *have)
{
    char *path = xasprintf("%s/fs.id", dir);
    uint8_t *text = NULL;
    size_t len;
    *have = 0;
    int rc = read_file(path, 256, &text, &len);
    if (rc == -ENOENT) {
        rc = 0;
    } else if (rc == 0) {
        while (len && (text[len - 1] == '\n' || text[len - 1] == ' '))
            len--;
        if (len != 32 || hex_decode((char *)text, 32, fsid, 16) < 0) {
            log_error("%s is not a filesystem id (32 hex characters)", path);
            rc = -EINVAL;
        } else {
            *have = 1;
        }
    }
    free(text);
    free(path);
    return rc;
}

int maint_check_fs(maint *m)
{
    peer_fsinfo fs;
    int rc = peer_fsinfo_get(m->peer, &fs);
    if (rc < 0)
        return rc;
    char hex[33];
    hex_encode(fs.fsid, 16, hex);
    if (!m->fs_ok) {
        uint8_t mine[16];
        int have;
        if ((rc = maint_read_fsid(m->cfg.dir, mine, &have)) < 0)
            return rc;
        if (!have) {
            char *path = xasprintf("%s/fs.id", m->cfg.dir);
            char line[34];
            snprintf(line, sizeof line, "%s\n", hex);
            rc = write_file_atomic(path, line, 33);
            if (rc < 0)
                log_error("cannot write %s: %s", path, cairn_strerror(rc));
            else
                log_info("data directory belongs to filesystem %s", hex);
            free(path);
            if (rc < 0)
                return rc;
        } else if (memcmp(mine, fs.fsid, 16) != 0) {
            char mhex[33];
            hex_encode(mine, 16, mhex);
            log_error("metad %s serves filesystem %s but this data directory belongs to %s: "
                      "repair and garbage collection are disabled",
                      peer_meta(m->peer), hex, mhex);
            return -EXDEV;
        }
        m->fs_ok = 1;
    } else if (memcmp(m->fs.fsid, fs.fsid, 16) != 0) {
        m->fs_ok = 0;
        log_error("metad %s now serves filesystem %s: repair and garbage collection stop",
                  peer_meta(m->peer), hex);
        return -EXDEV;
    }
    m->fs = fs;
    return 0;
}

/* ---- re-fetch ---- */

/* Fetch a good copy of id from another server (UP ones first, then the
 * rest, each group in HRW order) and store it. */
static int maint_refetch(maint *m, const uint8_t id[CHUNK_ID_LEN], maint_result *res)
{
    char hex[CHUNK_ID_HEX + 1];
    chunk_id_hex(id, hex);
    int rc = maint_refresh_map(m, MAINT_MAP_MAX_AGE_MS);
    if (rc < 0)
        return rc;
    size_t order[PEER_MAX_SERVERS];
    unsigned up = PEER_STATE(SERVER_UP);
    size_t n = peer_rank(m->map, id, up, order);
    n += peer_rank(m->map, id, ~up, order + n);
    uint32_t self = chunkreg_sid(m->reg);
    rc = -ENOENT;
    for (size_t i = 0; i < n && !maint_stopping(m); i++) {
        const peer_server *s = &m->map->servers[order[i]];
        if (s->id == self)
            continue;
        uint8_t *data;
        size_t len;
        int grc = peer_get(m->peer, s->addr, id, &data, &len);
        if (grc < 0) {
            if (grc != -ENOENT)
                log_debug("chunk %s: re-fetch from server %u (%s): %s", hex, s->id, s->addr,
                          cairn_strerror(grc));
            continue;
        }
        maint_throttle(m, res, len);
        rc = chunkstore_put(m->store, id, data, len);
        free(data);
        if (rc >= 0) {
            log_info("chunk %s: good copy fetched from server %u (%s)", hex, s->id, s->addr);
            return 0;
        }
        log_error("chunk %s: cannot store the copy fetched from server %u: %s", hex, s->id,
                  cairn_strerror(rc));
        return rc;
    }
    return rc;
}

void maint_refetch_queued(maint *m, maint_result *res)
{
    uint8_t id[CHUNK_ID_LEN];
    /* Without metad (or with the wrong one) there is no map to fetch from:
     * the queue is emptied all the same, and repair passes on the other
     * holders put the chunk back here if this server is one of its
     * targets. */
    int usable = !m->cfg.meta ? -ENOTCONN : m->fs_ok ? 0 : maint_check_fs(m);
    while (!maint_stopping(m) && maint_dequeue(m, id)) {
        if (chunkstore_has(m->store, id) == 1)
            continue;
        int rc = usable < 0 ? usable : maint_refetch(m, id, res);
        char hex[CHUNK_ID_HEX + 1];
        chunk_id_hex(id, hex);
        if (rc == 0) {
            maint_count(m, MC_REFETCHED, 1);
            if (res)
                res->refetched++;
        } else {
            maint_count(m, MC_REFETCH_FAILED, 1);
            if (res)
                res->refetch_failed++;
            log_error("chunk %s: corrupt here and no good copy could be fetched (%s); "
                      "repair will restore it if another server still holds it",
                      hex, cairn_strerror(rc));
        }
    }
}

/* ---- the thread ---- */

static int64_t maint_first_due(int64_t now, uint64_t interval_ms)
{
    return interval_ms ? now + (int64_t)interval_ms : INT64_MAX;
}

static void maint_run_one(maint *m, enum maint_pass pass)
{
    maint_result res;
    memset(&res, 0, sizeof res);
    res.started_ns = now_realtime_ns();
    int64_t t0 = now_mono_ms();
    atomic_store(&m->progress, 0);
    atomic_store(&m->running, (int)pass + 1);
    log_debug("%s pass starting", maint_pass_name(pass));
    switch (pass) {
    case MAINT_SCRUB:
    case MAINT_SHA_SCRUB:
        res.rc = maint_scrub_pass(m, pass == MAINT_SHA_SCRUB, &res);
        break;
    case MAINT_REPAIR:
        res.rc = maint_repair_pass(m, &res);
        break;
    case MAINT_GC:
        res.rc = maint_gc_pass(m, &res);
        break;
    default:
        res.rc = -EINVAL;
    }
    res.duration_ms = now_mono_ms() - t0;
    atomic_store(&m->running, 0);
    maint_count(m, (enum maint_counter)(MC_PASSES + pass), 1);
    maint_count(m, (enum maint_counter)(MC_PASS_MS + pass), (uint64_t)res.duration_ms);
    if (res.rc == -ECANCELED)
        log_info("%s pass interrupted by shutdown after %" PRIu64 " chunks",
                 maint_pass_name(pass), res.scanned);
    else if (res.rc < 0)
        log_warn("%s pass stopped after %" PRIu64 " chunks: %s", maint_pass_name(pass),
                 res.scanned, cairn_strerror(res.rc));
    else
        log_info("%s pass done: %" PRIu64 " chunks in %" PRId64 " ms", maint_pass_name(pass),
                 res.scanned, res.duration_ms);
    pthread_mutex_lock(&m->lock);
    m->last[pass] = res;
    m->has_last[pass] = 1;
    pthread_mutex_unlock(&m->lock);
}

/* Next pass to run: one asked for (in pass order), else the most overdue
 * scheduled one; -1 if none is due. Called with m->lock held. */
static int maint_pick_locked(maint *m, int64_t now, uint64_t *seq)
{
    for (int p = 0; p < MAINT_NPASSES; p++)
        if (m->req_seq[p] > m->done_seq[p]) {
            *seq = m->req_seq[p];
            return p;
        }
    *seq = 0;
    if (m->due_ms[MAINT_SHA_SCRUB] <= now)
        return MAINT_SHA_SCRUB; /* covers a plain scrub that is due too */
    int best = -1;
    for (int p = 0; p < MAINT_NPASSES; p++)
        if (m->due_ms[p] <= now && (best < 0 || m->due_ms[p] < m->due_ms[best]))
            best = p;
    return best;
}

static void maint_schedule_next(maint *m, enum maint_pass pass, int64_t now)
{
    switch (pass) {
    case MAINT_SHA_SCRUB:
        /* A SHA-256 scrub checks the CRC too, so it restarts both clocks. */
        m->due_ms[MAINT_SHA_SCRUB] = maint_first_due(now, m->cfg.sha_scrub_interval_ms);
        m->due_ms[MAINT_SCRUB] = maint_first_due(now, m->cfg.scrub_interval_ms);
        break;
    case MAINT_SCRUB:
        m->due_ms[MAINT_SCRUB] = maint_first_due(now, m->cfg.scrub_interval_ms);
        break;
    case MAINT_REPAIR: {
        m->due_ms[MAINT_REPAIR] = maint_first_due(now, m->cfg.repair_interval_ms);
        /* Passes on different servers run in no particular order, so one
         * pass rarely finishes a change: a copy can be dropped only after
         * another server's pass has pushed its replacement. While a pass
         * leaves work (copies to drop, failed pushes, or it failed), the
         * next one comes after repair_delay, doubling up to
         * MAINT_FOLLOWUP_MAX_MS, so the cluster converges without waiting
         * for the regular interval. */
        const maint_result *r = &m->last[MAINT_REPAIR];
        int more = r->rc < 0 || r->misplaced > r->dropped || r->push_failed > 0;
        if (!more || !m->cfg.meta) {
            m->repair_backoff_ms = 0;
            break;
        }
        uint64_t first = MAX(m->cfg.repair_delay_ms, (uint64_t)1000);
        m->repair_backoff_ms = m->repair_backoff_ms
                                   ? MIN(m->repair_backoff_ms * 2, (uint64_t)MAINT_FOLLOWUP_MAX_MS)
                                   : first;
        m->due_ms[MAINT_REPAIR] =
            MIN(m->due_ms[MAINT_REPAIR], now + (int64_t)m->repair_backoff_ms);
        break;
    }
    case MAINT_GC:
        m->due_ms[MAINT_GC] = maint_first_due(now, m->cfg.gc_interval_ms);
        break;
    default:
        break;
    }
}

static void *maint_thread(void *arg)
{
    maint *m = arg;
    int64_t now = now_mono_ms();
    m->due_ms[MAINT_SCRUB] = maint_first_due(now, m->cfg.scrub_interval_ms);
    m->due_ms[MAINT_SHA_SCRUB] = maint_first_due(now, m->cfg.sha_scrub_interval_ms);
    m->due_ms[MAINT_REPAIR] = m->cfg.repair_interval_ms
                                  ? now + (int64_t)MIN(m->cfg.repair_delay_ms,
                                                       m->cfg.repair_interval_ms)
                                  : INT64_MAX;
    m->due_ms[MAINT_GC] = maint_first_due(now, m->cfg.gc_interval_ms);
    if (!m->cfg.meta)
        m->due_ms[MAINT_REPAIR] = m->due_ms[MAINT_GC] = INT64_MAX;

    pthread_mutex_lock(&m->lock);
    while (!m->stop) {
        if (m->q_len) {
            pthread_mutex_unlock(&m->lock);
            maint_refetch_queued(m, NULL);
            pthread_mutex_lock(&m->lock);
            continue;
        }
        now = now_mono_ms();
        uint64_t epoch = chunkreg_epoch(m->reg);
        if (epoch && epoch != m->seen_epoch) {
            /* Servers joined, left or changed state: a repair pass soon,
             * once the map has had a moment to settle. */
            if (m->seen_epoch && m->cfg.meta)
                m->due_ms[MAINT_REPAIR] =
                    MIN(m->due_ms[MAINT_REPAIR], now + (int64_t)m->cfg.repair_delay_ms);
            m->seen_epoch = epoch;
        }
        uint64_t seq;
        int pass = maint_pick_locked(m, now, &seq);
        if (pass < 0) {
            int64_t next = now + MAINT_POLL_MS;
            for (int p = 0; p < MAINT_NPASSES; p++)
                next = MIN(next, m->due_ms[p]);
            maint_wait_locked(m, &m->wake, next * 1000000LL);
            continue;
        }
        pthread_mutex_unlock(&m->lock);
        maint_run_one(m, (enum maint_pass)pass);
        maint_schedule_next(m, (enum maint_pass)pass, now_mono_ms());
        pthread_mutex_lock(&m->lock);
        if (seq)
            m->done_seq[pass] = seq;
        pthread_cond_broadcast(&m->done);
    }
    pthread_cond_broadcast(&m->done);
    pthread_mutex_unlock(&m->lock);
    return NULL;
}

int maint_start(maint *m, chunkreg *reg)
{
    m->reg = reg;
    int rc = -pthread_create(&m->thread, NULL, maint_thread, m);
    if (rc == 0)
        m->started = 1;
    return rc;
}

void maint_stop(maint *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->lock);
    m->stop = 1;
    pthread_cond_broadcast(&m->wake);
    pthread_cond_broadcast(&m->done);
    pthread_mutex_unlock(&m->lock);
    if (m->started)
        pthread_join(m->thread, NULL);
    m->started = 0;
}

int maint_run(maint *m, enum maint_pass pass, int64_t timeout_ms, maint_result *out)
{
    if ((unsigned)pass >= MAINT_NPASSES)
        return -EINVAL;
    int64_t deadline = now_mono_ns() + timeout_ms * 1000000LL;
    pthread_mutex_lock(&m->lock);
    if (!m->started || m->stop) {
        int rc = m->stop ? -ECANCELED : -EAGAIN;
        pthread_mutex_unlock(&m->lock);
        return rc;
    }
    uint64_t mine = ++m->req_seq[pass];
    pthread_cond_signal(&m->wake);
    int rc = 0;
    while (m->done_seq[pass] < mine) {
        if (m->stop) {
            rc = -ECANCELED;
            break;
        }
        if (now_mono_ns() >= deadline) {
            rc = -ETIMEDOUT;
            break;
        }
        maint_wait_locked(m, &m->done, deadline);
    }
    if (rc == 0)
        *out = m->last[pass];
    pthread_mutex_unlock(&m->lock);
    return rc;
}

/* ---- metrics ---- */

static void metric1(buf *out, const char *name, const char *type, const char *help, uint64_t v)
{
    buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n", name, help, name, type, name,
               v);
}

static void maint_ctr(buf *out, maint *m, const char *name, const char *help,
                      enum maint_counter c)
{
    metric1(out, name, "counter", help, (uint64_t)atomic_load(&m->ctr[c]));
}

void maint_metrics(buf *out, void *ctx)
{
    maint *m = ctx;
    if (!m)
        return;
    maint_result last[MAINT_NPASSES];
    int has[MAINT_NPASSES];
    size_t qlen;
    pthread_mutex_lock(&m->lock);
    memcpy(last, m->last, sizeof last);
    memcpy(has, m->has_last, sizeof has);
    qlen = m->q_len;
    pthread_mutex_unlock(&m->lock);

    buf_printf(out, "# HELP cairn_chunkd_maint_scanned_total Chunk ids looked at by "
                    "maintenance passes.\n# TYPE cairn_chunkd_maint_scanned_total counter\n");
    static const enum maint_counter scanned[] = {MC_SCANNED_SCRUB, MC_SCANNED_REPAIR,
                                                 MC_SCANNED_GC};
    static const char *const scanned_names[] = {"scrub", "repair", "gc"};
    for (size_t i = 0; i < ARRAY_LEN(scanned); i++)
        buf_printf(out, "cairn_chunkd_maint_scanned_total{pass=\"%s\"} %" PRIu64 "\n",
                   scanned_names[i], (uint64_t)atomic_load(&m->ctr[scanned[i]]));
    int running = atomic_load(&m->running);
    buf_printf(out, "# HELP cairn_chunkd_maint_running Pass running now (1), by pass.\n"
                    "# TYPE cairn_chunkd_maint_running gauge\n");
    for (int p = 0; p < MAINT_NPASSES; p++)
        buf_printf(out, "cairn_chunkd_maint_running{pass=\"%s\"} %d\n", pass_names[p],
                   running == p + 1);
    metric1(out, "cairn_chunkd_maint_progress_chunks", "gauge",
            "Chunk ids the running pass has looked at so far.",
            (uint64_t)atomic_load(&m->progress));
    buf_printf(out, "# HELP cairn_chunkd_maint_last_pass_timestamp_seconds Wall-clock end of "
                    "the last completed pass, by pass (0 = none yet).\n"
                    "# TYPE cairn_chunkd_maint_last_pass_timestamp_seconds gauge\n");
    for (int p = 0; p < MAINT_NPASSES; p++) {
        double t = has[p] && last[p].rc == 0
                       ? (double)last[p].started_ns / 1e9 + (double)last[p].duration_ms / 1e3
                       : 0;
        buf_printf(out, "cairn_chunkd_maint_last_pass_timestamp_seconds{pass=\"%s\"} %.3f\n",
                   pass_names[p], t);
    }
    buf_printf(out, "# HELP cairn_chunkd_maint_last_pass_seconds Duration of the last pass, "
                    "by pass.\n# TYPE cairn_chunkd_maint_last_pass_seconds gauge\n");
    for (int p = 0; p < MAINT_NPASSES; p++)
        buf_printf(out, "cairn_chunkd_maint_last_pass_seconds{pass=\"%s\"} %.3f\n",
                   pass_names[p], has[p] ? (double)last[p].duration_ms / 1e3 : 0.0);
    buf_printf(out, "# HELP cairn_chunkd_maint_passes_total Passes run, by pass.\n"
                    "# TYPE cairn_chunkd_maint_passes_total counter\n");
    for (int p = 0; p < MAINT_NPASSES; p++)
        buf_printf(out, "cairn_chunkd_maint_passes_total{pass=\"%s\"} %" PRIu64 "\n",
                   pass_names[p], (uint64_t)atomic_load(&m->ctr[MC_PASSES + p]));
    buf_printf(out, "# HELP cairn_chunkd_maint_seconds_total Time spent in passes, by pass.\n"
                    "# TYPE cairn_chunkd_maint_seconds_total counter\n");
    for (int p = 0; p < MAINT_NPASSES; p++)
        buf_printf(out, "cairn_chunkd_maint_seconds_total{pass=\"%s\"} %.3f\n", pass_names[p],
                   (double)atomic_load(&m->ctr[MC_PASS_MS + p]) / 1e3);
    buf_printf(out, "# HELP cairn_chunkd_maint_last_pass_ok 1 if the last pass of this kind "
                    "completed, 0 if it stopped on an error.\n"
                    "# TYPE cairn_chunkd_maint_last_pass_ok gauge\n");
    for (int p = 0; p < MAINT_NPASSES; p++)
        buf_printf(out, "cairn_chunkd_maint_last_pass_ok{pass=\"%s\"} %d\n", pass_names[p],
                   has[p] && last[p].rc == 0);

    maint_ctr(out, m, "cairn_chunkd_scrub_bytes_total", "Bytes read by scrub passes.",
              MC_SCRUB_BYTES);
    maint_ctr(out, m, "cairn_chunkd_scrub_corrupt_total",
              "Chunk files a scrub found corrupt (moved aside).", MC_CORRUPT);
    maint_ctr(out, m, "cairn_chunkd_refetched_total",
              "Corrupt chunks replaced by a good copy from another server.", MC_REFETCHED);
    maint_ctr(out, m, "cairn_chunkd_refetch_failed_total",
              "Corrupt chunks no other server had a good copy of.", MC_REFETCH_FAILED);
    maint_ctr(out, m, "cairn_chunkd_refetch_dropped_total",
              "Corrupt chunk ids not queued for re-fetch (queue full).", MC_REFETCH_DROPPED);
    metric1(out, "cairn_chunkd_refetch_queue", "gauge", "Corrupt chunk ids waiting for re-fetch.",
            qlen);
    metric1(out, "cairn_chunkd_repair_under_replicated", "gauge",
            "Referenced chunks this server found with fewer than R copies in the last repair "
            "pass (counted by one holder per chunk).",
            (uint64_t)atomic_load(&m->under_replicated));
    metric1(out, "cairn_chunkd_repair_misplaced", "gauge",
            "Referenced chunks held here whose top-R servers do not include this server (last "
            "repair pass).",
            (uint64_t)atomic_load(&m->misplaced));
    maint_ctr(out, m, "cairn_chunkd_repair_pushed_total",
              "Chunk copies pushed to other servers (repair, rebalance, drain).", MC_PUSHED);
    maint_ctr(out, m, "cairn_chunkd_repair_pushed_bytes_total", "Bytes of chunk copies pushed.",
              MC_PUSHED_BYTES);
    maint_ctr(out, m, "cairn_chunkd_repair_push_failed_total", "Pushes that failed.",
              MC_PUSH_FAILED);
    maint_ctr(out, m, "cairn_chunkd_repair_dropped_total",
              "Copies deleted here because the chunk's top-R servers all hold it.", MC_DROPPED);
    metric1(out, "cairn_chunkd_gc_unreferenced", "gauge",
            "Chunks no file references, seen by the last gc pass (deleted or within grace).",
            (uint64_t)atomic_load(&m->unreferenced));
    maint_ctr(out, m, "cairn_chunkd_gc_deleted_total", "Unreferenced chunks deleted.",
              MC_GC_DELETED);
    maint_ctr(out, m, "cairn_chunkd_gc_deleted_bytes_total",
              "Bytes of unreferenced chunk files deleted.", MC_GC_DELETED_BYTES);
    metric1(out, "cairn_chunkd_maint_rate_bytes", "gauge",
            "Rate limit of maintenance I/O in bytes per second (0 = none).", m->cfg.rate);
    maint_ctr(out, m, "cairn_chunkd_maint_throttle_ms_total",
              "Milliseconds maintenance waited for the rate limit.", MC_THROTTLE_MS);
}
