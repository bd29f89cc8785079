/*
 * suite.h — the POSIX conformance suite (build/tests/posix_suite).
 *
 * One program, cases grouped by system call in one file each
 * (chmod.c, rename.c, ...). Every file exports one table of cases,
 * terminated by an entry whose name is NULL, and main.c lists the tables.
 *
 * A case runs in a forked child, inside a fresh directory of its own (the
 * child's working directory; ctx->dir is its absolute path), with umask
 * 022 and an alarm as a time limit. It returns 0 when every check held, or
 * the value of PT_FAIL...(), which records one line of detail: the file
 * line, what was done, and what was seen against what was expected.
 *
 * Modes:
 *   root mode    the process stays root; cases flagged PT_ROOT run.
 *   user mode    (--as-user UID:GID[:SUPP]) each case's directory is made
 *                and owned by UID:GID, the case's setup function (if any)
 *                runs as root inside it to build fixtures owned by others,
 *                then the child drops to UID, GID and groups {GID, SUPP}
 *                and runs the cases flagged PT_USER.
 * A case flagged PT_BOTH runs in both modes; ctx->user tells which.
 */
#ifndef CAIRN_POSIX_SUITE_H
#define CAIRN_POSIX_SUITE_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#define PT_ROOT 1u
#define PT_USER 2u
#define PT_BOTH (PT_ROOT | PT_USER)

typedef struct pt_ctx {
    const char *dir;  /* absolute path of this case's directory (= cwd) */
    int user;         /* 1 in user mode (unprivileged), 0 as root */
    uid_t uid;        /* our uid (0 as root) */
    gid_t gid;        /* our primary gid */
    gid_t supp;       /* a supplementary group we are a member of (user mode) */
    uid_t other_uid;  /* a uid that is neither ours nor root */
    gid_t other_gid;  /* a gid we are not a member of */
} pt_ctx;

typedef int (*pt_fn)(pt_ctx *ctx);

typedef struct pt_case {
    const char *name;   /* "syscall/case" */
    unsigned modes;     /* PT_ROOT, PT_USER or PT_BOTH */
    pt_fn setup;        /* runs as root before privileges are dropped, or NULL */
    pt_fn run;
} pt_case;

/* ---- the tables (one per file) ---- */
extern const pt_case pt_chmod_cases[];
extern const pt_case pt_chown_cases[];
extern const pt_case pt_link_cases[];
extern const pt_case pt_mkdir_cases[];
extern const pt_case pt_mknod_cases[];
extern const pt_case pt_open_cases[];
extern const pt_case pt_rename_cases[];
extern const pt_case pt_rmdir_cases[];
extern const pt_case pt_symlink_cases[];
extern const pt_case pt_truncate_cases[];
extern const pt_case pt_ftruncate_cases[];
extern const pt_case pt_unlink_cases[];
extern const pt_case pt_utimensat_cases[];
extern const pt_case pt_times_cases[];
extern const pt_case pt_xattr_cases[];
extern const pt_case pt_lseek_cases[];
extern const pt_case pt_mmap_cases[];
extern const pt_case pt_cfr_cases[];
extern const pt_case pt_statfs_cases[];
extern const pt_case pt_names_cases[];
extern const pt_case pt_size_cases[];
extern const pt_case pt_write_cases[];

/* ---- failure reporting (common.c) ---- */

/* Record the failure detail ("file:line: message") and return 1. */
int pt_fail_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The detail recorded by the last pt_fail_at ("" if none). */
const char *pt_detail(void);
/* "EACCES" for EACCES, "0" for 0, "E?(n)" for an unknown value. */
const char *pt_errname(int e);

#define PT_FAIL(...) pt_fail_at(__FILE__, __LINE__, __VA_ARGS__)

/* cond must hold, else fail with the printf-style message. */
#define CHECK(cond, ...)                                                                    \
    do {                                                                                    \
        if (!(cond))                                                                        \
            return pt_fail_at(__FILE__, __LINE__, __VA_ARGS__);                             \
    } while (0)

/* expr (a syscall-like expression returning -1 on error) must succeed. */
#define OK(expr)                                                                            \
    do {                                                                                    \
        errno = 0;                                                                          \
        long pt_r_ = (long)(expr);                                                          \
        if (pt_r_ == -1)                                                                    \
            return pt_fail_at(__FILE__, __LINE__, "%s: %s, expected success", #expr,        \
                              pt_errname(errno));                                           \
    } while (0)

/* expr must fail with errno e. */
#define ERR(expr, e)                                                                        \
    do {                                                                                    \
        errno = 0;                                                                          \
        long pt_r_ = (long)(expr);                                                          \
        int pt_e_ = errno;                                                                  \
        if (pt_r_ != -1)                                                                    \
            return pt_fail_at(__FILE__, __LINE__, "%s: returned %ld, expected %s", #expr,   \
                              pt_r_, pt_errname(e));                                        \
        if (pt_e_ != (e))                                                                   \
            return pt_fail_at(__FILE__, __LINE__, "%s: %s, expected %s", #expr,             \
                              pt_errname(pt_e_), pt_errname(e));                            \
    } while (0)

