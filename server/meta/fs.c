/*
 * fs.c — namespace structures and read-only queries (fs.h): the inode
 * table, directories with cursor order (fs_i.h), chunk maps, xattrs, and
 * the encoders of inode records for answers.
 */
#include "server/meta/fs_i.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

#define CT "fs"

fs *fs_new(uint32_t chunk_size, uint32_t inline_max)
{
    fs *f = xcalloc(1, sizeof(*f));

    f->next_ino = FS_ROOT_INO + 1;
    f->chunk_size = chunk_size;
    f->inline_max = inline_max;
    f->refs = refs_new();
    return f;
}

static void dir_free(fs_dir *d)
{
    fs_dirent *e, *tmp;

    HASH_ITER(hh, d->by_name, e, tmp) {
        HASH_DEL(d->by_name, e);
        free(e);
    }
    free(d->by_seq);
    free(d);
}

static void inode_release(fs_inode *ip)
{
    uint32_t i;

    for (i = 0; i < ip->nxattrs; i++) {
        free(ip->xattrs[i].name);
        free(ip->xattrs[i].value);
    }
    free(ip->xattrs);
    free(ip->target);
    free(ip->inl);
    free(ip->slots);
    if (ip->dir)
        dir_free(ip->dir);
    free(ip);
}

void fs_free(fs *f)
{
    fs_inode *ip, *tmp;

    if (!f)
        return;
    HASH_ITER(hh, f->inodes, ip, tmp) {
        HASH_DEL(f->inodes, ip);
        inode_release(ip);
    }
    refs_free(f->refs);
    free(f);
}

uint64_t fs_next_ino(const fs *f)
{
    return f->next_ino;
}

const refs *fs_refs(const fs *f)
{
    return f->refs;
}

void fs_get_counts(const fs *f, fs_counts *out)
{
    memset(out, 0, sizeof(*out));
    out->inodes = f->ninodes;
    out->dirents = f->ndirents;
    out->dirs = f->ndirs;
    out->files = f->nfiles;
    out->slots = f->nslots;
    out->inline_bytes = f->inline_bytes;
    out->chunk_refs = refs_count(f->refs);
    out->orphans = f->norphans;
    memcpy(out->applied, f->applied, sizeof(out->applied));
}

int fs_inline_fits(const fs *f, uint64_t ino, uint64_t len, uint64_t budget)
{
    const fs_inode *ip = fs_get((fs *)f, ino);
    uint64_t have = ip ? ip->inl_len : 0;
    if (len <= have)
        return 1;
    return f->inline_bytes + (len - have) <= budget;
}

/* ---- inodes ---- */

fs_inode *fsi_inode_new(fs *f, uint64_t ino, uint32_t mode)
{
    fs_inode *ip = xcalloc(1, sizeof(*ip));

    ip->a.ino = ino;
    ip->a.mode = mode;
    vv_init(&ip->a.vv);
    if (S_ISDIR(mode)) {
        ip->dir = xcalloc(1, sizeof(fs_dir));
        ip->dir->next_seq = 1;
        f->ndirs++;
    } else if (S_ISREG(mode)) {
        f->nfiles++;
    }
    HASH_ADD(hh, f->inodes, a.ino, sizeof(uint64_t), ip);
    f->ninodes++;
    if (ino >= f->next_ino)
        f->next_ino = ino + 1;
    return ip;
}

void fsi_orphan_add(fs *f, fs_inode *ip)
{
    ip->orphan = 1;
    ip->orph_prev = NULL;
    ip->orph_next = f->orphans;
    if (f->orphans)
        f->orphans->orph_prev = ip;
    f->orphans = ip;
    f->norphans++;
}

static void orphan_del(fs *f, fs_inode *ip)
{
    if (ip->orph_prev)
        ip->orph_prev->orph_next = ip->orph_next;
    else
        f->orphans = ip->orph_next;
    if (ip->orph_next)
        ip->orph_next->orph_prev = ip->orph_prev;
    ip->orph_prev = ip->orph_next = NULL;
    ip->orphan = 0;
    f->norphans--;
}

int fs_inode_is_orphan(const fs_inode *ip)
{
    return ip->orphan;
}

