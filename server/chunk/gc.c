/*
 * gc.c — the garbage collection pass (maint.h).
 *
 * Rules, each of which keeps a chunk:
 *   - metad cannot be asked (any error on a batch ends the pass), or it
 *     serves another filesystem than the one in DATA/fs.id;
 *   - metad says some file references the chunk (orphans of open unlinked
 *     files included);
 *   - the chunk file's mtime is within the grace period. Uploads set the
 *     mtime and a PUT of a chunk already held refreshes it, so a chunk
 *     uploaded for a commit that has not reached metad yet is safe for the
 *     whole grace period. The mtime check and the unlink happen under the
 *     store's per-id lock, the same one a PUT takes to refresh it.
 * The references are asked for right before the deletes of their batch,
 * so a chunk that became referenced since was either re-uploaded (fresh
 * mtime) or still referenced at the time of the question.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "common/err.h"
#include "common/log.h"
#include "server/chunk/maint_i.h"

int maint_gc_pass(maint *m, maint_result *res)
{
    int rc = maint_check_fs(m);
    if (rc < 0)
        return rc;
    chunkstore_iter *it;
    if ((rc = chunkstore_iter_new(m->store, &it)) < 0)
        return rc;
    uint8_t (*ids)[CHUNK_ID_LEN] = xmalloc(MAINT_BATCH * CHUNK_ID_LEN);
    uint8_t *bits = xmalloc(MAINT_BATCH);
    int n;
    while ((n = chunkstore_iter_next(it, ids, MAINT_BATCH)) > 0) {
        if (maint_stopping(m)) {
            rc = -ECANCELED;
            goto out;
        }
        rc = peer_refs(m->peer, (const uint8_t(*)[CHUNK_ID_LEN])ids, (size_t)n, bits);
        if (rc < 0) {
            log_warn("gc: cannot ask metad %s for references: %s; nothing deleted",
                     peer_meta(m->peer), cairn_strerror(rc));
            goto out;
        }
        /* The cutoff is taken after the answer: a file older than it was
         * last written before metad said nobody references the chunk. */
        int64_t cutoff = now_realtime_ns() - (int64_t)m->cfg.gc_grace_ms * 1000000LL;
        for (int i = 0; i < n; i++) {
            res->scanned++;
            atomic_fetch_add(&m->progress, 1);
            maint_count(m, MC_SCANNED_GC, 1);
            if (bits[i])
                continue;
            res->unreferenced++;
            uint64_t freed;
            int drc = chunkstore_delete_older(m->store, ids[i], cutoff, &freed);
            if (drc == 0) {
                res->deleted++;
                res->deleted_bytes += freed;
                maint_count(m, MC_GC_DELETED, 1);
                maint_count(m, MC_GC_DELETED_BYTES, freed);
                char hex[CHUNK_ID_HEX + 1];
                chunk_id_hex(ids[i], hex);
                log_debug("gc: deleted unreferenced chunk %s", hex);
            } else if (drc == 1) {
                res->recent++;
            } else if (drc != -ENOENT) {
                char hex[CHUNK_ID_HEX + 1];
                chunk_id_hex(ids[i], hex);
                log_warn("gc: cannot delete chunk %s: %s", hex, cairn_strerror(drc));
            }
        }
    }
    rc = n < 0 ? n : 0;
    if (rc == 0) {
        atomic_store(&m->unreferenced, res->unreferenced);
        if (res->deleted)
            log_info("gc: deleted %" PRIu64 " unreferenced chunks (%" PRIu64 " bytes); %" PRIu64
                     " more within the grace period",
                     res->deleted, res->deleted_bytes, res->recent);
    }
out:
    free(bits);
    free(ids);
    chunkstore_iter_free(it);
    return rc;
}
