/*
 * metad.h — the state of one cairn-metad process, shared by its HTTP
 * handlers (ops.c, ops_session.c, ops_cluster.c), persistence (persist.c)
 * and main.c.
 *
 * LOCKS AND LOCK ORDER (the one place they are written down):
 *
 *   1. metad.ns_lock (pthread rwlock) guards the namespace: m->fs with its
 *      inodes, entries, chunk maps, xattrs and the chunk reference table.
 *      Readers (lookup, getattr, readdir, readlink, map, statfs's file
 *      count, xattr get/list, refs) hold it shared. Mutations hold it
 *      exclusive across: build op record -> fs_apply -> wal_append -> encode
 *      the answer; never across wal_wait, an fsync or an HTTP reply. The
 *      snapshot serializer holds it shared (writers pause, readers go on).
 *   2. cluster's mutex (cluster.c) guards the cluster map; taken after
 *      ns_lock when both are needed (snapshot), never the other way round.
 *   3. the sessions mutex (session.c) guards sessions and their holds; a
 *      leaf taken under ns_lock (either mode) by the paths that decide
 *      about orphans, so that adding a hold (map/create with FT_OPEN,
 *      session_hold: ns_lock shared or exclusive) and deciding to keep or
 *      free an orphan (unlink, rename, release, the orphan reaper: ns_lock
 *      exclusive) never interleave.
 *   4. the WAL's internal locks (wal.c), taken inside wal_append/wal_wait.
 *   5. persist's mutex (persist.c) guards only the snapshot trigger state;
 *      a leaf lock, never held while taking another.
 *   6. the change feed's mutex (changes.c): a leaf lock, taken under
 *      ns_lock exclusive by every logged change.
 *
 * Counters read by /metrics are updated with atomic operations.
 */
#ifndef CAIRN_META_METAD_H
#define CAIRN_META_METAD_H

#include <pthread.h>
#include <stdint.h>

#include "common/httpd.h"
#include "server/meta/cluster.h"
#include "server/meta/fs.h"
#include "server/meta/fsinfo.h"
#include "server/meta/wal.h"

typedef struct persist persist;
typedef struct sessions sessions;
typedef struct reaper reaper;
typedef struct changes changes;

typedef struct metad {
    fsinfo info;
    uint32_t replica;           /* this replica's id in version vectors */
    uint64_t inline_budget;     /* most bytes of inline data commits may bring the fs to */
    char *data_dir, *wal_dir, *snap_dir;

    pthread_rwlock_t ns_lock;   /* see the lock order above */
    fs *fs;
    cluster *cl;
    wal *wal;
    persist *ps;
    sessions *ss;               /* client sessions (session.h) */
    reaper *rp;                 /* the orphan reaper thread (ops_session.c) */
    changes *chg;               /* the change feed (changes.h) */

    /* metrics */
    uint64_t cas_conflicts, not_modified, orphans_freed, inline_refused;
} metad;

/* Content type of record bodies (docs/PROTOCOL.md). */
#define METAD_CT_REC "application/x-cairn-record"

/* The HTTP routes (ops.c) and callbacks for httpd_config. */
extern const httpd_route metad_routes[];
extern const size_t metad_nroutes;
void metad_metrics(buf *out, void *ctx);
void metad_global_headers(httpd_req *req, void *ctx);

/* The orphan reaper (ops_session.c): a thread that expires sessions and
 * frees orphans nobody holds once the grace period is over. It wakes
 * every lease/4 (at least every second). Start after recovery and the
 * creation of m->ss; stop before the WAL closes. */
int metad_reaper_start(metad *m);
void metad_reaper_stop(metad *m);

#endif
