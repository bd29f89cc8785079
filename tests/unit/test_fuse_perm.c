/*
 * test_fuse_perm.c — the mount's own permission decisions (fuse/perm.h):
 * owner, group and other bits, the capabilities that override them, and
 * the CapEff line of /proc/<pid>/status.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fuse/perm.h"

#define R PERM_R
#define W PERM_W
#define X PERM_X
#define ALLCAPS (PERM_CAP_CHOWN | PERM_CAP_DAC_OVERRIDE | PERM_CAP_DAC_READ_SEARCH | \
                 PERM_CAP_FOWNER | PERM_CAP_FSETID)

static void test_classes(void **state)
{
    (void)state;
    uint32_t f = S_IFREG | 0640;
    /* The owner's bits, even when the group's or others' would allow more. */
    assert_int_equal(perm_decide(f, 10, 10, 0, 0, R | W), 0);
    assert_int_equal(perm_decide(f, 10, 10, 0, 0, X), -EACCES);
    assert_int_equal(perm_decide(S_IFREG | 0077, 10, 10, 1, 0, R), -EACCES);
    /* The group's bits for a member that is not the owner. */
    assert_int_equal(perm_decide(f, 10, 11, 1, 0, R), 0);
    assert_int_equal(perm_decide(f, 10, 11, 1, 0, W), -EACCES);
    /* Others. */
    assert_int_equal(perm_decide(f, 10, 11, 0, 0, R), -EACCES);
    assert_int_equal(perm_decide(S_IFREG | 0644, 10, 11, 0, 0, R), 0);
    /* Every bit of the mask is needed. */
    assert_int_equal(perm_decide(S_IFDIR | 0755, 0, 0, 0, 0, W | X), 0);
    assert_int_equal(perm_decide(S_IFDIR | 0555, 0, 0, 0, 0, W | X), -EACCES);
    assert_int_equal(perm_decide(S_IFDIR | 0555, 0, 0, 0, 0, 0), 0);
}

static void test_capabilities(void **state)
{
    (void)state;
    /* Root without capabilities is an ordinary user. */
    assert_int_equal(perm_decide(S_IFREG | 0000, 10, 0, 0, 0, R), -EACCES);
    assert_int_equal(perm_decide(S_IFDIR | 0500, 0, 0, 0, 0, W | X), -EACCES);
    /* DAC_OVERRIDE: anything but executing a file nobody may execute. */
    assert_int_equal(perm_decide(S_IFREG | 0000, 10, 0, 0, PERM_CAP_DAC_OVERRIDE, R | W), 0);
    assert_int_equal(perm_decide(S_IFREG | 0600, 10, 0, 0, PERM_CAP_DAC_OVERRIDE, X),
                     -EACCES);
    assert_int_equal(perm_decide(S_IFREG | 0001, 10, 0, 0, PERM_CAP_DAC_OVERRIDE, X), 0);
    assert_int_equal(perm_decide(S_IFDIR | 0000, 10, 0, 0, PERM_CAP_DAC_OVERRIDE, W | X), 0);
    /* DAC_READ_SEARCH: read anything, search directories; no writing. */
    assert_int_equal(perm_decide(S_IFREG | 0000, 10, 0, 0, PERM_CAP_DAC_READ_SEARCH, R), 0);
    assert_int_equal(perm_decide(S_IFREG | 0000, 10, 0, 0, PERM_CAP_DAC_READ_SEARCH, W),
                     -EACCES);
    assert_int_equal(perm_decide(S_IFDIR | 0000, 10, 0, 0, PERM_CAP_DAC_READ_SEARCH, R | X),
                     0);
    assert_int_equal(perm_decide(S_IFREG | 0000, 10, 0, 0, PERM_CAP_DAC_READ_SEARCH, X),
                     -EACCES);
    /* Capabilities that do not concern access change nothing. */
    assert_int_equal(perm_decide(S_IFREG | 0000, 10, 0, 0,
                                 PERM_CAP_FOWNER | PERM_CAP_CHOWN | PERM_CAP_FSETID, R),
                     -EACCES);
    assert_int_equal(perm_decide(S_IFREG | 0000, 10, 0, 0, ALLCAPS, R | W), 0);
}

static void test_parse_caps(void **state)
{
    (void)state;
    uint64_t caps = 1;
    const char *full = "Name:\tcat\nUid:\t0\t0\t0\t0\nCapInh:\t0000000000000000\n"
                       "CapPrm:\t000001ffffffffff\nCapEff:\t000001ffffffffff\nCapBnd:\t0\n";
    assert_int_equal(perm_parse_caps(full, &caps), 0);
    assert_true((caps & ALLCAPS) == ALLCAPS);
    assert_int_equal(perm_parse_caps("Name:\tx\nCapEff:\t0000000000000000\n", &caps), 0);
    assert_int_equal(caps, 0);
    assert_int_equal(perm_parse_caps("Name:\tx\nCapEff:\t0000000000000006", &caps), 0);
    assert_int_equal(caps, PERM_CAP_DAC_OVERRIDE | PERM_CAP_DAC_READ_SEARCH);
    /* No line, or not hex: refused (the caller then assumes none). */
    assert_int_equal(perm_parse_caps("Name:\tx\nCapPrm:\t1\n", &caps), -EINVAL);
    assert_int_equal(perm_parse_caps("Name:\tx\nCapEff:\tzz\n", &caps), -EINVAL);
    assert_int_equal(perm_parse_caps("Name:\tx\nCapEff:\t12 34\n", &caps), -EINVAL);
}

static void test_who(void **state)
{
    (void)state;
    perm_who w;
    /* The kernel itself (pid 0) may do anything. */
    perm_who_init(&w, NULL, 1000, 1000, 0);
    assert_int_equal(perm_access(&w, S_IFREG | 0000, 0, 0, R | W), 0);
    assert_true(perm_capable(&w, PERM_CAP_CHOWN));
    /* This process: its capabilities from /proc, its primary group. */
    perm_who_init(&w, NULL, (uint32_t)getuid(), (uint32_t)getgid(), getpid());
    assert_true(perm_in_group(&w, (uint32_t)getgid()));
    int root = geteuid() == 0;
    assert_int_equal(perm_access(&w, S_IFREG | 0000, 12345, 12345, R) == 0,
                     root && perm_capable(&w, PERM_CAP_DAC_OVERRIDE));
    /* The owner's own bits need no capability. */
    assert_int_equal(perm_access(&w, S_IFREG | 0600, (uint32_t)getuid(), 12345, R | W), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classes),
        cmocka_unit_test(test_capabilities),
        cmocka_unit_test(test_parse_caps),
        cmocka_unit_test(test_who),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
