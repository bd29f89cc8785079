/*
 * cluster.c — the cluster map, placement and chunk-server queries for the
 * cairn tool (see cli.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/err.h"
#include "common/fsrec.h"
#include "common/hrw.h"
#include "common/rec.h"
#include "common/util.h"

#define RECORD_CT "Content-Type: application/x-cairn-record"

int cli_map_get(cli *c, cli_map *out)
{
    memset(out, 0, sizeof *out);
    char *url = xasprintf("http://%s/v1/cluster", c->o.meta);
    httpc_resp resp;
    int rc = httpc_do(c->http, "GET", url, NULL, NULL, 0, (int)c->o.timeout_ms, &resp);
    free(url);
    if (rc < 0)
        return rc;
    if (resp.status != 200) {
        rc = cairn_http_to_err(resp.status, resp.errname[0] ? resp.errname : NULL);
        rc = rc ? rc : CAIRN_EPROTO;
        goto out;
    }
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
    while (rec_next(&r, &it, &tag, &v, &n) && out->n < CLI_MAX_SERVERS) {
        if (tag != FT_SERVER)
            continue;
        recr s;
        uint64_t sid, st = SERVER_UP;
        const uint8_t *ap;
        size_t al;
        cli_server *sv = &out->servers[out->n];
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
        rec_get_i64(&s, FT_LAST_SEEN, &sv->last_seen_ns);
        out->n++;
    }
out:
    httpc_resp_free(&resp);
    return rc;
}

const cli_server *cli_map_find(const cli_map *m, uint32_t id)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->servers[i].id == id)
            return &m->servers[i];
    return NULL;
}

const char *cli_state_name(uint32_t state)
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

size_t cli_rank(const cli_map *m, const uint8_t id[CHUNK_ID_LEN], unsigned mask, size_t *order)
{
    hrw_node nodes[CLI_MAX_SERVERS];
    size_t all[CLI_MAX_SERVERS];
    size_t n = MIN(m->n, (size_t)CLI_MAX_SERVERS);
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
        if (st < 32 && (mask & (1u << st)))
            order[k++] = all[i];
    }
    return k;
}

int cli_query(cli *c, const char *addr, const uint8_t (*ids)[CHUNK_ID_LEN], size_t n,
              uint8_t *bits)
{
    if (n == 0)
        return 0;
    recw w;
    recw_init(&w, FSREC_IDS);
    for (size_t i = 0; i < n; i++)
        recw_bytes(&w, FT_ID, ids[i], CHUNK_ID_LEN);
    size_t len;
    const uint8_t *body = recw_finish(&w, &len);
    char *url = xasprintf("http://%s/chunks/query", addr);
    const char *const hdrs[] = {RECORD_CT, NULL};
    httpc_resp resp;
    int rc = httpc_do(c->http, "POST", url, hdrs, body, len, (int)c->o.timeout_ms, &resp);
    free(url);
    recw_free(&w);
    if (rc < 0)
        return rc;
    if (resp.status != 200) {
        rc = cairn_http_to_err(resp.status, resp.errname[0] ? resp.errname : NULL);
        rc = rc ? rc : CAIRN_EPROTO;
    } else {
        recr r;
        const uint8_t *v;
        size_t vl;
        if (rec_open(&r, resp.body, resp.len) < 0 || rec_get_bytes(&r, FT_BITS, &v, &vl) < 0 ||
            vl != n)
            rc = CAIRN_EPROTO;
        else
            memcpy(bits, v, n);
    }
    httpc_resp_free(&resp);
    return rc;
}

const char *cli_size(const cli *c, uint64_t n, char *out, size_t len)
{
    static const char units[] = "BKMGTPE";
    if (c->o.bytes) {
        snprintf(out, len, "%" PRIu64, n);
        return out;
    }
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 6) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(out, len, "%" PRIu64 "B", n);
    else
        snprintf(out, len, v < 10 ? "%.1f%c" : "%.0f%c", v, units[u]);
    return out;
}

int cli_parse_sid(const char *s, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || v == 0 || v > UINT32_MAX || *s == '-')
        return -EINVAL;
    *out = (uint32_t)v;
    return 0;
}
