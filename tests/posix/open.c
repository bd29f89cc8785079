/* open.c — open, creat: modes, owners, O_EXCL, O_TRUNC, O_APPEND,
 * O_DIRECT, O_TMPFILE, permission checks. */
#include "tests/posix/suite.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static int creat_mode(pt_ctx *c)
{
    (void)c;
    struct stat st;
    int fd = open("a", O_WRONLY | O_CREAT, 0666);
    OK(fd);
    close(fd);
    OK(stat("a", &st));
    EQ_MODE(st.st_mode, S_IFREG | 0644);
    umask(0);
    fd = open("b", O_WRONLY | O_CREAT, 0666);
    OK(fd);
    close(fd);
    OK(stat("b", &st));
    EQ_MODE(st.st_mode, S_IFREG | 0666);
    umask(077);
    fd = open("c", O_RDWR | O_CREAT, 0777);
    OK(fd);
    close(fd);
    OK(stat("c", &st));
    EQ_MODE(st.st_mode, S_IFREG | 0700);
    /* a mode without write permission still gives a writable descriptor */
    umask(0);
    fd = open("d", O_RDWR | O_CREAT, 0444);
    OK(fd);
    EQ(write(fd, "ok", 2), 2);
    close(fd);
    OK(stat("d", &st));
    EQ_MODE(st.st_mode, S_IFREG | 0444);
    EQ(st.st_size, 2);
    /* O_CREAT on an existing file leaves its mode alone */
    fd = open("d", O_RDONLY | O_CREAT, 0600);
    OK(fd);
    close(fd);
    OK(stat("d", &st));
    EQ_MODE(st.st_mode, S_IFREG | 0444);
    return 0;
}

static int creat_owner_times(pt_ctx *c)
{
    struct stat st, p0, p1;
    OK(pt_set_times(".", PT_OLD_NS, PT_OLD_NS));
    OK(stat(".", &p0));
    pt_wait_past(pt_ns(p0.st_ctim));
    int64_t t0 = pt_now();
    int fd = open("f", O_WRONLY | O_CREAT | O_EXCL, 0640);
    OK(fd);
    int64_t t1 = pt_now();
    OK(fstat(fd, &st));
    close(fd);
    EQ(st.st_uid, c->uid);
    EQ(st.st_gid, c->gid);
    EQ(st.st_nlink, 1);
    EQ(st.st_size, 0);
    CHECK(pt_time_near(pt_ns(st.st_mtim), t0, t1), "new file mtime %lld not in [%lld, %lld]",
          (long long)pt_ns(st.st_mtim), (long long)t0, (long long)t1);
    CHECK(pt_time_near(pt_ns(st.st_ctim), t0, t1), "new file ctime %lld not in [%lld, %lld]",
          (long long)pt_ns(st.st_ctim), (long long)t0, (long long)t1);
    CHECK(pt_time_near(pt_ns(st.st_atim), t0, t1), "new file atime %lld not in [%lld, %lld]",
          (long long)pt_ns(st.st_atim), (long long)t0, (long long)t1);
    OK(stat(".", &p1));
    CHECK_ADVANCED(p1.st_mtim, PT_OLD_NS, "parent mtime after create");
    CHECK_ADVANCED(p1.st_ctim, pt_ns(p0.st_ctim), "parent ctime after create");
    return 0;
}

static int excl(pt_ctx *c)
{
    (void)c;
    OK(pt_write_file("f", "x", 1, 0644));
    ERR(open("f", O_WRONLY | O_CREAT | O_EXCL, 0644), EEXIST);
    OK(symlink("nowhere", "dangling"));
    ERR(open("dangling", O_WRONLY | O_CREAT | O_EXCL, 0644), EEXIST);
    struct stat st;
    ERR(stat("nowhere", &st), ENOENT);
    OK(mkdir("d", 0755));
    ERR(open("d", O_WRONLY | O_CREAT | O_EXCL, 0644), EEXIST);
    int fd = open("g", O_WRONLY | O_CREAT | O_EXCL, 0644);
    OK(fd);
    close(fd);
    return 0;
}

