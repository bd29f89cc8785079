/*
 * commit.c — sealing dirty chunks, uploads, CAS commits with rebase, flush
 * and truncate; see file.h (contract) and file_i.h (layouts, locks).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uthash.h>

#include "client/file_i.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

/* ---- uploads ---- */

typedef struct upload_ctx {
    cfile *c;
    uint64_t index, gen;
} upload_ctx;

static void upload_done(void *arg, int err, const uint8_t *id)
{
    upload_ctx *u = arg;
    cfile *c = u->c;
    pthread_mutex_lock(&c->lock);
    dchunk *d = cf_dchunk_find(c, u->index);
    if (d && d->gen == u->gen && d->state == D_UPLOADING) {
        if (err < 0) {
            /* Keep the bytes: the next flush uploads them again. */
            d->state = D_DIRTY;
            c->err = err;
        } else {
            memcpy(d->id, id, CHUNK_ID_LEN);
            d->state = D_PENDING;
            d->hole = 0;
            cf_release_buf(c, d);
            c->npending++;
        }
    }
    c->inflight--;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->lock);
    free(u);
    cfile_put(c);
}

/* Seal a DIRTY chunk and start its upload (c->lock held; may drop it). */
int cf_seal(cfile *c, dchunk *d)
{
    uint64_t index = d->index;
    if (d->pages) {
        int drc = cf_densify(c, d);
        if (drc < 0)
            return drc;
    }
    if (!d->merged && !cf_covers(d, 0, d->len)) {
        int rc = cf_merge_base(c, index);
        if (rc < 0)
            return rc;
        d = cf_dchunk_find(c, index);
        if (!d || d->state != D_DIRTY || d->committing)
            return 0;
        if (!d->merged && !cf_covers(d, 0, d->len))
            return cf_seal(c, d);
    }
    if (d->len == 0 || is_all_zero(d->buf->data, d->len)) {
        d->state = D_PENDING;
        d->hole = 1;
        cf_release_buf(c, d);
        c->npending++;
        return 0;
    }
    d->state = D_UPLOADING;
    d->buf->len = d->len;
    c->inflight++;
    cf_ref(c);
    upload_ctx *u = xmalloc(sizeof(*u));
    u->c = c;
    u->index = index;
    u->gen = d->gen;
    cio_put_async(c->fs->cfg.io, NULL, d->buf, upload_done, u);
    return 0;
}

/* Seal every DIRTY chunk (restarting when the table changed under us). */
int cf_seal_all(cfile *c)
{
    for (;;) {
        dchunk *d, *tmp, *todo = NULL;
        HASH_ITER(hh, c->dirty, d, tmp) {
            if (d->state == D_DIRTY && !d->committing) {
                todo = d;
                break;
            }
        }
        if (!todo)
            return 0;
        /* A chunk kept as pages needs a whole buffer to be sealed; with
         * the budget used up, let this file's uploads return some first
         * rather than go past it for every such chunk at once. */
        bufpool *pool = c->fs->cfg.pool;
        if (todo->pages && c->inflight &&
            bufpool_used(pool) + MAX(todo->len, 1u) > bufpool_max(pool)) {
            pthread_cond_wait(&c->cv, &c->lock);
            continue;
        }
        int rc = cf_seal(c, todo);
        if (rc < 0)
            return rc;
    }
}

void cf_wait_uploads(cfile *c)
{
    while (c->inflight)
        pthread_cond_wait(&c->cv, &c->lock);
}

/* ---- commit ---- */

/* Is d still the PENDING slot cf_rematerialize started with? */
static int remat_still(const dchunk *d, uint64_t gen, uint32_t need)
{
    return d && d->gen == gen && d->state == D_PENDING && !d->committing && MAX(d->len, 1u) == need;
}

/* Turn a PENDING chunk back into a DIRTY buffer with its content (for a
 * write into it, or a rebase). c->lock held; may drop it. Returns 1 when
 * the caller must re-validate. */
