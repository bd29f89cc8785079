/* utimensat.c — utimensat, futimens: nanoseconds, UTIME_NOW, UTIME_OMIT. */
#include "tests/posix/suite.h"

#include <fcntl.h>
#include <unistd.h>

static int ut(const char *p, int64_t a, long an, int64_t m, long mn, int flags)
{
    struct timespec ts[2] = {{a, an}, {m, mn}};
    return utimensat(AT_FDCWD, p, ts, flags);
}

static int ns_roundtrip(pt_ctx *c)
{
    (void)c;
    struct stat st;
    OK(pt_write_file("f", "x", 1, 0644));
    int64_t t0 = pt_now();
    OK(ut("f", 1234567890, 123456789, 1500000000, 987654321, 0));
    int64_t t1 = pt_now();
    OK(stat("f", &st));
    EQ(st.st_atim.tv_sec, 1234567890);
    EQ(st.st_atim.tv_nsec, 123456789);
    EQ(st.st_mtim.tv_sec, 1500000000);
    EQ(st.st_mtim.tv_nsec, 987654321);
    CHECK(pt_time_near(pt_ns(st.st_ctim), t0, t1), "ctime %lld not near the call [%lld, %lld]",
          (long long)pt_ns(st.st_ctim), (long long)t0, (long long)t1);
    /* odd nanosecond values, one at a time */
    static const long ns[] = {1, 999999999, 500000000, 7, 1000, 123000};
    for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
        OK(ut("f", 1600000000 + (int64_t)i, ns[i], 1700000000 + (int64_t)i, ns[i], 0));
        OK(stat("f", &st));
        EQ(st.st_atim.tv_nsec, ns[i]);
        EQ(st.st_mtim.tv_nsec, ns[i]);
        EQ(st.st_mtim.tv_sec, 1700000000 + (int64_t)i);
    }
    /* on a directory too */
    OK(mkdir("d", 0755));
    OK(ut("d", 1111111111, 111111111, 1222222222, 222222222, 0));
    OK(stat("d", &st));
    EQ(st.st_atim.tv_nsec, 111111111);
    EQ(st.st_mtim.tv_nsec, 222222222);
    return 0;
}

static int far_times(pt_ctx *c)
{
    (void)c;
    struct stat st;
    OK(pt_write_file("f", "x", 1, 0644));
    /* before the epoch */
    OK(ut("f", -1, 500000000, -86400 * 365, 1, 0));
    OK(stat("f", &st));
    EQ(st.st_atim.tv_sec, -1);
    EQ(st.st_atim.tv_nsec, 500000000);
    EQ(st.st_mtim.tv_sec, -86400 * 365);
    EQ(st.st_mtim.tv_nsec, 1);
    /* past 2038 */
    OK(ut("f", 4102444800LL, 5, 4102444800LL + 1, 6, 0));
    OK(stat("f", &st));
    EQ(st.st_atim.tv_sec, 4102444800LL);
    EQ(st.st_mtim.tv_sec, 4102444801LL);
    EQ(st.st_mtim.tv_nsec, 6);
    /* the epoch itself */
    OK(ut("f", 0, 0, 0, 0, 0));
    OK(stat("f", &st));
    EQ(st.st_atim.tv_sec, 0);
    EQ(st.st_mtim.tv_sec, 0);
    EQ(st.st_mtim.tv_nsec, 0);
    return 0;
}

static int now(pt_ctx *c)
{
    (void)c;
    struct stat st;
    OK(pt_write_file("f", "x", 1, 0644));
    OK(pt_set_times("f", PT_OLD_NS, PT_OLD_NS));
    int64_t t0 = pt_now();
    OK(ut("f", 0, UTIME_NOW, 0, UTIME_NOW, 0));
    int64_t t1 = pt_now();
    OK(stat("f", &st));
    CHECK(pt_time_near(pt_ns(st.st_atim), t0, t1), "atime %lld not now [%lld, %lld]",
          (long long)pt_ns(st.st_atim), (long long)t0, (long long)t1);
    CHECK(pt_time_near(pt_ns(st.st_mtim), t0, t1), "mtime %lld not now [%lld, %lld]",
          (long long)pt_ns(st.st_mtim), (long long)t0, (long long)t1);
    /* times == NULL means now */
    OK(pt_set_times("f", PT_OLD_NS, PT_OLD_NS));
    t0 = pt_now();
    OK(utimensat(AT_FDCWD, "f", NULL, 0));
    t1 = pt_now();
    OK(stat("f", &st));
    CHECK(pt_time_near(pt_ns(st.st_mtim), t0, t1), "mtime %lld not now after times=NULL",
          (long long)pt_ns(st.st_mtim));
    CHECK(pt_time_near(pt_ns(st.st_atim), t0, t1), "atime %lld not now after times=NULL",
          (long long)pt_ns(st.st_atim));
    return 0;
}

