/*
 * store.c — chunk files on local disk (see store.h).
 */
#include "server/chunk/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "common/chunkfile.h"

#define STORE_STRIPES 256

/*
 * Direct writes. A new chunk file is written with O_DIRECT: the bytes go
 * from memory to the disk without a page-cache copy, which the fsync that
 * follows would write out anyway (on a 2-core machine that copy cost a
 * quarter of the CPU of a streaming upload), and a server's page cache is
 * not filled with chunks that clients cache themselves. The file is
 * header + payload, so the two are assembled in an aligned bounce buffer
 * (one of DIO_BUFS kept by the store, each grown to the largest chunk seen,
 * at most DIO_MAX); the aligned head is written direct and the tail of
 * less than DIO_ALIGN bytes buffered. A file system that refuses O_DIRECT
 * (EINVAL at open or at the first write) turns it off for the store, with
 * one warning; when every bounce buffer is busy, or a chunk is larger than
 * DIO_MAX, that one file is written buffered.
 */
#define DIO_ALIGN 4096u
#define DIO_BUFS 4
#define DIO_MAX (16u << 20)
#define DIO_REFUSED 1

struct chunkstore {
    char *dir;
    char *chunks_dir;
    char *tmp_dir;
    char *corrupt_dir;
    int compress_level;
    int lock_fd;                 /* flock'd DIR/lock: one server per directory */
    /* Stripe i serialises directory-entry changes (rename into place,
     * unlink, quarantine) of ids whose first byte is i, so the counters
     * below change exactly once per file. Never held across fsync. */
    pthread_mutex_t stripes[STORE_STRIPES];
    atomic_uint_fast64_t chunks;
    atomic_uint_fast64_t bytes;
    atomic_uint_fast64_t corrupt_found;
    atomic_uint_fast64_t tmp_seq;
    atomic_uint_fast64_t direct_writes;
    atomic_int direct;           /* O_DIRECT in use */
    pthread_mutex_t dio_mu;      /* guards the bounce buffers' ownership */
    uint8_t *dio_buf[DIO_BUFS];
    size_t dio_cap[DIO_BUFS];
    int dio_busy[DIO_BUFS];
    /* Set once before any other thread uses the store. */
    chunkstore_corrupt_fn on_corrupt;
    void *on_corrupt_ctx;
};

char *chunkstore_path(const char *dir, const uint8_t id[CHUNK_ID_LEN])
{
    char hex[CHUNK_ID_HEX + 1];
    chunk_id_hex(id, hex);
    return xasprintf("%s/chunks/%.2s/%.2s/%s", dir, hex, hex + 2, hex);
}

static char *store_chunk_path(const chunkstore *s, const uint8_t id[CHUNK_ID_LEN])
{
    return chunkstore_path(s->dir, id);
}

static pthread_mutex_t *store_stripe(chunkstore *s, const uint8_t id[CHUNK_ID_LEN])
{
    return &s->stripes[id[0]];
}

/* Remove every entry of the tmp directory: uploads that were in progress
 * when a previous run stopped. */
static int store_clean_tmp(chunkstore *s)
{
    DIR *d = opendir(s->tmp_dir);
    if (!d)
        return -errno;
    unsigned removed = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (unlinkat(dirfd(d), e->d_name, 0) == 0)
            removed++;
        else
            log_warn("cannot remove stale tmp file %s/%s: %s", s->tmp_dir, e->d_name,
                     strerror(errno));
    }
    closedir(d);
    if (removed)
        log_info("removed %u stale tmp file(s) from %s", removed, s->tmp_dir);
    return 0;
}

static int is_lower_hex(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return 0;
    }
    return 1;
}

