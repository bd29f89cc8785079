/*
 * harness.h — helpers for server and integration tests written in C.
 *
 * Spawns real daemons from $BUILD/bin (BUILD env var, default "build") on
 * 127.0.0.1 with free ports (--listen 127.0.0.1:0 --addr-file F) and waits
 * for the address file instead of sleeping. Every process is tracked by pid
 * and killed (SIGKILL after a bounded SIGTERM wait) by proc_stop or at exit
 * (an atexit handler stops whatever is still running), so a failing test
 * leaves nothing behind. Temp dirs are removed by tmpdir_remove.
 * Single-threaded test programs only.
 */
#ifndef CAIRN_TEST_HARNESS_H
#define CAIRN_TEST_HARNESS_H

#include <stdint.h>
#include <sys/types.h>

typedef struct proc {
    pid_t pid;
    char addr[64];   /* "127.0.0.1:PORT" from the addr file */
    char url[80];    /* "http://127.0.0.1:PORT" */
    char log[512];   /* path of the process's stderr log */
} proc;

/* mkdtemp under $TMPDIR or /tmp: "cairn-<tag>-XXXXXX"; returns malloc'd path. */
char *tmpdir_make(const char *tag);
/* rm -rf */
void tmpdir_remove(const char *path);

/* Path of a binary in $BUILD/bin (static buffer per call site is not
 * needed: returns malloc'd). A relative $BUILD is taken relative to
 * $CAIRN_ROOT when that is set (tests/run.sh sets it). */
char *bin_path(const char *name);

/* Start argv (argv[0] = binary name in $BUILD/bin, or an absolute path;
 * NULL-terminated), with stderr/stdout to "<dir>/<name>.<n>.log" and stdin
 * from /dev/null. If addr_file is non-NULL it is removed first (a stale
 * one must not look like readiness), then waited for up to timeout_ms
 * (<= 0: 30 s) and p->addr/url are filled. 0 or -errno: -ETIMEDOUT (the
 * process is killed), -ECHILD (it exited before writing the file), -ENOENT
 * or -EACCES (no such binary); on failure the log is printed to stderr to
 * help diagnose and p->pid is 0. */
int proc_start(proc *p, const char *dir, const char *const *argv, const char *addr_file,
               int timeout_ms);
/* SIGTERM, wait up to timeout_ms, then SIGKILL; returns the exit status as
 * waitpid reports it (or -1). Also collects a process that already exited
 * (e.g. seen by proc_alive); p->pid is 0 afterwards. */
int proc_stop(proc *p, int timeout_ms);
/* SIGKILL and reap. */
void proc_kill9(proc *p);
/* 1 if still running. */
int proc_alive(proc *p);

/* Convenience: start cairn-metad --format on dir/meta (created empty if
 * missing) with --addr-file dir/meta.addr; fills p. */
int start_metad(proc *p, const char *dir, const char *const *extra_args);
/* Start cairn-chunkd with data dir dir/chunkN (created if missing) and
 * --addr-file dir/chunkN.addr, registering with meta_addr. */
int start_chunkd(proc *p, const char *dir, int n, const char *meta_addr,
                 const char *const *extra_args);

/* Poll cond(ctx) every 10 ms until it returns nonzero or timeout_ms passes;
 * returns 1 if it became true. For waiting on conditions, never sleeping. */
int wait_until(int (*cond)(void *ctx), void *ctx, int timeout_ms);

/* The value of series (a metric name with its labels, exactly as written)
 * in Prometheus text of len bytes, or -1 when no line has it. */
double metrics_find(const void *text, size_t len, const char *series);

#endif
