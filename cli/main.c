/*
 * cairn — the admin tool (man/cairn.1): cluster status, capacity, server
 * drain/removal, maintenance triggers and fsck.
 *
 * Thread model: one thread. Every command is a short sequence of HTTP
 * calls to metad (client/metaclient.h for the namespace, fsinfo and statfs;
 * common/httpc.h for the cluster routes) and to chunk servers (batch
 * queries, POST /maint/run), each bounded by --timeout; metaclient retries
 * an unreachable metad for --retry-time.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/err.h"
#include "common/log.h"
#include "common/opts.h"
#include "common/util.h"

static struct {
    char *meta;
    int bytes;
    int strict;
    int quiet;
    uint64_t timeout_ms;
    uint64_t retry_ms;
} cfg;

static const opt_def cli_opt_defs[] = {
    {"meta", 'm', OPT_STR, &cfg.meta, NULL, "HOST:PORT",
     "The cairn-metad to talk to (default: the content of .demo/metad.addr if that file "
     "exists, else 127.0.0.1:7400).", 0, 0},
    {"bytes", 'b', OPT_BOOL, &cfg.bytes, "false", NULL,
     "status, df: print sizes as exact byte counts.", 0, 0},
    {"strict", 0, OPT_BOOL, &cfg.strict, "false", NULL,
     "fsck: also fail on under-replicated, misplaced or extra copies and on servers that do "
     "not answer.", 0, 0},
    {"quiet", 'q', OPT_BOOL, &cfg.quiet, "false", NULL, "fsck: no progress lines on stderr.", 0,
     0},
    {"timeout", 0, OPT_MS, &cfg.timeout_ms, "5m", "DURATION",
     "Longest wait for one request (a maintenance pass runs this long at most).", 1000,
     86400000},
    {"retry-time", 0, OPT_MS, &cfg.retry_ms, "10s", "DURATION",
     "How long an unreachable metad is retried before a command fails.", 0, 3600000},
    {NULL, 0, 0, NULL, NULL, NULL, NULL, 0, 0},
};

static const opts_spec cli_spec = {
    .prog = "cairn",
    .usage = "[OPTIONS] COMMAND [ARGS]\n\n"
             "Commands:\n"
             "  status                 servers (id, address, state, capacity, use, chunks), "
             "map epoch,\n"
             "                         filesystem parameters\n"
             "  df                     filesystem size, use and files\n"
             "  drain ID               move every chunk off server ID (no new chunks go there)\n"
             "  undrain ID             make a draining server a normal one again\n"
             "  remove ID              forget a draining or down server for good\n"
             "  fsck                   check that every referenced chunk has its copies\n"
             "  maint ID|ADDR|all PASS run a maintenance pass now (scrub, sha-scrub, repair, "
             "gc)\n"
             "  gc ID|ADDR|all         the same as: maint ID gc",
    .summary = "Administers a cairn cluster through its metadata server and chunk servers.",
    .defs = cli_opt_defs,
};

typedef int (*cmd_fn)(cli *c, int argc, char **argv);

static const struct {
    const char *name;
    cmd_fn fn;
} commands[] = {
    {"status", cli_cmd_status}, {"df", cli_cmd_df},       {"drain", cli_cmd_drain},
    {"undrain", cli_cmd_undrain}, {"remove", cli_cmd_remove}, {"fsck", cli_cmd_fsck},
    {"maint", cli_cmd_maint},   {"gc", cli_cmd_gc},
};

/* --meta, else .demo/metad.addr in the current directory, else the
 * default port on loopback. */
static char *default_meta(void)
{
    uint8_t *text = NULL;
    size_t len;
    if (read_file(".demo/metad.addr", 256, &text, &len) == 0) {
        while (len && (text[len - 1] == '\n' || text[len - 1] == ' ' || text[len - 1] == '\r'))
            text[--len] = '\0';
        if (len)
            return (char *)text;
    }
    free(text);
    return xstrdup("127.0.0.1:7400");
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--print-man-options") == 0) {
            opts_print_man(&cli_spec, stdout);
            return 0;
        }
    log_set_component("cairn");
    log_set_level(LOG_WARN);
    int first = opts_parse(&cli_spec, argc, argv);
    if (first == OPTS_HELP || first == OPTS_VERSION)
        return 0;
    if (first < 0)
        return 2;
    if (first >= argc) {
        opts_print_help(&cli_spec, stderr);
        opts_free(&cli_spec);
        return 2;
    }
    cmd_fn fn = NULL;
    for (size_t i = 0; i < ARRAY_LEN(commands); i++)
        if (strcmp(argv[first], commands[i].name) == 0)
            fn = commands[i].fn;
    if (!fn) {
        fprintf(stderr, "cairn: unknown command '%s' (cairn --help lists them)\n", argv[first]);
        opts_free(&cli_spec);
        return 2;
    }
    char *meta = cfg.meta ? xstrdup(cfg.meta) : default_meta();
    char host[256];
    uint16_t port;
    if (parse_hostport(meta, host, sizeof host, &port) < 0 || port == 0) {
        fprintf(stderr, "cairn: metad address '%s' is not HOST:PORT\n", meta);
        free(meta);
        opts_free(&cli_spec);
        return 2;
    }
    cli c = {
        .o = {.meta = meta,
              .bytes = cfg.bytes,
              .strict = cfg.strict,
              .quiet = cfg.quiet,
              .timeout_ms = cfg.timeout_ms,
              .retry_ms = cfg.retry_ms},
    };
    mc_config mcfg = {.addr = meta,
                      .retry_ms = (unsigned)cfg.retry_ms,
                      .timeout_ms = (unsigned)MIN(cfg.timeout_ms, (uint64_t)60000),
                      .connections = 4};
    /* metaclient treats 0 as its default of 60 s; a zero retry time means
     * one attempt, which 1 ms gives. */
    if (!mcfg.retry_ms)
        mcfg.retry_ms = 1;
    c.meta = mc_new(&mcfg);
    httpc_config hc = {.handles = 4, .connect_timeout_ms = 2000, .max_resp = 16u << 20};
    c.http = httpc_new(&hc);
    int status = 2;
    if (!c.meta || !c.http) {
        fprintf(stderr, "cairn: cannot create an HTTP client\n");
        goto out;
    }
    status = fn(&c, argc - first - 1, argv + first + 1);
out:
    httpc_free(c.http);
    mc_free(c.meta);
    free(meta);
    opts_free(&cli_spec);
    return status;
}
