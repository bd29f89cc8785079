/*
 * fileops.c — operations built on the file layer's internals: whole-file
 * digest, copy_file_range with chunks shared by reference, SEEK_DATA and
 * SEEK_HOLE; see file.h.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uthash.h>

#include "client/file_i.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

int cfile_sha256(cfile *c, uint8_t out[CHUNK_ID_LEN])
{
    int rc = cfile_flush(c);
    if (rc < 0)
        return rc;
    int changed;
    rc = cfile_open(c, &changed, 0);
    if (rc < 0)
        return rc;
    sha256_ctx *h = sha256_new();
    uint64_t cs = cf_chunk_size(c);
    size_t step = (size_t)MIN(cs, (uint64_t)(1u << 20));
    uint8_t *tmp = xmalloc(step);
    uint64_t off = 0;
    for (;;) {
        long n = cfile_read(c, off, step, tmp, NULL);
        if (n < 0) {
            rc = (int)n;
            break;
        }
        if (n == 0)
            break;
        sha256_update(h, tmp, (size_t)n);
        off += (uint64_t)n;
    }
    free(tmp);
    sha256_final_free(h, out);
    return rc;
}

/* ---- copy_file_range ---- */

/*
 * Make dst's slot `index` the chunk (id, len) of another file, or a hole
 * (id NULL): a PENDING dchunk that the next commit publishes. Takes and
 * drops dst->lock.
 */
static void set_slot(cfile *c, uint64_t index, const uint8_t *id, uint32_t len)
{
    uint64_t cs = cf_chunk_size(c);
    pthread_mutex_lock(&c->lock);
    for (;;) {
        dchunk *d = cf_dchunk_find(c, index);
        if (d && (d->state == D_UPLOADING || d->committing)) {
            pthread_cond_wait(&c->cv, &c->lock);
            continue;
        }
        if (d) {
            if (d->state == D_PENDING)
                c->npending--;
            HASH_DEL(c->dirty, d);
            cf_dchunk_free(c, d);
        }
        break;
    }
    dchunk *d = cf_dchunk_new(c, index);
    d->state = D_PENDING;
    d->len = id ? len : 0;
    d->hole = id == NULL;
    if (id)
        memcpy(d->id, id, CHUNK_ID_LEN);
    /* The whole slot counts as written: a rebase keeps this content. */
    cf_range_add(d, 0, (uint32_t)cs);
    d->merged = 1;
    c->npending++;
    uint64_t end = index * cs + cs;
    if (end > c->size)
        c->size = end;
    if (end > c->wend)
        c->wend = end;
    c->has_local = 1;
    c->mtime = now_realtime_ns();
    pthread_mutex_unlock(&c->lock);
}

long cfile_copy_range(cfile *src, uint64_t soff, cfile *dst, uint64_t doff, uint64_t len)
{
    int rc = cfile_flush(src);
    if (rc < 0)
        return rc;
    uint64_t cs = cf_chunk_size(src);
    pthread_mutex_lock(&src->lock);
    uint64_t size = src->size;
    pthread_mutex_unlock(&src->lock);
    if (soff >= size)
        return 0;
    len = MIN(len, size - soff);
    size_t bufsz = (size_t)MIN(cs, (uint64_t)(1u << 20));
    uint8_t *tmp = NULL;
    uint64_t pos = 0;
    while (pos < len) {
        uint64_t s = soff + pos, d = doff + pos;
        if (s % cs == 0 && d % cs == 0 && len - pos >= cs) {
            uint8_t id[CHUNK_ID_LEN];
            uint32_t slen;
            pthread_mutex_lock(&src->lock);
            int kind = BASE_HOLE;
            dchunk *pd = cf_dchunk_find(src, s / cs);
            int shareable = pd == NULL;
            if (shareable)
                kind = cf_base_of(src, s / cs, id, &slen);
            pthread_mutex_unlock(&src->lock);
            if (shareable && kind != BASE_INLINE) {
                /* Same content, same chunk: only the map changes. */
                set_slot(dst, d / cs, kind == BASE_CHUNK ? id : NULL, kind == BASE_CHUNK ? slen : 0);
                pos += cs;
                continue;
            }
        }
        uint64_t n = MIN(len - pos, (uint64_t)bufsz);
        n = MIN(n, cs - d % cs);
        if (!tmp)
            tmp = xmalloc(bufsz);
        long r = cfile_read(src, s, (size_t)n, tmp, NULL);
        if (r <= 0) {
            rc = r < 0 ? (int)r : 0;
            break;
        }
        long w = cfile_write(dst, d, tmp, (size_t)r);
        if (w < 0) {
            rc = (int)w;
            break;
        }
        pos += (uint64_t)w;
        if (w < r)
            break;
    }
    free(tmp);
    if (pos == 0 && rc < 0)
        return rc;
    return (long)pos;
}

/* ---- SEEK_DATA / SEEK_HOLE ---- */

/* Bytes of slot `index` that hold data, from its start (lock held). */
static uint32_t data_len(cfile *c, uint64_t index)
{
    dchunk *d = cf_dchunk_find(c, index);
    if (d) {
        if (d->state == D_PENDING)
            return d->hole ? 0 : d->len;
        return d->len;
    }
    uint8_t id[CHUNK_ID_LEN];
    uint32_t len;
    int kind = cf_base_of(c, index, id, &len);
    return kind == BASE_HOLE ? 0 : len;
}

long long cfile_seek(cfile *c, uint64_t off, int data)
{
    uint64_t cs = cf_chunk_size(c);
    pthread_mutex_lock(&c->lock);
    uint64_t size = c->size;
    long long res = -ENXIO;
    if (off < size) {
        if (data) {
            for (uint64_t i = off / cs; i * cs < size; i++) {
                uint64_t end = i * cs + data_len(c, i);
                if (end > off && end > i * cs) {
                    res = (long long)MAX(off, i * cs);
                    break;
                }
            }
        } else {
            uint64_t pos = off;
            while (pos < size) {
                uint64_t i = pos / cs;
                uint64_t end = i * cs + data_len(c, i);
                if (pos >= end)
                    break;
                pos = end;
            }
            res = (long long)MIN(pos, size);
        }
    }
    pthread_mutex_unlock(&c->lock);
    return res;
}

uint64_t cfile_stored_bytes(cfile *c, uint64_t size)
{
    pthread_mutex_lock(&c->lock);
    uint64_t n = size;
    if (c->have_base) {
        n = c->is_inline ? c->inl_len : 0;
        for (size_t i = 0; i < c->nslots; i++)
            if (!cf_dchunk_find(c, c->slots[i].index))
                n += c->slots[i].len;
        dchunk *d, *tmp;
        HASH_ITER(hh, c->dirty, d, tmp) {
            if (!(d->state == D_PENDING && d->hole))
                n += d->len;
        }
        n = MIN(n, size);
    }
    pthread_mutex_unlock(&c->lock);
    return n;
}
