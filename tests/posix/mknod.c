/* mknod.c — mknod, mkfifo, unix sockets: special files as records. */
#include "tests/posix/suite.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

static int fifo(pt_ctx *c)
{
    struct stat st;
    OK(mkfifo("p", 0666));
    OK(stat("p", &st));
    EQ_MODE(st.st_mode, S_IFIFO | 0644);
    EQ(st.st_uid, c->uid);
    EQ(st.st_gid, c->gid);
    EQ(st.st_size, 0);
    umask(0);
    OK(mknod("q", S_IFIFO | 0620, 0));
    OK(stat("q", &st));
    EQ_MODE(st.st_mode, S_IFIFO | 0620);
    ERR(mkfifo("p", 0644), EEXIST);
    /* data flows through it (nonblocking open of the read end first) */
    int r = open("p", O_RDONLY | O_NONBLOCK);
    OK(r);
    int w = open("p", O_WRONLY | O_NONBLOCK);
    OK(w);
    EQ(write(w, "through the fifo", 16), 16);
    char buf[32];
    EQ(read(r, buf, sizeof(buf)), 16);
    CHECK(memcmp(buf, "through the fifo", 16) == 0, "fifo data");
    close(w);
    close(r);
    /* nothing was stored in the file */
    OK(stat("p", &st));
    EQ(st.st_size, 0);
    OK(unlink("p"));
    return 0;
}

static int sock(pt_ctx *c)
{
    (void)c;
    struct stat st;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", "s");
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    OK(s);
    OK(bind(s, (struct sockaddr *)&sa, sizeof(sa)));
    OK(listen(s, 1));
    OK(lstat("s", &st));
    CHECK(S_ISSOCK(st.st_mode), "bound socket has mode 0%o", st.st_mode);
    int cl = socket(AF_UNIX, SOCK_STREAM, 0);
    OK(cl);
    OK(connect(cl, (struct sockaddr *)&sa, sizeof(sa)));
    int a = accept(s, NULL, NULL);
    OK(a);
    EQ(write(cl, "ping", 4), 4);
    char buf[8];
    EQ(read(a, buf, sizeof(buf)), 4);
    close(a);
    close(cl);
    close(s);
    OK(unlink("s"));
    /* mknod of a socket record */
    OK(mknod("s2", S_IFSOCK | 0600, 0));
    OK(lstat("s2", &st));
    EQ_MODE(st.st_mode, S_IFSOCK | 0600);
    return 0;
}

static int devices(pt_ctx *c)
{
    (void)c;
    struct stat st;
    umask(0);
    OK(mknod("null", S_IFCHR | 0666, makedev(1, 3)));
    OK(lstat("null", &st));
    EQ_MODE(st.st_mode, S_IFCHR | 0666);
    EQ(major(st.st_rdev), 1);
    EQ(minor(st.st_rdev), 3);
    EQ(st.st_size, 0);
    OK(mknod("blk", S_IFBLK | 0640, makedev(259, 70000)));
    OK(lstat("blk", &st));
    EQ_MODE(st.st_mode, S_IFBLK | 0640);
    EQ(major(st.st_rdev), 259);
    EQ(minor(st.st_rdev), 70000);
    OK(chmod("blk", 0600));
    OK(lstat("blk", &st));
    EQ_MODE(st.st_mode, S_IFBLK | 0600);
    EQ(minor(st.st_rdev), 70000);
    OK(rename("blk", "blk2"));
    OK(lstat("blk2", &st));
    EQ(major(st.st_rdev), 259);
    OK(link("blk2", "blk3"));
    OK(lstat("blk3", &st));
    EQ(st.st_nlink, 2);
    return 0;
}

static int regular(pt_ctx *c)
{
    (void)c;
    struct stat st;
    OK(mknod("f", S_IFREG | 0640, 0));
    OK(stat("f", &st));
    EQ_MODE(st.st_mode, S_IFREG | 0640);
    EQ(st.st_size, 0);
    OK(pt_write_file("f", "abc", 3, 0644));
    OK(stat("f", &st));
    EQ(st.st_size, 3);
    ERR(mknod("f", S_IFREG | 0640, 0), EEXIST);
    ERR(mknod("nodir/f", S_IFIFO | 0640, 0), ENOENT);
    return 0;
}

static int user_devices(pt_ctx *c)
{
    (void)c;
    ERR(mknod("null", S_IFCHR | 0666, makedev(1, 3)), EPERM);
    ERR(mknod("blk", S_IFBLK | 0666, makedev(8, 0)), EPERM);
    OK(mkfifo("p", 0600));
    OK(mknod("s", S_IFSOCK | 0600, 0));
    return 0;
}

const pt_case pt_mknod_cases[] = {
    {"mknod/fifo", PT_BOTH, NULL, fifo},
    {"mknod/socket", PT_BOTH, NULL, sock},
    {"mknod/devices", PT_ROOT, NULL, devices},
    {"mknod/regular", PT_BOTH, NULL, regular},
    {"mknod/user_devices_eperm", PT_USER, NULL, user_devices},
    {NULL, 0, NULL, NULL},
};
