/*
 * dcache.c — recent directory listings; see dcache.h.
 *
 * mu guards everything. A directory record exists for every directory
 * recently looked up in (to count lookups) or listed; records without a
 * fresh listing are pruned when there are too many.
 */
#include "client/dcache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uthash.h>

#include "common/util.h"
#include "common/vv.h"

#define DIRS_MAX 4096u      /* directory records kept at most */
#define RECENT 64u          /* inodes changed here, remembered for fills in flight */
#define WANT_AFTER 2u       /* lookups in a directory within a ttl before listing it */

typedef struct dent {
    UT_hash_handle hh;      /* in its directory, by name */
    UT_hash_handle hi;      /* in by_ino, when it is the one entry there for its inode */
    UT_hash_handle hd;      /* in its directory, by inode (hard links: several) */
    int in_ino;
    fs_attr a;
    uint64_t gen;           /* attr_gen its attributes are from */
    char name[];
} dent;

typedef struct dirrec {
    uint64_t ino;
    UT_hash_handle hh;
    dent *ents;
    dent *ents_ino;         /* the same entries by inode */
    size_t nents;
    int listed;             /* ents is the whole directory */
    int64_t listed_at;      /* when the fetch behind it started */
    int64_t window_start;   /* first lookup counted in the current window */
    unsigned lookups;
    int64_t big_until;      /* too big to list until then */
    uint64_t token;         /* fetch in progress (0: none, or overtaken) */
    uint64_t token_gen;     /* attr_gen when that fetch started */
    uint64_t token_seq;     /* change_seq when that fetch started */
    int64_t token_at;
    fs_attr self;           /* the directory's own attributes ... */
    int64_t self_at;        /* ... as metad told them then */
    int has_self;
    vv seen;                /* newest VV of the directory stored as self */
    int have_seen;
    int was_listed;         /* a listing of it served before: list again at once */
    uint64_t parent;        /* its parent, when this client changed it (0: unknown) */
    vv list_vv;             /* the directory's VV its listing is exact for (n 0: unknown) */
} dirrec;

#define GEN_STALE UINT64_MAX    /* an entry whose attributes are not known */

struct dcache {
    pthread_mutex_t mu;
    int64_t ttl_ns;
    int64_t neg_ttl_ns;     /* absent names are answered for this long */
    size_t max_entries, nentries;
    uint64_t attr_gen;
    uint64_t next_token;
    dirrec *dirs;
    size_t ndirs;
    dent *by_ino;           /* listed entries by inode (one per inode) */
    /* Inodes this client changed, newest at change_seq % RECENT: a listing
     * fetched meanwhile may show them as they were before. */
    uint64_t change_seq;
    uint64_t recent[RECENT];
    dcache_stats st;
};

dcache *dcache_new(uint64_t ttl_ms, uint64_t neg_ttl_ms, size_t max_entries)
{
    dcache *d = xcalloc(1, sizeof(*d));
    pthread_mutex_init(&d->mu, NULL);
    d->ttl_ns = (int64_t)ttl_ms * 1000000LL;
    d->neg_ttl_ns = (int64_t)MIN(neg_ttl_ms, ttl_ms) * 1000000LL;
    d->max_entries = max_entries;
    return d;
}

static void unindex(dcache *d, dirrec *r, dent *e)
{
    HASH_DELETE(hd, r->ents_ino, e);
    if (e->in_ino) {
        HASH_DELETE(hi, d->by_ino, e);
        e->in_ino = 0;
    }
}

/* Index e by inode in its directory, and in by_ino unless another entry
 * has that inode (a hard link, or a file listed in two directories at
 * different times): such entries are not in by_ino and never answer
 * positively. */
