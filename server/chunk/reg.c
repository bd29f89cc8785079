/*
 * reg.c — registration and heartbeats with cairn-metad (see reg.h).
 */
#include "server/chunk/reg.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

#include "common/err.h"
#include "common/fsrec.h"
#include "common/httpc.h"
#include "common/log.h"
#include "common/rec.h"

#define RECORD_CT "Content-Type: application/x-cairn-record"

struct chunkreg {
    char *meta;
    char *addr;
    char *dir;
    chunkstore *store;
    uint64_t capacity;
    uint64_t hb_interval_ms;
    httpc *http;
    pthread_t thread;
    /* lock guards stop and pairs with wake: chunkreg_stop sets stop and
     * signals so a waiting thread leaves its sleep at once. */
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int stop;
    /* Written by the reg thread only; read by /metrics. */
    atomic_uint_fast32_t sid;
    atomic_int registered;
    atomic_uint_fast64_t failures;
    atomic_uint_fast64_t registrations;
    atomic_uint_fast64_t heartbeats;
    atomic_uint_fast64_t epoch;
};

int chunkreg_load_sid(const char *dir, uint32_t *sid)
{
    char *path = xasprintf("%s/server.id", dir);
    uint8_t *data = NULL;
    size_t len;
    *sid = 0;
    int rc = read_file(path, 64, &data, &len);
    if (rc == -ENOENT) {
        rc = 0;
        goto out;
    }
    if (rc < 0)
        goto out;
    char *end;
    errno = 0;
    unsigned long long v = strtoull((char *)data, &end, 10);
    while (*end == '\n' || *end == ' ')
        end++;
    if (errno || end == (char *)data || *end || v == 0 || v > UINT32_MAX) {
        log_error("%s: not a server id", path);
        rc = -EINVAL;
        goto out;
    }
    *sid = (uint32_t)v;
out:
    free(data);
    free(path);
    return rc;
}

int chunkreg_save_sid(const char *dir, uint32_t sid)
{
    char *path = xasprintf("%s/server.id", dir);
    char text[16];
    int n = snprintf(text, sizeof text, "%" PRIu32 "\n", sid);
    int rc = write_file_atomic(path, text, (size_t)n);
    free(path);
    return rc;
}

/* Sleep up to ms unless asked to stop; returns 1 if stopping. */
static int reg_wait(chunkreg *g, uint64_t ms)
{
    struct timespec ts = mono_deadline((int64_t)ms * 1000000);
    pthread_mutex_lock(&g->lock);
    while (!g->stop) {
        if (pthread_cond_timedwait(&g->wake, &g->lock, &ts) == ETIMEDOUT)
            break;
    }
    int stop = g->stop;
    pthread_mutex_unlock(&g->lock);
    return stop;
}

/*
 * The "used" bytes reported to metad. metad judges a server FULL by
 * capacity - used, so counting only chunk files is wrong when the data
 * file system also holds other files (or is smaller than --capacity): the
 * disk could be out of space, failing every upload with 507, while metad
 * still saw plenty free and kept placing chunks there. So report the
 * space that is not available for new chunks: the larger of the chunk
 * bytes and capacity minus what statvfs says is available.
 */
static uint64_t reg_used(const chunkreg *g, uint64_t chunk_bytes)
{
    struct statvfs v;
    if (statvfs(g->dir, &v) < 0)
        return chunk_bytes;
    uint64_t avail = (uint64_t)v.f_bavail * v.f_frsize;
    if (g->capacity > avail && g->capacity - avail > chunk_bytes)
        return g->capacity - avail;
    return chunk_bytes;
}

/* One register or heartbeat round trip. Returns 0 (answer applied),
 * -ENOENT (heartbeat: metad does not know our id), or another negative code. */
