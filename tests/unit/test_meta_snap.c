/*
 * test_meta_snap.c — snapshot files: round trip, damage detection before
 * any record is passed on, fallback to the older snapshot, retention, and
 * temporary files.
 *
 * Record i of a snapshot with tag t has bytes that are a function of (t, i),
 * so a load checks content and order.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/err.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/util.h"
#include "server/meta/snap.h"

#define HDR 24
#define FOOTER 20

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st; (void)flag; (void)f;
    return remove(p);
}

static char *mkdir_tmp(void)
{
    char *d = xstrdup("/tmp/cairn-snap-XXXXXX");
    assert_non_null(mkdtemp(d));
    return d;
}

static void rm_rf(const char *d)
{
    nftw(d, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

#define BIG_INDEX 77            /* this record is larger than the write buffer */
#define BIG_LEN ((size_t)3 << 20)

static size_t rec_len(uint32_t i)
{
    return i == BIG_INDEX ? BIG_LEN : (size_t)((i * 53u) % 700u);
}

static void rec_fill(uint32_t tag, uint32_t i, uint8_t *out, size_t len)
{
    for (size_t j = 0; j < len; j++)
        out[j] = (uint8_t)(tag * 29 + i * 131 + j * 7);
}

/* Commit a snapshot at lsn with n records of tag. */
static void write_snap(const char *dir, uint64_t lsn, uint32_t tag, uint32_t n)
{
    snap_writer *s = NULL;
    uint8_t *b = xmalloc(BIG_LEN);

    assert_int_equal(snap_begin(dir, lsn, &s), 0);
    for (uint32_t i = 0; i < n; i++) {
        size_t len = rec_len(i);
        rec_fill(tag, i, b, len);
        assert_int_equal(snap_write(s, b, len), 0);
    }
    free(b);
    assert_int_equal(snap_commit(s), 0);
}

typedef struct loaded {
    uint32_t tag;
    uint32_t n;
    uint64_t bytes;
    int bad;
    uint32_t fail_at;           /* return -EPIPE for this record index + 1 (0 = never) */
    uint8_t *scratch;
} loaded;

static int load_cb(const uint8_t *rec, size_t len, void *ctx)
{
    loaded *l = ctx;

    if (l->fail_at && l->n + 1 == l->fail_at)
        return -EPIPE;
    if (!l->scratch)
        l->scratch = xmalloc(BIG_LEN);
    if (len != rec_len(l->n)) {
        l->bad = 1;
    } else {
        rec_fill(l->tag, l->n, l->scratch, len);
        if (memcmp(l->scratch, rec, len) != 0)
            l->bad = 1;
    }
    l->n++;
    l->bytes += len;
    return 0;
}

static char *snap_path(const char *dir, uint64_t lsn)
{
    return xasprintf("%s/snap-%016" PRIx64 ".snap", dir, lsn);
}

static uint8_t *slurp(const char *path, size_t *len)
{
    uint8_t *p = NULL;
    assert_int_equal(read_file(path, 1u << 30, &p, len), 0);
    return p;
}

static void spit(const char *path, const uint8_t *p, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write_full(fd, p, len), 0);
    close(fd);
}

/* Names in dir matching "snap-*" (including .tmp), sorted. */
static int list_names(const char *dir, char names[][64], int max)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;
    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (strncmp(de->d_name, "snap-", 5) != 0)
            continue;
        assert_true(n < max && l < 64);
        memcpy(names[n++], de->d_name, l + 1);
    }
    closedir(d);
    qsort(names, (size_t)n, 64, (int (*)(const void *, const void *))strcmp);
    return n;
}

static int load(const char *dir, uint64_t *lsn, int *skipped, loaded *l)
{
    return snap_load_latest(dir, lsn, skipped, load_cb, l);
}

/* ---- tests ---------------------------------------------------------- */

