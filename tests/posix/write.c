/* write.c — write, pwrite, read, fsync: offsets, EOF, privilege bits. */
#include "tests/posix/suite.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

static int offsets(pt_ctx *c)
{
    (void)c;
    int fd = open("f", O_RDWR | O_CREAT | O_TRUNC, 0644);
    OK(fd);
    EQ(write(fd, "0123456789", 10), 10);
    EQ(pwrite(fd, "AB", 2, 3), 2);
    EQ(lseek(fd, 0, SEEK_CUR), 10); /* pwrite leaves the offset */
    char b[32];
    EQ(pread(fd, b, 5, 2), 5);
    CHECK(memcmp(b, "2AB56", 5) == 0, "pread %.5s", b);
    EQ(lseek(fd, 0, SEEK_CUR), 10);
    EQ(read(fd, b, sizeof(b)), 0); /* at EOF */
    OK(lseek(fd, 7, SEEK_SET));
    EQ(read(fd, b, sizeof(b)), 3); /* short read across EOF */
    EQ(write(fd, "", 0), 0);
    struct stat st;
    OK(fstat(fd, &st));
    EQ(st.st_size, 10);
    close(fd);
    return 0;
}

/* Overwrites inside, across and at the end of existing data, checked
 * against the expected image. */
static int overwrite_patterns(pt_ctx *c)
{
    (void)c;
    const size_t n = 600000;
    char *img = malloc(n), *got = malloc(n);
    CHECK(img && got, "malloc");
    pt_fill(img, n, 51, 0);
    int fd = open("f", O_RDWR | O_CREAT | O_TRUNC, 0644);
    OK(fd);
    EQ(pt_pwrite_all(fd, img, n, 0), (ssize_t)n);
    OK(close(fd));
    static const size_t at[][2] = {{0, 1},        {65535, 2},     {65536, 65536},
                                   {131071, 100000}, {4095, 4098}, {599999, 1},
                                   {300000, 1},   {200000, 250000}};
    fd = open("f", O_RDWR);
    OK(fd);
    for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
        pt_fill(img + at[i][0], at[i][1], 52 + i, at[i][0]);
        EQ(pt_pwrite_all(fd, img + at[i][0], at[i][1], (off_t)at[i][0]), (ssize_t)at[i][1]);
    }
    EQ(pt_pread_all(fd, got, n, 0), (ssize_t)n);
    for (size_t i = 0; i < n; i++)
        CHECK(got[i] == img[i], "byte %zu differs before close", i);
    OK(close(fd));
    EQ(pt_read_file("f", got, n), (ssize_t)n);
    for (size_t i = 0; i < n; i++)
        CHECK(got[i] == img[i], "byte %zu differs after close", i);
    free(img);
    free(got);
    return 0;
}

static int syncs(pt_ctx *c)
{
    (void)c;
    int fd = open("f", O_RDWR | O_CREAT | O_TRUNC | O_SYNC, 0644);
    OK(fd);
    EQ(write(fd, "sync", 4), 4);
    OK(fsync(fd));
    OK(fdatasync(fd));
    OK(sync_file_range(fd, 0, 4, SYNC_FILE_RANGE_WRITE));
    close(fd);
    fd = open(".", O_RDONLY | O_DIRECTORY);
    OK(fd);
    OK(fsync(fd));
    close(fd);
    fd = open("f", O_RDONLY);
    OK(fd);
    OK(fsync(fd));
    OK(syncfs(fd));
    close(fd);
    return 0;
}

/* f's mode is want (a macro, so that a failure names the caller's line). */
#define MODE_IS(want)                                                                       \
    do {                                                                                    \
        struct stat mode_st_;                                                               \
        OK(stat("f", &mode_st_));                                                           \
        EQ_MODE(mode_st_.st_mode, (want));                                                  \
    } while (0)

/* f made set-user-ID (04755) and opened with flags: a descriptor or -1. */
static int open_suid(int flags)
{
    return chmod("f", 04755) < 0 ? -1 : open("f", flags);
}

static int clears_suid_user(pt_ctx *c)
{
    (void)c;
    struct stat st;
    OK(pt_write_file("f", "x", 1, 0644));
    OK(chmod("f", 06755));
    int fd = open("f", O_WRONLY);
    OK(fd);
    EQ(write(fd, "y", 1), 1);
    close(fd);
    MODE_IS(S_IFREG | 0755);
    /* a truncate does the same */
    OK(chmod("f", 04755));
    OK(truncate("f", 0));
    MODE_IS(S_IFREG | 0755);
    /* so do an open with O_TRUNC, an fallocate and a copy_file_range into it */
    fd = open_suid(O_WRONLY | O_TRUNC);
    OK(fd);
    close(fd);
    MODE_IS(S_IFREG | 0755);
    fd = open_suid(O_WRONLY);
    OK(fd);
    OK(fallocate(fd, 0, 0, 8192));
    close(fd);
    MODE_IS(S_IFREG | 0755);
    OK(stat("f", &st));
    EQ(st.st_size, 8192);
    OK(pt_write_file("src", "abc", 3, 0644));
    int in = open("src", O_RDONLY);
    OK(in);
    fd = open_suid(O_WRONLY);
    OK(fd);
    EQ(copy_file_range(in, NULL, fd, NULL, 3, 0), 3);
    close(fd);
    close(in);
    MODE_IS(S_IFREG | 0755);
    /* setgid without group execute is not a set-group-ID program: kept */
    OK(chmod("f", 02644));
    fd = open("f", O_WRONLY);
    OK(fd);
    EQ(write(fd, "z", 1), 1);
    close(fd);
    MODE_IS(S_IFREG | 02644);
    return 0;
}

static int setup_suid_rootfile(pt_ctx *c)
{
    (void)c;
    OK(pt_write_file("f", "x", 1, 0666));
    OK(chmod("f", 04777));
    return 0;
}

static int clears_suid_other(pt_ctx *c)
{
    (void)c;
    struct stat st;
    int fd = open("f", O_WRONLY);
    OK(fd);
    EQ(write(fd, "y", 1), 1);
    close(fd);
    OK(stat("f", &st));
    EQ_MODE(st.st_mode, S_IFREG | 0777);
    return 0;
}

static int root_keeps_suid(pt_ctx *c)
{
    (void)c;
    struct stat st;
    OK(pt_write_file("f", "x", 1, 0644));
    OK(chmod("f", 06755));
    int fd = open("f", O_WRONLY);
    OK(fd);
    EQ(write(fd, "y", 1), 1);
    close(fd);
    OK(stat("f", &st));
    EQ_MODE(st.st_mode, S_IFREG | 06755);
    return 0;
}

const pt_case pt_write_cases[] = {
    {"write/offsets_and_eof", PT_BOTH, NULL, offsets},
    {"write/overwrite_patterns", PT_BOTH, NULL, overwrite_patterns},
    {"write/fsync_variants", PT_BOTH, NULL, syncs},
    {"write/clears_suid_sgid", PT_USER, NULL, clears_suid_user},
    {"write/clears_suid_of_others_file", PT_USER, setup_suid_rootfile, clears_suid_other},
    {"write/root_keeps_suid", PT_ROOT, NULL, root_keeps_suid},
    {NULL, 0, NULL, NULL},
};
