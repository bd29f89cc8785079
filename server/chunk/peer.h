/*
 * peer.h — what cairn-chunkd's maintenance passes ask of other servers:
 * the cluster map, fsinfo and chunk references from cairn-metad, and
 * chunk queries, uploads and downloads from other chunk servers
 * (docs/PROTOCOL.md). Plus placement: the same weighted HRW ranking the
 * client uses (client/chunkio.c, rank()), so both sides agree on which
 * servers should hold a chunk.
 *
 * Every call is one HTTP request with a bounded timeout and no retries
 * (the passes retry on their next run), except peer_put, which waits out a
 * 503 + Retry-After a few times because an overloaded target is the normal
 * case while clients write. Errors: the transport's codes (httpc.h), the
 * remote answer's errno (Cairn-Errno / status), CAIRN_EPROTO for an answer
 * that does not decode, -ENOMEM.
 *
 * Threads: a peer handle may be used from any number of threads (httpc's
 * pool); the maintenance thread is its only user today. The map
 * (peer_map) is a plain value the caller owns.
 */
#ifndef CAIRN_CHUNK_PEER_H
#define CAIRN_CHUNK_PEER_H

#include <stddef.h>
#include <stdint.h>

#include "common/hash.h"

/* Servers ranked per chunk, as in the client. */
#define PEER_MAX_SERVERS 256
/* Ids per refs or query request (both routes accept up to 65536). */
#define PEER_BATCH_MAX 4096

#define PEER_META_TIMEOUT_MS 10000
#define PEER_CHUNK_TIMEOUT_MS 60000

typedef struct peer peer;

typedef struct peer_server {
    uint32_t id;
    char addr[64];
    uint64_t capacity, used, chunks;
    uint32_t state;          /* SERVER_* of common/fsrec.h */
} peer_server;

typedef struct peer_map {
    uint64_t epoch;
    size_t n;
    peer_server servers[PEER_MAX_SERVERS];
} peer_map;

typedef struct peer_fsinfo {
    uint8_t fsid[16];
    uint32_t replicas, min_replicas;
    uint64_t chunk_size;
} peer_fsinfo;

/* meta may be NULL (standalone server): the metad calls then fail with
 * -ENOTCONN. max_chunk bounds chunk downloads. */
peer *peer_new(const char *meta, uint64_t max_chunk);
void peer_free(peer *p);
const char *peer_meta(const peer *p);

int peer_cluster_get(peer *p, peer_map *out);
int peer_fsinfo_get(peer *p, peer_fsinfo *out);
/* bits[i] = 1 if some file references ids[i]; n <= PEER_BATCH_MAX. */
int peer_refs(peer *p, const uint8_t (*ids)[CHUNK_ID_LEN], size_t n, uint8_t *bits);

/* POST /chunks/query on addr: bits[i] = 1 if addr holds ids[i]. */
int peer_query(peer *p, const char *addr, const uint8_t (*ids)[CHUNK_ID_LEN], size_t n,
               uint8_t *bits);
/* PUT a chunk to addr. 0 stored (or already held); -ENOSPC (507),
 * CAIRN_EBUSY (still 503 after a few Retry-After waits), other errors. */
int peer_put(peer *p, const char *addr, const uint8_t id[CHUNK_ID_LEN], const void *data,
             size_t len);
/* GET a chunk from addr and check its SHA-256: on success *data is
 * malloc'd (caller frees; NULL when *len is 0). CAIRN_ECORRUPT if the
 * bytes do not hash to the id, -ENOENT if addr does not hold it. */
int peer_get(peer *p, const char *addr, const uint8_t id[CHUNK_ID_LEN], uint8_t **data,
             size_t *len);

/* Placement: order[] receives indices into m->servers, best first, of the
 * servers whose state is in the mask (bit 1 << SERVER_*), ranked by
 * weighted HRW with weight = capacity in GiB (at least 1), exactly as the
 * client ranks. Returns how many were written. */
size_t peer_rank(const peer_map *m, const uint8_t id[CHUNK_ID_LEN], unsigned state_mask,
                 size_t *order);

#define PEER_STATE(s) (1u << (s))

/* Index of server sid in m, or -1. */
int peer_find(const peer_map *m, uint32_t sid);

const char *peer_state_name(uint32_t state);

#endif
