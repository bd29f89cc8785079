/*
 * test_hrw.c — weighted rendezvous hashing: determinism, independence from
 * array order, minimal movement when a node joins or leaves, and shares
 * proportional to weight.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/hrw.h"

#define NIDS 100000

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    /* xorshift64*: plenty for spreading test ids. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

static void random_id(uint8_t id[CHUNK_ID_LEN])
{
    size_t i;

    for (i = 0; i < CHUNK_ID_LEN; i += 8) {
        uint64_t r = rng_next();

        memcpy(id + i, &r, 8);
    }
}

static uint32_t top1(const uint8_t id[CHUNK_ID_LEN], const hrw_node *nodes, size_t n)
{
    size_t order[64];

    assert_true(n <= 64);
    hrw_rank(id, nodes, n, order);
    return nodes[order[0]].id;
}

static void assert_permutation(const size_t *order, size_t n)
{
    char seen[256] = {0};
    size_t i;

    assert_true(n <= sizeof(seen));
    for (i = 0; i < n; i++) {
        assert_true(order[i] < n);
        assert_false(seen[order[i]]);
        seen[order[i]] = 1;
    }
}

static void test_score_properties(void **state)
{
    uint8_t id[CHUNK_ID_LEN];
    int k;

    (void)state;
    rng_state = 1;
    for (k = 0; k < 1000; k++) {
        double s1, s2;

        random_id(id);
        s1 = hrw_score(id, 7, 1.0);
        s2 = hrw_score(id, 7, 2.0);
        assert_true(s1 > 0 && isfinite(s1));
        assert_true(fabs(s2 - 2 * s1) <= 1e-12 * s2);
        assert_true(hrw_score(id, 7, 1.0) == s1);
        assert_true(hrw_score(id, 7, 0.0) == 0.0);
        /* Different nodes get different scores for the same id. */
        assert_true(hrw_score(id, 8, 1.0) != s1);
    }
}

static void test_determinism_and_order_independence(void **state)
{
    hrw_node nodes[12], shuffled[12];
    size_t order[12], order2[12], order3[12];
    uint32_t ids_a[12], ids_b[12];
    uint8_t id[CHUNK_ID_LEN];
    size_t i, j;
    int k;

    (void)state;
    rng_state = 2;
    for (i = 0; i < 12; i++) {
        nodes[i].id = (uint32_t)(100 + i * 3);
        nodes[i].weight = 1.0 + (double)(i % 4);
    }
    for (k = 0; k < 2000; k++) {
        random_id(id);
        hrw_rank(id, nodes, 12, order);
        assert_permutation(order, 12);
        hrw_rank(id, nodes, 12, order2);
        assert_memory_equal(order, order2, sizeof(order));

        /* Shuffle (Fisher-Yates) and compare the ranked node ids. */
        memcpy(shuffled, nodes, sizeof(nodes));
        for (i = 11; i > 0; i--) {
            hrw_node t;

            j = rng_next() % (i + 1);
            t = shuffled[i];
            shuffled[i] = shuffled[j];
            shuffled[j] = t;
        }
        hrw_rank(id, shuffled, 12, order3);
        assert_permutation(order3, 12);
        for (i = 0; i < 12; i++) {
            ids_a[i] = nodes[order[i]].id;
            ids_b[i] = shuffled[order3[i]].id;
        }
        assert_memory_equal(ids_a, ids_b, sizeof(ids_a));
        /* Best first means descending score. */
        for (i = 1; i < 12; i++)
            assert_true(hrw_score(id, ids_a[i - 1], nodes[order[i - 1]].weight) >=
                        hrw_score(id, ids_a[i], nodes[order[i]].weight));
    }
}

