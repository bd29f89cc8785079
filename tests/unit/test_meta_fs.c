/*
 * test_meta_fs.c — the namespace core (server/meta/fs.h) without HTTP:
 * apply functions, chunk reference counts, the readdir cursor under
 * churn, snapshot round trips and replay determinism.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/fsrec.h"
#include "common/hash.h"
#include "common/rec.h"
#include "common/util.h"
#include "server/meta/fs.h"
#include "server/meta/refs.h"

#define CHUNK 4096u

/* Every record applied by the helpers, so tests can replay them. */
static buf g_log;
static int64_t g_clock = 1000;

static int apply(fs *f, fs_op *op, fs_result *res)
{
    recw w;
    size_t len;
    const uint8_t *p;
    uint8_t hdr[4];
    fs_result local;
    int rc;

    op->replica = 1;
    op->now = ++g_clock;
    fs_op_encode(op, &w);
    p = recw_finish(&w, &len);
    rc = fs_apply(f, p, len, res ? res : &local);
    if (rc == 0 && (res ? res : &local)->changed) {
        put_le32(hdr, (uint32_t)len);
        buf_append(&g_log, hdr, 4);
        buf_append(&g_log, p, len);
    }
    recw_free(&w);
    return rc;
}

static void root(fs *f)
{
    fs_op op = {.type = FSOP_INIT, .mode = 0755, .gen = 1};

    assert_int_equal(apply(f, &op, NULL), 0);
}

static fs *fresh(void)
{
    fs *f = fs_new(CHUNK, 512);

    buf_free(&g_log);
    root(f);
    return f;
}

static int mk(fs *f, uint64_t parent, const char *name, uint32_t mode, uint64_t *ino)
{
    fs_op op = {.type = FSOP_CREATE, .parent = parent, .mode = mode, .flags = FSC_EXCL};
    fs_result res;
    int rc;

    snprintf(op.name, sizeof(op.name), "%s", name);
    op.ino = fs_next_ino(f);
    op.gen = op.ino * 7;
    if (S_ISLNK(mode))
        snprintf(op.target, sizeof(op.target), "target-of-%s", name);
    rc = apply(f, &op, &res);
    if (rc == 0 && ino)
        *ino = res.attr[0].ino;
    return rc;
}

static int names(fs *f, uint8_t type, uint64_t p, const char *n, uint64_t np, const char *nn,
                 uint64_t flags)
{
    fs_op op = {.type = type, .parent = p, .newparent = np, .flags = flags};

    snprintf(op.name, sizeof(op.name), "%s", n);
    if (nn)
        snprintf(op.newname, sizeof(op.newname), "%s", nn);
    return apply(f, &op, NULL);
}

static const fs_attr *attr(fs *f, uint64_t ino)
{
    fs_inode *ip = fs_get(f, ino);

    return ip ? fs_inode_attr(ip) : NULL;
}

static void chunk_id(unsigned seed, uint8_t id[CHUNK_ID_LEN])
{
    char s[32];

    snprintf(s, sizeof(s), "id-%u", seed);
    sha256(s, strlen(s), id);
}

static uint64_t refs_of(fs *f, unsigned seed)
{
    uint8_t id[CHUNK_ID_LEN];

    chunk_id(seed, id);
    return refs_get(fs_refs(f), id);
}

/* Commit slots {index, len, seed}. */
static int commit(fs *f, uint64_t ino, const unsigned (*s)[3], size_t n, uint64_t size)
{
    fs_op op = {.type = FSOP_COMMIT, .ino = ino, .size = size};
    fs_slot slots[16];

    for (size_t i = 0; i < n; i++) {
        slots[i].index = s[i][0];
        slots[i].len = s[i][1];
        chunk_id(s[i][2], slots[i].id);
    }
    op.slots = slots;
    op.nslots = n;
    return apply(f, &op, NULL);
}

/* ------------------------------------------------------------------ */

