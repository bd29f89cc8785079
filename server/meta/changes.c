/*
 * changes.c — the change feed's log and its waiting readers; see changes.h.
 *
 * The log is a ring of cap records; record seq lives at ring[seq % cap],
 * and seqs [first, next) are kept. Each waiting reader has its own
 * condition variable on a list, so that an append signals exactly the
 * readers of other sessions.
 */
#include "server/meta/changes.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "common/fsrec.h"
#include "common/util.h"

typedef struct chrec {
    uint64_t origin, ino;
    int kind;
    char *name;
} chrec;

typedef struct waiter {
    uint64_t sid;
    int woken, kicked;
    pthread_cond_t cv;
    struct waiter *next;
} waiter;

struct changes {
    pthread_mutex_t lock;
    chrec *ring;
    size_t cap;
    uint64_t first, next;       /* seqs kept: [first, next) */
    uint64_t feed;
    waiter *waiters;
    int stopping;
    changes_stats st;
};

changes *changes_new(size_t cap)
{
    changes *c = xcalloc(1, sizeof(*c));

    if (cap < 16)
        cap = 16;
    c->cap = cap;
    c->ring = xcalloc(cap, sizeof(*c->ring));
    c->first = c->next = 1;
    pthread_mutex_init(&c->lock, NULL);
    while (c->feed == 0) {
        if (getrandom(&c->feed, sizeof(c->feed), 0) != (ssize_t)sizeof(c->feed))
            c->feed = (uint64_t)now_realtime_ns() ^ ((uint64_t)getpid() << 32);
    }
    return c;
}

void changes_free(changes *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->cap; i++)
        free(c->ring[i].name);
    free(c->ring);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

uint64_t changes_feed_id(const changes *c)
{
    return c->feed;
}

void changes_add(changes *c, uint64_t origin, int kind, uint64_t ino, const char *name)
{
    char *copy = kind == CHG_ENTRY && name ? xstrdup(name) : NULL;

    pthread_mutex_lock(&c->lock);
    chrec *r = &c->ring[c->next % c->cap];
    free(r->name);
    r->origin = origin;
    r->kind = kind;
    r->ino = ino;
    r->name = copy;
    c->next++;
    if (c->next - c->first > c->cap)
        c->first = c->next - c->cap;
    c->st.appended++;
    for (waiter *w = c->waiters; w; w = w->next) {
        if (!w->woken && (origin == 0 || w->sid != origin)) {
            w->woken = 1;
            pthread_cond_signal(&w->cv);
        }
    }
    pthread_mutex_unlock(&c->lock);
}

/* Put the records in [*from, next) not made by sid, at most
 * CHANGES_PER_ANSWER; *from moves past what was looked at. Lock held. */
static size_t put_records(changes *c, uint64_t *from, uint64_t sid, recw *w)
{
    size_t n = 0;
    uint64_t s = *from;

    for (; s < c->next && n < CHANGES_PER_ANSWER; s++) {
        const chrec *r = &c->ring[s % c->cap];
        recw x;

        if (sid != 0 && r->origin == sid)
            continue;
        recw_init(&x, FSREC_REQ);
        if (r->kind == CHG_ENTRY) {
            recw_u64(&x, FT_PARENT, r->ino);
            recw_str(&x, FT_NAME, r->name ? r->name : "");
        } else {
            recw_u64(&x, FT_INO, r->ino);
        }
        recw_rec(w, FT_CHANGE, &x);
        recw_free(&x);
        n++;
    }
    *from = s;
    return n;
}

/* Whether some record in [from, next) was made by another session. */
static int foreign_after(const changes *c, uint64_t from, uint64_t sid)
{
    for (uint64_t s = from; s < c->next; s++) {
        if (sid == 0 || c->ring[s % c->cap].origin != sid)
            return 1;
    }
    return 0;
}

size_t changes_read(changes *c, uint64_t feed, uint64_t since, uint64_t sid, int64_t wait_ms,
                    recw *w)
{
    size_t n = 0;

    pthread_mutex_lock(&c->lock);
    c->st.answers++;
    recw_u64(w, FT_FEED, c->feed);
    /* since is the next record the reader wants: it needs [since, next). */
    if (feed != c->feed || since == 0 || since < c->first || since > c->next) {
        c->st.gaps++;
        recw_u64(w, FT_SEQ, c->next);
        recw_u64(w, FT_GAP, 1);
        pthread_mutex_unlock(&c->lock);
        return 0;
    }
    /* Records of this session alone are skipped without an answer, so a
     * waiting reader is not woken (nor answered) by its own changes. */
    if (!foreign_after(c, since, sid) && wait_ms > 0 && !c->stopping) {
        waiter me = {.sid = sid};
        struct timespec dl = mono_deadline(wait_ms * 1000000LL);

        cond_init_mono(&me.cv);
        me.next = c->waiters;
        c->waiters = &me;
        c->st.waiting++;
        while (!c->stopping && !me.kicked && !foreign_after(c, since, sid)) {
            me.woken = 0;
            if (pthread_cond_timedwait(&me.cv, &c->lock, &dl) == ETIMEDOUT)
                break;
        }
        c->st.waiting--;
        for (waiter **pp = &c->waiters; *pp; pp = &(*pp)->next) {
            if (*pp == &me) {
                *pp = me.next;
                break;
            }
        }
        pthread_cond_destroy(&me.cv);
        /* The ring may have moved past since while waiting. */
        if (since < c->first) {
            c->st.gaps++;
            recw_u64(w, FT_SEQ, c->next);
            recw_u64(w, FT_GAP, 1);
            pthread_mutex_unlock(&c->lock);
            return 0;
        }
    }
    uint64_t pos = since;
    n = put_records(c, &pos, sid, w);
    recw_u64(w, FT_SEQ, pos);
    pthread_mutex_unlock(&c->lock);
    return n;
}

void changes_kick(changes *c, uint64_t sid)
{
    pthread_mutex_lock(&c->lock);
    for (waiter *w = c->waiters; w; w = w->next) {
        if (sid != 0 && w->sid == sid) {
            w->kicked = 1;
            pthread_cond_signal(&w->cv);
        }
    }
    pthread_mutex_unlock(&c->lock);
}

void changes_shutdown(changes *c)
{
    pthread_mutex_lock(&c->lock);
    c->stopping = 1;
    for (waiter *w = c->waiters; w; w = w->next)
        pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&c->lock);
}

void changes_get_stats(changes *c, changes_stats *out)
{
    pthread_mutex_lock(&c->lock);
    *out = c->st;
    pthread_mutex_unlock(&c->lock);
}
