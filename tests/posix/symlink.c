/* symlink.c — symlink, readlink: targets of any length up to PATH_MAX. */
#include "tests/posix/suite.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int basic(pt_ctx *c)
{
    struct stat st;
    char buf[64];
    OK(pt_write_file("f", "target data", 11, 0644));
    OK(symlink("f", "l"));
    OK(lstat("l", &st));
    CHECK(S_ISLNK(st.st_mode), "lstat mode 0%o is not a symlink", st.st_mode);
    EQ_MODE(st.st_mode & 07777, 0777);
    EQ(st.st_size, 1);
    EQ(st.st_uid, c->uid);
    EQ(st.st_gid, c->gid);
    EQ(st.st_nlink, 1);
    EQ(readlink("l", buf, sizeof(buf)), 1);
    CHECK(buf[0] == 'f', "readlink gave %c", buf[0]);
    OK(stat("l", &st));
    CHECK(S_ISREG(st.st_mode), "stat through the link is not the file");
    EQ(st.st_size, 11);
    char data[16];
    EQ(pt_read_file("l", data, sizeof(data)), 11);
    CHECK(memcmp(data, "target data", 11) == 0, "read through the link");
    return 0;
}

static int one_length(size_t len)
{
    char *t = malloc(len + 1), *got = malloc(PATH_MAX + 1);
    CHECK(t && got, "malloc");
    for (size_t i = 0; i < len; i++)
        t[i] = (i % 64 == 63) ? '/' : (char)('a' + (i * 7 + len) % 26);
    t[len] = 0;
    char name[32];
    snprintf(name, sizeof(name), "l%zu", len);
    OK(symlink(t, name));
    struct stat st;
    OK(lstat(name, &st));
    EQ(st.st_size, (off_t)len);
    ssize_t n = readlink(name, got, PATH_MAX + 1);
    EQ(n, (ssize_t)len);
    CHECK(memcmp(got, t, len) == 0, "target of length %zu read back differently", len);
    free(t);
    free(got);
    return 0;
}

static int lengths(pt_ctx *c)
{
    (void)c;
    static const size_t lens[] = {1, 2, 59, 60, 61, 127, 255, 256, 511, 1000,
                                  2048, 4000, 4094, PATH_MAX - 1};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
        if (one_length(lens[i]))
            return 1;
    return 0;
}

static int too_long(pt_ctx *c)
{
    (void)c;
    char *t = malloc(PATH_MAX + 2);
    CHECK(t, "malloc");
    memset(t, 'x', PATH_MAX);
    t[PATH_MAX] = 0;
    ERR(symlink(t, "l"), ENAMETOOLONG);
    struct stat st;
    ERR(lstat("l", &st), ENOENT);
    free(t);
    return 0;
}

static int dangling_and_loop(pt_ctx *c)
{
    (void)c;
    struct stat st;
    OK(symlink("nowhere", "dangling"));
    ERR(stat("dangling", &st), ENOENT);
    OK(lstat("dangling", &st));
    /* O_CREAT through a dangling link creates the target */
    int fd = open("dangling", O_WRONLY | O_CREAT, 0644);
    OK(fd);
    close(fd);
    OK(stat("nowhere", &st));
    OK(symlink("b", "a"));
    OK(symlink("a", "b"));
    ERR(open("a", O_RDONLY), ELOOP);
    ERR(stat("a", &st), ELOOP);
    OK(symlink("self", "self"));
    ERR(stat("self", &st), ELOOP);
    return 0;
}

static int errors(pt_ctx *c)
{
    (void)c;
    char buf[16];
    OK(pt_write_file("f", "x", 1, 0644));
    ERR(symlink("x", "f"), EEXIST);
    OK(symlink("x", "l"));
    ERR(symlink("y", "l"), EEXIST);
    ERR(symlink("", "empty"), ENOENT);
    ERR(readlink("f", buf, sizeof(buf)), EINVAL);
    ERR(readlink("nope", buf, sizeof(buf)), ENOENT);
    ERR(symlink("x", "nodir/l"), ENOENT);
    ERR(open("l", O_RDONLY | O_NOFOLLOW), ELOOP);
    char n[300];
    memset(n, 's', 256);
    n[256] = 0;
    ERR(symlink("x", n), ENAMETOOLONG);
    return 0;
}

static int short_buffer(pt_ctx *c)
{
    (void)c;
    char buf[8];
    memset(buf, '#', sizeof(buf));
    OK(symlink("abcdefghij", "l"));
    EQ(readlink("l", buf, 4), 4);
    CHECK(memcmp(buf, "abcd##", 6) == 0, "readlink with a short buffer wrote %.6s", buf);
    return 0;
}

static int relative_dirs(pt_ctx *c)
{
    (void)c;
    struct stat st;
    OK(mkdir("a", 0755));
    OK(mkdir("a/b", 0755));
    OK(pt_write_file("a/b/f", "deep", 4, 0644));
    OK(symlink("a/b", "lb"));
    OK(symlink("../../lb/f", "a/b/up"));
    OK(stat("lb/f", &st));
    EQ(st.st_size, 4);
    OK(stat("a/b/up", &st));
    EQ(st.st_size, 4);
    /* an absolute target */
    char abs[PATH_MAX];
    snprintf(abs, sizeof(abs), "%s/a/b/f", c->dir);
    OK(symlink(abs, "absl"));
    OK(stat("absl", &st));
    EQ(st.st_size, 4);
    /* a trailing slash follows a link to a directory */
    OK(stat("lb/", &st));
    CHECK(S_ISDIR(st.st_mode), "lb/ is not a directory");
    return 0;
}

const pt_case pt_symlink_cases[] = {
    {"symlink/basic", PT_BOTH, NULL, basic},
    {"symlink/lengths_to_path_max", PT_BOTH, NULL, lengths},
    {"symlink/path_max_enametoolong", PT_BOTH, NULL, too_long},
    {"symlink/dangling_and_loop", PT_BOTH, NULL, dangling_and_loop},
    {"symlink/errors", PT_BOTH, NULL, errors},
    {"symlink/readlink_short_buffer", PT_BOTH, NULL, short_buffer},
    {"symlink/relative_dirs", PT_BOTH, NULL, relative_dirs},
    {NULL, 0, NULL, NULL},
};
