/*
 * test_fsrec.c — filesystem record schemas: attributes, version vectors and
 * chunk-map slots round trip; missing or malformed fields are rejected.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/fsrec.h"

static fs_attr sample_attr(void)
{
    fs_attr a;

    memset(&a, 0, sizeof(a));
    a.ino = 0x123456789ULL;
    a.gen = 3;
    a.mode = S_IFREG | 0640;
    a.uid = 1000;
    a.gid = UINT32_MAX;
    a.nlink = 2;
    a.rdev = 0x0801;
    a.size = (1ULL << 40) + 17;
    a.atime = -1; /* before the epoch */
    a.mtime = 1700000000123456789LL;
    a.ctime = INT64_MAX;
    assert_int_equal(vv_parse("1:4,3:9", &a.vv), 0);
    return a;
}

static void assert_attr_equal(const fs_attr *x, const fs_attr *y)
{
    assert_true(x->ino == y->ino);
    assert_true(x->gen == y->gen);
    assert_int_equal(x->mode, y->mode);
    assert_int_equal(x->uid, y->uid);
    assert_int_equal(x->gid, y->gid);
    assert_int_equal(x->nlink, y->nlink);
    assert_true(x->rdev == y->rdev);
    assert_true(x->size == y->size);
    assert_true(x->atime == y->atime);
    assert_true(x->mtime == y->mtime);
    assert_true(x->ctime == y->ctime);
    assert_true(vv_equal(&x->vv, &y->vv));
}

static void test_attr_roundtrip(void **state)
{
    fs_attr a = sample_attr(), b;
    recw w;
    recr r;
    const uint8_t *p;
    size_t len;

    (void)state;
    recw_init(&w, FSREC_INODE);
    fsrec_put_attr(&w, &a);
    recw_str(&w, FT_NAME, "file.txt"); /* extra fields do not disturb */
    p = recw_finish(&w, &len);
    assert_int_equal(rec_open(&r, p, len), 0);
    assert_int_equal(r.type, FSREC_INODE);
    memset(&b, 0xee, sizeof(b));
    assert_int_equal(fsrec_get_attr(&r, &b), 0);
    assert_attr_equal(&a, &b);
    recw_free(&w);

    /* Empty VV round trips too. */
    vv_init(&a.vv);
    recw_init(&w, FSREC_INODE);
    fsrec_put_attr(&w, &a);
    p = recw_finish(&w, &len);
    assert_int_equal(rec_open(&r, p, len), 0);
    assert_int_equal(fsrec_get_attr(&r, &b), 0);
    assert_int_equal(b.vv.n, 0);
    assert_attr_equal(&a, &b);
    recw_free(&w);
}

static void test_attr_nested_dirent(void **state)
{
    fs_attr a = sample_attr(), b;
    recw list, ent;
    recr r, e;
    rec_iter it;
    uint16_t tag;
    const uint8_t *p, *v;
    size_t len, n, count = 0;
    int i;

    (void)state;
    recw_init(&list, FSREC_DIRLIST);
    for (i = 0; i < 3; i++) {
        recw_init(&ent, FSREC_INODE);
        a.ino = 100 + (uint64_t)i;
        fsrec_put_attr(&ent, &a);
        recw_str(&ent, FT_NAME, i == 0 ? "a" : i == 1 ? "b" : "c");
        recw_finish(&ent, NULL);
        recw_rec(&list, FT_DIRENT, &ent);
        recw_free(&ent);
    }
    recw_u64(&list, FT_EOF, 1);
    p = recw_finish(&list, &len);
    assert_int_equal(rec_open(&r, p, len), 0);
    rec_iter_init(&it);
    while (rec_next(&r, &it, &tag, &v, &n)) {
        char *name;

        if (tag != FT_DIRENT)
            continue;
        assert_int_equal(rec_open(&e, v, n), 0);
        assert_int_equal(fsrec_get_attr(&e, &b), 0);
        assert_true(b.ino == 100 + count);
        assert_int_equal(rec_get_str(&e, FT_NAME, FS_NAME_MAX, &name), 0);
        assert_int_equal(name[0], 'a' + (int)count);
        free(name);
        count++;
    }
    assert_int_equal(count, 3);
    recw_free(&list);
}

/* An attribute record without one of the fields (or with one of a wrong
 * size/range) must be rejected. */
