/*
 * reg.h — cairn-chunkd's membership in the cluster: registration with
 * cairn-metad and heartbeats (docs/PROTOCOL.md, register / heartbeat).
 *
 * One background thread owned by the reg handle does all metad traffic, so
 * the chunk server serves chunks whether or not metad is reachable:
 *   - without a server id, or after metad answered 404 to a heartbeat (it
 *     forgot us), it POSTs /v1/register with FSREC_SERVER {FT_SID (0 = new),
 *     FT_ADDR, FT_CAPACITY, FT_USED, FT_CHUNKS};
 *   - once registered it POSTs /v1/heartbeat with the same record every
 *     heartbeat interval (the configured one, or metad's FT_HB_INTERVAL when
 *     that is shorter, so metad's down-detection holds);
 *   - a failed attempt (no answer, 5xx, bad record) is retried with
 *     exponential backoff from 200 ms up to a bound (REG_BACKOFF_MAX_MS);
 *     only the first failure of a series is logged at warn level.
 * The id metad assigns is stored in DIR/server.id (decimal, written
 * atomically) so the server keeps its identity across restarts.
 *
 * Threads: chunkreg_start/chunkreg_stop run on the main thread;
 * chunkreg_metrics may run on any thread (atomics only). chunkreg_stop
 * wakes the thread and joins it; an HTTP call in progress finishes first
 * (bounded by its timeout, REG_HTTP_TIMEOUT_MS).
 */
#ifndef CAIRN_CHUNK_REG_H
#define CAIRN_CHUNK_REG_H

#include <stdint.h>

#include "common/util.h"
#include "server/chunk/store.h"

#define REG_BACKOFF_MIN_MS 200
#define REG_BACKOFF_MAX_MS 5000
#define REG_HTTP_TIMEOUT_MS 3000

typedef struct chunkreg chunkreg;

typedef struct chunkreg_config {
    const char *meta;          /* metad "HOST:PORT" */
    const char *addr;          /* our address as clients reach it, "HOST:PORT" */
    const char *dir;           /* data directory (server.id lives there) */
    chunkstore *store;         /* for used bytes and chunk count; borrowed */
    uint64_t capacity;         /* bytes offered */
    uint64_t hb_interval_ms;   /* heartbeat period */
} chunkreg_config;

/* Read DIR/server.id: 0 and *sid = 0 when absent; -EINVAL if malformed. */
int chunkreg_load_sid(const char *dir, uint32_t *sid);
/* Write DIR/server.id atomically. */
int chunkreg_save_sid(const char *dir, uint32_t sid);

/* Loads the stored id and starts the thread. Config strings are copied.
 * Returns 0, -EINVAL (malformed server.id), or -errno. */
int chunkreg_start(const chunkreg_config *cfg, chunkreg **out);
/* Stops and joins the thread and frees everything. NULL is a no-op. */
void chunkreg_stop(chunkreg *g);

/* The server id metad assigned (0 before the first registration) and the
 * cluster map epoch of metad's last answer (0 before one); any thread.
 * NULL gives 0. */
uint32_t chunkreg_sid(chunkreg *g);
uint64_t chunkreg_epoch(chunkreg *g);

/* Appends registration state (registered, server id, failures) as
 * Prometheus text. ctx is the chunkreg (NULL: nothing appended). */
void chunkreg_metrics(buf *out, void *ctx);

#endif
