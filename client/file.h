/*
 * file.h — file striping on the client (DESIGN.md §2, §3, §6).
 *
 * A cfile is the client's state for one regular file (by metad inode
 * number), shared by every open handle of that inode on this client:
 *   - the committed base: attributes, version vector, chunk map (or inline
 *     data) as last seen from metad;
 *   - dirty chunks: per slot, a buffer holding the slot's bytes, the byte
 *     ranges written since the last commit, and a state:
 *       DIRTY      being written (buffer from the memory budget);
 *       UPLOADING  sealed, hashed and uploaded by chunk I/O workers;
 *       PENDING    uploaded (chunk id known) or all-zero (a hole), waiting
 *                  for the map commit; its buffer is released.
 * A slot whose every byte was written is sealed at once and uploads in the
 * background while the application keeps writing; partial slots are merged
 * with the base chunk (read-modify-write) when sealed at flush.
 *
 * Commit: cfile_flush seals every dirty slot, waits for the uploads and
 * commits the changed slots, new size and mtime to metad by CAS (If-Match:
 * base VV). On 412 it rebases: for every changed slot that the other writer
 * also changed and that this client wrote only partly, it merges its own
 * written ranges onto the other writer's chunk, uploads the result and
 * retries (bounded). Files whose size stays within the inline limit and
 * that have no chunks are committed as inline data: one metadata round trip.
 * During long writes the uploaded slots are committed every commit_every
 * chunks. A failed upload or commit is kept on the cfile and returned by
 * the next write, flush or fsync (never a silent success).
 *
 * Reads see this client's own writes (dirty and pending slots first, then
 * the base map through the chunk cache); bytes past a slot's length and
 * holes read as zeros. A read stream's readahead state (cfile_ra) lives with
 * the caller (one per open handle).
 *
 * Threads: all functions are thread-safe. A cfile's state lock is never held
 * across network I/O; a flag serialises commits. Chunk I/O callbacks take a
 * reference on the cfile, so it lives until its uploads end.
 *
 * Lifetime: cfs_file returns a referenced cfile (cfile_put drops it). The
 * cfs keeps up to cache_files unreferenced clean cfiles (their maps allow
 * cheap revalidation with If-None-Match) and frees older ones.
 */
#ifndef CAIRN_FILE_H
#define CAIRN_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "cache/bufpool.h"
#include "cache/chunkcache.h"
#include "client/chunkio.h"
#include "client/metaclient.h"

typedef struct cfs cfs;
typedef struct cfile cfile;

typedef struct cfs_config {
    mc *meta;
    cio *io;
    bufpool *pool;
    mc_fsinfo fs;
    unsigned readahead_max;     /* chunks; 0 = 8 */
    unsigned commit_every;      /* uploaded chunks between commits; 0 = 64 */
    unsigned cache_files;       /* clean closed cfiles kept; 0 = 4096 */
    unsigned commit_retries;    /* CAS attempts; 0 = 20 */
    /* Chunks merged with their old bytes at once (read-modify-write); more
     * wait their turn. Each holds a chunk's old bytes outside the budget
     * for the time of its merge. 0 = as many as fit in CIO_HELD_BYTES of
     * chunks, at least 2. */
    unsigned merge_slots;
} cfs_config;

cfs *cfs_new(const cfs_config *cfg);
/* All cfiles must have been flushed and put, and the chunk I/O layer
 * freed first (its workers run upload callbacks on cfiles). */
void cfs_free(cfs *f);

cfile *cfs_file(cfs *f, uint64_t ino);
/* The cfile for ino if one exists (referenced), else NULL. */
cfile *cfs_file_find(cfs *f, uint64_t ino);
void cfile_put(cfile *c);

/* Take the base from a record that carries the whole map (a map answer, or
 * a create answer for a new empty file). No-op when the cfile has dirty
 * state. */
void cfile_seed(cfile *c, const mc_inode *rec);

/* Revalidate the base with metad (If-None-Match); *changed is set when
 * the file changed since this client last saw it (drop page caches).
 * hold: mark the inode held open by the client's session (FT_OPEN), also
 * when no revalidation is needed. */
int cfile_open(cfile *c, int *changed, int hold);

typedef struct cfile_ra {
    uint64_t next_off;          /* where a sequential reader goes next */
    unsigned window;            /* chunks to prefetch ahead */
} cfile_ra;

long cfile_read(cfile *c, uint64_t off, size_t len, uint8_t *dst, cfile_ra *ra);
long cfile_write(cfile *c, uint64_t off, const uint8_t *src, size_t len);
int cfile_flush(cfile *c);
/* Flush, then set the size on metad (and mtime/ctime as metad does);
 * *out receives the new attributes. */
int cfile_truncate(cfile *c, uint64_t size, fs_attr *out);
/* Attributes with this client's unflushed size and mtime laid over a
 * (returns 1 when it changed anything). */
