/*
 * file.c — file striping: dirty chunks, uploads, CAS commits with rebase,
 * reads; see file.h.
 *
 * Locks:
 *   cfs->lock   guards the ino -> cfile table, the LRU of unreferenced
 *               cfiles and every cfile's refs field.
 *   cfile->lock guards everything else in a cfile and its dchunks.
 * Order: cfs->lock may be taken while holding a cfile->lock (cfile_ref in
 * the upload path); never the reverse. Neither is held across network I/O:
 * code that fetches or commits drops cfile->lock and re-validates after.
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

void cf_stat_inc(cfs *f, uint64_t *field)
{
    pthread_mutex_lock(&f->st_lock);
    (*field)++;
    pthread_mutex_unlock(&f->st_lock);
}

/* ---- cfs and cfile lifetime ---- */

cfs *cfs_new(const cfs_config *cfg)
{
    cfs *f = xcalloc(1, sizeof(*f));
    f->cfg = *cfg;
    if (!f->cfg.readahead_max)
        f->cfg.readahead_max = 8;
    if (!f->cfg.commit_every)
        f->cfg.commit_every = 64;
    if (!f->cfg.cache_files)
        f->cfg.cache_files = 4096;
    if (!f->cfg.commit_retries)
        f->cfg.commit_retries = 20;
    if (!f->cfg.merge_slots)
        f->cfg.merge_slots = slots_fitting(CIO_HELD_BYTES, f->cfg.fs.chunk_size, 2);
    /* Freed pages beyond this much go back to the kernel. */
    f->pages = pagestore_new(8u << 20);
    pthread_mutex_init(&f->lock, NULL);
    pthread_mutex_init(&f->st_lock, NULL);
    slots_init(&f->merges, f->cfg.merge_slots);
    return f;
}

static void pages_free(cfile *c, dchunk *d)
{
    if (!d->pages)
        return;
    uint64_t n = cf_chunk_size(c) / CF_PAGE;
    for (uint64_t i = 0; i < n; i++)
        pagestore_put(c->fs->pages, d->pages[i]);
    free(d->pages);
    d->pages = NULL;
    d->npages = 0;
}

void cf_dchunk_free(cfile *c, dchunk *d)
{
    pages_free(c, d);
    if (d->buf)
        cbuf_unref(d->buf);
    if (d->budget)
        bufpool_release(c->fs->cfg.pool, d->budget);
    free(d->r);
    free(d);
}

static void cfile_destroy(cfile *c)
{
    dchunk *d, *tmp;
    HASH_ITER(hh, c->dirty, d, tmp) {
        HASH_DEL(c->dirty, d);
        cf_dchunk_free(c, d);
    }
    free(c->slots);
    free(c->inl);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->cv);
    free(c);
}

void cfs_free(cfs *f)
{
    if (!f)
        return;
    cfile *c, *tmp;
    HASH_ITER(hh, f->table, c, tmp) {
        HASH_DEL(f->table, c);
        cfile_destroy(c);
    }
    pagestore_free(f->pages);
    pthread_mutex_destroy(&f->lock);
    pthread_mutex_destroy(&f->st_lock);
    slots_destroy(&f->merges);
    free(f);
}

static void lru_unlink(cfs *f, cfile *c)
{
    if (c->lru_prev)
        c->lru_prev->lru_next = c->lru_next;
    else if (f->lru_head == c)
        f->lru_head = c->lru_next;
    else
        return; /* not on the list */
    if (c->lru_next)
        c->lru_next->lru_prev = c->lru_prev;
    else
        f->lru_tail = c->lru_prev;
    c->lru_prev = c->lru_next = NULL;
    f->lru_len--;
}

void cf_ref(cfile *c)
{
    pthread_mutex_lock(&c->fs->lock);
    if (c->refs++ == 0)
        lru_unlink(c->fs, c);
    pthread_mutex_unlock(&c->fs->lock);
}

cfile *cfs_file_find(cfs *f, uint64_t ino)
{
    pthread_mutex_lock(&f->lock);
    cfile *c;
    HASH_FIND(hh, f->table, &ino, sizeof(ino), c);
    if (c && c->refs++ == 0)
        lru_unlink(f, c);
    pthread_mutex_unlock(&f->lock);
    return c;
}

cfile *cfs_file(cfs *f, uint64_t ino)
{
    pthread_mutex_lock(&f->lock);
    cfile *c;
    HASH_FIND(hh, f->table, &ino, sizeof(ino), c);
    if (c) {
        if (c->refs++ == 0)
            lru_unlink(f, c);
        pthread_mutex_unlock(&f->lock);
        return c;
    }
    c = xcalloc(1, sizeof(*c));
    c->ino = ino;
    c->fs = f;
    c->refs = 1;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cv, NULL);
    HASH_ADD(hh, f->table, ino, sizeof(c->ino), c);
    pthread_mutex_unlock(&f->lock);
    return c;
}

/* Is the cfile free of anything that must not be dropped? (c->lock held) */
static int cfile_clean_locked(cfile *c)
{
    return !c->dirty && !c->inflight && !c->committing && !c->err;
}