/* Count the files of one leaf directory chunks/ab/cd. */
static void store_scan_leaf(chunkstore *s, int parentfd, const char *ab, const char *cd)
{
    int fd = openat(parentfd, cd, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        log_warn("cannot open %s/%s/%s: %s", s->chunks_dir, ab, cd, strerror(errno));
        return;
    }
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        struct stat st;
        if (strlen(e->d_name) != CHUNK_ID_HEX || !is_lower_hex(e->d_name, CHUNK_ID_HEX) ||
            memcmp(e->d_name, ab, 2) != 0 || memcmp(e->d_name + 2, cd, 2) != 0 ||
            fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode)) {
            log_warn("ignoring unexpected entry %s/%s/%s/%s", s->chunks_dir, ab, cd, e->d_name);
            continue;
        }
        atomic_fetch_add(&s->chunks, 1);
        atomic_fetch_add(&s->bytes, (uint64_t)st.st_size);
    }
    closedir(d);
}

/* Walk chunks/ab/cd/<hex> and count what is there. Files are not verified
 * here (that would read the whole store at every start); GET verifies. */
static int store_scan(chunkstore *s)
{
    DIR *top = opendir(s->chunks_dir);
    if (!top)
        return -errno;
    struct dirent *e;
    while ((e = readdir(top)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (strlen(e->d_name) != 2 || !is_lower_hex(e->d_name, 2)) {
            log_warn("ignoring unexpected entry %s/%s", s->chunks_dir, e->d_name);
            continue;
        }
        int fd = openat(dirfd(top), e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
            continue;
        DIR *mid = fdopendir(fd);
        if (!mid) {
            close(fd);
            continue;
        }
        struct dirent *m;
        while ((m = readdir(mid)) != NULL) {
            if (m->d_name[0] == '.')
                continue;
            if (strlen(m->d_name) != 2 || !is_lower_hex(m->d_name, 2)) {
                log_warn("ignoring unexpected entry %s/%s/%s", s->chunks_dir, e->d_name,
                         m->d_name);
                continue;
            }
            store_scan_leaf(s, dirfd(mid), e->d_name, m->d_name);
        }
        closedir(mid);
    }
    closedir(top);
    return 0;
}

int chunkstore_open(const chunkstore_config *cfg, chunkstore **out)
{
    int rc;
    chunkstore *s = xcalloc(1, sizeof *s);
    s->lock_fd = -1;
    s->dir = xstrdup(cfg->dir);
    s->chunks_dir = xasprintf("%s/chunks", cfg->dir);
    s->tmp_dir = xasprintf("%s/tmp", cfg->dir);
    s->corrupt_dir = xasprintf("%s/corrupt", cfg->dir);
    s->compress_level = cfg->compress_level;
    atomic_store(&s->direct, cfg->direct_io != 0);
    pthread_mutex_init(&s->dio_mu, NULL);
    for (size_t i = 0; i < STORE_STRIPES; i++)
        pthread_mutex_init(&s->stripes[i], NULL);

    if ((rc = mkdir_p(s->chunks_dir, 0755)) < 0 || (rc = mkdir_p(s->tmp_dir, 0755)) < 0 ||
        (rc = mkdir_p(s->corrupt_dir, 0755)) < 0) {
        log_error("cannot create the data layout under %s: %s", s->dir, cairn_strerror(rc));
        goto fail;
    }
    char *lock_path = xasprintf("%s/lock", s->dir);
    s->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    rc = s->lock_fd < 0 ? -errno : 0;
    if (rc == 0 && flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0)
        rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
    if (rc < 0) {
        log_error("cannot lock %s: %s%s", lock_path, cairn_strerror(rc),
                  rc == -EBUSY ? " (another cairn-chunkd uses this directory)" : "");
        free(lock_path);
        goto fail;
    }
    free(lock_path);
    if ((rc = store_clean_tmp(s)) < 0) {
        log_error("cannot clean %s: %s", s->tmp_dir, cairn_strerror(rc));
        goto fail;
    }
    if ((rc = store_scan(s)) < 0) {
        log_error("cannot scan %s: %s", s->chunks_dir, cairn_strerror(rc));
        goto fail;
    }
    *out = s;
    return 0;

fail:
    chunkstore_free(s);
    return rc;
}

void chunkstore_free(chunkstore *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < STORE_STRIPES; i++)
        pthread_mutex_destroy(&s->stripes[i]);
    pthread_mutex_destroy(&s->dio_mu);
    for (size_t i = 0; i < DIO_BUFS; i++)
        free(s->dio_buf[i]);
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    free(s->dir);
    free(s->chunks_dir);
    free(s->tmp_dir);
    free(s->corrupt_dir);
    free(s);
}

/* Subtract what a file's size contributed to the byte count. A file changed
 * behind our back (which is how corruption arrives) may have a size other
 * than the one counted; clamp at zero rather than wrap. */
static void store_sub_bytes(chunkstore *s, uint64_t n)
{
    uint_fast64_t cur = atomic_load(&s->bytes);
    while (!atomic_compare_exchange_weak(&s->bytes, &cur, cur > n ? cur - n : 0))
        ;
}

/* Move a chunk file that failed verification into corrupt/, but only if the
 * directory entry still names the inode that was read: a concurrent delete
 * and re-upload may have replaced it with a good copy meanwhile. */
static void store_quarantine(chunkstore *s, const uint8_t id[CHUNK_ID_LEN], const char *path,
                             const struct stat *read_st, int why)
{
    char hex[CHUNK_ID_HEX + 1];
    chunk_id_hex(id, hex);
    char *dst = xasprintf("%s/%s.%lld", s->corrupt_dir, hex, (long long)now_realtime_ns());
    pthread_mutex_t *m = store_stripe(s, id);
    int moved = 0;
    pthread_mutex_lock(m);
    struct stat st;
    if (lstat(path, &st) == 0 && st.st_ino == read_st->st_ino && st.st_dev == read_st->st_dev) {
        if (rename(path, dst) == 0) {
            atomic_fetch_sub(&s->chunks, 1);
            store_sub_bytes(s, (uint64_t)st.st_size);
            atomic_fetch_add(&s->corrupt_found, 1);
            log_error("corrupt chunk %s (%s): moved to %s", hex, cairn_strerror(why), dst);
            moved = 1;
        } else {
            log_error("corrupt chunk %s (%s): cannot move aside: %s", hex, cairn_strerror(why),
                      strerror(errno));
        }
    }
    pthread_mutex_unlock(m);
    free(dst);
    if (moved && s->on_corrupt)
        s->on_corrupt(s->on_corrupt_ctx, id);
}

/* preadv until both buffers are full; -EIO if the file ends early (it
 * shrank after fstat). */
static int store_readv_full(int fd, uint8_t *hdr, size_t hdrlen, uint8_t *body, size_t bodylen)
{
    size_t want = hdrlen + bodylen, got = 0;
    while (got < want) {
        struct iovec iov[2];
        int n = 0;
        if (got < hdrlen) {
            iov[n++] = (struct iovec){hdr + got, hdrlen - got};
            if (bodylen)
                iov[n++] = (struct iovec){body, bodylen};
        } else {
            iov[n++] = (struct iovec){body + (got - hdrlen), want - got};
        }
        ssize_t r = preadv(fd, iov, n, (off_t)got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            return -EIO;
        got += (size_t)r;
    }
    return 0;
}

/* Read a chunk file completely and verify it. On success *payload is the
 * malloc'd stored payload (caller frees) and *h its header. Corruption is
 * reported as CAIRN_ECORRUPT with the file left in place; *st is filled
 * whenever the file could be opened. */
static int store_read_file(const char *path, const uint8_t id[CHUNK_ID_LEN], chunkfile_hdr *h,
                           uint8_t **payload, struct stat *st)
{
    int rc;
    uint8_t *body = NULL;
    *payload = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fstat(fd, st) < 0) {
        rc = -errno;
        goto fail;
    }
    if (st->st_size < CHUNKFILE_HDR_LEN ||
        (uint64_t)st->st_size > CHUNKFILE_HDR_LEN + CHUNKFILE_MAX_RAW) {
        rc = CAIRN_ECORRUPT;
        goto fail;
    }
    size_t bodylen = (size_t)st->st_size - CHUNKFILE_HDR_LEN;
    if (bodylen) {
        body = malloc(bodylen);
        if (!body) {
            rc = -ENOMEM;
            goto fail;
        }
    }
    uint8_t hdr[CHUNKFILE_HDR_LEN];
    rc = store_readv_full(fd, hdr, sizeof hdr, body, bodylen);
    if (rc < 0)
        goto fail;
    rc = chunkfile_check_header(hdr, (uint64_t)st->st_size, id, h);
    if (rc == -EFBIG || rc == CAIRN_EBADVERSION)
        rc = CAIRN_ECORRUPT;
    if (rc < 0)
        goto fail;
    rc = chunkfile_check_payload(h, body, bodylen);
    if (rc < 0)
        goto fail;
    close(fd);
    *payload = body;
    return 0;

fail:
    free(body);
    close(fd);
    return rc;
}

int chunkstore_get(chunkstore *s, const uint8_t id[CHUNK_ID_LEN], uint8_t **data, size_t *len)
{
    chunkfile_hdr h;
    uint8_t *payload;
    struct stat st;
    *data = NULL;
    *len = 0;
    char *path = store_chunk_path(s, id);
    int rc = store_read_file(path, id, &h, &payload, &st);
    if (rc == 0) {
        uint8_t *raw;
        rc = chunkfile_decode(&h, payload, h.stored_len, &raw);
        if (rc == 0 && raw) {
            free(payload);
            payload = raw;
        } else if (rc < 0) {
            free(payload);
            payload = NULL;
        }
    }
    if (rc == CAIRN_ECORRUPT)
        store_quarantine(s, id, path, &st, rc);
    free(path);
    if (rc < 0)
        return rc;
    *data = payload;
    *len = h.raw_len;
    return 0;
}

int chunkstore_stat(chunkstore *s, const uint8_t id[CHUNK_ID_LEN], uint64_t *raw_len)
{
    int rc;
    struct stat st;
    chunkfile_hdr h;
    uint8_t hdr[CHUNKFILE_HDR_LEN];
    char *path = store_chunk_path(s, id);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        goto out;
    }
    if (st.st_size < CHUNKFILE_HDR_LEN) {
        rc = CAIRN_ECORRUPT;
        goto quarantine;
    }
    rc = pread_full(fd, hdr, sizeof hdr, 0);
    if (rc < 0)
        goto out;
    rc = chunkfile_check_header(hdr, (uint64_t)st.st_size, id, &h);
    if (rc < 0) {
        rc = CAIRN_ECORRUPT;
        goto quarantine;
    }
    *raw_len = h.raw_len;
    goto out;

quarantine:
    store_quarantine(s, id, path, &st, rc);
out:
    if (fd >= 0)
        close(fd);
    free(path);
    return rc;
}