static void index_ent(dcache *d, dirrec *r, dent *e)
{
    dent *x;
    HASH_ADD(hd, r->ents_ino, a.ino, sizeof(uint64_t), e);
    HASH_FIND(hi, d->by_ino, &e->a.ino, sizeof(uint64_t), x);
    if (!x) {
        HASH_ADD(hi, d->by_ino, a.ino, sizeof(uint64_t), e);
        e->in_ino = 1;
    }
}

static void clear_listing(dcache *d, dirrec *r)
{
    dent *e, *tmp;
    HASH_ITER(hh, r->ents, e, tmp) {
        HASH_DEL(r->ents, e);
        unindex(d, r, e);
        free(e);
    }
    d->nentries -= r->nents;
    r->nents = 0;
    r->listed = 0;
}

static void del_rec(dcache *d, dirrec *r)
{
    clear_listing(d, r);
    HASH_DEL(d->dirs, r);
    d->ndirs--;
    free(r);
}

void dcache_free(dcache *d)
{
    if (!d)
        return;
    dirrec *r, *tmp;
    HASH_ITER(hh, d->dirs, r, tmp) { del_rec(d, r); }
    pthread_mutex_destroy(&d->mu);
    free(d);
}

static int enabled(const dcache *d) { return d->ttl_ns > 0 && d->max_entries > 0; }

static int fresh(const dcache *d, const dirrec *r, int64_t now)
{
    return r->listed && now - r->listed_at < d->ttl_ns;
}

/* r's entries are now its whole directory as of at, exact for the
 * directory's VV v (NULL: not known). */
static void set_listed(dirrec *r, int64_t at, const vv *v)
{
    r->listed = 1;
    r->was_listed = 1;
    r->listed_at = at;
    if (v)
        r->list_vv = *v;
    else
        vv_init(&r->list_vv);
}

static dirrec *find_rec(dcache *d, uint64_t dir)
{
    dirrec *r;
    HASH_FIND(hh, d->dirs, &dir, sizeof(dir), r);
    return r;
}

/* Drop what has expired; then, while more than `need` must fit, the oldest
 * listings. */
static void make_room(dcache *d, size_t need, int64_t now)
{
    dirrec *r, *tmp;
    HASH_ITER(hh, d->dirs, r, tmp) {
        if (r->listed && !fresh(d, r, now))
            clear_listing(d, r);
        if (r->has_self && now - r->self_at >= d->ttl_ns)
            r->has_self = 0;
        if (!r->listed && r->token == 0 && now - r->window_start >= d->ttl_ns &&
            now >= r->big_until && !r->has_self)
            del_rec(d, r);
    }
    while (d->nentries + need > d->max_entries) {
        dirrec *old = NULL;
        HASH_ITER(hh, d->dirs, r, tmp) {
            if (r->listed && (!old || r->listed_at < old->listed_at))
                old = r;
        }
        if (!old)
            break;
        clear_listing(d, old);
    }
}

/* Names another entry of the same inode may still show it under: a change
 * of its link count makes every listed attribute suspect. */
static void links_changed(dcache *d, const dent *old)
{
    if (old->a.nlink > 1)
        d->attr_gen++;
}

static void put_ent(dcache *d, dirrec *r, const char *name, const fs_attr *a, uint64_t gen)
{
    dent *e;
    HASH_FIND_STR(r->ents, name, e);
    if (e) {
        if (e->a.ino != a->ino) {
            links_changed(d, e);
            unindex(d, r, e);
            e->a = *a;
            index_ent(d, r, e);
        } else {
            e->a = *a;
        }
        e->gen = gen;
        return;
    }
    size_t len = strlen(name);
    e = xcalloc(1, sizeof(*e) + len + 1);
    memcpy(e->name, name, len + 1);
    e->a = *a;
    e->gen = gen;
    HASH_ADD_KEYPTR(hh, r->ents, e->name, len, e);
    index_ent(d, r, e);
    r->nents++;
    d->nentries++;
}

