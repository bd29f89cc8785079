/* link.c — link, linkat: exact link counts across link, unlink, rename. */
#include "tests/posix/suite.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

static int basic(pt_ctx *c)
{
    (void)c;
    struct stat a, b, p0, p1;
    OK(pt_write_file("f", "abc", 3, 0640));
    OK(pt_set_times("f", PT_OLD_NS, PT_OLD_NS));
    OK(pt_set_times(".", PT_OLD_NS, PT_OLD_NS));
    OK(stat("f", &a));
    OK(stat(".", &p0));
    pt_wait_past(pt_ns(p0.st_ctim));
    OK(link("f", "g"));
    OK(stat("f", &a));
    OK(stat("g", &b));
    EQ(a.st_ino, b.st_ino);
    EQ(a.st_nlink, 2);
    EQ(b.st_nlink, 2);
    EQ_MODE(b.st_mode, S_IFREG | 0640);
    EQ(b.st_size, 3);
    CHECK_ADVANCED(a.st_ctim, pt_ns(p0.st_ctim), "ctime of the linked file");
    CHECK_SAME_TIME(a.st_mtim, PT_OLD_NS, "mtime of the linked file");
    OK(stat(".", &p1));
    CHECK_ADVANCED(p1.st_mtim, PT_OLD_NS, "parent mtime after link");
    /* writes through one name show through the other */
    OK(pt_write_file("g", "XYZW", 4, 0644));
    char got[8];
    EQ(pt_read_file("f", got, sizeof(got)), 4);
    CHECK(memcmp(got, "XYZW", 4) == 0, "content through the first name: %.4s", got);
    return 0;
}

static int nlink_of(const char *p)
{
    struct stat st;
    if (lstat(p, &st) != 0)
        return -1;
    return (int)st.st_nlink;
}

static int counts(pt_ctx *c)
{
    (void)c;
    OK(pt_write_file("f", "x", 1, 0644));
    OK(mkdir("d", 0755));
    OK(link("f", "l1"));
    OK(link("f", "d/l2"));
    OK(link("d/l2", "l3"));
    EQ(nlink_of("f"), 4);
    OK(unlink("l1"));
    EQ(nlink_of("f"), 3);
    EQ(nlink_of("d/l2"), 3);
    /* rename of one link onto another link of the same file does nothing */
    OK(rename("l3", "d/l2"));
    EQ(nlink_of("f"), 3);
    EQ(nlink_of("l3"), 3);
    /* moving a link keeps the count */
    OK(rename("l3", "d/l4"));
    EQ(nlink_of("f"), 3);
    ERR(lstat("l3", &(struct stat){0}), ENOENT);
    /* renaming another file over a link drops one */
    OK(pt_write_file("other", "y", 1, 0644));
    OK(rename("other", "d/l4"));
    EQ(nlink_of("f"), 2);
    EQ(nlink_of("d/l4"), 1);
    /* renaming a link over an unrelated file: that file goes, count stays */
    OK(pt_write_file("victim", "z", 1, 0644));
    OK(link("victim", "victim2"));
    OK(rename("d/l2", "victim"));
    EQ(nlink_of("f"), 2);
    EQ(nlink_of("victim2"), 1);
    OK(unlink("victim"));
    EQ(nlink_of("f"), 1);
    return 0;
}

static int many(pt_ctx *c)
{
    (void)c;
    char n[32];
    OK(pt_write_file("f", "x", 1, 0644));
    for (int i = 0; i < 100; i++) {
        snprintf(n, sizeof(n), "l%d", i);
        OK(link("f", n));
    }
    EQ(nlink_of("f"), 101);
    for (int i = 0; i < 100; i += 2) {
        snprintf(n, sizeof(n), "l%d", i);
        OK(unlink(n));
    }
    EQ(nlink_of("l1"), 51);
    return 0;
}

