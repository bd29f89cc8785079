/*
 * test_chunk_store.c — the chunk store (server/chunk/store.h) on a real
 * temp directory: round trips, hash mismatch, idempotent put, corruption
 * quarantine, tmp cleanup and rescan, compression, concurrent puts,
 * O_DIRECT writes.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/hash.h"
#include "common/util.h"
#include "common/chunkfile.h"
#include "server/chunk/store.h"

typedef struct fixture {
    char dir[64];
    chunkstore *s;
} fixture;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    fixture *f = xcalloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/cairn-store-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    chunkstore_config cfg = {.dir = f->dir};
    assert_int_equal(chunkstore_open(&cfg, &f->s), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    chunkstore_free(f->s);
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static void reopen_with(fixture *f, int level, int direct)
{
    chunkstore_free(f->s);
    chunkstore_config cfg = {.dir = f->dir, .compress_level = level, .direct_io = direct};
    assert_int_equal(chunkstore_open(&cfg, &f->s), 0);
}

static void reopen(fixture *f, int level)
{
    reopen_with(f, level, 0);
}

static size_t count_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static size_t count_sub(const fixture *f, const char *sub)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", f->dir, sub);
    return count_files(path);
}

static uint8_t *pattern(size_t n, unsigned seed)
{
    uint8_t *p = xmalloc(n + 1);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 31 + seed + (i >> 8));
    return p;
}

/* chunkstore_get of id answers exactly d[0..n). */
static void expect_chunk(fixture *f, const uint8_t id[CHUNK_ID_LEN], const uint8_t *d, size_t n)
{
    uint8_t *out;
    size_t outlen;
    assert_int_equal(chunkstore_get(f->s, id, &out, &outlen), 0);
    assert_int_equal(outlen, n);
    assert_memory_equal(out, d, n);
    free(out);
}

static void test_roundtrip(void **state)
{
    fixture *f = *state;
    size_t n = 300000;
    uint8_t *d = pattern(n, 1);
    uint8_t id[CHUNK_ID_LEN];
    sha256(d, n, id);

    assert_int_equal(chunkstore_has(f->s, id), 0);
    assert_int_equal(chunkstore_put(f->s, id, d, n), 0);
    assert_int_equal(chunkstore_has(f->s, id), 1);
    uint64_t raw;
    assert_int_equal(chunkstore_stat(f->s, id, &raw), 0);
    assert_int_equal(raw, n);
    expect_chunk(f, id, d, n);

    chunkstore_stats st;
    chunkstore_get_stats(f->s, &st);
    assert_int_equal(st.chunks, 1);
    assert_int_equal(st.bytes, n + CHUNKFILE_HDR_LEN);
    assert_int_equal(count_sub(f, "tmp"), 0);

    assert_int_equal(chunkstore_delete(f->s, id), 0);
    assert_int_equal(chunkstore_delete(f->s, id), -ENOENT);
    uint8_t *out;
    size_t outlen;
    assert_int_equal(chunkstore_get(f->s, id, &out, &outlen), -ENOENT);
    assert_int_equal(chunkstore_stat(f->s, id, &raw), -ENOENT);
    chunkstore_get_stats(f->s, &st);
    assert_int_equal(st.chunks, 0);
    assert_int_equal(st.bytes, 0);
    free(d);
}

static void test_empty_chunk(void **state)
{
    fixture *f = *state;
    uint8_t id[CHUNK_ID_LEN];
    sha256("", 0, id);
    assert_int_equal(chunkstore_put(f->s, id, "", 0), 0);
    uint8_t *out = (uint8_t *)1;
    size_t outlen = 99;
    assert_int_equal(chunkstore_get(f->s, id, &out, &outlen), 0);
    assert_int_equal(outlen, 0);
    free(out);
}

static void test_mismatch(void **state)
{
    fixture *f = *state;
    uint8_t id[CHUNK_ID_LEN];
    sha256("abc", 3, id);
    assert_int_equal(chunkstore_put(f->s, id, "abd", 3), -EBADMSG);
    assert_int_equal(chunkstore_has(f->s, id), 0);
    assert_int_equal(count_sub(f, "chunks"), 0);
    assert_int_equal(count_sub(f, "tmp"), 0);
}

