/*
 * test_chunk_file.c — the chunk file format (common/chunkfile.h):
 * round trips with and without zstd, every truncation rejected, every
 * flipped bit of header and payload detected.
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
#include "common/hash.h"
#include "common/util.h"
#include "common/chunkfile.h"

/* Build a whole file image for data[len]; caller frees. */
static uint8_t *make_file(const void *data, size_t len, int level, size_t *flen)
{
    uint8_t id[CHUNK_ID_LEN], hdr[CHUNKFILE_HDR_LEN];
    const void *stored;
    size_t stored_len;
    void *owned;
    sha256(data, len, id);
    assert_int_equal(chunkfile_encode(id, data, len, level, hdr, &stored, &stored_len, &owned),
                     0);
    *flen = CHUNKFILE_HDR_LEN + stored_len;
    uint8_t *f = xmalloc(*flen);
    memcpy(f, hdr, CHUNKFILE_HDR_LEN);
    if (stored_len)
        memcpy(f + CHUNKFILE_HDR_LEN, stored, stored_len);
    free(owned);
    return f;
}

/* Verify an image and return the raw chunk (malloc'd) or NULL on error. */
static int read_back(const uint8_t *f, size_t flen, const uint8_t *id, uint8_t **out,
                     size_t *outlen)
{
    chunkfile_hdr h;
    const uint8_t *payload;
    int rc = chunkfile_check(f, flen, id, &h, &payload);
    if (rc < 0)
        return rc;
    uint8_t *raw;
    rc = chunkfile_decode(&h, payload, h.stored_len, &raw);
    if (rc < 0)
        return rc;
    if (!raw) {
        raw = xmalloc(h.raw_len + 1);
        memcpy(raw, payload, h.raw_len);
    }
    *out = raw;
    *outlen = h.raw_len;
    return 0;
}

static uint8_t *random_bytes(size_t n, unsigned seed)
{
    uint8_t *p = xmalloc(n + 1);
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)x;
    }
    return p;
}

static void roundtrip(const uint8_t *data, size_t len, int level, int expect_zstd)
{
    uint8_t id[CHUNK_ID_LEN];
    sha256(data, len, id);
    size_t flen;
    uint8_t *f = make_file(data, len, level, &flen);
    chunkfile_hdr h;
    assert_int_equal(chunkfile_hdr_decode(f, &h), 0);
    assert_int_equal(h.version, CHUNKFILE_VERSION);
    assert_int_equal(h.raw_len, len);
    assert_int_equal(!!(h.flags & CHUNKFILE_F_ZSTD), expect_zstd);
    assert_memory_equal(h.id, id, CHUNK_ID_LEN);
    uint8_t *out = NULL;
    size_t outlen;
    assert_int_equal(read_back(f, flen, id, &out, &outlen), 0);
    assert_int_equal(outlen, len);
    if (len)
        assert_memory_equal(out, data, len);
    free(out);
    free(f);
}

static void test_roundtrip_plain(void **state)
{
    (void)state;
    uint8_t *d = random_bytes(100000, 1);
    roundtrip(d, 100000, 0, 0);
    roundtrip(d, 1, 0, 0);
    roundtrip(d, 0, 0, 0);
    free(d);
}

static void test_roundtrip_zstd(void **state)
{
    (void)state;
    size_t n = 1 << 20;
    uint8_t *text = xmalloc(n);
    for (size_t i = 0; i < n; i++)
        text[i] = "cairn chunk "[i % 12];
    roundtrip(text, n, 3, 1);
    free(text);
    /* Incompressible bytes stay raw even when compression is on. */
    uint8_t *d = random_bytes(65536, 2);
    roundtrip(d, 65536, 3, 0);
    free(d);
    /* Too small to shrink. */
    roundtrip((const uint8_t *)"x", 1, 19, 0);
    roundtrip((const uint8_t *)"", 0, 3, 0);
}

static void test_header_encoding(void **state)
{
    (void)state;
    size_t flen;
    uint8_t *f = make_file("hello", 5, 0, &flen);
    assert_int_equal(flen, CHUNKFILE_HDR_LEN + 5);
    assert_memory_equal(f, "CCHK", 4);
    assert_int_equal(f[4], CHUNKFILE_VERSION);
    assert_int_equal(get_le16(f + 6), CHUNKFILE_HDR_LEN);
    assert_int_equal(get_le64(f + 8), 5);
    assert_int_equal(get_le64(f + 16), 5);
    assert_int_equal(get_le32(f + 24), crc32c("hello", 5));
    assert_int_equal(get_le32(f + 60), crc32c(f, 60));
    free(f);
}

static void check_truncations(int level, const uint8_t *data, size_t len)
{
    uint8_t id[CHUNK_ID_LEN];
    sha256(data, len, id);
    size_t flen;
    uint8_t *f = make_file(data, len, level, &flen);
    for (size_t cut = 0; cut < flen; cut++) {
        /* A fresh copy of exactly cut bytes lets ASan catch any read past
         * the end. */
        uint8_t *t = xmalloc(cut ? cut : 1);
        memcpy(t, f, cut);
        chunkfile_hdr h;
        const uint8_t *payload;
        int rc = chunkfile_check(t, cut, id, &h, &payload);
        if (rc != CAIRN_ECORRUPT)
            fail_msg("truncation to %zu of %zu bytes: rc %d", cut, flen, rc);
        if (cut >= CHUNKFILE_HDR_LEN)
            assert_int_equal(chunkfile_check_header(t, cut, id, &h), CAIRN_ECORRUPT);
        free(t);
    }
    /* A trailing byte is as wrong as a missing one. */
    uint8_t *longer = xmalloc(flen + 1);
    memcpy(longer, f, flen);
    longer[flen] = 0;
    chunkfile_hdr h;
    const uint8_t *payload;
    assert_int_equal(chunkfile_check(longer, flen + 1, id, &h, &payload), CAIRN_ECORRUPT);
    free(longer);
    free(f);
}

