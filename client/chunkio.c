/*
 * chunkio.c — placement, replicated uploads and verified reads; see
 * chunkio.h.
 *
 * Locks (never held across an HTTP call):
 *   map_lock   guards servers/nservers/epoch/last_refresh (the cluster map)
 *   q_lock     guards the upload queue, the prefetch queue, stop flag
 *   fl_lock    guards the in-flight fetch table (single-flight reads)
 *   job->lock  guards one upload's candidate cursor and counters
 * Lock order: none nests inside another except job->lock -> map_lock
 * (a refresh after exhausting candidates).
 */
#include "client/chunkio.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uthash.h>

#include "common/chunkfile.h"
#include "common/err.h"
#include "common/hrw.h"
#include "common/httpc.h"
#include "common/slots.h"
#include "common/log.h"
#include "common/util.h"

#define MAX_SERVERS 256
#define PREFETCH_QUEUE_MAX 64

typedef struct srv {
    uint32_t id;
    char addr[64];
    uint64_t capacity;
    uint32_t state;
} srv;

typedef struct put_job put_job;
struct put_job {
    pthread_mutex_t lock;
    uint8_t id[CHUNK_ID_LEN];
    char hex[CHUNK_ID_HEX + 1];
    cbuf *b;
    cio_done_fn done;
    void *arg;
    srv cand[MAX_SERVERS];      /* ranked UP servers, best first */
    size_t ncand, next;         /* next candidate to hand out */
    uint8_t held[MAX_SERVERS];  /* cand[i] stored the chunk */
    unsigned successes, outstanding, want;
    int64_t deadline_ms;
};

typedef struct work {
    put_job *job;
    size_t cand;                /* index into job->cand */
    struct work *next;
} work;

typedef struct pf {
    uint8_t id[CHUNK_ID_LEN];
    struct pf *next;
} pf;

typedef struct flight {
    uint8_t id[CHUNK_ID_LEN];
    int done, err, waiters;
    cbuf *b;
    pthread_cond_t cv;
    UT_hash_handle hh;
} flight;

/* What is known of a chunk server's data directory, by server id. */
enum { LOCAL_UNKNOWN, LOCAL_YES, LOCAL_NO };
typedef struct local_dir {
    uint32_t id;
    char addr[64];              /* the address it was learned from */
    int state;
    int learning;               /* a thread is asking the server */
    int64_t retry_ms;           /* LOCAL_UNKNOWN: not before this */
    char *dir;                  /* LOCAL_YES: its absolute data directory */
    UT_hash_handle hh;
} local_dir;

/* A server that could not be asked is asked again after this long. */
#define LOCAL_RETRY_MS 30000

/* A local chunk file read whole and found good (uncompressed): ranges of
 * it are read straight from the file while it is that same file. */
typedef struct local_ok {
    uint8_t id[CHUNK_ID_LEN];
    char *path;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    UT_hash_handle hh;
} local_ok;
#define LOCAL_OK_MAX 65536

struct cio {
    cio_config cfg;
    httpc *http;
    char fsid_hex[33];

    pthread_mutex_t local_lock;
    local_dir *locals;
    local_ok *oks;               /* by id, oldest first (HASH order) */

    pthread_mutex_t map_lock;
    srv *servers;
    size_t nservers;
    uint64_t epoch;
    int64_t last_refresh_ms;

    pthread_mutex_t q_lock;
    pthread_cond_t q_cv;        /* upload work queued */
    pthread_cond_t pf_cv;       /* prefetch queued */
    work *q_head, *q_tail;
    pf *pf_head, *pf_tail;
    size_t pf_len;
    int stop;
    pthread_t *workers, *fetchers;
    unsigned nworkers, nfetchers;

    pthread_mutex_t fl_lock;
    flight *flights;
    slotset fetch;              /* cfg.fetch_slots: cio_get's fetches */

    pthread_mutex_t st_lock;
    cio_stats st;
};

