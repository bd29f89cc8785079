/*
 * session.c — client sessions, leases and holds (session.h).
 *
 * Every session has the same lease length, so ordering sessions by their
 * last renewal orders them by deadline: a renewed session moves to the
 * tail of one list and expiry pops from its head (O(1) per session).
 * Holds are kept twice: a set per session (what to drop when it ends) and
 * a count per inode over all sessions (what sessions_held answers).
 */
#include "server/meta/session.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <uthash.h>

#include "common/log.h"
#include "common/util.h"

typedef struct hold {
    UT_hash_handle hh;          /* in session.holds, keyed by ino */
    uint64_t ino;
} hold;

typedef struct held {
    UT_hash_handle hh;          /* in sessions.held, keyed by ino */
    uint64_t ino;
    uint32_t n;                 /* sessions holding it */
} held;

typedef struct session {
    UT_hash_handle hh;          /* in sessions.by_id */
    uint64_t id;
    int64_t deadline_ms;        /* monotonic */
    struct session *prev, *next;   /* renewal order = deadline order */
    hold *holds;
    size_t nholds;
    char client[SESSION_CLIENT_MAX + 1];
} session;

struct sessions {
    pthread_mutex_t mu;         /* guards everything below; a leaf lock */
    session *by_id;
    session *head, *tail;       /* oldest deadline first */
    held *held;
    uint64_t lease_ms, grace_ms;
    int64_t grace_end_ms;       /* 0 once the grace period is over */
    int64_t (*now_ms)(void);
    uint64_t live, holds, opened, ended, expired;
    size_t expired_unseen;      /* since the last sessions_expire */
};

sessions *sessions_new(uint64_t lease_ms, uint64_t grace_ms)
{
    sessions *s = xcalloc(1, sizeof(*s));

    pthread_mutex_init(&s->mu, NULL);
    s->lease_ms = lease_ms ? lease_ms : 30000;
    s->now_ms = now_mono_ms;
    s->grace_ms = grace_ms;
    s->grace_end_ms = grace_ms ? now_mono_ms() + (int64_t)grace_ms : 0;
    return s;
}

void sessions_set_clock(sessions *s, int64_t (*now_ms)(void))
{
    pthread_mutex_lock(&s->mu);
    s->now_ms = now_ms ? now_ms : now_mono_ms;
    if (s->grace_end_ms)
        s->grace_end_ms = s->now_ms() + (int64_t)s->grace_ms;
    pthread_mutex_unlock(&s->mu);
}

uint64_t sessions_lease_ms(const sessions *s)
{
    return s->lease_ms;
}

/* ---- lists and tables (mu held) ---- */

static void list_unlink(sessions *s, session *x)
{
    if (x->prev)
        x->prev->next = x->next;
    else
        s->head = x->next;
    if (x->next)
        x->next->prev = x->prev;
    else
        s->tail = x->prev;
    x->prev = x->next = NULL;
}

static void list_append(sessions *s, session *x)
{
    x->prev = s->tail;
    x->next = NULL;
    if (s->tail)
        s->tail->next = x;
    else
        s->head = x;
    s->tail = x;
}

static void held_drop(sessions *s, uint64_t ino)
{
    held *h;

    HASH_FIND(hh, s->held, &ino, sizeof(uint64_t), h);
    if (!h)
        return;
    if (--h->n == 0) {
        HASH_DEL(s->held, h);
        free(h);
    }
}

/* Remove a session with its holds. */
static void destroy(sessions *s, session *x)
{
    hold *h, *tmp;

    HASH_ITER(hh, x->holds, h, tmp) {
        HASH_DEL(x->holds, h);
        held_drop(s, h->ino);
        free(h);
    }
    s->holds -= x->nholds;
    list_unlink(s, x);
    HASH_DEL(s->by_id, x);
    s->live--;
    free(x);
}

static void expire_locked(sessions *s)
{
    int64_t now = s->now_ms();

    while (s->head && s->head->deadline_ms <= now) {
        session *x = s->head;
        log_info("session %016llx (%s) expired: no renew for %llu ms; %zu holds dropped",
                 (unsigned long long)x->id, x->client, (unsigned long long)s->lease_ms,
                 x->nholds);
        destroy(s, x);
        s->expired++;
        s->expired_unseen++;
    }
}

static session *find_live(sessions *s, uint64_t id)
{
    session *x;

    expire_locked(s);
    HASH_FIND(hh, s->by_id, &id, sizeof(uint64_t), x);
    return x;
}

static uint64_t new_id(sessions *s)
{
    static uint64_t fallback;
    uint64_t id;
    session *x;

    for (;;) {
        if (getrandom(&id, sizeof(id), 0) != (ssize_t)sizeof(id))
            id = (uint64_t)now_realtime_ns() * 0x9e3779b97f4a7c15ull +
                 __atomic_add_fetch(&fallback, 1, __ATOMIC_RELAXED);
        if (id == 0)
            continue;
        HASH_FIND(hh, s->by_id, &id, sizeof(uint64_t), x);
        if (!x)
            return id;
    }
}

