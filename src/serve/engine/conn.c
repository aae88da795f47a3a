/* conn.c — the stream connection state machine on readiness (see conn.h).
 *
 * Each event runs: read (if asked), write what is pending (at once, without waiting
 * for a writable event: the socket almost always has room), then conn_advance decides
 * the next step and what to wait for. Only a connection's own handler or a timer
 * frees it, never a handler of another object in the same batch (loop.c relies on it).
 *
 * A shaped connection (its listener has faults, or may get some from --control)
 * carries a shaper (fault.h) and asks it before every send how much may go; when
 * nothing may, it waits on the worker's heap instead of for a writable socket, and
 * the byte counts end it as they say (FIN, reset, stall). Both engines serve such
 * connections here; one without faults never pays more than a NULL test. */
#include "serve/engine/conn.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/net.h"
#include "lib/ring.h"
#include "lib/tls.h"
#include "lib/util.h"
#include "serve/engine/stream.h"

#define DISCARD_CHUNK 16384
#define SENDS_PER_EVENT 64          /* shaped: slices sent back to back before yielding */
#define RESET_POLL_MS 5             /* reset-after: how often to look for the peer's ACK */

/* A shaped connection's faults in progress. */
struct conn_shape {
    struct shaper sh;
    struct worker_wait wait;    /* on wk->waits: until the shaper lets more go */
    double roll;                /* it gets the faults while roll < toxicity */
    unsigned want_write : 1;    /* allowed bytes wait for room in the socket */
    unsigned stalled : 1;       /* stall-after: nothing in or out until idle */
    unsigned resetting : 1;     /* reset-after: the reset waits for the last ACK */
    unsigned fin_done : 1;      /* close-after: the output is cut */
    /* TLS: a record that SSL_write could not send yet must be offered again with at
     * least as many bytes, whatever the shaper allows by then. */
    size_t tls_retry;
};

struct conn {
    struct stream s;
    struct watch w;             /* w.fd is s.fd */
    struct ring ring;           /* copied and echoed bytes; storage only while any are held */
    SSL *tls;                   /* "+tls": records through OpenSSL; NULL: plain */
    struct conn_shape *shape;   /* shaped connections only: right after the struct */
};

static void conn_shape_made(struct conn *c, uint64_t n);
static int conn_write_shaped(struct conn *c);

/* What moved in the event just handled: the idle clock restarts on any byte, the
 * send clock only on bytes the peer took. */
enum { MOVED_IN = 1, MOVED_OUT = 2 };

static void conn_advance(struct conn *c, int moved);
static void conn_close(struct conn *c);

static struct worker *conn_wk(const struct conn *c)
{
    return stream_wk(&c->s);
}

static int conn_has_output(const struct conn *c)
{
    return stream_tx_left(&c->s) || !ring_empty(&c->ring);
}

static void conn_release_buffer(struct conn *c)
{
    if (c->ring.data && ring_empty(&c->ring))
        pool_put(&conn_wk(c)->pool, ring_detach(&c->ring));
}

/* The transport: the socket itself, or TLS records over it. Both return as
 * readv/sendmsg do: bytes (0 at the end of input), or -1 with errno (EAGAIN when
 * it must wait; for TLS, ECONNRESET or EPROTO when the session broke). */
static ssize_t tls_errno(ssize_t rc, int writing)
{
    switch (rc) {
    case TLS_CLOSED:
        /* For a write, OpenSSL says "closed" once the peer's FIN or close_notify
         * came and the write failed: the peer is gone, as EPIPE says. Never "0
         * sent", which the caller would try again at once, for ever. */
        if (!writing)
            return 0;
        errno = EPIPE;
        return -1;
    case TLS_WANT_READ: case TLS_WANT_WRITE: errno = EAGAIN; return -1;
    case TLS_RESET: errno = ECONNRESET; return -1;
    default: errno = EPROTO; return -1;
    }
}

