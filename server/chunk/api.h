/*
 * api.h — cairn-chunkd's HTTP routes (docs/PROTOCOL.md, "cairn-chunkd").
 *
 * Owns the route table handed to httpd and the request handlers that turn
 * HTTP requests into chunkstore calls, plus the chunk-server series of
 * /metrics. It translates store errors into statuses in one place
 * (chunkapi's reply helper): -EBADMSG (hash mismatch) is 422, CAIRN_ECORRUPT
 * 500, everything else through cairn_err_to_http.
 *
 * Ids in URLs are exactly 64 lowercase hex characters; anything else
 * (uppercase included, so one chunk has one URL) is 400 with Cairn-Errno
 * EINVAL.
 *
 * POST /maint/run?pass=scrub|sha-scrub|repair|gc[&timeout=SECONDS] runs a
 * maintenance pass now (maint_run) and answers when it is done: 200 with
 * "key value" lines of what the pass did, the pass's error status when it
 * stopped early (same body), 504 when it did not end within the timeout
 * (default 300 s).
 *
 * GET /local answers the data directory (absolute path, one line), so a
 * client on the same machine can read chunk files directly; it proves the
 * directory is this server's by its fs.id and server.id files.
 *
 * Threads: handlers run on httpd's connection threads; all state they touch
 * is the thread-safe store and atomic counters. chunkapi_new/free run on the
 * main thread, free only after httpd_stop.
 */
#ifndef CAIRN_CHUNK_API_H
#define CAIRN_CHUNK_API_H

#include <stddef.h>
#include <stdint.h>

#include "common/httpd.h"
#include "common/util.h"
#include "server/chunk/maint.h"
#include "server/chunk/store.h"

/* Most ids one POST /chunks/query may carry. */
#define CHUNKAPI_QUERY_MAX 65536

typedef struct chunkapi chunkapi;

typedef struct chunkapi_config {
    chunkstore *store;        /* borrowed; outlives the api */
    uint64_t max_chunk;       /* largest PUT body accepted */
    maint *maint;             /* borrowed, may be NULL: POST /maint/run */
    const char *data_dir;     /* absolute; GET /local answers it */
} chunkapi_config;

chunkapi *chunkapi_new(const chunkapi_config *cfg);
void chunkapi_free(chunkapi *a);

/* Route table for httpd_config.routes (owned by a; ctx must be a). */
const httpd_route *chunkapi_routes(const chunkapi *a, size_t *n);
/* Appends the chunk-server series (Prometheus text); ctx is the chunkapi.
 * Fits httpd_config.metrics. */
void chunkapi_metrics(buf *out, void *ctx);

#endif
