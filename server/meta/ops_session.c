/*
 * ops_session.c — client sessions and orphans in cairn-metad
 * (docs/PROTOCOL.md "Sessions and open files", DESIGN.md §3).
 *
 * Sessions and holds live in memory (session.h). The namespace only
 * learns their effect through logged records: an unlink or rename over a
 * held file carries FT_OP_KEEP (ops_keep), and an orphan nobody holds any
 * more is freed by an FSOP_ORPHAN_FREE record (free_if_unheld). So replay
 * reproduces exactly what happened live, whatever sessions existed.
 *
 * Who frees orphans:
 *   - session_renew that releases inodes, and session_end: at once, in the
 *     request, so the answer already reflects it;
 *   - the reaper thread: orphans whose last holder's session expired, and
 *     every orphan nobody held again once the restart grace period is over.
 * During the grace period nothing is freed and every file that loses its
 * last link is kept, since clients from before the restart may hold it
 * without metad knowing yet.
 *
 * Locks (metad.h): holds are added under ns_lock shared (session_hold,
 * map) or exclusive (create); keep and free decisions are made under
 * ns_lock exclusive; the sessions mutex nests inside. No lock is held
 * across persist_wait or a reply.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/err.h"
#include "common/fsrec.h"
#include "common/log.h"
#include "common/util.h"
#include "server/meta/ops_i.h"
#include "server/meta/persist.h"
#include "server/meta/session.h"

/* ---- holds and orphan decisions ---- */

/* The Cairn-Session header: 0 with *sid (0 when absent), or -EINVAL. */
static int session_header(httpd_req *rq, uint64_t *sid)
{
    uint64_t v;
    const char *h;
    char *end;

    *sid = 0;
    h = httpd_header(rq, "Cairn-Session");
    if (!h)
        return 0;
    while (*h == ' ' || *h == '\t')
        h++;
    if (*h < '0' || *h > '9')
        return -EINVAL;
    errno = 0;
    v = strtoull(h, &end, 10);
    while (*end == ' ' || *end == '\t')
        end++;
    if (errno != 0 || *end != '\0' || v == 0)
        return -EINVAL;
    *sid = v;
    return 0;
}

uint64_t ops_origin(httpd_req *rq)
{
    uint64_t sid;

    return session_header(rq, &sid) == 0 ? sid : 0;
}

int ops_open_request(httpd_req *rq, const recr *r, uint64_t *sid)
{
    uint64_t open = 0;

    *sid = 0;
    if (ops_opt_u64(r, FT_OPEN, &open, 0) < 0)
        return -EINVAL;
    if (open == 0)
        return 0;
    /* Without the header (a client without a session) nothing is held. */
    return session_header(rq, sid);
}

/* Check every field `tag` of a request: an inode number (8 bytes, not 0);
 * *n = how many. */
static int check_ino_list(const recr *r, uint16_t tag_want, size_t *n)
{
    rec_iter it;
    uint16_t tag;
    const uint8_t *p;
    size_t len;

    *n = 0;
    rec_iter_init(&it);
    while (rec_next(r, &it, &tag, &p, &len)) {
        if (tag != tag_want)
            continue;
        if (len != 8 || get_le64(p) == 0)
            return -EINVAL;
        (*n)++;
    }
    return 0;
}

int ops_released_request(httpd_req *rq, const recr *r, uint64_t *sid)
{
    size_t n;

    *sid = 0;
    if (check_ino_list(r, FT_RELEASED, &n) < 0)
        return -EINVAL;
    if (n == 0)
        return 0;
    if (session_header(rq, sid) < 0 || *sid == 0)
        return -EINVAL;
    return 0;
}

static uint64_t free_if_unheld(metad *m, uint64_t ino, uint64_t origin);

uint64_t ops_released_apply(metad *m, const recr *r, uint64_t sid)
{
    rec_iter it;
    uint16_t tag;
    const uint8_t *p;
    size_t len;
    uint64_t lsn = 0, l, ino;

    if (!sid)
        return 0;
    rec_iter_init(&it);
    while (rec_next(r, &it, &tag, &p, &len)) {
        if (tag != FT_RELEASED)
            continue;
        ino = get_le64(p);
        /* An expired session holds nothing: nothing to drop. */
        if (sessions_release(m->ss, sid, ino) < 0)
            return lsn;
        if ((l = free_if_unheld(m, ino, sid)) != 0)
            lsn = l;
    }
    return lsn;
}

void ops_hold(metad *m, uint64_t sid, const fs_inode *ip)
{
    int rc;

    if (!sid || !ip || !S_ISREG(fs_inode_attr(ip)->mode))
        return;
    rc = sessions_hold(m->ss, sid, fs_inode_attr(ip)->ino);
    if (rc < 0)
        log_debug("session %016" PRIx64 ": cannot hold inode %" PRIu64 ": %s", sid,
                  fs_inode_attr(ip)->ino, cairn_strerror(rc));
}

