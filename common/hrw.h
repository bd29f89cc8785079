/*
 * hrw.h — weighted rendezvous hashing (highest random weight) for chunk
 * placement (DESIGN.md §4).
 *
 * For a chunk id and each node, a 64-bit hash h(id, node id) is turned into
 * u in (0,1) and the score is -weight / ln(u) (Schindelhauer & Schomaker's
 * weighted HRW): a node's share of ids is proportional to its weight, and
 * adding or removing one node moves only the ids that node gains or loses.
 * Nodes with weight 0 never rank above a node with weight > 0.
 *
 * hrw_rank writes the indices 0..n-1 of nodes ordered best first. The order
 * depends only on (id, node ids, weights), not on the order of the array.
 * Thread-safe (pure).
 */
#ifndef CAIRN_HRW_H
#define CAIRN_HRW_H

#include <stddef.h>
#include <stdint.h>

#include "common/hash.h"

typedef struct hrw_node {
    uint32_t id;      /* stable server id from the cluster map */
    double weight;    /* e.g. capacity in GiB; 0 = never chosen first */
} hrw_node;

double hrw_score(const uint8_t chunk_id[CHUNK_ID_LEN], uint32_t node_id, double weight);
void hrw_rank(const uint8_t chunk_id[CHUNK_ID_LEN], const hrw_node *nodes, size_t n,
              size_t *order);

#endif
