/* mkdir.c — mkdir: modes, umask, owners, link counts, setgid inheritance. */
#include "tests/posix/suite.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int basic(pt_ctx *c)
{
    struct stat st, p0, p1;
    OK(stat(".", &p0));
    OK(mkdir("d", 0755));
    OK(stat("d", &st));
    EQ_MODE(st.st_mode, S_IFDIR | 0755);
    EQ(st.st_nlink, 2);
    EQ(st.st_uid, c->uid);
    EQ(st.st_gid, c->gid);
    OK(stat(".", &p1));
    EQ(p1.st_nlink, p0.st_nlink + 1);
    OK(mkdir("d/e", 0700));
    OK(stat("d", &st));
    EQ(st.st_nlink, 3);
    OK(stat("d/e/..", &p1));
    EQ(p1.st_ino, st.st_ino);
    return 0;
}

static int umask_applied(pt_ctx *c)
{
    (void)c;
    struct stat st;
    umask(027);
    OK(mkdir("a", 0777));
    OK(stat("a", &st));
    EQ_MODE(st.st_mode, S_IFDIR | 0750);
    umask(0);
    OK(mkdir("b", 0777));
    OK(stat("b", &st));
    EQ_MODE(st.st_mode, S_IFDIR | 0777);
    umask(077);
    OK(mkdir("c", 0755));
    OK(stat("c", &st));
    EQ_MODE(st.st_mode, S_IFDIR | 0700);
    return 0;
}

static int mode_bits(pt_ctx *c)
{
    (void)c;
    struct stat st;
    umask(0);
    /* set-user-ID and set-group-ID in mkdir's mode are ignored, sticky kept */
    OK(mkdir("d", 07777));
    OK(stat("d", &st));
    EQ_MODE(st.st_mode, S_IFDIR | 01777);
    return 0;
}

static int eexist(pt_ctx *c)
{
    (void)c;
    OK(mkdir("d", 0755));
    ERR(mkdir("d", 0755), EEXIST);
    OK(pt_write_file("f", "x", 1, 0644));
    ERR(mkdir("f", 0755), EEXIST);
    OK(symlink("nowhere", "dangling"));
    ERR(mkdir("dangling", 0755), EEXIST);
    ERR(mkdir(".", 0755), EEXIST);
    return 0;
}

static int errors(pt_ctx *c)
{
    (void)c;
    ERR(mkdir("no/d", 0755), ENOENT);
    OK(pt_write_file("f", "x", 1, 0644));
    ERR(mkdir("f/d", 0755), ENOTDIR);
    ERR(mkdir("", 0755), ENOENT);
    return 0;
}

static int parent_times(pt_ctx *c)
{
    (void)c;
    struct stat a, b;
    OK(mkdir("p", 0755));
    OK(pt_set_times("p", PT_OLD_NS, PT_OLD_NS));
    OK(stat("p", &a));
    pt_wait_past(pt_ns(a.st_ctim));
    OK(mkdir("p/d", 0755));
    OK(stat("p", &b));
    CHECK_ADVANCED(b.st_mtim, PT_OLD_NS, "parent mtime after mkdir");
    CHECK_ADVANCED(b.st_ctim, pt_ns(a.st_ctim), "parent ctime after mkdir");
    OK(stat("p/d", &a));
    CHECK(pt_ns(a.st_mtim) == pt_ns(b.st_mtim) || pt_time_near(pt_ns(a.st_mtim), pt_ns(b.st_mtim), pt_ns(b.st_mtim)),
          "new directory mtime %lld far from parent's %lld", (long long)pt_ns(a.st_mtim),
          (long long)pt_ns(b.st_mtim));
    return 0;
}

static gid_t sgid_group(pt_ctx *c) { return c->user ? c->supp : c->other_gid; }

