/*
 * test_meta_wal.c — WAL: round trip, recovery of torn tails and corruption,
 * rotation and truncation, group commit, failure handling.
 *
 * Every record's bytes are a function of its lsn (rec_fill), so a replay
 * checks content, order and lsn together.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>
#include <cmocka.h>

#include "common/err.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/util.h"
#include "server/meta/wal.h"

#define HDR 32          /* segment header */
#define FH 16           /* frame header */

/* ---- helpers -------------------------------------------------------- */

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st; (void)flag; (void)f;
    return remove(p);
}

static char *mkdir_tmp(void)
{
    char *d = xstrdup("/tmp/cairn-wal-XXXXXX");
    assert_non_null(mkdtemp(d));
    return d;
}

static void rm_rf(const char *d)
{
    nftw(d, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* Length and bytes of the record for lsn (salt changes the content so a
 * rewritten lsn is distinguishable). */
static size_t rec_len(uint64_t lsn)
{
    return (size_t)((lsn * 37) % 300);
}

static void rec_fill(uint64_t lsn, uint32_t salt, uint8_t *out, size_t len)
{
    for (size_t j = 0; j < len; j++)
        out[j] = (uint8_t)(lsn * 131 + j * 7 + salt);
}

static uint64_t append_rec(wal *w, uint64_t expect_lsn, uint32_t salt)
{
    uint8_t b[512];
    size_t len = rec_len(expect_lsn);
    rec_fill(expect_lsn, salt, b, len);
    return wal_append(w, b, len);
}

typedef struct replay_log {
    uint64_t first, last, n;
    uint32_t salt;              /* expected salt ... */
    uint64_t salt_from;         /* ... for lsns >= salt_from (else 0) */
    int bad;                    /* content, order or length mismatch seen */
    int fail_at;                /* return -EIO at this lsn (0 = never) */
} replay_log;

static int replay_cb(uint64_t lsn, const uint8_t *rec, size_t len, void *ctx)
{
    replay_log *r = ctx;
    uint8_t want[512];
    uint32_t salt = (r->salt_from && lsn >= r->salt_from) ? r->salt : 0;

    if ((uint64_t)r->fail_at == lsn)
        return -EIO;
    if (r->n > 0 && lsn != r->last + 1)
        r->bad = 1;
    if (r->n == 0)
        r->first = lsn;
    r->last = lsn;
    r->n++;
    if (len != rec_len(lsn)) {
        r->bad = 1;
        return 0;
    }
    rec_fill(lsn, salt, want, len);
    if (memcmp(want, rec, len) != 0)
        r->bad = 1;
    return 0;
}

static wal_config cfg_for(const char *dir)
{
    wal_config c;
    memset(&c, 0, sizeof(c));
    c.dir = dir;
    return c;
}

static wal *open_ok(const wal_config *c, uint64_t from, replay_log *r)
{
    wal *w = NULL;
    int rc = wal_open(c, from, replay_cb, r, &w);
    assert_int_equal(rc, 0);
    assert_non_null(w);
    return w;
}

/* Append lsns [from, to] waiting for each batch of 50, all with salt. */
static void append_range(wal *w, uint64_t from, uint64_t to, uint32_t salt)
{
    uint64_t lsn = 0;
    for (uint64_t i = from; i <= to; i++) {
        lsn = append_rec(w, i, salt);
        assert_int_equal(lsn, i);
        if (i % 50 == 0)
            assert_int_equal(wal_wait(w, lsn), 0);
    }
    if (lsn)
        assert_int_equal(wal_wait(w, lsn), 0);
}

/* Segment file names in dir, sorted; returns count. */
static int list_segs(const char *dir, uint64_t *out, int max)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;
    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        uint64_t v;
        char tail[8];
        if (strlen(de->d_name) == 24 &&
            sscanf(de->d_name, "wal-%16" SCNx64 ".%3s", &v, tail) == 2 && strcmp(tail, "log") == 0) {
            assert_true(n < max);
            out[n++] = v;
        }
    }
    closedir(d);
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (out[j] < out[i]) {
                uint64_t t = out[i];
                out[i] = out[j];
                out[j] = t;
            }
    return n;
}

