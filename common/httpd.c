/*
 * httpd.c — HTTP/1.1 server helper over libmicrohttpd (contract: httpd.h).
 *
 * Request life cycle inside MHD's access handler, all on the connection's
 * own thread:
 *   1. first call (headers parsed): allocate the httpd_req, route it, check
 *      Content-Length against the route's max_body and the in-flight cap.
 *      A rejection (400, 404, 405) is queued right away, which makes MHD
 *      skip the body and close the connection after the answer. A 413 or
 *      503 for a body the client is already sending is answered after the
 *      body has been read and dropped (see refuse_after_body).
 *   2. body calls: append to the request's buffer. A chunked body that grows
 *      past max_body or the in-flight cap is not stored further; it is
 *      drained (bounded, see DRAIN_MAX) and answered 413/503 at its end.
 *   3. final call: run the handler, release the body and its in-flight
 *      bytes, then build and queue the handler's reply.
 * MHD's request-completed callback runs for every request that reached
 * step 1, including a client hanging up mid-body, and frees what is left;
 * it also records the request in the metrics.
 *
 * Locks: h->lock guards the in-flight byte count and every metric; it is
 * a leaf lock held only for counter updates and for rendering /metrics.
 */
#include "common/httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "common/err.h"
#include "common/log.h"

/* Upper bounds of the latency histogram, in seconds. */
static const double lat_bounds[] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};
#define NBUCKETS (ARRAY_LEN(lat_bounds) + 1)

/* Distinct status codes tracked per route; more than this (never seen in
 * practice) are counted under code "other" rather than growing memory. */
#define MAX_CODES 24

/* A chunked body past its limit is drained (read and dropped) up to this
 * many bytes so that the client reads a clean 413/503 instead of a reset;
 * beyond it the connection is cut. */
#define DRAIN_MAX (8u << 20)

#define RETRY_AFTER_S "1"

struct code_count {
    int code;          /* 0 = "other" */
    uint64_t n;
};

struct route_stats {
    const char *name;
    struct code_count codes[MAX_CODES];
    size_t ncodes;
    uint64_t buckets[NBUCKETS];
    double sum_s;
    uint64_t count;
};

struct httpd {
    const httpd_config *cfg;
    struct MHD_Daemon *mhd;
    uint16_t port;

    pthread_mutex_t lock;
    uint64_t inflight;            /* body bytes held by live requests */
    struct route_stats *stats;    /* one per distinct route name */
    size_t nstats;
    size_t *route_stat;           /* routes[i] -> stats index */
    size_t stat_metrics, stat_none;
    uint64_t bytes_in, bytes_out;
    uint64_t conns_total;
    uint64_t conns_open;
};

struct hdr {
    char *name;
    char *value;
};

enum req_state {
    RQ_BODY,          /* receiving (or no body) */
    RQ_DRAIN,         /* body over a limit: dropping bytes, answer at end */
    RQ_DONE,          /* a response is queued */
};

struct httpd_req {
    httpd *h;
    struct MHD_Connection *conn;
    const char *method;
    const char *path;
    const httpd_route *route;     /* NULL for built-ins and unmatched */
    size_t stat;                  /* stats index */
    int is_head;
    int64_t t0_ns;
    enum req_state state;
    int drain_status;             /* 413 or 503 when draining */
    uint64_t drained;
    uint64_t drain_max;           /* past this many dropped bytes, cut */

    uint8_t *body;
    size_t len, cap;
    uint64_t max_body;
    uint64_t reserved;            /* bytes counted in h->inflight */
    uint64_t bytes_in;

    /* the reply */
    int replies;
    int status;
    const char *ctype;
    void *rbody;
    size_t rlen;
    int rbody_owned;
    struct hdr *hdrs;
    size_t nhdrs, caphdrs;

    int sent_status;              /* 0 = nothing queued */
    uint64_t bytes_out;
    char peer[INET6_ADDRSTRLEN + 8];
};

/* ------------------------------------------------------------------ */
/* metrics */

