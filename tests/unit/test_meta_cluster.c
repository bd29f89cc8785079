/*
 * test_meta_cluster.c — the cluster map (server/meta/cluster.h) without
 * HTTP: FULL from reported usage, drain / undrain / remove with their
 * epoch bumps and errors, retired ids, and replay of the logged records
 * (and of a snapshot) reproducing the same map.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/fsrec.h"
#include "common/rec.h"
#include "common/util.h"
#include "server/meta/cluster.h"

#define GIB (1ull << 30)
#define MIB (1ull << 20)

static buf g_log;
static uint64_t g_lsn;

static uint64_t log_rec(const uint8_t *rec, size_t len, void *ctx)
{
    uint8_t hdr[4];

    (void)ctx;
    put_le32(hdr, (uint32_t)len);
    buf_append(&g_log, hdr, 4);
    buf_append(&g_log, rec, len);
    return ++g_lsn;
}

static int emit(const uint8_t *rec, size_t len, void *ctx)
{
    uint8_t hdr[4];

    put_le32(hdr, (uint32_t)len);
    buf_append(ctx, hdr, 4);
    buf_append(ctx, rec, len);
    return 0;
}

/* Snapshot records of c, framed like g_log. */
static buf snapshot(cluster *c)
{
    buf out = {0};

    assert_int_equal(cluster_snapshot_write(c, emit, NULL, &out), 0);
    return out;
}

static cluster *replay(const buf *b)
{
    cluster *c = cluster_new(10000, CLUSTER_RESERVE_AUTO, log_rec, NULL);
    size_t off = 0;

    while (off < b->len) {
        uint32_t len = get_le32(b->data + off);
        assert_int_equal(cluster_apply(c, b->data + off + 4, len), 0);
        off += 4 + len;
    }
    return c;
}

static int report(cluster *c, int hb, uint32_t sid, uint64_t cap, uint64_t used, uint32_t *got,
                  uint64_t *epoch)
{
    cluster_report in;
    uint64_t lsn;

    memset(&in, 0, sizeof(in));
    in.sid = sid;
    snprintf(in.addr, sizeof(in.addr), "127.0.0.1:%u", 9000 + sid);
    in.capacity = cap;
    in.used = used;
    return cluster_report_in(c, &in, hb, got, epoch, &lsn);
}

/* State of sid from a drain/remove answer. */
static uint64_t answer_state(recw *w, uint64_t *epoch)
{
    size_t len;
    const uint8_t *p = recw_finish(w, &len);
    recr r;
    uint64_t st;

    assert_int_equal(rec_open(&r, p, len), 0);
    assert_int_equal(r.type, FSREC_SERVER);
    assert_int_equal(rec_get_u64(&r, FT_STATE, &st), 0);
    assert_int_equal(rec_get_u64(&r, FT_EPOCH, epoch), 0);
    recw_free(w);
    return st;
}

