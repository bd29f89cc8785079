/*
 * cluster.h — the cluster map of cairn-metad (DESIGN.md §4): chunk servers
 * (id, address, capacity, usage, state) and the epoch.
 *
 * Server ids are assigned here, on the first registration, in increasing
 * order; an id below the next one that is not in the map was removed and
 * is retired (a server registering with it gets a new id). Everything that
 * changes placement is persisted: a new server, an address or capacity
 * change, any change of state, the operator's drain flag (op records of
 * type CLOP_SERVER) and removal (CLOP_REMOVE), applied by cluster_apply
 * both live and on WAL replay. Each such change increments the epoch,
 * which the record carries, so the epoch never goes back across restarts.
 * Usage numbers and heartbeat times are volatile: they are not logged.
 *
 * States (fsrec.h): a server that is heard from is DRAINING if an operator
 * drained it, else FULL if its free space (capacity - used) is below the
 * full reserve (and stays FULL until it is 1/16 above it), else UP. A
 * background thread (cluster_start) marks any server DOWN when it has not
 * been heard from for hb_timeout_ms (DOWN wins over the others; the drain
 * flag is kept); its next heartbeat gives it its state back. After a
 * restart every server keeps its logged state, and the ones not DOWN get a
 * fresh heartbeat timeout to report in.
 *
 * Threads: every function may be called from any thread; one mutex guards
 * the map and is held while the op record is appended to the WAL through
 * log_fn, so the log order is the apply order. Lock order: the namespace
 * rwlock (if held) before the cluster mutex, the cluster mutex before the
 * WAL's own locks. log_fn must not call back into the cluster.
 *
 * Errors: -ENOENT (heartbeat from an unknown id: re-register; an unknown id
 * in an operator action; a replayed removal of an unknown server), -EINVAL
 * (bad address or id), -EBUSY (removing a server in service), -ENOSPC (no
 * ids left), CAIRN_EPROTO / CAIRN_ECORRUPT for bad records.
 */
#ifndef CAIRN_META_CLUSTER_H
#define CAIRN_META_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "common/rec.h"

typedef struct cluster cluster;

enum { CLOP_SERVER = 48, CLOP_REMOVE = 49, CLSNAP_CLUSTER = 67, CLSNAP_SERVER = 68 };

/* Private tag of CLOP_SERVER / CLSNAP_SERVER: u64 1 = drained by an
 * operator (never on the wire). */
enum { FT_CL_DRAIN = 210 };

#define CLUSTER_ADDR_MAX 255
#define CLUSTER_SID_MAX 0x7fffffffu

/* Appends an op record to the WAL and returns its lsn; it does not return
 * when the WAL has failed. */
typedef uint64_t (*cluster_log_fn)(const uint8_t *rec, size_t len, void *ctx);

/* full_reserve: free bytes below which a server is FULL; 0 = never;
 * CLUSTER_RESERVE_AUTO = the smaller of 1 GiB and 5 % of its capacity. */
#define CLUSTER_RESERVE_AUTO UINT64_MAX
cluster *cluster_new(uint64_t hb_timeout_ms, uint64_t full_reserve, cluster_log_fn log_fn,
                     void *ctx);
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

/* Operator actions. Each logs a record and bumps the epoch when it changes
 * something (*lsn: what to wait for, 0 if nothing changed) and writes the
 * answer into w (initialised here on success): FSREC_SERVER with the
 * server's fields and FT_EPOCH.
 * cluster_set_drain: drain = 1 marks the server DRAINING (a DOWN server
 * stays DOWN and is DRAINING once back), 0 gives it back its UP/FULL
 * state. -ENOENT for an unknown id.
 * cluster_remove: drops the server from the map for good (its id is
 * retired). -ENOENT, -EBUSY unless it is DRAINING or DOWN. */
int cluster_set_drain(cluster *c, uint32_t sid, int drain, recw *w, uint64_t *lsn);
int cluster_remove(cluster *c, uint32_t sid, recw *w, uint64_t *lsn);

uint64_t cluster_epoch(cluster *c);
/* Suggested heartbeat interval for chunk servers (ms). */
uint64_t cluster_hb_interval_ms(const cluster *c);
/* FSREC_CLUSTER answer into w (initialised here). */
void cluster_encode(cluster *c, recw *w);

typedef struct cluster_counts {
    uint64_t up, down, draining, full;           /* servers per state */
    uint64_t capacity, used, chunks;             /* over every server in the map */
} cluster_counts;
void cluster_get_counts(cluster *c, cluster_counts *out);

/* Snapshot records (CLSNAP_*); emit as in fs.h. at_end(ctx), if not NULL,
 * runs while the cluster mutex is still held after the last record, so the
 * caller can note the WAL position that exactly matches what was written. */
int cluster_snapshot_write(cluster *c, int (*emit)(const uint8_t *rec, size_t len, void *ctx),
                           void (*at_end)(void *ctx), void *ctx);

#endif
