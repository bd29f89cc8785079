/*
 * test_cache_chunkcache.c — the client chunk cache (cache/chunkcache.h) on a
 * real temp directory: memory LRU and byte bound, disk persistence across
 * reopen, disk LRU eviction (in session and from mtimes at open), access
 * order written back at close, corrupt and truncated files, temp file
 * cleanup, partial reads, verify-once, the bounded fd cache, queue-full
 * skips and a multi-threaded stress run.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cache/cbuf.h"
#include "cache/chunkcache.h"
#include "common/hash.h"
#include "common/util.h"
#include "tests/lib/harness.h"

/* Matches the file header length in chunkcache.c. */
#define HDR 64

typedef struct fixture {
    char *dir;
    ccache *c;
    char fifo[512];     /* a FIFO stalling the writer, if any */
} fixture;

static int setup(void **state)
{
    fixture *f = xcalloc(1, sizeof *f);
    f->dir = tmpdir_make("ccache");
    assert_non_null(f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    int rfd = -1;
    /* A failed assertion may leave the writer stalled on the FIFO; opening
     * it for reading lets ccache_close finish instead of hanging. */
    if (f->fifo[0])
        rfd = open(f->fifo, O_RDONLY | O_NONBLOCK);
    ccache_close(f->c);
    if (rfd >= 0)
        close(rfd);
    tmpdir_remove(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static void reopen(fixture *f, uint64_t mem_max, uint64_t disk_max)
{
    ccache_close(f->c);
    f->c = NULL;
    ccache_config cfg = {.dir = f->dir, .mem_max = mem_max, .disk_max = disk_max};
    assert_int_equal(ccache_open(&cfg, &f->c), 0);
}

/* Chunk n: its id and deterministic contents, so any thread can check any
 * byte it gets back. */
static void mkid(int n, uint8_t id[CHUNK_ID_LEN])
{
    char s[32];
    int len = snprintf(s, sizeof s, "chunk-%d", n);
    sha256(s, (size_t)len, id);
}

static uint8_t pattern(int n, uint64_t off)
{
    uint64_t x = (uint64_t)n * 0x9E3779B97F4A7C15ull + off * 0xBF58476D1CE4E5B9ull;
    x ^= x >> 29;
    return (uint8_t)(x ^ (x >> 17));
}

static cbuf *mkbuf(int n, size_t len)
{
    cbuf *b = cbuf_new(len);
    assert_non_null(b);
    for (size_t i = 0; i < len; i++)
        b->data[i] = pattern(n, i);
    b->len = len;
    return b;
}

static int bytes_ok(int n, uint64_t off, const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != pattern(n, off + i))
            return 0;
    return 1;
}

static void put(ccache *c, int n, size_t len, int to_disk)
{
    uint8_t id[CHUNK_ID_LEN];
    cbuf *b = mkbuf(n, len);
    mkid(n, id);
    ccache_put(c, id, b, to_disk);
    cbuf_unref(b);
}

static int has(ccache *c, int n)
{
    uint8_t id[CHUNK_ID_LEN];
    mkid(n, id);
    return ccache_has(c, id);
}

static long rd(ccache *c, int n, uint64_t off, void *dst, size_t len)
{
    uint8_t id[CHUNK_ID_LEN];
    mkid(n, id);
    return ccache_read(c, id, off, dst, len);
}

static cbuf *get(ccache *c, int n)
{
    uint8_t id[CHUNK_ID_LEN];
    mkid(n, id);
    return ccache_get(c, id);
}

static void chunk_path(const fixture *f, int n, const char *suffix, char *out, size_t outlen)
{
    uint8_t id[CHUNK_ID_LEN];
    char hex[CHUNK_ID_HEX + 1];
    mkid(n, id);
    chunk_id_hex(id, hex);
    snprintf(out, outlen, "%s/%.2s/%s%s", f->dir, hex, hex, suffix);
}

static int file_exists(const fixture *f, int n)
{
    char p[512];
    struct stat st;
    chunk_path(f, n, "", p, sizeof p);
    return stat(p, &st) == 0;
}

static void set_mtime(const fixture *f, int n, time_t sec)
{
    char p[512];
    struct timespec ts[2] = {{.tv_sec = sec}, {.tv_sec = sec}};
    chunk_path(f, n, "", p, sizeof p);
    assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
}

/* XOR one byte of chunk n's file at file offset off. */
static void flip_byte(const fixture *f, int n, off_t off)
{
    char p[512];
    uint8_t v;
    chunk_path(f, n, "", p, sizeof p);
    int fd = open(p, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &v, 1, off), 1);
    v ^= 0x40;
    assert_int_equal(pwrite(fd, &v, 1, off), 1);
    close(fd);
}

static void truncate_file(const fixture *f, int n, off_t len)
{
    char p[512];
    chunk_path(f, n, "", p, sizeof p);
    assert_int_equal(truncate(p, len), 0);
}

static ccache_stats stats(ccache *c)
{
    ccache_stats s;
    ccache_get_stats(c, &s);
    return s;
}

/* ---- memory tier ---- */

static void test_mem_lru_order_and_bound(void **state)
{
    fixture *f = *state;
    ccache_config cfg = {.mem_max = 3000};
    uint8_t out[1000];
    assert_int_equal(ccache_open(&cfg, &f->c), 0);

    put(f->c, 1, 1000, 1); /* to_disk is ignored without a disk tier */
    put(f->c, 2, 1000, 0);
    put(f->c, 3, 1000, 0);
    assert_int_equal(stats(f->c).mem_bytes, 3000);
    /* Touch 1 so that 2 is now least recently used. */
    assert_int_equal(rd(f->c, 1, 0, out, 10), 10);
    put(f->c, 4, 1000, 0);
    assert_false(has(f->c, 2));
    assert_true(has(f->c, 1));
    assert_true(has(f->c, 3));
    assert_true(has(f->c, 4));
    ccache_stats s = stats(f->c);
    assert_int_equal(s.mem_bytes, 3000);
    assert_int_equal(s.mem_items, 3);

    cbuf *b = get(f->c, 3);
    assert_non_null(b);
    assert_int_equal(b->len, 1000);
    assert_true(bytes_ok(3, 0, b->data, b->len));
    cbuf_unref(b);
    assert_null(get(f->c, 2));

    /* Order is now 3, 4, 1 (most recent first); 1500 more bytes must push
     * out 1 and then 4, in that order, and stop there. */
    put(f->c, 5, 1500, 0);
    assert_false(has(f->c, 1));
    assert_false(has(f->c, 4));
    assert_true(has(f->c, 3));
    assert_true(has(f->c, 5));
    s = stats(f->c);
    assert_int_equal(s.mem_bytes, 2500);
    assert_int_equal(s.mem_items, 2);
    /* Exactly fills the budget: nothing is evicted. */
    put(f->c, 6, 500, 0);
    s = stats(f->c);
    assert_int_equal(s.mem_bytes, 3000);
    assert_int_equal(s.mem_items, 3);
    /* 5, 6 newer than 3: one more byte evicts 3 only. */
    put(f->c, 8, 1, 0);
    assert_false(has(f->c, 3));
    assert_true(has(f->c, 5));
    assert_true(has(f->c, 6));
    assert_true(has(f->c, 8));
    assert_int_equal(stats(f->c).mem_bytes, 2001);

    /* A chunk larger than the whole tier is not kept (and evicts nothing). */
    put(f->c, 7, 3001, 0);
    assert_false(has(f->c, 7));
    assert_int_equal(stats(f->c).mem_items, 3);

    s = stats(f->c);
    assert_int_equal(s.hits_mem, 2);
    assert_int_equal(s.misses, 1);
}

static void test_mem_disabled(void **state)
{
    fixture *f = *state;
    ccache_config cfg = {.mem_max = 0};
    uint8_t out[16];
    assert_int_equal(ccache_open(&cfg, &f->c), 0);
    put(f->c, 1, 100, 1);
    assert_false(has(f->c, 1));
    assert_null(get(f->c, 1));
    assert_int_equal(rd(f->c, 1, 0, out, sizeof out), -ENOENT);
    ccache_flush(f->c);
    ccache_stats s = stats(f->c);
    assert_int_equal(s.mem_items, 0);
    assert_int_equal(s.misses, 2);
}

/* ---- disk tier ---- */

static void test_disk_roundtrip_reopen(void **state)
{
    fixture *f = *state;
    reopen(f, 0, 1 << 20);
    for (int n = 0; n < 5; n++)
        put(f->c, n, 1000 + (size_t)n * 3000, 1);
    put(f->c, 5, 0, 1); /* an empty chunk is a chunk too */
    reopen(f, 0, 1 << 20);
    ccache_stats s = stats(f->c);
    assert_int_equal(s.disk_items, 6);
    assert_int_equal(s.disk_bytes, 5 * 1000 + 3000 * (0 + 1 + 2 + 3 + 4));
    for (int n = 0; n < 6; n++) {
        assert_true(file_exists(f, n));
        cbuf *b = get(f->c, n);
        assert_non_null(b);
        assert_int_equal(b->len, n == 5 ? 0 : 1000 + (size_t)n * 3000);
        assert_true(bytes_ok(n, 0, b->data, b->len));
        cbuf_unref(b);
    }
    s = stats(f->c);
    assert_int_equal(s.hits_disk, 6);
    assert_int_equal(s.misses, 0);
    assert_int_equal(s.disk_corrupt, 0);
    assert_int_equal(s.mem_items, 0); /* memory tier disabled */
    assert_null(get(f->c, 99));
}

static void test_get_loads_into_memory(void **state)
{
    fixture *f = *state;
    reopen(f, 1 << 20, 1 << 20);
    put(f->c, 1, 5000, 1);
    reopen(f, 1 << 20, 1 << 20);
    assert_int_equal(stats(f->c).mem_items, 0);
    cbuf *b = get(f->c, 1);
    assert_non_null(b);
    cbuf_unref(b);
    ccache_stats s = stats(f->c);
    assert_int_equal(s.mem_items, 1);
    assert_int_equal(s.mem_bytes, 5000);
    assert_int_equal(s.hits_disk, 1);
    b = get(f->c, 1);
    assert_non_null(b);
    assert_true(bytes_ok(1, 0, b->data, b->len));
    cbuf_unref(b);
    assert_int_equal(stats(f->c).hits_mem, 1);
}

static void test_disk_lru_eviction(void **state)
{
    fixture *f = *state;
    uint8_t out[10];
    reopen(f, 0, 3000);
    put(f->c, 1, 1000, 1);
    put(f->c, 2, 1000, 1);
    put(f->c, 3, 1000, 1);
    ccache_flush(f->c);
    assert_int_equal(stats(f->c).disk_items, 3);
    /* Order 3, 2, 1; reading 1 makes it 1, 3, 2. */
    assert_int_equal(rd(f->c, 1, 0, out, sizeof out), 10);
    put(f->c, 4, 1000, 1);
    ccache_flush(f->c);
    assert_false(has(f->c, 2));
    assert_false(file_exists(f, 2));
    for (int n = 1; n <= 4; n += n == 1 ? 2 : 1) {
        assert_true(has(f->c, n));
        assert_true(file_exists(f, n));
    }
    ccache_stats s = stats(f->c);
    assert_int_equal(s.disk_bytes, 3000);
    assert_int_equal(s.disk_items, 3);

    /* 4, 1, 3: get touches 3 -> 3, 4, 1; a 2000-byte chunk evicts 1 and 4. */
    cbuf *b = get(f->c, 3);
    assert_non_null(b);
    cbuf_unref(b);
    put(f->c, 5, 2000, 1);
    ccache_flush(f->c);
    assert_false(file_exists(f, 1));
    assert_false(file_exists(f, 4));
    assert_true(file_exists(f, 3));
    assert_true(file_exists(f, 5));
    s = stats(f->c);
    assert_int_equal(s.disk_bytes, 3000);
    assert_int_equal(s.disk_items, 2);

    /* Larger than the whole tier: skipped, nothing evicted. */
    put(f->c, 6, 3001, 1);
    ccache_flush(f->c);
    assert_false(has(f->c, 6));
    assert_true(file_exists(f, 3));
    assert_int_equal(stats(f->c).disk_skipped, 1);
}

static void test_open_orders_by_mtime_and_trims(void **state)
{
    fixture *f = *state;
    reopen(f, 0, 10000);
    put(f->c, 1, 1000, 1);
    put(f->c, 2, 1000, 1);
    put(f->c, 3, 1000, 1);
    ccache_close(f->c);
    f->c = NULL;
    set_mtime(f, 1, 3000000);
    set_mtime(f, 2, 1000000);
    set_mtime(f, 3, 2000000);

    reopen(f, 0, 2000);
    assert_false(file_exists(f, 2));
    assert_true(file_exists(f, 1));
    assert_true(file_exists(f, 3));
    assert_int_equal(stats(f->c).disk_items, 2);
    assert_int_equal(stats(f->c).disk_bytes, 2000);

    put(f->c, 4, 1000, 1);
    ccache_flush(f->c);
    assert_false(file_exists(f, 3));
    assert_true(file_exists(f, 1));
    assert_true(file_exists(f, 4));
}

static void test_access_order_persists(void **state)
{
    fixture *f = *state;
    char p[512];
    struct stat st;
    uint8_t out[8];

    reopen(f, 0, 10000);
    put(f->c, 1, 1000, 1);
    put(f->c, 2, 1000, 1);
    put(f->c, 3, 1000, 1);
    ccache_close(f->c);
    f->c = NULL;
    set_mtime(f, 1, 1000000);
    set_mtime(f, 2, 2000000);
    set_mtime(f, 3, 3000000);

    reopen(f, 0, 3000);
    assert_int_equal(rd(f->c, 1, 0, out, sizeof out), 8);
    /* Only the index is touched on a hit. */
    chunk_path(f, 1, "", p, sizeof p);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mtime, 1000000);

    reopen(f, 0, 3000); /* close writes the access back */
    assert_int_equal(stat(p, &st), 0);
    assert_true(st.st_mtime > 3000000);
    put(f->c, 4, 1000, 1);
    ccache_flush(f->c);
    assert_true(file_exists(f, 1));
    assert_false(file_exists(f, 2));
    assert_true(file_exists(f, 3));
    assert_true(file_exists(f, 4));
}

