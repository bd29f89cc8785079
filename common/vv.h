/*
 * vv.h — version vectors.
 *
 * A version vector is a small set of (replica id, counter) pairs, kept sorted
 * by replica id with no zero counters and no duplicate ids. Every mutation of
 * a metadata entry bumps the counter of the replica that applied it.
 *
 * vv is a plain value type (fixed capacity VV_MAX entries, no heap), copied
 * with '='. Text form (used as the HTTP ETag, quotes included by callers):
 * "r1:c1,r2:c2" with decimal numbers, ids ascending; the empty vector is "0".
 * Thread-safe (pure functions).
 */
#ifndef CAIRN_VV_H
#define CAIRN_VV_H

#include <stddef.h>
#include <stdint.h>

#define VV_MAX 8
#define VV_TEXT_MAX (VV_MAX * 32 + 4)

typedef struct vv_entry {
    uint32_t replica;
    uint64_t counter;
} vv_entry;

typedef struct vv {
    uint32_t n;
    vv_entry e[VV_MAX];
} vv;

enum vv_order {
    VV_EQUAL = 0,
    VV_DOMINATES = 1,   /* a has seen everything b has, and more */
    VV_DOMINATED = 2,   /* b has seen everything a has, and more */
    VV_CONCURRENT = 3,  /* each has something the other lacks: conflict */
};

void vv_init(vv *v);
/* Counter of a replica (0 if absent). */
uint64_t vv_get(const vv *v, uint32_t replica);
/* Increment replica's counter; -E2BIG if the vector is full (VV_MAX ids),
 * -EOVERFLOW if the counter is at UINT64_MAX. v is unchanged on error. */
int vv_bump(vv *v, uint32_t replica);
/* Pointwise maximum of a and b into out (out may alias a or b); -E2BIG when
 * the union has more than VV_MAX ids (out is then unchanged). */
int vv_merge(vv *out, const vv *a, const vv *b);
enum vv_order vv_compare(const vv *a, const vv *b);
int vv_equal(const vv *a, const vv *b);
/* 1 when after is before with exactly one counter one higher (a replica's
 * counter appearing at 1 counts): exactly one mutation lies between them. */
int vv_is_step(const vv *before, const vv *after);

/* Text form into out[VV_TEXT_MAX]; returns the length. A buffer too small
 * for the whole text yields "" and 0, never a truncated vector. */
size_t vv_format(const vv *v, char *out, size_t outlen);
/* Parse the text form, with or without surrounding double quotes, optionally
 * prefixed by W/ (weak ETag). Rejects unsorted or duplicate ids, zero
 * counters, overflow, leading zeros, signs, spaces, more than VV_MAX
 * entries, trailing garbage: -EINVAL (out unchanged). */
int vv_parse(const char *s, vv *out);

#endif
