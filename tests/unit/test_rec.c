/*
 * test_rec.c — the record codec: round trips, nesting, repeated and unknown
 * tags, and rejection of truncated or corrupt input.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/rec.h"
#include "common/util.h"

enum { T_A = 1, T_B = 2, T_STR = 3, T_BYTES = 4, T_NEST = 5, T_LIST = 6, T_EMPTY = 7,
       T_NEG = 8, T_UNKNOWN = 999 };

/* A record with one field of each kind, finished; caller frees. */
static uint8_t *sample(size_t *len)
{
    recw w, inner;
    uint8_t *out;
    int i;

    recw_init(&inner, 42);
    recw_u64(&inner, T_A, 7);
    recw_str(&inner, T_STR, "inner");
    recw_finish(&inner, NULL);

    recw_init(&w, 9);
    recw_u64(&w, T_A, 0x0123456789abcdefULL);
    recw_i64(&w, T_NEG, -5);
    recw_str(&w, T_STR, "hello");
    recw_bytes(&w, T_BYTES, "\x00\x01\x02\xff", 4);
    recw_bytes(&w, T_EMPTY, NULL, 0);
    for (i = 0; i < 3; i++)
        recw_u64(&w, T_LIST, (uint64_t)i * 10);
    recw_rec(&w, T_NEST, &inner);
    out = recw_steal(&w, len);
    recw_free(&w);
    recw_free(&inner);
    return out;
}

static void test_roundtrip(void **state)
{
    size_t len, n;
    uint8_t *b = sample(&len);
    const uint8_t *p;
    recr r;
    uint64_t u;
    int64_t i;
    char *s;

    (void)state;
    assert_int_equal(rec_open(&r, b, len), 0);
    assert_int_equal(r.type, 9);
    assert_int_equal(r.len, len);
    assert_int_equal(get_le16(b), REC_MAGIC);
    assert_int_equal(b[2], REC_FORMAT);
    assert_int_equal(get_le32(b + 4), len - REC_HDR_LEN);

    assert_int_equal(rec_get_u64(&r, T_A, &u), 0);
    assert_true(u == 0x0123456789abcdefULL);
    assert_int_equal(rec_get_i64(&r, T_NEG, &i), 0);
    assert_int_equal(i, -5);
    assert_int_equal(rec_get_str(&r, T_STR, 100, &s), 0);
    assert_string_equal(s, "hello");
    free(s);
    assert_int_equal(rec_get_bytes(&r, T_BYTES, &p, &n), 0);
    assert_int_equal(n, 4);
    assert_memory_equal(p, "\x00\x01\x02\xff", 4);
    assert_int_equal(rec_get_bytes(&r, T_EMPTY, &p, &n), 0);
    assert_int_equal(n, 0);
    assert_true(rec_has(&r, T_EMPTY));
    assert_false(rec_has(&r, T_B));
    assert_int_equal(rec_get_u64(&r, T_B, &u), -ENOENT);
    assert_int_equal(rec_get_str(&r, T_B, 100, &s), -ENOENT);

    /* Wrong sizes and limits. */
    assert_int_equal(rec_get_u64(&r, T_BYTES, &u), -EINVAL);
    assert_int_equal(rec_get_i64(&r, T_STR, &i), -EINVAL);
    assert_int_equal(rec_get_str(&r, T_STR, 4, &s), -EINVAL);
    assert_int_equal(rec_get_str(&r, T_STR, 5, &s), 0);
    free(s);
    assert_int_equal(rec_get_str(&r, T_BYTES, 100, &s), -EINVAL); /* has a NUL */
    assert_int_equal(rec_get_str(&r, T_EMPTY, 0, &s), 0);
    assert_string_equal(s, "");
    free(s);
    free(b);
}