static void test_corrupt_payload_read(void **state)
{
    fixture *f = *state;
    uint8_t out[4096];
    reopen(f, 0, 1 << 20);
    put(f->c, 1, 10000, 1);
    reopen(f, 0, 1 << 20);
    /* The damage is outside the range read: the first use still checks
     * the whole payload. */
    flip_byte(f, 1, HDR + 9000);
    assert_int_equal(rd(f->c, 1, 0, out, sizeof out), -ENOENT);
    ccache_stats s = stats(f->c);
    assert_int_equal(s.disk_corrupt, 1);
    assert_int_equal(s.misses, 1);
    assert_int_equal(s.hits_disk, 0);
    assert_int_equal(s.disk_items, 0);
    assert_int_equal(s.disk_bytes, 0);
    assert_false(has(f->c, 1));
    ccache_flush(f->c);
    assert_false(file_exists(f, 1));
    assert_int_equal(rd(f->c, 1, 0, out, sizeof out), -ENOENT);
    assert_int_equal(stats(f->c).disk_corrupt, 1);
}

static void test_corrupt_payload_get(void **state)
{
    fixture *f = *state;
    reopen(f, 1 << 20, 1 << 20);
    put(f->c, 1, 10000, 1);
    put(f->c, 2, 10000, 1);
    reopen(f, 1 << 20, 1 << 20);
    flip_byte(f, 1, HDR);
    assert_null(get(f->c, 1));
    ccache_stats s = stats(f->c);
    assert_int_equal(s.disk_corrupt, 1);
    assert_int_equal(s.misses, 1);
    assert_int_equal(s.disk_items, 1);
    assert_int_equal(s.mem_items, 0);
    ccache_flush(f->c);
    assert_false(file_exists(f, 1));
    assert_true(file_exists(f, 2));
    cbuf *b = get(f->c, 2);
    assert_non_null(b);
    assert_true(bytes_ok(2, 0, b->data, b->len));
    cbuf_unref(b);
}

