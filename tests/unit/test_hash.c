/*
 * test_hash.c — CRC32C and SHA-256 against published vectors, piecewise
 * computation equal to one-shot, hole detection and chunk id text.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/hash.h"

static void fill_pattern(uint8_t *p, size_t n, uint32_t seed)
{
    size_t i;
    uint32_t x = seed * 2654435761u + 1;

    for (i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)x;
    }
}

static void test_crc32c_vectors(void **state)
{
    uint8_t b[32];
    int i;

    (void)state;
    assert_int_equal(crc32c("123456789", 9), 0xE3069283u);
    assert_int_equal(crc32c("", 0), 0);
    /* RFC 3720 appendix B.4 */
    memset(b, 0, sizeof(b));
    assert_int_equal(crc32c(b, 32), 0x8A9136AAu);
    memset(b, 0xff, sizeof(b));
    assert_int_equal(crc32c(b, 32), 0x62A8AB43u);
    for (i = 0; i < 32; i++)
        b[i] = (uint8_t)i;
    assert_int_equal(crc32c(b, 32), 0x46DD794Eu);
    for (i = 0; i < 32; i++)
        b[i] = (uint8_t)(31 - i);
    assert_int_equal(crc32c(b, 32), 0x113FDB5Cu);
}

static void test_crc32c_compose(void **state)
{
    enum { N = 10000 };
    uint8_t *d = malloc(N);
    uint32_t whole, crc;
    size_t cut, i;

    (void)state;
    assert_non_null(d);
    fill_pattern(d, N, 7);
    whole = crc32c(d, N);
    for (cut = 0; cut <= N; cut += 997) {
        crc = crc32c_update(0, d, cut);
        crc = crc32c_update(crc, d + cut, N - cut);
        assert_int_equal(crc, whole);
    }
    /* Many uneven pieces, including empty ones. */
    crc = 0;
    for (i = 0; i < N;) {
        size_t step = (i * 7 + 3) % 61;

        if (step > N - i)
            step = N - i;
        crc = crc32c_update(crc, d + i, step);
        i += step;
    }
    assert_int_equal(crc, whole);
    assert_int_equal(crc32c_update(crc32c_update(0, "1234", 4), "56789", 5), 0xE3069283u);
    /* A flipped bit changes the checksum. */
    d[N / 2] ^= 1;
    assert_int_not_equal(crc32c(d, N), whole);
    free(d);
}

static void digest_hex(const uint8_t id[CHUNK_ID_LEN], char *out)
{
    chunk_id_hex(id, out);
}

static void test_sha256_vectors(void **state)
{
    static const struct {
        const char *in;
        const char *hex;
    } v[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    };
    uint8_t id[CHUNK_ID_LEN];
    char hex[CHUNK_ID_HEX + 1];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        sha256(v[i].in, strlen(v[i].in), id);
        digest_hex(id, hex);
        assert_string_equal(hex, v[i].hex);
    }
}

static void test_sha256_million_a(void **state)
{
    enum { N = 1000000 };
    char *a = malloc(N);
    uint8_t id[CHUNK_ID_LEN];
    char hex[CHUNK_ID_HEX + 1];

    (void)state;
    assert_non_null(a);
    memset(a, 'a', N);
    sha256(a, N, id);
    digest_hex(id, hex);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(a);
}

static void test_sha256_incremental(void **state)
{
    enum { N = 300000 };
    uint8_t *d = malloc(N);
    uint8_t one[CHUNK_ID_LEN], inc[CHUNK_ID_LEN];
    sha256_ctx *c;
    size_t i, step;

    (void)state;
    assert_non_null(d);
    fill_pattern(d, N, 42);
    sha256(d, N, one);
    for (step = 1; step <= 65536; step *= 17) {
        c = sha256_new();
        assert_non_null(c);
        for (i = 0; i < N; i += step)
            sha256_update(c, d + i, step < N - i ? step : N - i);
        sha256_update(c, d, 0);
        sha256_final_free(c, inc);
        assert_memory_equal(one, inc, CHUNK_ID_LEN);
    }
    /* Empty incremental == empty one-shot. */
    c = sha256_new();
    sha256_final_free(c, inc);
    sha256("", 0, one);
    assert_memory_equal(one, inc, CHUNK_ID_LEN);
    free(d);
}

static void test_is_all_zero(void **state)
{
    enum { N = 4096 + 7 };
    uint8_t *b = calloc(1, N);
    size_t n, pos;

    (void)state;
    assert_non_null(b);
    assert_true(is_all_zero(b, 0));
    for (n = 1; n <= 70; n++) {
        assert_true(is_all_zero(b, n));
        for (pos = 0; pos < n; pos++) {
            b[pos] = 0x80;
            assert_false(is_all_zero(b, n));
            b[pos] = 0;
        }
    }
    assert_true(is_all_zero(b, N));
    for (pos = 0; pos < N; pos += 509) {
        b[pos] = 1;
        assert_false(is_all_zero(b, N));
        b[pos] = 0;
    }
    b[N - 1] = 1;
    assert_false(is_all_zero(b, N));
    assert_true(is_all_zero(b, N - 1));
    /* Unaligned start. */
    assert_true(is_all_zero(b + 3, N - 4));
    free(b);
}

static void test_chunk_id_text(void **state)
{
    uint8_t id[CHUNK_ID_LEN], back[CHUNK_ID_LEN];
    char hex[CHUNK_ID_HEX + 1], bad[CHUNK_ID_HEX + 2];
    size_t i;

    (void)state;
    sha256("x", 1, id);
    chunk_id_hex(id, hex);
    assert_int_equal(strlen(hex), CHUNK_ID_HEX);
    for (i = 0; i < CHUNK_ID_HEX; i++)
        assert_true((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f'));
    assert_int_equal(chunk_id_parse(hex, back), 0);
    assert_memory_equal(id, back, CHUNK_ID_LEN);

    memcpy(bad, hex, sizeof(hex));
    bad[CHUNK_ID_HEX - 1] = '\0';
    assert_int_equal(chunk_id_parse(bad, back), -EINVAL);
    memcpy(bad, hex, CHUNK_ID_HEX);
    bad[CHUNK_ID_HEX] = '0';
    bad[CHUNK_ID_HEX + 1] = '\0';
    assert_int_equal(chunk_id_parse(bad, back), -EINVAL);
    memcpy(bad, hex, sizeof(hex));
    bad[10] = 'g';
    assert_int_equal(chunk_id_parse(bad, back), -EINVAL);
    assert_int_equal(chunk_id_parse("", back), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_vectors),
        cmocka_unit_test(test_crc32c_compose),
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_sha256_million_a),
        cmocka_unit_test(test_sha256_incremental),
        cmocka_unit_test(test_is_all_zero),
        cmocka_unit_test(test_chunk_id_text),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
