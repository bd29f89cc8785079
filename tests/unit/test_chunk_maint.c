/*
 * test_chunk_maint.c — the pieces of cairn-chunkd's maintenance that need
 * no other server: the store's walk, scrub verification (CRC and
 * SHA-256), grace-period deletes, the corrupt hook, placement ranking
 * against common/hrw.h, and the maintenance thread run standalone (scrub
 * pass through maint_run, rate limit, passes that need metad failing
 * without deleting anything).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
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
#include "common/fsrec.h"
#include "common/hash.h"
#include "common/hrw.h"
#include "common/util.h"
#include "common/chunkfile.h"
#include "server/chunk/maint.h"
#include "server/chunk/peer.h"
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
    snprintf(f->dir, sizeof f->dir, "/tmp/cairn-maint-XXXXXX");
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

static uint8_t *pattern(size_t n, unsigned seed)
{
    uint8_t *p = xmalloc(n + 1);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 31 + seed * 7 + (i >> 8) + (seed >> 3));
    return p;
}

/* Store a chunk of n pattern bytes; its id in id. */
static void put_chunk(fixture *f, size_t n, unsigned seed, uint8_t id[CHUNK_ID_LEN])
{
    uint8_t *d = pattern(n, seed);
    sha256(d, n, id);
    assert_true(chunkstore_put(f->s, id, d, n) >= 0);
    free(d);
}

static void flip_byte(const char *path, off_t off)
{
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    assert_int_equal(fseeko(fp, off, SEEK_SET), 0);
    int c = fgetc(fp);
    assert_int_not_equal(c, EOF);
    assert_int_equal(fseeko(fp, off, SEEK_SET), 0);
    fputc(c ^ 0x01, fp);
    fclose(fp);
}

static void test_iter_every_id_once(void **state)
{
    fixture *f = *state;
    enum { N = 700 };
    uint8_t (*want)[CHUNK_ID_LEN] = xmalloc(N * CHUNK_ID_LEN);
    for (unsigned i = 0; i < N; i++)
        put_chunk(f, 100 + i, i, want[i]);
    /* A stray file and a stray directory are not chunks. */
    char *stray = xasprintf("%s/chunks/zz", f->dir);
    assert_int_equal(mkdir(stray, 0755), 0);
    free(stray);

    chunkstore_iter *it;
    assert_int_equal(chunkstore_iter_new(f->s, &it), 0);
    uint8_t ids[37][CHUNK_ID_LEN]; /* odd batch size: batches cross leaves */
    uint8_t *seen = xcalloc(N, 1);
    size_t total = 0;
    int n;
    while ((n = chunkstore_iter_next(it, ids, 37)) > 0) {
        for (int k = 0; k < n; k++) {
            int found = 0;
            for (unsigned i = 0; i < N; i++)
                if (memcmp(want[i], ids[k], CHUNK_ID_LEN) == 0) {
                    assert_int_equal(seen[i], 0);
                    seen[i] = 1;
                    found = 1;
                }
            assert_true(found);
        }
        total += (size_t)n;
    }
    assert_int_equal(n, 0);
    assert_int_equal(total, N);
    assert_int_equal(chunkstore_iter_next(it, ids, 37), 0);
    chunkstore_iter_free(it);
    free(seen);
    free(want);
}

static void test_iter_empty_store(void **state)
{
    fixture *f = *state;
    chunkstore_iter *it;
    uint8_t ids[4][CHUNK_ID_LEN];
    assert_int_equal(chunkstore_iter_new(f->s, &it), 0);
    assert_int_equal(chunkstore_iter_next(it, ids, 4), 0);
    chunkstore_iter_free(it);
}

typedef struct hook_log {
    int calls;
    uint8_t last[CHUNK_ID_LEN];
} hook_log;

static void hook(void *ctx, const uint8_t id[CHUNK_ID_LEN])
{
    hook_log *h = ctx;
    h->calls++;
    memcpy(h->last, id, CHUNK_ID_LEN);
}

static void test_verify_crc_and_hook(void **state)
{
    fixture *f = *state;
    hook_log h = {0};
    chunkstore_set_corrupt_hook(f->s, hook, &h);
    uint8_t good[CHUNK_ID_LEN], bad[CHUNK_ID_LEN];
    put_chunk(f, 20000, 1, good);
    put_chunk(f, 20000, 2, bad);
    uint64_t bytes;
    assert_int_equal(chunkstore_verify(f->s, good, 0, &bytes), 0);
    assert_int_equal(bytes, 20000 + CHUNKFILE_HDR_LEN);
    assert_int_equal(chunkstore_verify(f->s, good, 1, &bytes), 0);

    char *path = chunkstore_path(f->dir, bad);
    flip_byte(path, CHUNKFILE_HDR_LEN + 777);
    assert_int_equal(chunkstore_verify(f->s, bad, 0, &bytes), CAIRN_ECORRUPT);
    assert_int_equal(bytes, 20000 + CHUNKFILE_HDR_LEN);
    assert_int_equal(access(path, F_OK), -1); /* moved aside */
    assert_int_equal(chunkstore_has(f->s, bad), 0);
    assert_int_equal(h.calls, 1);
    assert_memory_equal(h.last, bad, CHUNK_ID_LEN);
    assert_int_equal(chunkstore_verify(f->s, bad, 0, &bytes), -ENOENT);
    chunkstore_stats st;
    chunkstore_get_stats(f->s, &st);
    assert_int_equal(st.chunks, 1);
    assert_int_equal(st.corrupt_found, 1);
    free(path);
    chunkstore_set_corrupt_hook(f->s, NULL, NULL);
}

