/* conn.c — the stream connection state machine on readiness (see conn.h).
 *
 * Each event runs: read (if asked), write what is pending (at once, without waiting
 * for a writable event: the socket almost always has room), then conn_advance decides
 * the next step and what to wait for. Only a connection's own handler or a timer
 * frees it, never a handler of another object in the same batch (loop.c relies on it). */
#include "serve/engine/conn.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <unistd.h>

#include "lib/ring.h"
#include "lib/util.h"
#include "serve/engine/stream.h"

#define DISCARD_CHUNK 16384

struct conn {
    struct stream s;
    struct watch w;             /* w.fd is s.fd */
    struct ring ring;           /* copied and echoed bytes; storage only while any are held */
};

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
    n = readv(c->s.fd, iov, cnt);
    if (TRACE_ON)
        trace_io("recv", c->s.fd, n, ring_space(&c->ring));
    if (n > 0)
        ring_produce(&c->ring, (size_t)n);
    else
        conn_release_buffer(c);     /* an idle connection holds no buffer */
    if (n == 0)
        c->s.rd_eof = 1;
    return n;
}

/* Returns 0, or -1 when the connection is broken (reset, or out of memory). */
static int conn_read(struct conn *c)
{
    char discard[DISCARD_CHUNK];
    ssize_t n;

    if (stream_echoes_input(&c->s)) {
        n = conn_read_echo(c);
    } else {
        n = read(c->s.fd, discard, sizeof discard);
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
    ssize_t n;

    if (stream_tx_left(&c->s)) {
        iov[0].iov_base = (void *)(c->s.tx + c->s.tx_off);
        iov[0].iov_len = c->s.tx_len - c->s.tx_off;
        msg.msg_iovlen = 1;
    }
    msg.msg_iovlen += (size_t)ring_data_iov(&c->ring, iov + msg.msg_iovlen);
    /* MSG_NOSIGNAL: a peer that vanished is an error code here, never a SIGPIPE. */
    n = sendmsg(c->s.fd, &msg, MSG_NOSIGNAL | final_send_flags(c->s.shut_after_send,
                                                              c->s.repeat));
    if (TRACE_ON)
        trace_io("send", c->s.fd, n,
                 (stream_tx_left(&c->s) ? c->s.tx_len - c->s.tx_off : 0) + ring_used(&c->ring));
    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    ring_consume(&c->ring, stream_sent(&c->s, (size_t)n));
    conn_release_buffer(c);
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
    conn_advance(c, 0);
}

static void stall_expired(struct deadline_list *dl, struct deadline *d)
{
    struct conn *c = container_of(d, struct conn, s.timer);

    (void)dl;
    stream_stall_expired(&c->s);
    conn_close(c);
}

void conn_engine_init(struct worker *wk)
{
    stream_clocks_init(wk, linger_expired, idle_expired, stall_expired);
}

static unsigned conn_wanted(const struct conn *c)
{
    unsigned mask = 0;

    if (conn_has_output(c))
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

static void conn_advance(struct conn *c, int moved)
{
    if (c->s.stopping && c->s.repeat)
        stream_stop_repeating(&c->s);
    if (!conn_has_output(c) && !c->s.wr_shut &&
        (c->s.shut_after_send || c->s.rd_eof || c->s.stopping))
        stream_shutdown(&c->s);
    if (c->s.wr_shut && c->s.rd_eof) {
        conn_close(c);
        return;
    }
    if (loop_watch(conn_wk(c)->loop, &c->w, conn_wanted(c)) < 0) {
        conn_close(c);
        return;
    }
    stream_schedule(&c->s, conn_has_output(c), moved & MOVED_OUT, moved);
}

static void conn_event(struct loop *loop, struct watch *w, unsigned events)
{
    struct conn *c = container_of(w, struct conn, w);
    uint64_t in = c->s.in, out = c->s.out;

    (void)loop;
    if ((events & LOOP_HUP) && c->s.stopping && c->s.echo && c->s.wr_shut) {
        conn_close(c);
        return;
    }
    if ((events & LOOP_READ) && conn_read(c) < 0) {
        conn_close(c);
        return;
    }
    if (conn_has_output(c) && conn_write(c) < 0) {
        conn_close(c);
        return;
    }
    conn_advance(c, (c->s.in != in ? MOVED_IN : 0) | (c->s.out != out ? MOVED_OUT : 0));
}

void conn_open(struct worker *wk, struct listener *l, const struct accepted *a)
{
    struct conn *c = calloc(1, sizeof *c);
    struct conn_plan plan;

    if (c == NULL) {
        worker_conn_release(wk, a->slot);
        close(a->fd);
        return;
    }
    watch_init(&c->w, a->fd, conn_event);
    stream_open(&c->s, l, a, &plan);
    if (stream_queue_copy(&c->s, &c->ring, &plan) < 0 || (conn_has_output(c) && conn_write(c) < 0)) {
        conn_close(c);
        return;
    }
    conn_advance(c, MOVED_IN | MOVED_OUT);
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

void conn_stop_all(struct worker *wk)
{
    struct dlink *node = wk->conns.next;

    while (node != &wk->conns) {
        struct conn *c = container_of(node, struct conn, s.all);

        node = node->next;      /* conn_advance may free c */
        c->s.stopping = 1;
        conn_advance(c, 0);
    }
}

void conn_close_all(struct worker *wk)
{
    for (struct dlink *node = wk->conns.next, *next; node != &wk->conns; node = next) {
        next = node->next;      /* closing one frees it, and no other */
        conn_close(container_of(node, struct conn, s.all));
    }
}