static int omit(pt_ctx *c)
{
    (void)c;
    struct stat st, a;
    OK(pt_write_file("f", "x", 1, 0644));
    OK(ut("f", 1300000000, 11, 1400000000, 22, 0));
    /* change only mtime */
    OK(ut("f", 0, UTIME_OMIT, 1410000000, 33, 0));
    OK(stat("f", &st));
    EQ(st.st_atim.tv_sec, 1300000000);
    EQ(st.st_atim.tv_nsec, 11);
    EQ(st.st_mtim.tv_sec, 1410000000);
    EQ(st.st_mtim.tv_nsec, 33);
    /* change only atime */
    OK(ut("f", 1310000000, 44, 0, UTIME_OMIT, 0));
    OK(stat("f", &st));
    EQ(st.st_atim.tv_sec, 1310000000);
    EQ(st.st_atim.tv_nsec, 44);
    EQ(st.st_mtim.tv_sec, 1410000000);
    EQ(st.st_mtim.tv_nsec, 33);
    /* UTIME_NOW for one, UTIME_OMIT for the other */
    int64_t t0 = pt_now();
    OK(ut("f", 0, UTIME_NOW, 0, UTIME_OMIT, 0));
    int64_t t1 = pt_now();
    OK(stat("f", &st));
    CHECK(pt_time_near(pt_ns(st.st_atim), t0, t1), "atime not now");
    EQ(st.st_mtim.tv_sec, 1410000000);
    OK(ut("f", 0, UTIME_OMIT, 0, UTIME_NOW, 0));
    OK(stat("f", &st));
    CHECK(pt_time_near(pt_ns(st.st_mtim), t0, pt_now()), "mtime not now");
    /* both omitted: nothing changes, not even ctime */
    OK(stat("f", &a));
    pt_wait_past(pt_ns(a.st_ctim));
    OK(ut("f", 0, UTIME_OMIT, 0, UTIME_OMIT, 0));
    OK(stat("f", &st));
    CHECK_SAME_TIME(st.st_ctim, pt_ns(a.st_ctim), "ctime after UTIME_OMIT twice");
    CHECK_SAME_TIME(st.st_mtim, pt_ns(a.st_mtim), "mtime after UTIME_OMIT twice");
    CHECK_SAME_TIME(st.st_atim, pt_ns(a.st_atim), "atime after UTIME_OMIT twice");
    return 0;
}

static int ctime_changes(pt_ctx *c)
{
    (void)c;
    struct stat a, b;
    OK(pt_write_file("f", "x", 1, 0644));
    OK(stat("f", &a));
    pt_wait_past(pt_ns(a.st_ctim));
    OK(ut("f", 1000, 0, 2000, 0, 0));
    OK(stat("f", &b));
    CHECK_ADVANCED(b.st_ctim, pt_ns(a.st_ctim), "ctime after utimensat");
    return 0;
}

static int nofollow(pt_ctx *c)
{
    (void)c;
    struct stat st, t;
    OK(pt_write_file("f", "x", 1, 0644));
    OK(ut("f", 1000000000, 1, 1000000000, 2, 0));
    OK(symlink("f", "l"));
    OK(ut("l", 1100000000, 3, 1200000000, 4, AT_SYMLINK_NOFOLLOW));
    OK(lstat("l", &st));
    EQ(st.st_mtim.tv_sec, 1200000000);
    EQ(st.st_mtim.tv_nsec, 4);
    EQ(st.st_atim.tv_sec, 1100000000);
    OK(stat("f", &t));
    EQ(t.st_mtim.tv_sec, 1000000000);
    EQ(t.st_mtim.tv_nsec, 2);
    /* without the flag the target changes */
    OK(ut("l", 1300000000, 5, 1300000000, 6, 0));
    OK(stat("f", &t));
    EQ(t.st_mtim.tv_sec, 1300000000);
    OK(lstat("l", &st));
    EQ(st.st_mtim.tv_sec, 1200000000);
    return 0;
}