static char *seg_path(const char *dir, uint64_t first)
{
    return xasprintf("%s/wal-%016" PRIx64 ".log", dir, first);
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

/* Offsets of each frame in a segment image (frames[i] = offset of frame i). */
static size_t frame_offsets(const uint8_t *p, size_t len, size_t *offs, size_t max)
{
    size_t n = 0, off = HDR;
    while (off + FH <= len) {
        assert_true(n < max);
        offs[n++] = off;
        off += FH + get_le32(p + off);
    }
    assert_int_equal(off, len);
    return n;
}

static off_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

/* Reopen: lsns 1..n replay, all of them good. */
static void expect_clean_replay(const wal_config *c, uint64_t n)
{
    replay_log r = {0};
    wal *w = open_ok(c, 0, &r);
    assert_int_equal(r.n, n);
    assert_int_equal(r.last, n);
    assert_false(r.bad);
    wal_close(w);
}

/* A dir with one segment holding lsns 1..n, closed; returns the dir. */
static char *make_log(uint64_t n, uint64_t *first_seg)
{
    char *dir = mkdir_tmp();
    wal_config c = cfg_for(dir);
    replay_log r = {0};
    uint64_t segs[4];
    wal *w = open_ok(&c, 0, &r);
    append_range(w, 1, n, 0);
    wal_close(w);
    assert_int_equal(list_segs(dir, segs, 4), 1);
    *first_seg = segs[0];
    return dir;
}

/* ---- round trip ----------------------------------------------------- */

static void test_roundtrip(void **state)
{
    (void)state;
    char *dir = mkdir_tmp();
    wal_config c = cfg_for(dir);
    replay_log r = {0};
    wal *w = open_ok(&c, 0, &r);

    assert_int_equal(r.n, 0);
    assert_int_equal(wal_last_lsn(w), 0);
    assert_int_equal(wal_durable_lsn(w), 0);
    append_range(w, 1, 1000, 0);
    assert_int_equal(wal_last_lsn(w), 1000);
    assert_int_equal(wal_durable_lsn(w), 1000);
    wal_stats st;
    wal_get_stats(w, &st);
    assert_int_equal(st.records, 1000);
    wal_close(w);

    memset(&r, 0, sizeof(r));
    w = open_ok(&c, 0, &r);
    assert_int_equal(r.n, 1000);
    assert_int_equal(r.first, 1);
    assert_int_equal(r.last, 1000);
    assert_false(r.bad);
    assert_int_equal(wal_last_lsn(w), 1000);
    assert_int_equal(wal_durable_lsn(w), 1000);
    /* rec_len(0 mod 300...) includes zero-length records: lsn 300 has len 0. */
    assert_int_equal(rec_len(300), 0);
    assert_int_equal(append_rec(w, 1001, 0), 1001);
    assert_int_equal(wal_wait(w, 1001), 0);
    wal_close(w);

    expect_clean_replay(&c, 1001);
    rm_rf(dir);
    free(dir);
}

static void test_from_lsn(void **state)
{
    (void)state;
    uint64_t seg;
    char *dir = make_log(300, &seg);
    wal_config c = cfg_for(dir);
    replay_log r = {0};
    wal *w = open_ok(&c, 120, &r);

    assert_int_equal(r.n, 180);
    assert_int_equal(r.first, 121);
    assert_int_equal(r.last, 300);
    assert_false(r.bad);
    assert_int_equal(wal_last_lsn(w), 300);
    wal_close(w);

    memset(&r, 0, sizeof(r));
    w = open_ok(&c, 300, &r);
    assert_int_equal(r.n, 0);
    assert_int_equal(wal_last_lsn(w), 300);
    wal_close(w);
    rm_rf(dir);
    free(dir);
}

/* The snapshot is newer than the end of the log: lsns continue after it,
 * and the hole is accepted only while a snapshot covers it. */
static void test_snapshot_ahead(void **state)
{
    (void)state;
    char *dir = mkdir_tmp();
    wal_config c = cfg_for(dir);
    replay_log r = {0};
    wal *w = open_ok(&c, 0, &r);
    append_range(w, 1, 10, 0);
    wal_close(w);

    w = open_ok(&c, 100, &r);
    assert_int_equal(r.n, 0);
    assert_int_equal(wal_last_lsn(w), 100);
    assert_int_equal(append_rec(w, 101, 0), 101);
    assert_int_equal(wal_wait(w, 101), 0);
    wal_close(w);

    memset(&r, 0, sizeof(r));
    w = open_ok(&c, 100, &r);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.first, 101);
    assert_false(r.bad);
    wal_close(w);

    /* Without the snapshot, lsns 11..100 are missing. */
    memset(&r, 0, sizeof(r));
    w = NULL;
    assert_int_equal(wal_open(&c, 0, replay_cb, &r, &w), CAIRN_ECORRUPT);
    assert_null(w);
    assert_int_equal(r.last, 10);
    rm_rf(dir);
    free(dir);
}

static void test_api_misuse(void **state)
{
    (void)state;
    char *dir = mkdir_tmp();
    wal_config c = cfg_for(dir);
    replay_log r = {0};
    wal *w = open_ok(&c, 0, &r), *w2 = NULL;
    uint8_t small[8] = {0};

    assert_int_equal(wal_open(&c, 0, replay_cb, &r, &w2), -EBUSY);
    assert_null(w2);
    assert_int_equal(wal_wait(w, 0), -EINVAL);
    assert_int_equal(wal_wait(w, 1), -EINVAL);
    /* Rejected before the bytes are read. */
    assert_int_equal(wal_append(w, small, (size_t)WAL_MAX_RECORD + 1), 0);
    assert_int_equal(wal_append(w, small, sizeof(small)), 1);
    assert_int_equal(wal_wait(w, 1), 0);
    assert_int_equal(wal_wait(w, 2), -EINVAL);
    wal_close(w);

    memset(&r, 0, sizeof(r));
    r.fail_at = 1;
    w = NULL;
    assert_int_equal(wal_open(&c, 0, replay_cb, &r, &w), -EIO);
    assert_null(w);
    rm_rf(dir);
    free(dir);
}

/* ---- torn tails and corruption -------------------------------------- */