static void stat_add(cio *c, uint64_t *field, uint64_t v)
{
    pthread_mutex_lock(&c->st_lock);
    *field += v;
    pthread_mutex_unlock(&c->st_lock);
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

/* ---- cluster map ---- */

int cio_refresh(cio *c)
{
    mc_cluster cl;
    int rc = mc_cluster_get(c->cfg.meta, &cl);
    if (rc < 0)
        return rc;
    size_t n = MIN(cl.n, (size_t)MAX_SERVERS);
    srv *s = n ? xcalloc(n, sizeof(srv)) : NULL;
    for (size_t i = 0; i < n; i++) {
        s[i].id = cl.servers[i].id;
        snprintf(s[i].addr, sizeof(s[i].addr), "%s", cl.servers[i].addr);
        s[i].capacity = cl.servers[i].capacity;
        s[i].state = cl.servers[i].state;
    }
    pthread_mutex_lock(&c->map_lock);
    free(c->servers);
    c->servers = s;
    c->nservers = n;
    if (cl.epoch != c->epoch)
        log_info("cluster map epoch %llu: %zu servers", (unsigned long long)cl.epoch, n);
    c->epoch = cl.epoch;
    c->last_refresh_ms = now_mono_ms();
    pthread_mutex_unlock(&c->map_lock);
    mc_cluster_clear(&cl);
    return 0;
}

static void maybe_refresh(cio *c)
{
    pthread_mutex_lock(&c->map_lock);
    int stale = mc_epoch(c->cfg.meta) > c->epoch ||
                now_mono_ms() - c->last_refresh_ms > (int64_t)c->cfg.map_refresh_ms;
    pthread_mutex_unlock(&c->map_lock);
    if (stale)
        cio_refresh(c);
}

size_t cio_servers_up(cio *c)
{
    maybe_refresh(c);
    size_t up = 0;
    pthread_mutex_lock(&c->map_lock);
    for (size_t i = 0; i < c->nservers; i++)
        up += c->servers[i].state == SERVER_UP;
    pthread_mutex_unlock(&c->map_lock);
    return up;
}

/*
 * Rank servers for a chunk: UP servers in HRW order first (the only ones
 * written to); when include_down, FULL and DRAINING servers follow, then
 * DOWN ones, each group in HRW order, for reads.
 */
static size_t rank(cio *c, const uint8_t id[CHUNK_ID_LEN], srv *out, int include_down)
{
    maybe_refresh(c);
    hrw_node nodes[MAX_SERVERS];
    size_t order[MAX_SERVERS];
    srv copy[MAX_SERVERS];
    pthread_mutex_lock(&c->map_lock);
    size_t n = c->nservers;
    memcpy(copy, c->servers, n * sizeof(srv));
    pthread_mutex_unlock(&c->map_lock);
    for (size_t i = 0; i < n; i++) {
        nodes[i].id = copy[i].id;
        double gib = (double)copy[i].capacity / (double)(1ull << 30);
        nodes[i].weight = gib < 1.0 ? 1.0 : gib;
    }
    hrw_rank(id, nodes, n, order);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (copy[order[i]].state == SERVER_UP)
            out[k++] = copy[order[i]];
    if (include_down) {
        /* Full and draining servers still hold their chunks; down ones are
         * the last resort. */
        for (size_t i = 0; i < n; i++)
            if (copy[order[i]].state == SERVER_FULL || copy[order[i]].state == SERVER_DRAINING)
                out[k++] = copy[order[i]];
        for (size_t i = 0; i < n; i++)
            if (copy[order[i]].state != SERVER_UP && copy[order[i]].state != SERVER_FULL &&
                copy[order[i]].state != SERVER_DRAINING)
                out[k++] = copy[order[i]];
    }
    return k;
}

/* ---- uploads ---- */

#define HASH_FIRST ((size_t)-1)

static void job_start(cio *c, put_job *j, int keep_first);

static void enqueue_work(cio *c, put_job *j, size_t cand)
{
    work *w = xmalloc(sizeof(*w));
    w->job = j;
    w->cand = cand;
    w->next = NULL;
    pthread_mutex_lock(&c->q_lock);
    if (c->q_tail)
        c->q_tail->next = w;
    else
        c->q_head = w;
    c->q_tail = w;
    pthread_cond_signal(&c->q_cv);
    pthread_mutex_unlock(&c->q_lock);
}

/* One PUT; 0 stored, -EAGAIN overloaded (retry same server), else error. */
static int put_one(cio *c, put_job *j, const srv *s, int *retry_after_s)
{
    char url[160];
    snprintf(url, sizeof(url), "http://%s/chunks/%s", s->addr, j->hex);
    const char *hdrs[] = {"Content-Type: application/octet-stream", NULL};
    httpc_resp resp;
    *retry_after_s = 0;
    int rc = httpc_do(c->http, "PUT", url, hdrs, j->b->data, j->b->len, 60000, &resp);
    if (rc < 0) {
        log_warn("chunk %s: PUT to server %u (%s) failed: %s", j->hex, s->id, s->addr,
                 cairn_strerror(rc));
        return rc;
    }
    int st = resp.status;
    *retry_after_s = resp.retry_after_s;
    httpc_resp_free(&resp);
    if (st == 200 || st == 201 || st == 204)
        return 0;
    if (st == 503)
        return -EAGAIN;
    log_warn("chunk %s: PUT to server %u (%s) answered %d", j->hex, s->id, s->addr, st);
    return st == 507 ? -ENOSPC : -EIO;
}

static void job_finish(cio *c, put_job *j)
{
    int err = 0;
    if (j->successes < j->want) {
        if (j->successes >= c->cfg.min_replicas && j->successes > 0) {
            log_warn("chunk %s: stored on %u of %u servers (under-replicated)", j->hex,
                     j->successes, j->want);
            stat_add(c, &c->st.under_replicated, 1);
        } else {
            log_error("chunk %s: upload failed: %u of %u required copies stored", j->hex,
                      j->successes, c->cfg.min_replicas);
            stat_add(c, &c->st.put_failures, 1);
            err = -EIO;
        }
    }
    if (!err) {
        stat_add(c, &c->st.puts, 1);
        stat_add(c, &c->st.put_bytes, j->b->len);
        if (c->cfg.cache && c->cfg.cache_writes)
            ccache_put(c->cfg.cache, j->id, j->b, 0);
    }
    cbuf_unref(j->b);
    cio_done_fn done = j->done;
    void *arg = j->arg;
    uint8_t id[CHUNK_ID_LEN];
    memcpy(id, j->id, CHUNK_ID_LEN);
    pthread_mutex_destroy(&j->lock);
    free(j);
    done(arg, err, err ? NULL : id);
}

/* Pick the next candidate that does not hold the chunk yet; when the list
 * is exhausted and time remains, refresh the map, back off and start over. */
static int next_candidate(cio *c, put_job *j, size_t *out, unsigned *backoff)
{
    for (;;) {
        pthread_mutex_lock(&j->lock);
        while (j->next < j->ncand) {
            size_t i = j->next++;
            if (!j->held[i]) {
                pthread_mutex_unlock(&j->lock);
                *out = i;
                return 0;
            }
        }
        int enough = j->successes + (j->outstanding - 1) >= j->want;
        pthread_mutex_unlock(&j->lock);
        if (enough || now_mono_ms() + *backoff > j->deadline_ms)
            return -1;
        sleep_ms(*backoff);
        *backoff = MIN(*backoff * 2, 2000u);
        cio_refresh(c);
        srv ranked[MAX_SERVERS];
        size_t n = rank(c, j->id, ranked, 0);
        pthread_mutex_lock(&j->lock);
        /* Keep what is already stored; re-rank the rest. */
        srv keep[MAX_SERVERS];
        size_t nk = 0;
        for (size_t i = 0; i < j->ncand; i++)
            if (j->held[i])
                keep[nk++] = j->cand[i];
        memcpy(j->cand, keep, nk * sizeof(srv));
        memset(j->held, 0, sizeof(j->held));
        for (size_t i = 0; i < nk; i++)
            j->held[i] = 1;
        j->ncand = nk;
        for (size_t i = 0; i < n && j->ncand < MAX_SERVERS; i++) {
            int dup = 0;
            for (size_t k = 0; k < nk; k++)
                dup |= keep[k].id == ranked[i].id;
            if (!dup)
                j->cand[j->ncand++] = ranked[i];
        }
        j->next = nk;
        pthread_mutex_unlock(&j->lock);
    }
}

static void run_work(cio *c, work *w)
{
    put_job *j = w->job;
    size_t i = w->cand;
    unsigned backoff = 100;
    if (i == HASH_FIRST) {
        sha256(j->b->data, j->b->len, j->id);
        job_start(c, j, 1);
        i = 0;
    }
    for (;;) {
        srv s;
        pthread_mutex_lock(&j->lock);
        s = j->cand[i];
        pthread_mutex_unlock(&j->lock);
        int ra = 0;
        int rc = put_one(c, j, &s, &ra);
        while (rc == -EAGAIN && now_mono_ms() < j->deadline_ms) {
            sleep_ms(ra > 0 ? (unsigned)MIN(ra * 1000, 2000) : backoff);
            backoff = MIN(backoff * 2, 2000u);
            rc = put_one(c, j, &s, &ra);
        }
        if (rc == 0) {
            pthread_mutex_lock(&j->lock);
            j->held[i] = 1;
            j->successes++;
            pthread_mutex_unlock(&j->lock);
            break;
        }
        if (next_candidate(c, j, &i, &backoff) < 0)
            break;
    }
    pthread_mutex_lock(&j->lock);
    int last = --j->outstanding == 0;
    pthread_mutex_unlock(&j->lock);
    if (last)
        job_finish(c, j);
}

/* Rank the targets and hand out the first replicas; the caller's thread
 * (or worker, when it hashed) keeps candidate 0 when keep_first. */
static void job_start(cio *c, put_job *j, int keep_first)
{
    chunk_id_hex(j->id, j->hex);
    j->ncand = rank(c, j->id, j->cand, 0);
    if (j->ncand == 0) {
        cio_refresh(c);
        j->ncand = rank(c, j->id, j->cand, 0);
    }
    unsigned first = (unsigned)MIN((size_t)j->want, j->ncand);
    if (j->ncand == 0) {
        /* No server is up: one worker fails on an unreachable placeholder and
         * then waits for servers to appear until the deadline. */
        j->ncand = 1;
        snprintf(j->cand[0].addr, sizeof(j->cand[0].addr), "127.0.0.1:1");
        first = 1;
    }
    j->next = first;
    j->outstanding = first;
    for (unsigned k = keep_first ? 1 : 0; k < first; k++)
        enqueue_work(c, j, k);
}

void cio_put_async(cio *c, const uint8_t *id, cbuf *b, cio_done_fn done, void *arg)
{
    put_job *j = xcalloc(1, sizeof(*j));
    pthread_mutex_init(&j->lock, NULL);
    j->b = cbuf_ref(b);
    j->done = done;
    j->arg = arg;
    j->want = c->cfg.replicas;
    j->deadline_ms = now_mono_ms() + c->cfg.retry_ms;
    if (!id) {
        enqueue_work(c, j, HASH_FIRST);
        return;
    }
    memcpy(j->id, id, CHUNK_ID_LEN);
    job_start(c, j, 0);
}

typedef struct sync_put {
    pthread_mutex_t m;
    pthread_cond_t cv;
    int done, err;
} sync_put;

static void sync_done(void *arg, int err, const uint8_t *id)
{
    (void)id;
    sync_put *s = arg;
    pthread_mutex_lock(&s->m);
    s->done = 1;
    s->err = err;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->m);
}

