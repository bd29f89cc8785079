/* ftruncate.c — ftruncate(2) on descriptors with buffered writes. */
#include "tests/posix/suite.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

/* Data written through the descriptor (possibly still buffered by the
 * client), then cut and extended through the same descriptor. */
static int after_buffered_write(pt_ctx *c)
{
    (void)c;
    enum { N = 150000, CUT = 70000, Z = 100000 };
    char *buf = malloc(N), *got = malloc(N + 1);
    CHECK(buf && got, "malloc");
    pt_fill(buf, N, 7, 0);
    int fd = open("f", O_RDWR | O_CREAT | O_TRUNC, 0644);
    OK(fd);
    EQ(pt_pwrite_all(fd, buf, N, 0), N);
    OK(ftruncate(fd, CUT));
    struct stat st;
    OK(fstat(fd, &st));
    EQ(st.st_size, CUT);
    EQ(pwrite(fd, "Z", 1, Z), 1);
    OK(fstat(fd, &st));
    EQ(st.st_size, Z + 1);
    OK(close(fd));
    EQ(pt_read_file("f", got, N + 1), Z + 1);
    long d = pt_check_fill(got, CUT, 7, 0);
    CHECK(d < 0, "kept bytes differ at %ld", d);
    long nz = pt_first_nonzero(got + CUT, Z - CUT);
    CHECK(nz < 0, "byte %ld between the cut and the new write is not zero", CUT + nz);
    CHECK(got[Z] == 'Z', "last byte %d", got[Z]);
    free(buf);
    free(got);
    return 0;
}

static int extend_then_write(pt_ctx *c)
{
    (void)c;
    char got[300000];
    int fd = open("f", O_RDWR | O_CREAT | O_TRUNC, 0644);
    OK(fd);
    OK(ftruncate(fd, 250000));
    EQ(pwrite(fd, "mid", 3, 123456), 3);
    EQ(pread(fd, got, 10, 249995), 5);
    OK(close(fd));
    EQ(pt_read_file("f", got, sizeof(got)), 250000);
    CHECK(memcmp(got + 123456, "mid", 3) == 0, "middle write lost");
    got[123456] = got[123457] = got[123458] = 0;
    long nz = pt_first_nonzero(got, 250000);
    CHECK(nz < 0, "byte %ld not zero", nz);
    return 0;
}

static int times(pt_ctx *c)
{
    (void)c;
    struct stat a, b;
    int fd = open("f", O_RDWR | O_CREAT | O_TRUNC, 0644);
    OK(fd);
    EQ(write(fd, "0123456789", 10), 10);
    OK(fsync(fd));
    OK(pt_set_times("f", PT_OLD_NS, PT_OLD_NS));
    OK(fstat(fd, &a));
    pt_wait_past(pt_ns(a.st_ctim));
    OK(ftruncate(fd, 3));
    OK(fstat(fd, &b));
    CHECK_ADVANCED(b.st_mtim, PT_OLD_NS, "mtime after ftruncate");
    CHECK_ADVANCED(b.st_ctim, pt_ns(a.st_ctim), "ctime after ftruncate");
    OK(close(fd));
    OK(stat("f", &b));
    CHECK_ADVANCED(b.st_mtim, PT_OLD_NS, "mtime after ftruncate and close");
    EQ(b.st_size, 3);
    return 0;
}

static int errors(pt_ctx *c)
{
    (void)c;
    OK(pt_write_file("f", "abc", 3, 0644));
    int fd = open("f", O_RDONLY);
    OK(fd);
    ERR2(ftruncate(fd, 0), EINVAL, EBADF);
    close(fd);
    fd = open("f", O_WRONLY);
    OK(fd);
    ERR(ftruncate(fd, -1), EINVAL);
    close(fd);
    OK(mkdir("d", 0755));
    fd = open("d", O_RDONLY);
    OK(fd);
    ERR2(ftruncate(fd, 0), EINVAL, EBADF);
    close(fd);
    struct stat st;
    OK(stat("f", &st));
    EQ(st.st_size, 3);
    return 0;
}

static int setup_rootfile(pt_ctx *c)
{
    (void)c;
    OK(pt_write_file("shared", "xyz", 3, 0666));
    OK(chmod("shared", 0666));
    return 0;
}

/* Permission is checked at open: a writable descriptor may truncate a
 * file the caller does not own, and one's own read-only file opened for
 * writing before chmod stays truncatable. */
static int open_decides(pt_ctx *c)
{
    (void)c;
    struct stat st;
    int fd = open("shared", O_WRONLY);
    OK(fd);
    OK(ftruncate(fd, 1));
    close(fd);
    OK(stat("shared", &st));
    EQ(st.st_size, 1);
    fd = open("mine", O_RDWR | O_CREAT, 0644);
    OK(fd);
    EQ(write(fd, "abcdef", 6), 6);
    OK(fchmod(fd, 0444));
    OK(ftruncate(fd, 2));
    close(fd);
    OK(stat("mine", &st));
    EQ(st.st_size, 2);
    return 0;
}

const pt_case pt_ftruncate_cases[] = {
    {"ftruncate/after_buffered_write", PT_BOTH, NULL, after_buffered_write},
    {"ftruncate/extend_then_write", PT_BOTH, NULL, extend_then_write},
    {"ftruncate/times", PT_BOTH, NULL, times},
    {"ftruncate/errors", PT_BOTH, NULL, errors},
    {"ftruncate/permission_at_open", PT_USER, setup_rootfile, open_decides},
    {NULL, 0, NULL, NULL},
};
