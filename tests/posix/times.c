/* times.c — timestamps kept by the file system: write, create, atime
 * policy (relatime), nanosecond resolution, explicit times vs buffered
 * writes. */
#include "tests/posix/suite.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

static int write_mtime(pt_ctx *c)
{
    (void)c;
    struct stat a, b;
    OK(pt_write_file("f", "0123456789", 10, 0644));
    OK(pt_set_times("f", PT_OLD_NS, PT_OLD_NS));
    OK(stat("f", &a));
    pt_wait_past(pt_ns(a.st_ctim));
    int fd = open("f", O_WRONLY);
    OK(fd);
    EQ(pwrite(fd, "abc", 3, 2), 3);
    /* visible on the open descriptor before close */
    OK(fstat(fd, &b));
    CHECK_ADVANCED(b.st_mtim, PT_OLD_NS, "mtime after write (fstat before close)");
    CHECK_ADVANCED(b.st_ctim, pt_ns(a.st_ctim), "ctime after write (fstat before close)");
    OK(close(fd));
    OK(stat("f", &b));
    CHECK_ADVANCED(b.st_mtim, PT_OLD_NS, "mtime after write and close");
    CHECK_ADVANCED(b.st_ctim, pt_ns(a.st_ctim), "ctime after write and close");
    CHECK_SAME_TIME(b.st_atim, PT_OLD_NS, "atime after a write");
    return 0;
}

/* An explicit mtime set after buffered writes (cp -p, tar, rsync do this)
 * is what stays, also after close. */
