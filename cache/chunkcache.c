/*
 * chunkcache.c — the client's local chunk cache (see chunkcache.h).
 *
 * Disk file format (one file per chunk, DIR/ab/<64 hex>), little-endian:
 *
 *   off len  field
 *     0   4  magic "CCAC"
 *     4   2  format version (CCF_VERSION)
 *     6   2  header length (64)
 *     8   8  payload length
 *    16   4  CRC32C of the payload
 *    20  32  chunk id, so a file under the wrong name is rejected
 *    52   8  reserved, zero
 *    60   4  CRC32C of header bytes 0..59
 *
 * The header is checked when ccache_open indexes the file (with the file
 * length, which must be exactly header + payload); the payload CRC on the
 * file's first use in this open. Files this process writes are known good
 * and start out verified.
 *
 * Concurrency. c->mu guards both indexes, both LRU lists, the fd cache and
 * the write queue (one lock, so there is no lock order to get wrong). Once
 * ccache_open has returned it is never held across file I/O (open, pread,
 * write, rename, unlink, utimensat); it is held across close() of a
 * read-only descriptor, which does no I/O. ccache_open holds it while it
 * scans the directory, before any other thread can exist.
 *
 *  - Only the writer thread creates, renames and unlinks chunk files once
 *    ccache_open has returned. A reader that finds a damaged file, and
 *    ccache_drop, remove the index entry at once (so later lookups miss) and
 *    queue a delete job: the file disappears in queue order, after an
 *    earlier write of the same id and before a later one, so the directory
 *    and the index cannot drift apart through a race between two threads.
 *  - Code that drops the mutex never keeps an index entry pointer across it:
 *    it remembers the entry's generation (unique per entry) and looks the id
 *    up again, so an entry evicted and re-added meanwhile is not mistaken
 *    for the one it saw.
 *  - Disk readers pread through an ofile, a reference-counted descriptor.
 *    An entry evicted while a reader holds its descriptor is harmless: the
 *    unlinked file stays readable until the last reference closes it.
 *    Up to fd_max descriptors of verified files stay open (LRU) so that
 *    random small reads cost one pread and no open.
 *  - A reader that must verify a file marks it VERIFYING; other readers of
 *    that id wait on verify_cv instead of checksumming it again.
 *
 * LRU persistence: hits only update the index (atime_ns). The writer thread
 * writes access times back as file mtimes: once a minute for files whose
 * mtime is more than a minute behind their last access, and for every
 * accessed file at close. ccache_open orders its LRU by mtime, so the order
 * survives a remount to within about a minute, without a syscall per hit.
 */
#include "cache/chunkcache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

/* uthash allocates its buckets itself; running out of memory there is a
 * small fixed allocation failing, which aborts like xmalloc does. */
#define uthash_fatal(msg) (fprintf(stderr, "chunkcache: %s\n", msg), abort())
#include <uthash.h>

#define CCF_HDR_LEN 64
#define CCF_VERSION 1
#define OFF_VERSION 4
#define OFF_HDRLEN 6
#define OFF_LEN 8
#define OFF_PCRC 16
#define OFF_ID 20
#define OFF_HCRC 60
static const uint8_t ccf_magic[4] = {'C', 'C', 'A', 'C'};

#define DEFAULT_QUEUE_MAX 16
#define DEFAULT_FD_MAX 64
/* How often the writer writes access times back, and how far a file's mtime
 * may lag behind its last access before it is rewritten. */
#define PERSIST_MS 60000
#define PERSIST_NS ((int64_t)PERSIST_MS * 1000000)
/* Read size while checksumming a whole file. */
#define VERIFY_BUF (256u << 10)

/* "ab/" + 64 hex + ".tmp" + NUL */
#define REL_MAX (3 + CHUNK_ID_HEX + 4 + 1)
#define TMP_SUFFIX ".tmp"

/* Intrusive circular doubly linked list with a sentinel head. */
typedef struct lnode {
    struct lnode *prev, *next;
} lnode;

#define l_entry(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

static void l_init(lnode *h)
{
    h->prev = h->next = h;
}

static int l_empty(const lnode *h)
{
    return h->next == h;
}

