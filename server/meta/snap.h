/*
 * snap.h — metad snapshot files (DESIGN.md §5).
 *
 * A snapshot is the whole namespace as a sequence of records (rec.h), taken
 * at a WAL lsn: state after applying every record with lsn <= that lsn.
 * File "snap-<16 hex lsn>.snap" in the snapshot directory:
 *     header: magic "CAIRNSNP", u32 format version, u32 reserved, u64 lsn
 *     frames: u32 length | u32 CRC32C(payload) | payload     (repeated)
 *     footer: u32 0xFFFFFFFF | u32 record count | u64 total payload bytes |
 *             u32 CRC32C of every preceding byte of the file
 * Written to a ".tmp" name, fsync'd, renamed, directory fsync'd; so a crash
 * leaves either the old set of snapshots or the new one.
 *
 * Retention: snap_commit keeps the newest two snapshots and deletes older
 * ones; the caller keeps WAL segments back to the older kept snapshot, so a
 * damaged newest snapshot can be skipped (snap_load_latest falls back).
 *
 * Threads: a writer is used by one thread at a time; loading happens at
 * startup before threads. Errors are negative errno; a damaged file is
 * CAIRN_ECORRUPT.
 */
#ifndef CAIRN_SNAP_H
#define CAIRN_SNAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct snap_writer snap_writer;

/* Largest record snap_write accepts (and the loader believes). */
#define SNAP_MAX_RECORD (64u << 20)

/* Creates dir if needed and starts "snap-<lsn>.snap.tmp" there. */
int snap_begin(const char *dir, uint64_t lsn, snap_writer **out);
/* Buffered; -EFBIG for a record over SNAP_MAX_RECORD, -EOVERFLOW past
 * 2^32 - 1 records (both leave the writer usable). A write error is kept
 * and returned by this and every later call, and by snap_commit. */
int snap_write(snap_writer *s, const void *rec, size_t len);
/* Seal, sync, rename into place, prune old snapshots; frees s. On error the
 * temporary file is removed. Failing to prune is logged, not returned (the
 * new snapshot is in place). Stale ".tmp" files for lsns up to this one are
 * removed too. */
int snap_commit(snap_writer *s);
/* Remove the temporary file; frees s. */
void snap_abort(snap_writer *s);

typedef int (*snap_load_fn)(const uint8_t *rec, size_t len, void *ctx);
/* Find the newest snapshot that verifies (the whole-file CRC is checked
 * before any record is passed on), feed its records to fn, and return its
 * lsn in *lsn. A damaged newer file is logged and skipped; *skipped_newer
 * (may be NULL) is set to 1 then. -ENOENT if there is no snapshot at all
 * (or no directory); CAIRN_ECORRUPT if there are snapshots but none
 * verifies (CAIRN_EBADVERSION when the newest has a format this build does
 * not read). The caller must discard partial state if fn fails (its error is
 * returned) or if the file changes under the loader between verification
 * and delivery (CAIRN_ECORRUPT after some records were passed on). Only
 * files named exactly "snap-<16 hex>.snap" are considered. */
int snap_load_latest(const char *dir, uint64_t *lsn, int *skipped_newer, snap_load_fn fn, void *ctx);
/* The lsn of the oldest kept snapshot (the older of the newest two; the WAL
 * must reach back to it), or 0 when there is none (or no directory). */
int snap_oldest_lsn(const char *dir, uint64_t *lsn);

#endif
