/*
 * rec.c — the binary record codec (see rec.h).
 */
#include "common/rec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

static void rec_too_big(size_t n)
{
    /* Writers only encode validated state, so this is a caller bug. */
    fprintf(stderr, "cairn: record field or body of %zu bytes exceeds 4 GiB\n", n);
    abort();
}

void recw_init(recw *w, uint8_t type)
{
    uint8_t hdr[REC_HDR_LEN];

    memset(w, 0, sizeof(*w));
    put_le16(hdr, REC_MAGIC);
    hdr[2] = REC_FORMAT;
    hdr[3] = type;
    put_le32(hdr + 4, 0);
    w->start = 0;
    buf_append(&w->b, hdr, sizeof(hdr));
}

static void field_hdr(recw *w, uint16_t tag, size_t n)
{
    uint8_t hdr[REC_FIELD_HDR_LEN];

    if (n > UINT32_MAX || w->b.len - w->start - REC_HDR_LEN + REC_FIELD_HDR_LEN + n > UINT32_MAX)
        rec_too_big(n);
    put_le16(hdr, tag);
    put_le32(hdr + 2, (uint32_t)n);
    buf_reserve(&w->b, sizeof(hdr) + n);
    buf_append(&w->b, hdr, sizeof(hdr));
}

void recw_u64(recw *w, uint16_t tag, uint64_t v)
{
    uint8_t val[8];

    put_le64(val, v);
    field_hdr(w, tag, sizeof(val));
    buf_append(&w->b, val, sizeof(val));
}

void recw_i64(recw *w, uint16_t tag, int64_t v)
{
    recw_u64(w, tag, (uint64_t)v);
}

void recw_bytes(recw *w, uint16_t tag, const void *p, size_t n)
{
    field_hdr(w, tag, n);
    buf_append(&w->b, p, n);
}

void recw_str(recw *w, uint16_t tag, const char *s)
{
    recw_bytes(w, tag, s, strlen(s));
}

void recw_rec(recw *w, uint16_t tag, const recw *inner)
{
    size_t n = inner->b.len - inner->start;
    size_t at;

    field_hdr(w, tag, n);
    at = w->b.len;
    buf_append(&w->b, inner->b.data + inner->start, n);
    /* Patch the copy's length so an inner writer that was not finished
     * still nests as a valid record. */
    put_le32(w->b.data + at + 4, (uint32_t)(n - REC_HDR_LEN));
}

const uint8_t *recw_finish(recw *w, size_t *len)
{
    size_t n = w->b.len - w->start;

    put_le32(w->b.data + w->start + 4, (uint32_t)(n - REC_HDR_LEN));
    if (len)
        *len = n;
    return w->b.data + w->start;
}

uint8_t *recw_steal(recw *w, size_t *len)
{
    size_t n;

    recw_finish(w, &n);
    if (w->start > 0) {
        memmove(w->b.data, w->b.data + w->start, n);
        w->b.len = n;
    }
    w->start = 0;
    return buf_steal(&w->b, len);
}

void recw_free(recw *w)
{
    buf_free(&w->b);
    w->start = 0;
}

static int check_header(const uint8_t *c)
{
    if (get_le16(c) != REC_MAGIC)
        return CAIRN_EPROTO;
    if (c[2] != REC_FORMAT)
        return CAIRN_EBADVERSION;
    return 0;
}

int rec_open(recr *r, const void *p, size_t len)
{
    const uint8_t *c = p;
    size_t off;
    int rc;

    if (!c || len < REC_HDR_LEN)
        return CAIRN_EPROTO;
    rc = check_header(c);
    if (rc < 0)
        return rc;
    if ((uint64_t)get_le32(c + 4) != (uint64_t)len - REC_HDR_LEN)
        return CAIRN_EPROTO;
    /* Every field header and value must lie inside the body; after this the
     * getters may trust the lengths they read. */
    off = REC_HDR_LEN;
    while (off < len) {
        size_t flen;

        if (len - off < REC_FIELD_HDR_LEN)
            return CAIRN_EPROTO;
        flen = get_le32(c + off + 2);
        off += REC_FIELD_HDR_LEN;
        if (flen > len - off)
            return CAIRN_EPROTO;
        off += flen;
    }
    r->p = c;
    r->len = len;
    r->type = c[3];
    return 0;
}