int chunkstore_has(chunkstore *s, const uint8_t id[CHUNK_ID_LEN])
{
    struct stat st;
    char *path = store_chunk_path(s, id);
    int rc = lstat(path, &st) == 0 ? 1 : (errno == ENOENT ? 0 : -errno);
    free(path);
    return rc;
}

int chunkstore_delete(chunkstore *s, const uint8_t id[CHUNK_ID_LEN])
{
    char *path = store_chunk_path(s, id);
    pthread_mutex_t *m = store_stripe(s, id);
    struct stat st;
    int rc = 0;
    pthread_mutex_lock(m);
    if (lstat(path, &st) < 0 || unlink(path) < 0) {
        rc = -errno;
    } else {
        atomic_fetch_sub(&s->chunks, 1);
        store_sub_bytes(s, (uint64_t)st.st_size);
    }
    pthread_mutex_unlock(m);
    free(path);
    return rc;
}

/* mkdir that treats an existing directory as success; *created tells
 * whether this call made it (its parent then needs an fsync). */
static int store_mkdir(const char *path, int *created)
{
    if (mkdir(path, 0755) == 0) {
        *created = 1;
        return 0;
    }
    return errno == EEXIST ? 0 : -errno;
}

/* Make sure chunks/ab/cd exists and that its creation is durable. */
static int store_make_fanout(chunkstore *s, const char *hex)
{
    int rc, c1 = 0, c2 = 0;
    char *d1 = xasprintf("%s/%.2s", s->chunks_dir, hex);
    char *d2 = xasprintf("%s/%.2s/%.2s", s->chunks_dir, hex, hex + 2);
    if ((rc = store_mkdir(d1, &c1)) < 0 || (rc = store_mkdir(d2, &c2)) < 0)
        goto out;
    if (c1 && (rc = fsync_dir(s->chunks_dir)) < 0)
        goto out;
    if (c2)
        rc = fsync_dir(d1);
out:
    free(d1);
    free(d2);
    return rc;
}