static void del_ent(dcache *d, dirrec *r, const char *name)
{
    dent *e;
    HASH_FIND_STR(r->ents, name, e);
    if (!e)
        return;
    links_changed(d, e);
    HASH_DEL(r->ents, e);
    unindex(d, r, e);
    free(e);
    r->nents--;
    d->nentries--;
}

/* An entry of inode ino in r's listing. */
static dent *ent_by_ino(dirrec *r, uint64_t ino)
{
    dent *e;
    HASH_FIND(hd, r->ents_ino, &ino, sizeof(ino), e);
    return e;
}

int dcache_lookup(dcache *d, uint64_t dir, const char *name, fs_attr *a)
{
    if (!enabled(d))
        return -1;
    int rc = -1;
    int64_t now = now_mono_ns();
    pthread_mutex_lock(&d->mu);
    dirrec *r = find_rec(d, dir);
    if (r && fresh(d, r, now)) {
        dent *e;
        HASH_FIND_STR(r->ents, name, e);
        if (!e) {
            if (now - r->listed_at < d->neg_ttl_ns) {
                rc = 0;
                d->st.negative_hits++;
            }
        } else if (e->gen == d->attr_gen && e->in_ino) {
            *a = e->a;
            rc = 1;
            d->st.hits++;
        }
    }
    pthread_mutex_unlock(&d->mu);
    return rc;
}

/* dir's record, made when there is room (NULL otherwise). */
static dirrec *get_rec(dcache *d, uint64_t dir, int64_t now)
{
    dirrec *r = find_rec(d, dir);
    if (!r) {
        if (d->ndirs >= DIRS_MAX)
            make_room(d, 0, now);
        if (d->ndirs < DIRS_MAX) {
            r = xcalloc(1, sizeof(*r));
            r->ino = dir;
            HASH_ADD(hh, d->dirs, ino, sizeof(r->ino), r);
            d->ndirs++;
        }
    }
    return r;
}

int dcache_want(dcache *d, uint64_t dir, uint64_t *token)
{
    if (!enabled(d))
        return 0;
    int want = 0;
    int64_t now = now_mono_ns();
    pthread_mutex_lock(&d->mu);
    dirrec *r = get_rec(d, dir, now);
    if (r && !fresh(d, r, now) && now >= r->big_until &&
        (r->token == 0 || now - r->token_at >= d->ttl_ns)) {
        if (r->lookups == 0 || now - r->window_start >= d->ttl_ns) {
            r->window_start = now;
            r->lookups = 0;
        }
        if (++r->lookups >= WANT_AFTER || r->was_listed) {
            r->lookups = 0;
            r->token = ++d->next_token;
            r->token_gen = d->attr_gen;
            r->token_seq = d->change_seq;
            r->token_at = now;
            *token = r->token;
            want = 1;
        }
    }
    pthread_mutex_unlock(&d->mu);
    return want;
}

void dcache_fill(dcache *d, uint64_t dir, uint64_t token, const mc_dirent *ents, size_t n,
                 int complete, const vv *dir_vv)
{
    if (!enabled(d))
        return;
    int64_t now = now_mono_ns();
    pthread_mutex_lock(&d->mu);
    dirrec *r = find_rec(d, dir);
    if (!r || r->token != token || token == 0)
        goto out;
    if (!complete || n > d->max_entries / 2) {
        r->token = 0;
        r->big_until = now + d->ttl_ns;
        goto out;
    }
    if (d->change_seq - r->token_seq > RECENT) {
        /* Too much changed here meanwhile to tell what it shows. */
        r->token = 0;
        goto out;
    }
    clear_listing(d, r);
    make_room(d, n, now);   /* r survives: its token is still set */
    r->token = 0;
    for (size_t i = 0; i < n; i++)
        put_ent(d, r, ents[i].name, &ents[i].a, r->token_gen);
    /* What this client changed while the listing was on its way. */
    for (uint64_t s = r->token_seq + 1; s <= d->change_seq; s++) {
        dent *e = ent_by_ino(r, d->recent[s % RECENT]);
        if (e)
            e->gen = GEN_STALE;
    }
    /* The names are exact for dir_vv (a change of a name here by this
     * client meanwhile would have dropped the fill). */
    set_listed(r, r->token_at, dir_vv);
    d->st.fills++;
out:
    pthread_mutex_unlock(&d->mu);
}

