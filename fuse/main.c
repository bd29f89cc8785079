/*
 * cairn-mount — mounts a cairn filesystem with FUSE.
 *
 *   cairn-mount [OPTIONS] METAD_HOST:PORT MOUNTPOINT
 *
 * Thread model:
 *   - main thread: parses options, checks metad, mounts, daemonizes (before
 *     any other thread exists, since fork keeps only the caller), then runs
 *     the FUSE session loop and, after unmount, tears everything down;
 *   - FUSE workers (libfuse, up to --threads): run the operations in ops.c;
 *     they block on metad calls, chunk fetches and the memory budget;
 *   - chunk I/O upload workers and prefetch fetchers (chunkio.c): block on
 *     HTTP to chunk servers;
 *   - the chunk cache's disk writer (chunkcache.c).
 * Lock order and the data each lock guards are documented in file.c,
 * chunkio.c and ops.c; no lock is held across a network call.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <malloc.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "common/opts.h"
#include "common/util.h"
#include "fuse/cmount.h"

static struct {
    char *config;
    char *cache_dir;
    uint64_t cache_size;
    uint64_t cache_mem;
    uint64_t mem_budget;
    uint64_t kernel_dirty;
    uint64_t attr_timeout_ms;
    uint64_t entry_timeout_ms;
    uint64_t neg_timeout_ms;
    uint64_t coherent_ms;
    uint64_t retry_ms;
    int64_t threads;
    int64_t upload_threads;
    int64_t readahead;
    int foreground;
    int allow_other;
    int default_permissions;
    int writeback;
    int direct_io;
    int local_reads;
    int debug_fuse;
    char *atime;
    enum log_level level;
    char *log_file;
    char *fuse_opts;
} o;

/*
 * The FUSE device, read and written through libfuse's custom io hooks for
 * one purpose: to answer the kernel's INIT with FUSE_HANDLE_KILLPRIV_V2,
 * which libfuse 3.14 cannot ask for. With it the kernel leaves clearing
 * set-user-ID and set-group-ID to the file system (ops.c kill_privs) and
 * marks the super block SB_NOSEC, so that a write no longer sends a
 * getxattr of security.capability first: one request to this process per
 * write(2) less. Everything else passes through unchanged.
 */
static uint64_t init_unique;     /* the INIT request awaiting its answer, 0: none */

static ssize_t dev_read(int fd, void *into, size_t len, void *userdata)
{
    (void)userdata;
    ssize_t n = read(fd, into, len);
    if (n >= (ssize_t)(sizeof(struct fuse_in_header) + offsetof(struct fuse_init_in, flags) +
                       sizeof(uint32_t))) {
        const struct fuse_in_header *h = into;
        const struct fuse_init_in *in = (const void *)(h + 1);
        if (h->opcode == FUSE_INIT && (in->flags & FUSE_HANDLE_KILLPRIV_V2))
            __atomic_store_n(&init_unique, h->unique, __ATOMIC_RELEASE);
    }
    return n;
}

static ssize_t dev_writev(int fd, struct iovec *iov, int count, void *userdata)
{
    uint64_t u = __atomic_load_n(&init_unique, __ATOMIC_ACQUIRE);
    if (u && count >= 2 && iov[0].iov_len == sizeof(struct fuse_out_header) &&
        iov[1].iov_len >= offsetof(struct fuse_init_out, flags) + sizeof(uint32_t)) {
        const struct fuse_out_header *oh = iov[0].iov_base;
        if (oh->unique == u && oh->error == 0) {
            struct fuse_init_out *out = iov[1].iov_base;
            out->flags |= FUSE_HANDLE_KILLPRIV_V2;
            ((cmount *)userdata)->killpriv = 1;
            __atomic_store_n(&init_unique, 0, __ATOMIC_RELEASE);
        }
    }
    return writev(fd, iov, count);
}

static ssize_t dev_splice_receive(int fdin, off_t *offin, int fdout, off_t *offout, size_t len,
                                  unsigned int flags, void *userdata)
{
    (void)userdata;
    return splice(fdin, offin, fdout, offout, len, flags);
}

