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
