/*
 * repair.c — the repair and rebalance pass (maint.h).
 *
 * For each batch of held chunk ids the pass asks metad which ones some file
 * references (unreferenced chunks are left to gc) and then, per referenced
 * chunk:
 *
 *   placement  servers in state UP or FULL, ranked by weighted HRW exactly
 *              as the client ranks (peer_rank). The first R are the chunk's
 *              targets. FULL servers rank (so a server that is short of
 *              space keeps its chunks instead of shedding them and taking
 *              them back once it has room again) but receive nothing: for
 *              each FULL target, the next UP server after the targets is a
 *              fallback, which is where a client writing now puts the copy.
 *   query      the targets and fallbacks are asked (POST /chunks/query,
 *              one request per server per batch) whether they hold it.
 *   push       one holder acts: the best-ranked one among the queried
 *              servers and this one (this one counts as ranked last when it
 *              is not among them). It pushes a copy to every UP target that
 *              lacks one, then to fallbacks while fewer than R copies are
 *              known. It also counts the chunk as under-replicated when
 *              fewer than R copies were known, so the sum over servers
 *              counts each such chunk once.
 *   drop       a server that is not among the targets deletes its copy when
 *              there are R targets and every one of them holds the chunk,
 *              asked again right before the delete. That is rebalancing
 *              after a server joins or returns, and draining: DRAINING and
 *              DOWN servers are not placement targets, so their chunks move
 *              to the remaining servers and their copies go away.
 *
 * A server that cannot be queried is not pushed to and never counts as a
 * holder for the rest of the pass. Pushes are charged to the rate limit
 * (chunk bytes per target). The map is fetched at the start and again
 * between batches when metad announced a new epoch.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/fsrec.h"
#include "common/log.h"
#include "server/chunk/maint_i.h"

/* Targets plus fallbacks: at most 2 R, R <= 16. */
#define PLAN_MAX 32
#define SLOT_NONE 0xff

enum { HELD_NO = 0, HELD_YES = 1, HELD_UNKNOWN = 2 };

typedef struct plan {
    uint8_t id[CHUNK_ID_LEN];
    uint16_t srv[PLAN_MAX];   /* map indices, in rank order: targets, fallbacks */
    uint8_t held[PLAN_MAX];
    uint8_t n, ntargets;
    uint8_t self_slot;        /* slot of this server, SLOT_NONE if not queried */
    uint8_t drop;             /* candidate for dropping our copy */
} plan;

typedef struct bad_set {
    uint32_t ids[PEER_MAX_SERVERS];
    size_t n;
} bad_set;

static int bad_has(const bad_set *b, uint32_t sid)
{
    for (size_t i = 0; i < b->n; i++)
        if (b->ids[i] == sid)
            return 1;
    return 0;
}

static void bad_add(bad_set *b, uint32_t sid)
{
    if (!bad_has(b, sid) && b->n < PEER_MAX_SERVERS)
        b->ids[b->n++] = sid;
}

static void plan_make(const peer_map *map, const uint8_t id[CHUNK_ID_LEN], unsigned R,
                      uint32_t self, plan *p)
{
    size_t order[PEER_MAX_SERVERS];
    size_t nr = peer_rank(map, id, PEER_STATE(SERVER_UP) | PEER_STATE(SERVER_FULL), order);
    memset(p, 0, sizeof *p);
    memcpy(p->id, id, CHUNK_ID_LEN);
    p->self_slot = SLOT_NONE;
    size_t nt = MIN((size_t)R, nr);
    unsigned nfull = 0;
    for (size_t i = 0; i < nt; i++) {
        p->srv[p->n++] = (uint16_t)order[i];
        nfull += map->servers[order[i]].state == SERVER_FULL;
    }
    p->ntargets = (uint8_t)nt;
    for (size_t i = nt; i < nr && nfull > 0 && p->n < PLAN_MAX; i++)
        if (map->servers[order[i]].state == SERVER_UP) {
            p->srv[p->n++] = (uint16_t)order[i];
            nfull--;
        }
    for (uint8_t s = 0; s < p->n; s++) {
        p->held[s] = HELD_UNKNOWN;
        if (map->servers[p->srv[s]].id == self) {
            p->self_slot = s;
            p->held[s] = HELD_YES;
        }
    }
}