/* End writing tmp file fd: after the writes went well (rc 0) fsync and
 * close it, else (or when that fails) close and remove it. Returns rc or
 * the fsync/close error. */
static int store_tmp_done(int fd, const char *tmp, int rc)
{
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    if (rc == 0) {
        rc = close(fd) < 0 ? -errno : 0;
        fd = -1;
    }
    if (rc < 0) {
        if (fd >= 0)
            close(fd);
        unlink(tmp);
    }
    return rc;
}

/* Buffered: write hdr + payload into a new tmp file and fsync it. */
static int store_write_buffered(const char *tmp, const uint8_t *hdr, const void *payload,
                                size_t n)
{
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    int rc = write_full(fd, hdr, CHUNKFILE_HDR_LEN);
    if (rc == 0 && n)
        rc = write_full(fd, payload, n);
    return store_tmp_done(fd, tmp, rc);
}

/* A free bounce buffer of at least len bytes: its slot, or -1 (none free,
 * or no memory for it). */
static int dio_take(chunkstore *s, size_t len)
{
    int slot = -1;
    pthread_mutex_lock(&s->dio_mu);
    for (int i = 0; i < DIO_BUFS; i++) {
        if (!s->dio_busy[i] && (slot < 0 || s->dio_cap[i] > s->dio_cap[slot]))
            slot = i;
    }
    if (slot >= 0)
        s->dio_busy[slot] = 1;
    pthread_mutex_unlock(&s->dio_mu);
    if (slot < 0 || s->dio_cap[slot] >= len)
        return slot;
    void *p;
    if (posix_memalign(&p, DIO_ALIGN, len) != 0) {
        pthread_mutex_lock(&s->dio_mu);
        s->dio_busy[slot] = 0;
        pthread_mutex_unlock(&s->dio_mu);
        return -1;
    }
    free(s->dio_buf[slot]);
    s->dio_buf[slot] = p;
    s->dio_cap[slot] = len;
    return slot;
}

