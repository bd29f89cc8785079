/*
 * snap.c — snapshot files: a buffered writer with a whole-file CRC footer,
 * committed by tmp + fsync + rename + directory fsync, and a loader that
 * verifies a file completely before handing out any record. The format and
 * the contract are in snap.h.
 */
#include "server/meta/snap.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/util.h"

#define SNAP_MAGIC "CAIRNSNP"
#define SNAP_VERSION 1u
#define SNAP_HDR_LEN 24u          /* magic | u32 version | u32 reserved | u64 lsn */
#define SNAP_FRAME_HDR 8u         /* u32 length | u32 CRC32C(payload) */
#define SNAP_FOOTER_LEN 20u       /* u32 mark | u32 count | u64 bytes | u32 crc */
#define SNAP_FOOTER_MARK 0xFFFFFFFFu
#define SNAP_NAME_LEN 26          /* "snap-" + 16 hex + ".snap" */
#define SNAP_NAME_MAX 40
#define SNAP_BUF (1u << 20)
#define RD_WINDOW (1u << 20)
#define KEEP 2

struct snap_writer {
    char *dir;
    int dirfd;
    int fd;
    uint64_t lsn;
    char tmp[SNAP_NAME_MAX];
    char name[SNAP_NAME_MAX];
    uint8_t *buf;               /* SNAP_BUF bytes not yet written */
    size_t len;
    uint32_t crc;               /* over every byte emitted so far */
    uint64_t count, payload;
    int err;                    /* first write error; sticky */
};

/* ---- names ---------------------------------------------------------- */

static void snap_name(char out[SNAP_NAME_MAX], uint64_t lsn, int tmp)
{
    snprintf(out, SNAP_NAME_MAX, "snap-%016" PRIx64 ".snap%s", lsn, tmp ? ".tmp" : "");
}

static int parse_hex16(const char *s, uint64_t *out)
{
    uint64_t v = 0;

    for (int i = 0; i < 16; i++) {
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
    *out = v;
    return 0;
}

/* Exactly "snap-<16 lowercase hex>.snap" (tmp = 0) or the same + ".tmp". */
static int snap_name_parse(const char *s, int tmp, uint64_t *lsn)
{
    size_t want = SNAP_NAME_LEN + (tmp ? 4 : 0);

    if (strlen(s) != want || memcmp(s, "snap-", 5) != 0 ||
        strcmp(s + 21, tmp ? ".snap.tmp" : ".snap") != 0)
        return -EINVAL;
    return parse_hex16(s + 5, lsn);
}

static int cmp_u64_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x > y ? -1 : x < y;
}

/* Lsns of the snapshots in dir, newest first. */
static int list_snaps(int dirfd, uint64_t **out, size_t *n_out)
{
    DIR *d;
    struct dirent *de;
    uint64_t *v = NULL;
    size_t n = 0, cap = 0;
    int fd;

    fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
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
        if (snap_name_parse(de->d_name, 0, &lsn) < 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            v = xrealloc(v, cap * sizeof(*v));
        }
        v[n++] = lsn;
    }
    closedir(d);
    if (n > 1)
        qsort(v, n, sizeof(*v), cmp_u64_desc);
    *out = v;
    *n_out = n;
    return 0;
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
    rc = ensure_dir(dir, 0);
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

/* ---- writer --------------------------------------------------------- */

static int flush_buf(snap_writer *s)
{
    int rc;

    if (s->len == 0)
        return 0;
    rc = write_full(s->fd, s->buf, s->len);
    s->len = 0;
    return rc;
}

static int emit(snap_writer *s, const void *p, size_t n)
{
    int rc;

    s->crc = crc32c_update(s->crc, p, n);
    if (s->len + n > SNAP_BUF) {
        rc = flush_buf(s);
        if (rc < 0)
            return rc;
    }
    if (n >= SNAP_BUF)
        return write_full(s->fd, p, n);
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    return 0;
}

static void writer_free(snap_writer *s)
{
    if (s->fd >= 0)
        close(s->fd);
    if (s->dirfd >= 0)
        close(s->dirfd);
    free(s->buf);
    free(s->dir);
    free(s);
}

