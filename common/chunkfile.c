/*
 * chunkfile.c — chunk file header and payload codec (see chunkfile.h).
 */
#include "common/chunkfile.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "common/err.h"
#include "common/util.h"

static const uint8_t chunkfile_magic[4] = {'C', 'C', 'H', 'K'};

#define OFF_VERSION 4
#define OFF_FLAGS 5
#define OFF_HDRLEN 6
#define OFF_RAW 8
#define OFF_STORED 16
#define OFF_PCRC 24
#define OFF_ID 28
#define OFF_HCRC 60

void chunkfile_hdr_encode(const chunkfile_hdr *h, uint8_t out[CHUNKFILE_HDR_LEN])
{
    memcpy(out, chunkfile_magic, sizeof chunkfile_magic);
    out[OFF_VERSION] = h->version;
    out[OFF_FLAGS] = h->flags;
    put_le16(out + OFF_HDRLEN, CHUNKFILE_HDR_LEN);
    put_le64(out + OFF_RAW, h->raw_len);
    put_le64(out + OFF_STORED, h->stored_len);
    put_le32(out + OFF_PCRC, h->payload_crc);
    memcpy(out + OFF_ID, h->id, CHUNK_ID_LEN);
    put_le32(out + OFF_HCRC, crc32c(out, OFF_HCRC));
}

int chunkfile_hdr_decode(const uint8_t in[CHUNKFILE_HDR_LEN], chunkfile_hdr *h)
{
    if (memcmp(in, chunkfile_magic, sizeof chunkfile_magic) != 0)
        return CAIRN_ECORRUPT;
    /* The header CRC comes before the version check: a flipped bit in the
     * version byte is corruption, not a file from the future. */
    if (get_le32(in + OFF_HCRC) != crc32c(in, OFF_HCRC))
        return CAIRN_ECORRUPT;
    if (in[OFF_VERSION] != CHUNKFILE_VERSION)
        return CAIRN_EBADVERSION;
    if (get_le16(in + OFF_HDRLEN) != CHUNKFILE_HDR_LEN)
        return CAIRN_ECORRUPT;
    h->version = in[OFF_VERSION];
    h->flags = in[OFF_FLAGS];
    h->raw_len = get_le64(in + OFF_RAW);
    h->stored_len = get_le64(in + OFF_STORED);
    h->payload_crc = get_le32(in + OFF_PCRC);
    memcpy(h->id, in + OFF_ID, CHUNK_ID_LEN);
    if (h->flags & ~CHUNKFILE_F_ZSTD)
        return CAIRN_ECORRUPT;
    if (h->raw_len > CHUNKFILE_MAX_RAW || h->stored_len > CHUNKFILE_MAX_RAW)
        return -EFBIG;
    if (h->flags & CHUNKFILE_F_ZSTD) {
        if (h->stored_len >= h->raw_len)
            return CAIRN_ECORRUPT;
    } else if (h->stored_len != h->raw_len) {
        return CAIRN_ECORRUPT;
    }
    return 0;
}

int chunkfile_check_header(const uint8_t in[CHUNKFILE_HDR_LEN], uint64_t file_len,
                           const uint8_t *id, chunkfile_hdr *h)
{
    if (file_len < CHUNKFILE_HDR_LEN)
        return CAIRN_ECORRUPT;
    int rc = chunkfile_hdr_decode(in, h);
    if (rc < 0)
        return rc;
    if (file_len - CHUNKFILE_HDR_LEN != h->stored_len)
        return CAIRN_ECORRUPT;
    if (id && memcmp(id, h->id, CHUNK_ID_LEN) != 0)
        return CAIRN_ECORRUPT;
    return 0;
}

int chunkfile_check_payload(const chunkfile_hdr *h, const void *payload, size_t len)
{
    if (len != h->stored_len)
        return CAIRN_ECORRUPT;
    if (crc32c(payload, len) != h->payload_crc)
        return CAIRN_ECORRUPT;
    return 0;
}

int chunkfile_check(const void *file, size_t len, const uint8_t *id, chunkfile_hdr *h,
                    const uint8_t **payload)
{
    if (len < CHUNKFILE_HDR_LEN)
        return CAIRN_ECORRUPT;
    int rc = chunkfile_check_header(file, len, id, h);
    if (rc < 0)
        return rc;
    const uint8_t *p = (const uint8_t *)file + CHUNKFILE_HDR_LEN;
    rc = chunkfile_check_payload(h, p, len - CHUNKFILE_HDR_LEN);
    if (rc < 0)
        return rc;
    *payload = p;
    return 0;
}

int chunkfile_encode(const uint8_t id[CHUNK_ID_LEN], const void *data, size_t len, int level,
                     uint8_t hdr[CHUNKFILE_HDR_LEN], const void **stored, size_t *stored_len,
                     void **owned)
{
    chunkfile_hdr h = {.version = CHUNKFILE_VERSION, .raw_len = len};
    memcpy(h.id, id, CHUNK_ID_LEN);
    *owned = NULL;
    *stored = data;
    *stored_len = len;
    if (len > CHUNKFILE_MAX_RAW)
        return -EFBIG;

    if (level > 0 && len > 0) {
        /* Keep the result only if it saves something: the compressed frame
         * must fit in len - 1 bytes, so incompressible data costs one failed
         * attempt and no extra buffer growth. */
        void *z = malloc(len);
        if (!z)
            return -ENOMEM;
        size_t zn = ZSTD_compress(z, len - 1, data, len, level);
        if (ZSTD_isError(zn)) {
            free(z);
        } else {
            h.flags |= CHUNKFILE_F_ZSTD;
            *owned = z;
            *stored = z;
            *stored_len = zn;
        }
    }
    h.stored_len = *stored_len;
    h.payload_crc = crc32c(*stored, *stored_len);
    chunkfile_hdr_encode(&h, hdr);
    return 0;
}

int chunkfile_decode(const chunkfile_hdr *h, const void *payload, size_t len, uint8_t **raw)
{
    *raw = NULL;
    if (!(h->flags & CHUNKFILE_F_ZSTD))
        return 0;
    unsigned long long content = ZSTD_getFrameContentSize(payload, len);
    if (content != h->raw_len)
        return CAIRN_ECORRUPT;
    uint8_t *out = malloc(h->raw_len ? h->raw_len : 1);
    if (!out)
        return -ENOMEM;
    size_t n = ZSTD_decompress(out, h->raw_len, payload, len);
    if (ZSTD_isError(n) || n != h->raw_len) {
        free(out);
        return CAIRN_ECORRUPT;
    }
    *raw = out;
    return 0;
}