int cio_put(cio *c, const uint8_t id[CHUNK_ID_LEN], cbuf *b)
{
    sync_put s = {.done = 0};
    pthread_mutex_init(&s.m, NULL);
    pthread_cond_init(&s.cv, NULL);
    cio_put_async(c, id, b, sync_done, &s);
    pthread_mutex_lock(&s.m);
    while (!s.done)
        pthread_cond_wait(&s.cv, &s.m);
    pthread_mutex_unlock(&s.m);
    pthread_mutex_destroy(&s.m);
    pthread_cond_destroy(&s.cv);
    return s.err;
}

/* ---- reads ---- */

/* The first line of a small file, trimmed, into out: 0 or -errno. */
static int read_line(const char *path, char *out, size_t cap)
{
    uint8_t *text;
    size_t len;
    int rc = read_file(path, cap - 1, &text, &len);
    if (rc < 0)
        return rc;
    memcpy(out, text, len);
    out[len] = 0;
    out[strcspn(out, "\r\n")] = 0;
    free(text);
    return 0;
}

/* Ask server (id, addr) for its data directory and check that it is
 * visible here as that server's: its fs.id is this filesystem's and its
 * server.id is id. Returns LOCAL_YES with *dir (malloc'd), LOCAL_NO, or
 * LOCAL_UNKNOWN when the server did not answer. */