static void test_create_and_names(void **state)
{
    (void)state;
    fs *f = fresh();
    uint64_t d, a;
    char longname[FS_NAME_MAX + 2];

    assert_int_equal(mk(f, FS_ROOT_INO, "d", S_IFDIR | 0755, &d), 0);
    assert_int_equal(attr(f, FS_ROOT_INO)->nlink, 3);
    assert_int_equal(mk(f, d, "a", S_IFREG | 0644, &a), 0);
    assert_int_equal(mk(f, d, "a", S_IFREG | 0644, NULL), -EEXIST);
    assert_int_equal(mk(f, a, "x", S_IFREG | 0644, NULL), -ENOTDIR);
    assert_int_equal(mk(f, 12345, "x", S_IFREG | 0644, NULL), -ENOENT);
    assert_int_equal(mk(f, d, ".", S_IFREG | 0644, NULL), -EINVAL);
    assert_int_equal(mk(f, d, "..", S_IFDIR | 0755, NULL), -EINVAL);
    assert_int_equal(mk(f, d, "", S_IFREG | 0644, NULL), -EINVAL);
    assert_int_equal(mk(f, d, "bad", 0170000 | 0644, NULL), -EINVAL);
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(fs_name_check(longname, strlen(longname)), -ENAMETOOLONG);
    assert_int_equal(fs_name_check(longname, FS_NAME_MAX), 0);
    assert_int_equal(fs_name_check("a\0b", 3), -EINVAL);
    /* Non-exclusive create finds the file and changes nothing. */
    {
        fs_op op = {.type = FSOP_CREATE, .parent = d, .mode = S_IFREG | 0600, .ino = 999};
        fs_result res;
        snprintf(op.name, sizeof(op.name), "a");
        assert_int_equal(apply(f, &op, &res), 0);
        assert_int_equal(res.existed, 1);
        assert_int_equal(res.changed, 0);
        assert_int_equal(res.attr[0].ino, a);
        assert_null(fs_get(f, 999));
    }
    /* The inode counter is past every ino applied, even from replay. */
    assert_true(fs_next_ino(f) > a);
    assert_int_equal(fs_check(f), 0);
    fs_free(f);
}

static void test_rename_rules(void **state)
{
    (void)state;
    fs *f = fresh();
    uint64_t x, y, z, file, e, g;
    fs_counts before, after;

    assert_int_equal(mk(f, 1, "x", S_IFDIR | 0755, &x), 0);
    assert_int_equal(mk(f, x, "y", S_IFDIR | 0755, &y), 0);
    assert_int_equal(mk(f, y, "z", S_IFDIR | 0755, &z), 0);
    assert_int_equal(mk(f, 1, "file", S_IFREG | 0644, &file), 0);
    assert_int_equal(mk(f, 1, "e", S_IFDIR | 0755, &e), 0);
    assert_int_equal(mk(f, 1, "g", S_IFREG | 0644, &g), 0);

    fs_get_counts(f, &before);
    assert_int_equal(names(f, FSOP_RENAME, 1, "x", z, "x", 0), -EINVAL);
    assert_int_equal(names(f, FSOP_RENAME, 1, "x", x, "x", 0), -EINVAL);
    assert_int_equal(names(f, FSOP_RENAME, 1, "file", 1, "x", 0), -EISDIR);
    assert_int_equal(names(f, FSOP_RENAME, 1, "e", 1, "file", 0), -ENOTDIR);
    assert_int_equal(names(f, FSOP_RENAME, 1, "e", 1, "x", 0), -ENOTEMPTY);
    assert_int_equal(names(f, FSOP_RENAME, 1, "file", 1, "g", 1), -EEXIST);
    assert_int_equal(names(f, FSOP_RENAME, 1, "file", 1, "g", 3), -EINVAL);
    assert_int_equal(names(f, FSOP_RENAME, 1, "file", 1, "none", 2), -ENOENT);
    assert_int_equal(names(f, FSOP_RENAME, 1, "x", y, "q", 2), -ENOENT);
    /* A failed op changes nothing: counts, times, versions. */
    fs_get_counts(f, &after);
    assert_int_equal(before.inodes, after.inodes);
    assert_int_equal(before.dirents, after.dirents);
    assert_int_equal(attr(f, 1)->nlink, 4);

    /* Exchange a directory and a file across parents. */
    assert_int_equal(names(f, FSOP_RENAME, y, "z", 1, "file", 2), 0);
    assert_int_equal(attr(f, y)->nlink, 2);
    assert_int_equal(attr(f, 1)->nlink, 5);
    /* Now /file is z (a dir) and y/z is the file. Directory over empty
     * directory. */
    assert_int_equal(names(f, FSOP_RENAME, 1, "file", 1, "e", 0), 0);
    assert_null(fs_get(f, e));
    assert_int_equal(attr(f, 1)->nlink, 4);
    /* Same inode: no-op. */
    assert_int_equal(names(f, FSOP_LINK, 0, "", 1, "g2", 0), -ENOENT);
    {
        fs_op op = {.type = FSOP_LINK, .ino = g, .newparent = 1};
        snprintf(op.newname, sizeof(op.newname), "g2");
        assert_int_equal(apply(f, &op, NULL), 0);
    }
    assert_int_equal(names(f, FSOP_RENAME, 1, "g", 1, "g2", 0), 0);
    assert_int_equal(attr(f, g)->nlink, 2);
    assert_int_equal(fs_check(f), 0);
    fs_free(f);
}

