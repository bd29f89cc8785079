/* rename.c — rename, renameat2: replacing, loops, open files, flags. */
#include "tests/posix/suite.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

static int ren2(const char *a, const char *b, unsigned flags)
{
    return (int)syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, flags);
}

static int basic(pt_ctx *c)
{
    (void)c;
    struct stat a, b, pa, pb;
    OK(mkdir("src", 0755));
    OK(mkdir("dst", 0755));
    OK(pt_write_file("src/f", "content", 7, 0640));
    OK(stat("src/f", &a));
    OK(pt_set_times("src", PT_OLD_NS, PT_OLD_NS));
    OK(pt_set_times("dst", PT_OLD_NS, PT_OLD_NS));
    OK(stat("dst", &pb));
    pt_wait_past(pt_ns(pb.st_ctim));
    OK(rename("src/f", "dst/g"));
    ERR(stat("src/f", &b), ENOENT);
    OK(stat("dst/g", &b));
    EQ(b.st_ino, a.st_ino);
    EQ(b.st_nlink, 1);
    EQ_MODE(b.st_mode, S_IFREG | 0640);
    char got[16];
    EQ(pt_read_file("dst/g", got, sizeof(got)), 7);
    CHECK(memcmp(got, "content", 7) == 0, "content after rename: %.7s", got);
    OK(stat("src", &pa));
    OK(stat("dst", &b));
    CHECK_ADVANCED(pa.st_mtim, PT_OLD_NS, "source parent mtime");
    CHECK_ADVANCED(pa.st_ctim, pt_ns(pb.st_ctim), "source parent ctime");
    CHECK_ADVANCED(b.st_mtim, PT_OLD_NS, "target parent mtime");
    CHECK_ADVANCED(b.st_ctim, pt_ns(pb.st_ctim), "target parent ctime");
    /* rename to itself is a successful no-op */
    OK(rename("dst/g", "dst/g"));
    OK(stat("dst/g", &b));
    return 0;
}

static int ctime_of_moved(pt_ctx *c)
{
    (void)c;
    struct stat a, b;
    OK(pt_write_file("f", "x", 1, 0644));
    OK(pt_set_times("f", PT_OLD_NS, PT_OLD_NS));
    OK(stat("f", &a));
    pt_wait_past(pt_ns(a.st_ctim));
    OK(rename("f", "g"));
    OK(stat("g", &b));
    CHECK_ADVANCED(b.st_ctim, pt_ns(a.st_ctim), "ctime of the renamed file");
    CHECK_SAME_TIME(b.st_mtim, PT_OLD_NS, "mtime of the renamed file");
    return 0;
}

static int over_file(pt_ctx *c)
{
    (void)c;
    struct stat st, a;
    OK(pt_write_file("a", "AAAA", 4, 0644));
    OK(pt_write_file("b", "BB", 2, 0600));
    OK(stat("a", &a));
    int fd = open("b", O_RDONLY);
    OK(fd);
    OK(rename("a", "b"));
    ERR(stat("a", &st), ENOENT);
    OK(stat("b", &st));
    EQ(st.st_ino, a.st_ino);
    EQ(st.st_size, 4);
    EQ_MODE(st.st_mode, S_IFREG | 0644);
    /* the replaced file lives on through its descriptor */
    OK(fstat(fd, &st));
    EQ(st.st_nlink, 0);
    char got[8];
    EQ(pt_pread_all(fd, got, sizeof(got), 0), 2);
    CHECK(memcmp(got, "BB", 2) == 0, "replaced file read: %.2s", got);
    close(fd);
    /* a symlink is replaced, not followed */
    OK(pt_write_file("t", "T", 1, 0644));
    OK(symlink("t", "l"));
    OK(rename("b", "l"));
    OK(lstat("l", &st));
    CHECK(S_ISREG(st.st_mode), "rename over a symlink left mode 0%o", st.st_mode);
    OK(stat("t", &st));
    EQ(st.st_size, 1);
    return 0;
}

