/*
 * test_http.c — httpd and httpc against each other on loopback.
 *
 * One server with a handful of routes runs for the whole group. Tests that
 * must see what goes over the wire (HEAD framing, Allow, a client hanging
 * up mid-body, chunked uploads) speak raw HTTP over a socket; the others go
 * through httpc. Handlers that block wait on condition variables the test
 * releases, with a bound so that a failing test cannot hang the server.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include "common/err.h"
#include "common/httpc.h"
#include "common/httpd.h"
#include "common/util.h"
#include "tests/lib/harness.h"

#define SMALL_MAX 1000
#define ECHO_MAX (2u << 20)
#define BLOCK_MAX (64u << 10)
#define INFLIGHT_CAP (100u << 10)
#define BIG_LEN (1u << 20)
#define HEADLEN 12345
#define BLOCK_BOUND_S 20   /* a blocked handler gives up after this */

/* ------------------------------------------------------------------ */
/* server side */

struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int entered;     /* handler is inside and waiting */
    int released;    /* test lets it go */
};

static struct gate block_gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
static struct gate slow_gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};

static pthread_mutex_t count_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned echo_calls, small_calls;

static uint8_t *big_body;
static httpd *srv;
static char base_url[64];
static httpc *cli;

static void count_inc(unsigned *c)
{
    pthread_mutex_lock(&count_mu);
    (*c)++;
    pthread_mutex_unlock(&count_mu);
}

static unsigned count_get(const unsigned *c)
{
    pthread_mutex_lock(&count_mu);
    unsigned v = *c;
    pthread_mutex_unlock(&count_mu);
    return v;
}

static void gate_reset(struct gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->entered = 0;
    g->released = 0;
    pthread_mutex_unlock(&g->mu);
}

/* Handler side: announce entry, wait for release (bounded). */
static void gate_pass(struct gate *g)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += BLOCK_BOUND_S;
    pthread_mutex_lock(&g->mu);
    g->entered = 1;
    pthread_cond_broadcast(&g->cv);
    while (!g->released)
        if (pthread_cond_timedwait(&g->cv, &g->mu, &dl) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&g->mu);
}

/* Test side: wait until a handler entered; 1 if it did in time. */
static int gate_wait_entered(struct gate *g, int timeout_s)
{
    struct timespec dl;
    int ok;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += timeout_s;
    pthread_mutex_lock(&g->mu);
    while (!g->entered)
        if (pthread_cond_timedwait(&g->cv, &g->mu, &dl) == ETIMEDOUT)
            break;
    ok = g->entered;
    pthread_mutex_unlock(&g->mu);
    return ok;
}

