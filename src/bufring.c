/* bufring.c — see bufring.h. */
#include "bufring.h"

#include <errno.h>
#include <sys/mman.h>

int bufring_init(struct bufring *b, struct io_uring *ring, int group, unsigned count,
                 unsigned size)
{
    struct io_uring_buf_reg reg = { 0 };
    int rc;

    b->count = count;
    b->size = size;
    b->mask = (unsigned)io_uring_buf_ring_mask(count);
    b->group = group;
    b->out = 0;
    b->ring_bytes = count * sizeof(struct io_uring_buf);
    /* The ring must be page-aligned memory; the buffers are touched only as used. */
    b->br = mmap(NULL, b->ring_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (b->br == MAP_FAILED)
        return -1;
    b->base = mmap(NULL, (size_t)count * size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (b->base == MAP_FAILED) {
        munmap(b->br, b->ring_bytes);
        return -1;
    }
    reg.ring_addr = (unsigned long)b->br;
    reg.ring_entries = count;
    reg.bgid = (unsigned short)group;
    rc = io_uring_register_buf_ring(ring, &reg, 0);
    if (rc < 0) {
        munmap(b->base, (size_t)count * size);
        munmap(b->br, b->ring_bytes);
        errno = -rc;
        return -1;
    }
    io_uring_buf_ring_init(b->br);
    for (unsigned i = 0; i < count; i++)
        io_uring_buf_ring_add(b->br, bufring_addr(b, i), size, (unsigned short)i, (int)b->mask, (int)i);
    io_uring_buf_ring_advance(b->br, (int)count);
    return 0;
}

void bufring_destroy(struct bufring *b, struct io_uring *ring)
{
    if (b->br == NULL)
        return;
    io_uring_unregister_buf_ring(ring, b->group);
    munmap(b->base, (size_t)b->count * b->size);
    munmap(b->br, b->ring_bytes);
    b->br = NULL;
}

void bufring_put(struct bufring *b, unsigned bid)
{
    io_uring_buf_ring_add(b->br, bufring_addr(b, bid), b->size, (unsigned short)bid, (int)b->mask, 0);
    io_uring_buf_ring_advance(b->br, 1);
    b->out--;
}
