/* loop_uring.c — the io_uring backend of loop.c.
 *
 * Watches are one-shot poll requests, asked for again after each event, which makes
 * them level-triggered as epoll's are (a multishot poll reports only new wake-ups:
 * a handler that left data unread would not hear of it again). Each request points
 * at a token, not at the watch: loop_unwatch detaches the token and cancels its
 * request, and the token is freed by that request's last completion, so the watch
 * itself may be freed at once. Other requests are the engines' own: their
 * completions go to the loop's completion handler. Everything queued during a batch
 * is submitted by the one io_uring_enter that also waits for the next batch, which
 * is where io_uring saves system calls. */
#include "lib/loop_uring.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "lib/list.h"
#include "lib/loop_backend.h"

/* Waits that ended (a timer, a signal) with fewer completions than were expected
 * to post while submitting: after this many, expect none (uring_expect_inline). */
#define EXPECT_MISSES_MAX 8
#define RING_ENTRIES 512     /* a batch that needs more submits early */
#define CQ_ENTRIES 4096      /* beyond it the kernel keeps completions itself */
/* uring_batch_wait: a wait ends early once this many completions are in. */
#define BATCH_WAIT_MAX 64
/* The overall limit of a gathering wait with no timer due (see submit_and_gather). */
#define GATHER_LIMIT_US (3600LL * 1000000)
/* When to gather (gather_judge), judged over windows of GATHER_WINDOW_NS: only
 * while completions come fast enough that a wait of batch_us takes in GATHER_ON of
 * them, two windows in a row (it stops below GATHER_OFF). Slower, a wait gathers
 * too little to save a wake-up and its timer costs more than it saves: at 10k-20k
 * echoes/s a 50 us wait cost 46-67 % more CPU per message, at 100k/s it saved
 * 26 % (bench/analysis.md). Whether gathering holds peers back (a closed loop, each
 * waiting for its answer before it sends again) is not judged: the completions
 * cannot tell, since gathering also merges a connection's messages into fewer
 * receives. */
#define GATHER_WINDOW_NS 10000000LL
#define GATHER_ON 8
#define GATHER_OFF 4
#ifndef IORING_FEAT_MIN_TIMEOUT
#define IORING_FEAT_MIN_TIMEOUT (1U << 15)  /* Linux 6.12; newer than liburing 2.3 */
#endif

/* What a watch's poll request points at. */
struct poll_token {
    struct watch *w;                /* NULL once unwatched */
    int armed;                      /* a poll request for it is in flight */
    int removing;                   /* a poll_remove for it is in flight */
    struct poll_token *prev, *next; /* every live token, to free at the end */
};

struct backend {
    struct io_uring ring;           /* first: uring_expect_inline finds b from it */
    int disabled;       /* created disabled: the loop's own thread enables it */
    int started;        /* the loop's thread has polled once (and registered the ring) */
    unsigned expected;  /* completions of requests queued since the last wait that
                         * post while submitted and need nothing at once */
    unsigned missed;    /* waits that found fewer of them than expected */
    unsigned batch_us;  /* uring_batch_wait's: 0, wait as usual */
    int gathering;      /* the waits gather now (gather_judge) */
    unsigned long long rate_last;   /* completions/s in the last window without it */
    long long window_start_ns;
    unsigned long long window_cqes; /* completions taken since window_start_ns */
    int ring_registered; /* the ring's descriptor is registered with its thread */
    struct poll_token tokens;       /* the list's head */
};

/* Fastest first. DEFER_TASKRUN runs completion work only when the loop asks for
 * events (no interrupts of the running thread); it needs SINGLE_ISSUER, and the
 * ring is made by the main thread but driven by the worker's: R_DISABLED leaves the
 * choice of the issuer to whoever enables it. Older kernels refuse some flags; they
 * only make it faster. */
static const unsigned ring_flags[] = {
    IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER |
        IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED,
    IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN,
    0,
};

static int ring_init(struct io_uring *ring, unsigned *flags)
{
    const char *denied = getenv("KODAMA_NO_IO_URING");
    int rc = -EINVAL;

    if (denied && strcmp(denied, "1") == 0)
        return -EPERM;
    for (size_t i = 0; i < sizeof ring_flags / sizeof ring_flags[0] && rc == -EINVAL; i++) {
        struct io_uring_params p;

        memset(&p, 0, sizeof p);
        p.flags = ring_flags[i];
        p.cq_entries = CQ_ENTRIES;
        rc = io_uring_queue_init_params(RING_ENTRIES, ring, &p);
        *flags = p.flags;
    }
    return rc;
}

static struct backend *uring_create(void)
{
    struct backend *b = calloc(1, sizeof *b);
    unsigned flags = 0;
    int rc;

