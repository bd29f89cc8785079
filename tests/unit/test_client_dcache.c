/*
 * test_client_dcache.c — directory listings answering lookups: when a
 * listing is asked for, what it answers, how this client's own changes keep
 * it true, when it stops answering, and its memory bound.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>

#include "client/dcache.h"
#include "common/util.h"
#include "common/vv.h"

#define DIR1 100
#define DIR2 200
#define ROOT 1

static fs_attr file_attr(uint64_t ino, uint64_t size)
{
    fs_attr a;
    memset(&a, 0, sizeof(a));
    a.ino = ino;
    a.mode = S_IFREG | 0644;
    a.nlink = 1;
    a.size = size;
    return a;
}

/* Directory ino at VV {1: counter}. */
static fs_attr dir_at(uint64_t ino, uint64_t counter)
{
    fs_attr a = file_attr(ino, 0);
    a.mode = S_IFDIR | 0755;
    a.nlink = 2;
    vv_init(&a.vv);
    for (uint64_t i = 0; i < counter; i++)
        vv_bump(&a.vv, 1);
    return a;
}

static void nap_ms(long ms)
{
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

/* A listing of dir with names f0..f(n-1), inodes base+i, sizes i. */
static void fill_n(dcache *d, uint64_t dir, size_t n, uint64_t base)
{
    uint64_t tok = 0;
    assert_int_equal(dcache_want(d, dir, &tok), 0);  /* first lookup: not yet */
    assert_int_equal(dcache_want(d, dir, &tok), 1);  /* second: list it */
    mc_dirent *e = calloc(n ? n : 1, sizeof(*e));
    for (size_t i = 0; i < n; i++) {
        char nm[32];
        snprintf(nm, sizeof(nm), "f%zu", i);
        e[i].name = strdup(nm);
        e[i].a = file_attr(base + i, i);
    }
    dcache_fill(d, dir, tok, e, n, 1, NULL);
    for (size_t i = 0; i < n; i++)
        free(e[i].name);
    free(e);
}

static void test_answers_positive_and_negative(void **st)
{
    (void)st;
    dcache *d = dcache_new(60000, 60000, 1000);
    fs_attr a;
    assert_int_equal(dcache_lookup(d, DIR1, "f1", &a), -1);
    fill_n(d, DIR1, 3, 1000);
    assert_int_equal(dcache_lookup(d, DIR1, "f1", &a), 1);
    assert_int_equal(a.ino, 1001);
    assert_int_equal(a.size, 1);
    assert_int_equal(dcache_lookup(d, DIR1, "nope", &a), 0);
    /* Another directory knows nothing. */
    assert_int_equal(dcache_lookup(d, DIR2, "f1", &a), -1);
    dcache_stats s;
    dcache_get_stats(d, &s);
    assert_int_equal(s.hits, 1);
    assert_int_equal(s.negative_hits, 1);
    assert_int_equal(s.entries, 3);
    dcache_free(d);
}

static void test_own_changes_keep_it_true(void **st)
{
    (void)st;
    dcache *d = dcache_new(60000, 60000, 1000);
    fs_attr a, n = file_attr(5000, 7);
    fill_n(d, DIR1, 3, 1000);
    fill_n(d, ROOT, 2, DIR1);   /* ROOT/f0 is DIR1 */
    dcache_set(d, DIR1, ROOT, "new", &n);
    assert_int_equal(dcache_lookup(d, DIR1, "new", &a), 1);
    assert_int_equal(a.ino, 5000);
    dcache_set(d, DIR1, ROOT, "f0", NULL);
    assert_int_equal(dcache_lookup(d, DIR1, "f0", &a), 0);
    /* DIR1's own attributes, held by its parent's listing, are stale... */
    assert_int_equal(dcache_lookup(d, ROOT, "f0", &a), -1);
    assert_int_equal(dcache_lookup(d, ROOT, "f1", &a), 1);
    /* ... until metad's answer to the change brings them. */
    fs_attr da;
    memset(&da, 0, sizeof(da));
    da.ino = DIR1;
    da.mode = S_IFDIR | 0755;
    da.nlink = 7;
    dcache_dir_attr(d, &da);
    assert_int_equal(dcache_lookup(d, ROOT, "f0", &a), 1);
    assert_int_equal(a.nlink, 7);
    dcache_drop(d, DIR1);
    assert_int_equal(dcache_lookup(d, DIR1, "f1", &a), -1);
    dcache_free(d);
}

static void test_attr_change_stops_positive_answers(void **st)
{
    (void)st;
    dcache *d = dcache_new(60000, 60000, 1000);
    fs_attr a, n = file_attr(5000, 7);
    fill_n(d, DIR1, 3, 1000);
    dcache_attr_changed(d);
    assert_int_equal(dcache_lookup(d, DIR1, "f1", &a), -1);
    assert_int_equal(dcache_lookup(d, DIR1, "absent", &a), 0);
    /* A name set after the change carries current attributes. */
    dcache_set(d, DIR1, 0, "new", &n);
    assert_int_equal(dcache_lookup(d, DIR1, "new", &a), 1);
    dcache_free(d);
}

static void test_attr_set_and_stale_by_inode(void **st)
{
    (void)st;
    dcache *d = dcache_new(60000, 60000, 1000);
    fs_attr a;
    fill_n(d, DIR1, 3, 1000);
    fill_n(d, DIR2, 2, 2000);
    /* One inode's new attributes: only its entry changes. */
    fs_attr n = file_attr(1001, 4096);
    dcache_attr_set(d, &n);
    assert_int_equal(dcache_lookup(d, DIR1, "f1", &a), 1);
    assert_int_equal(a.size, 4096);
    assert_int_equal(dcache_lookup(d, DIR1, "f2", &a), 1);
    assert_int_equal(a.size, 2);
    assert_int_equal(dcache_lookup(d, DIR2, "f0", &a), 1);
    /* A change of unknown result: that entry asks metad. */
    dcache_attr_stale(d, 1002);
    assert_int_equal(dcache_lookup(d, DIR1, "f2", &a), -1);
    assert_int_equal(dcache_lookup(d, DIR1, "f0", &a), 1);
    /* A file with several links: every listed attribute is suspect. */
    n = file_attr(2000, 1);
    n.nlink = 2;
    dcache_attr_set(d, &n);
    assert_int_equal(dcache_lookup(d, DIR1, "f0", &a), -1);
    assert_int_equal(dcache_lookup(d, DIR2, "f1", &a), -1);
    dcache_free(d);
}

static void test_same_inode_twice_not_answered(void **st)
{
    (void)st;
    dcache *d = dcache_new(60000, 60000, 1000);
    fs_attr a;
    fill_n(d, DIR1, 2, 1000);
    /* DIR2 lists inode 1000 too (a hard link seen at another time). */
    fill_n(d, DIR2, 2, 1000);
    assert_int_equal(dcache_lookup(d, DIR1, "f0", &a), 1);
    assert_int_equal(dcache_lookup(d, DIR2, "f0", &a), -1);
    assert_int_equal(dcache_lookup(d, DIR2, "nope", &a), 0);
    /* Removing a name of a multiply linked inode makes the rest suspect. */
    fs_attr two = file_attr(3000, 1);
    two.nlink = 2;
    dcache_set(d, DIR1, 0, "hl", &two);
    assert_int_equal(dcache_lookup(d, DIR1, "f1", &a), 1);
    dcache_set(d, DIR1, 0, "hl", NULL);
    assert_int_equal(dcache_lookup(d, DIR1, "f1", &a), -1);
    dcache_free(d);
}

static void test_fill_overtaken_by_own_change_is_not_kept(void **st)
{
    (void)st;
    dcache *d = dcache_new(60000, 60000, 1000);
    uint64_t tok = 0;
    fs_attr a, n = file_attr(5000, 7);
    dcache_want(d, DIR1, &tok);
    assert_int_equal(dcache_want(d, DIR1, &tok), 1);
    /* The create lands while the listing is on its way. */
    dcache_set(d, DIR1, 0, "new", &n);
    mc_dirent e = {.name = "old", .a = file_attr(1, 1)};
    dcache_fill(d, DIR1, tok, &e, 1, 1, NULL);
    assert_int_equal(dcache_lookup(d, DIR1, "new", &a), -1);
    assert_int_equal(dcache_lookup(d, DIR1, "old", &a), -1);
    dcache_free(d);
}

static void test_incomplete_listing_marks_big(void **st)
{
    (void)st;
    dcache *d = dcache_new(60000, 60000, 1000);
    uint64_t tok = 0;
    fs_attr a;
    dcache_want(d, DIR1, &tok);
    assert_int_equal(dcache_want(d, DIR1, &tok), 1);
    mc_dirent e = {.name = "x", .a = file_attr(1, 1)};
    dcache_fill(d, DIR1, tok, &e, 1, 0, NULL);
    assert_int_equal(dcache_lookup(d, DIR1, "x", &a), -1);
    /* Not asked for again within the ttl. */
    for (int i = 0; i < 5; i++)
        assert_int_equal(dcache_want(d, DIR1, &tok), 0);
    dcache_free(d);
}

static void test_negative_needs_neg_ttl(void **st)
{
    (void)st;
    dcache *d = dcache_new(60000, 0, 1000);
    fs_attr a;
    fill_n(d, DIR1, 3, 1000);
    assert_int_equal(dcache_lookup(d, DIR1, "f1", &a), 1);
    /* Without a negative timeout an absent name is always asked for. */
    assert_int_equal(dcache_lookup(d, DIR1, "absent", &a), -1);
    dcache_set(d, DIR1, 0, "f1", NULL);
    assert_int_equal(dcache_lookup(d, DIR1, "f1", &a), -1);
    dcache_free(d);
}

static void test_new_dir_is_empty(void **st)
{
    (void)st;
    dcache *d = dcache_new(60000, 60000, 1000);
    fs_attr a, f = file_attr(5000, 7), newdir = dir_at(DIR2, 1);
    dcache_new_dir(d, &newdir);
    /* No listing was fetched, yet every name is known absent ... */
    assert_int_equal(dcache_lookup(d, DIR2, "x", &a), 0);
    assert_int_equal(dcache_lookup(d, DIR2, "y", &a), 0);
    /* ... and what this client creates in it is known present. */
    dcache_set(d, DIR2, DIR1, "x", &f);
    assert_int_equal(dcache_lookup(d, DIR2, "x", &a), 1);
    assert_int_equal(a.ino, 5000);
    assert_int_equal(dcache_lookup(d, DIR2, "y", &a), 0);
    /* A fresh listing needs no fetch. */
    uint64_t tok = 0;
    assert_int_equal(dcache_want(d, DIR2, &tok), 0);
    /* An inode number reused for a new directory forgets the old names. */
    dcache_new_dir(d, &newdir);
    assert_int_equal(dcache_lookup(d, DIR2, "x", &a), 0);
    dcache_stats s;
    dcache_get_stats(d, &s);
    assert_int_equal(s.fills, 0);
    assert_int_equal(s.entries, 0);
    dcache_free(d);

    /* Without a negative timeout absent names are still asked for. */
    d = dcache_new(60000, 0, 1000);
    dcache_new_dir(d, &newdir);
    assert_int_equal(dcache_lookup(d, DIR2, "x", &a), -1);
    dcache_set(d, DIR2, DIR1, "x", &f);
    assert_int_equal(dcache_lookup(d, DIR2, "x", &a), 1);
    dcache_free(d);

    /* Like a fetched listing, it expires. */
    d = dcache_new(50, 50, 1000);
    dcache_new_dir(d, &newdir);
    assert_int_equal(dcache_lookup(d, DIR2, "x", &a), 0);
    struct timespec ts = {0, 80 * 1000000L};
    nanosleep(&ts, NULL);
    assert_int_equal(dcache_lookup(d, DIR2, "x", &a), -1);
    dcache_free(d);
}

static void test_own_steps_keep_listing(void **st)
{
    (void)st;
    dcache *d = dcache_new(300, 300, 1000);
    fs_attr a, dir = dir_at(DIR2, 5);
    dcache_new_dir(d, &dir);
    /* Five changes here, 100 ms apart, each answered one step on: the
     * listing outlives its 300 ms because metad keeps showing that no one
     * else changed the directory. */
    for (int i = 0; i < 5; i++) {
        nap_ms(100);
        char nm[16];
        snprintf(nm, sizeof(nm), "n%d", i);
        fs_attr f = file_attr(7000 + (uint64_t)i, 1);
        dcache_set(d, DIR2, DIR1, nm, &f);
        dir = dir_at(DIR2, 6 + (uint64_t)i);
        dcache_dir_attr_own(d, &dir);
    }
    assert_int_equal(dcache_lookup(d, DIR2, "n0", &a), 1);
    assert_int_equal(a.ino, 7000);
    assert_int_equal(dcache_lookup(d, DIR2, "absent", &a), 0);
    dcache_stats s;
    dcache_get_stats(d, &s);
    assert_int_equal(s.confirms, 5);

    /* A getattr showing the same VV confirms it too. */
    nap_ms(200);
    dcache_dir_attr(d, &dir);
    nap_ms(200);
    assert_int_equal(dcache_lookup(d, DIR2, "absent", &a), 0);

    /* A getattr one step on is someone else's change: no confirmation, and
     * the listing expires as one fetched before it. */
    fs_attr other = dir_at(DIR2, 11);
    dcache_dir_attr(d, &other);
    assert_int_equal(dcache_lookup(d, DIR2, "absent", &a), 0);
    nap_ms(350);
    assert_int_equal(dcache_lookup(d, DIR2, "absent", &a), -1);
    dcache_free(d);

    /* An answer to this client's change two steps on (someone else's change
     * came between) breaks the chain as well. */
    d = dcache_new(300, 300, 1000);
    dir = dir_at(DIR2, 1);
    dcache_new_dir(d, &dir);
    nap_ms(200);
    fs_attr f = file_attr(8000, 1);
    dcache_set(d, DIR2, DIR1, "x", &f);
    dir = dir_at(DIR2, 3);
    dcache_dir_attr_own(d, &dir);
    nap_ms(200);
    assert_int_equal(dcache_lookup(d, DIR2, "absent", &a), -1);
    /* ... and the next step does not mend it. */
    dir = dir_at(DIR2, 4);
    dcache_dir_attr_own(d, &dir);
    dcache_get_stats(d, &s);
    assert_int_equal(s.confirms, 0);
    dcache_free(d);
}

static void test_fill_vv_confirmed(void **st)
{
    (void)st;
    dcache *d = dcache_new(300, 300, 1000);
    fs_attr a, dir = dir_at(DIR1, 9);
    uint64_t tok = 0;
    assert_int_equal(dcache_want(d, DIR1, &tok), 0);
    assert_int_equal(dcache_want(d, DIR1, &tok), 1);
    mc_dirent e = {.name = "f0", .a = file_attr(1000, 0)};
    dcache_fill(d, DIR1, tok, &e, 1, 1, &dir.vv);
    nap_ms(200);
    dcache_dir_attr(d, &dir);   /* same VV: still exact */
    nap_ms(200);
    assert_int_equal(dcache_lookup(d, DIR1, "f0", &a), 1);
    assert_int_equal(dcache_lookup(d, DIR1, "absent", &a), 0);
    dcache_free(d);

    /* Without the VV of the listing nothing can confirm it. */
    d = dcache_new(300, 300, 1000);
    assert_int_equal(dcache_want(d, DIR1, &tok), 0);
    assert_int_equal(dcache_want(d, DIR1, &tok), 1);
    dcache_fill(d, DIR1, tok, &e, 1, 1, NULL);
    nap_ms(200);
    dcache_dir_attr(d, &dir);
    nap_ms(200);
    assert_int_equal(dcache_lookup(d, DIR1, "absent", &a), -1);
    dcache_free(d);
}

static void test_dir_attrs(void **st)
{
    (void)st;
    dcache *d = dcache_new(60000, 0, 1000);
    fs_attr a, dir;
    uint64_t age = 99;
    memset(&dir, 0, sizeof(dir));
    dir.ino = DIR1;
    dir.mode = S_IFDIR | 0755;
    dir.nlink = 2;
    assert_int_equal(dcache_get_dir_attr(d, DIR1, &a, &age), 0);
    dcache_dir_attr(d, &dir);
    assert_int_equal(dcache_get_dir_attr(d, DIR1, &a, &age), 1);
    assert_int_equal(a.nlink, 2);
    assert_true(age < 1000);
    /* A change in the directory forgets them until metad's answer. */
    dcache_set(d, DIR1, 0, "x", NULL);
    assert_int_equal(dcache_get_dir_attr(d, DIR1, &a, &age), 0);
    dir.nlink = 3;
    dcache_dir_attr(d, &dir);
    assert_int_equal(dcache_get_dir_attr(d, DIR1, &a, &age), 1);
    assert_int_equal(a.nlink, 3);
    dcache_forget_attr(d, DIR1);
    assert_int_equal(dcache_get_dir_attr(d, DIR1, &a, &age), 0);
    /* Files are not kept. */
    fs_attr f = file_attr(DIR2, 1);
    dcache_dir_attr(d, &f);
    assert_int_equal(dcache_get_dir_attr(d, DIR2, &a, &age), 0);
    dcache_free(d);
}

static vv vv_at(uint64_t n)
{
    vv v;
    vv_init(&v);
    for (uint64_t i = 0; i < n; i++)
        vv_bump(&v, 1);
    return v;
}

/* Answers to concurrent requests arrive out of order: an older VV never
 * replaces a newer one. */
static void test_out_of_order_answers(void **st)
{
    (void)st;
    dcache *d = dcache_new(60000, 0, 1000);
    fs_attr a, dir;
    uint64_t age;
    memset(&dir, 0, sizeof(dir));
    dir.ino = DIR1;
    dir.mode = S_IFDIR | 0755;
    dir.nlink = 5;
    dir.vv = vv_at(5);
    dcache_dir_attr(d, &dir);
    dir.nlink = 4;
    dir.vv = vv_at(4);
    dcache_dir_attr(d, &dir);
    assert_int_equal(dcache_get_dir_attr(d, DIR1, &a, &age), 1);
    assert_int_equal(a.nlink, 5);

    fill_n(d, DIR2, 2, 2000);
    fs_attr f = file_attr(2000, 77);
    f.vv = vv_at(3);
    dcache_attr_set(d, &f);
    f.size = 66;
    f.vv = vv_at(2);
    dcache_attr_set(d, &f);
    assert_int_equal(dcache_lookup(d, DIR2, "f0", &a), 1);
    assert_int_equal(a.size, 77);
    dcache_free(d);
}

/* A listing on its way while this client changes an inode in it may show
 * the inode as it was: that entry asks metad. */
static void test_change_during_fill(void **st)
{
    (void)st;
    dcache *d = dcache_new(60000, 0, 1000);
    uint64_t tok = 0;
    fs_attr a;
    dcache_want(d, DIR1, &tok);
    assert_int_equal(dcache_want(d, DIR1, &tok), 1);
    fs_attr changed = file_attr(501, 9);
    dcache_attr_set(d, &changed);
    mc_dirent e[2] = {{.name = "a", .a = file_attr(500, 1)}, {.name = "b", .a = file_attr(501, 1)}};
    dcache_fill(d, DIR1, tok, e, 2, 1, NULL);
    assert_int_equal(dcache_lookup(d, DIR1, "a", &a), 1);
    assert_int_equal(dcache_lookup(d, DIR1, "b", &a), -1);
    dcache_free(d);
}

/* A change inside a directory makes that directory's entry in its parent's
 * listing stale, found by inode among many entries. */
static void test_parent_entry_in_big_listing(void **st)
{
    (void)st;
    dcache *d = dcache_new(60000, 60000, 65536);
    fs_attr a, n = file_attr(5000, 7);
    fill_n(d, ROOT, 20000, 10000);  /* ROOT/f<i> is inode 10000 + i */
    dcache_set(d, 10000 + 12345, ROOT, "x", &n);
    assert_int_equal(dcache_lookup(d, ROOT, "f12345", &a), -1);
    assert_int_equal(dcache_lookup(d, ROOT, "f12344", &a), 1);
    assert_int_equal(dcache_lookup(d, ROOT, "f19999", &a), 1);
    assert_int_equal(a.ino, 10000 + 19999);
    /* A name that now holds another inode is found under that one. */
    fs_attr moved = file_attr(90000, 1);
    dcache_set(d, ROOT, 0, "f7", &moved);
    dcache_set(d, 90000, ROOT, "y", &n);
    assert_int_equal(dcache_lookup(d, ROOT, "f7", &a), -1);
    dcache_set(d, 10007, ROOT, "z", &n);
    assert_int_equal(dcache_lookup(d, ROOT, "f8", &a), 1);
    dcache_free(d);
}

static void test_expires(void **st)
{
    (void)st;
    dcache *d = dcache_new(50, 50, 1000);
    fs_attr a;
    fill_n(d, DIR1, 3, 1000);
    assert_int_equal(dcache_lookup(d, DIR1, "f2", &a), 1);
    fs_attr dir;
    uint64_t age;
    memset(&dir, 0, sizeof(dir));
    dir.ino = DIR2;
    dir.mode = S_IFDIR | 0755;
    dcache_dir_attr(d, &dir);
    assert_int_equal(dcache_get_dir_attr(d, DIR2, &a, &age), 1);
    struct timespec ts = {0, 80 * 1000000L};
    nanosleep(&ts, NULL);
    assert_int_equal(dcache_lookup(d, DIR1, "f2", &a), -1);
    assert_int_equal(dcache_lookup(d, DIR1, "absent", &a), -1);
    assert_int_equal(dcache_get_dir_attr(d, DIR2, &a, &age), 0);
    /* A directory listed before is listed again at its first lookup. */
    uint64_t tok = 0;
    assert_int_equal(dcache_want(d, DIR1, &tok), 1);
    dcache_free(d);
}

static void test_memory_bound(void **st)
{
    (void)st;
    dcache *d = dcache_new(60000, 60000, 100);
    fs_attr a;
    dcache_stats s;
    for (uint64_t dir = 1; dir <= 10; dir++)
        fill_n(d, dir, 40, dir * 1000);
    dcache_get_stats(d, &s);
    assert_true(s.entries <= 100);
    /* The newest listing answers; the oldest went first. */
    assert_int_equal(dcache_lookup(d, 10, "f39", &a), 1);
    assert_int_equal(dcache_lookup(d, 1, "f39", &a), -1);
    /* A listing bigger than half the bound is not kept at all. */
    fill_n(d, 77, 60, 77000);
    assert_int_equal(dcache_lookup(d, 77, "f1", &a), -1);
    dcache_free(d);
}

static void test_disabled(void **st)
{
    (void)st;
    dcache *d = dcache_new(0, 0, 1000);
    uint64_t tok = 0;
    fs_attr a;
    for (int i = 0; i < 4; i++)
        assert_int_equal(dcache_want(d, DIR1, &tok), 0);
    assert_int_equal(dcache_lookup(d, DIR1, "x", &a), -1);
    dcache_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answers_positive_and_negative),
        cmocka_unit_test(test_own_changes_keep_it_true),
        cmocka_unit_test(test_attr_change_stops_positive_answers),
        cmocka_unit_test(test_attr_set_and_stale_by_inode),
        cmocka_unit_test(test_same_inode_twice_not_answered),
        cmocka_unit_test(test_fill_overtaken_by_own_change_is_not_kept),
        cmocka_unit_test(test_incomplete_listing_marks_big),
        cmocka_unit_test(test_negative_needs_neg_ttl),
        cmocka_unit_test(test_new_dir_is_empty),
        cmocka_unit_test(test_own_steps_keep_listing),
        cmocka_unit_test(test_fill_vv_confirmed),
        cmocka_unit_test(test_dir_attrs),
        cmocka_unit_test(test_out_of_order_answers),
        cmocka_unit_test(test_change_during_fill),
        cmocka_unit_test(test_parent_entry_in_big_listing),
        cmocka_unit_test(test_expires),
        cmocka_unit_test(test_memory_bound),
        cmocka_unit_test(test_disabled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
