/*
 * srv_client.c — the client library (metaclient, chunkio, file striping)
 * against a real cairn-metad and three cairn-chunkd on 127.0.0.1.
 *
 * Each "client" is an independent stack (its own connections, cache and
 * memory budget), so two of them writing one file behave like two mounts.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "cache/bufpool.h"
#include "cache/chunkcache.h"
#include "client/chunkio.h"
#include "client/file.h"
#include "client/metaclient.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "tests/lib/harness.h"

#define MiB (1u << 20)

#define INLINE_BUDGET "96K"

static char *dir;
static proc metad, chunkd[3];

typedef struct client {
    mc *meta;
    ccache *cache;
    bufpool *pool;
    cio *io;
    cfs *fs;
    mc_fsinfo info;
} client;

/* slots: cio's fetch_slots and cfs's merge_slots (0 = their defaults). */
static client *client_new_opts(unsigned retry_ms, int local_reads, unsigned fetch_slots,
                               unsigned merge_slots)
{
    client *c = xcalloc(1, sizeof(*c));
    mc_config mcc = {.addr = metad.addr, .retry_ms = retry_ms};
    c->meta = mc_new(&mcc);
    assert_non_null(c->meta);
    assert_int_equal(mc_fsinfo_get(c->meta, &c->info), 0);
    ccache_config cc = {.dir = NULL, .mem_max = 16 * MiB};
    assert_int_equal(ccache_open(&cc, &c->cache), 0);
    c->pool = bufpool_new(64 * MiB);
    int err;
    cio_config ic = {.meta = c->meta, .cache = c->cache, .pool = c->pool,
                     .chunk_size = c->info.chunk_size, .replicas = c->info.replicas,
                     .min_replicas = c->info.min_replicas, .retry_ms = retry_ms,
                     .cache_writes = 1, .local_reads = local_reads,
                     .fetch_slots = fetch_slots};
    memcpy(ic.fsid, c->info.fsid, sizeof(ic.fsid));
    c->io = cio_new(&ic, &err);
    assert_non_null(c->io);
    cfs_config fc = {.meta = c->meta, .io = c->io, .pool = c->pool, .fs = c->info,
                     .merge_slots = merge_slots};
    c->fs = cfs_new(&fc);
    return c;
}

static client *client_new(unsigned retry_ms)
{
    return client_new_opts(retry_ms, 0, 0, 0);
}

static void client_free(client *c)
{
    /* Workers finish their callbacks (which touch cfiles) before the file
     * layer goes away. */
    cio_free(c->io);
    cfs_free(c->fs);
    ccache_close(c->cache);
    bufpool_free(c->pool);
    mc_free(c->meta);
    free(c);
}

static uint64_t create_file(client *c, const char *name)
{
    mc_inode in;
    assert_int_equal(mc_create(c->meta, "create", FS_ROOT_INO, name, S_IFREG | 0644, 0, 0, 0,
                               FSC_EXCL, &in),
                     0);
    uint64_t ino = in.a.ino;
    cfile *f = cfs_file(c->fs, ino);
    cfile_seed(f, &in);
    cfile_put(f);
    mc_inode_clear(&in);
    return ino;
}

static cfile *open_file(client *c, uint64_t ino)
{
    cfile *f = cfs_file(c->fs, ino);
    int changed;
    assert_int_equal(cfile_open(f, &changed, 0), 0);
    return f;
}

static void write_all(cfile *f, uint64_t off, const uint8_t *p, size_t n)
{
    size_t done = 0;
    while (done < n) {
        size_t step = MIN(n - done, (size_t)MiB);
        long w = cfile_write(f, off + done, p + done, step);
        assert_true(w > 0);
        done += (size_t)w;
    }
}

/* A new file name in the root holding data[0..n), flushed; its ino. */
static uint64_t store_file(client *c, const char *name, const uint8_t *data, size_t n)
{
    uint64_t ino = create_file(c, name);
    cfile *f = open_file(c, ino);
    write_all(f, 0, data, n);
    assert_int_equal(cfile_flush(f), 0);
    cfile_put(f);
    return ino;
}

