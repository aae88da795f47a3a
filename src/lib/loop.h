/* loop.h — a small readiness event loop in the spirit of Redis' ae.
 *
 * A watch is embedded in the object that owns the descriptor (a listener, a
 * connection) and the backend hands it back as a pointer, so there is no fd-indexed
 * table to size. One loop per thread; nothing here is shared between loops.
 *
 * Errors and hang-ups are reported as LOOP_READ|LOOP_WRITE|LOOP_HUP, so they reach
 * handlers through their normal read and write paths.
 *
 * Both backends are level-triggered: a handler that leaves data unread is called
 * again. On io_uring a watch is a one-shot poll request, asked for again after
 * each event; the request points at a small token of the backend's, not at the
 * watch, so a watch may be freed as soon as loop_unwatch returns, as on epoll. */
#ifndef KODAMA_LOOP_H
#define KODAMA_LOOP_H

#include <stdint.h>

/* LOOP_HUP asks to hear when the peer has closed, even while not reading.
 * LOOP_EXCLUSIVE, for a socket that several loops watch: wake only one of them. It
 * can be set when a watch starts, not changed while the watch is on (epoll's rule). */
enum { LOOP_READ = 1, LOOP_WRITE = 2, LOOP_HUP = 4, LOOP_EXCLUSIVE = 8 };

struct loop;
struct watch;

typedef void watch_fn(struct loop *loop, struct watch *w, unsigned events);
/* Returns the delay until the next call in ms, or LOOP_TIMER_DONE to stop. */
typedef long timer_fn(struct loop *loop, void *data);
#define LOOP_TIMER_DONE (-1)

struct watch {
    int fd;
    unsigned mask : 8;          /* what the backend is asked for now */
    unsigned registered : 1;
    watch_fn *fn;
    void *token;                /* the backend's, while registered (io_uring) */
};

enum loop_io { LOOP_IO_EPOLL, LOOP_IO_URING };

/* A completion of an io_uring request (see loop_uring.h); never on epoll. */
typedef void completion_fn(struct loop *loop, uint64_t user_data, int32_t res,
                           uint32_t flags, void *data);

struct loop *loop_new(enum loop_io io);      /* NULL with errno on failure */
void loop_free(struct loop *loop);

void watch_init(struct watch *w, int fd, watch_fn *fn);
/* Ask for exactly these events (0 = none). Returns 0, or -1 with errno. */
int loop_watch(struct loop *loop, struct watch *w, unsigned mask);
/* Forget the watch; call before closing its descriptor. */
void loop_unwatch(struct loop *loop, struct watch *w);
/* The same, for a descriptor about to be closed that is the only one, in this
 * process or any other, referring to its socket: epoll drops it from the set with
 * the close (epoll(7)), so it is only forgotten here, one epoll_ctl less per
 * connection; io_uring still cancels its poll. Never for a socket that was
 * inherited or duplicated: epoll would keep reporting it. */
void loop_unwatch_closing(struct loop *loop, struct watch *w);

/* Timers run once the clock has reached their time, never before: the loop keeps
 * time in µs and waits with a timeout in µs, so a timer is late by the kernel's
 * wake-up (tens of µs), not by a millisecond of rounding. */
uint64_t loop_timer_add(struct loop *loop, long ms, timer_fn *fn, void *data);
/* A timer due at `at_us` on now_us's clock, for waits finer than a ms. */
uint64_t loop_timer_add_at(struct loop *loop, int64_t at_us, timer_fn *fn, void *data);
void loop_timer_del(struct loop *loop, uint64_t id);

/* Run until loop_stop; returns 0, or -1 with errno if polling failed. */
int loop_run(struct loop *loop);
void loop_stop(struct loop *loop);
/* The monotonic time in ms when the batch being handled arrived: one clock read
 * per batch for the handlers that only need it roughly (deadlines). */
int64_t loop_now(const struct loop *loop);
const char *loop_io_name(const struct loop *loop);
void loop_on_completion(struct loop *loop, completion_fn *fn, void *data);
/* Called after each batch of events has been handled, before the timers: work the
 * batch's handlers queued to do at once for all of them (one send for several
 * replies). One per loop. */
typedef void batch_end_fn(struct loop *loop, void *data);
void loop_on_batch_end(struct loop *loop, batch_end_fn *fn, void *data);
/* The loop's io_uring ring, for the engines that drive it; NULL on epoll. */
struct io_uring;
struct io_uring *loop_ring(struct loop *loop);

#endif