static void test_corrupt_header_removed_at_open(void **state)
{
    fixture *f = *state;
    reopen(f, 0, 1 << 20);
    put(f->c, 1, 1000, 1);
    put(f->c, 2, 1000, 1);
    ccache_close(f->c);
    f->c = NULL;
    flip_byte(f, 1, 10); /* inside the payload length */
    reopen(f, 0, 1 << 20);
    assert_false(file_exists(f, 1));
    assert_false(has(f->c, 1));
    ccache_stats s = stats(f->c);
    assert_int_equal(s.disk_corrupt, 1);
    assert_int_equal(s.disk_items, 1);
    assert_int_equal(s.disk_bytes, 1000);
}

static void test_truncated_at_open(void **state)
{
    fixture *f = *state;
    uint8_t out[100];
    reopen(f, 0, 1 << 20);
    put(f->c, 1, 1000, 1);
    put(f->c, 2, 1000, 1);
    ccache_close(f->c);
    f->c = NULL;
    truncate_file(f, 1, HDR + 999);
    truncate_file(f, 2, 20); /* not even a whole header */
    reopen(f, 0, 1 << 20);
    assert_false(file_exists(f, 1));
    assert_false(file_exists(f, 2));
    assert_int_equal(rd(f->c, 1, 0, out, sizeof out), -ENOENT);
    ccache_stats s = stats(f->c);
    assert_int_equal(s.disk_corrupt, 2);
    assert_int_equal(s.disk_items, 0);
}

