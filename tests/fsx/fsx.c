/*
 * fsx — a randomized file system exerciser with an in-memory model.
 *
 *   fsx [options] DIR
 *
 * Two files, DIR/fsx.A and DIR/fsx.B, are driven by a stream of random
 * operations: read, write, truncate (up and down), fallocate (mode 0 and
 * PUNCH_HOLE|KEEP_SIZE), mmap read, mmap write (MAP_SHARED, usually with
 * msync), copy_file_range between the two files, fsync, close/reopen, and
 * every --remount-every operations a remount (every descriptor closed,
 * --remount-cmd run with system(), files reopened). Every byte read is
 * compared with the model, and both files are read back in full every
 * --verify-every operations, after every remount and at the end.
 *
 * The operation stream depends only on the seed and the options, never on
 * what the file system answers, so "--seed S --ops N" with the same other
 * options replays a run. The seed is printed at the start. Every operation
 * is appended to the log (--log); a failure prints the seed, the operation
 * number, the last 50 operations, the offsets, the first differing bytes
 * and the operation that last wrote them, and exits 1.
 *
 * Options:
 *   -S, --seed N           random seed (default: from the clock)
 *   -N, --ops N            number of operations (default 10000)
 *   -l, --maxlen N         largest file size (default 1 MiB)
 *   -o, --maxop N          largest single operation (default 256 KiB)
 *   -c, --chunk N          chunk size to bias offsets towards (default 64 KiB)
 *   -v, --verify-every N   full verify every N operations (default 1000)
 *   -r, --remount-cmd CMD  command that unmounts and remounts DIR's file system
 *   -R, --remount-every N  run it every N operations (default 10000)
 *   -L, --log FILE         operation log (default fsx.log)
 *   -x, --no OPS           comma-separated operations to leave out
 *                          (read,write,truncate,falloc,punch,mapread,
 *                          mapwrite,copy,fsync,reopen)
 *   -q, --quiet            no progress lines
 * Sizes accept K, M and G suffixes.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum op_kind {
    OP_READ,
    OP_WRITE,
    OP_TRUNCATE,
    OP_FALLOC,
    OP_PUNCH,
    OP_MAPREAD,
    OP_MAPWRITE,
    OP_COPY,
    OP_FSYNC,
    OP_REOPEN,
    OP_NKINDS
};

static const char *const op_names[OP_NKINDS] = {
    "read", "write", "truncate", "falloc", "punch", "mapread", "mapwrite", "copy", "fsync",
    "reopen",
};

/* Relative frequencies. Operations that commit (truncate, msync, fsync,
 * copy, close) cost a metadata round trip each and are rarer. */
static unsigned weights[OP_NKINDS] = {40, 24, 3, 2, 2, 8, 3, 3, 1, 1};

typedef struct model {
    char name;          /* 'A' or 'B' */
    char path[4096];
    int fd;
    uint8_t *data;      /* maxlen bytes; zero beyond size */
    uint32_t *owner;    /* op number that last set each byte (0 = never) */
    uint64_t size;
} model;

static model files[2];
static uint64_t maxlen = 1 << 20, maxop = 256 << 10, chunk = 64 << 10;
static uint64_t nops = 10000, verify_every = 1000, remount_every = 10000;
static uint64_t seed;
static const char *remount_cmd;
static const char *log_path = "fsx.log";
static FILE *oplog;
static int quiet;
static uint64_t opnum;
static long pagesize;
static uint8_t *iobuf, *genbuf;
static uint64_t counts[OP_NKINDS + 2];
static double op_secs[OP_NKINDS + 2];
static char cmdline[8192];

/* The last operations, for the failure report. */
#define HIST 50
static char hist[HIST][300];
static uint64_t hist_n;

/* ---- random numbers (splitmix64: fast, fully determined by the seed) ---- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* uniform in [0, n) (n > 0) */
static uint64_t rnd_below(uint64_t n) { return n ? rnd() % n : 0; }

/* ---- reporting ---- */

