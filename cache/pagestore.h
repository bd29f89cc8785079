/*
 * pagestore.h — 4 KiB pages for dirty chunks kept as pages (client/file.c),
 * whose memory goes back to the kernel when they are freed.
 *
 * Random writes keep each written 4 KiB of a chunk as a page of its own
 * until the chunk is sealed. Taken from malloc, those pages would stay
 * resident after they are freed (a heap keeps freed memory for reuse and
 * can give back only its top), so the process would stay as large as its
 * largest burst of pages on top of the buffers the budget allows later.
 * Here pages come from page-aligned slabs mapped with mmap; a freed page
 * is kept for reuse while fewer than the spare are kept, and beyond that
 * its memory is released (MADV_DONTNEED: still mapped, zero-filled when
 * next touched). The resident memory of all pages is therefore the pages
 * in use plus at most the spare; how many may be in use is the caller's
 * budget (bufpool).
 *
 * Thread-safe (one mutex; the release of a page's memory is made outside
 * it).
 */
#ifndef CAIRN_PAGESTORE_H
#define CAIRN_PAGESTORE_H

#include <stddef.h>
#include <stdint.h>

#define PAGESTORE_PAGE 4096u

typedef struct pagestore pagestore;

/* spare_bytes: freed pages kept resident for reuse, at most. */
pagestore *pagestore_new(size_t spare_bytes);
/* Unmaps everything; every page must have been put back. */
void pagestore_free(pagestore *s);
/* A page of PAGESTORE_PAGE bytes, page-aligned, contents undefined; NULL
 * when no memory could be mapped. */
void *pagestore_get(pagestore *s);
void pagestore_put(pagestore *s, void *page);

typedef struct pagestore_stats {
    uint64_t in_use;        /* pages handed out and not put back */
    uint64_t spare;         /* freed pages kept resident */
    uint64_t released;      /* freed pages whose memory was released */
    uint64_t mapped;        /* pages mapped in all (in use, spare, released, never used) */
} pagestore_stats;
void pagestore_get_stats(pagestore *s, pagestore_stats *out);

#endif