static void test_torn_tail_every_offset(void **state)
{
    (void)state;
    const uint64_t n = 6;
    uint64_t seg;
    char *dir = make_log(n, &seg);
    char *path = seg_path(dir, seg);
    size_t len, offs[16];
    uint8_t *img = slurp(path, &len);
    size_t nf = frame_offsets(img, len, offs, 16);
    size_t last = offs[nf - 1];
    wal_config c = cfg_for(dir);

    assert_int_equal(nf, n);
    /* Every cut from "last frame entirely missing" to "one byte short". */
    log_set_level(LOG_ERROR);
    for (size_t cut = last; cut < len; cut++) {
        replay_log r = {0};
        wal *w;

        spit(path, img, cut);
        w = open_ok(&c, 0, &r);
        assert_int_equal(r.n, n - 1);
        assert_int_equal(r.last, n - 1);
        assert_false(r.bad);
        assert_int_equal(file_size(path), (off_t)last);
        assert_int_equal(wal_last_lsn(w), n - 1);
        /* The log continues with the lsn the torn record had. */
        assert_int_equal(append_rec(w, n, 7), n);
        assert_int_equal(wal_wait(w, n), 0);
        wal_close(w);

        memset(&r, 0, sizeof(r));
        r.salt = 7;
        r.salt_from = n;
        w = open_ok(&c, 0, &r);
        assert_int_equal(r.n, n);
        assert_int_equal(r.last, n);
        assert_false(r.bad);
        wal_close(w);
    }
    log_set_level(LOG_WARN);
    free(img);
    free(path);
    rm_rf(dir);
    free(dir);
}

static void test_bitflip_last_frame_is_torn(void **state)
{
    (void)state;
    const uint64_t n = 10;
    uint64_t seg;
    char *dir = make_log(n, &seg);
    char *path = seg_path(dir, seg);
    size_t len, offs[16];
    uint8_t *img = slurp(path, &len);
    size_t nf = frame_offsets(img, len, offs, 16);
    wal_config c = cfg_for(dir);
    replay_log r = {0};
    wal *w;

    assert_true(rec_len(n) > 4);
    img[offs[nf - 1] + FH + 3] ^= 0x10;
    spit(path, img, len);
    w = open_ok(&c, 0, &r);
    assert_int_equal(r.n, n - 1);
    assert_false(r.bad);
    assert_int_equal(file_size(path), (off_t)offs[nf - 1]);
    assert_int_equal(append_rec(w, n, 3), n);
    assert_int_equal(wal_wait(w, n), 0);
    wal_close(w);

    memset(&r, 0, sizeof(r));
    r.salt = 3;
    r.salt_from = n;
    w = open_ok(&c, 0, &r);
    assert_int_equal(r.n, n);
    assert_false(r.bad);
    wal_close(w);
    free(img);
    free(path);
    rm_rf(dir);
    free(dir);
}

/* Damage frame k (0-based) of a 10-record log at byte offset delta inside
 * it; expect CAIRN_ECORRUPT with only lsns 1..k replayed and the file left
 * alone, then truncate_corrupt cuts there. */
static void check_middle_damage(size_t k, size_t delta)
{
    const uint64_t n = 10;
    uint64_t seg;
    char *dir = make_log(n, &seg);
    char *path = seg_path(dir, seg);
    size_t len, offs[16];
    uint8_t *img = slurp(path, &len);
    size_t nf = frame_offsets(img, len, offs, 16);
    wal_config c = cfg_for(dir);
    replay_log r = {0};
    wal *w = NULL;

    assert_int_equal(nf, n);
    img[offs[k] + delta] ^= 0x01;
    spit(path, img, len);
    assert_int_equal(wal_open(&c, 0, replay_cb, &r, &w), CAIRN_ECORRUPT);
    assert_null(w);
    assert_int_equal(r.n, k);
    assert_false(r.bad);
    assert_int_equal(file_size(path), (off_t)len);

    memset(&r, 0, sizeof(r));
    c.truncate_corrupt = 1;
    w = open_ok(&c, 0, &r);
    assert_int_equal(r.n, k);
    assert_int_equal(file_size(path), (off_t)offs[k]);
    assert_int_equal(append_rec(w, k + 1, 5), k + 1);
    assert_int_equal(wal_wait(w, k + 1), 0);
    wal_close(w);

    c.truncate_corrupt = 0;
    memset(&r, 0, sizeof(r));
    r.salt = 5;
    r.salt_from = k + 1;
    w = open_ok(&c, 0, &r);
    assert_int_equal(r.n, k + 1);
    assert_false(r.bad);
    wal_close(w);
    free(img);
    free(path);
    rm_rf(dir);
    free(dir);
}

static void test_bitflip_middle_is_corrupt(void **state)
{
    (void)state;
    check_middle_damage(3, FH + 2);     /* payload */
    check_middle_damage(4, 1);          /* length field */
    check_middle_damage(2, 4);          /* crc field */
    check_middle_damage(5, 9);          /* lsn field */
    check_middle_damage(0, FH);         /* first frame */
}

