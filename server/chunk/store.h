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
} chunkstore_config;

typedef struct chunkstore_stats {
    uint64_t chunks;          /* chunk files held */
    uint64_t bytes;           /* bytes of chunk files (headers included) */
    uint64_t corrupt_found;   /* files moved aside since open */
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

/* Path of the chunk file for id under dir (for tests and tools):
 * "<dir>/chunks/ab/cd/<hex>"; malloc'd. */
char *chunkstore_path(const char *dir, const uint8_t id[CHUNK_ID_LEN]);

#endif
