/*
 * posix_suite — POSIX conformance cases, run inside a directory.
 *
 *   posix_suite [--as-user UID:GID[:SUPP]] [--only PAT[,PAT...]] [--list]
 *               [--timeout SEC] [--keep] DIR
 *
 * Every case runs in a forked child in a fresh subdirectory of DIR named
 * after the case, and prints one line: "PASS <syscall>/<case>" or
 * "FAIL <syscall>/<case> <detail>". The last line is "N passed, N failed";
 * the exit status is 0 only when nothing failed. A passing case's
 * directory is removed; a failing one's is kept for inspection.
 *
 * Without --as-user the cases for root run. With it, DIR is given to
 * UID:GID and each case drops to that user (groups GID and SUPP, default
 * SUPP 65533) after its root-owned fixtures are made; see suite.h.
 */
#include "tests/posix/suite.h"

#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static const pt_case *const tables[] = {
    pt_chmod_cases,   pt_chown_cases,    pt_link_cases,     pt_mkdir_cases,  pt_mknod_cases,
    pt_open_cases,    pt_rename_cases,   pt_rmdir_cases,    pt_symlink_cases,
    pt_truncate_cases, pt_ftruncate_cases, pt_unlink_cases, pt_utimensat_cases,
    pt_times_cases,   pt_xattr_cases,    pt_lseek_cases,    pt_mmap_cases,   pt_cfr_cases,
    pt_statfs_cases,  pt_names_cases,    pt_size_cases,     pt_write_cases,  NULL,
};

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP)
        return rmdir(path) == 0 || errno == ENOENT ? 0 : 0;
    unlink(path);
    return 0;
}

static void rm_rf(const char *path)
{
    nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS);
}

static int match(const char *name, const char *only)
{
    if (!only)
        return 1;
    char *copy = strdup(only), *save = NULL;
    int hit = 0;
    for (char *t = strtok_r(copy, ",", &save); t && !hit; t = strtok_r(NULL, ",", &save))
        if (strstr(name, t))
            hit = 1;
    free(copy);
    return hit;
}

static void usage(void)
{
    fprintf(stderr, "usage: posix_suite [--as-user UID:GID[:SUPP]] [--only PAT[,PAT...]] "
                    "[--list] [--timeout SEC] [--keep] DIR\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int as_user = 0, list = 0, keep = 0;
    unsigned timeout = 180;
    long uid = 0, gid = 0, supp = 65533;
    const char *only = NULL, *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--as-user") == 0 && i + 1 < argc) {
            int n = sscanf(argv[++i], "%ld:%ld:%ld", &uid, &gid, &supp);
            if (n < 2 || uid <= 0 || gid <= 0 || supp <= 0)
                usage();
            as_user = 1;
        } else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
            only = argv[++i];
        } else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
            timeout = (unsigned)atoi(argv[++i]);
        } else if (strcmp(argv[i], "--list") == 0) {
            list = 1;
        } else if (strcmp(argv[i], "--keep") == 0) {
            keep = 1;
        } else if (argv[i][0] == '-') {
            usage();
        } else if (!dir) {
            dir = argv[i];
        } else {
            usage();
        }
    }
    unsigned mode = as_user ? PT_USER : PT_ROOT;
    if (list) {
        for (int t = 0; tables[t]; t++)
            for (const pt_case *c = tables[t]; c->name; c++)
                if ((c->modes & mode) && match(c->name, only))
                    printf("%s\n", c->name);
        return 0;
    }
    if (!dir)
        usage();
    if (geteuid() != 0) {
        fprintf(stderr, "posix_suite: must start as root (it drops privileges itself)\n");
        return 2;
    }
    char absdir[PATH_MAX];
    if (!realpath(dir, absdir)) {
        fprintf(stderr, "posix_suite: %s: %s\n", dir, strerror(errno));
        return 2;
    }
    if (as_user && (chown(absdir, (uid_t)uid, (gid_t)gid) != 0 || chmod(absdir, 0755) != 0)) {
        fprintf(stderr, "posix_suite: cannot give %s to %ld:%ld: %s\n", absdir, uid, gid,
                strerror(errno));
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* The child's detail line comes back through a shared page. */
    char *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED) {
        perror("mmap");
        return 2;
    }
    int passed = 0, failed = 0;
    for (int t = 0; tables[t]; t++) {
        for (const pt_case *c = tables[t]; c->name; c++) {
            if (!(c->modes & mode) || !match(c->name, only))
                continue;
            char cdir[PATH_MAX + 256];
            snprintf(cdir, sizeof(cdir), "%s/%s", absdir, c->name);
            for (char *p = cdir + strlen(absdir) + 1; *p; p++)
                if (*p == '/')
                    *p = '.';
            rm_rf(cdir);
            memset(shared, 0, 4096);
            pid_t pid = fork();
            if (pid < 0) {
                perror("fork");
                return 2;
            }
            if (pid == 0) {
                pt_ctx ctx = {
                    .dir = cdir,
                    .user = as_user,
                    .uid = (uid_t)uid,
                    .gid = (gid_t)gid,
                    .supp = (gid_t)supp,
                    .other_uid = 54321,
                    .other_gid = 54321,
                };
                int rc = 0;
                alarm(timeout);
                umask(022);
                if (mkdir(cdir, 0755) != 0 || chdir(cdir) != 0)
                    rc = PT_FAIL("cannot make case directory %s: %s", cdir, pt_errname(errno));
                if (rc == 0 && as_user && chown(cdir, (uid_t)uid, (gid_t)gid) != 0)
                    rc = PT_FAIL("chown %s: %s", cdir, pt_errname(errno));
                if (rc == 0 && c->setup && (rc = c->setup(&ctx)) != 0)
                    rc = PT_FAIL("setup (as root): %s", pt_detail());
                if (rc == 0 && as_user) {
                    gid_t groups[2] = {(gid_t)gid, (gid_t)supp};
                    if (setgroups(2, groups) != 0 || setgid((gid_t)gid) != 0 ||
                        setuid((uid_t)uid) != 0)
                        rc = PT_FAIL("dropping privileges: %s", pt_errname(errno));
                }
                if (rc == 0) {
                    umask(022);
                    rc = c->run(&ctx);
                }
                snprintf(shared, 4096, "%s", rc ? pt_detail() : "");
                fflush(NULL);
                _exit(rc ? 1 : 0);
            }
            int st = 0;
            while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
                ;
            int ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
            if (ok) {
                printf("PASS %s\n", c->name);
                passed++;
                if (!keep)
                    rm_rf(cdir);
            } else {
                char why[4200];
                if (WIFSIGNALED(st))
                    snprintf(why, sizeof(why), "killed by signal %d (%s)%s", WTERMSIG(st),
                             strsignal(WTERMSIG(st)),
                             WTERMSIG(st) == SIGALRM ? ", case time limit" : "");
                else
                    snprintf(why, sizeof(why), "%s", shared[0] ? shared : "failed (no detail)");
                printf("FAIL %s %s\n", c->name, why);
                failed++;
            }
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
