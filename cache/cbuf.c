/*
 * cbuf.c — reference-counted chunk buffers (see cbuf.h).
 */
#include "cache/cbuf.h"

#include <stdlib.h>

cbuf *cbuf_new(size_t cap)
{
    if (cap > CBUF_MAX)
        return NULL;
    cbuf *b = malloc(sizeof *b);
    if (!b)
        return NULL;
    /* malloc(0) may return NULL; a zero-length chunk is still a valid cbuf. */
    b->data = malloc(cap ? cap : 1);
    if (!b->data) {
        free(b);
        return NULL;
    }
    b->refs = 1;
    b->len = 0;
    b->cap = cap;
    return b;
}

cbuf *cbuf_adopt(uint8_t *data, size_t len, size_t cap)
{
    cbuf *b = cap <= CBUF_MAX && len <= cap ? malloc(sizeof *b) : NULL;
    if (!b) {
        free(data);
        return NULL;
    }
    b->data = data;
    b->refs = 1;
    b->len = len;
    b->cap = cap;
    return b;
}

cbuf *cbuf_ref(cbuf *b)
{
    if (b)
        __atomic_add_fetch(&b->refs, 1, __ATOMIC_RELAXED);
    return b;
}

void cbuf_unref(cbuf *b)
{
    if (!b)
        return;
    /* Release orders this thread's use of the bytes before the free; the
     * acquire half makes the last owner see every other owner's accesses. */
    if (__atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        free(b->data);
        free(b);
    }
}