static void l_remove(lnode *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

static void l_push_front(lnode *h, lnode *n)
{
    n->next = h->next;
    n->prev = h;
    h->next->prev = n;
    h->next = n;
}

static void l_push_back(lnode *h, lnode *n)
{
    n->prev = h->prev;
    n->next = h;
    h->prev->next = n;
    h->prev = n;
}

static void l_move_front(lnode *h, lnode *n)
{
    if (h->next == n)
        return;
    l_remove(n);
    l_push_front(h, n);
}

/* An open read-only descriptor shared by the fd cache and readers. */
typedef struct ofile {
    int fd;     /* immutable */
    int refs;   /* atomic */
} ofile;

static ofile *ofile_ref(ofile *of)
{
    __atomic_add_fetch(&of->refs, 1, __ATOMIC_RELAXED);
    return of;
}

static void ofile_unref(ofile *of)
{
    if (__atomic_sub_fetch(&of->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        close(of->fd);
        free(of);
    }
}

typedef struct mem_ent {
    uint8_t id[CHUNK_ID_LEN];
    cbuf *b;                    /* one reference */
    lnode lru;                  /* c->mem_lru, most recent first */
    UT_hash_handle hh;          /* c->mem */
} mem_ent;

enum { DISK_UNVERIFIED, DISK_VERIFYING, DISK_VERIFIED };

typedef struct disk_ent {
    uint8_t id[CHUNK_ID_LEN];
    uint64_t len;               /* payload bytes */
    uint64_t gen;               /* unique per entry, see top comment */
    uint32_t crc;               /* payload CRC32C from the header */
    int state;                  /* DISK_* */
    int64_t atime_ns;           /* last access (realtime) */
    int64_t mtime_ns;           /* what the file's mtime holds */
    ofile *of;                  /* NULL, or one reference, on c->fd_lru */
    lnode lru;                  /* c->disk_lru, most recent first */
    lnode fdl;                  /* c->fd_lru while of != NULL */
    UT_hash_handle hh;          /* c->disk */
} disk_ent;

enum { JOB_WRITE, JOB_DELETE };

typedef struct job {
    uint8_t id[CHUNK_ID_LEN];
    int kind;                   /* JOB_* */
    int cancelled;              /* WRITE: ccache_drop while being written;
                                 * no longer in c->pending then */
    cbuf *b;                    /* WRITE: one reference */
    lnode q;                    /* c->queue until the writer takes it */
    UT_hash_handle hh;          /* WRITE: c->pending until finished */
} job;

struct ccache {
    /* Immutable after ccache_open. */
    int dirfd;                  /* -1 when there is no disk tier */
    int lockfd;                 /* holds flock(LOCK_EX) on DIR/lock */
    uint64_t disk_max, mem_max;
    unsigned queue_max, fd_max;
    int writer_started;
    pthread_t writer;

    pthread_mutex_t mu;         /* guards everything below up to the counters */
    pthread_cond_t work_cv;     /* writer: queue not empty or stopping */
    pthread_cond_t idle_cv;     /* finished advanced (ccache_flush) */
    pthread_cond_t verify_cv;   /* some entry left DISK_VERIFYING */

    mem_ent *mem;               /* (mu) memory index */
    lnode mem_lru;              /* (mu) */
    uint64_t mem_bytes, mem_items;          /* (mu) */

    disk_ent *disk;             /* (mu) disk index */
    lnode disk_lru;             /* (mu) */
    uint64_t disk_bytes, disk_items;        /* (mu) */
    uint64_t next_gen;          /* (mu) */
    lnode fd_lru;               /* (mu) entries with an open ofile */
    unsigned fd_open;           /* (mu) length of fd_lru */

    lnode queue;                /* (mu) jobs not yet taken by the writer */
    job *pending;               /* (mu) write jobs not finished, by id */
    unsigned queued_writes;     /* (mu) write jobs on queue */
    job *active;                /* (mu) job the writer is working on */
    uint64_t submitted, finished;           /* (mu) job counts, for flush */
    int stopping;               /* (mu) ccache_close asked the writer to end */
    int64_t persist_ns;         /* (mu) realtime of the last access-time pass */
    int64_t persist_ms;         /* (mu) monotonic time of that pass */

    int write_failing;          /* writer thread only: last write failed */

    /* Statistics, updated with atomics outside the lock. */
    uint64_t hits_mem, hits_disk, misses, disk_corrupt, disk_skipped;
};

static void stat_inc(uint64_t *p)
{
    __atomic_add_fetch(p, 1, __ATOMIC_RELAXED);
}

static uint64_t stat_get(uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* ---- file names and the header ---- */

static void rel_path(const uint8_t id[CHUNK_ID_LEN], int tmp, char out[REL_MAX])
{
    char hex[CHUNK_ID_HEX + 1];
    chunk_id_hex(id, hex);
    snprintf(out, REL_MAX, "%.2s/%s%s", hex, hex, tmp ? TMP_SUFFIX : "");
}

static void ccf_encode(const uint8_t id[CHUNK_ID_LEN], uint64_t len, uint32_t pcrc,
                       uint8_t out[CCF_HDR_LEN])
{
    memset(out, 0, CCF_HDR_LEN);
    memcpy(out, ccf_magic, sizeof ccf_magic);
    put_le16(out + OFF_VERSION, CCF_VERSION);
    put_le16(out + OFF_HDRLEN, CCF_HDR_LEN);
    put_le64(out + OFF_LEN, len);
    put_le32(out + OFF_PCRC, pcrc);
    memcpy(out + OFF_ID, id, CHUNK_ID_LEN);
    put_le32(out + OFF_HCRC, crc32c(out, OFF_HCRC));
}

/* Validate a header read from a file of file_len bytes named id. */
static int ccf_decode(const uint8_t in[CCF_HDR_LEN], uint64_t file_len,
                      const uint8_t id[CHUNK_ID_LEN], uint64_t *len, uint32_t *pcrc)
{
    if (memcmp(in, ccf_magic, sizeof ccf_magic) != 0)
        return CAIRN_ECORRUPT;
    if (get_le32(in + OFF_HCRC) != crc32c(in, OFF_HCRC))
        return CAIRN_ECORRUPT;
    if (get_le16(in + OFF_VERSION) != CCF_VERSION)
        return CAIRN_EBADVERSION;
    if (get_le16(in + OFF_HDRLEN) != CCF_HDR_LEN)
        return CAIRN_ECORRUPT;
    if (memcmp(in + OFF_ID, id, CHUNK_ID_LEN) != 0)
        return CAIRN_ECORRUPT;
    *len = get_le64(in + OFF_LEN);
    *pcrc = get_le32(in + OFF_PCRC);
    /* The bound keeps a damaged length from driving a huge allocation in
     * ccache_get; the exact file length catches truncation and appends. */
    if (*len > CBUF_MAX || file_len != CCF_HDR_LEN + *len)
        return CAIRN_ECORRUPT;
    return 0;
}

/* Open the file of an indexed entry for reading and check that it still
 * is a regular file of the indexed length. 0 with *out holding one
 * reference, -ENOENT, CAIRN_ECORRUPT or -errno. */
static int open_entry(ccache *c, const uint8_t id[CHUNK_ID_LEN], uint64_t len, ofile **out)
{
    char rel[REL_MAX];
    struct stat st;
    int fd;

    rel_path(id, 0, rel);
    /* O_NONBLOCK: something other than our regular file under this name
     * (a FIFO) must fail the type check below, not hang the open. */
    fd = openat(c->dirfd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return errno == ELOOP ? CAIRN_ECORRUPT : -errno;
    if (fstat(fd, &st) < 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != CCF_HDR_LEN + len) {
        close(fd);
        return CAIRN_ECORRUPT;
    }
    ofile *of = xmalloc(sizeof *of);
    of->fd = fd;
    of->refs = 1;
    *out = of;
    return 0;
}

/* Checksum the whole payload; 0 or CAIRN_ECORRUPT (a short file included)
 * or -errno. */
static int verify_fd(int fd, uint64_t len, uint32_t crc)
{
    uint8_t *tmp = xmalloc(VERIFY_BUF);
    uint32_t got = 0;
    uint64_t off = 0;
    int rc = 0;

    while (off < len) {
        size_t n = (size_t)MIN((uint64_t)VERIFY_BUF, len - off);
        rc = pread_full(fd, tmp, n, (off_t)(CCF_HDR_LEN + off));
        if (rc < 0)
            goto out;
        got = crc32c_update(got, tmp, n);
        off += n;
    }
    if (got != crc)
        rc = CAIRN_ECORRUPT;
out:
    free(tmp);
    /* pread_full reports a file shorter than its header says as -EIO. */
    return rc == -EIO ? CAIRN_ECORRUPT : rc;
}

/* ---- memory tier (c->mu held) ---- */

static mem_ent *mem_find_locked(ccache *c, const uint8_t id[CHUNK_ID_LEN])
{
    mem_ent *m;
    HASH_FIND(hh, c->mem, id, CHUNK_ID_LEN, m);
    return m;
}

/* Unindex m and park it on grave, to be freed by grave_free after the
 * mutex is released (dropping the last reference frees the chunk). */
static void mem_remove_locked(ccache *c, mem_ent *m, lnode *grave)
{
    HASH_DEL(c->mem, m);
    l_remove(&m->lru);
    c->mem_bytes -= m->b->len;
    c->mem_items--;
    l_push_back(grave, &m->lru);
}

static void grave_free(lnode *grave)
{
    while (!l_empty(grave)) {
        mem_ent *m = l_entry(grave->next, mem_ent, lru);
        l_remove(&m->lru);
        cbuf_unref(m->b);
        free(m);
    }
}

static void mem_insert_locked(ccache *c, const uint8_t id[CHUNK_ID_LEN], cbuf *b, lnode *grave)
{
    mem_ent *m = mem_find_locked(c, id);
    if (m) {
        l_move_front(&c->mem_lru, &m->lru);
        return;
    }
    if (c->mem_max == 0 || b->len > c->mem_max)
        return;
    while (c->mem_bytes + b->len > c->mem_max && !l_empty(&c->mem_lru))
        mem_remove_locked(c, l_entry(c->mem_lru.prev, mem_ent, lru), grave);
    m = xcalloc(1, sizeof *m);
    memcpy(m->id, id, CHUNK_ID_LEN);
    m->b = cbuf_ref(b);
    HASH_ADD(hh, c->mem, id, CHUNK_ID_LEN, m);
    l_push_front(&c->mem_lru, &m->lru);
    c->mem_bytes += b->len;
    c->mem_items++;
}

/* ---- disk tier index (c->mu held) ---- */

static disk_ent *disk_find_locked(ccache *c, const uint8_t id[CHUNK_ID_LEN])
{
    disk_ent *e;
    HASH_FIND(hh, c->disk, id, CHUNK_ID_LEN, e);
    return e;
}

static void disk_touch_locked(ccache *c, disk_ent *e)
{
    e->atime_ns = now_realtime_ns();
    l_move_front(&c->disk_lru, &e->lru);
}

static disk_ent *disk_add_locked(ccache *c, const uint8_t id[CHUNK_ID_LEN], uint64_t len,
                                 uint32_t crc, int state, int64_t mtime_ns)
{
    disk_ent *e = xcalloc(1, sizeof *e);
    memcpy(e->id, id, CHUNK_ID_LEN);
    e->len = len;
    e->crc = crc;
    e->state = state;
    e->gen = ++c->next_gen;
    e->atime_ns = e->mtime_ns = mtime_ns;
    l_init(&e->lru);
    l_init(&e->fdl);
    HASH_ADD(hh, c->disk, id, CHUNK_ID_LEN, e);
    c->disk_bytes += len;
    c->disk_items++;
    return e;
}

/* Forget e's cached descriptor; a reader still using it keeps it open. */
static void fd_detach_locked(ccache *c, disk_ent *e)
{
    if (!e->of)
        return;
    l_remove(&e->fdl);
    c->fd_open--;
    ofile_unref(e->of);
    e->of = NULL;
}

/* A new reference to e's cached descriptor, or NULL if it has none. */
static ofile *fd_get_locked(ccache *c, disk_ent *e)
{
    if (!e->of)
        return NULL;
    l_move_front(&c->fd_lru, &e->fdl);
    return ofile_ref(e->of);
}

static void fd_install_locked(ccache *c, disk_ent *e, ofile *of)
{
    e->of = ofile_ref(of);
    l_push_front(&c->fd_lru, &e->fdl);
    c->fd_open++;
    while (c->fd_open > c->fd_max)
        fd_detach_locked(c, l_entry(c->fd_lru.prev, disk_ent, fdl));
}

static void disk_unindex_locked(ccache *c, disk_ent *e)
{
    fd_detach_locked(c, e);
    HASH_DEL(c->disk, e);
    l_remove(&e->lru);
    c->disk_bytes -= e->len;
    c->disk_items--;
    free(e);
}

static void enqueue_locked(ccache *c, job *j)
{
    l_push_back(&c->queue, &j->q);
    c->submitted++;
    pthread_cond_signal(&c->work_cv);
}

/* Unindex e now and have the writer unlink its file in queue order. */
static void disk_delete_locked(ccache *c, disk_ent *e)
{
    job *j = xcalloc(1, sizeof *j);
    memcpy(j->id, e->id, CHUNK_ID_LEN);
    j->kind = JOB_DELETE;
    disk_unindex_locked(c, e);
    enqueue_locked(c, j);
}

/* A reader could not use the file of entry e (NULL when the entry it saw is
 * no longer indexed). -ENOENT: the file vanished behind our back, forget
 * it. -ENOMEM: nothing is wrong with the file. Anything else: the file is
 * damaged or unreadable, delete it. */
static void disk_failed_locked(ccache *c, disk_ent *e, int rc)
{
    if (!e || rc == -ENOMEM)
        return;
    if (rc == -ENOENT) {
        disk_unindex_locked(c, e);
        return;
    }
    stat_inc(&c->disk_corrupt);
    disk_delete_locked(c, e);
}

/* The entry for id if it still is the one with generation gen. */
static disk_ent *disk_same_locked(ccache *c, const uint8_t id[CHUNK_ID_LEN], uint64_t gen)
{
    disk_ent *e = disk_find_locked(c, id);
    return e && e->gen == gen ? e : NULL;
}

static job *pending_find_locked(ccache *c, const uint8_t id[CHUNK_ID_LEN])
{
    job *j;
    HASH_FIND(hh, c->pending, id, CHUNK_ID_LEN, j);
    return j;
}

/* ---- writer thread ---- */

/* Write one chunk file under its temp name and rename it into place. */
static int write_chunk_file(ccache *c, const uint8_t id[CHUNK_ID_LEN], const cbuf *b,
                            uint32_t *crc)
{
    char tmp[REL_MAX], rel[REL_MAX];
    uint8_t hdr[CCF_HDR_LEN];
    int fd, rc;

    rel_path(id, 1, tmp);
    rel_path(id, 0, rel);
    *crc = crc32c(b->data, b->len);
    ccf_encode(id, b->len, *crc, hdr);

    fd = openat(c->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno == ENOENT) {
        char sub[3] = {rel[0], rel[1], '\0'};
        if (mkdirat(c->dirfd, sub, 0700) < 0 && errno != EEXIST)
            return -errno;
        fd = openat(c->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    }
    if (fd < 0)
        return -errno;
    rc = write_full(fd, hdr, sizeof hdr);
    if (rc == 0)
        rc = write_full(fd, b->data, b->len);
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && renameat(c->dirfd, tmp, c->dirfd, rel) < 0)
        rc = -errno;
    if (rc < 0)
        unlinkat(c->dirfd, tmp, 0);
    return rc;
}

static void unlink_chunk(ccache *c, const uint8_t id[CHUNK_ID_LEN])
{
    char rel[REL_MAX];
    rel_path(id, 0, rel);
    unlinkat(c->dirfd, rel, 0);
}

/* Process one write job (c->mu held on entry and exit, dropped for I/O). */
static void writer_write_locked(ccache *c, job *j)
{
    uint8_t (*victims)[CHUNK_ID_LEN] = NULL;
    size_t nvictims = 0, cap = 0;
    uint64_t len = j->b->len;
    uint32_t crc;
    int rc;

    if (j->cancelled || disk_find_locked(c, j->id))
        goto finish;
    if (len > c->disk_max) {
        stat_inc(&c->disk_skipped);
        goto finish;
    }
    /* Make room first, so the tier stays within disk_max even while the
     * new file is being written. */
    while (c->disk_bytes + len > c->disk_max && !l_empty(&c->disk_lru)) {
        disk_ent *v = l_entry(c->disk_lru.prev, disk_ent, lru);
        if (nvictims == cap) {
            cap = cap ? cap * 2 : 8;
            victims = xrealloc(victims, cap * sizeof *victims);
        }
        memcpy(victims[nvictims++], v->id, CHUNK_ID_LEN);
        disk_unindex_locked(c, v);
    }
    pthread_mutex_unlock(&c->mu);

    for (size_t i = 0; i < nvictims; i++)
        unlink_chunk(c, victims[i]);
    rc = write_chunk_file(c, j->id, j->b, &crc);
    if (rc < 0 && !c->write_failing)
        log_warn("chunk cache: disk write failed: %s", cairn_strerror(rc));
    c->write_failing = rc < 0;

    pthread_mutex_lock(&c->mu);
    if (rc < 0) {
        stat_inc(&c->disk_skipped);
    } else if (j->cancelled) {
        pthread_mutex_unlock(&c->mu);
        unlink_chunk(c, j->id);
        pthread_mutex_lock(&c->mu);
    } else {
        disk_ent *e = disk_add_locked(c, j->id, len, crc, DISK_VERIFIED, now_realtime_ns());
        l_push_front(&c->disk_lru, &e->lru);
    }
finish:
    free(victims);
}

/* Write access times back as mtimes (see the top comment). all: at close,
 * every accessed file regardless of how recent its mtime is. Drops c->mu
 * while it calls utimensat. */
static void persist_atimes_locked(ccache *c, int all)
{
    struct upd {
        uint8_t id[CHUNK_ID_LEN];
        int64_t t;
    } *u = NULL;
    size_t n = 0, cap = 0;
    int64_t since = c->persist_ns;

    c->persist_ns = now_realtime_ns();
    c->persist_ms = now_mono_ms();
    /* The list is in access order, so the walk stops at the first entry
     * not accessed since the previous pass. */
    for (lnode *p = c->disk_lru.next; p != &c->disk_lru; p = p->next) {
        disk_ent *e = l_entry(p, disk_ent, lru);
        if (e->atime_ns <= since)
            break;
        if (e->atime_ns <= e->mtime_ns || (!all && e->atime_ns - e->mtime_ns < PERSIST_NS))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            u = xrealloc(u, cap * sizeof *u);
        }
        memcpy(u[n].id, e->id, CHUNK_ID_LEN);
        u[n++].t = e->atime_ns;
        e->mtime_ns = e->atime_ns;
    }
    if (n == 0)
        return;
    pthread_mutex_unlock(&c->mu);
    for (size_t i = 0; i < n; i++) {
        char rel[REL_MAX];
        struct timespec ts[2];
        ts[0].tv_sec = u[i].t / 1000000000;
        ts[0].tv_nsec = u[i].t % 1000000000;
        ts[1] = ts[0];
        rel_path(u[i].id, 0, rel);
        /* ENOENT: evicted meanwhile, nothing to keep in order. */
        utimensat(c->dirfd, rel, ts, AT_SYMLINK_NOFOLLOW);
    }
    free(u);
    pthread_mutex_lock(&c->mu);
}

static void *writer_main(void *arg)
{
    ccache *c = arg;

    pthread_mutex_lock(&c->mu);
    for (;;) {
        if (now_mono_ms() - c->persist_ms >= PERSIST_MS)
            persist_atimes_locked(c, 0);
        if (l_empty(&c->queue)) {
            if (c->stopping)
                break;
            int64_t due = c->persist_ms + PERSIST_MS;
            struct timespec ts = {.tv_sec = due / 1000, .tv_nsec = (due % 1000) * 1000000};
            pthread_cond_timedwait(&c->work_cv, &c->mu, &ts);
            continue;
        }
        job *j = l_entry(c->queue.next, job, q);
        l_remove(&j->q);
        c->active = j;
        if (j->kind == JOB_WRITE) {
            c->queued_writes--;
            writer_write_locked(c, j);
            if (!j->cancelled)
                HASH_DEL(c->pending, j);
        } else {
            pthread_mutex_unlock(&c->mu);
            unlink_chunk(c, j->id);
            pthread_mutex_lock(&c->mu);
        }
        c->active = NULL;
        c->finished++;
        pthread_cond_broadcast(&c->idle_cv);
        pthread_mutex_unlock(&c->mu);
        /* Outside the lock: this may free a chunk-sized buffer. */
        cbuf_unref(j->b);
        free(j);
        pthread_mutex_lock(&c->mu);
    }
    persist_atimes_locked(c, 1);
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* ---- open: index the existing files ---- */

static int is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* Index one file of subdirectory sub (open as subfd); removes temp files
 * and damaged chunk files, leaves names that are not ours alone. */
static void scan_file(ccache *c, int subfd, const char *sub, const char *name)
{
    size_t nl = strlen(name);
    uint8_t id[CHUNK_ID_LEN], hdr[CCF_HDR_LEN];
    uint64_t len = 0;
    uint32_t crc = 0;
    struct stat st;
    int fd, rc;

    if (nl == CHUNK_ID_HEX + strlen(TMP_SUFFIX) && is_lower_hex(name, CHUNK_ID_HEX) &&
        strcmp(name + CHUNK_ID_HEX, TMP_SUFFIX) == 0) {
        /* A write interrupted by a crash or unmount. */
        unlinkat(subfd, name, 0);
        return;
    }
    if (nl != CHUNK_ID_HEX || !is_lower_hex(name, nl) || memcmp(name, sub, 2) != 0 ||
        hex_decode(name, CHUNK_ID_HEX, id, CHUNK_ID_LEN) < 0)
        return;

    fd = openat(subfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) {
        rc = errno == ELOOP ? CAIRN_ECORRUPT : -errno;
        if (rc != CAIRN_ECORRUPT) {
            log_warn("chunk cache: cannot open %s/%s: %s", sub, name, cairn_strerror(rc));
            return;
        }
        goto bad;
    }
    rc = fstat(fd, &st) < 0 ? -errno : 0;
    if (rc == 0 && !S_ISREG(st.st_mode))
        rc = CAIRN_ECORRUPT;
    if (rc == 0 && st.st_size < CCF_HDR_LEN)
        rc = CAIRN_ECORRUPT;
    if (rc == 0)
        rc = pread_full(fd, hdr, sizeof hdr, 0);
    if (rc == 0)
        rc = ccf_decode(hdr, (uint64_t)st.st_size, id, &len, &crc);
    close(fd);
    if (rc < 0 && rc != CAIRN_ECORRUPT && rc != CAIRN_EBADVERSION) {
        log_warn("chunk cache: cannot read %s/%s: %s", sub, name, cairn_strerror(rc));
        return;
    }
    if (rc < 0)
        goto bad;
    if (disk_find_locked(c, id))
        return;
    disk_add_locked(c, id, len, crc, DISK_UNVERIFIED,
                    (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec);
    return;
bad:
    /* A file from a format we do not read is as useless as a damaged one;
     * only damage counts as corrupt. */
    if (rc == CAIRN_ECORRUPT)
        stat_inc(&c->disk_corrupt);
    unlinkat(subfd, name, 0);
}

static int cmp_mtime_desc(const void *a, const void *b)
{
    const disk_ent *x = *(disk_ent *const *)a, *y = *(disk_ent *const *)b;
    if (x->mtime_ns != y->mtime_ns)
        return x->mtime_ns > y->mtime_ns ? -1 : 1;
    return memcmp(x->id, y->id, CHUNK_ID_LEN);
}

/* Index every chunk file, order the LRU by mtime, trim to disk_max. Runs
 * before the writer thread exists; the mutex is taken only because the
 * helpers expect it. */
static int scan_dir(ccache *c)
{
    DIR *d = NULL;
    struct dirent *de;
    disk_ent **all = NULL, *e, *tmp;
    size_t n = 0;
    int dfd, rc = 0;

    dfd = dup(c->dirfd);
    if (dfd < 0)
        return -errno;
    d = fdopendir(dfd);
    if (!d) {
        rc = -errno;
        close(dfd);
        return rc;
    }
    pthread_mutex_lock(&c->mu);
    while ((de = readdir(d)) != NULL) {
        if (strlen(de->d_name) != 2 || !is_lower_hex(de->d_name, 2))
            continue;
        int subfd = openat(c->dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (subfd < 0)
            continue;
        DIR *sd = fdopendir(subfd);
        if (!sd) {
            close(subfd);
            continue;
        }
        struct dirent *fe;
        while ((fe = readdir(sd)) != NULL)
            if (fe->d_name[0] != '.')
                scan_file(c, subfd, de->d_name, fe->d_name);
        closedir(sd);
    }
    closedir(d);

    all = xmalloc((c->disk_items ? c->disk_items : 1) * sizeof *all);
    HASH_ITER(hh, c->disk, e, tmp)
        all[n++] = e;
    qsort(all, n, sizeof *all, cmp_mtime_desc);
    for (size_t i = 0; i < n; i++)
        l_push_back(&c->disk_lru, &all[i]->lru);
    free(all);

    while (c->disk_bytes > c->disk_max) {
        e = l_entry(c->disk_lru.prev, disk_ent, lru);
        unlink_chunk(c, e->id);
        disk_unindex_locked(c, e);
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

/* ---- public API ---- */

int ccache_open(const ccache_config *cfg, ccache **out)
{
    ccache *c = xcalloc(1, sizeof *c);
    int rc;

    c->dirfd = c->lockfd = -1;
    c->disk_max = cfg->disk_max;
    c->mem_max = cfg->mem_max;
    c->queue_max = cfg->queue_max ? cfg->queue_max : DEFAULT_QUEUE_MAX;
    c->fd_max = cfg->fd_max ? cfg->fd_max : DEFAULT_FD_MAX;
    pthread_mutex_init(&c->mu, NULL);
    cond_init_mono(&c->work_cv);
    pthread_cond_init(&c->idle_cv, NULL);
    pthread_cond_init(&c->verify_cv, NULL);
    l_init(&c->mem_lru);
    l_init(&c->disk_lru);
    l_init(&c->fd_lru);
    l_init(&c->queue);
    c->persist_ns = now_realtime_ns();
    c->persist_ms = now_mono_ms();

    if (cfg->dir && cfg->dir[0]) {
        rc = mkdir_p(cfg->dir, 0700);
        if (rc < 0)
            goto fail;
        c->dirfd = open(cfg->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (c->dirfd < 0) {
            rc = -errno;
            goto fail;
        }
        /* Two caches on one directory would evict each other's files and
         * both write the same temp names. */
        c->lockfd = openat(c->dirfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (c->lockfd < 0) {
            rc = -errno;
            goto fail;
        }
        if (flock(c->lockfd, LOCK_EX | LOCK_NB) < 0) {
            rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
            goto fail;
        }
        rc = scan_dir(c);
        if (rc < 0)
            goto fail;
        rc = -pthread_create(&c->writer, NULL, writer_main, c);
        if (rc < 0)
            goto fail;
        c->writer_started = 1;
    }
    *out = c;
    return 0;

fail:
    ccache_close(c);
    return rc;
}

void ccache_close(ccache *c)
{
    mem_ent *m, *mt;
    disk_ent *e, *et;

    if (!c)
        return;
    if (c->writer_started) {
        pthread_mutex_lock(&c->mu);
        c->stopping = 1;
        pthread_cond_signal(&c->work_cv);
        pthread_mutex_unlock(&c->mu);
        pthread_join(c->writer, NULL);
    }
    HASH_ITER(hh, c->mem, m, mt) {
        HASH_DEL(c->mem, m);
        cbuf_unref(m->b);
        free(m);
    }
    HASH_ITER(hh, c->disk, e, et)
        disk_unindex_locked(c, e);
    if (c->lockfd >= 0)
        close(c->lockfd);
    if (c->dirfd >= 0)
        close(c->dirfd);
    pthread_cond_destroy(&c->verify_cv);
    pthread_cond_destroy(&c->idle_cv);
    pthread_cond_destroy(&c->work_cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

void ccache_flush(ccache *c)
{
    pthread_mutex_lock(&c->mu);
    uint64_t target = c->submitted;
    while (c->finished < target)
        pthread_cond_wait(&c->idle_cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
}

/* A memory-tier hit (memory index or a write still queued): a new
 * reference, or NULL. Touches both tiers' LRU. */
static cbuf *mem_lookup_locked(ccache *c, const uint8_t id[CHUNK_ID_LEN])
{
    mem_ent *m = mem_find_locked(c, id);
    cbuf *b = NULL;
    if (m) {
        l_move_front(&c->mem_lru, &m->lru);
        b = cbuf_ref(m->b);
    } else {
        job *j = pending_find_locked(c, id);
        if (j)
            b = cbuf_ref(j->b);
    }
    if (b) {
        /* A chunk hot in memory is worth keeping on disk for the next
         * mount, so memory hits count as disk accesses too. */
        disk_ent *e = disk_find_locked(c, id);
        if (e)
            disk_touch_locked(c, e);
    }
    return b;
}

cbuf *ccache_get(ccache *c, const uint8_t id[CHUNK_ID_LEN])
{
    lnode grave;
    ofile *of;
    cbuf *b;
    disk_ent *e;
    uint64_t gen, len;
    uint32_t crc;
    int rc = 0;

    l_init(&grave);
    pthread_mutex_lock(&c->mu);
    b = mem_lookup_locked(c, id);
    if (b) {
        pthread_mutex_unlock(&c->mu);
        stat_inc(&c->hits_mem);
        return b;
    }
    e = disk_find_locked(c, id);
    if (!e) {
        pthread_mutex_unlock(&c->mu);
        stat_inc(&c->misses);
        return NULL;
    }
    gen = e->gen;
    len = e->len;
    crc = e->crc;
    of = fd_get_locked(c, e);
    disk_touch_locked(c, e);
    pthread_mutex_unlock(&c->mu);

    /* The whole payload is read anyway, so it is checksummed every time,
     * not only on first use: that costs little next to the read. */
    if (!of)
        rc = open_entry(c, id, len, &of);
    if (rc == 0) {
        b = cbuf_new(len);
        rc = b ? pread_full(of->fd, b->data, len, CCF_HDR_LEN) : -ENOMEM;
        if (rc == -EIO)
            rc = CAIRN_ECORRUPT;
        if (rc == 0 && crc32c(b->data, len) != crc)
            rc = CAIRN_ECORRUPT;
        if (rc == 0)
            b->len = len;
    }
    if (of)
        ofile_unref(of);

    pthread_mutex_lock(&c->mu);
    e = disk_same_locked(c, id, gen);
    if (rc == 0) {
        if (e && e->state == DISK_UNVERIFIED)
            e->state = DISK_VERIFIED;
        mem_insert_locked(c, id, b, &grave);
    } else {
        disk_failed_locked(c, e, rc);
    }
    pthread_mutex_unlock(&c->mu);
    grave_free(&grave);

    if (rc < 0) {
        cbuf_unref(b);
        stat_inc(&c->misses);
        return NULL;
    }
    stat_inc(&c->hits_disk);
    return b;
}

static size_t span(uint64_t size, uint64_t off, size_t len)
{
    if (off >= size)
        return 0;
    return (size_t)MIN((uint64_t)len, size - off);
}

long ccache_read(ccache *c, const uint8_t id[CHUNK_ID_LEN], uint64_t off, void *dst, size_t len)
{
    ofile *of;
    cbuf *b;
    disk_ent *e;
    uint64_t gen, size;
    uint32_t crc;
    size_t n = 0;
    int verify, opened = 0, rc = 0;

    pthread_mutex_lock(&c->mu);
    b = mem_lookup_locked(c, id);
    if (b) {
        pthread_mutex_unlock(&c->mu);
        n = span(b->len, off, len);
        if (n)
            memcpy(dst, b->data + off, n);
        cbuf_unref(b);
        stat_inc(&c->hits_mem);
        return (long)n;
    }
    e = disk_find_locked(c, id);
    while (e && e->state == DISK_VERIFYING) {
        pthread_cond_wait(&c->verify_cv, &c->mu);
        e = disk_find_locked(c, id);
    }
    if (!e) {
        pthread_mutex_unlock(&c->mu);
        stat_inc(&c->misses);
        return -ENOENT;
    }
    gen = e->gen;
    size = e->len;
    crc = e->crc;
    verify = e->state == DISK_UNVERIFIED;
    if (verify)
        e->state = DISK_VERIFYING;
    of = fd_get_locked(c, e);
    disk_touch_locked(c, e);
    pthread_mutex_unlock(&c->mu);

    if (!of) {
        rc = open_entry(c, id, size, &of);
        opened = rc == 0;
    }
    if (rc == 0 && verify)
        rc = verify_fd(of->fd, size, crc);

    if (verify || opened) {
        pthread_mutex_lock(&c->mu);
        e = disk_same_locked(c, id, gen);
        if (e && verify)
            e->state = rc == 0 ? DISK_VERIFIED : DISK_UNVERIFIED;
        if (rc == 0 && opened && e && !e->of)
            fd_install_locked(c, e, of);
        if (rc < 0)
            disk_failed_locked(c, e, rc);
        if (verify)
            pthread_cond_broadcast(&c->verify_cv);
        pthread_mutex_unlock(&c->mu);
    }

    if (rc == 0) {
        /* Even when the entry was evicted meanwhile the descriptor still
         * reads the verified (now unlinked) file, so the hit stands. */
        n = span(size, off, len);
        if (n)
            rc = pread_full(of->fd, dst, n, (off_t)(CCF_HDR_LEN + off));
        if (rc < 0) {
            /* Verified earlier but now short or unreadable. */
            if (rc == -EIO)
                rc = CAIRN_ECORRUPT;
            pthread_mutex_lock(&c->mu);
            disk_failed_locked(c, disk_same_locked(c, id, gen), rc);
            pthread_mutex_unlock(&c->mu);
        }
    }
    if (of)
        ofile_unref(of);
    if (rc < 0) {
        stat_inc(&c->misses);
        return -ENOENT;
    }
    stat_inc(&c->hits_disk);
    return (long)n;
}

int ccache_has(ccache *c, const uint8_t id[CHUNK_ID_LEN])
{
    pthread_mutex_lock(&c->mu);
    int has = mem_find_locked(c, id) || pending_find_locked(c, id) || disk_find_locked(c, id);
    pthread_mutex_unlock(&c->mu);
    return has;
}

void ccache_put(ccache *c, const uint8_t id[CHUNK_ID_LEN], cbuf *b, int to_disk)
{
    lnode grave;

    l_init(&grave);
    pthread_mutex_lock(&c->mu);
    mem_insert_locked(c, id, b, &grave);
    if (to_disk && c->dirfd >= 0 && !disk_find_locked(c, id) && !pending_find_locked(c, id)) {
        if (b->len > c->disk_max || c->queued_writes >= c->queue_max) {
            stat_inc(&c->disk_skipped);
        } else {
            job *j = xcalloc(1, sizeof *j);
            memcpy(j->id, id, CHUNK_ID_LEN);
            j->kind = JOB_WRITE;
            j->b = cbuf_ref(b);
            HASH_ADD(hh, c->pending, id, CHUNK_ID_LEN, j);
            c->queued_writes++;
            enqueue_locked(c, j);
        }
    }
    pthread_mutex_unlock(&c->mu);
    grave_free(&grave);
}

void ccache_drop(ccache *c, const uint8_t id[CHUNK_ID_LEN])
{
    lnode grave;
    job *j, *unqueued = NULL;
    mem_ent *m;
    disk_ent *e;

    l_init(&grave);
    pthread_mutex_lock(&c->mu);
    m = mem_find_locked(c, id);
    if (m)
        mem_remove_locked(c, m, &grave);
    j = pending_find_locked(c, id);
    if (j && j == c->active) {
        /* The writer unlinks the file when it is done; out of the pending
         * index now, so that a later put queues a new write behind it. */
        j->cancelled = 1;
        HASH_DEL(c->pending, j);
    } else if (j) {
        l_remove(&j->q);
        HASH_DEL(c->pending, j);
        c->queued_writes--;
        c->finished++;
        pthread_cond_broadcast(&c->idle_cv);
        unqueued = j;
    }
    e = disk_find_locked(c, id);
    if (e)
        disk_delete_locked(c, e);
    pthread_mutex_unlock(&c->mu);
    grave_free(&grave);
    if (unqueued) {
        cbuf_unref(unqueued->b);
        free(unqueued);
    }
}

void ccache_get_stats(ccache *c, ccache_stats *out)
{
    pthread_mutex_lock(&c->mu);
    out->mem_bytes = c->mem_bytes;
    out->mem_items = c->mem_items;
    out->disk_bytes = c->disk_bytes;
    out->disk_items = c->disk_items;
    pthread_mutex_unlock(&c->mu);
    out->hits_mem = stat_get(&c->hits_mem);
    out->hits_disk = stat_get(&c->hits_disk);
    out->misses = stat_get(&c->misses);
    out->disk_corrupt = stat_get(&c->disk_corrupt);
    out->disk_skipped = stat_get(&c->disk_skipped);
}