int cf_rematerialize(cfile *c, uint64_t index)
{
    dchunk *d = cf_dchunk_find(c, index);
    if (!d || d->state != D_PENDING || d->committing)
        return 1;
    uint64_t gen = d->gen;
    /* The budget for the new buffer is had before the chunk's bytes are
     * fetched, so that writers waiting for the budget hold no chunk outside
     * it, and the fetched bytes are held under a merge slot. The slot stays
     * PENDING until its bytes are in the buffer: a DIRTY slot without them
     * would let a read, a seal or a merge from the base see ranges whose
     * content is nowhere. */
    bufpool *pool = c->fs->cfg.pool;
    uint32_t need = MAX(d->len, 1u);
    if (cf_budget_acquire(c, index, need)) {
        d = cf_dchunk_find(c, index);
        if (!remat_still(d, gen, need)) {
            bufpool_release(pool, need);
            return 1;
        }
    }
    cbuf *b = NULL;
    if (!d->hole) {
        uint8_t id[CHUNK_ID_LEN];
        memcpy(id, d->id, CHUNK_ID_LEN);
        pthread_mutex_unlock(&c->lock);
        cf_merge_slot_take(c->fs);
        int rc = cio_get(c->fs->cfg.io, id, &b);
        pthread_mutex_lock(&c->lock);
        d = cf_dchunk_find(c, index);
        if (rc < 0 || !remat_still(d, gen, need)) {
            if (b)
                cbuf_unref(b);
            cf_merge_slot_give(c->fs);
            bufpool_release(pool, need);
            return rc < 0 ? rc : 1;
        }
    }
    cbuf *nb = cbuf_new(need);
    if (nb) {
        size_t have = b ? MIN((size_t)d->len, b->len) : 0;
        if (have)
            memcpy(nb->data, b->data, have);
        memset(nb->data + have, 0, d->len - have);
    }
    if (b) {
        cbuf_unref(b);
        cf_merge_slot_give(c->fs);
    }
    if (!nb) {
        bufpool_release(pool, need);
        return -ENOMEM;
    }
    d->state = D_DIRTY;
    c->npending--;
    d->buf = nb;
    d->budget = need;
    d->merged = 1;
    return 0;
}

/*
 * After a 412: take the current record as the base, and for each chunk in
 * the commit that the other writer also changed and this client wrote only
 * partly, lay this client's written ranges over the other writer's bytes,
 * upload the result, and keep it for the retry. c->lock held; drops it.
 */
