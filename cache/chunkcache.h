/*
 * chunkcache.h — the client's local chunk cache (DESIGN.md §6).
 *
 * Chunks are immutable and named by their SHA-256, so a cached chunk is
 * never stale; the cache only has to bound its size and detect local
 * damage. Two tiers:
 *   - memory: cbufs (cbuf.h) up to mem_max bytes, LRU;
 *   - disk: one file per chunk under dir (fan-out "ab/<64 hex>"), up to
 *     disk_max bytes, LRU by last access, surviving remounts. Each file has a
 *     header (magic, format version, payload length, CRC32C of the payload,
 *     CRC32C of the header) followed by the payload.
 * A disk file is verified (whole-payload CRC) the first time it is used
 * after the cache is opened; a file that fails is deleted and counts as a
 * miss. Files are written to a temp name and renamed (no fsync: the cache
 * can always be refetched, but a torn file must never be served, which the
 * CRC guarantees). Hits record the access in memory only; access order
 * reaches the files as their mtimes about once a minute and at
 * ccache_close, so the LRU order a remount sees is accurate to about a
 * minute. A chunk waiting in the disk queue counts as cached (ccache_has,
 * ccache_get and ccache_read serve it from its buffer). ccache_read of a
 * disk-only chunk does not load it into memory.
 *
 * Threads: every function is thread-safe; one internal mutex guards the
 * indexes (never held across disk I/O of a whole chunk); one background
 * writer thread performs disk inserts from a bounded queue (when the queue
 * is full, the disk insert is skipped: the cache is an optimisation).
 * Disk eviction runs on the writer thread.
 *
 * Ownership: ccache_get returns a new reference the caller unrefs.
 * ccache_put takes its own reference to b (the caller keeps its own).
 */
#ifndef CAIRN_CHUNKCACHE_H
#define CAIRN_CHUNKCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "cache/cbuf.h"
#include "common/hash.h"

typedef struct ccache ccache;

typedef struct ccache_config {
    const char *dir;        /* NULL or "" = no disk tier */
    uint64_t disk_max;      /* bytes of payload on disk */
    uint64_t mem_max;       /* bytes of payload in memory */
    unsigned queue_max;     /* pending disk inserts; 0 = 16 */
    unsigned fd_max;        /* descriptors of disk files kept open for
                             * ccache_read; 0 = 64 */
} ccache_config;

/* Opens (creating dir if needed), indexes existing files (LRU order from
 * their mtime), removes temp files and damaged files (counted in
 * disk_corrupt), and trims to disk_max. -EBUSY if another open cache
 * (in this or another process) uses dir; other -errno if dir cannot be
 * created or read. */
int ccache_open(const ccache_config *cfg, ccache **out);
/* Waits for queued disk writes, frees everything. No other call may run
 * concurrently with or after it. */
void ccache_close(ccache *c);
/* Waits until every disk insert and removal queued before the call is done
 * (on disk and in the disk index). Returns at once without a disk tier. */
void ccache_flush(ccache *c);

/* Whole chunk: memory tier, else disk tier (loaded into memory, verified).
 * NULL on miss. */
cbuf *ccache_get(ccache *c, const uint8_t id[CHUNK_ID_LEN]);
/* Copy len bytes at off of the chunk into dst without loading the whole
 * chunk into memory when it is only on disk (pread of the file; the file is
 * verified once per open of the cache). Returns the bytes copied (may be
 * less than len at the chunk's end), or -ENOENT on miss. */
long ccache_read(ccache *c, const uint8_t id[CHUNK_ID_LEN], uint64_t off, void *dst, size_t len);
/* Whether the chunk is cached in either tier (no I/O). */
int ccache_has(ccache *c, const uint8_t id[CHUNK_ID_LEN]);
/* Insert into memory (evicting LRU) and, if to_disk, queue a disk write. */
void ccache_put(ccache *c, const uint8_t id[CHUNK_ID_LEN], cbuf *b, int to_disk);
/* Drop from both tiers (e.g. after a verify failure elsewhere). */
void ccache_drop(ccache *c, const uint8_t id[CHUNK_ID_LEN]);

/* hits_*, misses: one per ccache_get/ccache_read (a chunk still waiting in
 * the disk queue is a memory hit). disk_corrupt: files deleted because they
 * failed a check (at open or on use). disk_skipped: disk inserts not done
 * (queue full, chunk larger than disk_max, write error). */
typedef struct ccache_stats {
    uint64_t mem_bytes, mem_items, disk_bytes, disk_items;
    uint64_t hits_mem, hits_disk, misses, disk_corrupt, disk_skipped;
} ccache_stats;
void ccache_get_stats(ccache *c, ccache_stats *out);

#endif
