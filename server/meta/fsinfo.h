/*
 * fsinfo.h — the filesystem's identity and fixed parameters, chosen at
 * format time and stored in DATA/fs.info: fs id (16 random bytes), chunk
 * size, replica count, minimum replica count, inline limit.
 *
 * File format: one FSREC_FSINFO record (rec.h) followed by the CRC32C of
 * the record bytes (u32 little-endian); written with write_file_atomic, so
 * the file is either the old or the new one, never a mix.
 *
 * Errors: -ENOENT (no file: not formatted), CAIRN_ECORRUPT (bad CRC or
 * record), -EINVAL (parameters out of range), other -errno from I/O.
 * Thread-safe (no shared state).
 */
#ifndef CAIRN_META_FSINFO_H
#define CAIRN_META_FSINFO_H

#include <stdint.h>

#include "common/rec.h"

#define FSINFO_ID_LEN 16
#define FSINFO_CHUNK_MIN (4u << 10)
#define FSINFO_CHUNK_MAX (256u << 20)
#define FSINFO_INLINE_MAX (1u << 20)
#define FSINFO_REPLICAS_MAX 16

typedef struct fsinfo {
    uint8_t fsid[FSINFO_ID_LEN];
    uint32_t chunk_size;
    uint32_t replicas, min_replicas;
    uint32_t inline_max;
    int64_t created_ns;
} fsinfo;

/* Range checks of the parameters (not the id): 0 or -EINVAL with a
 * one-line reason in why[128]. */
int fsinfo_check(const fsinfo *fi, char *why, size_t whylen);
/* Fill fsid with random bytes (getrandom). */
int fsinfo_new_id(uint8_t fsid[FSINFO_ID_LEN]);
int fsinfo_load(const char *path, fsinfo *out);
int fsinfo_store(const char *path, const fsinfo *fi);
/* Whether the parameters (not id or time) are equal. */
int fsinfo_same_params(const fsinfo *a, const fsinfo *b);
/* The GET /v1/fsinfo answer into w (initialised here). */
void fsinfo_encode(const fsinfo *fi, recw *w);

#endif