/* A frame with a good CRC but the wrong lsn (a frame went missing). */
static void test_lsn_gap_is_corrupt(void **state)
{
    (void)state;
    const uint64_t n = 8;
    uint64_t seg;
    char *dir = make_log(n, &seg);
    char *path = seg_path(dir, seg);
    size_t len, offs[16];
    uint8_t *img = slurp(path, &len);
    size_t nf = frame_offsets(img, len, offs, 16);
    wal_config c = cfg_for(dir);
    replay_log r = {0};
    wal *w = NULL;
    size_t flen;

    assert_int_equal(nf, n);
    /* Drop frame 3 (lsn 4) ... */
    flen = offs[4] - offs[3];
    memmove(img + offs[3], img + offs[4], len - offs[4]);
    spit(path, img, len - flen);
    assert_int_equal(wal_open(&c, 0, replay_cb, &r, &w), CAIRN_ECORRUPT);
    assert_int_equal(r.n, 3);
    /* ... also when the out-of-sequence frame is the very last one. */
    spit(path, img, offs[3] + (offs[5] - offs[4]));
    memset(&r, 0, sizeof(r));
    assert_int_equal(wal_open(&c, 0, replay_cb, &r, &w), CAIRN_ECORRUPT);
    assert_int_equal(r.n, 3);
    assert_null(w);
    free(img);
    free(path);
    rm_rf(dir);
    free(dir);
}

static void test_bad_segment_header(void **state)
{
    (void)state;
    uint64_t seg;
    char *dir = make_log(5, &seg);
    char *path = seg_path(dir, seg);
    size_t len;
    uint8_t *img = slurp(path, &len);
    wal_config c = cfg_for(dir);
    replay_log r = {0};
    wal *w = NULL;

    img[17] ^= 0x40;                    /* first lsn */
    spit(path, img, len);
    assert_int_equal(wal_open(&c, 0, replay_cb, &r, &w), CAIRN_ECORRUPT);
    img[17] ^= 0x40;
    img[2] ^= 0x01;                     /* magic */
    spit(path, img, len);
    assert_int_equal(wal_open(&c, 0, replay_cb, &r, &w), CAIRN_ECORRUPT);
    img[2] ^= 0x01;
    spit(path, img, 20);                /* shorter than a header */
    assert_int_equal(wal_open(&c, 0, replay_cb, &r, &w), CAIRN_ECORRUPT);
    /* A future format version with a good checksum: never cut. */
    put_le32(img + 8, 2);
    put_le32(img + 24, crc32c(img, 24));
    spit(path, img, len);
    c.truncate_corrupt = 1;
    assert_int_equal(wal_open(&c, 0, replay_cb, &r, &w), CAIRN_EBADVERSION);
    assert_int_equal(file_size(path), (off_t)len);
    assert_int_equal(r.n, 0);
    assert_null(w);
    free(img);
    free(path);
    rm_rf(dir);
    free(dir);
}

/* ---- rotation and truncation ---------------------------------------- */

static void test_rotation_and_truncate(void **state)
{
    (void)state;
    char *dir = mkdir_tmp();
    wal_config c = cfg_for(dir);
    replay_log r = {0};
    uint64_t segs[256], next, cut;
    int ns, ns2;
    wal *w;

    c.segment_max = 4096;
    w = open_ok(&c, 0, &r);
    append_range(w, 1, 400, 0);         /* batches of <= 50: several segments */
    assert_int_equal(wal_rotate(w, &next), 0);
    assert_int_equal(next, 401);
    /* Nothing appended since: rotating again is a no-op. */
    assert_int_equal(wal_rotate(w, &next), 0);
    assert_int_equal(next, 401);
    append_range(w, 401, 410, 0);      /* < 4096 bytes: no size rotation */
    assert_int_equal(wal_rotate(w, &next), 0);
    assert_int_equal(next, 411);
    /* The requested rotation is carried out before truncating. */
    assert_int_equal(wal_truncate_before(w, 0), 0);
    ns = list_segs(dir, segs, 256);
    assert_true(ns >= 5);
    assert_int_equal(segs[0], 1);
    assert_int_equal(segs[ns - 1], 411);
    assert_int_equal(segs[ns - 2], 401);

    /* Segment i holds [segs[i], segs[i+1]-1]: only fully covered ones go. */
    cut = segs[2] + 1;
    int keep_from = 0;
    while (keep_from + 1 < ns && segs[keep_from + 1] - 1 <= cut)
        keep_from++;
    assert_true(keep_from >= 2);
    assert_int_equal(wal_truncate_before(w, cut), 0);
    ns2 = list_segs(dir, segs + 128, 128);
    assert_int_equal(ns2, ns - keep_from);
    for (int i = 0; i < ns2; i++)
        assert_int_equal(segs[128 + i], segs[keep_from + i]);
    assert_true(segs[128] <= cut + 1);

    /* A snapshot at lsn 380 lets the log replay from the segments left. */
    memset(&r, 0, sizeof(r));
    append_range(w, 411, 411, 0);
    wal_close(w);
    w = open_ok(&c, 380, &r);
    assert_int_equal(r.n, 31);
    assert_int_equal(r.first, 381);
    assert_false(r.bad);

    /* Everything up to 411: all but the newest segment go, which then
     * gets every later record. */
    assert_int_equal(wal_truncate_before(w, 411), 0);
    assert_int_equal(list_segs(dir, segs, 256), 1);
    assert_int_equal(segs[0], 411);
    assert_int_equal(wal_truncate_before(w, 10000), 0);
    assert_int_equal(list_segs(dir, segs, 256), 1);
    append_range(w, 412, 430, 0);
    wal_close(w);

    memset(&r, 0, sizeof(r));
    w = open_ok(&c, 410, &r);
    assert_int_equal(r.n, 20);
    assert_int_equal(r.first, 411);
    assert_int_equal(r.last, 430);
    assert_false(r.bad);
    wal_close(w);
    /* Without a snapshot covering 1..410 the log is incomplete. */
    memset(&r, 0, sizeof(r));
    w = NULL;
    assert_int_equal(wal_open(&c, 0, replay_cb, &r, &w), CAIRN_ECORRUPT);
    assert_int_equal(r.n, 0);
    rm_rf(dir);
    free(dir);
}

