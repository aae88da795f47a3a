/* loop.c — the backend-independent part of the event loop: watches, timers, run.
 *
 * Timers are few (per listener and per server, not per connection: connections with a
 * fixed timeout sit in FIFO lists that one timer walks), so an unsorted list with an
 * O(n) search for the nearest is enough, as in ae.c. */
#include "lib/loop.h"

#include <errno.h>
#include <stdlib.h>

#include "lib/loop_backend.h"
#include "lib/util.h"

#define FIRED_MAX 256

struct timer {
    uint64_t id;
    int64_t when;       /* µs, now_us's clock */
    timer_fn *fn;
    void *data;
    uint64_t pass;      /* the run_timers pass that last ran it */
    struct timer *next;
};

struct loop {
    const struct backend_ops *ops;
    struct backend *backend;
    completion_fn *on_completion;
    void *completion_data;
    batch_end_fn *on_batch_end;
    void *batch_end_data;
    struct timer *timers;
    uint64_t next_timer_id;
    uint64_t timer_pass;
    int stop;
    int64_t now;                    /* when the current batch of events arrived */
    struct fired fired[FIRED_MAX];
    int firing, nfired;             /* the entry being handled, of how many */
};

struct loop *loop_new(enum loop_io io)
{
    struct loop *loop = calloc(1, sizeof *loop);

    if (loop == NULL)
        return NULL;
    loop->now = now_ms();
    loop->ops = io == LOOP_IO_URING ? &backend_uring : &backend_epoll;
    loop->backend = loop->ops->create();
    if (loop->backend == NULL) {
        int saved = errno;
        free(loop);
        errno = saved;
        return NULL;
    }
    loop->next_timer_id = 1;
    return loop;
}

void loop_free(struct loop *loop)
{
    struct timer *t, *next;

    if (loop == NULL)
        return;
    for (t = loop->timers; t; t = next) {
        next = t->next;
        free(t);
    }
    loop->ops->destroy(loop->backend);
    free(loop);
}

void watch_init(struct watch *w, int fd, watch_fn *fn)
{
    w->fd = fd;
    w->mask = 0;
    w->registered = 0;
    w->fn = fn;
    w->token = NULL;
}

/* A watch that leaves the loop while a batch is handled loses its entries further
 * on in the batch: its object may be freed right after (a relay frees both of its
 * sides' watches when either side's handler ends it). */
static void forget_fired(struct loop *loop, const struct watch *w)
{
    for (int j = loop->firing + 1; j < loop->nfired; j++)
        if (loop->fired[j].kind == FIRED_WATCH && loop->fired[j].ptr == w)
            loop->fired[j].kind = FIRED_FORGOTTEN;
}

int loop_watch(struct loop *loop, struct watch *w, unsigned mask)
{
    int rc = 0;

    if (mask == w->mask && (w->registered || mask == 0))
        return 0;
    /* epoll reports errors and hang-ups even for an empty mask, so a watch that wants
     * nothing is taken out of the set rather than left in with no events. */
    if (mask == 0) {
        forget_fired(loop, w);
        loop->ops->del(loop->backend, w->fd, w);
        w->registered = 0;
    } else if (w->registered) {
        rc = loop->ops->mod(loop->backend, w->fd, mask, w);
    } else {
        rc = loop->ops->add(loop->backend, w->fd, mask, w);
        if (rc == 0)
            w->registered = 1;
    }
    if (rc == 0)
        w->mask = mask;
    return rc;
}

void loop_unwatch(struct loop *loop, struct watch *w)
{
    forget_fired(loop, w);
    if (w->registered)
        loop->ops->del(loop->backend, w->fd, w);
    w->registered = 0;
    w->mask = 0;
}

void loop_unwatch_closing(struct loop *loop, struct watch *w)
{
    forget_fired(loop, w);
    if (w->registered && !loop->ops->close_drops_watch)
        loop->ops->del(loop->backend, w->fd, w);
    w->registered = 0;
    w->mask = 0;
}

uint64_t loop_timer_add(struct loop *loop, long ms, timer_fn *fn, void *data)
{
    return loop_timer_add_at(loop, now_us() + (int64_t)ms * 1000, fn, data);
}