static int over_dir(pt_ctx *c)
{
    (void)c;
    struct stat a, st;
    OK(mkdir("a", 0755));
    OK(pt_write_file("a/inside", "x", 1, 0644));
    OK(mkdir("empty", 0755));
    OK(stat("a", &a));
    OK(rename("a", "empty"));
    OK(stat("empty", &st));
    EQ(st.st_ino, a.st_ino);
    OK(stat("empty/inside", &st));
    ERR(stat("a", &st), ENOENT);
    /* onto a non-empty directory */
    OK(mkdir("b", 0755));
    ERR(rename("b", "empty"), ENOTEMPTY);
    /* directory onto a file, file onto a directory */
    OK(pt_write_file("f", "x", 1, 0644));
    ERR(rename("b", "f"), ENOTDIR);
    ERR(rename("f", "b"), EISDIR);
    OK(stat("b", &st));
    CHECK(S_ISDIR(st.st_mode), "b is no longer a directory");
    OK(stat("f", &st));
    CHECK(S_ISREG(st.st_mode), "f is no longer a file");
    return 0;
}

static int loops(pt_ctx *c)
{
    (void)c;
    struct stat st;
    OK(mkdir("a", 0755));
    OK(mkdir("a/b", 0755));
    OK(mkdir("a/b/c", 0755));
    ERR(rename("a", "a/b/c/d"), EINVAL);
    ERR(rename("a", "a/x"), EINVAL);
    ERR(rename("a/b", "a/b/c/x"), EINVAL);
    /* onto an (empty) descendant */
    ERR(rename("a", "a/b/c"), EINVAL);
    /* onto an ancestor: the ancestor is not empty */
    ERR(rename("a/b/c", "a"), ENOTEMPTY);
    OK(stat("a/b/c", &st));
    OK(rename("a", "a"));
    OK(rename("a/b/c", "c"));
    OK(rename("a", "c/a"));
    OK(stat("c/a/b", &st));
    return 0;
}

static int dots(pt_ctx *c)
{
    (void)c;
    OK(mkdir("a", 0755));
    OK(mkdir("b", 0755));
    ERR(rename("a/.", "x"), EBUSY);
    ERR(rename("x", "a/."), EBUSY);
    ERR(rename("a/..", "x"), EBUSY);
    ERR(rename("b", "a/.."), EBUSY);
    return 0;
}

static int open_file(pt_ctx *c)
{
    (void)c;
    struct stat st;
    char got[32];
    OK(mkdir("d1", 0755));
    OK(mkdir("d2", 0755));
    int fd = open("d1/f", O_RDWR | O_CREAT, 0644);
    OK(fd);
    EQ(write(fd, "before ", 7), 7);
    OK(rename("d1/f", "d2/g"));
    EQ(write(fd, "after", 5), 5);
    OK(fstat(fd, &st));
    EQ(st.st_nlink, 1);
    EQ(st.st_size, 12);
    OK(close(fd));
    EQ(pt_read_file("d2/g", got, sizeof(got)), 12);
    CHECK(memcmp(got, "before after", 12) == 0, "content: %.12s", got);
    /* rename the directory an open file lives in */
    fd = open("d2/g", O_RDWR | O_APPEND);
    OK(fd);
    OK(rename("d2", "d3"));
    EQ(write(fd, "!", 1), 1);
    OK(close(fd));
    EQ(pt_read_file("d3/g", got, sizeof(got)), 13);
    CHECK(memcmp(got, "before after!", 13) == 0, "content: %.13s", got);
    return 0;
}

