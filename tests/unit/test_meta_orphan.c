/*
 * test_meta_orphan.c — orphans in the namespace core (server/meta/fs.h):
 * an unlink or rename-over that carries FT_OP_KEEP keeps a regular file
 * alive with nlink 0 until FSOP_ORPHAN_FREE; snapshots keep orphans,
 * fs_check accepts them, and replaying the log gives the same state.
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

static buf g_log;
static int64_t g_clock = 5000;

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

static fs *fresh(void)
{
    fs *f = fs_new(CHUNK, 512);
    fs_op op = {.type = FSOP_INIT, .mode = 0755, .gen = 1};

    buf_free(&g_log);
    assert_int_equal(apply(f, &op, NULL), 0);
    return f;
}

static uint64_t mk(fs *f, uint64_t parent, const char *name, uint32_t mode)
{
    fs_op op = {.type = FSOP_CREATE, .parent = parent, .mode = mode, .flags = FSC_EXCL};
    fs_result res;

    snprintf(op.name, sizeof(op.name), "%s", name);
    op.ino = fs_next_ino(f);
    op.gen = op.ino;
    assert_int_equal(apply(f, &op, &res), 0);
    return res.attr[0].ino;
}

static int unlink_keep(fs *f, uint8_t type, uint64_t parent, const char *name, uint64_t keep)
{
    fs_op op = {.type = type, .parent = parent, .keep = keep};

    snprintf(op.name, sizeof(op.name), "%s", name);
    return apply(f, &op, NULL);
}

static int rename_keep(fs *f, uint64_t p, const char *n, uint64_t np, const char *nn,
                       uint64_t keep)
{
    fs_op op = {.type = FSOP_RENAME, .parent = p, .newparent = np, .keep = keep};

    snprintf(op.name, sizeof(op.name), "%s", n);
    snprintf(op.newname, sizeof(op.newname), "%s", nn);
    return apply(f, &op, NULL);
}

static int free_orphan(fs *f, uint64_t ino)
{
    fs_op op = {.type = FSOP_ORPHAN_FREE, .ino = ino};

    return apply(f, &op, NULL);
}

static void chunk_id(unsigned seed, uint8_t id[CHUNK_ID_LEN])
{
    char s[32];

    snprintf(s, sizeof(s), "orphan-%u", seed);
    sha256(s, strlen(s), id);
}

static uint64_t refs_of(fs *f, unsigned seed)
{
    uint8_t id[CHUNK_ID_LEN];

    chunk_id(seed, id);
    return refs_get(fs_refs(f), id);
}

static int commit1(fs *f, uint64_t ino, unsigned seed)
{
    fs_op op = {.type = FSOP_COMMIT, .ino = ino, .size = CHUNK};
    fs_slot s = {.index = 0, .len = CHUNK};

    chunk_id(seed, s.id);
    op.slots = &s;
    op.nslots = 1;
    return apply(f, &op, NULL);
}

static uint64_t norphans(fs *f)
{
    fs_counts c;

    fs_get_counts(f, &c);
    return c.orphans;
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

static fs *replay(const buf *log, size_t upto)
{
    fs *f = fs_new(CHUNK, 512);
    size_t off = 0;

    while (off < upto) {
        uint32_t len = get_le32(log->data + off);
        assert_int_equal(fs_apply(f, log->data + off + 4, len, NULL), 0);
        off += 4 + len;
    }
    return f;
}

/* Both namespaces serialize to the same bytes. */
static void assert_same(fs *a, fs *b)
{
    snapbuf x = {0}, y = {0};

    assert_int_equal(fs_snapshot_write(a, emit, &x), 0);
    assert_int_equal(fs_snapshot_write(b, emit, &y), 0);
    assert_int_equal(x.b.len, y.b.len);
    assert_memory_equal(x.b.data, y.b.data, x.b.len);
    buf_free(&x.b);
    buf_free(&y.b);
}

/* ------------------------------------------------------------------ */