static void test_roundtrip(void **state)
{
    (void)state;
    char *dir = mkdir_tmp();
    loaded l = {.tag = 1};
    uint64_t lsn = 0;
    int skipped = -1;
    const uint32_t n = 20000;

    write_snap(dir, 12345, 1, n);
    assert_int_equal(load(dir, &lsn, &skipped, &l), 0);
    assert_int_equal(lsn, 12345);
    assert_int_equal(skipped, 0);
    assert_int_equal(l.n, n);
    assert_false(l.bad);
    uint64_t bytes = 0;
    for (uint32_t i = 0; i < n; i++)
        bytes += rec_len(i);
    assert_int_equal(l.bytes, bytes);
    free(l.scratch);

    /* An empty snapshot is valid too. */
    memset(&l, 0, sizeof(l));
    write_snap(dir, 20000, 2, 0);
    assert_int_equal(load(dir, &lsn, NULL, &l), 0);
    assert_int_equal(lsn, 20000);
    assert_int_equal(l.n, 0);
    rm_rf(dir);
    free(dir);
}

static void test_missing(void **state)
{
    (void)state;
    char *dir = mkdir_tmp();
    char *none = xasprintf("%s/none", dir);
    loaded l = {0};
    uint64_t lsn = 99;
    int skipped = -1;

    assert_int_equal(load(dir, &lsn, &skipped, &l), -ENOENT);
    assert_int_equal(skipped, 0);
    assert_int_equal(load(none, &lsn, NULL, &l), -ENOENT);
    assert_int_equal(l.n, 0);
    assert_int_equal(snap_oldest_lsn(dir, &lsn), 0);
    assert_int_equal(lsn, 0);
    assert_int_equal(snap_oldest_lsn(none, &lsn), 0);
    assert_int_equal(lsn, 0);
    free(none);
    rm_rf(dir);
    free(dir);
}

/* A damaged image as the only snapshot: rejected before any record. */
static void expect_rejected(const char *dir, const char *path, const uint8_t *img, size_t len,
                            int want)
{
    loaded l = {.tag = 1};
    uint64_t lsn = 0;
    int skipped = 0;

    spit(path, img, len);
    assert_int_equal(load(dir, &lsn, &skipped, &l), want);
    assert_int_equal(l.n, 0);
    assert_int_equal(skipped, 1);
    free(l.scratch);
}

static void test_truncated_rejected(void **state)
{
    (void)state;
    char *dir = mkdir_tmp();
    char *path = snap_path(dir, 7);
    size_t len;
    uint8_t *img;

    write_snap(dir, 7, 1, 100);
    img = slurp(path, &len);
    const size_t cuts[] = {0, 1, 8, HDR - 1, HDR, HDR + 3, HDR + 8, HDR + 9, len / 2,
                           len - FOOTER - 1, len - FOOTER, len - FOOTER + 4, len - 5, len - 1};
    log_set_level(LOG_ERROR);
    for (size_t i = 0; i < ARRAY_LEN(cuts); i++)
        expect_rejected(dir, path, img, cuts[i], CAIRN_ECORRUPT);
    log_set_level(LOG_WARN);
    /* Intact again: loads. */
    spit(path, img, len);
    loaded l = {.tag = 1};
    uint64_t lsn;
    assert_int_equal(load(dir, &lsn, NULL, &l), 0);
    assert_int_equal(l.n, 100);
    free(l.scratch);
    free(img);
    free(path);
    rm_rf(dir);
    free(dir);
}

static void test_bitflip_rejected(void **state)
{
    (void)state;
    char *dir = mkdir_tmp();
    char *path = snap_path(dir, 7);
    size_t len;
    uint8_t *img;

    write_snap(dir, 7, 1, 100);
    img = slurp(path, &len);
    /* header magic, header lsn, reserved, first frame length, first frame
     * crc, a payload byte in the middle, a payload byte near the end, the
     * footer mark, count, byte total and crc. */
    const size_t offs[] = {0, 17, 12, HDR, HDR + 5, len / 2, len - FOOTER - 3,
                           len - FOOTER, len - FOOTER + 4, len - FOOTER + 8, len - 1};
    log_set_level(LOG_ERROR);
    for (size_t i = 0; i < ARRAY_LEN(offs); i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            img[offs[i]] ^= (uint8_t)(1u << bit);
            expect_rejected(dir, path, img, len, CAIRN_ECORRUPT);
            img[offs[i]] ^= (uint8_t)(1u << bit);
        }
    }
    /* Footer counts that disagree with the frames, under a matching file
     * CRC (a writer bug rather than bit rot). */
    put_le32(img + len - FOOTER + 4, 99);
    put_le32(img + len - 4, crc32c(img, len - 4));
    expect_rejected(dir, path, img, len, CAIRN_ECORRUPT);
    put_le32(img + len - FOOTER + 4, 100);
    put_le64(img + len - FOOTER + 8, get_le64(img + len - FOOTER + 8) + 1);
    put_le32(img + len - 4, crc32c(img, len - 4));
    expect_rejected(dir, path, img, len, CAIRN_ECORRUPT);
    put_le64(img + len - FOOTER + 8, get_le64(img + len - FOOTER + 8) - 1);
    put_le32(img + len - 4, crc32c(img, len - 4));
    spit(path, img, len);
    {
        loaded l = {.tag = 1};
        uint64_t lsn;
        assert_int_equal(load(dir, &lsn, NULL, &l), 0);
        assert_int_equal(l.n, 100);
        free(l.scratch);
    }
    /* An unknown format version is reported as such. */
    img[8] = 2;
    expect_rejected(dir, path, img, len, CAIRN_EBADVERSION);
    log_set_level(LOG_WARN);
    free(img);
    free(path);
    rm_rf(dir);
    free(dir);
}

