/*
 * rec.h — the one binary record codec (DESIGN.md §7).
 *
 * Used for the WAL, snapshots and every metad request/response body.
 *
 * Encoding (all integers little-endian):
 *   record  := magic u16 (0xCA1E) | format u8 (REC_FORMAT) | type u8 |
 *              body_len u32 | fields...        (body_len = bytes of fields)
 *   field   := tag u16 | len u32 | value[len]
 * Integers are stored as fields of exactly 8 bytes (u64) or 8 bytes
 * two's-complement (i64). A nested record is a field whose value is a whole
 * record. A tag may repeat (lists); readers iterate in order. Unknown tags are
 * skipped by readers, so new optional fields keep old readers working.
 *
 * Writer: recw_* build into a growable buffer; they abort on allocation
 * failure, so callers bound what they write (values come from validated
 * state). Reader: rec_open validates the whole structure up front (magic,
 * format, lengths of every field within the body, total length), so later
 * getters never read out of bounds. A reader points into the caller's bytes
 * and owns nothing.
 *
 * Errors: CAIRN_EPROTO for a truncated/malformed record, CAIRN_EBADVERSION
 * for an unknown format byte, -ENOENT for an absent tag, -EINVAL for a field
 * of the wrong size. Thread-safe (no shared state).
 */
#ifndef CAIRN_REC_H
#define CAIRN_REC_H

#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

#define REC_MAGIC 0xCA1E
#define REC_FORMAT 1
#define REC_HDR_LEN 8
#define REC_FIELD_HDR_LEN 6

typedef struct recw {
    buf b;
    size_t start; /* offset of this record's header inside b */
} recw;

/* Start a record of the given type in a fresh writer. */
void recw_init(recw *w, uint8_t type);
void recw_u64(recw *w, uint16_t tag, uint64_t v);
void recw_i64(recw *w, uint16_t tag, int64_t v);
void recw_bytes(recw *w, uint16_t tag, const void *p, size_t n);
/* A NUL-terminated string, stored without the NUL. */
void recw_str(recw *w, uint16_t tag, const char *s);
/* Append a finished nested record (its bytes from recw_finish). */
void recw_rec(recw *w, uint16_t tag, const recw *inner);
/* Patch the length and return the record bytes (owned by w; valid until
 * recw_free or further writes). */
const uint8_t *recw_finish(recw *w, size_t *len);
/* Finish and hand the bytes to the caller, who frees them with free(). */
uint8_t *recw_steal(recw *w, size_t *len);
void recw_free(recw *w);

typedef struct recr {
    const uint8_t *p;   /* start of record header */
    size_t len;         /* whole record length */
    uint8_t type;
} recr;

typedef struct rec_iter {
    size_t off;
} rec_iter;

/* Validate and open a record of exactly len bytes. */
int rec_open(recr *r, const void *p, size_t len);
/* Length of the record starting at p if the header is complete and the
 * record fits in avail bytes: returns 0 and sets *len; CAIRN_EPROTO (bad
 * magic), CAIRN_EBADVERSION (unknown format: a newer writer, not a torn
 * tail), -EAGAIN (need more bytes). Only the header is checked; rec_open
 * validates the fields. Used to walk concatenated records (WAL, snapshot). */
int rec_peek_len(const void *p, size_t avail, size_t *len);

/* First occurrence of tag. */
int rec_get_u64(const recr *r, uint16_t tag, uint64_t *out);
int rec_get_i64(const recr *r, uint16_t tag, int64_t *out);
int rec_get_bytes(const recr *r, uint16_t tag, const uint8_t **p, size_t *n);
/* Copy a string field into a NUL-terminated malloc'd string; -EINVAL if the
 * value contains a NUL or exceeds maxlen. */
int rec_get_str(const recr *r, uint16_t tag, size_t maxlen, char **out);
int rec_get_rec(const recr *r, uint16_t tag, recr *out);
/* Whether a tag is present. */
int rec_has(const recr *r, uint16_t tag);

/* Iterate all fields: returns 1 with tag/value set, 0 at end. */
void rec_iter_init(rec_iter *it);
int rec_next(const recr *r, rec_iter *it, uint16_t *tag, const uint8_t **p, size_t *n);
/* Number of fields with a given tag. */
size_t rec_count(const recr *r, uint16_t tag);

#endif