uint64_t ops_keep(metad *m, const fs_inode *ip)
{
    const fs_attr *a = fs_inode_attr(ip);

    if (!S_ISREG(a->mode) || a->nlink != 1)
        return 0;
    if (sessions_in_grace(m->ss) || sessions_held(m->ss, a->ino))
        return a->ino;
    return 0;
}

/* With ns_lock exclusive: free ino if it is an orphan nobody holds and
 * the grace period is over (origin: the session whose release freed it, for
 * the change feed). Returns the lsn to wait for, or 0. */
static uint64_t free_if_unheld(metad *m, uint64_t ino, uint64_t origin)
{
    fs_inode *ip = fs_get(m->fs, ino);
    fs_op *op;
    fs_result res;
    uint64_t lsn = 0;
    int rc;

    if (!ip || !fs_inode_is_orphan(ip) || sessions_in_grace(m->ss) || sessions_held(m->ss, ino))
        return 0;
    op = xcalloc(1, sizeof(*op));
    op->type = FSOP_ORPHAN_FREE;
    op->ino = ino;
    op->origin = origin;
    rc = ops_mutate(m, op, &res, &lsn);
    free(op);
    if (rc < 0) {
        log_error("cannot free orphan %" PRIu64 ": %s", ino, cairn_strerror(rc));
        return 0;
    }
    __atomic_add_fetch(&m->orphans_freed, 1, __ATOMIC_RELAXED);
    log_debug("orphan %" PRIu64 " freed", ino);
    return lsn;
}

/* With ns_lock exclusive: free every orphan nobody holds. */
static uint64_t free_unheld_orphans(metad *m, size_t *freed)
{
    size_t n, i;
    uint64_t *list = fs_orphan_list(m->fs, &n), lsn = 0, l;

    *freed = 0;
    for (i = 0; i < n; i++) {
        if ((l = free_if_unheld(m, list[i], 0)) != 0) {
            lsn = l;
            (*freed)++;
        }
    }
    free(list);
    return lsn;
}

/* With ns_lock held (either mode): whether some orphan could be freed. */
static int any_unheld_orphan(metad *m)
{
    size_t n, i;
    uint64_t *list = fs_orphan_list(m->fs, &n);
    int any = 0;

    for (i = 0; i < n && !any; i++)
        any = !sessions_held(m->ss, list[i]);
    free(list);
    return any;
}

/* ---- request parsing ---- */

/* Check every FT_INO of a request (8-byte values); *n = how many. */
static int check_inos(const recr *r, size_t *n)
{
    return check_ino_list(r, FT_INO, n);
}

/* The next FT_INO after it (check_inos validated them). */
static int next_ino(const recr *r, rec_iter *it, uint64_t *ino)
{
    uint16_t tag;
    const uint8_t *p;
    size_t len;

    while (rec_next(r, it, &tag, &p, &len)) {
        if (tag == FT_INO) {
            *ino = get_le64(p);
            return 1;
        }
    }
    return 0;
}

static int session_body(httpd_req *rq, recr *r, uint64_t *sid)
{
    if (ops_open_body(rq, r, FSREC_REQ) < 0 || ops_need_u64(r, FT_SESSION, sid) < 0 ||
        *sid == 0)
        return -EINVAL;
    return 0;
}

static void reply_lease(httpd_req *rq, metad *m, uint64_t sid)
{
    recw w;

    recw_init(&w, FSREC_REPLY);
    if (sid)
        recw_u64(&w, FT_SESSION, sid);
    recw_u64(&w, FT_LEASE_MS, sessions_lease_ms(m->ss));
    ops_reply_rec(rq, 200, &w, NULL);
}

/* ---- handlers ---- */

void ops_session_new(httpd_req *rq, void *ctx)
{
    metad *m = ctx;
    recr r;
    const uint8_t *p = NULL;
    size_t n = 0;
    char client[SESSION_CLIENT_MAX + 1];
    uint64_t sid;
    int rc;

    if ((rc = ops_open_body(rq, &r, FSREC_REQ)) < 0)
        goto fail;
    if (rec_has(&r, FT_CLIENT) && rec_get_bytes(&r, FT_CLIENT, &p, &n) < 0) {
        rc = -EINVAL;
        goto fail;
    }
    n = MIN(n, (size_t)SESSION_CLIENT_MAX);
    if (n)
        memcpy(client, p, n);
    client[n] = '\0';
    if ((rc = sessions_open(m->ss, client, &sid)) < 0)
        goto fail;
    reply_lease(rq, m, sid);
    return;
fail:
    httpd_reply_err(rq, rc, "session_new");
}

void ops_session_renew(httpd_req *rq, void *ctx)
{
    metad *m = ctx;
    recr r;
    rec_iter it;
    uint64_t sid, ino, lsn = 0, l;
    size_t n;
    int rc;

    if ((rc = session_body(rq, &r, &sid)) < 0 || (rc = check_inos(&r, &n)) < 0)
        goto fail;
    if (n == 0) {
        rc = sessions_renew(m->ss, sid);
    } else {
        pthread_rwlock_wrlock(&m->ns_lock);
        rc = sessions_renew(m->ss, sid);
        rec_iter_init(&it);
        while (rc == 0 && next_ino(&r, &it, &ino)) {
            sessions_release(m->ss, sid, ino);
            if ((l = free_if_unheld(m, ino, sid)) != 0)
                lsn = l;
        }
        pthread_rwlock_unlock(&m->ns_lock);
    }
    if (rc < 0)
        goto fail;
    persist_wait(m, lsn);
    reply_lease(rq, m, 0);
    return;
fail:
    httpd_reply_err(rq, rc, "session_renew");
}

