/*
 * harness.c — test helpers for spawning real daemons (contract: harness.h).
 *
 * Plain libc only: this file is linked into cmocka tests and into tools.
 * Children stay in our process group, so a runner that kills the group on
 * timeout takes them along; each child also asks the kernel to SIGKILL it
 * when the test process dies without running its atexit handler.
 */
#include "tests/lib/harness.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* How long start_metad/start_chunkd wait for the address file; generous
 * because sanitizer builds on a loaded machine start slowly. */
#define START_TIMEOUT_MS 30000
#define LOG_TAIL_MAX (64 * 1024)
#define MAX_CHILDREN 128
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* Every child we started and have not reaped through proc_stop/kill9.
 * A child reaped by proc_alive keeps its slot (with its status) until
 * proc_stop or proc_kill9 collects it. */
static struct child {
    pid_t pid;
    int reaped;
    int status;
} children[MAX_CHILDREN];
static int atexit_done;
static unsigned log_seq;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

static struct child *child_find(pid_t pid)
{
    for (size_t i = 0; i < MAX_CHILDREN; i++)
        if (children[i].pid == pid)
            return &children[i];
    return NULL;
}

static void child_forget(pid_t pid)
{
    struct child *c = child_find(pid);
    if (c)
        memset(c, 0, sizeof(*c));
}

/* Non-blocking reap; returns 1 if the child has exited (status filled). */
static int child_reap(pid_t pid, int *status)
{
    struct child *c = child_find(pid);
    if (c && c->reaped) {
        *status = c->status;
        return 1;
    }
    pid_t r;
    do {
        r = waitpid(pid, status, WNOHANG);
    } while (r == -1 && errno == EINTR);
    if (r == pid || (r == -1 && errno == ECHILD)) {
        if (r == -1)
            *status = -1;
        if (c) {
            c->reaped = 1;
            c->status = *status;
        }
        return 1;
    }
    return 0;
}

static int child_wait_blocking(pid_t pid)
{
    int status;
    struct child *c = child_find(pid);
    if (c && c->reaped)
        return c->status;
    pid_t r;
    do {
        r = waitpid(pid, &status, 0);
    } while (r == -1 && errno == EINTR);
    return r == pid ? status : -1;
}

static void kill_all_children(void)
{
    for (size_t i = 0; i < MAX_CHILDREN; i++) {
        if (children[i].pid > 0 && !children[i].reaped) {
            kill(children[i].pid, SIGKILL);
            child_wait_blocking(children[i].pid);
        }
        memset(&children[i], 0, sizeof(children[i]));
    }
}

char *tmpdir_make(const char *tag)
{
    const char *base = getenv("TMPDIR");
    if (!base || !base[0])
        base = "/tmp";
    size_t n = strlen(base) + strlen(tag) + 32;
    char *p = malloc(n);
    if (!p)
        return NULL;
    snprintf(p, n, "%s/cairn-%s-XXXXXX", base, tag);
    if (!mkdtemp(p)) {
        fprintf(stderr, "harness: mkdtemp %s: %s\n", p, strerror(errno));
        free(p);
        return NULL;
    }
    return p;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    if (remove(path) != 0 && errno != ENOENT)
        fprintf(stderr, "harness: remove %s: %s\n", path, strerror(errno));
    return 0;
}

void tmpdir_remove(const char *path)
{
    if (!path || !path[0] || strcmp(path, "/") == 0)
        return;
    nftw(path, rm_entry, 32, FTW_DEPTH | FTW_PHYS);
}

char *bin_path(const char *name)
{
    const char *build = getenv("BUILD");
    const char *root = getenv("CAIRN_ROOT");
    if (!build || !build[0])
        build = "build";
    /* a relative $BUILD is relative to the source tree when the runner
     * says where it is, so tests may run from any directory */
    int rel = build[0] != '/' && root && root[0];
    size_t n = (rel ? strlen(root) + 1 : 0) + strlen(build) + strlen(name) + 8;
    char *p = malloc(n);
    if (!p)
        return NULL;
    if (rel)
        snprintf(p, n, "%s/%s/bin/%s", root, build, name);
    else
        snprintf(p, n, "%s/bin/%s", build, name);
    return p;
}