static ssize_t conn_recv(struct conn *c, struct iovec *iov, int cnt)
{
    char why[128];
    ssize_t got = 0;

    if (c->tls == NULL)
        return readv(c->s.fd, iov, cnt);
    for (int i = 0; i < cnt; i++) {
        ssize_t n = tls_read(c->tls, iov[i].iov_base, iov[i].iov_len, why, sizeof why);

        if (n <= 0)
            return got > 0 ? got : tls_errno(n, 0);
        got += n;
        if ((size_t)n < iov[i].iov_len)
            break;
    }
    return got;
}

static ssize_t conn_send(struct conn *c, struct msghdr *msg, int flags)
{
    char why[128];
    ssize_t sent = 0;

    /* MSG_NOSIGNAL: a peer that vanished is an error code here, never a SIGPIPE. */
    if (c->tls == NULL)
        return sendmsg(c->s.fd, msg, MSG_NOSIGNAL | flags);
    for (size_t i = 0; i < msg->msg_iovlen; i++) {
        struct iovec *v = &msg->msg_iov[i];
        ssize_t n = tls_write(c->tls, v->iov_base, v->iov_len, why, sizeof why);

        if (n <= 0)
            return sent > 0 ? sent : tls_errno(n, 1);
        sent += n;
        if ((size_t)n < v->iov_len)
            break;
    }
    return sent;
}

/* Returns the bytes read, 0 at the end of input or when there is nothing (or no
 * room) to read now, or -1 when the connection is broken (reset, out of memory). */
static ssize_t conn_read_echo(struct conn *c)
{
    struct iovec iov[2];
    ssize_t n;
    int cnt;

    if (c->ring.data == NULL) {
        char *buf = pool_get(&conn_wk(c)->pool);

        if (buf == NULL)
            return -1;
        ring_attach(&c->ring, buf, conn_wk(c)->cfg->max_buffer);
    }
    cnt = ring_space_iov(&c->ring, iov);
    if (cnt == 0)
        return 0;
    n = conn_recv(c, iov, cnt);
    if (TRACE_ON)
        trace_io("recv", c->s.fd, n, ring_space(&c->ring));
    if (n > 0)
        ring_produce(&c->ring, (size_t)n);
    if (n > 0 && c->shape)
        conn_shape_made(c, (uint64_t)n);
    else if (n <= 0)
        conn_release_buffer(c);     /* an idle connection holds no buffer */
    if (n == 0)
        c->s.rd_eof = 1;
    return n;
}

/* Returns 0, or -1 when the connection is broken (reset, or out of memory). */
static int conn_read(struct conn *c)
{
    char discard[DISCARD_CHUNK];
    struct iovec iov = { .iov_base = discard, .iov_len = sizeof discard };
    ssize_t n;

    if (stream_echoes_input(&c->s)) {
        n = conn_read_echo(c);
    } else {
        n = conn_recv(c, &iov, 1);
        if (TRACE_ON)
            trace_io("recv", c->s.fd, n, sizeof discard);
        if (n == 0)
            c->s.rd_eof = 1;
    }
    if (n > 0) {
        c->s.in += (uint64_t)n;
        counter_add(&c->s.l->stats.bytes_in, (uint64_t)n);
        return 0;
    }
    if (n == 0)
        return 0;
    return errno == EAGAIN || errno == EINTR ? 0 : -1;
}

