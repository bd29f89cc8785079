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
#include "client/file.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uthash.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

enum dstate { D_DIRTY, D_UPLOADING, D_PENDING };
enum { BASE_HOLE, BASE_CHUNK, BASE_INLINE };

#define RANGES_MAX 1024
#define BUF_MIN (64u << 10)

typedef struct range {
    uint32_t off, end;
} range;

typedef struct dchunk {
    uint64_t index;
    uint64_t gen;            /* incarnation, so late callbacks can tell */
    enum dstate state;
    cbuf *buf;               /* DIRTY, UPLOADING */
    uint64_t budget;         /* memory budget held for buf */
    uint32_t len;            /* bytes of the slot in use */
    range *r;                /* written since the last commit, sorted, disjoint */
    unsigned nr, rcap;
    int merged;              /* buf holds base bytes outside r */
    uint8_t id[CHUNK_ID_LEN];/* PENDING: uploaded chunk */
    int hole;                /* PENDING: all zeros, not stored */
    int committing;          /* in a commit request right now */
    uint64_t rebased;        /* rebase pass that already handled it */
    UT_hash_handle hh;
} dchunk;

struct cfile {
    uint64_t ino;
    int refs;                /* under cfs->lock */
    cfs *fs;
    UT_hash_handle hh;       /* cfs table */
    cfile *lru_prev, *lru_next; /* unreferenced list, under cfs->lock */

    pthread_mutex_t lock;
    pthread_cond_t cv;       /* uploads finished, commit finished */
    int have_base;
    fs_attr base;            /* committed attributes and VV */
    fs_slot *slots;          /* committed map, sorted */
    size_t nslots, slots_cap;
    uint8_t *inl;            /* committed inline data */
    size_t inl_len;
    int is_inline;

    dchunk *dirty;           /* by index */
    uint64_t next_gen;
    uint64_t rebase_pass;
    unsigned inflight;       /* uploads running */
    unsigned npending;
    uint64_t size;           /* logical size including unflushed writes */
    uint64_t wend;           /* highest byte written since the last commit */
    int64_t mtime;           /* of the last local write */
    int has_local;           /* size/mtime differ from base */
    int committing;
    int err;                 /* sticky background error */
    vv seen_vv;              /* last VV this client produced or revalidated */
    int stale;               /* metad has a newer VV than the base */
};

struct cfs {
    cfs_config cfg;
    pthread_mutex_t lock;
    cfile *table;
    cfile *lru_head, *lru_tail;  /* unreferenced cfiles, oldest at head */
    size_t lru_len;
    pthread_mutex_t st_lock;
    cfs_stats st;
};

static uint64_t CS(const cfile *c) { return c->fs->cfg.fs.chunk_size; }

static void stat_inc(cfs *f, uint64_t *field)
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
    pthread_mutex_init(&f->lock, NULL);
    pthread_mutex_init(&f->st_lock, NULL);
    return f;
}

static void dchunk_free(cfile *c, dchunk *d)
{
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
        dchunk_free(c, d);
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
    pthread_mutex_destroy(&f->lock);
    pthread_mutex_destroy(&f->st_lock);
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

static void cfile_ref(cfile *c)
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

static void base_set(cfile *c, const mc_inode *rec)
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
    c->seen_vv = rec->a.vv;
    if (!c->dirty) {
        c->size = rec->a.size;
        c->has_local = 0;
    } else if (rec->a.size > c->size) {
        c->size = rec->a.size;
    }
}