static void print_log(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        fprintf(stderr, "harness: no log %s: %s\n", path, strerror(errno));
        return;
    }
    off_t end = lseek(fd, 0, SEEK_END);
    off_t from = end > LOG_TAIL_MAX ? end - LOG_TAIL_MAX : 0;
    lseek(fd, from, SEEK_SET);
    fprintf(stderr, "---- %s%s ----\n", path, from ? " (tail)" : "");
    char b[4096];
    ssize_t n;
    while ((n = read(fd, b, sizeof(b))) > 0)
        fwrite(b, 1, (size_t)n, stderr);
    fprintf(stderr, "---- end of %s ----\n", path);
    close(fd);
}

/* Reads "HOST:PORT\n"; returns 1 when complete and well formed. */
static int read_addr_file(const char *path, proc *p)
{
    char b[sizeof(p->addr) + 2];
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, b, sizeof(b) - 1);
    close(fd);
    if (n <= 1 || b[n - 1] != '\n')
        return 0;
    b[n - 1] = 0;
    char *colon = strrchr(b, ':');
    if (!colon || colon == b || !colon[1] || (size_t)(n - 1) >= sizeof(p->addr))
        return 0;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port <= 0 || port > 65535)
        return 0;
    memcpy(p->addr, b, (size_t)n);
    memcpy(p->url, "http://", 7);
    memcpy(p->url + 7, b, (size_t)n);
    return 1;
}

int proc_start(proc *p, const char *dir, const char *const *argv, const char *addr_file,
               int timeout_ms)
{
    memset(p, 0, sizeof(*p));
    if (!argv || !argv[0])
        return -EINVAL;
    const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    char *path = argv[0][0] == '/' ? strdup(argv[0]) : bin_path(argv[0]);
    if (!path)
        return -ENOMEM;
    if (access(path, X_OK) != 0) {
        int e = errno;
        fprintf(stderr, "harness: %s: %s\n", path, strerror(e));
        free(path);
        return -e;
    }
    snprintf(p->log, sizeof(p->log), "%s/%s.%u.log", dir, name, log_seq++);

    size_t argc = 0;
    while (argv[argc])
        argc++;
    char **av = calloc(argc + 1, sizeof(*av));
    if (!av) {
        free(path);
        return -ENOMEM;
    }
    av[0] = path;
    for (size_t i = 1; i < argc; i++)
        av[i] = (char *)argv[i];

    /* a stale file from an earlier run in this dir must not be mistaken
     * for the new process being ready */
    if (addr_file)
        unlink(addr_file);

    struct child *slot = child_find(0);
    if (!slot) {
        fprintf(stderr, "harness: more than %d live children\n", MAX_CHILDREN);
        free(av);
        free(path);
        return -EAGAIN;
    }
    if (!atexit_done) {
        atexit(kill_all_children);
        atexit_done = 1;
    }

    fflush(NULL);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        free(av);
        free(path);
        return -e;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int fd = open(p->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0 || nul < 0)
            _exit(127);
        dup2(nul, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        signal(SIGPIPE, SIG_DFL);
        execv(av[0], av);
        dprintf(2, "harness: exec %s: %s\n", av[0], strerror(errno));
        _exit(127);
    }
    free(av);
    free(path);
    slot->pid = pid;
    slot->reaped = 0;
    slot->status = 0;
    p->pid = pid;

    if (!addr_file)
        return 0;
    if (timeout_ms <= 0)
        timeout_ms = START_TIMEOUT_MS;
    int64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        if (read_addr_file(addr_file, p))
            return 0;
        int status;
        if (child_reap(pid, &status)) {
            fprintf(stderr, "harness: %s exited before writing %s (status 0x%x)\n", name,
                    addr_file, status);
            print_log(p->log);
            child_forget(pid);
            p->pid = 0;
            return -ECHILD;
        }
        if (mono_ms() >= deadline)
            break;
        sleep_ms(10);
    }
    fprintf(stderr, "harness: %s did not write %s within %d ms\n", name, addr_file, timeout_ms);
    print_log(p->log);
    proc_kill9(p);
    return -ETIMEDOUT;
}

