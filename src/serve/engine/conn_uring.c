/* conn_uring.c — stream connections on io_uring (see uring_engine.h).
 *
 * A connection counts its requests in flight (ops). It is freed only when it is
 * closing and the last of them has completed: a completion always finds its owner
 * alive, whatever else the same batch did. Closing cancels what is in flight.
 *
 * The receive buffers are shared by every connection of the worker, so none may
 * keep one while its peer is not reading: echoes go out from the ring buffers with
 * MSG_DONTWAIT, and when the socket is full (EAGAIN or a partial send) what is
 * left moves to the connection's own "spill" buffer (from the worker's pool) and
 * the ring buffers go back at once. Slow readers then cost their own memory, as on
 * epoll, never the other connections' input. An echo's multishot receive carries a
 * byte cap, the room --max-buffer leaves (submit_recv), or one batch could take
 * many buffers before the connection sees that its peer stopped reading. */
#include "serve/engine/uring_engine.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/ring.h"
#include "lib/loop_uring.h"
#include "serve/core/worker.h"
#include "serve/engine/stream.h"
#include "lib/util.h"

#define STREAM_BUFS 256             /* per worker at most; a power of two */
#define STREAM_BUFS_FIRST 16        /* published at start; more as load needs them */
#define STREAM_BUF_SIZE 16384
#define SEND_IOV_MAX 8
#define SEND_CTX_KEEP 256           /* free send contexts kept per worker */
#define EXPECT_BACKOFF 64           /* sends not expected whole after one that was not */

struct send_ctx {
    struct msghdr msg;
    struct iovec iov[SEND_IOV_MAX];
    struct send_ctx *next;
};

/* Where the send in flight takes its bytes from. */
enum { SRC_TX, SRC_SPILL, SRC_QUEUE };

struct uconn {
    struct stream s;
    struct ring spill;              /* echoed bytes the peer was slow to take (older
                                     * than any still in the queue) */
    struct dlink starved;           /* uring_state.starved */
    struct send_ctx *sx;            /* while a sendmsg of several buffers is in flight */
    uint16_t qhead, qtail;          /* echoed bytes: a queue of stream buffers */
    uint16_t qoff;                  /* bytes of the head buffer already sent */
    uint16_t nheld;
    uint8_t ops;                    /* requests in flight */
    uint32_t send_len;              /* what the send in flight offers */
    unsigned closing : 1;
    unsigned recv_on : 1;
    unsigned recv_cancelled : 1;
    unsigned recv_capped : 1;       /* the receive in flight has a byte cap */
    unsigned send_on : 1;
    unsigned hup_on : 1;
    unsigned is_starved : 1;
    unsigned progressed : 1;        /* bytes moved since the last step */
    unsigned sent : 1;              /* bytes the peer took since the last step */
    unsigned send_src : 2;          /* SRC_*, while send_on */
    unsigned no_spill : 1;          /* no memory for a spill buffer: sends may wait */
    unsigned send_expected : 1;     /* the loop may sleep past its send's completion */
};

static struct worker *uc_wk(const struct uconn *c)
{
    return stream_wk(&c->s);
}

static struct io_uring *ring_of(struct worker *wk)
{
    return wk->uring->ring;
}

static void submit_recv(struct uconn *c);
static int uconn_wants_input(const struct uconn *c);

static int uconn_has_output(const struct uconn *c)
{
    return c->s.tx_off < c->s.tx_len || c->qhead != BUF_NONE || !ring_empty(&c->spill);
}

static int spilling(const struct uconn *c)
{
    return c->spill.data != NULL;
}

static void queue_push(struct uconn *c, unsigned bid, unsigned len)
{
    struct uring_state *us = uc_wk(c)->uring;

    us->next[bid] = BUF_NONE;
    us->len[bid] = (uint16_t)len;
    if (c->qhead == BUF_NONE)
        c->qhead = (uint16_t)bid;
    else
        us->next[c->qtail] = (uint16_t)bid;
    c->qtail = (uint16_t)bid;
    c->nheld++;
}

