/* stream.c — the stream connection rules both engines share (see stream.h). */
#include "serve/engine/stream.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "lib/log.h"
#include "lib/net.h"

void stream_open(struct stream *s, struct listener *l, const struct accepted *a,
                 struct conn_plan *plan, enum stream_kind kind)
{
    struct worker *wk = l->wk;
    struct sockaddr_storage local;
    struct tls_info tls;
    struct svc_ctx ctx;

    s->l = l;
    s->fd = a->fd;
    s->ipc = a->slot;
    s->inherited = a->inherited != 0;
    s->kind = kind;
    s->full_unsent = -1;
    dlist_push_tail(&wk->streams[kind].conns, &s->all);
    wk->nconns++;
    counter_add(&l->stats.accepted, 1);
    counter_add(&l->stats.active, 1);
    if (wk->cfg->verbose)
        s->peer = conn_log_accept(l, a);
    plan_init(plan);
    svc_ctx_for_conn(&ctx, wk, l, a, &local, &tls);
    l->svc->tcp_open(plan, &ctx);
    s->tx = plan->tx;
    s->tx_len = (uint32_t)plan->tx_len;
    s->repeat = plan->repeat;
    s->echo = plan->echo;
    s->shut_after_send = plan->close_after_send;
    s->stopping = wk->finishing;
}

int stream_queue_copy(struct stream *s, struct ring *ring, const struct conn_plan *plan)
{
    struct pool *pool = &stream_wk(s)->pool;
    char *buf;

    if (plan->copy_len == 0)
        return 0;
    buf = pool_get(pool);
    if (buf == NULL)
        return -1;
    ring_attach(ring, buf, pool->size);
    ring_put(ring, plan->copy, plan->copy_len);
    return 0;
}

void stream_retire(struct stream *s)
{
    if (s->peer) {
        log_msg("close %s %s %s in=%llu out=%llu", s->l->svc->name,
                listener_kind_name(s->l->kind), s->peer, (unsigned long long)s->in,
                (unsigned long long)s->out);
        free(s->peer);
        s->peer = NULL;
    }
    counter_sub(&s->l->stats.active, 1);
    dlist_remove(&s->all);
    deadline_stop(&s->timer);
}

void stream_freed(struct worker *wk, struct ip_count *ipc)
{
    worker_conn_release(wk, ipc);
    wk->nconns--;
    worker_conn_closed(wk);
}

size_t stream_sent(struct stream *s, size_t n)
{
    size_t tx_left = s->tx_len - s->tx_off;
    size_t from_tx = n < tx_left ? n : tx_left;

    s->out += n;
    counter_add(&s->l->stats.bytes_out, n);
    s->tx_off += (uint32_t)from_tx;
    if (s->repeat && s->tx_off == s->tx_len)
        s->tx_off = 0;
    return n - from_tx;
}

void stream_stop_repeating(struct stream *s)
{
    s->repeat = 0;
    s->tx_off = s->tx_len;
}

void stream_shutdown(struct stream *s)
{
    int rc;

    s->wr_shut = 1;
    rc = shutdown(s->fd, SHUT_WR);
    if (TRACE_ON)
        trace_fd("shutdown(%d, SHUT_WR)", s->fd, rc);
    if (rc < 0) {
        /* ENOTCONN: the peer reset first; nothing is left to say goodbye to. */
        s->rd_eof = 1;
        return;
    }
    if (!s->rd_eof)
        deadline_start(&stream_set_of(s)->lingering, &s->timer);
    else
        deadline_stop(&s->timer);
}

void stream_schedule(struct stream *s, int has_output, int took, int moved)
{
    struct stream_set *set = stream_set_of(s);
    struct deadline_list *dl = has_output ? &set->stalled : &set->idle;

    if (s->wr_shut)
        return;
    if (has_output && took && s->repeat)
        stream_send_full(s);    /* endless output: the socket fills without a short send */
    if (has_output ? took : moved)
        deadline_start(dl, &s->timer);
    else
        deadline_start_once(dl, &s->timer);
}

void stream_idle_expired(struct stream *s)
{
    worker_drop(stream_wk(s), s->l, DROP_IDLE, s->fd, NULL, 0);
    s->shut_after_send = 1;
}

void stream_send_full(struct stream *s)
{
    s->full_unsent = net_unsent(s->fd);
    s->full_out = s->out;
}

/* No send of ours completed for the whole wait, but the peer may have taken bytes
 * all along: the kernel wakes a waiting send only once a third of the send buffer
 * (up to 4 MiB) is free, which a peer reading 400 KB/s takes seconds to make. The
 * socket's queue, which only the peer shrinks while nothing of ours is added, says
 * whether it read since the socket was found full (or since the last check). */
static int peer_still_reads(struct stream *s)
{
    int unsent;

    if (s->full_unsent < 0 || s->full_out != s->out)
        return 0;
    unsent = net_unsent(s->fd);
    if (unsent < 0 || unsent >= s->full_unsent)
        return 0;
    s->full_unsent = unsent;
    return 1;
}

int stream_stall_expired(struct stream *s)
{
    if (peer_still_reads(s)) {
        deadline_start(&stream_set_of(s)->stalled, &s->timer);
        return 0;
    }
    worker_drop(stream_wk(s), s->l, DROP_SEND_TIMEOUT, s->fd, NULL, 0);
    net_reset_on_close(s->fd);
    return 1;
}

void stream_set_init(struct worker *wk, enum stream_kind kind, deadline_fn *linger,
                     deadline_fn *idle, deadline_fn *stall, void (*stop)(struct stream *s),
                     void (*close_now)(struct stream *s))
{
    struct stream_set *set = &wk->streams[kind];

    deadline_list_init(&set->lingering, wk->loop, LINGER_MS, linger, wk);
    deadline_list_init(&set->idle, wk->loop, wk->cfg->idle_timeout_ms, idle, wk);
    deadline_list_init(&set->stalled, wk->loop, wk->cfg->send_timeout_ms, stall, wk);
    set->stop = stop;
    set->close_now = close_now;
}

void stream_stop_all(struct worker *wk)
{
    for (int k = 0; k < STREAM_KINDS; k++) {
        struct stream_set *set = &wk->streams[k];
        struct dlink *node = set->conns.next;

        while (node != &set->conns) {
            struct stream *s = container_of(node, struct stream, all);

            node = node->next;      /* stopping s may free it, and no other */
            set->stop(s);
        }
    }
}

void stream_close_all(struct worker *wk)
{
    for (int k = 0; k < STREAM_KINDS; k++) {
        struct stream_set *set = &wk->streams[k];

        for (struct dlink *node = set->conns.next, *next; node != &set->conns; node = next) {
            next = node->next;      /* closing one frees it, and no other */
            set->close_now(container_of(node, struct stream, all));
        }
    }
}
