/*
 * common.c — failure reporting and file helpers shared by the cases.
 */
#include "tests/posix/suite.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char detail[2048];

int pt_fail_at(const char *file, int line, const char *fmt, ...)
{
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    int n = snprintf(detail, sizeof(detail), "%s:%d: ", base, line);
    if (n < 0)
        n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail + n, sizeof(detail) - (size_t)n, fmt, ap);
    va_end(ap);
    for (char *p = detail; *p; p++)
        if (*p == '\n')
            *p = ' ';
    return 1;
}

const char *pt_detail(void) { return detail; }

const char *pt_errname(int e)
{
    static char buf[32];
    if (e == 0)
        return "0";
    const char *n = strerrorname_np(e);
    if (n)
        return n;
    snprintf(buf, sizeof(buf), "E?(%d)", e);
    return buf;
}

int pt_write_file(const char *path, const void *buf, size_t n, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (fd < 0)
        return -1;
    if (n && pt_pwrite_all(fd, buf, n, 0) != (ssize_t)n) {
        int e = errno ? errno : EIO;
        close(fd);
        errno = e;
        return -1;
    }
    return close(fd);
}

ssize_t pt_read_file(const char *path, void *buf, size_t cap)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    size_t got = 0;
    while (got < cap) {
        ssize_t r = read(fd, (char *)buf + got, cap - got);
        if (r < 0) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    return (ssize_t)got;
}

ssize_t pt_pread_all(int fd, void *buf, size_t n, off_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (char *)buf + got, n - got, off + (off_t)got);
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

ssize_t pt_pwrite_all(int fd, const void *buf, size_t n, off_t off)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = pwrite(fd, (const char *)buf + done, n - done, off + (off_t)done);
        if (r < 0)
            return -1;
        if (r == 0) {
            errno = EIO;
            return -1;
        }
        done += (size_t)r;
    }
    return (ssize_t)done;
}

/* A byte depends on the seed and its absolute offset, so any misplaced,
 * stale or lost range shows. */
static uint8_t pattern_byte(uint64_t seed, uint64_t off)
{
    uint64_t x = (off >> 3) * 0x9E3779B97F4A7C15ULL ^ (seed * 0xBF58476D1CE4E5B9ULL);
    x ^= x >> 31;
    x *= 0x94D049BB133111EBULL;
    x ^= x >> 29;
    return (uint8_t)(x >> ((off & 7) * 8));
}

void pt_fill(void *buf, size_t n, uint64_t seed, uint64_t off)
{
    uint8_t *b = buf;
    for (size_t i = 0; i < n; i++)
        b[i] = pattern_byte(seed, off + i);
}

long pt_check_fill(const void *buf, size_t n, uint64_t seed, uint64_t off)
{
    const uint8_t *b = buf;
    for (size_t i = 0; i < n; i++)
        if (b[i] != pattern_byte(seed, off + i))
            return (long)i;
    return -1;
}

long pt_first_nonzero(const void *buf, size_t n)
{
    const uint8_t *b = buf;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return (long)i;
    return -1;
}

int pt_stat(const char *path, struct stat *st) { return stat(path, st); }
int pt_lstat(const char *path, struct stat *st) { return lstat(path, st); }

int64_t pt_ns(struct timespec t) { return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec; }

int64_t pt_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return pt_ns(t);
}

void pt_wait_past(int64_t ns)
{
    struct timespec t;
    for (int i = 0; i < 2000; i++) {
        clock_gettime(CLOCK_REALTIME_COARSE, &t);
        if (pt_ns(t) > ns)
            return;
        struct timespec d = {0, 1000000};
        nanosleep(&d, NULL);
    }
}

int pt_set_times(const char *path, int64_t atime_ns, int64_t mtime_ns)
{
    struct timespec ts[2] = {
        {atime_ns / 1000000000LL, atime_ns % 1000000000LL},
        {mtime_ns / 1000000000LL, mtime_ns % 1000000000LL},
    };
    return utimensat(AT_FDCWD, path, ts, 0);
}

/* Kernel timestamps come from a coarse clock (up to a few ms behind the
 * fine one), and a server may stamp a change a little before or after the
 * client's view of the call. */
#define PT_SLACK_NS (200LL * 1000000LL)

int pt_time_near(int64_t ns, int64_t lo, int64_t hi)
{
    return ns >= lo - PT_SLACK_NS && ns <= hi + PT_SLACK_NS;
}