static void test_truncated_after_open(void **state)
{
    fixture *f = *state;
    uint8_t out[100];
    reopen(f, 0, 1 << 20);
    put(f->c, 1, 1000, 1);
    put(f->c, 2, 1000, 1);
    reopen(f, 0, 1 << 20);
    assert_int_equal(stats(f->c).disk_items, 2);
    truncate_file(f, 1, HDR + 500);
    truncate_file(f, 2, HDR + 500);
    /* Within the bytes still present: caught by the length check. */
    assert_int_equal(rd(f->c, 1, 0, out, sizeof out), -ENOENT);
    assert_null(get(f->c, 2));
    ccache_flush(f->c);
    assert_false(file_exists(f, 1));
    assert_false(file_exists(f, 2));
    ccache_stats s = stats(f->c);
    assert_int_equal(s.disk_corrupt, 2);
    assert_int_equal(s.misses, 2);
    assert_int_equal(s.disk_items, 0);
}

static void write_junk(const char *path)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("junk", fp);
    fclose(fp);
}

static void test_temp_files_removed_at_open(void **state)
{
    fixture *f = *state;
    char p[512], other[600], readme[600];
    struct stat st;

    reopen(f, 0, 1 << 20);
    put(f->c, 1, 1000, 1);
    ccache_close(f->c);
    f->c = NULL;
    /* An interrupted write of chunk 2 (its subdirectory may not exist). */
    chunk_path(f, 2, ".tmp", p, sizeof p);
    char *slash = strrchr(p, '/');
    *slash = '\0';
    mkdir(p, 0700);
    *slash = '/';
    write_junk(p);
    /* Files that are not ours are left alone. */
    chunk_path(f, 1, "", other, sizeof other);
    strcpy(strrchr(other, '/') + 1, "notes.txt");
    write_junk(other);
    snprintf(readme, sizeof readme, "%s/README", f->dir);
    write_junk(readme);

    reopen(f, 0, 1 << 20);
    assert_int_equal(stat(p, &st), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(stat(other, &st), 0);
    assert_int_equal(stat(readme, &st), 0);
    assert_true(has(f->c, 1));
    assert_false(has(f->c, 2));
    ccache_stats s = stats(f->c);
    assert_int_equal(s.disk_items, 1);
    assert_int_equal(s.disk_corrupt, 0);
}

/* ---- partial reads ---- */

static void check_reads(ccache *c, int n, size_t size)
{
    static const struct {
        uint64_t off;
        size_t len;
    } cases[] = {
        {0, 4096}, {4096 * 5, 4096}, {1, 1}, {12345, 7000}, {99990, 4096},
        {99999, 1}, {100000, 4096}, {200000, 10}, {0, 200000}, {50000, 0},
    };
    uint8_t *out = xmalloc(200000);

    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        uint64_t off = cases[i].off;
        size_t len = cases[i].len;
        size_t want = off >= size ? 0 : MIN(len, size - off);
        memset(out, 0xEE, 200000);
        long got = rd(c, n, off, out, len);
        assert_int_equal(got, (long)want);
        assert_true(bytes_ok(n, off, out, want));
        /* Nothing is written past what was copied. */
        if (want < 200000)
            assert_int_equal(out[want], 0xEE);
    }
    free(out);
}

