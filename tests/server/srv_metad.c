/*
 * srv_metad.c — drives a real cairn-metad over HTTP on 127.0.0.1.
 *
 * The POSIX table, readdir, CAS and input-validation cases share one
 * server (group setup), each in a directory of its own. Cases that restart,
 * crash or configure the server differently start their own in their own
 * temp dir. Every wait is bounded and polls a condition.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/fsrec.h"
#include "common/hash.h"
#include "common/httpc.h"
#include "common/rec.h"
#include "common/util.h"
#include "common/vv.h"
#include "tests/lib/harness.h"

#define ROOT FS_ROOT_INO
#define STOP_MS 20000
#define WAIT_MS 20000

static char *g_dir;
static proc g_md;
static httpc *g_http;

/* ------------------------------------------------------------------ */
/* request helpers */

typedef struct rsp {
    httpc_resp h;
    recr r;
    int has_rec;
    int err;            /* 0 for 2xx, else the negative code the client sees */
} rsp;

static void rsp_free(rsp *r)
{
    httpc_resp_free(&r->h);
    memset(r, 0, sizeof(*r));
}

/* POST a record (or GET with w == NULL) to url path; frees w. hdr may be
 * NULL or one "Name: value" header. Asserts that an answer came. */
static void call_on(const proc *p, const char *path, recw *w, const char *hdr, rsp *out)
{
    char url[256];
    const char *hdrs[2] = {hdr, NULL};
    const uint8_t *body = NULL;
    size_t len = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    snprintf(url, sizeof(url), "%s%s", p->url, path);
    if (w)
        body = recw_finish(w, &len);
    rc = httpc_do(g_http, w ? "POST" : "GET", url, hdr ? hdrs : NULL, body, len, 20000, &out->h);
    if (w)
        recw_free(w);
    assert_int_equal(rc, 0);
    out->err = out->h.status >= 200 && out->h.status < 300
                   ? 0
                   : cairn_http_to_err(out->h.status, out->h.errname[0] ? out->h.errname : NULL);
    if (out->h.len && rec_open(&out->r, out->h.body, out->h.len) == 0)
        out->has_rec = 1;
}

static void call(const char *path, recw *w, const char *hdr, rsp *out)
{
    call_on(&g_md, path, w, hdr, out);
}

/* Attributes of an FSREC_INODE answer. */
static void rsp_attr(const rsp *r, fs_attr *a)
{
    assert_true(r->has_rec);
    assert_int_equal(r->r.type, FSREC_INODE);
    assert_int_equal(fsrec_get_attr(&r->r, a), 0);
}

static int do_lookup(uint64_t parent, const char *name, fs_attr *out)
{
    recw w;
    rsp r;
    int err;

    recw_init(&w, FSREC_REQ);
    recw_u64(&w, FT_PARENT, parent);
    recw_str(&w, FT_NAME, name);
    call("/v1/lookup", &w, NULL, &r);
    err = r.err;
    if (!err && out)
        rsp_attr(&r, out);
    rsp_free(&r);
    return err;
}

static int do_getattr(uint64_t ino, fs_attr *out)
{
    recw w;
    rsp r;
    int err;

    recw_init(&w, FSREC_REQ);
    recw_u64(&w, FT_INO, ino);
    call("/v1/getattr", &w, NULL, &r);
    err = r.err;
    if (!err && out)
        rsp_attr(&r, out);
    rsp_free(&r);
    return err;
}

static int mk(const char *op, uint64_t parent, const char *name, uint32_t mode, uint64_t flags,
              uint64_t rdev, fs_attr *out, int *existed)
{
    recw w;
    rsp r;
    int err;
    uint64_t ex = 0;

    recw_init(&w, FSREC_REQ);
    recw_u64(&w, FT_PARENT, parent);
    recw_str(&w, FT_NAME, name);
    recw_u64(&w, FT_MODE, mode);
    recw_u64(&w, FT_UID, 1000);
    recw_u64(&w, FT_GID, 100);
    recw_u64(&w, FT_FLAGS, flags);
    if (rdev)
        recw_u64(&w, FT_RDEV, rdev);
    call(op, &w, NULL, &r);
    err = r.err;
    if (!err) {
        if (out)
            rsp_attr(&r, out);
        rec_get_u64(&r.r, FT_EXISTED, &ex);
    }
    if (existed)
        *existed = (int)ex;
    rsp_free(&r);
    return err;
}

static int do_create(uint64_t parent, const char *name, int excl, fs_attr *out)
{
    return mk("/v1/create", parent, name, S_IFREG | 0644, excl ? FSC_EXCL : 0, 0, out, NULL);
}

static int do_mkdir(uint64_t parent, const char *name, fs_attr *out)
{
    return mk("/v1/mkdir", parent, name, 0755, 0, 0, out, NULL);
}

/* A fresh directory under the root for one test case. */
static uint64_t test_dir(const char *name)
{
    fs_attr a;

    assert_int_equal(do_mkdir(ROOT, name, &a), 0);
    return a.ino;
}

static int do_symlink(uint64_t parent, const char *name, const char *target, fs_attr *out)
{
    recw w;
    rsp r;
    int err;

    recw_init(&w, FSREC_REQ);
    recw_u64(&w, FT_PARENT, parent);
    recw_str(&w, FT_NAME, name);
    recw_str(&w, FT_TARGET, target);
    call("/v1/symlink", &w, NULL, &r);
    err = r.err;
    if (!err && out)
        rsp_attr(&r, out);
    rsp_free(&r);
    return err;
}

static int names_op(const char *op, uint64_t parent, const char *name, uint64_t newparent,
                    const char *newname, uint64_t flags)
{
    recw w;
    rsp r;
    int err;

    recw_init(&w, FSREC_REQ);
    recw_u64(&w, FT_PARENT, parent);
    recw_str(&w, FT_NAME, name);
    if (newname) {
        recw_u64(&w, FT_NEWPARENT, newparent);
        recw_str(&w, FT_NEWNAME, newname);
        recw_u64(&w, FT_FLAGS, flags);
    }
    call(op, &w, NULL, &r);
    err = r.err;
    if (!err)
        assert_int_equal(r.r.type, FSREC_REPLY);
    rsp_free(&r);
    return err;
}

static int do_unlink(uint64_t parent, const char *name)
{
    return names_op("/v1/unlink", parent, name, 0, NULL, 0);
}

static int do_rmdir(uint64_t parent, const char *name)
{
    return names_op("/v1/rmdir", parent, name, 0, NULL, 0);
}

static int do_rename(uint64_t p, const char *n, uint64_t np, const char *nn, uint64_t flags)
{
    return names_op("/v1/rename", p, n, np, nn, flags);
}

static int do_link(uint64_t ino, uint64_t newparent, const char *newname, fs_attr *out)
{
    recw w;
    rsp r;
    int err;

    recw_init(&w, FSREC_REQ);
    recw_u64(&w, FT_INO, ino);
    recw_u64(&w, FT_NEWPARENT, newparent);
    recw_str(&w, FT_NEWNAME, newname);
    call("/v1/link", &w, NULL, &r);
    err = r.err;
    if (!err && out)
        rsp_attr(&r, out);
    rsp_free(&r);
    return err;
}

static uint32_t nlink_of(uint64_t ino)
{
    fs_attr a;

    assert_int_equal(do_getattr(ino, &a), 0);
    return a.nlink;
}

static int xattr_set(uint64_t ino, const char *name, const char *value, uint64_t flags)
{
    recw w;
    rsp r;
    int err;

    recw_init(&w, FSREC_REQ);
    recw_u64(&w, FT_INO, ino);
    recw_str(&w, FT_NAME, name);
    recw_bytes(&w, FT_VALUE, value, strlen(value));
    recw_u64(&w, FT_FLAGS, flags);
    call("/v1/xattr_set", &w, NULL, &r);
    err = r.err;
    rsp_free(&r);
    return err;
}

/* Value into out (NUL-terminated) or the error. */
static int xattr_get(uint64_t ino, const char *name, char *out, size_t cap)
{
    recw w;
    rsp r;
    int err;
    const uint8_t *p;
    size_t n;

    recw_init(&w, FSREC_REQ);
    recw_u64(&w, FT_INO, ino);
    recw_str(&w, FT_NAME, name);
    call("/v1/xattr_get", &w, NULL, &r);
    err = r.err;
    if (!err) {
        assert_int_equal(rec_get_bytes(&r.r, FT_VALUE, &p, &n), 0);
        assert_true(n < cap);
        memcpy(out, p, n);
        out[n] = '\0';
    }
    rsp_free(&r);
    return err;
}

static int xattr_remove(uint64_t ino, const char *name)
{
    recw w;
    rsp r;
    int err;

    recw_init(&w, FSREC_REQ);
    recw_u64(&w, FT_INO, ino);
    recw_str(&w, FT_NAME, name);
    call("/v1/xattr_remove", &w, NULL, &r);
    err = r.err;
    rsp_free(&r);
    return err;
}

/* One readdir page: names appended to names[] (each malloc'd), inos too. */
static int readdir_page(const proc *p, uint64_t dir, uint64_t *cursor, uint32_t max, char **names,
                        uint64_t *inos, size_t *n, size_t cap, int *eof)
{
    recw w;
    rsp r;
    rec_iter it;
    uint16_t tag;
    const uint8_t *v;
    size_t vn;
    uint64_t e = 0;
    int err;

    recw_init(&w, FSREC_REQ);
    recw_u64(&w, FT_INO, dir);
    recw_u64(&w, FT_CURSOR, *cursor);
    recw_u64(&w, FT_MAX, max);
    call_on(p, "/v1/readdir", &w, NULL, &r);
    err = r.err;
    if (err) {
        rsp_free(&r);
        return err;
    }
    assert_int_equal(r.r.type, FSREC_DIRLIST);
    rec_iter_init(&it);
    while (rec_next(&r.r, &it, &tag, &v, &vn)) {
        recr ent;
        fs_attr a;
        const uint8_t *np;
        size_t nl;
        if (tag != FT_DIRENT)
            continue;
        assert_int_equal(rec_open(&ent, v, vn), 0);
        assert_int_equal(fsrec_get_attr(&ent, &a), 0);
        assert_int_equal(rec_get_bytes(&ent, FT_NAME, &np, &nl), 0);
        assert_true(*n < cap);
        names[*n] = xstrndup((const char *)np, nl);
        inos[*n] = a.ino;
        (*n)++;
    }
    assert_int_equal(rec_get_u64(&r.r, FT_CURSOR, cursor), 0);
    assert_int_equal(rec_get_u64(&r.r, FT_EOF, &e), 0);
    *eof = (int)e;
    rsp_free(&r);
    return 0;
}

