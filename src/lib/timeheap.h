/* timeheap.h — many timeouts of different lengths on one loop timer.
 *
 * deadline.h serves timeouts that are all the same length; the faults' waits
 * (latency, slice-delay, rate, greet-delay, a relay's connect-timeout) differ from
 * one connection to the next. An entry, embedded in its owner, sits in a binary
 * min-heap by its time; one loop timer, due at the earliest, serves them all:
 * setting, moving and removing an entry are O(log n). */
#ifndef KODAMA_TIMEHEAP_H
#define KODAMA_TIMEHEAP_H

#include <stddef.h>
#include <stdint.h>

#include "lib/loop.h"

struct theap;

struct theap_entry {
    int64_t at;                     /* µs, monotonic (now_us) */
    size_t idx;                     /* its place in the heap; THEAP_OFF: not in it */
};

#define THEAP_OFF SIZE_MAX

/* Called for an entry that is due, already out of the heap; it may set any entry
 * again, itself included. */
typedef void theap_fn(struct theap *h, struct theap_entry *e);

struct theap {
    struct theap_entry **v;
    size_t n, cap;
    struct loop *loop;
    theap_fn *expire;
    uint64_t timer;                 /* the loop timer, while armed */
    int64_t timer_at;
    int firing;                     /* in the timer's callback: it re-arms itself */
};

void theap_init(struct theap *h, struct loop *loop, theap_fn *expire);
/* Frees the heap's array; its entries are the owners' business. */
void theap_destroy(struct theap *h);

static inline void theap_entry_init(struct theap_entry *e)
{
    e->idx = THEAP_OFF;
}

static inline int theap_on(const struct theap_entry *e)
{
    return e->idx != THEAP_OFF;
}

/* (Re)set e to expire at `at` (µs, now_us's clock): not before, and late by the
 * kernel's wake-up only. Returns 0, or -1 if out of memory (e is then not in the
 * heap). */
int theap_set(struct theap *h, struct theap_entry *e, int64_t at);
/* Take e out of the heap, if it is in. */
void theap_del(struct theap *h, struct theap_entry *e);

#endif
