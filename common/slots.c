/*
 * slots.c — counting limit with wait and peak counts (see slots.h).
 */
#include "common/slots.h"

unsigned slots_fitting(uint64_t bytes, uint64_t each, unsigned min)
{
    uint64_t n = each ? bytes / each : bytes;
    return n < min ? min : n > UINT32_MAX ? UINT32_MAX : (unsigned)n;
}

void slots_init(slotset *s, unsigned max)
{
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->max = max ? max : 1;
    s->used = 0;
    s->waits = 0;
    s->peak = 0;
}

void slots_destroy(slotset *s)
{
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
}

void slots_take(slotset *s)
{
    pthread_mutex_lock(&s->mu);
    if (s->used >= s->max) {
        s->waits++;
        while (s->used >= s->max)
            pthread_cond_wait(&s->cv, &s->mu);
    }
    if (++s->used > s->peak)
        s->peak = s->used;
    pthread_mutex_unlock(&s->mu);
}

void slots_give(slotset *s)
{
    pthread_mutex_lock(&s->mu);
    s->used--;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void slots_counts(slotset *s, uint64_t *waits, unsigned *peak)
{
    pthread_mutex_lock(&s->mu);
    *waits = s->waits;
    *peak = s->peak;
    pthread_mutex_unlock(&s->mu);
}
