/*
 * api.c — cairn-chunkd's HTTP handlers (see api.h).
 */
#include "server/chunk/api.h"

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/fsrec.h"
#include "common/log.h"
#include "common/rec.h"

#define CHUNKS_PREFIX "/chunks/"
#define RECORD_TYPE "application/x-cairn-record"
/* How long POST /maint/run waits for its pass by default, and at most. */
#define API_MAINT_TIMEOUT_S 300
#define API_MAINT_TIMEOUT_MAX_S 86400

enum { PUT_CREATED, PUT_EXISTED, PUT_MISMATCH, PUT_FAILED, PUT_NRESULTS };
enum { GET_OK, GET_NOTFOUND, GET_CORRUPT, GET_FAILED, GET_NRESULTS };

static const char *const put_result_names[PUT_NRESULTS] = {"created", "existed", "mismatch",
                                                           "error"};
static const char *const get_result_names[GET_NRESULTS] = {"ok", "not_found", "corrupt",
                                                           "error"};

struct chunkapi {
    chunkstore *store;
    uint64_t max_chunk;
    maint *maint;
    char *data_dir;
    httpd_route routes[7];
    size_t nroutes;
    atomic_uint_fast64_t puts[PUT_NRESULTS];
    atomic_uint_fast64_t gets[GET_NRESULTS];
    atomic_uint_fast64_t heads;
    atomic_uint_fast64_t deletes;
    atomic_uint_fast64_t queries;
    atomic_uint_fast64_t queried_ids;
    atomic_uint_fast64_t put_inflight;
    atomic_uint_fast64_t put_bytes;
    atomic_uint_fast64_t get_bytes;
};