/* A file whose CRC is right but whose bytes are not the id's: only the
 * SHA-256 scrub sees it. */
static void test_verify_sha_only(void **state)
{
    fixture *f = *state;
    uint8_t id[CHUNK_ID_LEN];
    put_chunk(f, 5000, 3, id);
    uint8_t *other = pattern(5000, 4);
    uint8_t hdr[CHUNKFILE_HDR_LEN];
    const void *stored;
    size_t stored_len;
    void *owned;
    assert_int_equal(chunkfile_encode(id, other, 5000, 0, hdr, &stored, &stored_len, &owned), 0);
    char *path = chunkstore_path(f->dir, id);
    int fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write_full(fd, hdr, sizeof hdr), 0);
    assert_int_equal(write_full(fd, stored, stored_len), 0);
    close(fd);
    free(owned);
    free(other);
    uint64_t bytes;
    assert_int_equal(chunkstore_verify(f->s, id, 0, &bytes), 0);
    assert_int_equal(chunkstore_verify(f->s, id, 1, &bytes), CAIRN_ECORRUPT);
    assert_int_equal(chunkstore_has(f->s, id), 0);
    free(path);
}

static void set_mtime(const char *path, time_t t)
{
    struct timespec ts[2] = {{t, 0}, {t, 0}};
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static void test_delete_older_respects_grace(void **state)
{
    fixture *f = *state;
    uint8_t id[CHUNK_ID_LEN];
    put_chunk(f, 3000, 5, id);
    char *path = chunkstore_path(f->dir, id);
    int64_t now = now_realtime_ns();
    uint64_t freed = 99;
    /* Written just now: a cutoff an hour back keeps it. */
    assert_int_equal(chunkstore_delete_older(f->s, id, now - 3600LL * 1000000000LL, &freed), 1);
    assert_int_equal(freed, 0);
    assert_int_equal(chunkstore_has(f->s, id), 1);

    int64_t mtime;
    uint64_t size;
    set_mtime(path, 1000000000);
    assert_int_equal(chunkstore_file_info(f->s, id, &mtime, &size), 0);
    assert_int_equal(mtime, 1000000000LL * 1000000000LL);
    assert_int_equal(size, 3000 + CHUNKFILE_HDR_LEN);
    /* A PUT of the held chunk restarts the grace period. */
    uint8_t *d = pattern(3000, 5);
    assert_int_equal(chunkstore_put(f->s, id, d, 3000), 1);
    free(d);
    assert_int_equal(chunkstore_delete_older(f->s, id, now - 3600LL * 1000000000LL, &freed), 1);

    set_mtime(path, 1000000000);
    assert_int_equal(chunkstore_delete_older(f->s, id, now - 3600LL * 1000000000LL, &freed), 0);
    assert_int_equal(freed, 3000 + CHUNKFILE_HDR_LEN);
    assert_int_equal(chunkstore_has(f->s, id), 0);
    assert_int_equal(chunkstore_delete_older(f->s, id, now, &freed), -ENOENT);
    chunkstore_stats st;
    chunkstore_get_stats(f->s, &st);
    assert_int_equal(st.chunks, 0);
    assert_int_equal(st.bytes, 0);
    free(path);
}

static void test_rank_matches_hrw(void **state)
{
    (void)state;
    peer_map *m = xcalloc(1, sizeof *m);
    m->n = 5;
    const uint64_t caps[5] = {100ull << 30, 1ull << 20, 50ull << 30, 100ull << 30, 3ull << 30};
    const uint32_t states[5] = {SERVER_UP, SERVER_UP, SERVER_DOWN, SERVER_FULL, SERVER_DRAINING};
    for (size_t i = 0; i < m->n; i++) {
        m->servers[i].id = (uint32_t)(10 + i * 3);
        m->servers[i].capacity = caps[i];
        m->servers[i].state = states[i];
    }
    for (unsigned k = 0; k < 200; k++) {
        uint8_t id[CHUNK_ID_LEN];
        sha256(&k, sizeof k, id);
        hrw_node nodes[5];
        size_t ref[5];
        for (size_t i = 0; i < 5; i++) {
            nodes[i].id = m->servers[i].id;
            double gib = (double)caps[i] / (double)(1ull << 30);
            nodes[i].weight = gib < 1.0 ? 1.0 : gib;
        }
        hrw_rank(id, nodes, 5, ref);
        size_t all[5];
        assert_int_equal(peer_rank(m, id, ~0u, all), 5);
        assert_memory_equal(all, ref, sizeof ref);
        /* Filtering keeps the relative order. */
        size_t up[5];
        size_t nup = peer_rank(m, id, PEER_STATE(SERVER_UP) | PEER_STATE(SERVER_FULL), up);
        assert_int_equal(nup, 3);
        size_t j = 0;
        for (size_t i = 0; i < 5; i++)
            if (states[ref[i]] == SERVER_UP || states[ref[i]] == SERVER_FULL)
                assert_int_equal(up[j++], ref[i]);
    }
    assert_int_equal(peer_find(m, 16), 2);
    assert_int_equal(peer_find(m, 17), -1);
    free(m);
}

static void test_pass_names(void **state)
{
    (void)state;
    enum maint_pass p;
    const char *names[] = {"scrub", "sha-scrub", "repair", "gc"};
    for (int i = 0; i < MAINT_NPASSES; i++) {
        assert_int_equal(maint_pass_parse(names[i], &p), 0);
        assert_int_equal(p, i);
        assert_string_equal(maint_pass_name(p), names[i]);
    }
    assert_int_equal(maint_pass_parse("Scrub", &p), -EINVAL);
    assert_int_equal(maint_pass_parse(NULL, &p), -EINVAL);
}

static maint *standalone(fixture *f, uint64_t rate)
{
    maint_config mc = {
        .store = f->s,
        .dir = f->dir,
        .meta = NULL,
        .max_chunk = 64 << 20,
        .rate = rate,
    };
    maint *m = maint_new(&mc);
    assert_int_equal(maint_start(m, NULL), 0);
    return m;
}

static void test_standalone_scrub_and_gc(void **state)
{
    fixture *f = *state;
    uint8_t a[CHUNK_ID_LEN], b[CHUNK_ID_LEN];
    put_chunk(f, 4096, 6, a);
    put_chunk(f, 4096, 7, b);
    char *path = chunkstore_path(f->dir, b);
    flip_byte(path, 10); /* header */
    free(path);
    maint *m = standalone(f, 0);
    maint_result r;
    assert_int_equal(maint_run(m, MAINT_SCRUB, 10000, &r), 0);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.scanned, 2);
    assert_int_equal(r.corrupt, 1);
    assert_int_equal(r.refetched, 0); /* nowhere to fetch from */
    /* Without metad nothing is ever deleted. */
    path = chunkstore_path(f->dir, a);
    set_mtime(path, 1000000000);
    free(path);
    assert_int_equal(maint_run(m, MAINT_GC, 10000, &r), 0);
    assert_int_equal(r.rc, -ENOTCONN);
    assert_int_equal(chunkstore_has(f->s, a), 1);
    assert_int_equal(maint_run(m, MAINT_REPAIR, 10000, &r), 0);
    assert_true(r.rc < 0);
    buf out = {0};
    maint_metrics(&out, m);
    buf_append(&out, "", 1);
    assert_non_null(strstr((char *)out.data, "cairn_chunkd_scrub_corrupt_total 1\n"));
    assert_non_null(strstr((char *)out.data, "cairn_chunkd_maint_scanned_total{pass=\"scrub\"} 2\n"));
    assert_non_null(strstr((char *)out.data, "cairn_chunkd_maint_last_pass_ok{pass=\"gc\"} 0\n"));
    buf_free(&out);
    maint_stop(m);
    assert_int_equal(maint_run(m, MAINT_SCRUB, 1000, &r), -ECANCELED);
    maint_free(m);
}