static void test_extremes(void **state)
{
    static const uint64_t uv[] = {0, 1, 255, 256, UINT32_MAX, (uint64_t)UINT32_MAX + 1,
                                  UINT64_MAX};
    static const int64_t iv[] = {0, -1, 1, INT64_MIN, INT64_MAX};
    recw w;
    recr r;
    rec_iter it;
    uint16_t tag;
    const uint8_t *p, *b;
    size_t n, len, k = 0;

    (void)state;
    recw_init(&w, 0);
    for (n = 0; n < sizeof(uv) / sizeof(uv[0]); n++)
        recw_u64(&w, 0xffff, uv[n]);
    for (n = 0; n < sizeof(iv) / sizeof(iv[0]); n++)
        recw_i64(&w, 0, iv[n]);
    b = recw_finish(&w, &len);
    assert_int_equal(rec_open(&r, b, len), 0);
    assert_int_equal(r.type, 0);
    rec_iter_init(&it);
    while (rec_next(&r, &it, &tag, &p, &n)) {
        assert_int_equal(n, 8);
        if (k < 7) {
            assert_int_equal(tag, 0xffff);
            assert_true(get_le64(p) == uv[k]);
        } else {
            assert_int_equal(tag, 0);
            assert_true((int64_t)get_le64(p) == iv[k - 7]);
        }
        k++;
    }
    assert_int_equal(k, 12);
    recw_free(&w);

    /* An empty record is valid. */
    recw_init(&w, 3);
    b = recw_finish(&w, &len);
    assert_int_equal(len, REC_HDR_LEN);
    assert_int_equal(rec_open(&r, b, len), 0);
    rec_iter_init(&it);
    assert_int_equal(rec_next(&r, &it, &tag, &p, &n), 0);
    recw_free(&w);
}

static void test_nested(void **state)
{
    size_t len;
    uint8_t *b = sample(&len);
    recr r, in, deep;
    uint64_t u;
    char *s;
    recw w1, w2, w3;
    const uint8_t *out;

    (void)state;
    assert_int_equal(rec_open(&r, b, len), 0);
    assert_int_equal(rec_get_rec(&r, T_NEST, &in), 0);
    assert_int_equal(in.type, 42);
    assert_int_equal(rec_get_u64(&in, T_A, &u), 0);
    assert_int_equal(u, 7);
    assert_int_equal(rec_get_str(&in, T_STR, 10, &s), 0);
    assert_string_equal(s, "inner");
    free(s);
    /* A field that is not a record does not open as one. */
    assert_int_equal(rec_get_rec(&r, T_STR, &in), CAIRN_EPROTO);
    assert_int_equal(rec_get_rec(&r, T_B, &in), -ENOENT);
    free(b);

    /* Three levels; the innermost writer is never finished explicitly. */
    recw_init(&w3, 3);
    recw_u64(&w3, T_A, 333);
    recw_init(&w2, 2);
    recw_rec(&w2, T_NEST, &w3);
    recw_u64(&w2, T_A, 222);
    recw_finish(&w2, NULL);
    recw_init(&w1, 1);
    recw_rec(&w1, T_NEST, &w2);
    recw_rec(&w1, T_NEST, &w2);
    out = recw_finish(&w1, &len);
    assert_int_equal(rec_open(&r, out, len), 0);
    assert_int_equal(rec_count(&r, T_NEST), 2);
    assert_int_equal(rec_get_rec(&r, T_NEST, &in), 0);
    assert_int_equal(rec_get_u64(&in, T_A, &u), 0);
    assert_int_equal(u, 222);
    assert_int_equal(rec_get_rec(&in, T_NEST, &deep), 0);
    assert_int_equal(deep.type, 3);
    assert_int_equal(rec_get_u64(&deep, T_A, &u), 0);
    assert_int_equal(u, 333);
    recw_free(&w1);
    recw_free(&w2);
    recw_free(&w3);
}

