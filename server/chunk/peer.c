/*
 * peer.c — calls to metad and to other chunk servers for the maintenance
 * passes (see peer.h).
 */
#include "server/chunk/peer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "common/fsrec.h"
#include "common/hrw.h"
#include "common/httpc.h"
#include "common/log.h"
#include "common/rec.h"
#include "common/util.h"

#define RECORD_CT "Content-Type: application/x-cairn-record"
/* 503 answers a PUT waits out before giving up until the next pass. */
#define PUT_BUSY_TRIES 5
#define PUT_BUSY_WAIT_MAX_MS 2000

struct peer {
    char *meta;
    httpc *http;
};

peer *peer_new(const char *meta, uint64_t max_chunk)
{
    peer *p = xcalloc(1, sizeof *p);
    p->meta = meta ? xstrdup(meta) : NULL;
    /* A refs or query answer for PEER_BATCH_MAX ids is a few KiB; the
     * cluster map for PEER_MAX_SERVERS servers about 40 KiB. */
    uint64_t max_resp = MAX(max_chunk + 1, (uint64_t)1 << 20);
    httpc_config hc = {.handles = 4, .connect_timeout_ms = 2000, .max_resp = max_resp,
                       .recv_buf = 128u << 10};
    p->http = httpc_new(&hc);
    if (!p->http) {
        free(p->meta);
        free(p);
        return NULL;
    }
    return p;
}

void peer_free(peer *p)
{
    if (!p)
        return;
    httpc_free(p->http);
    free(p->meta);
    free(p);
}

const char *peer_meta(const peer *p)
{
    return p->meta;
}

/* The error a non-success answer stands for. */
static int peer_status_err(const httpc_resp *r)
{
    int rc = cairn_http_to_err(r->status, r->errname[0] ? r->errname : NULL);
    return rc ? rc : CAIRN_EPROTO;
}

/* One request to metad; a 200 answer's body is left in *resp. */
static int peer_meta_call(peer *p, const char *method, const char *route, const void *body,
                          size_t len, httpc_resp *resp)
{
    memset(resp, 0, sizeof *resp);
    if (!p->meta)
        return -ENOTCONN;
    char *url = xasprintf("http://%s%s", p->meta, route);
    const char *const hdrs[] = {RECORD_CT, NULL};
    int rc = httpc_do(p->http, method, url, body ? hdrs : NULL, body, len, PEER_META_TIMEOUT_MS,
                      resp);
    free(url);
    if (rc < 0)
        return rc;
    if (resp->status != 200) {
        rc = peer_status_err(resp);
        httpc_resp_free(resp);
        return rc;
    }
    return 0;
}

int peer_cluster_get(peer *p, peer_map *out)
{
    httpc_resp resp;
    memset(out, 0, sizeof *out);
    int rc = peer_meta_call(p, "GET", "/v1/cluster", NULL, 0, &resp);
    if (rc < 0)
        return rc;
    recr r;
    if (rec_open(&r, resp.body, resp.len) < 0 || r.type != FSREC_CLUSTER ||
        rec_get_u64(&r, FT_EPOCH, &out->epoch) < 0) {
        rc = CAIRN_EPROTO;
        goto out;
    }
    rec_iter it;
    uint16_t tag;
    const uint8_t *v;
    size_t n;
    rec_iter_init(&it);
    while (rec_next(&r, &it, &tag, &v, &n)) {
        if (tag != FT_SERVER)
            continue;
        if (out->n == PEER_MAX_SERVERS) {
            /* The client ranks the first PEER_MAX_SERVERS too. */
            log_warn("cluster map lists more than %d servers; the rest are ignored",
                     PEER_MAX_SERVERS);
            break;
        }
        recr s;
        uint64_t sid, st = SERVER_UP;
        const uint8_t *ap;
        size_t al;
        peer_server *sv = &out->servers[out->n];
        if (rec_open(&s, v, n) < 0 || rec_get_u64(&s, FT_SID, &sid) < 0 || sid == 0 ||
            sid > UINT32_MAX || rec_get_bytes(&s, FT_ADDR, &ap, &al) < 0 || al == 0 ||
            al >= sizeof sv->addr || memchr(ap, 0, al)) {
            rc = CAIRN_EPROTO;
            goto out;
        }
        memset(sv, 0, sizeof *sv);
        sv->id = (uint32_t)sid;
        memcpy(sv->addr, ap, al);
        rec_get_u64(&s, FT_CAPACITY, &sv->capacity);
        rec_get_u64(&s, FT_USED, &sv->used);
        rec_get_u64(&s, FT_CHUNKS, &sv->chunks);
        rec_get_u64(&s, FT_STATE, &st);
        sv->state = st > UINT32_MAX ? 0 : (uint32_t)st;
        out->n++;
    }
out:
    httpc_resp_free(&resp);
    return rc;
}