static void test_rate_limit(void **state)
{
    fixture *f = *state;
    uint8_t id[CHUNK_ID_LEN];
    for (unsigned i = 0; i < 8; i++)
        put_chunk(f, 1 << 20, 100 + i, id);
    maint *m = standalone(f, 4 << 20); /* 8 MiB at 4 MiB/s: about 1.75 s */
    maint_result r;
    int64_t t0 = now_mono_ms();
    assert_int_equal(maint_run(m, MAINT_SHA_SCRUB, 20000, &r), 0);
    int64_t took = now_mono_ms() - t0;
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.scanned, 8);
    assert_true(r.bytes >= 8u << 20);
    assert_true(took >= 1500);
    assert_true(took < 10000);
    maint_stop(m);
    maint_free(m);
}

static void test_run_times_out_and_stop_is_prompt(void **state)
{
    fixture *f = *state;
    uint8_t id[CHUNK_ID_LEN];
    for (unsigned i = 0; i < 4; i++)
        put_chunk(f, 1 << 20, 200 + i, id);
    maint *m = standalone(f, 256 << 10); /* 4 MiB at 256 KiB/s: 16 s */
    maint_result r;
    assert_int_equal(maint_run(m, MAINT_SCRUB, 300, &r), -ETIMEDOUT);
    int64_t t0 = now_mono_ms();
    maint_stop(m);
    assert_true(now_mono_ms() - t0 < 3000);
    maint_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_iter_every_id_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_iter_empty_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_crc_and_hook, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_sha_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_older_respects_grace, setup, teardown),
        cmocka_unit_test(test_rank_matches_hrw),
        cmocka_unit_test(test_pass_names),
        cmocka_unit_test_setup_teardown(test_standalone_scrub_and_gc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_times_out_and_stop_is_prompt, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
