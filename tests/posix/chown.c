/* chown.c — chown, fchown, lchown: who may change owner and group. */
#include "tests/posix/suite.h"

#include <fcntl.h>
#include <unistd.h>

static int root_owner(pt_ctx *c)
{
    struct stat st;
    OK(pt_write_file("f", "x", 1, 0644));
    OK(chown("f", c->other_uid, c->other_gid));
    OK(stat("f", &st));
    EQ(st.st_uid, c->other_uid);
    EQ(st.st_gid, c->other_gid);
    EQ_MODE(st.st_mode, S_IFREG | 0644);
    OK(chown("f", 0, 0));
    OK(stat("f", &st));
    EQ(st.st_uid, 0);
    EQ(st.st_gid, 0);
    OK(mkdir("d", 0755));
    OK(chown("d", c->other_uid, c->other_gid));
    OK(stat("d", &st));
    EQ(st.st_uid, c->other_uid);
    EQ(st.st_gid, c->other_gid);
    return 0;
}

static int minus_one(pt_ctx *c)
{
    struct stat st;
    OK(pt_write_file("f", "x", 1, 0644));
    OK(chown("f", c->other_uid, (gid_t)-1));
    OK(stat("f", &st));
    EQ(st.st_uid, c->other_uid);
    EQ(st.st_gid, 0);
    OK(chown("f", (uid_t)-1, c->other_gid));
    OK(stat("f", &st));
    EQ(st.st_uid, c->other_uid);
    EQ(st.st_gid, c->other_gid);
    return 0;
}

static int ctime_changes(pt_ctx *c)
{
    struct stat a, b;
    OK(pt_write_file("f", "x", 1, 0644));
    OK(pt_set_times("f", PT_OLD_NS, PT_OLD_NS));
    OK(stat("f", &a));
    pt_wait_past(pt_ns(a.st_ctim));
    OK(chown("f", c->other_uid, c->other_gid));
    OK(stat("f", &b));
    CHECK_ADVANCED(b.st_ctim, pt_ns(a.st_ctim), "ctime after chown");
    CHECK_SAME_TIME(b.st_mtim, PT_OLD_NS, "mtime after chown");
    return 0;
}

static int lchown_link(pt_ctx *c)
{
    struct stat st;
    OK(pt_write_file("f", "x", 1, 0644));
    OK(symlink("f", "l"));
    OK(lchown("l", c->other_uid, c->other_gid));
    OK(lstat("l", &st));
    EQ(st.st_uid, c->other_uid);
    EQ(st.st_gid, c->other_gid);
    OK(stat("f", &st));
    EQ(st.st_uid, 0);
    EQ(st.st_gid, 0);
    /* chown follows the link */
    OK(chown("l", c->other_uid, (gid_t)-1));
    OK(stat("f", &st));
    EQ(st.st_uid, c->other_uid);
    return 0;
}

static int fchown_fd(pt_ctx *c)
{
    struct stat st;
    int fd = open("f", O_RDWR | O_CREAT, 0600);
    OK(fd);
    OK(fchown(fd, c->other_uid, c->other_gid));
    OK(fstat(fd, &st));
    EQ(st.st_uid, c->other_uid);
    EQ(st.st_gid, c->other_gid);
    /* root still writes to the file it no longer owns */
    EQ(write(fd, "abc", 3), 3);
    OK(close(fd));
    OK(stat("f", &st));
    EQ(st.st_uid, c->other_uid);
    EQ(st.st_size, 3);
    return 0;
}

static int clears_suid_root(pt_ctx *c)
{
    struct stat st;
    OK(pt_write_file("f", "x", 1, 0644));
    OK(chmod("f", 06755));
    OK(chown("f", c->other_uid, c->other_gid));
    OK(stat("f", &st));
    /* set-user-ID and (group-executable) set-group-ID are cleared */
    EQ_MODE(st.st_mode, S_IFREG | 0755);
    OK(mkdir("d", 0755));
    OK(chmod("d", 02755));
    OK(chown("d", c->other_uid, c->other_gid));
    OK(stat("d", &st));
    EQ_MODE(st.st_mode, S_IFDIR | 02755);
    return 0;
}

