/* size.c — file sizes: above 4 GiB, sparse files, fallocate. */
#include "tests/posix/suite.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#define MiB (1LL << 20)
#define GiB (1LL << 30)

static int over_4g(pt_ctx *c)
{
    (void)c;
    const off_t a = 4 * GiB - 512 * 1024; /* 1 MiB across the 4 GiB line */
    const off_t b = 6 * GiB + 123;
    char *buf = malloc(MiB), *got = malloc(MiB);
    CHECK(buf && got, "malloc");
    int fd = open("big", O_RDWR | O_CREAT | O_TRUNC, 0644);
    OK(fd);
    pt_fill(buf, MiB, 41, (uint64_t)a);
    EQ(pt_pwrite_all(fd, buf, MiB, a), MiB);
    pt_fill(buf, 4096, 42, (uint64_t)b);
    EQ(pt_pwrite_all(fd, buf, 4096, b), 4096);
    struct stat st;
    OK(fstat(fd, &st));
    EQ(st.st_size, b + 4096);
    OK(close(fd));
    OK(stat("big", &st));
    EQ(st.st_size, b + 4096);
    fd = open("big", O_RDONLY);
    OK(fd);
    EQ(pt_pread_all(fd, got, MiB, a), MiB);
    long d = pt_check_fill(got, MiB, 41, (uint64_t)a);
    CHECK(d < 0, "data across 4 GiB differs at %lld", (long long)a + d);
    EQ(pt_pread_all(fd, got, 4096, b), 4096);
    d = pt_check_fill(got, 4096, 42, (uint64_t)b);
    CHECK(d < 0, "data at 6 GiB differs at %lld", (long long)b + d);
    /* holes read as zeros: before, between and around */
    static const off_t holes[] = {0, 2 * GiB, 4 * GiB + 512 * 1024, 5 * GiB, 6 * GiB - 65536};
    for (size_t i = 0; i < sizeof(holes) / sizeof(holes[0]); i++) {
        EQ(pt_pread_all(fd, got, 65536, holes[i]), 65536);
        long nz = pt_first_nonzero(got, 65536);
        CHECK(nz < 0, "hole byte at %lld is not zero", (long long)holes[i] + nz);
    }
    /* reading at EOF gives 0, across EOF a short count */
    EQ(pread(fd, got, 100, b + 4096), 0);
    EQ(pread(fd, got, 100, b + 4096 - 10), 10);
    close(fd);
    /* truncating down across the 4 GiB line and back */
    OK(truncate("big", 4 * GiB + 10));
    OK(stat("big", &st));
    EQ(st.st_size, 4 * GiB + 10);
    OK(truncate("big", 4 * GiB + MiB));
    fd = open("big", O_RDONLY);
    OK(fd);
    EQ(pt_pread_all(fd, got, MiB, 4 * GiB), MiB);
    pt_fill(buf, 10, 41, (uint64_t)(4 * GiB));
    CHECK(memcmp(got, buf, 10) == 0, "bytes below the cut changed");
    long nz = pt_first_nonzero(got + 10, MiB - 10);
    CHECK(nz < 0, "byte %lld resurrected above 4 GiB", 4 * GiB + 10 + nz);
    close(fd);
    free(buf);
    free(got);
    return 0;
}

static int sparse(pt_ctx *c)
{
    (void)c;
    int fd = open("s", O_RDWR | O_CREAT | O_TRUNC, 0644);
    OK(fd);
    EQ(pwrite(fd, "head", 4, 0), 4);
    EQ(pwrite(fd, "tail", 4, 20 * MiB), 4);
    OK(close(fd));
    struct stat st;
    OK(stat("s", &st));
    EQ(st.st_size, 20 * MiB + 4);
    char *got = malloc(20 * MiB + 4);
    CHECK(got, "malloc");
    EQ(pt_read_file("s", got, 20 * MiB + 4), 20 * MiB + 4);
    CHECK(memcmp(got, "head", 4) == 0 && memcmp(got + 20 * MiB, "tail", 4) == 0, "data");
    long nz = pt_first_nonzero(got + 4, 20 * MiB - 4);
    CHECK(nz < 0, "hole byte %ld not zero", 4 + nz);
    free(got);
    return 0;
}

