/*
 * httpc.c — HTTP/1.1 client helper over libcurl (contract: httpc.h).
 *
 * Each easy handle keeps its own connection cache, so the pool hands out
 * the most recently returned handle first (a stack): a caller doing
 * sequential requests keeps reusing one warm connection.
 *
 * With cfg.lean, requests go over plain sockets instead (see "the lean
 * transport" below); the same pool bound and stack order apply to its
 * connections.
 *
 * Locks: c->lock guards the idle stacks and the count of created handles
 * (or connections); it is never held while a request runs.
 */
#include "common/httpc.h"

#include <curl/curl.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

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

    int lean;                     /* plain-socket transport */

    pthread_mutex_t lock;
    pthread_cond_t cond;          /* signalled when a handle is returned */
    CURL **idle;                  /* stack of idle handles */
    unsigned nidle;
    unsigned created;             /* handles, or connections when lean */
    struct lconn **lidle;         /* lean: stack of idle connections */
    unsigned lnidle;
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
    c->lean = cfg ? cfg->lean : 0;
    c->idle = xcalloc(c->max_handles, sizeof(*c->idle));
    c->lidle = xcalloc(c->max_handles, sizeof(*c->lidle));
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cond, NULL);
    return c;
}

static void lean_close_idle(httpc *c);
static int lean_do(httpc *c, const char *method, const char *url, const char *const *headers,
                   const void *body, size_t len, int timeout_ms, httpc_resp *resp);

void httpc_free(httpc *c)
{
    if (!c)
        return;
    if (c->nidle + c->lnidle != c->created)
        log_error("httpc: freed with %u requests still running",
                  c->created - c->nidle - c->lnidle);
    for (unsigned i = 0; i < c->nidle; i++)
        curl_easy_cleanup(c->idle[i]);
    free(c->idle);
    lean_close_idle(c);
    free(c->lidle);
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

    if (c->lean)
        return lean_do(c, method, url, headers, body, len, timeout_ms, resp);
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

/* ---- the lean transport ---------------------------------------------
 *
 * One request: a connection from the pool (the newest idle one to the same
 * host:port that is still open and quiet, else a new one), the head and
 * body sent with one sendmsg, the answer read into a stream buffer and
 * parsed here. Answers are HTTP/1.0 or 1.1: interim 1xx answers are
 * skipped; a body is Content-Length bytes, chunked, or (without either)
 * everything until the server closes. Headers are captured by on_header
 * and bytes stored by on_body, as for curl. A connection goes back to the
 * pool only after a complete answer with nothing after it and no
 * "Connection: close".
 */

#define LEAN_HEAD_MAX (64u << 10)   /* status line and headers of one answer */
#define LEAN_LINE_MAX 4096u         /* a chunk-size or trailer line */
#define LEAN_READ 16384u            /* bytes asked of recv at a time */

typedef struct lconn {
    int fd;                     /* -1: not connected yet */
    char key[300];              /* "host:port" */
} lconn;

typedef struct lurl {
    char host[256];
    char port[8];
    char key[300];              /* the authority: "host:port", "[v6]:port" */
    const char *path;
} lurl;

/* Parse "http://host[:port][/path]" (host may be "[v6 address]"). */
static int lean_url(const char *url, lurl *u)
{
    if (strncmp(url, "http://", 7) != 0)
        return -EINVAL;
    const char *h = url + 7;
    size_t hl = strcspn(h, "/?#");
    if (h[hl] == '#')
        return -EINVAL;
    u->path = h[hl] ? h + hl : "/";
    for (const char *p = u->path; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return -EINVAL;
    const char *host = h, *hend, *port = NULL;
    if (hl && h[0] == '[') {
        const char *rb = memchr(h, ']', hl);
        if (!rb)
            return -EINVAL;
        host = h + 1;
        hend = rb;
        if (rb + 1 < h + hl) {
            if (rb[1] != ':')
                return -EINVAL;
            port = rb + 2;
        }
    } else {
        const char *colon = memchr(h, ':', hl);
        hend = colon ? colon : h + hl;
        port = colon ? colon + 1 : NULL;
    }
    size_t n = (size_t)(hend - host);
    if (n == 0 || n >= sizeof(u->host))
        return -EINVAL;
    memcpy(u->host, host, n);
    u->host[n] = 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)u->host[i] <= ' ' || u->host[i] == '@' || u->host[i] == 0x7f)
            return -EINVAL;
    size_t pn = port ? (size_t)(h + hl - port) : 0;
    if (port && (pn == 0 || pn > 5))
        return -EINVAL;
    unsigned long pv = 80;
    if (port) {
        pv = 0;
        for (size_t i = 0; i < pn; i++) {
            if (port[i] < '0' || port[i] > '9')
                return -EINVAL;
            pv = pv * 10 + (unsigned long)(port[i] - '0');
        }
        if (pv == 0 || pv > 65535)
            return -EINVAL;
    }
    snprintf(u->port, sizeof(u->port), "%lu", pv);
    snprintf(u->key, sizeof(u->key), strchr(u->host, ':') ? "[%s]:%s" : "%s:%s", u->host,
             u->port);
    return 0;
}

