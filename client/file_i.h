/*
 * file_i.h — private layouts and internal functions of the file striping
 * module (file.h is the contract). Shared by file.c (lifetime, base map,
 * buffers, read, write), commit.c (seal, upload, CAS commit, rebase,
 * truncate) and fileops.c (copy_file_range, SEEK_DATA/HOLE, digest).
 *
 * Locks: see file.c. Every cf_* function that takes a cfile expects its
 * lock held unless said otherwise; those that may drop it say so.
 */
#ifndef CAIRN_FILE_I_H
#define CAIRN_FILE_I_H

#include <pthread.h>
#include <uthash.h>

#include "cache/pagestore.h"
#include "client/file.h"
#include "common/slots.h"
#include "common/util.h"

enum dstate { D_DIRTY, D_UPLOADING, D_PENDING };
enum { BASE_HOLE, BASE_CHUNK, BASE_INLINE };

#define RANGES_MAX 1024
#define BUF_MIN (64u << 10)
/* Page mode: a DIRTY chunk that has committed content and was not read in
 * whole keeps what is written to it as separate pages, so that small
 * writes scattered over a large file hold memory in proportion to the
 * bytes written, not a whole chunk buffer each (which made every write
 * past the memory budget seal and upload another whole chunk). It turns
 * into one buffer (cf_densify) when sealed, read where it was not written,
 * rebased, or once it is fragmented past PAGED_RANGES_MAX ranges. */
#define CF_PAGE PAGESTORE_PAGE
#define PAGED_RANGES_MAX 256

typedef struct range {
    uint32_t off, end;
} range;

typedef struct dchunk {
    uint64_t index;
    uint64_t gen;            /* incarnation, so late callbacks can tell */
    enum dstate state;
    cbuf *buf;               /* DIRTY, UPLOADING */
    uint8_t **pages;         /* DIRTY in page mode (then buf is NULL):
                              * chunk_size / CF_PAGE slots, NULL = unwritten */
    uint32_t npages;         /* pages allocated */
    uint64_t budget;         /* memory budget held for buf or pages */
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
    int64_t base_ms;         /* monotonic time metad last told base */
    uint64_t base_epoch;     /* cfs ns_epoch then */
    fs_slot *slots;          /* committed map, sorted */
    size_t nslots, slots_cap;
    uint8_t *inl;            /* committed inline data */
    size_t inl_len;
    int is_inline;
    int inline_refused;      /* the last inline commit met metad's budget (-ENOSPC) */

    dchunk *dirty;           /* by index */
    uint64_t next_gen;
    uint64_t rebase_pass;
    unsigned inflight;       /* uploads running */
    unsigned npending;
    uint64_t size;           /* logical size including unflushed writes */
    uint64_t wend;           /* highest byte written since the last commit */
    int64_t mtime;           /* of the last local write */
    int has_local;           /* size/mtime differ from base */
    int fresh;               /* created empty here for writing; no flush since */
    /* A chmod / access time folded into the next commit (cfile_fold_attrs). */
    int has_mode, has_atime;
    uint32_t mode;
    int64_t atime;
    /* An access time being written behind (cfile_lazy_atime). */
    int has_lazy_atime;
    int64_t lazy_atime;
    int committing;
    int err;                 /* sticky background error */
    vv seen_vv;              /* last VV this client produced or revalidated */
    int stale;               /* metad has a newer VV than the base */
    int noxattr;             /* known to have no xattrs at the base VV */
};

struct cfs {
    cfs_config cfg;
    pthread_mutex_t lock;
    cfile *table;
    cfile *lru_head, *lru_tail;  /* unreferenced cfiles, oldest at head */
    size_t lru_len;
    pagestore *pages;        /* memory of chunks kept as pages */
    slotset merges;          /* cfg.merge_slots (cf_merge_slot_take) */
    pthread_mutex_t st_lock;
    cfs_stats st;
    uint64_t ns_epoch;       /* __atomic; bumped by cfs_ns_changed */
    int64_t inline_off_until; /* __atomic; mono ms: metad's inline budget was used up */
};

/* Record that metad just told c->base (c->lock held). */
static inline void cf_base_fresh(cfile *c)
{
    c->base_ms = now_mono_ms();
    c->base_epoch = __atomic_load_n(&c->fs->ns_epoch, __ATOMIC_ACQUIRE);
}

static inline uint64_t cf_chunk_size(const cfile *c) { return c->fs->cfg.fs.chunk_size; }

dchunk *cf_dchunk_find(cfile *c, uint64_t index);
dchunk *cf_dchunk_new(cfile *c, uint64_t index);
fs_slot *cf_slot_find(const cfile *c, uint64_t index);
int cf_base_of(const cfile *c, uint64_t index, uint8_t id[CHUNK_ID_LEN], uint32_t *len);
void cf_base_set(cfile *c, const mc_inode *rec);
void cf_begin_commit(cfile *c);
int cf_commit_locked(cfile *c, int full);
int cf_covers(const dchunk *d, uint32_t off, uint32_t end);
int cf_densify(cfile *c, dchunk *d);
/* Take n bytes of the memory budget for this file's slot busy_index: 0 when
 * granted at once; 1 when it had to wait, sealing this file's other chunks
 * meanwhile, with c->lock dropped (the caller re-validates what it held).
 * The n bytes are granted either way. */
int cf_budget_acquire(cfile *c, uint64_t busy_index, uint64_t n);
void cf_dchunk_free(cfile *c, dchunk *d);
void cf_end_commit(cfile *c);
int cf_ensure_cap(cfile *c, dchunk **dp, uint64_t index, uint32_t want);
/* Hold one of cfg.merge_slots while a chunk's old bytes are held for a
 * merge (take without c->lock: it may wait; give with c->lock or not). */
static inline void cf_merge_slot_take(cfs *f) { slots_take(&f->merges); }
static inline void cf_merge_slot_give(cfs *f) { slots_give(&f->merges); }
int cf_fetch_content(cfile *c, int kind, const uint8_t *id, const uint8_t *inl, uint32_t len, cbuf **out);
void cf_fill_gaps(const dchunk *d, uint8_t *dst, uint32_t len, const uint8_t *src, uint32_t srclen);
int cf_merge_base(cfile *c, uint64_t index);
void cf_range_add(dchunk *d, uint32_t off, uint32_t end);
void cf_ref(cfile *c);
void cf_release_buf(cfile *c, dchunk *d);
void cf_relieve(cfile *c, uint64_t busy_index);
int cf_rematerialize(cfile *c, uint64_t index);
int cf_seal(cfile *c, dchunk *d);
int cf_seal_all(cfile *c);
void cf_slot_set(cfile *c, const fs_slot *s);
void cf_stat_inc(cfs *f, uint64_t *field);
void cf_wait_uploads(cfile *c);

#endif
