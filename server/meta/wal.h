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
 * batch writer). One batch is written at a time: everything pending, with
 * one fdatasync for all of it (group commit), after which every waiter whose
 * lsn is now durable wakes. A thread in wal_wait writes the batch itself
 * when none is being written (no hand-off to another thread and back);
 * otherwise it waits, and the next batch is written by one of the waiters
 * or by the wal's flusher thread, which also writes records nobody waits
 * for and carries out rotations. wal_wait is called after the caller
 * dropped its locks. wal_rotate / wal_truncate_before are called by
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
 * (negative) aborts wal_open with that error. Records are replayed while the
 * log is read, so when wal_open fails some may already have been passed on:
 * the caller discards that state.
 *
 * Details of recovery:
 *  - "A valid frame later" means a frame with an in-range length, a good
 *    CRC and an lsn at or after the expected one, at any later byte offset.
 *  - A frame whose CRC is good but whose lsn is not the expected one is an
 *    lsn gap: corruption wherever it is.
 *  - Between segments, missing lsns are corruption unless every missing lsn
 *    is <= from_lsn (covered by the snapshot). The first segment must start
 *    at or before from_lsn + 1.
 *  - A damaged segment header is CAIRN_ECORRUPT (truncate_corrupt drops that
 *    segment and every later one); an unknown format version is
 *    CAIRN_EBADVERSION and never cut.
 *  - If from_lsn is past the last record in the WAL (the snapshot is newer
 *    than the log), the next lsn is from_lsn + 1, in a new segment.
 *  - What was replayed is fdatasync'd before wal_open returns, so it is
 *    durable even if it was only in the page cache of a crashed process.
 * Segments are created as "<name>.tmp" with their header, synced and renamed
 * into place (then the directory is fsync'd), so a segment file always has a
 * complete header; leftover ".tmp" files are removed by wal_open. The old
 * segment is fdatasync'd before its successor is created, so only the last
 * segment can have a torn tail. The directory is flock'ed while open: a
 * second wal_open of the same directory fails with -EBUSY.
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
    uint32_t idle_check_ms;         /* flusher looks for unwaited records; 0 = 1000 */
} wal_config;

/* rec points into a read buffer and is valid only during the call. */
typedef int (*wal_replay_fn)(uint64_t lsn, const uint8_t *rec, size_t len, void *ctx);

/* Opens (creating the directory contents if empty), replays records with
 * lsn > from_lsn through replay, starts the flusher. *out receives the wal. */
int wal_open(const wal_config *cfg, uint64_t from_lsn, wal_replay_fn replay, void *ctx, wal **out);

/* Queue a record; returns its lsn (> 0), or 0 if the WAL has failed or the
 * record is larger than WAL_MAX_RECORD. wal_append wakes the flusher to
 * write it; wal_append_waited is for a record the caller will wal_wait for
 * (the waiter writes it, no thread is woken; were the wait never to come,
 * the flusher still writes it within idle_check_ms). */
uint64_t wal_append(wal *w, const void *rec, size_t len);
uint64_t wal_append_waited(wal *w, const void *rec, size_t len);
/* Block until lsn is durable: 0, or -EIO if the WAL failed. -EINVAL for
 * lsn 0 or an lsn that was never handed out (it could never become durable). */
int wal_wait(wal *w, uint64_t lsn);
uint64_t wal_last_lsn(wal *w);      /* last appended */
uint64_t wal_durable_lsn(wal *w);

/* Close the current segment at the next frame boundary; later appends go
 * to a new segment whose first lsn is returned in *next_lsn. */
int wal_rotate(wal *w, uint64_t *next_lsn);
/* Delete whole segments whose every record has lsn <= lsn. The segment
 * being written is never deleted; a rotation requested before this call is
 * carried out first (this may wait for the flusher). -EIO if the WAL failed. */
int wal_truncate_before(wal *w, uint64_t lsn);

typedef struct wal_stats {
    uint64_t records;       /* records written since wal_open */
    uint64_t bytes;         /* frame bytes written (headers included) */
    uint64_t syncs;         /* fdatasync calls (batches, rotations) */
    uint64_t sync_ns_total; /* time spent in them */
} wal_stats;
void wal_get_stats(wal *w, wal_stats *out);

/* Flushes what is pending, stops the flusher, closes files. No other call
 * on w may be in progress or follow; a failed WAL closes without writing. */
void wal_close(wal *w);

/* Tests only: the next batch's write (WAL_FAULT_WRITE) or next fdatasync
 * (WAL_FAULT_SYNC) fails with err (a negative errno) instead of being made,
 * as a full disk or a failing device would. The failure is handled like a
 * real one: the WAL becomes permanently failed. */
enum wal_fault { WAL_FAULT_WRITE = 1, WAL_FAULT_SYNC = 2 };
void wal_inject_fault(wal *w, enum wal_fault where, int err);

#endif
