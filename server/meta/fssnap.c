/*
 * fssnap.c — the namespace as snapshot records and back (fs.h).
 *
 * Record order: one FSSNAP_HEADER, every inode (FSSNAP_INODE: attributes,
 * target, inline data, chunk map, xattrs, directory bookkeeping), then for
 * each directory its entries in cursor order (FSSNAP_DIRENT with their
 * sequence numbers, so cursors handed to clients stay valid across a
 * restart). Loading rebuilds the chunk reference table from the maps and
 * checks link counts against the entries before the server trusts it. A
 * regular file with nlink 0 is an orphan (fs.h) and goes back on the
 * orphan list.
 */
#include "server/meta/fs_i.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

#define CT "snapshot"

static int emit_rec(recw *w, fs_emit_fn emit, void *ctx)
{
    size_t len;
    const uint8_t *p = recw_finish(w, &len);
    int rc = emit(p, len, ctx);

    recw_free(w);
    return rc;
}

static int emit_inode(const fs_inode *ip, fs_emit_fn emit, void *ctx)
{
    recw w, x;
    size_t i;

    recw_init(&w, FSSNAP_INODE);
    fsrec_put_attr(&w, &ip->a);
    if (ip->target)
        recw_str(&w, FT_TARGET, ip->target);
    if (ip->inl_len)
        recw_bytes(&w, FT_INLINE, ip->inl, ip->inl_len);
    for (i = 0; i < ip->nslots; i++)
        fsrec_put_slot(&w, &ip->slots[i]);
    for (i = 0; i < ip->nxattrs; i++) {
        recw_init(&x, FSREC_REQ);
        recw_bytes(&x, FT_NAME, ip->xattrs[i].name, ip->xattrs[i].nlen);
        recw_bytes(&x, FT_VALUE, ip->xattrs[i].value, ip->xattrs[i].vlen);
        recw_rec(&w, FT_XATTR, &x);
        recw_free(&x);
    }
    if (ip->dir) {
        recw_u64(&w, FT_SNAP_DPARENT, ip->dir->parent);
        recw_u64(&w, FT_SNAP_NEXT_SEQ, ip->dir->next_seq);
    }
    return emit_rec(&w, emit, ctx);
}

int fs_snapshot_write(fs *f, fs_emit_fn emit, void *ctx)
{
    fs_inode *ip, *tmp;
    recw w;
    size_t i;
    int rc;

    recw_init(&w, FSSNAP_HEADER);
    recw_u64(&w, FT_SNAP_NEXT_INO, f->next_ino);
    recw_u64(&w, FT_FILES, f->ninodes);
    if ((rc = emit_rec(&w, emit, ctx)) < 0)
        return rc;
    HASH_ITER(hh, f->inodes, ip, tmp) {
        if ((rc = emit_inode(ip, emit, ctx)) < 0)
            return rc;
    }
    HASH_ITER(hh, f->inodes, ip, tmp) {
        if (!ip->dir)
            continue;
        for (i = 0; i < ip->dir->nseq; i++) {
            fs_dirent *e = ip->dir->by_seq[i].e;
            if (!e)
                continue;
            recw_init(&w, FSSNAP_DIRENT);
            recw_u64(&w, FT_PARENT, ip->a.ino);
            recw_bytes(&w, FT_NAME, e->name, e->namelen);
            recw_u64(&w, FT_INO, e->ino);
            recw_u64(&w, FT_SNAP_SEQ, e->seq);
            if ((rc = emit_rec(&w, emit, ctx)) < 0)
                return rc;
        }
    }
    return 0;
}

static int load_xattrs(fs_inode *ip, const recr *r)
{
    rec_iter it;
    uint16_t tag;
    const uint8_t *p, *v;
    size_t n, nl, vl;
    recr x;
    char name[FS_XATTR_NAME_MAX + 1];
    uint32_t pos;

    rec_iter_init(&it);
    while (rec_next(r, &it, &tag, &p, &n)) {
        if (tag != FT_XATTR)
            continue;
        if (rec_open(&x, p, n) < 0 || rec_get_bytes(&x, FT_NAME, &v, &nl) < 0 ||
            fs_xattr_name_check((const char *)v, nl) < 0)
            return CAIRN_ECORRUPT;
        memcpy(name, v, nl);
        name[nl] = '\0';
        if (rec_get_bytes(&x, FT_VALUE, &v, &vl) < 0 || vl > FS_XATTR_VALUE_MAX ||
            fsi_xattr_find(ip, name, &pos))
            return CAIRN_ECORRUPT;
        fsi_xattr_put(ip, name, v, (uint32_t)vl);
    }
    return 0;
}

