/* refs.c — chunk reference table (refs.h), a uthash keyed by chunk id. */
#include "server/meta/refs.h"

#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "common/log.h"
#include "common/util.h"

typedef struct ref_entry {
    uint8_t id[CHUNK_ID_LEN];
    uint64_t count;
    UT_hash_handle hh;
} ref_entry;

struct refs {
    ref_entry *head;
    size_t n;
};

refs *refs_new(void)
{
    return xcalloc(1, sizeof(refs));
}

void refs_free(refs *r)
{
    ref_entry *e, *tmp;

    if (!r)
        return;
    HASH_ITER(hh, r->head, e, tmp) {
        HASH_DEL(r->head, e);
        free(e);
    }
    free(r);
}

void refs_add(refs *r, const uint8_t id[CHUNK_ID_LEN])
{
    ref_entry *e;

    HASH_FIND(hh, r->head, id, CHUNK_ID_LEN, e);
    if (e) {
        e->count++;
        return;
    }
    e = xmalloc(sizeof(*e));
    memcpy(e->id, id, CHUNK_ID_LEN);
    e->count = 1;
    HASH_ADD(hh, r->head, id, CHUNK_ID_LEN, e);
    r->n++;
}

void refs_del(refs *r, const uint8_t id[CHUNK_ID_LEN])
{
    ref_entry *e;
    char hex[CHUNK_ID_HEX + 1];

    HASH_FIND(hh, r->head, id, CHUNK_ID_LEN, e);
    if (!e) {
        chunk_id_hex(id, hex);
        log_error("refs: dropping a reference to unreferenced chunk %s", hex);
        return;
    }
    if (--e->count == 0) {
        HASH_DEL(r->head, e);
        free(e);
        r->n--;
    }
}

uint64_t refs_get(const refs *r, const uint8_t id[CHUNK_ID_LEN])
{
    ref_entry *e;

    HASH_FIND(hh, r->head, id, CHUNK_ID_LEN, e);
    return e ? e->count : 0;
}

size_t refs_count(const refs *r)
{
    return r->n;
}
