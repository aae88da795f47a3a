/* bufring.h — a provided-buffer ring for io_uring: equal buffers the kernel picks
 * from when a receive completes, so a connection holds no buffer while it waits. */
#ifndef KODAMA_BUFRING_H
#define KODAMA_BUFRING_H

#include <liburing.h>
#include <stddef.h>

struct bufring {
    struct io_uring_buf_ring *br;
    char *base;             /* count buffers of size bytes */
    size_t ring_bytes;
    unsigned count, size, mask;
    int group;
    unsigned out;           /* buffers handed out by the kernel, not yet returned */
};

/* count must be a power of two. Returns 0, or -1 with errno. */
int bufring_init(struct bufring *b, struct io_uring *ring, int group, unsigned count,
                 unsigned size);
void bufring_destroy(struct bufring *b, struct io_uring *ring);

static inline char *bufring_addr(const struct bufring *b, unsigned bid)
{
    return b->base + (size_t)bid * b->size;
}

/* The buffer a completion used (its flags), and giving one back to the kernel. */
static inline unsigned bufring_bid(unsigned cqe_flags)
{
    return cqe_flags >> IORING_CQE_BUFFER_SHIFT;
}

void bufring_put(struct bufring *b, unsigned bid);

#endif
