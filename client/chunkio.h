/*
 * chunkio.h — chunk transfers between the client and the chunk servers
 * (DESIGN.md §4, §6).
 *
 * Placement: the cluster map comes from metad (refreshed whenever metad's
 * answers carry a newer epoch, when every candidate failed, and at least
 * every map_refresh_ms). A chunk's servers are ranked by weighted HRW
 * (common/hrw.h) over the servers that are UP, weight = capacity.
 *
 * Uploads (cio_put_async): the chunk goes to the top `replicas` servers in
 * parallel on a pool of worker threads; a target that fails is replaced by
 * the next server in HRW order; 503 answers are retried on the same server
 * after Retry-After. The upload succeeds when at least min_replicas copies
 * exist (fewer than `replicas` is logged as under-replicated); when no more
 * servers are left it retries with backoff until retry_ms, then fails
 * with -EIO and a log line naming the chunk. done(arg, err) is called
 * exactly once, on a worker thread, after which the caller's cbuf reference
 * has been released by the chunk layer (it takes its own).
 *
 * Reads (cio_get / cio_read): local chunk cache first; on a miss one
 * network fetch per chunk id (concurrent misses wait for the same fetch),
 * trying servers in HRW order (UP first, then the rest), verifying the
 * SHA-256 of what arrives, falling back to the next server on a miss, an
 * error or a mismatch. When no server has a good copy it retries with
 * backoff until retry_ms, then fails with -EIO, naming the chunk in the log.
 *
 * Prefetch (cio_prefetch): queued to fetcher threads (bounded queue; a full
 * queue drops the hint), never blocks the caller.
 *
 * Thread-safe. cio_free waits for queued uploads and prefetches to end.
 */
#ifndef CAIRN_CHUNKIO_H
#define CAIRN_CHUNKIO_H

#include <stddef.h>
#include <stdint.h>

#include "cache/bufpool.h"
#include "cache/cbuf.h"
#include "cache/chunkcache.h"
#include "client/metaclient.h"

typedef struct cio cio;

/* Chunk bytes held outside the memory budget by each kind of bounded work
 * (cio_get's fetches here, merges in the file layer): the default of their
 * slots is as many chunks as fit in this. */
#define CIO_HELD_BYTES (16ull << 20)

typedef struct cio_config {
    mc *meta;
    ccache *cache;              /* may be NULL */
    bufpool *pool;              /* budget for prefetch buffers; may be NULL */
    uint64_t chunk_size;
    unsigned replicas, min_replicas;
    unsigned workers;           /* upload threads; 0 = 8 */
    unsigned fetchers;          /* prefetch threads; 0 = 4 */
    /* Fetches of chunks not in the cache that run at once for cio_get
     * (readers, merges with a chunk's old bytes); more wait their turn.
     * Their buffers are outside the budget (prefetches have theirs from
     * pool), so this bounds what they add to it. 0 = as many as fit in
     * CIO_HELD_BYTES of chunks, at least 2. */
    unsigned fetch_slots;
    unsigned retry_ms;          /* 0 = 60000 */
    unsigned map_refresh_ms;    /* 0 = 5000 */
    int cache_writes;           /* put uploaded chunks into the cache */
    /* Read chunk files of chunk servers on this machine directly (see
     * cio_get); fsid names the filesystem their data directories must hold. */
    int local_reads;
    uint8_t fsid[16];
} cio_config;

cio *cio_new(const cio_config *cfg, int *err);
void cio_free(cio *c);

/* The chunk's bytes, from the cache, a local chunk file, or a chunk server.
 * Local: with cfg.local_reads, each chunk server is asked once for its data
 * directory (GET /local); when that directory is visible here and holds
 * the server's server.id (and this filesystem's fs.id, once the server has
 * written it), the chunk is read
 * from its file there, checked like the server checks it for a GET (the
 * header names this id, the payload matches its CRC32C); any failure falls
 * back to HTTP. Chunks read locally are kept in the memory tier only; once a
 * local file was read whole and found good, cio_read serves ranges of it
 * from the file while it is the same file (device, inode, size, mtime).
 * A fetch (one per chunk however many ask at once) first waits for one of
 * cfg.fetch_slots. */
int cio_get(cio *c, const uint8_t id[CHUNK_ID_LEN], cbuf **out);
/* Copy up to len bytes at off of the chunk; returns bytes copied (short at
 * the chunk's end) or a negative error. */
long cio_read(cio *c, const uint8_t id[CHUNK_ID_LEN], uint64_t off, void *dst, size_t len);
void cio_prefetch(cio *c, const uint8_t id[CHUNK_ID_LEN]);

/* id is the chunk's SHA-256 (what was uploaded); NULL when err < 0. */
typedef void (*cio_done_fn)(void *arg, int err, const uint8_t *id);
/* b->len bytes are the chunk; id must be their SHA-256, or NULL to have a
 * worker thread compute it (keeps hashing off the caller's thread). */
void cio_put_async(cio *c, const uint8_t *id, cbuf *b, cio_done_fn done, void *arg);
int cio_put(cio *c, const uint8_t id[CHUNK_ID_LEN], cbuf *b);

/* Force a cluster map refresh now. */
int cio_refresh(cio *c);
/* Number of servers that are UP in the current map. */
size_t cio_servers_up(cio *c);

typedef struct cio_stats {
    uint64_t puts, put_bytes, put_failures, under_replicated;
    uint64_t gets, get_bytes, get_failures, verify_failures, shared_fetches;
    uint64_t prefetch_queued, prefetch_dropped;
    uint64_t local_reads, local_bytes, local_failures;
    uint64_t local_ranges;      /* reads served from a local file found good before */
    uint64_t fetch_waits;       /* cio_get fetches that waited for a fetch slot */
    uint64_t fetch_peak;        /* most cio_get fetches running at once */
} cio_stats;
void cio_get_stats(cio *c, cio_stats *out);

#endif
