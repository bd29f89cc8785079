/*
 * store.h — cairn-chunkd's chunk store: chunk files on local disk.
 *
 * Layout under the data directory DIR:
 *   DIR/chunks/ab/cd/<64 hex>   chunk files (chunkfile.h), fanned out by the
 *                               first two bytes of the id
 *   DIR/tmp/                    uploads being written; emptied at open, so a
 *                               crash never leaves a half-written chunk that
 *                               could be mistaken for a stored one
 *   DIR/corrupt/<hex>.<ns>      chunk files that failed verification, moved
 *                               aside for an operator to inspect; never served
 *
 * Durability: chunkstore_put writes a tmp file, fsyncs it, renames it into
 * place and fsyncs the directory before it returns 0, so an acknowledged
 * chunk survives a crash. Chunk files are immutable once renamed into place.
 *
 * Threads: every function except open/free may be called from any number of
 * threads at once. Operations on one id that change the directory entry
 * (rename into place, delete, quarantine) are serialised by a striped mutex
 * (stripe = first byte of the id); the mutex is never held across fsync or
 * a read of chunk payload. The counters are atomics.
 *
 * Errors (negative): -ENOENT no such chunk; -EBADMSG the bytes do not hash
 * to the id (nothing stored); CAIRN_ECORRUPT the stored file failed
 * verification (it has been moved aside and logged); -ENOSPC/-EDQUOT disk
 * full (the tmp file is removed); -EFBIG chunk above CHUNKFILE_MAX_RAW;
 * -ENOMEM; other -errno from the file system.
 */
#ifndef CAIRN_CHUNK_STORE_H
#define CAIRN_CHUNK_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "common/hash.h"

typedef struct chunkstore chunkstore;

typedef struct chunkstore_config {
    const char *dir;          /* data directory (created if missing) */
    int compress_level;       /* 0 = store raw; 1..22 = zstd level for new chunks */
    int direct_io;            /* write new chunk files with O_DIRECT where possible */
} chunkstore_config;

typedef struct chunkstore_stats {
    uint64_t chunks;          /* chunk files held */
    uint64_t bytes;           /* bytes of chunk files (headers included) */
    uint64_t corrupt_found;   /* files moved aside since open */
    uint64_t direct_writes;   /* chunk files written with O_DIRECT since open */
    int direct_io;            /* O_DIRECT is (still) in use */
} chunkstore_stats;

/* Creates the layout, removes stale tmp files, and scans the chunk tree to
 * count chunks and bytes. The config's strings are copied. */
int chunkstore_open(const chunkstore_config *cfg, chunkstore **out);
void chunkstore_free(chunkstore *s);

/* Store data[len] as chunk id. Verifies sha256(data) == id first (-EBADMSG).
 * Returns 0 when the chunk was written, 1 when an intact copy was already
 * held (its mtime is set to now so garbage collection's grace period starts
 * again; nothing is rewritten). An existing copy that fails verification is
 * moved aside and replaced. */
int chunkstore_put(chunkstore *s, const uint8_t id[CHUNK_ID_LEN], const void *data, size_t len);

/* Read and verify a chunk (one read of the file, CRC32C checked, zstd
 * decoded). On success *data is a malloc'd buffer of *len bytes (NULL when
 * *len is 0) that the caller frees. A file that fails verification is moved
 * aside and CAIRN_ECORRUPT returned. */
int chunkstore_get(chunkstore *s, const uint8_t id[CHUNK_ID_LEN], uint8_t **data, size_t *len);

/* Raw length of a held chunk from its header alone (header CRC, id and file
 * length checked; the payload is not read). A bad header is handled as in
 * chunkstore_get. */
int chunkstore_stat(chunkstore *s, const uint8_t id[CHUNK_ID_LEN], uint64_t *raw_len);

/* 1 if a chunk file for id exists, 0 if not, or -errno. Does not verify. */
int chunkstore_has(chunkstore *s, const uint8_t id[CHUNK_ID_LEN]);

/* Remove a chunk; -ENOENT if not held. */
int chunkstore_delete(chunkstore *s, const uint8_t id[CHUNK_ID_LEN]);

void chunkstore_get_stats(chunkstore *s, chunkstore_stats *out);

/* Size in bytes of the file system holding the data directory (statvfs). */
int chunkstore_fs_capacity(chunkstore *s, uint64_t *out);

/* Maintenance (maint.h). */

/* Called after a file that failed verification was moved aside (by a GET,
 * HEAD, PUT or a scrub), on the thread that found it, with no store lock
 * held; it must not block. Set once, before other threads use the store. */
typedef void (*chunkstore_corrupt_fn)(void *ctx, const uint8_t id[CHUNK_ID_LEN]);
void chunkstore_set_corrupt_hook(chunkstore *s, chunkstore_corrupt_fn fn, void *ctx);

/* Scrub one chunk: header, exact length and CRC32C of the stored payload;
 * with full != 0 also decode it and check that its SHA-256 is the id. A
 * file that fails is moved aside (CAIRN_ECORRUPT). *bytes receives the
 * bytes read from disk (also on failure, for rate limiting). */
int chunkstore_verify(chunkstore *s, const uint8_t id[CHUNK_ID_LEN], int full, uint64_t *bytes);

/* mtime (ns since the Unix epoch) and size of a held chunk's file. */
int chunkstore_file_info(chunkstore *s, const uint8_t id[CHUNK_ID_LEN], int64_t *mtime_ns,
                         uint64_t *size);

/* Garbage collection: delete the chunk only if its file's mtime is before
 * cutoff_ns. The check and the unlink happen under the id's stripe, which
 * is also where a PUT of a held chunk refreshes the mtime, so a chunk
 * re-uploaded for a commit in progress is never collected. Returns 0
 * deleted (*freed = bytes of the file), 1 kept (too recent), -ENOENT, or
 * -errno. */
int chunkstore_delete_older(chunkstore *s, const uint8_t id[CHUNK_ID_LEN], int64_t cutoff_ns,
                            uint64_t *freed);

/* Walk the held chunk ids (in directory order). Every chunk held for the
 * whole walk is returned exactly once; chunks added or removed during the
 * walk may or may not be. Memory is bounded (one leaf directory stream);
 * one iterator belongs to one thread. chunkstore_iter_next fills up to
 * max ids and returns how many (0 at the end). */
typedef struct chunkstore_iter chunkstore_iter;
int chunkstore_iter_new(chunkstore *s, chunkstore_iter **out);
int chunkstore_iter_next(chunkstore_iter *it, uint8_t (*ids)[CHUNK_ID_LEN], size_t max);
void chunkstore_iter_free(chunkstore_iter *it);

/* Path of the chunk file for id under dir (for tests and tools):
 * "<dir>/chunks/ab/cd/<hex>"; malloc'd. */
char *chunkstore_path(const char *dir, const uint8_t id[CHUNK_ID_LEN]);

#endif
