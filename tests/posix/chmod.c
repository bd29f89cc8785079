/* chmod.c — chmod, fchmod: mode bits, ctime, permission rules. */
#include "tests/posix/suite.h"

#include <fcntl.h>
#include <unistd.h>

static int basic(pt_ctx *c)
{
    (void)c;
    struct stat st;
    OK(pt_write_file("f", "x", 1, 0644));
    OK(stat("f", &st));
    EQ_MODE(st.st_mode, S_IFREG | 0644);
    OK(chmod("f", 0600));
    OK(stat("f", &st));
    EQ_MODE(st.st_mode, S_IFREG | 0600);
    OK(chmod("f", 0));
    OK(stat("f", &st));
    EQ_MODE(st.st_mode, S_IFREG);
    OK(chmod("f", 0751));
    OK(stat("f", &st));
    EQ_MODE(st.st_mode, S_IFREG | 0751);
    return 0;
}

static int special_root(pt_ctx *c)
{
    (void)c;
    struct stat st;
    OK(pt_write_file("f", "x", 1, 0644));
    OK(chmod("f", 07777));
    OK(stat("f", &st));
    EQ_MODE(st.st_mode, S_IFREG | 07777);
    OK(chmod("f", 04711));
    OK(stat("f", &st));
    EQ_MODE(st.st_mode, S_IFREG | 04711);
    OK(mkdir("d", 0755));
    OK(chmod("d", 03777));
    OK(stat("d", &st));
    EQ_MODE(st.st_mode, S_IFDIR | 03777);
    return 0;
}

static int special_user(pt_ctx *c)
{
    (void)c;
    struct stat st;
    OK(pt_write_file("f", "x", 1, 0644));
    OK(chmod("f", 06755));
    OK(stat("f", &st));
    EQ_MODE(st.st_mode, S_IFREG | 06755);
    OK(chmod("f", 01644));
    OK(stat("f", &st));
    EQ_MODE(st.st_mode, S_IFREG | 01644);
    return 0;
}

static int ctime_changes(pt_ctx *c)
{
    (void)c;
    struct stat a, b;
    OK(pt_write_file("f", "x", 1, 0644));
    OK(pt_set_times("f", PT_OLD_NS, PT_OLD_NS));
    OK(stat("f", &a));
    pt_wait_past(pt_ns(a.st_ctim));
    OK(chmod("f", 0640));
    OK(stat("f", &b));
    CHECK_ADVANCED(b.st_ctim, pt_ns(a.st_ctim), "ctime after chmod");
    CHECK_SAME_TIME(b.st_mtim, PT_OLD_NS, "mtime after chmod");
    CHECK_SAME_TIME(b.st_atim, PT_OLD_NS, "atime after chmod");
    return 0;
}

static int dir(pt_ctx *c)
{
    (void)c;
    struct stat st;
    OK(mkdir("d", 0755));
    OK(chmod("d", 0700));
    OK(stat("d", &st));
    EQ_MODE(st.st_mode, S_IFDIR | 0700);
    OK(chmod("d", 01777));
    OK(stat("d", &st));
    EQ_MODE(st.st_mode, S_IFDIR | 01777);
    return 0;
}

static int follows_symlink(pt_ctx *c)
{
    (void)c;
    struct stat st, l1, l2;
    OK(pt_write_file("f", "x", 1, 0644));
    OK(symlink("f", "l"));
    OK(lstat("l", &l1));
    OK(chmod("l", 0600));
    OK(stat("f", &st));
    EQ_MODE(st.st_mode, S_IFREG | 0600);
    OK(lstat("l", &l2));
    EQ_MODE(l2.st_mode, S_IFLNK | 0777);
    return 0;
}

static int fchmod_fd(pt_ctx *c)
{
    (void)c;
    struct stat st;
    int fd = open("f", O_RDWR | O_CREAT, 0644);
    OK(fd);
    OK(write(fd, "abc", 3));
    OK(fchmod(fd, 0400));
    OK(fstat(fd, &st));
    EQ_MODE(st.st_mode, S_IFREG | 0400);
    OK(close(fd));
    OK(stat("f", &st));
    EQ_MODE(st.st_mode, S_IFREG | 0400);
    EQ(st.st_size, 3);
    return 0;
}

static int errors(pt_ctx *c)
{
    (void)c;
    ERR(chmod("nope", 0644), ENOENT);
    OK(pt_write_file("f", "x", 1, 0644));
    ERR(chmod("f/x", 0644), ENOTDIR);
    ERR(chmod("", 0644), ENOENT);
    return 0;
}

static int setup_rootfile(pt_ctx *c)
{
    (void)c;
    OK(pt_write_file("rootfile", "x", 1, 0666));
    OK(chmod("rootfile", 0666));
    return 0;
}

static int not_owner(pt_ctx *c)
{
    (void)c;
    struct stat st;
    ERR(chmod("rootfile", 0777), EPERM);
    int fd = open("rootfile", O_RDWR);
    OK(fd);
    ERR(fchmod(fd, 0777), EPERM);
    close(fd);
    OK(stat("rootfile", &st));
    EQ_MODE(st.st_mode, S_IFREG | 0666);
    return 0;
}

static int setup_othergroup(pt_ctx *c)
{
    OK(pt_write_file("f", "x", 1, 0644));
    OK(chown("f", c->uid, c->other_gid));
    return 0;
}

static int sgid_nonmember(pt_ctx *c)
{
    (void)c;
    struct stat st;
    /* Owner, but not in the file's group: S_ISGID is silently dropped. */
    OK(chmod("f", 02755));
    OK(stat("f", &st));
    EQ_MODE(st.st_mode, S_IFREG | 0755);
    return 0;
}

static int search_denied(pt_ctx *c)
{
    (void)c;
    OK(mkdir("d", 0755));
    OK(pt_write_file("d/f", "x", 1, 0644));
    OK(chmod("d", 0644));
    ERR(chmod("d/f", 0600), EACCES);
    OK(chmod("d", 0755));
    OK(chmod("d/f", 0600));
    return 0;
}

const pt_case pt_chmod_cases[] = {
    {"chmod/basic", PT_BOTH, NULL, basic},
    {"chmod/special_bits_root", PT_ROOT, NULL, special_root},
    {"chmod/special_bits_user", PT_USER, NULL, special_user},
    {"chmod/ctime", PT_BOTH, NULL, ctime_changes},
    {"chmod/dir", PT_BOTH, NULL, dir},
    {"chmod/follows_symlink", PT_BOTH, NULL, follows_symlink},
    {"chmod/fchmod", PT_BOTH, NULL, fchmod_fd},
    {"chmod/errors", PT_BOTH, NULL, errors},
    {"chmod/not_owner_eperm", PT_USER, setup_rootfile, not_owner},
    {"chmod/sgid_dropped_nonmember", PT_USER, setup_othergroup, sgid_nonmember},
    {"chmod/search_denied", PT_USER, NULL, search_denied},
    {NULL, 0, NULL, NULL},
};
