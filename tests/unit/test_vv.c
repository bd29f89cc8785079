/*
 * test_vv.c — version vectors: ordering (incl. concurrent), bump, merge,
 * text round trip and rejection of malformed text.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/vv.h"

/* Build a vector from text, failing the test if it does not parse. */
static vv V(const char *s)
{
    vv v;

    assert_int_equal(vv_parse(s, &v), 0);
    return v;
}

static void assert_text(const vv *v, const char *want)
{
    char out[VV_TEXT_MAX];
    size_t n = vv_format(v, out, sizeof(out));

    assert_string_equal(out, want);
    assert_int_equal(n, strlen(want));
}

static void test_init_get(void **state)
{
    vv v;

    (void)state;
    memset(&v, 0xaa, sizeof(v));
    vv_init(&v);
    assert_int_equal(v.n, 0);
    assert_int_equal(vv_get(&v, 1), 0);
    assert_text(&v, "0");
    v = V("2:5,7:1");
    assert_int_equal(vv_get(&v, 2), 5);
    assert_int_equal(vv_get(&v, 7), 1);
    assert_int_equal(vv_get(&v, 3), 0);
}

static void test_is_step(void **state)
{
    (void)state;
    vv a = V("2:5,7:1"), b;

    b = V("2:6,7:1");
    assert_true(vv_is_step(&a, &b));
    b = V("2:5,7:2");
    assert_true(vv_is_step(&a, &b));
    b = V("2:5,3:1,7:1");          /* a new replica's first change */
    assert_true(vv_is_step(&a, &b));
    b = V("1:1,2:5,7:1");
    assert_true(vv_is_step(&a, &b));
    b = V("2:5,7:1,9:1");
    assert_true(vv_is_step(&a, &b));
    assert_false(vv_is_step(&a, &a));       /* no change */
    b = V("2:7,7:1");                       /* two changes */
    assert_false(vv_is_step(&a, &b));
    b = V("2:6,7:2");
    assert_false(vv_is_step(&a, &b));
    b = V("2:5,3:2,7:1");                   /* a new replica's second change */
    assert_false(vv_is_step(&a, &b));
    b = V("2:6");                           /* a replica dropped */
    assert_false(vv_is_step(&a, &b));
    b = V("2:4,7:1");                       /* backwards */
    assert_false(vv_is_step(&a, &b));
    assert_false(vv_is_step(&b, &a) && vv_is_step(&a, &b));
    b = V("2:6,7:1");
    assert_false(vv_is_step(&b, &a));
    vv z;
    vv_init(&z);
    b = V("4:1");
    assert_true(vv_is_step(&z, &b));
    assert_false(vv_is_step(&b, &z));
    b = V("2:6,7:1");
    vv c = a;
    assert_int_equal(vv_bump(&c, 2), 0);
    assert_true(vv_equal(&b, &c) && vv_is_step(&a, &c));
}

static void test_bump(void **state)
{
    vv v;
    uint32_t i;

    (void)state;
    vv_init(&v);
    assert_int_equal(vv_bump(&v, 5), 0);
    assert_int_equal(vv_bump(&v, 5), 0);
    assert_int_equal(vv_bump(&v, 1), 0);
    assert_int_equal(vv_bump(&v, 9), 0);
    assert_int_equal(vv_bump(&v, 3), 0);
    /* Kept sorted by replica id whatever the bump order. */
    assert_text(&v, "1:1,3:1,5:2,9:1");
    assert_int_equal(vv_get(&v, 5), 2);

    vv_init(&v);
    for (i = 0; i < VV_MAX; i++)
        assert_int_equal(vv_bump(&v, 100 - i), 0);
    assert_int_equal(v.n, VV_MAX);
    assert_int_equal(vv_bump(&v, 7), -E2BIG);
    assert_int_equal(v.n, VV_MAX);
    assert_int_equal(vv_get(&v, 7), 0);
    /* An existing id can still be bumped in a full vector. */
    assert_int_equal(vv_bump(&v, 100), 0);
    assert_int_equal(vv_get(&v, 100), 2);
    for (i = 1; i < v.n; i++)
        assert_true(v.e[i - 1].replica < v.e[i].replica);

    v = V("1:18446744073709551615");
    assert_int_equal(vv_bump(&v, 1), -EOVERFLOW);
    assert_int_equal(vv_get(&v, 1), UINT64_MAX);
}

static void test_compare(void **state)
{
    static const struct {
        const char *a, *b;
        enum vv_order want;
    } c[] = {
        {"0", "0", VV_EQUAL},
        {"1:1", "1:1", VV_EQUAL},
        {"1:2,4:7", "1:2,4:7", VV_EQUAL},
        {"1:2", "1:1", VV_DOMINATES},
        {"1:1", "1:2", VV_DOMINATED},
        {"1:1", "0", VV_DOMINATES},
        {"0", "3:1", VV_DOMINATED},
        {"1:1,2:1", "1:1", VV_DOMINATES},
        {"1:1", "1:1,2:1", VV_DOMINATED},
        {"1:3,2:2", "1:2,2:2", VV_DOMINATES},
        {"2:1", "1:1", VV_CONCURRENT},
        {"1:2,2:1", "1:1,2:2", VV_CONCURRENT},
        {"1:1,3:1", "1:1,2:1", VV_CONCURRENT},
        {"1:5", "1:4,2:1", VV_CONCURRENT},
        {"1:1,2:1,3:1", "2:2", VV_CONCURRENT},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        vv a = V(c[i].a), b = V(c[i].b);
        enum vv_order rev;

        assert_int_equal(vv_compare(&a, &b), c[i].want);
        rev = c[i].want == VV_DOMINATES ? VV_DOMINATED
            : c[i].want == VV_DOMINATED ? VV_DOMINATES
                                        : c[i].want;
        assert_int_equal(vv_compare(&b, &a), rev);
        assert_int_equal(vv_equal(&a, &b), c[i].want == VV_EQUAL);
    }
}

