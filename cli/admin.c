/*
 * admin.c — `cairn drain|undrain|remove ID` (metad's cluster
 * administration routes, docs/PROTOCOL.md) and `cairn maint|gc` (a chunk
 * server's POST /maint/run).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/err.h"
#include "common/fsrec.h"
#include "common/rec.h"
#include "common/util.h"

#define RECORD_CT "Content-Type: application/x-cairn-record"

/* POST /v1/<op> with FSREC_REQ {FT_SID}; prints the server's new state. */
static int admin_cluster_op(cli *c, const char *op, const char *verb, int argc, char **argv)
{
    uint32_t sid;
    if (argc != 1 || cli_parse_sid(argv[0], &sid) < 0) {
        fprintf(stderr, "usage: cairn %s SERVER-ID   (ids: cairn status)\n", verb);
        return 2;
    }
    recw w;
    recw_init(&w, FSREC_REQ);
    recw_u64(&w, FT_SID, sid);
    size_t len;
    const uint8_t *body = recw_finish(&w, &len);
    char *url = xasprintf("http://%s/v1/%s", c->o.meta, op);
    const char *const hdrs[] = {RECORD_CT, NULL};
    httpc_resp resp;
    int rc = httpc_do(c->http, "POST", url, hdrs, body, len, (int)c->o.timeout_ms, &resp);
    free(url);
    recw_free(&w);
    if (rc < 0) {
        fprintf(stderr, "cairn: metad %s: %s: %s\n", c->o.meta, op, cairn_strerror(rc));
        return 2;
    }
    int status = resp.status;
    if (status == 404 && !resp.errname[0]) {
        fprintf(stderr, "cairn: metad %s does not offer /v1/%s (older metad?)\n", c->o.meta, op);
        httpc_resp_free(&resp);
        return 1;
    }
    if (status != 200) {
        rc = cairn_http_to_err(status, resp.errname[0] ? resp.errname : NULL);
        const char *why = rc == -ENOENT  ? "no such server"
                          : rc == -EBUSY ? "the server must be draining or down first"
                                         : cairn_strerror(rc ? rc : CAIRN_EPROTO);
        fprintf(stderr, "cairn: %s server %" PRIu32 ": %s (%.*s)\n", verb, sid, why,
                (int)strcspn((char *)resp.body, "\n"), (char *)resp.body);
        httpc_resp_free(&resp);
        return 1;
    }
    recr r;
    uint64_t st = 0, epoch = resp.epoch;
    if (rec_open(&r, resp.body, resp.len) == 0) {
        rec_get_u64(&r, FT_STATE, &st);
        rec_get_u64(&r, FT_EPOCH, &epoch);
    }
    httpc_resp_free(&resp);
    if (strcmp(op, "cluster_remove") == 0)
        printf("server %" PRIu32 " removed from the cluster map (epoch %" PRIu64 ")\n", sid,
               epoch);
    else
        printf("server %" PRIu32 " is %s (epoch %" PRIu64 ")\n", sid,
               st ? cli_state_name((uint32_t)st) : "changed", epoch);
    if (strcmp(op, "cluster_drain") == 0)
        printf("its chunks move to the other servers in the background; it is empty when "
               "`cairn status` shows 0 chunks for it\n");
    return 0;
}

int cli_cmd_drain(cli *c, int argc, char **argv)
{
    return admin_cluster_op(c, "cluster_drain", "drain", argc, argv);
}

int cli_cmd_undrain(cli *c, int argc, char **argv)
{
    return admin_cluster_op(c, "cluster_undrain", "undrain", argc, argv);
}

int cli_cmd_remove(cli *c, int argc, char **argv)
{
    return admin_cluster_op(c, "cluster_remove", "remove", argc, argv);
}

/* Run PASS on one server (by address); prints its report. */
static int admin_maint_one(cli *c, uint32_t sid, const char *addr, const char *pass)
{
    char *url = xasprintf("http://%s/maint/run?pass=%s&timeout=%" PRIu64, addr, pass,
                          MAX(c->o.timeout_ms / 1000, (uint64_t)1));
    httpc_resp resp;
    int rc = httpc_do(c->http, "POST", url, NULL, NULL, 0, (int)c->o.timeout_ms + 5000, &resp);
    free(url);
    if (rc < 0) {
        fprintf(stderr, "cairn: server %" PRIu32 " (%s): %s\n", sid, addr, cairn_strerror(rc));
        return 2;
    }
    if (sid)
        printf("server %" PRIu32 " (%s)\n", sid, addr);
    else
        printf("server %s\n", addr);
    fwrite(resp.body, 1, resp.len, stdout);
    int status = resp.status;
    httpc_resp_free(&resp);
    if (status != 200) {
        fprintf(stderr, "cairn: server %s: %s pass did not complete (HTTP %d)\n", addr, pass,
                status);
        return 1;
    }
    return 0;
}

int cli_cmd_maint(cli *c, int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: cairn maint SERVER-ID|HOST:PORT|all scrub|sha-scrub|repair|gc\n");
        return 2;
    }
    const char *pass = argv[1];
    if (strcmp(pass, "scrub") && strcmp(pass, "sha-scrub") && strcmp(pass, "repair") &&
        strcmp(pass, "gc")) {
        fprintf(stderr, "cairn: unknown pass '%s' (scrub, sha-scrub, repair, gc)\n", pass);
        return 2;
    }
    if (strchr(argv[0], ':'))
        return admin_maint_one(c, 0, argv[0], pass);
    static cli_map map;
    int rc = cli_map_get(c, &map);
    if (rc < 0) {
        fprintf(stderr, "cairn: metad %s: cluster map: %s\n", c->o.meta, cairn_strerror(rc));
        return 2;
    }
    if (strcmp(argv[0], "all") == 0) {
        /* Every server that is not down, one after the other. */
        int worst = 0;
        for (size_t i = 0; i < map.n; i++) {
            if (map.servers[i].state == SERVER_DOWN)
                continue;
            int r = admin_maint_one(c, map.servers[i].id, map.servers[i].addr, pass);
            worst = MAX(worst, r);
        }
        return worst;
    }
    uint32_t sid;
    if (cli_parse_sid(argv[0], &sid) < 0) {
        fprintf(stderr, "cairn: '%s' is not a server id, HOST:PORT or 'all'\n", argv[0]);
        return 2;
    }
    const cli_server *s = cli_map_find(&map, sid);
    if (!s) {
        fprintf(stderr, "cairn: no server %" PRIu32 " in the cluster map\n", sid);
        return 1;
    }
    return admin_maint_one(c, s->id, s->addr, pass);
}

int cli_cmd_gc(cli *c, int argc, char **argv)
{
    if (argc != 1) {
        fprintf(stderr, "usage: cairn gc SERVER-ID|HOST:PORT|all\n");
        return 2;
    }
    char *args[2] = {argv[0], "gc"};
    return cli_cmd_maint(c, 2, args);
}