static int utime_after_write(pt_ctx *c)
{
    (void)c;
    struct stat st;
    char buf[200000];
    pt_fill(buf, sizeof(buf), 8, 0);
    int fd = open("f", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    OK(fd);
    EQ(pt_pwrite_all(fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
    struct timespec ts[2] = {{1000000000, 111}, {1000000001, 222}};
    OK(futimens(fd, ts));
    OK(close(fd));
    OK(stat("f", &st));
    EQ(st.st_mtim.tv_sec, 1000000001);
    EQ(st.st_mtim.tv_nsec, 222);
    EQ(st.st_size, (off_t)sizeof(buf));
    /* the same by path while the descriptor is still open */
    fd = open("g", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    OK(fd);
    EQ(pt_pwrite_all(fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
    OK(utimensat(AT_FDCWD, "g", ts, 0));
    OK(close(fd));
    OK(stat("g", &st));
    EQ(st.st_mtim.tv_sec, 1000000001);
    EQ(st.st_mtim.tv_nsec, 222);
    return 0;
}

/* ctime moves on every metadata change, one case per kind of change. */
typedef int (*change_fn)(void);
static int ch_chmod(void) { return chmod("f", 0600); }
static int ch_write(void)
{
    int fd = open("f", O_WRONLY);
    if (fd < 0)
        return -1;
    int r = pwrite(fd, "q", 1, 0) == 1 ? 0 : -1;
    return close(fd) == 0 ? r : -1;
}
static int ch_truncate(void) { return truncate("f", 0); }
static int ch_link(void) { return link("f", "f2"); }
static int ch_unlink_other(void)
{
    if (link("f", "f2") != 0)
        return -1;
    struct stat st;
    if (stat("f", &st) != 0)
        return -1;
    pt_wait_past(pt_ns(st.st_ctim));
    return unlink("f2");
}
static int ch_rename(void) { return rename("f", "g") == 0 ? rename("g", "f") : -1; }
static int ch_setxattr(void) { return setxattr("f", "user.t", "v", 1, 0); }
static int ch_removexattr(void)
{
    if (setxattr("f", "user.t", "v", 1, 0) != 0)
        return -1;
    struct stat st;
    if (stat("f", &st) != 0)
        return -1;
    pt_wait_past(pt_ns(st.st_ctim));
    return removexattr("f", "user.t");
}
static int ch_utimens(void) { return pt_set_times("f", 5, 6); }

static int ctime_after(change_fn fn, const char *what)
{
    struct stat a, b;
    OK(pt_write_file("f", "some data", 9, 0644));
    OK(stat("f", &a));
    pt_wait_past(pt_ns(a.st_ctim));
    CHECK(fn() == 0, "%s: %s", what, pt_errname(errno));
    OK(stat("f", &b));
    CHECK(pt_ns(b.st_ctim) > pt_ns(a.st_ctim),
          "ctime did not advance on %s: %lld.%09ld, before %lld.%09ld", what,
          (long long)b.st_ctim.tv_sec, (long)b.st_ctim.tv_nsec, (long long)a.st_ctim.tv_sec,
          (long)a.st_ctim.tv_nsec);
    return 0;
}

static int ct_chmod(pt_ctx *c) { (void)c; return ctime_after(ch_chmod, "chmod"); }
static int ct_write(pt_ctx *c) { (void)c; return ctime_after(ch_write, "write"); }
static int ct_truncate(pt_ctx *c) { (void)c; return ctime_after(ch_truncate, "truncate"); }
static int ct_link(pt_ctx *c) { (void)c; return ctime_after(ch_link, "link"); }
static int ct_unlink(pt_ctx *c) { (void)c; return ctime_after(ch_unlink_other, "unlink of another link"); }
static int ct_rename(pt_ctx *c) { (void)c; return ctime_after(ch_rename, "rename"); }
static int ct_setxattr(pt_ctx *c) { (void)c; return ctime_after(ch_setxattr, "setxattr"); }
static int ct_removexattr(pt_ctx *c) { (void)c; return ctime_after(ch_removexattr, "removexattr"); }
static int ct_utimens(pt_ctx *c) { (void)c; return ctime_after(ch_utimens, "utimensat"); }

/* The parent's mtime and ctime move when an entry is added or removed. */
static int parent_after(int (*fn)(void), const char *what)
{
    struct stat a, b;
    OK(mkdir("p", 0755));
    OK(pt_write_file("p/existing", "x", 1, 0644));
    OK(mkdir("p/olddir", 0755));
    OK(pt_set_times("p", PT_OLD_NS, PT_OLD_NS));
    OK(stat("p", &a));
    pt_wait_past(pt_ns(a.st_ctim));
    CHECK(fn() == 0, "%s: %s", what, pt_errname(errno));
    OK(stat("p", &b));
    CHECK(pt_ns(b.st_mtim) > PT_OLD_NS, "parent mtime did not change on %s", what);
    CHECK(pt_ns(b.st_ctim) > pt_ns(a.st_ctim), "parent ctime did not advance on %s", what);
    return 0;
}
static int pa_symlink(void) { return symlink("x", "p/l"); }
static int pa_mknod(void) { return mkfifo("p/fifo", 0644); }
static int pa_link(void) { return link("p/existing", "p/l2"); }
static int pa_rename_in(void) { return pt_write_file("g", "g", 1, 0644) == 0 ? rename("g", "p/g") : -1; }
static int pa_rename_out(void) { return rename("p/existing", "moved"); }
static int pa_rename_within(void) { return rename("p/existing", "p/renamed"); }
static int pa_rmdir(void) { return rmdir("p/olddir"); }

static int pt_symlink_parent(pt_ctx *c) { (void)c; return parent_after(pa_symlink, "symlink"); }
static int pt_mknod_parent(pt_ctx *c) { (void)c; return parent_after(pa_mknod, "mkfifo"); }
static int pt_link_parent(pt_ctx *c) { (void)c; return parent_after(pa_link, "link"); }
static int pt_rename_in(pt_ctx *c) { (void)c; return parent_after(pa_rename_in, "rename into"); }
static int pt_rename_out(pt_ctx *c) { (void)c; return parent_after(pa_rename_out, "rename out of"); }
static int pt_rename_within(pt_ctx *c) { (void)c; return parent_after(pa_rename_within, "rename within"); }
static int pt_rmdir_parent(pt_ctx *c) { (void)c; return parent_after(pa_rmdir, "rmdir"); }

/* Timestamps the file system assigns carry nanoseconds, not just
 * microseconds or seconds. */
static int auto_ns(pt_ctx *c)
{
    (void)c;
    int sub_us = 0;
    for (int i = 0; i < 8; i++) {
        char n[16];
        struct stat st;
        snprintf(n, sizeof(n), "f%d", i);
        OK(pt_write_file(n, "x", 1, 0644));
        OK(stat(n, &st));
        if (st.st_mtim.tv_nsec % 1000 != 0)
            sub_us++;
        if (st.st_ctim.tv_nsec % 1000 != 0)
            sub_us++;
    }
    CHECK(sub_us > 0, "no assigned mtime/ctime has a sub-microsecond part in 16 samples");
    return 0;
}

/* relatime (the default): reading updates atime when it is not newer
 * than mtime or ctime, and leaves a recent atime alone. */
static int relatime_read(pt_ctx *c)
{
    (void)c;
    struct stat st;
    char b[4];
    OK(pt_write_file("f", "data", 4, 0644));
    int64_t now = pt_now();
    /* atime older than mtime: a read must update it */
    OK(pt_set_times("f", now - 3600LL * 1000000000LL, now - 1800LL * 1000000000LL));
    int64_t t0 = pt_now();
    EQ(pt_read_file("f", b, sizeof(b)), 4);
    int64_t t1 = pt_now();
    OK(stat("f", &st));
    CHECK(pt_time_near(pt_ns(st.st_atim), t0, t1),
          "atime not updated by a read although older than mtime: %lld.%09ld, read at %lld",
          (long long)st.st_atim.tv_sec, (long)st.st_atim.tv_nsec, (long long)(t0 / 1000000000));
    return 0;
}

static int relatime_recent(pt_ctx *c)
{
    (void)c;
    struct stat st;
    char b[4];
    OK(pt_write_file("f", "data", 4, 0644));
    /* atime after mtime and ctime, and recent: a read leaves it */
    int64_t future = pt_now() + 600LL * 1000000000LL + 123;
    OK(pt_set_times("f", future, PT_OLD_NS));
    EQ(pt_read_file("f", b, sizeof(b)), 4);
    OK(stat("f", &st));
    CHECK_SAME_TIME(st.st_atim, future, "recent atime after a read");
    return 0;
}

static int relatime_readdir(pt_ctx *c)
{
    (void)c;
    struct stat st;
    OK(mkdir("d", 0755));
    OK(pt_write_file("d/f", "x", 1, 0644));
    int64_t now = pt_now();
    OK(pt_set_times("d", now - 3600LL * 1000000000LL, now - 1800LL * 1000000000LL));
    int64_t t0 = pt_now();
    DIR *dp = opendir("d");
    CHECK(dp, "opendir: %s", pt_errname(errno));
    while (readdir(dp))
        ;
    closedir(dp);
    int64_t t1 = pt_now();
    OK(stat("d", &st));
    CHECK(pt_time_near(pt_ns(st.st_atim), t0, t1),
          "directory atime not updated by readdir although older than mtime");
    return 0;
}

const pt_case pt_times_cases[] = {
    {"times/write_mtime_ctime", PT_BOTH, NULL, write_mtime},
    {"times/explicit_mtime_after_buffered_write", PT_BOTH, NULL, utime_after_write},
    {"times/ctime_on_chmod", PT_BOTH, NULL, ct_chmod},
    {"times/ctime_on_write", PT_BOTH, NULL, ct_write},
    {"times/ctime_on_truncate", PT_BOTH, NULL, ct_truncate},
    {"times/ctime_on_link", PT_BOTH, NULL, ct_link},
    {"times/ctime_on_unlink", PT_BOTH, NULL, ct_unlink},
    {"times/ctime_on_rename", PT_BOTH, NULL, ct_rename},
    {"times/ctime_on_setxattr", PT_BOTH, NULL, ct_setxattr},
    {"times/ctime_on_removexattr", PT_BOTH, NULL, ct_removexattr},
    {"times/ctime_on_utimensat", PT_BOTH, NULL, ct_utimens},
    {"times/parent_on_symlink", PT_BOTH, NULL, pt_symlink_parent},
    {"times/parent_on_mknod", PT_BOTH, NULL, pt_mknod_parent},
    {"times/parent_on_link", PT_BOTH, NULL, pt_link_parent},
    {"times/parent_on_rename_in", PT_BOTH, NULL, pt_rename_in},
    {"times/parent_on_rename_out", PT_BOTH, NULL, pt_rename_out},
    {"times/parent_on_rename_within", PT_BOTH, NULL, pt_rename_within},
    {"times/parent_on_rmdir", PT_BOTH, NULL, pt_rmdir_parent},
    {"times/nanosecond_resolution", PT_BOTH, NULL, auto_ns},
    {"times/relatime_read_updates_old_atime", PT_BOTH, NULL, relatime_read},
    {"times/relatime_keeps_recent_atime", PT_BOTH, NULL, relatime_recent},
    {"times/relatime_readdir", PT_BOTH, NULL, relatime_readdir},
    {NULL, 0, NULL, NULL},
};