static void test_admin_and_replay(void **state)
{
    (void)state;
    cluster *c, *d, *e;
    cluster_counts cc;
    uint32_t s1, s2, s3, s4, got;
    uint64_t ep, ep2, lsn;
    recw w;
    buf a, b, x;

    buf_free(&g_log);
    c = cluster_new(10000, CLUSTER_RESERVE_AUTO, log_rec, NULL);
    assert_int_equal(report(c, 0, 0, 10 * GIB, GIB, &s1, &ep), 0);
    assert_int_equal(report(c, 0, 0, 10 * GIB, 10 * GIB - 10 * MIB, &s2, &ep), 0);
    assert_int_equal(report(c, 0, 0, 100 * GIB, 0, &s3, &ep), 0);
    cluster_get_counts(c, &cc);
    assert_int_equal(cc.up, 2);
    assert_int_equal(cc.full, 1);
    assert_int_equal(cc.capacity, 120 * GIB);
    /* Errors. */
    assert_int_equal(cluster_set_drain(c, 99, 1, &w, &lsn), -ENOENT);
    assert_int_equal(cluster_remove(c, 99, &w, &lsn), -ENOENT);
    assert_int_equal(cluster_remove(c, s1, &w, &lsn), -EBUSY);
    assert_int_equal(cluster_remove(c, s2, &w, &lsn), -EBUSY);   /* FULL is in service */
    assert_int_equal(cluster_epoch(c), ep);
    /* Drain (once), undrain, drain, remove. */
    assert_int_equal(cluster_set_drain(c, s1, 1, &w, &lsn), 0);
    assert_true(lsn > 0);
    assert_int_equal(answer_state(&w, &ep2), SERVER_DRAINING);
    assert_int_equal(ep2, ep + 1);
    assert_int_equal(cluster_set_drain(c, s1, 1, &w, &lsn), 0);
    assert_int_equal(lsn, 0);
    answer_state(&w, &ep);
    assert_int_equal(ep, ep2);
    /* Undraining a FULL-by-usage server gives FULL back, not UP. */
    assert_int_equal(cluster_set_drain(c, s2, 1, &w, &lsn), 0);
    answer_state(&w, &ep);
    assert_int_equal(cluster_set_drain(c, s2, 0, &w, &lsn), 0);
    assert_int_equal(answer_state(&w, &ep), SERVER_FULL);
    assert_int_equal(cluster_remove(c, s1, &w, &lsn), 0);
    assert_int_equal(answer_state(&w, &ep2), SERVER_DRAINING);
    assert_int_equal(ep2, ep + 1);
    /* The removed id is retired. */
    assert_int_equal(report(c, 1, s1, 10 * GIB, GIB, &got, &ep), -ENOENT);
    assert_int_equal(report(c, 0, s1, 10 * GIB, GIB, &s4, &ep), 0);
    assert_true(s4 > s3);
    cluster_get_counts(c, &cc);
    assert_int_equal(cc.up + cc.full + cc.draining + cc.down, 3);
    /* Replaying the log gives the same map and epoch. */
    d = replay(&g_log);
    assert_int_equal(cluster_epoch(d), cluster_epoch(c));
    a = snapshot(c);
    b = snapshot(d);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.data, b.data, a.len);
    /* So does loading the snapshot. */
    e = replay(&a);
    x = snapshot(e);
    assert_int_equal(a.len, x.len);
    assert_memory_equal(a.data, x.data, a.len);
    /* After a reload the next new server still gets a fresh id. */
    assert_int_equal(report(e, 0, 0, GIB, 0, &got, &ep), 0);
    assert_true(got > s4);
    buf_free(&a);
    buf_free(&b);
    buf_free(&x);
    cluster_free(c);
    cluster_free(d);
    cluster_free(e);
}

static void test_remove_unknown_in_replay(void **state)
{
    (void)state;
    cluster *c = cluster_new(10000, 0, log_rec, NULL);
    recw w;
    size_t len;
    const uint8_t *p;

    recw_init(&w, CLOP_REMOVE);
    recw_u64(&w, FT_SID, 5);
    recw_u64(&w, FT_EPOCH, 9);
    p = recw_finish(&w, &len);
    assert_int_equal(cluster_apply(c, p, len), -ENOENT);
    recw_free(&w);
    /* A server state out of range is refused. */
    recw_init(&w, CLOP_SERVER);
    recw_u64(&w, FT_SID, 1);
    recw_str(&w, FT_ADDR, "127.0.0.1:1");
    recw_u64(&w, FT_CAPACITY, 1);
    recw_u64(&w, FT_STATE, 9);
    p = recw_finish(&w, &len);
    assert_int_equal(cluster_apply(c, p, len), CAIRN_EPROTO);
    recw_free(&w);
    cluster_free(c);
}

static void test_full_reserve(void **state)
{
    (void)state;
    cluster *never = cluster_new(10000, 0, log_rec, NULL);
    cluster *fixed = cluster_new(10000, 100 * MIB, log_rec, NULL);
    cluster_counts cc;
    uint32_t sid, got;
    uint64_t ep;

    assert_int_equal(report(never, 0, 0, GIB, GIB, &sid, &ep), 0);
    cluster_get_counts(never, &cc);
    assert_int_equal(cc.up, 1);
    assert_int_equal(report(fixed, 0, 0, GIB, GIB - 99 * MIB, &sid, &ep), 0);
    cluster_get_counts(fixed, &cc);
    assert_int_equal(cc.full, 1);
    /* Hysteresis: 100 MiB + 1/16 is needed to leave FULL. */
    assert_int_equal(report(fixed, 1, sid, GIB, GIB - 105 * MIB, &got, &ep), 0);
    cluster_get_counts(fixed, &cc);
    assert_int_equal(cc.full, 1);
    assert_int_equal(report(fixed, 1, sid, GIB, GIB - 107 * MIB, &got, &ep), 0);
    cluster_get_counts(fixed, &cc);
    assert_int_equal(cc.up, 1);
    cluster_free(never);
    cluster_free(fixed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_admin_and_replay),
        cmocka_unit_test(test_remove_unknown_in_replay),
        cmocka_unit_test(test_full_reserve),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);

    buf_free(&g_log);
    return rc;
}