static void test_refcounts(void **state)
{
    (void)state;
    fs *f = fresh();
    uint64_t a, b;
    static const unsigned m1[][3] = {{0, CHUNK, 1}, {1, CHUNK, 2}, {2, 100, 3}};
    static const unsigned m2[][3] = {{1, 0, 0}, {5, 10, 1}};

    assert_int_equal(mk(f, 1, "a", S_IFREG | 0644, &a), 0);
    assert_int_equal(mk(f, 1, "b", S_IFREG | 0644, &b), 0);
    assert_int_equal(commit(f, a, m1, 3, 2 * CHUNK + 100), 0);
    assert_int_equal(commit(f, b, m1, 1, CHUNK), 0);
    assert_int_equal(refs_of(f, 1), 2);
    assert_int_equal(refs_of(f, 2), 1);
    /* A hole and a new slot reusing id 1. */
    assert_int_equal(commit(f, a, m2, 2, 5 * CHUNK + 10), 0);
    assert_int_equal(refs_of(f, 1), 3);
    assert_int_equal(refs_of(f, 2), 0);
    /* Truncate drops slots past the end and shortens the last. */
    {
        fs_op op = {.type = FSOP_SETATTR, .ino = a, .valid = SA_SIZE, .size = CHUNK * 2 + 50};
        assert_int_equal(apply(f, &op, NULL), 0);
    }
    assert_int_equal(refs_of(f, 1), 2);
    assert_int_equal(refs_of(f, 3), 1);
    /* Bad commits change nothing. */
    {
        static const unsigned big[][3] = {{0, CHUNK + 1, 9}};
        static const unsigned dup[][3] = {{0, 1, 9}, {0, 1, 9}};
        assert_int_equal(commit(f, a, big, 1, 10), -EINVAL);
        assert_int_equal(commit(f, a, dup, 2, 10), -EINVAL);
        assert_int_equal(refs_of(f, 9), 0);
    }
    /* Rename over b drops b's references; unlink of the last link drops a's. */
    assert_int_equal(names(f, FSOP_RENAME, 1, "a", 1, "b", 0), 0);
    assert_null(fs_get(f, b));
    assert_int_equal(refs_of(f, 1), 1);
    assert_int_equal(names(f, FSOP_UNLINK, 1, "b", 0, NULL, 0), 0);
    assert_int_equal(refs_of(f, 1), 0);
    assert_int_equal(refs_of(f, 3), 0);
    assert_int_equal(refs_count(fs_refs(f)), 0);
    fs_free(f);
}

static void test_cursor_under_churn(void **state)
{
    (void)state;
    fs *f = fresh();
    uint64_t d, cursor = 0, eof = 0, v;
    char name[32];
    int seen[400] = {0}, created = 0, i;
    recw w;
    recr r, e;
    rec_iter it;
    uint16_t tag;
    const uint8_t *p, *np;
    size_t n, nl;

    assert_int_equal(mk(f, 1, "d", S_IFDIR | 0755, &d), 0);
    for (i = 0; i < 300; i++) {
        snprintf(name, sizeof(name), "s%03d", i);
        assert_int_equal(mk(f, d, name, S_IFREG | 0644, NULL), 0);
    }
    /* Delete most of them (forcing compaction), keep every 10th as the
     * stable set, and list in pages of 7 while churning between pages. */
    for (i = 0; i < 300; i++) {
        if (i % 10 == 0)
            continue;
        snprintf(name, sizeof(name), "s%03d", i);
        assert_int_equal(names(f, FSOP_UNLINK, d, name, 0, NULL, 0), 0);
    }
    while (!eof) {
        assert_int_equal(fs_readdir(f, d, cursor, 7, &w), 0);
        p = recw_finish(&w, &n);
        assert_int_equal(rec_open(&r, p, n), 0);
        rec_iter_init(&it);
        while (rec_next(&r, &it, &tag, &np, &nl)) {
            if (tag != FT_DIRENT)
                continue;
            assert_int_equal(rec_open(&e, np, nl), 0);
            assert_int_equal(rec_get_bytes(&e, FT_NAME, &np, &nl), 0);
            if (np[0] == 's') {
                int k = atoi((const char *)np + 1);
                assert_int_equal(seen[k], 0);
                seen[k] = 1;
            }
        }
        assert_int_equal(rec_get_u64(&r, FT_CURSOR, &v), 0);
        assert_true(v >= cursor);
        cursor = v;
        assert_int_equal(rec_get_u64(&r, FT_EOF, &eof), 0);
        recw_free(&w);
        snprintf(name, sizeof(name), "c%d", created++);
        assert_int_equal(mk(f, d, name, S_IFREG | 0644, NULL), 0);
        if (created > 2) {
            snprintf(name, sizeof(name), "c%d", created - 3);
            assert_int_equal(names(f, FSOP_UNLINK, d, name, 0, NULL, 0), 0);
        }
        assert_true(created < 1000);
    }
    for (i = 0; i < 300; i += 10)
        assert_int_equal(seen[i], 1);
    assert_int_equal(fs_readdir(f, 12345, 0, 10, &w), -ENOENT);
    assert_int_equal(fs_check(f), 0);
    fs_free(f);
}