void cfile_put(cfile *c)
{
    cfs *f = c->fs;
    /* Read the state first: taking c->lock under f->lock would invert the
     * lock order. A cfile that turns dirty later is referenced again by
     * whoever dirtied it, so a stale "clean" can only delay eviction. */
    pthread_mutex_lock(&c->lock);
    int clean = cfile_clean_locked(c);
    pthread_mutex_unlock(&c->lock);
    pthread_mutex_lock(&f->lock);
    if (--c->refs > 0) {
        pthread_mutex_unlock(&f->lock);
        return;
    }
    cfile *victims = NULL;
    if (!clean || c->have_base) {
        c->lru_prev = f->lru_tail;
        c->lru_next = NULL;
        if (f->lru_tail)
            f->lru_tail->lru_next = c;
        else
            f->lru_head = c;
        f->lru_tail = c;
        f->lru_len++;
    } else {
        HASH_DEL(f->table, c);
        c->lru_next = victims;
        victims = c;
    }
    /* Trim the LRU; dirty cfiles are skipped (their uploads hold refs or
     * their data waits for a flush). */
    cfile *v = f->lru_head;
    while (f->lru_len > f->cfg.cache_files && v) {
        cfile *next = v->lru_next;
        if (pthread_mutex_trylock(&v->lock) == 0) {
            int ok = cfile_clean_locked(v);
            pthread_mutex_unlock(&v->lock);
            if (ok) {
                lru_unlink(f, v);
                HASH_DEL(f->table, v);
                v->lru_next = victims;
                victims = v;
            }
        }
        v = next;
    }
    pthread_mutex_unlock(&f->lock);
    while (victims) {
        cfile *n = victims->lru_next;
        cfile_destroy(victims);
        victims = n;
    }
}

/* ---- base map ---- */

void cf_base_set(cfile *c, const mc_inode *rec)
{
    c->base = rec->a;
    free(c->slots);
    c->slots = NULL;
    c->nslots = c->slots_cap = 0;
    if (rec->nslots) {
        c->slots = xmalloc(rec->nslots * sizeof(fs_slot));
        memcpy(c->slots, rec->slots, rec->nslots * sizeof(fs_slot));
        c->nslots = c->slots_cap = rec->nslots;
    }
    free(c->inl);
    c->inl = NULL;
    c->inl_len = 0;
    c->is_inline = rec->has_inline;
    if (rec->has_inline) {
        c->inl = xmalloc(rec->inl_len ? rec->inl_len : 1);
        memcpy(c->inl, rec->inl, rec->inl_len);
        c->inl_len = rec->inl_len;
    }
    c->have_base = 1;
    c->stale = 0;
    c->noxattr = 0; /* a base from metad says nothing about xattrs */
    cf_base_fresh(c);
    c->seen_vv = rec->a.vv;
    if (!c->dirty) {
        c->size = rec->a.size;
        c->has_local = 0;
    } else if (rec->a.size > c->size) {
        c->size = rec->a.size;
    }
}

fs_slot *cf_slot_find(const cfile *c, uint64_t index)
{
    size_t lo = 0, hi = c->nslots;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c->slots[mid].index < index)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < c->nslots && c->slots[lo].index == index ? &c->slots[lo] : NULL;
}

/* Replace, insert or (len 0) remove a committed slot. */
void cf_slot_set(cfile *c, const fs_slot *s)
{
    size_t lo = 0, hi = c->nslots;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c->slots[mid].index < s->index)
            lo = mid + 1;
        else
            hi = mid;
    }
    int found = lo < c->nslots && c->slots[lo].index == s->index;
    if (s->len == 0) {
        if (found) {
            memmove(&c->slots[lo], &c->slots[lo + 1], (c->nslots - lo - 1) * sizeof(fs_slot));
            c->nslots--;
        }
        return;
    }
    if (found) {
        c->slots[lo] = *s;
        return;
    }
    if (c->nslots == c->slots_cap) {
        c->slots_cap = c->slots_cap ? c->slots_cap * 2 : 16;
        c->slots = xrealloc(c->slots, c->slots_cap * sizeof(fs_slot));
    }
    memmove(&c->slots[lo + 1], &c->slots[lo], (c->nslots - lo) * sizeof(fs_slot));
    c->slots[lo] = *s;
    c->nslots++;
}

/* What the committed base holds for a slot. */
int cf_base_of(const cfile *c, uint64_t index, uint8_t id[CHUNK_ID_LEN], uint32_t *len)
{
    if (c->is_inline) {
        *len = index == 0 ? (uint32_t)c->inl_len : 0;
        return index == 0 && c->inl_len ? BASE_INLINE : BASE_HOLE;
    }
    const fs_slot *s = cf_slot_find(c, index);
    if (!s) {
        *len = 0;
        return BASE_HOLE;
    }
    memcpy(id, s->id, CHUNK_ID_LEN);
    *len = s->len;
    return BASE_CHUNK;
}

void cfile_seed(cfile *c, const mc_inode *rec)
{
    pthread_mutex_lock(&c->lock);
    if (!c->dirty && !c->committing && (rec->hasmap || rec->a.size == 0))
        cf_base_set(c, rec);
    pthread_mutex_unlock(&c->lock);
}