/* Let the longest-starved connection receive again, if a buffer is free. */
static void wake_starved(struct worker *wk)
{
    struct uring_state *us = wk->uring;
    struct uconn *c;

    if (dlist_empty(&us->starved) || bufring_empty(&us->stream))
        return;
    c = container_of(us->starved.next, struct uconn, starved);
    dlist_remove(&c->starved);
    c->is_starved = 0;
    if (!c->recv_on && uconn_wants_input(c))
        submit_recv(c);
}

/* A buffer is back in the ring: a connection that ran short may receive again. */
static void buffer_returned(struct worker *wk, unsigned bid)
{
    bufring_put(&wk->uring->stream, bid);
    wake_starved(wk);
}

static void queue_pop(struct uconn *c)
{
    unsigned bid = c->qhead;

    c->qhead = uc_wk(c)->uring->next[bid];
    c->qoff = 0;
    c->nheld--;
    buffer_returned(uc_wk(c), bid);
}

static void queue_clear(struct uconn *c)
{
    while (c->qhead != BUF_NONE)
        queue_pop(c);
}

/* Move queued ring buffers, oldest first, into the spill buffer while they fit
 * whole, giving each back to the ring. Returns 0, or -1 if no spill buffer could
 * be had (out of memory: the ring buffers stay where they are). */
static int spill_queue(struct uconn *c)
{
    struct uring_state *us = uc_wk(c)->uring;

    if (!spilling(c)) {
        char *buf = pool_get(&uc_wk(c)->pool);

        c->no_spill = buf == NULL;
        if (buf == NULL)
            return -1;
        ring_attach(&c->spill, buf, uc_wk(c)->pool.size);
    }
    while (c->qhead != BUF_NONE) {
        size_t len = us->len[c->qhead] - c->qoff;

        if (ring_space(&c->spill) < len)
            break;
        ring_put(&c->spill, bufring_addr(&us->stream, c->qhead) + c->qoff, len);
        queue_pop(c);
    }
    return 0;
}

/* The spill buffer goes back to the pool once empty: an idle connection holds none. */
static void spill_release(struct uconn *c)
{
    if (spilling(c) && ring_empty(&c->spill) && c->qhead == BUF_NONE)
        pool_put(&uc_wk(c)->pool, ring_detach(&c->spill));
}

/* Several queued buffers go out in one sendmsg: one segment instead of several,
 * which saves both ends more than the system call. Its header lives in a context
 * taken from the worker for the time of the send, not in every connection. */
static struct send_ctx *send_ctx_get(struct uring_state *us)
{
    struct send_ctx *sx = us->free_sends;

    if (sx == NULL)
        return calloc(1, sizeof *sx);
    us->free_sends = sx->next;
    us->nfree_sends--;
    return sx;
}

static void send_ctx_put(struct uring_state *us, struct send_ctx *sx)
{
    if (us->nfree_sends >= SEND_CTX_KEEP) {
        free(sx);
        return;
    }
    sx->next = us->free_sends;
    us->free_sends = sx;
    us->nfree_sends++;
}

static int uconn_wants_input(const struct uconn *c);

/* An echo from the ring buffers may not wait (MSG_DONTWAIT), so it completes while
 * it is submitted; when it goes out whole, nothing follows from its completion
 * until the next input arrives. Tell the loop, so that submitting it and waiting
 * for that input are one io_uring_enter: a ping-pong's one system call per
 * message. Not after a send that did not go whole: the socket is filling, and its
 * completions are worth handling at once. */
