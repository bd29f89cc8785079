/* statfs.c — statvfs/statfs: sane capacity numbers that follow usage. */
#include "tests/posix/suite.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

static int sane(pt_ctx *c)
{
    (void)c;
    struct statvfs v;
    OK(statvfs(".", &v));
    CHECK(v.f_frsize > 0 && v.f_bsize > 0, "f_frsize %lu f_bsize %lu", v.f_frsize, v.f_bsize);
    CHECK(v.f_blocks > 0, "f_blocks is 0");
    CHECK(v.f_bfree <= v.f_blocks, "f_bfree %lu > f_blocks %lu", v.f_bfree, v.f_blocks);
    CHECK(v.f_bavail <= v.f_bfree, "f_bavail %lu > f_bfree %lu", v.f_bavail, v.f_bfree);
    CHECK(v.f_files == 0 || v.f_ffree <= v.f_files, "f_ffree %lu > f_files %lu", v.f_ffree,
          v.f_files);
    EQ(v.f_namemax, 255);
    /* the same through fstatvfs and statfs */
    int fd = open(".", O_RDONLY);
    OK(fd);
    struct statvfs w;
    OK(fstatvfs(fd, &w));
    close(fd);
    EQ(w.f_blocks, v.f_blocks);
    EQ(w.f_frsize, v.f_frsize);
    struct statfs s;
    OK(statfs(".", &s));
    EQ(s.f_blocks, v.f_blocks);
    EQ(s.f_namelen, 255);
    return 0;
}

static uint64_t used_bytes(const struct statvfs *v)
{
    return (uint64_t)(v->f_blocks - v->f_bfree) * v->f_frsize;
}

/* Writing 64 MiB shows in the used space (allowing time for the servers
 * to report it, bounded). */
static int usage_follows(pt_ctx *c)
{
    (void)c;
    const size_t n = 64u << 20;
    struct statvfs a, b;
    OK(statvfs(".", &a));
    char *buf = malloc(1 << 20);
    CHECK(buf, "malloc");
    int fd = open("f", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    OK(fd);
    for (size_t off = 0; off < n; off += 1 << 20) {
        pt_fill(buf, 1 << 20, 31, off);
        EQ(pt_pwrite_all(fd, buf, 1 << 20, (off_t)off), 1 << 20);
    }
    OK(fsync(fd));
    OK(close(fd));
    free(buf);
    uint64_t grew = 0;
    for (int i = 0; i < 100; i++) {
        OK(statvfs(".", &b));
        grew = used_bytes(&b) > used_bytes(&a) ? used_bytes(&b) - used_bytes(&a) : 0;
        if (grew >= n - n / 16)
            break;
        struct timespec d = {0, 100000000};
        nanosleep(&d, NULL);
    }
    CHECK(grew >= n - n / 16, "used space grew by %llu bytes after writing %zu (10 s)",
          (unsigned long long)grew, n);
    EQ(b.f_blocks, a.f_blocks);
    return 0;
}

const pt_case pt_statfs_cases[] = {
    {"statfs/sane", PT_BOTH, NULL, sane},
    {"statfs/usage_follows_writes", PT_ROOT, NULL, usage_follows},
    {NULL, 0, NULL, NULL},
};