/* Returns 0, or -1 when the peer is gone (EPIPE, ECONNRESET). */
static int conn_write(struct conn *c)
{
    struct iovec iov[3];
    struct msghdr msg = { .msg_iov = iov };
    size_t offered;
    ssize_t n;

    if (c->shape)
        return conn_write_shaped(c);
    if (stream_tx_left(&c->s)) {
        iov[0].iov_base = (void *)(c->s.tx + c->s.tx_off);
        iov[0].iov_len = c->s.tx_len - c->s.tx_off;
        msg.msg_iovlen = 1;
    }
    msg.msg_iovlen += (size_t)ring_data_iov(&c->ring, iov + msg.msg_iovlen);
    offered = (stream_tx_left(&c->s) ? c->s.tx_len - c->s.tx_off : 0) + ring_used(&c->ring);
    n = conn_send(c, &msg, final_send_flags(c->s.shut_after_send, c->s.repeat));
    if (TRACE_ON)
        trace_io("send", c->s.fd, n, offered);
    if (n < 0 && errno != EAGAIN && errno != EINTR)
        return -1;
    if (n >= 0) {
        ring_consume(&c->ring, stream_sent(&c->s, (size_t)n));
        conn_release_buffer(c);
    }
    if (n < (ssize_t)offered && (n >= 0 || errno == EAGAIN))
        stream_send_full(&c->s);
    return 0;
}

static void linger_expired(struct deadline_list *dl, struct deadline *d)
{
    (void)dl;
    conn_close(container_of(d, struct conn, s.timer));
}

static void idle_expired(struct deadline_list *dl, struct deadline *d)
{
    struct conn *c = container_of(d, struct conn, s.timer);

    (void)dl;
    stream_idle_expired(&c->s);
    if (c->shape && c->shape->stalled) {
        conn_close(c);          /* stall-after: held until the idle limit */
        return;
    }
    conn_advance(c, 0);
}

static void stall_expired(struct deadline_list *dl, struct deadline *d)
{
    struct conn *c = container_of(d, struct conn, s.timer);

    (void)dl;
    if (stream_stall_expired(&c->s))
        conn_close(c);
}

static void conn_stop(struct stream *s)
{
    struct conn *c = container_of(s, struct conn, s);

    c->s.stopping = 1;
    conn_advance(c, 0);
}

static void conn_close_now(struct stream *s)
{
    conn_close(container_of(s, struct conn, s));
}

void conn_engine_init(struct worker *wk)
{
    stream_set_init(wk, STREAM_CONN, linger_expired, idle_expired, stall_expired, conn_stop,
                    conn_close_now);
}

/* Our goodbye: over TLS its close_notify first (best effort: a peer that is gone or
 * full gets the FIN alone). */
static void conn_shutdown(struct conn *c)
{
    if (c->tls)
        tls_shutdown(c->tls);
    stream_shutdown(&c->s);
}

static unsigned conn_wanted(const struct conn *c)
{
    unsigned mask = 0;

    if (c->shape && (c->shape->stalled || c->shape->resetting))
        return 0;
    if (conn_has_output(c) && (c->shape == NULL || c->shape->want_write))
        mask |= LOOP_WRITE;
    if (c->s.rd_eof)
        return mask;
    if (c->s.echo && c->s.stopping) {
        /* Read nothing more: only what was read is owed. Once our side is shut,
         * wait for the peer to close without reading its input. */
        if (c->s.wr_shut)
            mask |= LOOP_HUP;
    } else if (!stream_echoes_input(&c->s) || ring_space(&c->ring) > 0 || c->ring.data == NULL) {
        mask |= LOOP_READ;
    }
    return mask;
}

static int conn_shape_act(struct conn *c);

static void conn_advance(struct conn *c, int moved)
{
    if (c->shape && conn_shape_act(c))
        return;                 /* closed, or stalled: nothing else to do */
    if (c->s.stopping && c->s.repeat)
        stream_stop_repeating(&c->s);
    if (!conn_has_output(c) && !c->s.wr_shut &&
        (c->s.shut_after_send || c->s.rd_eof || c->s.stopping))
        conn_shutdown(c);
    if (c->s.wr_shut && c->s.rd_eof) {
        conn_close(c);
        return;
    }
    if (loop_watch(conn_wk(c)->loop, &c->w, conn_wanted(c)) < 0) {
        conn_close(c);
        return;
    }
    /* Output held back by the faults waits on us, not on the peer: the idle clock. */
    stream_schedule(&c->s, conn_has_output(c) && (c->shape == NULL || c->shape->want_write),
                    moved & MOVED_OUT, moved);
}