static void test_unlink_keeps_orphan(void **state)
{
    (void)state;
    fs *f = fresh();
    uint64_t a = mk(f, 1, "a", S_IFREG | 0644), b = mk(f, 1, "b", S_IFREG | 0644);
    fs_inode *ip;
    fs_attr at;
    size_t n;
    uint64_t *list;

    assert_int_equal(commit1(f, a, 1), 0);
    assert_int_equal(commit1(f, b, 2), 0);
    /* Kept: the file loses its name but not its data. */
    assert_int_equal(unlink_keep(f, FSOP_UNLINK, 1, "a", a), 0);
    ip = fs_get(f, a);
    assert_non_null(ip);
    assert_true(fs_inode_is_orphan(ip));
    assert_int_equal(fs_inode_attr(ip)->nlink, 0);
    assert_int_equal(refs_of(f, 1), 1);
    assert_int_equal(norphans(f), 1);
    assert_int_equal(fs_check(f), 0);
    list = fs_orphan_list(f, &n);
    assert_int_equal(n, 1);
    assert_int_equal(list[0], a);
    free(list);
    /* Still writable and settable by ino. */
    assert_int_equal(commit1(f, a, 3), 0);
    assert_int_equal(refs_of(f, 1), 0);
    assert_int_equal(refs_of(f, 3), 1);
    {
        fs_op op = {.type = FSOP_SETATTR, .ino = a, .valid = SA_MODE, .mode = 0600};
        assert_int_equal(apply(f, &op, NULL), 0);
        op = (fs_op){.type = FSOP_XATTR_SET, .ino = a, .value = (const uint8_t *)"v",
                     .value_len = 1};
        snprintf(op.name, sizeof(op.name), "user.x");
        assert_int_equal(apply(f, &op, NULL), 0);
    }
    at = *fs_inode_attr(fs_get(f, a));
    assert_int_equal(at.mode, S_IFREG | 0600);
    assert_int_equal(at.nlink, 0);
    /* No new name for an orphan. */
    {
        fs_op op = {.type = FSOP_LINK, .ino = a, .newparent = 1};
        snprintf(op.newname, sizeof(op.newname), "again");
        assert_int_equal(apply(f, &op, NULL), -ENOENT);
    }
    /* Not kept: no FT_OP_KEEP, or one naming another inode. */
    assert_int_equal(unlink_keep(f, FSOP_UNLINK, 1, "b", a), 0);
    assert_null(fs_get(f, b));
    assert_int_equal(refs_of(f, 2), 0);
    /* Free: only orphans, only once. */
    assert_int_equal(free_orphan(f, 1), -EINVAL);
    assert_int_equal(free_orphan(f, a), 0);
    assert_null(fs_get(f, a));
    assert_int_equal(refs_of(f, 3), 0);
    assert_int_equal(norphans(f), 0);
    assert_int_equal(free_orphan(f, a), -ENOENT);
    assert_null(fs_orphan_list(f, &n));
    assert_int_equal(fs_check(f), 0);
    fs_free(f);
}

static void test_only_last_link_of_files(void **state)
{
    (void)state;
    fs *f = fresh();
    uint64_t a = mk(f, 1, "a", S_IFREG | 0644), d = mk(f, 1, "d", S_IFDIR | 0755);
    uint64_t fifo = mk(f, 1, "p", S_IFIFO | 0644);

    /* A second name: the unlink takes one link and nothing is orphaned. */
    {
        fs_op op = {.type = FSOP_LINK, .ino = a, .newparent = 1};
        snprintf(op.newname, sizeof(op.newname), "a2");
        assert_int_equal(apply(f, &op, NULL), 0);
    }
    assert_int_equal(unlink_keep(f, FSOP_UNLINK, 1, "a", a), 0);
    assert_false(fs_inode_is_orphan(fs_get(f, a)));
    assert_int_equal(fs_inode_attr(fs_get(f, a))->nlink, 1);
    assert_int_equal(unlink_keep(f, FSOP_UNLINK, 1, "a2", a), 0);
    assert_true(fs_inode_is_orphan(fs_get(f, a)));
    /* Directories and other types are never kept. */
    assert_int_equal(unlink_keep(f, FSOP_RMDIR, 1, "d", d), 0);
    assert_null(fs_get(f, d));
    assert_int_equal(unlink_keep(f, FSOP_UNLINK, 1, "p", fifo), 0);
    assert_null(fs_get(f, fifo));
    assert_int_equal(norphans(f), 1);
    assert_int_equal(fs_check(f), 0);
    fs_free(f);
}

