/*
 * maint.h — cairn-chunkd's background maintenance (DESIGN.md §4,
 * docs/REDUNDANCY.md): one thread that walks the chunk store in passes.
 *
 *   scrub      re-verify every chunk file (header, length, CRC32C); the
 *              "sha-scrub" variant also decodes the chunk and checks its
 *              SHA-256 against the id. A file that fails is moved to
 *              DATA/corrupt/ and fetched again from another server (GET in
 *              HRW order, SHA-256 checked, stored). The same re-fetch runs
 *              for files that a client GET found corrupt.
 *   repair     for every held chunk that metad says is referenced, make its
 *              current HRW top-R servers hold it (push copies), and drop
 *              this server's copy when it is not among them and all of them
 *              do (rebalance, drain). See repair.c for the exact rules.
 *   gc         delete held chunks that no file references (asked of metad
 *              in batches) and whose file is older than the grace period.
 *              Nothing is deleted when metad cannot be asked, or when
 *              metad's filesystem id differs from the one this data
 *              directory belongs to (DATA/fs.id, written on first contact).
 *
 * Passes run one at a time on the maintenance thread, each on its own
 * cadence (scrub_interval; a scrub becomes a sha-scrub when the last one is
 * sha_scrub_interval old; repair_interval, and repair_delay after metad's
 * cluster map epoch changes; gc_interval), or at once when asked through
 * maint_run (POST /maint/run). Every byte the passes read from disk or send
 * or fetch over the network is charged to one token bucket of `rate` bytes
 * per second, so client traffic keeps the rest of the disk and network.
 *
 * Memory: one batch of ids (MAINT_BATCH), the per-server query lists of a
 * batch, one chunk payload at a time, and a bounded queue of corrupt ids
 * to re-fetch (MAINT_REFETCH_QUEUE; an overflowing id is left to repair).
 *
 * Threads: maint_new/start/stop/free on the main thread; maint_run and
 * maint_metrics on any thread (httpd's). maint_run blocks its caller until
 * the pass it asked for has finished or the timeout passed.
 */
#ifndef CAIRN_CHUNK_MAINT_H
#define CAIRN_CHUNK_MAINT_H

#include <stdint.h>

#include "common/util.h"
#include "server/chunk/reg.h"
#include "server/chunk/store.h"

#define MAINT_BATCH 1024
#define MAINT_REFETCH_QUEUE 256

typedef struct maint maint;

enum maint_pass { MAINT_SCRUB, MAINT_SHA_SCRUB, MAINT_REPAIR, MAINT_GC, MAINT_NPASSES };

typedef struct maint_config {
    chunkstore *store;           /* borrowed; outlives maint */
    const char *dir;             /* data directory (DATA/fs.id) */
    const char *meta;            /* metad HOST:PORT; NULL = standalone (scrub only) */
    uint64_t max_chunk;          /* largest chunk fetched from a peer */
    uint64_t rate;               /* bytes per second for all passes; 0 = unlimited */
    uint64_t scrub_interval_ms;  /* 0 = only when asked */
    uint64_t sha_scrub_interval_ms;
    uint64_t repair_interval_ms;
    uint64_t repair_delay_ms;    /* after a cluster map change */
    uint64_t gc_interval_ms;
    uint64_t gc_grace_ms;
} maint_config;

/* What one pass did (also kept for the last pass of each kind). */
typedef struct maint_result {
    int rc;                      /* 0, or why the pass stopped early */
    int64_t started_ns;          /* wall clock */
    int64_t duration_ms;
    uint64_t scanned;            /* chunk ids looked at */
    uint64_t bytes;              /* bytes charged to the rate limit */
    /* scrub */
    uint64_t corrupt, refetched, refetch_failed;
    /* repair */
    uint64_t referenced, under_replicated, misplaced, pushed, pushed_bytes, push_failed,
        dropped;
    /* gc */
    uint64_t unreferenced, deleted, deleted_bytes, recent;
} maint_result;

/* Config strings are copied. Installs the store's corrupt hook, so call it
 * before other threads use the store. */
maint *maint_new(const maint_config *cfg);
/* Starts the thread; reg (may be NULL) supplies our server id and the map
 * epoch. 0 or -errno. */
int maint_start(maint *m, chunkreg *reg);
/* Stops the thread (a pass in progress ends at its next chunk) and joins
 * it; waiters of maint_run get -ECANCELED. NULL is a no-op. */
void maint_stop(maint *m);
void maint_free(maint *m);

/* Run a pass now (after the one in progress) and wait for it up to
 * timeout_ms. 0 with *out filled when it ran (out->rc says how it went),
 * -ETIMEDOUT (it keeps running), -ECANCELED (stopping), -EAGAIN (thread
 * not started). */
int maint_run(maint *m, enum maint_pass pass, int64_t timeout_ms, maint_result *out);

const char *maint_pass_name(enum maint_pass pass);
/* -EINVAL for an unknown name. */
int maint_pass_parse(const char *name, enum maint_pass *out);

/* Prometheus text of the maintenance series; ctx is the maint (NULL:
 * nothing). */
void maint_metrics(buf *out, void *ctx);

#endif