static void stats_count(httpd *h, httpd_req *r)
{
    double secs = (double)(now_mono_ns() - r->t0_ns) / 1e9;
    pthread_mutex_lock(&h->lock);
    struct route_stats *s = &h->stats[r->stat];
    h->bytes_in += r->bytes_in;
    if (r->sent_status) {
        struct code_count *cc = NULL;
        for (size_t i = 0; i < s->ncodes; i++)
            if (s->codes[i].code == r->sent_status)
                cc = &s->codes[i];
        if (!cc) {
            if (s->ncodes < MAX_CODES - 1) {
                cc = &s->codes[s->ncodes++];
                cc->code = r->sent_status;
            } else {
                cc = &s->codes[MAX_CODES - 1];
                cc->code = 0;
                s->ncodes = MAX_CODES;
            }
        }
        cc->n++;
        size_t b = 0;
        while (b < ARRAY_LEN(lat_bounds) && secs > lat_bounds[b])
            b++;
        s->buckets[b]++;
        s->sum_s += secs;
        s->count++;
        h->bytes_out += r->bytes_out;
    }
    pthread_mutex_unlock(&h->lock);
}

static void render_metrics(httpd *h, buf *out)
{
    pthread_mutex_lock(&h->lock);
    buf_printf(out, "# HELP cairn_http_requests_total HTTP requests answered, by route and status.\n"
                    "# TYPE cairn_http_requests_total counter\n");
    for (size_t i = 0; i < h->nstats; i++) {
        const struct route_stats *s = &h->stats[i];
        for (size_t c = 0; c < s->ncodes; c++) {
            if (s->codes[c].code)
                buf_printf(out, "cairn_http_requests_total{route=\"%s\",code=\"%d\"} %" PRIu64 "\n",
                           s->name, s->codes[c].code, s->codes[c].n);
            else
                buf_printf(out, "cairn_http_requests_total{route=\"%s\",code=\"other\"} %" PRIu64 "\n",
                           s->name, s->codes[c].n);
        }
    }
    buf_printf(out, "# HELP cairn_http_bytes_in_total Request body bytes received.\n"
                    "# TYPE cairn_http_bytes_in_total counter\n"
                    "cairn_http_bytes_in_total %" PRIu64 "\n"
                    "# HELP cairn_http_bytes_out_total Response body bytes sent.\n"
                    "# TYPE cairn_http_bytes_out_total counter\n"
                    "cairn_http_bytes_out_total %" PRIu64 "\n",
               h->bytes_in, h->bytes_out);
    buf_printf(out, "# HELP cairn_http_request_seconds Time from request headers to response sent.\n"
                    "# TYPE cairn_http_request_seconds histogram\n");
    for (size_t i = 0; i < h->nstats; i++) {
        const struct route_stats *s = &h->stats[i];
        if (!s->count)
            continue;
        uint64_t cum = 0;
        for (size_t b = 0; b < NBUCKETS; b++) {
            cum += s->buckets[b];
            if (b < ARRAY_LEN(lat_bounds))
                buf_printf(out, "cairn_http_request_seconds_bucket{route=\"%s\",le=\"%g\"} %" PRIu64 "\n",
                           s->name, lat_bounds[b], cum);
            else
                buf_printf(out, "cairn_http_request_seconds_bucket{route=\"%s\",le=\"+Inf\"} %" PRIu64 "\n",
                           s->name, cum);
        }
        buf_printf(out, "cairn_http_request_seconds_sum{route=\"%s\"} %.6f\n", s->name, s->sum_s);
        buf_printf(out, "cairn_http_request_seconds_count{route=\"%s\"} %" PRIu64 "\n", s->name, s->count);
    }
    buf_printf(out, "# HELP cairn_http_inflight_body_bytes Request body bytes held by requests in progress.\n"
                    "# TYPE cairn_http_inflight_body_bytes gauge\n"
                    "cairn_http_inflight_body_bytes %" PRIu64 "\n"
                    "# HELP cairn_http_connections_total TCP connections accepted.\n"
                    "# TYPE cairn_http_connections_total counter\n"
                    "cairn_http_connections_total %" PRIu64 "\n"
                    "# HELP cairn_http_connections_open TCP connections currently open.\n"
                    "# TYPE cairn_http_connections_open gauge\n"
                    "cairn_http_connections_open %" PRIu64 "\n",
               h->inflight, h->conns_total, h->conns_open);
    pthread_mutex_unlock(&h->lock);
    if (h->cfg->metrics)
        h->cfg->metrics(out, h->cfg->ctx);
}

