/*
 * wal.h — cairn-metad's write-ahead log with group commit (DESIGN.md §5).
 *
 * Files in the WAL directory: segments "wal-<16 hex first lsn>.log". A
 * segment starts with a 32-byte header (magic "CAIRNWAL", u32 format
 * version, u32 reserved, u64 first lsn, u32 CRC32C of the preceding 24
 * bytes, u32 pad). Then frames:
 *     u32 payload length | u32 CRC32C over (lsn bytes || payload) | u64 lsn | payload
 * LSNs start at 1 and are contiguous across segments.
 *
 * Threads: wal_append is called by request threads while they hold the
 * namespace write lock, so the log order is the apply order; it only copies
 * into the pending buffer and never waits for the disk, except when the
 * pending buffer exceeds max_pending bytes (backpressure: it waits for the
 * flusher). A single flusher thread owned by the wal writes everything
 * pending and issues one fdatasync for all of it (group commit), then wakes
 * every waiter whose lsn is now durable. wal_wait is called after the
 * caller dropped its locks. wal_rotate / wal_truncate_before are called by
 * the snapshot code (any thread, serialised by the caller).
 *
 * Errors: a failed write or fdatasync makes the WAL permanently failed:
 * every current and later wal_wait returns -EIO and wal_append returns 0
 * (no lsn): the server must stop acknowledging writes (it logs and exits).
 *
 * Recovery (wal_open): segments are read in lsn order; records with lsn
 * greater than from_lsn are passed to replay in order. A bad frame (length
 * out of range, CRC mismatch, lsn not the expected next one) in the LAST
 * segment, with no valid frame anywhere after it, is a torn tail: the file
 * is truncated there, logged as a warning, and the WAL continues from the
 * last good lsn. A bad frame followed by a valid frame later, or in any
 * earlier segment, is corruption: wal_open fails with CAIRN_ECORRUPT and
 * logs the file and offset, unless cfg->truncate_corrupt is set (operator
 * override: cut everything from the bad frame on). A replay callback error
 * aborts wal_open with that error.
 */
#ifndef CAIRN_WAL_H
#define CAIRN_WAL_H

#include <stddef.h>
#include <stdint.h>

#define WAL_MAX_RECORD (64u << 20)

typedef struct wal wal;

typedef struct wal_config {
    const char *dir;                /* directory holding the segments */
    uint64_t segment_max;           /* rotate when a segment passes this; 0 = 256 MiB */
    uint64_t max_pending;           /* backpressure bound; 0 = 64 MiB */
    int no_sync;                    /* tests only: skip fdatasync */
    int truncate_corrupt;           /* cut at a corrupt frame instead of failing */
} wal_config;

typedef int (*wal_replay_fn)(uint64_t lsn, const uint8_t *rec, size_t len, void *ctx);

/* Opens (creating the directory contents if empty), replays records with
 * lsn > from_lsn through replay, starts the flusher. *out receives the wal. */
int wal_open(const wal_config *cfg, uint64_t from_lsn, wal_replay_fn replay, void *ctx, wal **out);

/* Queue a record; returns its lsn (> 0), or 0 if the WAL has failed or the
 * record is larger than WAL_MAX_RECORD. */
uint64_t wal_append(wal *w, const void *rec, size_t len);
/* Block until lsn is durable: 0, or -EIO if the WAL failed. */
int wal_wait(wal *w, uint64_t lsn);
uint64_t wal_last_lsn(wal *w);      /* last appended */
uint64_t wal_durable_lsn(wal *w);

/* Close the current segment at the next frame boundary; later appends go
 * to a new segment whose first lsn is returned in *next_lsn. */
int wal_rotate(wal *w, uint64_t *next_lsn);
/* Delete whole segments whose every record has lsn <= lsn. */
int wal_truncate_before(wal *w, uint64_t lsn);

typedef struct wal_stats {
    uint64_t records, bytes, syncs, sync_ns_total;
} wal_stats;
void wal_get_stats(wal *w, wal_stats *out);

/* Flushes what is pending, stops the flusher, closes files. */
void wal_close(wal *w);

#endif