static int user_give_away(pt_ctx *c)
{
    struct stat st;
    OK(pt_write_file("f", "x", 1, 0644));
    ERR(chown("f", c->other_uid, (gid_t)-1), EPERM);
    ERR(chown("f", 0, (gid_t)-1), EPERM);
    OK(stat("f", &st));
    EQ(st.st_uid, c->uid);
    /* to one's own uid is allowed (a no-op) */
    OK(chown("f", c->uid, (gid_t)-1));
    OK(chown("f", (uid_t)-1, (gid_t)-1));
    return 0;
}

static int user_member_group(pt_ctx *c)
{
    struct stat st, a;
    OK(pt_write_file("f", "x", 1, 0644));
    OK(stat("f", &a));
    EQ(a.st_gid, c->gid);
    pt_wait_past(pt_ns(a.st_ctim));
    OK(chown("f", (uid_t)-1, c->supp));
    OK(stat("f", &st));
    EQ(st.st_uid, c->uid);
    EQ(st.st_gid, c->supp);
    CHECK_ADVANCED(st.st_ctim, pt_ns(a.st_ctim), "ctime after chgrp");
    OK(chown("f", c->uid, c->gid));
    OK(stat("f", &st));
    EQ(st.st_gid, c->gid);
    int fd = open("f", O_RDONLY);
    OK(fd);
    OK(fchown(fd, (uid_t)-1, c->supp));
    close(fd);
    OK(stat("f", &st));
    EQ(st.st_gid, c->supp);
    return 0;
}

static int user_nonmember_group(pt_ctx *c)
{
    struct stat st;
    OK(pt_write_file("f", "x", 1, 0644));
    ERR(chown("f", (uid_t)-1, c->other_gid), EPERM);
    ERR(chown("f", (uid_t)-1, 0), EPERM);
    OK(stat("f", &st));
    EQ(st.st_gid, c->gid);
    return 0;
}

static int setup_rootfile(pt_ctx *c)
{
    (void)c;
    OK(pt_write_file("rootfile", "x", 1, 0666));
    OK(chmod("rootfile", 0666));
    return 0;
}

static int user_not_owner(pt_ctx *c)
{
    struct stat st;
    /* write permission is not ownership */
    ERR(chown("rootfile", (uid_t)-1, c->gid), EPERM);
    ERR(chown("rootfile", c->uid, (gid_t)-1), EPERM);
    OK(stat("rootfile", &st));
    EQ(st.st_uid, 0);
    EQ(st.st_gid, 0);
    return 0;
}

static int user_clears_suid(pt_ctx *c)
{
    struct stat st;
    OK(pt_write_file("f", "x", 1, 0644));
    OK(chmod("f", 06755));
    OK(stat("f", &st));
    EQ_MODE(st.st_mode, S_IFREG | 06755);
    OK(chown("f", (uid_t)-1, c->supp));
    OK(stat("f", &st));
    EQ_MODE(st.st_mode, S_IFREG | 0755);
    EQ(st.st_gid, c->supp);
    return 0;
}

static int errors(pt_ctx *c)
{
    ERR(chown("nope", c->uid, c->gid), ENOENT);
    ERR(lchown("nope", c->uid, c->gid), ENOENT);
    OK(symlink("nope", "dangling"));
    ERR(chown("dangling", c->uid, c->gid), ENOENT);
    OK(lchown("dangling", c->uid, c->gid));
    return 0;
}

const pt_case pt_chown_cases[] = {
    {"chown/root_sets_owner", PT_ROOT, NULL, root_owner},
    {"chown/minus_one_keeps", PT_ROOT, NULL, minus_one},
    {"chown/ctime", PT_ROOT, NULL, ctime_changes},
    {"chown/lchown_symlink", PT_ROOT, NULL, lchown_link},
    {"chown/fchown", PT_ROOT, NULL, fchown_fd},
    {"chown/clears_suid_root", PT_ROOT, NULL, clears_suid_root},
    {"chown/user_cannot_give_away", PT_USER, NULL, user_give_away},
    {"chown/user_member_group", PT_USER, NULL, user_member_group},
    {"chown/user_nonmember_group_eperm", PT_USER, NULL, user_nonmember_group},
    {"chown/user_not_owner_eperm", PT_USER, setup_rootfile, user_not_owner},
    {"chown/user_clears_suid", PT_USER, NULL, user_clears_suid},
    {"chown/errors", PT_BOTH, NULL, errors},
    {NULL, 0, NULL, NULL},
};