int cfile_open(cfile *c, int *changed, int hold)
{
    *changed = 0;
    mc *meta = c->fs->cfg.meta;
    pthread_mutex_lock(&c->lock);
    if (c->dirty || c->committing || c->inflight) {
        /* This client's view is newer than metad's until it commits. */
        pthread_mutex_unlock(&c->lock);
        if (hold && mc_session(meta)) {
            uint64_t ino = c->ino;
            return mc_session_hold(meta, mc_session(meta), &ino, 1);
        }
        return 0;
    }
    int had = c->have_base;
    vv cur = c->base.vv;
    pthread_mutex_unlock(&c->lock);
    mc_inode rec;
    int rc = hold ? mc_map_open(meta, c->ino, had ? &cur : NULL, &rec)
                  : mc_map(meta, c->ino, had ? &cur : NULL, &rec);
    if (rc == CAIRN_ENOTMODIFIED) {
        pthread_mutex_lock(&c->lock);
        if (c->have_base && vv_equal(&c->base.vv, &cur))
            cf_base_fresh(c);
        pthread_mutex_unlock(&c->lock);
        return 0;
    }
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&c->lock);
    if (!c->dirty && !c->committing && !c->inflight) {
        *changed = had && !vv_equal(&cur, &rec.a.vv);
        cf_base_set(c, &rec);
    }
    pthread_mutex_unlock(&c->lock);
    mc_inode_clear(&rec);
    return 0;
}

void cfile_note_attr(cfile *c, const fs_attr *a)
{
    pthread_mutex_lock(&c->lock);
    if (c->have_base && !c->dirty && !c->committing && !c->inflight &&
        !vv_equal(&a->vv, &c->base.vv))
        c->stale = 1; /* changed elsewhere: the next open fetches the map */
    pthread_mutex_unlock(&c->lock);
}

/* ---- ranges ---- */

void cf_range_add(dchunk *d, uint32_t off, uint32_t end)
{
    /* Merge with every range that touches [off, end). */
    unsigned i = 0;
    while (i < d->nr && d->r[i].end < off)
        i++;
    unsigned j = i;
    while (j < d->nr && d->r[j].off <= end) {
        off = MIN(off, d->r[j].off);
        end = MAX(end, d->r[j].end);
        j++;
    }
    if (j > i) {
        d->r[i].off = off;
        d->r[i].end = end;
        memmove(&d->r[i + 1], &d->r[j], (d->nr - j) * sizeof(range));
        d->nr -= j - i - 1;
        return;
    }
    if (d->nr == d->rcap) {
        if (d->rcap >= RANGES_MAX) {
            /* Coalesce the closest pair: the gap between them counts as
             * written. Only matters to a rebase onto a concurrent writer's
             * chunk, and the gap then holds this client's merged bytes. */
            unsigned best = 0;
            uint32_t gap = UINT32_MAX;
            for (unsigned k = 0; k + 1 < d->nr; k++)
                if (d->r[k + 1].off - d->r[k].end < gap) {
                    gap = d->r[k + 1].off - d->r[k].end;
                    best = k;
                }
            d->r[best].end = d->r[best + 1].end;
            memmove(&d->r[best + 1], &d->r[best + 2], (d->nr - best - 2) * sizeof(range));
            d->nr--;
            cf_range_add(d, off, end);
            return;
        }
        d->rcap = d->rcap ? d->rcap * 2 : 4;
        d->r = xrealloc(d->r, d->rcap * sizeof(range));
    }
    memmove(&d->r[i + 1], &d->r[i], (d->nr - i) * sizeof(range));
    d->r[i].off = off;
    d->r[i].end = end;
    d->nr++;
}

int cf_covers(const dchunk *d, uint32_t off, uint32_t end)
{
    for (unsigned i = 0; i < d->nr; i++)
        if (d->r[i].off <= off && d->r[i].end >= end)
            return 1;
    return off >= end;
}

/* Copy src bytes into dst everywhere outside d's ranges within [0, len);
 * src holds srclen bytes, positions past it are zeros. */
void cf_fill_gaps(const dchunk *d, uint8_t *dst, uint32_t len, const uint8_t *src,
                      uint32_t srclen)
{
    uint32_t pos = 0;
    for (unsigned i = 0; i <= d->nr && pos < len; i++) {
        uint32_t gap_end = i < d->nr ? MIN(d->r[i].off, len) : len;
        if (gap_end > pos) {
            uint32_t from = MIN(srclen, gap_end);
            if (from > pos)
                memcpy(dst + pos, src + pos, from - pos);
            if (gap_end > MAX(pos, from))
                memset(dst + MAX(pos, from), 0, gap_end - MAX(pos, from));
        }
        if (i < d->nr)
            pos = MAX(pos, d->r[i].end);
    }
}

/* ---- buffers and the memory budget ---- */

dchunk *cf_dchunk_find(cfile *c, uint64_t index)
{
    dchunk *d;
    HASH_FIND(hh, c->dirty, &index, sizeof(index), d);
    return d;
}

void cf_release_buf(cfile *c, dchunk *d)
{
    pages_free(c, d);
    if (d->buf) {
        cbuf_unref(d->buf);
        d->buf = NULL;
    }
    if (d->budget) {
        bufpool_release(c->fs->cfg.pool, d->budget);
        d->budget = 0;
    }
}


