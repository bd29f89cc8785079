/*
 * cli.h — the pieces of the `cairn` admin tool (cli/main.c is the
 * command line; man/cairn.1 the user's view).
 *
 * A cli context holds the metad address, a metadata client (client/
 * metaclient.h) for the namespace and fsinfo, and an HTTP client for the
 * routes metaclient does not wrap (cluster administration) and for the
 * chunk servers (batch queries, maintenance triggers). Every command is a
 * function cli_cmd_*(ctx, argc, argv) with the words after the command
 * name, returning the process exit status: 0 success, 1 the check or
 * operation failed (fsck found missing chunks, metad refused), 2 usage
 * error or a server could not be reached. Messages go to stderr, results
 * to stdout.
 *
 * Single-threaded; nothing here is shared between threads.
 */
#ifndef CAIRN_CLI_H
#define CAIRN_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "client/metaclient.h"
#include "common/hash.h"
#include "common/httpc.h"

#define CLI_MAX_SERVERS 256

typedef struct cli_opts {
    const char *meta;         /* metad HOST:PORT */
    int bytes;                /* sizes as exact byte counts */
    int strict;               /* fsck: misplaced or extra copies fail too */
    int quiet;                /* no progress on stderr */
    uint64_t timeout_ms;      /* per request */
    uint64_t retry_ms;        /* metad retry window */
} cli_opts;

typedef struct cli {
    cli_opts o;
    mc *meta;
    httpc *http;
} cli;

typedef struct cli_server {
    uint32_t id;
    char addr[64];
    uint64_t capacity, used, chunks;
    uint32_t state;
    int64_t last_seen_ns;     /* wall clock of the last heartbeat, 0 = unknown */
} cli_server;

typedef struct cli_map {
    uint64_t epoch;
    size_t n;
    cli_server servers[CLI_MAX_SERVERS];
} cli_map;

/* GET /v1/cluster. 0 or a negative error (printed by the caller). */
int cli_map_get(cli *c, cli_map *out);
/* The server with this id, or NULL. */
const cli_server *cli_map_find(const cli_map *m, uint32_t id);
const char *cli_state_name(uint32_t state);
/* Indices into m->servers of the servers whose state is in mask (bit
 * 1 << SERVER_*), ranked by weighted HRW for id exactly as the client and
 * the chunk servers rank; returns how many. */
size_t cli_rank(const cli_map *m, const uint8_t id[CHUNK_ID_LEN], unsigned mask, size_t *order);
#define CLI_STATE(s) (1u << (s))

/* POST /chunks/query to addr; bits[i] = 1 if held. */
int cli_query(cli *c, const char *addr, const uint8_t (*ids)[CHUNK_ID_LEN], size_t n,
              uint8_t *bits);

/* "1.5G"-style text of n bytes into out (or the exact count with
 * --bytes). */
const char *cli_size(const cli *c, uint64_t n, char *out, size_t len);

/* Parse a server id argument; -EINVAL. */
int cli_parse_sid(const char *s, uint32_t *out);

int cli_cmd_status(cli *c, int argc, char **argv);
int cli_cmd_df(cli *c, int argc, char **argv);
int cli_cmd_drain(cli *c, int argc, char **argv);
int cli_cmd_undrain(cli *c, int argc, char **argv);
int cli_cmd_remove(cli *c, int argc, char **argv);
int cli_cmd_maint(cli *c, int argc, char **argv);
int cli_cmd_gc(cli *c, int argc, char **argv);
int cli_cmd_fsck(cli *c, int argc, char **argv);

#endif