int rec_peek_len(const void *p, size_t avail, size_t *len)
{
    const uint8_t *c = p;
    uint64_t total;
    int rc;

    if (avail < REC_HDR_LEN)
        return -EAGAIN;
    rc = check_header(c);
    if (rc < 0)
        return rc;
    total = (uint64_t)REC_HDR_LEN + get_le32(c + 4);
    if (total > avail)
        return -EAGAIN;
    *len = (size_t)total;
    return 0;
}

void rec_iter_init(rec_iter *it)
{
    it->off = 0;
}

int rec_next(const recr *r, rec_iter *it, uint16_t *tag, const uint8_t **p, size_t *n)
{
    size_t flen;

    if (it->off < REC_HDR_LEN)
        it->off = REC_HDR_LEN;
    if (it->off >= r->len || r->len - it->off < REC_FIELD_HDR_LEN)
        return 0;
    flen = get_le32(r->p + it->off + 2);
    if (flen > r->len - it->off - REC_FIELD_HDR_LEN)
        return 0;
    *tag = get_le16(r->p + it->off);
    *p = r->p + it->off + REC_FIELD_HDR_LEN;
    *n = flen;
    it->off += REC_FIELD_HDR_LEN + flen;
    return 1;
}

int rec_get_bytes(const recr *r, uint16_t tag, const uint8_t **p, size_t *n)
{
    rec_iter it;
    uint16_t t;
    const uint8_t *v;
    size_t vn;

    rec_iter_init(&it);
    while (rec_next(r, &it, &t, &v, &vn)) {
        if (t == tag) {
            *p = v;
            *n = vn;
            return 0;
        }
    }
    return -ENOENT;
}

int rec_get_u64(const recr *r, uint16_t tag, uint64_t *out)
{
    const uint8_t *v;
    size_t n;
    int rc = rec_get_bytes(r, tag, &v, &n);

    if (rc < 0)
        return rc;
    if (n != 8)
        return -EINVAL;
    *out = get_le64(v);
    return 0;
}

int rec_get_i64(const recr *r, uint16_t tag, int64_t *out)
{
    uint64_t u;
    int rc = rec_get_u64(r, tag, &u);

    if (rc < 0)
        return rc;
    *out = (int64_t)u;
    return 0;
}

int rec_get_str(const recr *r, uint16_t tag, size_t maxlen, char **out)
{
    const uint8_t *v;
    size_t n;
    char *s;
    int rc = rec_get_bytes(r, tag, &v, &n);

    if (rc < 0)
        return rc;
    if (n > maxlen || memchr(v, '\0', n))
        return -EINVAL;
    s = malloc(n + 1);
    if (!s)
        return -ENOMEM;
    memcpy(s, v, n);
    s[n] = '\0';
    *out = s;
    return 0;
}

int rec_get_rec(const recr *r, uint16_t tag, recr *out)
{
    const uint8_t *v;
    size_t n;
    int rc = rec_get_bytes(r, tag, &v, &n);

    if (rc < 0)
        return rc;
    return rec_open(out, v, n);
}

int rec_has(const recr *r, uint16_t tag)
{
    const uint8_t *v;
    size_t n;

    return rec_get_bytes(r, tag, &v, &n) == 0;
}

size_t rec_count(const recr *r, uint16_t tag)
{
    rec_iter it;
    uint16_t t;
    const uint8_t *v;
    size_t vn, count = 0;

    rec_iter_init(&it);
    while (rec_next(r, &it, &t, &v, &vn))
        if (t == tag)
            count++;
    return count;
}