static void test_truncation_rejected(void **state)
{
    (void)state;
    uint8_t *d = random_bytes(3000, 3);
    check_truncations(0, d, 3000);
    free(d);
    uint8_t text[4000];
    for (size_t i = 0; i < sizeof text; i++)
        text[i] = (uint8_t)("abcabcabd"[i % 9]);
    check_truncations(5, text, sizeof text);
    check_truncations(0, (const uint8_t *)"", 0);
}

/* Every single-bit flip anywhere in the file must fail verification: in
 * the header by the header CRC (or magic/version/length checks), in the
 * payload by the payload CRC. */
static void check_bitflips(int level, const uint8_t *data, size_t len)
{
    uint8_t id[CHUNK_ID_LEN];
    sha256(data, len, id);
    size_t flen;
    uint8_t *f = make_file(data, len, level, &flen);
    for (size_t byte = 0; byte < flen; byte++) {
        for (int bit = 0; bit < 8; bit++) {
            f[byte] ^= (uint8_t)(1u << bit);
            chunkfile_hdr h;
            const uint8_t *payload;
            int rc = chunkfile_check(f, flen, id, &h, &payload);
            if (rc >= 0)
                fail_msg("flip of bit %d in byte %zu not detected", bit, byte);
            /* Also without the id check: the header CRC alone catches it. */
            rc = chunkfile_check(f, flen, NULL, &h, &payload);
            if (rc >= 0)
                fail_msg("flip of bit %d in byte %zu not detected without id", bit, byte);
            f[byte] ^= (uint8_t)(1u << bit);
        }
    }
    chunkfile_hdr h;
    const uint8_t *payload;
    assert_int_equal(chunkfile_check(f, flen, id, &h, &payload), 0);
    free(f);
}

static void test_bitflip_detected(void **state)
{
    (void)state;
    uint8_t *d = random_bytes(1500, 4);
    check_bitflips(0, d, 1500);
    free(d);
    uint8_t text[2000];
    for (size_t i = 0; i < sizeof text; i++)
        text[i] = (uint8_t)("zzzzzzzzzy"[i % 10]);
    check_bitflips(3, text, sizeof text);
}

static void test_wrong_id_rejected(void **state)
{
    (void)state;
    size_t flen;
    uint8_t *f = make_file("abc", 3, 0, &flen);
    uint8_t other[CHUNK_ID_LEN];
    sha256("abd", 3, other);
    chunkfile_hdr h;
    const uint8_t *payload;
    assert_int_equal(chunkfile_check(f, flen, other, &h, &payload), CAIRN_ECORRUPT);
    free(f);
}

/* A header whose CRC is valid but whose fields are inconsistent (as a bug
 * or a future writer might produce) is still rejected. */
static void test_inconsistent_header(void **state)
{
    (void)state;
    uint8_t out[CHUNKFILE_HDR_LEN];
    chunkfile_hdr h = {.version = CHUNKFILE_VERSION, .raw_len = 10, .stored_len = 9};
    chunkfile_hdr got;
    chunkfile_hdr_encode(&h, out);
    assert_int_equal(chunkfile_hdr_decode(out, &got), CAIRN_ECORRUPT);
    h.flags = CHUNKFILE_F_ZSTD;
    h.stored_len = 10;
    chunkfile_hdr_encode(&h, out);
    assert_int_equal(chunkfile_hdr_decode(out, &got), CAIRN_ECORRUPT);
    h.flags = 0x80;
    chunkfile_hdr_encode(&h, out);
    assert_int_equal(chunkfile_hdr_decode(out, &got), CAIRN_ECORRUPT);
    h.flags = 0;
    h.raw_len = h.stored_len = CHUNKFILE_MAX_RAW + 1;
    chunkfile_hdr_encode(&h, out);
    assert_int_equal(chunkfile_hdr_decode(out, &got), -EFBIG);
    h.raw_len = h.stored_len = 10;
    h.version = CHUNKFILE_VERSION + 1;
    chunkfile_hdr_encode(&h, out);
    assert_int_equal(chunkfile_hdr_decode(out, &got), CAIRN_EBADVERSION);
}

/* A zstd frame whose CRC matches but which does not decode to raw_len
 * bytes is corruption, not a crash. */
static void test_bad_zstd_frame(void **state)
{
    (void)state;
    uint8_t junk[32];
    memset(junk, 0x5a, sizeof junk);
    chunkfile_hdr h = {.version = CHUNKFILE_VERSION, .flags = CHUNKFILE_F_ZSTD,
                       .raw_len = 100, .stored_len = sizeof junk};
    h.payload_crc = crc32c(junk, sizeof junk);
    assert_int_equal(chunkfile_check_payload(&h, junk, sizeof junk), 0);
    uint8_t *raw;
    assert_int_equal(chunkfile_decode(&h, junk, sizeof junk, &raw), CAIRN_ECORRUPT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_plain),
        cmocka_unit_test(test_roundtrip_zstd),
        cmocka_unit_test(test_header_encoding),
        cmocka_unit_test(test_truncation_rejected),
        cmocka_unit_test(test_bitflip_detected),
        cmocka_unit_test(test_wrong_id_rejected),
        cmocka_unit_test(test_inconsistent_header),
        cmocka_unit_test(test_bad_zstd_frame),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
