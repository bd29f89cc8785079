/*
 * maint_i.h — private layout of the maintenance module, shared by
 * maint.c (thread, schedule, rate limit, re-fetch, metrics), scrub.c,
 * repair.c and gc.c (the passes). Not for other modules.
 *
 * Locks: `lock` guards the request/done sequence numbers, the stop flag,
 * the last results and the corrupt-id queue; it is never held across disk
 * or network I/O. Counters read by /metrics are atomics. Everything else
 * (map, fsinfo, token bucket) belongs to the maintenance thread alone.
 */
#ifndef CAIRN_CHUNK_MAINT_I_H
#define CAIRN_CHUNK_MAINT_I_H

#include <pthread.h>
#include <stdatomic.h>

#include "server/chunk/maint.h"
#include "server/chunk/peer.h"

/* Live counters (totals since start), one set for the whole server. */
enum maint_counter {
    MC_SCANNED_SCRUB, MC_SCANNED_REPAIR, MC_SCANNED_GC,
    MC_SCRUB_BYTES, MC_CORRUPT, MC_REFETCHED, MC_REFETCH_FAILED, MC_REFETCH_DROPPED,
    MC_PUSHED, MC_PUSHED_BYTES, MC_PUSH_FAILED, MC_DROPPED,
    MC_GC_DELETED, MC_GC_DELETED_BYTES,
    MC_THROTTLE_MS,
    MC_PASSES, MC_PASS_MS = MC_PASSES + MAINT_NPASSES,  /* one per pass kind each */
    MC_NCOUNTERS = MC_PASS_MS + MAINT_NPASSES
};

struct maint {
    maint_config cfg;
    chunkstore *store;
    peer *peer;
    chunkreg *reg;
    pthread_t thread;
    int started;

    pthread_mutex_t lock;
    pthread_cond_t wake;         /* thread: requests, queue, stop */
    pthread_cond_t done;         /* maint_run waiters */
    int stop;
    uint64_t req_seq[MAINT_NPASSES];
    uint64_t done_seq[MAINT_NPASSES];
    maint_result last[MAINT_NPASSES];
    int has_last[MAINT_NPASSES];
    uint8_t queue[MAINT_REFETCH_QUEUE][CHUNK_ID_LEN];
    size_t q_head, q_len;

    /* maintenance thread only */
    peer_map *map;               /* last cluster map fetched (heap: ~30 KiB) */
    int64_t map_ms;              /* when (monotonic), 0 = never */
    peer_fsinfo fs;
    int fs_ok;                   /* fs verified against DATA/fs.id */
    int64_t tb_next_ns;          /* token bucket: when the budget is back to 0 */
    int64_t due_ms[MAINT_NPASSES];
    uint64_t repair_backoff_ms;  /* follow-up delay while repair leaves work */
    uint64_t seen_epoch;

    atomic_int running;          /* pass + 1, 0 = idle */
    atomic_uint_fast64_t progress;   /* ids scanned by the running pass */
    atomic_uint_fast64_t ctr[MC_NCOUNTERS];
    atomic_uint_fast64_t under_replicated;   /* gauge: last repair pass */
    atomic_uint_fast64_t misplaced;          /* gauge: last repair pass */
    atomic_uint_fast64_t unreferenced;       /* gauge: last gc pass */
};

static inline void maint_count(maint *m, enum maint_counter c, uint64_t v)
{
    atomic_fetch_add(&m->ctr[c], v);
}

/* 1 when the thread has been asked to stop (passes check it per chunk). */
int maint_stopping(maint *m);
/* Charge bytes to the rate limit; sleeps (waking early on stop) until the
 * budget allows them. */
void maint_throttle(maint *m, maint_result *res, uint64_t bytes);
/* Make sure m->map is at most max_age_ms old and matches the epoch metad
 * last announced; 0 or the error of fetching it. */
int maint_refresh_map(maint *m, int64_t max_age_ms);
/* Fetch fsinfo and check the filesystem id against DATA/fs.id (written on
 * first contact). 0, -EXDEV (another filesystem: passes that delete or
 * copy must not run), or the error of asking metad. */
int maint_check_fs(maint *m);
/* Re-fetch the queued corrupt ids from other servers. */
void maint_refetch_queued(maint *m, maint_result *res);

/* The passes; each fills res and returns 0 or the error that stopped it. */
int maint_scrub_pass(maint *m, int full, maint_result *res);
int maint_repair_pass(maint *m, maint_result *res);
int maint_gc_pass(maint *m, maint_result *res);

#endif