static int load_slots(fs *f, fs_inode *ip, const recr *r)
{
    size_t cnt = rec_count(r, FT_SLOT), i = 0, n;
    fs_slot *slots;
    rec_iter it;
    uint16_t tag;
    const uint8_t *p;

    if (cnt == 0)
        return 0;
    if (cnt > FS_MAX_SLOTS)
        return CAIRN_ECORRUPT;
    slots = xmalloc(cnt * sizeof(fs_slot));
    rec_iter_init(&it);
    while (rec_next(r, &it, &tag, &p, &n)) {
        if (tag != FT_SLOT)
            continue;
        if (fsrec_slot_decode(p, n, &slots[i]) < 0 || slots[i].len == 0 ||
            slots[i].len > f->chunk_size || (i > 0 && slots[i].index <= slots[i - 1].index)) {
            free(slots);
            return CAIRN_ECORRUPT;
        }
        i++;
    }
    fsi_set_slots(f, ip, slots, cnt);
    return 0;
}

static int load_inode(fs *f, const recr *r)
{
    fs_attr a;
    fs_inode *ip;
    const uint8_t *p;
    size_t n;
    int rc;

    if (fsrec_get_attr(r, &a) < 0 || a.ino == 0 || fs_get(f, a.ino))
        return CAIRN_ECORRUPT;
    switch (a.mode & S_IFMT) {
    case S_IFREG: case S_IFDIR: case S_IFLNK: case S_IFIFO:
    case S_IFCHR: case S_IFBLK: case S_IFSOCK:
        break;
    default:
        return CAIRN_ECORRUPT;
    }
    ip = fsi_inode_new(f, a.ino, a.mode);
    ip->a = a;
    if (rec_get_bytes(r, FT_TARGET, &p, &n) == 0) {
        if (!S_ISLNK(a.mode) || n == 0 || n > FS_SYMLINK_MAX || memchr(p, 0, n))
            return CAIRN_ECORRUPT;
        ip->target = xstrndup((const char *)p, n);
    }
    if (rec_get_bytes(r, FT_INLINE, &p, &n) == 0) {
        if (!S_ISREG(a.mode) || n > UINT32_MAX)
            return CAIRN_ECORRUPT;
        fsi_set_inline(f, ip, p, (uint32_t)n);
    }
    if ((rc = load_slots(f, ip, r)) < 0)
        return rc;
    if ((rc = load_xattrs(ip, r)) < 0)
        return rc;
    if (a.nlink == 0) {
        /* An orphan: kept for a client session that held it open. */
        if (!S_ISREG(a.mode))
            return CAIRN_ECORRUPT;
        fsi_orphan_add(f, ip);
    }
    if (ip->dir) {
        if (rec_get_u64(r, FT_SNAP_DPARENT, &ip->dir->parent) < 0 ||
            rec_get_u64(r, FT_SNAP_NEXT_SEQ, &ip->dir->next_seq) < 0 || ip->dir->next_seq == 0)
            return CAIRN_ECORRUPT;
    }
    return 0;
}