uint64_t *fs_orphan_list(const fs *f, size_t *n)
{
    uint64_t *out;
    const fs_inode *ip;
    size_t i = 0;

    *n = 0;
    if (f->norphans == 0)
        return NULL;
    out = xmalloc(f->norphans * sizeof(uint64_t));
    for (ip = f->orphans; ip; ip = ip->orph_next)
        out[i++] = ip->a.ino;
    *n = i;
    return out;
}

void fsi_inode_free(fs *f, fs_inode *ip)
{
    size_t i;

    if (ip->orphan)
        orphan_del(f, ip);

    for (i = 0; i < ip->nslots; i++)
        refs_del(f->refs, ip->slots[i].id);
    f->nslots -= ip->nslots;
    f->inline_bytes -= ip->inl_len;
    if (ip->dir) {
        f->ndirents -= ip->dir->live;
        f->ndirs--;
    } else if (S_ISREG(ip->a.mode)) {
        f->nfiles--;
    }
    HASH_DEL(f->inodes, ip);
    f->ninodes--;
    inode_release(ip);
}

void fsi_bump(fs_inode *ip, uint32_t replica)
{
    if (vv_bump(&ip->a.vv, replica) < 0)
        log_error(CT ": version vector of inode %llu is full", (unsigned long long)ip->a.ino);
}

fs_inode *fs_get(fs *f, uint64_t ino)
{
    fs_inode *ip;

    HASH_FIND(hh, f->inodes, &ino, sizeof(uint64_t), ip);
    return ip;
}

const fs_attr *fs_inode_attr(const fs_inode *ip)
{
    return &ip->a;
}

const char *fs_inode_target(const fs_inode *ip)
{
    return ip->target;
}

/* ---- names ---- */

int fs_name_check(const char *name, size_t len)
{
    if (len == 0)
        return -EINVAL;
    if (len > FS_NAME_MAX)
        return -ENAMETOOLONG;
    if (memchr(name, '/', len) || memchr(name, '\0', len))
        return -EINVAL;
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
        return -EINVAL;
    return 0;
}

int fs_xattr_name_check(const char *name, size_t len)
{
    if (len == 0)
        return -EINVAL;
    if (len > FS_XATTR_NAME_MAX)
        return -ERANGE;   /* what setxattr(2) answers for a long name */
    if (memchr(name, '\0', len))
        return -EINVAL;
    return 0;
}

/* ---- directories ---- */

fs_dirent *fsi_dir_find(const fs_dir *d, const char *name, size_t len)
{
    fs_dirent *e;

    HASH_FIND(hh, d->by_name, name, len, e);
    return e;
}

fs_dirent *fsi_dir_add(fs *f, fs_dir *d, const char *name, size_t len, uint64_t ino,
                       uint64_t seq)
{
    fs_dirent *e = xmalloc(sizeof(*e) + len + 1);

    if (seq == 0)
        seq = d->next_seq;
    memcpy(e->name, name, len);
    e->name[len] = '\0';
    e->namelen = (uint16_t)len;
    e->ino = ino;
    e->seq = seq;
    d->next_seq = seq + 1;
    HASH_ADD_KEYPTR(hh, d->by_name, e->name, len, e);
    if (d->nseq == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 8;
        d->by_seq = xrealloc(d->by_seq, d->cap * sizeof(fs_seqslot));
    }
    d->by_seq[d->nseq].seq = seq;
    d->by_seq[d->nseq].e = e;
    d->nseq++;
    d->live++;
    f->ndirents++;
    return e;
}

