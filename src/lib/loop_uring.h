/* loop_uring.h — what the io_uring engines (conn_uring.c, udp_uring.c) use of a loop
 * whose backend is io_uring: its ring, and how completions find their owner.
 *
 * A request's user_data is the address of the object it belongs to (8-byte
 * aligned) with a tag in the low 3 bits that says which request it was; user_data 0
 * is a request whose completion nobody needs (a cancel, a close). The tags
 * URING_TAG_WATCH and URING_TAG_UNWATCH are the backend's own (poll requests for
 * watches, and their removals); the engines use the others. */
#ifndef KODAMA_LOOP_URING_H
#define KODAMA_LOOP_URING_H

#include <liburing.h>
#include <stdint.h>

#include "lib/loop.h"

#define URING_TAG_BITS 3u
#define URING_TAG_MASK ((1u << URING_TAG_BITS) - 1)
#define URING_TAG_WATCH 7u
#define URING_TAG_UNWATCH 0u    /* with the token's address: never user_data 0 */

static inline uint64_t uring_ud(const void *obj, unsigned tag)
{
    return (uint64_t)(uintptr_t)obj | tag;
}

static inline void *uring_ud_obj(uint64_t ud)
{
    return (void *)(uintptr_t)(ud & ~(uint64_t)URING_TAG_MASK);
}

static inline unsigned uring_ud_tag(uint64_t ud)
{
    return (unsigned)(ud & URING_TAG_MASK);
}

/* A free submission slot, submitting what is queued if the queue is full. Never
 * NULL: a full queue is submitted first. */
struct io_uring_sqe *uring_get_sqe(struct io_uring *ring);

/* Submit what is queued now (before closing a descriptor a request still holds). */
void uring_submit(struct io_uring *ring);

/* The request just queued completes while it is submitted (a send that may not
 * wait), and its completion needs nothing done before the next event: the next
 * wait may sleep past it, so that submitting it and waiting for what comes next
 * take one io_uring_enter, not two. Should the kernel queue such a request after
 * all, the wait ends one event late; after a few waits seen to end short of the
 * completions expected, the backend stops expecting any. */
void uring_expect_inline(struct io_uring *ring);
/* Take one expectation back: something happened to the request's owner before the
 * wait (more input, the end of it, a timer), and its completion now matters. A
 * take-back after the wait (the completion is then being handled anyway) only
 * makes the next wait end sooner, which is always safe. */
void uring_unexpect(struct io_uring *ring);
/* Take them all back. */
void uring_unexpect_all(struct io_uring *ring);

/* Under load, let a wait gather completions for up to usec before handing them
 * over (0: hand over each batch as it comes, the default): fewer wake-ups, up to
 * usec more latency. A wait still ends early once many are in, and with none in
 * by then, at the first. The loop gathers only while completions come fast enough
 * to fill such a wait with several (judged every 10 ms). It is the kernel's
 * minimum wait (Linux 6.12): 0, or -1 with EOPNOTSUPP if this kernel lacks it. */
int uring_batch_wait(struct io_uring *ring, unsigned usec);

/* Can this process use io_uring with everything the engines need? 0, or -1 with
 * errno (ENOSYS: too old a kernel, EPERM: denied, as in many containers).
 * KODAMA_NO_IO_URING=1 in the environment makes it say EPERM, for tests. */
int uring_available(void);

#endif
