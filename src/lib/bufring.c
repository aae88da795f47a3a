/* bufring.c — see bufring.h. */
#include "lib/bufring.h"

#include <errno.h>
#include <sys/mman.h>

#include "lib/loop_uring.h"

#define TRIM_IDLE_MS 1000

/* Publish buffers live..n-1, which the kernel has never seen. */
static void publish(struct bufring *b, unsigned n)
{
    unsigned added = 0;

    for (unsigned i = b->live; i < n; i++, added++)
        io_uring_buf_ring_add(b->br, bufring_addr(b, i), b->size, (unsigned short)i,
                              (int)b->mask, (int)added);
    io_uring_buf_ring_advance(b->br, (int)added);
    b->live = n;
}

int bufring_init(struct bufring *b, struct loop *loop, int group, unsigned count,
                 unsigned size, unsigned first)
{
    struct io_uring *ring = loop_ring(loop);
    struct io_uring_buf_reg reg = { 0 };
    int rc;

    b->count = count;
    b->size = size;
    b->mask = (unsigned)io_uring_buf_ring_mask(count);
    b->group = group;
    b->out = 0;
    b->live = 0;
    b->ring = ring;
    b->loop = ring->flags & IORING_SETUP_DEFER_TASKRUN ? loop : NULL;
    b->takes = b->takes_seen = 0;
    b->touched = b->trim_armed = 0;
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
    publish(b, first < 1 ? 1 : first > count ? count : first);
    return 0;
}

void bufring_destroy(struct bufring *b)
{
    if (b->br == NULL)
        return;
    if (b->trim_armed)
        loop_timer_del(b->loop, b->trim_timer);
    io_uring_unregister_buf_ring(b->ring, b->group);
    munmap(b->base, (size_t)b->count * b->size);
    munmap(b->br, b->ring_bytes);
    b->br = NULL;
}

/* Give back the pages of every buffer, once none has been taken for a while. */
static long trim_when_idle(struct loop *loop, void *data)
{
    struct bufring *b = data;

    (void)loop;
    /* A completion not yet seen, in the queue or in the kernel's overflow list,
     * may hold a buffer that out does not count yet. */
    if (b->out > 0 || io_uring_cq_ready(b->ring) > 0 || io_uring_cq_has_overflow(b->ring)) {
        b->trim_armed = 0;      /* busy: the last bufring_put arms it again */
        return LOOP_TIMER_DONE;
    }
    if (b->takes != b->takes_seen) {
        b->takes_seen = b->takes;
        return TRIM_IDLE_MS;
    }
    /* A failure only leaves the memory resident, as it was: nothing to do. */
    (void)madvise(b->base, (size_t)b->live * b->size, MADV_DONTNEED);
    b->touched = 0;
    b->trim_armed = 0;
    return LOOP_TIMER_DONE;
}

static void arm_trim(struct bufring *b)
{
    if (b->loop == NULL || b->trim_armed || !b->touched || b->out > 0)
        return;
    b->trim_armed = 1;
    b->takes_seen = b->takes;
    b->trim_timer = loop_timer_add(b->loop, TRIM_IDLE_MS, trim_when_idle, b);
}

void bufring_take(struct bufring *b)
{
    b->out++;
    b->takes++;
    b->touched = 1;
    if (b->live < b->count && b->out * 2 >= b->live)
        publish(b, b->live * 2 > b->count ? b->count : b->live * 2);
}

void bufring_put(struct bufring *b, unsigned bid)
{
    io_uring_buf_ring_add(b->br, bufring_addr(b, bid), b->size, (unsigned short)bid, (int)b->mask, 0);
    io_uring_buf_ring_advance(b->br, 1);
    b->out--;
    arm_trim(b);
}