static int dir_counts(pt_ctx *c)
{
    (void)c;
    OK(mkdir("a", 0755));
    OK(mkdir("b", 0755));
    for (int i = 0; i < 5; i++) {
        char n[16];
        snprintf(n, sizeof(n), "a/s%d", i);
        OK(mkdir(n, 0755));
    }
    OK(pt_write_file("a/f", "x", 1, 0644));
    EQ(nlink_of("a"), 7);
    OK(rename("a/s0", "b/s0"));
    EQ(nlink_of("a"), 6);
    EQ(nlink_of("b"), 3);
    struct stat st, b;
    OK(stat("b/s0/..", &st));
    OK(stat("b", &b));
    EQ(st.st_ino, b.st_ino);
    /* a directory renamed over an empty directory elsewhere */
    OK(mkdir("b/empty", 0755));
    EQ(nlink_of("b"), 4);
    OK(rename("a/s1", "b/empty"));
    EQ(nlink_of("a"), 5);
    EQ(nlink_of("b"), 4);
    OK(rmdir("a/s2"));
    EQ(nlink_of("a"), 4);
    return 0;
}

static int errors(pt_ctx *c)
{
    (void)c;
    OK(pt_write_file("f", "x", 1, 0644));
    OK(pt_write_file("g", "y", 1, 0644));
    ERR(link("f", "g"), EEXIST);
    ERR(link("nope", "h"), ENOENT);
    ERR(link("f", "nodir/h"), ENOENT);
    OK(mkdir("d", 0755));
    ERR(link("d", "d2"), EPERM);
    ERR(link("f", "f/x"), ENOTDIR);
    char n[300];
    memset(n, 'n', 256);
    n[256] = 0;
    ERR(link("f", n), ENAMETOOLONG);
    n[255] = 0;
    OK(link("f", n));
    EQ(nlink_of("f"), 2);
    return 0;
}

static int symlink_nofollow(pt_ctx *c)
{
    (void)c;
    struct stat st, t;
    OK(pt_write_file("f", "x", 1, 0644));
    OK(symlink("f", "s"));
    /* link() does not follow a symlink: the new name is another link to it */
    OK(link("s", "s2"));
    OK(lstat("s2", &st));
    CHECK(S_ISLNK(st.st_mode), "link of a symlink is not a symlink (mode 0%o)", st.st_mode);
    EQ(st.st_nlink, 2);
    EQ(nlink_of("f"), 1);
    /* linkat with AT_SYMLINK_FOLLOW links the target */
    OK(linkat(AT_FDCWD, "s", AT_FDCWD, "f2", AT_SYMLINK_FOLLOW));
    OK(lstat("f2", &st));
    OK(stat("f", &t));
    EQ(st.st_ino, t.st_ino);
    EQ(t.st_nlink, 2);
    return 0;
}

static int setup_rootfiles(pt_ctx *c)
{
    (void)c;
    OK(pt_write_file("secret", "x", 1, 0600));
    OK(pt_write_file("readable", "x", 1, 0644));
    OK(mkdir("ro", 0755));
    return 0;
}

static int denied(pt_ctx *c)
{
    (void)c;
    OK(pt_write_file("mine", "x", 1, 0644));
    ERR(link("mine", "ro/l"), EACCES);
    /* fs.protected_hardlinks: linking a file one neither owns nor may both
     * read and write is refused */
    int prot = 0;
    FILE *f = fopen("/proc/sys/fs/protected_hardlinks", "r");
    if (f) {
        if (fscanf(f, "%d", &prot) != 1)
            prot = 0;
        fclose(f);
    }
    if (prot)
        ERR(link("secret", "l1"), EPERM);
    else
        OK(link("secret", "l1"));
    return 0;
}

const pt_case pt_link_cases[] = {
    {"link/basic", PT_BOTH, NULL, basic},
    {"link/counts_across_link_unlink_rename", PT_BOTH, NULL, counts},
    {"link/many", PT_BOTH, NULL, many},
    {"link/dir_counts", PT_BOTH, NULL, dir_counts},
    {"link/errors", PT_BOTH, NULL, errors},
    {"link/symlink_nofollow", PT_BOTH, NULL, symlink_nofollow},
    {"link/eacces_eperm", PT_USER, setup_rootfiles, denied},
    {NULL, 0, NULL, NULL},
};
