/*
 * httpc.h — HTTP/1.1 client helper over libcurl with connection reuse.
 *
 * An httpc is a bounded pool of curl easy handles; each call borrows one,
 * so a connection to a host is reused by later calls (keep-alive). Any
 * number of threads may call httpc_do concurrently; when every handle is
 * busy a caller waits for one (the pool size bounds sockets and memory).
 *
 * httpc_do performs one request with no retries (retry policy belongs to
 * the caller, who knows what is idempotent). It returns 0 when an HTTP
 * response arrived (any status, see resp->status) and a negative code when
 * none did: -ECONNREFUSED, -ETIMEDOUT, -EHOSTUNREACH, -ECONNRESET, CAIRN_EPROTO
 * (malformed response, or an ETag longer than resp->etag holds), -EFBIG
 * (response body above max_resp), and also -EINVAL (bad URL), -ENOMEM,
 * -EIO (any other transport failure). Only -ECONNREFUSED promises that
 * the request never reached the server: curl resends a request on a fresh
 * connection by itself when a reused one dies before answering, and when
 * that connect fails the result is -ECONNRESET. The body is malloc'd into
 * resp->body (NUL-terminated; len excludes it; never NULL after a 0 return,
 * "" when empty) and freed with httpc_resp_free. On a negative return resp holds
 * nothing to free (body NULL, status 0). The response headers ETag,
 * Retry-After (delta seconds or an HTTP date, as seconds from now),
 * Cairn-Errno and Cairn-Epoch are captured when present.
 *
 * Requests: POST and PUT always send Content-Length (0 without a body),
 * other methods only with a body; "Expect: 100-continue" is never sent.
 * Without a Content-Type in headers, none is sent.
 */
#ifndef CAIRN_HTTPC_H
#define CAIRN_HTTPC_H

#include <stddef.h>
#include <stdint.h>

typedef struct httpc httpc;

typedef struct httpc_resp {
    int status;
    uint8_t *body;
    size_t len;
    char etag[300];          /* raw ETag value incl. quotes, "" if none */
    char errname[32];        /* Cairn-Errno, "" if none */
    int retry_after_s;       /* Retry-After seconds, -1 if none */
    uint64_t epoch;          /* Cairn-Epoch, 0 if none */
} httpc_resp;

typedef struct httpc_config {
    unsigned handles;        /* pool size; 0 = 16 */
    unsigned connect_timeout_ms;  /* 0 = 2000 */
    uint64_t max_resp;       /* largest accepted body; 0 = 256 MiB */
    /* Receive buffer of a transfer: large bodies (chunks) arrive in fewer,
     * larger reads with a large one; a small one (0: curl's 16 KiB) is
     * taken from the heap rather than mapped and unmapped per request. */
    unsigned recv_buf;
    /* Plain-socket transport instead of curl, for small requests to one
     * server (metad): one send and, usually, one receive, where
     * curl_easy_perform's transfer loop polls several times a request. http:// URLs only; the contract above
     * holds as for curl (a request on a reused connection that dies before
     * any answer is sent once more on a fresh one). recv_buf is ignored. */
    int lean;
} httpc_config;

httpc *httpc_new(const httpc_config *cfg);
void httpc_free(httpc *c);

/* headers: NULL-terminated array of "Name: value" strings, or NULL.
 * timeout_ms bounds the whole request (0 = 30000). */
int httpc_do(httpc *c, const char *method, const char *url, const char *const *headers,
             const void *body, size_t len, int timeout_ms, httpc_resp *resp);
void httpc_resp_free(httpc_resp *resp);

#endif