/* Whole listing in pages of max; returns the count. */
static size_t readdir_all(const proc *p, uint64_t dir, uint32_t max, char **names, uint64_t *inos,
                          size_t cap)
{
    uint64_t cursor = 0;
    size_t n = 0;
    int eof = 0;

    while (!eof)
        assert_int_equal(readdir_page(p, dir, &cursor, max, names, inos, &n, cap, &eof), 0);
    return n;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
}

static void fill_id(uint8_t id[CHUNK_ID_LEN], unsigned seed)
{
    char s[32];

    snprintf(s, sizeof(s), "chunk-%u", seed);
    sha256(s, strlen(s), id);
}

static void etag_hdr(const vv *v, char *out, size_t cap, const char *name)
{
    char t[VV_TEXT_MAX];

    vv_format(v, t, sizeof(t));
    snprintf(out, cap, "%s: \"%s\"", name, t);
}

/* Commit slots {index, len, seed} with If-Match; answer kept in out. */
static void commit(const proc *p, uint64_t ino, const vv *if_match, const unsigned (*slots)[3],
                   size_t n, uint64_t size, rsp *out)
{
    recw w;
    char hdr[VV_TEXT_MAX + 32];

    recw_init(&w, FSREC_REQ);
    recw_u64(&w, FT_INO, ino);
    recw_u64(&w, FT_SIZE, size);
    recw_i64(&w, FT_MTIME, 1234567890123456789LL);
    for (size_t i = 0; i < n; i++) {
        fs_slot s = {.index = slots[i][0], .len = slots[i][1]};
        fill_id(s.id, slots[i][2]);
        fsrec_put_slot(&w, &s);
    }
    etag_hdr(if_match, hdr, sizeof(hdr), "If-Match");
    call_on(p, "/v1/commit", &w, hdr, out);
}

/* The chunk map of ino: slots into out[] (cap), count returned. */
static size_t get_map(uint64_t ino, fs_slot *out, size_t cap, fs_attr *attr)
{
    recw w;
    rsp r;
    rec_iter it;
    uint16_t tag;
    const uint8_t *v;
    size_t vn, n = 0;

    recw_init(&w, FSREC_REQ);
    recw_u64(&w, FT_INO, ino);
    call("/v1/map", &w, NULL, &r);
    assert_int_equal(r.err, 0);
    if (attr)
        rsp_attr(&r, attr);
    assert_true(rec_has(&r.r, FT_HASMAP));
    rec_iter_init(&it);
    while (rec_next(&r.r, &it, &tag, &v, &vn)) {
        if (tag != FT_SLOT)
            continue;
        assert_true(n < cap);
        assert_int_equal(fsrec_slot_decode(v, vn, &out[n]), 0);
        n++;
    }
    rsp_free(&r);
    return n;
}

/* Whether chunk seed is referenced, per POST /v1/refs. */
static int referenced(unsigned seed)
{
    recw w;
    rsp r;
    uint8_t id[CHUNK_ID_LEN];
    const uint8_t *bits;
    size_t n;
    int v;

    fill_id(id, seed);
    recw_init(&w, FSREC_IDS);
    recw_bytes(&w, FT_ID, id, CHUNK_ID_LEN);
    call("/v1/refs", &w, NULL, &r);
    assert_int_equal(r.err, 0);
    assert_int_equal(rec_get_bytes(&r.r, FT_BITS, &bits, &n), 0);
    assert_int_equal(n, 1);
    v = bits[0];
    rsp_free(&r);
    return v;
}

static uint64_t statfs_files(const proc *p)
{
    rsp r;
    uint64_t v;

    call_on(p, "/v1/statfs", NULL, NULL, &r);
    assert_int_equal(r.err, 0);
    assert_int_equal(rec_get_u64(&r.r, FT_FILES, &v), 0);
    rsp_free(&r);
    return v;
}

/* ------------------------------------------------------------------ */
/* group setup */

static int setup(void **state)
{
    (void)state;
    g_dir = tmpdir_make("srvmetad");
    g_http = httpc_new(&(httpc_config){.handles = 64});
    if (!g_dir || !g_http)
        return -1;
    return start_metad(&g_md, g_dir, NULL);
}

