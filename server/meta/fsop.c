/*
 * fsop.c — op records of the namespace and their apply functions (fs.h).
 *
 * Each apply_* function first checks everything that can fail, then
 * mutates; nothing it does after the checks can fail (allocation failures
 * abort, CONVENTIONS 9), so an op is applied entirely or not at all. The
 * same functions run live (under the namespace write lock, before the
 * record goes to the WAL) and on replay.
 */
#include "server/meta/fs_i.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

#define SA_ALL (SA_MODE | SA_UID | SA_GID | SA_SIZE | SA_ATIME | SA_MTIME | SA_ATIME_NOW | \
                SA_MTIME_NOW | SA_CTIME)

/* ---- encoding ---- */

void fs_op_encode(const fs_op *op, recw *w)
{
    size_t i;

    recw_init(w, op->type);
    recw_u64(w, FT_OP_REPLICA, op->replica);
    recw_i64(w, FT_OP_NOW, op->now);
    switch (op->type) {
    case FSOP_INIT:
        recw_u64(w, FT_MODE, op->mode);
        recw_u64(w, FT_UID, op->uid);
        recw_u64(w, FT_GID, op->gid);
        recw_u64(w, FT_GEN, op->gen);
        break;
    case FSOP_CREATE:
        recw_u64(w, FT_PARENT, op->parent);
        recw_str(w, FT_NAME, op->name);
        recw_u64(w, FT_INO, op->ino);
        recw_u64(w, FT_GEN, op->gen);
        recw_u64(w, FT_MODE, op->mode);
        recw_u64(w, FT_UID, op->uid);
        recw_u64(w, FT_GID, op->gid);
        recw_u64(w, FT_UMASK, op->umask);
        recw_u64(w, FT_RDEV, op->rdev);
        recw_u64(w, FT_FLAGS, op->flags);
        if (S_ISLNK(op->mode))
            recw_str(w, FT_TARGET, op->target);
        break;
    case FSOP_LINK:
        recw_u64(w, FT_INO, op->ino);
        recw_u64(w, FT_NEWPARENT, op->newparent);
        recw_str(w, FT_NEWNAME, op->newname);
        break;
    case FSOP_UNLINK:
    case FSOP_RMDIR:
        recw_u64(w, FT_PARENT, op->parent);
        recw_str(w, FT_NAME, op->name);
        if (op->keep)
            recw_u64(w, FT_OP_KEEP, op->keep);
        break;
    case FSOP_RENAME:
        recw_u64(w, FT_PARENT, op->parent);
        recw_str(w, FT_NAME, op->name);
        recw_u64(w, FT_NEWPARENT, op->newparent);
        recw_str(w, FT_NEWNAME, op->newname);
        recw_u64(w, FT_FLAGS, op->flags);
        if (op->keep)
            recw_u64(w, FT_OP_KEEP, op->keep);
        break;
    case FSOP_SETATTR:
        recw_u64(w, FT_INO, op->ino);
        recw_u64(w, FT_VALID, op->valid);
        recw_u64(w, FT_MODE, op->mode);
        recw_u64(w, FT_UID, op->uid);
        recw_u64(w, FT_GID, op->gid);
        recw_u64(w, FT_SIZE, op->size);
        recw_i64(w, FT_ATIME, op->atime);
        recw_i64(w, FT_MTIME, op->mtime);
        recw_i64(w, FT_CTIME, op->ctime);
        break;
    case FSOP_COMMIT:
        recw_u64(w, FT_INO, op->ino);
        recw_u64(w, FT_SIZE, op->size);
        if (op->has_mtime)
            recw_i64(w, FT_MTIME, op->mtime);
        if (op->has_atime)
            recw_i64(w, FT_ATIME, op->atime);
        if (op->has_mode)
            recw_u64(w, FT_MODE, op->mode);
        for (i = 0; i < op->nslots; i++)
            fsrec_put_slot(w, &op->slots[i]);
        if (op->has_inline)
            recw_bytes(w, FT_INLINE, op->value, op->value_len);
        if (op->clear_inline)
            recw_u64(w, FT_CLEAR_INLINE, 1);
        break;
    case FSOP_XATTR_SET:
        recw_u64(w, FT_INO, op->ino);
        recw_str(w, FT_NAME, op->name);
        recw_bytes(w, FT_VALUE, op->value, op->value_len);
        recw_u64(w, FT_FLAGS, op->flags);
        break;
    case FSOP_XATTR_REMOVE:
        recw_u64(w, FT_INO, op->ino);
        recw_str(w, FT_NAME, op->name);
        break;
    case FSOP_ORPHAN_FREE:
        recw_u64(w, FT_INO, op->ino);
        break;
    default:
        break;
    }
}

