/* bench_worker.c — a worker thread's loop: wait for events with nanosecond
 * timeouts, hand them to the sockets, send what the open-loop schedule says is
 * due, check timeouts, and publish progress. See bench_worker.h. */
#include "bench/bench_worker.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "lib/util.h"
#include "lib/verdict.h"

#define MAX_EVENTS 256
#define STOP_CHECK_NS (20 * NS_PER_MS)  /* how soon a worker notices the stop flag */

int64_t clock_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

int bw_watch(struct bench_worker *w, struct bsock *s, uint32_t events)
{
    struct epoll_event ev = { .events = events, .data.ptr = s };
    int op = s->events == 0 ? EPOLL_CTL_ADD : events == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;

    if (events == s->events)
        return 0;
    if (epoll_ctl(w->ep, op, s->fd, &ev) < 0)
        return -1;
    s->events = events;
    return 0;
}

int bw_measuring(const struct bench_worker *w)
{
    return w->now >= w->sh->measure && w->now < w->sh->end;
}

void bw_done(struct bench_worker *w, int64_t stamp, uint64_t bytes)
{
    if (!bw_measuring(w))
        return;
    hist_record(w->hist, (uint64_t)(w->now > stamp ? w->now - stamp : 0));
    w->n.msgs++;
    w->n.bytes += bytes;
}

int64_t bw_due(const struct bench_worker *w)
{
    int64_t at;

    if (w->interval_ns <= 0)
        return -1;
    /* From the start each time, so rounding never accumulates into drift. */
    at = w->sh->start + (int64_t)((double)w->next_msg * w->interval_ns);
    return at <= w->now && at < w->sh->end ? at : -1;
}

void bw_mark_dirty(struct bench_worker *w, struct bsock *s, int *flag)
{
    if (*flag)
        return;
    *flag = 1;
    w->dirty[w->ndirty++] = s;
}

uint64_t bw_new_seed(struct bench_worker *w)
{
    /* Distinct across workers and reconnects: thread index in the top bits. */
    return ((uint64_t)w->t->index << 40) | w->next_id++;
}

void bench_stop(struct bench_shared *sh, int64_t now)
{
    long long zero = 0;

    atomic_compare_exchange_strong(&sh->stop_at, &zero, (long long)now);
    atomic_store(&sh->stop, 1);
}

void bw_fail(struct bench_worker *w, int verdict, const char *fmt, ...)
{
    int expected = 0;
    va_list ap;

    /* The first worker to fail writes the message; the others only stop. */
    if (atomic_compare_exchange_strong(&w->sh->failed, &expected, 1)) {
        va_start(ap, fmt);
        vsnprintf(w->sh->fail_msg, sizeof w->sh->fail_msg, fmt, ap);
        va_end(ap);
        w->sh->fail_verdict = verdict;
        atomic_store(&w->sh->failed, 2);
    }
    bench_stop(w->sh, w->now);
}

void bw_refused(struct bench_worker *w, int err, const char *what)
{
    if (w->nopen == 0 && (err == ECONNREFUSED || err == ENOENT || err == ECONNRESET))
        bw_fail(w, verdict_of_errno(err), "%s %s: %s", what, w->cfg->target, strerror(err));
}

static void issue_and_flush(struct bench_worker *w)
{
    w->traffic->issue(w);
    w->traffic->flush_dirty(w);
}

static void publish(struct bench_worker *w)
{
    struct bench_thread *t = w->t;

    atomic_store_explicit(&t->live_msgs, w->n.msgs, memory_order_relaxed);
    atomic_store_explicit(&t->live_errors, bench_errors(&w->n), memory_order_relaxed);
    if (t->pub == NULL || w->now < w->next_publish)
        return;
    w->next_publish = w->now + NS_PER_S / 2;
    if (pthread_mutex_lock(&t->pub_lock) != 0)
        return;
    memcpy(t->pub, w->hist, sizeof *w->hist);
    pthread_mutex_unlock(&t->pub_lock);
}