void dcache_set(dcache *d, uint64_t dir, uint64_t parent_of_dir, const char *name,
                const fs_attr *a)
{
    if (!enabled(d))
        return;
    int64_t now = now_mono_ns();
    pthread_mutex_lock(&d->mu);
    dirrec *r = parent_of_dir ? get_rec(d, dir, now) : find_rec(d, dir);
    if (r) {
        /* A listing being fetched may or may not show this change. */
        r->token = 0;
        r->has_self = 0;
        if (fresh(d, r, now)) {
            if (a && d->nentries >= d->max_entries)
                clear_listing(d, r);
            else if (a)
                put_ent(d, r, name, a, d->attr_gen);
            else
                del_ent(d, r, name);
        }
    }
    if (r && parent_of_dir)
        r->parent = parent_of_dir;
    /* dir's own entry in its parent's listing: its attributes changed. */
    dirrec *p = parent_of_dir ? find_rec(d, parent_of_dir) : NULL;
    if (p && p != r) {
        p->token = 0;
        dent *e = p->listed ? ent_by_ino(p, dir) : NULL;
        if (e)
            e->gen = GEN_STALE;
    }
    pthread_mutex_unlock(&d->mu);
}

void dcache_new_dir(dcache *d, const fs_attr *a)
{
    if (!enabled(d))
        return;
    int64_t now = now_mono_ns();
    pthread_mutex_lock(&d->mu);
    dirrec *r = get_rec(d, a->ino, now);
    if (r) {
        clear_listing(d, r);
        r->token = 0;
        set_listed(r, now, &a->vv);
    }
    pthread_mutex_unlock(&d->mu);
}

static void note_change(dcache *d, uint64_t ino)
{
    d->change_seq++;
    d->recent[d->change_seq % RECENT] = ino;
}

void dcache_attr_set(dcache *d, const fs_attr *a)
{
    pthread_mutex_lock(&d->mu);
    note_change(d, a->ino);
    dent *e;
    HASH_FIND(hi, d->by_ino, &a->ino, sizeof(uint64_t), e);
    if (a->nlink > 1 || (e && e->a.nlink > 1)) {
        d->attr_gen++;
    } else if (e) {
        /* Answers to concurrent changes can arrive out of order. */
        enum vv_order o = vv_compare(&a->vv, &e->a.vv);
        if (o == VV_EQUAL || o == VV_DOMINATES) {
            e->a = *a;
            e->gen = d->attr_gen;
        } else if (o == VV_CONCURRENT) {
            e->gen = GEN_STALE;
        }
    }
    pthread_mutex_unlock(&d->mu);
}

void dcache_attr_stale(dcache *d, uint64_t ino)
{
    pthread_mutex_lock(&d->mu);
    note_change(d, ino);
    dent *e;
    HASH_FIND(hi, d->by_ino, &ino, sizeof(uint64_t), e);
    if (e && e->a.nlink > 1)
        d->attr_gen++;
    else if (e)
        e->gen = GEN_STALE;
    pthread_mutex_unlock(&d->mu);
}

void dcache_attr_changed(dcache *d)
{
    pthread_mutex_lock(&d->mu);
    d->attr_gen++;
    pthread_mutex_unlock(&d->mu);
}

void dcache_drop(dcache *d, uint64_t dir)
{
    pthread_mutex_lock(&d->mu);
    dirrec *r = find_rec(d, dir);
    if (r) {
        r->token = 0;
        clear_listing(d, r);
    }
    pthread_mutex_unlock(&d->mu);
}

