/*
 * hrw.c — weighted rendezvous hashing (see hrw.h).
 */
#include "common/hrw.h"

#include <math.h>
#include <stdlib.h>

#include "common/util.h"

/* splitmix64's finalizer: a bijection with full avalanche, so every bit of
 * the id and of the node id influences every bit of the result. */
static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static uint64_t hrw_hash(const uint8_t chunk_id[CHUNK_ID_LEN], uint32_t node_id)
{
    /* Chunk ids are SHA-256 digests, so 16 of their bytes are already
     * uniformly random; the mixing only has to decorrelate nodes. */
    uint64_t a = get_le64(chunk_id);
    uint64_t b = get_le64(chunk_id + 8);
    uint64_t h = mix64((uint64_t)node_id + 0x9e3779b97f4a7c15ULL);

    h = mix64(h ^ a);
    h = mix64(h ^ b);
    return h;
}

/* u in (0,1): 53 random bits, offset by half a step so that neither 0
 * (ln = -inf) nor 1 (ln = 0) can occur. */
static double hrw_unit(uint64_t h)
{
    return ((double)(h >> 11) + 0.5) / 9007199254740992.0;
}

double hrw_score(const uint8_t chunk_id[CHUNK_ID_LEN], uint32_t node_id, double weight)
{
    double u = hrw_unit(hrw_hash(chunk_id, node_id));

    if (!(weight > 0))
        return 0.0;
    return -weight / log(u);
}

struct ranked {
    int positive;   /* weight > 0: always ahead of weight-0 nodes */
    double score;
    uint32_t node_id;
    size_t idx;
};

static int ranked_cmp(const void *pa, const void *pb)
{
    const struct ranked *a = pa, *b = pb;

    if (a->positive != b->positive)
        return a->positive ? -1 : 1;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    /* Ties (equal scores are astronomically rare; duplicate node ids are a
     * caller bug) still get a total order so that results are repeatable. */
    if (a->node_id != b->node_id)
        return a->node_id < b->node_id ? -1 : 1;
    return a->idx < b->idx ? -1 : (a->idx > b->idx);
}

void hrw_rank(const uint8_t chunk_id[CHUNK_ID_LEN], const hrw_node *nodes, size_t n,
              size_t *order)
{
    struct ranked small[64], *r = small;
    size_t i;

    if (n == 0)
        return;
    if (n > ARRAY_LEN(small))
        r = xmalloc(n * sizeof(*r));
    for (i = 0; i < n; i++) {
        r[i].positive = nodes[i].weight > 0;
        /* Weight-0 nodes are still ordered among themselves by an unweighted
         * HRW score, so a cluster whose capacities are unknown spreads load
         * evenly instead of sending everything to the lowest id. */
        r[i].score = hrw_score(chunk_id, nodes[i].id, r[i].positive ? nodes[i].weight : 1.0);
        r[i].node_id = nodes[i].id;
        r[i].idx = i;
    }
    qsort(r, n, sizeof(*r), ranked_cmp);
    for (i = 0; i < n; i++)
        order[i] = r[i].idx;
    if (r != small)
        free(r);
}