/* Ask every server named in the plans (targets only, of drop candidates
 * only, when drops_only) which of its chunks it holds; fills held[]. */
static void repair_query(maint *m, plan *plans, size_t np, int drops_only, bad_set *bad)
{
    const peer_map *map = m->map;
    size_t *count = xcalloc(map->n, sizeof *count);
    size_t total = 0;
    for (size_t i = 0; i < np; i++) {
        plan *p = &plans[i];
        if (drops_only && !p->drop)
            continue;
        uint8_t lim = drops_only ? p->ntargets : p->n;
        for (uint8_t s = 0; s < lim; s++)
            if (s != p->self_slot) {
                count[p->srv[s]]++;
                total++;
            }
    }
    if (!total) {
        free(count);
        return;
    }
    /* Entries grouped per server: plan index << 8 | slot. */
    size_t *start = xcalloc(map->n + 1, sizeof *start);
    for (size_t s = 0; s < map->n; s++)
        start[s + 1] = start[s] + count[s];
    uint32_t *ent = xmalloc(total * sizeof *ent);
    memset(count, 0, map->n * sizeof *count);
    for (size_t i = 0; i < np; i++) {
        plan *p = &plans[i];
        if (drops_only && !p->drop)
            continue;
        uint8_t lim = drops_only ? p->ntargets : p->n;
        for (uint8_t s = 0; s < lim; s++)
            if (s != p->self_slot)
                ent[start[p->srv[s]] + count[p->srv[s]]++] = (uint32_t)(i << 8 | s);
    }
    uint8_t (*ids)[CHUNK_ID_LEN] = xmalloc(MAINT_BATCH * CHUNK_ID_LEN);
    uint8_t *bits = xmalloc(MAINT_BATCH);
    for (size_t s = 0; s < map->n; s++) {
        size_t k = count[s];
        if (!k)
            continue;
        const peer_server *sv = &map->servers[s];
        int rc = -EHOSTUNREACH;
        if (!bad_has(bad, sv->id)) {
            for (size_t j = 0; j < k; j++)
                memcpy(ids[j], plans[ent[start[s] + j] >> 8].id, CHUNK_ID_LEN);
            rc = peer_query(m->peer, sv->addr, (const uint8_t(*)[CHUNK_ID_LEN])ids, k, bits);
            if (rc < 0) {
                log_warn("repair: cannot query server %u (%s): %s; skipping it this pass",
                         sv->id, sv->addr, cairn_strerror(rc));
                bad_add(bad, sv->id);
            }
        }
        for (size_t j = 0; j < k; j++) {
            uint32_t e = ent[start[s] + j];
            plans[e >> 8].held[e & 0xff] = rc < 0 ? HELD_UNKNOWN : bits[j];
        }
    }
    free(bits);
    free(ids);
    free(ent);
    free(start);
    free(count);
}

static unsigned plan_copies(const plan *p)
{
    unsigned c = p->self_slot == SLOT_NONE; /* we hold it, queried or not */
    for (uint8_t s = 0; s < p->n; s++)
        c += p->held[s] == HELD_YES;
    return c;
}

/* Whether this server is the one holder that pushes (see the top). */
static int plan_is_pusher(const plan *p)
{
    uint8_t lim = p->self_slot == SLOT_NONE ? p->n : p->self_slot;
    for (uint8_t s = 0; s < lim; s++)
        if (p->held[s] == HELD_YES)
            return 0;
    return 1;
}