int snap_begin(const char *dir, uint64_t lsn, snap_writer **out)
{
    snap_writer *s;
    uint8_t h[SNAP_HDR_LEN];
    int rc;

    if (!dir || !out)
        return -EINVAL;
    s = xcalloc(1, sizeof(*s));
    s->dir = xstrdup(dir);
    s->fd = -1;
    s->dirfd = -1;
    s->lsn = lsn;
    s->buf = xmalloc(SNAP_BUF);
    snap_name(s->tmp, lsn, 1);
    snap_name(s->name, lsn, 0);

    rc = ensure_dir(dir, 0);
    if (rc < 0)
        goto fail;
    s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dirfd < 0) {
        rc = -errno;
        goto fail;
    }
    s->fd = openat(s->dirfd, s->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (s->fd < 0) {
        rc = -errno;
        goto fail;
    }
    memset(h, 0, sizeof(h));
    memcpy(h, SNAP_MAGIC, 8);
    put_le32(h + 8, SNAP_VERSION);
    put_le64(h + 16, lsn);
    rc = emit(s, h, sizeof(h));
    if (rc < 0)
        goto fail_unlink;
    *out = s;
    return 0;

fail_unlink:
    unlinkat(s->dirfd, s->tmp, 0);
fail:
    log_error("snap: cannot start %s/%s: %s", dir, s->tmp, cairn_strerror(rc));
    writer_free(s);
    return rc;
}

int snap_write(snap_writer *s, const void *rec, size_t len)
{
    uint8_t h[SNAP_FRAME_HDR];
    int rc;

    if (s->err)
        return s->err;
    if (len > SNAP_MAX_RECORD || (len > 0 && !rec))
        return len > SNAP_MAX_RECORD ? -EFBIG : -EINVAL;
    if (s->count == UINT32_MAX)
        return -EOVERFLOW;
    put_le32(h, (uint32_t)len);
    put_le32(h + 4, crc32c(rec, len));
    rc = emit(s, h, sizeof(h));
    if (rc == 0 && len > 0)
        rc = emit(s, rec, len);
    if (rc < 0) {
        s->err = rc;
        return rc;
    }
    s->count++;
    s->payload += len;
    return 0;
}

/* Remove snapshots beyond the newest KEEP and stale temporaries up to lsn
 * (a crashed writer's; a writer for a later lsn is left alone). */
static void prune(snap_writer *s)
{
    DIR *d;
    struct dirent *de;
    uint64_t *v = NULL;
    size_t n = 0;
    int fd, removed = 0;

    if (list_snaps(s->dirfd, &v, &n) == 0) {
        for (size_t i = KEEP; i < n; i++) {
            char name[SNAP_NAME_MAX];
            snap_name(name, v[i], 0);
            if (unlinkat(s->dirfd, name, 0) < 0 && errno != ENOENT)
                log_warn("snap: cannot delete old %s/%s: %s", s->dir, name, strerror(errno));
            else
                removed = 1;
        }
        free(v);
    }
    fd = openat(s->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
    } else {
        while ((de = readdir(d)) != NULL) {
            uint64_t lsn;
            if (snap_name_parse(de->d_name, 1, &lsn) == 0 && lsn <= s->lsn &&
                unlinkat(s->dirfd, de->d_name, 0) == 0)
                removed = 1;
        }
        closedir(d);
    }
    if (removed && fsync(s->dirfd) < 0)
        log_warn("snap: fsync of %s failed: %s", s->dir, strerror(errno));
}