static ssize_t dev_splice_send(int fdin, off_t *offin, int fdout, off_t *offout, size_t len,
                               unsigned int flags, void *userdata)
{
    (void)userdata;
    return splice(fdin, offin, fdout, offout, len, flags);
}

static const struct fuse_custom_io dev_io = {
    .writev = dev_writev,
    .read = dev_read,
    .splice_receive = dev_splice_receive,
    .splice_send = dev_splice_send,
};

static const opt_def defs[] = {
    {"config", 0, OPT_STR, &o.config, NULL, "FILE", "read options from FILE (name = value lines)", 0, 0},
    {"cache-dir", 0, OPT_STR, &o.cache_dir, "", "DIR",
     "local chunk cache directory (default /var/cache/cairn/<fsid>)", 0, 0},
    {"cache-size", 0, OPT_SIZE, &o.cache_size, "4G", "SIZE", "disk space the chunk cache may use (0 = no disk cache)", 0, 0},
    {"cache-mem", 0, OPT_SIZE, &o.cache_mem, "64M", "SIZE", "memory for hot chunks", 0, 0},
    {"mem-budget", 0, OPT_SIZE, &o.mem_budget, "192M", "SIZE",
     "memory for write buffers, uploads and prefetch; writers wait when it is used", 16 << 20, 0},
    {"kernel-dirty", 0, OPT_SIZE, &o.kernel_dirty, "256M", "SIZE",
     "written data the kernel may keep in its page cache for this mount before writers wait (with --writeback-cache; 0 keeps the kernel's default for FUSE, 1% of its dirty limit)", 0, 0},
    {"attr-timeout", 0, OPT_MS, &o.attr_timeout_ms, "1s", "TIME", "how long the kernel caches attributes", 0, 3600000},
    {"entry-timeout", 0, OPT_MS, &o.entry_timeout_ms, "1s", "TIME", "how long the kernel caches names", 0, 3600000},
    {"negative-timeout", 0, OPT_MS, &o.neg_timeout_ms, "1s", "TIME",
     "how long a name found absent is taken as absent (by the kernel, and from this mount's listings of a directory); a name another client creates meanwhile is seen once it expires; never longer than --entry-timeout; 0: ask the metadata server each time", 0, 3600000},
    {"coherent-timeout", 0, OPT_MS, &o.coherent_ms, "10m", "TIME",
     "while the metadata server's change feed is up (what other clients change is pushed to this mount as it happens; needs Linux 6.16 or later), how long the kernel keeps the names, absent names and attributes that --entry-timeout, --negative-timeout and --attr-timeout let it cache; 0: do not follow the feed", 0, 86400000},
    {"retry-time", 0, OPT_MS, &o.retry_ms, "60s", "TIME",
     "how long to retry unreachable servers before an operation fails with EIO", 1000, 86400000},
    {"threads", 0, OPT_INT, &o.threads, "16", "N", "FUSE worker threads at most", 1, 256},
    {"upload-threads", 0, OPT_INT, &o.upload_threads, "8", "N", "parallel chunk uploads", 1, 128},
    {"readahead", 0, OPT_INT, &o.readahead, "8", "CHUNKS", "largest readahead window", 1, 64},
    {"foreground", 'f', OPT_BOOL, &o.foreground, "false", NULL, "stay in the foreground", 0, 0},
    {"allow-other", 0, OPT_BOOL, &o.allow_other, "false", NULL, "let users other than the mounter access the mount", 0, 0},
    {"default-permissions", 0, OPT_BOOL, &o.default_permissions, "false", NULL,
     "let the kernel check file permissions (always so with --allow-other or when mounted by a user other than root); otherwise, with only root's processes let in, the mount checks them itself, sparing the kernel's attribute requests before directory changes", 0, 0},
    {"writeback-cache", 0, OPT_BOOL, &o.writeback, "true", NULL,
     "let the kernel buffer writes in its page cache and write them back in offset order (much faster small and random writes); a file another client changed is picked up at the next name lookup (--entry-timeout)", 0, 0},
    {"direct-io", 0, OPT_BOOL, &o.direct_io, "false", NULL, "bypass the kernel page cache for every file", 0, 0},
    {"local-reads", 0, OPT_BOOL, &o.local_reads, "true", NULL,
     "read chunks of chunk servers on this machine from their files, checked by CRC32C like the server does, instead of over HTTP", 0, 0},
    {"atime", 0, OPT_STR, &o.atime, "relatime", "POLICY",
     "when reads update access times: relatime (first read after a change, or daily), strictatime (every open that reads) or noatime", 0, 0},
    {"debug-fuse", 0, OPT_BOOL, &o.debug_fuse, "false", NULL, "print every FUSE request (libfuse debug)", 0, 0},
    {"log-level", 0, OPT_LEVEL, &o.level, "info", "LEVEL", "error, warn, info or debug", 0, 0},
    {"log-file", 0, OPT_STR, &o.log_file, "", "FILE", "log here (default: stderr in the foreground, /var/log/cairn-mount.log otherwise)", 0, 0},
    {"fuse-options", 'o', OPT_STR, &o.fuse_opts, "", "OPTS",
     "comma-separated mount options as in fstab: any option above as name=value, plus ro, rw, defaults, noatime, _netdev...", 0, 0},
    {NULL, 0, 0, NULL, NULL, NULL, NULL, 0, 0},
};

