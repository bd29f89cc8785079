/*
 * cbuf.h — reference-counted chunk buffers.
 *
 * A cbuf holds the bytes of one chunk (or a dirty chunk being built). It is
 * shared between the chunk cache, readers and uploaders by reference count:
 * cbuf_new returns a buffer with one reference; cbuf_ref adds one;
 * cbuf_unref drops one and frees at zero. Refcounting is atomic, so any
 * thread may ref/unref; the bytes themselves are immutable once a cbuf is
 * shared (the writer that created it fills it before publishing it).
 * cbuf_new returns NULL when cap exceeds CBUF_MAX or malloc fails (sizes
 * come from the chunk size, checked at mount).
 */
#ifndef CAIRN_CBUF_H
#define CAIRN_CBUF_H

#include <stddef.h>
#include <stdint.h>

#define CBUF_MAX (256u << 20)

typedef struct cbuf {
    int refs;           /* atomic via __atomic builtins */
    size_t len;         /* bytes valid */
    size_t cap;         /* bytes allocated in data */
    uint8_t *data;
} cbuf;

cbuf *cbuf_new(size_t cap);
/* A cbuf around data, a malloc'd block of cap bytes holding len valid
 * ones: it takes ownership (data is freed with the cbuf, or at once when
 * NULL is returned). Saves a copy of bytes that arrived in their own
 * buffer (a fetched chunk). */
cbuf *cbuf_adopt(uint8_t *data, size_t len, size_t cap);
cbuf *cbuf_ref(cbuf *b);
void cbuf_unref(cbuf *b);

#endif