/* Seal one of this file's other DIRTY chunks whose buffer already spans
 * its slot, so sealing needs no more budget and its upload returns some. */
void cf_relieve(cfile *c, uint64_t busy_index)
{
    /* The one holding the most memory: its upload returns the most, and
     * covers the most writes. A chunk kept as pages is turned into one
     * buffer past the budget for the time of its upload (see cf_densify),
     * and only while no such overdraft is outstanding: otherwise waiting
     * for the uploads already running is what returns memory. So too for
     * a partly written buffer while this file has uploads running: in a
     * sequential write it is the chunk the writer fills next, and sealing
     * it now would upload it twice. */
    bufpool *pool = c->fs->cfg.pool;
    int may_overdraw = bufpool_used(pool) <= bufpool_max(pool);
    dchunk *o, *tmp, *best = NULL;
    HASH_ITER(hh, c->dirty, o, tmp) {
        if (o->index != busy_index && o->state == D_DIRTY && !o->committing &&
            ((o->pages && may_overdraw) ||
             (o->buf && o->buf->cap >= MAX(o->len, 1u) && !c->inflight)) &&
            (!best || o->budget > best->budget))
            best = o;
    }
    if (best)
        cf_seal(c, best);
}

int cf_budget_acquire(cfile *c, uint64_t busy_index, uint64_t n)
{
    bufpool *pool = c->fs->cfg.pool;
    if (bufpool_try_acquire(pool, n))
        return 0;
    /* Under pressure: seal this file's other chunks so that their uploads
     * return budget, then wait for it. */
    cf_relieve(c, busy_index);
    pthread_mutex_unlock(&c->lock);
    while (!bufpool_acquire_timeout(pool, n, 100)) {
        pthread_mutex_lock(&c->lock);
        cf_relieve(c, busy_index);
        pthread_mutex_unlock(&c->lock);
    }
    pthread_mutex_lock(&c->lock);
    return 1;
}

/*
 * Turn a chunk kept as pages into one buffer of d->len bytes (the written
 * bytes in place, the rest to be merged from the base). Never drops
 * c->lock: the buffer's budget is granted at once, past the budget if need
 * be, and the pages' budget is returned; the overdraft is at most one
 * chunk for each chunk being sealed at that moment.
 */
int cf_densify(cfile *c, dchunk *d)
{
    if (!d->pages)
        return 0;
    uint32_t cap = MAX(d->len, 1u);
    cbuf *nb = cbuf_new(cap);
    if (!nb)
        return -ENOMEM;
    bufpool *pool = c->fs->cfg.pool;
    bufpool_acquire_force(pool, cap);
    uint64_t n = cf_chunk_size(c) / CF_PAGE;
    for (uint64_t i = 0; i < n; i++) {
        if (!d->pages[i])
            continue;
        uint64_t at = i * CF_PAGE;
        if (at < cap)
            memcpy(nb->data + at, d->pages[i], MIN((uint64_t)CF_PAGE, cap - at));
    }
    pages_free(c, d);
    if (d->budget)
        bufpool_release(pool, d->budget);
    d->buf = nb;
    d->budget = cap;
    d->merged = 0;
    return 0;
}

/*
 * Make sure d (page mode) has pages for [off, end). May drop c->lock while
 * waiting for the memory budget: returns 1 when it did (the caller
 * re-validates), 0 when the pages exist, negative on error.
 */
static int pages_ensure(cfile *c, dchunk **dp, uint64_t index, uint32_t off, uint32_t end)
{
    dchunk *d = *dp;
    uint32_t first = off / CF_PAGE, last = (end - 1) / CF_PAGE;
    uint64_t missing = 0;
    for (uint32_t i = first; i <= last; i++)
        if (!d->pages[i])
            missing++;
    if (!missing)
        return 0;
    uint64_t extra = missing * CF_PAGE;
    bufpool *pool = c->fs->cfg.pool;
    if (cf_budget_acquire(c, index, extra)) {
        /* Use what was granted for the pages still missing, if d is still
         * taking pages; the caller re-validates either way. */
        d = cf_dchunk_find(c, index);
        *dp = d;
        if (d && d->state == D_DIRTY && !d->committing && d->pages) {
            for (uint32_t i = first; i <= last && extra >= CF_PAGE; i++) {
                if (d->pages[i])
                    continue;
                d->pages[i] = pagestore_get(c->fs->pages);
                if (!d->pages[i])
                    break;
                d->npages++;
                extra -= CF_PAGE;
                d->budget += CF_PAGE;
            }
        }
        if (extra)
            bufpool_release(pool, extra);
        return 1;
    }
    for (uint32_t i = first; i <= last; i++) {
        if (!d->pages[i]) {
            d->pages[i] = pagestore_get(c->fs->pages);
            if (!d->pages[i]) {
                bufpool_release(pool, extra);
                return -ENOMEM;
            }
            d->npages++;
            extra -= CF_PAGE;
            d->budget += CF_PAGE;
        }
    }
    return 0;
}

/* Should writes into d go to pages? Only a fresh DIRTY chunk over
 * committed chunk content: anything else needs no read-modify-write. */
