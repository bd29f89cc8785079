/*
 * chunkfile.h — the on-disk format of one stored chunk (DESIGN.md §5).
 *
 * A chunk file is a fixed 64-byte header followed by the stored payload.
 * All integers are little-endian:
 *
 *   off len  field
 *     0   4  magic "CCHK"
 *     4   1  format version (CHUNKFILE_VERSION)
 *     5   1  flags (CHUNKFILE_F_ZSTD: payload is one zstd frame)
 *     6   2  header length (64; lets a later version grow the header)
 *     8   8  raw length: bytes of the chunk itself (what GET returns)
 *    16   8  stored length: bytes of payload following the header
 *    24   4  CRC32C of the stored payload
 *    28  32  chunk id (SHA-256 of the raw bytes), so a file that ends up
 *            under the wrong name is caught instead of served
 *    60   4  CRC32C of header bytes 0..59
 *
 * The payload CRC covers the stored bytes, so a scrub can verify a file
 * without decompressing it. Without CHUNKFILE_F_ZSTD, stored length equals
 * raw length. With it, the payload is stored only when it is smaller than
 * the raw bytes, so stored length < raw length.
 *
 * Verification (chunkfile_check_header, chunkfile_check) accepts a file only
 * if its total length is exactly header + stored length: every truncation
 * and every trailing garbage byte is rejected. Errors: CAIRN_ECORRUPT for
 * any structural or checksum failure, CAIRN_EBADVERSION for a version we do
 * not read, -EFBIG when a length exceeds CHUNKFILE_MAX_RAW (reading such a
 * file would take unbounded memory; it is treated as corrupt by callers).
 *
 * Pure functions over caller buffers; thread-safe; nothing to free except
 * what chunkfile_encode and chunkfile_decode document.
 */
#ifndef CAIRN_CHUNKFILE_H
#define CAIRN_CHUNKFILE_H

#include <stddef.h>
#include <stdint.h>

#include "common/hash.h"

#define CHUNKFILE_HDR_LEN 64
#define CHUNKFILE_VERSION 1
#define CHUNKFILE_F_ZSTD 0x01u
/* Hard ceiling on a chunk's raw and stored length, independent of the
 * server's --max-chunk, so a damaged length field never drives a huge
 * allocation. */
#define CHUNKFILE_MAX_RAW (1ull << 30)

typedef struct chunkfile_hdr {
    uint8_t version;
    uint8_t flags;
    uint64_t raw_len;
    uint64_t stored_len;
    uint32_t payload_crc;
    uint8_t id[CHUNK_ID_LEN];
} chunkfile_hdr;

/* Serialise h into out (computes the header CRC). */
void chunkfile_hdr_encode(const chunkfile_hdr *h, uint8_t out[CHUNKFILE_HDR_LEN]);

/* Parse and validate a header: magic, version, header length, header CRC,
 * length consistency (stored == raw without compression, stored < raw with
 * it, both <= CHUNKFILE_MAX_RAW). Does not look at the payload. */
int chunkfile_hdr_decode(const uint8_t in[CHUNKFILE_HDR_LEN], chunkfile_hdr *h);

/* Validate a header read from a file of file_len bytes that should hold the
 * chunk id: decodes the header, checks the id and that file_len is exactly
 * CHUNKFILE_HDR_LEN + stored_len. id may be NULL to skip the id check. */
int chunkfile_check_header(const uint8_t in[CHUNKFILE_HDR_LEN], uint64_t file_len,
                           const uint8_t *id, chunkfile_hdr *h);

/* Verify a stored payload against a header already checked: length and
 * CRC32C. */
int chunkfile_check_payload(const chunkfile_hdr *h, const void *payload, size_t len);

/* Verify a whole file image (header + payload) of len bytes; on success
 * *h is filled and *payload points into file at the stored payload. */
int chunkfile_check(const void *file, size_t len, const uint8_t *id, chunkfile_hdr *h,
                    const uint8_t **payload);

/* Build the header and stored payload for raw bytes data[len] with id.
 * level 0 stores the bytes as they are (*stored = data, *stored_len = len,
 * *owned = NULL). level > 0 tries zstd at that level and keeps the result
 * only if it is smaller; then *stored points to a malloc'd buffer also
 * returned in *owned, which the caller frees. Returns 0, -EFBIG (len above
 * CHUNKFILE_MAX_RAW) or -ENOMEM. */
int chunkfile_encode(const uint8_t id[CHUNK_ID_LEN], const void *data, size_t len, int level,
                     uint8_t hdr[CHUNKFILE_HDR_LEN], const void **stored, size_t *stored_len,
                     void **owned);

/* Turn a verified stored payload into the raw chunk. Without compression
 * returns 0 and sets *raw = NULL (the payload already is the chunk). With
 * it, decompresses into a malloc'd buffer of exactly h->raw_len bytes
 * (*raw, caller frees); CAIRN_ECORRUPT if the frame does not decode to
 * exactly raw_len bytes, -ENOMEM. */
int chunkfile_decode(const chunkfile_hdr *h, const void *payload, size_t len, uint8_t **raw);

#endif