    if (b == NULL)
        return NULL;
    b->tokens.prev = b->tokens.next = &b->tokens;
    rc = ring_init(&b->ring, &flags);
    b->disabled = (flags & IORING_SETUP_R_DISABLED) != 0;
    if (rc < 0) {
        free(b);
        errno = -rc;
        return NULL;
    }
    return b;
}

static void token_free(struct poll_token *t)
{
    t->prev->next = t->next;
    t->next->prev = t->prev;
    free(t);
}

static void uring_destroy(struct backend *b)
{
    if (b == NULL)
        return;
    io_uring_queue_exit(&b->ring);
    for (struct poll_token *t = b->tokens.next, *next; t != &b->tokens; t = next) {
        next = t->next;
        free(t);
    }
    free(b);
}

struct io_uring_sqe *uring_get_sqe(struct io_uring *ring)
{
    struct io_uring_sqe *sqe;

    while ((sqe = io_uring_get_sqe(ring)) == NULL)
        io_uring_submit(ring);
    return sqe;
}

void uring_submit(struct io_uring *ring)
{
    int rc;

    do
        rc = io_uring_submit(ring);
    while (rc == -EINTR);
}

static unsigned poll_mask(unsigned mask)
{
    unsigned events = 0;

    if (mask & LOOP_READ)
        events |= POLLIN;
    if (mask & LOOP_WRITE)
        events |= POLLOUT;
    if (mask & LOOP_HUP)
        events |= POLLRDHUP;
    return events;
}

static void arm(struct backend *b, struct poll_token *t, int fd, unsigned mask)
{
    struct io_uring_sqe *sqe = uring_get_sqe(&b->ring);

    io_uring_prep_poll_add(sqe, fd, poll_mask(mask));
    io_uring_sqe_set_data64(sqe, uring_ud(t, URING_TAG_WATCH));
    t->armed = 1;
}

static int uring_add(struct backend *b, int fd, unsigned mask, void *ptr)
{
    struct watch *w = ptr;
    struct poll_token *t = malloc(sizeof *t);

    if (t == NULL)
        return -1;
    t->w = w;
    t->next = b->tokens.next;
    t->prev = &b->tokens;
    t->next->prev = t;
    b->tokens.next = t;
    w->token = t;
    arm(b, t, fd, mask);
    return 0;
}

/* The removal's own completion points at the token too (URING_TAG_UNWATCH): a
 * removal can fail with EALREADY, when the poll was woken and its check is under
 * way. If that check finds none of the events asked for, the poll goes on waiting,
 * and holds its socket open for as long as nothing happens on it: an idle peer's
 * connection stayed established, with no descriptor left in the process. */
static void remove_poll(struct backend *b, struct poll_token *t)
{
    struct io_uring_sqe *sqe = uring_get_sqe(&b->ring);

    io_uring_prep_poll_remove(sqe, uring_ud(t, URING_TAG_WATCH));
    io_uring_sqe_set_data64(sqe, uring_ud(t, URING_TAG_UNWATCH));
    t->removing = 1;
}

/* The token lives on until its request's last completion, if one is in flight. */
static void uring_del(struct backend *b, int fd, void *ptr)
{
    struct watch *w = ptr;
    struct poll_token *t = w->token;

    (void)fd;
    w->token = NULL;
    if (t == NULL)
        return;
    t->w = NULL;
    if (!t->armed) {
        token_free(t);
        return;
    }
    remove_poll(b, t);
}

/* A new request, and a new token: requests queued together are issued in order,
 * so the old one is removed first, and its last completion finds no watch. */
static int uring_mod(struct backend *b, int fd, unsigned mask, void *ptr)
{
    uring_del(b, fd, ptr);
    return uring_add(b, fd, mask, ptr);
}

static unsigned loop_events(int revents)
{
    unsigned events = 0;

    if (revents & (POLLIN | POLLERR | POLLHUP | POLLRDHUP))
        events |= LOOP_READ;
    if (revents & (POLLOUT | POLLERR | POLLHUP))
        events |= LOOP_WRITE;
    if (revents & (POLLERR | POLLHUP | POLLRDHUP))
        events |= LOOP_HUP;
    return events;
}

/* Returns 1 if the completion is worth a handler's time. The watch's poll is asked
 * for again at once, with the mask it has now: it goes to the kernel with the next
 * submission, after the handler has run, and completes at once if the handler left
 * the descriptor ready (level-triggered). A request that failed (a descriptor
 * closed under it) is not asked for again. */