static int noreplace(pt_ctx *c)
{
    (void)c;
    struct stat st;
    char got[8];
    OK(pt_write_file("a", "A", 1, 0644));
    OK(pt_write_file("b", "BB", 2, 0644));
    ERR(ren2("a", "b", RENAME_NOREPLACE), EEXIST);
    EQ(pt_read_file("b", got, sizeof(got)), 2);
    OK(stat("a", &st));
    OK(mkdir("d", 0755));
    ERR(ren2("a", "d", RENAME_NOREPLACE), EEXIST);
    OK(symlink("nowhere", "dangling"));
    ERR(ren2("a", "dangling", RENAME_NOREPLACE), EEXIST);
    OK(ren2("a", "c", RENAME_NOREPLACE));
    ERR(stat("a", &st), ENOENT);
    EQ(pt_read_file("c", got, sizeof(got)), 1);
    ERR(ren2("nope", "x", RENAME_NOREPLACE), ENOENT);
    return 0;
}

static int exchange(pt_ctx *c)
{
    (void)c;
    struct stat f0, d0, st, pa0, pb0;
    OK(mkdir("pa", 0755));
    OK(mkdir("pb", 0755));
    OK(pt_write_file("pa/f", "file", 4, 0644));
    OK(mkdir("pb/d", 0755));
    OK(pt_write_file("pb/d/inside", "x", 1, 0644));
    OK(stat("pa/f", &f0));
    OK(stat("pb/d", &d0));
    OK(stat("pa", &pa0));
    OK(stat("pb", &pb0));
    OK(ren2("pa/f", "pb/d", RENAME_EXCHANGE));
    OK(stat("pa/f", &st));
    EQ(st.st_ino, d0.st_ino);
    CHECK(S_ISDIR(st.st_mode), "pa/f is not the directory after exchange");
    OK(stat("pa/f/inside", &st));
    OK(stat("pb/d", &st));
    EQ(st.st_ino, f0.st_ino);
    EQ(st.st_size, 4);
    /* the directory moved from pb to pa: link counts and ".." follow */
    OK(stat("pa", &st));
    EQ(st.st_nlink, pa0.st_nlink + 1);
    OK(stat("pb", &st));
    EQ(st.st_nlink, pb0.st_nlink - 1);
    struct stat dd;
    OK(stat("pa/f/..", &dd));
    EQ(dd.st_ino, pa0.st_ino);
    /* two files */
    OK(pt_write_file("x", "XX", 2, 0644));
    OK(pt_write_file("y", "YYY", 3, 0644));
    OK(ren2("x", "y", RENAME_EXCHANGE));
    OK(stat("x", &st));
    EQ(st.st_size, 3);
    OK(stat("y", &st));
    EQ(st.st_size, 2);
    ERR(ren2("x", "missing", RENAME_EXCHANGE), ENOENT);
    ERR(ren2("missing", "x", RENAME_EXCHANGE), ENOENT);
    ERR(ren2("x", "y", RENAME_EXCHANGE | RENAME_NOREPLACE), EINVAL);
    /* exchanging a directory with its own descendant is a loop */
    OK(mkdir("p", 0755));
    OK(mkdir("p/q", 0755));
    ERR(ren2("p", "p/q", RENAME_EXCHANGE), EINVAL);
    return 0;
}

static int errors(pt_ctx *c)
{
    (void)c;
    OK(pt_write_file("f", "x", 1, 0644));
    ERR(rename("nope", "x"), ENOENT);
    ERR(rename("f", "nodir/x"), ENOENT);
    ERR(rename("f", "f/x"), ENOTDIR);
    ERR(rename("f/x", "y"), ENOTDIR);
    ERR(rename("", "y"), ENOENT);
    char n[300];
    memset(n, 'r', 256);
    n[256] = 0;
    ERR(rename("f", n), ENAMETOOLONG);
    n[255] = 0;
    OK(rename("f", n));
    return 0;
}