int cfile_overlay(cfile *c, fs_attr *a);
/* Attributes seen from metad (getattr, lookup): a VV this client did not
 * produce on a clean cfile means the base is stale. */
void cfile_note_attr(cfile *c, const fs_attr *a);
/* Whether the cfile holds unflushed data. */
int cfile_dirty(cfile *c);
/* The last error of a background upload or commit, cleared by reading it
 * (0 if none). */
int cfile_take_error(cfile *c);
/* Whole-file SHA-256 of the committed content (for cairn.sha256);
 * flushes first. */
int cfile_sha256(cfile *c, uint8_t out[CHUNK_ID_LEN]);
/* copy_file_range: copy len bytes at soff of src to doff of dst. Whole
 * chunk-aligned chunks are shared by reference (only dst's map changes, no
 * data moves); the rest is read and written. Flushes src first. Returns
 * the bytes copied (short at src's end) or a negative error. */
long cfile_copy_range(cfile *src, uint64_t soff, cfile *dst, uint64_t doff, uint64_t len);
/* SEEK_DATA (data != 0) or SEEK_HOLE from off: the resulting offset, or
 * -ENXIO when off is at or past the end (or no data follows). Dirty and
 * pending chunks count as data. */
long long cfile_seek(cfile *c, uint64_t off, int data);
/* The base attributes (VV included); 0, or -ENOENT when no base is loaded. */
int cfile_base_attr(cfile *c, fs_attr *out);
/* The attributes as this client knows them (base with its own unflushed
 * size and mtime laid over), when metad last told them at most max_age_ms
 * ago and no namespace change by this client (cfs_ns_changed) came since:
 * 0 and *out, else -ESTALE. Lets getattr skip a round trip within the
 * attribute timeout, which is what the kernel's own cache would allow.
 * *age_ms: how old the answer is. */
int cfile_fresh_attr(cfile *c, uint64_t max_age_ms, fs_attr *out, uint64_t *age_ms);
/* Another client changed the inode (the change feed): the remembered
 * attributes are asked of metad again. */
void cfile_attr_expire(cfile *c);
/* This client linked, unlinked, renamed or changed xattrs of something:
 * link counts and ctimes of files it does not track may have moved, so
 * every remembered attribute is asked of metad again. */
void cfs_ns_changed(cfs *f);
/* After this client changed only attributes (not the map) with a CAS on
 * base VV old: adopt the new attributes if the base is still at old. */
void cfile_attr_changed(cfile *c, const vv *old, const fs_attr *a);
/* An explicit mtime set while writes are buffered or uploading: the next
 * commit of this client carries it instead of the time of the last write
 * (a write after this call moves it on again, as on a local file system).
 * Returns 1 when the file had unflushed state, 0 when it had none. */
int cfile_set_mtime(cfile *c, int64_t mtime_ns);
/* A chmod (permission bits) and/or utimensat (atime, mtime) while writes
 * are buffered and not yet in a commit: carried into the next commit
 * instead of a setattr round trip, and laid over the attributes until
 * then. Returns 1 when folded (all of them), 0 when nothing is pending (the
 * caller sends a setattr). */
int cfile_fold_attrs(cfile *c, int has_mode, uint32_t mode, int has_atime, int64_t atime,
                     int has_mtime, int64_t mtime);
/* An access time the mount writes behind: laid over the attributes until
 * cfile_lazy_atime_done. cfile_lazy_atime_get returns 1 with it and the
 * base attributes it applies to, 0 when none waits. Done with old and a:
 * metad's answer (moving the VV from old); with NULL: given up. */
void cfile_lazy_atime(cfile *c, int64_t atime);
int cfile_lazy_atime_get(cfile *c, int64_t *atime, fs_attr *base);
void cfile_lazy_atime_done(cfile *c, int64_t atime, const vv *old, const fs_attr *a);
/* Whether the file is known to have no xattrs: set by the creator of a
 * new file, kept across this client's own commits and atime updates,
 * cleared when a base is loaded from metad or the client sets an xattr.
 * Lets the kernel's security.capability probe before each write be
 * answered without a round trip. */
int cfile_noxattr(cfile *c);
void cfile_set_noxattr(cfile *c, int v);
/* c was just created by this client, empty, for writing: a chmod or
 * utimensat before its first flush rides on that flush's commit. */
void cfile_set_fresh(cfile *c);
/* Bytes the file's data occupies on the servers (sum of its slots'
 * lengths and inline data, dirty chunks counted by their length), capped
 * at size; size itself when the map is not loaded. */
uint64_t cfile_stored_bytes(cfile *c, uint64_t size);
/* The version vector of the base (after a flush, the committed one). */
void cfile_vv(cfile *c, vv *out);

typedef struct cfs_stats {
    uint64_t files, dirty_files, commits, conflicts, inline_commits, inline_refused;
    uint64_t merge_waits;       /* merges that waited for a merge slot */
    uint64_t merge_peak;        /* most merges running at once */
} cfs_stats;
void cfs_get_stats(cfs *f, cfs_stats *out);

#endif
