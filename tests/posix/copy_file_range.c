/* copy_file_range.c — copies between files of the same file system,
 * aligned and unaligned, and independence of the copy afterwards. */
#include "tests/posix/suite.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#define MiB (1LL << 20)

/* copy_file_range until len bytes moved or EOF; returns bytes or -1 */
static ssize_t cfr_all(int in, off_t inoff, int out, off_t outoff, size_t len)
{
    size_t done = 0;
    while (done < len) {
        loff_t a = inoff + (off_t)done, b = outoff + (off_t)done;
        ssize_t r = copy_file_range(in, &a, out, &b, len - done, 0);
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        done += (size_t)r;
    }
    return (ssize_t)done;
}

static int make_src(const char *name, size_t n, uint64_t seed)
{
    char *buf = malloc(n);
    CHECK(buf, "malloc");
    pt_fill(buf, n, seed, 0);
    OK(pt_write_file(name, buf, n, 0644));
    free(buf);
    return 0;
}

static int whole(pt_ctx *c)
{
    (void)c;
    size_t n = 300 * 1024 + 7;
    if (make_src("src", n, 21))
        return 1;
    int in = open("src", O_RDONLY);
    OK(in);
    int out = open("dst", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    OK(out);
    EQ(cfr_all(in, 0, out, 0, n), (ssize_t)n);
    OK(close(out));
    close(in);
    struct stat st;
    OK(stat("dst", &st));
    EQ(st.st_size, (off_t)n);
    char *got = malloc(n);
    CHECK(got, "malloc");
    EQ(pt_read_file("dst", got, n), (ssize_t)n);
    long d = pt_check_fill(got, n, 21, 0);
    CHECK(d < 0, "copy differs at %ld", d);
    free(got);
    return 0;
}

/* With the file position (NULL offsets): positions advance. */
static int positions(pt_ctx *c)
{
    (void)c;
    if (make_src("src", 100000, 22))
        return 1;
    int in = open("src", O_RDONLY);
    OK(in);
    int out = open("dst", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    OK(out);
    OK(lseek(in, 1000, SEEK_SET));
    ssize_t r = copy_file_range(in, NULL, out, NULL, 5000, 0);
    CHECK(r > 0 && r <= 5000, "copy_file_range returned %zd (%s)", r, pt_errname(errno));
    EQ(lseek(in, 0, SEEK_CUR), 1000 + r);
    EQ(lseek(out, 0, SEEK_CUR), r);
    close(in);
    close(out);
    char got[5000];
    EQ(pt_read_file("dst", got, sizeof(got)), r);
    long d = pt_check_fill(got, (size_t)r, 22, 1000);
    CHECK(d < 0, "copy differs at %ld", d);
    return 0;
}

/* Unaligned ranges into an existing file: bytes outside the range stay. */
static int unaligned(pt_ctx *c)
{
    (void)c;
    size_t n = 400000, dn = 300000;
    if (make_src("src", n, 23) || make_src("dst", dn, 24))
        return 1;
    int in = open("src", O_RDONLY);
    OK(in);
    int out = open("dst", O_WRONLY);
    OK(out);
    EQ(cfr_all(in, 1001, out, 70003, 150000), 150000);
    /* past the end of the destination: it grows */
    EQ(cfr_all(in, 5, out, 290000, 60000), 60000);
    OK(close(out));
    close(in);
    struct stat st;
    OK(stat("dst", &st));
    EQ(st.st_size, 350000);
    char *got = malloc(350000);
    CHECK(got, "malloc");
    EQ(pt_read_file("dst", got, 350000), 350000);
    long d = pt_check_fill(got, 70003, 24, 0);
    CHECK(d < 0, "prefix changed at %ld", d);
    d = pt_check_fill(got + 70003, 150000, 23, 1001);
    CHECK(d < 0, "copied range differs at %ld", 70003 + d);
    d = pt_check_fill(got + 220003, 290000 - 220003, 24, 220003);
    CHECK(d < 0, "middle changed at %ld", 220003 + d);
    d = pt_check_fill(got + 290000, 60000, 23, 5);
    CHECK(d < 0, "appended range differs at %ld", 290000 + d);
    free(got);
    return 0;
}

/* Whole MiB-aligned ranges (whole chunks for chunk sizes up to 4 MiB),
 * then the source changes: the copy must not. */
static int aligned_then_modify(pt_ctx *c)
{
    (void)c;
    size_t n = (size_t)(8 * MiB + 12345);
    if (make_src("src", n, 25))
        return 1;
    int in = open("src", O_RDWR);
    OK(in);
    int out = open("dst", O_RDWR | O_CREAT | O_TRUNC, 0644);
    OK(out);
    EQ(cfr_all(in, 0, out, 0, n), (ssize_t)n);
    OK(fsync(out));
    /* overwrite the source, including inside the copied chunks */
    char junk[10000];
    memset(junk, 'J', sizeof(junk));
    EQ(pwrite(in, junk, sizeof(junk), 4 * MiB - 5000), (ssize_t)sizeof(junk));
    EQ(pwrite(in, junk, sizeof(junk), 0), (ssize_t)sizeof(junk));
    OK(ftruncate(in, 1 * MiB));
    OK(close(in));
    /* and the destination: the source must not change either */
    EQ(pwrite(out, junk, sizeof(junk), 2 * MiB), (ssize_t)sizeof(junk));
    OK(close(out));
    char *got = malloc(n);
    CHECK(got, "malloc");
    EQ(pt_read_file("dst", got, n), (ssize_t)n);
    long d = pt_check_fill(got, (size_t)(2 * MiB), 25, 0);
    CHECK(d < 0, "copy changed with its source at %ld", d);
    for (int i = 0; i < (int)sizeof(junk); i++)
        CHECK(got[2 * MiB + i] == 'J', "destination write lost at %lld", 2 * MiB + i);
    d = pt_check_fill(got + 2 * MiB + sizeof(junk), n - (size_t)(2 * MiB) - sizeof(junk), 25,
                      (uint64_t)(2 * MiB) + sizeof(junk));
    CHECK(d < 0, "copy changed with its source at %lld", 2 * MiB + (long long)sizeof(junk) + d);
    EQ(pt_read_file("src", got, n), 1 * MiB);
    for (int i = 0; i < (int)sizeof(junk); i++)
        CHECK(got[i] == 'J', "source byte %d", i);
    d = pt_check_fill(got + sizeof(junk), (size_t)(1 * MiB) - sizeof(junk), 25, sizeof(junk));
    CHECK(d < 0, "source changed by a write to the copy at %ld", (long)sizeof(junk) + d);
    free(got);
    return 0;
}

static int same_file(pt_ctx *c)
{
    (void)c;
    if (make_src("f", 200000, 26))
        return 1;
    int fd = open("f", O_RDWR);
    OK(fd);
    loff_t a = 0, b = 1000;
    ERR(copy_file_range(fd, &a, fd, &b, 50000, 0), EINVAL);
    EQ(cfr_all(fd, 0, fd, 100000, 50000), 50000);
    close(fd);
    char *got = malloc(200000);
    CHECK(got, "malloc");
    EQ(pt_read_file("f", got, 200000), 200000);
    long d = pt_check_fill(got + 100000, 50000, 26, 0);
    CHECK(d < 0, "copy within a file differs at %ld", 100000 + d);
    d = pt_check_fill(got, 100000, 26, 0);
    CHECK(d < 0, "source range changed at %ld", d);
    free(got);
    return 0;
}

static int edges(pt_ctx *c)
{
    (void)c;
    if (make_src("src", 1000, 27))
        return 1;
    int in = open("src", O_RDONLY);
    OK(in);
    int out = open("dst", O_WRONLY | O_CREAT, 0644);
    OK(out);
    loff_t a = 5000, b = 0;
    EQ(copy_file_range(in, &a, out, &b, 100, 0), 0);
    a = 900;
    EQ(copy_file_range(in, &a, out, &b, 1000, 0), 100);
    a = 0;
    ERR(copy_file_range(in, &a, out, &b, 10, 1), EINVAL);
    close(out);
    int app = open("dst", O_WRONLY | O_APPEND);
    OK(app);
    a = 0;
    ERR(copy_file_range(in, &a, app, NULL, 10, 0), EBADF);
    close(app);
    int ro = open("dst", O_RDONLY);
    OK(ro);
    a = 0;
    b = 0;
    ERR(copy_file_range(in, &a, ro, &b, 10, 0), EBADF);
    close(ro);
    OK(mkdir("d", 0755));
    int dfd = open("d", O_RDONLY);
    OK(dfd);
    out = open("dst", O_WRONLY);
    a = 0;
    ERR(copy_file_range(dfd, &a, out, NULL, 10, 0), EISDIR);
    close(dfd);
    close(out);
    close(in);
    return 0;
}

const pt_case pt_cfr_cases[] = {
    {"copy_file_range/whole", PT_BOTH, NULL, whole},
    {"copy_file_range/file_positions", PT_BOTH, NULL, positions},
    {"copy_file_range/unaligned_into_existing", PT_BOTH, NULL, unaligned},
    {"copy_file_range/aligned_then_modify_both", PT_BOTH, NULL, aligned_then_modify},
    {"copy_file_range/same_file", PT_BOTH, NULL, same_file},
    {"copy_file_range/edges", PT_BOTH, NULL, edges},
    {NULL, 0, NULL, NULL},
};