/* OpenSSL may hold records it has decrypted and we had no room for: the socket
 * will not say so again, so they are read as soon as there is room. */
static int tls_held(const struct conn *c)
{
    return c->tls && tls_pending(c->tls) > 0 && !c->s.rd_eof &&
           (!stream_echoes_input(&c->s) || c->ring.data == NULL || ring_space(&c->ring) > 0);
}

static void conn_event(struct loop *loop, struct watch *w, unsigned events)
{
    struct conn *c = container_of(w, struct conn, w);
    uint64_t in = c->s.in, out = c->s.out;
    int rounds = 0;

    (void)loop;
    if ((events & LOOP_HUP) && c->s.stopping && c->s.echo && c->s.wr_shut) {
        conn_close(c);
        return;
    }
    do {
        if (((events & LOOP_READ) || tls_held(c)) && conn_read(c) < 0) {
            conn_close(c);
            return;
        }
        if (conn_has_output(c) && conn_write(c) < 0) {
            conn_close(c);
            return;
        }
        events = 0;
    } while (tls_held(c) && ++rounds < 8);
    conn_advance(c, (c->s.in != in ? MOVED_IN : 0) | (c->s.out != out ? MOVED_OUT : 0));
}

static void conn_shape_open(struct conn *c, const struct conn_plan *plan);

/* A shaped connection's conn_shape follows its struct conn in one allocation. */
static void conn_serve(struct worker *wk, struct listener *l, const struct accepted *a,
                       int shaped)
{
    struct conn *c = calloc(1, sizeof *c + (shaped ? sizeof *c->shape : 0));
    struct conn_plan plan;

    if (c == NULL) {
        worker_conn_release(wk, a->slot);
        if (a->tls)
            tls_conn_free(a->tls);
        close(a->fd);
        return;
    }
    watch_init(&c->w, a->fd, conn_event);
    c->tls = a->tls;
    stream_open(&c->s, l, a, &plan, STREAM_CONN);
    if (shaped) {
        c->shape = (struct conn_shape *)(c + 1);
        conn_shape_open(c, &plan);
    }
    if (stream_queue_copy(&c->s, &c->ring, &plan) < 0 || (conn_has_output(c) && conn_write(c) < 0)) {
        conn_close(c);
        return;
    }
    conn_advance(c, MOVED_IN | MOVED_OUT);
}

void conn_open(struct worker *wk, struct listener *l, const struct accepted *a)
{
    conn_serve(wk, l, a, 0);
}

void conn_open_shaped(struct worker *wk, struct listener *l, const struct accepted *a)
{
    /* io_uring accepts blocking sockets; the readiness path must not block. */
    if (wk->ops->accepts_blocking && net_set_nonblock(a->fd, 1) < 0) {
        worker_conn_release(wk, a->slot);
        close(a->fd);
        return;
    }
    listener_faults_fresh(l);
    conn_serve(wk, l, a, 1);
}

static void conn_close(struct conn *c)
{
    struct worker *wk = conn_wk(c);
    struct ip_count *ipc = c->s.ipc;
    int rc;

    /* A socket of ours alone leaves the epoll set with its close: no epoll_ctl. */
    if (c->s.inherited)
        loop_unwatch(wk->loop, &c->w);
    else
        loop_unwatch_closing(wk->loop, &c->w);
    if (c->tls)
        tls_conn_free(c->tls);
    if (c->shape)
        worker_wait_del(wk, &c->shape->wait);
    rc = close(c->s.fd);
    if (TRACE_ON)
        trace_fd("close(%d)", c->s.fd, rc);
    stream_retire(&c->s);
    if (c->ring.data) {
        c->ring.len = 0;
        pool_put(&wk->pool, ring_detach(&c->ring));
    }
    free(c);
    stream_freed(wk, ipc);
}

/* ------------------------------------------------------------------ shaped */

/* The faults this connection is under now: its listener's, as the control API last
 * set them, unless its toxicity roll leaves it out. */