static int local_learn(cio *c, uint32_t id, const char *addr, char **dir)
{
    char url[160];
    snprintf(url, sizeof(url), "http://%s/local", addr);
    httpc_resp resp;
    *dir = NULL;
    int rc = httpc_do(c->http, "GET", url, NULL, NULL, 0, 5000, &resp);
    if (rc < 0) {
        log_debug("chunk server %u (%s): GET /local: %s", id, addr, cairn_strerror(rc));
        return LOCAL_UNKNOWN;
    }
    int state = LOCAL_NO;
    size_t n = strnlen((const char *)resp.body, resp.len);
    while (n > 0 && (resp.body[n - 1] == '\n' || resp.body[n - 1] == '\r'))
        n--;
    if (resp.status == 200 && n == strcspn((const char *)resp.body, "\r\n") && n > 1 &&
        n < PATH_MAX - 128 && resp.body[0] == '/') {
        char *d = xstrndup((const char *)resp.body, n);
        char path[PATH_MAX], line[80], want[16];
        snprintf(want, sizeof(want), "%u", id);
        /* fs.id appears once the server's maintenance has met metad;
         * until then server.id alone tells (every file read is checked
         * against its chunk id anyway). */
        snprintf(path, sizeof(path), "%s/fs.id", d);
        int frc = read_line(path, line, sizeof(line));
        int same = frc == -ENOENT || (frc == 0 && strcmp(line, c->fsid_hex) == 0);
        snprintf(path, sizeof(path), "%s/server.id", d);
        same = same && read_line(path, line, sizeof(line)) == 0 && strcmp(line, want) == 0;
        if (same) {
            *dir = d;
            state = LOCAL_YES;
            log_info("chunk server %u (%s): reading its chunk files in %s directly", id, addr, d);
        } else {
            log_debug("chunk server %u (%s): its data directory %s is not visible here", id,
                      addr, d);
            free(d);
        }
    }
    httpc_resp_free(&resp);
    return state;
}

/* Server s's data directory if it is visible here (malloc'd), else NULL.
 * The first call for a server asks it (once per address). */
static char *local_dir_of(cio *c, const srv *s)
{
    char *dir = NULL;
    pthread_mutex_lock(&c->local_lock);
    local_dir *e;
    HASH_FIND(hh, c->locals, &s->id, sizeof(s->id), e);
    if (e && strcmp(e->addr, s->addr) != 0 && !e->learning) {
        HASH_DEL(c->locals, e);
        free(e->dir);
        free(e);
        e = NULL;
    }
    if (!e) {
        e = xcalloc(1, sizeof(*e));
        e->id = s->id;
        snprintf(e->addr, sizeof(e->addr), "%s", s->addr);
        HASH_ADD(hh, c->locals, id, sizeof(e->id), e);
    }
    if (e->state == LOCAL_YES) {
        dir = xstrdup(e->dir);
    } else if (e->state == LOCAL_UNKNOWN && !e->learning && now_mono_ms() >= e->retry_ms) {
        e->learning = 1;
        pthread_mutex_unlock(&c->local_lock);
        char *d;
        int st = local_learn(c, s->id, s->addr, &d);
        pthread_mutex_lock(&c->local_lock);
        e->learning = 0;
        e->state = st;
        e->retry_ms = now_mono_ms() + LOCAL_RETRY_MS;
        e->dir = d;
        if (d)
            dir = xstrdup(d);
    }
    pthread_mutex_unlock(&c->local_lock);
    return dir;
}