/* ------------------------------------------------------------------ */
/* in-flight accounting */

/* Reserve n more body bytes; fails when the cap would be passed while other
 * bodies are in flight (one request alone is always admitted, so a body up
 * to max_body can always make progress). */
static int inflight_reserve(httpd_req *r, uint64_t n)
{
    httpd *h = r->h;
    uint64_t cap = h->cfg->max_inflight_body;
    int ok = 1;
    pthread_mutex_lock(&h->lock);
    if (cap && h->inflight - r->reserved > 0 && h->inflight + n > cap)
        ok = 0;
    else
        h->inflight += n;
    pthread_mutex_unlock(&h->lock);
    if (ok)
        r->reserved += n;
    return ok;
}

static void inflight_release(httpd_req *r)
{
    if (!r->reserved)
        return;
    pthread_mutex_lock(&r->h->lock);
    r->h->inflight -= r->reserved;
    pthread_mutex_unlock(&r->h->lock);
    r->reserved = 0;
}

static void body_release(httpd_req *r)
{
    free(r->body);
    r->body = NULL;
    r->len = r->cap = 0;
    inflight_release(r);
}

/* ------------------------------------------------------------------ */
/* replies */

static void reply_reset(httpd_req *r)
{
    if (r->rbody_owned)
        free(r->rbody);
    r->rbody = NULL;
    r->rlen = 0;
    r->rbody_owned = 0;
}

static void req_free(httpd_req *r)
{
    body_release(r);
    reply_reset(r);
    for (size_t i = 0; i < r->nhdrs; i++) {
        free(r->hdrs[i].name);
        free(r->hdrs[i].value);
    }
    free(r->hdrs);
    free(r);
}

static int has_header(const httpd_req *r, const char *name)
{
    for (size_t i = 0; i < r->nhdrs; i++)
        if (!strcasecmp(r->hdrs[i].name, name))
            return 1;
    return 0;
}

static int begin_reply(httpd_req *r, int status)
{
    if (r->replies++) {
        log_error("httpd: %s %s: handler replied more than once (status %d dropped)",
                  r->method, r->path, status);
        return 0;
    }
    r->status = status;
    return 1;
}

/* For HEAD, a reply may announce a length without bytes: the body callback
 * is never called because MHD sends no body for HEAD. */
static ssize_t no_body_reader(void *cls, uint64_t pos, char *out, size_t max)
{
    (void)cls;
    (void)pos;
    (void)out;
    (void)max;
    return MHD_CONTENT_READER_END_WITH_ERROR;
}

/* Builds the MHD response from r's reply and queues it. */
static enum MHD_Result queue_reply(httpd_req *r)
{
    httpd *h = r->h;
    struct MHD_Response *resp;

    if (h->cfg->global_headers)
        h->cfg->global_headers(r, h->cfg->ctx);

    if (r->rbody == NULL && r->rlen > 0) {
        resp = MHD_create_response_from_callback(r->rlen, 4096, no_body_reader, NULL, NULL);
    } else if (r->rbody_owned) {
        resp = MHD_create_response_from_buffer_with_free_callback(r->rlen, r->rbody, free);
        if (resp) {
            r->rbody = NULL;     /* MHD frees it now */
            r->rbody_owned = 0;
        }
    } else {
        resp = MHD_create_response_from_buffer(r->rlen, r->rbody ? r->rbody : (void *)"",
                                               MHD_RESPMEM_PERSISTENT);
    }
    if (!resp) {
        log_error("httpd: %s %s: cannot create response", r->method, r->path);
        r->state = RQ_DONE;
        return MHD_NO;
    }
    if (r->ctype)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->ctype);
    for (size_t i = 0; i < r->nhdrs; i++)
        if (MHD_add_response_header(resp, r->hdrs[i].name, r->hdrs[i].value) != MHD_YES)
            log_warn("httpd: %s %s: header %s refused", r->method, r->path, r->hdrs[i].name);
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    r->state = RQ_DONE;
    if (ret == MHD_YES) {
        r->sent_status = r->status;
        r->bytes_out = r->is_head ? 0 : r->rlen;
    } else {
        log_error("httpd: %s %s: cannot queue response %d", r->method, r->path, r->status);
    }
    reply_reset(r);
    return ret;
}