static int page_mode_fits(cfile *c, const dchunk *d, uint64_t index)
{
    if (d->pages)
        return 1;
    if (d->buf || d->merged || d->nr)
        return 0;
    uint8_t id[CHUNK_ID_LEN];
    uint32_t blen;
    return cf_base_of(c, index, id, &blen) == BASE_CHUNK && blen > 0 &&
           cf_chunk_size(c) % CF_PAGE == 0;
}

/*
 * Make d->buf hold at least want bytes. May drop c->lock while waiting for
 * the memory budget; returns 1 when it did (the caller re-validates d),
 * 0 when the buffer is ready, negative on error.
 */
int cf_ensure_cap(cfile *c, dchunk **dp, uint64_t index, uint32_t want)
{
    dchunk *d = *dp;
    if (d->pages) {
        int rc = cf_densify(c, d);
        if (rc < 0)
            return rc;
    }
    if (d->buf && d->buf->cap >= want)
        return 0;
    uint64_t cs = cf_chunk_size(c);
    size_t cap = d->buf ? d->buf->cap : 0;
    size_t ncap = MAX((size_t)want, MIN((size_t)cs, MAX((size_t)BUF_MIN, cap * 2)));
    uint64_t extra = ncap - cap;
    bufpool *pool = c->fs->cfg.pool;
    if (cf_budget_acquire(c, index, extra)) {
        d = cf_dchunk_find(c, index);
        *dp = d;
        if (!d || d->state != D_DIRTY || d->committing || (d->buf && d->buf->cap >= want)) {
            bufpool_release(pool, extra);
            return 1;
        }
        cap = d->buf ? d->buf->cap : 0;
        if (ncap - cap != extra) {
            bufpool_release(pool, extra);
            return 1;
        }
    }
    cbuf *nb = cbuf_new(ncap);
    if (!nb) {
        bufpool_release(pool, extra);
        return -ENOMEM;
    }
    if (d->buf) {
        memcpy(nb->data, d->buf->data, MIN(d->buf->cap, (size_t)d->len));
        cbuf_unref(d->buf);
    }
    d->buf = nb;
    d->budget += extra;
    return 0;
}

dchunk *cf_dchunk_new(cfile *c, uint64_t index)
{
    dchunk *d = xcalloc(1, sizeof(*d));
    d->index = index;
    d->gen = ++c->next_gen;
    d->state = D_DIRTY;
    uint8_t id[CHUNK_ID_LEN];
    uint32_t blen;
    cf_base_of(c, index, id, &blen);
    d->len = blen;
    HASH_ADD(hh, c->dirty, index, sizeof(d->index), d);
    return d;
}

/* Fetch the content a slot had in the base: a new cbuf (len bytes) or
 * NULL for a hole. Called without c->lock. */
int cf_fetch_content(cfile *c, int kind, const uint8_t *id, const uint8_t *inl, uint32_t len,
                         cbuf **out)
{
    *out = NULL;
    if (kind == BASE_HOLE || len == 0)
        return 0;
    if (kind == BASE_INLINE) {
        cbuf *b = cbuf_new(len);
        if (!b)
            return -ENOMEM;
        memcpy(b->data, inl, len);
        b->len = len;
        *out = b;
        return 0;
    }
    cbuf *b;
    int rc = cio_get(c->fs->cfg.io, id, &b);
    if (rc < 0)
        return rc;
    if (b->len < len) {
        char hex[CHUNK_ID_HEX + 1];
        chunk_id_hex(id, hex);
        log_error("inode %llu: chunk %s is %zu bytes, the map says %u",
                  (unsigned long long)c->ino, hex, b->len, len);
        cbuf_unref(b);
        return -EIO;
    }
    *out = b;
    return 0;
}

/*
 * Merge the base bytes into a DIRTY chunk's gaps (read-modify-write). Drops
 * c->lock while fetching. Returns 0 when d (re-found by index) is merged or
 * no longer needs it; the caller re-validates its pointer.
 */
int cf_merge_base(cfile *c, uint64_t index)
{
    dchunk *d = cf_dchunk_find(c, index);
    if (!d || d->state != D_DIRTY || d->merged)
        return 0;
    if (d->pages) {
        int drc = cf_densify(c, d);
        if (drc < 0)
            return drc;
    }
    uint8_t id[CHUNK_ID_LEN];
    uint32_t blen;
    int kind = cf_base_of(c, index, id, &blen);
    uint8_t *inl = NULL;
    if (kind == BASE_INLINE) {
        inl = xmalloc(blen);
        memcpy(inl, c->inl, blen);
    }
    uint64_t gen = d->gen;
    if (d->len < blen)
        d->len = blen;
    int rc = cf_ensure_cap(c, &d, index, MAX(d->len, 1u));
    if (rc < 0) {
        free(inl);
        return rc;
    }
    if (rc == 1) {
        free(inl);
        return cf_merge_base(c, index);
    }
    cbuf *b = NULL;
    if (kind == BASE_CHUNK) {
        pthread_mutex_unlock(&c->lock);
        cf_merge_slot_take(c->fs);
        rc = cf_fetch_content(c, kind, id, inl, blen, &b);
        pthread_mutex_lock(&c->lock);
        if (rc < 0) {
            cf_merge_slot_give(c->fs);
            free(inl);
            return rc;
        }
        d = cf_dchunk_find(c, index);
        if (!d || d->gen != gen || d->state != D_DIRTY || d->merged || d->buf->cap < d->len) {
            cbuf_unref(b);
            cf_merge_slot_give(c->fs);
            free(inl);
            return d && d->gen == gen && d->state == D_DIRTY && !d->merged ? cf_merge_base(c, index)
                                                                           : 0;
        }
    }
    const uint8_t *src = kind == BASE_CHUNK ? b->data : inl;
    cf_fill_gaps(d, d->buf->data, d->len, src, kind == BASE_HOLE ? 0 : blen);
    d->merged = 1;
    if (kind == BASE_CHUNK) {
        cbuf_unref(b);
        cf_merge_slot_give(c->fs);
    }
    free(inl);
    return 0;
}