static int watch_completion(struct backend *b, struct io_uring_cqe *cqe, struct fired *f)
{
    struct poll_token *t = uring_ud_obj(cqe->user_data);
    struct watch *w = t->w;

    t->armed = 0;
    if (w == NULL) {
        if (!t->removing)
            token_free(t);  /* unwatched: this was its last completion */
        return 0;
    }
    if (cqe->res < 0)
        return 0;
    arm(b, t, w->fd, w->mask);
    f->kind = FIRED_WATCH;
    f->ptr = w;
    f->events = loop_events(cqe->res);
    return 1;
}

/* A removal ended: tried again while its poll is still in flight (EALREADY: see
 * remove_poll), or the token's last completion. */
static void unwatch_completion(struct backend *b, struct io_uring_cqe *cqe)
{
    struct poll_token *t = uring_ud_obj(cqe->user_data);

    t->removing = 0;
    if (t->armed && cqe->res == -EALREADY)
        remove_poll(b, t);
    else if (!t->armed)
        token_free(t);
}

void uring_expect_inline(struct io_uring *ring)
{
    struct backend *b = container_of(ring, struct backend, ring);

    if (b->missed < EXPECT_MISSES_MAX)
        b->expected++;
}

void uring_unexpect(struct io_uring *ring)
{
    struct backend *b = container_of(ring, struct backend, ring);

    if (b->expected > 0)
        b->expected--;
}

void uring_unexpect_all(struct io_uring *ring)
{
    container_of(ring, struct backend, ring)->expected = 0;
}

/* The first poll runs on the loop's own thread: enable the ring there (it becomes
 * the ring's only issuer), and register the ring's descriptor with that thread, so
 * that each io_uring_enter skips looking it up. */
static int uring_start(struct backend *b)
{
    if (b->disabled) {
        /* liburing 2.3 declares io_uring_enable_rings but does not export it. */
        if (syscall(__NR_io_uring_register, b->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS,
                    NULL, 0) < 0)
            return -1;
        b->disabled = 0;
    }
    /* An optimisation: older kernels lack it. */
    b->ring_registered = io_uring_register_ring_fd(&b->ring) == 1;
    b->started = 1;
    return 0;
}

int uring_batch_wait(struct io_uring *ring, unsigned usec)
{
    struct backend *b = container_of(ring, struct backend, ring);

    if (usec > 0 && !(ring->features & IORING_FEAT_MIN_TIMEOUT)) {
        errno = EOPNOTSUPP;
        return -1;
    }
    b->batch_us = usec;
    b->gathering = 0;   /* until a window's completions say otherwise */
    b->rate_last = 0;
    return 0;
}

/* Count a poll's completions, and at the end of each window decide whether the
 * next waits gather (GATHER_* above). */