typedef struct snapbuf {
    buf b;
} snapbuf;

static int emit(const uint8_t *rec, size_t len, void *ctx)
{
    snapbuf *s = ctx;
    uint8_t hdr[4];

    put_le32(hdr, (uint32_t)len);
    buf_append(&s->b, hdr, 4);
    buf_append(&s->b, rec, len);
    return 0;
}

static fs *load(const buf *b)
{
    fs *f = fs_new(CHUNK, 512);
    size_t off = 0;

    while (off < b->len) {
        uint32_t len = get_le32(b->data + off);
        assert_int_equal(fs_snapshot_load(f, b->data + off + 4, len), 0);
        off += 4 + len;
    }
    assert_int_equal(fs_check(f), 0);
    return f;
}

static fs *replay(const buf *log)
{
    fs *f = fs_new(CHUNK, 512);
    size_t off = 0;

    while (off < log->len) {
        uint32_t len = get_le32(log->data + off);
        assert_int_equal(fs_apply(f, log->data + off + 4, len, NULL), 0);
        off += 4 + len;
    }
    return f;
}

static void build_tree(fs *f, uint64_t *file)
{
    uint64_t d;
    static const unsigned m[][3] = {{0, CHUNK, 11}, {7, 9, 12}};

    assert_int_equal(mk(f, 1, "d", S_IFDIR | 0755, &d), 0);
    assert_int_equal(mk(f, d, "sub", S_IFDIR | 0700, NULL), 0);
    assert_int_equal(mk(f, d, "f", S_IFREG | 0644, file), 0);
    assert_int_equal(mk(f, d, "ln", S_IFLNK | 0777, NULL), 0);
    assert_int_equal(mk(f, d, "fifo", S_IFIFO | 0600, NULL), 0);
    assert_int_equal(commit(f, *file, m, 2, 7 * CHUNK + 9), 0);
    {
        fs_op op = {.type = FSOP_XATTR_SET, .ino = *file, .value = (const uint8_t *)"val",
                    .value_len = 3};
        snprintf(op.name, sizeof(op.name), "cairn.replicas");
        assert_int_equal(apply(f, &op, NULL), 0);
    }
    {
        fs_op op = {.type = FSOP_LINK, .ino = *file, .newparent = 1};
        snprintf(op.newname, sizeof(op.newname), "hard");
        assert_int_equal(apply(f, &op, NULL), 0);
    }
    assert_int_equal(names(f, FSOP_RENAME, d, "fifo", 1, "fifo2", 0), 0);
}

static void test_snapshot_roundtrip(void **state)
{
    (void)state;
    fs *f = fresh(), *g, *h;
    uint64_t file;
    snapbuf a = {0}, b = {0}, c = {0};
    fs_counts ca, cb;
    fs_inode *ip;
    const uint8_t *v;
    size_t vn;

    build_tree(f, &file);
    assert_int_equal(fs_snapshot_write(f, emit, &a), 0);
    g = load(&a.b);
    fs_get_counts(f, &ca);
    fs_get_counts(g, &cb);
    assert_int_equal(ca.inodes, cb.inodes);
    assert_int_equal(ca.dirents, cb.dirents);
    assert_int_equal(ca.slots, cb.slots);
    assert_int_equal(ca.chunk_refs, cb.chunk_refs);
    assert_int_equal(refs_of(g, 11), 1);
    ip = fs_get(g, file);
    assert_non_null(ip);
    assert_int_equal(fs_inode_attr(ip)->nlink, 2);
    assert_true(vv_equal(&fs_inode_attr(ip)->vv, &fs_inode_attr(fs_get(f, file))->vv));
    assert_int_equal(fs_xattr_get(ip, "cairn.replicas", &v, &vn), 0);
    assert_int_equal(vn, 3);
    /* Writing the loaded copy gives the same bytes. */
    assert_int_equal(fs_snapshot_write(g, emit, &b), 0);
    assert_int_equal(a.b.len, b.b.len);
    /* Replaying the log from scratch reproduces the state exactly. */
    h = replay(&g_log);
    assert_int_equal(fs_snapshot_write(h, emit, &c), 0);
    assert_int_equal(a.b.len, c.b.len);
    assert_memory_equal(a.b.data, c.b.data, a.b.len);
    /* A corrupt record is refused. */
    {
        fs *k = fs_new(CHUNK, 512);
        uint8_t junk[16] = {0};
        assert_int_equal(fs_snapshot_load(k, junk, sizeof(junk)), CAIRN_ECORRUPT);
        fs_free(k);
    }
    buf_free(&a.b);
    buf_free(&b.b);
    buf_free(&c.b);
    fs_free(f);
    fs_free(g);
    fs_free(h);
}