static const opts_spec spec = {
    .prog = "cairn-mount",
    .usage = "[OPTIONS] METAD_HOST:PORT MOUNTPOINT",
    .summary = "Mount the cairn filesystem served by the metadata server at METAD_HOST:PORT on MOUNTPOINT.",
    .defs = defs,
};

/* Mount options that fstab and mount(8) pass but that need nothing here. */
static int ignorable(const char *name)
{
    static const char *const names[] = {"rw", "defaults", "auto", "noauto", "user", "nouser",
                                        "users", "_netdev", "nofail", "atime", "nodiratime", "dev", "nodev", "suid", "nosuid",
                                        "exec", "noexec", "async", NULL};
    for (int i = 0; names[i]; i++)
        if (strcmp(name, names[i]) == 0)
            return 1;
    return strncmp(name, "x-", 2) == 0 || strncmp(name, "comment=", 8) == 0;
}

/*
 * The kernel lets a FUSE mount hold only 1% of its dirty page limit
 * (about 50 MB on a machine with 24 GB) and holds writers to that strictly.
 * A random writer then waits for the mount at every few thousand pages,
 * and the mount has to seal and upload a chunk for each few pages it got.
 * With room for o.kernel_dirty bytes the kernel gathers the writes to a
 * chunk and sends them in offset order at writeback. The device numbers
 * of this mount come from /proc/self/mountinfo (a stat of the mount point
 * would be a FUSE request to this very process, which is not serving
 * yet). Failure only costs speed: one warning.
 */
static int is_octal(char ch) { return ch >= '0' && ch <= '7'; }

/* mountinfo writes a space in a path as \040, a backslash as \134 and so
 * on: undo that in place. */
static void unescape_octal(char *s)
{
    char *w = s;
    for (const char *r = s; *r; w++) {
        if (r[0] == '\\' && is_octal(r[1]) && is_octal(r[2]) && is_octal(r[3])) {
            *w = (char)(((r[1] - '0') << 6) | ((r[2] - '0') << 3) | (r[3] - '0'));
            r += 4;
        } else {
            *w = *r++;
        }
    }
    *w = 0;
}