static void gather_judge(struct backend *b, unsigned seen)
{
    struct timespec t;
    long long now, span;
    unsigned long long rate, steady;

    b->window_cqes += seen;
    if (clock_gettime(CLOCK_MONOTONIC, &t) < 0)
        return;
    now = (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
    span = now - b->window_start_ns;
    if (span < GATHER_WINDOW_NS)
        return;
    rate = b->window_cqes * 1000000000ULL / (unsigned long long)span;
    if (b->gathering) {
        b->gathering = rate * b->batch_us / 1000000 >= GATHER_OFF;
        b->rate_last = 0;
    } else {
        /* Two windows in a row, so that a burst (connections opening) does not
         * start it. */
        steady = rate < b->rate_last ? rate : b->rate_last;
        b->rate_last = rate;
        b->gathering = steady * b->batch_us / 1000000 >= GATHER_ON;
    }
    b->window_start_ns = now;
    b->window_cqes = 0;
}

/* Publish the queued submissions to the kernel; returns how many there are. What
 * liburing's submit functions do first (its __io_uring_flush_sq, which it does not
 * export), for submit_and_gather's own io_uring_enter. */
static unsigned sq_flush(struct io_uring *ring)
{
    struct io_uring_sq *sq = &ring->sq;
    unsigned tail = sq->sqe_tail;

    if (sq->sqe_head != tail) {
        sq->sqe_head = tail;
        io_uring_smp_store_release(sq->ktail, tail);
    }
    return tail - IO_URING_READ_ONCE(*sq->khead);
}

static void timespec_from_us(struct __kernel_timespec *ts, long long us)
{
    ts->tv_sec = us / 1000000;
    ts->tv_nsec = (us % 1000000) * 1000;
}

/* submit_and_wait with the kernel's minimum wait (min_wait_usec, Linux 6.12), which
 * liburing 2.3 cannot ask for: the wait gathers completions until BATCH_WAIT_MAX
 * are in, or batch_us has passed and at least one is; with none by then, the
 * first to come ends it. The kernel needs an overall timeout for that last part
 * (without one it ends the wait at batch_us, and an idle loop would spin), and a
 * timer due sooner than batch_us shortens the gathering. Returns as
 * io_uring_submit_and_wait_timeout does. */
static int submit_and_gather(struct backend *b, unsigned want, int64_t timeout_us)
{
    long long limit_us = timeout_us >= 0 ? timeout_us : GATHER_LIMIT_US;
    struct io_uring_getevents_arg arg;
    struct __kernel_timespec ts;
    unsigned flags = IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG;
    int fd = b->ring.ring_fd;
    long rc;

    timespec_from_us(&ts, limit_us);
    memset(&arg, 0, sizeof arg);
    arg.ts = (uint64_t)(uintptr_t)&ts;
    arg.pad = (uint32_t)(limit_us < b->batch_us ? limit_us : b->batch_us); /* min_wait_usec */
    if (b->ring_registered) {
        flags |= IORING_ENTER_REGISTERED_RING;
        fd = b->ring.enter_ring_fd;
    }
    rc = syscall(__NR_io_uring_enter, fd, sq_flush(&b->ring),
                 want > BATCH_WAIT_MAX ? want : BATCH_WAIT_MAX, flags, &arg, sizeof arg);
    return rc < 0 ? -errno : (int)rc;
}

/* Submit what is queued and wait for the next event, or until timeout_us (-1: no
 * limit). Completions that were expected to post during the submission do not
 * count as the event. Should one of them not post then after all, it still posts
 * when its request ends, and counts then: the wait ends one event late and never
 * hangs. No timer bounds the wait: arming one costs a ping-pong more than the
 * io_uring_enter this saves (measured: bench/analysis.md). */
static int submit_and_wait(struct backend *b, int64_t timeout_us)
{
    struct __kernel_timespec ts, *tsp = NULL;
    struct io_uring_cqe *cqe;
    unsigned want = 1 + b->expected;
    int rc;

    if (timeout_us >= 0) {
        timespec_from_us(&ts, timeout_us);
        tsp = &ts;
    }
    if (b->gathering)
        rc = submit_and_gather(b, want, timeout_us);
    else
        rc = io_uring_submit_and_wait_timeout(&b->ring, &cqe, want, tsp, NULL);
    if (want > 1 && (rc == -ETIME || rc == -EINTR) && io_uring_cq_ready(&b->ring) < want - 1)
        b->missed++;
    b->expected = 0;
    return rc;
}

static int uring_poll(struct backend *b, int64_t timeout_us, struct fired *out, int max)
{
    struct io_uring_cqe *cqe;
    unsigned head, seen = 0;
    int n = 0, rc;

    if (!b->started && uring_start(b) < 0)
        return -1;
    rc = submit_and_wait(b, timeout_us);
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY && rc != -EAGAIN) {
        errno = -rc;
        return -1;
    }
    io_uring_for_each_cqe(&b->ring, head, cqe) {
        if (n == max)
            break;
        seen++;
        if (cqe->user_data == 0)
            continue;
        if (uring_ud_tag(cqe->user_data) == URING_TAG_WATCH) {
            n += watch_completion(b, cqe, &out[n]);
            continue;
        }
        if (uring_ud_tag(cqe->user_data) == URING_TAG_UNWATCH) {
            unwatch_completion(b, cqe);
            continue;
        }
        out[n].kind = FIRED_COMPLETION;
        out[n].user_data = cqe->user_data;
        out[n].res = cqe->res;
        out[n].flags = cqe->flags;
        n++;
    }
    io_uring_cq_advance(&b->ring, seen);
    if (b->batch_us > 0)
        gather_judge(b, seen);
    return n;
}

static struct io_uring *uring_ring(struct backend *b)
{
    return &b->ring;
}

int uring_available(void)
{
    struct io_uring ring;
    struct io_uring_probe *probe;
    unsigned flags;
    int rc = ring_init(&ring, &flags);

    if (rc < 0) {
        errno = -rc;
        return -1;
    }
    /* Multishot accept and receive and buffer rings came with Linux 6.0; the probe
     * sees the newest opcode among those the engines use, which came with 5.19
     * (IORING_OP_SOCKET), and registering a buffer ring tells the rest. */
    probe = io_uring_get_probe_ring(&ring);
    rc = probe && io_uring_opcode_supported(probe, IORING_OP_SOCKET) ? 0 : -ENOSYS;
    if (probe)
        io_uring_free_probe(probe);
    io_uring_queue_exit(&ring);
    if (rc < 0) {
        errno = -rc;
        return -1;
    }
    return 0;
}

const struct backend_ops backend_uring = {
    .name = "uring",
    .create = uring_create,
    .destroy = uring_destroy,
    .add = uring_add,
    .mod = uring_mod,
    .del = uring_del,
    .poll = uring_poll,
    .ring = uring_ring,
};