int peer_fsinfo_get(peer *p, peer_fsinfo *out)
{
    httpc_resp resp;
    memset(out, 0, sizeof *out);
    int rc = peer_meta_call(p, "GET", "/v1/fsinfo", NULL, 0, &resp);
    if (rc < 0)
        return rc;
    recr r;
    uint64_t rep, minrep, cs;
    const uint8_t *v;
    size_t n;
    if (rec_open(&r, resp.body, resp.len) < 0 || r.type != FSREC_FSINFO ||
        rec_get_u64(&r, FT_REPLICAS, &rep) < 0 || rep < 1 || rep > 16 ||
        rec_get_u64(&r, FT_CHUNK_SIZE, &cs) < 0 || rec_get_bytes(&r, FT_FSID, &v, &n) < 0 ||
        n != sizeof out->fsid) {
        rc = CAIRN_EPROTO;
        goto out;
    }
    if (rec_get_u64(&r, FT_MIN_REPLICAS, &minrep) < 0 || minrep < 1 || minrep > rep)
        minrep = rep;
    memcpy(out->fsid, v, n);
    out->replicas = (uint32_t)rep;
    out->min_replicas = (uint32_t)minrep;
    out->chunk_size = cs;
out:
    httpc_resp_free(&resp);
    return rc;
}

/* Decode an FSREC_IDS answer with FT_BITS of exactly n bytes, each 0 or 1. */
static int peer_decode_bits(const httpc_resp *resp, size_t n, uint8_t *bits)
{
    recr r;
    const uint8_t *v;
    size_t len;
    if (rec_open(&r, resp->body, resp->len) < 0 || r.type != FSREC_IDS ||
        rec_get_bytes(&r, FT_BITS, &v, &len) < 0 || len != n)
        return CAIRN_EPROTO;
    for (size_t i = 0; i < n; i++) {
        if (v[i] > 1)
            return CAIRN_EPROTO;
        bits[i] = v[i];
    }
    return 0;
}

static void peer_ids_record(recw *w, const uint8_t (*ids)[CHUNK_ID_LEN], size_t n)
{
    recw_init(w, FSREC_IDS);
    for (size_t i = 0; i < n; i++)
        recw_bytes(w, FT_ID, ids[i], CHUNK_ID_LEN);
}

int peer_refs(peer *p, const uint8_t (*ids)[CHUNK_ID_LEN], size_t n, uint8_t *bits)
{
    if (n == 0)
        return 0;
    if (n > PEER_BATCH_MAX)
        return -E2BIG;
    recw w;
    peer_ids_record(&w, ids, n);
    size_t len;
    const uint8_t *body = recw_finish(&w, &len);
    httpc_resp resp;
    int rc = peer_meta_call(p, "POST", "/v1/refs", body, len, &resp);
    recw_free(&w);
    if (rc < 0)
        return rc;
    rc = peer_decode_bits(&resp, n, bits);
    httpc_resp_free(&resp);
    return rc;
}

int peer_query(peer *p, const char *addr, const uint8_t (*ids)[CHUNK_ID_LEN], size_t n,
               uint8_t *bits)
{
    if (n == 0)
        return 0;
    if (n > PEER_BATCH_MAX)
        return -E2BIG;
    recw w;
    peer_ids_record(&w, ids, n);
    size_t len;
    const uint8_t *body = recw_finish(&w, &len);
    char *url = xasprintf("http://%s/chunks/query", addr);
    const char *const hdrs[] = {RECORD_CT, NULL};
    httpc_resp resp;
    int rc = httpc_do(p->http, "POST", url, hdrs, body, len, PEER_META_TIMEOUT_MS, &resp);
    free(url);
    recw_free(&w);
    if (rc < 0)
        return rc;
    rc = resp.status == 200 ? peer_decode_bits(&resp, n, bits) : peer_status_err(&resp);
    httpc_resp_free(&resp);
    return rc;
}