int snap_commit(snap_writer *s)
{
    uint8_t f[SNAP_FOOTER_LEN];
    int rc = s->err;

    if (rc < 0)
        goto fail;
    put_le32(f, SNAP_FOOTER_MARK);
    put_le32(f + 4, (uint32_t)s->count);
    put_le64(f + 8, s->payload);
    rc = emit(s, f, 16);
    if (rc < 0)
        goto fail;
    put_le32(f + 16, s->crc);
    rc = emit(s, f + 16, 4);
    if (rc == 0)
        rc = flush_buf(s);
    if (rc < 0)
        goto fail;
    if (fsync(s->fd) < 0) {
        rc = -errno;
        goto fail;
    }
    if (close(s->fd) < 0) {
        s->fd = -1;
        rc = -errno;
        goto fail;
    }
    s->fd = -1;
    if (renameat(s->dirfd, s->tmp, s->dirfd, s->name) < 0) {
        rc = -errno;
        goto fail;
    }
    if (fsync(s->dirfd) < 0) {
        /* The rename may not survive a crash; report it so the caller does
         * not drop WAL segments on the strength of this snapshot. */
        rc = -errno;
        log_error("snap: fsync of %s after committing %s failed: %s", s->dir, s->name,
                  cairn_strerror(rc));
        writer_free(s);
        return rc;
    }
    prune(s);
    writer_free(s);
    return 0;

fail:
    log_error("snap: writing %s/%s failed: %s", s->dir, s->tmp, cairn_strerror(rc));
    unlinkat(s->dirfd, s->tmp, 0);
    writer_free(s);
    return rc;
}

void snap_abort(snap_writer *s)
{
    if (!s)
        return;
    unlinkat(s->dirfd, s->tmp, 0);
    writer_free(s);
}

/* ---- loader --------------------------------------------------------- */

/* Sequential read window over one file. */
typedef struct rd {
    int fd;
    uint64_t size;
    uint8_t *buf;
    size_t cap;
    uint64_t boff;
    size_t blen;
} rd;

/* Point *out at bytes [off, off + n); the caller checked they exist and
 * that n is bounded by SNAP_MAX_RECORD + SNAP_FRAME_HDR. */
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

/* Walk a whole snapshot file checking every structural rule and the
 * whole-file CRC. With fn NULL nothing is passed on (verification); with fn
 * set, records go to fn as they are read (the file was verified before). */
static int snap_walk(int fd, const char *path, uint64_t name_lsn, snap_load_fn fn, void *ctx)
{
    rd r = {.fd = fd};
    struct stat st;
    const uint8_t *p;
    uint64_t off, count = 0, total = 0;
    uint32_t crc;
    int rc;

    if (fstat(fd, &st) < 0)
        return -errno;
    r.size = (uint64_t)st.st_size;
    if (r.size < SNAP_HDR_LEN + SNAP_FOOTER_LEN) {
        log_warn("snap: %s: too short (%" PRIu64 " bytes)", path, r.size);
        rc = CAIRN_ECORRUPT;
        goto out;
    }
    rc = rd_get(&r, 0, SNAP_HDR_LEN, &p);
    if (rc < 0)
        goto out;
    if (memcmp(p, SNAP_MAGIC, 8) != 0) {
        log_warn("snap: %s: bad magic", path);
        rc = CAIRN_ECORRUPT;
        goto out;
    }
    if (get_le32(p + 8) != SNAP_VERSION) {
        log_warn("snap: %s: format version %" PRIu32 ", this build reads %u", path,
                 get_le32(p + 8), SNAP_VERSION);
        rc = CAIRN_EBADVERSION;
        goto out;
    }
    if (get_le64(p + 16) != name_lsn) {
        log_warn("snap: %s: header lsn %" PRIu64 " does not match the name", path,
                 get_le64(p + 16));
        rc = CAIRN_ECORRUPT;
        goto out;
    }
    crc = crc32c(p, SNAP_HDR_LEN);
    off = SNAP_HDR_LEN;

    for (;;) {
        uint32_t len;

        /* Room for at least the footer is guaranteed by the checks below. */
        rc = rd_get(&r, off, 4, &p);
        if (rc < 0)
            goto out;
        len = get_le32(p);
        if (len == SNAP_FOOTER_MARK)
            break;
        if (len > SNAP_MAX_RECORD || r.size - off < (uint64_t)SNAP_FRAME_HDR + len + SNAP_FOOTER_LEN) {
            log_warn("snap: %s: bad frame length %" PRIu32 " at offset %" PRIu64, path, len, off);
            rc = CAIRN_ECORRUPT;
            goto out;
        }
        rc = rd_get(&r, off, SNAP_FRAME_HDR + len, &p);
        if (rc < 0)
            goto out;
        if (crc32c(p + SNAP_FRAME_HDR, len) != get_le32(p + 4)) {
            log_warn("snap: %s: record checksum mismatch at offset %" PRIu64, path, off);
            rc = CAIRN_ECORRUPT;
            goto out;
        }
        crc = crc32c_update(crc, p, SNAP_FRAME_HDR + len);
        if (fn) {
            rc = fn(p + SNAP_FRAME_HDR, len, ctx);
            if (rc < 0)
                goto out;
        }
        count++;
        total += len;
        off += SNAP_FRAME_HDR + len;
    }

    if (r.size - off != SNAP_FOOTER_LEN) {
        log_warn("snap: %s: footer at offset %" PRIu64 " is not at the end of the file", path, off);
        rc = CAIRN_ECORRUPT;
        goto out;
    }
    rc = rd_get(&r, off, SNAP_FOOTER_LEN, &p);
    if (rc < 0)
        goto out;
    crc = crc32c_update(crc, p, 16);
    if (crc != get_le32(p + 16)) {
        log_warn("snap: %s: file checksum mismatch", path);
        rc = CAIRN_ECORRUPT;
        goto out;
    }
    if (get_le32(p + 4) != count || get_le64(p + 8) != total) {
        log_warn("snap: %s: footer counts (%" PRIu32 " records, %" PRIu64 " bytes) do not match "
                 "the file (%" PRIu64 ", %" PRIu64 ")",
                 path, get_le32(p + 4), get_le64(p + 8), count, total);
        rc = CAIRN_ECORRUPT;
        goto out;
    }
    rc = 0;
out:
    free(r.buf);
    return rc;
}