static void test_repeated_tags(void **state)
{
    size_t len, n, k = 0;
    uint8_t *b = sample(&len);
    recr r;
    rec_iter it;
    uint16_t tag;
    const uint8_t *p;
    uint64_t u;

    (void)state;
    assert_int_equal(rec_open(&r, b, len), 0);
    assert_int_equal(rec_count(&r, T_LIST), 3);
    assert_int_equal(rec_count(&r, T_A), 1);
    assert_int_equal(rec_count(&r, T_B), 0);
    /* The getter returns the first occurrence. */
    assert_int_equal(rec_get_u64(&r, T_LIST, &u), 0);
    assert_int_equal(u, 0);
    rec_iter_init(&it);
    while (rec_next(&r, &it, &tag, &p, &n)) {
        if (tag != T_LIST)
            continue;
        assert_int_equal(n, 8);
        assert_int_equal(get_le64(p), k * 10);
        k++;
    }
    assert_int_equal(k, 3);
    /* The iterator stays at the end. */
    assert_int_equal(rec_next(&r, &it, &tag, &p, &n), 0);
    free(b);
}

static void test_unknown_tags_skipped(void **state)
{
    recw w;
    recr r;
    const uint8_t *b;
    size_t len, n, fields = 0;
    uint64_t u;
    char *s;
    rec_iter it;
    uint16_t tag;
    const uint8_t *p;
    uint8_t blob[300];

    (void)state;
    memset(blob, 0x5a, sizeof(blob));
    /* A newer writer interleaves fields this reader does not know. */
    recw_init(&w, 1);
    recw_bytes(&w, T_UNKNOWN, blob, sizeof(blob));
    recw_u64(&w, T_A, 11);
    recw_bytes(&w, T_UNKNOWN + 1, blob, 3);
    recw_str(&w, T_STR, "x");
    recw_u64(&w, T_UNKNOWN + 2, 5);
    b = recw_finish(&w, &len);
    assert_int_equal(rec_open(&r, b, len), 0);
    assert_int_equal(rec_get_u64(&r, T_A, &u), 0);
    assert_int_equal(u, 11);
    assert_int_equal(rec_get_str(&r, T_STR, 10, &s), 0);
    assert_string_equal(s, "x");
    free(s);
    rec_iter_init(&it);
    while (rec_next(&r, &it, &tag, &p, &n))
        fields++;
    assert_int_equal(fields, 5);
    recw_free(&w);
}

static void test_truncated_every_length(void **state)
{
    size_t len, cut, got;
    uint8_t *b = sample(&len);
    uint8_t *copy;
    recr r;

    (void)state;
    for (cut = 0; cut < len; cut++) {
        /* A fresh allocation of exactly cut bytes lets ASan catch any read
         * past the end. */
        copy = malloc(cut ? cut : 1);
        assert_non_null(copy);
        memcpy(copy, b, cut);
        if (rec_open(&r, copy, cut) != CAIRN_EPROTO)
            fail_msg("truncated record of %zu/%zu bytes accepted", cut, len);
        assert_int_equal(rec_peek_len(copy, cut, &got), -EAGAIN);
        free(copy);
    }
    assert_int_equal(rec_open(&r, b, len), 0);
    assert_int_equal(rec_peek_len(b, len, &got), 0);
    assert_int_equal(got, len);
    free(b);
}

static void test_truncated_nested(void **state)
{
    recw in, out;
    recr r, nr;
    const uint8_t *ib;
    size_t ilen, cut, len;

    (void)state;
    recw_init(&in, 5);
    recw_u64(&in, T_A, 1);
    recw_str(&in, T_STR, "abcdef");
    ib = recw_finish(&in, &ilen);
    /* An outer record that is well formed but carries a cut-off inner one. */
    for (cut = 0; cut < ilen; cut++) {
        const uint8_t *b;

        recw_init(&out, 1);
        recw_bytes(&out, T_NEST, ib, cut);
        b = recw_finish(&out, &len);
        assert_int_equal(rec_open(&r, b, len), 0);
        assert_int_equal(rec_get_rec(&r, T_NEST, &nr), CAIRN_EPROTO);
        recw_free(&out);
    }
    recw_free(&in);
}