static void test_read_partial_disk(void **state)
{
    fixture *f = *state;
    reopen(f, 0, 1 << 20);
    put(f->c, 1, 100000, 1);
    reopen(f, 0, 1 << 20); /* unverified: the first read checks the file */
    check_reads(f->c, 1, 100000);
    ccache_stats s = stats(f->c);
    assert_int_equal(s.hits_disk, 10);
    assert_int_equal(s.mem_items, 0);
    assert_int_equal(s.disk_corrupt, 0);
}

static void test_read_partial_mem(void **state)
{
    fixture *f = *state;
    ccache_config cfg = {.mem_max = 1 << 20};
    assert_int_equal(ccache_open(&cfg, &f->c), 0);
    put(f->c, 1, 100000, 0);
    check_reads(f->c, 1, 100000);
    assert_int_equal(stats(f->c).hits_mem, 10);
}

/* Once a file is verified, reads are served by pread alone: damage done
 * after verification goes unnoticed by ccache_read (that is the point of
 * verifying once), while ccache_get, which reads everything anyway, still
 * checks the whole payload. */
static void test_read_verifies_once(void **state)
{
    fixture *f = *state;
    uint8_t out[4096];
    reopen(f, 0, 1 << 20);
    put(f->c, 1, 20000, 1);
    reopen(f, 0, 1 << 20);
    assert_int_equal(rd(f->c, 1, 0, out, sizeof out), 4096);
    assert_true(bytes_ok(1, 0, out, 4096));

    flip_byte(f, 1, HDR + 5000);
    assert_int_equal(rd(f->c, 1, 0, out, sizeof out), 4096);
    assert_true(bytes_ok(1, 0, out, 4096));
    assert_int_equal(rd(f->c, 1, 4096, out, sizeof out), 4096);
    assert_false(bytes_ok(1, 4096, out, 4096));
    assert_int_equal(out[5000 - 4096], pattern(1, 5000) ^ 0x40);
    assert_int_equal(stats(f->c).disk_corrupt, 0);

    assert_null(get(f->c, 1));
    assert_int_equal(stats(f->c).disk_corrupt, 1);
    assert_int_equal(rd(f->c, 1, 0, out, sizeof out), -ENOENT);
    ccache_flush(f->c);
    assert_false(file_exists(f, 1));
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *de;
    int n = 0;
    assert_non_null(d);
    while ((de = readdir(d)) != NULL)
        n += de->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the directory stream's own descriptor */
}

