/*
 * httpd.h — HTTP/1.1 server helper over libmicrohttpd.
 *
 * Threads: one thread per connection (MHD_USE_THREAD_PER_CONNECTION), so a
 * handler may block (fsync, WAL group-commit wait) without stalling other
 * connections; keep-alive is on. Handlers run on connection threads and must
 * be thread-safe. httpd_start/httpd_stop are called from the main thread.
 *
 * Routing: a table of {method, path prefix, handler, name}. The first entry
 * whose method matches and whose prefix is a prefix of the path wins (exact
 * match when the prefix does not end in '/'). Unknown path: 404; known path,
 * wrong method: 405 with Allow. The name labels /metrics series (routes
 * sharing a name share series; "metrics" is the built-in route and "none"
 * counts requests that matched no route).
 *
 * Bodies: the helper buffers the request body, bounded per route
 * (max_body; a Content-Length above it is answered 413 without keeping any
 * byte; a chunked body that grows past it likewise). A body shorter than its
 * Content-Length (client hung up) never reaches the handler. Bytes of bodies
 * being received or handled across all connections are capped by
 * max_inflight_body: past the cap the request is answered 503 with
 * Retry-After (seconds) and the handler is not called. A body is counted
 * from its first call (its whole Content-Length at once) until its handler
 * returns, so a client that has read the answer finds the bytes released. A
 * single body is always admitted when no other is in flight, so any body up
 * to max_body can make progress. 413 answers carry Cairn-Errno: EFBIG.
 * A 400/404/405 is answered at once and the connection is closed after it,
 * without reading the body. A 413 or 503 decided from the headers is
 * answered once the body the client is sending has been read and dropped
 * (a client that is still sending would read a reset instead of the
 * answer), unless it waits for "100 Continue" or the body is above 8 MiB:
 * then at once, closing the connection. libmicrohttpd cannot answer in the
 * middle of a body, so a chunked body that passes a limit is read and
 * dropped (up to 8 MiB more, then the connection is cut) and answered when
 * it ends.
 *
 * Responses: a handler must call exactly one httpd_reply* before returning
 * (if it does not, the helper answers 500 and logs it). Headers added with
 * httpd_add_header go out with the reply (added before or after the
 * httpd_reply* call). httpd_reply takes ownership of a malloc'd body
 * (free()d after sending); httpd_reply_static does not, and its body must
 * outlive the response (static storage). A second reply is logged and
 * dropped (the first one goes out). For a HEAD request a reply may pass
 * body NULL with len > 0: the answer then carries Content-Length: len and no
 * body (e.g. a chunk's size without reading the chunk).
 *
 * Built-in: GET /metrics is served by the helper: per-route request counts
 * by status (cairn_http_requests_total{route,code}), body bytes in/out
 * (cairn_http_bytes_in_total, cairn_http_bytes_out_total), a latency
 * histogram from headers received to answer sent
 * (cairn_http_request_seconds{route}, 0.5 ms .. 10 s), in-flight body bytes
 * (cairn_http_inflight_body_bytes), accepted and open connections
 * (cairn_http_connections_total, cairn_http_connections_open), then
 * whatever the application's metrics callback appends (Prometheus text).
 * Every response, the helper's own answers included, carries the headers
 * that config.global_headers adds (e.g. the cluster epoch), called once per
 * response on the connection's thread.
 */
#ifndef CAIRN_HTTPD_H
#define CAIRN_HTTPD_H

#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

typedef struct httpd httpd;
typedef struct httpd_req httpd_req;

typedef void (*httpd_handler)(httpd_req *req, void *ctx);

typedef struct httpd_route {
    const char *method;      /* "GET", "PUT", ...; HEAD is served by GET
                                routes unless a HEAD route exists first */
    const char *prefix;      /* "/chunks/" */
    httpd_handler handler;
    const char *name;        /* metrics label, e.g. "chunk_put" */
    uint64_t max_body;       /* 0 = no body allowed (411/413 if one comes) */
} httpd_route;

typedef struct httpd_config {
    const char *host;        /* bind address, e.g. "127.0.0.1" */
    uint16_t port;           /* 0 = any free port (see httpd_port) */
    const httpd_route *routes;
    size_t nroutes;
    void *ctx;               /* passed to handlers and callbacks */
    uint64_t max_inflight_body;  /* 0 = unlimited */
    unsigned max_connections;    /* 0 = 1024 */
    unsigned conn_timeout_s;     /* idle keep-alive timeout; 0 = 120 */
    /* Each connection's memory for headers and body pieces, 0 = 128 KiB
     * (large bodies read in big pieces). libmicrohttpd zeroes it between
     * requests, so servers of small requests keep it small. */
    size_t conn_memory;
    /* Appends application metrics (Prometheus text) to out. May be NULL. */
    void (*metrics)(buf *out, void *ctx);
    /* Adds per-response headers (e.g. Cairn-Epoch). May be NULL. */
    void (*global_headers)(httpd_req *req, void *ctx);
} httpd_config;

/* Starts serving; the config (routes included) must outlive the server.
 * Returns NULL with a logged reason on failure (e.g. port in use). */
httpd *httpd_start(const httpd_config *cfg);
/* Actual bound port (useful with port 0). */
uint16_t httpd_port(const httpd *h);
/* Stops accepting, waits for handlers to finish, frees everything. */
void httpd_stop(httpd *h);

/* Request accessors (valid during the handler call). */
const char *httpd_method(const httpd_req *r);
const char *httpd_path(const httpd_req *r);        /* URL path, decoded */
const char *httpd_header(const httpd_req *r, const char *name); /* or NULL */
const char *httpd_query(const httpd_req *r, const char *key);   /* or NULL */
const uint8_t *httpd_body(const httpd_req *r, size_t *len);
int httpd_is_head(const httpd_req *r);
const char *httpd_peer(const httpd_req *r);         /* "ip:port" */

void httpd_add_header(httpd_req *r, const char *name, const char *value);
/* Takes ownership of body (malloc'd, may be NULL when len == 0). */
void httpd_reply(httpd_req *r, int status, const char *content_type, void *body, size_t len);
void httpd_reply_static(httpd_req *r, int status, const char *content_type,
                        const void *body, size_t len);
/* Plain-text reply: "<text>\n", content type text/plain. */
void httpd_reply_text(httpd_req *r, int status, const char *text);
/* Error reply for a negative code: status from cairn_err_to_http, header
 * Cairn-Errno: <ENAME> when the code is an errno, text body with the
 * message (one line; detail may be NULL). A 503 also gets Retry-After
 * unless the handler added one; a 304 has no body. */
void httpd_reply_err(httpd_req *r, int err, const char *detail);

#endif
