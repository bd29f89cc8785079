/*
 * feed.h — a mount's reader of metad's change feed (POST /v1/changes,
 * docs/PROTOCOL.md): one thread that waits at metad for changes other
 * clients make and hands each to the mount, which drops what its kernel
 * and its own caches hold about that name or inode.
 *
 * While the feed is up, what the mount caches can only go stale for the
 * time a change takes to reach it (milliseconds), so the mount may let the
 * kernel keep names and attributes for long. The feed is up from its first
 * answer, and stays up while answers keep coming: it is down once no
 * answer came for wait_ms + 1 s (metad unreachable, restarted, or too
 * slow) and on any error. Going down, and a gap (metad no longer has the
 * records this mount needs, or restarted), call ops->all: from then on
 * the mount must assume anything changed. The thread keeps trying to get
 * the feed back, at most every 1 s.
 *
 * A cache answer the mount decides to keep for long must not race with an
 * invalidation: take cfeed_gen before looking (or asking metad), and keep
 * the answer for long only if cfeed_long(f, gen) still holds when giving
 * it out. The generation moves before every batch of invalidations and
 * before going down, and for settle_ms after that no answer is kept for
 * long.
 *
 * Thread-safe. The callbacks run on the feed thread, one at a time.
 */
#ifndef CAIRN_FEED_H
#define CAIRN_FEED_H

#include <stdint.h>

#include "client/metaclient.h"

typedef struct cfeed cfeed;

typedef struct cfeed_ops {
    /* The name in directory parent may refer to something else now. */
    void (*entry)(void *ctx, uint64_t parent, const char *name);
    /* Inode ino's attributes or contents changed. */
    void (*inode)(void *ctx, uint64_t ino);
    /* Anything may have changed. */
    void (*all)(void *ctx);
} cfeed_ops;

/* Start following metad at addr ("host:port"). m gives the mount's session
 * (its own changes are not sent back to it). wait_ms: how long one request
 * waits at metad for a change (100 .. 60000). settle_ms: for this long
 * after an invalidation no answer is kept for long (the mount's own caches
 * may hold, that long, what an answer fetched before the change said).
 * NULL on a bad argument. */
cfeed *cfeed_start(const char *addr, mc *m, uint64_t wait_ms, uint64_t settle_ms,
                   const cfeed_ops *ops, void *ctx);
/* Wait up to ms for the feed to be up; call it before the mount answers
 * anything: a first answer that comes meanwhile starts the feed without
 * the settling time (nothing cached can be stale). 1 when up. */
int cfeed_wait_up(cfeed *f, int64_t ms);
/* Ask the thread to stop after its request (metad answers a waiting
 * request at once when the session ends: call this before ending it). */
void cfeed_quit(cfeed *f);
/* Stop (cfeed_quit if not done), wait for the thread (at most wait_ms +
 * 1 s) and free. */
void cfeed_stop(cfeed *f);

/* The generation (see above). f may be NULL (no feed): 0. */
uint64_t cfeed_gen(cfeed *f);
/* Whether an answer taken at generation gen may be kept for long: the
 * feed is up and nothing was invalidated since. f NULL: 0. */
int cfeed_long(cfeed *f, uint64_t gen);

typedef struct cfeed_stats {
    uint64_t answers, records, gaps, downs;
    int up;
} cfeed_stats;
void cfeed_get_stats(cfeed *f, cfeed_stats *out);

#endif
