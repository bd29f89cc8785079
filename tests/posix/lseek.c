/* lseek.c — lseek: SEEK_SET/CUR/END, SEEK_DATA/SEEK_HOLE. */
#include "tests/posix/suite.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#define MiB (1LL << 20)

static int basic(pt_ctx *c)
{
    (void)c;
    int fd = open("f", O_RDWR | O_CREAT, 0644);
    OK(fd);
    EQ(write(fd, "0123456789", 10), 10);
    EQ(lseek(fd, 0, SEEK_CUR), 10);
    EQ(lseek(fd, 3, SEEK_SET), 3);
    char b[4];
    EQ(read(fd, b, 2), 2);
    CHECK(b[0] == '3' && b[1] == '4', "read after SEEK_SET: %.2s", b);
    EQ(lseek(fd, -2, SEEK_END), 8);
    EQ(lseek(fd, 2, SEEK_CUR), 10);
    ERR(lseek(fd, -11, SEEK_END), EINVAL);
    ERR(lseek(fd, 0, 17), EINVAL);
    /* past the end, then write: the gap reads as zeros */
    EQ(lseek(fd, 100000, SEEK_SET), 100000);
    EQ(write(fd, "end", 3), 3);
    struct stat st;
    OK(fstat(fd, &st));
    EQ(st.st_size, 100003);
    char *buf = malloc(100003);
    CHECK(buf, "malloc");
    EQ(pt_pread_all(fd, buf, 100003, 0), 100003);
    long nz = pt_first_nonzero(buf + 10, 100000 - 10);
    CHECK(nz < 0, "gap byte %ld not zero", nz + 10);
    CHECK(memcmp(buf + 100000, "end", 3) == 0, "tail");
    free(buf);
    close(fd);
    return 0;
}

/* What every file system must satisfy, hole support or not. */
static int data_hole_semantics(pt_ctx *c)
{
    (void)c;
    int fd = open("f", O_RDWR | O_CREAT, 0644);
    OK(fd);
    EQ(pwrite(fd, "data", 4, 0), 4);
    OK(ftruncate(fd, 2 * MiB));
    OK(fsync(fd));
    EQ(lseek(fd, 0, SEEK_DATA), 0);
    off_t h = lseek(fd, 0, SEEK_HOLE);
    CHECK(h >= 4 && h <= 2 * MiB, "SEEK_HOLE from 0 = %lld", (long long)h);
    ERR(lseek(fd, 2 * MiB, SEEK_DATA), ENXIO);
    ERR(lseek(fd, 2 * MiB, SEEK_HOLE), ENXIO);
    ERR(lseek(fd, 3 * MiB, SEEK_DATA), ENXIO);
    EQ(lseek(fd, 2 * MiB - 1, SEEK_HOLE), 2 * MiB - 1 >= h ? 2 * MiB - 1 : h);
    close(fd);
    /* an empty file has neither */
    fd = open("e", O_RDWR | O_CREAT, 0644);
    OK(fd);
    ERR(lseek(fd, 0, SEEK_DATA), ENXIO);
    ERR(lseek(fd, 0, SEEK_HOLE), ENXIO);
    close(fd);
    return 0;
}

/* Holes of several MiB are reported as holes. */
static int finds_holes(pt_ctx *c)
{
    (void)c;
    int fd = open("f", O_RDWR | O_CREAT, 0644);
    OK(fd);
    char b[4096];
    pt_fill(b, sizeof(b), 11, 0);
    EQ(pwrite(fd, b, sizeof(b), 0), 4096);
    EQ(pwrite(fd, b, sizeof(b), 8 * MiB), 4096);
    OK(ftruncate(fd, 16 * MiB));
    OK(fsync(fd));
    off_t h = lseek(fd, 0, SEEK_HOLE);
    CHECK(h >= 4096 && h < 8 * MiB, "SEEK_HOLE from 0 = %lld, expected a hole before 8 MiB",
          (long long)h);
    off_t d = lseek(fd, h, SEEK_DATA);
    CHECK(d > h && d <= 8 * MiB, "SEEK_DATA from %lld = %lld, expected the data at 8 MiB",
          (long long)h, (long long)d);
    off_t h2 = lseek(fd, 8 * MiB, SEEK_HOLE);
    CHECK(h2 >= 8 * MiB + 4096 && h2 < 16 * MiB, "SEEK_HOLE from 8 MiB = %lld",
          (long long)h2);
    ERR(lseek(fd, h2, SEEK_DATA), ENXIO);
    close(fd);
    /* a file that is all hole */
    fd = open("g", O_RDWR | O_CREAT, 0644);
    OK(fd);
    OK(ftruncate(fd, 32 * MiB));
    ERR(lseek(fd, 0, SEEK_DATA), ENXIO);
    EQ(lseek(fd, 0, SEEK_HOLE), 0);
    close(fd);
    return 0;
}

/* A punched range of whole MiB becomes a hole. */
static int hole_after_punch(pt_ctx *c)
{
    (void)c;
    size_t n = (size_t)(12 * MiB);
    char *buf = malloc(n);
    CHECK(buf, "malloc");
    pt_fill(buf, n, 12, 0);
    int fd = open("f", O_RDWR | O_CREAT, 0644);
    OK(fd);
    EQ(pt_pwrite_all(fd, buf, n, 0), (ssize_t)n);
    OK(fsync(fd));
    EQ(lseek(fd, 0, SEEK_HOLE), 12 * MiB);
    OK(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4 * MiB, 4 * MiB));
    OK(fsync(fd));
    EQ(lseek(fd, 0, SEEK_HOLE), 4 * MiB);
    EQ(lseek(fd, 4 * MiB, SEEK_DATA), 8 * MiB);
    EQ(lseek(fd, 5 * MiB, SEEK_DATA), 8 * MiB);
    struct stat st;
    OK(fstat(fd, &st));
    EQ(st.st_size, 12 * MiB);
    close(fd);
    free(buf);
    return 0;
}

const pt_case pt_lseek_cases[] = {
    {"lseek/basic", PT_BOTH, NULL, basic},
    {"lseek/data_hole_semantics", PT_BOTH, NULL, data_hole_semantics},
    {"lseek/finds_holes", PT_BOTH, NULL, finds_holes},
    {"lseek/hole_after_punch", PT_BOTH, NULL, hole_after_punch},
    {NULL, 0, NULL, NULL},
};