static int symlink_moved(pt_ctx *c)
{
    (void)c;
    char buf[64];
    OK(mkdir("d", 0755));
    OK(pt_write_file("f", "x", 1, 0644));
    OK(symlink("../f", "d/l"));
    OK(rename("d/l", "d/m"));
    ssize_t n = readlink("d/m", buf, sizeof(buf));
    EQ(n, 4);
    CHECK(memcmp(buf, "../f", 4) == 0, "target after rename: %.*s", (int)n, buf);
    struct stat st;
    OK(stat("d/m", &st));
    CHECK(S_ISREG(st.st_mode), "link no longer resolves");
    return 0;
}

static int dir_tree(pt_ctx *c)
{
    (void)c;
    char n[64];
    OK(mkdir("a", 0755));
    OK(mkdir("a/sub", 0755));
    for (int i = 0; i < 50; i++) {
        snprintf(n, sizeof(n), "a/sub/f%d", i);
        OK(pt_write_file(n, n, strlen(n), 0644));
    }
    OK(mkdir("b", 0755));
    OK(rename("a/sub", "b/moved"));
    for (int i = 0; i < 50; i++) {
        char want[64], got[64];
        snprintf(want, sizeof(want), "a/sub/f%d", i);
        snprintf(n, sizeof(n), "b/moved/f%d", i);
        ssize_t r = pt_read_file(n, got, sizeof(got));
        EQ(r, (ssize_t)strlen(want));
        CHECK(memcmp(got, want, (size_t)r) == 0, "%s holds %.*s", n, (int)r, got);
    }
    struct stat st;
    ERR(stat("a/sub", &st), ENOENT);
    return 0;
}

static int setup_sticky(pt_ctx *c)
{
    (void)c;
    OK(mkdir("sticky", 0777));
    OK(chmod("sticky", 01777));
    OK(pt_write_file("sticky/rootfile", "r", 1, 0666));
    OK(chmod("sticky/rootfile", 0666));
    OK(mkdir("ro", 0755));
    OK(pt_write_file("ro/f", "x", 1, 0666));
    OK(mkdir("rootdir", 0755));
    OK(mkdir("sub", 0777));
    OK(chown("sub", c->uid, c->gid));
    return 0;
}

static int denied(pt_ctx *c)
{
    (void)c;
    struct stat st;
    ERR(rename("sticky/rootfile", "sticky/x"), EPERM);
    OK(pt_write_file("sticky/mine", "m", 1, 0644));
    ERR(rename("sticky/mine", "sticky/rootfile"), EPERM);
    OK(rename("sticky/mine", "sticky/mine2"));
    ERR(rename("ro/f", "g"), EACCES);
    OK(pt_write_file("g", "g", 1, 0644));
    ERR(rename("g", "ro/g"), EACCES);
    /* moving another user's directory to a new parent needs write
     * permission on it (its ".." changes); within one parent it does not */
    ERR(rename("rootdir", "sub/rootdir"), EACCES);
    OK(rename("rootdir", "rootdir2"));
    OK(stat("rootdir2", &st));
    return 0;
}

const pt_case pt_rename_cases[] = {
    {"rename/basic", PT_BOTH, NULL, basic},
    {"rename/ctime_of_moved", PT_BOTH, NULL, ctime_of_moved},
    {"rename/over_file", PT_BOTH, NULL, over_file},
    {"rename/over_dir", PT_BOTH, NULL, over_dir},
    {"rename/loop_einval", PT_BOTH, NULL, loops},
    {"rename/dots_ebusy", PT_BOTH, NULL, dots},
    {"rename/open_file", PT_BOTH, NULL, open_file},
    {"rename/noreplace", PT_BOTH, NULL, noreplace},
    {"rename/exchange", PT_BOTH, NULL, exchange},
    {"rename/errors", PT_BOTH, NULL, errors},
    {"rename/symlink", PT_BOTH, NULL, symlink_moved},
    {"rename/dir_tree", PT_BOTH, NULL, dir_tree},
    {"rename/sticky_and_eacces", PT_USER, setup_sticky, denied},
    {NULL, 0, NULL, NULL},
};