/* The id of /chunks/<id>: exactly 64 lowercase hex characters. */
static int api_parse_id(httpd_req *r, uint8_t id[CHUNK_ID_LEN])
{
    const char *path = httpd_path(r);
    size_t plen = strlen(CHUNKS_PREFIX);
    if (strncmp(path, CHUNKS_PREFIX, plen) != 0)
        return -EINVAL;
    const char *hex = path + plen;
    if (strlen(hex) != CHUNK_ID_HEX)
        return -EINVAL;
    for (size_t i = 0; i < CHUNK_ID_HEX; i++) {
        char c = hex[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return -EINVAL;
    }
    return chunk_id_parse(hex, id);
}

static void api_reply_bad_id(httpd_req *r)
{
    httpd_reply_err(r, -EINVAL, "chunk id must be 64 lowercase hex characters");
}

/* The one place where store errors become statuses. */
static void api_reply_err(httpd_req *r, int err, const char *what)
{
    if (err == -EBADMSG) {
        httpd_add_header(r, "Cairn-Errno", "EBADMSG");
        httpd_reply_text(r, 422, "body does not hash to the chunk id; nothing stored");
        return;
    }
    if (err == CAIRN_ECORRUPT) {
        httpd_reply_err(r, err, "stored chunk failed verification and was moved aside");
        return;
    }
    httpd_reply_err(r, err, what);
}

static void api_healthz(httpd_req *r, void *ctx)
{
    (void)ctx;
    httpd_reply_text(r, 200, "ok");
}

static void api_local(httpd_req *r, void *ctx)
{
    chunkapi *a = ctx;
    if (!a->data_dir) {
        httpd_reply_err(r, -ENOENT, "no data directory to share");
        return;
    }
    httpd_reply_text(r, 200, a->data_dir);
}

static void api_put(httpd_req *r, void *ctx)
{
    chunkapi *a = ctx;
    uint8_t id[CHUNK_ID_LEN];
    if (api_parse_id(r, id) < 0) {
        api_reply_bad_id(r);
        return;
    }
    size_t len;
    const uint8_t *body = httpd_body(r, &len);
    if (len > a->max_chunk) {
        httpd_reply_err(r, -EFBIG, "chunk larger than --max-chunk");
        return;
    }
    atomic_fetch_add(&a->put_inflight, 1);
    int rc = chunkstore_put(a->store, id, body, len);
    atomic_fetch_sub(&a->put_inflight, 1);
    switch (rc) {
    case 0:
        atomic_fetch_add(&a->puts[PUT_CREATED], 1);
        atomic_fetch_add(&a->put_bytes, len);
        httpd_reply_text(r, 201, "stored");
        return;
    case 1:
        atomic_fetch_add(&a->puts[PUT_EXISTED], 1);
        httpd_reply_text(r, 200, "already stored");
        return;
    case -EBADMSG:
        atomic_fetch_add(&a->puts[PUT_MISMATCH], 1);
        break;
    default:
        atomic_fetch_add(&a->puts[PUT_FAILED], 1);
        if (rc == -ENOSPC || rc == -EDQUOT)
            log_warn("PUT %s: %s", httpd_path(r), cairn_strerror(rc));
        else
            log_error("PUT %s: %s", httpd_path(r), cairn_strerror(rc));
        break;
    }
    api_reply_err(r, rc, "cannot store chunk");
}

static void api_head(httpd_req *r, chunkapi *a, const uint8_t id[CHUNK_ID_LEN])
{
    uint64_t raw_len;
    atomic_fetch_add(&a->heads, 1);
    int rc = chunkstore_stat(a->store, id, &raw_len);
    if (rc < 0) {
        if (rc != -ENOENT)
            log_error("HEAD %s: %s", httpd_path(r), cairn_strerror(rc));
        api_reply_err(r, rc, "cannot stat chunk");
        return;
    }
    /* A HEAD reply announces the length without bytes: httpd sends the
     * Content-Length of a NULL body of raw_len bytes and no body. */
    httpd_reply_static(r, 200, "application/octet-stream", NULL, (size_t)raw_len);
}

static void api_get(httpd_req *r, void *ctx)
{
    chunkapi *a = ctx;
    uint8_t id[CHUNK_ID_LEN];
    if (api_parse_id(r, id) < 0) {
        api_reply_bad_id(r);
        return;
    }
    if (httpd_is_head(r)) {
        api_head(r, a, id);
        return;
    }
    uint8_t *data;
    size_t len;
    int rc = chunkstore_get(a->store, id, &data, &len);
    if (rc == 0) {
        atomic_fetch_add(&a->gets[GET_OK], 1);
        atomic_fetch_add(&a->get_bytes, len);
        httpd_reply(r, 200, "application/octet-stream", data, len);
        return;
    }
    if (rc == -ENOENT) {
        atomic_fetch_add(&a->gets[GET_NOTFOUND], 1);
    } else if (rc == CAIRN_ECORRUPT) {
        atomic_fetch_add(&a->gets[GET_CORRUPT], 1);
    } else {
        atomic_fetch_add(&a->gets[GET_FAILED], 1);
        log_error("GET %s: %s", httpd_path(r), cairn_strerror(rc));
    }
    api_reply_err(r, rc, "cannot read chunk");
}

static void api_delete(httpd_req *r, void *ctx)
{
    chunkapi *a = ctx;
    uint8_t id[CHUNK_ID_LEN];
    if (api_parse_id(r, id) < 0) {
        api_reply_bad_id(r);
        return;
    }
    int rc = chunkstore_delete(a->store, id);
    if (rc < 0) {
        if (rc != -ENOENT)
            log_error("DELETE %s: %s", httpd_path(r), cairn_strerror(rc));
        api_reply_err(r, rc, "cannot delete chunk");
        return;
    }
    atomic_fetch_add(&a->deletes, 1);
    httpd_reply_static(r, 204, NULL, NULL, 0);
}

/* POST /chunks/query: FSREC_IDS with FT_ID* in, FSREC_IDS with FT_BITS out. */
static void api_query(httpd_req *r, void *ctx)
{
    chunkapi *a = ctx;
    size_t len;
    const uint8_t *body = httpd_body(r, &len);
    recr rec;
    int rc = rec_open(&rec, body, len);
    if (rc < 0 || rec.type != FSREC_IDS) {
        httpd_reply_err(r, -EINVAL, "body must be an FSREC_IDS record");
        return;
    }
    size_t n = rec_count(&rec, FT_ID);
    if (n > CHUNKAPI_QUERY_MAX) {
        httpd_reply_err(r, -E2BIG, "too many ids in one query");
        return;
    }
    uint8_t *bits = n ? xcalloc(n, 1) : NULL;
    rec_iter it;
    uint16_t tag;
    const uint8_t *p;
    size_t plen, i = 0;
    rec_iter_init(&it);
    while (rec_next(&rec, &it, &tag, &p, &plen)) {
        if (tag != FT_ID)
            continue;
        if (plen != CHUNK_ID_LEN) {
            free(bits);
            httpd_reply_err(r, -EINVAL, "FT_ID must be 32 bytes");
            return;
        }
        rc = chunkstore_has(a->store, p);
        if (rc < 0) {
            free(bits);
            log_error("query: %s", cairn_strerror(rc));
            httpd_reply_err(r, rc, "cannot look up chunk");
            return;
        }
        bits[i++] = (uint8_t)rc;
    }
    recw w;
    recw_init(&w, FSREC_IDS);
    recw_bytes(&w, FT_BITS, bits, n);
    free(bits);
    size_t outlen;
    uint8_t *out = recw_steal(&w, &outlen);
    atomic_fetch_add(&a->queries, 1);
    atomic_fetch_add(&a->queried_ids, n);
    httpd_reply(r, 200, RECORD_TYPE, out, outlen);
}

/* POST /maint/run?pass=NAME[&timeout=SECONDS]: run a maintenance pass now
 * and answer when it is done, with what it did as "key value" lines. */
static void api_maint_run(httpd_req *r, void *ctx)
{
    chunkapi *a = ctx;
    enum maint_pass pass;
    if (maint_pass_parse(httpd_query(r, "pass"), &pass) < 0) {
        httpd_reply_err(r, -EINVAL, "pass must be scrub, sha-scrub, repair or gc");
        return;
    }
    if (!a->maint) {
        httpd_reply_err(r, -ENOTSUP, "maintenance is not running");
        return;
    }
    long long timeout_s = API_MAINT_TIMEOUT_S;
    const char *t = httpd_query(r, "timeout");
    if (t) {
        char *end;
        timeout_s = strtoll(t, &end, 10);
        if (*t == '\0' || *end || timeout_s < 1 || timeout_s > API_MAINT_TIMEOUT_MAX_S) {
            httpd_reply_err(r, -EINVAL, "timeout must be 1..86400 seconds");
            return;
        }
    }
    maint_result res;
    int rc = maint_run(a->maint, pass, (int64_t)timeout_s * 1000, &res);
    if (rc == -ETIMEDOUT) {
        httpd_reply_err(r, rc, "the pass is still running");
        return;
    }
    if (rc < 0) {
        httpd_reply_err(r, rc == -EAGAIN ? CAIRN_EBUSY : rc, "cannot run the pass");
        return;
    }
    buf b = {0};
    buf_printf(&b,
               "pass %s\nresult %s\nerror %s\nseconds %.3f\nscanned %" PRIu64
               "\nbytes %" PRIu64 "\n",
               maint_pass_name(pass), res.rc == 0 ? "ok" : "failed",
               res.rc == 0 ? "-" : cairn_strerror(res.rc), (double)res.duration_ms / 1e3,
               res.scanned, res.bytes);
    if (pass == MAINT_SCRUB || pass == MAINT_SHA_SCRUB)
        buf_printf(&b, "corrupt %" PRIu64 "\nrefetched %" PRIu64 "\nrefetch_failed %" PRIu64 "\n",
                   res.corrupt, res.refetched, res.refetch_failed);
    if (pass == MAINT_REPAIR)
        buf_printf(&b,
                   "referenced %" PRIu64 "\nunder_replicated %" PRIu64 "\nmisplaced %" PRIu64
                   "\npushed %" PRIu64 "\npushed_bytes %" PRIu64 "\npush_failed %" PRIu64
                   "\ndropped %" PRIu64 "\n",
                   res.referenced, res.under_replicated, res.misplaced, res.pushed,
                   res.pushed_bytes, res.push_failed, res.dropped);
    if (pass == MAINT_GC)
        buf_printf(&b,
                   "unreferenced %" PRIu64 "\ndeleted %" PRIu64 "\ndeleted_bytes %" PRIu64
                   "\nrecent %" PRIu64 "\n",
                   res.unreferenced, res.deleted, res.deleted_bytes, res.recent);
    size_t len;
    uint8_t *body = buf_steal(&b, &len);
    if (res.rc < 0) {
        const char *name = cairn_errno_name(-res.rc);
        httpd_add_header(r, "Cairn-Errno", name ? name : "EIO");
    }
    httpd_reply(r, res.rc == 0 ? 200 : cairn_err_to_http(res.rc), "text/plain", body, len);
}

static void metric(buf *out, const char *name, const char *type, const char *help, uint64_t v)
{
    buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n", name, help, name, type, name,
               v);
}

