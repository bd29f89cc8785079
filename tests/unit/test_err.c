/*
 * test_err.c — errno names both ways, the HTTP status table of
 * docs/PROTOCOL.md and round trips through it, error text.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"

#define E(x) {x, #x}
static const struct {
    int num;
    const char *name;
} required[] = {
    E(ENOENT), E(EEXIST), E(ENOTEMPTY), E(EBUSY), E(EPERM), E(EACCES), E(ENOSPC),
    E(EDQUOT), E(EFBIG), E(E2BIG), E(EINVAL), E(ENOTDIR), E(EISDIR), E(ENAMETOOLONG),
    E(ELOOP), E(EXDEV), E(ERANGE), E(ENODATA), E(EMLINK), E(ENOTSUP), E(EIO), E(EAGAIN),
    E(EROFS), E(EOPNOTSUPP), E(ENOSYS), E(EOVERFLOW), E(ESTALE), E(ETIMEDOUT),
    E(ECONNREFUSED), E(EBADF), E(ENXIO), E(EFAULT), E(ENOMEM), E(ESPIPE), E(ETXTBSY),
    E(EINTR), E(ECONNRESET), E(EHOSTUNREACH), E(EPIPE), E(ECANCELED), E(ENODEV),
    E(EMFILE), E(ENFILE), E(EDEADLK), E(ENOLCK), E(EPROTO), E(EBADMSG), E(EILSEQ),
};

static const int cairn_codes[] = {
    CAIRN_ECONFLICT, CAIRN_ENOTMODIFIED, CAIRN_ECORRUPT, CAIRN_EPROTO,
    CAIRN_EBADVERSION, CAIRN_EUNAVAIL, CAIRN_EBUSY,
};

static void test_names_both_ways(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        const char *n = cairn_errno_name(required[i].num);

        if (!n)
            fail_msg("no name for %s", required[i].name);
        assert_int_equal(cairn_errno_from_name(required[i].name), required[i].num);
        assert_int_equal(cairn_errno_from_name(n), required[i].num);
    }
    /* Aliases share a value; the name is one of them. */
    assert_int_equal(cairn_errno_from_name("EOPNOTSUPP"), cairn_errno_from_name("ENOTSUP"));
    assert_int_equal(cairn_errno_from_name("EWOULDBLOCK"), EAGAIN);
    assert_string_equal(cairn_errno_name(EAGAIN), "EAGAIN");
    assert_string_equal(cairn_errno_name(ENOENT), "ENOENT");
    /* Unknown in both directions. */
    assert_null(cairn_errno_name(0));
    assert_null(cairn_errno_name(-1));
    assert_null(cairn_errno_name(9999));
    assert_int_equal(cairn_errno_from_name("ENOTANERROR"), 0);
    assert_int_equal(cairn_errno_from_name(""), 0);
    assert_int_equal(cairn_errno_from_name(NULL), 0);
    /* cairn's own codes have names too, so they cross HTTP intact. */
    for (i = 0; i < sizeof(cairn_codes) / sizeof(cairn_codes[0]); i++) {
        const char *n = cairn_errno_name(-cairn_codes[i]);

        assert_non_null(n);
        assert_int_equal(-cairn_errno_from_name(n), cairn_codes[i]);
    }
}

