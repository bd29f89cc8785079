/*
 * cairn-metad — the metadata server (DESIGN.md §2-§5, docs/PROTOCOL.md).
 *
 * Thread model (CONVENTIONS.md 10):
 *   - main thread: parses options, formats or opens the filesystem
 *     (fs.info), recovers the namespace (newest snapshot + WAL replay,
 *     before any other thread exists), starts the threads below, writes
 *     --addr-file, then blocks in sigwait() for SIGTERM/SIGINT, which are
 *     blocked in every thread. On a signal it stops httpd (waiting for the
 *     handlers in progress, so every answered write is durable; readers
 *     of the change feed waiting for a record are answered at once), stops the
 *     orphan reaper, the cluster checker and the snapshot thread, takes a final snapshot if
 *     anything changed, flushes and closes the WAL, and exits 0.
 *   - httpd threads (libmicrohttpd, one per connection): run ops.c. They
 *     block on the namespace rwlock (readers shared, mutations exclusive)
 *     and, after releasing it, in wal_wait until their record is durable;
 *     when no batch is being written, the waiting thread writes and
 *     fdatasyncs everything pending itself (wal.c). A change feed reader
 *     (POST /v1/changes) waits on its connection's thread for a record of
 *     another session, up to the time it asked for (changes.c).
 *   - WAL flusher (wal.c): writes pending records nobody is writing (as one
 *     group, one fdatasync) and carries out rotations; wakes waiters. A
 *     mutation's record does not wake it (its waiter writes it).
 *   - snapshot thread (persist.c): on a trigger, serializes the state under
 *     the namespace read lock, then writes the file without locks.
 *   - cluster checker (cluster.c): wakes a few times per heartbeat timeout
 *     and marks silent chunk servers DOWN (cluster mutex only).
 *   - orphan reaper (ops_session.c): wakes every lease/4 (at least every
 *     second), expires client sessions not renewed within the lease and
 *     frees orphans nobody holds: it takes the namespace lock (shared to
 *     look, exclusive to free), logs, and waits for the WAL without locks.
 * Locks and their order are described in one place: server/meta/metad.h.
 *
 * Exit status: 0 after SIGTERM/SIGINT, 1 on a startup error, 2 on a
 * command-line error, 3 when the WAL fails (persist.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/httpd.h"
#include "common/log.h"
#include "common/opts.h"
#include "common/util.h"
#include "server/meta/changes.h"
#include "server/meta/metad.h"
#include "server/meta/persist.h"
#include "server/meta/session.h"

static struct {
    char *data;
    char *listen;
    char *addr_file;
    char *log_file;
    int format;
    uint64_t chunk_size;
    int64_t replicas;
    int64_t min_replicas;
    uint64_t inline_max;
    uint64_t inline_budget;
    uint64_t hb_timeout_ms;
    uint64_t session_lease_ms;
    int64_t change_log;
    char *full_reserve;
    int64_t snapshot_every;
    int64_t replica_id;
    int64_t max_connections;
    uint64_t max_inflight;
    int no_sync;
    int wal_truncate_corrupt;
    enum log_level log_level;
} cfg;

static const opt_def metad_opts[] = {
    {"data", 'd', OPT_STR, &cfg.data, NULL, "DIR",
     "Data directory: fs.info, wal/ and snap/ (required).", 0, 0},
    {"listen", 'l', OPT_STR, &cfg.listen, "127.0.0.1:7400", "HOST:PORT",
     "Address to serve HTTP on; port 0 picks a free port.", 0, 0},
    {"addr-file", 0, OPT_STR, &cfg.addr_file, NULL, "FILE",
     "Write HOST:PORT here (atomically) once the server accepts connections.", 0, 0},
    {"format", 0, OPT_BOOL, &cfg.format, "false", NULL,
     "Create the filesystem if DIR holds none; on an existing one, only check that the "
     "parameters below match (a format never destroys data).", 0, 0},
    {"chunk-size", 0, OPT_SIZE, &cfg.chunk_size, "4M", "SIZE",
     "With --format: the fixed chunk size files are cut at.", 4096, 256 << 20},
    {"replicas", 0, OPT_INT, &cfg.replicas, "2", "N",
     "With --format: copies kept of every chunk.", 1, 16},
    {"min-replicas", 0, OPT_INT, &cfg.min_replicas, "0", "N",
     "With --format: copies a write needs to succeed; 0 = --replicas.", 0, 16},
    {"inline-max", 0, OPT_SIZE, &cfg.inline_max, "64K", "SIZE",
     "With --format: files up to this size are stored inside their inode (no chunk server "
     "traffic).", 0, 1 << 20},
    {"inline-budget", 0, OPT_SIZE, &cfg.inline_budget, "1G", "SIZE",
     "Memory for file data stored inside inodes; once used, small files written go to the "
     "chunk servers instead (commits of new inline data are refused with 507).", 0, 0},
    {"heartbeat-timeout", 0, OPT_MS, &cfg.hb_timeout_ms, "10s", "DURATION",
     "A chunk server silent this long is marked down.", 50, 86400000},
    {"session-lease", 0, OPT_MS, &cfg.session_lease_ms, "30s", "DURATION",
     "A client session not renewed this long expires; files only it held open are freed. "
     "After a restart, files unlinked while open get this long to be held again.", 100,
     86400000},
    {"change-log", 0, OPT_INT, &cfg.change_log, "65536", "N",
     "Recent changes kept for mounts following the change feed (about 100 bytes each); a "
     "mount that falls further behind drops everything it caches.", 16, 16777216},
    {"full-reserve", 0, OPT_STR, &cfg.full_reserve, "auto", "SIZE",
     "A chunk server with less free space than this is FULL (no new chunks placed there); "
     "0 = never, auto = the smaller of 1G and 5% of its capacity.", 0, 0},
    {"snapshot-every", 0, OPT_INT, &cfg.snapshot_every, "100000", "N",
     "Take a snapshot after this many logged changes (0 = only at shutdown).", 0,
     INT64_MAX},
    {"replica-id", 0, OPT_INT, &cfg.replica_id, "1", "N",
     "This server's id in version vectors.", 1, 0xffffffffLL},
    {"max-connections", 0, OPT_INT, &cfg.max_connections, "1024", "N",
     "Most concurrent HTTP connections.", 1, 65536},
    {"max-inflight", 0, OPT_SIZE, &cfg.max_inflight, "256M", "SIZE",
     "Cap on request body bytes being received at once; past it 503 + Retry-After.", 0, 0},
    {"no-sync", 0, OPT_BOOL, &cfg.no_sync, "false", NULL,
     "Testing only: never fdatasync the WAL (a crash of the machine loses acknowledged "
     "changes).", 0, 0},
    {"wal-truncate-corrupt", 0, OPT_BOOL, &cfg.wal_truncate_corrupt, "false", NULL,
     "Recovery override: cut the WAL at a corrupt record instead of refusing to start "
     "(changes after it are lost).", 0, 0},
    {"log-level", 0, OPT_LEVEL, &cfg.log_level, "info", "LEVEL",
     "Log level: error, warn, info or debug.", 0, 0},
    {"log-file", 0, OPT_STR, &cfg.log_file, NULL, "FILE",
     "Append log lines to FILE instead of stderr.", 0, 0},
    {NULL, 0, 0, NULL, NULL, NULL, NULL, 0, 0},
};

static const opts_spec metad_spec = {
    .prog = "cairn-metad",
    .usage = "--data DIR [--format] [OPTIONS]",
    .summary = "Holds the cairn namespace (inodes, directories, chunk maps, xattrs) and the "
               "cluster map of chunk servers, and serves them over HTTP. Every change is "
               "logged to a write-ahead log and acknowledged only once it is on disk; "
               "snapshots bound recovery time.",
    .defs = metad_opts,
};

static uint64_t cluster_log(const uint8_t *rec, size_t len, void *ctx)
{
    return persist_log(ctx, rec, len);
}

/* Format on request, or load and check DATA/fs.info. 0 or -1 (logged). */
static int open_fsinfo(metad *m)
{
    char *path = xasprintf("%s/fs.info", cfg.data);
    fsinfo want, have;
    char why[128], hex[2 * FSINFO_ID_LEN + 1];
    struct stat st;
    int rc = -1, r;

    memset(&want, 0, sizeof(want));
    want.chunk_size = (uint32_t)cfg.chunk_size;
    want.replicas = (uint32_t)cfg.replicas;
    want.min_replicas = (uint32_t)(cfg.min_replicas ? cfg.min_replicas : cfg.replicas);
    want.inline_max = (uint32_t)cfg.inline_max;
    if (cfg.format && fsinfo_check(&want, why, sizeof(why)) < 0) {
        log_error("cannot format: %s", why);
        goto out;
    }
    r = fsinfo_load(path, &have);
    if (r == -ENOENT) {
        if (!cfg.format) {
            log_error("%s holds no cairn filesystem (no fs.info); run with --format to create "
                      "one", cfg.data);
            goto out;
        }
        if (stat(m->wal_dir, &st) == 0 || stat(m->snap_dir, &st) == 0) {
            log_error("%s has wal/ or snap/ but no fs.info: refusing to format over it",
                      cfg.data);
            goto out;
        }
        want.created_ns = now_realtime_ns();
        if ((r = fsinfo_new_id(want.fsid)) < 0 || (r = fsinfo_store(path, &want)) < 0) {
            log_error("cannot write %s: %s", path, cairn_strerror(r));
            goto out;
        }
        hex_encode(want.fsid, FSINFO_ID_LEN, hex);
        log_info("formatted filesystem %s: chunk size %u, replicas %u (min %u), inline max %u",
                 hex, want.chunk_size, want.replicas, want.min_replicas, want.inline_max);
        have = want;
    } else if (r < 0) {
        log_error("cannot read %s: %s", path, cairn_strerror(r));
        goto out;
    } else if (cfg.format && !fsinfo_same_params(&have, &want)) {
        log_error("%s already holds a filesystem with chunk size %u, replicas %u (min %u), "
                  "inline max %u; --format asked for %u, %u (min %u), %u: refusing (a format "
                  "never destroys data)", cfg.data, have.chunk_size, have.replicas,
                  have.min_replicas, have.inline_max, want.chunk_size, want.replicas,
                  want.min_replicas, want.inline_max);
        goto out;
    }
    m->info = have;
    rc = 0;
out:
    free(path);
    return rc;
}