/* Replay across many segments, and damage in a segment that is not last. */
static void test_multi_segment_recovery(void **state)
{
    (void)state;
    char *dir = mkdir_tmp();
    wal_config c = cfg_for(dir);
    replay_log r = {0};
    uint64_t segs[256], next;
    size_t len, offs[512];
    int ns;
    wal *w;

    w = open_ok(&c, 0, &r);
    append_range(w, 1, 30, 0);
    assert_int_equal(wal_rotate(w, &next), 0);
    append_range(w, 31, 60, 0);
    assert_int_equal(wal_rotate(w, &next), 0);
    append_range(w, 61, 90, 0);
    wal_close(w);
    ns = list_segs(dir, segs, 256);
    assert_int_equal(ns, 3);
    assert_int_equal(segs[1], 31);
    assert_int_equal(segs[2], 61);

    memset(&r, 0, sizeof(r));
    w = open_ok(&c, 0, &r);
    assert_int_equal(r.n, 90);
    assert_false(r.bad);
    wal_close(w);

    /* Damage the last frame of the middle segment: not a torn tail there. */
    char *path = seg_path(dir, 31);
    uint8_t *img = slurp(path, &len);
    size_t nf = frame_offsets(img, len, offs, 512);
    assert_int_equal(nf, 30);
    assert_true(rec_len(60) > 0);
    img[len - 1] ^= 0x80;
    spit(path, img, len);
    memset(&r, 0, sizeof(r));
    w = NULL;
    assert_int_equal(wal_open(&c, 0, replay_cb, &r, &w), CAIRN_ECORRUPT);
    assert_int_equal(r.n, 59);

    /* truncate_corrupt cuts there and drops the later segment. */
    memset(&r, 0, sizeof(r));
    c.truncate_corrupt = 1;
    w = open_ok(&c, 0, &r);
    assert_int_equal(r.n, 59);
    assert_int_equal(wal_last_lsn(w), 59);
    assert_int_equal(list_segs(dir, segs, 256), 2);
    assert_int_equal(append_rec(w, 60, 9), 60);
    assert_int_equal(wal_wait(w, 60), 0);
    wal_close(w);
    c.truncate_corrupt = 0;
    memset(&r, 0, sizeof(r));
    r.salt = 9;
    r.salt_from = 60;
    w = open_ok(&c, 0, &r);
    assert_int_equal(r.n, 60);
    assert_false(r.bad);
    wal_close(w);

    /* A missing middle segment is a gap. */
    append_range(w = open_ok(&c, 60, &r), 61, 61, 0);
    assert_int_equal(wal_rotate(w, &next), 0);
    append_range(w, 62, 70, 0);
    wal_close(w);
    unlink(path);
    memset(&r, 0, sizeof(r));
    w = NULL;
    assert_int_equal(wal_open(&c, 0, replay_cb, &r, &w), CAIRN_ECORRUPT);
    assert_int_equal(r.n, 30);
    free(img);
    free(path);
    rm_rf(dir);
    free(dir);
}

static void test_leftover_tmp_removed(void **state)
{
    (void)state;
    uint64_t seg;
    char *dir = make_log(5, &seg);
    char *tmp = xasprintf("%s/wal-%016" PRIx64 ".log.tmp", dir, (uint64_t)6);
    wal_config c = cfg_for(dir);
    replay_log r = {0};
    wal *w;

    spit(tmp, (const uint8_t *)"CAIRNW", 6);
    w = open_ok(&c, 0, &r);
    assert_int_equal(r.n, 5);
    assert_int_equal(access(tmp, F_OK), -1);
    wal_close(w);
    free(tmp);
    rm_rf(dir);
    free(dir);
}

/* ---- group commit --------------------------------------------------- */

#define GC_THREADS 32
#define GC_PER 200

typedef struct gc_arg {
    wal *w;
    pthread_mutex_t *ns_lock;   /* stands in for the namespace write lock */
    uint32_t id;
    int per;
    int errors;
} gc_arg;

static void *gc_worker(void *p)
{
    gc_arg *a = p;
    uint8_t rec[64];

    for (int i = 0; i < a->per; i++) {
        uint64_t lsn;
        memset(rec, (int)a->id, sizeof(rec));
        put_le32(rec, a->id);
        put_le32(rec + 4, (uint32_t)i);
        pthread_mutex_lock(a->ns_lock);
        /* Half the threads append as metad's requests do (the waiter
         * writes), half have the flusher woken for each record. */
        lsn = a->id % 2 ? wal_append(a->w, rec, sizeof(rec))
                        : wal_append_waited(a->w, rec, sizeof(rec));
        pthread_mutex_unlock(a->ns_lock);
        if (lsn == 0 || wal_wait(a->w, lsn) != 0)
            a->errors++;
    }
    return NULL;
}

