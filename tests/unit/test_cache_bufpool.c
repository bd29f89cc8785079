/*
 * test_cache_bufpool.c — the client memory budget (cache/bufpool.h):
 * accounting and peak, blocking until a release, timeouts, oversized
 * requests, and the budget holding under contention.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include <cmocka.h>

#include "cache/bufpool.h"
#include "common/util.h"

static void test_accounting_and_peak(void **state)
{
    (void)state;
    bufpool *p = bufpool_new(100);
    assert_int_equal(bufpool_max(p), 100);
    assert_int_equal(bufpool_used(p), 0);
    assert_int_equal(bufpool_peak(p), 0);

    bufpool_acquire(p, 60);
    assert_int_equal(bufpool_try_acquire(p, 50), 0);
    assert_int_equal(bufpool_used(p), 60);
    assert_int_equal(bufpool_try_acquire(p, 40), 1);
    assert_int_equal(bufpool_used(p), 100);
    assert_int_equal(bufpool_try_acquire(p, 1), 0);
    assert_int_equal(bufpool_acquire_timeout(p, 1, 0), 0);
    bufpool_release(p, 60);
    assert_int_equal(bufpool_used(p), 40);
    assert_int_equal(bufpool_acquire_timeout(p, 60, 0), 1);
    bufpool_release(p, 100);
    assert_int_equal(bufpool_used(p), 0);
    assert_int_equal(bufpool_peak(p), 100);
    bufpool_acquire(p, 30);
    assert_int_equal(bufpool_peak(p), 100);
    bufpool_release(p, 30);
    bufpool_free(p);
}

typedef struct blocker {
    bufpool *p;
    uint64_t n;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;       /* (mu) the acquire returned */
} blocker;

static void *blocker_main(void *arg)
{
    blocker *b = arg;
    bufpool_acquire(b->p, b->n);
    pthread_mutex_lock(&b->mu);
    b->done = 1;
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

/* Wait for b->done for at most ms; returns it. */
static int wait_done(blocker *b, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&b->mu);
    while (!b->done)
        if (pthread_cond_timedwait(&b->cv, &b->mu, &ts) == ETIMEDOUT)
            break;
    int d = b->done;
    pthread_mutex_unlock(&b->mu);
    return d;
}

/* The pool itself says when a thread is parked in acquire; the deadline
 * only turns a broken pool into a failure instead of a hang. */
static void wait_parked(bufpool *p)
{
    int64_t deadline = now_mono_ms() + 10000;
    while (bufpool_waiting(p) == 0) {
        assert_true(now_mono_ms() < deadline);
        sched_yield();
    }
}

static void start_blocker(blocker *b, pthread_t *th, bufpool *p, uint64_t n)
{
    b->p = p;
    b->n = n;
    b->done = 0;
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    assert_int_equal(pthread_create(th, NULL, blocker_main, b), 0);
    wait_parked(p);
}

static void finish_blocker(blocker *b, pthread_t th)
{
    pthread_join(th, NULL);
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->mu);
}

static void test_acquire_blocks_until_release(void **state)
{
    (void)state;
    bufpool *p = bufpool_new(100);
    blocker b;
    pthread_t th;

    bufpool_acquire(p, 80);
    start_blocker(&b, &th, p, 50);
    /* Still blocked a while later, and still blocked after a release that
     * does not free enough. */
    assert_int_equal(wait_done(&b, 100), 0);
    bufpool_release(p, 20);
    assert_int_equal(bufpool_used(p), 60);
    assert_int_equal(wait_done(&b, 100), 0);
    assert_int_equal(bufpool_waiting(p), 1);
    /* Main's own timed request for the same amount times out too. */
    assert_int_equal(bufpool_acquire_timeout(p, 50, 50), 0);

    bufpool_release(p, 60);
    assert_int_equal(wait_done(&b, 10000), 1);
    finish_blocker(&b, th);
    assert_int_equal(bufpool_used(p), 50);
    assert_int_equal(bufpool_waiting(p), 0);
    assert_int_equal(bufpool_peak(p), 80);
    bufpool_release(p, 50);
    bufpool_free(p);
}

typedef struct timed {
    bufpool *p;
    int granted;
} timed;

static void *timed_main(void *arg)
{
    timed *t = arg;
    t->granted = bufpool_acquire_timeout(t->p, 70, 20000);
    return NULL;
}