static void dio_give(chunkstore *s, int slot)
{
    pthread_mutex_lock(&s->dio_mu);
    s->dio_busy[slot] = 0;
    pthread_mutex_unlock(&s->dio_mu);
}

/* Direct: as store_write_buffered, through bounce buffer b. Returns
 * DIO_REFUSED when the file system refuses O_DIRECT (nothing left behind),
 * 0, or -errno. */
static int store_write_direct(const char *tmp, uint8_t *b, const uint8_t *hdr,
                              const void *payload, size_t n)
{
    int rc = 0;
    size_t total = CHUNKFILE_HDR_LEN + n, head = total & ~(size_t)(DIO_ALIGN - 1);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_DIRECT, 0644);
    if (fd < 0)
        return errno == EINVAL ? DIO_REFUSED : -errno;
    memcpy(b, hdr, CHUNKFILE_HDR_LEN);
    if (n)
        memcpy(b + CHUNKFILE_HDR_LEN, payload, n);
    if (head && (rc = pwrite_full(fd, b, head, 0)) == -EINVAL)
        rc = DIO_REFUSED;
    if (rc == 0 && total > head) {
        /* the tail is not a whole block: written through the page cache */
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_DIRECT) < 0)
            rc = -errno;
        else
            rc = pwrite_full(fd, b + head, total - head, (off_t)head);
    }
    if (rc == DIO_REFUSED) {
        close(fd);
        unlink(tmp);
        return rc;
    }
    return store_tmp_done(fd, tmp, rc);
}

/* Write hdr + payload into a new tmp file and fsync it (see "Direct
 * writes"); on any failure the tmp file is removed. */