/* Wait for events on fd until deadline (monotonic ms): 0, or -ETIMEDOUT. */
static int lean_wait(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - now_mono_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)MIN(left, (int64_t)INT32_MAX));
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -EIO;
    }
}

static int connect_errno(int e)
{
    if (e == EHOSTUNREACH || e == ENETUNREACH)
        return -EHOSTUNREACH;
    if (e == ETIMEDOUT)
        return -ETIMEDOUT;
    return -ECONNREFUSED;
}

static int lean_connect(httpc *c, const lurl *u, int64_t deadline, int *out)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    if (getaddrinfo(u->host, u->port, &hints, &ai) != 0 || !ai)
        return -EHOSTUNREACH;
    int64_t cdl = MIN(deadline, now_mono_ms() + c->connect_timeout_ms);
    int rc = -ECONNREFUSED;
    for (struct addrinfo *a = ai; a; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            rc = connect_errno(errno);
            continue;
        }
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
        int e = connect(fd, a->ai_addr, a->ai_addrlen) == 0 ? 0 : errno;
        if (e == EINPROGRESS) {
            int w = lean_wait(fd, POLLOUT, cdl);
            socklen_t sl = sizeof(e);
            if (w < 0)
                e = ETIMEDOUT;
            else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &sl) < 0)
                e = errno;
        }
        if (e == 0) {
            freeaddrinfo(ai);
            *out = fd;
            return 0;
        }
        close(fd);
        rc = connect_errno(e);
    }
    freeaddrinfo(ai);
    return rc;
}