int snap_load_latest(const char *dir, uint64_t *lsn, int *skipped_newer, snap_load_fn fn, void *ctx)
{
    uint64_t *v = NULL;
    size_t n = 0;
    int dirfd, rc, newest_err = 0;

    if (skipped_newer)
        *skipped_newer = 0;
    if (!dir || !lsn || !fn)
        return -EINVAL;
    dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0)
        return -errno;
    rc = list_snaps(dirfd, &v, &n);
    if (rc < 0)
        goto out;
    if (n == 0) {
        rc = -ENOENT;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        char name[SNAP_NAME_MAX];
        char *path;
        int fd;

        snap_name(name, v[i], 0);
        path = xasprintf("%s/%s", dir, name);
        fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
        rc = fd < 0 ? -errno : snap_walk(fd, path, v[i], NULL, NULL);
        if (rc == 0) {
            rc = snap_walk(fd, path, v[i], fn, ctx);
            if (rc == 0)
                *lsn = v[i];
            close(fd);
            free(path);
            goto out;
        }
        if (fd >= 0)
            close(fd);
        if (rc == -ENOMEM) {
            free(path);
            goto out;
        }
        log_warn("snap: skipping %s: %s; trying an older snapshot", path, cairn_strerror(rc));
        if (!newest_err)
            newest_err = rc;
        free(path);
        if (skipped_newer)
            *skipped_newer = 1;
    }
    log_error("snap: no snapshot in %s verifies", dir);
    rc = newest_err == CAIRN_EBADVERSION ? CAIRN_EBADVERSION : CAIRN_ECORRUPT;
out:
    free(v);
    close(dirfd);
    return rc;
}

int snap_oldest_lsn(const char *dir, uint64_t *lsn)
{
    uint64_t *v = NULL;
    size_t n = 0;
    int dirfd, rc;

    *lsn = 0;
    dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0)
        return errno == ENOENT ? 0 : -errno;
    rc = list_snaps(dirfd, &v, &n);
    if (rc == 0 && n > 0)
        *lsn = v[n < KEEP ? n - 1 : KEEP - 1];
    free(v);
    close(dirfd);
    return rc;
}
