/*
 * hash.h — SHA-256 (OpenSSL EVP) and CRC32C (isa-l) wrappers.
 *
 * CRC32C is the Castagnoli CRC with the standard init/final inversion
 * (crc32c("123456789") == 0xE3069283). crc32c_update lets callers checksum
 * in pieces: crc = crc32c_update(0, a, na); crc = crc32c_update(crc, b, nb)
 * equals crc32c over a||b.
 *
 * Chunk ids are SHA-256 digests (32 bytes, CHUNK_ID_LEN), written as 64
 * lowercase hex characters in URLs and logs.
 * All functions are thread-safe.
 */
#ifndef CAIRN_HASH_H
#define CAIRN_HASH_H

#include <stddef.h>
#include <stdint.h>

#define CHUNK_ID_LEN 32
#define CHUNK_ID_HEX 64

uint32_t crc32c(const void *p, size_t n);
uint32_t crc32c_update(uint32_t crc, const void *p, size_t n);

void sha256(const void *p, size_t n, uint8_t out[CHUNK_ID_LEN]);

/* Incremental SHA-256 (opaque handle). */
typedef struct sha256_ctx sha256_ctx;
sha256_ctx *sha256_new(void);
void sha256_update(sha256_ctx *c, const void *p, size_t n);
/* Writes the digest and frees the context. */
void sha256_final_free(sha256_ctx *c, uint8_t out[CHUNK_ID_LEN]);

/* True if all n bytes are zero (fast path for hole detection). */
int is_all_zero(const void *p, size_t n);

/* 64-char lowercase hex + NUL. */
void chunk_id_hex(const uint8_t id[CHUNK_ID_LEN], char out[CHUNK_ID_HEX + 1]);
/* Parse exactly 64 hex chars; 0 or -EINVAL. */
int chunk_id_parse(const char *hex, uint8_t id[CHUNK_ID_LEN]);

#endif
