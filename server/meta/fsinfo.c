/* fsinfo.c — DATA/fs.info (fsinfo.h). */
#include "server/meta/fsinfo.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "common/err.h"
#include "common/fsrec.h"
#include "common/hash.h"
#include "common/util.h"

#define FSINFO_FILE_MAX 4096

int fsinfo_check(const fsinfo *fi, char *why, size_t whylen)
{
    if (fi->chunk_size < FSINFO_CHUNK_MIN || fi->chunk_size > FSINFO_CHUNK_MAX) {
        snprintf(why, whylen, "chunk size must be between %u KiB and %u MiB",
                 FSINFO_CHUNK_MIN >> 10, FSINFO_CHUNK_MAX >> 20);
        return -EINVAL;
    }
    if (fi->replicas < 1 || fi->replicas > FSINFO_REPLICAS_MAX) {
        snprintf(why, whylen, "replicas must be between 1 and %u", FSINFO_REPLICAS_MAX);
        return -EINVAL;
    }
    if (fi->min_replicas < 1 || fi->min_replicas > fi->replicas) {
        snprintf(why, whylen, "min-replicas must be between 1 and replicas (%u)", fi->replicas);
        return -EINVAL;
    }
    if (fi->inline_max > FSINFO_INLINE_MAX || fi->inline_max > fi->chunk_size) {
        snprintf(why, whylen, "inline-max must be at most %u KiB and at most the chunk size",
                 FSINFO_INLINE_MAX >> 10);
        return -EINVAL;
    }
    return 0;
}

int fsinfo_new_id(uint8_t fsid[FSINFO_ID_LEN])
{
    size_t got = 0;

    while (got < FSINFO_ID_LEN) {
        ssize_t n = getrandom(fsid + got, FSINFO_ID_LEN - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        got += (size_t)n;
    }
    return 0;
}

void fsinfo_encode(const fsinfo *fi, recw *w)
{
    recw_init(w, FSREC_FSINFO);
    recw_bytes(w, FT_FSID, fi->fsid, FSINFO_ID_LEN);
    recw_u64(w, FT_CHUNK_SIZE, fi->chunk_size);
    recw_u64(w, FT_REPLICAS, fi->replicas);
    recw_u64(w, FT_MIN_REPLICAS, fi->min_replicas);
    recw_u64(w, FT_INLINE_MAX, fi->inline_max);
    recw_i64(w, FT_CTIME, fi->created_ns);
}

int fsinfo_store(const char *path, const fsinfo *fi)
{
    recw w;
    size_t len;
    const uint8_t *p;
    uint8_t *file;
    int rc;

    fsinfo_encode(fi, &w);
    p = recw_finish(&w, &len);
    file = xmalloc(len + 4);
    memcpy(file, p, len);
    put_le32(file + len, crc32c(p, len));
    rc = write_file_atomic(path, file, len + 4);
    free(file);
    recw_free(&w);
    return rc;
}

static int get_u32(const recr *r, uint16_t tag, uint32_t *out)
{
    uint64_t v;

    if (rec_get_u64(r, tag, &v) < 0 || v > UINT32_MAX)
        return CAIRN_ECORRUPT;
    *out = (uint32_t)v;
    return 0;
}

int fsinfo_load(const char *path, fsinfo *out)
{
    uint8_t *data = NULL;
    size_t len;
    const uint8_t *id;
    size_t idlen;
    recr r;
    fsinfo fi;
    char why[128];
    int rc = read_file(path, FSINFO_FILE_MAX, &data, &len);

    if (rc < 0)
        return rc == -EFBIG ? CAIRN_ECORRUPT : rc;
    memset(&fi, 0, sizeof(fi));
    rc = CAIRN_ECORRUPT;
    if (len < REC_HDR_LEN + 4 || crc32c(data, len - 4) != get_le32(data + len - 4))
        goto out;
    if (rec_open(&r, data, len - 4) < 0 || r.type != FSREC_FSINFO)
        goto out;
    if (rec_get_bytes(&r, FT_FSID, &id, &idlen) < 0 || idlen != FSINFO_ID_LEN)
        goto out;
    memcpy(fi.fsid, id, FSINFO_ID_LEN);
    if (get_u32(&r, FT_CHUNK_SIZE, &fi.chunk_size) < 0 ||
        get_u32(&r, FT_REPLICAS, &fi.replicas) < 0 ||
        get_u32(&r, FT_MIN_REPLICAS, &fi.min_replicas) < 0 ||
        get_u32(&r, FT_INLINE_MAX, &fi.inline_max) < 0)
        goto out;
    rec_get_i64(&r, FT_CTIME, &fi.created_ns);
    if (fsinfo_check(&fi, why, sizeof(why)) < 0)
        goto out;
    *out = fi;
    rc = 0;
out:
    free(data);
    return rc;
}

int fsinfo_same_params(const fsinfo *a, const fsinfo *b)
{
    return a->chunk_size == b->chunk_size && a->replicas == b->replicas &&
           a->min_replicas == b->min_replicas && a->inline_max == b->inline_max;
}