static int reg_call(chunkreg *g, int heartbeat, uint64_t *hb_ms)
{
    chunkstore_stats st;
    chunkstore_get_stats(g->store, &st);
    uint32_t sid = (uint32_t)atomic_load(&g->sid);

    recw w;
    recw_init(&w, FSREC_SERVER);
    recw_u64(&w, FT_SID, sid);
    recw_str(&w, FT_ADDR, g->addr);
    recw_u64(&w, FT_CAPACITY, g->capacity);
    recw_u64(&w, FT_USED, reg_used(g, st.bytes));
    recw_u64(&w, FT_CHUNKS, st.chunks);
    size_t len;
    const uint8_t *body = recw_finish(&w, &len);

    char *url = xasprintf("http://%s/v1/%s", g->meta, heartbeat ? "heartbeat" : "register");
    const char *const headers[] = {RECORD_CT, NULL};
    httpc_resp resp;
    memset(&resp, 0, sizeof resp);
    int rc = httpc_do(g->http, "POST", url, headers, body, len, REG_HTTP_TIMEOUT_MS, &resp);
    recw_free(&w);
    if (rc < 0)
        goto out;
    if (resp.status != 200) {
        rc = cairn_http_to_err(resp.status, resp.errname[0] ? resp.errname : NULL);
        if (rc == 0)
            rc = CAIRN_EPROTO;
        goto out;
    }
    recr r;
    uint64_t new_sid, hb;
    if ((rc = rec_open(&r, resp.body, resp.len)) < 0)
        goto out;
    if (r.type != FSREC_SERVER || rec_get_u64(&r, FT_SID, &new_sid) < 0 || new_sid == 0 ||
        new_sid > UINT32_MAX) {
        rc = CAIRN_EPROTO;
        goto out;
    }
    if (rec_get_u64(&r, FT_HB_INTERVAL, &hb) == 0 && hb > 0)
        *hb_ms = hb;
    uint64_t epoch;
    if (rec_get_u64(&r, FT_EPOCH, &epoch) == 0 || (epoch = resp.epoch) != 0)
        atomic_store(&g->epoch, epoch);
    if (new_sid != sid) {
        int src = chunkreg_save_sid(g->dir, (uint32_t)new_sid);
        if (src < 0)
            log_error("cannot save server id %" PRIu64 " in %s/server.id: %s", new_sid, g->dir,
                      cairn_strerror(src));
        if (sid)
            log_warn("metad assigned server id %" PRIu64 " (was %" PRIu32 ")", new_sid, sid);
        atomic_store(&g->sid, (uint32_t)new_sid);
    }
    if (!heartbeat)
        log_info("registered with metad %s as server %" PRIu64, g->meta, new_sid);
    rc = 0;
out:
    httpc_resp_free(&resp);
    free(url);
    return rc;
}

static void *reg_thread(void *arg)
{
    chunkreg *g = arg;
    uint64_t backoff = REG_BACKOFF_MIN_MS;
    int failing = 0;
    /* Heartbeats once metad has accepted a registration; a failed call
     * (metad down, network) does not change that, only a 404 does. */
    int heartbeat = 0;

    for (;;) {
        uint64_t meta_hb = 0;
        int rc = reg_call(g, heartbeat, &meta_hb);
        uint64_t wait_ms;
        if (rc == 0) {
            if (failing)
                log_info("metad %s reachable again", g->meta);
            atomic_fetch_add(heartbeat ? &g->heartbeats : &g->registrations, 1);
            atomic_store(&g->registered, 1);
            heartbeat = 1;
            failing = 0;
            backoff = REG_BACKOFF_MIN_MS;
            wait_ms = g->hb_interval_ms;
            if (meta_hb && meta_hb < wait_ms)
                wait_ms = meta_hb;
        } else if (heartbeat && rc == -ENOENT) {
            log_warn("metad %s does not know server %" PRIu32 "; registering again", g->meta,
                     (uint32_t)atomic_load(&g->sid));
            atomic_store(&g->registered, 0);
            heartbeat = 0;
            wait_ms = 0;
        } else {
            atomic_fetch_add(&g->failures, 1);
            atomic_store(&g->registered, 0);
            if (!failing)
                log_warn("%s with metad %s failed: %s; retrying in the background",
                         heartbeat ? "heartbeat" : "registration", g->meta, cairn_strerror(rc));
            else
                log_debug("%s with metad %s failed: %s",
                          heartbeat ? "heartbeat" : "registration", g->meta, cairn_strerror(rc));
            failing = 1;
            wait_ms = backoff;
            backoff = MIN(backoff * 2, (uint64_t)REG_BACKOFF_MAX_MS);
        }
        if (reg_wait(g, wait_ms))
            break;
    }
    return NULL;
}