static void local_ok_del_locked(cio *c, local_ok *e)
{
    HASH_DEL(c->oks, e);
    free(e->path);
    free(e);
}

static void local_ok_add(cio *c, const uint8_t id[CHUNK_ID_LEN], const char *path,
                         const struct stat *st)
{
    pthread_mutex_lock(&c->local_lock);
    local_ok *e;
    HASH_FIND(hh, c->oks, id, CHUNK_ID_LEN, e);
    if (e)
        local_ok_del_locked(c, e);
    if (HASH_COUNT(c->oks) >= LOCAL_OK_MAX)
        local_ok_del_locked(c, c->oks);   /* the oldest */
    e = xcalloc(1, sizeof(*e));
    memcpy(e->id, id, CHUNK_ID_LEN);
    e->path = xstrdup(path);
    e->dev = st->st_dev;
    e->ino = st->st_ino;
    e->size = st->st_size;
    e->mtime = st->st_mtim;
    HASH_ADD(hh, c->oks, id, CHUNK_ID_LEN, e);
    pthread_mutex_unlock(&c->local_lock);
}

/* Bytes [off, off + len) of chunk id from its local file, if that file was
 * read whole and found good and is still the same file: bytes read (short
 * at the chunk's end), or -ENOENT to take the whole-chunk way. */
static long local_range(cio *c, const uint8_t id[CHUNK_ID_LEN], uint64_t off, void *dst,
                        size_t len)
{
    pthread_mutex_lock(&c->local_lock);
    local_ok *e;
    HASH_FIND(hh, c->oks, id, CHUNK_ID_LEN, e);
    local_ok k;
    char *path = NULL;
    if (e) {
        k = *e;
        path = xstrdup(e->path);
    }
    pthread_mutex_unlock(&c->local_lock);
    if (!path)
        return -ENOENT;
    long n = -ENOENT;
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0 && fstat(fd, &st) == 0 && st.st_dev == k.dev && st.st_ino == k.ino &&
        st.st_size == k.size && st.st_mtim.tv_sec == k.mtime.tv_sec &&
        st.st_mtim.tv_nsec == k.mtime.tv_nsec) {
        uint64_t raw = (uint64_t)st.st_size - CHUNKFILE_HDR_LEN;
        size_t want = off < raw ? (size_t)MIN((uint64_t)len, raw - off) : 0;
        if (want == 0 || pread_full(fd, dst, want, (off_t)(CHUNKFILE_HDR_LEN + off)) == 0)
            n = (long)want;
    }
    if (fd >= 0)
        close(fd);
    if (n < 0) {
        /* Gone or changed (collected, repaired, moved aside): forget it. */
        pthread_mutex_lock(&c->local_lock);
        HASH_FIND(hh, c->oks, id, CHUNK_ID_LEN, e);
        if (e && strcmp(e->path, path) == 0)
            local_ok_del_locked(c, e);
        pthread_mutex_unlock(&c->local_lock);
    } else {
        stat_add(c, &c->st.local_ranges, 1);
    }
    free(path);
    return n;
}

/* Read chunk id from its file under a server's data directory, checked as
 * the server checks it for a GET: 0 with *out, or an error. */
static int local_read(cio *c, const char *dir, const uint8_t id[CHUNK_ID_LEN], const char *hex,
                      cbuf **out)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/chunks/%.2s/%.2s/%s", dir, hex, hex + 2, hex);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    uint8_t hdr[CHUNKFILE_HDR_LEN];
    chunkfile_hdr h;
    struct stat st;
    uint8_t *stored = NULL, *raw = NULL;
    int rc = fstat(fd, &st) < 0 ? -errno : 0;
    if (rc == 0 && (!S_ISREG(st.st_mode) || st.st_size < CHUNKFILE_HDR_LEN))
        rc = CAIRN_ECORRUPT;
    if (rc == 0)
        rc = pread_full(fd, hdr, sizeof(hdr), 0);
    if (rc == 0)
        rc = chunkfile_check_header(hdr, (uint64_t)st.st_size, id, &h);
    if (rc == 0 && (h.raw_len > c->cfg.chunk_size || h.stored_len > c->cfg.chunk_size))
        rc = CAIRN_ECORRUPT;
    if (rc == 0) {
        stored = malloc(h.stored_len ? h.stored_len : 1);
        rc = stored ? pread_full(fd, stored, h.stored_len, CHUNKFILE_HDR_LEN) : -ENOMEM;
    }
    close(fd);
    if (rc == 0)
        rc = chunkfile_check_payload(&h, stored, h.stored_len);
    if (rc == 0 && !(h.flags & CHUNKFILE_F_ZSTD))
        local_ok_add(c, id, path, &st);
    if (rc == 0)
        rc = chunkfile_decode(&h, stored, h.stored_len, &raw);
    if (rc < 0) {
        free(stored);
        return rc;
    }
    if (raw) {
        free(stored);
        stored = raw;
    }
    cbuf *b = cbuf_adopt(stored, h.raw_len, h.stored_len > h.raw_len ? h.stored_len : h.raw_len);
    if (!b)
        return -ENOMEM;
    *out = b;
    return 0;
}