static int rebase(cfile *c, mc_inode *cur)
{
    if (!cur->hasmap) {
        mc_inode m;
        pthread_mutex_unlock(&c->lock);
        int rc = mc_map(c->fs->cfg.meta, c->ino, NULL, &m);
        pthread_mutex_lock(&c->lock);
        if (rc < 0)
            return rc;
        mc_inode_clear(cur);
        *cur = m;
    }
    /* Build a throwaway cfile view of the new base to ask base_of. */
    cfile nb;
    memset(&nb, 0, sizeof(nb));
    nb.slots = cur->slots;
    nb.nslots = cur->nslots;
    nb.is_inline = cur->has_inline;
    nb.inl = cur->inl;
    nb.inl_len = cur->inl_len;

    uint64_t pass = ++c->rebase_pass;
    for (;;) {
        dchunk *d = NULL, *tmp, *it;
        HASH_ITER(hh, c->dirty, it, tmp) {
            if (it->committing && it->rebased != pass) {
                d = it;
                break;
            }
        }
        if (!d)
            break;
        d->rebased = pass;
        uint8_t oid[CHUNK_ID_LEN], nid[CHUNK_ID_LEN];
        uint32_t olen, nlen;
        int ok = cf_base_of(c, d->index, oid, &olen);
        int nk = cf_base_of(&nb, d->index, nid, &nlen);
        int same = ok == nk && olen == nlen &&
                   (ok != BASE_CHUNK || memcmp(oid, nid, CHUNK_ID_LEN) == 0) &&
                   (ok != BASE_INLINE || memcmp(c->inl, cur->inl, olen) == 0);
        if (same || (cf_covers(d, 0, d->len) && d->len >= nlen))
            continue;
        /* Our bytes: the buffer (inline commit) or the uploaded chunk. */
        uint64_t index = d->index;
        cbuf *ours = NULL, *theirs = NULL;
        int rc = 0;
        uint32_t mylen = d->len;
        range *rs = xmalloc((d->nr ? d->nr : 1) * sizeof(range));
        unsigned nr = d->nr;
        memcpy(rs, d->r, nr * sizeof(range));
        int pending_hole = d->state == D_PENDING && d->hole;
        int is_buffered = d->state == D_DIRTY;
        uint8_t myid[CHUNK_ID_LEN];
        memcpy(myid, d->id, CHUNK_ID_LEN);
        if (d->pages) {
            int drc = cf_densify(c, d);
            if (drc < 0) {
                free(rs);
                return drc;
            }
        }
        if (d->buf)
            ours = cbuf_ref(d->buf);
        pthread_mutex_unlock(&c->lock);
        cf_merge_slot_take(c->fs);
        if (!ours && !pending_hole)
            rc = cio_get(c->fs->cfg.io, myid, &ours);
        if (rc == 0)
            rc = cf_fetch_content(c, nk, nid, cur->inl, nlen, &theirs);
        cbuf *nbuf = NULL;
        uint32_t newlen = MAX(nlen, nr ? rs[nr - 1].end : 0);
        if (rc == 0) {
            nbuf = cbuf_new(MAX(newlen, 1u));
            if (!nbuf)
                rc = -ENOMEM;
        }
        if (rc == 0) {
            memset(nbuf->data, 0, newlen);
            if (theirs)
                memcpy(nbuf->data, theirs->data, nlen);
            for (unsigned i = 0; i < nr; i++) {
                uint32_t e = MIN(rs[i].end, mylen);
                if (e <= rs[i].off)
                    continue;
                if (ours)
                    memcpy(nbuf->data + rs[i].off, ours->data + rs[i].off, e - rs[i].off);
                else
                    memset(nbuf->data + rs[i].off, 0, e - rs[i].off);
            }
            nbuf->len = newlen;
        }
        uint8_t newid[CHUNK_ID_LEN];
        int newhole = rc == 0 && is_all_zero(nbuf->data, newlen);
        if (rc == 0 && !newhole && !is_buffered) {
            sha256(nbuf->data, newlen, newid);
            rc = cio_put(c->fs->cfg.io, newid, nbuf);
        }
        if (ours)
            cbuf_unref(ours);
        if (theirs)
            cbuf_unref(theirs);
        free(rs);
        /* Only the merged result is left, copied under c->lock below. */
        cf_merge_slot_give(c->fs);
        pthread_mutex_lock(&c->lock);
        if (rc < 0) {
            if (nbuf)
                cbuf_unref(nbuf);
            return rc;
        }
        d = cf_dchunk_find(c, index);
        if (!d) {
            cbuf_unref(nbuf);
            return CAIRN_ECONFLICT;
        }
        d->len = newlen;
        if (d->state == D_DIRTY) {
            /* Inline commit: the buffer itself is what gets committed. */
            int r2 = cf_ensure_cap(c, &d, index, MAX(newlen, 1u));
            if (r2 != 0) {
                cbuf_unref(nbuf);
                return r2 < 0 ? r2 : CAIRN_ECONFLICT;
            }
            memcpy(d->buf->data, nbuf->data, newlen);
        } else {
            d->hole = newhole;
            if (!newhole)
                memcpy(d->id, newid, CHUNK_ID_LEN);
        }
        cbuf_unref(nbuf);
    }
    cf_base_set(c, cur);
    return 0;
}

/* Is everything still to commit a small file that fits inline? */
static int inline_candidate(cfile *c)
{
    if (c->size > c->fs->cfg.fs.inline_max)
        return 0;
    if (now_mono_ms() < __atomic_load_n(&c->fs->inline_off_until, __ATOMIC_RELAXED))
        return 0;
    if (c->nslots > 0)
        return 0;
    dchunk *d, *tmp;
    HASH_ITER(hh, c->dirty, d, tmp) {
        if (d->index != 0)
            return 0;
    }
    return 1;
}

