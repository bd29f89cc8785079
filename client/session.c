/*
 * session.c — session lease, open counts and batched releases; see
 * session.h.
 *
 * lock guards opens, released, stop and the condition; the renew thread
 * never holds it across an HTTP call.
 */
#include "client/session.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uthash.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

/* Releases carried by one unlink or rename at most (8 bytes each). */
#define RELEASES_PER_REQUEST 1024

typedef struct opencount {
    uint64_t ino;
    uint64_t n;
    UT_hash_handle hh;
} opencount;

struct csession {
    mc *m;
    char *desc;
    pthread_mutex_t lock;
    pthread_cond_t cv;
    opencount *opens;
    uint64_t *released;
    size_t nreleased, capreleased;
    uint64_t lease_ms;
    int stop, active;
    pthread_t thread;
    int have_thread;
};

static int open_session(csession *s)
{
    uint64_t sid = 0, lease = 0;
    int rc = mc_session_new(s->m, s->desc, &sid, &lease);
    if (rc < 0)
        return rc;
    if (lease < 300)
        lease = 300;
    mc_set_session(s->m, sid);
    pthread_mutex_lock(&s->lock);
    s->lease_ms = lease;
    s->active = 1;
    pthread_mutex_unlock(&s->lock);
    log_info("session %llu with metad (lease %llu ms)", (unsigned long long)sid,
             (unsigned long long)lease);
    return 0;
}

/* Every inode currently open, to hold again in a new session. */
static uint64_t *open_inos(csession *s, size_t *n)
{
    pthread_mutex_lock(&s->lock);
    size_t cnt = HASH_COUNT(s->opens), i = 0;
    uint64_t *v = xmalloc((cnt ? cnt : 1) * sizeof(uint64_t));
    opencount *o, *tmp;
    HASH_ITER(hh, s->opens, o, tmp) { v[i++] = o->ino; }
    pthread_mutex_unlock(&s->lock);
    *n = i;
    return v;
}

/* Take up to max queued releases off the queue, oldest first (*n of them,
 * NULL when none). */
static uint64_t *take_releases(csession *s, size_t max, size_t *n)
{
    uint64_t *rel = NULL;
    pthread_mutex_lock(&s->lock);
    *n = MIN(s->nreleased, max);
    if (*n == s->nreleased) {
        rel = s->released;
        s->released = NULL;
        s->nreleased = s->capreleased = 0;
    } else if (*n) {
        rel = xmalloc(*n * sizeof(uint64_t));
        memcpy(rel, s->released, *n * sizeof(uint64_t));
        memmove(s->released, s->released + *n, (s->nreleased - *n) * sizeof(uint64_t));
        s->nreleased -= *n;
    }
    pthread_mutex_unlock(&s->lock);
    return rel;
}

/*
 * After a request carried releases rel[0..n): delivered, an inode released
 * there but opened again meanwhile is held again; not delivered, they go
 * back on the queue. Frees rel. Called without s->lock.
 */
static void releases_done(csession *s, uint64_t *rel, size_t n, int delivered)
{
    pthread_mutex_lock(&s->lock);
    if (delivered) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            opencount *o;
            HASH_FIND(hh, s->opens, &rel[i], sizeof(uint64_t), o);
            if (o)
                rel[k++] = rel[i];
        }
        n = k;
    } else {
        for (size_t i = 0; i < n; i++) {
            if (s->nreleased == s->capreleased) {
                s->capreleased = s->capreleased ? s->capreleased * 2 : 64;
                s->released = xrealloc(s->released, s->capreleased * sizeof(uint64_t));
            }
            s->released[s->nreleased++] = rel[i];
        }
        n = 0;
    }
    pthread_mutex_unlock(&s->lock);
    uint64_t sid = mc_session(s->m);
    if (n && sid)
        mc_session_hold(s->m, sid, rel, n);
    free(rel);
}

/* Renew the session now, releasing what was queued. Called without
 * s->lock. */
static int renew_now(csession *s)
{
    size_t nrel;
    uint64_t *rel = take_releases(s, SIZE_MAX, &nrel);
    uint64_t sid = mc_session(s->m), lease = 0;
    int rc = sid ? mc_session_renew(s->m, sid, rel, nrel, &lease) : -ENOENT;
    if (rc == 0 && lease >= 300) {
        pthread_mutex_lock(&s->lock);
        s->lease_ms = lease;
        pthread_mutex_unlock(&s->lock);
    }
    /* Released with an expired session: nothing is held any more. */
    releases_done(s, rel, rc == -ENOENT ? 0 : nrel, rc == 0);
    return rc;
}