/* Try the chunk files of the ranked servers that are on this machine. */
static int fetch_local(cio *c, const uint8_t id[CHUNK_ID_LEN], const char *hex, const srv *ranked,
                       size_t n, cbuf **out)
{
    for (size_t i = 0; i < n; i++) {
        char *dir = local_dir_of(c, &ranked[i]);
        if (!dir)
            continue;
        int rc = local_read(c, dir, id, hex, out);
        if (rc == 0) {
            free(dir);
            stat_add(c, &c->st.local_reads, 1);
            stat_add(c, &c->st.local_bytes, (*out)->len);
            return 0;
        }
        if (rc != -ENOENT) {
            log_warn("chunk %s: local file of server %u in %s: %s; asking the servers", hex,
                     ranked[i].id, dir, cairn_strerror(rc));
            stat_add(c, &c->st.local_failures, 1);
        }
        free(dir);
    }
    return -ENOENT;
}

/* One pass over the ranked servers. */
static int fetch_once(cio *c, const uint8_t id[CHUNK_ID_LEN], const char *hex, cbuf **out,
                      int *local)
{
    srv ranked[MAX_SERVERS];
    size_t n = rank(c, id, ranked, 1);
    int last = -ENOENT;
    if (c->cfg.local_reads && fetch_local(c, id, hex, ranked, n, out) == 0) {
        *local = 1;
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char url[160];
        snprintf(url, sizeof(url), "http://%s/chunks/%s", ranked[i].addr, hex);
        httpc_resp resp;
        int rc = httpc_do(c->http, "GET", url, NULL, NULL, 0, 60000, &resp);
        if (rc < 0) {
            log_debug("chunk %s: GET from server %u (%s): %s", hex, ranked[i].id, ranked[i].addr,
                      cairn_strerror(rc));
            last = rc;
            continue;
        }
        if (resp.status != 200) {
            if (resp.status != 404)
                log_warn("chunk %s: GET from server %u (%s) answered %d", hex, ranked[i].id,
                         ranked[i].addr, resp.status);
            last = resp.status == 404 ? -ENOENT : -EIO;
            httpc_resp_free(&resp);
            continue;
        }
        uint8_t got[CHUNK_ID_LEN];
        sha256(resp.body, resp.len, got);
        if (memcmp(got, id, CHUNK_ID_LEN) != 0) {
            log_error("chunk %s: server %u (%s) sent bytes that do not match the id", hex,
                      ranked[i].id, ranked[i].addr);
            stat_add(c, &c->st.verify_failures, 1);
            httpc_resp_free(&resp);
            last = CAIRN_ECORRUPT;
            continue;
        }
        /* The verified bytes stay where curl put them (body is never NULL
         * after an answer, and has len + 1 bytes). */
        size_t len = resp.len;
        cbuf *b = cbuf_adopt(resp.body, len, len + 1);
        resp.body = NULL;
        httpc_resp_free(&resp);
        if (!b)
            return -ENOMEM;
        stat_add(c, &c->st.get_bytes, b->len);
        *out = b;
        return 0;
    }
    return last;
}

static int fetch_net(cio *c, const uint8_t id[CHUNK_ID_LEN], cbuf **out, int *local)
{
    char hex[CHUNK_ID_HEX + 1];
    chunk_id_hex(id, hex);
    int64_t deadline = now_mono_ms() + c->cfg.retry_ms;
    unsigned backoff = 100;
    for (;;) {
        int rc = fetch_once(c, id, hex, out, local);
        if (rc == 0 || rc == -ENOMEM)
            return rc;
        if (now_mono_ms() + backoff > deadline) {
            log_error("chunk %s: no server returned a good copy within %u ms (%s)", hex,
                      c->cfg.retry_ms, cairn_strerror(rc));
            stat_add(c, &c->st.get_failures, 1);
            return -EIO;
        }
        sleep_ms(backoff);
        backoff = MIN(backoff * 2, 2000u);
        cio_refresh(c);
    }
}

/* The chunk's bytes (cio_get). budgeted: the caller holds pool budget for
 * the buffer (a prefetch), so the fetch takes no fetch slot. */