/* How long the next wait may last: until the next due message, scan, or end. */
static int64_t wait_until(const struct bench_worker *w)
{
    int64_t until = w->now + STOP_CHECK_NS;

    if (w->next_scan < until)
        until = w->next_scan;
    if (w->sh->end < until)
        until = w->sh->end;
    if (w->interval_ns > 0) {
        int64_t due = w->sh->start + (int64_t)((double)w->next_msg * w->interval_ns);
        if (due < until && w->room > 0)
            until = due;
    }
    return until;
}

/* Open-loop sends need better than epoll_wait's milliseconds (epoll_wait_ns). */
static int wait_events(struct bench_worker *w, struct epoll_event *evs, int64_t until)
{
    int64_t left = until - clock_ns();

    return epoll_wait_ns(w->ep, evs, MAX_EVENTS, left < 0 ? 0 : left);
}

static void scan(struct bench_worker *w)
{
    if (w->now < w->next_scan)
        return;
    w->next_scan = w->now + w->traffic->scan(w);
}

static int stopped(const struct bench_worker *w)
{
    return atomic_load_explicit(&w->sh->stop, memory_order_relaxed);
}

/* One wait, and the events it brought. Returns -1 after bw_fail. */
static int turn(struct bench_worker *w, struct epoll_event *evs, int64_t until)
{
    int n = wait_events(w, evs, until);

    if (n < 0 && errno != EINTR) {
        bw_fail(w, V_LOCAL, "epoll_wait: %s", strerror(errno));
        return -1;
    }
    w->now = clock_ns();
    for (int i = 0; i < n; i++) {
        struct bsock *s = evs[i].data.ptr;
        s->on_event(w, s, evs[i].events);
    }
    w->traffic->flush_dirty(w);
    return 0;
}

/* The period is over: what is still in flight gets its -w to be answered (not
 * counted: the period is over) or to time out (counted), so that a server that
 * stalled or died in the last -w is not a clean run. Nothing new is sent, and an
 * answered server ends this within a round trip. */
static void drain(struct bench_worker *w, struct epoll_event *evs)
{
    int64_t until = w->sh->end + w->cfg->wait_ns;

    w->draining = 1;
    for (;;) {
        w->now = clock_ns();
        if (stopped(w) || !w->traffic->in_flight(w) || w->now >= until)
            break;
        scan(w);                /* a time-out ends its wait sooner */
        if (turn(w, evs, w->now + STOP_CHECK_NS < until ? w->now + STOP_CHECK_NS : until) < 0)
            return;
    }
    if (!stopped(w))
        w->traffic->scan(w);    /* -w is up for what is left: timeouts, lost */
}

static void run_loop(struct bench_worker *w)
{
    struct epoll_event evs[MAX_EVENTS];

    for (;;) {
        w->now = clock_ns();
        if (w->now >= w->sh->end || stopped(w))
            break;
        scan(w);
        issue_and_flush(w);
        publish(w);
        if (turn(w, evs, wait_until(w)) < 0)
            break;
    }
    if (!stopped(w))
        drain(w, evs);
    publish(w);
}

static int setup(struct bench_worker *w)
{
    w->ep = epoll_create1(EPOLL_CLOEXEC);
    if (w->ep < 0) {
        bw_fail(w, V_LOCAL, "epoll_create1: %s", strerror(errno));
        return -1;
    }
    w->tx = xmalloc(SCRATCH_LEN);
    w->rx = xmalloc(SCRATCH_LEN);
    return w->traffic->setup(w);
}

static void teardown(struct bench_worker *w)
{
    w->traffic->teardown(w);
    if (w->ep >= 0)
        close(w->ep);
    free(w->tx);
    free(w->rx);
    free(w->dirty);
    tls_session_free(w->session);
}

void *bw_main(void *arg)
{
    struct bench_thread *t = arg;
    struct bench_worker w = {
        .t = t, .cfg = t->cfg, .traffic = t->traffic, .sh = t->sh, .ep = -1, .hist = t->hist,
        .now = clock_ns(), .last_reply = t->sh->start,
    };

    if (t->rate > 0)
        w.interval_ns = (double)NS_PER_S / t->rate;
    w.next_scan = w.now + SCAN_EVERY_NS;
    if (setup(&w) == 0)
        run_loop(&w);
    teardown(&w);
    t->n = w.n;
    atomic_fetch_add(&t->sh->finished, 1);
    return NULL;
}