int main(int argc, char **argv)
{
    static metad m;
    int rc, exit_code = 2, sig = 0;
    httpd *http = NULL;
    char host[256], *addr = NULL;
    uint16_t port;
    sigset_t sigs;
    persist_config pc;
    persist_stats ps;
    httpd_config hc;
    uint64_t full_reserve = CLUSTER_RESERVE_AUTO;

    for (int i = 1; i < argc; i++) {
        /* Hidden: prints the option list that man/cairn-metad.8 embeds. */
        if (strcmp(argv[i], "--print-man-options") == 0) {
            opts_print_man(&metad_spec, stdout);
            return 0;
        }
    }
    log_set_component("metad");
    rc = opts_parse(&metad_spec, argc, argv);
    if (rc == OPTS_HELP || rc == OPTS_VERSION)
        return 0;
    if (rc < 0)
        goto out_opts;
    if (rc < argc) {
        fprintf(stderr, "cairn-metad: unexpected argument '%s'\n", argv[rc]);
        goto out_opts;
    }
    if (!cfg.data || !cfg.data[0]) {
        fprintf(stderr, "cairn-metad: --data DIR is required\n");
        goto out_opts;
    }
    if (parse_hostport(cfg.listen, host, sizeof(host), &port) < 0) {
        fprintf(stderr, "cairn-metad: --listen '%s' is not HOST:PORT\n", cfg.listen);
        goto out_opts;
    }
    if (strcmp(cfg.full_reserve, "auto") == 0) {
        full_reserve = CLUSTER_RESERVE_AUTO;
    } else if (parse_size(cfg.full_reserve, &full_reserve) < 0 ||
               full_reserve == CLUSTER_RESERVE_AUTO) {
        fprintf(stderr, "cairn-metad: --full-reserve '%s' is neither a size nor auto\n",
                cfg.full_reserve);
        goto out_opts;
    }
    if (cfg.min_replicas > cfg.replicas) {
        fprintf(stderr, "cairn-metad: --min-replicas %" PRId64 " is above --replicas %" PRId64
                "\n", cfg.min_replicas, cfg.replicas);
        goto out_opts;
    }
    exit_code = 1;
    log_set_level(cfg.log_level);
    if (cfg.log_file && (rc = log_open(cfg.log_file)) < 0) {
        fprintf(stderr, "cairn-metad: cannot open log file %s: %s\n", cfg.log_file,
                cairn_strerror(rc));
        goto out_opts;
    }

    /* Before any thread exists: only sigwait receives these, and a client
     * hanging up never kills the process. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (cfg.addr_file)
        unlink(cfg.addr_file);   /* a stale file must not point at a dead server */
    if (cfg.format && (rc = mkdir_p(cfg.data, 0755)) < 0) {
        log_error("cannot create %s: %s", cfg.data, cairn_strerror(rc));
        goto out_opts;
    }
    m.data_dir = cfg.data;
    m.wal_dir = xasprintf("%s/wal", cfg.data);
    m.snap_dir = xasprintf("%s/snap", cfg.data);
    m.replica = (uint32_t)cfg.replica_id;
    m.inline_budget = cfg.inline_budget;
    pthread_rwlock_init(&m.ns_lock, NULL);
    if (open_fsinfo(&m) < 0)
        goto out;
    m.fs = fs_new(m.info.chunk_size, m.info.inline_max);
    m.chg = changes_new((size_t)cfg.change_log);
    m.cl = cluster_new(cfg.hb_timeout_ms, full_reserve, cluster_log, &m);

    memset(&pc, 0, sizeof(pc));
    pc.snapshot_every = (uint64_t)cfg.snapshot_every;
    pc.no_sync = cfg.no_sync;
    pc.truncate_corrupt = cfg.wal_truncate_corrupt;
    if (persist_recover(&m, &pc) < 0)
        goto out;
    /* A filesystem that existed before this start may have files open on
     * clients that do not know of the restart yet: grace for one lease. */
    persist_get_stats(&m, &ps);
    if (ps.last_lsn > 0 || ps.replayed > 0) {
        fs_counts fc;
        fs_get_counts(m.fs, &fc);
        m.ss = sessions_new(cfg.session_lease_ms, cfg.session_lease_ms);
        log_info("clients have %" PRIu64 " ms to hold their open files again before orphans "
                 "nobody holds are freed (%" PRIu64 " orphans now)", cfg.session_lease_ms,
                 fc.orphans);
    } else {
        m.ss = sessions_new(cfg.session_lease_ms, 0);
    }
    if ((rc = persist_start(&m)) < 0 || (rc = cluster_start(m.cl)) < 0 ||
        (rc = metad_reaper_start(&m)) < 0) {
        log_error("cannot start threads: %s", cairn_strerror(rc));
        goto out;
    }

    memset(&hc, 0, sizeof(hc));
    hc.host = host;
    hc.port = port;
    hc.routes = metad_routes;
    hc.nroutes = metad_nroutes;
    hc.ctx = &m;
    hc.max_inflight_body = cfg.max_inflight;
    hc.max_connections = (unsigned)cfg.max_connections;
    hc.metrics = metad_metrics;
    hc.global_headers = metad_global_headers;
    /* Namespace requests are small: 32 KiB spares a 128 KiB memset each. */
    hc.conn_memory = 32 * 1024;
    http = httpd_start(&hc);
    if (!http)
        goto out;
    addr = xasprintf("%s:%u", host, httpd_port(http));
    if (cfg.addr_file) {
        char *line = xasprintf("%s\n", addr);
        rc = write_file_atomic(cfg.addr_file, line, strlen(line));
        free(line);
        if (rc < 0) {
            log_error("cannot write %s: %s", cfg.addr_file, cairn_strerror(rc));
            goto out;
        }
    }
    log_info("serving %s on %s (replica %u)", cfg.data, addr, m.replica);

    while (sigwait(&sigs, &sig) != 0 || (sig != SIGTERM && sig != SIGINT))
        ;
    log_info("%s received, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    exit_code = 0;

out:
    if (m.chg)
        changes_shutdown(m.chg);
    if (http)
        httpd_stop(http);
    metad_reaper_stop(&m);
    if (m.cl)
        cluster_stop(m.cl);
    persist_stop(&m, exit_code == 0);
    sessions_free(m.ss);
    cluster_free(m.cl);
    fs_free(m.fs);
    changes_free(m.chg);
    pthread_rwlock_destroy(&m.ns_lock);
    free(m.wal_dir);
    free(m.snap_dir);
    free(addr);
out_opts:
    opts_free(&metad_spec);
    return exit_code;
}