static void set_kernel_dirty(const char *mountpoint, uint64_t bytes)
{
    FILE *f = fopen("/proc/self/mountinfo", "r");
    char line[4096], dev[32] = "";
    if (!f) {
        log_warn("cannot read /proc/self/mountinfo: %s; the kernel's dirty limit for this "
                 "mount stays at its default", strerror(errno));
        return;
    }
    while (fgets(line, sizeof(line), f)) {
        /* id parent major:minor root mountpoint options ... - fstype ... */
        char d[32], mp[4096];
        if (sscanf(line, "%*s %*s %31s %*s %4095s", d, mp) != 2)
            continue;
        const char *sep = strstr(line, " - ");
        if (!sep || strncmp(sep + 3, "fuse.cairn ", 11) != 0)
            continue;
        unescape_octal(mp);
        if (strcmp(mp, mountpoint) == 0)
            snprintf(dev, sizeof(dev), "%s", d);   /* the last one is the newest */
    }
    fclose(f);
    if (!dev[0]) {
        log_warn("%s not found in /proc/self/mountinfo; the kernel's dirty limit for this "
                 "mount stays at its default", mountpoint);
        return;
    }
    char *path = xasprintf("/sys/class/bdi/%s/max_bytes", dev);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    char num[32];
    int n = snprintf(num, sizeof(num), "%llu", (unsigned long long)bytes);
    if (fd < 0 || write(fd, num, (size_t)n) != n) {
        log_warn("cannot write %s: %s; the kernel's dirty limit for this mount stays at its "
                 "default (random writes wait for the mount more often)", path, strerror(errno));
    } else {
        log_info("the kernel may keep %llu MiB of written data for this mount (%s)",
                 (unsigned long long)(bytes >> 20), path);
    }
    if (fd >= 0)
        close(fd);
    free(path);
}

/*
 * Turn "-o a=b,c" into "--a=b --c" for options of the table; returns a new
 * argv (the old strings are kept) or NULL with an error printed.
 */
static char **expand_o(int *argc, char **argv, int *read_only)
{
    char **out = xcalloc((size_t)*argc * 16 + 16, sizeof(char *));
    int n = 0;
    for (int i = 0; i < *argc; i++) {
        const char *list = NULL;
        if (strcmp(argv[i], "-o") == 0 && i + 1 < *argc)
            list = argv[++i];
        else if (strncmp(argv[i], "-o", 2) == 0 && argv[i][2])
            list = argv[i] + 2;
        else if (strncmp(argv[i], "--fuse-options=", 15) == 0)
            list = argv[i] + 15;
        if (!list) {
            out[n++] = argv[i];
            continue;
        }
        char *copy = xstrdup(list);
        char *save = NULL;
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            if (n > *argc * 16)
                break;
            char *name = xstrdup(t);
            char *eq = strchr(name, '=');
            if (eq)
                *eq = 0;
            for (char *p = name; *p; p++)
                if (*p == '_' && p != name)
                    *p = '-';
            if (strcmp(name, "ro") == 0) {
                *read_only = 1;
            } else if (strcmp(name, "noatime") == 0 || strcmp(name, "relatime") == 0 ||
                       strcmp(name, "strictatime") == 0) {
                out[n++] = xasprintf("--atime=%s", name);
            } else if (strcmp(name, "allow-other") == 0 || strcmp(name, "allow_other") == 0) {
                out[n++] = "--allow-other";
            } else if (ignorable(t)) {
                /* nothing to do */
            } else {
                int known = 0;
                for (const opt_def *d = defs; d->name; d++)
                    known |= strcmp(d->name, name) == 0;
                if (!known) {
                    fprintf(stderr, "cairn-mount: unknown mount option '%s'\n", t);
                    free(name);
                    free(copy);
                    free(out);
                    return NULL;
                }
                out[n++] = xasprintf("--%s%s%s", name, eq ? "=" : "", eq ? eq + 1 : "");
            }
            free(name);
        }
        free(copy);
    }
    *argc = n;
    return out;
}

/* How long one request of the change feed waits at metad. */
#define FEED_WAIT_MS 1000

/* Follow metad's change feed, so that the kernel may keep names and
 * attributes for --coherent-timeout (ops.c, feed.h), if asked for and if
 * the kernel can drop every cached name at once (needed when the feed
 * breaks). The first answer invalidates nothing that matters: nothing is
 * cached yet. */