static void peer_sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

int peer_put(peer *p, const char *addr, const uint8_t id[CHUNK_ID_LEN], const void *data,
             size_t len)
{
    char hex[CHUNK_ID_HEX + 1];
    chunk_id_hex(id, hex);
    char *url = xasprintf("http://%s/chunks/%s", addr, hex);
    const char *const hdrs[] = {"Content-Type: application/octet-stream", NULL};
    unsigned wait_ms = 100;
    int rc = CAIRN_EBUSY;
    for (int attempt = 0; attempt < PUT_BUSY_TRIES; attempt++) {
        httpc_resp resp;
        rc = httpc_do(p->http, "PUT", url, hdrs, data, len, PEER_CHUNK_TIMEOUT_MS, &resp);
        if (rc < 0)
            break;
        int status = resp.status, ra = resp.retry_after_s;
        rc = status == 200 || status == 201 ? 0 : peer_status_err(&resp);
        httpc_resp_free(&resp);
        if (status != 503)
            break;
        rc = CAIRN_EBUSY;
        unsigned ms = ra > 0 ? (unsigned)MIN(ra * 1000, PUT_BUSY_WAIT_MAX_MS) : wait_ms;
        peer_sleep_ms(ms);
        wait_ms = MIN(wait_ms * 2, (unsigned)PUT_BUSY_WAIT_MAX_MS);
    }
    free(url);
    return rc;
}

int peer_get(peer *p, const char *addr, const uint8_t id[CHUNK_ID_LEN], uint8_t **data,
             size_t *len)
{
    char hex[CHUNK_ID_HEX + 1];
    chunk_id_hex(id, hex);
    char *url = xasprintf("http://%s/chunks/%s", addr, hex);
    httpc_resp resp;
    *data = NULL;
    *len = 0;
    int rc = httpc_do(p->http, "GET", url, NULL, NULL, 0, PEER_CHUNK_TIMEOUT_MS, &resp);
    free(url);
    if (rc < 0)
        return rc;
    if (resp.status != 200) {
        rc = peer_status_err(&resp);
        httpc_resp_free(&resp);
        return rc;
    }
    uint8_t digest[CHUNK_ID_LEN];
    sha256(resp.body, resp.len, digest);
    if (memcmp(digest, id, CHUNK_ID_LEN) != 0) {
        log_warn("chunk %s from %s does not match its id", hex, addr);
        httpc_resp_free(&resp);
        return CAIRN_ECORRUPT;
    }
    /* httpc's body is malloc'd and NUL-terminated; hand it over. */
    *len = resp.len;
    if (resp.len) {
        *data = resp.body;
        resp.body = NULL;
    }
    httpc_resp_free(&resp);
    return 0;
}

size_t peer_rank(const peer_map *m, const uint8_t id[CHUNK_ID_LEN], unsigned state_mask,
                 size_t *order)
{
    hrw_node nodes[PEER_MAX_SERVERS];
    size_t all[PEER_MAX_SERVERS];
    size_t n = MIN(m->n, (size_t)PEER_MAX_SERVERS);
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        nodes[i].id = m->servers[i].id;
        double gib = (double)m->servers[i].capacity / (double)(1ull << 30);
        nodes[i].weight = gib < 1.0 ? 1.0 : gib;
    }
    hrw_rank(id, nodes, n, all);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t st = m->servers[all[i]].state;
        if (st < 32 && (state_mask & (1u << st)))
            order[k++] = all[i];
    }
    return k;
}

int peer_find(const peer_map *m, uint32_t sid)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->servers[i].id == sid)
            return (int)i;
    return -1;
}

const char *peer_state_name(uint32_t state)
{
    switch (state) {
    case SERVER_UP:
        return "up";
    case SERVER_DOWN:
        return "down";
    case SERVER_DRAINING:
        return "draining";
    case SERVER_FULL:
        return "full";
    default:
        return "unknown";
    }
}