static void test_idempotent_refreshes_mtime(void **state)
{
    fixture *f = *state;
    uint8_t id[CHUNK_ID_LEN];
    sha256("same", 4, id);
    assert_int_equal(chunkstore_put(f->s, id, "same", 4), 0);
    char *path = chunkstore_path(f->dir, id);
    struct timespec old[2] = {{1000000000, 0}, {1000000000, 0}};
    assert_int_equal(utimensat(AT_FDCWD, path, old, 0), 0);
    struct stat before, after;
    assert_int_equal(stat(path, &before), 0);
    assert_int_equal(chunkstore_put(f->s, id, "same", 4), 1);
    assert_int_equal(stat(path, &after), 0);
    assert_true(after.st_mtime > before.st_mtime + 1000);
    assert_int_equal(after.st_ino, before.st_ino); /* not rewritten */
    chunkstore_stats st;
    chunkstore_get_stats(f->s, &st);
    assert_int_equal(st.chunks, 1);
    free(path);
}

static void flip_byte(const char *path, off_t off)
{
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    assert_int_equal(fseeko(fp, off, SEEK_SET), 0);
    int c = fgetc(fp);
    assert_int_not_equal(c, EOF);
    assert_int_equal(fseeko(fp, off, SEEK_SET), 0);
    fputc(c ^ 0x10, fp);
    fclose(fp);
}

static void test_corrupt_payload_quarantined(void **state)
{
    fixture *f = *state;
    uint8_t *d = pattern(5000, 2);
    uint8_t id[CHUNK_ID_LEN];
    sha256(d, 5000, id);
    assert_int_equal(chunkstore_put(f->s, id, d, 5000), 0);
    char *path = chunkstore_path(f->dir, id);
    flip_byte(path, CHUNKFILE_HDR_LEN + 1234);

    uint8_t *out;
    size_t outlen;
    assert_int_equal(chunkstore_get(f->s, id, &out, &outlen), CAIRN_ECORRUPT);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(count_sub(f, "corrupt"), 1);
    chunkstore_stats st;
    chunkstore_get_stats(f->s, &st);
    assert_int_equal(st.chunks, 0);
    assert_int_equal(st.bytes, 0);
    assert_int_equal(st.corrupt_found, 1);
    assert_int_equal(chunkstore_get(f->s, id, &out, &outlen), -ENOENT);

    /* The chunk can be stored again afterwards. */
    assert_int_equal(chunkstore_put(f->s, id, d, 5000), 0);
    assert_int_equal(chunkstore_get(f->s, id, &out, &outlen), 0);
    assert_memory_equal(out, d, 5000);
    free(out);
    free(path);
    free(d);
}

static void test_corrupt_header_on_stat(void **state)
{
    fixture *f = *state;
    uint8_t id[CHUNK_ID_LEN];
    sha256("header", 6, id);
    assert_int_equal(chunkstore_put(f->s, id, "header", 6), 0);
    char *path = chunkstore_path(f->dir, id);
    flip_byte(path, 9);
    uint64_t raw;
    assert_int_equal(chunkstore_stat(f->s, id, &raw), CAIRN_ECORRUPT);
    assert_int_equal(chunkstore_has(f->s, id), 0);
    assert_int_equal(count_sub(f, "corrupt"), 1);
    free(path);
}

/* A PUT over a damaged copy replaces it instead of acknowledging it. */
static void test_put_replaces_corrupt_copy(void **state)
{
    fixture *f = *state;
    uint8_t *d = pattern(8000, 3);
    uint8_t id[CHUNK_ID_LEN];
    sha256(d, 8000, id);
    assert_int_equal(chunkstore_put(f->s, id, d, 8000), 0);
    char *path = chunkstore_path(f->dir, id);
    flip_byte(path, CHUNKFILE_HDR_LEN + 4000);
    assert_int_equal(chunkstore_put(f->s, id, d, 8000), 0);
    assert_int_equal(count_sub(f, "corrupt"), 1);
    uint8_t *out;
    size_t outlen;
    assert_int_equal(chunkstore_get(f->s, id, &out, &outlen), 0);
    assert_int_equal(outlen, 8000);
    free(out);
    chunkstore_stats st;
    chunkstore_get_stats(f->s, &st);
    assert_int_equal(st.chunks, 1);
    assert_int_equal(st.bytes, 8000 + CHUNKFILE_HDR_LEN);
    free(path);
    free(d);
}