static void start_feed(cmount *m, const char *addr)
{
    static const cfeed_ops fops = {
        .entry = cmount_feed_entry, .inode = cmount_feed_inode, .all = cmount_feed_all};
    if (o.coherent_ms == 0)
        return;
    int rc = cmount_kernel_epoch(m);
    if (rc < 0) {
        log_info("this kernel cannot drop all cached names at once (%s): names and attributes "
                 "are cached for --entry-timeout and --attr-timeout only", cairn_strerror(rc));
        return;
    }
    uint64_t settle = MAX(o.attr_timeout_ms, MAX(o.entry_timeout_ms, o.neg_timeout_ms));
    m->long_timeout = (double)o.coherent_ms / 1000.0;
    m->feed = cfeed_start(addr, m->meta, FEED_WAIT_MS, settle, &fops, m);
    if (!m->feed)
        log_warn("cannot follow the change feed: names and attributes are cached for "
                 "--entry-timeout and --attr-timeout only");
    else if (!cfeed_wait_up(m->feed, FEED_WAIT_MS))
        log_warn("the change feed is not up yet: names and attributes are cached briefly "
                 "until it is");
}

int main(int argc, char **argv)
{
    /* Used to regenerate the option list of man/cairn-mount.8. */
    if (argc == 2 && strcmp(argv[1], "--print-man-options") == 0) {
        opts_print_man(&spec, stdout);
        return 0;
    }
    /* Memory is a budget (--mem-budget, --cache-mem): chunk buffers are
     * megabytes each and freed on other threads than the ones that made
     * them. glibc's dynamic mmap threshold would soon serve them from the
     * per-thread arenas, which keep what is freed, so the resident size
     * would follow the number of arenas rather than the budget. A fixed
     * threshold keeps them in their own mappings, returned at free. The
     * 4 KiB pages of scattered writes are made by the FUSE threads and
     * freed by whichever thread seals their chunk: with one arena per
     * thread every arena would grow to the budget; with one arena freed
     * pages serve the next writes. */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    mallopt(M_ARENA_MAX, 1);
    int read_only = 0;
    char **av = expand_o(&argc, argv, &read_only);
    if (!av)
        return 2;
    int first = opts_parse(&spec, argc, av);
    if (first == OPTS_HELP || first == OPTS_VERSION)
        return 0;
    if (first < 0)
        return 2;
    if (argc - first != 2) {
        fprintf(stderr, "usage: cairn-mount %s\n(try --help)\n", spec.usage);
        return 2;
    }
    const char *addr = av[first];
    char mountpoint[4096];
    if (!realpath(av[first + 1], mountpoint)) {
        fprintf(stderr, "cairn-mount: mountpoint %s: %s\n", av[first + 1], strerror(errno));
        return 2;
    }
    char host[256];
    uint16_t port;
    if (parse_hostport(addr, host, sizeof(host), &port) < 0 || port == 0) {
        fprintf(stderr, "cairn-mount: '%s' is not HOST:PORT\n", addr);
        return 2;
    }
    log_set_component("mount");
    log_set_level(o.level);
    if (o.log_file && o.log_file[0] && log_open(o.log_file) < 0) {
        fprintf(stderr, "cairn-mount: cannot open log file %s\n", o.log_file);
        return 2;
    }

    int rc = 1;
    struct fuse_session *se = NULL;
    cmount m;
    memset(&m, 0, sizeof(m));
    pthread_mutex_init(&m.ino_lock, NULL);
    mc_config mcc = {.addr = addr, .retry_ms = (unsigned)o.retry_ms};
    m.meta = mc_new(&mcc);
    if (!m.meta) {
        fprintf(stderr, "cairn-mount: cannot set up HTTP client\n");
        return 1;
    }
    int err = mc_fsinfo_get(m.meta, &m.info);
    if (err < 0) {
        fprintf(stderr, "cairn-mount: metadata server %s: %s\n", addr, cairn_strerror(err));
        goto out;
    }
    m.attr_timeout = (double)o.attr_timeout_ms / 1000.0;
    m.entry_timeout = (double)o.entry_timeout_ms / 1000.0;
    /* An absent name is never trusted longer than a present one: with
     * --entry-timeout 0 every lookup is asked. */
    o.neg_timeout_ms = MIN(o.neg_timeout_ms, o.entry_timeout_ms);
    m.neg_timeout = (double)o.neg_timeout_ms / 1000.0;
    m.writeback = o.writeback;
    m.direct_io = o.direct_io;
    if (strcmp(o.atime, "relatime") == 0) {
        m.atime = ATIME_RELATIME;
    } else if (strcmp(o.atime, "noatime") == 0) {
        m.atime = ATIME_NOATIME;
    } else if (strcmp(o.atime, "strictatime") == 0) {
        m.atime = ATIME_STRICT;
    } else {
        fprintf(stderr, "cairn-mount: --atime must be relatime, strictatime or noatime\n");
        goto out;
    }
    m.max_write = 1 << 20;

    /* Only the mounter's processes enter a mount without allow_other: for
     * root, the mount checks permissions itself (perm.h). */
    m.own_perms = !o.allow_other && !o.default_permissions && geteuid() == 0;
    char fsopts[512];
    snprintf(fsopts, sizeof(fsopts), "fsname=cairn:%s,subtype=cairn%s%s%s", addr,
             m.own_perms ? "" : ",default_permissions", o.allow_other ? ",allow_other" : "",
             read_only ? ",ro" : "");
    char *fargv[] = {"cairn-mount", "-o", fsopts, o.debug_fuse ? "-d" : NULL, NULL};
    struct fuse_args args = FUSE_ARGS_INIT(o.debug_fuse ? 4 : 3, fargv);
    se = fuse_session_new(&args, cmount_ops(), sizeof(struct fuse_lowlevel_ops), &m);
    if (!se) {
        fprintf(stderr, "cairn-mount: cannot create FUSE session\n");
        goto out;
    }
    if (fuse_set_signal_handlers(se) != 0)
        goto out;
    if (fuse_session_mount(se, mountpoint) != 0) {
        fprintf(stderr, "cairn-mount: cannot mount on %s\n", mountpoint);
        fuse_remove_signal_handlers(se);
        goto out;
    }
    m.se = se;
    if (o.writeback && o.kernel_dirty > 0)
        set_kernel_dirty(mountpoint, o.kernel_dirty);
    /* The same device, read and written through dev_io (see above). */
    if (fuse_session_custom_io(se, &dev_io, fuse_session_fd(se)) != 0)
        log_warn("cannot hook the FUSE device: every write asks for security.capability first");
    if (!o.foreground) {
        if (!(o.log_file && o.log_file[0]))
            log_open("/var/log/cairn-mount.log");
        if (fuse_daemonize(0) != 0)
            goto unmount;
    }

    /* Threads start only now, after the fork of fuse_daemonize. */
    char hexid[33];
    hex_encode(m.info.fsid, 16, hexid);
    char *cdir = o.cache_dir && o.cache_dir[0] ? xstrdup(o.cache_dir)
                                               : xasprintf("/var/cache/cairn/%s", hexid);
    ccache_config cc = {
        .dir = o.cache_size ? cdir : NULL,
        .disk_max = o.cache_size,
        .mem_max = o.cache_mem,
    };
    err = ccache_open(&cc, &m.cache);
    if (err == -EBUSY) {
        /* Another mount of this file system uses that directory. */
        log_warn("chunk cache %s is in use by another mount; caching in memory only "
                 "(give each mount its own --cache-dir)", cdir);
        cc.dir = NULL;
        err = ccache_open(&cc, &m.cache);
    }
    if (err < 0) {
        log_error("chunk cache %s: %s", cdir, cairn_strerror(err));
        free(cdir);
        goto unmount;
    }
    free(cdir);
    m.pool = bufpool_new(o.mem_budget);
    cio_config ic = {
        .meta = m.meta,
        .cache = m.cache,
        .pool = m.pool,
        .chunk_size = m.info.chunk_size,
        .replicas = m.info.replicas,
        .min_replicas = m.info.min_replicas,
        .workers = (unsigned)o.upload_threads,
        .retry_ms = (unsigned)o.retry_ms,
        .cache_writes = 1,
        .local_reads = o.local_reads,
    };
    memcpy(ic.fsid, m.info.fsid, sizeof(ic.fsid));
    m.io = cio_new(&ic, &err);
    if (!m.io) {
        log_error("chunk I/O: %s", cairn_strerror(err));
        goto unmount;
    }
    cfs_config fc = {
        .meta = m.meta,
        .io = m.io,
        .pool = m.pool,
        .fs = m.info,
        .readahead_max = (unsigned)o.readahead,
    };
    m.fs = cfs_new(&fc);
    /* Listings answer lookups for as long as the kernel may cache a name
     * and its attributes. */
    m.dc = dcache_new(MIN(o.attr_timeout_ms, o.entry_timeout_ms), o.neg_timeout_ms,
                      DCACHE_ENTRIES);
    cmount_atime_start(&m);
    char hn[256] = "";
    gethostname(hn, sizeof(hn) - 1);
    char desc[4400];
    snprintf(desc, sizeof(desc), "%s:%d %s", hn, (int)getpid(), mountpoint);
    m.session = csession_start(m.meta, desc);
    start_feed(&m, addr);
    log_info("mounted %s on %s (chunk size %llu, %u replicas, inline up to %u bytes)", addr,
             mountpoint, (unsigned long long)m.info.chunk_size, m.info.replicas,
             m.info.inline_max);

    struct fuse_loop_config *lc = fuse_loop_cfg_create();
    fuse_loop_cfg_set_max_threads(lc, (unsigned)o.threads);
    fuse_loop_cfg_set_idle_threads(lc, (unsigned)MIN(o.threads, 8));
    rc = fuse_session_loop_mt(se, lc) == 0 ? 0 : 1;
    fuse_loop_cfg_destroy(lc);
    log_info("unmounting %s", mountpoint);
    /* Before the session ends: its waiting request is answered at once. */
    if (m.feed) {
        cfeed_stats fs;
        cfeed_get_stats(m.feed, &fs);
        cfeed_stop(m.feed);
        m.feed = NULL;
        log_info("change feed: %llu answers, %llu changes by other clients, %llu gaps, down "
                 "%llu times", (unsigned long long)fs.answers, (unsigned long long)fs.records,
                 (unsigned long long)fs.gaps, (unsigned long long)fs.downs);
    }

unmount:
    fuse_session_unmount(se);
    fuse_remove_signal_handlers(se);
out:
    if (se)
        fuse_session_destroy(se);
    /* Queued access times go out while metad is still reachable. */
    cmount_atime_stop(&m);
    if (m.session)
        csession_stop(m.session);
    /* Upload workers run callbacks on cfiles: stop them before the files. */
    if (m.io) {
        cio_stats cs;
        cio_get_stats(m.io, &cs);
        log_info("chunks fetched: %llu, of which %llu from local chunk files (%llu unusable); "
                 "%llu bytes over HTTP, %llu read locally; %llu reads of ranges of local files",
                 (unsigned long long)cs.gets, (unsigned long long)cs.local_reads,
                 (unsigned long long)cs.local_failures, (unsigned long long)cs.get_bytes,
                 (unsigned long long)cs.local_bytes, (unsigned long long)cs.local_ranges);
        log_info("chunk fetches at once: at most %llu; %llu waited for a fetch slot",
                 (unsigned long long)cs.fetch_peak, (unsigned long long)cs.fetch_waits);
        cio_free(m.io);
    }
    if (m.fs) {
        cfs_stats fst;
        cfs_get_stats(m.fs, &fst);
        log_info("chunk merges at once: at most %llu; %llu waited for a merge slot",
                 (unsigned long long)fst.merge_peak, (unsigned long long)fst.merge_waits);
        cfs_free(m.fs);
    }
    if (m.dc) {
        dcache_stats ds;
        dcache_get_stats(m.dc, &ds);
        log_info("directory listings: %llu fetched; lookups answered: %llu, of which %llu "
                 "absent; directory getattrs answered: %llu",
                 (unsigned long long)ds.fills, (unsigned long long)(ds.hits + ds.negative_hits),
                 (unsigned long long)ds.negative_hits, (unsigned long long)ds.attr_hits);
    }
    dcache_free(m.dc);
    if (m.cache)
        ccache_close(m.cache);
    if (m.pool)
        bufpool_free(m.pool);
    mc_free(m.meta);
    opts_free(&spec);
    free(av);
    return rc;
}