static int teardown(void **state)
{
    (void)state;
    int st = proc_stop(&g_md, STOP_MS);
    httpc_free(g_http);
    tmpdir_remove(g_dir);
    free(g_dir);
    /* A clean SIGTERM shutdown exits 0. */
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------------ */
/* POSIX table */

static void test_names_and_create(void **state)
{
    (void)state;
    uint64_t d = test_dir("names");
    fs_attr a, b, f;
    char name[300];
    int existed;

    assert_int_equal(do_lookup(d, "missing", NULL), -ENOENT);
    assert_int_equal(do_create(d, "f", 1, &f), 0);
    assert_int_equal(f.nlink, 1);
    assert_int_equal(f.mode, S_IFREG | 0644);
    assert_int_equal(f.uid, 1000);
    assert_int_equal(f.gid, 100);
    assert_true(f.ino > ROOT);
    assert_int_equal(do_create(d, "f", 1, NULL), -EEXIST);
    assert_int_equal(mk("/v1/create", d, "f", S_IFREG | 0600, 0, 0, &a, &existed), 0);
    assert_int_equal(existed, 1);
    assert_int_equal(a.ino, f.ino);
    assert_int_equal(a.mode, S_IFREG | 0644);   /* the existing file, unchanged */
    assert_int_equal(do_lookup(d, "f", &b), 0);
    assert_int_equal(b.ino, f.ino);

    /* ENOTDIR: a file used as a directory. */
    assert_int_equal(do_create(f.ino, "x", 1, NULL), -ENOTDIR);
    assert_int_equal(do_lookup(f.ino, "x", NULL), -ENOTDIR);
    /* Names. */
    memset(name, 'n', 255);
    name[255] = '\0';
    assert_int_equal(do_create(d, name, 1, NULL), 0);
    assert_int_equal(do_lookup(d, name, NULL), 0);
    name[255] = 'n';
    name[256] = '\0';
    assert_int_equal(do_create(d, name, 1, NULL), -ENAMETOOLONG);
    assert_int_equal(do_lookup(d, name, NULL), -ENAMETOOLONG);
    assert_int_equal(do_create(d, ".", 1, NULL), -EINVAL);
    assert_int_equal(do_create(d, "..", 1, NULL), -EINVAL);
    assert_int_equal(do_mkdir(d, "..", NULL), -EINVAL);
    assert_int_equal(do_create(d, "a/b", 1, NULL), -EINVAL);
    assert_int_equal(do_create(d, "", 1, NULL), -EINVAL);
    /* Create of a directory's name, mkdir of a file's name. */
    assert_int_equal(do_mkdir(d, "sub", NULL), 0);
    assert_int_equal(do_create(d, "sub", 0, NULL), -EEXIST);
    assert_int_equal(do_mkdir(d, "f", NULL), -EEXIST);
    /* Bad modes. */
    assert_int_equal(mk("/v1/create", d, "m1", S_IFDIR | 0755, 0, 0, NULL, NULL), -EINVAL);
    assert_int_equal(mk("/v1/create", d, "m2", 0x7fff0000u, 0, 0, NULL, NULL), -EINVAL);
    /* Missing parent. */
    assert_int_equal(do_create(999999999, "x", 1, NULL), -ENOENT);
}

static void test_dirs_and_nlink(void **state)
{
    (void)state;
    uint64_t d = test_dir("dirs");
    fs_attr s1, s2, f, before, after;

    assert_int_equal(nlink_of(d), 2);
    assert_int_equal(do_getattr(d, &before), 0);
    assert_int_equal(do_mkdir(d, "s1", &s1), 0);
    assert_int_equal(s1.nlink, 2);
    assert_int_equal(s1.mode, S_IFDIR | 0755);
    assert_int_equal(nlink_of(d), 3);
    assert_int_equal(do_getattr(d, &after), 0);
    /* The parent's times and version move on namespace changes. */
    assert_true(after.mtime >= before.mtime && after.ctime >= before.ctime);
    assert_int_equal(vv_compare(&after.vv, &before.vv), VV_DOMINATES);
    assert_int_equal(do_mkdir(d, "s2", &s2), 0);
    assert_int_equal(nlink_of(d), 4);
    assert_int_equal(do_create(s1.ino, "f", 1, &f), 0);
    assert_int_equal(nlink_of(s1.ino), 2);   /* files do not count */
    /* rmdir */
    assert_int_equal(do_rmdir(d, "s1"), -ENOTEMPTY);
    assert_int_equal(do_rmdir(s1.ino, "f"), -ENOTDIR);
    assert_int_equal(do_unlink(d, "s1"), -EISDIR);
    assert_int_equal(do_rmdir(d, "nope"), -ENOENT);
    assert_int_equal(do_unlink(s1.ino, "f"), 0);
    assert_int_equal(do_getattr(f.ino, NULL), -ENOENT);
    assert_int_equal(do_rmdir(d, "s1"), 0);
    assert_int_equal(nlink_of(d), 3);
    assert_int_equal(do_getattr(s1.ino, NULL), -ENOENT);
    /* Moving a directory moves its ".." link. */
    assert_int_equal(do_mkdir(d, "s3", NULL), 0);
    assert_int_equal(nlink_of(d), 4);
    assert_int_equal(do_rename(d, "s2", ROOT, "dirs-moved", 0), 0);
    assert_int_equal(nlink_of(d), 3);
    assert_int_equal(do_rmdir(ROOT, "dirs-moved"), 0);
}

static void test_links(void **state)
{
    (void)state;
    uint64_t d = test_dir("links");
    fs_attr f, l, sub;

    assert_int_equal(do_create(d, "a", 1, &f), 0);
    assert_int_equal(do_link(f.ino, d, "b", &l), 0);
    assert_int_equal(l.ino, f.ino);
    assert_int_equal(l.nlink, 2);
    assert_int_equal(do_link(f.ino, d, "b", NULL), -EEXIST);
    assert_int_equal(do_mkdir(d, "sub", &sub), 0);
    assert_int_equal(do_link(sub.ino, d, "subl", NULL), -EPERM);
    assert_int_equal(do_link(f.ino, sub.ino, "c", NULL), 0);
    assert_int_equal(nlink_of(f.ino), 3);
    /* Rename onto another link of the same inode: a no-op success. */
    assert_int_equal(do_rename(d, "a", d, "b", 0), 0);
    assert_int_equal(do_lookup(d, "a", NULL), 0);
    assert_int_equal(do_lookup(d, "b", NULL), 0);
    assert_int_equal(nlink_of(f.ino), 3);
    assert_int_equal(do_rename(d, "a", d, "a", 0), 0);
    /* Rename a link over a different file: that file loses its link. */
    fs_attr g;
    assert_int_equal(do_create(d, "g", 1, &g), 0);
    assert_int_equal(do_rename(d, "b", d, "g", 0), 0);
    assert_int_equal(do_getattr(g.ino, NULL), -ENOENT);
    assert_int_equal(nlink_of(f.ino), 3);
    assert_int_equal(do_unlink(d, "a"), 0);
    assert_int_equal(nlink_of(f.ino), 2);
    assert_int_equal(do_unlink(sub.ino, "c"), 0);
    assert_int_equal(nlink_of(f.ino), 1);
    assert_int_equal(do_unlink(d, "g"), 0);
    assert_int_equal(do_getattr(f.ino, NULL), -ENOENT);
}

static void test_rename_rules(void **state)
{
    (void)state;
    uint64_t d = test_dir("rename");
    fs_attr a, b, x, y, z, f, e;

    assert_int_equal(do_mkdir(d, "x", &x), 0);
    assert_int_equal(do_mkdir(x.ino, "y", &y), 0);
    assert_int_equal(do_mkdir(y.ino, "z", &z), 0);
    assert_int_equal(do_create(d, "f", 1, &f), 0);
    assert_int_equal(do_mkdir(d, "empty", &e), 0);

    assert_int_equal(do_rename(d, "missing", d, "q", 0), -ENOENT);
    /* Into its own subtree. */
    assert_int_equal(do_rename(d, "x", y.ino, "x2", 0), -EINVAL);
    assert_int_equal(do_rename(d, "x", z.ino, "x2", 0), -EINVAL);
    assert_int_equal(do_rename(d, "x", x.ino, "x2", 0), -EINVAL);
    /* Type rules. */
    assert_int_equal(do_rename(d, "f", d, "x", 0), -EISDIR);
    assert_int_equal(do_rename(d, "x", d, "f", 0), -ENOTDIR);
    assert_int_equal(do_rename(d, "empty", x.ino, "y", 0), -ENOTEMPTY);
    /* NOREPLACE */
    assert_int_equal(do_create(d, "g", 1, &a), 0);
    assert_int_equal(do_rename(d, "f", d, "g", 1), -EEXIST);
    assert_int_equal(do_rename(d, "f", d, "h", 1), 0);
    assert_int_equal(do_lookup(d, "f", NULL), -ENOENT);
    assert_int_equal(do_lookup(d, "h", &b), 0);
    assert_int_equal(b.ino, f.ino);
    /* Both flags at once. */
    assert_int_equal(do_rename(d, "h", d, "g", 3), -EINVAL);
    /* EXCHANGE: a file and a directory in different parents. */
    assert_int_equal(do_rename(d, "h", y.ino, "z", 2), 0);
    assert_int_equal(do_lookup(d, "h", &b), 0);
    assert_int_equal(b.ino, z.ino);
    assert_int_equal(do_lookup(y.ino, "z", &b), 0);
    assert_int_equal(b.ino, f.ino);
    assert_int_equal(nlink_of(y.ino), 2);   /* lost its subdirectory */
    assert_int_equal(nlink_of(d), 2 + 3);   /* x, empty, and now h */
    assert_int_equal(do_rename(d, "nothere", d, "g", 2), -ENOENT);
    assert_int_equal(do_rename(d, "g", d, "nothere", 2), -ENOENT);
    /* EXCHANGE a directory into its own subtree. */
    assert_int_equal(do_rename(d, "x", y.ino, "z", 2), -EINVAL);
    /* A directory over an empty directory replaces it. */
    assert_int_equal(do_rename(d, "h", d, "empty", 0), 0);
    assert_int_equal(do_getattr(e.ino, NULL), -ENOENT);
    assert_int_equal(nlink_of(d), 2 + 2);
    /* A file over a file. */
    assert_int_equal(do_rename(y.ino, "z", d, "g", 0), 0);
    assert_int_equal(do_getattr(a.ino, NULL), -ENOENT);
    assert_int_equal(do_lookup(d, "g", &b), 0);
    assert_int_equal(b.ino, f.ino);
    /* Names are validated. */
    assert_int_equal(do_rename(d, "g", d, "..", 0), -EINVAL);
    assert_int_equal(do_rename(d, "g", f.ino, "q", 0), -ENOTDIR);
}

static void test_symlink_mknod(void **state)
{
    (void)state;
    uint64_t d = test_dir("special");
    fs_attr s, a;
    recw w;
    rsp r;
    char *t;
    char longt[FS_SYMLINK_MAX + 2];

    assert_int_equal(do_symlink(d, "ln", "../some/where", &s), 0);
    assert_int_equal(s.mode, S_IFLNK | 0777);
    assert_int_equal(s.size, strlen("../some/where"));
    recw_init(&w, FSREC_REQ);
    recw_u64(&w, FT_INO, s.ino);
    call("/v1/readlink", &w, NULL, &r);
    assert_int_equal(r.err, 0);
    assert_int_equal(rec_get_str(&r.r, FT_TARGET, 4096, &t), 0);
    assert_string_equal(t, "../some/where");
    free(t);
    rsp_free(&r);
    assert_int_equal(do_symlink(d, "ln", "x", NULL), -EEXIST);
    assert_int_equal(do_symlink(d, "empty", "", NULL), -ENOENT);
    memset(longt, 'a', sizeof(longt) - 1);
    longt[sizeof(longt) - 1] = '\0';
    assert_int_equal(do_symlink(d, "long", longt, NULL), -ENAMETOOLONG);
    /* readlink of a non-symlink */
    recw_init(&w, FSREC_REQ);
    recw_u64(&w, FT_INO, d);
    call("/v1/readlink", &w, NULL, &r);
    assert_int_equal(r.err, -EINVAL);
    rsp_free(&r);

    static const struct { const char *name; uint32_t type; } types[] = {
        {"fifo", S_IFIFO}, {"chr", S_IFCHR}, {"blk", S_IFBLK}, {"sock", S_IFSOCK}, {"reg", S_IFREG},
    };
    for (size_t i = 0; i < ARRAY_LEN(types); i++) {
        uint64_t rdev = makedev(8, 1);
        assert_int_equal(mk("/v1/mknod", d, types[i].name, types[i].type | 0640, 0, rdev, &a, NULL),
                         0);
        assert_int_equal(a.mode, types[i].type | 0640);
        if (types[i].type == S_IFCHR || types[i].type == S_IFBLK)
            assert_int_equal(a.rdev, rdev);
        else
            assert_int_equal(a.rdev, 0);
    }
    assert_int_equal(mk("/v1/mknod", d, "dir", S_IFDIR | 0755, 0, 0, NULL, NULL), -EINVAL);
    assert_int_equal(mk("/v1/mknod", d, "lnk", S_IFLNK | 0755, 0, 0, NULL, NULL), -EINVAL);
    assert_int_equal(mk("/v1/mknod", d, "fifo", S_IFIFO | 0640, 0, 0, NULL, NULL), -EEXIST);
}

static void test_xattrs(void **state)
{
    (void)state;
    uint64_t d = test_dir("xattr");
    fs_attr f;
    char v[128], name[300];
    recw w;
    rsp r;

    assert_int_equal(do_create(d, "f", 1, &f), 0);
    assert_int_equal(xattr_get(f.ino, "user.a", v, sizeof(v)), -ENODATA);
    assert_int_equal(xattr_set(f.ino, "user.a", "1", 2 /* REPLACE */), -ENODATA);
    assert_int_equal(xattr_set(f.ino, "user.a", "1", 1 /* CREATE */), 0);
    assert_int_equal(xattr_set(f.ino, "user.a", "2", 1), -EEXIST);
    assert_int_equal(xattr_get(f.ino, "user.a", v, sizeof(v)), 0);
    assert_string_equal(v, "1");
    assert_int_equal(xattr_set(f.ino, "user.a", "22", 2), 0);
    assert_int_equal(xattr_get(f.ino, "user.a", v, sizeof(v)), 0);
    assert_string_equal(v, "22");
    assert_int_equal(xattr_set(f.ino, "cairn.replicas", "3", 0), 0);
    assert_int_equal(xattr_set(f.ino, "user.b", "", 0), 0);
    assert_int_equal(xattr_set(f.ino, "user.c", "x", 3), -EINVAL);

    recw_init(&w, FSREC_REQ);
    recw_u64(&w, FT_INO, f.ino);
    call("/v1/xattr_list", &w, NULL, &r);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.r.type, FSREC_XATTRS);
    assert_int_equal(rec_count(&r.r, FT_NAME), 3);
    rsp_free(&r);

    assert_int_equal(xattr_remove(f.ino, "user.a"), 0);
    assert_int_equal(xattr_remove(f.ino, "user.a"), -ENODATA);
    assert_int_equal(xattr_get(f.ino, "user.a", v, sizeof(v)), -ENODATA);
    assert_int_equal(xattr_get(f.ino, "cairn.replicas", v, sizeof(v)), 0);
    assert_string_equal(v, "3");
    /* Limits. */
    memset(name, 'x', 256);
    name[256] = '\0';
    assert_int_equal(xattr_set(f.ino, name, "v", 0), -ERANGE);
    {
        size_t big = FS_XATTR_VALUE_MAX + 1;
        char *val = xmalloc(big);
        memset(val, 'v', big);
        recw_init(&w, FSREC_REQ);
        recw_u64(&w, FT_INO, f.ino);
        recw_str(&w, FT_NAME, "user.big");
        recw_bytes(&w, FT_VALUE, val, big);
        call("/v1/xattr_set", &w, NULL, &r);
        assert_int_equal(r.err, -E2BIG);
        rsp_free(&r);
        free(val);
    }
    /* Directories carry xattrs too (policies live there). */
    assert_int_equal(xattr_set(d, "cairn.cache_max", "1G", 0), 0);
    assert_int_equal(xattr_set(999999999, "user.a", "1", 0), -ENOENT);
}

