/*
 * slots.h — a counting limit on work that holds memory outside a budget
 * (at most max holders at once; more wait their turn), with the counts a
 * caller reports.
 *
 * slots_take blocks until a slot is free; every take is followed by one
 * slots_give, from any thread. The lock inside is a leaf: hold no lock a
 * slot holder may need while waiting in slots_take.
 */
#ifndef CAIRN_SLOTS_H
#define CAIRN_SLOTS_H

#include <pthread.h>
#include <stdint.h>

typedef struct slotset {
    pthread_mutex_t mu;
    pthread_cond_t cv;          /* a slot was given back */
    unsigned max, used;
    uint64_t waits;             /* takes that had to wait */
    unsigned peak;              /* most slots held at once */
} slotset;

/* How many items of each bytes fit in bytes, at least min. */
unsigned slots_fitting(uint64_t bytes, uint64_t each, unsigned min);
void slots_init(slotset *s, unsigned max);
void slots_destroy(slotset *s);
void slots_take(slotset *s);
void slots_give(slotset *s);
void slots_counts(slotset *s, uint64_t *waits, unsigned *peak);

#endif
