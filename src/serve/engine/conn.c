/* conn.c — the stream connection state machine on a readiness loop (see conn.h).
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

#include "lib/log.h"
#include "lib/ring.h"
#include "serve/core/worker.h"
#include "lib/util.h"

#define DISCARD_CHUNK 16384

struct conn {
    struct watch w;
    struct worker *wk;
    struct listener *l;
    struct ring ring;           /* echoed bytes; storage only while any are held */
    const char *tx;             /* static output: tx[tx_off .. tx_len) is not sent yet */
    uint32_t tx_off, tx_len;
    uint64_t in, out;
    struct deadline timer;      /* on wk->idle, wk->stalled or wk->lingering */
    struct dlink all;           /* wk->conns */
    struct ip_count *ipc;       /* its address's count (guard.h), if counted */
    char *peer;                 /* peer address text, kept only with -v */
    unsigned echo : 1;          /* input goes to the ring and back out */
    unsigned shut_after_send : 1;
    unsigned rd_eof : 1;        /* the peer has shut down its side */
    unsigned wr_shut : 1;       /* we have shut down ours */
    unsigned stopping : 1;      /* the server is stopping */
    unsigned repeat : 1;        /* the static output starts again once sent */
};

/* What moved in the event just handled: the idle clock restarts on any byte, the
 * send clock only on bytes the peer took. */
enum { MOVED_IN = 1, MOVED_OUT = 2 };

static void conn_advance(struct conn *c, int moved);
static void conn_close(struct conn *c);

static int conn_has_output(const struct conn *c)
{
    return c->tx_off < c->tx_len || !ring_empty(&c->ring);
}

static void conn_release_buffer(struct conn *c)
{
    if (c->ring.data && ring_empty(&c->ring))
        pool_put(&c->wk->pool, ring_detach(&c->ring));
}

/* Returns 0, or -1 when the connection is broken (reset, or out of memory). */
static int conn_read(struct conn *c)
{
    char discard[DISCARD_CHUNK];
    ssize_t n;

    if (c->echo) {
        struct iovec iov[2];
        int cnt;

        if (c->ring.data == NULL) {
            char *buf = pool_get(&c->wk->pool);
            if (buf == NULL)
                return -1;
            ring_attach(&c->ring, buf, c->wk->cfg->max_buffer);
        }
        cnt = ring_space_iov(&c->ring, iov);
        if (cnt == 0)
            return 0;
        n = readv(c->w.fd, iov, cnt);
        if (n > 0)
            ring_produce(&c->ring, (size_t)n);
        else
            conn_release_buffer(c);     /* an idle connection holds no buffer */
    } else {
        n = read(c->w.fd, discard, sizeof discard);
    }
    if (n > 0) {
        c->in += (uint64_t)n;
        counter_add(&c->l->stats.bytes_in, (uint64_t)n);
        return 0;
    }
    if (n == 0) {
        c->rd_eof = 1;
        return 0;
    }
    return errno == EAGAIN || errno == EINTR ? 0 : -1;
}

static void conn_consume(struct conn *c, size_t n)
{
    size_t tx_left = c->tx_len - c->tx_off;
    size_t from_tx = n < tx_left ? n : tx_left;

    c->tx_off += (uint32_t)from_tx;
    if (c->repeat && c->tx_off == c->tx_len)
        c->tx_off = 0;
    ring_consume(&c->ring, n - from_tx);
    conn_release_buffer(c);
}

/* Returns 0, or -1 when the peer is gone (EPIPE, ECONNRESET). */
static int conn_write(struct conn *c)
{
    struct iovec iov[3];
    struct msghdr msg = { .msg_iov = iov };
    ssize_t n;

    if (c->tx_off < c->tx_len) {
        iov[0].iov_base = (void *)(c->tx + c->tx_off);
        iov[0].iov_len = c->tx_len - c->tx_off;
        msg.msg_iovlen = 1;
    }
    msg.msg_iovlen += (size_t)ring_data_iov(&c->ring, iov + msg.msg_iovlen);
    /* MSG_NOSIGNAL: a peer that vanished is an error code here, never a SIGPIPE. */
    n = sendmsg(c->w.fd, &msg, MSG_NOSIGNAL | final_send_flags(c->shut_after_send, c->repeat));
    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    c->out += (uint64_t)n;
    counter_add(&c->l->stats.bytes_out, (uint64_t)n);
    conn_consume(c, (size_t)n);
    return 0;
}