static void test_setattr(void **state)
{
    (void)state;
    uint64_t d = test_dir("setattr");
    fs_attr f, a, m;
    recw w;
    rsp r;
    fs_slot slots[16];
    size_t n;
    static const unsigned map[][3] = {{0, 4u << 20, 101}, {1, 4u << 20, 102}, {2, 1000, 103}};

    assert_int_equal(do_create(d, "f", 1, &f), 0);
    commit(&g_md, f.ino, &f.vv, map, 3, (8u << 20) + 1000, &r);
    assert_int_equal(r.err, 0);
    rsp_free(&r);
    assert_true(referenced(101) && referenced(102) && referenced(103));
    n = get_map(f.ino, slots, 16, &m);
    assert_int_equal(n, 3);
    assert_int_equal(m.size, (8u << 20) + 1000);
    assert_int_equal(m.mtime, 1234567890123456789LL);

    /* Truncate into slot 1: slot 2 goes, slot 1 shrinks. */
    recw_init(&w, FSREC_REQ);
    recw_u64(&w, FT_INO, f.ino);
    recw_u64(&w, FT_VALID, SA_SIZE | SA_MODE | SA_UID | SA_GID | SA_ATIME);
    recw_u64(&w, FT_SIZE, (4u << 20) + 10);
    recw_u64(&w, FT_MODE, 0600);
    recw_u64(&w, FT_UID, 7);
    recw_u64(&w, FT_GID, 8);
    recw_i64(&w, FT_ATIME, 42);
    call("/v1/setattr", &w, NULL, &r);
    assert_int_equal(r.err, 0);
    rsp_attr(&r, &a);
    rsp_free(&r);
    assert_int_equal(a.size, (4u << 20) + 10);
    assert_int_equal(a.mode, S_IFREG | 0600);
    assert_int_equal(a.uid, 7);
    assert_int_equal(a.gid, 8);
    assert_int_equal(a.atime, 42);
    assert_int_equal(vv_compare(&a.vv, &m.vv), VV_DOMINATES);
    n = get_map(f.ino, slots, 16, NULL);
    assert_int_equal(n, 2);
    assert_int_equal(slots[1].index, 1);
    assert_int_equal(slots[1].len, 10);
    assert_false(referenced(103));
    assert_true(referenced(102));
    /* Truncate to zero drops every slot; growing adds nothing. */
    recw_init(&w, FSREC_REQ);
    recw_u64(&w, FT_INO, f.ino);
    recw_u64(&w, FT_VALID, SA_SIZE | SA_MTIME_NOW);
    recw_u64(&w, FT_SIZE, 0);
    call("/v1/setattr", &w, NULL, &r);
    assert_int_equal(r.err, 0);
    rsp_free(&r);
    assert_false(referenced(101));
    assert_false(referenced(102));
    recw_init(&w, FSREC_REQ);
    recw_u64(&w, FT_INO, f.ino);
    recw_u64(&w, FT_VALID, SA_SIZE);
    recw_u64(&w, FT_SIZE, 1u << 30);
    call("/v1/setattr", &w, NULL, &r);
    assert_int_equal(r.err, 0);
    rsp_free(&r);
    assert_int_equal(get_map(f.ino, slots, 16, &m), 0);
    assert_int_equal(m.size, 1u << 30);
    /* Size on a directory, a missing field, a stale If-Match. */
    recw_init(&w, FSREC_REQ);
    recw_u64(&w, FT_INO, d);
    recw_u64(&w, FT_VALID, SA_SIZE);
    recw_u64(&w, FT_SIZE, 0);
    call("/v1/setattr", &w, NULL, &r);
    assert_int_equal(r.err, -EISDIR);
    rsp_free(&r);
    recw_init(&w, FSREC_REQ);
    recw_u64(&w, FT_INO, f.ino);
    recw_u64(&w, FT_VALID, SA_MODE);
    call("/v1/setattr", &w, NULL, &r);
    assert_int_equal(r.err, -EINVAL);
    rsp_free(&r);
    {
        char hdr[VV_TEXT_MAX + 32];
        etag_hdr(&f.vv, hdr, sizeof(hdr), "If-Match");
        recw_init(&w, FSREC_REQ);
        recw_u64(&w, FT_INO, f.ino);
        recw_u64(&w, FT_VALID, SA_MODE);
        recw_u64(&w, FT_MODE, 0777);
        call("/v1/setattr", &w, hdr, &r);
        assert_int_equal(r.h.status, 412);
        rsp_attr(&r, &a);
        assert_int_equal(a.mode, S_IFREG | 0600);
        rsp_free(&r);
    }
    /* Unlinking the file drops its references (none left here) and it. */
    commit(&g_md, f.ino, &m.vv, map, 1, 100, &r);
    assert_int_equal(r.err, 0);
    rsp_free(&r);
    assert_true(referenced(101));
    assert_int_equal(do_unlink(d, "f"), 0);
    assert_false(referenced(101));
}

/* One item of a POST /v1/atimes request. */
static void atimes_item(recw *w, uint64_t ino, int64_t atime, int64_t ctime, const vv *v)
{
    recw x;
    recw_init(&x, FSREC_REQ);
    recw_u64(&x, FT_INO, ino);
    recw_i64(&x, FT_ATIME, atime);
    recw_i64(&x, FT_CTIME, ctime);
    if (v)
        fsrec_put_vv(&x, FT_VV, v);
    recw_rec(w, FT_INODE, &x);
    recw_free(&x);
}

/* Access times in a batch: each item applied only on its own VV, one
 * answer per item in order; a malformed item or too many items: 400 and
 * nothing changed. */
static void test_atimes(void **state)
{
    (void)state;
    fs_attr f1, f2, d1, now1, now2, nowd;
    assert_int_equal(do_create(ROOT, "at1", 1, &f1), 0);
    assert_int_equal(do_create(ROOT, "at2", 1, &f2), 0);
    assert_int_equal(do_mkdir(ROOT, "atd", &d1), 0);

    /* f1 and the directory on their VV, f2 on a stale one, a missing inode */
    vv stale = f2.vv;
    recw w;
    rsp r;
    recw_init(&w, FSREC_REQ);
    atimes_item(&w, f1.ino, 5000000000123, f1.ctime, &f1.vv);
    assert_int_equal(xattr_set(f2.ino, "user.a", "b", 0), 0);  /* f2's VV moves on */
    atimes_item(&w, f2.ino, 6000000000000, f2.ctime, &stale);
    atimes_item(&w, 987654321, 7000000000000, 0, &f1.vv);
    atimes_item(&w, d1.ino, 8000000000456, d1.ctime, &d1.vv);
    call("/v1/atimes", &w, NULL, &r);
    assert_int_equal(r.err, 0);
    assert_true(r.has_rec);
    rec_iter it;
    uint16_t tag;
    const uint8_t *p;
    size_t len, k = 0;
    const uint64_t want_ino[] = {f1.ino, f2.ino, 987654321, d1.ino};
    const uint64_t want_st[] = {ATIMES_DONE, ATIMES_CONFLICT, ATIMES_GONE, ATIMES_DONE};
    rec_iter_init(&it);
    while (rec_next(&r.r, &it, &tag, &p, &len)) {
        if (tag != FT_INODE)
            continue;
        recr x;
        uint64_t ino, st;
        assert_true(k < 4);
        assert_int_equal(rec_open(&x, p, len), 0);
        assert_int_equal(rec_get_u64(&x, FT_INO, &ino), 0);
        assert_int_equal(ino, want_ino[k]);
        assert_int_equal(rec_get_u64(&x, FT_STATUS, &st), 0);
        assert_int_equal(st, want_st[k]);
        if (st != ATIMES_GONE) {
            fs_attr a;
            assert_int_equal(fsrec_get_attr(&x, &a), 0);
            if (k == 0)
                assert_int_equal(a.atime, 5000000000123);
            if (k == 1)
                assert_int_not_equal(a.atime, 6000000000000);
        }
        k++;
    }
    assert_int_equal(k, 4);
    rsp_free(&r);
    assert_int_equal(do_getattr(f1.ino, &now1), 0);
    assert_int_equal(now1.atime, 5000000000123);
    assert_int_equal(now1.ctime, f1.ctime);
    assert_false(vv_equal(&now1.vv, &f1.vv));
    assert_int_equal(do_getattr(f2.ino, &now2), 0);
    assert_int_not_equal(now2.atime, 6000000000000);
    assert_int_equal(do_getattr(d1.ino, &nowd), 0);
    assert_int_equal(nowd.atime, 8000000000456);

    /* an item without its VV: 400, and the good item before it is not made */
    recw_init(&w, FSREC_REQ);
    atimes_item(&w, f1.ino, 9000000000000, now1.ctime, &now1.vv);
    atimes_item(&w, f2.ino, 9000000000000, now2.ctime, NULL);
    call("/v1/atimes", &w, NULL, &r);
    assert_int_equal(r.h.status, 400);
    rsp_free(&r);
    /* more than ATIMES_MAX items, or none: 400 */
    recw_init(&w, FSREC_REQ);
    for (unsigned i = 0; i <= ATIMES_MAX; i++)
        atimes_item(&w, f1.ino, 9000000000000, now1.ctime, &now1.vv);
    call("/v1/atimes", &w, NULL, &r);
    assert_int_equal(r.h.status, 400);
    rsp_free(&r);
    recw_init(&w, FSREC_REQ);
    call("/v1/atimes", &w, NULL, &r);
    assert_int_equal(r.h.status, 400);
    rsp_free(&r);
    fs_attr again;
    assert_int_equal(do_getattr(f1.ino, &again), 0);
    assert_int_equal(again.atime, 5000000000123);
    assert_true(vv_equal(&again.vv, &now1.vv));
}