static void expect_echo_sent(struct uconn *c)
{
    struct uring_state *us = uc_wk(c)->uring;

    if (us->expect_backoff > 0) {
        us->expect_backoff--;
        return;
    }
    /* The input must be coming: a receive armed (or armed by this step). One that
     * ended at its cap is armed again only once the send's completion is handled,
     * and waiting for input first would wait for a timer. */
    if (!(c->recv_on && !c->recv_cancelled) && !uconn_wants_input(c))
        return;
    if (!c->s.shut_after_send && !c->s.repeat && !c->s.stopping && !c->s.rd_eof) {
        uring_expect_inline(us->ring);
        c->send_expected = 1;
    }
}

static void submit_sendmsg(struct uconn *c, struct send_ctx *sx)
{
    struct uring_state *us = uc_wk(c)->uring;
    struct io_uring_sqe *sqe;
    unsigned off = c->qoff, n = 0;

    c->send_len = 0;
    for (unsigned bid = c->qhead; bid != BUF_NONE && n < SEND_IOV_MAX; bid = us->next[bid]) {
        sx->iov[n].iov_base = bufring_addr(&us->stream, bid) + off;
        sx->iov[n].iov_len = us->len[bid] - off;
        c->send_len += (uint32_t)sx->iov[n].iov_len;
        off = 0;
        n++;
    }
    memset(&sx->msg, 0, sizeof sx->msg);
    sx->msg.msg_iov = sx->iov;
    sx->msg.msg_iovlen = n;
    c->sx = sx;
    sqe = uring_get_sqe(us->ring);
    io_uring_prep_sendmsg(sqe, c->s.fd, &sx->msg, MSG_NOSIGNAL | (c->no_spill ? 0 : MSG_DONTWAIT) |
                          final_send_flags(c->s.shut_after_send, c->s.repeat));
    io_uring_sqe_set_data64(sqe, uring_ud(c, TAG_SEND));
    if (TRACE_ON)
        trace_submit("sendmsg(%d, %u buffers)", c->s.fd, n);
    if (!c->no_spill)
        expect_echo_sent(c);
}

/* Output goes in order: the greeting, then spilled bytes, then the queue. Only a
 * send from ring buffers must not wait for room (MSG_DONTWAIT); the others send
 * memory of the connection's own and may wait as long as the peer takes. */
static void submit_send(struct uconn *c)
{
    struct uring_state *us = uc_wk(c)->uring;
    struct io_uring_sqe *sqe;
    struct iovec iov[2];
    int flags = MSG_NOSIGNAL;
    const char *data;
    size_t len;

    c->send_on = 1;
    c->ops++;
    flags |= final_send_flags(c->s.shut_after_send, c->s.repeat);
    if (c->s.tx_off < c->s.tx_len) {
        c->send_src = SRC_TX;
        data = c->s.tx + c->s.tx_off;
        len = c->s.tx_len - c->s.tx_off;
    } else if (!ring_empty(&c->spill)) {
        c->send_src = SRC_SPILL;
        ring_data_iov(&c->spill, iov);
        data = iov[0].iov_base;
        len = iov[0].iov_len;
    } else {
        c->send_src = SRC_QUEUE;
        if (us->next[c->qhead] != BUF_NONE) {
            struct send_ctx *sx = send_ctx_get(us);

            if (sx) {
                submit_sendmsg(c, sx);
                return;
            }
        }
        data = bufring_addr(&us->stream, c->qhead) + c->qoff;
        len = us->len[c->qhead] - c->qoff;
        if (!c->no_spill)
            flags |= MSG_DONTWAIT;
    }
    c->send_len = (uint32_t)len;
    sqe = uring_get_sqe(us->ring);
    io_uring_prep_send(sqe, c->s.fd, data, len, flags);
    io_uring_sqe_set_data64(sqe, uring_ud(c, TAG_SEND));
    if (TRACE_ON)
        trace_submit("send(%d, %zu)", c->s.fd, len);
    if (flags & MSG_DONTWAIT)
        expect_echo_sent(c);
}

