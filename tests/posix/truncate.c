/* truncate.c — truncate(2): growing reads zeros, shrinking forgets. */
#include "tests/posix/suite.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

static int extend_zeros(pt_ctx *c)
{
    (void)c;
    char buf[200];
    memset(buf, 'A', sizeof(buf));
    OK(pt_write_file("f", buf, 100, 0644));
    OK(truncate("f", 10000));
    struct stat st;
    OK(stat("f", &st));
    EQ(st.st_size, 10000);
    char *got = malloc(20000);
    CHECK(got, "malloc");
    EQ(pt_read_file("f", got, 20000), 10000);
    for (int i = 0; i < 100; i++)
        CHECK(got[i] == 'A', "byte %d lost its data", i);
    long nz = pt_first_nonzero(got + 100, 9900);
    CHECK(nz < 0, "byte %ld of the extension is not zero", nz + 100);
    free(got);
    return 0;
}

static int shrink(pt_ctx *c)
{
    (void)c;
    char buf[5000], got[6000];
    pt_fill(buf, sizeof(buf), 6, 0);
    OK(pt_write_file("f", buf, sizeof(buf), 0644));
    OK(truncate("f", 10));
    struct stat st;
    OK(stat("f", &st));
    EQ(st.st_size, 10);
    EQ(pt_read_file("f", got, sizeof(got)), 10);
    CHECK(pt_check_fill(got, 10, 6, 0) < 0, "kept bytes changed");
    OK(truncate("f", 0));
    OK(stat("f", &st));
    EQ(st.st_size, 0);
    EQ(pt_read_file("f", got, sizeof(got)), 0);
    return 0;
}

/* Shrink to cut, extend back to size: [cut, size) must read as zeros,
 * at cut points around block, inline-data and chunk boundaries. */
static int no_resurrect_at(const char *name, size_t size, size_t cut)
{
    char *buf = malloc(size), *got = malloc(size);
    CHECK(buf && got, "malloc");
    memset(buf, 0xAB, size);
    OK(pt_write_file(name, buf, size, 0644));
    OK(truncate(name, (off_t)cut));
    OK(truncate(name, (off_t)size));
    EQ(pt_read_file(name, got, size), (ssize_t)size);
    for (size_t i = 0; i < cut; i++)
        CHECK((unsigned char)got[i] == 0xAB, "size %zu cut %zu: kept byte %zu changed", size, cut,
              i);
    long nz = pt_first_nonzero(got + cut, size - cut);
    CHECK(nz < 0, "size %zu cut %zu: old byte resurrected at %zu", size, cut, cut + (size_t)nz);
    free(buf);
    free(got);
    return 0;
}

static int no_resurrect(pt_ctx *c)
{
    (void)c;
    static const size_t cuts[] = {0, 1, 100, 4095, 4096, 4097, 65535, 65536, 65537, 131072 + 5};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++)
        if (no_resurrect_at("big", 200000, cuts[i]))
            return 1;
    static const size_t small[] = {0, 1, 1000, 2999};
    for (size_t i = 0; i < sizeof(small) / sizeof(small[0]); i++)
        if (no_resurrect_at("small", 3000, small[i]))
            return 1;
    return 0;
}

static int no_resurrect_big_chunk(pt_ctx *c)
{
    (void)c;
    /* the default 4 MiB chunk: a cut inside the second chunk */
    return no_resurrect_at("f", (8u << 20) + 1000, (4u << 20) + 12345);
}

static int times(pt_ctx *c)
{
    (void)c;
    struct stat a, b;
    OK(pt_write_file("f", "0123456789", 10, 0644));
    OK(pt_set_times("f", PT_OLD_NS, PT_OLD_NS));
    OK(stat("f", &a));
    pt_wait_past(pt_ns(a.st_ctim));
    OK(truncate("f", 5));
    OK(stat("f", &b));
    CHECK_ADVANCED(b.st_mtim, PT_OLD_NS, "mtime after truncate down");
    CHECK_ADVANCED(b.st_ctim, pt_ns(a.st_ctim), "ctime after truncate down");
    CHECK_SAME_TIME(b.st_atim, PT_OLD_NS, "atime after truncate");
    OK(pt_set_times("f", PT_OLD_NS, PT_OLD_NS));
    OK(stat("f", &a));
    pt_wait_past(pt_ns(a.st_ctim));
    OK(truncate("f", 50000));
    OK(stat("f", &b));
    CHECK_ADVANCED(b.st_mtim, PT_OLD_NS, "mtime after truncate up");
    CHECK_ADVANCED(b.st_ctim, pt_ns(a.st_ctim), "ctime after truncate up");
    return 0;
}

static int errors(pt_ctx *c)
{
    (void)c;
    OK(mkdir("d", 0755));
    OK(pt_write_file("f", "x", 1, 0644));
    ERR(truncate("d", 0), EISDIR);
    ERR(truncate("nope", 0), ENOENT);
    ERR(truncate("f", -1), EINVAL);
    ERR(truncate("f/x", 0), ENOTDIR);
    OK(symlink("f", "l"));
    OK(truncate("l", 7));
    struct stat st;
    OK(stat("f", &st));
    EQ(st.st_size, 7);
    OK(mkfifo("p", 0644));
    ERR(truncate("p", 0), EINVAL);
    return 0;
}

static int setup_rootfile(pt_ctx *c)
{
    (void)c;
    OK(pt_write_file("rootfile", "xyz", 3, 0644));
    OK(pt_write_file("shared", "xyz", 3, 0666));
    OK(chmod("shared", 0666));
    return 0;
}

static int denied(pt_ctx *c)
{
    (void)c;
    struct stat st;
    ERR(truncate("rootfile", 0), EACCES);
    OK(stat("rootfile", &st));
    EQ(st.st_size, 3);
    OK(truncate("shared", 1));
    OK(stat("shared", &st));
    EQ(st.st_size, 1);
    OK(pt_write_file("mine", "abc", 3, 0444));
    ERR(truncate("mine", 0), EACCES);
    return 0;
}

const pt_case pt_truncate_cases[] = {
    {"truncate/extend_reads_zeros", PT_BOTH, NULL, extend_zeros},
    {"truncate/shrink", PT_BOTH, NULL, shrink},
    {"truncate/shrink_extend_no_resurrect", PT_BOTH, NULL, no_resurrect},
    {"truncate/no_resurrect_4m_chunk", PT_ROOT, NULL, no_resurrect_big_chunk},
    {"truncate/times", PT_BOTH, NULL, times},
    {"truncate/errors", PT_BOTH, NULL, errors},
    {"truncate/eacces", PT_USER, setup_rootfile, denied},
    {NULL, 0, NULL, NULL},
};