static void test_statfs_fsinfo(void **state)
{
    (void)state;
    rsp r;
    uint64_t v, files;
    const uint8_t *p;
    size_t n;

    call("/v1/fsinfo", NULL, NULL, &r);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.r.type, FSREC_FSINFO);
    assert_int_equal(rec_get_bytes(&r.r, FT_FSID, &p, &n), 0);
    assert_int_equal(n, 16);
    assert_int_equal(rec_get_u64(&r.r, FT_CHUNK_SIZE, &v), 0);
    assert_int_equal(v, 4u << 20);
    assert_int_equal(rec_get_u64(&r.r, FT_REPLICAS, &v), 0);
    assert_int_equal(v, 2);
    assert_int_equal(rec_get_u64(&r.r, FT_MIN_REPLICAS, &v), 0);
    assert_int_equal(v, 2);
    assert_int_equal(rec_get_u64(&r.r, FT_INLINE_MAX, &v), 0);
    assert_int_equal(v, 64u << 10);
    assert_true(r.h.epoch >= 1);
    rsp_free(&r);

    files = statfs_files(&g_md);
    uint64_t d = test_dir("statfs");
    assert_int_equal(do_create(d, "a", 1, NULL), 0);
    assert_int_equal(statfs_files(&g_md), files + 2);
    assert_int_equal(do_unlink(d, "a"), 0);
    assert_int_equal(statfs_files(&g_md), files + 1);
}

/* ------------------------------------------------------------------ */
/* readdir cursor stability */

typedef struct churn {
    uint64_t dir;
    volatile int stop;
    int ops;
} churn;

static void *churn_main(void *arg)
{
    churn *c = arg;
    char name[64];
    int i = 0;

    while (!c->stop) {
        snprintf(name, sizeof(name), "churn-%d", i);
        if (do_create(c->dir, name, 1, NULL) != 0)
            break;
        if (i >= 3) {
            snprintf(name, sizeof(name), "churn-%d", i - 3);
            if (do_unlink(c->dir, name) != 0)
                break;
        }
        i++;
        c->ops++;
    }
    return NULL;
}

static void test_readdir_cursor(void **state)
{
    (void)state;
    uint64_t d = test_dir("readdir");
    enum { STABLE = 200, CAP = 20000 };
    char name[64], **names = xcalloc(CAP, sizeof(char *));
    uint64_t *inos = xcalloc(CAP, sizeof(uint64_t));
    size_t n, i, j;
    churn c = {.dir = d};
    pthread_t t;
    int round;

    for (i = 0; i < STABLE; i++) {
        snprintf(name, sizeof(name), "stable-%03zu", i);
        assert_int_equal(do_create(d, name, 1, NULL), 0);
    }
    /* Listing pages while another client creates and deletes entries. */
    assert_int_equal(pthread_create(&t, NULL, churn_main, &c), 0);
    for (round = 0; round < 5; round++) {
        unsigned char seen[STABLE] = {0};
        n = readdir_all(&g_md, d, 7, names, inos, CAP);
        for (i = 0; i < n; i++) {
            for (j = i + 1; j < n; j++)
                assert_string_not_equal(names[i], names[j]);   /* no duplicates */
            if (strncmp(names[i], "stable-", 7) == 0)
                seen[atoi(names[i] + 7)] = 1;
        }
        for (i = 0; i < STABLE; i++)
            assert_true(seen[i]);   /* none skipped */
        free_names(names, n);
    }
    c.stop = 1;
    pthread_join(t, NULL);
    assert_true(c.ops > 0);
    /* A cursor from a finished listing stays at the end; new entries come
     * after it. */
    {
        uint64_t cursor = 0;
        int eof = 0;
        n = 0;
        while (!eof)
            assert_int_equal(readdir_page(&g_md, d, &cursor, 4096, names, inos, &n, CAP, &eof), 0);
        free_names(names, n);
        n = 0;
        assert_int_equal(readdir_page(&g_md, d, &cursor, 100, names, inos, &n, CAP, &eof), 0);
        assert_int_equal(n, 0);
        assert_int_equal(eof, 1);
        assert_int_equal(do_create(d, "late", 1, NULL), 0);
        assert_int_equal(readdir_page(&g_md, d, &cursor, 100, names, inos, &n, CAP, &eof), 0);
        assert_int_equal(n, 1);
        assert_string_equal(names[0], "late");
        free_names(names, n);
    }
    /* readdir of a file */
    {
        fs_attr f;
        uint64_t cursor = 0;
        int eof;
        n = 0;
        assert_int_equal(do_lookup(d, "late", &f), 0);
        assert_int_equal(readdir_page(&g_md, f.ino, &cursor, 10, names, inos, &n, CAP, &eof),
                         -ENOTDIR);
    }
    free(names);
    free(inos);
}

/* ------------------------------------------------------------------ */
/* CAS */

typedef struct racer {
    uint64_t ino;
    vv base;
    unsigned seed;
    rsp r;
    pthread_barrier_t *bar;
} racer;

static void *racer_main(void *arg)
{
    racer *x = arg;
    unsigned slots[1][3] = {{0, 100, 0}};

    slots[0][2] = x->seed;
    pthread_barrier_wait(x->bar);
    commit(&g_md, x->ino, &x->base, (const unsigned (*)[3])slots, 1, 100, &x->r);
    return NULL;
}

static void test_cas(void **state)
{
    (void)state;
    uint64_t d = test_dir("cas");
    fs_attr f, a;
    racer x[2];
    pthread_t t[2];
    pthread_barrier_t bar;
    fs_slot slots[4];
    int round;

    assert_int_equal(do_create(d, "f", 1, &f), 0);
    for (round = 0; round < 5; round++) {
        assert_int_equal(do_getattr(f.ino, &a), 0);
        pthread_barrier_init(&bar, NULL, 2);
        for (int i = 0; i < 2; i++) {
            memset(&x[i], 0, sizeof(x[i]));
            x[i].ino = f.ino;
            x[i].base = a.vv;
            x[i].seed = 500 + (unsigned)(round * 2 + i);
            x[i].bar = &bar;
            assert_int_equal(pthread_create(&t[i], NULL, racer_main, &x[i]), 0);
        }
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], NULL);
        pthread_barrier_destroy(&bar);
        int win = x[0].r.h.status == 200 ? 0 : 1, lose = 1 - win;
        assert_int_equal(x[win].r.h.status, 200);
        assert_int_equal(x[lose].r.h.status, 412);
        /* The loser sees the winner's VV and map. */
        assert_string_equal(x[lose].r.h.etag, x[win].r.h.etag);
        fs_attr w, l;
        rsp_attr(&x[win].r, &w);
        rsp_attr(&x[lose].r, &l);
        assert_true(vv_equal(&w.vv, &l.vv));
        assert_int_equal(vv_compare(&w.vv, &a.vv), VV_DOMINATES);
        assert_int_equal(rec_count(&x[lose].r.r, FT_SLOT), 1);
        {
            const uint8_t *p;
            size_t n;
            fs_slot s;
            uint8_t want[CHUNK_ID_LEN];
            assert_int_equal(rec_get_bytes(&x[lose].r.r, FT_SLOT, &p, &n), 0);
            assert_int_equal(fsrec_slot_decode(p, n, &s), 0);
            fill_id(want, x[win].seed);
            assert_memory_equal(s.id, want, CHUNK_ID_LEN);
        }
        assert_int_equal(get_map(f.ino, slots, 4, NULL), 1);
        rsp_free(&x[0].r);
        rsp_free(&x[1].r);
    }
    /* commit without If-Match */
    {
        recw w;
        rsp r;
        recw_init(&w, FSREC_REQ);
        recw_u64(&w, FT_INO, f.ino);
        recw_u64(&w, FT_SIZE, 1);
        call("/v1/commit", &w, NULL, &r);
        assert_int_equal(r.err, -EINVAL);
        rsp_free(&r);
    }
    /* Inline data: within the limit, then over it. */
    {
        recw w;
        rsp r;
        char hdr[VV_TEXT_MAX + 32];
        static char data[(64 << 10) + 1];   /* the default inline limit, plus one */
        memset(data, 'i', sizeof(data));
        assert_int_equal(do_getattr(f.ino, &a), 0);
        etag_hdr(&a.vv, hdr, sizeof(hdr), "If-Match");
        recw_init(&w, FSREC_REQ);
        recw_u64(&w, FT_INO, f.ino);
        recw_u64(&w, FT_SIZE, sizeof(data));
        recw_bytes(&w, FT_INLINE, data, sizeof(data));
        call("/v1/commit", &w, hdr, &r);
        assert_int_equal(r.err, -EFBIG);
        rsp_free(&r);
        recw_init(&w, FSREC_REQ);
        recw_u64(&w, FT_INO, f.ino);
        recw_u64(&w, FT_SIZE, 10);
        recw_bytes(&w, FT_INLINE, data, 10);
        call("/v1/commit", &w, hdr, &r);
        assert_int_equal(r.err, 0);
        rsp_free(&r);
        assert_int_equal(get_map(f.ino, slots, 4, &a), 0);
        assert_int_equal(a.size, 10);
        assert_false(referenced(500));
        /* A slot longer than the chunk size. */
        unsigned bad[1][3] = {{0, (4u << 20) + 1, 1}};
        commit(&g_md, f.ino, &a.vv, (const unsigned (*)[3])bad, 1, 10, &r);
        assert_int_equal(r.err, -EINVAL);
        rsp_free(&r);
    }
}