/* n bytes went out from the source of the send. */
static void consume_output(struct uconn *c, size_t n)
{
    struct uring_state *us = uc_wk(c)->uring;

    n = stream_sent(&c->s, n);  /* a send from tx takes nothing from the others */
    if (c->send_src == SRC_TX)
        return;
    if (c->send_src == SRC_SPILL) {
        ring_consume(&c->spill, n);
        spill_queue(c);         /* room again: take in what was queued meanwhile */
        spill_release(c);
        return;
    }
    while (n > 0 && c->qhead != BUF_NONE) {
        size_t left = us->len[c->qhead] - c->qoff;

        if (n < left) {
            c->qoff += (uint16_t)n;
            return;
        }
        n -= left;
        queue_pop(c);
    }
}

/* The byte cap of an echo's receive: the kernel ends a capped multishot receive
 * once it has taken that many bytes, the last receive taking a whole buffer's
 * worth, so the cap is the room (whole buffers under --max-buffer, or what the
 * spill buffer has room for; uconn_wants_input asks for a buffer's worth at
 * least) less a buffer's worth but a byte. 0: no cap (the input is not kept). */
static size_t input_cap(const struct uconn *c)
{
    size_t room;

    if (!stream_echoes_input(&c->s))
        return 0;
    if (spilling(c))
        room = ring_space(&c->spill);
    else
        room = (uc_wk(c)->uring->max_held - c->nheld) * STREAM_BUF_SIZE;
    return room >= STREAM_BUF_SIZE ? room - (STREAM_BUF_SIZE - 1) : 1;
}

/* A multishot receive takes what has come in as fast as the kernel runs it, many
 * buffers in one batch, before a completion can tell us to stop. So it carries a
 * byte cap (sqe->optlen of newer kernels, 6.18 here; file_index's place in
 * liburing 2.3's header; an older kernel refuses it and receives uncapped):
 * a peer that reads nothing can make us hold no more than --max-buffer, nor pin
 * more of the worker's shared buffers. */
