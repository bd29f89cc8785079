/*
 * ops_cluster.c — cluster map routes of cairn-metad (docs/PROTOCOL.md):
 * the map itself, chunk server registration and heartbeats, and the
 * operator's drain / undrain / remove. The cluster module (cluster.h)
 * logs every change under its own mutex; handlers here wait for the
 * record to be durable without any lock held, then answer.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/fsrec.h"
#include "common/util.h"
#include "server/meta/ops_i.h"
#include "server/meta/persist.h"

void ops_cluster_get(httpd_req *rq, void *ctx)
{
    metad *m = ctx;
    recw w;

    cluster_encode(m->cl, &w);
    ops_reply_rec(rq, 200, &w, NULL);
}

static void report_in(httpd_req *rq, metad *m, int heartbeat)
{
    recr r;
    cluster_report in;
    const uint8_t *p;
    size_t n;
    char host[CLUSTER_ADDR_MAX + 1];
    uint16_t port;
    uint64_t sid, epoch, lsn;
    uint32_t got;
    recw w;
    int rc;

    memset(&in, 0, sizeof(in));
    if ((rc = ops_open_body(rq, &r, FSREC_SERVER)) < 0 ||
        (rc = ops_opt_u64(&r, FT_SID, &sid, 0)) < 0 ||
        (rc = ops_opt_u64(&r, FT_CAPACITY, &in.capacity, 0)) < 0 ||
        (rc = ops_opt_u64(&r, FT_USED, &in.used, 0)) < 0 ||
        (rc = ops_opt_u64(&r, FT_CHUNKS, &in.chunks, 0)) < 0)
        goto fail;
    if (sid > CLUSTER_SID_MAX || (heartbeat && sid == 0) ||
        rec_get_bytes(&r, FT_ADDR, &p, &n) < 0 || n == 0 || n > CLUSTER_ADDR_MAX ||
        memchr(p, 0, n)) {
        rc = -EINVAL;
        goto fail;
    }
    memcpy(in.addr, p, n);
    in.addr[n] = '\0';
    if (parse_hostport(in.addr, host, sizeof(host), &port) < 0 || port == 0) {
        rc = -EINVAL;
        goto fail;
    }
    in.sid = (uint32_t)sid;
    rc = cluster_report_in(m->cl, &in, heartbeat, &got, &epoch, &lsn);
    if (rc < 0)
        goto fail;
    persist_wait(m, lsn);
    recw_init(&w, FSREC_SERVER);
    recw_u64(&w, FT_SID, got);
    recw_u64(&w, FT_EPOCH, epoch);
    recw_u64(&w, FT_HB_INTERVAL, cluster_hb_interval_ms(m->cl));
    ops_reply_rec(rq, 200, &w, NULL);
    return;
fail:
    httpd_reply_err(rq, rc, heartbeat ? "heartbeat" : "register");
}

void ops_register(httpd_req *rq, void *ctx)
{
    report_in(rq, ctx, 0);
}

void ops_heartbeat(httpd_req *rq, void *ctx)
{
    report_in(rq, ctx, 1);
}

/* The server id of an administration request: FT_SID in an FSREC_REQ (or
 * an FSREC_SERVER, as register uses). */
static int admin_sid(httpd_req *rq, uint32_t *sid)
{
    recr r;
    uint64_t v;

    if (ops_open_body(rq, &r, FSREC_REQ) < 0 && ops_open_body(rq, &r, FSREC_SERVER) < 0)
        return -EINVAL;
    if (ops_need_u64(&r, FT_SID, &v) < 0 || v == 0 || v > CLUSTER_SID_MAX)
        return -EINVAL;
    *sid = (uint32_t)v;
    return 0;
}

enum { ADMIN_DRAIN, ADMIN_UNDRAIN, ADMIN_REMOVE };

static void admin(httpd_req *rq, metad *m, int what)
{
    static const char *const names[] = {"cluster_drain", "cluster_undrain", "cluster_remove"};
    uint32_t sid;
    uint64_t lsn = 0;
    recw w;
    int rc;

    if ((rc = admin_sid(rq, &sid)) < 0)
        goto fail;
    if (what == ADMIN_REMOVE)
        rc = cluster_remove(m->cl, sid, &w, &lsn);
    else
        rc = cluster_set_drain(m->cl, sid, what == ADMIN_DRAIN, &w, &lsn);
    if (rc < 0)
        goto fail;
    persist_wait(m, lsn);
    ops_reply_rec(rq, 200, &w, NULL);
    return;
fail:
    httpd_reply_err(rq, rc, names[what]);
}

void ops_cluster_drain(httpd_req *rq, void *ctx)
{
    admin(rq, ctx, ADMIN_DRAIN);
}

void ops_cluster_undrain(httpd_req *rq, void *ctx)
{
    admin(rq, ctx, ADMIN_UNDRAIN);
}

void ops_cluster_remove(httpd_req *rq, void *ctx)
{
    admin(rq, ctx, ADMIN_REMOVE);
}