/* ---- write ---- */

long cfile_write(cfile *c, uint64_t off, const uint8_t *src, size_t len)
{
    uint64_t cs = cf_chunk_size(c);
    if (len == 0)
        return 0;
    if (off + len < off || (off + len) / cs >= (1ull << 32))
        return -EFBIG;
    pthread_mutex_lock(&c->lock);
    if (!c->have_base && !c->dirty && !c->committing) {
        pthread_mutex_unlock(&c->lock);
        int changed;
        int orc = cfile_open(c, &changed, 0);
        if (orc < 0)
            return orc;
        pthread_mutex_lock(&c->lock);
    }
    if (c->err) {
        int e = c->err;
        c->err = 0;
        pthread_mutex_unlock(&c->lock);
        return e;
    }
    size_t done = 0;
    int rc = 0;
    while (done < len) {
        uint64_t pos = off + done;
        uint64_t index = pos / cs;
        uint32_t o = (uint32_t)(pos % cs);
        uint32_t n = (uint32_t)MIN((uint64_t)(len - done), cs - o);
        dchunk *d = cf_dchunk_find(c, index);
        if (d && (d->state == D_UPLOADING || d->committing)) {
            pthread_cond_wait(&c->cv, &c->lock);
            continue;
        }
        if (d && d->state == D_PENDING) {
            rc = cf_rematerialize(c, index);
            if (rc < 0)
                break;
            rc = 0;
            continue;
        }
        if (!d)
            d = cf_dchunk_new(c, index);
        int r;
        if (page_mode_fits(c, d, index) && d->nr < PAGED_RANGES_MAX) {
            if (!d->pages)
                d->pages = xcalloc(cf_chunk_size(c) / CF_PAGE, sizeof(uint8_t *));
            r = pages_ensure(c, &d, index, o, o + n);
            if (r < 0) {
                rc = r;
                break;
            }
            if (r == 1)
                continue;
            for (uint32_t at = o; at < o + n;) {
                uint32_t pg = at / CF_PAGE, po = at % CF_PAGE;
                uint32_t k = MIN(o + n - at, CF_PAGE - po);
                memcpy(d->pages[pg] + po, src + done + (at - o), k);
                at += k;
            }
        } else {
            if (!d->merged && d->nr >= RANGES_MAX - 2) {
                /* So many scattered writes that ranges will be coalesced:
                 * the gaps must hold the base's bytes first. */
                r = cf_merge_base(c, index);
                if (r < 0) {
                    rc = r;
                    break;
                }
                continue;
            }
            uint32_t want = MAX(d->len, o + n);
            r = cf_ensure_cap(c, &d, index, want);
            if (r < 0) {
                rc = r;
                break;
            }
            if (r == 1)
                continue;
            if (d->merged && o > d->len)
                memset(d->buf->data + d->len, 0, o - d->len);
            memcpy(d->buf->data + o, src + done, n);
        }
        cf_range_add(d, o, o + n);
        if (o + n > d->len)
            d->len = o + n;
        done += n;
        if (pos + n > c->size)
            c->size = pos + n;
        if (pos + n > c->wend)
            c->wend = pos + n;
        c->has_local = 1;
        if (d->len == cs && cf_covers(d, 0, (uint32_t)cs)) {
            r = cf_seal(c, d);
            if (r < 0) {
                rc = r;
                break;
            }
        }
    }
    c->mtime = now_realtime_ns();
    /* Long writes commit what has been uploaded every commit_every chunks,
     * so a crash of this client loses at most that much unflushed data. */
    if (rc == 0 && c->npending >= c->fs->cfg.commit_every && !c->committing) {
        cf_begin_commit(c);
        int cr = cf_commit_locked(c, 0);
        cf_end_commit(c);
        if (cr < 0)
            rc = cr;
    }
    pthread_mutex_unlock(&c->lock);
    if (rc < 0 && done == 0)
        return rc;
    return (long)done;
}

/* ---- read ---- */