/* ---- API ---- */

void sessions_free(sessions *s)
{
    if (!s)
        return;
    while (s->head)
        destroy(s, s->head);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

int sessions_open(sessions *s, const char *client, uint64_t *id)
{
    session *x;
    size_t i;

    pthread_mutex_lock(&s->mu);
    expire_locked(s);
    if (s->live >= SESSIONS_MAX) {
        pthread_mutex_unlock(&s->mu);
        return -ENOSPC;
    }
    x = xcalloc(1, sizeof(*x));
    x->id = new_id(s);
    snprintf(x->client, sizeof(x->client), "%s", client && client[0] ? client : "?");
    for (i = 0; x->client[i]; i++)   /* the log shows it: printable only */
        if ((unsigned char)x->client[i] < 0x20 || (unsigned char)x->client[i] > 0x7e)
            x->client[i] = '?';
    x->deadline_ms = s->now_ms() + (int64_t)s->lease_ms;
    HASH_ADD(hh, s->by_id, id, sizeof(uint64_t), x);
    list_append(s, x);
    s->live++;
    s->opened++;
    *id = x->id;
    log_info("session %016llx opened by %s", (unsigned long long)x->id, x->client);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

int sessions_renew(sessions *s, uint64_t id)
{
    session *x;

    pthread_mutex_lock(&s->mu);
    x = find_live(s, id);
    if (x) {
        x->deadline_ms = s->now_ms() + (int64_t)s->lease_ms;
        list_unlink(s, x);
        list_append(s, x);
    }
    pthread_mutex_unlock(&s->mu);
    return x ? 0 : -ENOENT;
}

int sessions_hold(sessions *s, uint64_t id, uint64_t ino)
{
    session *x;
    hold *h;
    held *c;
    int rc = 0;

    pthread_mutex_lock(&s->mu);
    x = find_live(s, id);
    if (!x) {
        rc = -ENOENT;
        goto out;
    }
    HASH_FIND(hh, x->holds, &ino, sizeof(uint64_t), h);
    if (h)
        goto out;
    if (x->nholds >= SESSION_HOLDS_MAX) {
        rc = -ENOSPC;
        goto out;
    }
    h = xcalloc(1, sizeof(*h));
    h->ino = ino;
    HASH_ADD(hh, x->holds, ino, sizeof(uint64_t), h);
    x->nholds++;
    s->holds++;
    HASH_FIND(hh, s->held, &ino, sizeof(uint64_t), c);
    if (!c) {
        c = xcalloc(1, sizeof(*c));
        c->ino = ino;
        HASH_ADD(hh, s->held, ino, sizeof(uint64_t), c);
    }
    c->n++;
out:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int sessions_release(sessions *s, uint64_t id, uint64_t ino)
{
    session *x;
    hold *h;
    int rc = 0;

    pthread_mutex_lock(&s->mu);
    x = find_live(s, id);
    if (!x) {
        rc = -ENOENT;
        goto out;
    }
    HASH_FIND(hh, x->holds, &ino, sizeof(uint64_t), h);
    if (!h)
        goto out;
    HASH_DEL(x->holds, h);
    free(h);
    x->nholds--;
    s->holds--;
    held_drop(s, ino);
out:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int sessions_end(sessions *s, uint64_t id)
{
    session *x;

    pthread_mutex_lock(&s->mu);
    x = find_live(s, id);
    if (x) {
        log_info("session %016llx (%s) ended; %zu holds dropped", (unsigned long long)x->id,
                 x->client, x->nholds);
        destroy(s, x);
        s->ended++;
    }
    pthread_mutex_unlock(&s->mu);
    return x ? 0 : -ENOENT;
}

int sessions_held(sessions *s, uint64_t ino)
{
    held *c;

    pthread_mutex_lock(&s->mu);
    expire_locked(s);
    HASH_FIND(hh, s->held, &ino, sizeof(uint64_t), c);
    pthread_mutex_unlock(&s->mu);
    return c != NULL;
}

int sessions_in_grace(sessions *s)
{
    int in;

    pthread_mutex_lock(&s->mu);
    in = s->grace_end_ms != 0 && s->now_ms() < s->grace_end_ms;
    if (!in)
        s->grace_end_ms = 0;
    pthread_mutex_unlock(&s->mu);
    return in;
}

size_t sessions_expire(sessions *s)
{
    size_t n;

    pthread_mutex_lock(&s->mu);
    expire_locked(s);
    n = s->expired_unseen;
    s->expired_unseen = 0;
    pthread_mutex_unlock(&s->mu);
    return n;
}

void sessions_get_stats(sessions *s, sessions_stats *out)
{
    pthread_mutex_lock(&s->mu);
    out->live = s->live;
    out->holds = s->holds;
    out->opened = s->opened;
    out->ended = s->ended;
    out->expired = s->expired;
    pthread_mutex_unlock(&s->mu);
}