static void test_concurrent_updates(void **state)
{
    vv base, x, y, m;

    (void)state;
    /* Two replicas update the same version independently: a conflict that a
     * merge resolves into a vector dominating both. */
    base = V("1:3,2:1");
    x = base;
    y = base;
    assert_int_equal(vv_bump(&x, 1), 0);
    assert_int_equal(vv_bump(&y, 2), 0);
    assert_int_equal(vv_compare(&x, &base), VV_DOMINATES);
    assert_int_equal(vv_compare(&x, &y), VV_CONCURRENT);
    assert_int_equal(vv_merge(&m, &x, &y), 0);
    assert_text(&m, "1:4,2:2");
    assert_int_equal(vv_compare(&m, &x), VV_DOMINATES);
    assert_int_equal(vv_compare(&m, &y), VV_DOMINATES);
    assert_int_equal(vv_bump(&m, 3), 0);
    assert_int_equal(vv_compare(&m, &x), VV_DOMINATES);
}

static void test_merge(void **state)
{
    vv a, b, out;
    uint32_t i;

    (void)state;
    a = V("1:5,3:2,8:1");
    b = V("2:7,3:9,9:4");
    assert_int_equal(vv_merge(&out, &a, &b), 0);
    assert_text(&out, "1:5,2:7,3:9,8:1,9:4");
    /* Commutative. */
    assert_int_equal(vv_merge(&out, &b, &a), 0);
    assert_text(&out, "1:5,2:7,3:9,8:1,9:4");
    /* out aliasing an input. */
    assert_int_equal(vv_merge(&a, &a, &b), 0);
    assert_text(&a, "1:5,2:7,3:9,8:1,9:4");
    b = V("1:1");
    assert_int_equal(vv_merge(&b, &a, &b), 0);
    assert_text(&b, "1:5,2:7,3:9,8:1,9:4");
    /* With the empty vector. */
    vv_init(&out);
    assert_int_equal(vv_merge(&out, &out, &a), 0);
    assert_true(vv_equal(&out, &a));

    /* Union larger than VV_MAX. */
    vv_init(&a);
    vv_init(&b);
    for (i = 0; i < VV_MAX; i++) {
        assert_int_equal(vv_bump(&a, 2 * i), 0);
        assert_int_equal(vv_bump(&b, 2 * i + 1), 0);
    }
    out = V("5:5");
    assert_int_equal(vv_merge(&out, &a, &b), -E2BIG);
    /* Failure leaves out untouched. */
    assert_text(&out, "5:5");
}

static void test_format_parse_roundtrip(void **state)
{
    static const char *const ok[] = {
        "0", "1:1", "0:1", "1:2,3:4", "4294967295:18446744073709551615",
        "1:1,2:2,3:3,4:4,5:5,6:6,7:7,8:8",
    };
    char out[VV_TEXT_MAX];
    vv v, w;
    size_t i;
    uint32_t k;

    (void)state;
    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        v = V(ok[i]);
        vv_format(&v, out, sizeof(out));
        assert_string_equal(out, ok[i]);
    }
    /* ETag spellings. */
    v = V("\"1:2,3:4\"");
    assert_text(&v, "1:2,3:4");
    v = V("W/\"1:2,3:4\"");
    assert_text(&v, "1:2,3:4");
    v = V("\"0\"");
    assert_int_equal(v.n, 0);

    /* The largest vector fits VV_TEXT_MAX. */
    vv_init(&v);
    for (k = 0; k < VV_MAX; k++) {
        v.e[k].replica = UINT32_MAX - (VV_MAX - 1) + k;
        v.e[k].counter = UINT64_MAX;
    }
    v.n = VV_MAX;
    assert_true(vv_format(&v, out, sizeof(out)) < VV_TEXT_MAX);
    assert_int_equal(vv_parse(out, &w), 0);
    assert_true(vv_equal(&v, &w));
    /* Too small an output buffer yields no (misleading) partial text. */
    assert_int_equal(vv_format(&v, out, 10), 0);
    assert_string_equal(out, "");
}

static void test_parse_rejects(void **state)
{
    static const char *const bad[] = {
        "", "\"\"", "\"1:1", "1:1\"", "W/", "w/\"1:1\"", " 1:1", "1:1 ", "1:0", "1",
        "1:", ":1", "1:1,", ",1:1", "1:1,,2:1", "2:1,1:1", "1:1,1:2", "1:1;2:1", "a:1",
        "1:b", "-1:1", "1:-1", "+1:1", "1:+1", "01:1", "1:01", "00", "0:0",
        "4294967296:1", "1:18446744073709551616", "1:99999999999999999999999",
        "1:1,2:1,3:1,4:1,5:1,6:1,7:1,8:1,9:1", "1:1x", "0x1:1", "1:1\n",
    };
    vv v, keep;
    size_t i;

    (void)state;
    keep = V("3:3");
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = keep;
        if (vv_parse(bad[i], &v) != -EINVAL)
            fail_msg("accepted malformed vv text '%s'", bad[i]);
        assert_true(vv_equal(&v, &keep));
    }
    assert_int_equal(vv_parse(NULL, &v), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_get),
        cmocka_unit_test(test_bump),
        cmocka_unit_test(test_compare),
        cmocka_unit_test(test_is_step),
        cmocka_unit_test(test_concurrent_updates),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_format_parse_roundtrip),
        cmocka_unit_test(test_parse_rejects),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