/* Answer from the helper itself (not the handler). */
static enum MHD_Result queue_builtin(httpd_req *r, int status, const char *text)
{
    reply_reset(r);
    r->replies = 1;
    r->status = status;
    r->ctype = "text/plain";
    r->rbody = xasprintf("%s\n", text);
    r->rlen = strlen(r->rbody);
    r->rbody_owned = 1;
    if (status == MHD_HTTP_SERVICE_UNAVAILABLE && !has_header(r, "Retry-After"))
        httpd_add_header(r, "Retry-After", RETRY_AFTER_S);
    if (status == MHD_HTTP_CONTENT_TOO_LARGE && !has_header(r, "Cairn-Errno"))
        httpd_add_header(r, "Cairn-Errno", "EFBIG");
    return queue_reply(r);
}

/* ------------------------------------------------------------------ */
/* routing */

static int prefix_matches(const char *prefix, const char *path)
{
    size_t n = strlen(prefix);
    if (n && prefix[n - 1] == '/')
        return strncmp(prefix, path, n) == 0;
    return strcmp(prefix, path) == 0;
}

static int method_is(const char *m, const char *want)
{
    return strcmp(m, want) == 0;
}

/* Finds the route for (method, path); sets *path_known when some route
 * serves the path with another method. */
static const httpd_route *route_find(const httpd_config *cfg, const char *method,
                                     const char *path, int *path_known)
{
    int head = method_is(method, "HEAD");
    *path_known = 0;
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const httpd_route *rt = &cfg->routes[i];
        if (!prefix_matches(rt->prefix, path))
            continue;
        *path_known = 1;
        if (method_is(rt->method, method) || (head && method_is(rt->method, "GET")))
            return rt;
    }
    return NULL;
}

static void allow_header(httpd_req *r)
{
    const httpd_config *cfg = r->h->cfg;
    const char *seen[32];
    size_t n = 0;
    int get = 0, head = 0;
    buf b = {0};
    for (size_t i = 0; i < cfg->nroutes && n < ARRAY_LEN(seen); i++) {
        const httpd_route *rt = &cfg->routes[i];
        if (!prefix_matches(rt->prefix, r->path))
            continue;
        int dup = 0;
        for (size_t j = 0; j < n; j++)
            dup |= method_is(seen[j], rt->method);
        if (dup)
            continue;
        seen[n++] = rt->method;
        get |= method_is(rt->method, "GET");
        head |= method_is(rt->method, "HEAD");
        buf_printf(&b, "%s%s", b.len ? ", " : "", rt->method);
    }
    if (get && !head)
        buf_printf(&b, ", HEAD");
    buf_append(&b, "", 1);
    httpd_add_header(r, "Allow", (const char *)b.data);
    buf_free(&b);
}

/* ------------------------------------------------------------------ */
/* MHD callbacks */

static const char *drain_text(int status)
{
    return status == MHD_HTTP_CONTENT_TOO_LARGE ? "request body too large"
                                                : "server busy, retry later";
}

/*
 * A refusal (413, 503) of a request whose body of len bytes has not been
 * read. Queued at once, MHD would close the connection with the body
 * unread, the peer's kernel would see a reset while the client is still
 * sending, and the client would usually get "connection reset" instead of
 * the answer: it then takes the server for a failed one (a chunk upload
 * moves its copy to another server) instead of backing off as Retry-After
 * asks, or reporting that the body is too large. So unless the client
 * waits for "100 Continue" (and has sent nothing) or the body is larger
 * than DRAIN_MAX, the body is read and dropped (no memory kept, no
 * in-flight bytes counted) and the answer goes out at its end, on a
 * connection that stays usable.
 */