void ops_session_hold(httpd_req *rq, void *ctx)
{
    metad *m = ctx;
    recr r;
    rec_iter it;
    uint64_t sid, ino;
    size_t n;
    fs_inode *ip;
    int rc;

    if ((rc = session_body(rq, &r, &sid)) < 0 || (rc = check_inos(&r, &n)) < 0)
        goto fail;
    pthread_rwlock_rdlock(&m->ns_lock);
    rc = sessions_renew(m->ss, sid);
    rec_iter_init(&it);
    while (rc == 0 && next_ino(&r, &it, &ino)) {
        ip = fs_get(m->fs, ino);
        if (ip && S_ISREG(fs_inode_attr(ip)->mode))
            rc = sessions_hold(m->ss, sid, ino);
    }
    pthread_rwlock_unlock(&m->ns_lock);
    if (rc < 0)
        goto fail;
    reply_lease(rq, m, 0);
    return;
fail:
    httpd_reply_err(rq, rc, "session_hold");
}

void ops_session_end(httpd_req *rq, void *ctx)
{
    metad *m = ctx;
    recr r;
    recw w;
    uint64_t sid, lsn = 0;
    size_t freed = 0;
    int rc;

    if ((rc = session_body(rq, &r, &sid)) < 0)
        goto fail;
    pthread_rwlock_wrlock(&m->ns_lock);
    rc = sessions_end(m->ss, sid);
    if (rc == 0)
        lsn = free_unheld_orphans(m, &freed);
    pthread_rwlock_unlock(&m->ns_lock);
    if (rc < 0)
        goto fail;
    persist_wait(m, lsn);
    recw_init(&w, FSREC_REPLY);
    ops_reply_rec(rq, 200, &w, NULL);
    return;
fail:
    httpd_reply_err(rq, rc, "session_end");
}

/* ---- the reaper ---- */

struct reaper {
    pthread_t thread;
    pthread_mutex_t mu;         /* leaf: guards stop */
    pthread_cond_t cv;
    int stop;
};

static void *reaper_main(void *arg)
{
    metad *m = arg;
    reaper *rp = m->rp;
    uint64_t period = MIN(MAX(sessions_lease_ms(m->ss) / 4, (uint64_t)10), (uint64_t)1000);
    int grace = sessions_in_grace(m->ss), any;
    struct timespec ts;
    uint64_t lsn;
    size_t freed;

    pthread_mutex_lock(&rp->mu);
    while (!rp->stop) {
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (long)(period % 1000) * 1000000L;
        ts.tv_sec += (time_t)(period / 1000) + ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&rp->cv, &rp->mu, &ts);
        if (rp->stop)
            break;
        pthread_mutex_unlock(&rp->mu);

        sessions_expire(m->ss);
        if (!sessions_in_grace(m->ss)) {
            pthread_rwlock_rdlock(&m->ns_lock);
            any = any_unheld_orphan(m);
            pthread_rwlock_unlock(&m->ns_lock);
            freed = 0;
            lsn = 0;
            if (any) {
                pthread_rwlock_wrlock(&m->ns_lock);
                lsn = free_unheld_orphans(m, &freed);
                pthread_rwlock_unlock(&m->ns_lock);
                persist_wait(m, lsn);
            }
            if (grace) {
                log_info("restart grace period over: %zu orphans nobody held again were freed",
                         freed);
                grace = 0;
            } else if (freed) {
                log_info("%zu orphans freed (their sessions expired)", freed);
            }
        }
        pthread_mutex_lock(&rp->mu);
    }
    pthread_mutex_unlock(&rp->mu);
    return NULL;
}

int metad_reaper_start(metad *m)
{
    reaper *rp = xcalloc(1, sizeof(*rp));
    int rc;

    pthread_mutex_init(&rp->mu, NULL);
    pthread_cond_init(&rp->cv, NULL);
    m->rp = rp;
    rc = pthread_create(&rp->thread, NULL, reaper_main, m);
    if (rc != 0) {
        pthread_cond_destroy(&rp->cv);
        pthread_mutex_destroy(&rp->mu);
        free(rp);
        m->rp = NULL;
        return -rc;
    }
    return 0;
}

void metad_reaper_stop(metad *m)
{
    reaper *rp = m->rp;

    if (!rp)
        return;
    pthread_mutex_lock(&rp->mu);
    rp->stop = 1;
    pthread_cond_signal(&rp->cv);
    pthread_mutex_unlock(&rp->mu);
    pthread_join(rp->thread, NULL);
    pthread_cond_destroy(&rp->cv);
    pthread_mutex_destroy(&rp->mu);
    free(rp);
    m->rp = NULL;
}