int chunkreg_start(const chunkreg_config *cfg, chunkreg **out)
{
    uint32_t sid;
    int rc = chunkreg_load_sid(cfg->dir, &sid);
    if (rc < 0)
        return rc;

    chunkreg *g = xcalloc(1, sizeof *g);
    g->meta = xstrdup(cfg->meta);
    g->addr = xstrdup(cfg->addr);
    g->dir = xstrdup(cfg->dir);
    g->store = cfg->store;
    g->capacity = cfg->capacity;
    g->hb_interval_ms = cfg->hb_interval_ms ? cfg->hb_interval_ms : 2000;
    atomic_store(&g->sid, sid);
    pthread_mutex_init(&g->lock, NULL);
    cond_init_mono(&g->wake);
    httpc_config hc = {.handles = 1, .connect_timeout_ms = 1000, .max_resp = 1 << 20};
    g->http = httpc_new(&hc);
    if (!g->http) {
        rc = -ENOMEM;
        goto fail;
    }
    rc = -pthread_create(&g->thread, NULL, reg_thread, g);
    if (rc < 0)
        goto fail;
    *out = g;
    return 0;

fail:
    httpc_free(g->http);
    pthread_cond_destroy(&g->wake);
    pthread_mutex_destroy(&g->lock);
    free(g->meta);
    free(g->addr);
    free(g->dir);
    free(g);
    return rc;
}

void chunkreg_stop(chunkreg *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&g->lock);
    g->stop = 1;
    pthread_cond_signal(&g->wake);
    pthread_mutex_unlock(&g->lock);
    pthread_join(g->thread, NULL);
    httpc_free(g->http);
    pthread_cond_destroy(&g->wake);
    pthread_mutex_destroy(&g->lock);
    free(g->meta);
    free(g->addr);
    free(g->dir);
    free(g);
}

uint32_t chunkreg_sid(chunkreg *g)
{
    return g ? (uint32_t)atomic_load(&g->sid) : 0;
}

uint64_t chunkreg_epoch(chunkreg *g)
{
    return g ? (uint64_t)atomic_load(&g->epoch) : 0;
}

void chunkreg_metrics(buf *out, void *ctx)
{
    chunkreg *g = ctx;
    if (!g)
        return;
    buf_printf(out,
               "# HELP cairn_chunkd_registered 1 while the last register/heartbeat call to metad succeeded.\n"
               "# TYPE cairn_chunkd_registered gauge\n"
               "cairn_chunkd_registered %d\n"
               "# HELP cairn_chunkd_server_id Server id assigned by metad (0 = none yet).\n"
               "# TYPE cairn_chunkd_server_id gauge\n"
               "cairn_chunkd_server_id %" PRIu32 "\n"
               "# HELP cairn_chunkd_meta_failures_total Failed register/heartbeat calls.\n"
               "# TYPE cairn_chunkd_meta_failures_total counter\n"
               "cairn_chunkd_meta_failures_total %" PRIu64 "\n"
               "# HELP cairn_chunkd_registrations_total Successful registrations.\n"
               "# TYPE cairn_chunkd_registrations_total counter\n"
               "cairn_chunkd_registrations_total %" PRIu64 "\n"
               "# HELP cairn_chunkd_heartbeats_total Successful heartbeats.\n"
               "# TYPE cairn_chunkd_heartbeats_total counter\n"
               "cairn_chunkd_heartbeats_total %" PRIu64 "\n",
               atomic_load(&g->registered), (uint32_t)atomic_load(&g->sid),
               (uint64_t)atomic_load(&g->failures), (uint64_t)atomic_load(&g->registrations),
               (uint64_t)atomic_load(&g->heartbeats));
}