static void test_fd_cache_bounded(void **state)
{
    fixture *f = *state;
    uint8_t out[64];
    ccache_config cfg = {.dir = f->dir, .disk_max = 1 << 20, .fd_max = 2};
    assert_int_equal(ccache_open(&cfg, &f->c), 0);
    for (int n = 0; n < 6; n++)
        put(f->c, n, 1000, 1);
    ccache_flush(f->c);
    int base = count_fds();
    for (int round = 0; round < 3; round++)
        for (int n = 0; n < 6; n++) {
            assert_int_equal(rd(f->c, n, 100, out, sizeof out), 64);
            assert_true(bytes_ok(n, 100, out, 64));
            assert_true(count_fds() <= base + 2);
        }
    assert_int_equal(count_fds(), base + 2);
    ccache_close(f->c);
    f->c = NULL;
    assert_int_equal(count_fds(), base - 2); /* the directory and its lock */
}

static void test_drop(void **state)
{
    fixture *f = *state;
    reopen(f, 1 << 20, 1 << 20);
    put(f->c, 1, 1000, 1);
    put(f->c, 2, 1000, 1);
    ccache_flush(f->c);
    uint8_t id[CHUNK_ID_LEN];
    mkid(1, id);
    ccache_drop(f->c, id);
    assert_false(has(f->c, 1));
    assert_null(get(f->c, 1));
    ccache_flush(f->c);
    assert_false(file_exists(f, 1));
    assert_true(file_exists(f, 2));
    ccache_stats s = stats(f->c);
    assert_int_equal(s.mem_items, 1);
    assert_int_equal(s.disk_items, 1);
    assert_int_equal(s.disk_corrupt, 0);
    /* A put after the drop is written again, in order. */
    put(f->c, 1, 1000, 1);
    ccache_drop(f->c, id);
    put(f->c, 1, 1000, 1);
    ccache_flush(f->c);
    assert_true(file_exists(f, 1));
    reopen(f, 0, 1 << 20);
    assert_true(has(f->c, 1));
}

static void test_second_open_busy(void **state)
{
    fixture *f = *state;
    ccache *other = NULL;
    ccache_config cfg = {.dir = f->dir, .disk_max = 1 << 20};
    reopen(f, 0, 1 << 20);
    assert_int_equal(ccache_open(&cfg, &other), -EBUSY);
    ccache_close(f->c);
    f->c = NULL;
    assert_int_equal(ccache_open(&cfg, &other), 0);
    ccache_close(other);
}

/* The writer is stalled deterministically by a FIFO where it creates the
 * temp file of chunk n: opening a FIFO for writing blocks until a reader
 * appears. Returns the FIFO's path (kept in the fixture for teardown). */
static const char *stall_writer_on(fixture *f, int n)
{
    char *fifo = f->fifo;
    chunk_path(f, n, ".tmp", fifo, sizeof f->fifo);
    char *slash = strrchr(fifo, '/');
    *slash = '\0';
    assert_true(mkdir(fifo, 0700) == 0 || errno == EEXIST);
    *slash = '/';
    assert_int_equal(mkfifo(fifo, 0600), 0);
    return fifo;
}

/* Wait until another thread of this process (the writer) sits in openat,
 * i.e. has taken the stalled job: /proc/self/task/TID/syscall starts with
 * the number of the system call a blocked thread is in. */
static void wait_writer_stalled(void)
{
    int64_t deadline = now_mono_ms() + 10000;
    pid_t self = (pid_t)syscall(SYS_gettid);
    for (;;) {
        DIR *d = opendir("/proc/self/task");
        struct dirent *de;
        int found = 0;
        assert_non_null(d);
        while (!found && (de = readdir(d)) != NULL) {
            char p[300];
            long nr = -1;
            if (de->d_name[0] == '.' || atoi(de->d_name) == self)
                continue;
            snprintf(p, sizeof p, "/proc/self/task/%s/syscall", de->d_name);
            FILE *fp = fopen(p, "r");
            if (!fp)
                continue;
            if (fscanf(fp, "%ld", &nr) == 1 && nr == SYS_openat)
                found = 1;
            fclose(fp);
        }
        closedir(d);
        if (found)
            return;
        assert_true(now_mono_ms() < deadline);
        sched_yield();
    }
}