static void test_acquire_timeout_woken_by_release(void **state)
{
    (void)state;
    bufpool *p = bufpool_new(100);
    timed t = {.p = p};
    pthread_t th;
    int64_t t0 = now_mono_ms();

    bufpool_acquire(p, 50);
    assert_int_equal(pthread_create(&th, NULL, timed_main, &t), 0);
    wait_parked(p);
    bufpool_release(p, 50);
    pthread_join(th, NULL);
    assert_int_equal(t.granted, 1);
    /* Woken by the release, not by its 20 s timeout. */
    assert_true(now_mono_ms() - t0 < 15000);
    assert_int_equal(bufpool_used(p), 70);
    bufpool_release(p, 70);
    bufpool_free(p);
}

static void test_timeout_expires(void **state)
{
    (void)state;
    bufpool *p = bufpool_new(100);
    bufpool_acquire(p, 100);
    int64_t t0 = now_mono_ms();
    assert_int_equal(bufpool_acquire_timeout(p, 1, 200), 0);
    int64_t dt = now_mono_ms() - t0;
    assert_true(dt >= 190);
    assert_int_equal(bufpool_used(p), 100);
    assert_int_equal(bufpool_waiting(p), 0);
    bufpool_release(p, 100);
    bufpool_free(p);
}

static void test_oversize(void **state)
{
    (void)state;
    bufpool *p = bufpool_new(100);
    blocker b;
    pthread_t th;

    /* Granted at once when nothing is outstanding (try first, so that a
     * pool that gets this wrong fails here instead of hanging below)... */
    assert_int_equal(bufpool_try_acquire(p, 500), 1);
    bufpool_release(p, 500);
    bufpool_acquire(p, 500);
    assert_int_equal(bufpool_used(p), 500);
    assert_int_equal(bufpool_peak(p), 500);
    assert_int_equal(bufpool_try_acquire(p, 1), 0);
    bufpool_release(p, 500);
    assert_int_equal(bufpool_try_acquire(p, 500), 1);
    bufpool_release(p, 500);
    assert_int_equal(bufpool_try_acquire(p, UINT64_MAX), 1);
    bufpool_release(p, UINT64_MAX);

    /* ...and waits while anything is. */
    bufpool_acquire(p, 10);
    assert_int_equal(bufpool_try_acquire(p, 500), 0);
    assert_int_equal(bufpool_try_acquire(p, UINT64_MAX), 0);
    start_blocker(&b, &th, p, 500);
    assert_int_equal(wait_done(&b, 100), 0);
    bufpool_release(p, 10);
    assert_int_equal(wait_done(&b, 10000), 1);
    finish_blocker(&b, th);
    assert_int_equal(bufpool_used(p), 500);
    bufpool_release(p, 500);
    assert_int_equal(bufpool_used(p), 0);
    bufpool_free(p);
}

static void test_over_release_clamps(void **state)
{
    (void)state;
    bufpool *p = bufpool_new(100);
    bufpool_acquire(p, 10);
    bufpool_release(p, 20);
    assert_int_equal(bufpool_used(p), 0);
    assert_int_equal(bufpool_try_acquire(p, 100), 1);
    bufpool_release(p, 100);
    bufpool_free(p);
}

#define NTHREADS 8
#define NOPS 2000

typedef struct stress {
    bufpool *p;
    unsigned seed;
    int over;       /* grants seen above the budget */
} stress;

static void *stress_main(void *arg)
{
    stress *s = arg;
    for (int i = 0; i < NOPS; i++) {
        uint64_t n = 1 + rand_r(&s->seed) % 40;
        int how = (int)(rand_r(&s->seed) % 3);
        int ok = 1;
        if (how == 0)
            bufpool_acquire(s->p, n);
        else if (how == 1)
            ok = bufpool_try_acquire(s->p, n);
        else
            ok = bufpool_acquire_timeout(s->p, n, 5);
        if (!ok)
            continue;
        if (bufpool_used(s->p) > 100)
            s->over++;
        bufpool_release(s->p, n);
    }
    return NULL;
}

static void test_contention(void **state)
{
    (void)state;
    bufpool *p = bufpool_new(100);
    pthread_t th[NTHREADS];
    stress s[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        s[i] = (stress){.p = p, .seed = 77u + (unsigned)i};
        assert_int_equal(pthread_create(&th[i], NULL, stress_main, &s[i]), 0);
    }
    int over = 0;
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
        over += s[i].over;
    }
    assert_int_equal(over, 0);
    assert_int_equal(bufpool_used(p), 0);
    assert_int_equal(bufpool_waiting(p), 0);
    assert_true(bufpool_peak(p) <= 100);
    assert_true(bufpool_peak(p) >= 1);
    bufpool_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accounting_and_peak),
        cmocka_unit_test(test_acquire_blocks_until_release),
        cmocka_unit_test(test_acquire_timeout_woken_by_release),
        cmocka_unit_test(test_timeout_expires),
        cmocka_unit_test(test_oversize),
        cmocka_unit_test(test_over_release_clamps),
        cmocka_unit_test(test_contention),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