uint64_t loop_timer_add_at(struct loop *loop, int64_t at_us, timer_fn *fn, void *data)
{
    struct timer *t = xmalloc(sizeof *t);

    t->id = loop->next_timer_id++;
    t->when = at_us;
    t->fn = fn;
    t->data = data;
    t->pass = 0;
    t->next = loop->timers;
    loop->timers = t;
    return t->id;
}

void loop_timer_del(struct loop *loop, uint64_t id)
{
    for (struct timer **p = &loop->timers; *p; p = &(*p)->next) {
        if ((*p)->id == id) {
            struct timer *t = *p;
            *p = t->next;
            free(t);
            return;
        }
    }
}

/* How long the backend may wait, in µs: -1 for as long as it takes. */
static int64_t next_timeout(struct loop *loop)
{
    int64_t nearest = -1, now;

    for (struct timer *t = loop->timers; t; t = t->next)
        if (nearest < 0 || t->when < nearest)
            nearest = t->when;
    if (nearest < 0)
        return -1;
    now = now_us();
    return nearest <= now ? 0 : nearest - now;
}

/* A timer callback may add or delete timers (itself included), so each due timer is
 * found afresh by id rather than by walking a list that may change under us. */
static void run_timers(struct loop *loop)
{
    int64_t now = now_us();
    uint64_t pass = ++loop->timer_pass;

    for (;;) {
        struct timer *due = NULL;
        uint64_t id;
        long again;

        for (struct timer *t = loop->timers; t; t = t->next)
            if (t->when <= now && t->pass != pass) {
                due = t;
                break;
            }
        if (due == NULL)
            return;
        due->pass = pass;
        id = due->id;
        again = due->fn(loop, due->data);
        /* The callback may have deleted its own timer: look it up again by id. */
        for (struct timer *t = loop->timers; t; t = t->next) {
            if (t->id != id)
                continue;
            if (again == LOOP_TIMER_DONE)
                loop_timer_del(loop, id);
            else
                t->when = now_us() + (int64_t)again * 1000;
            break;
        }
    }
}

int loop_run(struct loop *loop)
{
    loop->stop = 0;
    while (!loop->stop) {
        int n = loop->ops->poll(loop->backend, next_timeout(loop), loop->fired, FIRED_MAX);

        if (n < 0)
            return -1;
        loop->now = now_ms();
        loop->nfired = n;
        /* Not past a stop: whatever stopped the loop may have freed the owners of
         * the completions still in the batch (a forced close of every connection). */
        for (int i = 0; i < n && !loop->stop; i++) {
            struct fired *f = &loop->fired[i];
            struct watch *w = f->ptr;
            unsigned events;

            loop->firing = i;
            if (f->kind == FIRED_COMPLETION) {
                loop->on_completion(loop, f->user_data, f->res, f->flags, loop->completion_data);
                continue;
            }
            /* A handler earlier in this batch may have changed what this one wants,
             * or taken the watch out of the loop (forget_fired). */
            if (f->kind == FIRED_FORGOTTEN)
                continue;
            events = f->events & w->mask;
            if (w->registered && events)
                w->fn(loop, w, events);
        }
        loop->nfired = 0;
        if (loop->on_batch_end && n > 0)
            loop->on_batch_end(loop, loop->batch_end_data);
        run_timers(loop);
    }
    return 0;
}

int64_t loop_now(const struct loop *loop)
{
    return loop->now;
}

void loop_stop(struct loop *loop)
{
    loop->stop = 1;
}

const char *loop_io_name(const struct loop *loop)
{
    return loop->ops->name;
}

void loop_on_batch_end(struct loop *loop, batch_end_fn *fn, void *data)
{
    loop->on_batch_end = fn;
    loop->batch_end_data = data;
}

struct io_uring *loop_ring(struct loop *loop)
{
    return loop->ops->ring ? loop->ops->ring(loop->backend) : NULL;
}

void loop_on_completion(struct loop *loop, completion_fn *fn, void *data)
{
    loop->on_completion = fn;
    loop->completion_data = data;
}