/* Many processes race to O_EXCL-create the same names: one wins each. */
static int excl_concurrent(pt_ctx *c)
{
    (void)c;
    enum { PROCS = 6, NAMES = 20 };
    int fds[2];
    OK(pipe(fds));
    for (int p = 0; p < PROCS; p++) {
        pid_t pid = fork();
        OK(pid);
        if (pid == 0) {
            close(fds[0]);
            for (int i = 0; i < NAMES; i++) {
                char n[16];
                snprintf(n, sizeof(n), "race%d", i);
                int fd = open(n, O_WRONLY | O_CREAT | O_EXCL, 0644);
                char r = fd >= 0 ? 'W' : (errno == EEXIST ? 'L' : 'E');
                if (fd >= 0) {
                    char tag = (char)('0' + p);
                    if (write(fd, &tag, 1) != 1)
                        r = 'E';
                    close(fd);
                }
                if (write(fds[1], &r, 1) != 1)
                    _exit(1);
            }
            _exit(0);
        }
    }
    close(fds[1]);
    int wins = 0, errs = 0;
    char r;
    while (read(fds[0], &r, 1) == 1) {
        wins += r == 'W';
        errs += r == 'E';
    }
    close(fds[0]);
    for (int p = 0; p < PROCS; p++)
        wait(NULL);
    EQ(errs, 0);
    EQ(wins, NAMES);
    for (int i = 0; i < NAMES; i++) {
        char n[16];
        struct stat st;
        snprintf(n, sizeof(n), "race%d", i);
        OK(stat(n, &st));
        EQ(st.st_size, 1);
    }
    return 0;
}

static int o_trunc(pt_ctx *c)
{
    (void)c;
    struct stat a, b;
    char buf[100000];
    pt_fill(buf, sizeof(buf), 3, 0);
    OK(pt_write_file("f", buf, sizeof(buf), 0644));
    OK(pt_set_times("f", PT_OLD_NS, PT_OLD_NS));
    OK(stat("f", &a));
    pt_wait_past(pt_ns(a.st_ctim));
    int fd = open("f", O_WRONLY | O_TRUNC);
    OK(fd);
    OK(fstat(fd, &b));
    EQ(b.st_size, 0);
    EQ(write(fd, "new", 3), 3);
    close(fd);
    OK(stat("f", &b));
    EQ(b.st_size, 3);
    EQ(b.st_ino, a.st_ino);
    CHECK_ADVANCED(b.st_mtim, PT_OLD_NS, "mtime after O_TRUNC");
    CHECK_ADVANCED(b.st_ctim, pt_ns(a.st_ctim), "ctime after O_TRUNC");
    char got[8];
    EQ(pt_read_file("f", got, sizeof(got)), 3);
    /* O_TRUNC with O_CREAT on an existing file */
    fd = open("f", O_RDWR | O_CREAT | O_TRUNC, 0600);
    OK(fd);
    OK(fstat(fd, &b));
    EQ(b.st_size, 0);
    EQ_MODE(b.st_mode, S_IFREG | 0644);
    close(fd);
    /* and then the old bytes do not come back when extended */
    OK(truncate("f", 50000));
    char *z = calloc(1, 50000);
    CHECK(z, "malloc");
    EQ(pt_read_file("f", z, 50000), 50000);
    long nz = pt_first_nonzero(z, 50000);
    CHECK(nz < 0, "byte %ld non-zero after O_TRUNC and extension", nz);
    free(z);
    return 0;
}

static int append(pt_ctx *c)
{
    (void)c;
    char got[64];
    OK(pt_write_file("f", "0123456789", 10, 0644));
    int fd = open("f", O_WRONLY | O_APPEND);
    OK(fd);
    OK(lseek(fd, 0, SEEK_SET));
    EQ(write(fd, "AB", 2), 2);
    EQ(lseek(fd, 0, SEEK_CUR), 12);
    int fd2 = open("f", O_WRONLY);
    OK(fd2);
    EQ(pwrite(fd2, "xyz", 3, 12), 3); /* another writer extends the file */
    EQ(write(fd, "CD", 2), 2);        /* O_APPEND lands after its bytes */
    /* Linux: pwrite on an O_APPEND descriptor appends too */
    EQ(pwrite(fd, "E", 1, 0), 1);
    close(fd);
    close(fd2);
    EQ(pt_read_file("f", got, sizeof(got)), 18);
    CHECK(memcmp(got, "0123456789ABxyzCDE", 18) == 0, "content %.18s, expected 0123456789ABxyzCDE",
          got);
    return 0;
}

/* Writers in several processes append fixed-size records at once: every
 * record lands whole, none is lost or overwritten. */