/* Push our copy to slot s of p; 0 or the error. */
static int repair_push_one(maint *m, plan *p, uint8_t s, const uint8_t *data, size_t len,
                           maint_result *res, bad_set *bad)
{
    const peer_server *sv = &m->map->servers[p->srv[s]];
    maint_throttle(m, res, len);
    int rc = peer_put(m->peer, sv->addr, p->id, data, len);
    char hex[CHUNK_ID_HEX + 1];
    chunk_id_hex(p->id, hex);
    if (rc < 0) {
        res->push_failed++;
        maint_count(m, MC_PUSH_FAILED, 1);
        log_warn("repair: chunk %s: push to server %u (%s) failed: %s", hex, sv->id, sv->addr,
                 cairn_strerror(rc));
        if (rc != CAIRN_EBUSY && rc != -ENOSPC && rc != -EDQUOT)
            bad_add(bad, sv->id);
        return rc;
    }
    p->held[s] = HELD_YES;
    res->pushed++;
    res->pushed_bytes += len;
    maint_count(m, MC_PUSHED, 1);
    maint_count(m, MC_PUSHED_BYTES, len);
    log_debug("repair: chunk %s: pushed to server %u (%s)", hex, sv->id, sv->addr);
    return 0;
}

/* Push p's chunk where it is missing (we are its pusher). */
static void repair_push(maint *m, plan *p, unsigned R, maint_result *res, bad_set *bad)
{
    uint8_t want[PLAN_MAX];
    unsigned nwant = 0, copies = plan_copies(p);
    for (uint8_t s = 0; s < p->ntargets; s++) {
        const peer_server *sv = &m->map->servers[p->srv[s]];
        if (p->held[s] == HELD_NO && sv->state == SERVER_UP && !bad_has(bad, sv->id))
            want[nwant++] = s;
    }
    unsigned after = copies + nwant;
    for (uint8_t s = p->ntargets; s < p->n && after < R; s++) {
        const peer_server *sv = &m->map->servers[p->srv[s]];
        if (p->held[s] == HELD_NO && sv->state == SERVER_UP && !bad_has(bad, sv->id)) {
            want[nwant++] = s;
            after++;
        }
    }
    if (!nwant)
        return;
    uint8_t *data;
    size_t len;
    int rc = chunkstore_get(m->store, p->id, &data, &len);
    if (rc < 0) {
        if (rc != -ENOENT && rc != CAIRN_ECORRUPT) {
            char hex[CHUNK_ID_HEX + 1];
            chunk_id_hex(p->id, hex);
            log_warn("repair: chunk %s: cannot read our copy: %s", hex, cairn_strerror(rc));
        }
        return;
    }
    for (unsigned i = 0; i < nwant && !maint_stopping(m); i++)
        repair_push_one(m, p, want[i], data, len, res, bad);
    free(data);
}

/* Repair one batch of referenced ids. */
static void repair_batch(maint *m, const uint8_t (*ids)[CHUNK_ID_LEN], size_t n, unsigned R,
                         uint32_t self, plan *plans, maint_result *res, bad_set *bad)
{
    for (size_t i = 0; i < n; i++)
        plan_make(m->map, ids[i], R, self, &plans[i]);
    repair_query(m, plans, n, 0, bad);
    size_t ndrop = 0;
    for (size_t i = 0; i < n && !maint_stopping(m); i++) {
        plan *p = &plans[i];
        int in_targets = p->self_slot != SLOT_NONE && p->self_slot < p->ntargets;
        if (!in_targets)
            res->misplaced++;
        if (plan_is_pusher(p)) {
            if (plan_copies(p) < R)
                res->under_replicated++;
            repair_push(m, p, R, res, bad);
        }
        if (!in_targets && p->ntargets == R) {
            int all = 1;
            for (uint8_t s = 0; s < p->ntargets; s++)
                all &= p->held[s] == HELD_YES;
            p->drop = (uint8_t)all;
            ndrop += all;
        }
    }
    if (!ndrop || maint_stopping(m))
        return;
    /* Ask again right before deleting: a target may have lost its copy
     * (or be dropping it on a different map) since the first question. */
    for (size_t i = 0; i < n; i++)
        if (plans[i].drop)
            for (uint8_t s = 0; s < plans[i].ntargets; s++)
                plans[i].held[s] = HELD_UNKNOWN;
    repair_query(m, plans, n, 1, bad);
    for (size_t i = 0; i < n; i++) {
        plan *p = &plans[i];
        if (!p->drop)
            continue;
        int all = 1;
        for (uint8_t s = 0; s < p->ntargets; s++)
            all &= p->held[s] == HELD_YES;
        if (!all)
            continue;
        int rc = chunkstore_delete(m->store, p->id);
        char hex[CHUNK_ID_HEX + 1];
        chunk_id_hex(p->id, hex);
        if (rc == 0) {
            res->dropped++;
            maint_count(m, MC_DROPPED, 1);
            log_debug("repair: chunk %s: copy dropped, its %u target servers hold it", hex, R);
        } else if (rc != -ENOENT) {
            log_warn("repair: chunk %s: cannot drop our copy: %s", hex, cairn_strerror(rc));
        }
    }
}