long cfile_read(cfile *c, uint64_t off, size_t len, uint8_t *dst, cfile_ra *ra)
{
    uint64_t cs = cf_chunk_size(c);
    pthread_mutex_lock(&c->lock);
    if (!c->have_base && !c->dirty) {
        pthread_mutex_unlock(&c->lock);
        int changed;
        int rc = cfile_open(c, &changed, 0);
        if (rc < 0)
            return rc;
        pthread_mutex_lock(&c->lock);
    }
    uint64_t size = c->size;
    if (off >= size) {
        pthread_mutex_unlock(&c->lock);
        return 0;
    }
    len = (size_t)MIN((uint64_t)len, size - off);
    size_t done = 0;
    int rc = 0;
    while (done < len) {
        uint64_t pos = off + done;
        uint64_t index = pos / cs;
        uint32_t o = (uint32_t)(pos % cs);
        uint32_t n = (uint32_t)MIN((uint64_t)(len - done), cs - o);
        dchunk *d = cf_dchunk_find(c, index);
        if (d && (d->state == D_DIRTY || d->state == D_UPLOADING)) {
            if (d->state == D_DIRTY && !d->merged && !cf_covers(d, o, MIN(o + n, d->len))) {
                rc = cf_merge_base(c, index);
                if (rc < 0)
                    break;
                continue;
            }
            uint32_t have = o < d->len ? MIN(n, d->len - o) : 0;
            if (have && d->pages) {
                /* covered: every byte of it is in a page */
                for (uint32_t at = o; at < o + have;) {
                    uint32_t pg = at / CF_PAGE, po = at % CF_PAGE;
                    uint32_t k = MIN(o + have - at, CF_PAGE - po);
                    memcpy(dst + done + (at - o), d->pages[pg] + po, k);
                    at += k;
                }
            } else if (have) {
                memcpy(dst + done, d->buf->data + o, have);
            }
            if (have < n)
                memset(dst + done + have, 0, n - have);
            done += n;
            continue;
        }
        uint8_t id[CHUNK_ID_LEN];
        uint32_t slen;
        int kind;
        if (d) { /* PENDING */
            kind = d->hole ? BASE_HOLE : BASE_CHUNK;
            memcpy(id, d->id, CHUNK_ID_LEN);
            slen = d->hole ? 0 : d->len;
        } else {
            kind = cf_base_of(c, index, id, &slen);
        }
        if (kind == BASE_INLINE) {
            uint32_t have = o < slen ? MIN(n, slen - o) : 0;
            if (have)
                memcpy(dst + done, c->inl + o, have);
            if (have < n)
                memset(dst + done + have, 0, n - have);
            done += n;
            continue;
        }
        uint32_t have = kind == BASE_CHUNK && o < slen ? MIN(n, slen - o) : 0;
        if (have) {
            pthread_mutex_unlock(&c->lock);
            long got = cio_read(c->fs->cfg.io, id, o, dst + done, have);
            pthread_mutex_lock(&c->lock);
            if (got < 0) {
                rc = (int)got;
                break;
            }
            if ((uint32_t)got < have) {
                char hex[CHUNK_ID_HEX + 1];
                chunk_id_hex(id, hex);
                log_error("inode %llu: chunk %s shorter than its slot", (unsigned long long)c->ino,
                          hex);
                rc = -EIO;
                break;
            }
        }
        if (have < n)
            memset(dst + done + have, 0, n - have);
        done += n;
    }
    /* Readahead: a reader that continues where it stopped gets a window
     * that doubles up to readahead_max chunks. */
    uint8_t (*pf)[CHUNK_ID_LEN] = NULL;
    size_t npf = 0;
    if (ra && rc == 0) {
        if (off == ra->next_off && off != 0) {
            ra->window = ra->window ? MIN(ra->window * 2, c->fs->cfg.readahead_max)
                                    : MIN(2u, c->fs->cfg.readahead_max);
        } else if (off != ra->next_off) {
            ra->window = 0;
        }
        ra->next_off = off + done;
        if (ra->window) {
            uint64_t first = (off + done) / cs;
            pf = xmalloc(ra->window * CHUNK_ID_LEN);
            for (uint64_t i = first; i < first + ra->window && i * cs < c->size; i++) {
                if (cf_dchunk_find(c, i))
                    continue;
                uint32_t sl;
                if (cf_base_of(c, i, pf[npf], &sl) == BASE_CHUNK)
                    npf++;
            }
        }
    }
    pthread_mutex_unlock(&c->lock);
    for (size_t i = 0; i < npf; i++)
        cio_prefetch(c->fs->cfg.io, pf[i]);
    free(pf);
    if (rc < 0 && done == 0)
        return rc;
    return (long)done;
}

static int overlay_locked(const cfile *c, fs_attr *a)
{
    int changed = 0;
    if (c->has_mode && (a->mode & 07777) != c->mode) {
        a->mode = (a->mode & ~07777u) | c->mode;
        changed = 1;
    }
    if (c->has_atime && a->atime != c->atime) {
        a->atime = c->atime;
        changed = 1;
    } else if (c->has_lazy_atime && c->lazy_atime > a->atime) {
        a->atime = c->lazy_atime;
        changed = 1;
    }
    if (c->dirty || c->has_local || c->inflight || c->committing) {
        if (a->size != c->size) {
            a->size = c->size;
            changed = 1;
        }
        if (c->mtime > a->mtime) {
            a->mtime = c->mtime;
            a->ctime = MAX(a->ctime, c->mtime);
            changed = 1;
        }
    }
    return changed;
}