static void logop(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logop(const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    snprintf(hist[hist_n % HIST], sizeof(hist[0]), "%8" PRIu64 " %s", opnum, line);
    hist_n++;
    if (oplog) {
        fprintf(oplog, "%8" PRIu64 " %s\n", opnum, line);
        fflush(oplog);
    }
}

static void report_history(void)
{
    uint64_t first = hist_n > HIST ? hist_n - HIST : 0;
    printf("fsx: last %" PRIu64 " operations (op number, operation, file, offset, length):\n",
           hist_n - first);
    for (uint64_t i = first; i < hist_n; i++)
        printf("  %s\n", hist[i % HIST]);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    printf("fsx: FAILURE at op %" PRIu64 " (seed %" PRIu64 "): %s\n", opnum, seed, msg);
    report_history();
    printf("fsx: full operation log: %s\n", log_path);
    printf("fsx: replay with: %s\n", cmdline);
    if (oplog) {
        fprintf(oplog, "FAILURE at op %" PRIu64 ": %s\n", opnum, msg);
        fclose(oplog);
    }
    fflush(stdout);
    exit(1);
}

static void die_errno(const char *what, model *m)
{
    int e = errno;
    die("%s on file %c: %s (errno %d)", what, m->name, strerrorname_np(e) ? strerrorname_np(e) : "?",
        e);
}

/* Compare got with the model at [off, off+len) of m; die on a difference. */
static void check_bytes(model *m, uint64_t off, const uint8_t *got, uint64_t len, const char *what)
{
    const uint8_t *want = m->data + off;
    if (memcmp(got, want, len) == 0)
        return;
    uint64_t first = 0, ndiff = 0, last = 0;
    int seen = 0;
    for (uint64_t i = 0; i < len; i++) {
        if (got[i] != want[i]) {
            if (!seen)
                first = i;
            seen = 1;
            last = i;
            ndiff++;
        }
    }
    char ebuf[3 * 16 + 1] = "", gbuf[3 * 16 + 1] = "";
    for (uint64_t i = first; i < first + 16 && i < len; i++) {
        snprintf(ebuf + strlen(ebuf), sizeof(ebuf) - strlen(ebuf), "%02x ", want[i]);
        snprintf(gbuf + strlen(gbuf), sizeof(gbuf) - strlen(gbuf), "%02x ", got[i]);
    }
    uint64_t at = off + first;
    uint32_t who = m->owner[at];
    die("%s: file %c, range 0x%" PRIx64 "+0x%" PRIx64 " (size 0x%" PRIx64 "): %" PRIu64
        " bytes differ, first at 0x%" PRIx64 ", last at 0x%" PRIx64 "; expected: %s; got: %s;"
        " the expected byte at 0x%" PRIx64 " was last set by op %" PRIu32 "%s",
        what, m->name, off, len, m->size, ndiff, at, off + last, ebuf, gbuf, at, who,
        who ? "" : " (never written: zero)");
}

/* ---- file handling ---- */

static void open_files(void)
{
    for (int i = 0; i < 2; i++) {
        files[i].fd = open(files[i].path, O_RDWR);
        if (files[i].fd < 0)
            die_errno("open", &files[i]);
    }
}

static void close_files(void)
{
    for (int i = 0; i < 2; i++) {
        if (files[i].fd >= 0 && close(files[i].fd) != 0)
            die_errno("close", &files[i]);
        files[i].fd = -1;
    }
}

static void check_size(model *m, const char *what)
{
    struct stat st;
    if (fstat(m->fd, &st) != 0)
        die_errno("fstat", m);
    if ((uint64_t)st.st_size != m->size)
        die("%s: file %c has size 0x%llx, expected 0x%" PRIx64, what, m->name,
            (unsigned long long)st.st_size, m->size);
}

static void verify_file(model *m, const char *why)
{
    check_size(m, why);
    uint64_t step = maxop > (1 << 20) ? maxop : (1 << 20);
    for (uint64_t off = 0; off < m->size; off += step) {
        uint64_t n = m->size - off < step ? m->size - off : step;
        uint64_t got = 0;
        while (got < n) {
            ssize_t r = pread(m->fd, iobuf + got, n - got, (off_t)(off + got));
            if (r < 0)
                die_errno("pread (verify)", m);
            if (r == 0)
                die("%s: file %c: read of 0x%" PRIx64 "+0x%" PRIx64 " ended early at 0x%" PRIx64,
                    why, m->name, off, n, off + got);
            got += (uint64_t)r;
        }
        check_bytes(m, off, iobuf, n, why);
    }
    ssize_t r = pread(m->fd, iobuf, 16, (off_t)m->size);
    if (r != 0)
        die("%s: file %c: read at EOF 0x%" PRIx64 " returned %zd", why, m->name, m->size, r);
}

static void verify_all(const char *why)
{
    logop("verify (%s) A size 0x%" PRIx64 " B size 0x%" PRIx64, why, files[0].size,
          files[1].size);
    verify_file(&files[0], why);
    verify_file(&files[1], why);
}

/* Model updates. */
static void model_set(model *m, uint64_t off, const uint8_t *src, uint64_t len)
{
    memmove(m->data + off, src, len);
    for (uint64_t i = 0; i < len; i++)
        m->owner[off + i] = (uint32_t)opnum;
    if (off + len > m->size)
        m->size = off + len;
}

static void model_zero(model *m, uint64_t off, uint64_t len)
{
    memset(m->data + off, 0, len);
    for (uint64_t i = 0; i < len; i++)
        m->owner[off + i] = (uint32_t)opnum;
}

static void model_resize(model *m, uint64_t nsize)
{
    if (nsize < m->size)
        model_zero(m, nsize, m->size - nsize);
    m->size = nsize;
}

/* Data written by op n at offset o: depends on both, so a misplaced or
 * stale range shows. Never all zero. */
static void gen(uint8_t *buf, uint64_t off, uint64_t len)
{
    uint64_t k = opnum * 0x2545F4914F6CDD1DULL;
    for (uint64_t i = 0; i < len; i++) {
        uint64_t p = off + i;
        buf[i] = (uint8_t)(((p * 0x9d) ^ (p >> 9) ^ (k >> 24)) | ((p & 0xff) == 0 ? 1 : 0));
    }
}

/* ---- choosing offsets and lengths ---- */

static uint64_t pick_len(uint64_t limit)
{
    if (limit == 0)
        return 0;
    uint64_t r = rnd_below(100), len;
    if (r < 45)
        len = 1 + rnd_below(4096);
    else if (r < 80)
        len = 1 + rnd_below(chunk + 4096);
    else
        len = 1 + rnd_below(maxop);
    return len < limit ? len : limit;
}

/* An offset in [0, limit], often on or next to a chunk boundary. */
static uint64_t pick_off(uint64_t limit)
{
    uint64_t r = rnd_below(100);
    if (r < 30 && limit >= chunk) {
        uint64_t b = rnd_below(limit / chunk + 1) * chunk;
        uint64_t d = rnd_below(9);
        uint64_t o = d < 4 ? b - (b >= d ? d : b) : b + (d - 4);
        return o <= limit ? o : limit;
    }
    return rnd_below(limit + 1);
}

/* ---- operations ---- */

static void do_read(model *m)
{
    uint64_t off = pick_off(m->size);
    if (rnd_below(10) == 0)
        off = m->size + rnd_below(4096); /* at or past EOF */
    uint64_t len = pick_len(maxop);
    logop("read     %c 0x%08" PRIx64 " len 0x%06" PRIx64 " (size 0x%" PRIx64 ")", m->name, off,
          len, m->size);
    uint64_t want = off >= m->size ? 0 : (m->size - off < len ? m->size - off : len);
    uint64_t got = 0;
    while (got < len) {
        ssize_t r = pread(m->fd, iobuf + got, len - got, (off_t)(off + got));
        if (r < 0)
            die_errno("pread", m);
        if (r == 0)
            break;
        got += (uint64_t)r;
    }
    if (got != want)
        die("read of file %c at 0x%" PRIx64 " len 0x%" PRIx64 " returned 0x%" PRIx64
            " bytes, expected 0x%" PRIx64 " (size 0x%" PRIx64 ")",
            m->name, off, len, got, want, m->size);
    check_bytes(m, off, iobuf, want, "read");
}

static void do_write(model *m)
{
    uint64_t off = pick_off(maxlen - 1);
    uint64_t len = pick_len(maxlen - off);
    logop("write    %c 0x%08" PRIx64 " len 0x%06" PRIx64 " (size 0x%" PRIx64 " -> 0x%" PRIx64 ")",
          m->name, off, len, m->size, off + len > m->size ? off + len : m->size);
    gen(genbuf, off, len);
    uint64_t done = 0;
    while (done < len) {
        ssize_t r = pwrite(m->fd, genbuf + done, len - done, (off_t)(off + done));
        if (r <= 0)
            die_errno("pwrite", m);
        done += (uint64_t)r;
    }
    model_set(m, off, genbuf, len);
    check_size(m, "after write");
}

static void do_truncate(model *m)
{
    uint64_t ns;
    uint64_t r = rnd_below(100);
    if (r < 40) {
        ns = rnd_below(maxlen + 1);
    } else if (r < 70) { /* near the current size */
        uint64_t d = rnd_below(2 * chunk + 1);
        ns = m->size + d >= chunk ? m->size + d - chunk : 0;
    } else {
        ns = pick_off(maxlen);
    }
    if (ns > maxlen)
        ns = maxlen;
    logop("truncate %c 0x%08" PRIx64 " (size 0x%" PRIx64 ", %s)", m->name, ns, m->size,
          ns < m->size ? "down" : ns > m->size ? "up" : "same");
    if (ftruncate(m->fd, (off_t)ns) != 0)
        die_errno("ftruncate", m);
    model_resize(m, ns);
    check_size(m, "after truncate");
}

static void do_falloc(model *m)
{
    uint64_t off = pick_off(maxlen - 1);
    uint64_t len = pick_len(maxlen - off);
    logop("falloc   %c 0x%08" PRIx64 " len 0x%06" PRIx64 " (size 0x%" PRIx64 ")", m->name, off,
          len, m->size);
    if (fallocate(m->fd, 0, (off_t)off, (off_t)len) != 0)
        die_errno("fallocate(0)", m);
    if (off + len > m->size)
        m->size = off + len;
    check_size(m, "after fallocate");
}

static void do_punch(model *m)
{
    uint64_t off = pick_off(m->size ? m->size - 1 : 0);
    uint64_t len = pick_len(maxlen - off);
    if (rnd_below(4) == 0) { /* whole chunks */
        off = off / chunk * chunk;
        len = (1 + rnd_below(3)) * chunk;
        if (len > maxlen - off)
            len = maxlen - off;
    }
    logop("punch    %c 0x%08" PRIx64 " len 0x%06" PRIx64 " (size 0x%" PRIx64 ")", m->name, off,
          len, m->size);
    if (fallocate(m->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) != 0)
        die_errno("fallocate(PUNCH_HOLE|KEEP_SIZE)", m);
    if (off < m->size)
        model_zero(m, off, (off + len < m->size ? off + len : m->size) - off);
    check_size(m, "after punch");
}

static void do_mapread(model *m)
{
    if (m->size == 0) {
        logop("mapread  %c skipped (empty)", m->name);
        return;
    }
    uint64_t off = pick_off(m->size - 1);
    uint64_t len = pick_len(m->size - off);
    logop("mapread  %c 0x%08" PRIx64 " len 0x%06" PRIx64 " (size 0x%" PRIx64 ")", m->name, off,
          len, m->size);
    uint64_t pg = off & ~(uint64_t)(pagesize - 1);
    size_t maplen = (size_t)(off + len - pg);
    uint8_t *p = mmap(NULL, maplen, PROT_READ, MAP_SHARED, m->fd, (off_t)pg);
    if (p == MAP_FAILED)
        die_errno("mmap(PROT_READ)", m);
    memcpy(iobuf, p + (off - pg), len);
    if (munmap(p, maplen) != 0)
        die_errno("munmap", m);
    check_bytes(m, off, iobuf, len, "mapread");
}

static void do_mapwrite(model *m)
{
    uint64_t off = pick_off(maxlen - 1);
    uint64_t len = pick_len(maxlen - off);
    int sync = rnd_below(10) < 7;
    logop("mapwrite %c 0x%08" PRIx64 " len 0x%06" PRIx64 " (size 0x%" PRIx64 "%s)%s", m->name, off,
          len, m->size, off + len > m->size ? ", extended first" : "", sync ? " msync" : "");
    if (off + len > m->size) {
        if (ftruncate(m->fd, (off_t)(off + len)) != 0)
            die_errno("ftruncate (before mapwrite)", m);
        model_resize(m, off + len);
    }
    uint64_t pg = off & ~(uint64_t)(pagesize - 1);
    size_t maplen = (size_t)(off + len - pg);
    uint8_t *p = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_SHARED, m->fd, (off_t)pg);
    if (p == MAP_FAILED)
        die_errno("mmap(PROT_READ|PROT_WRITE, MAP_SHARED)", m);
    gen(genbuf, off, len);
    memcpy(p + (off - pg), genbuf, len);
    if (sync && msync(p, maplen, MS_SYNC) != 0)
        die_errno("msync", m);
    if (munmap(p, maplen) != 0)
        die_errno("munmap", m);
    model_set(m, off, genbuf, len);
    check_size(m, "after mapwrite");
}

