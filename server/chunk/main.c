/*
 * cairn-chunkd — the chunk server (DESIGN.md §4, §5, §7).
 *
 * Thread model (CONVENTIONS.md 10):
 *   - main thread: parses options, opens the store (scan of the chunk tree),
 *     starts httpd and the registration thread, writes --addr-file, then
 *     blocks in sigwait() for SIGTERM/SIGINT. SIGTERM/SIGINT are blocked
 *     before any thread exists, so only sigwait ever receives them. On a
 *     signal it stops httpd (waits for handlers in progress), stops the
 *     registration thread, frees everything and exits 0.
 *   - httpd threads (libmicrohttpd, one per connection): run the handlers
 *     of api.c. They block on disk I/O (reads, writes, fsync of chunk files
 *     and directories) and nothing else; the only locks they take are the
 *     store's per-id stripes, never held across fsync or payload I/O.
 *   - registration thread (reg.c): blocks on HTTP calls to metad (bounded by
 *     REG_HTTP_TIMEOUT_MS) and on its condition variable between calls.
 *   - maintenance thread (maint.c; passes in scrub.c, repair.c, gc.c): blocks
 *     on disk I/O, on HTTP calls to metad and other chunk servers (bounded
 *     by PEER_*_TIMEOUT_MS), and on its condition variable (schedule, rate
 *     limit). POST /maint/run handlers wait on the same module's lock and
 *     condition variable for the pass they asked for (bounded timeout).
 * Lock order: there is no nesting; each lock (a store stripe, the
 * registration thread's stop lock, the maintenance lock) is taken alone.
 * The store's corrupt hook takes the maintenance lock after releasing the
 * stripe.
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/httpd.h"
#include "common/log.h"
#include "common/opts.h"
#include "common/util.h"
#include "server/chunk/api.h"
#include "server/chunk/maint.h"
#include "server/chunk/reg.h"
#include "server/chunk/store.h"

static struct {
    char *data;
    char *listen;
    char *advertise;
    char *meta;
    char *addr_file;
    char *log_file;
    uint64_t capacity;
    uint64_t hb_interval_ms;
    uint64_t max_chunk;
    uint64_t max_inflight;
    int64_t compress_level;
    int direct_io;
    int64_t max_connections;
    uint64_t maint_rate;
    uint64_t scrub_interval_ms;
    uint64_t sha_scrub_interval_ms;
    uint64_t repair_interval_ms;
    uint64_t repair_delay_ms;
    uint64_t gc_interval_ms;
    uint64_t gc_grace_ms;
    enum log_level log_level;
} cfg;

static const opt_def chunkd_opts[] = {
    {"data", 'd', OPT_STR, &cfg.data, NULL, "DIR",
     "Data directory holding the chunk files (required).", 0, 0},
    {"listen", 'l', OPT_STR, &cfg.listen, "127.0.0.1:7420", "HOST:PORT",
     "Address to serve HTTP on; port 0 picks a free port.", 0, 0},
    {"advertise", 0, OPT_STR, &cfg.advertise, NULL, "HOST:PORT",
     "Address registered with metad (default: the listen address).", 0, 0},
    {"meta", 'm', OPT_STR, &cfg.meta, NULL, "HOST:PORT",
     "The cairn-metad to register with; without it the server runs standalone.", 0, 0},
    {"addr-file", 0, OPT_STR, &cfg.addr_file, NULL, "FILE",
     "Write HOST:PORT here (atomically) once the server accepts connections.", 0, 0},
    {"capacity", 0, OPT_SIZE, &cfg.capacity, "0", "SIZE",
     "Bytes offered to the cluster; 0 = size of the data file system.", 0, 0},
    {"heartbeat-interval", 0, OPT_MS, &cfg.hb_interval_ms, "2s", "DURATION",
     "Time between heartbeats to metad.", 100, 3600000},
    {"max-chunk", 0, OPT_SIZE, &cfg.max_chunk, "64M", "SIZE",
     "Largest chunk (PUT body) accepted.", 1, 1 << 30},
    {"max-inflight", 0, OPT_SIZE, &cfg.max_inflight, "256M", "SIZE",
     "Cap on upload bytes being received at once; past it PUT gets 503 + Retry-After.", 0, 0},
    {"compress-level", 0, OPT_INT, &cfg.compress_level, "0", "N",
     "Zstd level for new chunk files (1-22); 0 stores chunks uncompressed.", 0, 22},
    {"direct-io", 0, OPT_BOOL, &cfg.direct_io, "true", NULL,
     "Write new chunk files with O_DIRECT, past the page cache (through up to 4 bounce "
     "buffers of a chunk's size, chunks up to 16 MiB); file systems that refuse it get "
     "buffered writes.", 0, 0},
    {"max-connections", 0, OPT_INT, &cfg.max_connections, "1024", "N",
     "Most concurrent HTTP connections.", 1, 65536},
    {"maint-rate", 0, OPT_SIZE, &cfg.maint_rate, "50M", "SIZE",
     "Bytes per second that scrub, repair and re-fetch may read, send and fetch together; "
     "0 = no limit.", 0, 0},
    {"scrub-interval", 0, OPT_MS, &cfg.scrub_interval_ms, "7d", "DURATION",
     "Time between scrubs (header and CRC32C of every chunk file); 0 = only when asked.", 0,
     INT64_MAX},
    {"sha-scrub-interval", 0, OPT_MS, &cfg.sha_scrub_interval_ms, "30d", "DURATION",
     "Time between scrubs that also check every chunk's SHA-256; 0 = only when asked.", 0,
     INT64_MAX},
    {"repair-interval", 0, OPT_MS, &cfg.repair_interval_ms, "1h", "DURATION",
     "Time between repair/rebalance passes; 0 = only when asked or after a map change.", 0,
     INT64_MAX},
    {"repair-delay", 0, OPT_MS, &cfg.repair_delay_ms, "30s", "DURATION",
     "Wait this long after a cluster map change (or start) before a repair pass.", 0,
     INT64_MAX},
    {"gc-interval", 0, OPT_MS, &cfg.gc_interval_ms, "1h", "DURATION",
     "Time between garbage collection passes; 0 = only when asked.", 0, INT64_MAX},
    {"gc-grace", 0, OPT_MS, &cfg.gc_grace_ms, "1h", "DURATION",
     "Unreferenced chunks younger than this (file mtime) are never deleted.", 0, INT64_MAX},
    {"log-level", 0, OPT_LEVEL, &cfg.log_level, "info", "LEVEL",
     "Log level: error, warn, info or debug.", 0, 0},
    {"log-file", 0, OPT_STR, &cfg.log_file, NULL, "FILE",
     "Append log lines to FILE instead of stderr.", 0, 0},
    {NULL, 0, 0, NULL, NULL, NULL, NULL, 0, 0},
};

static const opts_spec chunkd_spec = {
    .prog = "cairn-chunkd",
    .usage = "--data DIR [OPTIONS]",
    .summary = "Stores content-addressed chunks for cairn on local disk and serves them over "
               "HTTP (PUT/GET/HEAD/DELETE /chunks/<sha256>). Registers with cairn-metad and "
               "heartbeats while it runs; keeps serving when metad is unreachable.",
    .defs = chunkd_opts,
};

/* The registration thread starts after httpd (it needs the bound port), so
 * /metrics finds it through this pointer once it exists. */
