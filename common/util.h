/*
 * util.h — small helpers every module uses.
 *
 * xmalloc/xcalloc/xrealloc/xstrdup: for small fixed allocations; they abort
 * with a message on failure (CONVENTIONS.md 9). Anything sized by the
 * network, a file or a user is checked against a limit first and allocated
 * with plain malloc so that failure can return -ENOMEM.
 *
 * buf: a growable byte buffer. buf_* that grow abort on allocation failure,
 * so callers bound the size they append (they validate lengths first).
 * A zeroed buf is empty and valid; buf_free releases it and leaves it empty.
 *
 * All functions are thread-safe (no shared state).
 */
#ifndef CAIRN_UTIL_H
#define CAIRN_UTIL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
__attribute__((format(printf, 1, 2))) char *xasprintf(const char *fmt, ...);

typedef struct buf {
    uint8_t *data;
    size_t len;
    size_t cap;
} buf;

void buf_reserve(buf *b, size_t extra);
void buf_append(buf *b, const void *p, size_t n);
__attribute__((format(printf, 2, 3))) void buf_printf(buf *b, const char *fmt, ...);
/* Hand the bytes to the caller (who frees them) and leave b empty. Never
 * NULL, even for an empty buffer. */
uint8_t *buf_steal(buf *b, size_t *len);
void buf_free(buf *b);

/* Clocks in nanoseconds. */
int64_t now_realtime_ns(void);
int64_t now_mono_ns(void);
/* Monotonic milliseconds, for timeouts. */
int64_t now_mono_ms(void);
/* A condition variable whose timed waits take CLOCK_MONOTONIC deadlines,
 * and such a deadline ns from now. */
void cond_init_mono(pthread_cond_t *cv);
struct timespec mono_deadline(int64_t ns_from_now);

/* Little-endian integer store/load. */
void put_le16(uint8_t *p, uint16_t v);
void put_le32(uint8_t *p, uint32_t v);
void put_le64(uint8_t *p, uint64_t v);
uint16_t get_le16(const uint8_t *p);
uint32_t get_le32(const uint8_t *p);
uint64_t get_le64(const uint8_t *p);

/* Hex encode n bytes into out (2n+1 chars incl. NUL). */
void hex_encode(const uint8_t *in, size_t n, char *out);
/* Decode exactly 2n lowercase or uppercase hex chars; 0 or -EINVAL. */
int hex_decode(const char *in, size_t inlen, uint8_t *out, size_t n);

/* Full read/write loops; 0 or -errno (-EIO on short read at EOF for
 * read_full). pread/pwrite variants take an offset. */
int write_full(int fd, const void *p, size_t n);
int read_full(int fd, void *p, size_t n);
int pwrite_full(int fd, const void *p, size_t n, off_t off);
int pread_full(int fd, void *p, size_t n, off_t off);
/* Read a whole file up to max bytes into a malloc'd buffer (NUL-terminated
 * for convenience; len excludes it). -EFBIG if larger than max (also for
 * pipes and devices, checked while reading), -EISDIR, -ENOMEM, -errno. */
int read_file(const char *path, size_t max, uint8_t **out, size_t *len);
/* Write a file atomically: tmp in the same dir, fsync, rename, fsync dir.
 * The file gets mode 0644; on error no temp file is left behind. */
int write_file_atomic(const char *path, const void *p, size_t n);
/* fsync a directory by path. */
int fsync_dir(const char *path);
/* mkdir -p with mode; 0 or -errno. */
int mkdir_p(const char *path, mode_t mode);

/* Parse "4096", "4K", "4KiB", "64M", "1G", "2T" (powers of 1024; K M G T P E
 * in either case, optional "i" and "B"); 0 or -EINVAL (also on overflow). */
int parse_size(const char *s, uint64_t *out);
/* Parse "250ms", "5s", "2m", "1h", "1d", or a bare number of seconds;
 * result in ms. 0 or -EINVAL (also on overflow). */
int parse_duration_ms(const char *s, uint64_t *out);
/* Parse "host:port" or "[ipv6]:port" (port 0..65535); host copied into
 * host[hostlen] without brackets. 0 or -EINVAL (also for an empty host, a
 * host that does not fit, or an unbracketed IPv6 address). */
int parse_hostport(const char *s, char *host, size_t hostlen, uint16_t *port);

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

#endif