/*
 * What a's VV tells of r's listing (d->mu held): exact as of now when the
 * VV is the one the listing is exact for, or, for the answer to one change
 * this client made (own), one step past it (that change, which the
 * listing already shows, is the only one since). Any other VV breaks the
 * chain: the listing answers until its time is up, as one fetched then.
 */
static void confirm_listing(dcache *d, dirrec *r, const fs_attr *a, int own, int64_t now)
{
    if (!r->listed || r->list_vv.n == 0)
        return;
    if (fresh(d, r, now) &&
        (vv_equal(&r->list_vv, &a->vv) || (own && vv_is_step(&r->list_vv, &a->vv)))) {
        r->list_vv = a->vv;
        r->listed_at = now;
        d->st.confirms++;
    } else if (!vv_equal(&r->list_vv, &a->vv)) {
        vv_init(&r->list_vv);
    }
}

static void dir_attr(dcache *d, const fs_attr *a, int own)
{
    if (!enabled(d) || !S_ISDIR(a->mode))
        return;
    int64_t now = now_mono_ns();
    pthread_mutex_lock(&d->mu);
    dirrec *r = get_rec(d, a->ino, now);
    enum vv_order o = r && r->have_seen ? vv_compare(&a->vv, &r->seen) : VV_DOMINATES;
    if (r && (o == VV_DOMINATED || o == VV_CONCURRENT)) {
        /* An answer older than one already seen (answers to concurrent
         * requests can arrive out of order). */
        if (o == VV_CONCURRENT)
            r->has_self = 0;
        r = NULL;
    }
    if (r) {
        r->seen = a->vv;
        r->have_seen = 1;
        r->self = *a;
        r->self_at = now;
        r->has_self = 1;
        confirm_listing(d, r, a, own, now);
        /* ... and its entry in its parent's listing, as of now. */
        dirrec *p = r->parent ? find_rec(d, r->parent) : NULL;
        dent *e = p && p != r && p->listed ? ent_by_ino(p, a->ino) : NULL;
        if (e) {
            e->a = *a;
            e->gen = d->attr_gen;
        }
    }
    pthread_mutex_unlock(&d->mu);
}

void dcache_dir_attr(dcache *d, const fs_attr *a) { dir_attr(d, a, 0); }
void dcache_dir_attr_own(dcache *d, const fs_attr *a) { dir_attr(d, a, 1); }

int dcache_get_dir_attr(dcache *d, uint64_t ino, fs_attr *a, uint64_t *age_ms)
{
    if (!enabled(d))
        return 0;
    int hit = 0;
    int64_t now = now_mono_ns();
    pthread_mutex_lock(&d->mu);
    dirrec *r = find_rec(d, ino);
    if (r && r->has_self && now - r->self_at < d->ttl_ns) {
        *a = r->self;
        *age_ms = (uint64_t)((now - r->self_at) / 1000000);
        hit = 1;
        d->st.attr_hits++;
    }
    pthread_mutex_unlock(&d->mu);
    return hit;
}

void dcache_clear(dcache *d)
{
    pthread_mutex_lock(&d->mu);
    dirrec *r, *tmp;
    HASH_ITER(hh, d->dirs, r, tmp) {
        r->token = 0;
        r->has_self = 0;
        clear_listing(d, r);
    }
    pthread_mutex_unlock(&d->mu);
}

void dcache_forget_attr(dcache *d, uint64_t ino)
{
    pthread_mutex_lock(&d->mu);
    dirrec *r = find_rec(d, ino);
    if (r)
        r->has_self = 0;
    pthread_mutex_unlock(&d->mu);
}

void dcache_get_stats(dcache *d, dcache_stats *out)
{
    pthread_mutex_lock(&d->mu);
    *out = d->st;
    out->entries = d->nentries;
    out->dirs = d->ndirs;
    pthread_mutex_unlock(&d->mu);
}