/* Run nthreads x per append+wait; returns records/s. */
static double gc_run(wal *w, int nthreads, int per)
{
    pthread_t th[GC_THREADS];
    gc_arg args[GC_THREADS];
    pthread_mutex_t ns_lock = PTHREAD_MUTEX_INITIALIZER;
    int64_t t0 = now_mono_ns(), dt;

    for (int i = 0; i < nthreads; i++) {
        args[i] = (gc_arg){.w = w, .ns_lock = &ns_lock, .id = (uint32_t)i, .per = per};
        assert_int_equal(pthread_create(&th[i], NULL, gc_worker, &args[i]), 0);
    }
    for (int i = 0; i < nthreads; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].errors, 0);
    }
    dt = now_mono_ns() - t0;
    return (double)nthreads * per * 1e9 / (double)(dt > 0 ? dt : 1);
}

typedef struct gc_check {
    int next[GC_THREADS];       /* next sequence number expected per thread */
    uint64_t n;
    int bad;
} gc_check;

static int gc_replay(uint64_t lsn, const uint8_t *rec, size_t len, void *ctx)
{
    gc_check *g = ctx;
    uint32_t id, seq;
    (void)lsn;
    g->n++;
    if (len != 64) {
        g->bad = 1;
        return 0;
    }
    id = get_le32(rec);
    seq = get_le32(rec + 4);
    /* Each thread waits before its next append, so its records are in
     * order and none is missing. */
    if (id >= GC_THREADS || (int)seq != g->next[id] || rec[63] != (uint8_t)id)
        g->bad = 1;
    else
        g->next[id]++;
    return 0;
}

static int dummy_replay(uint64_t lsn, const uint8_t *rec, size_t len, void *ctx)
{
    (void)lsn; (void)rec; (void)len; (void)ctx;
    return 0;
}

static void test_group_commit(void **state)
{
    (void)state;
    char *dir = mkdir_tmp(), *dir1 = mkdir_tmp();
    wal_config c = cfg_for(dir), c1 = cfg_for(dir1);
    wal *w = NULL;
    wal_stats st, st1;
    gc_check g;
    double rate1, rate32;
    const uint64_t records = GC_THREADS * GC_PER;

    /* Baseline: one thread, every record waits for its own fdatasync. */
    assert_int_equal(wal_open(&c1, 0, dummy_replay, NULL, &w), 0);
    rate1 = gc_run(w, 1, GC_PER);
    wal_get_stats(w, &st1);
    wal_close(w);

    assert_int_equal(wal_open(&c, 0, dummy_replay, NULL, &w), 0);
    rate32 = gc_run(w, GC_THREADS, GC_PER);
    assert_int_equal(wal_durable_lsn(w), records);
    assert_int_equal(wal_last_lsn(w), records);
    wal_get_stats(w, &st);
    wal_close(w);

    printf("group commit: %d threads x %d records: %" PRIu64 " records, %" PRIu64
           " fdatasyncs (%.1f records/sync), %.0f records/s\n",
           GC_THREADS, GC_PER, st.records, st.syncs,
           st.syncs ? (double)st.records / (double)st.syncs : 0.0, rate32);
    printf("group commit: 1 thread x %d records: %" PRIu64 " fdatasyncs, %.0f records/s "
           "(32 threads: %.1fx)\n",
           GC_PER, st1.syncs, rate1, rate32 / rate1);
    assert_int_equal(st.records, records);
    assert_true(st.syncs > 0);
    assert_true(st.syncs < records / 2);

    memset(&g, 0, sizeof(g));
    assert_int_equal(wal_open(&c, 0, gc_replay, &g, &w), 0);
    assert_int_equal(g.n, records);
    assert_false(g.bad);
    for (int i = 0; i < GC_THREADS; i++)
        assert_int_equal(g.next[i], GC_PER);
    wal_close(w);
    rm_rf(dir);
    rm_rf(dir1);
    free(dir);
    free(dir1);
}

/* A tiny pending bound makes appenders wait for the flusher. */
static void test_backpressure(void **state)
{
    (void)state;
    char *dir = mkdir_tmp();
    wal_config c = cfg_for(dir);
    replay_log r = {0};
    uint8_t big[3000];
    wal *w;

    c.max_pending = 2048;
    w = open_ok(&c, 0, &r);
    for (uint64_t i = 1; i <= 2000; i++)
        assert_int_equal(append_rec(w, i, 0), i);
    /* Larger than max_pending: still accepted, alone. */
    memset(big, 0xab, sizeof(big));
    assert_int_equal(wal_append(w, big, sizeof(big)), 2001);
    assert_int_equal(wal_wait(w, 2001), 0);
    wal_close(w);

    /* 2000 records of rec_fill content, then the big one. */
    memset(&r, 0, sizeof(r));
    w = open_ok(&c, 0, &r);
    assert_int_equal(r.n, 2001);
    assert_int_equal(r.last, 2001);
    assert_int_equal(wal_last_lsn(w), 2001);
    wal_close(w);
    memset(&r, 0, sizeof(r));
    w = open_ok(&c, 1999, &r);
    assert_int_equal(r.n, 2);
    assert_true(r.bad);                 /* lsn 2001 is the 0xab record */
    wal_close(w);
    rm_rf(dir);
    free(dir);
}