static int append_atomic(pt_ctx *c)
{
    (void)c;
    enum { PROCS = 4, RECS = 400, RLEN = 100 };
    int fd0 = open("log", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    OK(fd0);
    close(fd0);
    for (int p = 0; p < PROCS; p++) {
        pid_t pid = fork();
        OK(pid);
        if (pid == 0) {
            int fd = open("log", O_WRONLY | O_APPEND);
            if (fd < 0)
                _exit(1);
            for (int i = 0; i < RECS; i++) {
                char rec[RLEN];
                memset(rec, 'a' + p, sizeof(rec));
                snprintf(rec, sizeof(rec), "<%d:%06d>", p, i);
                rec[10] = 'a' + p;
                rec[RLEN - 1] = '\n';
                if (write(fd, rec, RLEN) != RLEN)
                    _exit(2);
            }
            _exit(close(fd) == 0 ? 0 : 3);
        }
    }
    int bad = 0;
    for (int p = 0; p < PROCS; p++) {
        int st;
        wait(&st);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            bad++;
    }
    EQ(bad, 0);
    struct stat st;
    OK(stat("log", &st));
    EQ(st.st_size, PROCS * RECS * RLEN);
    char *buf = malloc((size_t)st.st_size);
    CHECK(buf, "malloc");
    EQ(pt_read_file("log", buf, (size_t)st.st_size), st.st_size);
    int next[PROCS] = {0};
    for (long r = 0; r < PROCS * RECS; r++) {
        char *rec = buf + r * RLEN;
        int p, i;
        CHECK(sscanf(rec, "<%d:%06d>", &p, &i) == 2 && p >= 0 && p < PROCS,
              "record %ld at offset %ld is torn: %.12s", r, r * RLEN, rec);
        CHECK(i == next[p], "writer %d: record %d where %d was due (offset %ld)", p, i, next[p],
              r * RLEN);
        next[p]++;
        for (int k = 10; k < RLEN - 1; k++)
            CHECK(rec[k] == 'a' + p, "record %ld byte %d is %c, expected %c", r, k, rec[k],
                  'a' + p);
    }
    free(buf);
    return 0;
}

static int direct(pt_ctx *c)
{
    (void)c;
    void *buf, *got;
    CHECK(posix_memalign(&buf, 4096, 65536) == 0 && posix_memalign(&got, 4096, 65536) == 0,
          "memalign");
    pt_fill(buf, 65536, 4, 0);
    int fd = open("f", O_RDWR | O_CREAT | O_DIRECT, 0644);
    OK(fd);
    EQ(pwrite(fd, buf, 65536, 0), 65536);
    EQ(pwrite(fd, buf, 4096, 65536 + 4096), 4096);
    memset(got, 0, 65536);
    EQ(pread(fd, got, 65536, 0), 65536);
    long d = pt_check_fill(got, 65536, 4, 0);
    CHECK(d < 0, "O_DIRECT read back differs at %ld", d);
    close(fd);
    struct stat st;
    OK(stat("f", &st));
    EQ(st.st_size, 65536 + 8192);
    /* buffered readers see what O_DIRECT wrote */
    EQ(pt_read_file("f", got, 65536), 65536);
    d = pt_check_fill(got, 65536, 4, 0);
    CHECK(d < 0, "buffered read after O_DIRECT write differs at %ld", d);
    free(buf);
    free(got);
    return 0;
}

static int o_tmpfile(pt_ctx *c)
{
    (void)c;
    errno = 0;
    int fd = open(".", O_TMPFILE | O_RDWR, 0600);
    if (fd < 0) {
        CHECK(errno == EOPNOTSUPP, "O_TMPFILE: %s, expected success or EOPNOTSUPP",
              pt_errname(errno));
        /* the failure left nothing behind */
        struct stat st;
        OK(stat(".", &st));
        EQ(st.st_nlink, 2);
        return 0;
    }
    struct stat st;
    OK(fstat(fd, &st));
    EQ(st.st_nlink, 0);
    EQ_MODE(st.st_mode, S_IFREG | 0600);
    EQ(write(fd, "temporary", 9), 9);
    char got[16];
    EQ(pt_pread_all(fd, got, sizeof(got), 0), 9);
    char proc[64];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    OK(linkat(AT_FDCWD, proc, AT_FDCWD, "named", AT_SYMLINK_FOLLOW));
    close(fd);
    EQ(pt_read_file("named", got, sizeof(got)), 9);
    CHECK(memcmp(got, "temporary", 9) == 0, "linked O_TMPFILE content");
    OK(stat("named", &st));
    EQ(st.st_nlink, 1);
    /* O_EXCL: never linkable */
    fd = open(".", O_TMPFILE | O_RDWR | O_EXCL, 0600);
    OK(fd);
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    ERR(linkat(AT_FDCWD, proc, AT_FDCWD, "named2", AT_SYMLINK_FOLLOW), ENOENT);
    close(fd);
    return 0;
}

static int errors(pt_ctx *c)
{
    (void)c;
    OK(mkdir("d", 0755));
    OK(pt_write_file("f", "x", 1, 0644));
    ERR(open("nope", O_RDONLY), ENOENT);
    ERR(open("nodir/f", O_WRONLY | O_CREAT, 0644), ENOENT);
    ERR(open("d", O_WRONLY), EISDIR);
    ERR(open("d", O_RDWR), EISDIR);
    ERR(open("d", O_WRONLY | O_CREAT, 0644), EISDIR);
    ERR(open("f", O_RDONLY | O_DIRECTORY), ENOTDIR);
    ERR(open("f/x", O_RDONLY), ENOTDIR);
    ERR(open("new/", O_WRONLY | O_CREAT, 0644), EISDIR);
    ERR(open("f/", O_RDONLY), ENOTDIR);
    int fd = open("f", O_RDONLY);
    OK(fd);
    ERR(write(fd, "x", 1), EBADF);
    close(fd);
    fd = open("f", O_WRONLY);
    OK(fd);
    char b;
    ERR(read(fd, &b, 1), EBADF);
    close(fd);
    fd = open("d", O_RDONLY);
    OK(fd);
    ERR(read(fd, &b, 1), EISDIR);
    close(fd);
    return 0;
}

static int name_max(pt_ctx *c)
{
    (void)c;
    char n[300];
    memset(n, 'o', 255);
    n[255] = 0;
    int fd = open(n, O_WRONLY | O_CREAT, 0644);
    OK(fd);
    close(fd);
    struct stat st;
    OK(stat(n, &st));
    n[255] = 'o';
    n[256] = 0;
    ERR(open(n, O_WRONLY | O_CREAT, 0644), ENAMETOOLONG);
    ERR(stat(n, &st), ENAMETOOLONG);
    return 0;
}

static int rw_roundtrip(pt_ctx *c)
{
    (void)c;
    size_t n = 1 << 20;
    char *buf = malloc(n), *got = malloc(n);
    CHECK(buf && got, "malloc");
    pt_fill(buf, n, 5, 0);
    int fd = open("f", O_RDWR | O_CREAT, 0644);
    OK(fd);
    /* odd-sized writes, then reads through the same descriptor */
    size_t off = 0, step = 1;
    while (off < n) {
        size_t k = step < n - off ? step : n - off;
        EQ(write(fd, buf + off, k), (ssize_t)k);
        off += k;
        step = step * 3 + 1;
    }
    EQ(pt_pread_all(fd, got, n, 0), (ssize_t)n);
    long d = pt_check_fill(got, n, 5, 0);
    CHECK(d < 0, "read through the writing fd differs at %ld", d);
    close(fd);
    memset(got, 0, n);
    EQ(pt_read_file("f", got, n), (ssize_t)n);
    d = pt_check_fill(got, n, 5, 0);
    CHECK(d < 0, "read after close differs at %ld", d);
    free(buf);
    free(got);
    return 0;
}

static int setup_perm(pt_ctx *c)
{
    OK(pt_write_file("secret", "s", 1, 0600));
    OK(pt_write_file("readable", "r", 1, 0644));
    OK(pt_write_file("writable", "w", 1, 0666));
    OK(chmod("writable", 0666));
    /* owner class wins even when group/other would allow */
    OK(pt_write_file("own_noaccess", "o", 1, 0077));
    OK(chmod("own_noaccess", 0077));
    OK(chown("own_noaccess", c->uid, c->other_gid));
    /* group class wins over other */
    OK(pt_write_file("grp_noaccess", "g", 1, 0606));
    OK(chmod("grp_noaccess", 0606));
    OK(chown("grp_noaccess", c->other_uid, c->gid));
    /* supplementary group membership counts */
    OK(pt_write_file("supp_ok", "s", 1, 0060));
    OK(chmod("supp_ok", 0060));
    OK(chown("supp_ok", c->other_uid, c->supp));
    OK(mkdir("rootdir", 0755));
    OK(pt_write_file("rootdir/f", "x", 1, 0666));
    OK(chmod("rootdir/f", 0666));
    return 0;
}

static int perm(pt_ctx *c)
{
    (void)c;
    ERR(open("secret", O_RDONLY), EACCES);
    ERR(open("secret", O_WRONLY), EACCES);
    int fd = open("readable", O_RDONLY);
    OK(fd);
    close(fd);
    ERR(open("readable", O_WRONLY), EACCES);
    ERR(open("readable", O_RDWR), EACCES);
    ERR(open("readable", O_RDONLY | O_TRUNC), EACCES);
    ERR(truncate("readable", 0), EACCES);
    fd = open("writable", O_RDWR);
    OK(fd);
    close(fd);
    ERR(open("own_noaccess", O_RDONLY), EACCES);
    ERR(open("grp_noaccess", O_RDONLY), EACCES);
    fd = open("supp_ok", O_RDWR);
    OK(fd);
    close(fd);
    ERR(open("rootdir/new", O_WRONLY | O_CREAT, 0644), EACCES);
    fd = open("rootdir/f", O_WRONLY);
    OK(fd);
    close(fd);
    /* access(2) reports the same decisions */
    ERR(access("secret", R_OK), EACCES);
    OK(access("readable", R_OK));
    ERR(access("readable", W_OK), EACCES);
    ERR(access("readable", X_OK), EACCES);
    OK(access("supp_ok", R_OK | W_OK));
    struct stat st;
    OK(stat("readable", &st));
    EQ(st.st_size, 1);
    return 0;
}

static int dir_search(pt_ctx *c)
{
    (void)c;
    struct stat st;
    OK(mkdir("d", 0755));
    OK(pt_write_file("d/f", "x", 1, 0644));
    OK(chmod("d", 0644)); /* read, no search */
    ERR(open("d/f", O_RDONLY), EACCES);
    ERR(stat("d/f", &st), EACCES);
    OK(chmod("d", 0311)); /* search, no read */
    int fd = open("d/f", O_RDONLY);
    OK(fd);
    close(fd);
    ERR(open("d", O_RDONLY | O_DIRECTORY), EACCES);
    OK(chmod("d", 0755));
    return 0;
}

static int exec_bits(pt_ctx *c)
{
    (void)c;
    OK(pt_write_file("f", "#!/bin/sh\nexit 7\n", 17, 0644));
    ERR(access("f", X_OK), EACCES);
    OK(chmod("f", 0700));
    OK(access("f", X_OK));
    pid_t pid = fork();
    OK(pid);
    if (pid == 0) {
        char *argv[] = {"f", NULL};
        execv("./f", argv);
        _exit(errno == EACCES ? 90 : 91);
    }
    int st;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 7, "running the script: status 0x%x", st);
    return 0;
}