/* The first size bytes of f, read a MiB at a time (malloc'd, size + 1). */
static uint8_t *read_all(cfile *f, size_t size)
{
    uint8_t *out = xmalloc(size + 1);
    size_t done = 0;
    while (done < size) {
        long n = cfile_read(f, done, MIN(size - done, (size_t)MiB), out + done, NULL);
        assert_true(n > 0);
        done += (size_t)n;
    }
    return out;
}

/* Bytes [from, to) of got are zeros. */
static void assert_zeros(const uint8_t *got, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        if (got[i] != 0)
            fail_msg("byte %zu is %u, expected 0", i, got[i]);
}

/* Read the whole file through a fresh client (nothing cached). */
static uint8_t *read_fresh(uint64_t ino, size_t *len)
{
    client *c = client_new(5000);
    cfile *f = open_file(c, ino);
    mc_inode in;
    assert_int_equal(mc_getattr(c->meta, ino, NULL, &in), 0);
    size_t size = (size_t)in.a.size;
    mc_inode_clear(&in);
    uint8_t *out = read_all(f, size);
    assert_int_equal(cfile_read(f, size, 100, out + size, NULL), 0);
    cfile_put(f);
    client_free(c);
    *len = size;
    return out;
}

static uint8_t *random_bytes(size_t n, unsigned seed)
{
    uint8_t *p = xmalloc(n);
    uint64_t x = 0x9E3779B97F4A7C15ull * (seed + 1);
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (uint8_t)x;
    }
    return p;
}

static int cluster_up(void *arg)
{
    (void)arg;
    mc_config mcc = {.addr = metad.addr, .retry_ms = 1000};
    mc *m = mc_new(&mcc);
    mc_cluster cl;
    int up = 0;
    if (mc_cluster_get(m, &cl) == 0) {
        for (size_t i = 0; i < cl.n; i++)
            up += cl.servers[i].state == SERVER_UP;
        mc_cluster_clear(&cl);
    }
    mc_free(m);
    return up == 3;
}

static int setup(void **state)
{
    (void)state;
    log_set_level(LOG_ERROR);
    dir = tmpdir_make("client");
    const char *md[] = {"--inline-budget", INLINE_BUDGET, NULL};
    assert_int_equal(start_metad(&metad, dir, md), 0);
    /* Compressing servers: random data stays as it is, text is stored
     * compressed (test_local_reads reads both kinds of file). */
    const char *hb[] = {"--heartbeat-interval", "500ms", "--compress-level", "1", NULL};
    for (int i = 0; i < 3; i++)
        assert_int_equal(start_chunkd(&chunkd[i], dir, i + 1, metad.addr, hb), 0);
    assert_true(wait_until(cluster_up, NULL, 15000));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < 3; i++)
        if (chunkd[i].pid > 0)
            proc_stop(&chunkd[i], 5000);
    proc_stop(&metad, 5000);
    tmpdir_remove(dir);
    free(dir);
    return 0;
}

/* A multi-chunk file with a partial last chunk round-trips byte for byte. */
static void test_roundtrip(void **state)
{
    (void)state;
    client *a = client_new(5000);
    size_t n = 10 * MiB + 12345;
    uint8_t *data = random_bytes(n, 1);
    uint64_t ino = store_file(a, "roundtrip", data, n);
    client_free(a);
    size_t len;
    uint8_t *got = read_fresh(ino, &len);
    assert_int_equal(len, n);
    assert_memory_equal(got, data, n);
    free(got);
    free(data);
}

/* A small file is committed inline: no chunk in its map. Growing it past the
 * inline limit turns it into chunks and keeps the old bytes. */