static void test_corrupt_lengths(void **state)
{
    size_t len, off;
    uint8_t *b = sample(&len);
    uint8_t *c = malloc(len + 16);
    recr r;
    uint32_t v;
    static const uint32_t deltas[] = {1, 2, 5, 8, 14, 1000, 0x7fffffff, 0xfffffff0};
    size_t d;
    int rc;

    (void)state;
    assert_non_null(c);
    /* body_len that does not match the buffer. */
    for (d = 0; d < sizeof(deltas) / sizeof(deltas[0]); d++) {
        memcpy(c, b, len);
        put_le32(c + 4, (uint32_t)(len - REC_HDR_LEN + deltas[d]));
        assert_int_equal(rec_open(&r, c, len), CAIRN_EPROTO);
        put_le32(c + 4, (uint32_t)(len - REC_HDR_LEN - 1));
        assert_int_equal(rec_open(&r, c, len), CAIRN_EPROTO);
    }
    /* Trailing bytes after a complete record. */
    memcpy(c, b, len);
    memset(c + len, 0, 16);
    assert_int_equal(rec_open(&r, c, len + 3), CAIRN_EPROTO);
    assert_int_equal(rec_open(&r, c, len + 6), CAIRN_EPROTO);

    /* Every field length grown: past the end of the body is always
     * rejected; swallowing whole following fields keeps a valid layout; any
     * other growth misaligns the walk, which may or may not happen to parse
     * but must never yield a field outside the buffer. */
    for (off = REC_HDR_LEN; off < len; off += REC_FIELD_HDR_LEN + get_le32(b + off + 2)) {
        uint32_t flen = get_le32(b + off + 2);

        for (d = 0; d < sizeof(deltas) / sizeof(deltas[0]); d++) {
            uint64_t end = (uint64_t)off + REC_FIELD_HDR_LEN + flen + deltas[d];
            int on_boundary = 0;
            size_t f;

            if ((uint64_t)flen + deltas[d] > UINT32_MAX)
                continue;

            for (f = REC_HDR_LEN; f <= len; f += REC_FIELD_HDR_LEN + get_le32(b + f + 2)) {
                if (f == end)
                    on_boundary = 1;
                if (f == len)
                    break;
            }
            memcpy(c, b, len);
            v = flen + deltas[d];
            put_le32(c + off + 2, v);
            rc = rec_open(&r, c, len);
            if (end > len) {
                assert_int_equal(rc, CAIRN_EPROTO);
            } else if (on_boundary) {
                assert_int_equal(rc, 0);
            } else if (rc == 0) {
                rec_iter it;
                uint16_t tag;
                const uint8_t *p;
                size_t n;

                rec_iter_init(&it);
                while (rec_next(&r, &it, &tag, &p, &n))
                    assert_true(p + n <= c + len);
            } else {
                assert_int_equal(rc, CAIRN_EPROTO);
            }
        }
    }
    /* The last field shrunk by one leaves one dangling byte, too short for
     * a field header. */
    for (off = REC_HDR_LEN; off + REC_FIELD_HDR_LEN + get_le32(b + off + 2) < len;
         off += REC_FIELD_HDR_LEN + get_le32(b + off + 2))
        ;
    assert_true(get_le32(b + off + 2) > 0);
    memcpy(c, b, len);
    put_le32(c + off + 2, get_le32(b + off + 2) - 1);
    assert_int_equal(rec_open(&r, c, len), CAIRN_EPROTO);
    free(c);
    free(b);
}

static void test_bad_magic_format(void **state)
{
    size_t len, got;
    uint8_t *b = sample(&len);
    recr r;

    (void)state;
    b[0] ^= 0x01;
    assert_int_equal(rec_open(&r, b, len), CAIRN_EPROTO);
    assert_int_equal(rec_peek_len(b, len, &got), CAIRN_EPROTO);
    b[0] ^= 0x01;
    b[1] = 0;
    assert_int_equal(rec_open(&r, b, len), CAIRN_EPROTO);
    b[1] = 0xCA;
    b[2] = REC_FORMAT + 1;
    assert_int_equal(rec_open(&r, b, len), CAIRN_EBADVERSION);
    assert_int_equal(rec_peek_len(b, len, &got), CAIRN_EBADVERSION);
    b[2] = 0;
    assert_int_equal(rec_open(&r, b, len), CAIRN_EBADVERSION);
    b[2] = REC_FORMAT;
    assert_int_equal(rec_open(&r, b, len), 0);
    assert_int_equal(rec_open(&r, NULL, 0), CAIRN_EPROTO);
    free(b);
}

