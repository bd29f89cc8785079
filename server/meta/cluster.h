/*
 * cluster.h — the cluster map of cairn-metad (DESIGN.md §4): chunk servers
 * (id, address, capacity, usage, state) and the epoch.
 *
 * Server ids are assigned here, on the first registration, and are
 * persisted with everything else that changes placement (a new server, an
 * address or capacity change, UP <-> DOWN) through op records of type
 * CLOP_SERVER, applied by cluster_apply both live and on WAL replay. Each
 * such change increments the epoch, which the record carries, so the epoch
 * never goes back across restarts. Usage numbers and heartbeat times are
 * volatile: they are not logged.
 *
 * A background thread (cluster_start) marks a server DOWN when it has not
 * been heard from for hb_timeout_ms; its next heartbeat marks it UP again.
 * After a restart every server keeps its logged state, and UP servers get
 * a fresh heartbeat timeout to report in.
 *
 * Threads: every function may be called from any thread; one mutex guards
 * the map and is held while the op record is appended to the WAL through
 * log_fn, so the log order is the apply order. Lock order: the namespace
 * rwlock (if held) before the cluster mutex, the cluster mutex before the
 * WAL's own locks. log_fn must not call back into the cluster.
 *
 * Errors: -ENOENT (heartbeat from an unknown id: re-register), -EINVAL
 * (bad address or id), CAIRN_EPROTO / CAIRN_ECORRUPT for bad records.
 */
#ifndef CAIRN_META_CLUSTER_H
#define CAIRN_META_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "common/rec.h"

typedef struct cluster cluster;

enum { CLOP_SERVER = 48, CLSNAP_CLUSTER = 67, CLSNAP_SERVER = 68 };

#define CLUSTER_ADDR_MAX 255
#define CLUSTER_SID_MAX 0x7fffffffu

/* Appends an op record to the WAL and returns its lsn; it does not return
 * when the WAL has failed. */
typedef uint64_t (*cluster_log_fn)(const uint8_t *rec, size_t len, void *ctx);

cluster *cluster_new(uint64_t hb_timeout_ms, cluster_log_fn log_fn, void *ctx);
void cluster_free(cluster *c);

/* Start/stop the DOWN-marking thread (stop before cluster_free). */
int cluster_start(cluster *c);
void cluster_stop(cluster *c);

/* Replay (or snapshot load): apply one CLOP_SERVER / CLSNAP_* record. */
int cluster_apply(cluster *c, const uint8_t *rec, size_t len);

typedef struct cluster_report {
    uint32_t sid;                    /* 0 = new server */
    char addr[CLUSTER_ADDR_MAX + 1];
    uint64_t capacity, used, chunks;
} cluster_report;

/* Register (heartbeat = 0) or heartbeat a chunk server. *sid receives its
 * id, *epoch the epoch after the change, *lsn the lsn of the logged record
 * to wait for (0 when nothing was logged). */
int cluster_report_in(cluster *c, const cluster_report *in, int heartbeat, uint32_t *sid,
                      uint64_t *epoch, uint64_t *lsn);

uint64_t cluster_epoch(cluster *c);
/* Suggested heartbeat interval for chunk servers (ms). */
uint64_t cluster_hb_interval_ms(const cluster *c);
/* FSREC_CLUSTER answer into w (initialised here). */
void cluster_encode(cluster *c, recw *w);

typedef struct cluster_counts {
    uint64_t up, down, capacity, used, chunks;   /* capacity/used over UP servers */
} cluster_counts;
void cluster_get_counts(cluster *c, cluster_counts *out);

/* Snapshot records (CLSNAP_*); emit as in fs.h. at_end(ctx), if not NULL,
 * runs while the cluster mutex is still held after the last record, so the
 * caller can note the WAL position that exactly matches what was written. */
int cluster_snapshot_write(cluster *c, int (*emit)(const uint8_t *rec, size_t len, void *ctx),
                           void (*at_end)(void *ctx), void *ctx);

#endif
