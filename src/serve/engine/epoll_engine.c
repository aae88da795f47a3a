/* epoll_engine.c — the epoll engine's table (worker.h): readiness all the way.
 * Listeners are level-triggered loop watches: accept_ready takes up to
 * ACCEPTS_PER_EVENT connections per event, udp_readable answers batches of
 * datagrams (udp_epoll.c); connections are conn.c's. */
#include <errno.h>

#include "lib/net.h"
#include "serve/core/worker.h"
#include "serve/engine/conn.h"
#include "serve/engine/relay.h"
#include "serve/engine/stream.h"
#include "serve/engine/udp_epoll.h"

#define ACCEPTS_PER_EVENT 64

static void accept_ready(struct loop *loop, struct watch *w, unsigned events)
{
    struct listener *l = container_of(w, struct listener, w);

    (void)loop;
    (void)events;
    for (int i = 0; i < ACCEPTS_PER_EVENT && !l->paused; i++) {
        struct accepted a;
        int err;

        a.fd = net_accept(l->w.fd, &a.peer, &a.peer_len);
        err = errno;
        if (TRACE_ON)
            listener_trace_accept(l, a.fd, err, (struct sockaddr *)&a.peer, a.peer_len, 0);
        a.client_len = 0;
        a.tls = NULL;
        a.inherited = 0;
        if (a.fd >= 0) {
            if (worker_admit(l->wk, l, a.fd, (struct sockaddr *)&a.peer, a.peer_len,
                             &a.slot) == 0)
                worker_accepted(l->wk, l, &a);
            continue;
        }
        /* A client that is gone or refused: on to the next; else stop here (all
         * taken, or paused). */
        if (err == EAGAIN || worker_accept_error(l->wk, l, err))
            return;
    }
}

static int epoll_init(struct worker *wk)
{
    for (size_t i = 0; i < wk->nlisteners; i++)
        if (wk->listeners[i].kind == LISTEN_UDP && wk->udp == NULL)
            wk->udp = udp_batch_new();
    conn_engine_init(wk);
    relay_engine_init(wk);
    return 0;
}

static void epoll_destroy(struct worker *wk)
{
    udp_batch_free(wk->udp);
    wk->udp = NULL;
}

/* A socket several loops serve wakes only one of them per event. */
static int epoll_listener_start(struct worker *wk, struct listener *l)
{
    l->w.fn = l->kind == LISTEN_UDP ? udp_readable : accept_ready;
    return loop_watch(wk->loop, &l->w, LOOP_READ | (l->shared ? LOOP_EXCLUSIVE : 0));
}

static void epoll_listener_stop(struct worker *wk, struct listener *l)
{
    loop_unwatch(wk->loop, &l->w);
}

static void epoll_serve(struct worker *wk, struct listener *l, const struct accepted *a)
{
    conn_open(wk, l, a);
}

const struct engine_ops engine_epoll = {
    .name = "epoll",
    .init = epoll_init,
    .destroy = epoll_destroy,
    .listener_start = epoll_listener_start,
    .listener_stop = epoll_listener_stop,
    .serve = epoll_serve,
    .serve_shaped = conn_open_shaped,
    .serve_tls = conn_open,
    .serve_relay = relay_open,
    .stop_all = stream_stop_all,
    .close_all = stream_close_all,
};