static void test_fallback_to_older(void **state)
{
    (void)state;
    char *dir = mkdir_tmp();
    char *newer = snap_path(dir, 200);
    loaded l = {.tag = 2};
    uint64_t lsn = 0, oldest = 0;
    int skipped = -1;
    size_t len;
    uint8_t *img;

    write_snap(dir, 100, 1, 300);
    write_snap(dir, 200, 2, 400);
    assert_int_equal(load(dir, &lsn, &skipped, &l), 0);
    assert_int_equal(lsn, 200);
    assert_int_equal(skipped, 0);
    assert_int_equal(l.n, 400);
    assert_false(l.bad);
    assert_int_equal(snap_oldest_lsn(dir, &oldest), 0);
    assert_int_equal(oldest, 100);
    free(l.scratch);

    /* Damage the newest in its last record: the older one is loaded and
     * nothing of the newer reached the callback (tag 1 content only). */
    img = slurp(newer, &len);
    img[len - FOOTER - 1] ^= 0x04;
    spit(newer, img, len);
    memset(&l, 0, sizeof(l));
    l.tag = 1;
    assert_int_equal(load(dir, &lsn, &skipped, &l), 0);
    assert_int_equal(lsn, 100);
    assert_int_equal(skipped, 1);
    assert_int_equal(l.n, 300);
    assert_false(l.bad);
    free(l.scratch);

    /* Both damaged: corruption, not "no snapshot". */
    char *older = snap_path(dir, 100);
    free(img);
    img = slurp(older, &len);
    spit(older, img, len - 1);
    memset(&l, 0, sizeof(l));
    log_set_level(LOG_ERROR);
    assert_int_equal(load(dir, &lsn, &skipped, &l), CAIRN_ECORRUPT);
    log_set_level(LOG_WARN);
    assert_int_equal(l.n, 0);
    free(older);
    free(img);
    free(newer);
    rm_rf(dir);
    free(dir);
}

static void test_retention(void **state)
{
    (void)state;
    char *dir = mkdir_tmp();
    char names[16][64];
    uint64_t oldest = 0, lsn = 0;
    loaded l = {.tag = 5};

    for (uint32_t i = 1; i <= 5; i++) {
        write_snap(dir, 1000 * i, i, 10);
        assert_int_equal(snap_oldest_lsn(dir, &oldest), 0);
        assert_int_equal(oldest, i == 1 ? 1000 : 1000 * (i - 1));
    }
    assert_int_equal(list_names(dir, names, 16), 2);
    assert_string_equal(names[0], "snap-0000000000000fa0.snap");
    assert_string_equal(names[1], "snap-0000000000001388.snap");
    assert_int_equal(load(dir, &lsn, NULL, &l), 0);
    assert_int_equal(lsn, 5000);
    assert_int_equal(l.n, 10);
    assert_false(l.bad);
    free(l.scratch);
    rm_rf(dir);
    free(dir);
}