/*
 * Commit what is PENDING (or, for an inline candidate, the DIRTY slot 0 as
 * inline data). c->lock held, c->committing set by the caller. full: the
 * whole file was sealed (size may then cover unwritten tails).
 */
int cf_commit_locked(cfile *c, int full)
{
    cfs *f = c->fs;
    unsigned attempt = 0;
    for (;;) {
        int as_inline = full && inline_candidate(c);
        dchunk *d, *tmp;
        size_t n = 0, cap = HASH_COUNT(c->dirty) + 1;
        fs_slot *slots = xmalloc(cap * sizeof(fs_slot));
        uint64_t size = MAX(c->base.size, full ? c->wend : 0);
        uint8_t *inl = NULL;
        size_t inl_len = 0;
        if (as_inline) {
            d = cf_dchunk_find(c, 0);
            if (d && d->state == D_DIRTY && !d->merged && !cf_covers(d, 0, d->len)) {
                free(slots);
                int rc = cf_merge_base(c, 0);
                if (rc < 0)
                    return rc;
                continue;
            }
            if (d && d->state == D_PENDING) {
                free(slots);
                int rc = cf_rematerialize(c, 0);
                if (rc < 0)
                    return rc;
                continue;
            }
            size = MAX(size, c->size);
            inl_len = (size_t)size;
            inl = xcalloc(1, inl_len ? inl_len : 1);
            if (d && d->pages) {
                int drc = cf_densify(c, d);
                if (drc < 0) {
                    free(slots);
                    free(inl);
                    return drc;
                }
            }
            if (d) {
                memcpy(inl, d->buf->data, MIN((size_t)d->len, inl_len));
                d->committing = 1;
            } else if (c->is_inline) {
                memcpy(inl, c->inl, MIN(c->inl_len, inl_len));
            }
        } else {
            HASH_ITER(hh, c->dirty, d, tmp) {
                if (d->state != D_PENDING)
                    continue;
                fs_slot *s = &slots[n++];
                s->index = d->index;
                s->len = d->hole ? 0 : d->len;
                memcpy(s->id, d->id, CHUNK_ID_LEN);
                d->committing = 1;
                if (!full)
                    size = MAX(size, d->index * cf_chunk_size(c) + d->len);
            }
            if (full)
                size = MAX(size, c->size);
            if (n == 0 && size == c->base.size && !c->has_local && !c->has_mode &&
                !c->has_atime) {
                free(slots);
                return 0;
            }
        }
        mc_commit_in in = {
            .ino = c->ino,
            .if_match = &c->base.vv,
            .slots = slots,
            .nslots = n,
            .size = size,
            .mtime = c->mtime ? c->mtime : now_realtime_ns(),
            .has_atime = c->has_atime,
            .atime = c->atime,
            .has_mode = c->has_mode,
            .mode = c->mode,
            .set_inline = as_inline,
            .inl = inl,
            .inl_len = inl_len,
            .clear_inline = !as_inline && c->is_inline,
        };
        vv ifm = c->base.vv;
        in.if_match = &ifm;
        mc_inode out;
        pthread_mutex_unlock(&c->lock);
        int rc = mc_commit(f->cfg.meta, &in, &out);
        pthread_mutex_lock(&c->lock);
        if (rc == 0) {
            cf_stat_inc(f, &f->st.commits);
            if (as_inline) {
                cf_stat_inc(f, &f->st.inline_commits);
                free(c->slots);
                c->slots = NULL;
                c->nslots = c->slots_cap = 0;
                free(c->inl);
                c->inl = inl;
                inl = NULL;
                c->inl_len = inl_len;
                c->is_inline = 1;
            } else {
                if (in.clear_inline) {
                    free(c->inl);
                    c->inl = NULL;
                    c->inl_len = 0;
                    c->is_inline = 0;
                }
                for (size_t i = 0; i < n; i++)
                    cf_slot_set(c, &slots[i]);
            }
            /* Drop the committed dchunks, unless rewritten meanwhile. */
            HASH_ITER(hh, c->dirty, d, tmp) {
                if (!d->committing)
                    continue;
                if (d->state == D_PENDING || (as_inline && d->index == 0 && d->state == D_DIRTY)) {
                    if (d->state == D_PENDING)
                        c->npending--;
                    HASH_DEL(c->dirty, d);
                    cf_dchunk_free(c, d);
                } else {
                    d->committing = 0;
                }
            }
            /* What this commit carried is done, unless changed again since. */
            if (in.has_mode && c->has_mode && c->mode == in.mode)
                c->has_mode = 0;
            if (in.has_atime && c->has_atime && c->atime == in.atime)
                c->has_atime = 0;
            fs_attr a = out.a;
            c->base = a;
            c->seen_vv = a.vv;
            cf_base_fresh(c);
            if (full || !c->dirty) {
                c->wend = 0;
                c->has_local = c->dirty != NULL;
            }
            if (c->size < a.size)
                c->size = a.size;
            mc_inode_clear(&out);
            free(slots);
            free(inl);
            pthread_cond_broadcast(&c->cv);
            return 0;
        }
        HASH_ITER(hh, c->dirty, d, tmp) {
            d->committing = d->committing && rc == CAIRN_ECONFLICT ? 1 : 0;
        }
        free(slots);
        free(inl);
        if (rc != CAIRN_ECONFLICT || ++attempt >= f->cfg.commit_retries) {
            HASH_ITER(hh, c->dirty, d, tmp) { d->committing = 0; }
            if (rc == 0 || rc == CAIRN_ECONFLICT)
                mc_inode_clear(&out);
            if (rc == -ENOSPC && as_inline) {
                /* metad's inline budget: the caller goes the chunk way. */
                c->inline_refused = 1;
            } else if (rc == CAIRN_ECONFLICT) {
                log_error("inode %llu: commit still conflicting after %u attempts",
                          (unsigned long long)c->ino, attempt);
                rc = -EIO;
            } else {
                log_error("inode %llu: commit failed: %s", (unsigned long long)c->ino,
                          cairn_strerror(rc));
            }
            pthread_cond_broadcast(&c->cv);
            return rc;
        }
        cf_stat_inc(f, &f->st.conflicts);
        int rb = rebase(c, &out);
        mc_inode_clear(&out);
        HASH_ITER(hh, c->dirty, d, tmp) { d->committing = 0; }
        if (rb < 0 && rb != CAIRN_ECONFLICT)
            return rb;
    }
}