static _Atomic(chunkreg *) chunkd_reg;
static _Atomic(maint *) chunkd_maint;

static void chunkd_metrics(buf *out, void *ctx)
{
    chunkapi_metrics(out, ctx);
    chunkreg_metrics(out, atomic_load(&chunkd_reg));
    maint_metrics(out, atomic_load(&chunkd_maint));
}

/* The address clients should use: --advertise, else the listen host with
 * the port actually bound. A wildcard host says nothing to a client, so it
 * is replaced by this machine's host name. */
static char *chunkd_public_addr(const char *listen_host, uint16_t port)
{
    if (cfg.advertise)
        return xstrdup(cfg.advertise);
    if (strcmp(listen_host, "0.0.0.0") == 0 || strcmp(listen_host, "::") == 0 ||
        listen_host[0] == '\0') {
        char name[256];
        if (gethostname(name, sizeof name) == 0) {
            name[sizeof name - 1] = '\0';
            return xasprintf("%s:%u", name, port);
        }
    }
    return xasprintf("%s:%u", listen_host, port);
}

int main(int argc, char **argv)
{
    int rc, exit_code = 2; /* command-line errors until the options check out */
    chunkstore *store = NULL;
    chunkapi *api = NULL;
    httpd *http = NULL;
    chunkreg *reg = NULL;
    maint *mt = NULL;
    char *addr = NULL, *public_addr = NULL;

    for (int i = 1; i < argc; i++) {
        /* Hidden: prints the option list that man/cairn-chunkd.8 embeds. */
        if (strcmp(argv[i], "--print-man-options") == 0) {
            opts_print_man(&chunkd_spec, stdout);
            return 0;
        }
    }

    log_set_component("chunkd");
    rc = opts_parse(&chunkd_spec, argc, argv);
    if (rc == OPTS_HELP || rc == OPTS_VERSION)
        return 0;
    if (rc < 0)
        goto out_opts;
    if (rc < argc) {
        fprintf(stderr, "cairn-chunkd: unexpected argument '%s'\n", argv[rc]);
        goto out_opts;
    }
    if (!cfg.data || !cfg.data[0]) {
        fprintf(stderr, "cairn-chunkd: --data DIR is required\n");
        goto out_opts;
    }
    char host[256];
    uint16_t port;
    if (parse_hostport(cfg.listen, host, sizeof host, &port) < 0) {
        fprintf(stderr, "cairn-chunkd: --listen '%s' is not HOST:PORT\n", cfg.listen);
        goto out_opts;
    }
    if (cfg.meta) {
        char mhost[256];
        uint16_t mport;
        if (parse_hostport(cfg.meta, mhost, sizeof mhost, &mport) < 0 || mport == 0) {
            fprintf(stderr, "cairn-chunkd: --meta '%s' is not HOST:PORT\n", cfg.meta);
            goto out_opts;
        }
    }
    exit_code = 1;
    log_set_level(cfg.log_level);
    if (cfg.log_file && (rc = log_open(cfg.log_file)) < 0) {
        fprintf(stderr, "cairn-chunkd: cannot open log file %s: %s\n", cfg.log_file,
                cairn_strerror(rc));
        goto out_opts;
    }

    /* Memory follows --max-inflight. Upload bodies (and chunks read for
     * GET) are a few MiB each, malloc'd and freed on the connection
     * threads. With glibc's default dynamic mmap threshold, the first such
     * free raises the threshold past the chunk size, and from then on
     * every body comes from one of the per-thread arenas (up to 8 per
     * core), each of which keeps its freed blocks: the peak RSS grew with
     * the number of arenas times the chunk size, whatever the in-flight
     * cap (measured: 64-82 MiB under an 8 MiB cap with 4 MiB chunks, ~20
     * MiB with this). A fixed threshold keeps large blocks in their own
     * mappings, returned to the system at free. */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);

    /* Before any thread exists: the signals we wait for are blocked in
     * every thread, and a client hanging up never kills the process. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (cfg.addr_file)
        unlink(cfg.addr_file); /* a stale file must not point at a dead server */

    chunkstore_config scfg = {
        .dir = cfg.data, .compress_level = (int)cfg.compress_level, .direct_io = cfg.direct_io};
    if ((rc = chunkstore_open(&scfg, &store)) < 0)
        goto out;
    chunkstore_stats st;
    chunkstore_get_stats(store, &st);
    uint64_t capacity = cfg.capacity;
    if (!capacity && (rc = chunkstore_fs_capacity(store, &capacity)) < 0) {
        log_error("cannot size the file system of %s: %s", cfg.data, cairn_strerror(rc));
        goto out;
    }

    maint_config mcfg = {
        .store = store,
        .dir = cfg.data,
        .meta = cfg.meta,
        .max_chunk = cfg.max_chunk,
        .rate = cfg.maint_rate,
        .scrub_interval_ms = cfg.scrub_interval_ms,
        .sha_scrub_interval_ms = cfg.sha_scrub_interval_ms,
        .repair_interval_ms = cfg.repair_interval_ms,
        .repair_delay_ms = cfg.repair_delay_ms,
        .gc_interval_ms = cfg.gc_interval_ms,
        .gc_grace_ms = cfg.gc_grace_ms,
    };
    mt = maint_new(&mcfg);
    atomic_store(&chunkd_maint, mt);

    char *abs_data = realpath(cfg.data, NULL);
    chunkapi_config acfg = {.store = store, .max_chunk = cfg.max_chunk, .maint = mt,
                            .data_dir = abs_data};
    api = chunkapi_new(&acfg);
    free(abs_data);
    size_t nroutes;
    const httpd_route *routes = chunkapi_routes(api, &nroutes);
    httpd_config hcfg = {
        .host = host,
        .port = port,
        .routes = routes,
        .nroutes = nroutes,
        .ctx = api,
        .max_inflight_body = cfg.max_inflight,
        .max_connections = (unsigned)cfg.max_connections,
        .metrics = chunkd_metrics,
    };
    http = httpd_start(&hcfg);
    if (!http)
        goto out;
    port = httpd_port(http);
    addr = xasprintf("%s:%u", host, port);
    public_addr = chunkd_public_addr(host, port);

    if (cfg.meta) {
        chunkreg_config rcfg = {
            .meta = cfg.meta,
            .addr = public_addr,
            .dir = cfg.data,
            .store = store,
            .capacity = capacity,
            .hb_interval_ms = cfg.hb_interval_ms,
        };
        if ((rc = chunkreg_start(&rcfg, &reg)) < 0) {
            log_error("cannot start registration: %s", cairn_strerror(rc));
            goto out;
        }
        atomic_store(&chunkd_reg, reg);
    } else {
        log_warn("no --meta given: serving chunks without registering with a metad");
    }

    if ((rc = maint_start(mt, reg)) < 0) {
        log_error("cannot start the maintenance thread: %s", cairn_strerror(rc));
        goto out;
    }

    if (cfg.addr_file) {
        char *line = xasprintf("%s\n", addr);
        rc = write_file_atomic(cfg.addr_file, line, strlen(line));
        free(line);
        if (rc < 0) {
            log_error("cannot write %s: %s", cfg.addr_file, cairn_strerror(rc));
            goto out;
        }
    }
    log_info("serving %s on %s (%llu chunks, %llu bytes, capacity %llu)", cfg.data, addr,
             (unsigned long long)st.chunks, (unsigned long long)st.bytes,
             (unsigned long long)capacity);

    int sig = 0;
    while (sigwait(&sigs, &sig) != 0 || (sig != SIGTERM && sig != SIGINT))
        ;
    log_info("%s received, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    exit_code = 0;

out:
    /* The maintenance thread stops first: a pass in progress ends at its
     * next chunk, and maint_run callers on httpd threads are released. */
    maint_stop(mt);
    if (http)
        httpd_stop(http);
    chunkreg_stop(reg);
    atomic_store(&chunkd_maint, NULL);
    maint_free(mt);
    chunkapi_free(api);
    chunkstore_free(store);
    free(addr);
    free(public_addr);
out_opts:
    opts_free(&chunkd_spec);
    return exit_code;
}