static void test_reopen_scans_and_cleans_tmp(void **state)
{
    fixture *f = *state;
    uint64_t total = 0;
    for (unsigned i = 0; i < 20; i++) {
        size_t n = 100 + i * 10;
        uint8_t *d = pattern(n, 10 + i);
        uint8_t id[CHUNK_ID_LEN];
        sha256(d, n, id);
        assert_int_equal(chunkstore_put(f->s, id, d, n), 0);
        total += n + CHUNKFILE_HDR_LEN;
        free(d);
    }
    char stale[128];
    snprintf(stale, sizeof stale, "%s/tmp/leftover.1", f->dir);
    assert_int_equal(write_file_atomic(stale, "x", 1), 0);
    reopen(f, 0);
    assert_int_equal(count_sub(f, "tmp"), 0);
    chunkstore_stats st;
    chunkstore_get_stats(f->s, &st);
    assert_int_equal(st.chunks, 20);
    assert_int_equal(st.bytes, total);
}

static void test_compressed(void **state)
{
    fixture *f = *state;
    reopen(f, 3);
    size_t n = 1 << 20;
    uint8_t *d = xmalloc(n);
    for (size_t i = 0; i < n; i++)
        d[i] = (uint8_t)"compressible "[i % 13];
    uint8_t id[CHUNK_ID_LEN];
    sha256(d, n, id);
    assert_int_equal(chunkstore_put(f->s, id, d, n), 0);
    chunkstore_stats st;
    chunkstore_get_stats(f->s, &st);
    assert_true(st.bytes < n / 10);
    uint64_t raw;
    assert_int_equal(chunkstore_stat(f->s, id, &raw), 0);
    assert_int_equal(raw, n);
    /* A store without compression still reads compressed files. */
    reopen(f, 0);
    expect_chunk(f, id, d, n);
    free(d);
}

static off_t file_size_of(const fixture *f, const uint8_t id[CHUNK_ID_LEN])
{
    char *path = chunkstore_path(f->dir, id);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    free(path);
    return st.st_size;
}

/* Put pattern(n, seed) and read it back; returns its id in id. */
static void put_and_check(fixture *f, size_t n, unsigned seed, uint8_t id[CHUNK_ID_LEN])
{
    uint8_t *d = pattern(n, seed);
    sha256(d, n, id);
    assert_int_equal(chunkstore_put(f->s, id, d, n), 0);
    expect_chunk(f, id, d, n);
    free(d);
}

/* O_DIRECT writes (the test directory is on a file system that takes
 * them): a file with a tail past the last whole block, one of exactly
 * whole blocks, and one smaller than a block (written buffered) all read
 * back byte for byte and have exactly header + payload bytes. */
/* Whether the file system of dir takes an O_DIRECT write. */
static int takes_direct(const char *dir)
{
    char path[128];
    snprintf(path, sizeof path, "%s/probe", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_DIRECT, 0644);
    if (fd < 0)
        return 0;
    void *b;
    int ok = posix_memalign(&b, 4096, 4096) == 0;
    if (ok) {
        memset(b, 0, 4096);
        ok = write(fd, b, 4096) == 4096;
        free(b);
    }
    close(fd);
    unlink(path);
    return ok;
}