static int get_chunk(cio *c, const uint8_t id[CHUNK_ID_LEN], cbuf **out, int budgeted)
{
    if (c->cfg.cache) {
        cbuf *b = ccache_get(c->cfg.cache, id);
        if (b) {
            *out = b;
            return 0;
        }
    }
    pthread_mutex_lock(&c->fl_lock);
    flight *f;
    HASH_FIND(hh, c->flights, id, CHUNK_ID_LEN, f);
    if (f) {
        f->waiters++;
        while (!f->done)
            pthread_cond_wait(&f->cv, &c->fl_lock);
        int err = f->err;
        cbuf *b = err ? NULL : cbuf_ref(f->b);
        if (--f->waiters == 0) {
            if (f->b)
                cbuf_unref(f->b);
            pthread_cond_destroy(&f->cv);
            free(f);
        }
        pthread_mutex_unlock(&c->fl_lock);
        stat_add(c, &c->st.shared_fetches, 1);
        if (err)
            return err;
        *out = b;
        return 0;
    }
    f = xcalloc(1, sizeof(*f));
    memcpy(f->id, id, CHUNK_ID_LEN);
    pthread_cond_init(&f->cv, NULL);
    f->waiters = 1;
    HASH_ADD(hh, c->flights, id, CHUNK_ID_LEN, f);
    pthread_mutex_unlock(&c->fl_lock);
    /* Registered first, so that others asking for this chunk meanwhile
     * wait for this fetch rather than for slots of their own. */
    if (!budgeted)
        slots_take(&c->fetch);

    cbuf *b = NULL;
    int local = 0;
    int rc = fetch_net(c, id, &b, &local);
    stat_add(c, &c->st.gets, 1);
    /* A chunk file on this machine needs no second copy on its disk: a
     * reader gets its ranges from the file itself (local_range). */
    if (rc == 0 && c->cfg.cache)
        ccache_put(c->cfg.cache, id, b, !local);
    if (!budgeted)
        slots_give(&c->fetch);

    pthread_mutex_lock(&c->fl_lock);
    HASH_DEL(c->flights, f);
    f->done = 1;
    f->err = rc;
    f->b = rc == 0 ? cbuf_ref(b) : NULL;
    pthread_cond_broadcast(&f->cv);
    if (--f->waiters == 0) {
        if (f->b)
            cbuf_unref(f->b);
        pthread_cond_destroy(&f->cv);
        free(f);
    }
    pthread_mutex_unlock(&c->fl_lock);
    if (rc == 0)
        *out = b;
    return rc;
}

int cio_get(cio *c, const uint8_t id[CHUNK_ID_LEN], cbuf **out)
{
    return get_chunk(c, id, out, 0);
}

long cio_read(cio *c, const uint8_t id[CHUNK_ID_LEN], uint64_t off, void *dst, size_t len)
{
    if (c->cfg.cache) {
        long n = ccache_read(c->cfg.cache, id, off, dst, len);
        if (n >= 0)
            return n;
    }
    if (c->cfg.local_reads) {
        long n = local_range(c, id, off, dst, len);
        if (n >= 0)
            return n;
    }
    cbuf *b;
    int rc = cio_get(c, id, &b);
    if (rc < 0)
        return rc;
    size_t n = 0;
    if (off < b->len) {
        n = MIN(len, b->len - off);
        memcpy(dst, b->data + off, n);
    }
    cbuf_unref(b);
    return (long)n;
}

void cio_prefetch(cio *c, const uint8_t id[CHUNK_ID_LEN])
{
    if (c->cfg.cache && ccache_has(c->cfg.cache, id))
        return;
    pthread_mutex_lock(&c->q_lock);
    for (pf *p = c->pf_head; p; p = p->next)
        if (memcmp(p->id, id, CHUNK_ID_LEN) == 0) {
            pthread_mutex_unlock(&c->q_lock);
            return;
        }
    if (c->pf_len >= PREFETCH_QUEUE_MAX || c->stop) {
        pthread_mutex_unlock(&c->q_lock);
        stat_add(c, &c->st.prefetch_dropped, 1);
        return;
    }
    pf *p = xmalloc(sizeof(*p));
    memcpy(p->id, id, CHUNK_ID_LEN);
    p->next = NULL;
    if (c->pf_tail)
        c->pf_tail->next = p;
    else
        c->pf_head = p;
    c->pf_tail = p;
    c->pf_len++;
    pthread_cond_signal(&c->pf_cv);
    pthread_mutex_unlock(&c->q_lock);
    stat_add(c, &c->st.prefetch_queued, 1);
}

/* ---- threads ---- */

static void *worker_main(void *arg)
{
    cio *c = arg;
    pthread_mutex_lock(&c->q_lock);
    for (;;) {
        while (!c->q_head && !c->stop)
            pthread_cond_wait(&c->q_cv, &c->q_lock);
        if (!c->q_head && c->stop)
            break;
        work *w = c->q_head;
        c->q_head = w->next;
        if (!c->q_head)
            c->q_tail = NULL;
        pthread_mutex_unlock(&c->q_lock);
        run_work(c, w);
        free(w);
        pthread_mutex_lock(&c->q_lock);
    }
    pthread_mutex_unlock(&c->q_lock);
    return NULL;
}