static void test_peek_concatenated(void **state)
{
    buf all = {0};
    recw w;
    const uint8_t *p;
    size_t len, off = 0, got, count = 0;
    uint64_t u;
    uint8_t torn[5];
    recr r;
    int i, rc;

    (void)state;
    for (i = 0; i < 5; i++) {
        recw_init(&w, (uint8_t)i);
        recw_u64(&w, T_A, (uint64_t)i);
        if (i % 2)
            recw_str(&w, T_STR, "odd");
        p = recw_finish(&w, &len);
        buf_append(&all, p, len);
        recw_free(&w);
    }
    /* A torn tail: the first bytes of a sixth record. */
    memcpy(torn, all.data, sizeof(torn));
    buf_append(&all, torn, sizeof(torn));
    while ((rc = rec_peek_len(all.data + off, all.len - off, &got)) == 0) {
        assert_int_equal(rec_open(&r, all.data + off, got), 0);
        assert_int_equal(r.type, count);
        assert_int_equal(rec_get_u64(&r, T_A, &u), 0);
        assert_int_equal(u, count);
        assert_int_equal(rec_has(&r, T_STR), count % 2);
        off += got;
        count++;
    }
    assert_int_equal(rc, -EAGAIN);
    assert_int_equal(count, 5);
    assert_int_equal(all.len - off, 5);
    buf_free(&all);
}

static void test_steal(void **state)
{
    recw w;
    uint8_t *b;
    size_t len;
    recr r;

    (void)state;
    recw_init(&w, 77);
    recw_str(&w, T_STR, "owned");
    b = recw_steal(&w, &len);
    recw_free(&w);
    assert_int_equal(rec_open(&r, b, len), 0);
    assert_int_equal(r.type, 77);
    assert_true(rec_has(&r, T_STR));
    free(b);
}

/* Random corruption must be rejected or decode within bounds: a record
 * comes from the network. */
static void test_random_corruption(void **state)
{
    size_t len, i, n;
    uint8_t *b = sample(&len);
    uint8_t *c = malloc(len);
    uint32_t x = 12345;
    int round;
    recr r, in;
    rec_iter it;
    uint16_t tag;
    const uint8_t *p;
    char *s;
    uint64_t u;

    (void)state;
    assert_non_null(c);
    for (round = 0; round < 20000; round++) {
        memcpy(c, b, len);
        for (i = 0; i < 3; i++) {
            x = x * 1103515245 + 12345;
            c[(x >> 8) % len] ^= (uint8_t)(1 + (x >> 20) % 255);
        }
        if (rec_open(&r, c, len) != 0)
            continue;
        rec_iter_init(&it);
        while (rec_next(&r, &it, &tag, &p, &n))
            assert_true(p >= c && p + n <= c + len);
        if (rec_get_str(&r, T_STR, 1000, &s) == 0)
            free(s);
        (void)rec_get_u64(&r, T_A, &u);
        if (rec_get_rec(&r, T_NEST, &in) == 0)
            (void)rec_count(&in, T_A);
    }
    free(c);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_extremes),
        cmocka_unit_test(test_nested),
        cmocka_unit_test(test_repeated_tags),
        cmocka_unit_test(test_unknown_tags_skipped),
        cmocka_unit_test(test_truncated_every_length),
        cmocka_unit_test(test_truncated_nested),
        cmocka_unit_test(test_corrupt_lengths),
        cmocka_unit_test(test_bad_magic_format),
        cmocka_unit_test(test_peek_concatenated),
        cmocka_unit_test(test_steal),
        cmocka_unit_test(test_random_corruption),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