static void submit_recv(struct uconn *c)
{
    struct uring_state *us = uc_wk(c)->uring;
    struct io_uring_sqe *sqe = uring_get_sqe(us->ring);
    size_t cap = us->recv_cap_off ? 0 : input_cap(c);

    io_uring_prep_recv_multishot(sqe, c->s.fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = STREAM_GROUP;
    sqe->file_index = (uint32_t)(cap < UINT32_MAX ? cap : 0);
    io_uring_sqe_set_data64(sqe, uring_ud(c, TAG_RECV));
    if (TRACE_ON)
        trace_submit(cap ? "recv_multishot(%d, cap %zu)" : "recv_multishot(%d)", c->s.fd, cap);
    c->recv_capped = sqe->file_index != 0;
    c->recv_on = 1;
    c->recv_cancelled = 0;
    c->ops++;
}

static void submit_hup_wait(struct uconn *c)
{
    struct io_uring_sqe *sqe = uring_get_sqe(ring_of(uc_wk(c)));

    io_uring_prep_poll_add(sqe, c->s.fd, POLLRDHUP);
    io_uring_sqe_set_data64(sqe, uring_ud(c, TAG_HUP));
    if (TRACE_ON)
        trace_submit("poll(%d, POLLRDHUP)", c->s.fd);
    c->hup_on = 1;
    c->ops++;
}

static void uconn_free(struct uconn *c, int close_now)
{
    struct worker *wk = uc_wk(c);
    struct ip_count *ipc = c->s.ipc;

    if (close_now) {
        int rc = close(c->s.fd);

        if (TRACE_ON)
            trace_fd("close(%d)", c->s.fd, rc);
    } else {
        /* Nothing holds the descriptor any more: it can close with the next batch. */
        struct io_uring_sqe *sqe = uring_get_sqe(ring_of(wk));

        io_uring_prep_close(sqe, c->s.fd);
        io_uring_sqe_set_data64(sqe, 0);
        if (TRACE_ON)
            trace_submit("close(%d)", c->s.fd);
    }
    dlist_remove(&c->s.all);    /* from us->closing */
    queue_clear(c);
    if (spilling(c)) {
        c->spill.len = 0;
        pool_put(&wk->pool, ring_detach(&c->spill));
    }
    if (c->sx)
        send_ctx_put(wk->uring, c->sx);
    free(c);
    stream_freed(wk, ipc);
}

/* Marks c closing and cancels its requests; uconn_advance frees it once the last
 * one has completed. */
static void uconn_close(struct uconn *c)
{
    struct io_uring_sqe *sqe;

    if (c->closing)
        return;
    c->closing = 1;
    stream_retire(&c->s);
    /* Out of the stream set, but still found by uconn_close_all while its
     * requests finish. */
    dlist_push_tail(&uc_wk(c)->uring->closing, &c->s.all);
    dlist_remove(&c->starved);
    c->is_starved = 0;
    if (c->ops == 0)
        return;
    sqe = uring_get_sqe(ring_of(uc_wk(c)));
    io_uring_prep_cancel_fd(sqe, c->s.fd, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(sqe, 0);
    if (TRACE_ON)
        trace_submit("cancel_fd(%d)", c->s.fd);
}

static void uconn_advance(struct uconn *c);

static void linger_expired(struct deadline_list *dl, struct deadline *d)
{
    struct uconn *c = container_of(d, struct uconn, s.timer);

    (void)dl;
    uconn_close(c);
    uconn_advance(c);
}

/* Silent too long: say goodbye as after any exchange. */
static void idle_expired(struct deadline_list *dl, struct deadline *d)
{
    struct uconn *c = container_of(d, struct uconn, s.timer);

    (void)dl;
    stream_idle_expired(&c->s);
    uconn_advance(c);
}

/* The peer reads nothing: nothing more can be said to it. */
static void stall_expired(struct deadline_list *dl, struct deadline *d)
{
    struct uconn *c = container_of(d, struct uconn, s.timer);

    (void)dl;
    if (!stream_stall_expired(&c->s))
        return;
    uconn_close(c);
    uconn_advance(c);
}

static void uconn_schedule(struct uconn *c)
{
    stream_schedule(&c->s, uconn_has_output(c), c->sent, c->progressed);
    c->progressed = c->sent = 0;
}

static int uconn_wants_input(const struct uconn *c)
{
    if (c->s.rd_eof || c->is_starved)
        return 0;
    if (c->s.echo && c->s.stopping)
        return 0;   /* only what was read is owed */
    if (!stream_echoes_input(&c->s))
        return 1;
    if (spilling(c))
        return c->qhead == BUF_NONE && ring_space(&c->spill) >= STREAM_BUF_SIZE;
    return c->nheld < uc_wk(c)->uring->max_held;
}

/* The next step, as conn_advance in conn.c. */
static void uconn_step(struct uconn *c)
{
    /* Endless output ends when the server stops (what is left is not owed), once
     * the send in flight, which takes from it, has completed. */
    if (c->s.stopping && c->s.repeat && !c->send_on) {
        stream_stop_repeating(&c->s);
    }
    if (!c->send_on && uconn_has_output(c) && !c->s.wr_shut)
        submit_send(c);
    /* A stopping echo connection says goodbye only once no more input can arrive. */
    if (!uconn_has_output(c) && !c->s.wr_shut &&
        (c->s.shut_after_send || c->s.rd_eof || (c->s.stopping && !(c->s.echo && c->recv_on))))
        stream_shutdown(&c->s);
    if (c->s.wr_shut && c->s.rd_eof) {
        uconn_close(c);
        return;
    }
    if (uconn_wants_input(c)) {
        if (!c->recv_on)
            submit_recv(c);
    } else if (c->recv_on && !c->recv_cancelled && !c->s.rd_eof) {
        uring_cancel(uc_wk(c), uring_ud(c, TAG_RECV));
        if (TRACE_ON)
            trace_submit("cancel recv(%d)", c->s.fd);
        c->recv_cancelled = 1;
    }
    if (c->s.echo && c->s.stopping && c->s.wr_shut && !c->hup_on)
        submit_hup_wait(c);
    uconn_schedule(c);
}

/* Every completion ends here. Frees c once it is closing and nothing is in flight.
 * Anything that happens to c while its send is in flight (more input, the end of
 * it, a timer, a stop) may need that send's completion handled at once. */
static void uconn_advance(struct uconn *c)
{
    if (c->send_expected) {
        c->send_expected = 0;
        uring_unexpect(ring_of(uc_wk(c)));
    }
    if (!c->closing)
        uconn_step(c);
    if (c->closing && c->ops == 0)
        uconn_free(c, 0);
}

static void on_recv(struct uconn *c, int res, unsigned flags)
{
    struct worker *wk = uc_wk(c);

    if (!(flags & IORING_CQE_F_MORE)) {
        c->recv_on = 0;
        c->ops--;
    }
    if (flags & IORING_CQE_F_BUFFER) {
        unsigned bid = bufring_bid(flags);

        bufring_take(&wk->uring->stream);
        if (res > 0 && stream_echoes_input(&c->s) && !c->closing) {
            queue_push(c, bid, (unsigned)res);
            if (spilling(c))
                spill_queue(c);     /* the peer is slow: keep no ring buffer */
        } else {
            buffer_returned(wk, bid);   /* discarded, or nothing in it */
        }
    } else if (res != -ENOBUFS) {
        wake_starved(wk);   /* this one took no buffer: the next may have it */
    }
    if (res > 0) {
        c->progressed = 1;
        c->s.in += (uint64_t)res;
        counter_add(&c->s.l->stats.bytes_in, (uint64_t)res);
    } else if (res == 0) {
        c->s.rd_eof = 1;
    } else if (res == -ENOBUFS) {
        /* Every buffer is in use: wait for one (buffer_returned), not a failure.
         * Unless the ring has grown since the kernel found it empty: retry now. */
        if (!c->is_starved && !c->closing && bufring_empty(&wk->uring->stream)) {
            c->is_starved = 1;
            dlist_push_tail(&wk->uring->starved, &c->starved);
        }
    } else if (res == -EINVAL && c->recv_capped && !wk->uring->recv_cap_off) {
        wk->uring->recv_cap_off = 1;    /* an older kernel: receive without the cap */
    } else if (res != -ECANCELED) {
        uconn_close(c);     /* reset, or the like */
    }
    uconn_advance(c);
}

static void on_send(struct uconn *c, int res)
{
    size_t n;

    c->send_expected = 0;       /* this is the completion that was expected */
    c->send_on = 0;
    c->ops--;
    if (c->sx) {
        send_ctx_put(uc_wk(c)->uring, c->sx);
        c->sx = NULL;
    }
    if (res < 0) {
        if (res != -EAGAIN && res != -EINTR) {
            uconn_close(c);     /* EPIPE, ECONNRESET, or cancelled by close */
            uconn_advance(c);
            return;
        }
        if (res == -EAGAIN)
            stream_send_full(&c->s);
        if (c->send_src == SRC_QUEUE) {
            spill_queue(c);     /* no room: free the ring buffers, wait with our own */
            uc_wk(c)->uring->expect_backoff = EXPECT_BACKOFF;
        }
        uconn_advance(c);
        return;
    }
    n = (size_t)res;
    c->progressed = c->sent = n > 0;
    consume_output(c, n);
    if (n < c->send_len)
        stream_send_full(&c->s);    /* after counting n: the mark goes with s->out */
    if (c->send_src == SRC_QUEUE && c->qhead != BUF_NONE) {
        spill_queue(c);         /* a partial send: the socket is full */
        uc_wk(c)->uring->expect_backoff = EXPECT_BACKOFF;
    }
    uconn_advance(c);
}

static void on_hup(struct uconn *c, int res)
{
    c->hup_on = 0;
    c->ops--;
    if (res != -ECANCELED)
        c->s.rd_eof = 1;      /* the peer closed, or the socket failed: either way, done */
    uconn_advance(c);
}

void uconn_open(struct worker *wk, struct listener *l, const struct accepted *a)
{
    struct uconn *c = calloc(1, sizeof *c);
    struct conn_plan plan;

    if (c == NULL) {
        worker_conn_release(wk, a->slot);
        close(a->fd);
        return;
    }
    c->qhead = c->qtail = BUF_NONE;
    dlist_init(&c->starved);
    c->progressed = c->sent = 1;
    stream_open(&c->s, l, a, &plan, STREAM_UCONN);
    if (stream_queue_copy(&c->s, &c->spill, &plan) < 0)
        uconn_close(c);
    uconn_advance(c);
}

static void uconn_stop(struct stream *s)
{
    struct uconn *c = container_of(s, struct uconn, s);

    c->s.stopping = 1;
    uconn_advance(c);       /* may close c */
}

/* The loop stops right after this (a deadline, or exit), and tearing down the ring
 * ends every request: connections are freed at once. */
static void uconn_close_now(struct stream *s)
{
    struct uconn *c = container_of(s, struct uconn, s);

    uconn_close(c);
    uconn_free(c, 1);
}

static void trace_complete(const struct uconn *c, unsigned tag, int32_t res, uint32_t flags)
{
    const char *op = tag == TAG_RECV ? "recv" : tag == TAG_SEND ? "send" : "poll";
    const char *note = NULL;

    if (tag == TAG_RECV && res == 0)
        note = "peer closed: FIN";
    else if (tag == TAG_RECV && res > 0 && !(flags & IORING_CQE_F_MORE))
        note = "multishot ended";
    trace_cqe(res, note, "%s(%d)", op, c->s.fd);
}

/* The loop stops right after: every connection goes now, those already closing
 * (waiting for their requests to end) too, or they would never be freed. */
void uconn_close_all(struct worker *wk)
{
    struct uring_state *us = wk->uring;

    stream_close_all(wk);
    for (struct dlink *node = us->closing.next, *next; node != &us->closing; node = next) {
        next = node->next;      /* freeing one takes it off the list, and no other */
        uconn_free(container_of(node, struct uconn, s.all), 1);
    }
}

void uconn_complete(void *obj, unsigned tag, int32_t res, uint32_t flags)
{
    if (TRACE_ON)
        trace_complete(obj, tag, res, flags);
    switch (tag) {
    case TAG_RECV: on_recv(obj, res, flags); break;
    case TAG_SEND: on_send(obj, res); break;
    case TAG_HUP: on_hup(obj, res); break;
    default: break;
    }
}

int uconn_init(struct worker *wk)
{
    struct uring_state *us = wk->uring;

    us->max_held = (wk->cfg->max_buffer + STREAM_BUF_SIZE - 1) / STREAM_BUF_SIZE;
    /* Spill buffers hold what the ring buffers of a connection may: whole ones. */
    pool_destroy(&wk->pool);
    pool_init(&wk->pool, us->max_held * STREAM_BUF_SIZE, wk->pool.keep);
    dlist_init(&us->starved);
    dlist_init(&us->closing);
    stream_set_init(wk, STREAM_UCONN, linger_expired, idle_expired, stall_expired, uconn_stop,
                    uconn_close_now);
    us->next = xcalloc(STREAM_BUFS, sizeof *us->next);
    us->len = xcalloc(STREAM_BUFS, sizeof *us->len);
    return bufring_init(&us->stream, wk->loop, STREAM_GROUP, STREAM_BUFS, STREAM_BUF_SIZE,
                        STREAM_BUFS_FIRST);
}

void uconn_destroy(struct worker *wk)
{
    struct uring_state *us = wk->uring;

    while (us->free_sends) {
        struct send_ctx *sx = us->free_sends;

        us->free_sends = sx->next;
        free(sx);
    }
    bufring_destroy(&us->stream);
    free(us->next);
    free(us->len);
}