static void test_status_table(void **state)
{
    static const struct {
        int err, status;
    } t[] = {
        {0, 200},
        {-ENOENT, 404},
        {-EEXIST, 409}, {-ENOTEMPTY, 409}, {-EBUSY, 409},
        {-EPERM, 403}, {-EACCES, 403},
        {-ENOSPC, 507}, {-EDQUOT, 507},
        {-EFBIG, 413}, {-E2BIG, 413},
        {CAIRN_ECONFLICT, 412},
        {CAIRN_ENOTMODIFIED, 304},
        {CAIRN_EBUSY, 503},
        {-EINVAL, 400}, {CAIRN_EPROTO, 400},
        {-ENOTDIR, 422}, {-EISDIR, 422}, {-ENAMETOOLONG, 422}, {-ELOOP, 422},
        {-EXDEV, 422}, {-ERANGE, 422}, {-ENODATA, 422}, {-EMLINK, 422}, {-ENOTSUP, 422},
        {-EROFS, 422}, {-ESTALE, 422}, {-EOVERFLOW, 422},
        {-EIO, 500}, {CAIRN_ECORRUPT, 500},
        {-99999, 500},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (cairn_err_to_http(t[i].err) != t[i].status)
            fail_msg("err %d -> %d, expected %d", t[i].err, cairn_err_to_http(t[i].err),
                     t[i].status);
}

static void test_roundtrip_with_header(void **state)
{
    size_t i;

    (void)state;
    /* What the server answers (status + Cairn-Errno) the client turns back
     * into the same code. */
    for (i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        int err = -required[i].num;
        int status = cairn_err_to_http(err);

        assert_true(status >= 400 && status <= 599);
        if (cairn_http_to_err(status, cairn_errno_name(-err)) != err)
            fail_msg("%s did not survive status %d", required[i].name, status);
    }
    for (i = 0; i < sizeof(cairn_codes) / sizeof(cairn_codes[0]); i++) {
        int err = cairn_codes[i];
        int status = cairn_err_to_http(err);
        const char *name = cairn_errno_name(-err);

        /* 304 carries no error header; its status alone says it. */
        if (status == 304)
            name = NULL;
        assert_int_equal(cairn_http_to_err(status, name), err);
    }
}

static void test_status_without_header(void **state)
{
    static const struct {
        int status, err;
    } t[] = {
        {200, 0}, {201, 0}, {204, 0}, {206, 0},
        {304, CAIRN_ENOTMODIFIED},
        {412, CAIRN_ECONFLICT},
        {503, CAIRN_EBUSY},
        {404, -ENOENT},
        {409, -EEXIST},
        {403, -EACCES},
        {413, -EFBIG},
        {507, -ENOSPC},
        {400, -EINVAL},
        {422, -EINVAL},
        {418, -EINVAL},
        {500, -EIO},
        {599, -EIO},
        {302, CAIRN_EPROTO},
        {100, CAIRN_EPROTO},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (cairn_http_to_err(t[i].status, NULL) != t[i].err)
            fail_msg("status %d -> %d, expected %d", t[i].status,
                     cairn_http_to_err(t[i].status, NULL), t[i].err);
    /* The header wins for errors, is ignored for success, and an unknown name
     * falls back to the status. */
    assert_int_equal(cairn_http_to_err(409, "ENOTEMPTY"), -ENOTEMPTY);
    assert_int_equal(cairn_http_to_err(400, "ENAMETOOLONG"), -ENAMETOOLONG);
    assert_int_equal(cairn_http_to_err(200, "ENOENT"), 0);
    assert_int_equal(cairn_http_to_err(404, "EWHATEVER"), -ENOENT);
    assert_int_equal(cairn_http_to_err(503, "EAGAIN"), -EAGAIN);
}

static void test_strerror(void **state)
{
    size_t i, j;

    (void)state;
    assert_string_equal(cairn_strerror(-ENOENT), strerror(ENOENT));
    assert_string_equal(cairn_strerror(-EEXIST), strerror(EEXIST));
    assert_non_null(cairn_strerror(0));
    assert_non_null(cairn_strerror(-123456));
    assert_non_null(cairn_strerror(-CAIRN_ERRBASE - 99));
    for (i = 0; i < sizeof(cairn_codes) / sizeof(cairn_codes[0]); i++) {
        const char *s = cairn_strerror(cairn_codes[i]);

        assert_non_null(s);
        assert_true(strlen(s) > 3);
        assert_string_not_equal(s, "Unknown error");
        for (j = 0; j < i; j++)
            assert_string_not_equal(s, cairn_strerror(cairn_codes[j]));
    }
}

static void test_to_posix(void **state)
{
    size_t i;

    (void)state;
    assert_int_equal(cairn_err_to_posix(0), 0);
    assert_int_equal(cairn_err_to_posix(-ENOENT), ENOENT);
    assert_int_equal(cairn_err_to_posix(-ENOSPC), ENOSPC);
    assert_int_equal(cairn_err_to_posix(ENOSPC), ENOSPC);
    for (i = 0; i < sizeof(cairn_codes) / sizeof(cairn_codes[0]); i++)
        assert_int_equal(cairn_err_to_posix(cairn_codes[i]), EIO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_both_ways),
        cmocka_unit_test(test_status_table),
        cmocka_unit_test(test_roundtrip_with_header),
        cmocka_unit_test(test_status_without_header),
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_to_posix),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
