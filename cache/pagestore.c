/*
 * pagestore.c — pages whose memory goes back to the kernel (see pagestore.h).
 *
 * Slabs of SLAB_PAGES pages are mapped as needed and unmapped only by
 * pagestore_free. Free pages are kept in two stacks of pointers, outside
 * the pages themselves: a released page must not be written to (that
 * would make it resident again), so it cannot hold a list link. mu guards
 * everything.
 */
#include "cache/pagestore.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "common/log.h"
#include "common/util.h"

#define SLAB_PAGES 512u     /* 2 MiB a mapping */

typedef struct stack {
    void **v;
    size_t n, cap;
} stack;

struct pagestore {
    pthread_mutex_t mu;
    size_t spare_max;       /* pages */
    void **slabs;
    size_t nslabs, slabs_cap;
    uint8_t *carve;         /* next never-used page of the newest slab */
    size_t carve_left;
    stack warm;             /* freed, still resident */
    stack cold;             /* freed, memory released */
    uint64_t in_use;
};

static int push(stack *s, void *p)
{
    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 256;
        void **nv = realloc(s->v, ncap * sizeof(*nv));
        if (!nv)
            return -ENOMEM;
        s->v = nv;
        s->cap = ncap;
    }
    s->v[s->n++] = p;
    return 0;
}

pagestore *pagestore_new(size_t spare_bytes)
{
    pagestore *s = xcalloc(1, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    s->spare_max = spare_bytes / PAGESTORE_PAGE;
    return s;
}

void pagestore_free(pagestore *s)
{
    if (!s)
        return;
    if (s->in_use)
        log_error("pagestore: freed with %llu pages in use", (unsigned long long)s->in_use);
    for (size_t i = 0; i < s->nslabs; i++)
        munmap(s->slabs[i], (size_t)SLAB_PAGES * PAGESTORE_PAGE);
    free(s->slabs);
    free(s->warm.v);
    free(s->cold.v);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* A never-used page, mapping a new slab when the newest is used up (mu
 * held). NULL when the kernel refuses the mapping. */
static void *carve(pagestore *s)
{
    if (s->carve_left == 0) {
        if (s->nslabs == s->slabs_cap) {
            size_t ncap = s->slabs_cap ? s->slabs_cap * 2 : 16;
            void **nv = realloc(s->slabs, ncap * sizeof(*nv));
            if (!nv)
                return NULL;
            s->slabs = nv;
            s->slabs_cap = ncap;
        }
        void *m = mmap(NULL, (size_t)SLAB_PAGES * PAGESTORE_PAGE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) {
            log_warn("pagestore: cannot map %u KiB: %s", SLAB_PAGES * PAGESTORE_PAGE / 1024,
                     strerror(errno));
            return NULL;
        }
        s->slabs[s->nslabs++] = m;
        s->carve = m;
        s->carve_left = SLAB_PAGES;
    }
    void *p = s->carve;
    s->carve += PAGESTORE_PAGE;
    s->carve_left--;
    return p;
}

void *pagestore_get(pagestore *s)
{
    void *p;
    pthread_mutex_lock(&s->mu);
    if (s->warm.n)
        p = s->warm.v[--s->warm.n];
    else if (s->cold.n)
        p = s->cold.v[--s->cold.n];
    else
        p = carve(s);
    if (p)
        s->in_use++;
    pthread_mutex_unlock(&s->mu);
    return p;
}

void pagestore_put(pagestore *s, void *page)
{
    if (!page)
        return;
    pthread_mutex_lock(&s->mu);
    s->in_use--;
    if (s->warm.n < s->spare_max && push(&s->warm, page) == 0) {
        pthread_mutex_unlock(&s->mu);
        return;
    }
    pthread_mutex_unlock(&s->mu);
    /* The page is nobody's now: release its memory, then list it. */
    madvise(page, PAGESTORE_PAGE, MADV_DONTNEED);
    pthread_mutex_lock(&s->mu);
    if (push(&s->cold, page) < 0)
        log_warn("pagestore: out of memory listing a free page; its address space is lost "
                 "until unmount");
    pthread_mutex_unlock(&s->mu);
}

void pagestore_get_stats(pagestore *s, pagestore_stats *out)
{
    pthread_mutex_lock(&s->mu);
    out->in_use = s->in_use;
    out->spare = s->warm.n;
    out->released = s->cold.n;
    out->mapped = (uint64_t)s->nslabs * SLAB_PAGES;
    pthread_mutex_unlock(&s->mu);
}
