/*
 * test_cache_pagestore.c — pages whose memory goes back to the kernel
 * (cache/pagestore.h): alignment and independence of pages, reuse without
 * new mappings, the spare kept resident and the rest released (checked
 * with mincore), and many threads at once.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "cache/pagestore.h"

/* Whether the page at p is resident in memory. */
static int resident(void *p)
{
    unsigned char v = 0;
    assert_int_equal(mincore(p, PAGESTORE_PAGE, &v), 0);
    return v & 1;
}

static void test_pages_are_aligned_and_distinct(void **st)
{
    (void)st;
    assert_int_equal(sysconf(_SC_PAGESIZE), PAGESTORE_PAGE);
    pagestore *s = pagestore_new(0);
    enum { N = 1500 };   /* more than one slab */
    uint8_t **p = calloc(N, sizeof(*p));
    for (int i = 0; i < N; i++) {
        p[i] = pagestore_get(s);
        assert_non_null(p[i]);
        assert_int_equal((uintptr_t)p[i] % PAGESTORE_PAGE, 0);
        memset(p[i], i & 0xff, PAGESTORE_PAGE);
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(p[i][0], i & 0xff);
        assert_int_equal(p[i][PAGESTORE_PAGE - 1], i & 0xff);
    }
    pagestore_stats ss;
    pagestore_get_stats(s, &ss);
    assert_int_equal(ss.in_use, N);
    assert_true(ss.mapped >= N);
    for (int i = 0; i < N; i++)
        pagestore_put(s, p[i]);
    pagestore_get_stats(s, &ss);
    assert_int_equal(ss.in_use, 0);
    free(p);
    pagestore_free(s);
}

static void test_spare_kept_rest_released(void **st)
{
    (void)st;
    enum { SPARE = 10, N = 100 };
    pagestore *s = pagestore_new(SPARE * PAGESTORE_PAGE);
    uint8_t *p[N];
    for (int i = 0; i < N; i++) {
        p[i] = pagestore_get(s);
        memset(p[i], 0xab, PAGESTORE_PAGE);
        assert_true(resident(p[i]));
    }
    pagestore_stats before;
    pagestore_get_stats(s, &before);
    for (int i = 0; i < N; i++)
        pagestore_put(s, p[i]);
    /* The first SPARE put back stay resident, the others are released. */
    for (int i = 0; i < SPARE; i++)
        assert_true(resident(p[i]));
    for (int i = SPARE; i < N; i++)
        assert_false(resident(p[i]));
    pagestore_stats ss;
    pagestore_get_stats(s, &ss);
    assert_int_equal(ss.in_use, 0);
    assert_int_equal(ss.spare, SPARE);
    assert_int_equal(ss.released, N - SPARE);

    /* Taken again: the same pages, no new mapping; a released page reads
     * as zeros until written. */
    int zeros = 0;
    uint8_t *q[N];
    for (int i = 0; i < N; i++) {
        q[i] = pagestore_get(s);
        int known = 0;
        for (int j = 0; j < N; j++)
            known += q[i] == p[j];
        for (int j = 0; j < i; j++)
            known += q[i] == q[j] ? 100 : 0;   /* handed out twice */
        assert_int_equal(known, 1);
        zeros += q[i][0] == 0;
        memset(q[i], 1, PAGESTORE_PAGE);
    }
    assert_int_equal(zeros, N - SPARE);
    pagestore_get_stats(s, &ss);
    assert_int_equal(ss.mapped, before.mapped);
    assert_int_equal(ss.in_use, N);
    for (int i = 0; i < N; i++)
        pagestore_put(s, q[i]);
    pagestore_free(s);
}

static void *churn(void *arg)
{
    pagestore *s = arg;
    uint8_t *mine[64];
    uintptr_t tag = (uintptr_t)pthread_self();
    for (int round = 0; round < 200; round++) {
        for (int i = 0; i < 64; i++) {
            mine[i] = pagestore_get(s);
            if (!mine[i])
                return (void *)1;
            memcpy(mine[i], &tag, sizeof(tag));
            mine[i][PAGESTORE_PAGE - 1] = (uint8_t)i;
        }
        for (int i = 0; i < 64; i++) {
            uintptr_t t;
            memcpy(&t, mine[i], sizeof(t));
            if (t != tag || mine[i][PAGESTORE_PAGE - 1] != (uint8_t)i)
                return (void *)1;   /* another thread has this page too */
            pagestore_put(s, mine[i]);
        }
    }
    return NULL;
}

static void test_threads(void **st)
{
    (void)st;
    pagestore *s = pagestore_new(32 * PAGESTORE_PAGE);
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        assert_int_equal(pthread_create(&t[i], NULL, churn, s), 0);
    for (int i = 0; i < 8; i++) {
        void *r;
        pthread_join(t[i], &r);
        assert_null(r);
    }
    pagestore_stats ss;
    pagestore_get_stats(s, &ss);
    assert_int_equal(ss.in_use, 0);
    assert_true(ss.spare <= 32);
    /* never more mapped than 8 threads ever held at once, plus one slab */
    assert_true(ss.mapped <= 8 * 64 + 512);
    pagestore_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pages_are_aligned_and_distinct),
        cmocka_unit_test(test_spare_kept_rest_released),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