static void metric_results(buf *out, const char *name, const char *help,
                           const char *const *labels, atomic_uint_fast64_t *vals, size_t n)
{
    buf_printf(out, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
    for (size_t i = 0; i < n; i++)
        buf_printf(out, "%s{result=\"%s\"} %" PRIu64 "\n", name, labels[i],
                   (uint64_t)atomic_load(&vals[i]));
}

void chunkapi_metrics(buf *out, void *ctx)
{
    chunkapi *a = ctx;
    chunkstore_stats st;
    chunkstore_get_stats(a->store, &st);
    metric(out, "cairn_chunkd_chunks", "gauge", "Chunks held.", st.chunks);
    metric(out, "cairn_chunkd_bytes_stored", "gauge", "Bytes of chunk files held.", st.bytes);
    metric(out, "cairn_chunkd_corrupt_chunks_total", "counter",
           "Chunk files that failed verification and were moved aside.", st.corrupt_found);
    metric(out, "cairn_chunkd_direct_writes_total", "counter",
           "Chunk files written with O_DIRECT.", st.direct_writes);
    metric(out, "cairn_chunkd_uploads_inflight", "gauge",
           "PUT requests being verified and written.", atomic_load(&a->put_inflight));
    metric_results(out, "cairn_chunkd_puts_total", "PUT /chunks requests by result.",
                   put_result_names, a->puts, PUT_NRESULTS);
    metric_results(out, "cairn_chunkd_gets_total", "GET /chunks requests by result.",
                   get_result_names, a->gets, GET_NRESULTS);
    metric(out, "cairn_chunkd_heads_total", "counter", "HEAD /chunks requests.",
           atomic_load(&a->heads));
    metric(out, "cairn_chunkd_deletes_total", "counter", "Chunks deleted.",
           atomic_load(&a->deletes));
    metric(out, "cairn_chunkd_queries_total", "counter", "POST /chunks/query requests.",
           atomic_load(&a->queries));
    metric(out, "cairn_chunkd_queried_ids_total", "counter", "Ids asked about in queries.",
           atomic_load(&a->queried_ids));
    metric(out, "cairn_chunkd_put_bytes_total", "counter", "Chunk bytes newly stored.",
           atomic_load(&a->put_bytes));
    metric(out, "cairn_chunkd_get_bytes_total", "counter", "Chunk bytes served.",
           atomic_load(&a->get_bytes));
}

/* Bytes of the largest query body: a record header plus one field per id. */
#define QUERY_MAX_BODY (REC_HDR_LEN + (uint64_t)CHUNKAPI_QUERY_MAX * (REC_FIELD_HDR_LEN + CHUNK_ID_LEN))

chunkapi *chunkapi_new(const chunkapi_config *cfg)
{
    chunkapi *a = xcalloc(1, sizeof *a);
    a->store = cfg->store;
    a->max_chunk = cfg->max_chunk;
    a->maint = cfg->maint;
    a->data_dir = cfg->data_dir ? xstrdup(cfg->data_dir) : NULL;
    const httpd_route routes[] = {
        {"GET", "/healthz", api_healthz, "healthz", 0},
        {"GET", "/local", api_local, "local", 0},
        {"POST", "/chunks/query", api_query, "chunk_query", QUERY_MAX_BODY},
        {"PUT", CHUNKS_PREFIX, api_put, "chunk_put", cfg->max_chunk},
        {"GET", CHUNKS_PREFIX, api_get, "chunk_get", 0},
        {"DELETE", CHUNKS_PREFIX, api_delete, "chunk_delete", 0},
        {"POST", "/maint/run", api_maint_run, "maint_run", 0},
    };
    _Static_assert(sizeof routes == sizeof a->routes, "route table size");
    memcpy(a->routes, routes, sizeof routes);
    a->nroutes = ARRAY_LEN(routes);
    return a;
}

void chunkapi_free(chunkapi *a)
{
    if (!a)
        return;
    free(a->data_dir);
    free(a);
}

const httpd_route *chunkapi_routes(const chunkapi *a, size_t *n)
{
    *n = a->nroutes;
    return a->routes;
}