int cfile_overlay(cfile *c, fs_attr *a)
{
    pthread_mutex_lock(&c->lock);
    int changed = overlay_locked(c, a);
    pthread_mutex_unlock(&c->lock);
    return changed;
}

int cfile_fresh_attr(cfile *c, uint64_t max_age_ms, fs_attr *out, uint64_t *age_ms)
{
    int rc = -ESTALE;
    pthread_mutex_lock(&c->lock);
    int64_t age = now_mono_ms() - c->base_ms;
    if (c->have_base && !c->stale && c->base_ms && age >= 0 && age < (int64_t)max_age_ms &&
        c->base_epoch == __atomic_load_n(&c->fs->ns_epoch, __ATOMIC_ACQUIRE)) {
        *out = c->base;
        overlay_locked(c, out);
        *age_ms = (uint64_t)age;
        rc = 0;
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

void cfile_attr_expire(cfile *c)
{
    pthread_mutex_lock(&c->lock);
    c->base_ms = 0;
    pthread_mutex_unlock(&c->lock);
}

void cfs_ns_changed(cfs *f)
{
    __atomic_add_fetch(&f->ns_epoch, 1, __ATOMIC_ACQ_REL);
}

int cfile_base_attr(cfile *c, fs_attr *out)
{
    pthread_mutex_lock(&c->lock);
    int rc = c->have_base ? 0 : -ENOENT;
    if (rc == 0)
        *out = c->base;
    pthread_mutex_unlock(&c->lock);
    return rc;
}

void cfile_attr_changed(cfile *c, const vv *old, const fs_attr *a)
{
    pthread_mutex_lock(&c->lock);
    if (c->have_base && vv_equal(&c->base.vv, old)) {
        uint64_t size = c->base.size;
        c->base = *a;
        c->base.size = size; /* the map did not change, nor did its size */
        c->seen_vv = a->vv;
        cf_base_fresh(c);
    }
    pthread_mutex_unlock(&c->lock);
}

int cfile_set_mtime(cfile *c, int64_t mtime_ns)
{
    pthread_mutex_lock(&c->lock);
    int pending = c->dirty || c->has_local || c->inflight || c->committing;
    if (pending)
        c->mtime = mtime_ns;
    pthread_mutex_unlock(&c->lock);
    return pending;
}

int cfile_fold_attrs(cfile *c, int has_mode, uint32_t mode, int has_atime, int64_t atime,
                     int has_mtime, int64_t mtime)
{
    pthread_mutex_lock(&c->lock);
    /* Only data not yet in a commit being sent guarantees a next commit;
     * so does a file this client just created to write (the flush at its
     * close commits what was folded, see cfile_flush). */
    int pending = c->dirty || c->has_local || (c->fresh && !c->committing);
    if (pending) {
        if (has_mode) {
            c->mode = mode & 07777;
            c->has_mode = 1;
        }
        if (has_atime) {
            c->atime = atime;
            c->has_atime = 1;
        }
        if (has_mtime)
            c->mtime = mtime;
    }
    pthread_mutex_unlock(&c->lock);
    return pending;
}

void cfile_lazy_atime(cfile *c, int64_t atime)
{
    pthread_mutex_lock(&c->lock);
    c->lazy_atime = atime;
    c->has_lazy_atime = 1;
    pthread_mutex_unlock(&c->lock);
}

int cfile_lazy_atime_get(cfile *c, int64_t *atime, fs_attr *base)
{
    pthread_mutex_lock(&c->lock);
    int have = c->has_lazy_atime && c->have_base;
    if (have) {
        *atime = c->lazy_atime;
        *base = c->base;
    }
    pthread_mutex_unlock(&c->lock);
    return have;
}

void cfile_lazy_atime_done(cfile *c, int64_t atime, const vv *old, const fs_attr *a)
{
    pthread_mutex_lock(&c->lock);
    if (c->has_lazy_atime && c->lazy_atime == atime)
        c->has_lazy_atime = 0;
    pthread_mutex_unlock(&c->lock);
    if (old && a)
        cfile_attr_changed(c, old, a);
}

int cfile_noxattr(cfile *c)
{
    pthread_mutex_lock(&c->lock);
    int v = c->have_base && c->noxattr;
    pthread_mutex_unlock(&c->lock);
    return v;
}

void cfile_set_fresh(cfile *c)
{
    pthread_mutex_lock(&c->lock);
    c->fresh = 1;
    pthread_mutex_unlock(&c->lock);
}

void cfile_set_noxattr(cfile *c, int v)
{
    pthread_mutex_lock(&c->lock);
    c->noxattr = v;
    pthread_mutex_unlock(&c->lock);
}

void cfile_vv(cfile *c, vv *out)
{
    pthread_mutex_lock(&c->lock);
    *out = c->base.vv;
    pthread_mutex_unlock(&c->lock);
}

void cfs_get_stats(cfs *f, cfs_stats *out)
{
    pthread_mutex_lock(&f->st_lock);
    *out = f->st;
    pthread_mutex_unlock(&f->st_lock);
    unsigned peak;
    slots_counts(&f->merges, &out->merge_waits, &peak);
    out->merge_peak = peak;
    pthread_mutex_lock(&f->lock);
    out->files = HASH_COUNT(f->table);
    pthread_mutex_unlock(&f->lock);
}