static int root_bypass(pt_ctx *c)
{
    (void)c;
    OK(pt_write_file("f", "data", 4, 0644));
    OK(chmod("f", 0));
    int fd = open("f", O_RDWR);
    OK(fd);
    close(fd);
    /* root needs at least one execute bit to execute */
    ERR(access("f", X_OK), EACCES);
    OK(chmod("f", 0010));
    OK(access("f", X_OK));
    OK(mkdir("d", 0));
    OK(pt_write_file("d/g", "x", 1, 0644));
    OK(access("d", R_OK | W_OK | X_OK));
    return 0;
}

const pt_case pt_open_cases[] = {
    {"open/creat_mode_umask", PT_BOTH, NULL, creat_mode},
    {"open/creat_owner_times", PT_BOTH, NULL, creat_owner_times},
    {"open/excl", PT_BOTH, NULL, excl},
    {"open/excl_concurrent", PT_BOTH, NULL, excl_concurrent},
    {"open/trunc", PT_BOTH, NULL, o_trunc},
    {"open/append", PT_BOTH, NULL, append},
    {"open/append_atomic", PT_BOTH, NULL, append_atomic},
    {"open/direct", PT_BOTH, NULL, direct},
    {"open/tmpfile", PT_BOTH, NULL, o_tmpfile},
    {"open/errors", PT_BOTH, NULL, errors},
    {"open/name_max", PT_BOTH, NULL, name_max},
    {"open/rw_roundtrip", PT_BOTH, NULL, rw_roundtrip},
    {"open/permissions", PT_USER, setup_perm, perm},
    {"open/dir_search", PT_USER, NULL, dir_search},
    {"open/exec_bits", PT_BOTH, NULL, exec_bits},
    {"open/root_bypass", PT_ROOT, NULL, root_bypass},
    {NULL, 0, NULL, NULL},
};