static int store_write_tmp(chunkstore *s, const char *tmp, const uint8_t *hdr,
                           const void *payload, size_t n)
{
    size_t total = CHUNKFILE_HDR_LEN + n;
    size_t cap = (total + DIO_ALIGN - 1) & ~(size_t)(DIO_ALIGN - 1);
    int slot;
    if (total >= DIO_ALIGN && cap <= DIO_MAX && atomic_load(&s->direct) &&
        (slot = dio_take(s, cap)) >= 0) {
        int rc = store_write_direct(tmp, s->dio_buf[slot], hdr, payload, n);
        dio_give(s, slot);
        if (rc != DIO_REFUSED) {
            if (rc == 0)
                atomic_fetch_add(&s->direct_writes, 1);
            return rc;
        }
        if (atomic_exchange(&s->direct, 0))
            log_warn("the file system of %s refuses O_DIRECT writes: writing chunk files "
                     "through the page cache", s->tmp_dir);
    }
    return store_write_buffered(tmp, hdr, payload, n);
}

/* Refresh the mtime of a held chunk: it restarts the GC grace period, as
 * the uploader is about to commit a file that references this chunk. Done
 * under the id's stripe, like chunkstore_delete_older's check-and-unlink,
 * so either the refresh comes first (and the collector keeps the file) or
 * the file is gone and this returns 0 (the caller writes a new copy).
 * Returns 1 refreshed, 0 no file, or -errno. */
static int store_touch(chunkstore *s, const uint8_t id[CHUNK_ID_LEN], const char *path)
{
    pthread_mutex_t *m = store_stripe(s, id);
    pthread_mutex_lock(m);
    int rc = utimensat(AT_FDCWD, path, NULL, 0) < 0 ? (errno == ENOENT ? 0 : -errno) : 1;
    pthread_mutex_unlock(m);
    return rc;
}

/* Check an existing copy before treating a PUT as a duplicate. Returns 1 if
 * an intact copy is held (mtime refreshed), 0 if there is none (or a bad
 * one that was just moved aside), or -errno. */
static int store_existing(chunkstore *s, const uint8_t id[CHUNK_ID_LEN], const char *path)
{
    chunkfile_hdr h;
    uint8_t *payload;
    struct stat st;
    int rc = store_read_file(path, id, &h, &payload, &st);
    if (rc == -ENOENT)
        return 0;
    if (rc == CAIRN_ECORRUPT) {
        store_quarantine(s, id, path, &st, rc);
        return 0;
    }
    if (rc < 0)
        return rc;
    free(payload);
    return store_touch(s, id, path);
}

int chunkstore_put(chunkstore *s, const uint8_t id[CHUNK_ID_LEN], const void *data, size_t len)
{
    int rc;
    uint8_t digest[CHUNK_ID_LEN];
    char hex[CHUNK_ID_HEX + 1];
    uint8_t hdr[CHUNKFILE_HDR_LEN];
    const void *stored;
    size_t stored_len;
    void *owned = NULL;
    char *tmp = NULL;

    if (len > CHUNKFILE_MAX_RAW)
        return -EFBIG;
    sha256(data, len, digest);
    if (memcmp(digest, id, CHUNK_ID_LEN) != 0)
        return -EBADMSG;

    char *path = store_chunk_path(s, id);
    chunk_id_hex(id, hex);
    rc = store_existing(s, id, path);
    if (rc != 0)
        goto out;

    rc = chunkfile_encode(id, data, len, s->compress_level, hdr, &stored, &stored_len, &owned);
    if (rc < 0)
        goto out;
    tmp = xasprintf("%s/%s.%llu", s->tmp_dir, hex,
                    (unsigned long long)atomic_fetch_add(&s->tmp_seq, 1));
    rc = store_write_tmp(s, tmp, hdr, stored, stored_len);
    if (rc < 0)
        goto out;
    rc = store_make_fanout(s, hex);
    if (rc < 0)
        goto out_unlink;

    pthread_mutex_t *m = store_stripe(s, id);
    pthread_mutex_lock(m);
    struct stat st;
    if (lstat(path, &st) == 0) {
        /* A concurrent upload of the same chunk won the race; its copy was
         * verified against the same id, so ours is redundant. The mtime is
         * refreshed while the stripe is held (see store_touch). */
        rc = utimensat(AT_FDCWD, path, NULL, 0) < 0 && errno != ENOENT ? -errno : 1;
        pthread_mutex_unlock(m);
        unlink(tmp);
        goto out;
    }
    if (rename(tmp, path) < 0) {
        rc = -errno;
        pthread_mutex_unlock(m);
        goto out_unlink;
    }
    atomic_fetch_add(&s->chunks, 1);
    atomic_fetch_add(&s->bytes, CHUNKFILE_HDR_LEN + stored_len);
    pthread_mutex_unlock(m);

    char *leaf = xasprintf("%s/%.2s/%.2s", s->chunks_dir, hex, hex + 2);
    rc = fsync_dir(leaf);
    free(leaf);
    if (rc < 0)
        log_error("fsync of the directory of chunk %s failed: %s", hex, cairn_strerror(rc));
    goto out;

out_unlink:
    unlink(tmp);
out:
    free(owned);
    free(tmp);
    free(path);
    return rc;
}

