/* rmdir.c — rmdir: empty only, link counts, parent times, sticky rules. */
#include "tests/posix/suite.h"

#include <fcntl.h>
#include <unistd.h>

static int basic(pt_ctx *c)
{
    (void)c;
    struct stat p0, p1, st;
    OK(mkdir("d", 0755));
    OK(stat(".", &p0));
    OK(rmdir("d"));
    ERR(stat("d", &st), ENOENT);
    OK(stat(".", &p1));
    EQ(p1.st_nlink, p0.st_nlink - 1);
    OK(mkdir("d", 0755)); /* the name is free again */
    return 0;
}

static int enotempty(pt_ctx *c)
{
    (void)c;
    OK(mkdir("d", 0755));
    OK(pt_write_file("d/f", "x", 1, 0644));
    ERR(rmdir("d"), ENOTEMPTY);
    OK(unlink("d/f"));
    OK(mkdir("d/sub", 0755));
    ERR(rmdir("d"), ENOTEMPTY);
    OK(rmdir("d/sub"));
    OK(symlink("x", "d/l"));
    ERR(rmdir("d"), ENOTEMPTY);
    OK(unlink("d/l"));
    OK(rmdir("d"));
    return 0;
}

static int errors(pt_ctx *c)
{
    (void)c;
    OK(pt_write_file("f", "x", 1, 0644));
    ERR(rmdir("f"), ENOTDIR);
    ERR(rmdir("nope"), ENOENT);
    OK(mkdir("d", 0755));
    ERR(rmdir("d/."), EINVAL);
    ERR(rmdir("d/.."), ENOTEMPTY);
    OK(symlink("d", "l"));
    ERR(rmdir("l"), ENOTDIR);
    return 0;
}

static int parent_times(pt_ctx *c)
{
    (void)c;
    struct stat a, b;
    OK(mkdir("p", 0755));
    OK(mkdir("p/d", 0755));
    OK(pt_set_times("p", PT_OLD_NS, PT_OLD_NS));
    OK(stat("p", &a));
    pt_wait_past(pt_ns(a.st_ctim));
    OK(rmdir("p/d"));
    OK(stat("p", &b));
    CHECK_ADVANCED(b.st_mtim, PT_OLD_NS, "parent mtime after rmdir");
    CHECK_ADVANCED(b.st_ctim, pt_ns(a.st_ctim), "parent ctime after rmdir");
    return 0;
}

static int open_dir_removed(pt_ctx *c)
{
    (void)c;
    OK(mkdir("d", 0755));
    int fd = open("d", O_RDONLY | O_DIRECTORY);
    OK(fd);
    OK(rmdir("d"));
    struct stat st;
    OK(fstat(fd, &st));
    EQ(st.st_nlink, 0);
    /* nothing can be created in a removed directory */
    ERR(openat(fd, "f", O_CREAT | O_WRONLY, 0644), ENOENT);
    ERR(mkdirat(fd, "x", 0755), ENOENT);
    close(fd);
    return 0;
}

static int setup_sticky(pt_ctx *c)
{
    (void)c;
    OK(mkdir("sticky", 0777));
    OK(chmod("sticky", 01777));
    OK(mkdir("sticky/rootsub", 0777));
    OK(chmod("sticky/rootsub", 0777));
    OK(mkdir("plain", 0777));
    OK(chmod("plain", 0777));
    OK(mkdir("plain/rootsub", 0755));
    OK(mkdir("ro", 0755));
    OK(mkdir("ro/sub", 0777));
    return 0;
}

static int sticky(pt_ctx *c)
{
    (void)c;
    struct stat st;
    /* another user's directory in a sticky directory: EPERM */
    ERR(rmdir("sticky/rootsub"), EPERM);
    OK(stat("sticky/rootsub", &st));
    /* our own: fine */
    OK(mkdir("sticky/mine", 0755));
    OK(rmdir("sticky/mine"));
    /* without the sticky bit, write permission on the parent is enough */
    OK(rmdir("plain/rootsub"));
    /* no write permission on the parent */
    ERR(rmdir("ro/sub"), EACCES);
    return 0;
}

const pt_case pt_rmdir_cases[] = {
    {"rmdir/basic", PT_BOTH, NULL, basic},
    {"rmdir/enotempty", PT_BOTH, NULL, enotempty},
    {"rmdir/errors", PT_BOTH, NULL, errors},
    {"rmdir/parent_times", PT_BOTH, NULL, parent_times},
    {"rmdir/open_dir_removed", PT_BOTH, NULL, open_dir_removed},
    {"rmdir/sticky_and_eacces", PT_USER, setup_sticky, sticky},
    {NULL, 0, NULL, NULL},
};