static void test_stability_on_join_and_leave(void **state)
{
    hrw_node nodes[11];
    uint32_t *before = malloc(NIDS * sizeof(*before));
    size_t count[11] = {0};
    size_t moved = 0, i, k;
    uint8_t id[CHUNK_ID_LEN];
    double frac;

    (void)state;
    assert_non_null(before);
    for (i = 0; i < 11; i++) {
        nodes[i].id = (uint32_t)(i + 1);
        nodes[i].weight = 1.0;
    }
    rng_state = 3;
    for (k = 0; k < NIDS; k++) {
        random_id(id);
        before[k] = top1(id, nodes, 10);
        count[before[k] - 1]++;
    }
    /* Ten equal nodes each get about a tenth. */
    for (i = 0; i < 10; i++) {
        frac = (double)count[i] / NIDS;
        if (fabs(frac - 0.1) > 0.006)
            fail_msg("node %zu got share %.4f, expected 0.1", i + 1, frac);
    }
    /* An eleventh node takes about 1/11, and only ids that it now wins move. */
    rng_state = 3;
    for (k = 0; k < NIDS; k++) {
        uint32_t after;

        random_id(id);
        after = top1(id, nodes, 11);
        if (after != before[k]) {
            moved++;
            assert_int_equal(after, 11);
        }
    }
    frac = (double)moved / NIDS;
    if (fabs(frac - 1.0 / 11) > 0.006)
        fail_msg("adding a node moved %.4f of the ids, expected %.4f", frac, 1.0 / 11);

    /* Removing node 4 from the ten moves exactly the ids node 4 held. */
    nodes[3] = nodes[9];
    rng_state = 3;
    moved = 0;
    for (k = 0; k < NIDS; k++) {
        uint32_t after;

        random_id(id);
        after = top1(id, nodes, 9);
        assert_int_not_equal(after, 4);
        if (before[k] == 4)
            moved++;
        else
            assert_int_equal(after, before[k]);
    }
    assert_int_equal(moved, count[3]);
    free(before);
}

static void test_weights_respected(void **state)
{
    hrw_node nodes[5] = {
        {.id = 10, .weight = 1.0}, {.id = 20, .weight = 1.0}, {.id = 30, .weight = 2.0},
        {.id = 40, .weight = 1.0}, {.id = 50, .weight = 0.0},
    };
    size_t count[5] = {0}, k, i, order[5];
    uint8_t id[CHUNK_ID_LEN];
    double single, ratio;

    (void)state;
    rng_state = 4;
    for (k = 0; k < NIDS; k++) {
        random_id(id);
        hrw_rank(id, nodes, 5, order);
        count[order[0]]++;
        /* Weight 0 ranks last whenever any node has weight. */
        assert_int_equal(order[4], 4);
    }
    assert_int_equal(count[4], 0);
    single = (double)(count[0] + count[1] + count[3]) / 3;
    ratio = (double)count[2] / single;
    if (ratio < 1.9 || ratio > 2.1)
        fail_msg("weight-2 node got %.3f times the share of a weight-1 node", ratio);
    /* Expected shares 1/5, 1/5, 2/5, 1/5. */
    for (i = 0; i < 4; i++) {
        double want = nodes[i].weight / 5.0, got = (double)count[i] / NIDS;

        if (fabs(got - want) > 0.008)
            fail_msg("node %u share %.4f, expected %.4f", nodes[i].id, got, want);
    }
}

static void test_all_zero_weights_spread(void **state)
{
    hrw_node nodes[4] = {{1, 0}, {2, 0}, {3, 0}, {4, 0}};
    size_t count[4] = {0}, order[4], k, i;
    uint8_t id[CHUNK_ID_LEN];

    (void)state;
    rng_state = 5;
    for (k = 0; k < 20000; k++) {
        random_id(id);
        hrw_rank(id, nodes, 4, order);
        assert_permutation(order, 4);
        count[order[0]]++;
    }
    for (i = 0; i < 4; i++)
        assert_true(count[i] > 4000 && count[i] < 6000);
}

static void test_many_nodes(void **state)
{
    enum { N = 200 };
    hrw_node *nodes = malloc(N * sizeof(*nodes));
    size_t *order = malloc(N * sizeof(*order));
    size_t *order2 = malloc(N * sizeof(*order2));
    uint8_t id[CHUNK_ID_LEN];
    size_t i;

    (void)state;
    assert_non_null(nodes);
    assert_non_null(order);
    assert_non_null(order2);
    for (i = 0; i < N; i++) {
        nodes[i].id = (uint32_t)(i * 7919);
        nodes[i].weight = 1.0 + (double)(i % 3);
    }
    rng_state = 6;
    random_id(id);
    hrw_rank(id, nodes, N, order);
    assert_permutation(order, N);
    for (i = 1; i < N; i++)
        assert_true(hrw_score(id, nodes[order[i - 1]].id, nodes[order[i - 1]].weight) >=
                    hrw_score(id, nodes[order[i]].id, nodes[order[i]].weight));
    hrw_rank(id, nodes, N, order2);
    assert_memory_equal(order, order2, N * sizeof(*order));
    hrw_rank(id, nodes, 0, order2);
    free(order2);
    free(order);
    free(nodes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_score_properties),
        cmocka_unit_test(test_determinism_and_order_independence),
        cmocka_unit_test(test_stability_on_join_and_leave),
        cmocka_unit_test(test_weights_respected),
        cmocka_unit_test(test_all_zero_weights_spread),
        cmocka_unit_test(test_many_nodes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