static enum MHD_Result refuse_after_body(httpd_req *r, int status, uint64_t len)
{
    const char *expect = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_EXPECT);
    if ((expect && strcasecmp(expect, "100-continue") == 0) || len > DRAIN_MAX)
        return queue_builtin(r, status, drain_text(status));
    body_release(r);
    r->state = RQ_DRAIN;
    r->drain_status = status;
    r->drained = 0;
    r->drain_max = len;
    return MHD_YES;
}

static enum MHD_Result first_call(httpd *h, httpd_req *r)
{
    const httpd_config *cfg = h->cfg;
    int path_known;

    if (strcmp(r->path, "/metrics") == 0) {
        r->stat = h->stat_metrics;
        if (!method_is(r->method, "GET") && !r->is_head) {
            httpd_add_header(r, "Allow", "GET, HEAD");
            return queue_builtin(r, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed");
        }
        r->max_body = 0;
    } else {
        r->route = route_find(cfg, r->method, r->path, &path_known);
        if (!r->route) {
            r->stat = h->stat_none;
            if (!path_known)
                return queue_builtin(r, MHD_HTTP_NOT_FOUND, "no such path");
            allow_header(r);
            return queue_builtin(r, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed");
        }
        r->stat = h->route_stat[r->route - cfg->routes];
        r->max_body = r->route->max_body;
    }

    const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (errno || end == cl || *end || cl[0] == '-')
            return queue_builtin(r, MHD_HTTP_BAD_REQUEST, "bad Content-Length");
        if (n > r->max_body)
            return refuse_after_body(r, MHD_HTTP_CONTENT_TOO_LARGE, n);
        if (n > 0) {
            if (!inflight_reserve(r, n) || !(r->body = malloc(n)))
                return refuse_after_body(r, MHD_HTTP_SERVICE_UNAVAILABLE, n);
            r->cap = n;
        }
    }
    return MHD_YES;
}

/* Appends a piece of body; returns 0, or the status to answer. */
static int body_append(httpd_req *r, const char *data, size_t n)
{
    if (n > r->max_body - r->len)
        return MHD_HTTP_CONTENT_TOO_LARGE;
    if (r->len + n > r->cap) {
        /* chunked upload: grow geometrically within max_body, accounting
         * the capacity as in-flight memory */
        size_t ncap = r->cap ? r->cap : 16384;
        while (ncap < r->len + n)
            ncap *= 2;
        if (ncap > r->max_body)
            ncap = r->max_body;
        if (!inflight_reserve(r, ncap - r->cap))
            return MHD_HTTP_SERVICE_UNAVAILABLE;
        uint8_t *nb = realloc(r->body, ncap);
        if (!nb)
            return MHD_HTTP_SERVICE_UNAVAILABLE;
        r->body = nb;
        r->cap = ncap;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    return 0;
}

static void run_handler(httpd_req *r)
{
    if (r->route) {
        r->route->handler(r, r->h->cfg->ctx);
    } else {
        buf b = {0};
        render_metrics(r->h, &b);
        size_t len;
        uint8_t *p = buf_steal(&b, &len);
        httpd_reply(r, MHD_HTTP_OK, "text/plain; version=0.0.4", p, len);
    }
    if (!r->replies) {
        log_error("httpd: %s %s: handler returned without a reply", r->method, r->path);
        r->replies = 0;
        reply_reset(r);
        httpd_reply_text(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "handler did not reply");
    }
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version,
                                 const char *upload_data, size_t *upload_data_size,
                                 void **con_cls)
{
    httpd *h = cls;
    httpd_req *r = *con_cls;
    (void)version;

    if (!r) {
        r = xcalloc(1, sizeof(*r));
        r->h = h;
        r->conn = conn;
        r->method = method;
        r->path = url;
        r->is_head = method_is(method, "HEAD");
        r->t0_ns = now_mono_ns();
        *con_cls = r;
        return first_call(h, r);
    }
    if (r->state == RQ_DONE) {
        *upload_data_size = 0;
        return MHD_YES;
    }

    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        r->bytes_in += n;
        if (r->state == RQ_DRAIN) {
            r->drained += n;
            return r->drained > r->drain_max ? MHD_NO : MHD_YES;
        }
        int st = body_append(r, upload_data, n);
        if (st) {
            /* MHD 0.9.75 cannot queue an answer in the middle of a body;
             * drop what we hold now and answer once the body has ended */
            body_release(r);
            r->state = RQ_DRAIN;
            r->drain_status = st;
            r->drained = n;
            r->drain_max = DRAIN_MAX;
        }
        return MHD_YES;
    }

    if (r->state == RQ_DRAIN)
        return queue_builtin(r, r->drain_status, drain_text(r->drain_status));

    run_handler(r);
    /* The body is not needed once the handler returned: give its memory and
     * in-flight bytes back before the answer goes out, so a client that has
     * read the answer finds the budget already released. */
    body_release(r);
    return queue_reply(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    httpd *h = cls;
    httpd_req *r = *con_cls;
    (void)conn;
    (void)toe;
    if (!r)
        return;
    *con_cls = NULL;
    body_release(r);
    stats_count(h, r);
    req_free(r);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    httpd *h = cls;
    (void)conn;
    (void)socket_context;
    pthread_mutex_lock(&h->lock);
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        h->conns_total++;
        h->conns_open++;
    } else if (h->conns_open) {
        h->conns_open--;
    }
    pthread_mutex_unlock(&h->lock);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    (void)cls;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = 0;
    log_info("httpd: %s", msg);
}

/* ------------------------------------------------------------------ */
/* public API */

static size_t stat_slot(httpd *h, const char *name)
{
    for (size_t i = 0; i < h->nstats; i++)
        if (!strcmp(h->stats[i].name, name))
            return i;
    h->stats[h->nstats].name = name;
    return h->nstats++;
}

httpd *httpd_start(const httpd_config *cfg)
{
    struct addrinfo hints = {0}, *ai = NULL;
    char portstr[8];
    const char *host = cfg->host && cfg->host[0] ? cfg->host : "0.0.0.0";

    for (size_t i = 0; i < cfg->nroutes; i++) {
        const httpd_route *rt = &cfg->routes[i];
        if (!rt->method || !rt->prefix || !rt->handler || !rt->name || rt->prefix[0] != '/') {
            log_error("httpd: route %zu is incomplete", i);
            return NULL;
        }
    }

    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(portstr, sizeof(portstr), "%u", (unsigned)cfg->port);
    int gai = getaddrinfo(host, portstr, &hints, &ai);
    if (gai) {
        log_error("httpd: cannot resolve %s: %s", host, gai_strerror(gai));
        return NULL;
    }

    httpd *h = xcalloc(1, sizeof(*h));
    h->cfg = cfg;
    pthread_mutex_init(&h->lock, NULL);
    h->stats = xcalloc(cfg->nroutes + 2, sizeof(*h->stats));
    h->route_stat = xcalloc(cfg->nroutes + 1, sizeof(*h->route_stat));
    for (size_t i = 0; i < cfg->nroutes; i++)
        h->route_stat[i] = stat_slot(h, cfg->routes[i].name);
    h->stat_metrics = stat_slot(h, "metrics");
    h->stat_none = stat_slot(h, "none");

    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_POLL | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;

    h->mhd = MHD_start_daemon(
        flags, cfg->port, NULL, NULL, on_access, h,
        /* first, so that MHD's own option parsing already logs through it */
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h,
        MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)(cfg->max_connections ? cfg->max_connections : 1024),
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)(cfg->conn_timeout_s ? cfg->conn_timeout_s : 120),
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, cfg->conn_memory ? cfg->conn_memory : (size_t)(128 * 1024),
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
        MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!h->mhd) {
        log_error("httpd: cannot listen on %s:%u (address in use or not local?)", host,
                  (unsigned)cfg->port);
        goto fail;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : cfg->port;
    if (!h->port) {
        log_error("httpd: cannot learn the bound port");
        MHD_stop_daemon(h->mhd);
        goto fail;
    }
    return h;

fail:
    free(h->route_stat);
    free(h->stats);
    pthread_mutex_destroy(&h->lock);
    free(h);
    return NULL;
}