static int futimens_fd(pt_ctx *c)
{
    (void)c;
    struct stat st;
    int fd = open("f", O_RDWR | O_CREAT, 0644);
    OK(fd);
    struct timespec ts[2] = {{1111111111, 1}, {1222222222, 2}};
    OK(futimens(fd, ts));
    OK(fstat(fd, &st));
    EQ(st.st_mtim.tv_sec, 1222222222);
    EQ(st.st_mtim.tv_nsec, 2);
    close(fd);
    OK(stat("f", &st));
    EQ(st.st_atim.tv_sec, 1111111111);
    EQ(st.st_atim.tv_nsec, 1);
    EQ(st.st_mtim.tv_sec, 1222222222);
    /* a read-only descriptor of one's own file works as well */
    fd = open("f", O_RDONLY);
    OK(fd);
    struct timespec ts2[2] = {{5, 5}, {6, 6}};
    OK(futimens(fd, ts2));
    close(fd);
    OK(stat("f", &st));
    EQ(st.st_mtim.tv_sec, 6);
    EQ(st.st_mtim.tv_nsec, 6);
    return 0;
}

static int errors(pt_ctx *c)
{
    (void)c;
    OK(pt_write_file("f", "x", 1, 0644));
    ERR(ut("f", 0, 1000000000, 0, 0, 0), EINVAL);
    ERR(ut("f", 0, 0, 0, -1, 0), EINVAL);
    ERR(ut("nope", 0, 0, 0, 0, 0), ENOENT);
    ERR(ut("f", 0, 0, 0, 0, 0x12345), EINVAL);
    return 0;
}

static int setup_files(pt_ctx *c)
{
    (void)c;
    OK(pt_write_file("shared", "x", 1, 0666));
    OK(chmod("shared", 0666));
    OK(pt_write_file("readonly", "x", 1, 0644));
    OK(pt_set_times("shared", PT_OLD_NS, PT_OLD_NS));
    OK(pt_set_times("readonly", PT_OLD_NS, PT_OLD_NS));
    return 0;
}

static int user_rules(pt_ctx *c)
{
    (void)c;
    struct stat st;
    /* write permission allows "now", only the owner may set explicit times */
    OK(ut("shared", 0, UTIME_NOW, 0, UTIME_NOW, 0));
    OK(utimensat(AT_FDCWD, "shared", NULL, 0));
    OK(stat("shared", &st));
    CHECK(pt_ns(st.st_mtim) > PT_OLD_NS, "mtime not set to now");
    ERR(ut("shared", 1, 0, 2, 0, 0), EPERM);
    ERR(ut("shared", 0, UTIME_OMIT, 2, 0, 0), EPERM);
    ERR(ut("readonly", 0, UTIME_NOW, 0, UTIME_NOW, 0), EACCES);
    ERR(ut("readonly", 1, 0, 2, 0, 0), EPERM);
    OK(stat("readonly", &st));
    CHECK_SAME_TIME(st.st_mtim, PT_OLD_NS, "mtime of a file we may not touch");
    OK(pt_write_file("mine", "x", 1, 0444));
    OK(ut("mine", 1, 0, 2, 0, 0));
    OK(ut("mine", 0, UTIME_NOW, 0, UTIME_NOW, 0));
    return 0;
}

const pt_case pt_utimensat_cases[] = {
    {"utimensat/ns_roundtrip", PT_BOTH, NULL, ns_roundtrip},
    {"utimensat/pre_epoch_and_far_future", PT_BOTH, NULL, far_times},
    {"utimensat/utime_now", PT_BOTH, NULL, now},
    {"utimensat/utime_omit", PT_BOTH, NULL, omit},
    {"utimensat/ctime", PT_BOTH, NULL, ctime_changes},
    {"utimensat/symlink_nofollow", PT_BOTH, NULL, nofollow},
    {"utimensat/futimens", PT_BOTH, NULL, futimens_fd},
    {"utimensat/errors", PT_BOTH, NULL, errors},
    {"utimensat/user_rules", PT_USER, setup_files, user_rules},
    {NULL, 0, NULL, NULL},
};
