/*
 * refs.h — chunk reference counts: chunk id -> number of chunk-map slots
 * (over all files) that name it.
 *
 * Owned by the namespace (fs.h): its apply functions add and remove
 * references as slots appear and disappear (commit, truncation, unlink of
 * the last link, rename over a file), and loading a snapshot rebuilds the
 * table from the chunk maps. Garbage collection asks through POST /v1/refs
 * whether ids are referenced.
 *
 * Threads: no lock of its own; guarded by the namespace rwlock (writers
 * hold it for refs_add/refs_del, readers for refs_get).
 * refs_del of an id with no reference is a bug in the caller: it is logged
 * and ignored so that the table never goes negative.
 */
#ifndef CAIRN_META_REFS_H
#define CAIRN_META_REFS_H

#include <stddef.h>
#include <stdint.h>

#include "common/hash.h"

typedef struct refs refs;

refs *refs_new(void);
void refs_free(refs *r);
void refs_add(refs *r, const uint8_t id[CHUNK_ID_LEN]);
void refs_del(refs *r, const uint8_t id[CHUNK_ID_LEN]);
/* Current count (0 = unreferenced). */
uint64_t refs_get(const refs *r, const uint8_t id[CHUNK_ID_LEN]);
/* Number of distinct referenced ids. */
size_t refs_count(const refs *r);

#endif
