/*
 * httpc.c — HTTP/1.1 client helper over libcurl (contract: httpc.h).
 *
 * Each easy handle keeps its own connection cache, so the pool hands out
 * the most recently returned handle first (a stack): a caller doing
 * sequential requests keeps reusing one warm connection.
 *
 * Locks: c->lock guards the idle stack and the count of created handles;
 * it is never held while a request runs.
 */
#include "common/httpc.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

/* A Content-Length is trusted for one up-front allocation only up to this
 * size; a larger body grows the buffer as bytes actually arrive. */
#define PREALLOC_MAX (64u << 20)

struct httpc {
    unsigned max_handles;
    long connect_timeout_ms;
    uint64_t max_resp;
    long recv_buf;                /* 0: curl's default */

    pthread_mutex_t lock;
    pthread_cond_t cond;          /* signalled when a handle is returned */
    CURL **idle;                  /* stack of idle handles */
    unsigned nidle;
    unsigned created;
};

/* State of one transfer, seen by the curl callbacks. */
struct xfer {
    httpc_resp *resp;
    uint64_t max;
    int is_head;
    size_t cap;
    int too_big;
    int nomem;
    int bad_etag;
    unsigned sent;           /* times the request went out on a connection */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

httpc *httpc_new(const httpc_config *cfg)
{
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK) {
        log_error("httpc: curl_global_init: %s", curl_easy_strerror(curl_init_rc));
        return NULL;
    }
    httpc *c = xcalloc(1, sizeof(*c));
    c->max_handles = cfg && cfg->handles ? cfg->handles : 16;
    c->connect_timeout_ms = cfg && cfg->connect_timeout_ms ? (long)cfg->connect_timeout_ms : 2000;
    c->max_resp = cfg && cfg->max_resp ? cfg->max_resp : (uint64_t)256 << 20;
    c->recv_buf = cfg ? (long)cfg->recv_buf : 0;
    c->idle = xcalloc(c->max_handles, sizeof(*c->idle));
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cond, NULL);
    return c;
}

