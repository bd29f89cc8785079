/*
 * wal.c — write-ahead log: segment files, the group-commit flusher and
 * recovery. The contract is in wal.h.
 *
 * Threads and locks:
 *   - Request threads call wal_append/wal_wait/wal_rotate; they take mu only
 *     for memory work (copying a frame, reading counters, waiting).
 *   - One batch is written at a time (flushing, under mu): the thread
 *     writing it takes the whole pending buffer under mu, drops mu, writes
 *     it with one pwrite and makes it durable with one fdatasync, then
 *     publishes durable_lsn under mu. That thread is a request thread in
 *     wal_wait when no batch is being written (it writes its own record and
 *     whatever else is pending), otherwise the flusher thread, which also
 *     carries out rotations and writes records nobody waits for.
 *   - seg_mu guards the list of segments (the batch writer adds,
 *     wal_truncate_before removes). mu and seg_mu are never held together,
 *     and neither is held across a write, fdatasync, rename or unlink.
 */
#include "server/meta/wal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/util.h"

#define WAL_MAGIC "CAIRNWAL"
#define WAL_VERSION 1u
#define WAL_HDR_LEN 32u          /* segment header */
#define WAL_HDR_CRC_LEN 24u      /* header bytes covered by its CRC */
#define FRAME_HDR 16u            /* u32 len | u32 crc | u64 lsn */
#define SEG_NAME_LEN 24          /* "wal-" + 16 hex + ".log" */
#define SEG_NAME_MAX 40
#define RD_WINDOW (1u << 20)     /* recovery read window */
#define SPARE_KEEP (4u << 20)    /* batch buffer capacity kept between batches */
#define DEFAULT_SEGMENT_MAX (256ull << 20)
#define DEFAULT_MAX_PENDING (64ull << 20)
#define NO_CUT SIZE_MAX
/* The segment being written is extended with zeros this much at a time:
 * a sync then only has to flush data, not the file's growing size. */
#define PREALLOC_STEP (1u << 20)
/* The flusher looks for pending records this often when nothing woke it. */
#define DEFAULT_IDLE_CHECK_MS 1000u

struct wal {
    /* Set by wal_open, read-only afterwards. */
    char *dir;
    int dirfd;                  /* flock'ed; fsync'd after creating/deleting segments */
    uint64_t segment_max;
    uint64_t max_pending;
    int no_sync;
    uint32_t idle_check_ms;
    pthread_t flusher;

    /* The thread writing a batch only (flushing set; wal_open/wal_close
     * while the flusher is not running). */
    int fd;                     /* segment being written, or -1 after a failure */
    uint64_t seg_first;         /* its first lsn (its name) */
    uint64_t seg_size;          /* its length in bytes, header included */
    uint64_t seg_alloc;         /* its file size: seg_size and zeros after it */
    int prealloc_off;           /* extending failed (a full disk): not in this segment */
    int seg_dirty;              /* written since its last fdatasync */
    buf inflight;               /* the batch being written */

    /* mu guards everything in this block. */
    pthread_mutex_t mu;
    pthread_cond_t work_cv;     /* flusher: pending bytes, a rotation, or stop */
    pthread_cond_t durable_cv;  /* wal_wait: durable_lsn moved or the WAL failed */
    pthread_cond_t space_cv;    /* wal_append/wal_rotate: the flusher took pending */
    buf pending;                /* encoded frames not yet taken by the flusher */
    uint64_t next_lsn;          /* lsn the next wal_append gets */
    uint64_t durable_lsn;       /* every lsn <= this is on disk */
    uint64_t seg_start_lsn;     /* first lsn of the newest segment, counting a requested rotation */
    size_t cut_off;             /* requested rotation: offset into pending, or NO_CUT */
    uint64_t cut_lsn;           /* first lsn of the segment the rotation starts */
    uint64_t rotations_asked;   /* wal_rotate calls that requested a new segment */
    uint64_t rotations_done;    /* ... of which the flusher has carried out */
    int failed;
    int stopping;
    int flushing;               /* a batch is being written (flush_round) */
    int fault_write, fault_sync; /* wal_inject_fault, one-shot */
    wal_stats stats;

    /* seg_mu guards the segment list: first lsns, oldest first; the last
     * entry is the segment being written. */
    pthread_mutex_t seg_mu;
    uint64_t *segs;
    size_t nsegs, segs_cap;
};

/* ---- names and small helpers ------------------------------------------ */

static void seg_name(char out[SEG_NAME_MAX], uint64_t first_lsn, int tmp)
{
    snprintf(out, SEG_NAME_MAX, "wal-%016" PRIx64 ".log%s", first_lsn, tmp ? ".tmp" : "");
}

/* Strict parse of "wal-<16 lowercase hex>.log", so that one lsn has exactly
 * one possible file name. */
