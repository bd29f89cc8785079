/*
 * bufpool.h — the client's memory budget for data buffers (DESIGN.md §6).
 *
 * Dirty chunk buffers, uploads in flight and prefetch buffers all draw from
 * one budget of max bytes. bufpool_acquire blocks while granting n bytes
 * would exceed the budget (backpressure: writers wait, memory does not
 * grow); bufpool_try_acquire never blocks (prefetch uses it and simply
 * skips work when the budget is used). A request larger than the whole
 * budget is granted when nothing else is outstanding, so it cannot
 * deadlock. Thread-safe.
 *
 * Waiters are not queued in order: a release wakes them all and whichever
 * fits first wins, so a thread that holds part of the budget while asking
 * for more can still be granted when it fits (strict FIFO could deadlock
 * such a holder behind a larger waiter). Releasing more than is outstanding
 * is a caller bug; it is logged and clamped.
 */
#ifndef CAIRN_BUFPOOL_H
#define CAIRN_BUFPOOL_H

#include <stdint.h>

typedef struct bufpool bufpool;

bufpool *bufpool_new(uint64_t max);
void bufpool_free(bufpool *p);
void bufpool_acquire(bufpool *p, uint64_t n);
/* 1 if granted, 0 if it would exceed the budget. */
int bufpool_try_acquire(bufpool *p, uint64_t n);
/* Wait at most timeout_ms; 1 if granted, 0 on timeout. timeout_ms 0 is
 * bufpool_try_acquire; a negative timeout waits forever (bufpool_acquire). */
int bufpool_acquire_timeout(bufpool *p, uint64_t n, int timeout_ms);
/* Grant n bytes at once, past the budget if need be. Only for a holder that
 * must turn memory it already holds into one buffer to make progress and
 * gives the whole grant back soon (a dirty chunk kept as pages being
 * sealed); waiters wait until the overdraft is released. */
void bufpool_acquire_force(bufpool *p, uint64_t n);
void bufpool_release(bufpool *p, uint64_t n);
uint64_t bufpool_used(bufpool *p);
uint64_t bufpool_peak(bufpool *p);
uint64_t bufpool_max(bufpool *p);
/* Threads blocked right now in bufpool_acquire or bufpool_acquire_timeout
 * (a /metrics gauge of backpressure). */
unsigned bufpool_waiting(bufpool *p);

#endif
