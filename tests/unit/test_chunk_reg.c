/*
 * test_chunk_reg.c — registration and heartbeats (server/chunk/reg.h)
 * against an in-process fake metad built on common/httpd.h: id assignment
 * and persistence, heartbeat contents, re-registration on 404, retry with
 * backoff while metad fails, prompt stop.
 */
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/fsrec.h"
#include "common/hash.h"
#include "common/httpd.h"
#include "common/rec.h"
#include "common/util.h"
#include "server/chunk/reg.h"
#include "server/chunk/store.h"
#include "tests/lib/harness.h"

#define WAIT_MS 10000

/* The fake metad's state; guarded by lock (handlers run on httpd threads). */
typedef struct fake_meta {
    pthread_mutex_t lock;
    unsigned registers, heartbeats;
    unsigned fail_next;        /* answer this many calls 503 */
    int forget;                /* answer heartbeats 404 */
    uint64_t assign_sid;       /* id given to FT_SID 0 */
    uint64_t last_sid, last_used, last_chunks, last_capacity;
    char last_addr[64];
} fake_meta;

typedef struct fixture {
    char dir[64];
    chunkstore *store;
    fake_meta fm;
    httpd *http;
    char meta_addr[64];
} fixture;

static void fake_call(httpd_req *r, fake_meta *fm, int heartbeat)
{
    size_t len;
    const uint8_t *body = httpd_body(r, &len);
    recr rec;
    uint64_t sid = 0;
    char *addr = NULL;
    if (rec_open(&rec, body, len) < 0 || rec.type != FSREC_SERVER ||
        rec_get_u64(&rec, FT_SID, &sid) < 0 || rec_get_str(&rec, FT_ADDR, 63, &addr) < 0) {
        httpd_reply_err(r, -EINVAL, "bad record");
        return;
    }
    pthread_mutex_lock(&fm->lock);
    if (fm->fail_next) {
        fm->fail_next--;
        pthread_mutex_unlock(&fm->lock);
        free(addr);
        httpd_reply_text(r, 503, "not yet");
        return;
    }
    if (heartbeat && fm->forget) {
        pthread_mutex_unlock(&fm->lock);
        free(addr);
        httpd_reply_err(r, -ENOENT, "unknown server");
        return;
    }
    if (heartbeat)
        fm->heartbeats++;
    else
        fm->registers++;
    fm->last_sid = sid;
    rec_get_u64(&rec, FT_USED, &fm->last_used);
    rec_get_u64(&rec, FT_CHUNKS, &fm->last_chunks);
    rec_get_u64(&rec, FT_CAPACITY, &fm->last_capacity);
    snprintf(fm->last_addr, sizeof fm->last_addr, "%s", addr);
    uint64_t give = sid ? sid : fm->assign_sid;
    pthread_mutex_unlock(&fm->lock);
    free(addr);

    recw w;
    recw_init(&w, FSREC_SERVER);
    recw_u64(&w, FT_SID, give);
    recw_u64(&w, FT_EPOCH, 1);
    recw_u64(&w, FT_HB_INTERVAL, 50);
    size_t outlen;
    uint8_t *out = recw_steal(&w, &outlen);
    httpd_reply(r, 200, "application/x-cairn-record", out, outlen);
}

static void fake_register(httpd_req *r, void *ctx)
{
    fake_call(r, ctx, 0);
}

static void fake_heartbeat(httpd_req *r, void *ctx)
{
    fake_call(r, ctx, 1);
}

static const httpd_route fake_routes[] = {
    {"POST", "/v1/register", fake_register, "register", 1 << 16},
    {"POST", "/v1/heartbeat", fake_heartbeat, "heartbeat", 1 << 16},
};

