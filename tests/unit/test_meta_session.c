/*
 * test_meta_session.c — client sessions (server/meta/session.h) on a fake
 * clock: leases, lazy and periodic expiry, holds as sets, several holders
 * of one inode, the grace period after a restart.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/meta/session.h"

static int64_t g_now = 1000000;

static int64_t fake_now(void)
{
    return g_now;
}

static sessions *make(uint64_t lease, uint64_t grace)
{
    sessions *s = sessions_new(lease, grace);

    sessions_set_clock(s, fake_now);
    return s;
}

static void test_lease(void **state)
{
    (void)state;
    sessions *s = make(1000, 0);
    sessions_stats st;
    uint64_t a, b;

    assert_int_equal(sessions_lease_ms(s), 1000);
    assert_int_equal(sessions_open(s, "host:1", &a), 0);
    assert_int_equal(sessions_open(s, "host:2", &b), 0);
    assert_true(a != 0 && b != 0 && a != b);
    g_now += 900;
    assert_int_equal(sessions_renew(s, a), 0);
    g_now += 200;
    /* b's lease ran out; it is gone even before sessions_expire runs. */
    assert_int_equal(sessions_renew(s, b), -ENOENT);
    assert_int_equal(sessions_hold(s, b, 5), -ENOENT);
    assert_int_equal(sessions_renew(s, a), 0);
    assert_int_equal(sessions_expire(s), 1);
    assert_int_equal(sessions_expire(s), 0);
    sessions_get_stats(s, &st);
    assert_int_equal(st.live, 1);
    assert_int_equal(st.opened, 2);
    assert_int_equal(st.expired, 1);
    /* Exactly at the deadline the session is over. */
    g_now += 1000;
    assert_int_equal(sessions_renew(s, a), -ENOENT);
    assert_int_equal(sessions_end(s, a), -ENOENT);
    assert_int_equal(sessions_renew(s, 0), -ENOENT);
    sessions_free(s);
}

static void test_holds(void **state)
{
    (void)state;
    sessions *s = make(1000, 0);
    sessions_stats st;
    uint64_t a, b;

    assert_int_equal(sessions_open(s, "a", &a), 0);
    assert_int_equal(sessions_open(s, "b\n\x01", &b), 0);
    assert_false(sessions_held(s, 10));
    /* A set: holding twice, releasing once. */
    assert_int_equal(sessions_hold(s, a, 10), 0);
    assert_int_equal(sessions_hold(s, a, 10), 0);
    assert_true(sessions_held(s, 10));
    assert_int_equal(sessions_release(s, a, 10), 0);
    assert_false(sessions_held(s, 10));
    assert_int_equal(sessions_release(s, a, 10), 0);
    /* Two holders: held until both let go. */
    assert_int_equal(sessions_hold(s, a, 11), 0);
    assert_int_equal(sessions_hold(s, b, 11), 0);
    assert_int_equal(sessions_hold(s, b, 12), 0);
    sessions_get_stats(s, &st);
    assert_int_equal(st.holds, 3);
    assert_int_equal(sessions_release(s, a, 11), 0);
    assert_true(sessions_held(s, 11));
    assert_int_equal(sessions_end(s, b), 0);
    assert_false(sessions_held(s, 11));
    assert_false(sessions_held(s, 12));
    sessions_get_stats(s, &st);
    assert_int_equal(st.holds, 0);
    assert_int_equal(st.ended, 1);
    /* Expiry drops holds too. */
    assert_int_equal(sessions_hold(s, a, 13), 0);
    g_now += 1000;
    assert_false(sessions_held(s, 13));
    assert_int_equal(sessions_release(s, a, 13), -ENOENT);
    assert_int_equal(sessions_expire(s), 1);
    sessions_free(s);
}

static void test_grace(void **state)
{
    (void)state;
    sessions *s = make(1000, 1000), *t = make(1000, 0);

    assert_true(sessions_in_grace(s));
    g_now += 999;
    assert_true(sessions_in_grace(s));
    g_now += 1;
    assert_false(sessions_in_grace(s));
    g_now -= 10;   /* once over, it stays over */
    assert_false(sessions_in_grace(s));
    assert_false(sessions_in_grace(t));
    sessions_free(s);
    sessions_free(t);
}

static void test_many_and_free(void **state)
{
    (void)state;
    sessions *s = make(60000, 0);
    uint64_t id;
    int i;

    for (i = 0; i < 1000; i++) {
        assert_int_equal(sessions_open(s, "many", &id), 0);
        assert_int_equal(sessions_hold(s, id, (uint64_t)i % 7), 0);
    }
    assert_true(sessions_held(s, 6));
    sessions_free(s);   /* frees live sessions and holds (ASan checks) */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lease),
        cmocka_unit_test(test_holds),
        cmocka_unit_test(test_grace),
        cmocka_unit_test(test_many_and_free),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