uint16_t httpd_port(const httpd *h)
{
    return h->port;
}

void httpd_stop(httpd *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->mhd);
    free(h->route_stat);
    free(h->stats);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

const char *httpd_method(const httpd_req *r)
{
    return r->method;
}

const char *httpd_path(const httpd_req *r)
{
    return r->path;
}

const char *httpd_header(const httpd_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *httpd_query(const httpd_req *r, const char *key)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

const uint8_t *httpd_body(const httpd_req *r, size_t *len)
{
    *len = r->len;
    return r->body;
}

int httpd_is_head(const httpd_req *r)
{
    return r->is_head;
}

const char *httpd_peer(const httpd_req *r)
{
    httpd_req *w = (httpd_req *)r;   /* the cache is filled on first use */
    if (w->peer[0])
        return w->peer;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa && sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)sa;
        inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
        port = ntohs(sin->sin_port);
        snprintf(w->peer, sizeof(w->peer), "%s:%u", ip, port);
    } else if (sa && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)sa;
        inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
        port = ntohs(sin6->sin6_port);
        snprintf(w->peer, sizeof(w->peer), "[%s]:%u", ip, port);
    } else {
        snprintf(w->peer, sizeof(w->peer), "?");
    }
    return w->peer;
}

void httpd_add_header(httpd_req *r, const char *name, const char *value)
{
    if (r->nhdrs == r->caphdrs) {
        r->caphdrs = r->caphdrs ? r->caphdrs * 2 : 8;
        r->hdrs = xrealloc(r->hdrs, r->caphdrs * sizeof(*r->hdrs));
    }
    r->hdrs[r->nhdrs].name = xstrdup(name);
    r->hdrs[r->nhdrs].value = xstrdup(value);
    r->nhdrs++;
}

