/*
 * hash.c — SHA-256 through OpenSSL EVP, CRC32C through isa-l (see hash.h).
 */
#include "common/hash.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <isa-l/crc.h>
#include <openssl/evp.h>

#include "common/util.h"

uint32_t crc32c_update(uint32_t crc, const void *p, size_t n)
{
    /* isa-l's crc32_iscsi neither pre- nor post-inverts; the standard
     * CRC32C does both, and undoing the final inversion of the previous
     * piece is what makes the pieces compose. isa-l takes an int length. */
    unsigned char *c = (unsigned char *)p;
    uint32_t state = ~crc;

    while (n > 0) {
        int len = n > (size_t)INT_MAX ? INT_MAX & ~63 : (int)n;

        state = crc32_iscsi(c, len, state);
        c += len;
        n -= (size_t)len;
    }
    return ~state;
}

uint32_t crc32c(const void *p, size_t n)
{
    return crc32c_update(0, p, n);
}

struct sha256_ctx {
    EVP_MD_CTX *md;
};

static pthread_once_t md_once = PTHREAD_ONCE_INIT;
static EVP_MD *md_sha256;

/* Fetching the implementation once avoids a provider lookup per digest. */
static void md_init(void)
{
    md_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static const EVP_MD *sha256_md(void)
{
    pthread_once(&md_once, md_init);
    return md_sha256 ? md_sha256 : EVP_sha256();
}

static void evp_fail(const char *what)
{
    fprintf(stderr, "cairn: OpenSSL %s failed\n", what);
    abort();
}

void sha256(const void *p, size_t n, uint8_t out[CHUNK_ID_LEN])
{
    unsigned int len = 0;

    if (!EVP_Digest(p, n, out, &len, sha256_md(), NULL) || len != CHUNK_ID_LEN)
        evp_fail("EVP_Digest");
}

sha256_ctx *sha256_new(void)
{
    sha256_ctx *c = xmalloc(sizeof(*c));

    c->md = EVP_MD_CTX_new();
    if (!c->md)
        evp_fail("EVP_MD_CTX_new");
    if (!EVP_DigestInit_ex(c->md, sha256_md(), NULL))
        evp_fail("EVP_DigestInit_ex");
    return c;
}

void sha256_update(sha256_ctx *c, const void *p, size_t n)
{
    if (n && !EVP_DigestUpdate(c->md, p, n))
        evp_fail("EVP_DigestUpdate");
}

void sha256_final_free(sha256_ctx *c, uint8_t out[CHUNK_ID_LEN])
{
    unsigned int len = 0;

    if (!EVP_DigestFinal_ex(c->md, out, &len) || len != CHUNK_ID_LEN)
        evp_fail("EVP_DigestFinal_ex");
    EVP_MD_CTX_free(c->md);
    free(c);
}

int is_all_zero(const void *p, size_t n)
{
    static const uint8_t zeros[16];
    const uint8_t *c = p;

    /* Once the first 16 bytes are known zero, comparing the buffer with
     * itself shifted by 16 covers the rest with libc's vectorized memcmp. */
    if (n <= sizeof(zeros))
        return memcmp(c, zeros, n) == 0;
    if (memcmp(c, zeros, sizeof(zeros)) != 0)
        return 0;
    return memcmp(c, c + sizeof(zeros), n - sizeof(zeros)) == 0;
}

void chunk_id_hex(const uint8_t id[CHUNK_ID_LEN], char out[CHUNK_ID_HEX + 1])
{
    hex_encode(id, CHUNK_ID_LEN, out);
}

int chunk_id_parse(const char *hex, uint8_t id[CHUNK_ID_LEN])
{
    if (!hex || strnlen(hex, CHUNK_ID_HEX + 1) != CHUNK_ID_HEX)
        return -EINVAL;
    return hex_decode(hex, CHUNK_ID_HEX, id, CHUNK_ID_LEN);
}