static void do_copy(model *src, model *dst)
{
    if (src->size == 0) {
        logop("copy     %c->%c skipped (source empty)", src->name, dst->name);
        return;
    }
    uint64_t in, out, len;
    if (rnd_below(10) < 3 && src->size >= chunk && maxlen >= chunk) {
        /* whole chunks at chunk-aligned offsets (the last one may be the
         * source's partial tail): sharable by reference */
        in = rnd_below((src->size + chunk - 1) / chunk) * chunk;
        len = (1 + rnd_below(4)) * chunk;
        if (len > src->size - in)
            len = src->size - in;
        if (len > maxlen / chunk * chunk)
            len = maxlen / chunk * chunk;
        out = rnd_below((maxlen - len) / chunk + 1) * chunk;
    } else {
        in = pick_off(src->size - 1);
        len = pick_len(src->size - in);
        out = pick_off(maxlen - len);
    }
    logop("copy     %c->%c 0x%08" PRIx64 " -> 0x%08" PRIx64 " len 0x%06" PRIx64
          " (sizes 0x%" PRIx64 " 0x%" PRIx64 ")",
          src->name, dst->name, in, out, len, src->size, dst->size);
    uint64_t done = 0;
    while (done < len) {
        loff_t a = (loff_t)(in + done), b = (loff_t)(out + done);
        ssize_t r = copy_file_range(src->fd, &a, dst->fd, &b, len - done, 0);
        if (r < 0)
            die_errno("copy_file_range", dst);
        if (r == 0)
            die("copy_file_range %c->%c stopped at 0x%" PRIx64 " of 0x%" PRIx64
                " bytes (source size 0x%" PRIx64 ")",
                src->name, dst->name, done, len, src->size);
        done += (uint64_t)r;
    }
    memcpy(genbuf, src->data + in, len);
    model_set(dst, out, genbuf, len);
    check_size(dst, "after copy_file_range");
}

