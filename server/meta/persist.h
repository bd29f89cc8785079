/*
 * persist.h — durability glue of cairn-metad (DESIGN.md §5): WAL appends
 * and waits for the live paths, recovery at startup (newest snapshot, then
 * WAL replay through the same apply functions), and snapshots.
 *
 * Snapshots: after every `snapshot_every` logged records (and at clean
 * shutdown) the namespace and cluster map are serialized into memory under
 * the namespace READ lock (writers pause for that long; readers go on),
 * the WAL is rotated, and a background thread waits until the snapshot's
 * lsn is durable, writes the file (snap.h), and deletes the WAL segments
 * older than the older kept snapshot.
 *
 * Failure policy: a WAL that cannot append or sync means acknowledged
 * writes could be lost, so persist_log / persist_wait log the reason and
 * end the process with exit status 3 (fail loudly, never answer). A
 * failed snapshot write is logged and retried at the next trigger; the
 * WAL still holds everything.
 *
 * Threads: persist_log is called with ns_lock (or the cluster mutex) held;
 * persist_wait without locks. persist_recover runs before any thread.
 */
#ifndef CAIRN_META_PERSIST_H
#define CAIRN_META_PERSIST_H

#include <stddef.h>
#include <stdint.h>

#include "server/meta/metad.h"

typedef struct persist_config {
    uint64_t snapshot_every;    /* records between snapshots; 0 = never */
    int no_sync;                /* tests only: WAL without fdatasync */
    int truncate_corrupt;       /* operator override for a corrupt WAL */
} persist_config;

/* Recover state into m->fs and m->cl (already created, empty), open the
 * WAL (m->wal) and create the root directory on a fresh filesystem. 0 or
 * a negative code, with the reason logged. */
int persist_recover(metad *m, const persist_config *cfg);
/* Start the snapshot thread. */
int persist_start(metad *m);
/* Stop the snapshot thread; with final_snapshot, take one more snapshot
 * first if anything was logged since the last one. Then close the WAL. */
void persist_stop(metad *m, int final_snapshot);

/* Append an op record; returns its lsn. Never returns on WAL failure.
 * persist_log has the WAL write it soon; persist_log_waited is for a
 * record the caller passes to persist_wait, which writes it (no thread
 * switch). */
uint64_t persist_log(metad *m, const uint8_t *rec, size_t len);
uint64_t persist_log_waited(metad *m, const uint8_t *rec, size_t len);
/* Wait until lsn is durable (no-op for 0). Never returns on failure. */
void persist_wait(metad *m, uint64_t lsn);

/* Take a snapshot now and wait for it (used by tests through shutdown and
 * by the thread). 0 or a negative code. */
int persist_snapshot(metad *m);

typedef struct persist_stats {
    uint64_t snapshots, snapshot_failures;
    uint64_t last_lsn;               /* lsn of the newest snapshot */
    int64_t last_done_ns;            /* wall clock when it was written; 0 = none */
    uint64_t last_pause_ns;          /* writers paused while serializing */
    uint64_t last_write_ns;          /* writing + syncing the file */
    uint64_t last_records;           /* records in it */
    uint64_t replayed;               /* WAL records replayed at startup */
    uint64_t recovery_ns;
} persist_stats;
void persist_get_stats(metad *m, persist_stats *out);

#endif