static const struct fault_shape *conn_faults(struct conn *c)
{
    struct listener *l = c->s.l;

    listener_faults_fresh(l);
    return c->shape->roll < l->faults.toxicity ? &l->faults.down : &fault_shape_none;
}

static void conn_shape_due(struct worker_wait *w)
{
    struct conn_shape *cs = container_of(w, struct conn_shape, wait);
    struct conn *c = (struct conn *)(void *)cs - 1;
    uint64_t out = c->s.out;

    if (!cs->resetting && conn_has_output(c) && conn_write(c) < 0) {
        conn_close(c);
        return;
    }
    conn_advance(c, c->s.out != out ? MOVED_OUT : 0);
}

static void conn_shape_made(struct conn *c, uint64_t n)
{
    shape_made(&c->shape->sh, conn_faults(c), n, now_us(), &conn_wk(c)->rng);
}

/* -v and the counters: which faults this connection got. */
static void conn_shape_note(struct conn *c, const struct fault_shape *f)
{
    char text[FAULT_TEXT_MAX];
    struct faults only;

    listener_count_faults(c->s.l, f);
    if (!c->s.peer || !fault_shape_active(f))
        return;
    faults_clear(&only);
    only.down = *f;
    log_msg("faults %s %s %s", c->s.l->slot->name, c->s.peer,
            faults_format(&only, text, sizeof text));
}

static void conn_shape_open(struct conn *c, const struct conn_plan *plan)
{
    struct conn_shape *cs = c->shape;
    struct worker *wk = conn_wk(c);
    const struct fault_shape *f;
    int64_t now = now_us();

    worker_wait_init(&cs->wait, conn_shape_due);
    cs->roll = fault_rng_unit(&wk->rng);
    f = conn_faults(c);
    shape_open(&cs->sh, f, now);
    if (c->s.tx_len)
        shape_made(&cs->sh, f, c->s.repeat ? FAULT_NONE : c->s.tx_len, now, &wk->rng);
    if (plan->copy_len)
        shape_made(&cs->sh, f, plan->copy_len, now, &wk->rng);
    conn_shape_note(c, f);
}

/* Drop what is not sent yet: close-after and reset-after end the output there. */
static void conn_cut_output(struct conn *c)
{
    stream_stop_repeating(&c->s);
    if (c->ring.data) {
        c->ring.len = 0;
        pool_put(&conn_wk(c)->pool, ring_detach(&c->ring));
    }
    c->s.echo = 0;
}

/* reset-after: the bytes sent so far must reach the peer first (a reset throws
 * away what is still in our send queue), so wait until the kernel holds none,
 * looking again every RESET_POLL_MS (the send clock still bounds the wait). */
static void conn_reset_when_delivered(struct conn *c)
{
    if (net_undelivered(c->s.fd) > 0 &&
        worker_wait_set(conn_wk(c), &c->shape->wait, now_us() + RESET_POLL_MS * 1000) == 0) {
        if (!c->shape->resetting)
            deadline_start(&stream_set_of(&c->s)->stalled, &c->s.timer);
        c->shape->resetting = 1;
        return;
    }
    net_reset_on_close(c->s.fd);
    conn_close(c);
}

/* What a byte count says, once reached. Returns 1 if c is closed or stalled (the
 * caller does nothing more with it), 0 to go on. */