static void test_queue_full_skips(void **state)
{
    fixture *f = *state;
    uint8_t got[2000];
    ccache_config cfg = {.dir = f->dir, .disk_max = 1 << 20, .queue_max = 2};
    assert_int_equal(ccache_open(&cfg, &f->c), 0);
    const char *fifo = stall_writer_on(f, 1);

    put(f->c, 1, 1000, 1);
    wait_writer_stalled();
    /* 1 is being written; 2 and 3 fill the queue; 4 is skipped. */
    put(f->c, 2, 1000, 1);
    put(f->c, 3, 1000, 1);
    put(f->c, 4, 1000, 1);
    assert_int_equal(stats(f->c).disk_skipped, 1);
    assert_false(has(f->c, 4));
    assert_true(has(f->c, 3));
    /* Waiting to be written counts as cached, memory tier or not. */
    assert_true(has(f->c, 1));
    cbuf *b = get(f->c, 1);
    assert_non_null(b);
    assert_true(bytes_ok(1, 0, b->data, b->len));
    cbuf_unref(b);

    int rfd = open(fifo, O_RDONLY | O_NONBLOCK);
    assert_true(rfd >= 0);
    ccache_flush(f->c);
    assert_int_equal(read(rfd, got, sizeof got), HDR + 1000);
    assert_true(bytes_ok(1, 0, got + HDR, 1000));
    close(rfd);
    ccache_stats s = stats(f->c);
    assert_int_equal(s.disk_items, 3);
    assert_int_equal(s.disk_skipped, 1);

    /* Chunk 1's name is now the FIFO: the next open must reject it without
     * hanging and keep the others. */
    reopen(f, 0, 1 << 20);
    assert_false(has(f->c, 1));
    assert_false(file_exists(f, 1));
    assert_true(has(f->c, 2));
    s = stats(f->c);
    assert_int_equal(s.disk_corrupt, 1);
    assert_int_equal(s.disk_items, 2);
}

/* ccache_drop of a chunk the writer is writing right now: the file must
 * not survive; a put after the drop must be written afresh. */
static void test_drop_while_writing(void **state)
{
    fixture *f = *state;
    uint8_t id[CHUNK_ID_LEN], got[2000];
    ccache_config cfg = {.dir = f->dir, .disk_max = 1 << 20};
    assert_int_equal(ccache_open(&cfg, &f->c), 0);

    const char *fifo = stall_writer_on(f, 1);
    mkid(1, id);
    put(f->c, 1, 1000, 1);
    wait_writer_stalled();
    put(f->c, 2, 1000, 1);
    ccache_drop(f->c, id);
    assert_false(has(f->c, 1));
    assert_null(get(f->c, 1));
    int rfd = open(fifo, O_RDONLY | O_NONBLOCK);
    assert_true(rfd >= 0);
    ccache_flush(f->c);
    assert_int_equal(read(rfd, got, sizeof got), HDR + 1000);
    close(rfd);
    assert_false(file_exists(f, 1));
    assert_false(has(f->c, 1));
    assert_true(file_exists(f, 2));
    ccache_stats s = stats(f->c);
    assert_int_equal(s.disk_items, 1);
    assert_int_equal(s.disk_bytes, 1000);

    fifo = stall_writer_on(f, 3);
    mkid(3, id);
    put(f->c, 3, 1000, 1);
    wait_writer_stalled();
    ccache_drop(f->c, id);
    put(f->c, 3, 1000, 1);
    assert_true(has(f->c, 3));
    rfd = open(fifo, O_RDONLY | O_NONBLOCK);
    assert_true(rfd >= 0);
    ccache_flush(f->c);
    assert_int_equal(read(rfd, got, sizeof got), HDR + 1000);
    close(rfd);
    f->fifo[0] = '\0';
    assert_true(file_exists(f, 3));
    cbuf *b = get(f->c, 3);
    assert_non_null(b);
    assert_true(bytes_ok(3, 0, b->data, b->len));
    cbuf_unref(b);
    s = stats(f->c);
    assert_int_equal(s.disk_items, 2);
    assert_int_equal(s.disk_skipped, 0);
    /* What is on disk is a regular file again, not the FIFO. */
    reopen(f, 0, 1 << 20);
    assert_true(has(f->c, 3));
    assert_int_equal(stats(f->c).disk_corrupt, 0);
}

/* ---- concurrency ---- */

#define NTHREADS 8
#define NOPS 3000
#define NIDS 64

static size_t stress_len(int n)
{
    return 1 + (size_t)((n * 7919) % 40000);
}

