/*
 * srv_chunkd.c — drives a real cairn-chunkd over HTTP on 127.0.0.1.
 *
 * Most cases share one server started by the group setup (its metad
 * address points at a closed port, so it also shows that chunkd serves
 * without a metad). Cases that need their own configuration or restart the
 * server start their own. Every wait is bounded and polls a condition.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <cmocka.h>

#include "common/fsrec.h"
#include "common/hash.h"
#include "common/httpc.h"
#include "common/rec.h"
#include "common/util.h"
#include "tests/lib/harness.h"

#define NO_META "127.0.0.1:1"   /* nothing listens there: metad unreachable */
#define STOP_BOUND_MS 10000     /* SIGTERM must end the server within this */
#define WAIT_MS 20000
#define MAX_CHUNK_ARG "6M"
#define MAX_CHUNK (6u << 20)

static char *g_dir;
static proc g_srv;
static httpc *g_http;
static char g_data[512];

/* ------------------------------------------------------------------ */
/* helpers */

static uint8_t *random_bytes(size_t n, uint32_t seed)
{
    uint8_t *p = xmalloc(n ? n : 1);
    uint32_t x = seed * 2654435761u + 12345;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)x;
    }
    return p;
}

static void id_of(const void *data, size_t n, char hex[CHUNK_ID_HEX + 1])
{
    uint8_t id[CHUNK_ID_LEN];
    sha256(data, n, id);
    chunk_id_hex(id, hex);
}

static int req(const proc *p, const char *method, const char *path, const void *body, size_t len,
               httpc_resp *resp)
{
    char url[600];
    snprintf(url, sizeof url, "%s%s", p->url, path);
    memset(resp, 0, sizeof *resp);
    return httpc_do(g_http, method, url, NULL, body, len, 20000, resp);
}

/* Status of a request, with the body dropped. */
static int status_of(const proc *p, const char *method, const char *path, const void *body,
                     size_t len)
{
    httpc_resp r;
    int rc = req(p, method, path, body, len, &r);
    assert_int_equal(rc, 0);
    int st = r.status;
    httpc_resp_free(&r);
    return st;
}

static int put_chunk(const proc *p, const char *hex, const void *data, size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "/chunks/%s", hex);
    return status_of(p, "PUT", path, data, len);
}

static int chunk_status(const proc *p, const char *method, const char *hex)
{
    char path[512];
    snprintf(path, sizeof path, "/chunks/%s", hex);
    return status_of(p, method, path, NULL, 0);
}

static char *chunk_file(const char *data_dir, const char *hex)
{
    return xasprintf("%s/chunks/%.2s/%.2s/%s", data_dir, hex, hex + 2, hex);
}

static size_t nftw_count;
static int count_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)path;
    (void)st;
    (void)ftw;
    if (flag == FTW_F)
        nftw_count++;
    return 0;
}

/* Regular files below dir (0 if it does not exist). */
static size_t count_files(const char *dir)
{
    nftw_count = 0;
    nftw(dir, count_entry, 16, FTW_PHYS);
    return nftw_count;
}

static size_t count_sub(const char *data_dir, const char *sub)
{
    char *p = xasprintf("%s/%s", data_dir, sub);
    size_t n = count_files(p);
    free(p);
    return n;
}

/* Value of a metric line "name value" or "name{labels} value" (first match
 * of the exact prefix given), or -1 if absent. */
static double metric_value(const proc *p, const char *series)
{
    httpc_resp r;
    if (req(p, "GET", "/metrics", NULL, 0, &r) < 0 || r.status != 200) {
        httpc_resp_free(&r);
        return -1;
    }
    double v = metrics_find(r.body, r.len, series);
    httpc_resp_free(&r);
    return v;
}