static int decode_modified(uint16_t drop, uint16_t replace_tag, const void *val, size_t vlen)
{
    fs_attr a = sample_attr(), b;
    recw full, w;
    recr r, src;
    rec_iter it;
    uint16_t tag;
    const uint8_t *p, *v;
    size_t len, n;
    int rc;

    recw_init(&full, FSREC_INODE);
    fsrec_put_attr(&full, &a);
    p = recw_finish(&full, &len);
    assert_int_equal(rec_open(&src, p, len), 0);
    recw_init(&w, FSREC_INODE);
    rec_iter_init(&it);
    while (rec_next(&src, &it, &tag, &v, &n)) {
        if (tag == drop)
            continue;
        if (tag == replace_tag)
            recw_bytes(&w, tag, val, vlen);
        else
            recw_bytes(&w, tag, v, n);
    }
    p = recw_finish(&w, &len);
    assert_int_equal(rec_open(&r, p, len), 0);
    rc = fsrec_get_attr(&r, &b);
    recw_free(&w);
    recw_free(&full);
    return rc;
}

static void test_attr_missing_required(void **state)
{
    static const uint16_t optional[] = {FT_GEN, FT_UID, FT_GID, FT_NLINK, FT_RDEV,
                                        FT_SIZE, FT_ATIME, FT_MTIME, FT_CTIME};
    size_t i;

    (void)state;
    assert_int_equal(decode_modified(0, 0, NULL, 0), 0);
    assert_int_equal(decode_modified(FT_INO, 0, NULL, 0), CAIRN_EPROTO);
    assert_int_equal(decode_modified(FT_MODE, 0, NULL, 0), CAIRN_EPROTO);
    assert_int_equal(decode_modified(FT_VV, 0, NULL, 0), CAIRN_EPROTO);
    for (i = 0; i < sizeof(optional) / sizeof(optional[0]); i++)
        assert_int_equal(decode_modified(optional[i], 0, NULL, 0), 0);
}

static void test_attr_optional_defaults(void **state)
{
    recw w;
    recr r;
    fs_attr b;
    vv v;
    const uint8_t *p;
    size_t len;

    (void)state;
    vv_init(&v);
    recw_init(&w, FSREC_INODE);
    recw_u64(&w, FT_INO, 5);
    recw_u64(&w, FT_MODE, S_IFDIR | 0755);
    fsrec_put_vv(&w, FT_VV, &v);
    p = recw_finish(&w, &len);
    assert_int_equal(rec_open(&r, p, len), 0);
    memset(&b, 0xee, sizeof(b));
    assert_int_equal(fsrec_get_attr(&r, &b), 0);
    assert_int_equal(b.ino, 5);
    assert_int_equal(b.mode, S_IFDIR | 0755);
    assert_int_equal(b.gen, 0);
    assert_int_equal(b.uid, 0);
    assert_int_equal(b.nlink, 0);
    assert_int_equal(b.size, 0);
    assert_int_equal(b.mtime, 0);
    assert_int_equal(b.vv.n, 0);
    recw_free(&w);
}

static void test_attr_malformed_fields(void **state)
{
    uint8_t big[8], four[4] = {1, 2, 3, 4}, vvb[24];

    (void)state;
    memset(big, 0xff, sizeof(big));
    /* Wrong sizes. */
    assert_int_equal(decode_modified(0, FT_INO, four, 4), CAIRN_EPROTO);
    assert_int_equal(decode_modified(0, FT_SIZE, four, 4), CAIRN_EPROTO);
    assert_int_equal(decode_modified(0, FT_MTIME, big, 7), CAIRN_EPROTO);
    /* 32-bit fields that do not fit. */
    assert_int_equal(decode_modified(0, FT_MODE, big, 8), CAIRN_EPROTO);
    assert_int_equal(decode_modified(0, FT_UID, big, 8), CAIRN_EPROTO);
    assert_int_equal(decode_modified(0, FT_NLINK, big, 8), CAIRN_EPROTO);
    /* 64-bit fields take all values. */
    assert_int_equal(decode_modified(0, FT_SIZE, big, 8), 0);
    /* Bad version vectors. */
    assert_int_equal(decode_modified(0, FT_VV, vvb, 11), CAIRN_EPROTO);
    memset(vvb, 0, sizeof(vvb));
    put_le32(vvb, 1);
    put_le64(vvb + 4, 0); /* zero counter */
    assert_int_equal(decode_modified(0, FT_VV, vvb, 12), CAIRN_EPROTO);
}