static void test_not_modified(void **state)
{
    (void)state;
    uint64_t d = test_dir("inm");
    fs_attr f;
    recw w;
    rsp r;
    char hdr[VV_TEXT_MAX + 32];

    assert_int_equal(do_create(d, "f", 1, &f), 0);
    etag_hdr(&f.vv, hdr, sizeof(hdr), "If-None-Match");
    for (int i = 0; i < 2; i++) {
        recw_init(&w, FSREC_REQ);
        recw_u64(&w, FT_INO, f.ino);
        call(i == 0 ? "/v1/getattr" : "/v1/map", &w, hdr, &r);
        assert_int_equal(r.h.status, 304);
        assert_int_equal(r.h.len, 0);
        rsp_free(&r);
    }
    assert_int_equal(xattr_set(f.ino, "user.x", "1", 0), 0);
    recw_init(&w, FSREC_REQ);
    recw_u64(&w, FT_INO, f.ino);
    call("/v1/getattr", &w, hdr, &r);
    assert_int_equal(r.h.status, 200);
    assert_true(r.h.etag[0] == '"');
    rsp_free(&r);
}

/* ------------------------------------------------------------------ */
/* malformed input changes nothing */

static void raw_post(const char *path, const void *body, size_t len, int *status, char *errname)
{
    char url[256];
    httpc_resp h;

    snprintf(url, sizeof(url), "%s%s", g_md.url, path);
    assert_int_equal(httpc_do(g_http, "POST", url, NULL, body, len, 20000, &h), 0);
    *status = h.status;
    if (errname)
        snprintf(errname, 32, "%s", h.errname);
    httpc_resp_free(&h);
}

static void test_malformed(void **state)
{
    (void)state;
    uint64_t d = test_dir("malformed");
    fs_attr before, after;
    uint64_t files = statfs_files(&g_md);
    int st;
    char en[32];
    uint8_t junk[64];
    recw w;
    size_t len;
    const uint8_t *p;
    uint8_t *copy;
    rsp r;

    assert_int_equal(do_getattr(d, &before), 0);
    memset(junk, 0xab, sizeof(junk));
    raw_post("/v1/create", junk, sizeof(junk), &st, en);
    assert_int_equal(st, 400);
    assert_string_equal(en, "EINVAL");
    raw_post("/v1/create", NULL, 0, &st, en);
    assert_true(st >= 400 && st < 500);
    /* A valid record of the wrong type. */
    recw_init(&w, FSREC_INODE);
    recw_u64(&w, FT_PARENT, d);
    recw_str(&w, FT_NAME, "x");
    recw_u64(&w, FT_MODE, S_IFREG | 0644);
    call("/v1/create", &w, NULL, &r);
    assert_int_equal(r.h.status, 400);
    rsp_free(&r);
    /* Missing fields. */
    recw_init(&w, FSREC_REQ);
    recw_u64(&w, FT_PARENT, d);
    call("/v1/create", &w, NULL, &r);
    assert_int_equal(r.err, -EINVAL);
    rsp_free(&r);
    /* A field of the wrong size. */
    recw_init(&w, FSREC_REQ);
    recw_bytes(&w, FT_PARENT, "abc", 3);
    recw_str(&w, FT_NAME, "x");
    recw_u64(&w, FT_MODE, S_IFREG | 0644);
    call("/v1/create", &w, NULL, &r);
    assert_int_equal(r.err, -EINVAL);
    rsp_free(&r);
    /* A truncated record (length field says more than sent). */
    recw_init(&w, FSREC_REQ);
    recw_u64(&w, FT_PARENT, d);
    recw_str(&w, FT_NAME, "x");
    recw_u64(&w, FT_MODE, S_IFREG | 0644);
    p = recw_finish(&w, &len);
    copy = xmalloc(len);
    memcpy(copy, p, len);
    recw_free(&w);
    raw_post("/v1/create", copy, len - 3, &st, en);
    assert_int_equal(st, 400);
    free(copy);
    /* Unknown routes and methods. */
    call("/v1/nosuch", NULL, NULL, &r);
    assert_int_equal(r.h.status, 404);
    rsp_free(&r);
    call("/v1/create", NULL, NULL, &r);   /* GET on a POST route */
    assert_int_equal(r.h.status, 405);
    rsp_free(&r);
    /* A bad If-Match. */
    recw_init(&w, FSREC_REQ);
    recw_u64(&w, FT_INO, d);
    recw_u64(&w, FT_SIZE, 0);
    call("/v1/commit", &w, "If-Match: \"garbage\"", &r);
    assert_int_equal(r.err, -EINVAL);
    rsp_free(&r);
    /* refs with an id of the wrong length */
    recw_init(&w, FSREC_IDS);
    recw_bytes(&w, FT_ID, "short", 5);
    call("/v1/refs", &w, NULL, &r);
    assert_int_equal(r.err, -EINVAL);
    rsp_free(&r);

    assert_int_equal(do_getattr(d, &after), 0);
    assert_true(vv_equal(&before.vv, &after.vv));
    assert_int_equal(after.mtime, before.mtime);
    assert_int_equal(statfs_files(&g_md), files);
    assert_int_equal(do_lookup(d, "x", NULL), -ENOENT);
}

/* ------------------------------------------------------------------ */
/* restart, snapshots, crash */

typedef struct own {
    char *dir;
    proc p;
} own;

static void own_start(own *o, const char *const *extra)
{
    assert_int_equal(start_metad(&o->p, o->dir, extra), 0);
}

