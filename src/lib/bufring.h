/* bufring.h — a provided-buffer ring for io_uring: equal buffers the kernel picks
 * from when a receive completes, so a connection holds no buffer while it waits.
 *
 * The ring starts with a few buffers and doubles, up to count, whenever half of
 * those published are out. The kernel takes them in FIFO order, so a ring that
 * started full would touch the pages of every buffer once, even on a worker that
 * never holds more than one at a time (about 16 KiB per buffer of resident memory
 * that stays). Growing on demand keeps a lightly loaded worker small.
 *
 * Once no buffer has been out for a second, the pages of all of them are given
 * back (madvise MADV_DONTNEED), so a worker that went idle after a burst holds
 * none of the memory the burst touched. That is safe only while the kernel cannot
 * pick a buffer behind our back: with DEFER_TASKRUN it picks them only inside our
 * own io_uring_enter, and an empty completion queue (with nothing in the kernel's
 * overflow list) means no picked buffer is unaccounted for. Without DEFER_TASKRUN the ring never trims. */
#ifndef KODAMA_BUFRING_H
#define KODAMA_BUFRING_H

#include <liburing.h>
#include <stddef.h>

#include "lib/loop.h"

struct bufring {
    struct io_uring_buf_ring *br;
    char *base;             /* count buffers of size bytes */
    size_t ring_bytes;
    unsigned count, size, mask;
    int group;
    unsigned live;          /* buffers published so far (≤ count) */
    unsigned out;           /* buffers handed out by the kernel, not yet returned */
    struct io_uring *ring;
    struct loop *loop;      /* runs the idle trim; NULL: never trim */
    unsigned long takes;    /* buffers ever taken: a change means not idle */
    unsigned long takes_seen;
    unsigned touched : 1;   /* taken since the last trim */
    unsigned trim_armed : 1;
    uint64_t trim_timer;
};

/* count must be a power of two; first (≤ count) buffers are published at once.
 * Returns 0, or -1 with errno. */
int bufring_init(struct bufring *b, struct loop *loop, int group, unsigned count,
                 unsigned size, unsigned first);
void bufring_destroy(struct bufring *b);

static inline char *bufring_addr(const struct bufring *b, unsigned bid)
{
    return b->base + (size_t)bid * b->size;
}

/* The buffer a completion used (its flags), and giving one back to the kernel. */
static inline unsigned bufring_bid(unsigned cqe_flags)
{
    return cqe_flags >> IORING_CQE_BUFFER_SHIFT;
}

/* A completion used a buffer: account for it, and publish more if half are out. */
void bufring_take(struct bufring *b);
void bufring_put(struct bufring *b, unsigned bid);

/* Every published buffer is out: a receive now would fail with ENOBUFS. */
static inline int bufring_empty(const struct bufring *b)
{
    return b->out >= b->live;
}

#endif