static void do_fsync(model *m)
{
    logop("fsync    %c", m->name);
    if (fsync(m->fd) != 0)
        die_errno("fsync", m);
}

static void do_reopen(void)
{
    logop("reopen   A B");
    close_files();
    open_files();
}

static void do_remount(void)
{
    logop("remount  (%s)", remount_cmd);
    close_files();
    fflush(stdout);
    int st = system(remount_cmd);
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        die("remount command failed (status 0x%x): %s", st, remount_cmd);
    open_files();
    verify_all("after remount");
    counts[OP_NKINDS]++;
}

static uint64_t parse_size(const char *s)
{
    char *end;
    uint64_t v = strtoull(s, &end, 0);
    switch (*end) {
    case 'k': case 'K': v <<= 10; break;
    case 'm': case 'M': v <<= 20; break;
    case 'g': case 'G': v <<= 30; break;
    case 0: break;
    default:
        fprintf(stderr, "fsx: bad size %s\n", s);
        exit(2);
    }
    return v;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: fsx [-S seed] [-N ops] [-l maxlen] [-o maxop] [-c chunk] [-v verify-every]\n"
            "           [-r remount-cmd] [-R remount-every] [-L log] [-x op,op...] [-q] DIR\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"seed", 1, 0, 'S'},         {"ops", 1, 0, 'N'},          {"maxlen", 1, 0, 'l'},
        {"maxop", 1, 0, 'o'},        {"chunk", 1, 0, 'c'},        {"verify-every", 1, 0, 'v'},
        {"remount-cmd", 1, 0, 'r'},  {"remount-every", 1, 0, 'R'}, {"log", 1, 0, 'L'},
        {"no", 1, 0, 'x'},           {"quiet", 0, 0, 'q'},        {0, 0, 0, 0},
    };
    int have_seed = 0;
    size_t cl = 0;
    for (int i = 0; i < argc; i++) {
        int n = snprintf(cmdline + cl, sizeof(cmdline) - cl, "%s'%s'", i ? " " : "", argv[i]);
        if (n > 0 && (size_t)n < sizeof(cmdline) - cl)
            cl += (size_t)n;
    }
    int c;
    while ((c = getopt_long(argc, argv, "S:N:l:o:c:v:r:R:L:x:q", longopts, NULL)) != -1) {
        switch (c) {
        case 'S': seed = strtoull(optarg, NULL, 0); have_seed = 1; break;
        case 'N': nops = parse_size(optarg); break;
        case 'l': maxlen = parse_size(optarg); break;
        case 'o': maxop = parse_size(optarg); break;
        case 'c': chunk = parse_size(optarg); break;
        case 'v': verify_every = parse_size(optarg); break;
        case 'r': remount_cmd = optarg; break;
        case 'R': remount_every = parse_size(optarg); break;
        case 'L': log_path = optarg; break;
        case 'q': quiet = 1; break;
        case 'x': {
            char *copy = strdup(optarg), *save = NULL;
            for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                int k;
                for (k = 0; k < OP_NKINDS; k++)
                    if (strcmp(t, op_names[k]) == 0)
                        break;
                if (k == OP_NKINDS) {
                    fprintf(stderr, "fsx: unknown operation %s\n", t);
                    return 2;
                }
                weights[k] = 0;
            }
            free(copy);
            break;
        }
        default: usage();
        }
    }
    if (optind != argc - 1)
        usage();
    const char *dir = argv[optind];
    if (maxlen < 2 || maxop < 1 || chunk < 1 || maxlen > (1ull << 32)) {
        fprintf(stderr, "fsx: bad sizes\n");
        return 2;
    }
    if (!have_seed) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = (uint64_t)ts.tv_sec * 1000003u ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid();
        snprintf(cmdline + cl, sizeof(cmdline) - cl, " (add: --seed %" PRIu64 ")", seed);
    }
    rng_state = seed;
    pagesize = sysconf(_SC_PAGESIZE);
    unsigned total_w = 0;
    for (int k = 0; k < OP_NKINDS; k++)
        total_w += weights[k];
    if (!total_w) {
        fprintf(stderr, "fsx: every operation is left out\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("fsx: seed %" PRIu64 ", %" PRIu64 " ops, maxlen %" PRIu64 ", maxop %" PRIu64
           ", chunk %" PRIu64 ", verify every %" PRIu64 ", remount %s every %" PRIu64 ", log %s\n",
           seed, nops, maxlen, maxop, chunk, verify_every, remount_cmd ? remount_cmd : "(none)",
           remount_every, log_path);
    oplog = fopen(log_path, "w");
    if (!oplog) {
        fprintf(stderr, "fsx: %s: %s\n", log_path, strerror(errno));
        return 2;
    }
    fprintf(oplog, "# %s\n# seed %" PRIu64 "\n", cmdline, seed);
    iobuf = malloc(maxop > (1 << 20) ? maxop + 4096 : (1 << 20) + 4096);
    genbuf = malloc(maxlen);
    for (int i = 0; i < 2; i++) {
        files[i].name = (char)('A' + i);
        snprintf(files[i].path, sizeof(files[i].path), "%s/fsx.%c", dir, files[i].name);
        files[i].data = calloc(1, maxlen);
        files[i].owner = calloc(maxlen, sizeof(uint32_t));
        files[i].fd = open(files[i].path, O_RDWR | O_CREAT | O_TRUNC, 0644);
        if (!files[i].data || !files[i].owner || !iobuf || !genbuf) {
            fprintf(stderr, "fsx: out of memory\n");
            return 2;
        }
        if (files[i].fd < 0)
            die_errno("create", &files[i]);
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (opnum = 1; opnum <= nops; opnum++) {
        unsigned r = (unsigned)rnd_below(total_w);
        int k = 0;
        while (r >= weights[k]) {
            r -= weights[k];
            k++;
        }
        /* file A three times out of four */
        int fi = rnd_below(4) == 0 ? 1 : 0;
        model *m = &files[fi];
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        switch (k) {
        case OP_READ: do_read(m); break;
        case OP_WRITE: do_write(m); break;
        case OP_TRUNCATE: do_truncate(m); break;
        case OP_FALLOC: do_falloc(m); break;
        case OP_PUNCH: do_punch(m); break;
        case OP_MAPREAD: do_mapread(m); break;
        case OP_MAPWRITE: do_mapwrite(m); break;
        case OP_COPY: do_copy(&files[1 - fi], m); break;
        case OP_FSYNC: do_fsync(m); break;
        case OP_REOPEN: do_reopen(); break;
        }
        clock_gettime(CLOCK_MONOTONIC, &b);
        op_secs[k] += (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
        counts[k]++;
        if (remount_cmd && remount_every && opnum % remount_every == 0 && opnum < nops)
            do_remount();
        if (verify_every && opnum % verify_every == 0) {
            verify_all("periodic");
            counts[OP_NKINDS + 1]++;
        }
        clock_gettime(CLOCK_MONOTONIC, &a);
        op_secs[OP_NKINDS] += (double)(a.tv_sec - b.tv_sec) + (double)(a.tv_nsec - b.tv_nsec) / 1e9;
        if (!quiet && opnum % 10000 == 0) {
            clock_gettime(CLOCK_MONOTONIC, &t1);
            printf("fsx: %" PRIu64 " ops, %.1fs\n", opnum,
                   (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
        }
    }
    opnum = nops;
    close_files();
    open_files();
    verify_all("final, after close and reopen");
    close_files();
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("fsx: seed %" PRIu64 ": %" PRIu64 " ops passed in %.1fs (", seed, nops, secs);
    for (int k = 0; k < OP_NKINDS; k++)
        printf("%s %" PRIu64 ", ", op_names[k], counts[k]);
    printf("remounts %" PRIu64 ", verifies %" PRIu64 ")\n", counts[OP_NKINDS],
           counts[OP_NKINDS + 1]);
    printf("fsx: seconds spent:");
    for (int k = 0; k < OP_NKINDS; k++)
        printf(" %s %.1f,", op_names[k], op_secs[k]);
    printf(" remounts and verifies %.1f\n", op_secs[OP_NKINDS]);
    fprintf(oplog, "# passed\n");
    fclose(oplog);
    return 0;
}