static int sgid_inherit(pt_ctx *c)
{
    struct stat st;
    gid_t g = sgid_group(c);
    OK(mkdir("s", 0755));
    OK(chown("s", (uid_t)-1, g));
    OK(chmod("s", 02775));
    OK(stat("s", &st));
    EQ_MODE(st.st_mode, S_IFDIR | 02775);
    EQ(st.st_gid, g);
    /* a subdirectory takes the group and the setgid bit */
    OK(mkdir("s/sub", 0755));
    OK(stat("s/sub", &st));
    EQ(st.st_gid, g);
    EQ_MODE(st.st_mode, S_IFDIR | 02755);
    /* and passes them on */
    OK(mkdir("s/sub/subsub", 0700));
    OK(stat("s/sub/subsub", &st));
    EQ(st.st_gid, g);
    EQ_MODE(st.st_mode, S_IFDIR | 02700);
    /* a file takes the group, not the bit */
    OK(pt_write_file("s/f", "x", 1, 0644));
    OK(stat("s/f", &st));
    EQ(st.st_gid, g);
    EQ(st.st_uid, c->uid);
    EQ_MODE(st.st_mode, S_IFREG | 0644);
    /* so do symlinks, fifos */
    OK(symlink("f", "s/l"));
    OK(lstat("s/l", &st));
    EQ(st.st_gid, g);
    OK(mkfifo("s/fifo", 0644));
    OK(stat("s/fifo", &st));
    EQ(st.st_gid, g);
    /* outside the setgid directory the primary group is used */
    OK(mkdir("plain", 0755));
    OK(stat("plain", &st));
    EQ(st.st_gid, c->gid);
    return 0;
}

static int sgid_file_nonmember(pt_ctx *c)
{
    struct stat st;
    /* A file created executable in a setgid directory whose group the
     * creator is not a member of: the file takes the group but loses
     * S_ISGID if asked for it (chmod later, by the rules of chmod). */
    OK(pt_write_file("s/f", "x", 1, 0755));
    OK(stat("s/f", &st));
    EQ(st.st_gid, c->other_gid);
    EQ_MODE(st.st_mode, S_IFREG | 0755);
    OK(mkdir("s/d", 0755));
    OK(stat("s/d", &st));
    EQ(st.st_gid, c->other_gid);
    EQ_MODE(st.st_mode, S_IFDIR | 02755);
    return 0;
}

static int setup_sgid_other(pt_ctx *c)
{
    OK(mkdir("s", 0777));
    OK(chown("s", c->uid, c->other_gid));
    OK(chmod("s", 02777));
    return 0;
}

static int name_max(pt_ctx *c)
{
    (void)c;
    char n[300];
    memset(n, 'd', 255);
    n[255] = 0;
    OK(mkdir(n, 0755));
    struct stat st;
    OK(stat(n, &st));
    CHECK(S_ISDIR(st.st_mode), "255-byte name is not a directory");
    n[255] = 'd';
    n[256] = 0;
    ERR(mkdir(n, 0755), ENAMETOOLONG);
    return 0;
}

static int setup_rootdir(pt_ctx *c)
{
    (void)c;
    OK(mkdir("rootdir", 0755));
    OK(mkdir("sticky", 0777));
    OK(chmod("sticky", 01777));
    return 0;
}

static int denied(pt_ctx *c)
{
    (void)c;
    ERR(mkdir("rootdir/d", 0755), EACCES);
    OK(mkdir("own", 0755));
    OK(chmod("own", 0555));
    ERR(mkdir("own/d", 0755), EACCES);
    OK(chmod("own", 0355));
    OK(mkdir("own/d", 0755));
    /* anyone may create in a world-writable sticky directory */
    OK(mkdir("sticky/d", 0755));
    return 0;
}

const pt_case pt_mkdir_cases[] = {
    {"mkdir/basic", PT_BOTH, NULL, basic},
    {"mkdir/umask", PT_BOTH, NULL, umask_applied},
    {"mkdir/mode_bits", PT_BOTH, NULL, mode_bits},
    {"mkdir/eexist", PT_BOTH, NULL, eexist},
    {"mkdir/errors", PT_BOTH, NULL, errors},
    {"mkdir/parent_times", PT_BOTH, NULL, parent_times},
    {"mkdir/setgid_inherit", PT_BOTH, NULL, sgid_inherit},
    {"mkdir/setgid_inherit_nonmember", PT_USER, setup_sgid_other, sgid_file_nonmember},
    {"mkdir/name_max", PT_BOTH, NULL, name_max},
    {"mkdir/eacces", PT_USER, setup_rootdir, denied},
    {NULL, 0, NULL, NULL},
};