static httpd_config fake_cfg;

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
    snprintf(f->dir, sizeof f->dir, "/tmp/cairn-reg-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    chunkstore_config sc = {.dir = f->dir};
    assert_int_equal(chunkstore_open(&sc, &f->store), 0);
    pthread_mutex_init(&f->fm.lock, NULL);
    f->fm.assign_sid = 9;
    fake_cfg = (httpd_config){.host = "127.0.0.1", .routes = fake_routes,
                              .nroutes = ARRAY_LEN(fake_routes), .ctx = &f->fm};
    f->http = httpd_start(&fake_cfg);
    assert_non_null(f->http);
    snprintf(f->meta_addr, sizeof f->meta_addr, "127.0.0.1:%u", httpd_port(f->http));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    httpd_stop(f->http);
    chunkstore_free(f->store);
    pthread_mutex_destroy(&f->fm.lock);
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static chunkreg *start_reg(fixture *f, uint64_t hb_ms)
{
    chunkreg_config rc = {.meta = f->meta_addr, .addr = "127.0.0.1:5555", .dir = f->dir,
                          .store = f->store, .capacity = 123456789, .hb_interval_ms = hb_ms};
    chunkreg *g = NULL;
    assert_int_equal(chunkreg_start(&rc, &g), 0);
    return g;
}

typedef struct counter_wait {
    fake_meta *fm;
    unsigned registers, heartbeats;
} counter_wait;

static int counts_reached(void *ctx)
{
    counter_wait *cw = ctx;
    pthread_mutex_lock(&cw->fm->lock);
    int ok = cw->fm->registers >= cw->registers && cw->fm->heartbeats >= cw->heartbeats;
    pthread_mutex_unlock(&cw->fm->lock);
    return ok;
}

static void test_register_then_heartbeat(void **state)
{
    fixture *f = *state;
    uint8_t id[CHUNK_ID_LEN];
    sha256("chunk", 5, id);
    assert_int_equal(chunkstore_put(f->store, id, "chunk", 5), 0);
    chunkstore_stats st;
    chunkstore_get_stats(f->store, &st);

    chunkreg *g = start_reg(f, 2000);
    /* metad's 50 ms interval is shorter than ours, so heartbeats come fast. */
    counter_wait cw = {&f->fm, 1, 3};
    assert_true(wait_until(counts_reached, &cw, WAIT_MS));
    chunkreg_stop(g);

    pthread_mutex_lock(&f->fm.lock);
    assert_int_equal(f->fm.registers, 1);
    assert_int_equal(f->fm.last_sid, 9);
    assert_int_equal(f->fm.last_chunks, 1);
    assert_int_equal(f->fm.last_used, st.bytes);
    assert_int_equal(f->fm.last_capacity, 123456789);
    assert_string_equal(f->fm.last_addr, "127.0.0.1:5555");
    pthread_mutex_unlock(&f->fm.lock);

    uint32_t sid;
    assert_int_equal(chunkreg_load_sid(f->dir, &sid), 0);
    assert_int_equal(sid, 9);

    buf b = {0};
    chunkreg_metrics(&b, NULL);
    assert_int_equal(b.len, 0);
    buf_free(&b);
}

static void test_identity_kept(void **state)
{
    fixture *f = *state;
    assert_int_equal(chunkreg_save_sid(f->dir, 31), 0);
    chunkreg *g = start_reg(f, 2000);
    counter_wait cw = {&f->fm, 1, 1};
    assert_true(wait_until(counts_reached, &cw, WAIT_MS));
    chunkreg_stop(g);
    pthread_mutex_lock(&f->fm.lock);
    assert_int_equal(f->fm.last_sid, 31);
    pthread_mutex_unlock(&f->fm.lock);
    uint32_t sid;
    assert_int_equal(chunkreg_load_sid(f->dir, &sid), 0);
    assert_int_equal(sid, 31);
}

static void test_reregister_on_404(void **state)
{
    fixture *f = *state;
    chunkreg *g = start_reg(f, 2000);
    counter_wait cw = {&f->fm, 1, 1};
    assert_true(wait_until(counts_reached, &cw, WAIT_MS));
    pthread_mutex_lock(&f->fm.lock);
    f->fm.forget = 1;
    unsigned hb = f->fm.heartbeats;
    pthread_mutex_unlock(&f->fm.lock);
    cw = (counter_wait){&f->fm, 2, 0};
    assert_true(wait_until(counts_reached, &cw, WAIT_MS));
    pthread_mutex_lock(&f->fm.lock);
    f->fm.forget = 0;
    assert_int_equal(f->fm.last_sid, 9); /* re-registers under its id */
    pthread_mutex_unlock(&f->fm.lock);
    cw = (counter_wait){&f->fm, 2, hb + 1};
    assert_true(wait_until(counts_reached, &cw, WAIT_MS));
    chunkreg_stop(g);
}

static void test_retries_while_metad_fails(void **state)
{
    fixture *f = *state;
    f->fm.fail_next = 3; /* 200 + 400 + 800 ms of backoff */
    chunkreg *g = start_reg(f, 2000);
    counter_wait cw = {&f->fm, 1, 1};
    assert_true(wait_until(counts_reached, &cw, WAIT_MS));
    buf b = {0};
    chunkreg_metrics(&b, g);
    buf_append(&b, "", 1);
    assert_non_null(strstr((char *)b.data, "cairn_chunkd_meta_failures_total 3\n"));
    assert_non_null(strstr((char *)b.data, "cairn_chunkd_server_id 9\n"));
    buf_free(&b);
    chunkreg_stop(g);
}

static void test_stop_is_prompt(void **state)
{
    fixture *f = *state;
    f->fm.fail_next = 1000000; /* keeps it in backoff */
    chunkreg *g = start_reg(f, 3600000);
    int64_t t0 = now_mono_ms();
    chunkreg_stop(g);
    assert_true(now_mono_ms() - t0 < 2000);
}

static void test_bad_server_id_file(void **state)
{
    fixture *f = *state;
    char *path = xasprintf("%s/server.id", f->dir);
    const char *bad[] = {"abc\n", "0\n", "99999999999\n", "12x\n", ""};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        assert_int_equal(write_file_atomic(path, bad[i], strlen(bad[i])), 0);
        uint32_t sid;
        assert_int_equal(chunkreg_load_sid(f->dir, &sid), -EINVAL);
        chunkreg_config rc = {.meta = f->meta_addr, .addr = "x:1", .dir = f->dir,
                              .store = f->store, .hb_interval_ms = 1000};
        chunkreg *g = NULL;
        assert_int_equal(chunkreg_start(&rc, &g), -EINVAL);
    }
    unlink(path);
    uint32_t sid = 5;
    assert_int_equal(chunkreg_load_sid(f->dir, &sid), 0);
    assert_int_equal(sid, 0);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_register_then_heartbeat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_identity_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reregister_on_404, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retries_while_metad_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_is_prompt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_server_id_file, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
