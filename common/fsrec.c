/*
 * fsrec.c — encoders/decoders for the filesystem record schemas (see
 * fsrec.h).
 */
#include "common/fsrec.h"

#include <errno.h>
#include <string.h>

#include "common/err.h"

#define VV_WIRE_ENTRY 12 /* u32 replica + u64 counter */

void fsrec_put_vv(recw *w, uint16_t tag, const vv *v)
{
    uint8_t bytes[VV_MAX * VV_WIRE_ENTRY];
    uint32_t i, n = v->n < VV_MAX ? v->n : VV_MAX;

    for (i = 0; i < n; i++) {
        put_le32(bytes + i * VV_WIRE_ENTRY, v->e[i].replica);
        put_le64(bytes + i * VV_WIRE_ENTRY + 4, v->e[i].counter);
    }
    recw_bytes(w, tag, bytes, (size_t)n * VV_WIRE_ENTRY);
}

int fsrec_vv_decode(const uint8_t *p, size_t n, vv *out)
{
    vv r;
    size_t i, cnt;

    if (n % VV_WIRE_ENTRY != 0 || n / VV_WIRE_ENTRY > VV_MAX)
        return CAIRN_EPROTO;
    cnt = n / VV_WIRE_ENTRY;
    vv_init(&r);
    /* The same invariants as vv.h (sorted, unique ids, no zero counters):
     * vv_compare and vv_merge rely on them. */
    for (i = 0; i < cnt; i++) {
        uint32_t rep = get_le32(p + i * VV_WIRE_ENTRY);
        uint64_t c = get_le64(p + i * VV_WIRE_ENTRY + 4);

        if (c == 0 || (i > 0 && rep <= r.e[i - 1].replica))
            return CAIRN_EPROTO;
        r.e[i].replica = rep;
        r.e[i].counter = c;
    }
    r.n = (uint32_t)cnt;
    *out = r;
    return 0;
}

int fsrec_get_vv(const recr *r, uint16_t tag, vv *out)
{
    const uint8_t *p;
    size_t n;
    int rc = rec_get_bytes(r, tag, &p, &n);

    if (rc < 0)
        return rc;
    return fsrec_vv_decode(p, n, out);
}

void fsrec_put_attr(recw *w, const fs_attr *a)
{
    recw_u64(w, FT_INO, a->ino);
    recw_u64(w, FT_GEN, a->gen);
    recw_u64(w, FT_MODE, a->mode);
    recw_u64(w, FT_UID, a->uid);
    recw_u64(w, FT_GID, a->gid);
    recw_u64(w, FT_NLINK, a->nlink);
    recw_u64(w, FT_RDEV, a->rdev);
    recw_u64(w, FT_SIZE, a->size);
    recw_i64(w, FT_ATIME, a->atime);
    recw_i64(w, FT_MTIME, a->mtime);
    recw_i64(w, FT_CTIME, a->ctime);
    fsrec_put_vv(w, FT_VV, &a->vv);
}

/* Optional u64 field: absent leaves *out alone, wrong size is a protocol
 * error (rec.h reports it as -EINVAL, fsrec.h promises CAIRN_EPROTO). */
static int get_u64_opt(const recr *r, uint16_t tag, uint64_t *out)
{
    int rc = rec_get_u64(r, tag, out);

    if (rc == -ENOENT)
        return 0;
    return rc < 0 ? CAIRN_EPROTO : 0;
}

static int get_u32_opt(const recr *r, uint16_t tag, uint32_t *out)
{
    uint64_t v = *out;
    int rc = get_u64_opt(r, tag, &v);

    if (rc < 0)
        return rc;
    if (v > UINT32_MAX)
        return CAIRN_EPROTO;
    *out = (uint32_t)v;
    return 0;
}

static int get_i64_opt(const recr *r, uint16_t tag, int64_t *out)
{
    uint64_t v = (uint64_t)*out;
    int rc = get_u64_opt(r, tag, &v);

    if (rc < 0)
        return rc;
    *out = (int64_t)v;
    return 0;
}

int fsrec_get_attr(const recr *r, fs_attr *a)
{
    fs_attr t;
    int rc;

    memset(&t, 0, sizeof(t));
    if (!rec_has(r, FT_INO) || !rec_has(r, FT_MODE) || !rec_has(r, FT_VV))
        return CAIRN_EPROTO;
    if ((rc = get_u64_opt(r, FT_INO, &t.ino)) < 0 ||
        (rc = get_u64_opt(r, FT_GEN, &t.gen)) < 0 ||
        (rc = get_u32_opt(r, FT_MODE, &t.mode)) < 0 ||
        (rc = get_u32_opt(r, FT_UID, &t.uid)) < 0 ||
        (rc = get_u32_opt(r, FT_GID, &t.gid)) < 0 ||
        (rc = get_u32_opt(r, FT_NLINK, &t.nlink)) < 0 ||
        (rc = get_u64_opt(r, FT_RDEV, &t.rdev)) < 0 ||
        (rc = get_u64_opt(r, FT_SIZE, &t.size)) < 0 ||
        (rc = get_i64_opt(r, FT_ATIME, &t.atime)) < 0 ||
        (rc = get_i64_opt(r, FT_MTIME, &t.mtime)) < 0 ||
        (rc = get_i64_opt(r, FT_CTIME, &t.ctime)) < 0)
        return rc;
    rc = fsrec_get_vv(r, FT_VV, &t.vv);
    if (rc < 0)
        return CAIRN_EPROTO;
    *a = t;
    return 0;
}

void fsrec_put_slot(recw *w, const fs_slot *s)
{
    uint8_t bytes[FS_SLOT_LEN];

    put_le64(bytes, s->index);
    put_le32(bytes + 8, s->len);
    memcpy(bytes + 12, s->id, CHUNK_ID_LEN);
    recw_bytes(w, FT_SLOT, bytes, sizeof(bytes));
}

int fsrec_slot_decode(const uint8_t *p, size_t n, fs_slot *out)
{
    if (n != FS_SLOT_LEN)
        return CAIRN_EPROTO;
    out->index = get_le64(p);
    out->len = get_le32(p + 8);
    memcpy(out->id, p + 12, CHUNK_ID_LEN);
    return 0;
}