static void test_rename_over_keeps(void **state)
{
    (void)state;
    fs *f = fresh();
    uint64_t src = mk(f, 1, "new", S_IFREG | 0644), dst = mk(f, 1, "old", S_IFREG | 0644);
    uint64_t other = mk(f, 1, "x", S_IFREG | 0644);

    assert_int_equal(commit1(f, dst, 7), 0);
    assert_int_equal(rename_keep(f, 1, "new", 1, "old", dst), 0);
    assert_true(fs_inode_is_orphan(fs_get(f, dst)));
    assert_int_equal(refs_of(f, 7), 1);
    /* Without keep, the replaced file goes at once. */
    assert_int_equal(rename_keep(f, 1, "x", 1, "old", 0), 0);
    assert_null(fs_get(f, src));
    assert_non_null(fs_get(f, other));
    assert_int_equal(norphans(f), 1);
    assert_int_equal(fs_check(f), 0);
    assert_int_equal(free_orphan(f, dst), 0);
    assert_int_equal(refs_of(f, 7), 0);
    fs_free(f);
}

static void test_snapshot_and_replay(void **state)
{
    (void)state;
    fs *f = fresh(), *g, *h;
    uint64_t a = mk(f, 1, "a", S_IFREG | 0644), b = mk(f, 1, "b", S_IFREG | 0644);
    snapbuf s = {0};
    size_t mid;

    assert_int_equal(commit1(f, a, 11), 0);
    assert_int_equal(commit1(f, b, 12), 0);
    assert_int_equal(unlink_keep(f, FSOP_UNLINK, 1, "a", a), 0);
    assert_int_equal(unlink_keep(f, FSOP_UNLINK, 1, "b", b), 0);
    mid = g_log.len;
    /* A snapshot keeps both orphans with their maps. */
    assert_int_equal(fs_snapshot_write(f, emit, &s), 0);
    g = load(&s.b);
    assert_int_equal(norphans(g), 2);
    assert_true(fs_inode_is_orphan(fs_get(g, a)));
    assert_int_equal(refs_of(g, 11), 1);
    assert_int_equal(refs_of(g, 12), 1);
    assert_same(f, g);
    /* The loaded copy frees them like the live one (not logged: g_log is
     * the live namespace's log). */
    {
        size_t keep = g_log.len;
        assert_int_equal(free_orphan(g, a), 0);
        g_log.len = keep;
    }
    assert_int_equal(refs_of(g, 11), 0);
    /* Replay of the log (with the free) gives the same state as live. */
    assert_int_equal(free_orphan(f, a), 0);
    h = replay(&g_log, g_log.len);
    assert_int_equal(fs_check(h), 0);
    assert_same(f, h);
    assert_null(fs_get(h, a));
    assert_true(fs_inode_is_orphan(fs_get(h, b)));
    fs_free(h);
    /* Replay up to before the free still has both. */
    h = replay(&g_log, mid);
    assert_int_equal(norphans(h), 2);
    fs_free(h);
    buf_free(&s.b);
    fs_free(f);
    fs_free(g);
}

static void test_check_rejects_bad_orphans(void **state)
{
    (void)state;
    fs *f = fs_new(CHUNK, 512);
    recw w;
    size_t len;
    const uint8_t *p;
    fs_attr a;

    /* A directory with nlink 0 is not an orphan: the snapshot is corrupt. */
    memset(&a, 0, sizeof(a));
    a.ino = 9;
    a.mode = S_IFDIR | 0755;
    vv_init(&a.vv);
    vv_bump(&a.vv, 1);
    recw_init(&w, FSSNAP_INODE);
    fsrec_put_attr(&w, &a);
    recw_u64(&w, FT_SNAP_DPARENT, 1);
    recw_u64(&w, FT_SNAP_NEXT_SEQ, 1);
    p = recw_finish(&w, &len);
    assert_int_equal(fs_snapshot_load(f, p, len), CAIRN_ECORRUPT);
    recw_free(&w);
    fs_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unlink_keeps_orphan),
        cmocka_unit_test(test_only_last_link_of_files),
        cmocka_unit_test(test_rename_over_keeps),
        cmocka_unit_test(test_snapshot_and_replay),
        cmocka_unit_test(test_check_rejects_bad_orphans),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);

    buf_free(&g_log);
    return rc;
}