static void linger_expired(struct deadline_list *dl, struct deadline *d)
{
    (void)dl;
    conn_close(container_of(d, struct conn, timer));
}

/* Silent too long: say goodbye as after any exchange. */
static void idle_expired(struct deadline_list *dl, struct deadline *d)
{
    struct conn *c = container_of(d, struct conn, timer);

    (void)dl;
    worker_drop(c->wk, c->l, DROP_IDLE, c->w.fd, NULL, 0);
    c->shut_after_send = 1;
    conn_advance(c, 0);
}

/* The peer reads nothing: nothing more can be said to it. */
static void stall_expired(struct deadline_list *dl, struct deadline *d)
{
    struct conn *c = container_of(d, struct conn, timer);

    (void)dl;
    worker_drop(c->wk, c->l, DROP_SEND_TIMEOUT, c->w.fd, NULL, 0);
    reset_on_close(c->w.fd);
    conn_close(c);
}

void conn_engine_init(struct worker *wk)
{
    deadline_list_init(&wk->lingering, wk->loop, LINGER_MS, linger_expired, wk);
    deadline_list_init(&wk->idle, wk->loop, wk->cfg->idle_timeout_ms, idle_expired, wk);
    deadline_list_init(&wk->stalled, wk->loop, wk->cfg->send_timeout_ms, stall_expired, wk);
}

/* Which clock the connection runs on now: waiting for the peer to read what we
 * hold, or for anything at all to happen. Progress restarts it. Once our side is
 * shut, the linger deadline (conn_shutdown) is the only one. */
static void conn_schedule(struct conn *c, int moved)
{
    int stalled = conn_has_output(c);
    struct deadline_list *dl = stalled ? &c->wk->stalled : &c->wk->idle;

    if (c->wr_shut)
        return;
    if (stalled ? moved & MOVED_OUT : moved)
        deadline_start(dl, &c->timer);
    else
        deadline_start_once(dl, &c->timer);
}

static void conn_shutdown(struct conn *c)
{
    c->wr_shut = 1;
    if (shutdown(c->w.fd, SHUT_WR) < 0) {
        /* ENOTCONN: the peer reset first; nothing is left to say goodbye to. */
        c->rd_eof = 1;
        return;
    }
    if (!c->rd_eof)
        deadline_start(&c->wk->lingering, &c->timer);
    else
        deadline_stop(&c->timer);
}

static unsigned conn_wanted(const struct conn *c)
{
    unsigned mask = 0;

    if (conn_has_output(c))
        mask |= LOOP_WRITE;
    if (c->rd_eof)
        return mask;
    if (c->echo && c->stopping) {
        /* Read nothing more: only what was read is owed. Once our side is shut,
         * wait for the peer to close without reading its input. */
        if (c->wr_shut)
            mask |= LOOP_HUP;
    } else if (!c->echo || c->wr_shut || ring_space(&c->ring) > 0 || c->ring.data == NULL) {
        mask |= LOOP_READ;
    }
    return mask;
}

/* Endless output ends when the server stops: what is left of it is not owed. */
static void conn_stop_repeating(struct conn *c)
{
    c->repeat = 0;
    c->tx_off = c->tx_len;
}

static void conn_advance(struct conn *c, int moved)
{
    if (c->stopping && c->repeat)
        conn_stop_repeating(c);
    if (!conn_has_output(c) && !c->wr_shut &&
        (c->shut_after_send || c->rd_eof || c->stopping))
        conn_shutdown(c);
    if (c->wr_shut && c->rd_eof) {
        conn_close(c);
        return;
    }
    if (loop_watch(c->wk->loop, &c->w, conn_wanted(c)) < 0) {
        conn_close(c);
        return;
    }
    conn_schedule(c, moved);
}