static int seg_name_parse(const char *s, uint64_t *lsn)
{
    uint64_t v = 0;

    if (strlen(s) != SEG_NAME_LEN || memcmp(s, "wal-", 4) != 0 || strcmp(s + 20, ".log") != 0)
        return -EINVAL;
    for (int i = 4; i < 20; i++) {
        char c = s[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else
            return -EINVAL;
        v = v << 4 | d;
    }
    if (v == 0)
        return -EINVAL;
    *lsn = v;
    return 0;
}

static int is_tmp_name(const char *s)
{
    size_t n = strlen(s);
    return n > 8 && memcmp(s, "wal-", 4) == 0 && strcmp(s + n - 8, ".log.tmp") == 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void segs_push(wal *w, uint64_t first_lsn)
{
    if (w->nsegs == w->segs_cap) {
        w->segs_cap = w->segs_cap ? w->segs_cap * 2 : 16;
        w->segs = xrealloc(w->segs, w->segs_cap * sizeof(*w->segs));
    }
    w->segs[w->nsegs++] = first_lsn;
}

static void encode_seg_header(uint8_t h[WAL_HDR_LEN], uint64_t first_lsn)
{
    memset(h, 0, WAL_HDR_LEN);
    memcpy(h, WAL_MAGIC, 8);
    put_le32(h + 8, WAL_VERSION);
    put_le64(h + 16, first_lsn);
    put_le32(h + 24, crc32c(h, WAL_HDR_CRC_LEN));
}

static int dir_sync(wal *w)
{
    if (w->no_sync)
        return 0;
    return fsync(w->dirfd) < 0 ? -errno : 0;
}

/* mkdir -p dir; when dir itself is new, fsync its parent so the directory
 * (and so everything synced inside it) survives a crash. Ancestors created
 * along the way are the deployment's business (they normally exist). */
static int ensure_dir(const char *dir, int no_sync)
{
    struct stat st;
    char *parent;
    const char *slash;
    int rc;

    if (stat(dir, &st) == 0)
        return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
    if (errno != ENOENT)
        return -errno;
    rc = mkdir_p(dir, 0755);
    if (rc < 0 || no_sync)
        return rc;
    slash = strrchr(dir, '/');
    while (slash && slash > dir && slash[1] == '\0')
        slash = memrchr(dir, '/', (size_t)(slash - dir));
    if (!slash)
        parent = xstrdup(".");
    else if (slash == dir)
        parent = xstrdup("/");
    else
        parent = xstrndup(dir, (size_t)(slash - dir));
    rc = fsync_dir(parent);
    free(parent);
    return rc;
}

/* ---- the flusher ---------------------------------------------------- */

/* One-shot injected faults and the I/O counters of one batch. */
typedef struct flush_io {
    int fault_write, fault_sync;
    uint64_t syncs;
    int64_t sync_ns;
    uint64_t rotated_at;        /* first lsn of a segment this batch created, or 0 */
} flush_io;

static int do_sync(wal *w, int fd, flush_io *io)
{
    int64_t t0;
    int rc = 0;

    if (io->fault_sync) {
        rc = io->fault_sync;
        io->fault_sync = 0;
        return rc;
    }
    if (w->no_sync)
        return 0;
    t0 = now_mono_ns();
    if (fdatasync(fd) < 0)
        rc = -errno;
    io->sync_ns += now_mono_ns() - t0;
    io->syncs++;
    return rc;
}

/* Create segment first_lsn with its header: written to a .tmp name, synced,
 * renamed (never over an existing file), directory synced. A crash leaves
 * either no segment or a segment with a whole header. */
static int seg_create(wal *w, uint64_t first_lsn, int *fd_out, flush_io *io)
{
    char tmp[SEG_NAME_MAX], name[SEG_NAME_MAX];
    uint8_t h[WAL_HDR_LEN];
    int fd, rc;

    seg_name(tmp, first_lsn, 1);
    seg_name(name, first_lsn, 0);
    fd = openat(w->dirfd, tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = -errno;
        goto fail;
    }
    encode_seg_header(h, first_lsn);
    rc = pwrite_full(fd, h, sizeof(h), 0);
    if (rc < 0)
        goto fail_unlink;
    rc = do_sync(w, fd, io);
    if (rc < 0)
        goto fail_unlink;
    if (renameat2(w->dirfd, tmp, w->dirfd, name, RENAME_NOREPLACE) < 0) {
        rc = -errno;
        goto fail_unlink;
    }
    rc = dir_sync(w);
    if (rc < 0) {
        /* The segment exists but its name may not survive a crash; the
         * caller fails the WAL, so nothing is acknowledged from it. */
        close(fd);
        goto fail;
    }
    *fd_out = fd;
    return 0;

fail_unlink:
    close(fd);
    unlinkat(w->dirfd, tmp, 0);
fail:
    log_error("wal: cannot create segment %s/%s: %s", w->dir, name, cairn_strerror(rc));
    return rc;
}

static int seg_trim(wal *w, flush_io *io);

/* Flusher: end the current segment (synced first, so only the newest
 * segment can ever have a torn tail) and start one at first_lsn. */
static int seg_switch(wal *w, uint64_t first_lsn, flush_io *io)
{
    int fd, rc;

    if (w->seg_dirty) {
        rc = do_sync(w, w->fd, io);
        if (rc < 0)
            return rc;
        w->seg_dirty = 0;
    }
    /* Only the newest segment may end in zeros. */
    rc = seg_trim(w, io);
    if (rc < 0)
        return rc;
    rc = seg_create(w, first_lsn, &fd, io);
    if (rc < 0)
        return rc;
    close(w->fd);
    w->fd = fd;
    w->seg_first = first_lsn;
    w->seg_size = WAL_HDR_LEN;
    w->seg_alloc = WAL_HDR_LEN;
    w->prealloc_off = 0;
    io->rotated_at = first_lsn;

    pthread_mutex_lock(&w->seg_mu);
    segs_push(w, first_lsn);
    pthread_mutex_unlock(&w->seg_mu);
    return 0;
}

/* Zeros up to a whole step past end, so that the file need not grow with
 * each batch. Recovery reads zeros after the last frame as the end of the
 * log; a segment is cut back to its frames before the next one begins. */
static void seg_reserve(wal *w, uint64_t end)
{
    static const uint8_t zeros[64 << 10];

    if (w->no_sync || w->prealloc_off || end <= w->seg_alloc)
        return;
    uint64_t want = (end + PREALLOC_STEP - 1) / PREALLOC_STEP * PREALLOC_STEP;
    uint64_t off = MAX(w->seg_alloc, w->seg_size);
    while (off < want) {
        size_t n = (size_t)MIN((uint64_t)sizeof(zeros), want - off);
        if (pwrite_full(w->fd, zeros, n, (off_t)off) < 0) {
            /* Out of space (or other trouble): records go on without it,
             * and the write itself reports what is wrong. The zeros that
             * did land may be partly beyond the end: fstat tells. */
            struct stat st;
            w->prealloc_off = 1;
            off = fstat(w->fd, &st) == 0 ? (uint64_t)st.st_size : off;
            break;
        }
        off += n;
    }
    w->seg_alloc = MAX(w->seg_alloc, off);
}

/* Cut the current segment back to its frames (before it is closed for
 * good), durably. */
static int seg_trim(wal *w, flush_io *io)
{
    if (w->fd < 0 || w->seg_alloc <= w->seg_size)
        return 0;
    if (ftruncate(w->fd, (off_t)w->seg_size) < 0)
        return -errno;
    w->seg_alloc = w->seg_size;
    return do_sync(w, w->fd, io);
}

static int seg_append(wal *w, const uint8_t *p, size_t n, flush_io *io)
{
    int rc;

    if (io->fault_write) {
        rc = io->fault_write;
        io->fault_write = 0;
        return rc;
    }
    seg_reserve(w, w->seg_size + n);
    rc = pwrite_full(w->fd, p, n, (off_t)w->seg_size);
    if (rc < 0)
        return rc;
    w->seg_size += n;
    w->seg_alloc = MAX(w->seg_alloc, w->seg_size);
    w->seg_dirty = 1;
    return 0;
}

/* Write one batch (first_lsn is the lsn of its first frame) and make it
 * durable. Size rotation happens only at batch boundaries, so a segment can
 * pass segment_max by up to one batch. */
static int flush_batch(wal *w, const uint8_t *p, size_t len, uint64_t first_lsn, size_t cut_off,
                       uint64_t cut_lsn, flush_io *io)
{
    int rc;

    if (len > 0 && cut_off != 0 && w->seg_size >= w->segment_max && w->seg_size > WAL_HDR_LEN) {
        rc = seg_switch(w, first_lsn, io);
        if (rc < 0)
            return rc;
    }
    if (cut_off != NO_CUT) {
        if (cut_off > 0) {
            rc = seg_append(w, p, cut_off, io);
            if (rc < 0)
                return rc;
            p += cut_off;
            len -= cut_off;
        }
        rc = seg_switch(w, cut_lsn, io);
        if (rc < 0)
            return rc;
    }
    if (len > 0) {
        rc = seg_append(w, p, len, io);
        if (rc < 0)
            return rc;
    }
    if (w->seg_dirty) {
        rc = do_sync(w, w->fd, io);
        if (rc < 0)
            return rc;
        w->seg_dirty = 0;
    }
    return 0;
}

static int work_pending(const wal *w)
{
    return w->pending.len > 0 || w->cut_off != NO_CUT;
}

/* Write everything pending as one batch and publish it durable. Called
 * with mu held and flushing clear, by the flusher thread or by a thread in
 * wal_wait; drops mu around the write. Returns -1 once the log failed. */
static int flush_round(wal *w)
{
    uint64_t first, last;
    size_t cut_off;
    uint64_t cut_lsn, rot_target;
    flush_io io = {0};
    int rc;

    w->flushing = 1;
    /* Take everything pending as one batch: appenders refill the other
     * buffer while this one is written. */
    buf t = w->inflight;
    w->inflight = w->pending;
    w->pending = t;
    first = w->durable_lsn + 1;
    last = w->next_lsn - 1;
    cut_off = w->cut_off;
    cut_lsn = w->cut_lsn;
    rot_target = w->rotations_asked;
    w->cut_off = NO_CUT;
    io.fault_write = w->fault_write;
    io.fault_sync = w->fault_sync;
    w->fault_write = w->fault_sync = 0;
    pthread_cond_broadcast(&w->space_cv);
    pthread_mutex_unlock(&w->mu);

    rc = flush_batch(w, w->inflight.data, w->inflight.len, first, cut_off, cut_lsn, &io);

    pthread_mutex_lock(&w->mu);
    w->flushing = 0;
    /* Whoever waits for the next batch (a waiter, or the flusher for
     * records nobody waits for) may now write it. The flusher is woken
     * only if there is a next batch. */
    pthread_cond_broadcast(&w->durable_cv);
    if (work_pending(w))
        pthread_cond_signal(&w->work_cv);
    /* A fault aimed at a write or sync this batch did not make waits
     * for the next one. */
    if (io.fault_write && !w->fault_write)
        w->fault_write = io.fault_write;
    if (io.fault_sync && !w->fault_sync)
        w->fault_sync = io.fault_sync;
    w->stats.syncs += io.syncs;
    w->stats.sync_ns_total += (uint64_t)io.sync_ns;
    if (rc < 0) {
        /* Never retried: after a failed fdatasync the kernel may have
         * dropped the dirty pages and cleared the error, so a later
         * successful sync would prove nothing. */
        log_error("wal: writing lsns %" PRIu64 "..%" PRIu64 " to %s failed: %s; "
                  "the log refuses all further writes",
                  first, last, w->dir, cairn_strerror(rc));
        w->failed = 1;
        pthread_cond_broadcast(&w->space_cv);
        return -1;
    }
    if (last >= first) {
        w->stats.records += last - first + 1;
        w->stats.bytes += w->inflight.len;
        w->durable_lsn = last;
    }
    if (io.rotated_at > w->seg_start_lsn)
        w->seg_start_lsn = io.rotated_at;
    w->rotations_done = rot_target;
    w->inflight.len = 0;
    if (w->inflight.cap > SPARE_KEEP)
        buf_free(&w->inflight);
    return 0;
}

static void *flusher_main(void *arg)
{
    wal *w = arg;

    pthread_mutex_lock(&w->mu);
    for (;;) {
        /* Records appended with wal_append_waited do not wake this thread
         * (their waiter writes them); the timeout bounds how long one whose
         * waiter never came stays in memory. */
        while (!w->failed && (w->flushing || (!w->stopping && !work_pending(w)))) {
            struct timespec ts = mono_deadline((int64_t)w->idle_check_ms * 1000000);
            pthread_cond_timedwait(&w->work_cv, &w->mu, &ts);
        }
        if (w->failed || !work_pending(w))
            break;
        if (flush_round(w) < 0)
            break;
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* ---- the public write path ------------------------------------------ */

static uint64_t append(wal *w, const void *rec, size_t len, int wake)
{
    size_t flen = FRAME_HDR + len;
    uint64_t lsn;
    uint8_t *f;

    if (len > WAL_MAX_RECORD || (len > 0 && rec == NULL))
        return 0;
    pthread_mutex_lock(&w->mu);
    /* Backpressure; a record larger than max_pending still goes through
     * alone once pending is empty. The flusher is woken: the records
     * pending may all be ones nobody waits for yet. */
    while (!w->failed && w->pending.len > 0 && w->pending.len + flen > w->max_pending) {
        pthread_cond_signal(&w->work_cv);
        pthread_cond_wait(&w->space_cv, &w->mu);
    }
    if (w->failed) {
        pthread_mutex_unlock(&w->mu);
        return 0;
    }
    lsn = w->next_lsn++;
    buf_reserve(&w->pending, flen);
    f = w->pending.data + w->pending.len;
    put_le32(f, (uint32_t)len);
    put_le64(f + 8, lsn);
    if (len > 0)
        memcpy(f + FRAME_HDR, rec, len);
    /* lsn and payload are adjacent in the frame: one CRC call covers both. */
    put_le32(f + 4, crc32c(f + 8, 8 + len));
    w->pending.len += flen;
    if (wake)
        pthread_cond_signal(&w->work_cv);
    pthread_mutex_unlock(&w->mu);
    return lsn;
}

uint64_t wal_append(wal *w, const void *rec, size_t len)
{
    return append(w, rec, len, 1);
}

uint64_t wal_append_waited(wal *w, const void *rec, size_t len)
{
    return append(w, rec, len, 0);
}

int wal_wait(wal *w, uint64_t lsn)
{
    int rc = 0;

    pthread_mutex_lock(&w->mu);
    if (lsn == 0 || lsn >= w->next_lsn) {
        rc = w->failed ? -EIO : -EINVAL;
        goto out;
    }
    while (!w->failed && w->durable_lsn < lsn) {
        /* With no batch being written, write this one here rather than
         * wake the flusher and wait to be woken in turn: two thread
         * switches less per durable answer. */
        if (!w->flushing && work_pending(w))
            flush_round(w);
        else
            pthread_cond_wait(&w->durable_cv, &w->mu);
    }
    if (w->failed)
        rc = -EIO;
out:
    pthread_mutex_unlock(&w->mu);
    return rc;
}

uint64_t wal_last_lsn(wal *w)
{
    uint64_t v;

    pthread_mutex_lock(&w->mu);
    v = w->next_lsn - 1;
    pthread_mutex_unlock(&w->mu);
    return v;
}

uint64_t wal_durable_lsn(wal *w)
{
    uint64_t v;

    pthread_mutex_lock(&w->mu);
    v = w->durable_lsn;
    pthread_mutex_unlock(&w->mu);
    return v;
}

int wal_rotate(wal *w, uint64_t *next_lsn)
{
    int rc = 0;

    pthread_mutex_lock(&w->mu);
    for (;;) {
        if (w->failed) {
            rc = -EIO;
            goto out;
        }
        /* Nothing written since the newest segment began: it is already
         * the "new" segment, and a second file with its name cannot exist. */
        if (w->next_lsn == w->seg_start_lsn)
            goto out;
        if (w->cut_off == NO_CUT)
            break;
        /* One requested rotation at a time: wait for the flusher to take
         * the previous one (it takes pending whenever it is idle). */
        pthread_cond_wait(&w->space_cv, &w->mu);
    }
    w->cut_off = w->pending.len;
    w->cut_lsn = w->next_lsn;
    w->seg_start_lsn = w->next_lsn;
    w->rotations_asked++;
    /* Wake the flusher even with nothing pending, so the new segment exists
     * (and the old one can be truncated) without waiting for an append. */
    pthread_cond_signal(&w->work_cv);
out:
    if (next_lsn)
        *next_lsn = w->next_lsn;
    pthread_mutex_unlock(&w->mu);
    return rc;
}

int wal_truncate_before(wal *w, uint64_t lsn)
{
    uint64_t *victims = NULL;
    size_t n = 0, done = 0;
    int rc = 0;

    /* A rotation asked for earlier may still be queued; once it is carried
     * out, the segment it closed is no longer the last and can go. */
    pthread_mutex_lock(&w->mu);
    uint64_t target = w->rotations_asked;
    while (!w->failed && w->rotations_done < target)
        pthread_cond_wait(&w->durable_cv, &w->mu);
    rc = w->failed ? -EIO : 0;
    pthread_mutex_unlock(&w->mu);
    if (rc < 0)
        return rc;

    /* Segment i holds lsns [segs[i], segs[i+1] - 1]; the last one is open
     * ended and never deleted. Only this function removes entries, and its
     * callers are serialised, so the first n entries stay put while the
     * files are unlinked outside the lock. */
    pthread_mutex_lock(&w->seg_mu);
    while (n + 1 < w->nsegs && w->segs[n + 1] - 1 <= lsn)
        n++;
    if (n > 0) {
        victims = xmalloc(n * sizeof(*victims));
        memcpy(victims, w->segs, n * sizeof(*victims));
    }
    pthread_mutex_unlock(&w->seg_mu);
    if (n == 0)
        return 0;

    /* Oldest first, so a crash midway leaves a contiguous set. */
    for (done = 0; done < n; done++) {
        char name[SEG_NAME_MAX];
        seg_name(name, victims[done], 0);
        if (unlinkat(w->dirfd, name, 0) < 0 && errno != ENOENT) {
            rc = -errno;
            log_error("wal: cannot delete %s/%s: %s", w->dir, name, cairn_strerror(rc));
            break;
        }
    }
    pthread_mutex_lock(&w->seg_mu);
    memmove(w->segs, w->segs + done, (w->nsegs - done) * sizeof(*w->segs));
    w->nsegs -= done;
    pthread_mutex_unlock(&w->seg_mu);
    free(victims);
    if (done > 0) {
        int src = dir_sync(w);
        if (rc == 0)
            rc = src;
    }
    return rc;
}

void wal_get_stats(wal *w, wal_stats *out)
{
    pthread_mutex_lock(&w->mu);
    *out = w->stats;
    pthread_mutex_unlock(&w->mu);
}

void wal_inject_fault(wal *w, enum wal_fault where, int err)
{
    pthread_mutex_lock(&w->mu);
    if (where == WAL_FAULT_WRITE)
        w->fault_write = err;
    else if (where == WAL_FAULT_SYNC)
        w->fault_sync = err;
    pthread_mutex_unlock(&w->mu);
}

/* ---- recovery ------------------------------------------------------- */

/* A sliding read window over one segment file. */
typedef struct rd {
    int fd;
    uint64_t size;
    uint8_t *buf;
    size_t cap;
    uint64_t boff;              /* file offset of buf[0] */
    size_t blen;                /* valid bytes in buf */
} rd;

/* Point *out at file bytes [off, off + n); the caller has checked that they
 * exist and that n <= FRAME_HDR + WAL_MAX_RECORD. */
static int rd_get(rd *r, uint64_t off, size_t n, const uint8_t **out)
{
    size_t want;
    int rc;

    if (off >= r->boff && off - r->boff + n <= r->blen) {
        *out = r->buf + (off - r->boff);
        return 0;
    }
    want = n > RD_WINDOW ? n : RD_WINDOW;
    if (want > r->size - off)
        want = (size_t)(r->size - off);
    if (want > r->cap) {
        uint8_t *p = realloc(r->buf, want);
        if (!p)
            return -ENOMEM;
        r->buf = p;
        r->cap = want;
    }
    r->blen = 0;
    rc = pread_full(r->fd, r->buf, want, (off_t)off);
    if (rc < 0)
        return rc;
    r->boff = off;
    r->blen = want;
    *out = r->buf;
    return 0;
}

/* Whether file bytes [off, end) are all zero (preallocated space). */
static int all_zero(rd *r, uint64_t off, uint64_t end)
{
    while (off < end) {
        size_t n = (size_t)MIN((uint64_t)4096, end - off);
        const uint8_t *p;
        if (rd_get(r, off, n, &p) < 0)
            return 0;
        for (size_t i = 0; i < n; i++)
            if (p[i])
                return 0;
        off += n;
    }
    return 1;
}

/* Decode the frame at off: 0 = well formed (length in range, CRC good; its
 * lsn may still be unexpected), 1 = not a frame, <0 = I/O error. */
static int frame_at(rd *r, uint64_t off, uint64_t *lsn, const uint8_t **payload, uint32_t *len)
{
    const uint8_t *h;
    uint32_t l;
    int rc;

    if (r->size - off < FRAME_HDR)
        return 1;
    rc = rd_get(r, off, FRAME_HDR, &h);
    if (rc < 0)
        return rc;
    l = get_le32(h);
    /* Validate the length before reading (and allocating for) the payload. */
    if (l > WAL_MAX_RECORD || l > r->size - off - FRAME_HDR)
        return 1;
    *lsn = get_le64(h + 8);
    rc = rd_get(r, off, FRAME_HDR + l, &h);
    if (rc < 0)
        return rc;
    if (crc32c(h + 8, 8 + (size_t)l) != get_le32(h + 4))
        return 1;
    *payload = h + FRAME_HDR;
    *len = l;
    return 0;
}

/* Is there a well-formed frame with lsn >= min_lsn anywhere after bad_off?
 * Frames are at least FRAME_HDR bytes, which bounds how far ahead a real
 * lsn can be and keeps random bytes from passing for headers. 1 = yes (at
 * *found), 0 = no, <0 = I/O error. */
static int find_later_frame(rd *r, uint64_t bad_off, uint64_t min_lsn, uint64_t *found)
{
    uint64_t max_lsn = min_lsn + (r->size - bad_off) / FRAME_HDR;

    for (uint64_t off = bad_off + 1; off + FRAME_HDR <= r->size; off++) {
        const uint8_t *h, *payload;
        uint64_t lsn;
        uint32_t len;
        int rc = rd_get(r, off, FRAME_HDR, &h);
        if (rc < 0)
            return rc;
        lsn = get_le64(h + 8);
        if (lsn < min_lsn || lsn > max_lsn)
            continue;
        rc = frame_at(r, off, &lsn, &payload, &len);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            *found = off;
            return 1;
        }
    }
    return 0;
}

typedef struct recovery {
    wal *w;
    int truncate_corrupt;
    uint64_t from_lsn;
    wal_replay_fn replay;
    void *ctx;
    uint64_t next;              /* lsn the next frame must carry */
} recovery;

/* Open segment first_lsn and check its header. */
static int seg_open_check(recovery *rv, uint64_t first_lsn, int *fd_out, uint64_t *size_out)
{
    wal *w = rv->w;
    char name[SEG_NAME_MAX];
    uint8_t h[WAL_HDR_LEN];
    struct stat st;
    int fd, rc;

    seg_name(name, first_lsn, 0);
    fd = openat(w->dirfd, name, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        log_error("wal: cannot open %s/%s: %s", w->dir, name, cairn_strerror(rc));
        return rc;
    }
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        goto fail;
    }
    if ((uint64_t)st.st_size < WAL_HDR_LEN) {
        log_error("wal: %s/%s: segment header truncated (%lld bytes)", w->dir, name,
                  (long long)st.st_size);
        rc = CAIRN_ECORRUPT;
        goto fail;
    }
    rc = pread_full(fd, h, sizeof(h), 0);
    if (rc < 0)
        goto fail;
    if (memcmp(h, WAL_MAGIC, 8) != 0 || crc32c(h, WAL_HDR_CRC_LEN) != get_le32(h + 24)) {
        log_error("wal: %s/%s: segment header damaged (bad magic or checksum) at offset 0",
                  w->dir, name);
        rc = CAIRN_ECORRUPT;
        goto fail;
    }
    if (get_le32(h + 8) != WAL_VERSION) {
        log_error("wal: %s/%s: segment format version %" PRIu32 ", this build reads %u",
                  w->dir, name, get_le32(h + 8), WAL_VERSION);
        rc = CAIRN_EBADVERSION;
        goto fail;
    }
    if (get_le64(h + 16) != first_lsn) {
        log_error("wal: %s/%s: header says first lsn %" PRIu64, w->dir, name, get_le64(h + 16));
        rc = CAIRN_ECORRUPT;
        goto fail;
    }
    *fd_out = fd;
    *size_out = (uint64_t)st.st_size;
    return 0;

fail:
    close(fd);
    return rc;
}

/* Replay one segment. Returns 0 with *cut_at = UINT64_MAX when every frame
 * is good, 0 with *cut_at set when the file must be cut there (torn tail,
 * or corruption under truncate_corrupt), or a negative error. */
static int seg_scan(recovery *rv, uint64_t first_lsn, int fd, uint64_t size, int is_last,
                    uint64_t *cut_at)
{
    wal *w = rv->w;
    char name[SEG_NAME_MAX];
    rd r = {.fd = fd, .size = size};
    uint64_t off = WAL_HDR_LEN, found;
    int rc = 0;

    seg_name(name, first_lsn, 0);
    *cut_at = UINT64_MAX;
    while (off < size) {
        const uint8_t *payload;
        uint64_t lsn;
        uint32_t len;

        rc = frame_at(&r, off, &lsn, &payload, &len);
        if (rc < 0)
            goto out;
        if (rc == 0 && lsn == rv->next) {
            if (lsn > rv->from_lsn) {
                rc = rv->replay(lsn, payload, len, rv->ctx);
                if (rc < 0) {
                    log_error("wal: replay of lsn %" PRIu64 " failed: %s", lsn, cairn_strerror(rc));
                    goto out;
                }
            }
            rv->next++;
            off += FRAME_HDR + len;
            continue;
        }

        if (rv->truncate_corrupt) {
            log_error("wal: %s/%s: bad frame at offset %" PRIu64 " (expected lsn %" PRIu64
                      "); truncate_corrupt: cutting the log there",
                      w->dir, name, off, rv->next);
            *cut_at = off;
            rc = 0;
            goto out;
        }
        if (rc == 0) {
            log_error("wal: %s/%s: corrupt: lsn %" PRIu64 " at offset %" PRIu64
                      " where %" PRIu64 " was expected",
                      w->dir, name, lsn, off, rv->next);
            rc = CAIRN_ECORRUPT;
            goto out;
        }
        if (!is_last) {
            log_error("wal: %s/%s: corrupt: bad frame at offset %" PRIu64 " (expected lsn %" PRIu64
                      ") in a segment that is not the last",
                      w->dir, name, off, rv->next);
            rc = CAIRN_ECORRUPT;
            goto out;
        }
        rc = find_later_frame(&r, off, rv->next, &found);
        if (rc < 0)
            goto out;
        if (rc == 1) {
            log_error("wal: %s/%s: corrupt: bad frame at offset %" PRIu64 " (expected lsn %" PRIu64
                      ") followed by a valid frame at offset %" PRIu64,
                      w->dir, name, off, rv->next, found);
            rc = CAIRN_ECORRUPT;
            goto out;
        }
        if (all_zero(&r, off, size))
            log_info("wal: %s/%s: log ends at lsn %" PRIu64 " (offset %" PRIu64
                     "); cutting %" PRIu64 " preallocated bytes",
                     w->dir, name, rv->next - 1, off, size - off);
        else
            log_warn("wal: %s/%s: torn tail at offset %" PRIu64 ": cutting %" PRIu64
                     " bytes, log ends at lsn %" PRIu64,
                     w->dir, name, off, size - off, rv->next - 1);
        *cut_at = off;
        rc = 0;
        goto out;
    }
out:
    free(r.buf);
    return rc;
}

static int list_segments(wal *w, uint64_t **out, size_t *n_out)
{
    DIR *d;
    struct dirent *de;
    uint64_t *v = NULL;
    size_t n = 0, cap = 0;
    int fd;

    fd = openat(w->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    d = fdopendir(fd);
    if (!d) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    while ((de = readdir(d)) != NULL) {
        uint64_t lsn;
        if (is_tmp_name(de->d_name)) {
            /* A segment whose creation did not finish. */
            unlinkat(w->dirfd, de->d_name, 0);
            continue;
        }
        if (seg_name_parse(de->d_name, &lsn) < 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            v = xrealloc(v, cap * sizeof(*v));
        }
        v[n++] = lsn;
    }
    closedir(d);
    if (n > 1)
        qsort(v, n, sizeof(*v), cmp_u64);
    *out = v;
    *n_out = n;
    return 0;
}

/* truncate_corrupt: drop segments [from, n) after logging them. */
static int drop_segments(wal *w, const uint64_t *segs, size_t from, size_t n)
{
    for (size_t i = from; i < n; i++) {
        char name[SEG_NAME_MAX];
        seg_name(name, segs[i], 0);
        log_error("wal: truncate_corrupt: deleting %s/%s", w->dir, name);
        if (unlinkat(w->dirfd, name, 0) < 0 && errno != ENOENT)
            return -errno;
    }
    return from < n ? dir_sync(w) : 0;
}

/* Read every segment, replay, cut a torn tail, and leave the newest segment
 * open for appending (creating one when needed). */
static int recover(wal *w, recovery *rv)
{
    uint64_t *segs = NULL;
    size_t n = 0, kept;
    int fd = -1, rc;
    uint64_t size = 0;
    flush_io io = {0};

    rc = list_segments(w, &segs, &n);
    if (rc < 0)
        goto out;
    rv->next = rv->from_lsn + 1;

    for (kept = 0; kept < n; kept++) {
        uint64_t first = segs[kept], cut_at, nsize = 0;
        int is_last = kept + 1 == n, nfd = -1;
        char name[SEG_NAME_MAX];

        seg_name(name, first, 0);
        if (kept > 0 && first < rv->next) {
            log_error("wal: %s/%s: corrupt: starts at lsn %" PRIu64 " but the previous segment "
                      "reaches lsn %" PRIu64, w->dir, name, first, rv->next - 1);
            rc = CAIRN_ECORRUPT;
        } else if (first > rv->next && first - 1 > rv->from_lsn) {
            log_error("wal: %s/%s: corrupt: lsns %" PRIu64 "..%" PRIu64 " are missing",
                      w->dir, name, rv->next, first - 1);
            rc = CAIRN_ECORRUPT;
        } else {
            rc = seg_open_check(rv, first, &nfd, &nsize);
        }
        if (rc == CAIRN_ECORRUPT && rv->truncate_corrupt) {
            /* The previous segment (if any) stays the newest, still open. */
            rc = drop_segments(w, segs, kept, n);
            if (rc < 0)
                goto out;
            break;
        }
        if (rc < 0)
            goto out;
        if (fd >= 0)
            close(fd);
        fd = nfd;
        size = nsize;
        /* Continuity was checked above; lsns before a tolerated gap are all
         * covered by the snapshot. */
        rv->next = first;

        rc = seg_scan(rv, first, fd, size, is_last, &cut_at);
        if (rc < 0)
            goto out;
        if (cut_at != UINT64_MAX) {
            if (ftruncate(fd, (off_t)cut_at) < 0 || (!w->no_sync && fsync(fd) < 0)) {
                rc = -errno;
                log_error("wal: cannot cut %s/%s: %s", w->dir, name, cairn_strerror(rc));
                goto out;
            }
            size = cut_at;
            rc = drop_segments(w, segs, kept + 1, n);
            if (rc < 0)
                goto out;
            kept++;
            break;
        }
    }

    if (kept == 0 || rv->next - 1 < rv->from_lsn) {
        /* Empty directory, or the snapshot is newer than the log's end: the
         * log continues right after the snapshot, in a new segment. */
        uint64_t first = rv->from_lsn + 1;
        if (kept > 0)
            log_warn("wal: %s ends at lsn %" PRIu64 " but the snapshot is at lsn %" PRIu64
                     "; continuing at lsn %" PRIu64, w->dir, rv->next - 1, rv->from_lsn, first);
        if (fd >= 0)
            close(fd);
        fd = -1;
        rc = seg_create(w, first, &fd, &io);
        if (rc < 0)
            goto out;
        segs = xrealloc(segs, (kept + 1) * sizeof(*segs));
        segs[kept++] = first;
        size = WAL_HDR_LEN;
        rv->next = first;
    } else if (!w->no_sync && fdatasync(fd) < 0) {
        /* What was replayed may only have been in the page cache of a
         * process that crashed; make it durable before building on it. */
        rc = -errno;
        goto out;
    }

    w->fd = fd;
    fd = -1;
    w->seg_first = segs[kept - 1];
    w->seg_size = size;
    w->seg_alloc = size;
    w->next_lsn = rv->next;
    w->durable_lsn = rv->next - 1;
    w->seg_start_lsn = w->seg_first;
    w->segs = segs;
    w->nsegs = w->segs_cap = kept;
    segs = NULL;
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    free(segs);
    return rc;
}

/* ---- open / close --------------------------------------------------- */

int wal_open(const wal_config *cfg, uint64_t from_lsn, wal_replay_fn replay, void *ctx, wal **out)
{
    wal *w;
    recovery rv;
    int rc;

    if (!cfg || !cfg->dir || !replay || !out)
        return -EINVAL;
    w = xcalloc(1, sizeof(*w));
    w->dir = xstrdup(cfg->dir);
    w->dirfd = -1;
    w->fd = -1;
    w->segment_max = cfg->segment_max ? cfg->segment_max : DEFAULT_SEGMENT_MAX;
    w->max_pending = cfg->max_pending ? cfg->max_pending : DEFAULT_MAX_PENDING;
    w->no_sync = cfg->no_sync;
    w->idle_check_ms = cfg->idle_check_ms ? cfg->idle_check_ms : DEFAULT_IDLE_CHECK_MS;
    w->cut_off = NO_CUT;
    pthread_mutex_init(&w->mu, NULL);
    pthread_mutex_init(&w->seg_mu, NULL);
    cond_init_mono(&w->work_cv);
    pthread_cond_init(&w->durable_cv, NULL);
    pthread_cond_init(&w->space_cv, NULL);

    rc = ensure_dir(w->dir, w->no_sync);
    if (rc < 0)
        goto fail;
    w->dirfd = open(w->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (w->dirfd < 0) {
        rc = -errno;
        goto fail;
    }
    if (flock(w->dirfd, LOCK_EX | LOCK_NB) < 0) {
        rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
        log_error("wal: %s is in use by another wal: %s", w->dir, cairn_strerror(rc));
        goto fail;
    }

    rv = (recovery){.w = w, .truncate_corrupt = cfg->truncate_corrupt, .from_lsn = from_lsn,
                    .replay = replay, .ctx = ctx};
    rc = recover(w, &rv);
    if (rc < 0)
        goto fail;

    rc = -pthread_create(&w->flusher, NULL, flusher_main, w);
    if (rc < 0)
        goto fail;
    *out = w;
    return 0;

fail:
    if (w->fd >= 0)
        close(w->fd);
    if (w->dirfd >= 0)
        close(w->dirfd);
    pthread_cond_destroy(&w->space_cv);
    pthread_cond_destroy(&w->durable_cv);
    pthread_cond_destroy(&w->work_cv);
    pthread_mutex_destroy(&w->seg_mu);
    pthread_mutex_destroy(&w->mu);
    free(w->segs);
    free(w->dir);
    free(w);
    return rc;
}

void wal_close(wal *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stopping = 1;
    pthread_cond_signal(&w->work_cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->flusher, NULL);

    if (w->fd >= 0) {
        /* A clean stop leaves no zeros behind the last frame. */
        flush_io io = {0};
        if (!w->failed && seg_trim(w, &io) < 0)
            log_warn("wal: cannot cut %s back to its last frame; the next start will",
                     w->dir);
        close(w->fd);
    }
    close(w->dirfd);
    buf_free(&w->pending);
    buf_free(&w->inflight);
    pthread_cond_destroy(&w->space_cv);
    pthread_cond_destroy(&w->durable_cv);
    pthread_cond_destroy(&w->work_cv);
    pthread_mutex_destroy(&w->seg_mu);
    pthread_mutex_destroy(&w->mu);
    free(w->segs);
    free(w->dir);
    free(w);
}