int proc_stop(proc *p, int timeout_ms)
{
    if (!p || p->pid <= 0)
        return -1;
    pid_t pid = p->pid;
    int status = -1;
    if (!child_reap(pid, &status)) {
        kill(pid, SIGTERM);
        int64_t deadline = mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
        int done = 0;
        while (!(done = child_reap(pid, &status)) && mono_ms() < deadline)
            sleep_ms(10);
        if (!done) {
            fprintf(stderr, "harness: pid %d ignored SIGTERM for %d ms, killing it\n", (int)pid,
                    timeout_ms);
            kill(pid, SIGKILL);
            status = child_wait_blocking(pid);
        }
    }
    child_forget(pid);
    p->pid = 0;
    return status;
}

void proc_kill9(proc *p)
{
    if (!p || p->pid <= 0)
        return;
    int status;
    if (!child_reap(p->pid, &status)) {
        kill(p->pid, SIGKILL);
        child_wait_blocking(p->pid);
    }
    child_forget(p->pid);
    p->pid = 0;
}

int proc_alive(proc *p)
{
    int status;
    if (!p || p->pid <= 0)
        return 0;
    return !child_reap(p->pid, &status);
}

static int start_daemon(proc *p, const char *dir, const char *const *base, size_t nbase,
                        const char *const *extra, const char *addr_file)
{
    size_t nextra = 0;
    while (extra && extra[nextra])
        nextra++;
    const char **argv = calloc(nbase + nextra + 1, sizeof(*argv));
    if (!argv)
        return -ENOMEM;
    memcpy(argv, base, nbase * sizeof(*argv));
    for (size_t i = 0; i < nextra; i++)
        argv[nbase + i] = extra[i];
    int rc = proc_start(p, dir, argv, addr_file, START_TIMEOUT_MS);
    free(argv);
    return rc;
}

static char *path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

int start_metad(proc *p, const char *dir, const char *const *extra_args)
{
    char *data = path_join(dir, "meta");
    char *addr = path_join(dir, "meta.addr");
    int rc = -ENOMEM;
    if (data && addr) {
        if (mkdir(data, 0755) != 0 && errno != EEXIST) {
            rc = -errno;
        } else {
            const char *base[] = {"cairn-metad", "--data", data, "--listen", "127.0.0.1:0",
                                  "--addr-file", addr, "--format"};
            rc = start_daemon(p, dir, base, NELEM(base), extra_args, addr);
        }
    }
    free(data);
    free(addr);
    return rc;
}

int start_chunkd(proc *p, const char *dir, int n, const char *meta_addr,
                 const char *const *extra_args)
{
    char name[32];
    snprintf(name, sizeof(name), "chunk%d", n);
    char *data = path_join(dir, name);
    snprintf(name, sizeof(name), "chunk%d.addr", n);
    char *addr = path_join(dir, name);
    int rc = -ENOMEM;
    if (data && addr) {
        if (mkdir(data, 0755) != 0 && errno != EEXIST) {
            rc = -errno;
        } else {
            const char *base[] = {"cairn-chunkd", "--data", data, "--listen", "127.0.0.1:0",
                                  "--addr-file", addr, "--meta", meta_addr};
            rc = start_daemon(p, dir, base, NELEM(base), extra_args, addr);
        }
    }
    free(data);
    free(addr);
    return rc;
}

int wait_until(int (*cond)(void *ctx), void *ctx, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        if (cond(ctx))
            return 1;
        if (mono_ms() >= deadline)
            return cond(ctx) ? 1 : 0;
        sleep_ms(10);
    }
}

double metrics_find(const void *text, size_t len, const char *series)
{
    const char *p = text, *end = p + len;
    size_t sl = strlen(series);
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        if ((size_t)(le - p) > sl && memcmp(p, series, sl) == 0 && p[sl] == ' ') {
            char num[64];
            size_t n = (size_t)(le - p) - sl - 1;
            if (n > sizeof(num) - 1)
                n = sizeof(num) - 1;
            memcpy(num, p + sl + 1, n);
            num[n] = 0;
            return strtod(num, NULL);
        }
        p = le + 1;
    }
    return -1;
}