static void lean_drop(httpc *c, lconn *k)
{
    if (k->fd >= 0)
        close(k->fd);
    free(k);
    pthread_mutex_lock(&c->lock);
    c->created--;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

/* An idle connection the server has closed (or written to unasked). */
static int lean_stale(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
    return poll(&p, 1, 0) != 0;
}

/* A connection for u: *reused tells whether it is an open one. fresh: a
 * new one, never an idle one. */
static lconn *lean_acquire(httpc *c, const lurl *u, int fresh, int *reused)
{
    for (;;) {
        lconn *k = NULL, *evict = NULL;
        pthread_mutex_lock(&c->lock);
        for (;;) {
            for (unsigned i = fresh ? 0 : c->lnidle; i-- > 0;) {
                if (strcmp(c->lidle[i]->key, u->key) == 0) {
                    k = c->lidle[i];
                    memmove(&c->lidle[i], &c->lidle[i + 1], (c->lnidle - i - 1) * sizeof(*c->lidle));
                    c->lnidle--;
                    break;
                }
            }
            if (k || c->created < c->max_handles)
                break;
            if (c->lnidle) {
                /* the oldest idle connection (to another server, or any
                 * when a fresh one is wanted) */
                evict = c->lidle[0];
                memmove(&c->lidle[0], &c->lidle[1], (c->lnidle - 1) * sizeof(*c->lidle));
                c->lnidle--;
                c->created--;
                break;
            }
            pthread_cond_wait(&c->cond, &c->lock);
        }
        if (!k)
            c->created++;
        pthread_mutex_unlock(&c->lock);
        if (evict) {
            close(evict->fd);
            free(evict);
        }
        if (!k) {
            k = xcalloc(1, sizeof(*k));
            k->fd = -1;
            snprintf(k->key, sizeof(k->key), "%s", u->key);
            *reused = 0;
            return k;
        }
        if (!lean_stale(k->fd)) {
            *reused = 1;
            return k;
        }
        lean_drop(c, k);
    }
}

static void lean_release(httpc *c, lconn *k, int keep)
{
    if (!keep || k->fd < 0) {
        lean_drop(c, k);
        return;
    }
    pthread_mutex_lock(&c->lock);
    c->lidle[c->lnidle++] = k;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static void lean_close_idle(httpc *c)
{
    for (unsigned i = 0; i < c->lnidle; i++) {
        close(c->lidle[i]->fd);
        free(c->lidle[i]);
    }
    c->created -= c->lnidle;
    c->lnidle = 0;
}

static int lean_send(int fd, const buf *head, const void *body, size_t len, int64_t deadline)
{
    size_t off = 0, total = head->len + len;
    while (off < total) {
        struct iovec iov[2];
        size_t n = 0;
        if (off < head->len) {
            iov[n++] = (struct iovec){head->data + off, head->len - off};
            if (len)
                iov[n++] = (struct iovec){(void *)body, len};
        } else {
            iov[n++] = (struct iovec){(uint8_t *)body + (off - head->len), total - off};
        }
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = n};
        ssize_t w = sendmsg(fd, &mh, MSG_NOSIGNAL);
        if (w > 0) {
            off += (size_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int rc = lean_wait(fd, POLLOUT, deadline);
            if (rc < 0)
                return rc;
        } else {
            return -ECONNRESET;
        }
    }
    return 0;
}

/* The bytes of an answer as they arrive: data[pos, len) not consumed yet. */
typedef struct lstream {
    int fd;
    int64_t deadline;
    uint8_t *data;
    size_t pos, len, cap;
    int any;                    /* a byte of the answer arrived */
} lstream;

/* Receive more bytes (keeping what is not consumed): 0, 1 at the end of
 * the stream, or a negative error. */
static int ls_fill(lstream *s)
{
    if (s->pos == s->len) {
        s->pos = s->len = 0;
    } else if (s->pos > 0 && s->cap - s->len < LEAN_READ) {
        memmove(s->data, s->data + s->pos, s->len - s->pos);
        s->len -= s->pos;
        s->pos = 0;
    }
    if (s->cap - s->len < LEAN_READ) {
        size_t ncap = s->cap ? s->cap * 2 : LEAN_READ;
        while (ncap - s->len < LEAN_READ)
            ncap *= 2;
        uint8_t *nd = realloc(s->data, ncap);
        if (!nd)
            return -ENOMEM;
        s->data = nd;
        s->cap = ncap;
    }
    for (;;) {
        ssize_t n = recv(s->fd, s->data + s->len, s->cap - s->len, 0);
        if (n > 0) {
            s->len += (size_t)n;
            s->any = 1;
            return 0;
        }
        if (n == 0)
            return 1;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int rc = lean_wait(s->fd, POLLIN, s->deadline);
            if (rc < 0)
                return rc;
            continue;
        }
        return -ECONNRESET;
    }
}

/* Make data[pos, pos + *n) one whole line ending in CRLF (at most max
 * bytes); *n includes the CRLF. */
static int ls_line(lstream *s, size_t max, size_t *n)
{
    size_t from = 0;
    for (;;) {
        size_t have = s->len - s->pos;
        const uint8_t *p = s->data ? s->data + s->pos : NULL;
        const uint8_t *e = have > from ? memmem(p + from, have - from, "\r\n", 2) : NULL;
        if (e) {
            *n = (size_t)(e - p) + 2;
            return *n <= max ? 0 : CAIRN_EPROTO;
        }
        if (have > max)
            return CAIRN_EPROTO;
        from = have ? have - 1 : 0;
        int rc = ls_fill(s);
        if (rc)
            return rc > 0 ? -ECONNRESET : rc;
    }
}

/* Hand n bytes of body to on_body (all of it when n is SIZE_MAX: until the
 * server closes). */
static int ls_body(lstream *s, struct xfer *x, size_t n)
{
    while (n > 0) {
        if (s->pos == s->len) {
            int rc = ls_fill(s);
            if (rc > 0)
                return n == SIZE_MAX ? 0 : -ECONNRESET;
            if (rc < 0)
                return rc;
        }
        size_t k = MIN(n, s->len - s->pos);
        if (on_body((char *)s->data + s->pos, 1, k, x) != k)
            return x->too_big ? -EFBIG : -ENOMEM;
        s->pos += k;
        if (n != SIZE_MAX)
            n -= k;
    }
    return 0;
}

static int hex_digit(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch |= 0x20;
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

static int ls_chunked(lstream *s, struct xfer *x)
{
    for (;;) {
        size_t n;
        int rc = ls_line(s, LEAN_LINE_MAX, &n);
        if (rc)
            return rc;
        const char *p = (const char *)s->data + s->pos;
        uint64_t size = 0;
        size_t i = 0;
        for (; i < n - 2 && hex_digit(p[i]) >= 0; i++) {
            if (size >> 60)
                return CAIRN_EPROTO;
            size = size * 16 + (uint64_t)hex_digit(p[i]);
        }
        if (i == 0 || (i < n - 2 && p[i] != ';' && p[i] != ' ' && p[i] != '\t'))
            return CAIRN_EPROTO;
        s->pos += n;
        if (size == 0)
            break;
        if (size > x->max - x->resp->len)
            return -EFBIG;
        rc = ls_body(s, x, (size_t)size);
        if (rc)
            return rc;
        rc = ls_line(s, 2, &n);   /* the CRLF after the data */
        if (rc)
            return rc;
        s->pos += n;
    }
    /* trailers, up to the empty line */
    for (;;) {
        size_t n;
        int rc = ls_line(s, LEAN_LINE_MAX, &n);
        if (rc)
            return rc;
        s->pos += n;
        if (n == 2)
            return 0;
    }
}

/* Is the comma-separated header value v (n bytes) holding token t? */
static int has_token(const char *v, size_t n, const char *t)
{
    size_t tl = strlen(t), i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t st = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (e > st && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - st == tl && strncasecmp(v + st, t, tl) == 0)
            return 1;
    }
    return 0;
}

/* Read one answer (skipping interim ones). *keep: the connection may carry
 * another request. */
static int lean_answer(lstream *s, struct xfer *x, int *keep)
{
    httpc_resp *r = x->resp;
    *keep = 0;
    for (;;) {
        /* the head, whole */
        size_t hlen;
        for (size_t from = 0;;) {
            size_t have = s->len - s->pos;
            const uint8_t *p = s->data ? s->data + s->pos : NULL;
            if (have >= 5 && memcmp(p, "HTTP/", 5) != 0)
                return CAIRN_EPROTO;
            const uint8_t *e = have > from ? memmem(p + from, have - from, "\r\n\r\n", 4) : NULL;
            if (e) {
                hlen = (size_t)(e - p) + 4;
                break;
            }
            if (have > LEAN_HEAD_MAX)
                return CAIRN_EPROTO;
            from = have > 3 ? have - 3 : 0;
            int rc = ls_fill(s);
            if (rc > 0)
                return have ? CAIRN_EPROTO : -ECONNRESET;
            if (rc < 0)
                return rc;
        }
        if (hlen > LEAN_HEAD_MAX)
            return CAIRN_EPROTO;
        char *h = (char *)s->data + s->pos;
        char *eol = memmem(h, hlen, "\r\n", 2);
        size_t sl = (size_t)(eol - h);
        /* "HTTP/1.x NNN[ reason]" */
        if (sl < 12 || memcmp(h, "HTTP/1.", 7) != 0 || (h[7] != '0' && h[7] != '1') ||
            h[8] != ' ' || h[9] < '1' || h[9] > '9' || h[10] < '0' || h[10] > '9' ||
            h[11] < '0' || h[11] > '9' || (sl > 12 && h[12] != ' '))
            return CAIRN_EPROTO;
        int status = (h[9] - '0') * 100 + (h[10] - '0') * 10 + (h[11] - '0');
        int close_after = h[7] == '0', chunked = 0;
        long long cl = -1;
        on_header(h, 1, sl + 2, x);
        for (char *line = eol + 2; line < h + hlen - 2;) {
            char *le = memmem(line, (size_t)(h + hlen - line), "\r\n", 2);
            size_t n = (size_t)(le - line);
            char *colon = memchr(line, ':', n);
            if (!colon || colon == line || line[0] == ' ' || line[0] == '\t')
                return CAIRN_EPROTO;
            on_header(line, 1, n + 2, x);
            const char *v = colon + 1;
            size_t vn = n - (size_t)(v - line);
            while (vn && (*v == ' ' || *v == '\t')) {
                v++;
                vn--;
            }
            while (vn && (v[vn - 1] == ' ' || v[vn - 1] == '\t'))
                vn--;
            size_t nl = (size_t)(colon - line);
            if (nl == 14 && strncasecmp(line, "Content-Length", 14) == 0) {
                long long val = 0;
                if (vn == 0 || vn > 18)
                    return CAIRN_EPROTO;
                for (size_t i = 0; i < vn; i++) {
                    if (v[i] < '0' || v[i] > '9')
                        return CAIRN_EPROTO;
                    val = val * 10 + (v[i] - '0');
                }
                if (cl >= 0 && cl != val)
                    return CAIRN_EPROTO;
                cl = val;
            } else if (nl == 17 && strncasecmp(line, "Transfer-Encoding", 17) == 0) {
                /* no other coding is asked for or understood */
                if (vn != 7 || strncasecmp(v, "chunked", 7) != 0)
                    return CAIRN_EPROTO;
                chunked = 1;
            } else if (nl == 10 && strncasecmp(line, "Connection", 10) == 0) {
                if (has_token(v, vn, "close"))
                    close_after = 1;
            }
            line = le + 2;
        }
        s->pos += hlen;
        if (status < 200) {
            if (status == 101)
                return CAIRN_EPROTO;
            continue;
        }
        r->status = status;
        int rc = 0;
        if (x->is_head || status == 204 || status == 304) {
            rc = 0;
        } else if (chunked) {
            rc = ls_chunked(s, x);
        } else if (cl >= 0) {
            if ((uint64_t)cl > x->max)
                return -EFBIG;
            rc = ls_body(s, x, (size_t)cl);
        } else {
            close_after = 1;
            rc = ls_body(s, x, SIZE_MAX);
        }
        if (rc)
            return rc;
        *keep = !close_after && s->pos == s->len;
        return 0;
    }
}

static int lean_do(httpc *c, const char *method, const char *url, const char *const *headers,
                   const void *body, size_t len, int timeout_ms, httpc_resp *resp)
{
    lurl u;
    int rc = lean_url(url, &u);
    if (rc)
        return rc;
    if (!method[0] || strcspn(method, " \t\r\n") != strlen(method))
        return -EINVAL;
    struct xfer x = {.resp = resp, .max = c->max_resp, .is_head = strcmp(method, "HEAD") == 0};
    int send_body = strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
                    (len > 0 && !x.is_head);
    buf head = {0};
    buf_printf(&head, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, u.path, u.key);
    for (const char *const *hp = headers; hp && *hp; hp++) {
        const char *colon = strchr(*hp, ':');
        if (!colon || colon == *hp || strpbrk(*hp, "\r\n")) {
            buf_free(&head);
            return -EINVAL;
        }
        if (colon[strspn(colon + 1, " \t") + 1] == 0)
            continue;   /* "Name:" (curl's way of removing a header): nothing to send */
        buf_printf(&head, "%s\r\n", *hp);
    }
    if (send_body)
        buf_printf(&head, "Content-Length: %zu\r\n", len);
    buf_printf(&head, "\r\n");

    int64_t deadline = now_mono_ms() + (timeout_ms > 0 ? timeout_ms : 30000);
    lstream s = {0};
    for (int attempt = 0;; attempt++) {
        int reused = 0, keep = 0;
        lconn *k = lean_acquire(c, &u, attempt > 0, &reused);
        if (k->fd < 0) {
            rc = lean_connect(c, &u, deadline, &k->fd);
            if (rc) {
                lean_release(c, k, 0);
                /* a first try on a reused connection may have arrived */
                if (attempt > 0 && rc != -ETIMEDOUT)
                    rc = -ECONNRESET;
                break;
            }
        }
        s = (lstream){.fd = k->fd, .deadline = deadline, .data = s.data, .cap = s.cap};
        rc = lean_send(k->fd, &head, body, send_body ? len : 0, deadline);
        if (rc == 0)
            rc = lean_answer(&s, &x, &keep);
        if (rc == -ECONNRESET && reused && !s.any && attempt == 0) {
            /* the server closed a kept-alive connection before answering:
             * send once more on a fresh one, as curl does */
            lean_release(c, k, 0);
            free(resp->body);
            memset(resp, 0, sizeof(*resp));
            resp->retry_after_s = -1;
            x = (struct xfer){.resp = resp, .max = c->max_resp, .is_head = x.is_head};
            continue;
        }
        lean_release(c, k, rc == 0 && keep);
        break;
    }
    free(s.data);
    buf_free(&head);
    if (rc == 0) {
        if (x.bad_etag)
            rc = CAIRN_EPROTO;
        else if (body_terminate(&x))
            rc = -ENOMEM;
    }
    if (rc) {
        free(resp->body);
        memset(resp, 0, sizeof(*resp));
        resp->retry_after_s = -1;
    }
    return rc;
}