static fs_slot *slot_find(const cfile *c, uint64_t index)
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
static void slot_set(cfile *c, const fs_slot *s)
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
static int base_of(const cfile *c, uint64_t index, uint8_t id[CHUNK_ID_LEN], uint32_t *len)
{
    if (c->is_inline) {
        *len = index == 0 ? (uint32_t)c->inl_len : 0;
        return index == 0 && c->inl_len ? BASE_INLINE : BASE_HOLE;
    }
    const fs_slot *s = slot_find(c, index);
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
        base_set(c, rec);
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
    if (rc == CAIRN_ENOTMODIFIED)
        return 0;
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&c->lock);
    if (!c->dirty && !c->committing && !c->inflight) {
        *changed = had && !vv_equal(&cur, &rec.a.vv);
        base_set(c, &rec);
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

static void range_add(dchunk *d, uint32_t off, uint32_t end)
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
            range_add(d, off, end);
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

static int covers(const dchunk *d, uint32_t off, uint32_t end)
{
    for (unsigned i = 0; i < d->nr; i++)
        if (d->r[i].off <= off && d->r[i].end >= end)
            return 1;
    return off >= end;
}

/* Copy src bytes into dst everywhere outside d's ranges within [0, len);
 * src holds srclen bytes, positions past it are zeros. */
static void fill_gaps(const dchunk *d, uint8_t *dst, uint32_t len, const uint8_t *src,
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

static dchunk *dchunk_find(cfile *c, uint64_t index)
{
    dchunk *d;
    HASH_FIND(hh, c->dirty, &index, sizeof(index), d);
    return d;
}

static void release_buf(cfile *c, dchunk *d)
{
    if (d->buf) {
        cbuf_unref(d->buf);
        d->buf = NULL;
    }
    if (d->budget) {
        bufpool_release(c->fs->cfg.pool, d->budget);
        d->budget = 0;
    }
}

static int seal(cfile *c, dchunk *d);

/* Seal one of this file's other DIRTY chunks whose buffer already spans
 * its slot, so sealing needs no more budget and its upload returns some. */
static void relieve(cfile *c, uint64_t busy_index)
{
    dchunk *o, *tmp;
    HASH_ITER(hh, c->dirty, o, tmp) {
        if (o->index != busy_index && o->state == D_DIRTY && !o->committing && o->buf &&
            o->buf->cap >= MAX(o->len, 1u)) {
            seal(c, o);
            return;
        }
    }
}

/*
 * Make d->buf hold at least want bytes. May drop c->lock while waiting for
 * the memory budget; returns 1 when it did (the caller re-validates d),
 * 0 when the buffer is ready, negative on error.
 */
static int ensure_cap(cfile *c, dchunk **dp, uint64_t index, uint32_t want)
{
    dchunk *d = *dp;
    if (d->buf && d->buf->cap >= want)
        return 0;
    uint64_t cs = CS(c);
    size_t cap = d->buf ? d->buf->cap : 0;
    size_t ncap = MAX((size_t)want, MIN((size_t)cs, MAX((size_t)BUF_MIN, cap * 2)));
    uint64_t extra = ncap - cap;
    bufpool *pool = c->fs->cfg.pool;
    if (!bufpool_try_acquire(pool, extra)) {
        /* Under pressure: seal this file's other partial chunks so their
         * uploads return budget, then wait for it. */
        relieve(c, index);
        pthread_mutex_unlock(&c->lock);
        while (!bufpool_acquire_timeout(pool, extra, 100)) {
            pthread_mutex_lock(&c->lock);
            relieve(c, index);
            pthread_mutex_unlock(&c->lock);
        }
        pthread_mutex_lock(&c->lock);
        d = dchunk_find(c, index);
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

static dchunk *dchunk_new(cfile *c, uint64_t index)
{
    dchunk *d = xcalloc(1, sizeof(*d));
    d->index = index;
    d->gen = ++c->next_gen;
    d->state = D_DIRTY;
    uint8_t id[CHUNK_ID_LEN];
    uint32_t blen;
    base_of(c, index, id, &blen);
    d->len = blen;
    HASH_ADD(hh, c->dirty, index, sizeof(d->index), d);
    return d;
}

/* Fetch the content a slot had in the base: a new cbuf (len bytes) or
 * NULL for a hole. Called without c->lock. */
static int fetch_content(cfile *c, int kind, const uint8_t *id, const uint8_t *inl, uint32_t len,
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
static int merge_base(cfile *c, uint64_t index)
{
    dchunk *d = dchunk_find(c, index);
    if (!d || d->state != D_DIRTY || d->merged)
        return 0;
    uint8_t id[CHUNK_ID_LEN];
    uint32_t blen;
    int kind = base_of(c, index, id, &blen);
    uint8_t *inl = NULL;
    if (kind == BASE_INLINE) {
        inl = xmalloc(blen);
        memcpy(inl, c->inl, blen);
    }
    uint64_t gen = d->gen;
    if (d->len < blen)
        d->len = blen;
    int rc = ensure_cap(c, &d, index, MAX(d->len, 1u));
    if (rc < 0) {
        free(inl);
        return rc;
    }
    if (rc == 1) {
        free(inl);
        return merge_base(c, index);
    }
    cbuf *b = NULL;
    if (kind == BASE_CHUNK) {
        pthread_mutex_unlock(&c->lock);
        rc = fetch_content(c, kind, id, inl, blen, &b);
        pthread_mutex_lock(&c->lock);
        if (rc < 0) {
            free(inl);
            return rc;
        }
        d = dchunk_find(c, index);
        if (!d || d->gen != gen || d->state != D_DIRTY || d->merged) {
            if (b)
                cbuf_unref(b);
            free(inl);
            return 0;
        }
        if (d->buf->cap < d->len) {
            cbuf_unref(b);
            free(inl);
            return merge_base(c, index);
        }
    }
    const uint8_t *src = kind == BASE_CHUNK ? b->data : inl;
    fill_gaps(d, d->buf->data, d->len, src, kind == BASE_HOLE ? 0 : blen);
    d->merged = 1;
    if (b)
        cbuf_unref(b);
    free(inl);
    return 0;
}

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
    dchunk *d = dchunk_find(c, u->index);
    if (d && d->gen == u->gen && d->state == D_UPLOADING) {
        if (err < 0) {
            /* Keep the bytes: the next flush uploads them again. */
            d->state = D_DIRTY;
            c->err = err;
        } else {
            memcpy(d->id, id, CHUNK_ID_LEN);
            d->state = D_PENDING;
            d->hole = 0;
            release_buf(c, d);
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
static int seal(cfile *c, dchunk *d)
{
    uint64_t index = d->index;
    if (!d->merged && !covers(d, 0, d->len)) {
        int rc = merge_base(c, index);
        if (rc < 0)
            return rc;
        d = dchunk_find(c, index);
        if (!d || d->state != D_DIRTY || d->committing)
            return 0;
        if (!d->merged && !covers(d, 0, d->len))
            return seal(c, d);
    }
    if (d->len == 0 || is_all_zero(d->buf->data, d->len)) {
        d->state = D_PENDING;
        d->hole = 1;
        release_buf(c, d);
        c->npending++;
        return 0;
    }
    d->state = D_UPLOADING;
    d->buf->len = d->len;
    c->inflight++;
    cfile_ref(c);
    upload_ctx *u = xmalloc(sizeof(*u));
    u->c = c;
    u->index = index;
    u->gen = d->gen;
    cio_put_async(c->fs->cfg.io, NULL, d->buf, upload_done, u);
    return 0;
}

/* Seal every DIRTY chunk (restarting when the table changed under us). */
static int seal_all(cfile *c)
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
        int rc = seal(c, todo);
        if (rc < 0)
            return rc;
    }
}

static void wait_uploads(cfile *c)
{
    while (c->inflight)
        pthread_cond_wait(&c->cv, &c->lock);
}

/* ---- commit ---- */

/* Turn a PENDING chunk back into a DIRTY buffer with its content (for a
 * write into it, or a rebase). c->lock held; may drop it. Returns 1 when
 * the caller must re-validate. */
static int rematerialize(cfile *c, uint64_t index)
{
    dchunk *d = dchunk_find(c, index);
    if (!d || d->state != D_PENDING || d->committing)
        return 1;
    uint64_t gen = d->gen;
    int hole = d->hole;
    uint8_t id[CHUNK_ID_LEN];
    memcpy(id, d->id, CHUNK_ID_LEN);
    cbuf *b = NULL;
    if (!hole) {
        pthread_mutex_unlock(&c->lock);
        int rc = cio_get(c->fs->cfg.io, id, &b);
        pthread_mutex_lock(&c->lock);
        if (rc < 0)
            return rc;
        d = dchunk_find(c, index);
        if (!d || d->gen != gen || d->state != D_PENDING || d->committing) {
            cbuf_unref(b);
            return 1;
        }
    }
    /* Take the chunk's bytes as a fresh DIRTY buffer. */
    d->state = D_DIRTY;
    c->npending--;
    d->merged = 0;
    int rc = ensure_cap(c, &d, index, MAX(d->len, 1u));
    if (rc != 0) {
        if (b)
            cbuf_unref(b);
        if (rc == 1)
            return 1;
        return rc;
    }
    if (b)
        memcpy(d->buf->data, b->data, MIN((size_t)d->len, b->len));
    else
        memset(d->buf->data, 0, d->len);
    d->merged = 1;
    if (b)
        cbuf_unref(b);
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
        int ok = base_of(c, d->index, oid, &olen);
        int nk = base_of(&nb, d->index, nid, &nlen);
        int same = ok == nk && olen == nlen &&
                   (ok != BASE_CHUNK || memcmp(oid, nid, CHUNK_ID_LEN) == 0) &&
                   (ok != BASE_INLINE || memcmp(c->inl, cur->inl, olen) == 0);
        if (same || (covers(d, 0, d->len) && d->len >= nlen))
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
        if (d->buf)
            ours = cbuf_ref(d->buf);
        pthread_mutex_unlock(&c->lock);
        if (!ours && !pending_hole)
            rc = cio_get(c->fs->cfg.io, myid, &ours);
        if (rc == 0)
            rc = fetch_content(c, nk, nid, cur->inl, nlen, &theirs);
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
        pthread_mutex_lock(&c->lock);
        if (rc < 0) {
            if (nbuf)
                cbuf_unref(nbuf);
            return rc;
        }
        d = dchunk_find(c, index);
        if (!d) {
            cbuf_unref(nbuf);
            return CAIRN_ECONFLICT;
        }
        d->len = newlen;
        if (d->state == D_DIRTY) {
            /* Inline commit: the buffer itself is what gets committed. */
            int r2 = ensure_cap(c, &d, index, MAX(newlen, 1u));
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
    base_set(c, cur);
    return 0;
}

/* Is everything still to commit a small file that fits inline? */
static int inline_candidate(cfile *c)
{
    if (c->size > c->fs->cfg.fs.inline_max)
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
static int commit_locked(cfile *c, int full)
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
            d = dchunk_find(c, 0);
            if (d && d->state == D_DIRTY && !d->merged && !covers(d, 0, d->len)) {
                free(slots);
                int rc = merge_base(c, 0);
                if (rc < 0)
                    return rc;
                continue;
            }
            if (d && d->state == D_PENDING) {
                free(slots);
                int rc = rematerialize(c, 0);
                if (rc < 0)
                    return rc;
                continue;
            }
            size = MAX(size, c->size);
            inl_len = (size_t)size;
            inl = xcalloc(1, inl_len ? inl_len : 1);
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
                    size = MAX(size, d->index * CS(c) + d->len);
            }
            if (full)
                size = MAX(size, c->size);
            if (n == 0 && size == c->base.size && !c->has_local) {
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
            stat_inc(f, &f->st.commits);
            if (as_inline) {
                stat_inc(f, &f->st.inline_commits);
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
                    slot_set(c, &slots[i]);
            }
            /* Drop the committed dchunks, unless rewritten meanwhile. */
            HASH_ITER(hh, c->dirty, d, tmp) {
                if (!d->committing)
                    continue;
                if (d->state == D_PENDING || (as_inline && d->index == 0 && d->state == D_DIRTY)) {
                    if (d->state == D_PENDING)
                        c->npending--;
                    HASH_DEL(c->dirty, d);
                    dchunk_free(c, d);
                } else {
                    d->committing = 0;
                }
            }
            fs_attr a = out.a;
            c->base = a;
            c->seen_vv = a.vv;
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
            if (rc == CAIRN_ECONFLICT) {
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
        stat_inc(f, &f->st.conflicts);
        int rb = rebase(c, &out);
        mc_inode_clear(&out);
        HASH_ITER(hh, c->dirty, d, tmp) { d->committing = 0; }
        if (rb < 0 && rb != CAIRN_ECONFLICT)
            return rb;
    }
}

static void begin_commit(cfile *c)
{
    while (c->committing)
        pthread_cond_wait(&c->cv, &c->lock);
    c->committing = 1;
}

static void end_commit(cfile *c)
{
    c->committing = 0;
    pthread_cond_broadcast(&c->cv);
}

int cfile_flush(cfile *c)
{
    pthread_mutex_lock(&c->lock);
    if (!c->dirty && !c->has_local && !c->err && !c->inflight) {
        pthread_mutex_unlock(&c->lock);
        return 0;
    }
    begin_commit(c);
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
            base_set(c, &rec);
            c->size = MAX(sz, c->size);
            mc_inode_clear(&rec);
        }
    }
    wait_uploads(c);
    if (rc == 0 && !inline_candidate(c)) {
        if (c->is_inline && c->inl_len && !dchunk_find(c, 0)) {
            /* Leaving inline: slot 0 becomes a chunk holding the old bytes. */
            dchunk *d0 = dchunk_new(c, 0);
            (void)d0;
        }
        rc = seal_all(c);
        wait_uploads(c);
        /* Writes that raced with the uploads are sealed too; a failed
         * upload is reported now, not retried within this flush. */
        if (rc == 0 && !c->err)
            rc = seal_all(c);
        wait_uploads(c);
    }
    if (rc == 0 && c->err) {
        rc = c->err;
        c->err = 0;
    }
    if (rc == 0)
        rc = commit_locked(c, 1);
    end_commit(c);
    pthread_mutex_unlock(&c->lock);
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

/* ---- write ---- */

long cfile_write(cfile *c, uint64_t off, const uint8_t *src, size_t len)
{
    uint64_t cs = CS(c);
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
        dchunk *d = dchunk_find(c, index);
        if (d && (d->state == D_UPLOADING || d->committing)) {
            pthread_cond_wait(&c->cv, &c->lock);
            continue;
        }
        if (d && d->state == D_PENDING) {
            rc = rematerialize(c, index);
            if (rc < 0)
                break;
            rc = 0;
            continue;
        }
        if (!d)
            d = dchunk_new(c, index);
        uint32_t want = MAX(d->len, o + n);
        int r = ensure_cap(c, &d, index, want);
        if (r < 0) {
            rc = r;
            break;
        }
        if (r == 1)
            continue;
        if (d->merged && o > d->len)
            memset(d->buf->data + d->len, 0, o - d->len);
        memcpy(d->buf->data + o, src + done, n);
        range_add(d, o, o + n);
        if (o + n > d->len)
            d->len = o + n;
        done += n;
        if (pos + n > c->size)
            c->size = pos + n;
        if (pos + n > c->wend)
            c->wend = pos + n;
        c->has_local = 1;
        if (d->len == cs && covers(d, 0, (uint32_t)cs)) {
            r = seal(c, d);
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
        begin_commit(c);
        int cr = commit_locked(c, 0);
        end_commit(c);
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
    uint64_t cs = CS(c);
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
        dchunk *d = dchunk_find(c, index);
        if (d && (d->state == D_DIRTY || d->state == D_UPLOADING)) {
            if (d->state == D_DIRTY && !d->merged && !covers(d, o, MIN(o + n, d->len))) {
                rc = merge_base(c, index);
                if (rc < 0)
                    break;
                continue;
            }
            uint32_t have = o < d->len ? MIN(n, d->len - o) : 0;
            if (have)
                memcpy(dst + done, d->buf->data + o, have);
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
            kind = base_of(c, index, id, &slen);
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
                if (dchunk_find(c, i))
                    continue;
                uint32_t sl;
                if (base_of(c, i, pf[npf], &sl) == BASE_CHUNK)
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

/* ---- truncate, attributes ---- */

int cfile_truncate(cfile *c, uint64_t size, fs_attr *out)
{
    int rc = cfile_flush(c);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&c->lock);
    begin_commit(c);
    pthread_mutex_unlock(&c->lock);
    mc_setattr_in in = {.valid = SA_SIZE, .size = size};
    mc_inode rec;
    rc = mc_setattr(c->fs->cfg.meta, c->ino, &in, &rec);
    pthread_mutex_lock(&c->lock);
    if (rc == 0) {
        *out = rec.a;
        if (c->have_base) {
            /* Trim the cached map exactly as metad did. */
            uint64_t cs = CS(c);
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
        }
        /* Writes that raced with the truncate keep their own size. */
        if (!c->dirty) {
            c->size = size;
            c->wend = 0;
            c->has_local = 0;
        }
        mc_inode_clear(&rec);
    }
    end_commit(c);
    pthread_mutex_unlock(&c->lock);
    return rc;
}

int cfile_overlay(cfile *c, fs_attr *a)
{
    pthread_mutex_lock(&c->lock);
    int changed = 0;
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
    pthread_mutex_unlock(&c->lock);
    return changed;
}

void cfile_vv(cfile *c, vv *out)
{
    pthread_mutex_lock(&c->lock);
    *out = c->base.vv;
    pthread_mutex_unlock(&c->lock);
}

int cfile_sha256(cfile *c, uint8_t out[CHUNK_ID_LEN])
{
    int rc = cfile_flush(c);
    if (rc < 0)
        return rc;
    int changed;
    rc = cfile_open(c, &changed, 0);
    if (rc < 0)
        return rc;
    sha256_ctx *h = sha256_new();
    uint64_t cs = CS(c);
    size_t step = (size_t)MIN(cs, (uint64_t)(1u << 20));
    uint8_t *tmp = xmalloc(step);
    uint64_t off = 0;
    for (;;) {
        long n = cfile_read(c, off, step, tmp, NULL);
        if (n < 0) {
            rc = (int)n;
            break;
        }
        if (n == 0)
            break;
        sha256_update(h, tmp, (size_t)n);
        off += (uint64_t)n;
    }
    free(tmp);
    sha256_final_free(h, out);
    return rc;
}

void cfs_get_stats(cfs *f, cfs_stats *out)
{
    pthread_mutex_lock(&f->st_lock);
    *out = f->st;
    pthread_mutex_unlock(&f->st_lock);
    pthread_mutex_lock(&f->lock);
    out->files = HASH_COUNT(f->table);
    pthread_mutex_unlock(&f->lock);
}