void chunkstore_get_stats(chunkstore *s, chunkstore_stats *out)
{
    out->chunks = atomic_load(&s->chunks);
    out->bytes = atomic_load(&s->bytes);
    out->corrupt_found = atomic_load(&s->corrupt_found);
    out->direct_writes = atomic_load(&s->direct_writes);
    out->direct_io = atomic_load(&s->direct);
}

int chunkstore_fs_capacity(chunkstore *s, uint64_t *out)
{
    struct statvfs v;
    if (statvfs(s->dir, &v) < 0)
        return -errno;
    *out = (uint64_t)v.f_blocks * v.f_frsize;
    return 0;
}

void chunkstore_set_corrupt_hook(chunkstore *s, chunkstore_corrupt_fn fn, void *ctx)
{
    s->on_corrupt = fn;
    s->on_corrupt_ctx = ctx;
}

int chunkstore_verify(chunkstore *s, const uint8_t id[CHUNK_ID_LEN], int full, uint64_t *bytes)
{
    chunkfile_hdr h;
    uint8_t *payload = NULL, *raw = NULL;
    struct stat st;
    *bytes = 0;
    char *path = store_chunk_path(s, id);
    int rc = store_read_file(path, id, &h, &payload, &st);
    if (rc == 0 || rc == CAIRN_ECORRUPT)
        *bytes = (uint64_t)st.st_size;
    if (rc == 0 && full) {
        rc = chunkfile_decode(&h, payload, h.stored_len, &raw);
        if (rc == 0) {
            uint8_t digest[CHUNK_ID_LEN];
            sha256(raw ? raw : payload, h.raw_len, digest);
            if (memcmp(digest, id, CHUNK_ID_LEN) != 0)
                rc = CAIRN_ECORRUPT;
        }
    }
    if (rc == CAIRN_ECORRUPT)
        store_quarantine(s, id, path, &st, rc);
    free(raw);
    free(payload);
    free(path);
    return rc;
}

int chunkstore_file_info(chunkstore *s, const uint8_t id[CHUNK_ID_LEN], int64_t *mtime_ns,
                         uint64_t *size)
{
    struct stat st;
    char *path = store_chunk_path(s, id);
    int rc = lstat(path, &st) < 0 ? -errno : 0;
    free(path);
    if (rc < 0)
        return rc;
    *mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
    *size = (uint64_t)st.st_size;
    return 0;
}