/* Records appended with wal_append_waited whose wait never comes. */
typedef struct unwaited_arg {
    wal *w;
    uint64_t n;
    int bad;
    int done;                   /* atomic */
} unwaited_arg;

static void *unwaited_appender(void *p)
{
    unwaited_arg *a = p;
    uint8_t b[512];

    for (uint64_t i = 1; i <= a->n; i++) {
        size_t len = rec_len(i);
        rec_fill(i, 0, b, len);
        if (wal_append_waited(a->w, b, len) != i)
            a->bad = 1;
    }
    __atomic_store_n(&a->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* Poll until lsn is durable or 10 s passed; returns the durable lsn. */
static uint64_t durable_within(wal *w, uint64_t lsn)
{
    int64_t deadline = now_mono_ns() + 10 * 1000000000LL;
    while (wal_durable_lsn(w) < lsn && now_mono_ns() < deadline)
        usleep(5000);
    return wal_durable_lsn(w);
}

static void test_waited_never_waited(void **state)
{
    (void)state;
    char *dir = mkdir_tmp();
    wal_config c = cfg_for(dir);
    replay_log r = {0};
    unwaited_arg a = {.n = 2000};
    pthread_t th;
    int64_t deadline;
    uint8_t b[512];
    wal *w;

    /* A tiny pending bound: the appender must get the flusher to write
     * (its idle check is far off), or it would wait for space forever. */
    c.max_pending = 2048;
    c.idle_check_ms = 600000;
    a.w = w = open_ok(&c, 0, &r);
    assert_int_equal(pthread_create(&th, NULL, unwaited_appender, &a), 0);
    deadline = now_mono_ns() + 20 * 1000000000LL;
    while (!__atomic_load_n(&a.done, __ATOMIC_ACQUIRE) && now_mono_ns() < deadline)
        usleep(5000);
    assert_true(__atomic_load_n(&a.done, __ATOMIC_ACQUIRE));
    pthread_join(th, NULL);
    assert_false(a.bad);
    assert_int_equal(wal_wait(w, 2000), 0);
    wal_close(w);

    /* Records nobody waits for are written by the flusher's idle check. */
    c.idle_check_ms = 50;
    memset(&r, 0, sizeof(r));
    w = open_ok(&c, 0, &r);
    assert_int_equal(r.n, 2000);
    /* The first may be written as the flusher starts; once it is durable
     * the flusher sleeps (it holds mu from publishing it until its wait),
     * so the later ones are the idle check's. */
    for (uint64_t i = 2001; i <= 2003; i++) {
        size_t len = rec_len(i);
        rec_fill(i, 0, b, len);
        assert_int_equal(wal_append_waited(w, b, len), i);
        assert_int_equal(durable_within(w, i), i);
    }
    wal_close(w);

    expect_clean_replay(&c, 2003);
    rm_rf(dir);
    free(dir);
}

/* ---- failures ------------------------------------------------------- */

static void check_injected(enum wal_fault where)
{
    char *dir = mkdir_tmp();
    wal_config c = cfg_for(dir);
    replay_log r = {0};
    uint64_t next;
    wal_stats st0, st1;
    wal *w = open_ok(&c, 0, &r);

    append_range(w, 1, 20, 0);
    wal_inject_fault(w, where, -EIO);
    assert_int_equal(append_rec(w, 21, 0), 21);
    assert_int_equal(wal_wait(w, 21), -EIO);
    /* Permanently failed: no new lsns, every wait fails, no more I/O. */
    wal_get_stats(w, &st0);
    assert_int_equal(append_rec(w, 22, 0), 0);
    assert_int_equal(wal_wait(w, 21), -EIO);
    assert_int_equal(wal_wait(w, 20), -EIO);
    assert_int_equal(wal_rotate(w, &next), -EIO);
    assert_int_equal(wal_truncate_before(w, 10), -EIO);
    assert_int_equal(wal_durable_lsn(w), 20);
    wal_get_stats(w, &st1);
    assert_int_equal(st1.syncs, st0.syncs);
    assert_int_equal(st1.records, 20);
    wal_close(w);

    /* Whatever reached the file is recovered; the acknowledged part is. */
    memset(&r, 0, sizeof(r));
    w = open_ok(&c, 0, &r);
    assert_false(r.bad);
    assert_true(r.n >= 20 && r.n <= 21);
    assert_int_equal(wal_last_lsn(w), r.n);
    wal_close(w);
    rm_rf(dir);
    free(dir);
}

static void test_fsync_failure_is_permanent(void **state)
{
    (void)state;
    check_injected(WAL_FAULT_SYNC);
    check_injected(WAL_FAULT_WRITE);
}

static char *g_mnt;             /* tmpfs mounted by test_disk_full */

static int umount_teardown(void **state)
{
    (void)state;
    if (g_mnt) {
        umount(g_mnt);
        rm_rf(g_mnt);
        free(g_mnt);
        g_mnt = NULL;
    }
    return 0;
}

/* A real ENOSPC from a tiny tmpfs. */
static void test_disk_full(void **state)
{
    (void)state;
    char *mnt = mkdir_tmp();
    char *dir = xasprintf("%s/wal", mnt);
    wal_config c = cfg_for(dir);
    replay_log r = {0};
    uint8_t rec[1000];
    uint64_t acked = 0, lsn;
    int failed = 0;
    wal *w;

    if (mount("tmpfs", mnt, "tmpfs", 0, "size=64k") < 0) {
        int e = errno;
        rm_rf(mnt);
        free(dir);
        free(mnt);
        printf("skipping: cannot mount a tmpfs: %s\n", strerror(e));
        skip();
    }
    g_mnt = mnt;
    w = open_ok(&c, 0, &r);
    log_set_level(LOG_ERROR);
    for (uint64_t i = 1; i <= 1000; i++) {
        memset(rec, (int)(i & 0xff), sizeof(rec));
        lsn = wal_append(w, rec, sizeof(rec));
        if (lsn == 0 || wal_wait(w, lsn) != 0) {
            failed = 1;
            break;
        }
        acked = lsn;
    }
    log_set_level(LOG_WARN);
    assert_true(failed);
    assert_true(acked > 10 && acked < 70);
    assert_int_equal(wal_append(w, rec, 10), 0);
    assert_int_equal(wal_wait(w, acked), -EIO);
    wal_close(w);

    /* Reopen on the still-full disk: a partial frame is cut, every
     * acknowledged record is there. */
    memset(&r, 0, sizeof(r));
    w = NULL;
    assert_int_equal(wal_open(&c, 0, dummy_replay, NULL, &w), 0);
    assert_true(wal_last_lsn(w) >= acked);
    assert_true(wal_last_lsn(w) <= acked + 1);
    wal_close(w);
    g_mnt = NULL;
    assert_int_equal(umount(mnt), 0);
    rm_rf(mnt);
    free(dir);
    free(mnt);
}

/* The segment being written is extended with zeros ahead of the records
 * (a sync then flushes data only). A copy taken while it is open, as a
 * crash would leave it, recovers every record; a clean close, and every
 * rotation, cut a segment back to its last frame. */
static void test_preallocated_tail(void **state)
{
    (void)state;
    char *d1 = mkdir_tmp(), *d2 = mkdir_tmp();
    wal_config c = cfg_for(d1);
    replay_log r = {0};
    wal *w = open_ok(&c, 0, &r);
    struct stat st;
    char *seg = xasprintf("%s/wal-0000000000000001.log", d1);
    char *copy = xasprintf("%s/wal-0000000000000001.log", d2);

    append_range(w, 1, 200, 0);
    assert_int_equal(stat(seg, &st), 0);
    assert_int_equal(st.st_size % (1 << 20), 0);
    uint64_t data = 32;
    for (uint64_t i = 1; i <= 200; i++)
        data += 16 + rec_len(i);
    assert_true((uint64_t)st.st_size > data);

    /* What a crash would leave: the frames, then zeros. */
    char *cmd = xasprintf("cp '%s' '%s'", seg, copy);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    wal_config c2 = cfg_for(d2);
    replay_log r2 = {0};
    wal *w2 = open_ok(&c2, 0, &r2);
    assert_int_equal(r2.n, 200);
    assert_int_equal(r2.last, 200);
    assert_false(r2.bad);
    /* It goes on from there. */
    append_range(w2, 201, 210, 0);
    wal_close(w2);
    assert_int_equal(stat(copy, &st), 0);
    for (uint64_t i = 201; i <= 210; i++)
        data += 16 + rec_len(i);
    assert_int_equal((uint64_t)st.st_size, data);

    /* A clean close leaves exactly the frames. */
    wal_close(w);
    assert_int_equal(stat(seg, &st), 0);
    data = 32;
    for (uint64_t i = 1; i <= 200; i++)
        data += 16 + rec_len(i);
    assert_int_equal((uint64_t)st.st_size, data);
    memset(&r, 0, sizeof(r));
    w = open_ok(&c, 0, &r);
    assert_int_equal(r.n, 200);
    assert_false(r.bad);
    wal_close(w);
    free(seg);
    free(copy);
    rm_rf(d1);
    rm_rf(d2);
    free(d1);
    free(d2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_from_lsn),
        cmocka_unit_test(test_snapshot_ahead),
        cmocka_unit_test(test_api_misuse),
        cmocka_unit_test(test_torn_tail_every_offset),
        cmocka_unit_test(test_bitflip_last_frame_is_torn),
        cmocka_unit_test(test_bitflip_middle_is_corrupt),
        cmocka_unit_test(test_lsn_gap_is_corrupt),
        cmocka_unit_test(test_bad_segment_header),
        cmocka_unit_test(test_rotation_and_truncate),
        cmocka_unit_test(test_multi_segment_recovery),
        cmocka_unit_test(test_leftover_tmp_removed),
        cmocka_unit_test(test_group_commit),
        cmocka_unit_test(test_backpressure),
        cmocka_unit_test(test_waited_never_waited),
        cmocka_unit_test(test_fsync_failure_is_permanent),
        cmocka_unit_test(test_preallocated_tail),
        cmocka_unit_test_teardown(test_disk_full, umount_teardown),
    };
    log_set_level(LOG_WARN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