static int load_dirent(fs *f, const recr *r)
{
    uint64_t parent, ino, seq;
    const uint8_t *p;
    size_t n;
    fs_inode *dp, *ip;

    if (rec_get_u64(r, FT_PARENT, &parent) < 0 || rec_get_u64(r, FT_INO, &ino) < 0 ||
        rec_get_u64(r, FT_SNAP_SEQ, &seq) < 0 || rec_get_bytes(r, FT_NAME, &p, &n) < 0)
        return CAIRN_ECORRUPT;
    dp = fs_get(f, parent);
    ip = fs_get(f, ino);
    if (!dp || !dp->dir || !ip || fs_name_check((const char *)p, n) < 0 ||
        fsi_dir_find(dp->dir, (const char *)p, n) || seq == 0)
        return CAIRN_ECORRUPT;
    /* Entries arrive in cursor order; the saved next_seq may be higher. */
    if (dp->dir->nseq && seq <= dp->dir->by_seq[dp->dir->nseq - 1].seq)
        return CAIRN_ECORRUPT;
    {
        uint64_t keep = dp->dir->next_seq;
        fsi_dir_add(f, dp->dir, (const char *)p, n, ino, seq);
        if (keep > dp->dir->next_seq)
            dp->dir->next_seq = keep;
    }
    if (ip->dir)
        dp->dir->subdirs++;
    return 0;
}

int fs_snapshot_load(fs *f, const uint8_t *rec, size_t len)
{
    recr r;
    uint64_t v;
    int rc = rec_open(&r, rec, len);

    if (rc < 0)
        return CAIRN_ECORRUPT;
    switch (r.type) {
    case FSSNAP_HEADER:
        if (rec_get_u64(&r, FT_SNAP_NEXT_INO, &v) < 0 || v <= FS_ROOT_INO)
            return CAIRN_ECORRUPT;
        if (v > f->next_ino)
            f->next_ino = v;
        return 0;
    case FSSNAP_INODE:
        return load_inode(f, &r);
    case FSSNAP_DIRENT:
        return load_dirent(f, &r);
    default:
        return CAIRN_ECORRUPT;
    }
}

int fs_check(fs *f)
{
    fs_inode *ip, *tmp, *cp;
    size_t i;
    uint64_t dirents = 0;

    if (f->ninodes == 0)
        return 0;
    if (!fs_get(f, FS_ROOT_INO))
        return CAIRN_ECORRUPT;
    HASH_ITER(hh, f->inodes, ip, tmp)
        ip->seen_links = 0;
    HASH_ITER(hh, f->inodes, ip, tmp) {
        if (!ip->dir)
            continue;
        for (i = 0; i < ip->dir->nseq; i++) {
            fs_dirent *e = ip->dir->by_seq[i].e;
            if (!e)
                continue;
            dirents++;
            cp = fs_get(f, e->ino);
            if (!cp) {
                log_error(CT ": entry \"%s\" in %llu points at missing inode %llu", e->name,
                          (unsigned long long)ip->a.ino, (unsigned long long)e->ino);
                return CAIRN_ECORRUPT;
            }
            cp->seen_links++;
            if (cp->dir && cp->dir->parent != ip->a.ino) {
                log_error(CT ": directory %llu listed in %llu but its parent is %llu",
                          (unsigned long long)cp->a.ino, (unsigned long long)ip->a.ino,
                          (unsigned long long)cp->dir->parent);
                return CAIRN_ECORRUPT;
            }
        }
    }
    HASH_ITER(hh, f->inodes, ip, tmp) {
        uint32_t want = ip->dir ? 2 + ip->dir->subdirs : ip->seen_links;
        if (ip->orphan) {
            if (S_ISREG(ip->a.mode) && ip->a.nlink == 0 && ip->seen_links == 0)
                continue;
            log_error(CT ": orphan %llu has nlink %u and %u names",
                      (unsigned long long)ip->a.ino, ip->a.nlink, ip->seen_links);
            return CAIRN_ECORRUPT;
        }
        uint32_t names = ip->a.ino == FS_ROOT_INO ? 0 : (ip->dir ? 1 : ip->seen_links);
        if (ip->a.nlink != want || ip->seen_links != names || ip->seen_links == 0) {
            if (ip->a.ino == FS_ROOT_INO && ip->seen_links == 0 && ip->a.nlink == want)
                continue;
            log_error(CT ": inode %llu has nlink %u and %u names (expected nlink %u)",
                      (unsigned long long)ip->a.ino, ip->a.nlink, ip->seen_links, want);
            return CAIRN_ECORRUPT;
        }
    }
    if (dirents != f->ndirents) {
        log_error(CT ": %llu entries counted, %llu recorded", (unsigned long long)dirents,
                  (unsigned long long)f->ndirents);
        return CAIRN_ECORRUPT;
    }
    return 0;
}