/* ---- decoding ---- */

static int get_str(const recr *r, uint16_t tag, char *out, size_t max)
{
    const uint8_t *p;
    size_t n;
    int rc = rec_get_bytes(r, tag, &p, &n);

    if (rc == -ENOENT) {
        out[0] = '\0';
        return 0;
    }
    if (rc < 0)
        return rc;
    if (n > max)
        return -ENAMETOOLONG;
    if (memchr(p, '\0', n))
        return -EINVAL;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

static uint64_t opt_u64(const recr *r, uint16_t tag)
{
    uint64_t v = 0;

    rec_get_u64(r, tag, &v);
    return v;
}

static int64_t opt_i64(const recr *r, uint16_t tag)
{
    int64_t v = 0;

    rec_get_i64(r, tag, &v);
    return v;
}

/* Required fields per op type. */
static int op_require(const recr *r, uint8_t type)
{
    static const struct {
        uint8_t type;
        uint16_t tags[4];
    } req[] = {
        {FSOP_INIT, {FT_MODE}},
        {FSOP_CREATE, {FT_PARENT, FT_NAME, FT_INO, FT_MODE}},
        {FSOP_LINK, {FT_INO, FT_NEWPARENT, FT_NEWNAME}},
        {FSOP_UNLINK, {FT_PARENT, FT_NAME}},
        {FSOP_RMDIR, {FT_PARENT, FT_NAME}},
        {FSOP_RENAME, {FT_PARENT, FT_NAME, FT_NEWPARENT, FT_NEWNAME}},
        {FSOP_SETATTR, {FT_INO, FT_VALID}},
        {FSOP_COMMIT, {FT_INO, FT_SIZE}},
        {FSOP_XATTR_SET, {FT_INO, FT_NAME, FT_VALUE}},
        {FSOP_XATTR_REMOVE, {FT_INO, FT_NAME}},
        {FSOP_ORPHAN_FREE, {FT_INO}},
    };
    size_t i, j;

    if (!rec_has(r, FT_OP_REPLICA) || !rec_has(r, FT_OP_NOW))
        return CAIRN_EPROTO;
    for (i = 0; i < ARRAY_LEN(req); i++) {
        if (req[i].type != type)
            continue;
        for (j = 0; j < ARRAY_LEN(req[i].tags) && req[i].tags[j]; j++)
            if (!rec_has(r, req[i].tags[j]))
                return CAIRN_EPROTO;
        return 0;
    }
    return CAIRN_EPROTO;
}

int fs_op_decode(const uint8_t *rec, size_t len, fs_op *op)
{
    recr r;
    rec_iter it;
    uint16_t tag;
    const uint8_t *p;
    size_t n, cnt, i = 0;
    int rc;

    memset(op, 0, sizeof(*op));
    rc = rec_open(&r, rec, len);
    if (rc < 0)
        return rc;
    op->type = r.type;
    rc = op_require(&r, r.type);
    if (rc < 0)
        return rc;
    op->replica = (uint32_t)opt_u64(&r, FT_OP_REPLICA);
    op->now = opt_i64(&r, FT_OP_NOW);
    op->ino = opt_u64(&r, FT_INO);
    op->parent = opt_u64(&r, FT_PARENT);
    op->newparent = opt_u64(&r, FT_NEWPARENT);
    op->gen = opt_u64(&r, FT_GEN);
    op->rdev = opt_u64(&r, FT_RDEV);
    op->size = opt_u64(&r, FT_SIZE);
    op->valid = opt_u64(&r, FT_VALID);
    op->flags = opt_u64(&r, FT_FLAGS);
    op->keep = opt_u64(&r, FT_OP_KEEP);
    if (opt_u64(&r, FT_MODE) > UINT32_MAX || opt_u64(&r, FT_UID) > UINT32_MAX ||
        opt_u64(&r, FT_GID) > UINT32_MAX || opt_u64(&r, FT_UMASK) > UINT32_MAX)
        return -EINVAL;
    op->mode = (uint32_t)opt_u64(&r, FT_MODE);
    op->uid = (uint32_t)opt_u64(&r, FT_UID);
    op->gid = (uint32_t)opt_u64(&r, FT_GID);
    op->umask = (uint32_t)opt_u64(&r, FT_UMASK);
    op->atime = opt_i64(&r, FT_ATIME);
    op->mtime = opt_i64(&r, FT_MTIME);
    op->has_mtime = rec_has(&r, FT_MTIME);
    op->has_atime = rec_has(&r, FT_ATIME);
    op->has_mode = rec_has(&r, FT_MODE);
    op->clear_inline = opt_u64(&r, FT_CLEAR_INLINE) != 0;
    op->ctime = opt_i64(&r, FT_CTIME);
    if (op->type == FSOP_XATTR_SET || op->type == FSOP_XATTR_REMOVE)
        rc = get_str(&r, FT_NAME, op->name, FS_XATTR_NAME_MAX);
    else
        rc = get_str(&r, FT_NAME, op->name, FS_NAME_MAX);
    if (rc == 0)
        rc = get_str(&r, FT_NEWNAME, op->newname, FS_NAME_MAX);
    if (rc == 0)
        rc = get_str(&r, FT_TARGET, op->target, FS_SYMLINK_MAX);
    if (rc < 0)
        return rc;
    if (rec_get_bytes(&r, FT_VALUE, &op->value, &op->value_len) == -ENOENT &&
        rec_get_bytes(&r, FT_INLINE, &op->value, &op->value_len) == 0)
        op->has_inline = 1;
    cnt = rec_count(&r, FT_SLOT);
    if (cnt) {
        /* Bounded by the record length (a slot is 50 bytes on the wire). */
        op->slots_owned = xmalloc(cnt * sizeof(fs_slot));
        rec_iter_init(&it);
        while (rec_next(&r, &it, &tag, &p, &n)) {
            if (tag != FT_SLOT)
                continue;
            rc = fsrec_slot_decode(p, n, &op->slots_owned[i]);
            if (rc < 0) {
                fs_op_release(op);
                return rc;
            }
            i++;
        }
        op->slots = op->slots_owned;
        op->nslots = i;
    }
    return 0;
}

void fs_op_release(fs_op *op)
{
    free(op->slots_owned);
    op->slots_owned = NULL;
    op->slots = NULL;
    op->nslots = 0;
}

/* ---- helpers ---- */

static void res_add(fs_result *res, const fs_inode *ip)
{
    if (res && res->n < ARRAY_LEN(res->attr))
        res->attr[res->n++] = ip->a;
}

static void touch_dir(fs_inode *dp, const fs_op *op)
{
    dp->a.mtime = dp->a.ctime = op->now;
    fsi_bump(dp, op->replica);
}

static void touch_c(fs_inode *ip, const fs_op *op)
{
    ip->a.ctime = op->now;
    fsi_bump(ip, op->replica);
}

static int get_dir(fs *f, uint64_t ino, fs_inode **out)
{
    fs_inode *dp = fs_get(f, ino);

    if (!dp)
        return -ENOENT;
    if (!dp->dir)
        return -ENOTDIR;
    *out = dp;
    return 0;
}

/* Whether anc is dir itself or one of its ancestors. */
static int is_ancestor(fs *f, uint64_t anc, const fs_inode *dir)
{
    uint64_t steps = 0;

    while (dir) {
        if (dir->a.ino == anc)
            return 1;
        if (dir->a.ino == FS_ROOT_INO || ++steps > f->ninodes)
            return 0;
        dir = fs_get(f, dir->dir->parent);
    }
    return 0;
}

/* An inode whose last link went away is freed, unless it is the regular
 * file the op asked to keep (a client session holds it open): that one
 * becomes an orphan, freed later by FSOP_ORPHAN_FREE. */
static void drop_if_unlinked(fs *f, fs_inode *ip, uint64_t keep)
{
    if (ip->a.nlink != 0)
        return;
    if (keep != 0 && keep == ip->a.ino && S_ISREG(ip->a.mode))
        fsi_orphan_add(f, ip);
    else
        fsi_inode_free(f, ip);
}

/* ---- apply functions ---- */

static int apply_init(fs *f, const fs_op *op, fs_result *res)
{
    fs_inode *ip;

    if (fs_get(f, FS_ROOT_INO))
        return -EEXIST;
    if ((op->mode & ~07777u) != 0)
        return -EINVAL;
    ip = fsi_inode_new(f, FS_ROOT_INO, S_IFDIR | op->mode);
    ip->a.uid = op->uid;
    ip->a.gid = op->gid;
    ip->a.gen = op->gen;
    ip->a.nlink = 2;
    ip->a.atime = ip->a.mtime = ip->a.ctime = op->now;
    ip->dir->parent = FS_ROOT_INO;
    fsi_bump(ip, op->replica);
    res_add(res, ip);
    return 0;
}

static int valid_type(uint32_t fmt)
{
    switch (fmt) {
    case S_IFREG: case S_IFDIR: case S_IFLNK: case S_IFIFO:
    case S_IFCHR: case S_IFBLK: case S_IFSOCK:
        return 1;
    default:
        return 0;
    }
}

static int apply_create(fs *f, const fs_op *op, fs_result *res)
{
    fs_inode *dp, *ip;
    fs_dirent *e;
    uint32_t fmt = op->mode & S_IFMT, perm = op->mode & 07777;
    size_t nlen = strlen(op->name);
    int rc;

    if ((rc = get_dir(f, op->parent, &dp)) < 0)
        return rc;
    if ((rc = fs_name_check(op->name, nlen)) < 0)
        return rc;
    if (!valid_type(fmt) || (op->mode & ~(S_IFMT | 07777u)) || (op->flags & ~(uint64_t)FSC_EXCL))
        return -EINVAL;
    e = fsi_dir_find(dp->dir, op->name, nlen);
    if (e) {
        ip = fs_get(f, e->ino);
        if (ip && fmt == S_IFREG && S_ISREG(ip->a.mode) && !(op->flags & FSC_EXCL)) {
            if (res) {
                res->existed = 1;
                res_add(res, ip);
                res_add(res, dp);
            }
            return 1;   /* nothing changed */
        }
        return -EEXIST;
    }
    if (fmt == S_IFLNK && op->target[0] == '\0')
        return -ENOENT;
    if (op->ino <= FS_ROOT_INO || fs_get(f, op->ino))
        return CAIRN_EPROTO;
    if (fmt == S_IFDIR && dp->a.nlink == UINT32_MAX)
        return -EMLINK;

    perm &= ~op->umask;
    if (fmt == S_IFLNK)
        perm = 0777;
    ip = fsi_inode_new(f, op->ino, fmt | perm);
    ip->a.gen = op->gen;
    ip->a.uid = op->uid;
    ip->a.gid = op->gid;
    if (dp->a.mode & S_ISGID) {
        /* BSD group semantics on setgid directories, as Linux does. */
        ip->a.gid = dp->a.gid;
        if (fmt == S_IFDIR)
            ip->a.mode |= S_ISGID;
    }
    ip->a.nlink = fmt == S_IFDIR ? 2 : 1;
    if (fmt == S_IFCHR || fmt == S_IFBLK)
        ip->a.rdev = op->rdev;
    ip->a.atime = ip->a.mtime = ip->a.ctime = op->now;
    if (fmt == S_IFLNK) {
        ip->target = xstrdup(op->target);
        ip->a.size = strlen(op->target);
    }
    if (ip->dir)
        ip->dir->parent = dp->a.ino;
    fsi_bump(ip, op->replica);
    fsi_dir_add(f, dp->dir, op->name, nlen, ip->a.ino, 0);
    if (fmt == S_IFDIR) {
        dp->a.nlink++;
        dp->dir->subdirs++;
    }
    touch_dir(dp, op);
    res_add(res, ip);
    res_add(res, dp);
    return 0;
}

static int apply_link(fs *f, const fs_op *op, fs_result *res)
{
    fs_inode *ip = fs_get(f, op->ino), *np;
    size_t nlen = strlen(op->newname);
    int rc;

    if (!ip)
        return -ENOENT;
    if ((rc = get_dir(f, op->newparent, &np)) < 0)
        return rc;
    if ((rc = fs_name_check(op->newname, nlen)) < 0)
        return rc;
    if (ip->dir)
        return -EPERM;
    if (ip->a.nlink == 0)
        return -ENOENT;   /* an orphan cannot get a name again, as link(2) */
    if (fsi_dir_find(np->dir, op->newname, nlen))
        return -EEXIST;
    if (ip->a.nlink >= FS_LINK_MAX)
        return -EMLINK;
    fsi_dir_add(f, np->dir, op->newname, nlen, ip->a.ino, 0);
    ip->a.nlink++;
    touch_c(ip, op);
    touch_dir(np, op);
    res_add(res, ip);
    res_add(res, np);
    return 0;
}

static int apply_unlink(fs *f, const fs_op *op, fs_result *res, int rmdir)
{
    fs_inode *dp, *ip;
    fs_dirent *e;
    size_t nlen = strlen(op->name);
    int rc;

    if ((rc = get_dir(f, op->parent, &dp)) < 0)
        return rc;
    if ((rc = fs_name_check(op->name, nlen)) < 0)
        return rc;
    e = fsi_dir_find(dp->dir, op->name, nlen);
    if (!e)
        return -ENOENT;
    ip = fs_get(f, e->ino);
    if (!ip)
        return -EIO;
    if (rmdir && !ip->dir)
        return -ENOTDIR;
    if (!rmdir && ip->dir)
        return -EISDIR;
    if (rmdir && ip->dir->live > 0)
        return -ENOTEMPTY;

    fsi_dir_del(f, dp->dir, e);
    if (rmdir) {
        dp->a.nlink--;
        dp->dir->subdirs--;
        ip->a.nlink = 0;
    } else {
        ip->a.nlink--;
    }
    touch_dir(dp, op);
    touch_c(ip, op);
    res_add(res, dp);
    res_add(res, ip);
    drop_if_unlinked(f, ip, op->keep);
    return 0;
}

static int apply_rename(fs *f, const fs_op *op, fs_result *res)
{
    fs_inode *sp, *np, *src, *dst = NULL;
    fs_dirent *se, *de;
    size_t slen = strlen(op->name), nlen = strlen(op->newname);
    uint64_t tmp;
    int rc;

    if ((rc = get_dir(f, op->parent, &sp)) < 0)
        return rc;
    if ((rc = get_dir(f, op->newparent, &np)) < 0)
        return rc;
    if ((rc = fs_name_check(op->name, slen)) < 0)
        return rc;
    if ((rc = fs_name_check(op->newname, nlen)) < 0)
        return rc;
    if ((op->flags & ~(uint64_t)3) || op->flags == 3)
        return -EINVAL;
    se = fsi_dir_find(sp->dir, op->name, slen);
    if (!se)
        return -ENOENT;
    src = fs_get(f, se->ino);
    if (!src)
        return -EIO;
    de = fsi_dir_find(np->dir, op->newname, nlen);
    if (de) {
        dst = fs_get(f, de->ino);
        if (!dst)
            return -EIO;
    }
    if ((op->flags & FS_RENAME_NOREPLACE) && de)
        return -EEXIST;
    if ((op->flags & FS_RENAME_EXCHANGE) && !de)
        return -ENOENT;
    if (dst == src) {
        /* Same name or two hard links of one inode: POSIX says rename
         * does nothing and succeeds. */
        res_add(res, src);
        return 1;
    }
    if (src->dir && is_ancestor(f, src->a.ino, np))
        return -EINVAL;
    if ((op->flags & FS_RENAME_EXCHANGE) && dst->dir && is_ancestor(f, dst->a.ino, sp))
        return -EINVAL;

    if (op->flags & FS_RENAME_EXCHANGE) {
        tmp = se->ino;
        se->ino = de->ino;
        de->ino = tmp;
        if (sp != np) {
            if (src->dir) {
                sp->a.nlink--; sp->dir->subdirs--;
                np->a.nlink++; np->dir->subdirs++;
                src->dir->parent = np->a.ino;
            }
            if (dst->dir) {
                np->a.nlink--; np->dir->subdirs--;
                sp->a.nlink++; sp->dir->subdirs++;
                dst->dir->parent = sp->a.ino;
            }
        }
        touch_c(src, op);
        touch_c(dst, op);
        touch_dir(sp, op);
        if (np != sp)
            touch_dir(np, op);
        res_add(res, src);
        res_add(res, dst);
        res_add(res, sp);
        if (np != sp)
            res_add(res, np);
        return 0;
    }

    if (dst) {
        if (src->dir && !dst->dir)
            return -ENOTDIR;
        if (!src->dir && dst->dir)
            return -EISDIR;
        if (dst->dir && dst->dir->live > 0)
            return -ENOTEMPTY;
    }

    if (dst) {
        fsi_dir_del(f, np->dir, de);
        if (dst->dir) {
            np->a.nlink--;
            np->dir->subdirs--;
            dst->a.nlink = 0;
        } else {
            dst->a.nlink--;
        }
        touch_c(dst, op);
    }
    fsi_dir_del(f, sp->dir, se);
    fsi_dir_add(f, np->dir, op->newname, nlen, src->a.ino, 0);
    if (src->dir && sp != np) {
        sp->a.nlink--; sp->dir->subdirs--;
        np->a.nlink++; np->dir->subdirs++;
        src->dir->parent = np->a.ino;
    }
    touch_c(src, op);
    touch_dir(sp, op);
    if (np != sp)
        touch_dir(np, op);
    res_add(res, src);
    if (dst)
        res_add(res, dst);
    res_add(res, sp);
    if (np != sp)
        res_add(res, np);
    if (dst)
        drop_if_unlinked(f, dst, op->keep);
    return 0;
}

static int apply_setattr(fs *f, const fs_op *op, fs_result *res)
{
    fs_inode *ip = fs_get(f, op->ino);
    uint64_t v = op->valid;

    if (!ip)
        return -ENOENT;
    if (v & ~(uint64_t)SA_ALL)
        return -EINVAL;
    if ((v & SA_MODE) && (op->mode & ~07777u))
        return -EINVAL;
    if (v & SA_SIZE) {
        if (ip->dir)
            return -EISDIR;
        if (!S_ISREG(ip->a.mode))
            return -EINVAL;
        if (op->size > FS_MAX_FILE_SIZE)
            return -EFBIG;
    }

    if (v & SA_MODE)
        ip->a.mode = (ip->a.mode & S_IFMT) | op->mode;
    if (v & SA_UID)
        ip->a.uid = op->uid;
    if (v & SA_GID)
        ip->a.gid = op->gid;
    if (v & SA_SIZE) {
        if (op->size < ip->a.size)
            fsi_trim(f, ip, op->size);
        if (op->size != ip->a.size && !(v & (SA_MTIME | SA_MTIME_NOW)))
            ip->a.mtime = op->now;
        ip->a.size = op->size;
    }
    if (v & SA_ATIME_NOW)
        ip->a.atime = op->now;
    else if (v & SA_ATIME)
        ip->a.atime = op->atime;
    if (v & SA_MTIME_NOW)
        ip->a.mtime = op->now;
    else if (v & SA_MTIME)
        ip->a.mtime = op->mtime;
    ip->a.ctime = (v & SA_CTIME) ? op->ctime : op->now;
    fsi_bump(ip, op->replica);
    res_add(res, ip);
    return 0;
}

static int apply_commit(fs *f, const fs_op *op, fs_result *res)
{
    fs_inode *ip = fs_get(f, op->ino);
    fs_slot *merged = NULL;
    size_t i, j, n = 0, cap;
    uint64_t c = f->chunk_size;

    if (!ip)
        return -ENOENT;
    if (ip->dir)
        return -EISDIR;
    if (!S_ISREG(ip->a.mode))
        return -EINVAL;
    if (op->size > FS_MAX_FILE_SIZE)
        return -EFBIG;
    if (op->has_inline) {
        if (op->nslots || op->clear_inline)
            return -EINVAL;
        if (op->value_len > f->inline_max)
            return -EFBIG;
    }
    for (i = 0; i < op->nslots; i++) {
        const fs_slot *s = &op->slots[i];
        if (s->len > c)
            return -EINVAL;
        if (s->index > (FS_MAX_FILE_SIZE - s->len) / c)
            return -EFBIG;
        if (i > 0 && s->index <= op->slots[i - 1].index)
            return -EINVAL;
    }
    for (i = 0, n = 0; i < op->nslots; i++)
        n += op->slots[i].len > 0;
    if (ip->nslots + n > FS_MAX_SLOTS)
        return -EFBIG;
    n = 0;

    if (op->has_inline) {
        fsi_set_slots(f, ip, NULL, 0);
        fsi_set_inline(f, ip, op->value, (uint32_t)op->value_len);
    } else if (op->nslots || op->clear_inline) {
        fsi_set_inline(f, ip, NULL, 0);
        cap = ip->nslots + op->nslots;
        merged = cap ? xmalloc(cap * sizeof(fs_slot)) : NULL;
        for (i = 0, j = 0; i < ip->nslots || j < op->nslots;) {
            if (j == op->nslots || (i < ip->nslots && ip->slots[i].index < op->slots[j].index)) {
                merged[n++] = ip->slots[i++];
            } else {
                if (i < ip->nslots && ip->slots[i].index == op->slots[j].index)
                    i++;
                if (op->slots[j].len > 0)
                    merged[n++] = op->slots[j];
                j++;
            }
        }
        fsi_set_slots(f, ip, merged, n);
    }
    fsi_trim(f, ip, op->size);
    ip->a.size = op->size;
    ip->a.mtime = op->has_mtime ? op->mtime : op->now;
    if (op->has_atime)
        ip->a.atime = op->atime;
    if (op->has_mode)
        ip->a.mode = (ip->a.mode & S_IFMT) | (op->mode & 07777);
    ip->a.ctime = op->now;
    fsi_bump(ip, op->replica);
    res_add(res, ip);
    return 0;
}

static int apply_xattr_set(fs *f, const fs_op *op, fs_result *res)
{
    fs_inode *ip = fs_get(f, op->ino);
    size_t nlen = strlen(op->name);
    uint32_t pos;
    uint64_t bytes;
    int exists, rc;

    if (!ip)
        return -ENOENT;
    if ((rc = fs_xattr_name_check(op->name, nlen)) < 0)
        return rc;
    if ((op->flags & ~(uint64_t)3) || op->flags == 3)
        return -EINVAL;
    if (op->value_len > FS_XATTR_VALUE_MAX)
        return -E2BIG;
    exists = fsi_xattr_find(ip, op->name, &pos);
    if ((op->flags & FS_XATTR_CREATE) && exists)
        return -EEXIST;
    if ((op->flags & FS_XATTR_REPLACE) && !exists)
        return -ENODATA;
    if (!exists && ip->xattr_names + nlen + 1 > FS_XATTR_LIST_MAX)
        return -ENOSPC;
    bytes = ip->xattr_bytes - (exists ? ip->xattrs[pos].vlen : 0) + op->value_len;
    if (bytes > FS_XATTR_TOTAL_MAX)
        return -ENOSPC;
    fsi_xattr_put(ip, op->name, op->value, (uint32_t)op->value_len);
    touch_c(ip, op);
    res_add(res, ip);
    return 0;
}

static int apply_xattr_remove(fs *f, const fs_op *op, fs_result *res)
{
    fs_inode *ip = fs_get(f, op->ino);
    uint32_t pos;
    int rc;

    if (!ip)
        return -ENOENT;
    if ((rc = fs_xattr_name_check(op->name, strlen(op->name))) < 0)
        return rc;
    if (!fsi_xattr_find(ip, op->name, &pos))
        return -ENODATA;
    fsi_xattr_del(ip, pos);
    touch_c(ip, op);
    res_add(res, ip);
    return 0;
}

static int apply_orphan_free(fs *f, const fs_op *op, fs_result *res)
{
    fs_inode *ip = fs_get(f, op->ino);

    if (!ip)
        return -ENOENT;
    if (!ip->orphan)
        return -EINVAL;
    res_add(res, ip);
    fsi_inode_free(f, ip);
    return 0;
}

static int apply_op(fs *f, const fs_op *op, fs_result *res)
{
    switch (op->type) {
    case FSOP_INIT: return apply_init(f, op, res);
    case FSOP_CREATE: return apply_create(f, op, res);
    case FSOP_LINK: return apply_link(f, op, res);
    case FSOP_UNLINK: return apply_unlink(f, op, res, 0);
    case FSOP_RMDIR: return apply_unlink(f, op, res, 1);
    case FSOP_RENAME: return apply_rename(f, op, res);
    case FSOP_SETATTR: return apply_setattr(f, op, res);
    case FSOP_COMMIT: return apply_commit(f, op, res);
    case FSOP_XATTR_SET: return apply_xattr_set(f, op, res);
    case FSOP_XATTR_REMOVE: return apply_xattr_remove(f, op, res);
    case FSOP_ORPHAN_FREE: return apply_orphan_free(f, op, res);
    default: return CAIRN_EPROTO;
    }
}

int fs_apply(fs *f, const uint8_t *rec, size_t len, fs_result *res)
{
    fs_op *op = xmalloc(sizeof(*op));
    int rc;

    if (res)
        memset(res, 0, sizeof(*res));
    rc = fs_op_decode(rec, len, op);
    if (rc < 0)
        goto out;
    rc = apply_op(f, op, res);
    if (rc >= 0) {
        if (res)
            res->changed = rc == 0;
        if (rc == 0)
            f->applied[op->type - FSOP_INIT]++;
        rc = 0;
    }
out:
    fs_op_release(op);
    free(op);
    return rc;
}