static int conn_shape_act(struct conn *c)
{
    struct conn_shape *cs = c->shape;
    struct listener_stats *st = &c->s.l->stats;

    if (cs->stalled)
        return 1;
    if (cs->resetting) {
        conn_reset_when_delivered(c);
        return 1;
    }
    switch (shape_act(&cs->sh, conn_faults(c))) {
    case SHAPE_GO:
        return 0;
    case SHAPE_FIN:
        if (!cs->fin_done) {
            cs->fin_done = 1;
            counter_add(&st->faults[FAULT_CLOSE_AFTER], 1);
            conn_cut_output(c);
            c->s.shut_after_send = 1;   /* goodbye now, then linger as always */
        }
        return 0;
    case SHAPE_RESET:
        counter_add(&st->faults[FAULT_RESET_AFTER], 1);
        conn_cut_output(c);
        loop_watch(conn_wk(c)->loop, &c->w, 0);     /* 0 cannot fail */
        conn_reset_when_delivered(c);
        return 1;
    case SHAPE_STALL:
        counter_add(&st->faults[FAULT_STALL_AFTER], 1);
        cs->stalled = 1;
        worker_wait_del(conn_wk(c), &cs->wait);
        if (loop_watch(conn_wk(c)->loop, &c->w, 0) < 0) {
            conn_close(c);
            return 1;
        }
        deadline_start(&stream_set_of(&c->s)->idle, &c->s.timer);
        return 1;
    }
    return 0;
}

/* The output as iovecs, static part first, at most max bytes; returns how many. */
static size_t output_iov(const struct conn *c, struct iovec iov[3], size_t max)
{
    struct iovec ring_iov[2];
    size_t n = 0, left = max;
    int k = ring_data_iov(&c->ring, ring_iov);

    if (stream_tx_left(&c->s) && left > 0) {
        size_t len = c->s.tx_len - c->s.tx_off;

        iov[n].iov_base = (void *)(c->s.tx + c->s.tx_off);
        iov[n].iov_len = len < left ? len : left;
        left -= iov[n++].iov_len;
    }
    for (int i = 0; i < k && left > 0; i++) {
        iov[n] = ring_iov[i];
        if (iov[n].iov_len > left)
            iov[n].iov_len = left;
        left -= iov[n++].iov_len;
    }
    return n;
}

/* What the shaper lets go, slice by slice, until it says wait (the heap wakes us)
 * or the socket is full (a writable event does). Returns 0, or -1 when the peer
 * is gone. */
static int conn_write_shaped(struct conn *c)
{
    struct conn_shape *cs = c->shape;
    struct worker *wk = conn_wk(c);
    const struct fault_shape *f = conn_faults(c);
    int64_t now = now_us();

    cs->want_write = 0;
    for (int i = 0; i < SENDS_PER_EVENT; i++) {
        struct iovec iov[3];
        struct msghdr msg = { .msg_iov = iov };
        size_t pending = (c->s.tx_len - c->s.tx_off) + ring_used(&c->ring), allow;
        int64_t wait;
        ssize_t n;

        if (cs->stalled || cs->resetting || shape_act(&cs->sh, f) != SHAPE_GO)
            return 0;
        allow = shape_allow(&cs->sh, f, pending, now, &wk->rng, &wait);
        if (allow < cs->tls_retry)
            allow = cs->tls_retry < pending ? cs->tls_retry : pending;
        if (allow == 0) {
            if (wait > 0 && worker_wait_set(wk, &cs->wait, now + wait) < 0)
                return -1;
            return 0;
        }
        msg.msg_iovlen = output_iov(c, iov, allow);
        n = conn_send(c, &msg, MSG_DONTWAIT);
        if (TRACE_ON)
            trace_io("send", c->s.fd, n, allow);
        cs->tls_retry = c->tls && n < (ssize_t)allow ? allow - (size_t)(n > 0 ? n : 0) : 0;
        if (n < 0) {
            if (errno != EAGAIN && errno != EINTR)
                return -1;
            if (errno == EAGAIN)
                stream_send_full(&c->s);
            cs->want_write = 1;
            return 0;
        }
        shape_sent(&cs->sh, f, (size_t)n, now);
        ring_consume(&c->ring, stream_sent(&c->s, (size_t)n));
        conn_release_buffer(c);
        if ((size_t)n < allow) {
            stream_send_full(&c->s);
            cs->want_write = 1;     /* the socket is full: wait for room */
            return 0;
        }
    }
    cs->want_write = 1;             /* more slices: after the others' turn */
    return 0;
}