int chunkstore_delete_older(chunkstore *s, const uint8_t id[CHUNK_ID_LEN], int64_t cutoff_ns,
                            uint64_t *freed)
{
    char *path = store_chunk_path(s, id);
    pthread_mutex_t *m = store_stripe(s, id);
    struct stat st;
    int rc;
    *freed = 0;
    pthread_mutex_lock(m);
    if (lstat(path, &st) < 0) {
        rc = -errno;
    } else if ((int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec >= cutoff_ns) {
        rc = 1;
    } else if (unlink(path) < 0) {
        rc = -errno;
    } else {
        atomic_fetch_sub(&s->chunks, 1);
        store_sub_bytes(s, (uint64_t)st.st_size);
        *freed = (uint64_t)st.st_size;
        rc = 0;
    }
    pthread_mutex_unlock(m);
    free(path);
    return rc;
}

/* ---- iteration ---- */

#define ITER_NAMES 256

struct chunkstore_iter {
    chunkstore *s;
    char top[ITER_NAMES][3];
    size_t ntop, ti;
    char mid[ITER_NAMES][3];
    size_t nmid, mi;
    int mid_loaded;
    DIR *leaf;
    char leaf_ab[3], leaf_cd[3];
};

static int iter_name_cmp(const void *a, const void *b)
{
    return memcmp(a, b, 3);
}

/* The two-hex-character subdirectories of path, sorted. */
static int iter_load_names(const char *path, char (*names)[3], size_t *n)
{
    *n = 0;
    DIR *d = opendir(path);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && *n < ITER_NAMES) {
        if (strlen(e->d_name) != 2 || !is_lower_hex(e->d_name, 2))
            continue;
        memcpy(names[*n], e->d_name, 3);
        (*n)++;
    }
    closedir(d);
    qsort(names, *n, 3, iter_name_cmp);
    return 0;
}

int chunkstore_iter_new(chunkstore *s, chunkstore_iter **out)
{
    chunkstore_iter *it = xcalloc(1, sizeof *it);
    it->s = s;
    int rc = iter_load_names(s->chunks_dir, it->top, &it->ntop);
    if (rc < 0) {
        free(it);
        return rc;
    }
    *out = it;
    return 0;
}

void chunkstore_iter_free(chunkstore_iter *it)
{
    if (!it)
        return;
    if (it->leaf)
        closedir(it->leaf);
    free(it);
}

/* Open the next leaf directory; 0 when one is open, 1 at the end. */
static int iter_next_leaf(chunkstore_iter *it)
{
    for (;;) {
        if (it->leaf) {
            closedir(it->leaf);
            it->leaf = NULL;
        }
        if (!it->mid_loaded) {
            if (it->ti >= it->ntop)
                return 1;
            char *p = xasprintf("%s/%s", it->s->chunks_dir, it->top[it->ti]);
            int rc = iter_load_names(p, it->mid, &it->nmid);
            free(p);
            if (rc < 0)
                log_warn("cannot list %s/%s: %s", it->s->chunks_dir, it->top[it->ti],
                         cairn_strerror(rc));
            it->mi = 0;
            it->mid_loaded = 1;
        }
        if (it->mi >= it->nmid) {
            it->mid_loaded = 0;
            it->ti++;
            continue;
        }
        memcpy(it->leaf_ab, it->top[it->ti], 3);
        memcpy(it->leaf_cd, it->mid[it->mi], 3);
        it->mi++;
        char *p = xasprintf("%s/%s/%s", it->s->chunks_dir, it->leaf_ab, it->leaf_cd);
        it->leaf = opendir(p);
        if (!it->leaf && errno != ENOENT)
            log_warn("cannot list %s: %s", p, strerror(errno));
        free(p);
        if (it->leaf)
            return 0;
    }
}

int chunkstore_iter_next(chunkstore_iter *it, uint8_t (*ids)[CHUNK_ID_LEN], size_t max)
{
    size_t n = 0;
    while (n < max) {
        if (!it->leaf && iter_next_leaf(it) == 1)
            break;
        struct dirent *e = readdir(it->leaf);
        if (!e) {
            closedir(it->leaf);
            it->leaf = NULL;
            continue;
        }
        if (strlen(e->d_name) != CHUNK_ID_HEX || !is_lower_hex(e->d_name, CHUNK_ID_HEX) ||
            memcmp(e->d_name, it->leaf_ab, 2) != 0 || memcmp(e->d_name + 2, it->leaf_cd, 2) != 0)
            continue;
        if (chunk_id_parse(e->d_name, ids[n]) == 0)
            n++;
    }
    return (int)n;
}