int maint_repair_pass(maint *m, maint_result *res)
{
    int rc = maint_check_fs(m);
    if (rc < 0)
        return rc;
    uint32_t self = chunkreg_sid(m->reg);
    if (!self)
        return -EAGAIN; /* not registered yet: we do not know which server we are */
    if ((rc = maint_refresh_map(m, 0)) < 0)
        return rc;
    unsigned R = m->fs.replicas;
    chunkstore_iter *it;
    if ((rc = chunkstore_iter_new(m->store, &it)) < 0)
        return rc;
    uint8_t (*ids)[CHUNK_ID_LEN] = xmalloc(MAINT_BATCH * CHUNK_ID_LEN);
    uint8_t (*refd)[CHUNK_ID_LEN] = xmalloc(MAINT_BATCH * CHUNK_ID_LEN);
    uint8_t *bits = xmalloc(MAINT_BATCH);
    plan *plans = xmalloc(MAINT_BATCH * sizeof *plans);
    bad_set *bad = xcalloc(1, sizeof *bad);
    int n;
    while ((n = chunkstore_iter_next(it, ids, MAINT_BATCH)) > 0) {
        if (maint_stopping(m)) {
            rc = -ECANCELED;
            goto out;
        }
        rc = peer_refs(m->peer, (const uint8_t(*)[CHUNK_ID_LEN])ids, (size_t)n, bits);
        if (rc < 0) {
            log_warn("repair: cannot ask metad %s for references: %s", peer_meta(m->peer),
                     cairn_strerror(rc));
            goto out;
        }
        size_t k = 0;
        for (int i = 0; i < n; i++)
            if (bits[i])
                memcpy(refd[k++], ids[i], CHUNK_ID_LEN);
        res->scanned += (uint64_t)n;
        res->referenced += k;
        atomic_fetch_add(&m->progress, (uint64_t)n);
        maint_count(m, MC_SCANNED_REPAIR, (uint64_t)n);
        if ((rc = maint_refresh_map(m, INT64_MAX)) < 0)
            goto out;
        repair_batch(m, (const uint8_t(*)[CHUNK_ID_LEN])refd, k, R, self, plans, res, bad);
    }
    rc = n < 0 ? n : maint_stopping(m) ? -ECANCELED : 0;
    if (rc == 0) {
        atomic_store(&m->under_replicated, res->under_replicated);
        atomic_store(&m->misplaced, res->misplaced - res->dropped);
        if (res->pushed || res->dropped || res->under_replicated)
            log_info("repair: %" PRIu64 " referenced chunks, %" PRIu64
                     " under-replicated, %" PRIu64 " copies pushed (%" PRIu64
                     " bytes), %" PRIu64 " dropped",
                     res->referenced, res->under_replicated, res->pushed, res->pushed_bytes,
                     res->dropped);
    }
out:
    free(bad);
    free(plans);
    free(bits);
    free(refd);
    free(ids);
    chunkstore_iter_free(it);
    return rc;
}
