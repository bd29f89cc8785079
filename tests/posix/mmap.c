/* mmap.c — shared and private mappings: data written through a shared
 * mapping reaches the file on msync, munmap or close. */
#include "tests/posix/suite.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define SZ (3 * 65536 + 100)

static int shared_msync(pt_ctx *c)
{
    (void)c;
    int fd = open("f", O_RDWR | O_CREAT, 0644);
    OK(fd);
    OK(ftruncate(fd, SZ));
    char *m = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(m != MAP_FAILED, "mmap: %s", pt_errname(errno));
    pt_fill(m, SZ, 13, 0);
    OK(msync(m, SZ, MS_SYNC));
    /* another descriptor sees it after msync, before munmap */
    char *got = malloc(SZ);
    CHECK(got, "malloc");
    EQ(pt_read_file("f", got, SZ), SZ);
    long d = pt_check_fill(got, SZ, 13, 0);
    CHECK(d < 0, "read after msync differs at %ld", d);
    /* a second round of changes in the middle of the mapping */
    pt_fill(m + 70000, 1000, 14, 70000);
    OK(msync(m, SZ, MS_SYNC));
    OK(munmap(m, SZ));
    OK(close(fd));
    EQ(pt_read_file("f", got, SZ), SZ);
    d = pt_check_fill(got + 70000, 1000, 14, 70000);
    CHECK(d < 0, "second change differs at %ld", 70000 + d);
    d = pt_check_fill(got, 70000, 13, 0);
    CHECK(d < 0, "first change differs at %ld", d);
    struct stat st;
    OK(stat("f", &st));
    EQ(st.st_size, SZ);
    free(got);
    return 0;
}

static int shared_no_msync(pt_ctx *c)
{
    (void)c;
    int fd = open("f", O_RDWR | O_CREAT, 0644);
    OK(fd);
    OK(ftruncate(fd, SZ));
    char *m = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(m != MAP_FAILED, "mmap: %s", pt_errname(errno));
    /* the descriptor goes first, the mapping keeps the file open */
    OK(close(fd));
    pt_fill(m, SZ, 15, 0);
    OK(munmap(m, SZ));
    char *got = malloc(SZ);
    CHECK(got, "malloc");
    EQ(pt_read_file("f", got, SZ), SZ);
    long d = pt_check_fill(got, SZ, 15, 0);
    CHECK(d < 0, "data written through a mapping after close differs at %ld", d);
    free(got);
    return 0;
}

static int read_mapping(pt_ctx *c)
{
    (void)c;
    char *buf = malloc(SZ);
    CHECK(buf, "malloc");
    pt_fill(buf, SZ, 16, 0);
    OK(pt_write_file("f", buf, SZ, 0644));
    int fd = open("f", O_RDONLY);
    OK(fd);
    char *m = mmap(NULL, SZ, PROT_READ, MAP_SHARED, fd, 0);
    CHECK(m != MAP_FAILED, "mmap: %s", pt_errname(errno));
    long d = pt_check_fill(m, SZ, 16, 0);
    CHECK(d < 0, "mapping differs at %ld", d);
    /* the tail of the last page beyond EOF reads as zeros */
    long page = sysconf(_SC_PAGESIZE);
    size_t tail = (size_t)(page - SZ % page) % (size_t)page;
    for (size_t i = 0; i < tail; i++)
        CHECK(m[SZ + i] == 0, "byte %zu past EOF in the last page is %d", i, m[SZ + i]);
    /* offset mapping */
    char *m2 = mmap(NULL, 65536, PROT_READ, MAP_SHARED, fd, 65536);
    CHECK(m2 != MAP_FAILED, "mmap at offset: %s", pt_errname(errno));
    d = pt_check_fill(m2, 65536, 16, 65536);
    CHECK(d < 0, "offset mapping differs at %ld", d);
    munmap(m2, 65536);
    /* write() through a descriptor shows in the mapping */
    int wfd = open("f", O_WRONLY);
    OK(wfd);
    EQ(pwrite(wfd, "WXYZ", 4, 100000), 4);
    close(wfd);
    CHECK(memcmp(m + 100000, "WXYZ", 4) == 0, "write() not visible in a shared mapping");
    munmap(m, SZ);
    close(fd);
    free(buf);
    return 0;
}