static int has_snapshot(void *ctx)
{
    DIR *d = opendir(ctx);
    struct dirent *e;
    int found = 0;

    if (!d)
        return 0;
    while (!found && (e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        found = n > 5 && strcmp(e->d_name + n - 5, ".snap") == 0;
    }
    closedir(d);
    return found;
}

/* Run the helpers against o's server instead of the shared one. */
static proc g_saved;
static void use(own *o)
{
    g_saved = g_md;
    g_md = o->p;
}
static void unuse(void)
{
    g_md = g_saved;
}

/* Build a small tree with every kind of state; check_tree verifies it. */
static void make_tree(uint64_t *dir_out, uint64_t *file_out)
{
    fs_attr d, f, s;
    rsp r;
    static const unsigned map[][3] = {{0, 4u << 20, 7}, {3, 5, 8}};

    assert_int_equal(do_mkdir(ROOT, "tree", &d), 0);
    assert_int_equal(do_mkdir(d.ino, "sub", NULL), 0);
    assert_int_equal(do_create(d.ino, "file", 1, &f), 0);
    assert_int_equal(do_link(f.ino, d.ino, "hard", NULL), 0);
    assert_int_equal(do_symlink(d.ino, "sym", "file", &s), 0);
    assert_int_equal(xattr_set(f.ino, "user.k", "v", 0), 0);
    assert_int_equal(do_getattr(f.ino, &f), 0);
    commit(&g_md, f.ino, &f.vv, map, 2, (12u << 20) + 5, &r);
    assert_int_equal(r.err, 0);
    rsp_free(&r);
    for (int i = 0; i < 30; i++) {
        char name[32];
        snprintf(name, sizeof(name), "n%02d", i);
        assert_int_equal(do_create(d.ino, name, 1, NULL), 0);
        if (i % 3 == 0)
            assert_int_equal(do_unlink(d.ino, name), 0);
    }
    assert_int_equal(do_rename(d.ino, "n01", d.ino, "renamed", 0), 0);
    *dir_out = d.ino;
    *file_out = f.ino;
}

static void check_tree(uint64_t dir, uint64_t file)
{
    fs_attr d, f, a;
    fs_slot slots[4];
    char v[16];
    char *names[64];
    uint64_t inos[64];
    size_t n;

    assert_int_equal(do_lookup(ROOT, "tree", &d), 0);
    assert_int_equal(d.ino, dir);
    assert_int_equal(d.nlink, 3);
    assert_int_equal(do_lookup(dir, "file", &f), 0);
    assert_int_equal(f.ino, file);
    assert_int_equal(f.nlink, 2);
    assert_int_equal(f.size, (12u << 20) + 5);
    assert_int_equal(do_lookup(dir, "hard", &a), 0);
    assert_int_equal(a.ino, file);
    assert_int_equal(xattr_get(file, "user.k", v, sizeof(v)), 0);
    assert_string_equal(v, "v");
    assert_int_equal(get_map(file, slots, 4, NULL), 2);
    assert_int_equal(slots[1].index, 3);
    assert_int_equal(slots[1].len, 5);
    assert_true(referenced(7) && referenced(8));
    assert_int_equal(do_lookup(dir, "renamed", NULL), 0);
    assert_int_equal(do_lookup(dir, "n01", NULL), -ENOENT);
    assert_int_equal(do_lookup(dir, "n03", NULL), -ENOENT);
    assert_int_equal(do_lookup(dir, "n04", NULL), 0);
    /* sub, file, hard, sym + 30 - 10 deleted */
    n = readdir_all(&g_md, dir, 7, names, inos, 64);
    assert_int_equal(n, 4 + 20);
    free_names(names, n);
}

static void test_restart_keeps_everything(void **state)
{
    (void)state;
    own o = {.dir = tmpdir_make("metad-restart")};
    uint64_t dir, file, files;
    fs_attr before, after;
    int st;

    own_start(&o, NULL);
    use(&o);
    make_tree(&dir, &file);
    assert_int_equal(do_getattr(file, &before), 0);
    files = statfs_files(&o.p);
    st = proc_stop(&o.p, STOP_MS);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    own_start(&o, NULL);
    g_md = o.p;
    check_tree(dir, file);
    assert_int_equal(do_getattr(file, &after), 0);
    assert_true(vv_equal(&before.vv, &after.vv));
    assert_int_equal(before.ctime, after.ctime);
    assert_int_equal(statfs_files(&o.p), files);
    /* New inodes never reuse numbers. */
    fs_attr n;
    assert_int_equal(do_create(ROOT, "after-restart", 1, &n), 0);
    assert_true(n.ino > file);
    /* --format with other parameters refuses; the data is untouched. */
    proc_stop(&o.p, STOP_MS);
    {
        const char *bad[] = {"--chunk-size", "1M", NULL};
        proc q;
        assert_int_not_equal(start_metad(&q, o.dir, bad), 0);
        proc_stop(&q, STOP_MS);
    }
    own_start(&o, NULL);
    g_md = o.p;
    check_tree(dir, file);
    unuse();
    proc_stop(&o.p, STOP_MS);
    tmpdir_remove(o.dir);
    free(o.dir);
}

/* Commit inline data of len bytes (filled with c) to ino; the error. */
static int commit_inline(uint64_t ino, size_t len, char c)
{
    recw w;
    rsp r;
    fs_attr a;
    char hdr[VV_TEXT_MAX + 32];
    char *data = xmalloc(len + 1);

    memset(data, c, len);
    assert_int_equal(do_getattr(ino, &a), 0);
    etag_hdr(&a.vv, hdr, sizeof(hdr), "If-Match");
    recw_init(&w, FSREC_REQ);
    recw_u64(&w, FT_INO, ino);
    recw_u64(&w, FT_SIZE, len);
    recw_bytes(&w, FT_INLINE, data, len);
    call("/v1/commit", &w, hdr, &r);
    int err = r.err;
    rsp_free(&r);
    free(data);
    return err;
}

static uint64_t metric(const proc *p, const char *name)
{
    rsp r;
    call_on(p, "/metrics", NULL, NULL, &r);
    assert_int_equal(r.err, 0);
    double v = metrics_find(r.h.body, r.h.len, name);
    rsp_free(&r);
    assert_true(v >= 0);
    return (uint64_t)v;
}

/* --inline-budget bounds the inline data metad keeps: a commit that would
 * pass it is refused with 507 (ENOSPC) and changes nothing; shrinking, and
 * growing within the budget, go through. */
static void test_inline_budget(void **state)
{
    (void)state;
    own o = {.dir = tmpdir_make("metad-inline")};
    const char *extra[] = {"--inline-budget", "100K", NULL};
    fs_attr f1, f2, before, after;

    own_start(&o, extra);
    use(&o);
    assert_int_equal(do_create(ROOT, "f1", 1, &f1), 0);
    assert_int_equal(do_create(ROOT, "f2", 1, &f2), 0);
    assert_int_equal(commit_inline(f1.ino, 60000, 'a'), 0);
    assert_int_equal(metric(&o.p, "cairn_metad_inline_bytes"), 60000);

    assert_int_equal(do_getattr(f2.ino, &before), 0);
    assert_int_equal(commit_inline(f2.ino, 50000, 'b'), -ENOSPC);
    assert_int_equal(do_getattr(f2.ino, &after), 0);
    assert_int_equal(after.size, 0);
    assert_true(vv_equal(&before.vv, &after.vv));
    assert_int_equal(metric(&o.p, "cairn_metad_inline_bytes"), 60000);
    assert_int_equal(metric(&o.p, "cairn_metad_inline_refused_total"), 1);

    /* 60000 + 42400 = 102400: exactly the budget. */
    assert_int_equal(commit_inline(f2.ino, 42400, 'b'), 0);
    assert_int_equal(commit_inline(f2.ino, 42401, 'b'), -ENOSPC);
    /* Shrinking f1 makes room for f2 to grow. */
    assert_int_equal(commit_inline(f1.ino, 10000, 'c'), 0);
    assert_int_equal(commit_inline(f2.ino, 50000, 'd'), 0);
    assert_int_equal(metric(&o.p, "cairn_metad_inline_bytes"), 60000);
    assert_int_equal(do_getattr(f2.ino, &after), 0);
    assert_int_equal(after.size, 50000);

    /* The budget is not part of the format: a restart with another one
     * keeps all data and applies the new bound. */
    proc_stop(&o.p, STOP_MS);
    const char *small[] = {"--inline-budget", "1K", NULL};
    own_start(&o, small);
    g_md = o.p;
    assert_int_equal(metric(&o.p, "cairn_metad_inline_bytes"), 60000);
    fs_attr f3;
    assert_int_equal(do_create(ROOT, "f3", 1, &f3), 0);
    assert_int_equal(commit_inline(f3.ino, 2000, 'e'), -ENOSPC);
    assert_int_equal(commit_inline(f1.ino, 5000, 'f'), 0);
    unuse();
    proc_stop(&o.p, STOP_MS);
    tmpdir_remove(o.dir);
    free(o.dir);
}

static void test_snapshot_and_replay(void **state)
{
    (void)state;
    own o = {.dir = tmpdir_make("metad-snap")};
    const char *extra[] = {"--snapshot-every", "7", NULL};
    uint64_t dir, file;
    char *snapdir;
    char *names[64];
    uint64_t inos[64];

    own_start(&o, extra);
    use(&o);
    make_tree(&dir, &file);
    /* Several snapshots were taken; crash so that recovery needs the newest
     * snapshot plus the WAL after it. */
    snapdir = xasprintf("%s/meta/snap", o.dir);
    assert_true(wait_until(has_snapshot, snapdir, WAIT_MS));
    assert_int_equal(do_create(dir, "after-snap", 1, NULL), 0);
    proc_kill9(&o.p);
    own_start(&o, extra);
    g_md = o.p;
    assert_int_equal(do_lookup(dir, "after-snap", NULL), 0);
    assert_int_equal(do_unlink(dir, "after-snap"), 0);
    check_tree(dir, file);
    /* And once more through a clean restart. */
    proc_stop(&o.p, STOP_MS);
    own_start(&o, extra);
    g_md = o.p;
    check_tree(dir, file);
    size_t n = readdir_all(&g_md, ROOT, 3, names, inos, 64);
    assert_int_equal(n, 1);
    free_names(names, n);
    unuse();
    proc_stop(&o.p, STOP_MS);
    free(snapdir);
    tmpdir_remove(o.dir);
    free(o.dir);
}

/* Creates from several threads; each records what was acknowledged. */
enum { CR_THREADS = 6, CR_MAX = 100000 };

typedef struct creator {
    int id;
    uint64_t dir;
    int acked;
    uint64_t *inos;
    const proc *p;
} creator;

static int g_acked_total;

static void *creator_main(void *arg)
{
    creator *c = arg;
    char name[64];
    recw w;
    rsp r;

    for (int i = 0; i < CR_MAX; i++) {
        fs_attr a;
        char url[256];
        const uint8_t *body;
        size_t len;
        snprintf(name, sizeof(name), "c%d-%d", c->id, i);
        recw_init(&w, FSREC_REQ);
        recw_u64(&w, FT_PARENT, c->dir);
        recw_str(&w, FT_NAME, name);
        recw_u64(&w, FT_MODE, S_IFREG | 0644);
        recw_u64(&w, FT_FLAGS, FSC_EXCL);
        body = recw_finish(&w, &len);
        snprintf(url, sizeof(url), "%s/v1/create", c->p->url);
        memset(&r, 0, sizeof(r));
        int rc = httpc_do(g_http, "POST", url, NULL, body, len, 5000, &r.h);
        recw_free(&w);
        if (rc < 0 || r.h.status != 200) {
            httpc_resp_free(&r.h);
            break;
        }
        if (rec_open(&r.r, r.h.body, r.h.len) < 0 || fsrec_get_attr(&r.r, &a) < 0) {
            httpc_resp_free(&r.h);
            break;
        }
        c->inos[i] = a.ino;
        c->acked = i + 1;
        __atomic_add_fetch(&g_acked_total, 1, __ATOMIC_RELAXED);
        httpc_resp_free(&r.h);
    }
    return NULL;
}

static int enough_acked(void *ctx)
{
    (void)ctx;
    return __atomic_load_n(&g_acked_total, __ATOMIC_RELAXED) >= 300;
}

static void test_crash_during_creates(void **state)
{
    (void)state;
    own o = {.dir = tmpdir_make("metad-crash")};
    const char *extra[] = {"--snapshot-every", "150", NULL};
    creator c[CR_THREADS];
    pthread_t t[CR_THREADS];
    fs_attr d, a;
    uint64_t maxino = 0;
    size_t total = 0, n, i;
    char **names = xcalloc(CR_MAX, sizeof(char *));
    uint64_t *inos = xcalloc(CR_MAX, sizeof(uint64_t));

    own_start(&o, extra);
    use(&o);
    assert_int_equal(do_mkdir(ROOT, "crash", &d), 0);
    g_acked_total = 0;
    for (i = 0; i < CR_THREADS; i++) {
        c[i] = (creator){.id = (int)i, .dir = d.ino, .inos = xcalloc(CR_MAX, sizeof(uint64_t)),
                         .p = &o.p};
        assert_int_equal(pthread_create(&t[i], NULL, creator_main, &c[i]), 0);
    }
    assert_true(wait_until(enough_acked, NULL, 60000));
    proc_kill9(&o.p);
    for (i = 0; i < CR_THREADS; i++)
        pthread_join(t[i], NULL);

    own_start(&o, extra);
    g_md = o.p;
    for (i = 0; i < CR_THREADS; i++) {
        for (int j = 0; j < c[i].acked; j++) {
            char name[64];
            snprintf(name, sizeof(name), "c%d-%d", c[i].id, j);
            assert_int_equal(do_lookup(d.ino, name, &a), 0);   /* acknowledged => present */
            assert_int_equal(a.ino, c[i].inos[j]);
            assert_int_equal(a.nlink, 1);
            maxino = MAX(maxino, a.ino);
        }
        total += (size_t)c[i].acked;
    }
    /* Nothing half-applied: every listed entry resolves, counts agree. */
    n = readdir_all(&o.p, d.ino, 1000, names, inos, CR_MAX);
    assert_true(n >= total);
    for (i = 0; i < n; i++) {
        assert_int_equal(do_lookup(d.ino, names[i], &a), 0);
        assert_int_equal(a.ino, inos[i]);
        maxino = MAX(maxino, a.ino);
    }
    assert_int_equal(statfs_files(&o.p), 2 + n);   /* root, crash/, entries */
    assert_int_equal(nlink_of(d.ino), 2);
    /* The inode counter moved past everything that exists. */
    assert_int_equal(do_create(d.ino, "after-crash", 1, &a), 0);
    assert_true(a.ino > maxino);
    for (i = 0; i < n; i++)
        assert_true(inos[i] != a.ino);
    free_names(names, n);
    for (i = 0; i < CR_THREADS; i++)
        free(c[i].inos);
    free(names);
    free(inos);
    unuse();
    proc_stop(&o.p, STOP_MS);
    tmpdir_remove(o.dir);
    free(o.dir);
}

/* ------------------------------------------------------------------ */
/* cluster */

static int report(const char *op, uint64_t sid, const char *addr, uint64_t cap, uint64_t *sid_out,
                  uint64_t *epoch)
{
    recw w;
    rsp r;
    int err;

    recw_init(&w, FSREC_SERVER);
    recw_u64(&w, FT_SID, sid);
    recw_str(&w, FT_ADDR, addr);
    recw_u64(&w, FT_CAPACITY, cap);
    recw_u64(&w, FT_USED, cap / 4);
    recw_u64(&w, FT_CHUNKS, 3);
    call(op, &w, NULL, &r);
    err = r.err;
    if (!err) {
        uint64_t hb;
        assert_int_equal(rec_get_u64(&r.r, FT_SID, sid_out), 0);
        assert_int_equal(rec_get_u64(&r.r, FT_EPOCH, epoch), 0);
        assert_int_equal(rec_get_u64(&r.r, FT_HB_INTERVAL, &hb), 0);
        assert_true(hb > 0);
        assert_int_equal(r.h.epoch, *epoch);
    }
    rsp_free(&r);
    return err;
}

/* State of server sid in GET /v1/cluster (0 if absent); epoch too. */
static uint64_t server_state(uint64_t sid, uint64_t *epoch)
{
    rsp r;
    rec_iter it;
    uint16_t tag;
    const uint8_t *v;
    size_t n;
    uint64_t st = 0;

    call("/v1/cluster", NULL, NULL, &r);
    assert_int_equal(r.err, 0);
    assert_int_equal(rec_get_u64(&r.r, FT_EPOCH, epoch), 0);
    assert_int_equal(r.h.epoch, *epoch);
    rec_iter_init(&it);
    while (rec_next(&r.r, &it, &tag, &v, &n)) {
        recr s;
        uint64_t id;
        if (tag != FT_SERVER)
            continue;
        assert_int_equal(rec_open(&s, v, n), 0);
        assert_int_equal(rec_get_u64(&s, FT_SID, &id), 0);
        if (id == sid)
            assert_int_equal(rec_get_u64(&s, FT_STATE, &st), 0);
    }
    rsp_free(&r);
    return st;
}

static uint64_t g_watch_sid;
static int is_down(void *ctx)
{
    uint64_t e;
    (void)ctx;
    return server_state(g_watch_sid, &e) == SERVER_DOWN;
}

static void test_cluster(void **state)
{
    (void)state;
    own o = {.dir = tmpdir_make("metad-cluster")};
    const char *extra[] = {"--heartbeat-timeout", "500ms", NULL};
    uint64_t sid, sid2, e0, e1, e2, e3, e, total;
    rsp r;

    own_start(&o, extra);
    use(&o);
    assert_int_equal(server_state(1, &e0), 0);
    assert_int_equal(report("/v1/register", 0, "127.0.0.1:9001", 1u << 30, &sid, &e1), 0);
    assert_int_equal(sid, 1);
    assert_true(e1 > e0);
    assert_int_equal(server_state(sid, &e), SERVER_UP);
    assert_int_equal(report("/v1/register", 0, "127.0.0.1:9002", 1u << 30, &sid2, &e2), 0);
    assert_int_equal(sid2, 2);
    assert_true(e2 > e1);
    /* A heartbeat that changes nothing keeps the epoch. */
    assert_int_equal(report("/v1/heartbeat", sid, "127.0.0.1:9001", 1u << 30, &sid, &e), 0);
    assert_int_equal(e, e2);
    /* statfs sums capacity over UP servers, divided by the replica count. */
    call("/v1/statfs", NULL, NULL, &r);
    assert_int_equal(rec_get_u64(&r.r, FT_TOTAL, &total), 0);
    assert_int_equal(total, (2ull << 30) / 2);
    rsp_free(&r);
    /* Unknown id, bad address. */
    assert_int_equal(report("/v1/heartbeat", 77, "127.0.0.1:9003", 1, &sid2, &e), -ENOENT);
    assert_int_equal(report("/v1/register", 0, "no-port", 1, &sid2, &e), -EINVAL);
    /* Silence marks a server down, bumping the epoch... */
    g_watch_sid = sid;
    assert_true(wait_until(is_down, NULL, 10000));
    server_state(sid, &e3);
    assert_true(e3 > e2);
    /* ...and its next heartbeat brings it back. */
    assert_int_equal(report("/v1/heartbeat", sid, "127.0.0.1:9001", 1u << 30, &sid, &e), 0);
    assert_true(e > e3);
    assert_int_equal(server_state(sid, &e3), SERVER_UP);
    /* An address change bumps the epoch. */
    assert_int_equal(report("/v1/heartbeat", sid, "127.0.0.1:9101", 1u << 30, &sid, &e1), 0);
    assert_true(e1 > e);
    /* Ids and the epoch survive a restart. */
    proc_stop(&o.p, STOP_MS);
    own_start(&o, extra);
    g_md = o.p;
    assert_int_equal(report("/v1/heartbeat", sid, "127.0.0.1:9101", 1u << 30, &sid, &e), 0);
    assert_true(e >= e1);
    assert_int_equal(report("/v1/register", 0, "127.0.0.1:9004", 1u << 30, &sid2, &e), 0);
    assert_int_equal(sid2, 3);
    unuse();
    proc_stop(&o.p, STOP_MS);
    tmpdir_remove(o.dir);
    free(o.dir);
}

static void test_format_rules(void **state)
{
    (void)state;
    char *dir = tmpdir_make("metad-format");
    char *data = xasprintf("%s/empty", dir);
    char *addr = xasprintf("%s/addr", dir);
    proc p;
    const char *argv[] = {"cairn-metad", "--data", data, "--listen", "127.0.0.1:0",
                          "--addr-file", addr, NULL};
    const char *fmt[] = {"--chunk-size", "1M", "--replicas", "3", "--inline-max", "1K", NULL};
    rsp r;
    uint64_t v;

    assert_int_equal(mkdir(data, 0755), 0);
    /* Without --format on an empty directory: a clear error, no server. */
    assert_int_not_equal(proc_start(&p, dir, argv, addr, 5000), 0);
    proc_stop(&p, STOP_MS);
    /* Format with parameters, then again with the same: it serves. */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(start_metad(&p, dir, fmt), 0);
        call_on(&p, "/v1/fsinfo", NULL, NULL, &r);
        assert_int_equal(rec_get_u64(&r.r, FT_CHUNK_SIZE, &v), 0);
        assert_int_equal(v, 1u << 20);
        assert_int_equal(rec_get_u64(&r.r, FT_REPLICAS, &v), 0);
        assert_int_equal(v, 3);
        assert_int_equal(rec_get_u64(&r.r, FT_MIN_REPLICAS, &v), 0);
        assert_int_equal(v, 3);
        assert_int_equal(rec_get_u64(&r.r, FT_INLINE_MAX, &v), 0);
        assert_int_equal(v, 1024);
        rsp_free(&r);
        proc_stop(&p, STOP_MS);
    }
    /* Parameters that do not fit each other. */
    {
        const char *bad[] = {"--replicas", "2", "--min-replicas", "3", NULL};
        assert_int_not_equal(start_metad(&p, dir, bad), 0);
        proc_stop(&p, STOP_MS);
    }
    free(data);
    free(addr);
    tmpdir_remove(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest shared[] = {
        cmocka_unit_test(test_names_and_create),
        cmocka_unit_test(test_dirs_and_nlink),
        cmocka_unit_test(test_links),
        cmocka_unit_test(test_rename_rules),
        cmocka_unit_test(test_symlink_mknod),
        cmocka_unit_test(test_xattrs),
        cmocka_unit_test(test_setattr),
        cmocka_unit_test(test_atimes),
        cmocka_unit_test(test_statfs_fsinfo),
        cmocka_unit_test(test_readdir_cursor),
        cmocka_unit_test(test_cas),
        cmocka_unit_test(test_not_modified),
        cmocka_unit_test(test_malformed),
    };
    const struct CMUnitTest own_servers[] = {
        cmocka_unit_test(test_restart_keeps_everything),
        cmocka_unit_test(test_inline_budget),
        cmocka_unit_test(test_snapshot_and_replay),
        cmocka_unit_test(test_crash_during_creates),
        cmocka_unit_test(test_cluster),
        cmocka_unit_test(test_format_rules),
    };
    int fails = cmocka_run_group_tests_name("metad shared server", shared, setup, teardown);
    g_http = httpc_new(&(httpc_config){.handles = 64});
    fails += cmocka_run_group_tests_name("metad own servers", own_servers, NULL, NULL);
    httpc_free(g_http);
    return fails;
}