/* Index of the first slot with seq > cursor (nseq if none). */
static size_t dir_seek(const fs_dir *d, uint64_t cursor)
{
    size_t lo = 0, hi = d->nseq;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (d->by_seq[mid].seq <= cursor)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void dir_compact(fs_dir *d)
{
    size_t i, j = 0;

    for (i = 0; i < d->nseq; i++)
        if (d->by_seq[i].e)
            d->by_seq[j++] = d->by_seq[i];
    d->nseq = j;
    if (d->cap > 64 && d->nseq < d->cap / 4) {
        d->cap = MAX(d->nseq * 2, (size_t)8);
        d->by_seq = xrealloc(d->by_seq, d->cap * sizeof(fs_seqslot));
    }
}

void fsi_dir_del(fs *f, fs_dir *d, fs_dirent *e)
{
    size_t pos = dir_seek(d, e->seq - 1);

    if (pos >= d->nseq || d->by_seq[pos].e != e) {
        log_error(CT ": directory index out of step for \"%s\"", e->name);
        abort();
    }
    d->by_seq[pos].e = NULL;
    HASH_DEL(d->by_name, e);
    free(e);
    d->live--;
    f->ndirents--;
    if (d->nseq - d->live > 32 && d->nseq - d->live > d->live)
        dir_compact(d);
}

int fs_lookup(fs *f, uint64_t parent, const char *name, size_t len, fs_inode **out)
{
    fs_inode *dp = fs_get(f, parent);
    fs_dirent *e;
    int rc = fs_name_check(name, len);

    if (rc < 0)
        return rc;
    if (!dp)
        return -ENOENT;
    if (!dp->dir)
        return -ENOTDIR;
    e = fsi_dir_find(dp->dir, name, len);
    if (!e)
        return -ENOENT;
    *out = fs_get(f, e->ino);
    if (!*out) {
        log_error(CT ": entry \"%s\" points at missing inode %llu", e->name,
                  (unsigned long long)e->ino);
        return -EIO;
    }
    return 0;
}

/* ---- chunk maps and inline data ---- */

void fsi_set_slots(fs *f, fs_inode *ip, fs_slot *slots, size_t n)
{
    size_t i;

    /* Add the new references before dropping the old ones so a slot kept
     * unchanged never passes through zero. */
    for (i = 0; i < n; i++)
        refs_add(f->refs, slots[i].id);
    for (i = 0; i < ip->nslots; i++)
        refs_del(f->refs, ip->slots[i].id);
    f->nslots -= ip->nslots;
    f->nslots += n;
    free(ip->slots);
    ip->slots = slots;
    ip->nslots = n;
}

void fsi_set_inline(fs *f, fs_inode *ip, const uint8_t *p, uint32_t n)
{
    uint8_t *copy = NULL;

    if (n) {
        copy = xmalloc(n);
        memcpy(copy, p, n);
    }
    f->inline_bytes -= ip->inl_len;
    free(ip->inl);
    ip->inl = copy;
    ip->inl_len = n;
    f->inline_bytes += n;
}

void fsi_trim(fs *f, fs_inode *ip, uint64_t size)
{
    uint64_t c = f->chunk_size;
    size_t keep = ip->nslots, i;

    while (keep > 0 && ip->slots[keep - 1].index * c >= size)
        keep--;
    for (i = keep; i < ip->nslots; i++)
        refs_del(f->refs, ip->slots[i].id);
    f->nslots -= ip->nslots - keep;
    ip->nslots = keep;
    if (keep > 0) {
        fs_slot *last = &ip->slots[keep - 1];
        uint64_t room = size - last->index * c;
        if (room < last->len)
            last->len = (uint32_t)room;
    }
    if (ip->inl_len > size) {
        f->inline_bytes -= ip->inl_len - size;
        ip->inl_len = (uint32_t)size;
    }
}

/* ---- xattrs (sorted array: inodes carry few) ---- */

int fsi_xattr_find(const fs_inode *ip, const char *name, uint32_t *pos)
{
    uint32_t lo = 0, hi = ip->nxattrs;

    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int c = strcmp(ip->xattrs[mid].name, name);
        if (c == 0) {
            *pos = mid;
            return 1;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *pos = lo;
    return 0;
}

void fsi_xattr_put(fs_inode *ip, const char *name, const uint8_t *v, uint32_t vlen)
{
    uint32_t pos;
    uint8_t *copy = xmalloc(vlen ? vlen : 1);

    memcpy(copy, v, vlen);
    if (fsi_xattr_find(ip, name, &pos)) {
        ip->xattr_bytes -= ip->xattrs[pos].vlen;
        free(ip->xattrs[pos].value);
    } else {
        ip->xattrs = xrealloc(ip->xattrs, (ip->nxattrs + 1) * sizeof(fs_xattr));
        memmove(&ip->xattrs[pos + 1], &ip->xattrs[pos],
                (ip->nxattrs - pos) * sizeof(fs_xattr));
        ip->nxattrs++;
        ip->xattrs[pos].name = xstrdup(name);
        ip->xattrs[pos].nlen = (uint32_t)strlen(name);
        ip->xattr_names += ip->xattrs[pos].nlen + 1;
    }
    ip->xattrs[pos].value = copy;
    ip->xattrs[pos].vlen = vlen;
    ip->xattr_bytes += vlen;
}

void fsi_xattr_del(fs_inode *ip, uint32_t pos)
{
    ip->xattr_bytes -= ip->xattrs[pos].vlen;
    ip->xattr_names -= ip->xattrs[pos].nlen + 1;
    free(ip->xattrs[pos].name);
    free(ip->xattrs[pos].value);
    memmove(&ip->xattrs[pos], &ip->xattrs[pos + 1],
            (ip->nxattrs - pos - 1) * sizeof(fs_xattr));
    ip->nxattrs--;
}

int fs_xattr_get(const fs_inode *ip, const char *name, const uint8_t **val, size_t *len)
{
    uint32_t pos;

    if (!fsi_xattr_find(ip, name, &pos))
        return -ENODATA;
    *val = ip->xattrs[pos].value;
    *len = ip->xattrs[pos].vlen;
    return 0;
}

/* ---- answers ---- */

static void put_attr_fields(recw *w, const fs_attr *a, const char *target)
{
    fsrec_put_attr(w, a);
    if (target)
        recw_str(w, FT_TARGET, target);
}

void fs_put_attr_rec(recw *w, const fs_attr *a, const char *target)
{
    recw_init(w, FSREC_INODE);
    put_attr_fields(w, a, target);
}

void fs_put_inode(recw *w, const fs_inode *ip, int map)
{
    size_t i;

    fs_put_attr_rec(w, &ip->a, ip->target);
    if (!map)
        return;
    recw_u64(w, FT_HASMAP, 1);
    for (i = 0; i < ip->nslots; i++)
        fsrec_put_slot(w, &ip->slots[i]);
    if (ip->inl_len)
        recw_bytes(w, FT_INLINE, ip->inl, ip->inl_len);
}

void fs_put_xattr_list(recw *w, const fs_inode *ip)
{
    uint32_t i;

    recw_init(w, FSREC_XATTRS);
    for (i = 0; i < ip->nxattrs; i++)
        recw_bytes(w, FT_NAME, ip->xattrs[i].name, ip->xattrs[i].nlen);
}

int fs_readdir(fs *f, uint64_t ino, uint64_t cursor, uint32_t max, recw *w)
{
    fs_inode *dp = fs_get(f, ino);
    fs_dir *d;
    size_t i;
    uint32_t n = 0;
    uint64_t last = cursor;
    recw ent;

    if (!dp)
        return -ENOENT;
    if (!dp->dir)
        return -ENOTDIR;
    if (max == 0 || max > FS_READDIR_MAX)
        max = FS_READDIR_MAX;
    d = dp->dir;
    recw_init(w, FSREC_DIRLIST);
    for (i = dir_seek(d, cursor); i < d->nseq; i++) {
        fs_dirent *e = d->by_seq[i].e;
        fs_inode *cp;
        if (!e)
            continue;
        if (n == max)
            break;
        cp = fs_get(f, e->ino);
        if (!cp)
            continue;
        recw_init(&ent, FSREC_INODE);
        recw_bytes(&ent, FT_NAME, e->name, e->namelen);
        put_attr_fields(&ent, &cp->a, NULL);
        recw_rec(w, FT_DIRENT, &ent);
        recw_free(&ent);
        last = e->seq;
        n++;
    }
    /* Skip trailing tombstones so the last page says EOF. */
    while (i < d->nseq && !d->by_seq[i].e)
        i++;
    recw_u64(w, FT_CURSOR, last);
    recw_u64(w, FT_EOF, i >= d->nseq ? 1 : 0);
    return 0;
}