static int connect_to(const proc *p)
{
    const char *colon = strrchr(p->addr, ':');
    assert_non_null(colon);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

/* Read until EOF (Connection: close) into out; returns bytes read. */
static size_t read_all(int fd, char *out, size_t cap)
{
    size_t got = 0;
    while (got + 1 < cap) {
        ssize_t n = read(fd, out + got, cap - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    out[got] = 0;
    return got;
}

static int inflight_is_zero(void *ctx)
{
    return metric_value(ctx, "cairn_http_inflight_body_bytes") == 0;
}

static int inflight_nonzero(void *ctx)
{
    return metric_value(ctx, "cairn_http_inflight_body_bytes") > 0;
}

static int proc_gone(void *ctx)
{
    return !proc_alive(ctx);
}

static int start_own(proc *p, int n, const char *meta, const char *const *extra)
{
    return start_chunkd(p, g_dir, n, meta, extra);
}

static void data_dir_of(int n, char *out, size_t cap)
{
    snprintf(out, cap, "%s/chunk%d", g_dir, n);
}

static int group_setup(void **state)
{
    (void)state;
    g_dir = tmpdir_make("srv-chunkd");
    assert_non_null(g_dir);
    httpc_config hc = {.handles = 4};
    g_http = httpc_new(&hc);
    assert_non_null(g_http);
    const char *extra[] = {"--max-chunk", MAX_CHUNK_ARG, NULL};
    assert_int_equal(start_own(&g_srv, 0, NO_META, extra), 0);
    data_dir_of(0, g_data, sizeof g_data);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (g_srv.pid > 0)
        proc_stop(&g_srv, STOP_BOUND_MS);
    httpc_free(g_http);
    tmpdir_remove(g_dir);
    free(g_dir);
    return 0;
}

/* ------------------------------------------------------------------ */
/* cases */

static void roundtrip_one(size_t n, uint32_t seed)
{
    uint8_t *d = random_bytes(n, seed);
    char hex[CHUNK_ID_HEX + 1];
    id_of(d, n, hex);
    char path[512];
    snprintf(path, sizeof path, "/chunks/%s", hex);

    assert_int_equal(chunk_status(&g_srv, "GET", hex), 404);
    assert_int_equal(chunk_status(&g_srv, "HEAD", hex), 404);
    assert_int_equal(put_chunk(&g_srv, hex, d, n), 201);

    httpc_resp r;
    assert_int_equal(req(&g_srv, "GET", path, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, n);
    if (n)
        assert_memory_equal(r.body, d, n);
    httpc_resp_free(&r);

    /* HEAD announces the chunk's length and sends no body. */
    int fd = connect_to(&g_srv);
    char *head = xasprintf("HEAD %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
    assert_int_equal(write_full(fd, head, strlen(head)), 0);
    char resp[4096];
    read_all(fd, resp, sizeof resp);
    close(fd);
    free(head);
    assert_non_null(strstr(resp, "HTTP/1.1 200"));
    char want[64];
    snprintf(want, sizeof want, "Content-Length: %zu\r\n", n);
    if (!strcasestr(resp, want))
        fail_msg("HEAD answer lacks '%s': %s", want, resp);
    assert_non_null(strstr(resp, "\r\n\r\n"));
    assert_int_equal(strlen(strstr(resp, "\r\n\r\n") + 4), 0);

    assert_int_equal(chunk_status(&g_srv, "DELETE", hex), 204);
    assert_int_equal(chunk_status(&g_srv, "GET", hex), 404);
    assert_int_equal(chunk_status(&g_srv, "HEAD", hex), 404);
    assert_int_equal(chunk_status(&g_srv, "DELETE", hex), 404);
    char *file = chunk_file(g_data, hex);
    assert_int_equal(access(file, F_OK), -1);
    free(file);
    free(d);
}

static void test_roundtrip(void **state)
{
    (void)state;
    roundtrip_one(4u << 20, 1);
    roundtrip_one(0, 2);
    roundtrip_one(1, 3);
    roundtrip_one(123457, 4);
    assert_int_equal(count_sub(g_data, "tmp"), 0);
}

static void test_hash_mismatch(void **state)
{
    (void)state;
    uint8_t *d = random_bytes(100000, 10);
    char hex[CHUNK_ID_HEX + 1];
    id_of(d, 100000, hex);
    size_t before = count_sub(g_data, "chunks");
    d[500] ^= 1;
    char path[512];
    snprintf(path, sizeof path, "/chunks/%s", hex);
    httpc_resp r;
    assert_int_equal(req(&g_srv, "PUT", path, d, 100000, &r), 0);
    assert_int_equal(r.status, 422);
    assert_string_equal(r.errname, "EBADMSG");
    httpc_resp_free(&r);
    assert_int_equal(count_sub(g_data, "chunks"), before);
    assert_int_equal(count_sub(g_data, "tmp"), 0);
    assert_int_equal(chunk_status(&g_srv, "GET", hex), 404);
    free(d);
}

static void test_corrupt_never_served(void **state)
{
    (void)state;
    size_t n = 70000;
    uint8_t *d = random_bytes(n, 20);
    char hex[CHUNK_ID_HEX + 1];
    id_of(d, n, hex);
    double corrupt_before = metric_value(&g_srv, "cairn_chunkd_corrupt_chunks_total");
    size_t aside_before = count_sub(g_data, "corrupt");
    assert_int_equal(put_chunk(&g_srv, hex, d, n), 201);

    char *file = chunk_file(g_data, hex);
    int fd = open(file, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, 40000), 1);
    b ^= 0x40;
    assert_int_equal(pwrite(fd, &b, 1, 40000), 1);
    close(fd);

    char path[512];
    snprintf(path, sizeof path, "/chunks/%s", hex);
    httpc_resp r;
    assert_int_equal(req(&g_srv, "GET", path, NULL, 0, &r), 0);
    assert_true(r.status >= 500 && r.status <= 599);
    /* Not a byte of the chunk goes out. */
    assert_true(r.len < 1000);
    httpc_resp_free(&r);
    assert_int_equal(access(file, F_OK), -1);
    assert_int_equal(count_sub(g_data, "corrupt"), aside_before + 1);
    assert_int_equal(chunk_status(&g_srv, "GET", hex), 404);
    assert_true(metric_value(&g_srv, "cairn_chunkd_corrupt_chunks_total") == corrupt_before + 1);

    /* A fresh upload stores a good copy again. */
    assert_int_equal(put_chunk(&g_srv, hex, d, n), 201);
    assert_int_equal(chunk_status(&g_srv, "GET", hex), 200);
    free(file);
    free(d);
}

static void test_idempotent_put_refreshes_mtime(void **state)
{
    (void)state;
    uint8_t *d = random_bytes(5000, 30);
    char hex[CHUNK_ID_HEX + 1];
    id_of(d, 5000, hex);
    assert_int_equal(put_chunk(&g_srv, hex, d, 5000), 201);
    char *file = chunk_file(g_data, hex);
    struct timespec old[2] = {{1000000000, 0}, {1000000000, 0}};
    assert_int_equal(utimensat(AT_FDCWD, file, old, 0), 0);
    struct stat before, after;
    assert_int_equal(stat(file, &before), 0);
    assert_int_equal(put_chunk(&g_srv, hex, d, 5000), 200);
    assert_int_equal(stat(file, &after), 0);
    assert_true(after.st_mtime >= time(NULL) - 60);
    assert_int_equal(after.st_ino, before.st_ino);
    free(file);
    free(d);
}

static void test_bad_ids(void **state)
{
    (void)state;
    char good[CHUNK_ID_HEX + 1];
    id_of("x", 1, good);
    char upper[CHUNK_ID_HEX + 1];
    memcpy(upper, good, sizeof upper);
    for (char *c = upper; *c; c++)
        if (*c >= 'a' && *c <= 'f')
            *c = (char)(*c - 'a' + 'A');
    char nonhex[CHUNK_ID_HEX + 1];
    memcpy(nonhex, good, sizeof nonhex);
    nonhex[10] = 'g';
    char *longer = xasprintf("%s0", good);
    char *shorter = xstrndup(good, CHUNK_ID_HEX - 1);
    char *slash = xasprintf("%s/", good);
    char *sub = xasprintf("%.2s/%s", good, good);
    const char *bad[] = {upper, nonhex, longer, shorter, slash, sub, "", "zz", "..%2f..%2fetc"};
    size_t before = count_sub(g_data, "chunks");
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        const char *methods[] = {"GET", "PUT", "DELETE", "HEAD"};
        for (size_t m = 0; m < ARRAY_LEN(methods); m++) {
            char path[512];
            snprintf(path, sizeof path, "/chunks/%s", bad[i]);
            int st = status_of(&g_srv, methods[m], path, "x", strcmp(methods[m], "PUT") ? 0 : 1);
            if (st != 400)
                fail_msg("%s %s: status %d, want 400", methods[m], path, st);
        }
    }
    assert_int_equal(count_sub(g_data, "chunks"), before);
    assert_int_equal(count_sub(g_data, "tmp"), 0);
    free(longer);
    free(shorter);
    free(slash);
    free(sub);
}

static void test_oversized_body(void **state)
{
    (void)state;
    size_t n = MAX_CHUNK + 1;
    uint8_t *d = random_bytes(n, 40);
    char hex[CHUNK_ID_HEX + 1];
    id_of(d, n, hex);
    size_t before = count_sub(g_data, "chunks");
    char path[512];
    snprintf(path, sizeof path, "/chunks/%s", hex);
    httpc_resp r;
    assert_int_equal(req(&g_srv, "PUT", path, d, n, &r), 0);
    assert_int_equal(r.status, 413);
    httpc_resp_free(&r);
    assert_int_equal(count_sub(g_data, "chunks"), before);
    assert_int_equal(count_sub(g_data, "tmp"), 0);
    /* Exactly the limit is fine; a chunk this size is written with O_DIRECT
     * (the test directory's file system takes it) and reads back whole. */
    double direct0 = metric_value(&g_srv, "cairn_chunkd_direct_writes_total");
    id_of(d, MAX_CHUNK, hex);
    assert_int_equal(put_chunk(&g_srv, hex, d, MAX_CHUNK), 201);
    assert_true(metric_value(&g_srv, "cairn_chunkd_direct_writes_total") == direct0 + 1);
    snprintf(path, sizeof path, "/chunks/%s", hex);
    assert_int_equal(req(&g_srv, "GET", path, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, MAX_CHUNK);
    assert_memory_equal(r.body, d, MAX_CHUNK);
    httpc_resp_free(&r);
    assert_int_equal(chunk_status(&g_srv, "DELETE", hex), 204);
    free(d);
}

static void test_unknown_routes(void **state)
{
    (void)state;
    assert_int_equal(status_of(&g_srv, "GET", "/nope", NULL, 0), 404);
    assert_int_equal(status_of(&g_srv, "GET", "/", NULL, 0), 404);
    assert_int_equal(status_of(&g_srv, "PUT", "/chunk/abc", "x", 1), 404);
    assert_int_equal(status_of(&g_srv, "GET", "/healthz", NULL, 0), 200);
    char hex[CHUNK_ID_HEX + 1];
    id_of("y", 1, hex);
    char path[512];
    snprintf(path, sizeof path, "/chunks/%s", hex);
    assert_int_equal(status_of(&g_srv, "POST", path, "y", 1), 405);
}

static void test_truncated_upload(void **state)
{
    (void)state;
    uint8_t *d = random_bytes(1000, 50);
    char hex[CHUNK_ID_HEX + 1];
    id_of(d, 1000, hex);
    size_t before = count_sub(g_data, "chunks");
    int fd = connect_to(&g_srv);
    char *hdr = xasprintf("PUT /chunks/%s HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n",
                          hex);
    assert_int_equal(write_full(fd, hdr, strlen(hdr)), 0);
    assert_int_equal(write_full(fd, d, 10), 0);
    /* The server reserved the announced body before the client hangs up... */
    assert_true(wait_until(inflight_nonzero, &g_srv, WAIT_MS));
    close(fd);
    free(hdr);
    /* ...and has let go of the request once no body bytes are held. */
    assert_true(wait_until(inflight_is_zero, &g_srv, WAIT_MS));
    assert_int_equal(chunk_status(&g_srv, "GET", hex), 404);
    assert_int_equal(count_sub(g_data, "chunks"), before);
    assert_int_equal(count_sub(g_data, "tmp"), 0);
    free(d);
}

static void query(const uint8_t (*ids)[CHUNK_ID_LEN], size_t n, uint8_t *bits_out)
{
    recw w;
    recw_init(&w, FSREC_IDS);
    for (size_t i = 0; i < n; i++)
        recw_bytes(&w, FT_ID, ids[i], CHUNK_ID_LEN);
    size_t len;
    const uint8_t *body = recw_finish(&w, &len);
    httpc_resp r;
    assert_int_equal(req(&g_srv, "POST", "/chunks/query", body, len, &r), 0);
    recw_free(&w);
    assert_int_equal(r.status, 200);
    recr rec;
    assert_int_equal(rec_open(&rec, r.body, r.len), 0);
    assert_int_equal(rec.type, FSREC_IDS);
    const uint8_t *bits;
    size_t nbits;
    assert_int_equal(rec_get_bytes(&rec, FT_BITS, &bits, &nbits), 0);
    assert_int_equal(nbits, n);
    if (n)
        memcpy(bits_out, bits, n);
    httpc_resp_free(&r);
}

static void test_batch_query(void **state)
{
    (void)state;
    uint8_t ids[6][CHUNK_ID_LEN];
    uint8_t want[6] = {1, 0, 1, 0, 1, 0};
    for (int i = 0; i < 6; i++) {
        uint8_t *d = random_bytes(2000, 60 + (uint32_t)i);
        sha256(d, 2000, ids[i]);
        if (want[i]) {
            char hex[CHUNK_ID_HEX + 1];
            chunk_id_hex(ids[i], hex);
            assert_int_equal(put_chunk(&g_srv, hex, d, 2000), 201);
        }
        free(d);
    }
    uint8_t bits[6];
    query((const uint8_t (*)[CHUNK_ID_LEN])ids, 6, bits);
    assert_memory_equal(bits, want, 6);
    query(NULL, 0, bits);

    /* Malformed bodies change nothing and get 400. */
    assert_int_equal(status_of(&g_srv, "POST", "/chunks/query", "garbage", 7), 400);
    recw w;
    recw_init(&w, FSREC_IDS);
    recw_bytes(&w, FT_ID, "short", 5);
    size_t len;
    const uint8_t *body = recw_finish(&w, &len);
    assert_int_equal(status_of(&g_srv, "POST", "/chunks/query", body, len), 400);
    recw_free(&w);
    recw_init(&w, FSREC_SERVER);
    recw_bytes(&w, FT_ID, ids[0], CHUNK_ID_LEN);
    body = recw_finish(&w, &len);
    assert_int_equal(status_of(&g_srv, "POST", "/chunks/query", body, len), 400);
    recw_free(&w);
}

static void test_metrics(void **state)
{
    (void)state;
    uint8_t *d = random_bytes(3000, 70);
    char hex[CHUNK_ID_HEX + 1];
    id_of(d, 3000, hex);
    double puts = metric_value(&g_srv, "cairn_chunkd_puts_total{result=\"created\"}");
    double gets = metric_value(&g_srv, "cairn_chunkd_gets_total{result=\"ok\"}");
    double chunks = metric_value(&g_srv, "cairn_chunkd_chunks");
    double bytes = metric_value(&g_srv, "cairn_chunkd_bytes_stored");
    assert_true(puts >= 0 && gets >= 0 && chunks >= 0 && bytes >= 0);
    assert_int_equal(put_chunk(&g_srv, hex, d, 3000), 201);
    assert_int_equal(chunk_status(&g_srv, "GET", hex), 200);
    assert_true(metric_value(&g_srv, "cairn_chunkd_puts_total{result=\"created\"}") == puts + 1);
    assert_true(metric_value(&g_srv, "cairn_chunkd_gets_total{result=\"ok\"}") == gets + 1);
    assert_true(metric_value(&g_srv, "cairn_chunkd_chunks") == chunks + 1);
    assert_true(metric_value(&g_srv, "cairn_chunkd_bytes_stored") >= bytes + 3000);
    assert_true(metric_value(&g_srv, "cairn_chunkd_uploads_inflight") == 0);
    assert_true(metric_value(&g_srv, "cairn_chunkd_corrupt_chunks_total") >= 0);
    assert_true(metric_value(&g_srv, "cairn_http_inflight_body_bytes") >= 0);
    /* The chunk count matches the files on disk. */
    assert_true(metric_value(&g_srv, "cairn_chunkd_chunks") == (double)count_sub(g_data, "chunks"));
    free(d);
}

/* Over --max-inflight while another upload holds body bytes: 503 with
 * Retry-After, nothing stored. */
static void test_inflight_cap(void **state)
{
    (void)state;
    proc p;
    const char *extra[] = {"--max-inflight", "1M", NULL};
    assert_int_equal(start_own(&p, 1, NO_META, extra), 0);
    char data[512];
    data_dir_of(1, data, sizeof data);

    size_t n = 800000;
    uint8_t *d = random_bytes(n, 80);
    char hex[CHUNK_ID_HEX + 1];
    id_of(d, n, hex);
    int fd = connect_to(&p);
    char *hdr = xasprintf("PUT /chunks/%s HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n",
                          hex, n);
    assert_int_equal(write_full(fd, hdr, strlen(hdr)), 0);
    assert_int_equal(write_full(fd, d, 1000), 0);
    free(hdr);

    uint8_t *d2 = random_bytes(n, 81);
    char hex2[CHUNK_ID_HEX + 1];
    id_of(d2, n, hex2);
    char path[512];
    snprintf(path, sizeof path, "/chunks/%s", hex2);
    /* The first upload holds its reservation once its headers are parsed. */
    assert_true(wait_until(inflight_nonzero, &p, WAIT_MS));
    httpc_resp r;
    assert_int_equal(req(&p, "PUT", path, d2, n, &r), 0);
    assert_int_equal(r.status, 503);
    assert_true(r.retry_after_s >= 0);
    httpc_resp_free(&r);
    close(fd);
    assert_true(wait_until(inflight_is_zero, &p, WAIT_MS));
    assert_int_equal(count_sub(data, "chunks"), 0);
    assert_int_equal(count_sub(data, "tmp"), 0);
    /* With the other upload gone, the same PUT succeeds. */
    assert_int_equal(put_chunk(&p, hex2, d2, n), 201);
    assert_int_equal(WEXITSTATUS(proc_stop(&p, STOP_BOUND_MS)), 0);
    free(d);
    free(d2);
}

static int64_t stop_and_time(proc *p, int *status)
{
    int64_t t0 = now_mono_ms();
    *status = proc_stop(p, STOP_BOUND_MS);
    return now_mono_ms() - t0;
}

static void test_sigterm_and_restart(void **state)
{
    (void)state;
    char data[512];
    data_dir_of(2, data, sizeof data);
    assert_int_equal(mkdir_p(data, 0755), 0);
    /* An id metad gave out earlier must survive restarts. */
    char *idfile = xasprintf("%s/server.id", data);
    assert_int_equal(write_file_atomic(idfile, "42\n", 3), 0);

    proc p;
    assert_int_equal(start_own(&p, 2, NO_META, NULL), 0);
    char hexes[5][CHUNK_ID_HEX + 1];
    uint8_t *ds[5];
    for (int i = 0; i < 5; i++) {
        ds[i] = random_bytes(10000 * (size_t)(i + 1), 90 + (uint32_t)i);
        id_of(ds[i], 10000 * (size_t)(i + 1), hexes[i]);
        assert_int_equal(put_chunk(&p, hexes[i], ds[i], 10000 * (size_t)(i + 1)), 201);
    }
    assert_true(metric_value(&p, "cairn_chunkd_server_id") == 42);
    double bytes = metric_value(&p, "cairn_chunkd_bytes_stored");

    /* A stale tmp file, as a crash mid-upload would leave. */
    char *stale = xasprintf("%s/tmp/%s.77", data, hexes[0]);

    int status;
    int64_t ms = stop_and_time(&p, &status);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_true(ms < STOP_BOUND_MS);
    assert_int_equal(write_file_atomic(stale, "partial", 7), 0);

    assert_int_equal(start_own(&p, 2, NO_META, NULL), 0);
    assert_int_equal(count_sub(data, "tmp"), 0);
    assert_true(metric_value(&p, "cairn_chunkd_chunks") == 5);
    assert_true(metric_value(&p, "cairn_chunkd_bytes_stored") == bytes);
    assert_true(metric_value(&p, "cairn_chunkd_server_id") == 42);
    for (int i = 0; i < 5; i++) {
        char path[512];
        snprintf(path, sizeof path, "/chunks/%s", hexes[i]);
        httpc_resp r;
        assert_int_equal(req(&p, "GET", path, NULL, 0, &r), 0);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.len, 10000 * (size_t)(i + 1));
        assert_memory_equal(r.body, ds[i], r.len);
        httpc_resp_free(&r);
        free(ds[i]);
    }
    uint8_t *idtext;
    size_t idlen;
    assert_int_equal(read_file(idfile, 64, &idtext, &idlen), 0);
    assert_string_equal((char *)idtext, "42\n");
    free(idtext);

    /* SIGINT is a clean stop too. */
    kill(p.pid, SIGINT);
    assert_true(wait_until(proc_gone, &p, STOP_BOUND_MS));
    status = proc_stop(&p, STOP_BOUND_MS);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    free(stale);
    free(idfile);
}

/* Options from --config, with zstd compression of stored payloads on. */
static void test_config_file_and_compression(void **state)
{
    (void)state;
    char *conf = xasprintf("%s/chunkd5.conf", g_dir);
    const char *text = "# chunk server settings\n"
                       "max-chunk = 2M\n"
                       "compress-level = 3\n";
    assert_int_equal(write_file_atomic(conf, text, strlen(text)), 0);
    proc p;
    const char *extra[] = {"--config", conf, NULL};
    assert_int_equal(start_own(&p, 5, NO_META, extra), 0);
    char data[512];
    data_dir_of(5, data, sizeof data);

    size_t n = 1 << 20;
    uint8_t *d = xmalloc(n);
    for (size_t i = 0; i < n; i++)
        d[i] = (uint8_t)"a compressible chunk "[i % 21];
    char hex[CHUNK_ID_HEX + 1];
    id_of(d, n, hex);
    assert_int_equal(put_chunk(&p, hex, d, n), 201);
    char *file = chunk_file(data, hex);
    struct stat st;
    assert_int_equal(stat(file, &st), 0);
    assert_true(st.st_size < (off_t)(n / 10));
    char path[512];
    snprintf(path, sizeof path, "/chunks/%s", hex);
    httpc_resp r;
    assert_int_equal(req(&p, "GET", path, NULL, 0, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, n);
    assert_memory_equal(r.body, d, n);
    httpc_resp_free(&r);

    /* max-chunk from the file applies. */
    uint8_t *big = random_bytes((2u << 20) + 1, 110);
    id_of(big, (2u << 20) + 1, hex);
    assert_int_equal(put_chunk(&p, hex, big, (2u << 20) + 1), 413);
    assert_int_equal(WEXITSTATUS(proc_stop(&p, STOP_BOUND_MS)), 0);
    free(big);
    free(file);
    free(d);
    free(conf);
}

/* Disk full: a small tmpfs as the data directory, filled up. */
static void test_disk_full(void **state)
{
    (void)state;
    char data[512];
    data_dir_of(3, data, sizeof data);
    assert_int_equal(mkdir_p(data, 0755), 0);
    if (mount("tmpfs", data, "tmpfs", 0, "size=8m") != 0) {
        print_message("cannot mount tmpfs (%s): skipping\n", strerror(errno));
        skip();
    }
    proc p;
    int rc = start_own(&p, 3, NO_META, NULL);
    if (rc != 0) {
        umount2(data, MNT_DETACH);
        fail_msg("chunkd did not start: %d", rc);
    }
    /* Fill the file system until it refuses another byte. */
    char *filler = xasprintf("%s/filler", data);
    int fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    uint8_t block[65536];
    memset(block, 0xab, sizeof block);
    while (write(fd, block, sizeof block) > 0)
        ;
    assert_int_equal(errno, ENOSPC);
    close(fd);

    size_t n = 1 << 20;
    uint8_t *d = random_bytes(n, 100);
    char hex[CHUNK_ID_HEX + 1];
    id_of(d, n, hex);
    char path[512];
    snprintf(path, sizeof path, "/chunks/%s", hex);
    httpc_resp r;
    assert_int_equal(req(&p, "PUT", path, d, n, &r), 0);
    assert_int_equal(r.status, 507);
    assert_string_equal(r.errname, "ENOSPC");
    httpc_resp_free(&r);
    assert_int_equal(count_sub(data, "tmp"), 0);
    assert_int_equal(count_sub(data, "chunks"), 0);
    assert_int_equal(chunk_status(&p, "GET", hex), 404);

    /* Space again: the same upload goes through. */
    assert_int_equal(unlink(filler), 0);
    assert_int_equal(put_chunk(&p, hex, d, n), 201);
    assert_int_equal(chunk_status(&p, "GET", hex), 200);

    int status = proc_stop(&p, STOP_BOUND_MS);
    assert_int_equal(umount2(data, 0), 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    free(filler);
    free(d);
}

/* ---- registration with a real metad (skipped while none is built) ---- */

typedef struct cluster_probe {
    const proc *metad;
    const char *addr;    /* chunkd address to look for */
    uint64_t sid;        /* out: its server id */
} cluster_probe;

static int cluster_lists_up(void *ctx)
{
    cluster_probe *cp = ctx;
    httpc_resp r;
    if (req(cp->metad, "GET", "/v1/cluster", NULL, 0, &r) < 0 || r.status != 200) {
        httpc_resp_free(&r);
        return 0;
    }
    int found = 0;
    recr rec;
    if (rec_open(&rec, r.body, r.len) == 0 && rec.type == FSREC_CLUSTER) {
        rec_iter it;
        uint16_t tag;
        const uint8_t *p;
        size_t n;
        rec_iter_init(&it);
        while (!found && rec_next(&rec, &it, &tag, &p, &n)) {
            recr srv;
            char *addr = NULL;
            uint64_t state, sid;
            if (tag != FT_SERVER || rec_open(&srv, p, n) < 0)
                continue;
            if (rec_get_str(&srv, FT_ADDR, 256, &addr) == 0 && strcmp(addr, cp->addr) == 0 &&
                rec_get_u64(&srv, FT_STATE, &state) == 0 && state == SERVER_UP &&
                rec_get_u64(&srv, FT_SID, &sid) == 0) {
                cp->sid = sid;
                found = 1;
            }
            free(addr);
        }
    }
    httpc_resp_free(&r);
    return found;
}

static void test_registration(void **state)
{
    (void)state;
    char *metad_bin = bin_path("cairn-metad");
    int have = metad_bin && access(metad_bin, X_OK) == 0;
    free(metad_bin);
    if (!have) {
        print_message("no cairn-metad built: skipping registration\n");
        skip();
    }
    proc m;
    assert_int_equal(start_metad(&m, g_dir, NULL), 0);
    proc p;
    const char *extra[] = {"--heartbeat-interval", "200ms", NULL};
    assert_int_equal(start_own(&p, 4, m.addr, extra), 0);
    cluster_probe cp = {.metad = &m, .addr = p.addr};
    assert_true(wait_until(cluster_lists_up, &cp, WAIT_MS));
    uint64_t sid = cp.sid;
    assert_true(sid > 0);

    /* After a restart it comes back under the same id. */
    int status = proc_stop(&p, STOP_BOUND_MS);
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(start_own(&p, 4, m.addr, extra), 0);
    cp.addr = p.addr;
    cp.sid = 0;
    assert_true(wait_until(cluster_lists_up, &cp, WAIT_MS));
    assert_int_equal(cp.sid, sid);
    assert_true(metric_value(&p, "cairn_chunkd_server_id") == (double)sid);
    assert_int_equal(WEXITSTATUS(proc_stop(&p, STOP_BOUND_MS)), 0);
    proc_stop(&m, STOP_BOUND_MS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_hash_mismatch),
        cmocka_unit_test(test_corrupt_never_served),
        cmocka_unit_test(test_idempotent_put_refreshes_mtime),
        cmocka_unit_test(test_bad_ids),
        cmocka_unit_test(test_oversized_body),
        cmocka_unit_test(test_unknown_routes),
        cmocka_unit_test(test_truncated_upload),
        cmocka_unit_test(test_batch_query),
        cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_inflight_cap),
        cmocka_unit_test(test_sigterm_and_restart),
        cmocka_unit_test(test_config_file_and_compression),
        cmocka_unit_test(test_disk_full),
        cmocka_unit_test(test_registration),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
