/* unlink.c — unlink: names, link counts, parent times, open files, sticky. */
#include "tests/posix/suite.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

static int basic(pt_ctx *c)
{
    (void)c;
    struct stat st;
    OK(pt_write_file("f", "data", 4, 0644));
    OK(unlink("f"));
    ERR(stat("f", &st), ENOENT);
    ERR(unlink("f"), ENOENT);
    OK(pt_write_file("f", "x", 1, 0644));
    OK(stat("f", &st));
    EQ(st.st_size, 1);
    return 0;
}

static int errors(pt_ctx *c)
{
    (void)c;
    OK(mkdir("d", 0755));
    ERR(unlink("d"), EISDIR);
    OK(pt_write_file("f", "x", 1, 0644));
    ERR(unlink("f/x"), ENOTDIR);
    ERR(unlink("nope/x"), ENOENT);
    ERR(unlink(""), ENOENT);
    /* unlinking a symlink removes the link, not its target */
    OK(symlink("f", "l"));
    OK(unlink("l"));
    struct stat st;
    OK(stat("f", &st));
    return 0;
}

static int parent_times(pt_ctx *c)
{
    (void)c;
    struct stat a, b;
    OK(mkdir("p", 0755));
    OK(pt_write_file("p/f", "x", 1, 0644));
    OK(pt_set_times("p", PT_OLD_NS, PT_OLD_NS));
    OK(stat("p", &a));
    pt_wait_past(pt_ns(a.st_ctim));
    OK(unlink("p/f"));
    OK(stat("p", &b));
    CHECK_ADVANCED(b.st_mtim, PT_OLD_NS, "parent mtime after unlink");
    CHECK_ADVANCED(b.st_ctim, pt_ns(a.st_ctim), "parent ctime after unlink");
    return 0;
}

static int nlink_ctime(pt_ctx *c)
{
    (void)c;
    struct stat a, b;
    OK(pt_write_file("f", "x", 1, 0644));
    OK(link("f", "g"));
    OK(pt_set_times("f", PT_OLD_NS, PT_OLD_NS));
    OK(stat("g", &a));
    EQ(a.st_nlink, 2);
    pt_wait_past(pt_ns(a.st_ctim));
    OK(unlink("f"));
    OK(stat("g", &b));
    EQ(b.st_nlink, 1);
    CHECK_ADVANCED(b.st_ctim, pt_ns(a.st_ctim), "ctime of the remaining link after unlink");
    CHECK_SAME_TIME(b.st_mtim, PT_OLD_NS, "mtime of the remaining link after unlink");
    return 0;
}

/* Enough data to span several chunks of a small-chunk file system and
 * leave any inline-data limit behind. */
#define BIG (300 * 1024 + 17)

static int open_file(pt_ctx *c)
{
    (void)c;
    char *buf = malloc(BIG), *got = malloc(BIG);
    CHECK(buf && got, "malloc");
    pt_fill(buf, BIG, 1, 0);
    OK(pt_write_file("f", buf, BIG, 0644));
    int fd = open("f", O_RDWR);
    OK(fd);
    int fd2 = open("f", O_RDONLY);
    OK(fd2);
    OK(unlink("f"));
    struct stat st;
    ERR(stat("f", &st), ENOENT);
    OK(fstat(fd, &st));
    EQ(st.st_nlink, 0);
    EQ(st.st_size, BIG);
    /* still readable */
    EQ(pt_pread_all(fd, got, BIG, 0), BIG);
    long d = pt_check_fill(got, BIG, 1, 0);
    CHECK(d < 0, "read after unlink differs at byte %ld", d);
    /* still writable, including growing it */
    pt_fill(buf, BIG, 2, 100000);
    EQ(pt_pwrite_all(fd, buf, BIG, 100000), BIG);
    OK(fsync(fd));
    OK(fstat(fd, &st));
    EQ(st.st_size, 100000 + BIG);
    /* the other descriptor sees the new bytes */
    EQ(pt_pread_all(fd2, got, BIG, 100000), BIG);
    d = pt_check_fill(got, BIG, 2, 100000);
    CHECK(d < 0, "read through the second fd after unlink+write differs at byte %ld", d);
    EQ(pt_pread_all(fd2, got, 100000, 0), 100000);
    d = pt_check_fill(got, 100000, 1, 0);
    CHECK(d < 0, "old bytes through the second fd differ at byte %ld", d);
    /* a new file under the old name is a different file */
    OK(pt_write_file("f", "new", 3, 0644));
    OK(stat("f", &st));
    EQ(st.st_size, 3);
    OK(close(fd));
    EQ(pt_pread_all(fd2, got, 16, 0), 16);
    d = pt_check_fill(got, 16, 1, 0);
    CHECK(d < 0, "after the first close the last fd reads other bytes at %ld", d);
    OK(close(fd2));
    char small[8];
    EQ(pt_read_file("f", small, sizeof(small)), 3);
    CHECK(memcmp(small, "new", 3) == 0, "new file content wrong");
    free(buf);
    free(got);
    return 0;
}

