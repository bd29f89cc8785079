/*
 * scrub.c — the scrub pass (maint.h): re-verify every chunk file.
 *
 * Each file is read whole and checked (header CRC, id, exact length, CRC32C
 * of the payload; with full also decoded and hashed with SHA-256). The
 * bytes read are charged to the rate limit after each file. A file that
 * fails is moved aside by the store, whose corrupt hook queues the id; the
 * queue is drained (good copies fetched from other servers) after every
 * batch, so a long scrub repairs as it goes. Needs no metad except for the
 * re-fetch.
 */
#include <errno.h>
#include <stdlib.h>

#include "common/err.h"
#include "common/log.h"
#include "server/chunk/maint_i.h"

int maint_scrub_pass(maint *m, int full, maint_result *res)
{
    chunkstore_iter *it;
    int rc = chunkstore_iter_new(m->store, &it);
    if (rc < 0)
        return rc;
    uint8_t (*ids)[CHUNK_ID_LEN] = xmalloc(MAINT_BATCH * CHUNK_ID_LEN);
    int n;
    while ((n = chunkstore_iter_next(it, ids, MAINT_BATCH)) > 0) {
        for (int i = 0; i < n; i++) {
            if (maint_stopping(m)) {
                rc = -ECANCELED;
                goto out;
            }
            uint64_t bytes = 0;
            int vrc = chunkstore_verify(m->store, ids[i], full, &bytes);
            res->scanned++;
            atomic_fetch_add(&m->progress, 1);
            maint_count(m, MC_SCANNED_SCRUB, 1);
            maint_count(m, MC_SCRUB_BYTES, bytes);
            if (vrc == CAIRN_ECORRUPT) {
                res->corrupt++;
                maint_count(m, MC_CORRUPT, 1);
            } else if (vrc < 0 && vrc != -ENOENT) {
                char hex[CHUNK_ID_HEX + 1];
                chunk_id_hex(ids[i], hex);
                log_warn("scrub: chunk %s: %s", hex, cairn_strerror(vrc));
            }
            maint_throttle(m, res, bytes);
        }
        maint_refetch_queued(m, res);
    }
    rc = n < 0 ? n : 0;
out:
    free(ids);
    chunkstore_iter_free(it);
    return rc;
}