static void test_tmp_never_loaded(void **state)
{
    (void)state;
    char *dir = mkdir_tmp();
    char names[16][64];
    char *p30 = snap_path(dir, 30);
    char *tmp30 = xasprintf("%s.tmp", p30);
    char *tmp99 = xasprintf("%s/snap-%016" PRIx64 ".snap.tmp", dir, (uint64_t)99);
    snap_writer *s = NULL;
    loaded l = {.tag = 3};
    uint64_t lsn = 0;
    size_t len;
    uint8_t *img;

    /* A complete, valid file under a .tmp name (a crash just before the
     * rename) is not a snapshot. */
    write_snap(dir, 30, 3, 50);
    assert_int_equal(rename(p30, tmp30), 0);
    assert_int_equal(load(dir, &lsn, NULL, &l), -ENOENT);
    assert_int_equal(l.n, 0);
    write_snap(dir, 20, 3, 50);
    assert_int_equal(load(dir, &lsn, NULL, &l), 0);
    assert_int_equal(lsn, 20);
    assert_int_equal(l.n, 50);
    free(l.scratch);
    /* The commit at 20 leaves a temporary of a later lsn alone. */
    assert_int_equal(access(tmp30, F_OK), 0);

    /* A committed snapshot at 40 removes stale temporaries up to 40 only. */
    img = slurp(tmp30, &len);
    spit(tmp99, img, len);
    write_snap(dir, 40, 4, 5);
    assert_int_equal(access(tmp30, F_OK), -1);
    assert_int_equal(access(tmp99, F_OK), 0);
    unlink(tmp99);

    /* Abort removes its temporary; an aborted snapshot is never seen. */
    assert_int_equal(snap_begin(dir, 50, &s), 0);
    assert_int_equal(snap_write(s, "abc", 3), 0);
    snap_abort(s);
    assert_int_equal(list_names(dir, names, 16), 2);
    assert_string_equal(names[0], "snap-0000000000000014.snap");
    assert_string_equal(names[1], "snap-0000000000000028.snap");

    /* Other names in the directory are ignored. */
    char *junk = xasprintf("%s/snap-00000000000000ff.snap.bak", dir);
    spit(junk, img, len);
    memset(&l, 0, sizeof(l));
    l.tag = 4;
    assert_int_equal(load(dir, &lsn, NULL, &l), 0);
    assert_int_equal(lsn, 40);
    assert_int_equal(l.n, 5);
    assert_false(l.bad);
    free(l.scratch);
    free(junk);
    free(img);
    free(p30);
    free(tmp30);
    free(tmp99);
    rm_rf(dir);
    free(dir);
}

static void test_writer_limits_and_errors(void **state)
{
    (void)state;
    char *dir = mkdir_tmp();
    snap_writer *s = NULL;
    loaded l = {.tag = 6};
    uint64_t lsn = 0;
    uint8_t small[4] = {0};

    assert_int_equal(snap_begin(dir, 9, &s), 0);
    /* Rejected before the bytes are read, and the writer stays usable. */
    assert_int_equal(snap_write(s, small, (size_t)SNAP_MAX_RECORD + 1), -EFBIG);
    uint8_t b[700];
    for (uint32_t i = 0; i < 3; i++) {
        rec_fill(6, i, b, rec_len(i));
        assert_int_equal(snap_write(s, b, rec_len(i)), 0);
    }
    assert_int_equal(snap_commit(s), 0);

    /* The load callback's error stops the load and is returned. */
    l.fail_at = 2;
    assert_int_equal(load(dir, &lsn, NULL, &l), -EPIPE);
    assert_int_equal(l.n, 1);
    l.fail_at = 0;
    l.n = 0;
    l.bytes = 0;
    assert_int_equal(load(dir, &lsn, NULL, &l), 0);
    assert_int_equal(l.n, 3);
    assert_false(l.bad);
    free(l.scratch);

    /* A directory that cannot be created. */
    char *bad = xasprintf("%s/file", dir);
    char *under = xasprintf("%s/file/sub", dir);
    spit(bad, small, 1);
    s = NULL;
    log_set_level(LOG_ERROR);
    assert_int_equal(snap_begin(under, 1, &s), -ENOTDIR);
    log_set_level(LOG_WARN);
    assert_null(s);
    free(bad);
    free(under);
    rm_rf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_missing),
        cmocka_unit_test(test_truncated_rejected),
        cmocka_unit_test(test_bitflip_rejected),
        cmocka_unit_test(test_fallback_to_older),
        cmocka_unit_test(test_retention),
        cmocka_unit_test(test_tmp_never_loaded),
        cmocka_unit_test(test_writer_limits_and_errors),
    };
    log_set_level(LOG_WARN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