static void gate_release(struct gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->released = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static void h_hello(httpd_req *r, void *ctx)
{
    (void)ctx;
    const char *q = httpd_query(r, "x");
    const char *hv = httpd_header(r, "x-test");
    if (q)
        httpd_add_header(r, "X-Query", q);
    if (hv)
        httpd_add_header(r, "X-Header", hv);
    httpd_add_header(r, "ETag", "\"r1:5,r2:7\"");
    httpd_reply_static(r, 200, "text/plain", "hello world", 11);
}

static void h_echo(httpd_req *r, void *ctx)
{
    size_t len;
    const uint8_t *b = httpd_body(r, &len);
    (void)ctx;
    count_inc(&echo_calls);
    void *copy = NULL;
    if (len) {
        copy = malloc(len);
        if (!copy) {
            httpd_reply_err(r, -ENOMEM, NULL);
            return;
        }
        memcpy(copy, b, len);
    }
    httpd_reply(r, strcmp(httpd_method(r), "PUT") == 0 ? 201 : 200,
                "application/octet-stream", copy, len);
}

static void h_item_delete(httpd_req *r, void *ctx)
{
    (void)ctx;
    httpd_reply_static(r, 204, NULL, NULL, 0);
}

static void h_err(httpd_req *r, void *ctx)
{
    const char *what = httpd_path(r) + strlen("/err/");
    (void)ctx;
    if (!strcmp(what, "enoent"))
        httpd_reply_err(r, -ENOENT, "no such thing");
    else if (!strcmp(what, "eexist"))
        httpd_reply_err(r, -EEXIST, NULL);
    else if (!strcmp(what, "einval"))
        httpd_reply_err(r, -EINVAL, "bad\ninput");
    else if (!strcmp(what, "busy"))
        httpd_reply_err(r, CAIRN_EBUSY, "try later");
    else if (!strcmp(what, "notmod"))
        httpd_reply_err(r, CAIRN_ENOTMODIFIED, NULL);
    else
        httpd_reply_err(r, -ENOTDIR, what);
}

static void h_small(httpd_req *r, void *ctx)
{
    (void)ctx;
    count_inc(&small_calls);
    httpd_reply_text(r, 200, "ok");
}

static void h_nobody(httpd_req *r, void *ctx)
{
    (void)ctx;
    httpd_reply_text(r, 200, "ok");
}

static void h_block(httpd_req *r, void *ctx)
{
    (void)ctx;
    gate_pass(&block_gate);
    httpd_reply_text(r, 200, "released");
}

static void h_slow(httpd_req *r, void *ctx)
{
    (void)ctx;
    gate_pass(&slow_gate);
    httpd_reply_text(r, 200, "late");
}

static void h_big(httpd_req *r, void *ctx)
{
    (void)ctx;
    httpd_reply_static(r, 200, "application/octet-stream", big_body, BIG_LEN);
}

static void h_noreply(httpd_req *r, void *ctx)
{
    (void)r;
    (void)ctx;
}

static void h_twice(httpd_req *r, void *ctx)
{
    (void)ctx;
    httpd_reply_text(r, 200, "first");
    httpd_reply_text(r, 202, "second");
}

static void h_headlen(httpd_req *r, void *ctx)
{
    (void)ctx;
    if (httpd_is_head(r))
        httpd_reply_static(r, 200, "application/octet-stream", NULL, HEADLEN);
    else
        httpd_reply_static(r, 200, "application/octet-stream", big_body, HEADLEN);
}

static void h_peer(httpd_req *r, void *ctx)
{
    (void)ctx;
    httpd_reply_text(r, 200, httpd_peer(r));
}

static const httpd_route routes[] = {
    {"GET", "/hello", h_hello, "hello", 0},
    {"PUT", "/echo/", h_echo, "echo_put", ECHO_MAX},
    {"POST", "/echo/", h_echo, "echo_post", ECHO_MAX},
    {"DELETE", "/item/", h_item_delete, "item_delete", 0},
    {"GET", "/err/", h_err, "err", 0},
    {"PUT", "/small", h_small, "small", SMALL_MAX},
    {"PUT", "/nobody", h_nobody, "nobody", 0},
    {"PUT", "/block", h_block, "block", BLOCK_MAX},
    {"GET", "/slow", h_slow, "slow", 0},
    {"GET", "/big", h_big, "big", 0},
    {"GET", "/noreply", h_noreply, "noreply", 0},
    {"GET", "/twice", h_twice, "twice", 0},
    {"GET", "/headlen", h_headlen, "headlen", 0},
    {"GET", "/peer", h_peer, "peer", 0},
};

static void app_metrics(buf *out, void *ctx)
{
    (void)ctx;
    buf_printf(out, "test_app_metric 42\n");
}

static void app_headers(httpd_req *r, void *ctx)
{
    (void)ctx;
    httpd_add_header(r, "Cairn-Epoch", "7");
}

static const httpd_config srv_cfg = {
    .host = "127.0.0.1",
    .port = 0,
    .routes = routes,
    .nroutes = ARRAY_LEN(routes),
    .max_inflight_body = INFLIGHT_CAP,
    .metrics = app_metrics,
    .global_headers = app_headers,
};

/* Every client of a run uses one transport: curl, then the lean one
 * (httpc_config.lean); main runs all tests with each. */
static int lean_mode;

static httpc *client_new(httpc_config cc)
{
    cc.lean = lean_mode;
    return httpc_new(&cc);
}

static int group_setup(void **state)
{
    (void)state;
    big_body = malloc(BIG_LEN);
    if (!big_body)
        return -1;
    for (size_t i = 0; i < BIG_LEN; i++)
        big_body[i] = (uint8_t)(i * 7 + (i >> 11));
    srv = httpd_start(&srv_cfg);
    if (!srv)
        return -1;
    snprintf(base_url, sizeof(base_url), "http://127.0.0.1:%u", (unsigned)httpd_port(srv));
    httpc_config cc = {.handles = 4};
    cli = client_new(cc);
    return cli ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    gate_release(&block_gate);
    gate_release(&slow_gate);
    httpc_free(cli);
    httpd_stop(srv);
    free(big_body);
    return 0;
}

/* ------------------------------------------------------------------ */
/* client helpers */

static char *url_of(const char *path)
{
    return xasprintf("%s%s", base_url, path);
}

static int do_req(httpc *c, const char *method, const char *path, const void *body, size_t len,
                  int timeout_ms, httpc_resp *resp)
{
    char *u = url_of(path);
    int rc = httpc_do(c, method, u, NULL, body, len, timeout_ms, resp);
    free(u);
    return rc;
}

/* Value of the first /metrics line that starts with series (name with
 * labels, exactly as printed); -1 when absent. */
static double metric(const char *series)
{
    httpc_resp resp;
    double v = -1;
    if (do_req(cli, "GET", "/metrics", NULL, 0, 10000, &resp) != 0)
        return -1;
    size_t n = strlen(series);
    const char *p = (const char *)resp.body;
    while (p && *p) {
        if (!strncmp(p, series, n) && p[n] == ' ') {
            v = strtod(p + n + 1, NULL);
            break;
        }
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    httpc_resp_free(&resp);
    return v;
}

static int64_t elapsed_ms(int64_t t0)
{
    return now_mono_ms() - t0;
}

/* Raw HTTP over a socket: sends req (len bytes), then, unless hangup,
 * reads until the server closes (bounded by a receive timeout). With
 * hangup the socket is closed right after sending. Returns the malloc'd
 * response text (NUL-terminated) or NULL for hangup. */
static char *raw_exchange(const void *req, size_t len, int hangup)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(httpd_port(srv))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    assert_int_equal(write_full(fd, req, len), 0);
    if (hangup) {
        close(fd);
        return NULL;
    }
    buf b = {0};
    char tmp[4096];
    ssize_t n;
    while ((n = read(fd, tmp, sizeof(tmp))) > 0)
        buf_append(&b, tmp, (size_t)n);
    close(fd);
    buf_append(&b, "", 1);
    return (char *)b.data;
}

/* Case-insensitive search for "\r\nName: value\r\n" in a raw response. */
static int raw_has_header(const char *resp, const char *line)
{
    const char *end = strstr(resp, "\r\n\r\n");
    size_t n = strlen(line);
    for (const char *p = strstr(resp, "\r\n"); p && p < end; p = strstr(p + 2, "\r\n"))
        if (!strncasecmp(p + 2, line, n) && p[2 + n] == '\r')
            return 1;
    return 0;
}

/* ------------------------------------------------------------------ */
/* tests */

static void test_methods_round_trip(void **state)
{
    httpc_resp r;
    (void)state;

    assert_int_equal(do_req(cli, "GET", "/hello", NULL, 0, 5000, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, 11);
    assert_string_equal((char *)r.body, "hello world");
    assert_string_equal(r.etag, "\"r1:5,r2:7\"");
    assert_int_equal(r.epoch, 7);
    assert_int_equal(r.retry_after_s, -1);
    assert_string_equal(r.errname, "");
    httpc_resp_free(&r);

    assert_int_equal(do_req(cli, "PUT", "/echo/a", "put-body", 8, 5000, &r), 0);
    assert_int_equal(r.status, 201);
    assert_int_equal(r.len, 8);
    assert_memory_equal(r.body, "put-body", 8);
    httpc_resp_free(&r);

    assert_int_equal(do_req(cli, "POST", "/echo/b", "post-body", 9, 5000, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, 9);
    assert_memory_equal(r.body, "post-body", 9);
    httpc_resp_free(&r);

    /* empty bodies: the handler sees none, the client gets "" */
    assert_int_equal(do_req(cli, "PUT", "/echo/c", NULL, 0, 5000, &r), 0);
    assert_int_equal(r.status, 201);
    assert_int_equal(r.len, 0);
    assert_non_null(r.body);
    assert_string_equal((char *)r.body, "");
    httpc_resp_free(&r);

    assert_int_equal(do_req(cli, "DELETE", "/item/42", NULL, 0, 5000, &r), 0);
    assert_int_equal(r.status, 204);
    assert_int_equal(r.len, 0);
    httpc_resp_free(&r);
}

static void test_request_accessors(void **state)
{
    httpc_resp r;
    const char *hdrs[] = {"X-Test: abc", NULL};
    (void)state;

    char *u = url_of("/hello?x=1%202&y=3");
    assert_int_equal(httpc_do(cli, "GET", u, hdrs, NULL, 0, 5000, &r), 0);
    free(u);
    assert_int_equal(r.status, 200);
    httpc_resp_free(&r);

    /* headers the handler saw come back through raw framing */
    const char *req = "GET /hello?x=q%20v HTTP/1.1\r\nHost: t\r\nX-Test: hv\r\n"
                      "Connection: close\r\n\r\n";
    char *resp = raw_exchange(req, strlen(req), 0);
    assert_true(raw_has_header(resp, "X-Query: q v"));
    assert_true(raw_has_header(resp, "X-Header: hv"));
    free(resp);

    assert_int_equal(do_req(cli, "GET", "/peer", NULL, 0, 5000, &r), 0);
    assert_int_equal(r.status, 200);
    assert_memory_equal(r.body, "127.0.0.1:", 10);
    httpc_resp_free(&r);
}

static void test_echo_1mib(void **state)
{
    httpc_resp r;
    (void)state;
    uint8_t *b = malloc(BIG_LEN);
    assert_non_null(b);
    for (size_t i = 0; i < BIG_LEN; i++)
        b[i] = (uint8_t)((i * 2654435761u) >> 13);

    assert_int_equal(do_req(cli, "PUT", "/echo/big", b, BIG_LEN, 10000, &r), 0);
    assert_int_equal(r.status, 201);
    assert_int_equal(r.len, BIG_LEN);
    assert_memory_equal(r.body, b, BIG_LEN);
    assert_int_equal(r.body[r.len], 0);
    httpc_resp_free(&r);

    assert_int_equal(do_req(cli, "POST", "/echo/big", b, BIG_LEN, 10000, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, BIG_LEN);
    assert_memory_equal(r.body, b, BIG_LEN);
    httpc_resp_free(&r);

    assert_int_equal(do_req(cli, "GET", "/big", NULL, 0, 10000, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, BIG_LEN);
    assert_memory_equal(r.body, big_body, BIG_LEN);
    httpc_resp_free(&r);
    free(b);
}

static void test_not_found_and_method(void **state)
{
    httpc_resp r;
    (void)state;

    assert_int_equal(do_req(cli, "GET", "/nope", NULL, 0, 5000, &r), 0);
    assert_int_equal(r.status, 404);
    assert_int_equal(r.epoch, 7);     /* global headers on built-in answers too */
    httpc_resp_free(&r);

    /* a prefix without a trailing slash matches exactly only */
    assert_int_equal(do_req(cli, "GET", "/hello/x", NULL, 0, 5000, &r), 0);
    assert_int_equal(r.status, 404);
    httpc_resp_free(&r);

    assert_int_equal(do_req(cli, "DELETE", "/hello", NULL, 0, 5000, &r), 0);
    assert_int_equal(r.status, 405);
    httpc_resp_free(&r);

    const char *req = "DELETE /echo/x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    char *resp = raw_exchange(req, strlen(req), 0);
    assert_memory_equal(resp, "HTTP/1.1 405", 12);
    assert_true(raw_has_header(resp, "Allow: PUT, POST"));
    free(resp);

    req = "POST /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    resp = raw_exchange(req, strlen(req), 0);
    assert_memory_equal(resp, "HTTP/1.1 405", 12);
    assert_true(raw_has_header(resp, "Allow: GET, HEAD"));
    free(resp);
}

static void test_body_too_large(void **state)
{
    httpc_resp r;
    (void)state;
    uint8_t b[SMALL_MAX + 1];
    memset(b, 'x', sizeof(b));
    unsigned before = count_get(&small_calls);

    assert_int_equal(do_req(cli, "PUT", "/small", b, SMALL_MAX, 5000, &r), 0);
    assert_int_equal(r.status, 200);
    httpc_resp_free(&r);

    assert_int_equal(do_req(cli, "PUT", "/small", b, SMALL_MAX + 1, 5000, &r), 0);
    assert_int_equal(r.status, 413);
    assert_string_equal(r.errname, "EFBIG");
    httpc_resp_free(&r);

    assert_int_equal(do_req(cli, "PUT", "/nobody", "x", 1, 5000, &r), 0);
    assert_int_equal(r.status, 413);
    httpc_resp_free(&r);

    /* answered from the headers alone: no body byte is ever sent */
    const char *req = "PUT /small HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000000\r\n\r\n";
    char *resp = raw_exchange(req, strlen(req), 0);
    assert_memory_equal(resp, "HTTP/1.1 413", 12);
    free(resp);

    /* a body over the limit that the client sends anyway is read and
     * dropped: the 413 arrives whole and the connection serves the next
     * request (closing it unread would reset the sender) */
    buf q = {0};
    buf_printf(&q, "PUT /small HTTP/1.1\r\nHost: t\r\nContent-Length: %u\r\n\r\n",
               (unsigned)sizeof(b));
    buf_append(&q, b, sizeof(b));
    buf_printf(&q, "PUT /small HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
                   "Connection: close\r\n\r\nabc");
    resp = raw_exchange(q.data, q.len, 0);
    buf_free(&q);
    assert_memory_equal(resp, "HTTP/1.1 413", 12);
    char *second = strstr(resp + 12, "HTTP/1.1 ");
    assert_non_null(second);
    assert_memory_equal(second, "HTTP/1.1 200", 12);
    free(resp);

    /* a chunked body is cut off once it passes the limit */
    q = (buf){0};
    buf_printf(&q, "PUT /small HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                   "Connection: close\r\n\r\n");
    for (int i = 0; i < 3; i++) {
        buf_printf(&q, "%x\r\n", 600);
        buf_append(&q, b, 600);
        buf_printf(&q, "\r\n");
    }
    buf_printf(&q, "0\r\n\r\n");
    resp = raw_exchange(q.data, q.len, 0);
    buf_free(&q);
    assert_memory_equal(resp, "HTTP/1.1 413", 12);
    free(resp);

    /* a chunked body within the limit is fine */
    q = (buf){0};
    buf_printf(&q, "PUT /small HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                   "Connection: close\r\n\r\n");
    buf_printf(&q, "%x\r\n", 500);
    buf_append(&q, b, 500);
    buf_printf(&q, "\r\n0\r\n\r\n");
    resp = raw_exchange(q.data, q.len, 0);
    buf_free(&q);
    assert_memory_equal(resp, "HTTP/1.1 200", 12);
    free(resp);

    assert_int_equal(count_get(&small_calls), before + 3);
}

/* Sends a chunked body far beyond what the server drains; returns once
 * the server closed the connection (send fails or EOF is read). */
static void test_chunked_flood_is_cut(void **state)
{
    (void)state;
    unsigned before = count_get(&small_calls);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(httpd_port(srv))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    const char *hdr = "PUT /small HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_int_equal(send(fd, hdr, strlen(hdr), MSG_NOSIGNAL), (ssize_t)strlen(hdr));
    static char chunk[65536 + 16];
    int n = snprintf(chunk, sizeof(chunk), "%x\r\n", 65536);
    memset(chunk + n, 'f', 65536);
    memcpy(chunk + n + 65536, "\r\n", 2);
    size_t clen = (size_t)n + 65536 + 2;
    /* 64 MiB is far past the drain bound: the server must hang up first */
    int cut = 0;
    for (int i = 0; i < 1024 && !cut; i++) {
        size_t off = 0;
        while (off < clen) {
            ssize_t w = send(fd, chunk + off, clen - off, MSG_NOSIGNAL);
            if (w <= 0) {
                cut = 1;
                break;
            }
            off += (size_t)w;
        }
    }
    if (!cut) {
        char tmp[256];
        cut = read(fd, tmp, sizeof(tmp)) <= 0;
    }
    close(fd);
    assert_true(cut);
    assert_int_equal(count_get(&small_calls), before);

    httpc_resp r;
    assert_int_equal(do_req(cli, "GET", "/hello", NULL, 0, 5000, &r), 0);
    assert_int_equal(r.status, 200);
    httpc_resp_free(&r);
}

struct upload {
    const char *path;
    size_t len;
    int rc;
    httpc_resp resp;
};

static void *upload_thread(void *arg)
{
    struct upload *u = arg;
    uint8_t *b = calloc(1, u->len);
    u->rc = b ? do_req(cli, "PUT", u->path, b, u->len, 30000, &u->resp) : -ENOMEM;
    free(b);
    return NULL;
}

static int inflight_is_zero(void *ctx)
{
    (void)ctx;
    return metric("cairn_http_inflight_body_bytes") == 0;
}

static void test_inflight_cap_503(void **state)
{
    (void)state;
    gate_reset(&block_gate);
    struct upload a = {.path = "/block", .len = 60u << 10};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, upload_thread, &a), 0);
    assert_true(gate_wait_entered(&block_gate, 15));

    /* the first body is held by its blocked handler */
    assert_int_equal(metric("cairn_http_inflight_body_bytes"), 60 << 10);

    uint8_t *b = calloc(1, 60u << 10);
    assert_non_null(b);
    unsigned before = count_get(&echo_calls);
    httpc_resp r;
    assert_int_equal(do_req(cli, "PUT", "/echo/x", b, 60u << 10, 5000, &r), 0);
    assert_int_equal(r.status, 503);
    assert_true(r.retry_after_s >= 1);
    httpc_resp_free(&r);
    assert_int_equal(count_get(&echo_calls), before);

    /* a body that fits beside the first one is admitted */
    assert_int_equal(do_req(cli, "PUT", "/echo/y", b, 30u << 10, 5000, &r), 0);
    assert_int_equal(r.status, 201);
    httpc_resp_free(&r);

    /* a chunked body is refused once it grows past the cap */
    buf q = {0};
    buf_printf(&q, "PUT /echo/c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                   "Connection: close\r\n\r\n");
    for (int i = 0; i < 6; i++) {
        buf_printf(&q, "%x\r\n", 10240);
        buf_append(&q, b, 10240);
        buf_printf(&q, "\r\n");
    }
    buf_printf(&q, "0\r\n\r\n");
    char *resp = raw_exchange(q.data, q.len, 0);
    buf_free(&q);
    assert_memory_equal(resp, "HTTP/1.1 503", 12);
    assert_true(raw_has_header(resp, "Retry-After: 1"));
    free(resp);
    assert_int_equal(count_get(&echo_calls), before + 1);

    gate_release(&block_gate);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(a.rc, 0);
    assert_int_equal(a.resp.status, 200);
    assert_string_equal((char *)a.resp.body, "released\n");
    httpc_resp_free(&a.resp);

    /* released before the answer went out */
    assert_true(inflight_is_zero(NULL));
    assert_int_equal(do_req(cli, "PUT", "/echo/z", b, 60u << 10, 5000, &r), 0);
    assert_int_equal(r.status, 201);
    httpc_resp_free(&r);
    free(b);
}

static void test_head(void **state)
{
    httpc_resp r;
    (void)state;

    assert_int_equal(do_req(cli, "HEAD", "/hello", NULL, 0, 5000, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, 0);
    assert_string_equal(r.etag, "\"r1:5,r2:7\"");
    httpc_resp_free(&r);

    const char *req = "HEAD /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    char *resp = raw_exchange(req, strlen(req), 0);
    assert_memory_equal(resp, "HTTP/1.1 200", 12);
    assert_true(raw_has_header(resp, "Content-Length: 11"));
    const char *end = strstr(resp, "\r\n\r\n");
    assert_non_null(end);
    assert_string_equal(end, "\r\n\r\n");     /* no body follows */
    free(resp);

    /* a length announced without bytes */
    req = "HEAD /headlen HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    resp = raw_exchange(req, strlen(req), 0);
    assert_memory_equal(resp, "HTTP/1.1 200", 12);
    assert_true(raw_has_header(resp, "Content-Length: 12345"));
    assert_string_equal(strstr(resp, "\r\n\r\n"), "\r\n\r\n");
    free(resp);

    assert_int_equal(do_req(cli, "GET", "/headlen", NULL, 0, 5000, &r), 0);
    assert_int_equal(r.len, HEADLEN);
    httpc_resp_free(&r);
}

static void test_err_mapping(void **state)
{
    httpc_resp r;
    (void)state;

    assert_int_equal(do_req(cli, "GET", "/err/enoent", NULL, 0, 5000, &r), 0);
    assert_int_equal(r.status, 404);
    assert_string_equal(r.errname, "ENOENT");
    assert_non_null(strstr((char *)r.body, "no such thing"));
    assert_int_equal(cairn_http_to_err(r.status, r.errname), -ENOENT);
    httpc_resp_free(&r);

    assert_int_equal(do_req(cli, "GET", "/err/eexist", NULL, 0, 5000, &r), 0);
    assert_int_equal(r.status, 409);
    assert_string_equal(r.errname, "EEXIST");
    httpc_resp_free(&r);

    assert_int_equal(do_req(cli, "GET", "/err/einval", NULL, 0, 5000, &r), 0);
    assert_int_equal(r.status, 400);
    assert_string_equal(r.errname, "EINVAL");
    /* one line, even when the detail had a newline */
    const char *nl = strchr((char *)r.body, '\n');
    assert_non_null(nl);
    assert_int_equal(nl - (char *)r.body, r.len - 1);
    httpc_resp_free(&r);

    assert_int_equal(do_req(cli, "GET", "/err/enotdir", NULL, 0, 5000, &r), 0);
    assert_int_equal(r.status, 422);
    assert_string_equal(r.errname, "ENOTDIR");
    httpc_resp_free(&r);

    assert_int_equal(do_req(cli, "GET", "/err/busy", NULL, 0, 5000, &r), 0);
    assert_int_equal(r.status, 503);
    assert_true(r.retry_after_s >= 1);
    httpc_resp_free(&r);

    assert_int_equal(do_req(cli, "GET", "/err/notmod", NULL, 0, 5000, &r), 0);
    assert_int_equal(r.status, 304);
    assert_int_equal(r.len, 0);
    httpc_resp_free(&r);
}

static void test_handler_reply_rules(void **state)
{
    httpc_resp r;
    (void)state;

    assert_int_equal(do_req(cli, "GET", "/noreply", NULL, 0, 5000, &r), 0);
    assert_int_equal(r.status, 500);
    httpc_resp_free(&r);

    assert_int_equal(do_req(cli, "GET", "/twice", NULL, 0, 5000, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal((char *)r.body, "first\n");
    httpc_resp_free(&r);
}

static void test_metrics(void **state)
{
    httpc_resp r;
    (void)state;
    const char *series = "cairn_http_requests_total{route=\"hello\",code=\"200\"}";
    double before = metric(series);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(do_req(cli, "GET", "/hello", NULL, 0, 5000, &r), 0);
        httpc_resp_free(&r);
    }
    double after = metric(series);
    assert_true(after >= 5);
    assert_true(after - (before < 0 ? 0 : before) == 5);

    assert_int_equal(do_req(cli, "GET", "/metrics", NULL, 0, 5000, &r), 0);
    assert_int_equal(r.status, 200);
    const char *t = (const char *)r.body;
    assert_non_null(strstr(t, "# TYPE cairn_http_requests_total counter\n"));
    assert_non_null(strstr(t, "cairn_http_requests_total{route=\"none\",code=\"404\"}"));
    assert_non_null(strstr(t, "cairn_http_request_seconds_bucket{route=\"hello\",le=\"0.0005\"}"));
    assert_non_null(strstr(t, "cairn_http_request_seconds_bucket{route=\"hello\",le=\"10\"}"));
    assert_non_null(strstr(t, "cairn_http_request_seconds_bucket{route=\"hello\",le=\"+Inf\"}"));
    assert_non_null(strstr(t, "cairn_http_request_seconds_count{route=\"hello\"}"));
    assert_non_null(strstr(t, "\ncairn_http_bytes_in_total "));
    assert_non_null(strstr(t, "\ncairn_http_bytes_out_total "));
    assert_non_null(strstr(t, "\ncairn_http_inflight_body_bytes "));
    assert_non_null(strstr(t, "\ntest_app_metric 42\n"));
    httpc_resp_free(&r);

    assert_int_equal(do_req(cli, "PUT", "/metrics", "x", 1, 5000, &r), 0);
    assert_int_equal(r.status, 405);
    httpc_resp_free(&r);
}

static void test_keepalive_reuse(void **state)
{
    httpc_resp r;
    (void)state;
    httpc_config cc = {.handles = 1};
    httpc *one = client_new(cc);
    assert_non_null(one);

    assert_int_equal(do_req(one, "GET", "/hello", NULL, 0, 5000, &r), 0);
    httpc_resp_free(&r);
    double before = metric("cairn_http_connections_total");
    assert_true(before >= 1);
    int64_t t0 = now_mono_ms();
    for (int i = 0; i < 200; i++) {
        assert_int_equal(do_req(one, "GET", "/hello", NULL, 0, 5000, &r), 0);
        assert_int_equal(r.status, 200);
        httpc_resp_free(&r);
    }
    int64_t dt = elapsed_ms(t0);
    double after = metric("cairn_http_connections_total");
    /* 200 requests rode on the connection opened before; allow one
     * reconnect for a server-side idle close */
    assert_true(after - before <= 1);
    assert_true(dt < 20000);
    httpc_free(one);
}

static void test_client_timeout(void **state)
{
    httpc_resp r;
    (void)state;
    gate_reset(&slow_gate);
    int64_t t0 = now_mono_ms();
    assert_int_equal(do_req(cli, "GET", "/slow", NULL, 0, 300, &r), -ETIMEDOUT);
    int64_t dt = elapsed_ms(t0);
    assert_true(dt >= 250);
    assert_true(dt < 10000);
    assert_null(r.body);
    assert_true(gate_wait_entered(&slow_gate, 15));
    gate_release(&slow_gate);

    /* the client is usable afterwards */
    assert_int_equal(do_req(cli, "GET", "/hello", NULL, 0, 5000, &r), 0);
    assert_int_equal(r.status, 200);
    httpc_resp_free(&r);
}

static void test_connection_refused(void **state)
{
    httpc_resp r;
    (void)state;
    /* a bound socket that does not listen: nobody else can take the port
     * and connecting to it is refused */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    socklen_t sl = sizeof(sa);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    char *u = xasprintf("http://127.0.0.1:%u/x", (unsigned)ntohs(sa.sin_port));
    assert_int_equal(httpc_do(cli, "GET", u, NULL, NULL, 0, 5000, &r), -ECONNREFUSED);
    assert_int_equal(r.status, 0);
    assert_null(r.body);
    free(u);
    close(fd);

    assert_int_equal(httpc_do(cli, "GET", "not a url", NULL, NULL, 0, 5000, &r) < 0, 1);
}

static void test_response_cap(void **state)
{
    httpc_resp r;
    (void)state;
    httpc_config cc = {.handles = 1, .max_resp = 1000};
    httpc *c = client_new(cc);
    assert_non_null(c);
    assert_int_equal(do_req(c, "GET", "/big", NULL, 0, 5000, &r), -EFBIG);
    assert_null(r.body);
    assert_int_equal(r.len, 0);
    /* under the cap still works */
    assert_int_equal(do_req(c, "GET", "/hello", NULL, 0, 5000, &r), 0);
    assert_int_equal(r.status, 200);
    httpc_resp_free(&r);
    httpc_free(c);
}

struct bytes_wait {
    double bytes_in;
};

static int partial_body_seen(void *ctx)
{
    struct bytes_wait *w = ctx;
    return metric("cairn_http_bytes_in_total") >= w->bytes_in &&
           metric("cairn_http_inflight_body_bytes") == 0;
}

static void test_client_hangs_up_mid_body(void **state)
{
    (void)state;
    unsigned before = count_get(&echo_calls);
    struct bytes_wait w = {metric("cairn_http_bytes_in_total") + 1000};
    buf q = {0};
    buf_printf(&q, "PUT /echo/cut HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n");
    uint8_t part[1000];
    memset(part, 'p', sizeof(part));
    buf_append(&q, part, sizeof(part));
    raw_exchange(q.data, q.len, 1);
    buf_free(&q);

    assert_true(wait_until(partial_body_seen, &w, 10000));
    assert_int_equal(count_get(&echo_calls), before);

    /* the same with a chunked body */
    q = (buf){0};
    buf_printf(&q, "PUT /echo/cut HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "%x\r\n", 1000);
    buf_append(&q, part, sizeof(part));
    buf_printf(&q, "\r\n");
    w.bytes_in = metric("cairn_http_bytes_in_total") + 1000;
    raw_exchange(q.data, q.len, 1);
    buf_free(&q);
    assert_true(wait_until(partial_body_seen, &w, 10000));
    assert_int_equal(count_get(&echo_calls), before);
}

struct worker {
    httpc *c;
    int id;
    int failures;
};

static void *echo_worker(void *arg)
{
    struct worker *w = arg;
    char body[64];
    for (int i = 0; i < 25; i++) {
        int n = snprintf(body, sizeof(body), "worker %d request %d", w->id, i);
        httpc_resp r;
        if (do_req(w->c, "POST", "/echo/w", body, (size_t)n, 10000, &r) != 0) {
            w->failures++;
            continue;
        }
        if (r.status != 200 || r.len != (size_t)n || memcmp(r.body, body, (size_t)n) != 0)
            w->failures++;
        httpc_resp_free(&r);
    }
    return NULL;
}

static void test_concurrent_clients_share_pool(void **state)
{
    (void)state;
    httpc_config cc = {.handles = 2};
    httpc *c = client_new(cc);
    assert_non_null(c);
    pthread_t t[8];
    struct worker w[8];
    for (int i = 0; i < 8; i++) {
        w[i] = (struct worker){.c = c, .id = i};
        assert_int_equal(pthread_create(&t[i], NULL, echo_worker, &w[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(w[i].failures, 0);
    }
    httpc_free(c);
}

/* A one-shot raw server for responses httpd never produces. */
struct raw_srv {
    int lfd;
    uint16_t port;
    const char *reply;
    size_t reply_len;
    pthread_t t;
};

static void *raw_srv_thread(void *arg)
{
    struct raw_srv *s = arg;
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    char b[4096];
    size_t got = 0;
    ssize_t n;
    while (got < sizeof(b) - 1 && (n = read(fd, b + got, sizeof(b) - 1 - got)) > 0) {
        got += (size_t)n;
        b[got] = 0;
        if (strstr(b, "\r\n\r\n"))
            break;
    }
    (void)write_full(fd, s->reply, s->reply_len);
    close(fd);
    return NULL;
}

static void raw_srv_start(struct raw_srv *s, const char *reply, size_t len)
{
    s->reply = reply;
    s->reply_len = len;
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->lfd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(s->lfd, 4), 0);
    socklen_t sl = sizeof(sa);
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&sa, &sl), 0);
    s->port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&s->t, NULL, raw_srv_thread, s), 0);
}

static void raw_srv_stop(struct raw_srv *s)
{
    pthread_join(s->t, NULL);
    close(s->lfd);
}

static int raw_get(struct raw_srv *s, httpc *c, httpc_resp *r)
{
    char *u = xasprintf("http://127.0.0.1:%u/x", (unsigned)s->port);
    int rc = httpc_do(c, "GET", u, NULL, NULL, 0, 5000, r);
    free(u);
    return rc;
}

/* Serve reply once and GET it with c: the client's result. */
static int raw_answer(httpc *c, const char *reply, size_t len, httpc_resp *r)
{
    struct raw_srv s;
    raw_srv_start(&s, reply, len);
    int rc = raw_get(&s, c, r);
    raw_srv_stop(&s);
    return rc;
}

static void test_client_edge_responses(void **state)
{
    (void)state;
    httpc_resp r;
    struct raw_srv s;
    httpc_config cc = {.handles = 1, .max_resp = 1000};
    httpc *c = client_new(cc);
    assert_non_null(c);

    /* a chunked answer has no Content-Length to refuse up front */
    buf big = {0};
    buf_printf(&big, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 4; i++) {
        buf_printf(&big, "%x\r\n", 500);
        for (int k = 0; k < 500; k++)
            buf_append(&big, "z", 1);
        buf_printf(&big, "\r\n");
    }
    buf_printf(&big, "0\r\n\r\n");
    raw_srv_start(&s, (const char *)big.data, big.len);
    assert_int_equal(raw_get(&s, c, &r), -EFBIG);
    assert_null(r.body);
    raw_srv_stop(&s);
    buf_free(&big);

    /* not HTTP at all */
    static const char junk[] = "SSH-2.0-OpenSSH_9.2\r\n\r\n";
    raw_srv_start(&s, junk, strlen(junk));
    int rc = raw_get(&s, c, &r);
    assert_int_equal(rc, CAIRN_EPROTO);
    raw_srv_stop(&s);

    /* nothing at all */
    raw_srv_start(&s, "", 0);
    assert_int_equal(raw_get(&s, c, &r), -ECONNRESET);
    raw_srv_stop(&s);

    /* header capture: an interim 100 does not leak into the answer, an
     * HTTP-date Retry-After becomes seconds */
    static const char hdrs[] =
        "HTTP/1.1 100 Continue\r\nCairn-Epoch: 99\r\n\r\n"
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\n"
        "Cairn-Errno: EAGAIN\r\nCairn-Epoch: 12\r\netag: \"v\"\r\nContent-Length: 2\r\n"
        "Connection: close\r\n\r\nno";
    raw_srv_start(&s, hdrs, strlen(hdrs));
    assert_int_equal(raw_get(&s, c, &r), 0);
    assert_int_equal(r.status, 503);
    assert_int_equal(r.retry_after_s, 0);   /* a date in the past */
    assert_string_equal(r.errname, "EAGAIN");
    assert_int_equal(r.epoch, 12);
    assert_string_equal(r.etag, "\"v\"");
    assert_string_equal((char *)r.body, "no");
    httpc_resp_free(&r);
    raw_srv_stop(&s);

    httpc_free(c);
}

/* Answers both transports read alike: a body delimited by the server
 * closing, a body cut short, a chunked body with an extension and a
 * trailer. */
static void test_client_more_edges(void **state)
{
    (void)state;
    httpc_resp r;
    httpc_config cc = {.handles = 1};
    httpc *c = client_new(cc);
    assert_non_null(c);

    static const char closed[] = "HTTP/1.1 200 OK\r\nCairn-Epoch: 5\r\n\r\nuntil the end";
    assert_int_equal(raw_answer(c, closed, strlen(closed), &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.epoch, 5);
    assert_int_equal(r.len, strlen("until the end"));
    assert_string_equal((char *)r.body, "until the end");
    httpc_resp_free(&r);

    static const char cut[] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
    assert_int_equal(raw_answer(c, cut, strlen(cut), &r), -ECONNRESET);
    assert_null(r.body);

    static const char chunked[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                  "3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: t\r\n\r\n";
    assert_int_equal(raw_answer(c, chunked, strlen(chunked), &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal((char *)r.body, "abcde");
    httpc_resp_free(&r);
    httpc_free(c);
}

/* The lean transport's own limits: a head over 64 KiB, a transfer coding
 * it does not know and two Content-Lengths that disagree are refused, not
 * misread; a URL or header that would split the request is not sent. */
static void test_lean_refuses(void **state)
{
    (void)state;
    httpc_resp r;
    httpc_config cc = {.handles = 1};
    httpc *c = client_new(cc);
    assert_non_null(c);

    buf big = {0};
    buf_printf(&big, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < 1300; i++)
        buf_printf(&big, "X-Filler-%04d: %s\r\n", i, "0123456789012345678901234567890123456789");
    buf_printf(&big, "Content-Length: 0\r\n\r\n");
    assert_int_equal(raw_answer(c, (const char *)big.data, big.len, &r), CAIRN_EPROTO);
    buf_free(&big);

    static const char twice[] =
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc";
    assert_int_equal(raw_answer(c, twice, strlen(twice), &r), CAIRN_EPROTO);
    assert_null(r.body);

    static const char gz[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx";
    assert_int_equal(raw_answer(c, gz, strlen(gz), &r), CAIRN_EPROTO);

    assert_int_equal(httpc_do(c, "GET", "http://127.0.0.1:80/a b", NULL, NULL, 0, 1000, &r),
                     -EINVAL);
    const char *bad[] = {"X-A: 1\r\nX-B: 2", NULL};
    assert_int_equal(httpc_do(c, "GET", "http://127.0.0.1:80/", bad, NULL, 0, 1000, &r), -EINVAL);
    httpc_free(c);
}

/* A server that answers one request on a kept-alive connection, reads a
 * second request on it whole and then goes away (listener first) without
 * answering: curl retries such a request on a fresh connection by itself,
 * which is refused. The request did arrive, so the caller must not be told
 * "connection refused" (which promises that it never did). */
struct vanish_srv {
    int lfd;
    uint16_t port;
    int second_seen;
    pthread_t t;
};

static int read_request(int fd, char *b, size_t cap)
{
    size_t got = 0;
    ssize_t n;
    while (got < cap - 1 && (n = read(fd, b + got, cap - 1 - got)) > 0) {
        got += (size_t)n;
        b[got] = 0;
        char *end = strstr(b, "\r\n\r\n");
        const char *cl = strcasestr(b, "Content-Length:");
        if (end && (!cl || got >= (size_t)(end + 4 - b) + strtoul(cl + 15, NULL, 10)))
            return 1;
    }
    return 0;
}

static void *vanish_thread(void *arg)
{
    struct vanish_srv *s = arg;
    char b[4096];
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    if (read_request(fd, b, sizeof(b)) && write_full(fd, ok, strlen(ok)) == 0 &&
        read_request(fd, b, sizeof(b)))
        s->second_seen = strstr(b, "second") != NULL;
    close(s->lfd);
    close(fd);
    return NULL;
}

static void test_request_sent_then_server_gone(void **state)
{
    (void)state;
    httpc_config cc = {.handles = 1};
    httpc *c = client_new(cc);
    assert_non_null(c);
    struct vanish_srv s = {0};
    s.lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s.lfd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s.lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(s.lfd, 4), 0);
    socklen_t sl = sizeof(sa);
    assert_int_equal(getsockname(s.lfd, (struct sockaddr *)&sa, &sl), 0);
    s.port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&s.t, NULL, vanish_thread, &s), 0);

    char *u = xasprintf("http://127.0.0.1:%u/x", (unsigned)s.port);
    httpc_resp r;
    assert_int_equal(httpc_do(c, "POST", u, NULL, "first", 5, 5000, &r), 0);
    assert_int_equal(r.status, 200);
    httpc_resp_free(&r);
    assert_int_equal(httpc_do(c, "POST", u, NULL, "second", 6, 5000, &r), -ECONNRESET);
    pthread_join(s.t, NULL);
    assert_true(s.second_seen);
    /* with nothing listening any more, a new request was never delivered */
    assert_int_equal(httpc_do(c, "POST", u, NULL, "third", 5, 5000, &r), -ECONNREFUSED);
    free(u);
    httpc_free(c);
}

int main(void)
{
    /* the raw servers write answers a client may already have refused */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_methods_round_trip),
        cmocka_unit_test(test_request_accessors),
        cmocka_unit_test(test_echo_1mib),
        cmocka_unit_test(test_not_found_and_method),
        cmocka_unit_test(test_body_too_large),
        cmocka_unit_test(test_chunked_flood_is_cut),
        cmocka_unit_test(test_inflight_cap_503),
        cmocka_unit_test(test_head),
        cmocka_unit_test(test_err_mapping),
        cmocka_unit_test(test_handler_reply_rules),
        cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_keepalive_reuse),
        cmocka_unit_test(test_client_timeout),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_response_cap),
        cmocka_unit_test(test_client_hangs_up_mid_body),
        cmocka_unit_test(test_concurrent_clients_share_pool),
        cmocka_unit_test(test_client_edge_responses),
        cmocka_unit_test(test_client_more_edges),
        cmocka_unit_test(test_request_sent_then_server_gone),
    };
    int failed = cmocka_run_group_tests_name("curl", tests, group_setup, group_teardown);
    lean_mode = 1;
    failed += cmocka_run_group_tests_name("lean", tests, group_setup, group_teardown);
    const struct CMUnitTest lean_only[] = {
        cmocka_unit_test(test_lean_refuses),
    };
    failed += cmocka_run_group_tests_name("lean only", lean_only, NULL, NULL);
    return failed;
}