static void test_vv_wire(void **state)
{
    vv v, out;
    recw w;
    recr r;
    const uint8_t *p, *bytes;
    size_t len, n;
    uint8_t raw[12 * (VV_MAX + 1)];
    uint32_t i;

    (void)state;
    assert_int_equal(vv_parse("0:1,7:18446744073709551615,4294967295:3", &v), 0);
    recw_init(&w, FSREC_REQ);
    fsrec_put_vv(&w, FT_VV, &v);
    p = recw_finish(&w, &len);
    assert_int_equal(rec_open(&r, p, len), 0);
    assert_int_equal(rec_get_bytes(&r, FT_VV, &bytes, &n), 0);
    assert_int_equal(n, 36);
    assert_int_equal(get_le32(bytes + 12), 7);
    assert_true(get_le64(bytes + 16) == UINT64_MAX);
    assert_int_equal(fsrec_get_vv(&r, FT_VV, &out), 0);
    assert_true(vv_equal(&v, &out));
    assert_int_equal(fsrec_get_vv(&r, FT_INO, &out), -ENOENT);
    recw_free(&w);

    /* Decoder invariants: sorted unique ids, no zero counter, at most VV_MAX. */
    assert_int_equal(fsrec_vv_decode(raw, 0, &out), 0);
    assert_int_equal(out.n, 0);
    for (i = 0; i <= VV_MAX; i++) {
        put_le32(raw + 12 * i, i + 1);
        put_le64(raw + 12 * i + 4, 1);
    }
    assert_int_equal(fsrec_vv_decode(raw, 12 * VV_MAX, &out), 0);
    assert_int_equal(out.n, VV_MAX);
    assert_int_equal(fsrec_vv_decode(raw, 12 * (VV_MAX + 1), &out), CAIRN_EPROTO);
    assert_int_equal(fsrec_vv_decode(raw, 13, &out), CAIRN_EPROTO);
    put_le32(raw + 12, 1); /* duplicate id */
    assert_int_equal(fsrec_vv_decode(raw, 24, &out), CAIRN_EPROTO);
    put_le32(raw + 12, 0); /* descending */
    assert_int_equal(fsrec_vv_decode(raw, 24, &out), CAIRN_EPROTO);
}

static void test_slot_roundtrip(void **state)
{
    fs_slot s, t;
    recw w;
    recr r;
    rec_iter it;
    uint16_t tag;
    const uint8_t *p, *v;
    size_t len, n, count = 0;
    uint64_t idx[3] = {0, 7, UINT64_MAX};
    int i;

    (void)state;
    recw_init(&w, FSREC_REQ);
    for (i = 0; i < 3; i++) {
        s.index = idx[i];
        s.len = (uint32_t)(4 << 20) - (uint32_t)i;
        sha256(&i, sizeof(i), s.id);
        fsrec_put_slot(&w, &s);
    }
    p = recw_finish(&w, &len);
    assert_int_equal(rec_open(&r, p, len), 0);
    assert_int_equal(rec_count(&r, FT_SLOT), 3);
    rec_iter_init(&it);
    while (rec_next(&r, &it, &tag, &v, &n)) {
        uint8_t id[CHUNK_ID_LEN];
        int k = (int)count;

        assert_int_equal(tag, FT_SLOT);
        assert_int_equal(n, FS_SLOT_LEN);
        assert_int_equal(fsrec_slot_decode(v, n, &t), 0);
        assert_true(t.index == idx[count]);
        assert_int_equal(t.len, (4 << 20) - count);
        sha256(&k, sizeof(k), id);
        assert_memory_equal(t.id, id, CHUNK_ID_LEN);
        assert_int_equal(fsrec_slot_decode(v, n - 1, &t), CAIRN_EPROTO);
        count++;
    }
    assert_int_equal(count, 3);
    assert_int_equal(fsrec_slot_decode(p, FS_SLOT_LEN + 1, &t), CAIRN_EPROTO);
    assert_int_equal(fsrec_slot_decode(p, 0, &t), CAIRN_EPROTO);
    recw_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attr_roundtrip),
        cmocka_unit_test(test_attr_nested_dirent),
        cmocka_unit_test(test_attr_missing_required),
        cmocka_unit_test(test_attr_optional_defaults),
        cmocka_unit_test(test_attr_malformed_fields),
        cmocka_unit_test(test_vv_wire),
        cmocka_unit_test(test_slot_roundtrip),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