static void conn_event(struct loop *loop, struct watch *w, unsigned events)
{
    struct conn *c = container_of(w, struct conn, w);
    uint64_t in = c->in, out = c->out;

    (void)loop;
    if ((events & LOOP_HUP) && c->stopping && c->echo && c->wr_shut) {
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
    conn_advance(c, (c->in != in ? MOVED_IN : 0) | (c->out != out ? MOVED_OUT : 0));
}

/* Bytes made up for this connection go into its ring, from the pool, which takes
 * the buffer back once they are sent. Returns 0, or -1 if out of memory. */
static int conn_queue_copy(struct conn *c, const struct conn_plan *plan)
{
    char *buf;

    if (plan->copy_len == 0)
        return 0;
    buf = pool_get(&c->wk->pool);
    if (buf == NULL)
        return -1;
    ring_attach(&c->ring, buf, c->wk->cfg->max_buffer);
    ring_put(&c->ring, plan->copy, plan->copy_len);
    return 0;
}

/* Returns 0, or -1 if the plan could not be carried out (out of memory). */
static int conn_apply_plan(struct conn *c, const struct accepted *a)
{
    struct conn_plan plan;
    struct sockaddr_storage local;
    struct svc_ctx ctx;

    plan_init(&plan);
    svc_ctx_for_conn(&ctx, c->wk, c->l, a, &local);
    c->l->svc->tcp_open(&plan, &ctx);
    c->tx = plan.tx;
    c->tx_len = (uint32_t)plan.tx_len;
    c->repeat = plan.repeat;
    c->echo = plan.echo;
    c->shut_after_send = plan.close_after_send;
    return conn_queue_copy(c, &plan);
}

void conn_open(struct worker *wk, struct listener *l, const struct accepted *a)
{
    struct conn *c = calloc(1, sizeof *c);

    if (c == NULL) {
        worker_conn_release(wk, a->slot);
        close(a->fd);
        return;
    }
    watch_init(&c->w, a->fd, conn_event);
    c->wk = wk;
    c->l = l;
    c->ipc = a->slot;
    dlist_push_tail(&wk->conns, &c->all);
    wk->nconns++;
    counter_add(&l->stats.accepted, 1);
    counter_add(&l->stats.active, 1);
    if (wk->cfg->verbose)
        c->peer = conn_log_accept(l, a);
    if (conn_apply_plan(c, a) < 0 || (conn_has_output(c) && conn_write(c) < 0)) {
        conn_close(c);
        return;
    }
    conn_advance(c, MOVED_IN | MOVED_OUT);
}

static void conn_close(struct conn *c)
{
    struct worker *wk = c->wk;

    loop_unwatch(wk->loop, &c->w);
    close(c->w.fd);
    if (c->peer) {
        log_msg("close %s %s %s in=%llu out=%llu", c->l->svc->name,
                listener_kind_name(c->l->kind), c->peer, (unsigned long long)c->in,
                (unsigned long long)c->out);
        free(c->peer);
    }
    counter_sub(&c->l->stats.active, 1);
    dlist_remove(&c->all);
    deadline_stop(&c->timer);
    worker_conn_release(wk, c->ipc);
    if (c->ring.data) {
        c->ring.len = 0;
        pool_put(&wk->pool, ring_detach(&c->ring));
    }
    free(c);
    wk->nconns--;
    worker_conn_closed(wk);
}

void conn_stop_all(struct worker *wk)
{
    struct dlink *node = wk->conns.next;

    while (node != &wk->conns) {
        struct conn *c = container_of(node, struct conn, all);

        node = node->next;      /* conn_advance may free c */
        c->stopping = 1;
        conn_advance(c, 0);
    }
}

void conn_close_all(struct worker *wk)
{
    while (!dlist_empty(&wk->conns))
        conn_close(container_of(wk->conns.next, struct conn, all));
}