typedef struct stress_arg {
    ccache *c;
    unsigned seed;
    int bad;        /* wrong bytes or lengths seen (checked by main) */
    int hits;
} stress_arg;

static void *stress_thread(void *p)
{
    stress_arg *a = p;
    uint8_t *out = xmalloc(40000);
    uint8_t id[CHUNK_ID_LEN];

    for (int i = 0; i < NOPS; i++) {
        int n = (int)(rand_r(&a->seed) % NIDS);
        int op = (int)(rand_r(&a->seed) % 100);
        size_t len = stress_len(n);
        mkid(n, id);
        if (op < 30) {
            cbuf *b = cbuf_new(len);
            for (size_t k = 0; k < len; k++)
                b->data[k] = pattern(n, k);
            b->len = len;
            ccache_put(a->c, id, b, op & 1);
            cbuf_unref(b);
        } else if (op < 50) {
            cbuf *b = ccache_get(a->c, id);
            if (b) {
                a->hits++;
                if (b->len != len || !bytes_ok(n, 0, b->data, b->len))
                    a->bad++;
                cbuf_unref(b);
            }
        } else if (op < 95) {
            uint64_t off = rand_r(&a->seed) % (len + 100);
            size_t want = 1 + rand_r(&a->seed) % 8192;
            long got = ccache_read(a->c, id, off, out, want);
            if (got >= 0) {
                a->hits++;
                size_t exp = off >= len ? 0 : MIN(want, len - off);
                if ((size_t)got != exp || !bytes_ok(n, off, out, (size_t)got))
                    a->bad++;
            } else if (got != -ENOENT) {
                a->bad++;
            }
        } else if (op < 98) {
            (void)ccache_has(a->c, id);
        } else {
            ccache_drop(a->c, id);
        }
    }
    free(out);
    return NULL;
}

static void test_concurrent(void **state)
{
    fixture *f = *state;
    pthread_t th[NTHREADS];
    stress_arg args[NTHREADS];
    const uint64_t mem_max = 8 * 20000, disk_max = 24 * 20000;
    ccache_config cfg = {.dir = f->dir, .mem_max = mem_max, .disk_max = disk_max,
                         .queue_max = 8, .fd_max = 4};

    /* Half the ids start out on disk unverified, so first-use checks race
     * with eviction and with each other. */
    reopen(f, 0, disk_max);
    for (int n = 0; n < NIDS; n += 2)
        put(f->c, n, stress_len(n), 1);
    ccache_close(f->c);
    f->c = NULL;
    assert_int_equal(ccache_open(&cfg, &f->c), 0);

    for (int i = 0; i < NTHREADS; i++) {
        args[i] = (stress_arg){.c = f->c, .seed = 1234u + (unsigned)i};
        assert_int_equal(pthread_create(&th[i], NULL, stress_thread, &args[i]), 0);
    }
    int bad = 0, hits = 0;
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
        bad += args[i].bad;
        hits += args[i].hits;
    }
    assert_int_equal(bad, 0);
    assert_true(hits > 0);
    ccache_flush(f->c);

    ccache_stats s = stats(f->c);
    assert_true(s.mem_bytes <= mem_max);
    assert_true(s.disk_bytes <= disk_max);
    assert_int_equal(s.disk_corrupt, 0);
    assert_int_equal(s.hits_mem + s.hits_disk, (uint64_t)hits);

    /* The index and the directory agree. */
    uint64_t files = 0, bytes = 0;
    for (int n = 0; n < NIDS; n++) {
        char p[512];
        struct stat st;
        chunk_path(f, n, "", p, sizeof p);
        if (stat(p, &st) == 0) {
            files++;
            bytes += (uint64_t)st.st_size - HDR;
            assert_int_equal(st.st_size, HDR + stress_len(n));
        }
    }
    assert_int_equal(files, s.disk_items);
    assert_int_equal(bytes, s.disk_bytes);

    reopen(f, 0, disk_max);
    ccache_stats r = stats(f->c);
    assert_int_equal(r.disk_items, s.disk_items);
    assert_int_equal(r.disk_bytes, s.disk_bytes);
    assert_int_equal(r.disk_corrupt, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_mem_lru_order_and_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mem_disabled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_roundtrip_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_loads_into_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_lru_eviction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_orders_by_mtime_and_trims, setup, teardown),
        cmocka_unit_test_setup_teardown(test_access_order_persists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_payload_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_payload_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_header_removed_at_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_at_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_after_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_temp_files_removed_at_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_partial_disk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_partial_mem, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_verifies_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fd_cache_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_open_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_full_skips, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drop_while_writing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