static int private_mapping(pt_ctx *c)
{
    (void)c;
    char *buf = malloc(SZ);
    CHECK(buf, "malloc");
    pt_fill(buf, SZ, 17, 0);
    OK(pt_write_file("f", buf, SZ, 0644));
    int fd = open("f", O_RDWR);
    OK(fd);
    char *m = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    CHECK(m != MAP_FAILED, "mmap: %s", pt_errname(errno));
    long d = pt_check_fill(m, SZ, 17, 0);
    CHECK(d < 0, "private mapping differs at %ld", d);
    memset(m, 'P', 70000);
    OK(msync(m, SZ, MS_SYNC));
    CHECK(m[69999] == 'P', "private change lost");
    OK(munmap(m, SZ));
    OK(close(fd));
    EQ(pt_read_file("f", buf, SZ), SZ);
    d = pt_check_fill(buf, SZ, 17, 0);
    CHECK(d < 0, "a private mapping changed the file at %ld", d);
    /* a private read-only mapping of a read-only descriptor */
    fd = open("f", O_RDONLY);
    OK(fd);
    m = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    CHECK(m != MAP_FAILED, "private writable mapping of O_RDONLY fd: %s", pt_errname(errno));
    m[0] ^= 1;
    munmap(m, SZ);
    /* a shared writable one is refused */
    CHECK(mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED &&
              errno == EACCES,
          "shared writable mapping of an O_RDONLY descriptor: %s", pt_errname(errno));
    close(fd);
    free(buf);
    return 0;
}

static int mtime_on_mmap_write(pt_ctx *c)
{
    (void)c;
    struct stat a, b;
    int fd = open("f", O_RDWR | O_CREAT, 0644);
    OK(fd);
    OK(ftruncate(fd, 8192));
    OK(pt_set_times("f", PT_OLD_NS, PT_OLD_NS));
    OK(fstat(fd, &a));
    pt_wait_past(pt_ns(a.st_ctim));
    char *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(m != MAP_FAILED, "mmap: %s", pt_errname(errno));
    memcpy(m + 10, "changed", 7);
    OK(msync(m, 8192, MS_SYNC));
    OK(munmap(m, 8192));
    OK(close(fd));
    OK(stat("f", &b));
    CHECK_ADVANCED(b.st_mtim, PT_OLD_NS, "mtime after a write through a shared mapping");
    CHECK_ADVANCED(b.st_ctim, pt_ns(a.st_ctim), "ctime after a write through a shared mapping");
    return 0;
}

static int truncate_mapped(pt_ctx *c)
{
    (void)c;
    int fd = open("f", O_RDWR | O_CREAT, 0644);
    OK(fd);
    OK(ftruncate(fd, SZ));
    char *m = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(m != MAP_FAILED, "mmap: %s", pt_errname(errno));
    memset(m, 'M', SZ);
    OK(msync(m, SZ, MS_SYNC));
    OK(ftruncate(fd, 1000));
    OK(ftruncate(fd, SZ));
    for (long i = 0; i < SZ; i++)
        CHECK(m[i] == (i < 1000 ? 'M' : 0), "mapped byte %ld is %d after shrink+extend", i,
              m[i]);
    OK(munmap(m, SZ));
    OK(close(fd));
    char *got = malloc(SZ);
    CHECK(got, "malloc");
    EQ(pt_read_file("f", got, SZ), SZ);
    long nz = pt_first_nonzero(got + 1000, SZ - 1000);
    CHECK(nz < 0, "byte %ld resurrected after shrink+extend of a mapped file", 1000 + nz);
    free(got);
    return 0;
}

static int unlinked_mapping(pt_ctx *c)
{
    (void)c;
    int fd = open("f", O_RDWR | O_CREAT, 0644);
    OK(fd);
    OK(ftruncate(fd, SZ));
    char *m = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(m != MAP_FAILED, "mmap: %s", pt_errname(errno));
    OK(unlink("f"));
    pt_fill(m, SZ, 18, 0);
    OK(msync(m, SZ, MS_SYNC));
    char *got = malloc(SZ);
    CHECK(got, "malloc");
    EQ(pt_pread_all(fd, got, SZ, 0), SZ);
    long d = pt_check_fill(got, SZ, 18, 0);
    CHECK(d < 0, "unlinked mapped file reads back differently at %ld", d);
    munmap(m, SZ);
    close(fd);
    free(got);
    return 0;
}

const pt_case pt_mmap_cases[] = {
    {"mmap/shared_write_msync", PT_BOTH, NULL, shared_msync},
    {"mmap/shared_write_munmap_after_close", PT_BOTH, NULL, shared_no_msync},
    {"mmap/read_and_coherence", PT_BOTH, NULL, read_mapping},
    {"mmap/private", PT_BOTH, NULL, private_mapping},
    {"mmap/mtime_ctime", PT_BOTH, NULL, mtime_on_mmap_write},
    {"mmap/truncate_mapped", PT_BOTH, NULL, truncate_mapped},
    {"mmap/unlinked", PT_BOTH, NULL, unlinked_mapping},
    {NULL, 0, NULL, NULL},
};