static void test_direct_writes(void **state)
{
    fixture *f = *state;
    if (!takes_direct(f->dir)) {
        print_message("%s refuses O_DIRECT: skipping\n", f->dir);
        skip();
    }
    reopen_with(f, 0, 1);
    chunkstore_stats st;
    chunkstore_get_stats(f->s, &st);
    assert_int_equal(st.direct_io, 1);
    const size_t sizes[] = {300000, 8192 - CHUNKFILE_HDR_LEN, 100, (4u << 20) + 1};
    const int direct[] = {1, 1, 0, 1};
    uint64_t want = 0;
    for (size_t i = 0; i < ARRAY_LEN(sizes); i++) {
        uint8_t id[CHUNK_ID_LEN];
        put_and_check(f, sizes[i], (unsigned)i + 7, id);
        assert_int_equal(file_size_of(f, id), (off_t)(sizes[i] + CHUNKFILE_HDR_LEN));
        want += (uint64_t)direct[i];
        chunkstore_get_stats(f->s, &st);
        assert_int_equal(st.direct_writes, want);
    }
    assert_int_equal(count_sub(f, "tmp"), 0);

    /* compressed chunks take the same path */
    reopen_with(f, 1, 1);
    uint8_t id[CHUNK_ID_LEN];
    put_and_check(f, 1 << 20, 3, id);
    /* and a store reopened without direct writes reads them all */
    reopen(f, 0);
    chunkstore_get_stats(f->s, &st);
    assert_int_equal(st.chunks, ARRAY_LEN(sizes) + 1);
    assert_int_equal(st.direct_writes, 0);
    uint8_t *out;
    size_t outlen;
    assert_int_equal(chunkstore_get(f->s, id, &out, &outlen), 0);
    assert_int_equal(outlen, 1u << 20);
    free(out);
}

struct dput {
    fixture *f;
    unsigned seed;
};

static void *direct_putter(void *arg)
{
    struct dput *p = arg;
    uint8_t id[CHUNK_ID_LEN];
    for (unsigned k = 0; k < 4; k++)
        put_and_check(p->f, 200000 + p->seed * 4096 + k, p->seed * 16 + k, id);
    return NULL;
}

/* More writers than bounce buffers: every chunk is stored whole, whichever
 * way it was written. */
static void test_direct_writes_concurrent(void **state)
{
    fixture *f = *state;
    reopen_with(f, 0, 1);
    enum { N = 10 };
    pthread_t t[N];
    struct dput p[N];
    for (unsigned i = 0; i < N; i++) {
        p[i] = (struct dput){f, i + 1};
        assert_int_equal(pthread_create(&t[i], NULL, direct_putter, &p[i]), 0);
    }
    for (unsigned i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    chunkstore_stats st;
    chunkstore_get_stats(f->s, &st);
    assert_int_equal(st.chunks, N * 4);
    assert_true(st.direct_writes >= 1 && st.direct_writes <= N * 4);
    assert_int_equal(count_sub(f, "tmp"), 0);
}

static void test_second_open_refused(void **state)
{
    fixture *f = *state;
    chunkstore *other = NULL;
    chunkstore_config cfg = {.dir = f->dir};
    assert_int_equal(chunkstore_open(&cfg, &other), -EBUSY);
}

typedef struct racer {
    chunkstore *s;
    const uint8_t *data;
    size_t len;
    const uint8_t *id;
    int rc;
} racer;

static void *race_put(void *arg)
{
    racer *r = arg;
    r->rc = chunkstore_put(r->s, r->id, r->data, r->len);
    return NULL;
}

static void test_concurrent_same_chunk(void **state)
{
    fixture *f = *state;
    size_t n = 1 << 20;
    uint8_t *d = pattern(n, 7);
    uint8_t id[CHUNK_ID_LEN];
    sha256(d, n, id);
    pthread_t t[8];
    racer r[8];
    for (int i = 0; i < 8; i++) {
        r[i] = (racer){f->s, d, n, id, -1};
        assert_int_equal(pthread_create(&t[i], NULL, race_put, &r[i]), 0);
    }
    int created = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        assert_true(r[i].rc == 0 || r[i].rc == 1);
        created += r[i].rc == 0;
    }
    assert_int_equal(created, 1);
    chunkstore_stats st;
    chunkstore_get_stats(f->s, &st);
    assert_int_equal(st.chunks, 1);
    assert_int_equal(st.bytes, n + CHUNKFILE_HDR_LEN);
    assert_int_equal(count_sub(f, "tmp"), 0);
    free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_chunk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idempotent_refreshes_mtime, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_payload_quarantined, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_header_on_stat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_replaces_corrupt_copy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_scans_and_cleans_tmp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compressed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_direct_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_direct_writes_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_open_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_same_chunk, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