void httpd_reply(httpd_req *r, int status, const char *content_type, void *body, size_t len)
{
    if (!begin_reply(r, status)) {
        free(body);
        return;
    }
    r->ctype = content_type;
    r->rbody = body;
    r->rlen = len;
    r->rbody_owned = body != NULL;
    if (!body && len && !r->is_head) {
        log_error("httpd: %s %s: reply of %zu bytes without a body", r->method, r->path, len);
        r->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        r->rlen = 0;
    }
}

void httpd_reply_static(httpd_req *r, int status, const char *content_type,
                        const void *body, size_t len)
{
    if (!begin_reply(r, status))
        return;
    r->ctype = content_type;
    r->rbody = (void *)body;
    r->rlen = len;
    r->rbody_owned = 0;
    if (!body && len && !r->is_head) {
        log_error("httpd: %s %s: reply of %zu bytes without a body", r->method, r->path, len);
        r->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        r->rlen = 0;
    }
}

void httpd_reply_text(httpd_req *r, int status, const char *text)
{
    char *s = xasprintf("%s\n", text ? text : "");
    httpd_reply(r, status, "text/plain", s, strlen(s));
}

void httpd_reply_err(httpd_req *r, int err, const char *detail)
{
    if (err >= 0) {
        log_error("httpd: %s %s: error reply with code %d", r->method, r->path, err);
        err = -EIO;
    }
    int status = cairn_err_to_http(err);
    if (err > -CAIRN_ERRBASE) {
        const char *name = cairn_errno_name(-err);
        if (name)
            httpd_add_header(r, "Cairn-Errno", name);
    }
    if (status == MHD_HTTP_SERVICE_UNAVAILABLE && !has_header(r, "Retry-After"))
        httpd_add_header(r, "Retry-After", RETRY_AFTER_S);
    if (status == MHD_HTTP_NOT_MODIFIED || status == MHD_HTTP_NO_CONTENT) {
        httpd_reply_static(r, status, NULL, NULL, 0);
        return;
    }
    char *s = detail && detail[0] ? xasprintf("%s: %s\n", cairn_strerror(err), detail)
                                  : xasprintf("%s\n", cairn_strerror(err));
    /* one line: a detail may quote client input */
    size_t n = strlen(s);
    for (size_t i = 0; i + 1 < n; i++)
        if (s[i] == '\n' || s[i] == '\r')
            s[i] = ' ';
    httpd_reply(r, status, "text/plain", s, n);
}