static void *renew_main(void *arg)
{
    csession *s = arg;
    pthread_mutex_lock(&s->lock);
    while (!s->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t wait = s->lease_ms / 3;
        ts.tv_sec += (time_t)(wait / 1000);
        ts.tv_nsec += (long)(wait % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->cv, &s->lock, &ts);
        if (s->stop)
            break;
        pthread_mutex_unlock(&s->lock);
        uint64_t sid = mc_session(s->m);
        int rc = renew_now(s);
        if (rc == -ENOENT) {
            /* Expired (metad restarted, or cut off longer than the lease):
             * what was queued is released with the old session anyway. */
            log_warn("session %llu expired on metad; opening a new one", (unsigned long long)sid);
            if (open_session(s) == 0) {
                size_t n;
                uint64_t *v = open_inos(s, &n);
                if (n && mc_session_hold(s->m, mc_session(s->m), v, n) < 0)
                    log_error("could not hold %zu open files in the new session", n);
                free(v);
            }
        } else if (rc < 0) {
            log_warn("session renew failed: %s", cairn_strerror(rc));
        }
        pthread_mutex_lock(&s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

uint64_t *csession_take_releases(csession *s, size_t *n)
{
    pthread_mutex_lock(&s->lock);
    int active = s->active;
    pthread_mutex_unlock(&s->lock);
    *n = 0;
    return active ? take_releases(s, RELEASES_PER_REQUEST, n) : NULL;
}

void csession_releases_sent(csession *s, uint64_t *rel, size_t n, int delivered)
{
    releases_done(s, rel, n, delivered);
}

csession *csession_start(mc *m, const char *client_desc)
{
    csession *s = xcalloc(1, sizeof(*s));
    s->m = m;
    s->desc = xstrdup(client_desc);
    s->lease_ms = 30000;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cv, NULL);
    int rc = open_session(s);
    if (rc < 0) {
        log_warn("metad offers no session (%s): files unlinked while open are not kept alive",
                 cairn_strerror(rc));
        return s;
    }
    if (pthread_create(&s->thread, NULL, renew_main, s) == 0)
        s->have_thread = 1;
    return s;
}

int csession_active(csession *s)
{
    pthread_mutex_lock(&s->lock);
    int a = s->active;
    pthread_mutex_unlock(&s->lock);
    return a;
}

int csession_is_open(csession *s, uint64_t ino)
{
    pthread_mutex_lock(&s->lock);
    opencount *o;
    HASH_FIND(hh, s->opens, &ino, sizeof(ino), o);
    pthread_mutex_unlock(&s->lock);
    return o != NULL;
}

int csession_opened(csession *s, uint64_t ino)
{
    pthread_mutex_lock(&s->lock);
    opencount *o;
    HASH_FIND(hh, s->opens, &ino, sizeof(ino), o);
    int first = !o;
    if (!o) {
        o = xcalloc(1, sizeof(*o));
        o->ino = ino;
        HASH_ADD(hh, s->opens, ino, sizeof(o->ino), o);
        /* Reopened before its release went out: cancel the release. */
        size_t k = 0;
        for (size_t i = 0; i < s->nreleased; i++)
            if (s->released[i] != ino)
                s->released[k++] = s->released[i];
        s->nreleased = k;
    }
    o->n++;
    pthread_mutex_unlock(&s->lock);
    return first;
}

void csession_closed(csession *s, uint64_t ino)
{
    pthread_mutex_lock(&s->lock);
    opencount *o;
    HASH_FIND(hh, s->opens, &ino, sizeof(ino), o);
    if (o && --o->n == 0) {
        HASH_DEL(s->opens, o);
        free(o);
        if (s->active) {
            if (s->nreleased == s->capreleased) {
                s->capreleased = s->capreleased ? s->capreleased * 2 : 64;
                s->released = xrealloc(s->released, s->capreleased * sizeof(uint64_t));
            }
            s->released[s->nreleased++] = ino;
        }
    }
    pthread_mutex_unlock(&s->lock);
}

void csession_stop(csession *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->stop = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->lock);
    if (s->have_thread)
        pthread_join(s->thread, NULL);
    uint64_t sid = mc_session(s->m);
    if (sid && s->active)
        mc_session_end(s->m, sid);
    mc_set_session(s->m, 0);
    opencount *o, *tmp;
    HASH_ITER(hh, s->opens, o, tmp) {
        HASH_DEL(s->opens, o);
        free(o);
    }
    free(s->released);
    free(s->desc);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cv);
    free(s);
}
