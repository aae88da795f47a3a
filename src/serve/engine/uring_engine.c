/* uring_engine.c — the io_uring engine's table (worker.h): accepting with one
 * multishot accept per listener, a completion handler that hands each completion
 * to its owner by the tag in its user_data, and the engine's set-up. Connections
 * are conn_uring.c's, datagrams udp_uring.c's. */
#include "serve/engine/uring_engine.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/loop_uring.h"
#include "lib/util.h"
#include "serve/core/worker.h"
#include "serve/engine/conn.h"
#include "serve/engine/relay.h"
#include "serve/engine/stream.h"

/* Multishot accept gives no peer address: ask for it only where it is needed, for
 * the per-address limit or the -v log. */
static void uconn_accept(struct worker *wk, struct listener *l, int fd)
{
    struct accepted a;

    a.fd = fd;
    a.peer_len = 0;
    a.client_len = 0;
    a.tls = NULL;
    a.inherited = 0;
    if (wk->cfg->verbose || l->svc->wants_addresses ||
        (wk->cfg->limits.max_per_ip && l->kind != LISTEN_UNIX)) {
        a.peer_len = sizeof a.peer;
        if (getpeername(fd, (struct sockaddr *)&a.peer, &a.peer_len) < 0)
            a.peer_len = 0;    /* already reset: it will fail on its own */
    }
    if (worker_admit(wk, l, fd, (struct sockaddr *)&a.peer, a.peer_len, &a.slot) == 0)
        worker_accepted(wk, l, &a);
}

static void submit_accept(struct worker *wk, struct listener *l)
{
    struct io_uring_sqe *sqe = uring_get_sqe(wk->uring->ring);

    /* Blocking sockets: io_uring waits for them itself, and nothing else blocks. */
    io_uring_prep_multishot_accept(sqe, l->w.fd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, uring_ud(l, TAG_ACCEPT));
    if (TRACE_ON)
        trace_submit("accept_multishot(%d)", l->w.fd);
    l->armed = 1;
}

static void on_accept(struct worker *wk, struct listener *l, int res, unsigned flags)
{
    if (!(flags & IORING_CQE_F_MORE))
        l->armed = 0;
    if (TRACE_ON)
        listener_trace_accept(l, res, -res, NULL, 0, 1);
    if (res >= 0) {
        if (l->w.fd < 0 || wk->stopping)
            close(res);
        else
            uconn_accept(wk, l, res);
    } else if (res != -ECANCELED) {
        worker_accept_error(wk, l, -res);   /* out of descriptors: it pauses l */
    }
    if (!l->armed && !l->paused && !wk->stopping && l->w.fd >= 0)
        submit_accept(wk, l);
    if (!l->armed)
        worker_check_done(wk);
}

static int uring_listener_start(struct worker *wk, struct listener *l)
{
    if (l->armed)
        return 0;
    if (l->kind == LISTEN_UDP)
        udp_uring_start(wk, l);
    else
        submit_accept(wk, l);
    return 0;
}

/* The request holds the socket open: cancel it, and have the cancel done now, so
 * that closing the descriptor closes the socket. */
static void uring_listener_stop(struct worker *wk, struct listener *l)
{
    if (!l->armed)
        return;
    uring_cancel(wk, uring_ud(l, l->kind == LISTEN_UDP ? TAG_UDP_RECV : TAG_ACCEPT));
    uring_submit(wk->uring->ring);
}

static void on_completion(struct loop *loop, uint64_t ud, int32_t res, uint32_t flags,
                          void *data)
{
    struct worker *wk = data;
    void *obj = uring_ud_obj(ud);

    (void)loop;
    switch (uring_ud_tag(ud)) {
    case TAG_ACCEPT: on_accept(wk, obj, res, flags); break;
    case TAG_RECV: case TAG_SEND: case TAG_HUP:
        uconn_complete(obj, uring_ud_tag(ud), res, flags);
        break;
    case TAG_UDP_RECV: udp_uring_on_recv(wk, obj, res, flags); break;
    case TAG_UDP_SEND: udp_uring_on_send(wk, obj, res); break;
    default: break;
    }
}

static void on_batch_end(struct loop *loop, void *data)
{
    (void)loop;
    udp_uring_batch_end(data);
}

static int uring_init(struct worker *wk)
{
    struct uring_state *us = xcalloc(1, sizeof *us);

    wk->uring = us;
    us->ring = loop_ring(wk->loop);
    conn_engine_init(wk);   /* the readiness path's connections, shaped by faults */
    relay_engine_init(wk);
    if (uconn_init(wk) < 0 || udp_uring_init(wk) < 0)
        return -1;
    loop_on_completion(wk->loop, on_completion, wk);
    loop_on_batch_end(wk->loop, on_batch_end, wk);
    if (uring_batch_wait(us->ring, wk->cfg->batch_wait_us) < 0 && wk->id == 0)
        log_msg("--batch-wait: this kernel's io_uring has no minimum wait (Linux 6.12 "
                "or later); each batch is handled as it comes");
    return 0;
}

static void uring_destroy(struct worker *wk)
{
    if (wk->uring == NULL)
        return;
    udp_uring_destroy(wk);
    uconn_destroy(wk);
    free(wk->uring);
    wk->uring = NULL;
}

const struct engine_ops engine_uring = {
    .name = "uring",
    .init = uring_init,
    .destroy = uring_destroy,
    .listener_start = uring_listener_start,
    .listener_stop = uring_listener_stop,
    .serve = uconn_open,
    .serve_shaped = conn_open_shaped,
    .serve_tls = conn_open,
    .serve_relay = relay_open,
    .stop_all = stream_stop_all,
    .close_all = uconn_close_all,
    .accepts_blocking = 1,
};
