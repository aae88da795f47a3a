/* counter.h — statistics counters with one writer and any number of readers.
 *
 * Each worker counts its own listeners' traffic; other threads (the exit report,
 * metrics) read the counts while it runs. Relaxed atomic loads and stores cost what
 * plain ones do on the machines we run on, where a locked read-modify-write would
 * cost a bus lock per event; with a single writer nothing is lost. */
#ifndef KODAMA_COUNTER_H
#define KODAMA_COUNTER_H

#include <stdatomic.h>
#include <stdint.h>

typedef _Atomic uint64_t counter_t;

/* Only the counter's owning thread may call these two. */
static inline void counter_add(counter_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static inline void counter_sub(counter_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) - n,
                          memory_order_relaxed);
}

static inline uint64_t counter_get(const counter_t *c)
{
    return atomic_load_explicit((counter_t *)c, memory_order_relaxed);
}

#endif