static int open_file_small(pt_ctx *c)
{
    (void)c;
    char got[64];
    int fd = open("f", O_RDWR | O_CREAT | O_TRUNC, 0644);
    OK(fd);
    EQ(write(fd, "hello", 5), 5);
    OK(unlink("f"));
    EQ(write(fd, " world", 6), 6);
    EQ(pt_pread_all(fd, got, sizeof(got), 0), 11);
    CHECK(memcmp(got, "hello world", 11) == 0, "content after unlink: %.11s", got);
    OK(ftruncate(fd, 5));
    EQ(pt_pread_all(fd, got, sizeof(got), 0), 5);
    struct stat st;
    OK(fstat(fd, &st));
    EQ(st.st_nlink, 0);
    EQ(st.st_size, 5);
    OK(fchmod(fd, 0600));
    OK(fstat(fd, &st));
    EQ_MODE(st.st_mode, S_IFREG | 0600);
    OK(close(fd));
    return 0;
}

static int hardlink_open(pt_ctx *c)
{
    (void)c;
    struct stat st;
    OK(pt_write_file("f", "abc", 3, 0644));
    OK(link("f", "g"));
    int fd = open("f", O_RDWR);
    OK(fd);
    OK(unlink("f"));
    OK(fstat(fd, &st));
    EQ(st.st_nlink, 1);
    EQ(write(fd, "XY", 2), 2);
    OK(close(fd));
    char got[8];
    EQ(pt_read_file("g", got, sizeof(got)), 3);
    CHECK(memcmp(got, "XYc", 3) == 0, "content through the other link: %.3s", got);
    return 0;
}

static int setup_sticky(pt_ctx *c)
{
    OK(mkdir("sticky", 0777));
    OK(chmod("sticky", 01777));
    OK(pt_write_file("sticky/rootfile", "x", 1, 0666));
    OK(chmod("sticky/rootfile", 0666));
    OK(mkdir("mysticky", 0777));
    OK(chown("mysticky", c->uid, c->gid));
    OK(chmod("mysticky", 01777));
    OK(pt_write_file("mysticky/rootfile", "x", 1, 0644));
    OK(mkdir("ro", 0755));
    OK(pt_write_file("ro/f", "x", 1, 0666));
    OK(chmod("ro/f", 0666));
    return 0;
}

static int sticky(pt_ctx *c)
{
    (void)c;
    struct stat st;
    /* someone else's file in someone else's sticky directory */
    ERR(unlink("sticky/rootfile"), EPERM);
    OK(stat("sticky/rootfile", &st));
    /* one's own file there */
    OK(pt_write_file("sticky/mine", "x", 1, 0644));
    OK(unlink("sticky/mine"));
    /* the owner of the sticky directory may remove anything in it */
    OK(unlink("mysticky/rootfile"));
    /* no write permission on the directory: EACCES even with a writable file */
    ERR(unlink("ro/f"), EACCES);
    return 0;
}

const pt_case pt_unlink_cases[] = {
    {"unlink/basic", PT_BOTH, NULL, basic},
    {"unlink/errors", PT_BOTH, NULL, errors},
    {"unlink/parent_times", PT_BOTH, NULL, parent_times},
    {"unlink/nlink_ctime", PT_BOTH, NULL, nlink_ctime},
    {"unlink/open_file_rw", PT_BOTH, NULL, open_file},
    {"unlink/open_file_small", PT_BOTH, NULL, open_file_small},
    {"unlink/hardlink_open", PT_BOTH, NULL, hardlink_open},
    {"unlink/sticky_and_eacces", PT_USER, setup_sticky, sticky},
    {NULL, 0, NULL, NULL},
};