static void *fetcher_main(void *arg)
{
    cio *c = arg;
    pthread_mutex_lock(&c->q_lock);
    for (;;) {
        while (!c->pf_head && !c->stop)
            pthread_cond_wait(&c->pf_cv, &c->q_lock);
        if (c->stop)
            break;
        pf *p = c->pf_head;
        c->pf_head = p->next;
        if (!c->pf_head)
            c->pf_tail = NULL;
        c->pf_len--;
        pthread_mutex_unlock(&c->q_lock);
        int granted = !c->cfg.pool || bufpool_try_acquire(c->cfg.pool, c->cfg.chunk_size);
        if (granted) {
            cbuf *b;
            if (!(c->cfg.cache && ccache_has(c->cfg.cache, p->id)) &&
                get_chunk(c, p->id, &b, c->cfg.pool != NULL) == 0)
                cbuf_unref(b);
            if (c->cfg.pool)
                bufpool_release(c->cfg.pool, c->cfg.chunk_size);
        } else {
            stat_add(c, &c->st.prefetch_dropped, 1);
        }
        free(p);
        pthread_mutex_lock(&c->q_lock);
    }
    pthread_mutex_unlock(&c->q_lock);
    return NULL;
}

cio *cio_new(const cio_config *cfg, int *err)
{
    cio *c = xcalloc(1, sizeof(*c));
    c->cfg = *cfg;
    if (!c->cfg.workers)
        c->cfg.workers = 8;
    if (!c->cfg.fetchers)
        c->cfg.fetchers = 4;
    if (!c->cfg.fetch_slots)
        c->cfg.fetch_slots = slots_fitting(CIO_HELD_BYTES, c->cfg.chunk_size, 2);
    if (!c->cfg.retry_ms)
        c->cfg.retry_ms = 60000;
    if (!c->cfg.map_refresh_ms)
        c->cfg.map_refresh_ms = 5000;
    if (!c->cfg.min_replicas)
        c->cfg.min_replicas = c->cfg.replicas;
    httpc_config hc = {
        .handles = c->cfg.workers + c->cfg.fetchers + 32,
        .connect_timeout_ms = 2000,
        .max_resp = c->cfg.chunk_size + 1,
        .recv_buf = 128u << 10,
    };
    c->http = httpc_new(&hc);
    if (!c->http) {
        free(c);
        *err = -ENOMEM;
        return NULL;
    }
    pthread_mutex_init(&c->map_lock, NULL);
    pthread_mutex_init(&c->local_lock, NULL);
    hex_encode(c->cfg.fsid, sizeof(c->cfg.fsid), c->fsid_hex);
    pthread_mutex_init(&c->q_lock, NULL);
    pthread_cond_init(&c->q_cv, NULL);
    pthread_cond_init(&c->pf_cv, NULL);
    pthread_mutex_init(&c->fl_lock, NULL);
    slots_init(&c->fetch, c->cfg.fetch_slots);
    pthread_mutex_init(&c->st_lock, NULL);
    int rc = cio_refresh(c);
    if (rc < 0)
        log_warn("cluster map not available yet: %s", cairn_strerror(rc));
    c->workers = xcalloc(c->cfg.workers, sizeof(pthread_t));
    c->fetchers = xcalloc(c->cfg.fetchers, sizeof(pthread_t));
    for (unsigned i = 0; i < c->cfg.workers; i++)
        if (pthread_create(&c->workers[i], NULL, worker_main, c) == 0)
            c->nworkers++;
    for (unsigned i = 0; i < c->cfg.fetchers; i++)
        if (pthread_create(&c->fetchers[i], NULL, fetcher_main, c) == 0)
            c->nfetchers++;
    if (!c->nworkers || !c->nfetchers) {
        log_error("chunk I/O: cannot start threads");
        cio_free(c);
        *err = -EAGAIN;
        return NULL;
    }
    *err = 0;
    return c;
}

void cio_free(cio *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->q_lock);
    c->stop = 1;
    pthread_cond_broadcast(&c->q_cv);
    pthread_cond_broadcast(&c->pf_cv);
    pthread_mutex_unlock(&c->q_lock);
    for (unsigned i = 0; i < c->nworkers; i++)
        pthread_join(c->workers[i], NULL);
    for (unsigned i = 0; i < c->nfetchers; i++)
        pthread_join(c->fetchers[i], NULL);
    while (c->pf_head) {
        pf *p = c->pf_head;
        c->pf_head = p->next;
        free(p);
    }
    free(c->workers);
    free(c->fetchers);
    free(c->servers);
    local_dir *e, *etmp;
    HASH_ITER(hh, c->locals, e, etmp) {
        HASH_DEL(c->locals, e);
        free(e->dir);
        free(e);
    }
    local_ok *o, *otmp;
    HASH_ITER(hh, c->oks, o, otmp) local_ok_del_locked(c, o);
    pthread_mutex_destroy(&c->local_lock);
    httpc_free(c->http);
    pthread_mutex_destroy(&c->map_lock);
    pthread_mutex_destroy(&c->q_lock);
    pthread_cond_destroy(&c->q_cv);
    pthread_cond_destroy(&c->pf_cv);
    pthread_mutex_destroy(&c->fl_lock);
    slots_destroy(&c->fetch);
    pthread_mutex_destroy(&c->st_lock);
    free(c);
}

void cio_get_stats(cio *c, cio_stats *out)
{
    pthread_mutex_lock(&c->st_lock);
    *out = c->st;
    pthread_mutex_unlock(&c->st_lock);
    unsigned peak;
    slots_counts(&c->fetch, &out->fetch_waits, &peak);
    out->fetch_peak = peak;
}