static void test_inline_then_grow(void **state)
{
    (void)state;
    client *a = client_new(5000);
    uint64_t ino = create_file(a, "small");
    uint8_t *data = random_bytes(100, 2);
    cfile *f = open_file(a, ino);
    write_all(f, 0, data, 100);
    assert_int_equal(cfile_flush(f), 0);
    mc_inode in;
    assert_int_equal(mc_map(a->meta, ino, NULL, &in), 0);
    assert_true(in.has_inline);
    assert_int_equal(in.inl_len, 100);
    assert_memory_equal(in.inl, data, 100);
    assert_int_equal(in.nslots, 0);
    mc_inode_clear(&in);

    uint8_t tail[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    uint64_t past = a->info.inline_max + 904;   /* past the inline limit */
    write_all(f, past, tail, sizeof(tail));
    assert_int_equal(cfile_flush(f), 0);
    cfile_put(f);
    assert_int_equal(mc_map(a->meta, ino, NULL, &in), 0);
    assert_false(in.has_inline);
    assert_int_equal(in.nslots, 1);
    assert_int_equal(in.a.size, past + 10);
    mc_inode_clear(&in);
    client_free(a);

    size_t len;
    uint8_t *got = read_fresh(ino, &len);
    assert_int_equal(len, past + 10);
    assert_memory_equal(got, data, 100);
    assert_zeros(got, 100, past);
    assert_memory_equal(got + past, tail, sizeof(tail));
    free(got);
    free(data);
}

/* Once metad's inline budget (INLINE_BUDGET here) is used up, a small file
 * is stored in a chunk instead: the close succeeds, the bytes are right,
 * and small files written right after go to chunks without asking metad
 * again. */
static void test_inline_budget_fallback(void **state)
{
    (void)state;
    client *a = client_new(5000);
    enum { N = 5, SZ = 40000 };
    uint64_t ino[N];
    uint8_t *data[N];
    int refused_at = -1;
    for (int i = 0; i < N; i++) {
        char name[32];
        snprintf(name, sizeof(name), "budget%d", i);
        ino[i] = create_file(a, name);
        data[i] = random_bytes(SZ, 40 + (unsigned)i);
        cfile *f = open_file(a, ino[i]);
        write_all(f, 0, data[i], SZ);
        assert_int_equal(cfile_flush(f), 0);
        cfile_put(f);
        mc_inode in;
        assert_int_equal(mc_map(a->meta, ino[i], NULL, &in), 0);
        assert_int_equal(in.a.size, SZ);
        if (in.has_inline) {
            assert_int_equal(refused_at, -1);   /* never inline again after a refusal */
            assert_int_equal(in.nslots, 0);
        } else {
            assert_int_equal(in.nslots, 1);
            if (refused_at < 0)
                refused_at = i;
        }
        mc_inode_clear(&in);
    }
    /* 96 KiB holds two files of 40000 bytes, plus what earlier tests left. */
    assert_true(refused_at >= 1 && refused_at <= 2);
    cfs_stats st;
    cfs_get_stats(a->fs, &st);
    assert_int_equal(st.inline_refused, 1);
    client_free(a);
    for (int i = 0; i < N; i++) {
        size_t len;
        uint8_t *got = read_fresh(ino[i], &len);
        assert_int_equal(len, SZ);
        assert_memory_equal(got, data[i], SZ);
        free(got);
        free(data[i]);
    }
}

/* The copies of chunk id in the chunkds' data directories: paths into
 * out (cap), count returned. */
static size_t chunk_files(const uint8_t id[CHUNK_ID_LEN], char out[][512], size_t cap)
{
    char hex[CHUNK_ID_HEX + 1];
    chunk_id_hex(id, hex);
    size_t n = 0;
    for (int i = 0; i < 3 && n < cap; i++) {
        snprintf(out[n], 512, "%s/chunk%d/chunks/%.2s/%.2s/%s", dir, i + 1, hex, hex + 2, hex);
        if (access(out[n], F_OK) == 0)
            n++;
    }
    return n;
}

/* With local reads, chunks of chunk servers on this machine come from their
 * files (no GET reaches a server), byte for byte; a local file that does
 * not check out is never served: with every copy damaged the read fails
 * instead of returning the damaged bytes. */
static void test_local_reads(void **state)
{
    (void)state;
    client *a = client_new(5000);
    size_t n = 2 * MiB * 4 + 777;   /* three chunks */
    uint8_t *data = random_bytes(n, 7);
    uint64_t ino = store_file(a, "local", data, n);
    cfile *f;
    mc_inode in;
    assert_int_equal(mc_map(a->meta, ino, NULL, &in), 0);
    assert_int_equal(in.nslots, 3);
    uint8_t id0[CHUNK_ID_LEN], id1[CHUNK_ID_LEN];
    memcpy(id0, in.slots[0].id, CHUNK_ID_LEN);
    memcpy(id1, in.slots[1].id, CHUNK_ID_LEN);
    mc_inode_clear(&in);
    client_free(a);

    client *l = client_new_opts(5000, 1, 0, 0);
    f = open_file(l, ino);
    uint8_t *got = read_all(f, n);
    assert_memory_equal(got, data, n);
    cfile_put(f);
    cio_stats st;
    cio_get_stats(l->io, &st);
    assert_int_equal(st.gets, 3);
    /* the first fetch may go over HTTP while the servers are being asked */
    assert_true(st.local_reads >= 2);
    assert_int_equal(st.local_failures, 0);
    assert_int_equal(st.local_ranges, 0);

    /* Out of the memory cache, a range of chunk 1 comes from its file
     * without reading the whole chunk again... */
    ccache_drop(l->cache, id1);
    uint8_t small[5000];
    f = open_file(l, ino);
    assert_int_equal(cfile_read(f, 4 * MiB + 12345, sizeof(small), small, NULL), sizeof(small));
    assert_memory_equal(small, data + 4 * MiB + 12345, sizeof(small));
    cio_stats st2;
    cio_get_stats(l->io, &st2);
    assert_int_equal(st2.local_ranges, 1);
    assert_int_equal(st2.local_reads, st.local_reads);
    /* ...while it is the same file: a changed one is read whole again. */
    char paths1[3][512];
    assert_int_equal(chunk_files(id1, paths1, 3), 2);
    for (int i = 0; i < 2; i++) {
        struct timespec ts[2] = {{0, UTIME_OMIT}, {12345, 0}};
        assert_int_equal(utimensat(AT_FDCWD, paths1[i], ts, 0), 0);
    }
    ccache_drop(l->cache, id1);
    assert_int_equal(cfile_read(f, 4 * MiB + 12345, sizeof(small), small, NULL), sizeof(small));
    assert_memory_equal(small, data + 4 * MiB + 12345, sizeof(small));
    cio_get_stats(l->io, &st2);
    assert_int_equal(st2.local_ranges, 1);
    assert_int_equal(st2.local_reads, st.local_reads + 1);
    cfile_put(f);
    client_free(l);

    /* Damage every copy of chunk 0 (one payload byte). */
    char paths[3][512];
    size_t np = chunk_files(id0, paths, 3);
    assert_int_equal(np, 2);
    for (size_t i = 0; i < np; i++) {
        int fd = open(paths[i], O_RDWR);
        assert_true(fd >= 0);
        uint8_t b;
        assert_int_equal(pread(fd, &b, 1, 64 + 1000), 1);
        b ^= 0x5a;
        assert_int_equal(pwrite(fd, &b, 1, 64 + 1000), 1);
        close(fd);
    }
    l = client_new_opts(1000, 1, 0, 0);
    f = open_file(l, ino);
    long r = cfile_read(f, 0, 4096, got, NULL);
    assert_true(r < 0);
    cio_get_stats(l->io, &st);
    assert_true(st.local_failures >= 1);
    assert_int_equal(st.local_reads, 0);
    /* chunk 1 is intact and still read locally */
    r = cfile_read(f, 4 * MiB, 4096, got, NULL);
    assert_int_equal(r, 4096);
    assert_memory_equal(got, data + 4 * MiB, 4096);
    cfile_put(f);

    /* A chunk the servers stored compressed is read from its file too. */
    size_t tn = 3 * MiB;
    uint8_t *text = xmalloc(tn);
    for (size_t i = 0; i < tn; i++)
        text[i] = (uint8_t)("cairn keeps chunks by content; "[i % 31]);
    uint64_t tino = store_file(l, "text", text, tn);
    mc_inode tin;
    assert_int_equal(mc_map(l->meta, tino, NULL, &tin), 0);
    assert_int_equal(tin.nslots, 1);
    np = chunk_files(tin.slots[0].id, paths, 3);
    mc_inode_clear(&tin);
    assert_int_equal(np, 2);
    for (size_t i = 0; i < np; i++) {
        struct stat sst;
        assert_int_equal(stat(paths[i], &sst), 0);
        assert_true((size_t)sst.st_size < tn / 10);   /* stored compressed */
    }
    client_free(l);
    l = client_new_opts(5000, 1, 0, 0);
    f = open_file(l, tino);
    uint8_t *tgot = read_all(f, tn);
    assert_memory_equal(tgot, text, tn);
    cio_get_stats(l->io, &st);
    assert_int_equal(st.local_reads, 1);
    assert_int_equal(st.local_failures, 0);
    cfile_put(f);
    client_free(l);
    free(tgot);
    free(text);
    free(got);
    free(data);
}

/* Two clients write different chunks of one file from the same base; the
 * second commit conflicts, rebases and keeps both. */
static void test_concurrent_different_chunks(void **state)
{
    (void)state;
    client *a = client_new(5000), *b = client_new(5000);
    uint64_t ino = create_file(a, "twochunks");
    size_t cs = a->info.chunk_size;
    uint8_t *base = random_bytes(3 * cs, 3);
    cfile *fa = open_file(a, ino);
    write_all(fa, 0, base, 3 * cs);
    assert_int_equal(cfile_flush(fa), 0);

    cfile *fb = open_file(b, ino);
    uint8_t *x = random_bytes(cs, 4), *y = random_bytes(cs, 5);
    write_all(fa, 0, x, cs);          /* A: chunk 0 */
    write_all(fb, 2 * cs, y, cs);     /* B: chunk 2, same base VV */
    assert_int_equal(cfile_flush(fa), 0);
    assert_int_equal(cfile_flush(fb), 0); /* 412 -> rebase -> retry */
    cfs_stats st;
    cfs_get_stats(b->fs, &st);
    assert_true(st.conflicts >= 1);
    cfile_put(fa);
    cfile_put(fb);
    client_free(a);
    client_free(b);

    size_t len;
    uint8_t *got = read_fresh(ino, &len);
    assert_int_equal(len, 3 * cs);
    assert_memory_equal(got, x, cs);
    assert_memory_equal(got + cs, base + cs, cs);
    assert_memory_equal(got + 2 * cs, y, cs);
    free(got);
    free(base);
    free(x);
    free(y);
}

/* Two clients write disjoint ranges of the SAME chunk: the rebase merges
 * the second writer's bytes into the first writer's chunk. */
static void test_concurrent_same_chunk(void **state)
{
    (void)state;
    client *a = client_new(5000), *b = client_new(5000);
    uint64_t ino = create_file(a, "samechunk");
    size_t n = 2 * MiB;
    uint8_t *base = random_bytes(n, 6);
    cfile *fa = open_file(a, ino);
    write_all(fa, 0, base, n);
    assert_int_equal(cfile_flush(fa), 0);
    cfile *fb = open_file(b, ino);
    uint8_t pa[100], pb[100];
    memset(pa, 0xAA, sizeof(pa));
    memset(pb, 0xBB, sizeof(pb));
    write_all(fa, 1000, pa, sizeof(pa));
    write_all(fb, 500000, pb, sizeof(pb));
    assert_int_equal(cfile_flush(fa), 0);
    assert_int_equal(cfile_flush(fb), 0);
    cfile_put(fa);
    cfile_put(fb);
    client_free(a);
    client_free(b);

    memcpy(base + 1000, pa, sizeof(pa));
    memcpy(base + 500000, pb, sizeof(pb));
    size_t len;
    uint8_t *got = read_fresh(ino, &len);
    assert_int_equal(len, n);
    assert_memory_equal(got, base, n);
    free(got);
    free(base);
}

/* Shrinking then extending must not bring old bytes back; holes read as
 * zeros and are not stored. */
static void test_truncate_and_holes(void **state)
{
    (void)state;
    client *a = client_new(5000);
    uint64_t ino = create_file(a, "trunc");
    size_t n = 6 * MiB;
    uint8_t *data = random_bytes(n, 7);
    cfile *f = open_file(a, ino);
    write_all(f, 0, data, n);
    assert_int_equal(cfile_flush(f), 0);
    fs_attr at;
    assert_int_equal(cfile_truncate(f, MiB + 3, &at), 0);
    assert_int_equal(at.size, MiB + 3);
    assert_int_equal(cfile_truncate(f, n, &at), 0);
    uint8_t far[7] = {7, 7, 7, 7, 7, 7, 7};
    uint64_t far_off = 5ull * a->info.chunk_size + 17;
    write_all(f, far_off, far, sizeof(far));
    assert_int_equal(cfile_flush(f), 0);
    cfile_put(f);
    mc_inode in;
    assert_int_equal(mc_map(a->meta, ino, NULL, &in), 0);
    /* slot 0 (trimmed) and slot 5; 1..4 are holes */
    assert_int_equal(in.nslots, 2);
    assert_int_equal(in.slots[0].index, 0);
    assert_int_equal(in.slots[1].index, 5);
    mc_inode_clear(&in);
    client_free(a);

    size_t len;
    uint8_t *got = read_fresh(ino, &len);
    assert_int_equal(len, far_off + sizeof(far));
    assert_memory_equal(got, data, MiB + 3);
    assert_zeros(got, MiB + 3, far_off);   /* truncated, then extended */
    assert_memory_equal(got + far_off, far, sizeof(far));
    free(got);
    free(data);
}

/* With every chunk server gone, a flush fails loudly after the retry time
 * instead of reporting success. */
static void test_flush_fails_without_servers(void **state)
{
    (void)state;
    client *a = client_new(1500);
    uint64_t ino = create_file(a, "nowhere");
    for (int i = 0; i < 3; i++)
        proc_kill9(&chunkd[i]);
    uint8_t *data = random_bytes(MiB, 8);
    cfile *f = open_file(a, ino);
    long w = cfile_write(f, 0, data, MiB);
    assert_int_equal(w, MiB);
    int rc = cfile_flush(f);
    assert_true(rc < 0);
    cfile_put(f);
    client_free(a);
    mc_config mcc = {.addr = metad.addr, .retry_ms = 1000};
    mc *m = mc_new(&mcc);
    mc_inode in;
    assert_int_equal(mc_getattr(m, ino, NULL, &in), 0);
    assert_int_equal(in.a.size, 0); /* nothing was committed */
    mc_inode_clear(&in);
    mc_free(m);
    free(data);
}

/* Files each holding one whole chunk of random bytes (seeds 20 + i),
 * stored by a client of their own; their inos in inos[]. */
#define SLOT_FILES 6
static uint8_t *store_chunk_files(const char *prefix, uint64_t *inos)
{
    client *w = client_new(5000);
    size_t cs = w->info.chunk_size;
    uint8_t *data = xmalloc(SLOT_FILES * cs);
    for (unsigned i = 0; i < SLOT_FILES; i++) {
        uint8_t *r = random_bytes(cs, 20 + i);
        memcpy(data + i * cs, r, cs);
        free(r);
        char name[64];
        snprintf(name, sizeof(name), "%s%u", prefix, i);
        inos[i] = store_file(w, name, data + i * cs, cs);
    }
    client_free(w);
    return data;
}

typedef struct slot_job {
    client *c;
    uint64_t ino;
    unsigned i;
    size_t cs;
    pthread_barrier_t *start;
    uint8_t *got;               /* read jobs: the chunk read back */
    int rc;
} slot_job;

/* Write 100 bytes into the middle of the file's one chunk and flush it:
 * the flush merges them with the chunk's old bytes. */
static void *patch_job(void *arg)
{
    slot_job *j = arg;
    cfile *f = cfs_file(j->c->fs, j->ino);
    int changed;
    j->rc = cfile_open(f, &changed, 0);
    uint8_t patch[100];
    memset(patch, 0xA0 + j->i, sizeof(patch));
    if (j->rc == 0 && cfile_write(f, 1000, patch, sizeof(patch)) != (long)sizeof(patch))
        j->rc = -EIO;
    pthread_barrier_wait(j->start);
    if (j->rc == 0)
        j->rc = cfile_flush(f);
    cfile_put(f);
    return NULL;
}

static void *read_job(void *arg)
{
    slot_job *j = arg;
    cfile *f = cfs_file(j->c->fs, j->ino);
    int changed;
    j->rc = cfile_open(f, &changed, 0);
    pthread_barrier_wait(j->start);
    if (j->rc == 0 && cfile_read(f, 0, j->cs, j->got, NULL) != (long)j->cs)
        j->rc = -EIO;
    cfile_put(f);
    return NULL;
}

/* Run fn for each of the files on its own thread, started together; got
 * (NULL for jobs that read nothing): chunk i is read into got + i * cs. */
static void run_slot_jobs(client *c, const uint64_t *inos, void *(*fn)(void *), uint8_t *got)
{
    pthread_t th[SLOT_FILES];
    pthread_barrier_t start;
    slot_job jobs[SLOT_FILES];
    size_t cs = c->info.chunk_size;
    pthread_barrier_init(&start, NULL, SLOT_FILES);
    for (unsigned i = 0; i < SLOT_FILES; i++) {
        jobs[i] = (slot_job){.c = c, .ino = inos[i], .i = i, .cs = cs, .start = &start,
                             .got = got ? got + i * cs : NULL};
        assert_int_equal(pthread_create(&th[i], NULL, fn, &jobs[i]), 0);
    }
    for (unsigned i = 0; i < SLOT_FILES; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(jobs[i].rc, 0);
    }
    pthread_barrier_destroy(&start);
}

/* Merges of written bytes with chunks' old bytes wait for one of
 * merge_slots: with one slot, six files flushed at once are merged one at
 * a time, and each still ends up with its old bytes around the new. */
static void test_merge_slots(void **state)
{
    (void)state;
    uint64_t inos[SLOT_FILES];
    uint8_t *data = store_chunk_files("merge", inos);
    client *c = client_new_opts(5000, 0, 0, 1);
    size_t cs = c->info.chunk_size;
    run_slot_jobs(c, inos, patch_job, NULL);
    cfs_stats st;
    cfs_get_stats(c->fs, &st);
    assert_int_equal(st.merge_peak, 1);
    client_free(c);
    for (unsigned i = 0; i < SLOT_FILES; i++) {
        memset(data + i * cs + 1000, 0xA0 + i, 100);
        size_t len;
        uint8_t *got = read_fresh(inos[i], &len);
        assert_int_equal(len, cs);
        assert_memory_equal(got, data + i * cs, cs);
        free(got);
    }
    free(data);
}

/* Fetches of chunks not in the cache wait for one of fetch_slots: six
 * readers of six chunks at once, one slot, one fetch at a time, and every
 * reader gets its chunk's bytes. */
static void test_fetch_slots(void **state)
{
    (void)state;
    uint64_t inos[SLOT_FILES];
    uint8_t *data = store_chunk_files("fetch", inos);
    client *c = client_new_opts(5000, 0, 1, 0);
    size_t cs = c->info.chunk_size;
    uint8_t *got = xmalloc(SLOT_FILES * cs);
    run_slot_jobs(c, inos, read_job, got);
    cio_stats st;
    cio_get_stats(c->io, &st);
    assert_int_equal(st.fetch_peak, 1);
    assert_true(st.gets >= SLOT_FILES);
    assert_memory_equal(got, data, SLOT_FILES * cs);
    free(got);
    client_free(c);
    free(data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_inline_then_grow),
        cmocka_unit_test(test_inline_budget_fallback),
        cmocka_unit_test(test_local_reads),
        cmocka_unit_test(test_concurrent_different_chunks),
        cmocka_unit_test(test_concurrent_same_chunk),
        cmocka_unit_test(test_truncate_and_holes),
        cmocka_unit_test(test_merge_slots),
        cmocka_unit_test(test_fetch_slots),
        cmocka_unit_test(test_flush_fails_without_servers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