void httpc_free(httpc *c)
{
    if (!c)
        return;
    if (c->nidle != c->created)
        log_error("httpc: freed with %u requests still running", c->created - c->nidle);
    for (unsigned i = 0; i < c->nidle; i++)
        curl_easy_cleanup(c->idle[i]);
    free(c->idle);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static CURL *handle_acquire(httpc *c)
{
    CURL *e = NULL;
    pthread_mutex_lock(&c->lock);
    while (c->nidle == 0 && c->created >= c->max_handles)
        pthread_cond_wait(&c->cond, &c->lock);
    if (c->nidle) {
        e = c->idle[--c->nidle];
    } else {
        c->created++;
    }
    pthread_mutex_unlock(&c->lock);
    if (!e) {
        e = curl_easy_init();
        if (!e) {
            log_error("httpc: curl_easy_init failed (out of memory)");
            abort();
        }
    }
    return e;
}

static void handle_release(httpc *c, CURL *e)
{
    pthread_mutex_lock(&c->lock);
    c->idle[c->nidle++] = e;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

/* Grows the body buffer to hold at least need bytes plus the NUL. */
static int body_reserve(struct xfer *x, size_t need)
{
    if (need + 1 <= x->cap)
        return 0;
    size_t ncap = x->cap ? x->cap * 2 : 16384;
    if (ncap < need + 1)
        ncap = need + 1;
    if (ncap > x->max + 1)
        ncap = x->max + 1;
    uint8_t *nb = realloc(x->resp->body, ncap);
    if (!nb)
        return -ENOMEM;
    x->resp->body = nb;
    x->cap = ncap;
    return 0;
}

/* NUL-terminates the body, allocating one byte for an empty one. */
static int body_terminate(struct xfer *x)
{
    httpc_resp *r = x->resp;
    if (x->cap < r->len + 1) {
        uint8_t *nb = realloc(r->body, r->len + 1);
        if (!nb)
            return -ENOMEM;
        r->body = nb;
        x->cap = r->len + 1;
    }
    r->body[r->len] = 0;
    return 0;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
    struct xfer *x = ud;
    size_t n = size * nmemb;
    httpc_resp *r = x->resp;
    if (n > x->max - r->len) {
        x->too_big = 1;
        return 0;
    }
    if (body_reserve(x, r->len + n)) {
        x->nomem = 1;
        return 0;
    }
    memcpy(r->body + r->len, p, n);
    r->len += n;
    return n;
}

/* Copies the trimmed value of a header line into out (NUL-terminated). */
static size_t header_value(const char *v, size_t n, char *out, size_t outlen)
{
    while (n && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    size_t c = n < outlen - 1 ? n : outlen - 1;
    memcpy(out, v, c);
    out[c] = 0;
    return n;
}

static int header_is(const char *line, size_t n, const char *name, const char **val,
                     size_t *vlen)
{
    size_t k = strlen(name);
    if (n <= k || line[k] != ':' || strncasecmp(line, name, k) != 0)
        return 0;
    *val = line + k + 1;
    *vlen = n - k - 1;
    return 1;
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *ud)
{
    struct xfer *x = ud;
    httpc_resp *r = x->resp;
    size_t n = size * nmemb;
    const char *v;
    size_t vn;
    char tmp[64];

    if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        /* a new response (after a 1xx): forget what an earlier one said */
        r->etag[0] = 0;
        r->errname[0] = 0;
        r->retry_after_s = -1;
        r->epoch = 0;
        x->bad_etag = 0;
        return n;
    }
    if (header_is(line, n, "ETag", &v, &vn)) {
        if (header_value(v, vn, r->etag, sizeof(r->etag)) >= sizeof(r->etag)) {
            /* a cut version vector would make every later CAS fail */
            x->bad_etag = 1;
            r->etag[0] = 0;
        }
    } else if (header_is(line, n, "Cairn-Errno", &v, &vn)) {
        header_value(v, vn, r->errname, sizeof(r->errname));
    } else if (header_is(line, n, "Cairn-Epoch", &v, &vn)) {
        header_value(v, vn, tmp, sizeof(tmp));
        r->epoch = strtoull(tmp, NULL, 10);
    } else if (header_is(line, n, "Retry-After", &v, &vn)) {
        header_value(v, vn, tmp, sizeof(tmp));
        char *end;
        long s = strtol(tmp, &end, 10);
        if (end != tmp && *end == 0) {
            r->retry_after_s = s < 0 ? 0 : s > 86400 ? 86400 : (int)s;
        } else {
            time_t t = curl_getdate(tmp, NULL);
            if (t != -1) {
                time_t now = time(NULL);
                r->retry_after_s = t > now ? (int)MIN(t - now, 86400) : 0;
            }
        }
    } else if (!x->is_head && header_is(line, n, "Content-Length", &v, &vn)) {
        header_value(v, vn, tmp, sizeof(tmp));
        unsigned long long cl = strtoull(tmp, NULL, 10);
        /* one allocation for the whole body; a failure here is retried
         * (and reported) when bytes arrive */
        if (cl > 0 && cl <= x->max && cl <= PREALLOC_MAX)
            (void)body_reserve(x, (size_t)cl);
    }
    return n;
}

/* Called by curl right before it sends the request on a connection. */
static int on_prereq(void *arg, char *conn_primary_ip, char *conn_local_ip, int conn_primary_port,
                     int conn_local_port)
{
    (void)conn_primary_ip;
    (void)conn_local_ip;
    (void)conn_primary_port;
    (void)conn_local_port;
    ((struct xfer *)arg)->sent++;
    return CURL_PREREQFUNC_OK;
}

static int map_curl_error(CURL *e, CURLcode rc, const struct xfer *x)
{
    long oserr = 0;
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
        /* curl sends a request again on a fresh connection by itself when
         * a reused one dies before any answer; if that connect then fails,
         * the request may still have arrived the first time. */
        if (x->sent)
            return -ECONNRESET;
        curl_easy_getinfo(e, CURLINFO_OS_ERRNO, &oserr);
        if (oserr == EHOSTUNREACH || oserr == ENETUNREACH)
            return -EHOSTUNREACH;
        if (oserr == ETIMEDOUT)
            return -ETIMEDOUT;
        return -ECONNREFUSED;
    case CURLE_OPERATION_TIMEDOUT:
        return -ETIMEDOUT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return -EHOSTUNREACH;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
        return -ECONNRESET;
    case CURLE_FILESIZE_EXCEEDED:
        return -EFBIG;
    case CURLE_WRITE_ERROR:
        if (x->too_big)
            return -EFBIG;
        return x->nomem ? -ENOMEM : -EIO;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return CAIRN_EPROTO;
    case CURLE_UNSUPPORTED_PROTOCOL: {
        /* after a connection this is a reply curl cannot parse as HTTP/1.x
         * (it refuses HTTP/0.9); before one it is an unknown URL scheme */
        char *ip = NULL;
        curl_easy_getinfo(e, CURLINFO_PRIMARY_IP, &ip);
        return ip && ip[0] ? CAIRN_EPROTO : -EINVAL;
    }
    case CURLE_URL_MALFORMAT:
        return -EINVAL;
    case CURLE_OUT_OF_MEMORY:
        return -ENOMEM;
    default:
        return -EIO;
    }
}

static int has_header(const char *const *headers, const char *name)
{
    size_t k = strlen(name);
    for (; headers && *headers; headers++)
        if (strncasecmp(*headers, name, k) == 0 && ((*headers)[k] == ':' || (*headers)[k] == ';'))
            return 1;
    return 0;
}

int httpc_do(httpc *c, const char *method, const char *url, const char *const *headers,
             const void *body, size_t len, int timeout_ms, httpc_resp *resp)
{
    struct curl_slist *hl = NULL, *t;
    struct xfer x = {0};
    int ret = 0;

    memset(resp, 0, sizeof(*resp));
    resp->retry_after_s = -1;
    if (!c || !method || !url)
        return -EINVAL;

    x.resp = resp;
    x.max = c->max_resp;
    x.is_head = strcmp(method, "HEAD") == 0;

    int is_get = strcmp(method, "GET") == 0;
    /* POST and PUT always carry a Content-Length (0 for no body); other
     * methods send one only when there is a body */
    int send_body = strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
                    (len > 0 && !x.is_head);

    for (const char *const *hp = headers; hp && *hp; hp++) {
        t = curl_slist_append(hl, *hp);
        if (!t) {
            ret = -ENOMEM;
            goto out_headers;
        }
        hl = t;
    }
    /* "Expect: 100-continue" would cost a round trip per upload */
    t = curl_slist_append(hl, "Expect:");
    if (!t) {
        ret = -ENOMEM;
        goto out_headers;
    }
    hl = t;
    if (send_body && !has_header(headers, "Content-Type")) {
        /* curl would label the body as a form otherwise */
        t = curl_slist_append(hl, "Content-Type:");
        if (!t) {
            ret = -ENOMEM;
            goto out_headers;
        }
        hl = t;
    }

    CURL *e = handle_acquire(c);
    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(timeout_ms > 0 ? timeout_ms : 30000));
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->max_resp);
    if (c->recv_buf > 0)
        curl_easy_setopt(e, CURLOPT_BUFFERSIZE, c->recv_buf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, on_prereq);
    curl_easy_setopt(e, CURLOPT_PREREQDATA, &x);

    if (x.is_head) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (is_get && !send_body) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
        if (send_body) {
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
            /* curl only reads the bytes; "" keeps it from reading stdin
             * when there is no body */
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, body && len ? (const char *)body : "");
        }
        if (strcmp(method, "POST") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    }

    CURLcode rc = curl_easy_perform(e);
    if (rc != CURLE_OK) {
        ret = map_curl_error(e, rc, &x);
    } else {
        long status = 0;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
        resp->status = (int)status;
        if (status < 100 || status > 999 || x.bad_etag)
            ret = CAIRN_EPROTO;
        else if (body_terminate(&x))
            ret = -ENOMEM;
    }
    /* drop our pointers into the stack frame before the handle is reused */
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, NULL);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, NULL);
    curl_easy_setopt(e, CURLOPT_PREREQDATA, NULL);
    handle_release(c, e);

out_headers:
    curl_slist_free_all(hl);
    if (ret) {
        free(resp->body);
        memset(resp, 0, sizeof(*resp));
        resp->retry_after_s = -1;
    }
    return ret;
}

void httpc_resp_free(httpc_resp *resp)
{
    if (!resp)
        return;
    free(resp->body);
    resp->body = NULL;
    resp->len = 0;
}