/* st_blocks tells a sparse file (du, tar --sparse, cp --sparse=auto). */
static int sparse_blocks(pt_ctx *c)
{
    (void)c;
    int fd = open("s", O_RDWR | O_CREAT | O_TRUNC, 0644);
    OK(fd);
    EQ(pwrite(fd, "head", 4, 0), 4);
    EQ(pwrite(fd, "tail", 4, 40 * MiB), 4);
    OK(close(fd));
    struct stat st;
    OK(stat("s", &st));
    EQ(st.st_size, 40 * MiB + 4);
    CHECK((long long)st.st_blocks * 512 <= 8 * MiB + 65536,
          "40 MiB sparse file with 8 bytes of data occupies %lld bytes (st_blocks %lld)",
          (long long)st.st_blocks * 512, (long long)st.st_blocks);
    return 0;
}

static int falloc_extend(pt_ctx *c)
{
    (void)c;
    int fd = open("f", O_RDWR | O_CREAT | O_TRUNC, 0644);
    OK(fd);
    EQ(write(fd, "abc", 3), 3);
    OK(fallocate(fd, 0, 0, 100000));
    struct stat st;
    OK(fstat(fd, &st));
    EQ(st.st_size, 100000);
    char got[100000];
    EQ(pt_pread_all(fd, got, sizeof(got), 0), 100000);
    CHECK(memcmp(got, "abc", 3) == 0, "data before fallocate");
    long nz = pt_first_nonzero(got + 3, 100000 - 3);
    CHECK(nz < 0, "allocated byte %ld not zero", 3 + nz);
    /* inside the file: the size stays */
    OK(fallocate(fd, 0, 10, 100));
    OK(fstat(fd, &st));
    EQ(st.st_size, 100000);
    /* KEEP_SIZE beyond EOF: the size stays */
    OK(fallocate(fd, FALLOC_FL_KEEP_SIZE, 100000, 50000));
    OK(fstat(fd, &st));
    EQ(st.st_size, 100000);
    ERR(fallocate(fd, 0, -1, 10), EINVAL);
    ERR(fallocate(fd, 0, 0, 0), EINVAL);
    close(fd);
    return 0;
}

static int punch(pt_ctx *c)
{
    (void)c;
    size_t n = 300000;
    char *buf = malloc(n), *got = malloc(n);
    CHECK(buf && got, "malloc");
    pt_fill(buf, n, 43, 0);
    int fd = open("f", O_RDWR | O_CREAT | O_TRUNC, 0644);
    OK(fd);
    EQ(pt_pwrite_all(fd, buf, n, 0), (ssize_t)n);
    /* unaligned, across 64 KiB boundaries */
    OK(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 60000, 80001));
    /* past EOF: the size stays */
    OK(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 290000, 50000));
    struct stat st;
    OK(fstat(fd, &st));
    EQ(st.st_size, (off_t)n);
    EQ(pt_pread_all(fd, got, n, 0), (ssize_t)n);
    memset(buf + 60000, 0, 80001);
    memset(buf + 290000, 0, n - 290000);
    for (size_t i = 0; i < n; i++)
        CHECK(got[i] == buf[i], "byte %zu is %d, expected %d after punching", i, got[i],
              buf[i]);
    /* PUNCH_HOLE without KEEP_SIZE is invalid */
    ERR(fallocate(fd, FALLOC_FL_PUNCH_HOLE, 0, 10), EOPNOTSUPP);
    OK(close(fd));
    EQ(pt_read_file("f", got, n), (ssize_t)n);
    for (size_t i = 0; i < n; i++)
        CHECK(got[i] == buf[i], "byte %zu is %d, expected %d after close", i, got[i], buf[i]);
    free(buf);
    free(got);
    return 0;
}

const pt_case pt_size_cases[] = {
    {"size/over_4gib", PT_BOTH, NULL, over_4g},
    {"size/sparse_holes_zero", PT_BOTH, NULL, sparse},
    {"size/sparse_st_blocks", PT_BOTH, NULL, sparse_blocks},
    {"fallocate/extend_and_keep_size", PT_BOTH, NULL, falloc_extend},
    {"fallocate/punch_hole", PT_BOTH, NULL, punch},
    {NULL, 0, NULL, NULL},
};
