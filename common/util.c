/*
 * util.c — allocation, buffers, clocks, byte order, file I/O and parsers
 * (see util.h).
 */
#include "common/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void oom(size_t n)
{
    fprintf(stderr, "cairn: out of memory allocating %zu bytes\n", n);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    if (!p)
        oom(n);
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);

    if (!p)
        oom(n * size);
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);

    if (!q)
        oom(n);
    return q;
}

char *xstrdup(const char *s)
{
    char *d = strdup(s);

    if (!d)
        oom(strlen(s) + 1);
    return d;
}

char *xstrndup(const char *s, size_t n)
{
    char *d = strndup(s, n);

    if (!d)
        oom(n + 1);
    return d;
}

char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *s;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        oom(0);
    return s;
}

void buf_reserve(buf *b, size_t extra)
{
    size_t need, cap;

    if (extra > SIZE_MAX - b->len)
        oom(SIZE_MAX);
    need = b->len + extra;
    if (need <= b->cap)
        return;
    cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

void buf_append(buf *b, const void *p, size_t n)
{
    if (n == 0)
        return;
    buf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void buf_printf(buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    buf_reserve(b, 64);
    va_start(ap, fmt);
    n = vsnprintf((char *)b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0)
        oom(0);
    if ((size_t)n >= b->cap - b->len) {
        buf_reserve(b, (size_t)n + 1);
        va_start(ap, fmt);
        n = vsnprintf((char *)b->data + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0)
            oom(0);
    }
    b->len += (size_t)n;
}

uint8_t *buf_steal(buf *b, size_t *len)
{
    uint8_t *p = b->data;

    /* Callers free what they get; an empty buffer still yields a pointer so
     * that NULL never has to mean "empty" and "failed" at once. */
    if (!p)
        p = xmalloc(1);
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

void buf_free(buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t now_realtime_ns(void)
{
    return clock_ns(CLOCK_REALTIME);
}

int64_t now_mono_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

int64_t now_mono_ms(void)
{
    return clock_ns(CLOCK_MONOTONIC) / 1000000;
}

void cond_init_mono(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
}

struct timespec mono_deadline(int64_t ns_from_now)
{
    int64_t t = clock_ns(CLOCK_MONOTONIC) + (ns_from_now > 0 ? ns_from_now : 0);
    return (struct timespec){.tv_sec = (time_t)(t / 1000000000LL),
                             .tv_nsec = (long)(t % 1000000000LL)};
}

void put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

void put_le64(uint8_t *p, uint64_t v)
{
    put_le32(p, (uint32_t)v);
    put_le32(p + 4, (uint32_t)(v >> 32));
}

uint16_t get_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

uint64_t get_le64(const uint8_t *p)
{
    return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

void hex_encode(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int hex_decode(const char *in, size_t inlen, uint8_t *out, size_t n)
{
    size_t i;
    int hi, lo;

    if (n > SIZE_MAX / 2 || inlen != 2 * n)
        return -EINVAL;
    for (i = 0; i < n; i++) {
        hi = hexval(in[2 * i]);
        lo = hexval(in[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -EINVAL;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

int write_full(int fd, const void *p, size_t n)
{
    const uint8_t *c = p;
    ssize_t r;

    while (n > 0) {
        r = write(fd, c, n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        c += r;
        n -= (size_t)r;
    }
    return 0;
}

int read_full(int fd, void *p, size_t n)
{
    uint8_t *c = p;
    ssize_t r;

    while (n > 0) {
        r = read(fd, c, n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            return -EIO;
        c += r;
        n -= (size_t)r;
    }
    return 0;
}

int pwrite_full(int fd, const void *p, size_t n, off_t off)
{
    const uint8_t *c = p;
    ssize_t r;

    while (n > 0) {
        r = pwrite(fd, c, n, off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        c += r;
        n -= (size_t)r;
        off += r;
    }
    return 0;
}

int pread_full(int fd, void *p, size_t n, off_t off)
{
    uint8_t *c = p;
    ssize_t r;

    while (n > 0) {
        r = pread(fd, c, n, off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            return -EIO;
        c += r;
        n -= (size_t)r;
        off += r;
    }
    return 0;
}

int read_file(const char *path, size_t max, uint8_t **out, size_t *len)
{
    struct stat st;
    uint8_t *data = NULL, *nd;
    size_t cap, used = 0;
    ssize_t r;
    int fd, rc;

    if (max >= SIZE_MAX - 1)
        max = SIZE_MAX - 2;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        goto fail_fd;
    }
    if (S_ISDIR(st.st_mode)) {
        rc = -EISDIR;
        goto fail_fd;
    }
    if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > max) {
        rc = -EFBIG;
        goto fail_fd;
    }
    /* The size from fstat is a hint (the file may grow, or be a pipe); the
     * loop below enforces max on what is actually read. */
    cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 4096;
    if (cap > max + 1)
        cap = max + 1;
    data = malloc(cap + 1);
    if (!data) {
        rc = -ENOMEM;
        goto fail_fd;
    }
    for (;;) {
        if (used == cap) {
            if (cap > max) {
                rc = -EFBIG;
                goto fail_data;
            }
            cap = cap > (max + 1) / 2 ? max + 1 : cap * 2;
            nd = realloc(data, cap + 1);
            if (!nd) {
                rc = -ENOMEM;
                goto fail_data;
            }
            data = nd;
        }
        r = read(fd, data + used, cap - used);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            goto fail_data;
        }
        if (r == 0)
            break;
        used += (size_t)r;
    }
    if (used > max) {
        rc = -EFBIG;
        goto fail_data;
    }
    close(fd);
    data[used] = '\0';
    *out = data;
    if (len)
        *len = used;
    return 0;

fail_data:
    free(data);
fail_fd:
    close(fd);
    return rc;
}

int fsync_dir(const char *path)
{
    int fd, rc = 0;

    fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fsync(fd) < 0)
        rc = -errno;
    close(fd);
    return rc;
}

/* Directory part of path ("." when there is none); caller frees. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');

    if (!slash)
        return xstrdup(".");
    if (slash == path)
        return xstrdup("/");
    return xstrndup(path, (size_t)(slash - path));
}

int write_file_atomic(const char *path, const void *p, size_t n)
{
    char *tmp, *dir = NULL;
    int fd, rc;

    tmp = xasprintf("%s.tmp.XXXXXX", path);
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        goto fail_tmp;
    }
    /* mkostemp creates 0600; these files (addresses, ids, configs) are
     * meant to be read by the other tools of the same installation. */
    if (fchmod(fd, 0644) < 0) {
        rc = -errno;
        goto fail_fd;
    }
    rc = write_full(fd, p, n);
    if (rc < 0)
        goto fail_fd;
    if (fsync(fd) < 0) {
        rc = -errno;
        goto fail_fd;
    }
    if (close(fd) < 0) {
        rc = -errno;
        fd = -1;
        goto fail_unlink;
    }
    fd = -1;
    if (rename(tmp, path) < 0) {
        rc = -errno;
        goto fail_unlink;
    }
    dir = dir_of(path);
    rc = fsync_dir(dir);
    free(dir);
    free(tmp);
    return rc;

fail_fd:
    close(fd);
fail_unlink:
    unlink(tmp);
fail_tmp:
    free(tmp);
    return rc;
}

int mkdir_p(const char *path, mode_t mode)
{
    struct stat st;
    char *copy, *s;
    int rc = 0;

    if (!path || !*path)
        return -EINVAL;
    copy = xstrdup(path);
    for (s = copy + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        if (s[-1] != '/') {
            char saved = *s;

            *s = '\0';
            if (mkdir(copy, mode) < 0 && errno != EEXIST) {
                rc = -errno;
                break;
            }
            *s = saved;
        }
        if (*s == '\0')
            break;
    }
    if (rc == 0) {
        if (stat(path, &st) < 0)
            rc = -errno;
        else if (!S_ISDIR(st.st_mode))
            rc = -ENOTDIR;
    }
    free(copy);
    return rc;
}

/* Strict unsigned decimal: digits only (no sign, no spaces), no overflow.
 * Sets *end to the first non-digit. */
static int parse_u64_prefix(const char *s, uint64_t *out, const char **end)
{
    uint64_t v = 0;
    const char *c = s;

    if (*c < '0' || *c > '9')
        return -EINVAL;
    for (; *c >= '0' && *c <= '9'; c++) {
        unsigned d = (unsigned)(*c - '0');

        if (v > (UINT64_MAX - d) / 10)
            return -EINVAL;
        v = v * 10 + d;
    }
    *out = v;
    *end = c;
    return 0;
}

int parse_size(const char *s, uint64_t *out)
{
    static const char units[] = "KMGTPE";
    const char *end, *u;
    uint64_t v, mult = 1;
    int rc;

    if (!s)
        return -EINVAL;
    rc = parse_u64_prefix(s, &v, &end);
    if (rc < 0)
        return rc;
    if (*end) {
        u = strchr(units, *end >= 'a' && *end <= 'z' ? *end - 'a' + 'A' : *end);
        if (u) {
            mult = (uint64_t)1 << (10 * (u - units + 1));
            end++;
            if (*end == 'i' || *end == 'I')
                end++;
            if (*end == 'B' || *end == 'b')
                end++;
        } else if (*end == 'B' || *end == 'b') {
            end++;
        }
        if (*end)
            return -EINVAL;
    }
    if (v > UINT64_MAX / mult)
        return -EINVAL;
    *out = v * mult;
    return 0;
}

int parse_duration_ms(const char *s, uint64_t *out)
{
    const char *end;
    uint64_t v, mult;
    int rc;

    if (!s)
        return -EINVAL;
    rc = parse_u64_prefix(s, &v, &end);
    if (rc < 0)
        return rc;
    if (*end == '\0' || strcmp(end, "s") == 0)
        mult = 1000;
    else if (strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
        mult = 60 * 1000;
    else if (strcmp(end, "h") == 0)
        mult = 3600 * 1000;
    else if (strcmp(end, "d") == 0)
        mult = 86400 * 1000;
    else
        return -EINVAL;
    if (v > UINT64_MAX / mult)
        return -EINVAL;
    *out = v * mult;
    return 0;
}

int parse_hostport(const char *s, char *host, size_t hostlen, uint16_t *port)
{
    const char *h, *colon, *end;
    size_t hl;
    uint64_t p;

    if (!s)
        return -EINVAL;
    if (s[0] == '[') {
        /* [IPv6]:port */
        const char *close = strchr(s, ']');

        if (!close || close[1] != ':')
            return -EINVAL;
        h = s + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return -EINVAL;
        h = s;
        hl = (size_t)(colon - s);
        /* A bare IPv6 address is ambiguous with a port; require brackets. */
        if (memchr(h, ':', hl))
            return -EINVAL;
    }
    if (hl == 0 || hl >= hostlen)
        return -EINVAL;
    if (parse_u64_prefix(colon + 1, &p, &end) < 0 || *end || p > 65535)
        return -EINVAL;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (uint16_t)p;
    return 0;
}