void cf_begin_commit(cfile *c)
{
    while (c->committing)
        pthread_cond_wait(&c->cv, &c->lock);
    c->committing = 1;
}

void cf_end_commit(cfile *c)
{
    c->committing = 0;
    pthread_cond_broadcast(&c->cv);
}

/* How long small files skip inline storage after metad refused some. */
#define INLINE_OFF_MS 30000

static int flush_pass(cfile *c, int rc);

int cfile_flush(cfile *c)
{
    pthread_mutex_lock(&c->lock);
    c->fresh = 0;
    if (!c->dirty && !c->has_local && !c->has_mode && !c->has_atime && !c->err && !c->inflight) {
        pthread_mutex_unlock(&c->lock);
        return 0;
    }
    cf_begin_commit(c);
    int rc = 0;
    if (!c->have_base) {
        /* A write before any map was loaded (e.g. after a stale attr):
         * fetch the base first so partial chunks merge correctly. */
        pthread_mutex_unlock(&c->lock);
        mc_inode rec;
        rc = mc_map(c->fs->cfg.meta, c->ino, NULL, &rec);
        pthread_mutex_lock(&c->lock);
        if (rc == 0) {
            uint64_t sz = c->size;
            cf_base_set(c, &rec);
            c->size = MAX(sz, c->size);
            mc_inode_clear(&rec);
        }
    }
    for (int pass = 0;; pass++) {
        rc = flush_pass(c, rc);
        /* metad refused new inline data (its memory budget for it is used
         * up): store the file in chunks, and small files after it for a
         * while, without asking again. */
        if (rc == -ENOSPC && pass == 0 && c->inline_refused) {
            cf_stat_inc(c->fs, &c->fs->st.inline_refused);
            int64_t was = __atomic_exchange_n(&c->fs->inline_off_until,
                                              now_mono_ms() + INLINE_OFF_MS, __ATOMIC_RELAXED);
            if (now_mono_ms() >= was)
                log_warn("metad's inline-data budget is used up: small files go to the chunk "
                         "servers for the next %d s", INLINE_OFF_MS / 1000);
            rc = 0;
            continue;
        }
        break;
    }
    cf_end_commit(c);
    pthread_mutex_unlock(&c->lock);
    return rc;
}

