/*
 * metad.h — the state of one cairn-metad process, shared by its HTTP
 * handlers (ops.c, ops_cluster.c), persistence (persist.c) and main.c.
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
 *   3. the WAL's internal locks (wal.c), taken inside wal_append/wal_wait.
 *   4. persist's mutex (persist.c) guards only the snapshot trigger state;
 *      a leaf lock, never held while taking another.
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

typedef struct metad {
    fsinfo info;
    uint32_t replica;           /* this replica's id in version vectors */
    char *data_dir, *wal_dir, *snap_dir;

    pthread_rwlock_t ns_lock;   /* see the lock order above */
    fs *fs;
    cluster *cl;
    wal *wal;
    persist *ps;

    /* metrics */
    uint64_t cas_conflicts, not_modified;
} metad;

/* Content type of record bodies (docs/PROTOCOL.md). */
#define METAD_CT_REC "application/x-cairn-record"

/* The HTTP routes (ops.c) and callbacks for httpd_config. */
extern const httpd_route metad_routes[];
extern const size_t metad_nroutes;
void metad_metrics(buf *out, void *ctx);
void metad_global_headers(httpd_req *req, void *ctx);

#endif
