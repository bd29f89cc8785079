/*
 * bufpool.c — the client's memory budget for data buffers (see bufpool.h).
 *
 * A counter under a mutex with one condition variable. Every release
 * broadcasts: waiters ask for different amounts, so waking only one could
 * wake the one that still does not fit while another that would fit sleeps.
 * The condition uses CLOCK_MONOTONIC so acquire_timeout is immune to wall
 * clock steps.
 */
#include "cache/bufpool.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "common/log.h"
#include "common/util.h"

struct bufpool {
    uint64_t max;           /* immutable after bufpool_new */
    pthread_mutex_t mu;     /* guards used, peak, waiting */
    pthread_cond_t cv;      /* signalled (broadcast) when used decreases */
    uint64_t used;          /* (mu) bytes granted and not yet released */
    uint64_t peak;          /* (mu) highest value used has reached */
    unsigned waiting;       /* (mu) threads blocked in acquire */
};

bufpool *bufpool_new(uint64_t max)
{
    bufpool *p = xcalloc(1, sizeof *p);
    p->max = max;
    pthread_mutex_init(&p->mu, NULL);
    cond_init_mono(&p->cv);
    return p;
}

void bufpool_free(bufpool *p)
{
    if (!p)
        return;
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* Whether n more bytes may be granted now (p->mu held). Written without
 * used + n so a huge n cannot overflow into a small sum; used may exceed max
 * after an oversized grant. */
static int fits_locked(const bufpool *p, uint64_t n)
{
    if (p->used == 0)
        return 1;
    return p->used <= p->max && n <= p->max - p->used;
}

static void grant_locked(bufpool *p, uint64_t n)
{
    p->used += n;
    if (p->used > p->peak)
        p->peak = p->used;
}

void bufpool_acquire(bufpool *p, uint64_t n)
{
    pthread_mutex_lock(&p->mu);
    if (!fits_locked(p, n)) {
        p->waiting++;
        do
            pthread_cond_wait(&p->cv, &p->mu);
        while (!fits_locked(p, n));
        p->waiting--;
    }
    grant_locked(p, n);
    pthread_mutex_unlock(&p->mu);
}

void bufpool_acquire_force(bufpool *p, uint64_t n)
{
    pthread_mutex_lock(&p->mu);
    grant_locked(p, n);
    pthread_mutex_unlock(&p->mu);
}

int bufpool_try_acquire(bufpool *p, uint64_t n)
{
    int ok;
    pthread_mutex_lock(&p->mu);
    ok = fits_locked(p, n);
    if (ok)
        grant_locked(p, n);
    pthread_mutex_unlock(&p->mu);
    return ok;
}

int bufpool_acquire_timeout(bufpool *p, uint64_t n, int timeout_ms)
{
    struct timespec deadline;
    int ok;

    if (timeout_ms < 0) {
        bufpool_acquire(p, n);
        return 1;
    }
    deadline = mono_deadline((int64_t)timeout_ms * 1000000);

    pthread_mutex_lock(&p->mu);
    ok = fits_locked(p, n);
    if (!ok && timeout_ms > 0) {
        p->waiting++;
        while (!ok) {
            int rc = pthread_cond_timedwait(&p->cv, &p->mu, &deadline);
            /* Re-check even on timeout: a release may have landed with it. */
            ok = fits_locked(p, n);
            if (rc == ETIMEDOUT)
                break;
        }
        p->waiting--;
    }
    if (ok)
        grant_locked(p, n);
    pthread_mutex_unlock(&p->mu);
    return ok;
}

void bufpool_release(bufpool *p, uint64_t n)
{
    pthread_mutex_lock(&p->mu);
    if (n > p->used) {
        /* A caller bug; clamping keeps the budget usable instead of
         * wrapping used to nearly 2^64, which would block every writer. */
        log_error("bufpool: release of %llu bytes with only %llu outstanding",
                  (unsigned long long)n, (unsigned long long)p->used);
        n = p->used;
    }
    p->used -= n;
    pthread_mutex_unlock(&p->mu);
    pthread_cond_broadcast(&p->cv);
}

uint64_t bufpool_used(bufpool *p)
{
    pthread_mutex_lock(&p->mu);
    uint64_t v = p->used;
    pthread_mutex_unlock(&p->mu);
    return v;
}

uint64_t bufpool_peak(bufpool *p)
{
    pthread_mutex_lock(&p->mu);
    uint64_t v = p->peak;
    pthread_mutex_unlock(&p->mu);
    return v;
}

uint64_t bufpool_max(bufpool *p)
{
    return p->max;
}

unsigned bufpool_waiting(bufpool *p)
{
    pthread_mutex_lock(&p->mu);
    unsigned v = p->waiting;
    pthread_mutex_unlock(&p->mu);
    return v;
}