/* A commit can carry a chmod and an atime the client folded into it; the
 * WAL record keeps them (apply() encodes and decodes), later commits
 * without them leave both alone. */
static void test_commit_carries_mode_and_atime(void **state)
{
    (void)state;
    fs *f = fresh();
    uint64_t a;
    fs_op op;

    assert_int_equal(mk(f, 1, "a", S_IFREG | 0600, &a), 0);
    memset(&op, 0, sizeof(op));
    op.type = FSOP_COMMIT;
    op.ino = a;
    op.size = 10;
    op.has_mtime = 1;
    op.mtime = 2000;
    op.has_atime = 1;
    op.atime = 1000;
    op.has_mode = 1;
    op.mode = 04751;
    assert_int_equal(apply(f, &op, NULL), 0);
    assert_int_equal(attr(f, a)->mode, S_IFREG | 04751);
    assert_int_equal(attr(f, a)->atime, 1000);
    assert_int_equal(attr(f, a)->mtime, 2000);
    assert_int_equal(attr(f, a)->size, 10);

    memset(&op, 0, sizeof(op));
    op.type = FSOP_COMMIT;
    op.ino = a;
    op.size = 20;
    assert_int_equal(apply(f, &op, NULL), 0);
    assert_int_equal(attr(f, a)->mode, S_IFREG | 04751);
    assert_int_equal(attr(f, a)->atime, 1000);
    assert_int_equal(attr(f, a)->size, 20);
    fs_free(f);
}

static void test_setattr_and_xattr_limits(void **state)
{
    (void)state;
    fs *f = fresh();
    uint64_t a;
    fs_op op;

    assert_int_equal(mk(f, 1, "a", S_IFREG | 0644, &a), 0);
    memset(&op, 0, sizeof(op));
    op.type = FSOP_SETATTR;
    op.ino = a;
    op.valid = SA_MODE;
    op.mode = 010000 | 0644;   /* a type bit */
    assert_int_equal(apply(f, &op, NULL), -EINVAL);
    op.valid = 1u << 20;
    assert_int_equal(apply(f, &op, NULL), -EINVAL);
    op.valid = SA_MTIME_NOW | SA_ATIME;
    op.atime = 5;
    assert_int_equal(apply(f, &op, NULL), 0);
    assert_int_equal(attr(f, a)->atime, 5);
    assert_int_equal(attr(f, a)->mtime, g_clock);
    assert_int_equal(attr(f, a)->ctime, g_clock);
    /* The xattr name list is bounded: ENOSPC once full. */
    memset(&op, 0, sizeof(op));
    op.type = FSOP_XATTR_SET;
    op.ino = a;
    op.value = (const uint8_t *)"";
    int i, rc = 0;
    for (i = 0; i < 100000 && rc == 0; i++) {
        snprintf(op.name, sizeof(op.name), "user.%0245d", i);
        rc = apply(f, &op, NULL);
    }
    assert_int_equal(rc, -ENOSPC);
    assert_true(i * 256 > FS_XATTR_LIST_MAX - 512);
    fs_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_and_names),
        cmocka_unit_test(test_rename_rules),
        cmocka_unit_test(test_refcounts),
        cmocka_unit_test(test_cursor_under_churn),
        cmocka_unit_test(test_snapshot_roundtrip),
        cmocka_unit_test(test_commit_carries_mode_and_atime),
        cmocka_unit_test(test_setattr_and_xattr_limits),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);

    buf_free(&g_log);
    return rc;
}