/* Seal and upload everything (unless the file goes inline), then commit.
 * c->lock held, committing set. */
static int flush_pass(cfile *c, int rc)
{
    c->inline_refused = 0;
    cf_wait_uploads(c);
    if (rc == 0 && !inline_candidate(c)) {
        if (c->is_inline && c->inl_len && !cf_dchunk_find(c, 0)) {
            /* Leaving inline: slot 0 becomes a chunk holding the old bytes. */
            dchunk *d0 = cf_dchunk_new(c, 0);
            (void)d0;
        }
        rc = cf_seal_all(c);
        cf_wait_uploads(c);
        /* Writes that raced with the uploads are sealed too; a failed
         * upload is reported now, not retried within this flush. */
        if (rc == 0 && !c->err)
            rc = cf_seal_all(c);
        cf_wait_uploads(c);
    }
    if (rc == 0 && c->err) {
        rc = c->err;
        c->err = 0;
    }
    if (rc == 0)
        rc = cf_commit_locked(c, 1);
    return rc;
}

int cfile_take_error(cfile *c)
{
    pthread_mutex_lock(&c->lock);
    int e = c->err;
    c->err = 0;
    pthread_mutex_unlock(&c->lock);
    return e;
}

int cfile_dirty(cfile *c)
{
    pthread_mutex_lock(&c->lock);
    int d = c->dirty != NULL || c->has_local || c->inflight;
    pthread_mutex_unlock(&c->lock);
    return d;
}

/* ---- truncate, attributes ---- */

int cfile_truncate(cfile *c, uint64_t size, fs_attr *out)
{
    int rc = cfile_flush(c);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&c->lock);
    cf_begin_commit(c);
    pthread_mutex_unlock(&c->lock);
    mc_setattr_in in = {.valid = SA_SIZE, .size = size};
    mc_inode rec;
    rc = mc_setattr(c->fs->cfg.meta, c->ino, &in, &rec);
    pthread_mutex_lock(&c->lock);
    if (rc == 0) {
        *out = rec.a;
        if (c->have_base) {
            /* Trim the cached map exactly as metad did. */
            uint64_t cs = cf_chunk_size(c);
            size_t k = 0;
            for (size_t i = 0; i < c->nslots; i++) {
                fs_slot s = c->slots[i];
                if (s.index * cs >= size)
                    continue;
                if (s.index * cs + s.len > size)
                    s.len = (uint32_t)(size - s.index * cs);
                c->slots[k++] = s;
            }
            c->nslots = k;
            if (c->is_inline && c->inl_len > size)
                c->inl_len = (size_t)size;
            c->base = rec.a;
            c->seen_vv = rec.a.vv;
            cf_base_fresh(c);
        }
        /* Writes that raced with the truncate keep their own size. */
        if (!c->dirty) {
            c->size = size;
            c->wend = 0;
            c->has_local = 0;
        }
        mc_inode_clear(&rec);
    }
    cf_end_commit(c);
    pthread_mutex_unlock(&c->lock);
    return rc;
}
