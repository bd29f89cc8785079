/*
 * dcache.h — recent directory listings, to answer name lookups without a
 * metad round trip.
 *
 * A directory looked up in again and again (a build cache's fan-out
 * directory, a stat or unlink of every file in a tree) is listed once with
 * attributes (readdir), and the following lookups in it, positive and
 * negative, are answered from that listing for the entry timeout, the same
 * time the kernel itself may cache each name (absent names: the negative
 * timeout). This client's own changes
 * keep the listings true: creates, links and renames add their names,
 * unlinks and renames remove them, a change in a directory drops the
 * listing that holds that directory's own attributes, and a change of some
 * inode's attributes (setattr, xattrs, links, commits) stops names listed
 * before it from answering positively. A directory's own attributes from
 * metad's answer to a change in it answer the getattr the kernel sends
 * after each such change. What other clients change is seen when the
 * listing expires, as with the kernel's caches.
 *
 * A listing is exact for the directory's VV it was listed at (or created
 * at, for a directory this client made). It expires the entry timeout
 * after metad last showed that it still is: a getattr answer with that
 * VV, or the answer to a change this client made there whose VV is one
 * step past it (that change being the only one since). So a directory
 * only this client changes is listed once, however long it works in it;
 * a change by anyone else breaks the chain and the listing then expires
 * as one fetched at that time.
 *
 * Memory is bounded: at most max_entries names in all listings and a
 * bounded number of directories tracked; the oldest listings go first.
 * Thread-safe (one mutex; no call blocks).
 */
#ifndef CAIRN_DCACHE_H
#define CAIRN_DCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "client/metaclient.h"
#include "common/fsrec.h"

typedef struct dcache dcache;

/* Names kept in all listings of a mount, and the most one listing asks
 * metad for (a bigger directory is not listed). */
#define DCACHE_ENTRIES 65536u
#define DCACHE_LIST_MAX 1024u

/* Names are answered for ttl_ms after their listing was asked for, absent
 * names (negative answers) only for neg_ttl_ms (the mount's negative
 * timeout: 0 by default, so that a name another client creates is seen at
 * once). ttl_ms 0 or max_entries 0: a cache that never answers. */
dcache *dcache_new(uint64_t ttl_ms, uint64_t neg_ttl_ms, size_t max_entries);
void dcache_free(dcache *d);

/* Answer a lookup of name in dir: 1 with *a (the name exists), 0 (it does
 * not exist), or -1 (no fresh listing can tell; ask metad). */
int dcache_lookup(dcache *d, uint64_t dir, const char *name, fs_attr *a);

/* After a lookup that had to ask metad: whether listing dir now is worth
 * it (the second lookup in it within the ttl, or the first once a listing
 * of it expired; not when it was found too big lately). On 1, *token is
 * passed to dcache_fill. */
int dcache_want(dcache *d, uint64_t dir, uint64_t *token);

/* A listing of dir fetched after dcache_want gave token: ents[0..n), whole
 * when complete is set. An incomplete listing (a big directory) only marks
 * dir as not worth listing for a ttl. A listing that this client's own
 * changes may have overtaken while it was fetched is not kept. */
void dcache_fill(dcache *d, uint64_t dir, uint64_t token, const mc_dirent *ents, size_t n,
                 int complete, const vv *dir_vv);

/* This client changed dir: name now refers to a (create, mkdir, link,
 * symlink, rename target), or no longer exists (a == NULL). parent_of_dir
 * is dir's own parent (0 if unknown): its listing, which holds dir's now
 * stale attributes, is dropped. */
void dcache_set(dcache *d, uint64_t dir, uint64_t parent_of_dir, const char *name,
                const fs_attr *a);

/* This client just created directory a->ino: it is empty, so its listing
 * is complete as of now (names created in it later are added by
 * dcache_set; absent names are answered within the negative timeout). */
void dcache_new_dir(dcache *d, const fs_attr *a);

/* This client changed inode a->ino, which metad now shows as a: its listed
 * entry answers with a from now on. */
void dcache_attr_set(dcache *d, const fs_attr *a);
/* This client changed inode ino in a way whose result it does not know:
 * its listed entry no longer answers positively. */
void dcache_attr_stale(dcache *d, uint64_t ino);
/* This client changed some inode's attributes: names listed before now
 * no longer answer positively (negative answers stand). Changes of a file
 * with several links also end here. */
void dcache_attr_changed(dcache *d);

/* Forget dir's listing. */
void dcache_drop(dcache *d, uint64_t dir);
/* Forget every listing and every directory's attributes (a fetch in
 * progress is not kept either): anything may have changed. */
void dcache_clear(dcache *d);

/* A directory's own attributes as metad just told them (a getattr, or the
 * answer to this client's change in it): its next getattr within the ttl
 * is answered from them. dcache_set on the directory forgets them, as does
 * dcache_forget_attr (a setattr, xattr change or rename of it). */
void dcache_dir_attr(dcache *d, const fs_attr *a);
/* The same for the answer to one change this client made in or to the
 * directory. */
void dcache_dir_attr_own(dcache *d, const fs_attr *a);
/* 1 with *a and their age when known and fresh, else 0. */
int dcache_get_dir_attr(dcache *d, uint64_t ino, fs_attr *a, uint64_t *age_ms);
void dcache_forget_attr(dcache *d, uint64_t ino);

typedef struct dcache_stats {
    uint64_t hits, negative_hits, attr_hits, fills, confirms, entries, dirs;
} dcache_stats;
void dcache_get_stats(dcache *d, dcache_stats *out);

#endif