/* expr must fail with errno e1 or e2. */
#define ERR2(expr, e1, e2)                                                                  \
    do {                                                                                    \
        errno = 0;                                                                          \
        long pt_r_ = (long)(expr);                                                          \
        int pt_e_ = errno;                                                                  \
        if (pt_r_ != -1)                                                                    \
            return pt_fail_at(__FILE__, __LINE__, "%s: returned %ld, expected %s or %s",    \
                              #expr, pt_r_, pt_errname(e1), pt_errname(e2));                \
        if (pt_e_ != (e1) && pt_e_ != (e2))                                                 \
            return pt_fail_at(__FILE__, __LINE__, "%s: %s, expected %s or %s", #expr,       \
                              pt_errname(pt_e_), pt_errname(e1), pt_errname(e2));           \
    } while (0)

/* Integer equality with both values in the message. */
#define EQ(a, b)                                                                            \
    do {                                                                                    \
        long long pt_a_ = (long long)(a), pt_b_ = (long long)(b);                           \
        if (pt_a_ != pt_b_)                                                                 \
            return pt_fail_at(__FILE__, __LINE__, "%s = %lld, expected %lld", #a, pt_a_,    \
                              pt_b_);                                                       \
    } while (0)

/* Mode equality, printed in octal. */
#define EQ_MODE(a, b)                                                                       \
    do {                                                                                    \
        unsigned pt_a_ = (unsigned)(a), pt_b_ = (unsigned)(b);                              \
        if (pt_a_ != pt_b_)                                                                 \
            return pt_fail_at(__FILE__, __LINE__, "%s = 0%o, expected 0%o", #a, pt_a_,      \
                              pt_b_);                                                       \
    } while (0)

/* ---- helpers (common.c) ---- */

/* Create (O_TRUNC) path with the given bytes and mode; 0 or -1 (errno). */
int pt_write_file(const char *path, const void *buf, size_t n, mode_t mode);
/* Read at most cap bytes of path; bytes read or -1. */
ssize_t pt_read_file(const char *path, void *buf, size_t cap);
/* Full pread/pwrite loops; bytes done or -1. */
ssize_t pt_pread_all(int fd, void *buf, size_t n, off_t off);
ssize_t pt_pwrite_all(int fd, const void *buf, size_t n, off_t off);
/* Deterministic pattern: byte i of stream seed at offset off. */
void pt_fill(void *buf, size_t n, uint64_t seed, uint64_t off);
/* Offset of the first byte where buf differs from pt_fill(seed, off), or -1. */
long pt_check_fill(const void *buf, size_t n, uint64_t seed, uint64_t off);
/* Offset of the first non-zero byte, or -1. */
long pt_first_nonzero(const void *buf, size_t n);
/* stat/lstat that report failure with errno set; wrap them in OK(). */
int pt_stat(const char *path, struct stat *st);
int pt_lstat(const char *path, struct stat *st);

/* Timestamps as nanoseconds since the epoch. */
int64_t pt_ns(struct timespec t);
int64_t pt_now(void);
/* Make sure the coarse real-time clock has moved past ns, so that the next
 * file system change gets a later timestamp than ns (bounded: 2 s). */
void pt_wait_past(int64_t ns);
/* Set atime and mtime of path (no symlink follow = 0) to given ns values. */
int pt_set_times(const char *path, int64_t atime_ns, int64_t mtime_ns);
/* ns is within [lo - slack, hi + slack] where slack covers clock
 * granularity; 1 if so. */
int pt_time_near(int64_t ns, int64_t lo, int64_t hi);

/* A time well in the past, used as a baseline before a change. */
#define PT_OLD_NS (1000000000LL * 1000000000LL + 123456789LL) /* 2001-09-09 */

/* Checks on a changed/unchanged timestamp against a baseline. Usage:
 *   CHECK_ADVANCED(st.st_mtim, before_ns, "mtime after write"); */
#define CHECK_ADVANCED(ts, base, what)                                                      \
    CHECK(pt_ns(ts) > (base), "%s did not advance: %lld.%09ld, baseline %lld.%09lld",       \
          what, (long long)(ts).tv_sec, (long)(ts).tv_nsec, (long long)((base) / 1000000000), \
          (long long)((base) % 1000000000))
#define CHECK_SAME_TIME(ts, base, what)                                                     \
    CHECK(pt_ns(ts) == (base), "%s changed: %lld.%09ld, expected %lld.%09lld", what,         \
          (long long)(ts).tv_sec, (long)(ts).tv_nsec, (long long)((base) / 1000000000),     \
          (long long)((base) % 1000000000))

#endif
