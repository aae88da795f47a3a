/* tls_wait.c — the TLS handshake stage (see tls_wait.h). OpenSSL reads and writes
 * the socket itself (a socket BIO); each event runs the handshake one step on, and
 * the step says which readiness to wait for next. */
#include "serve/core/tls_wait.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/net.h"
#include "lib/tls.h"
#include "lib/trace.h"
#include "serve/core/worker.h"

struct twait {
    struct watch w;                 /* w.fd is the connection's */
    struct worker *wk;
    struct listener *l;
    struct accepted a;              /* a.tls: the handshake's SSL */
    struct deadline timer;          /* on wk->tls_handshake */
    struct dlink all;               /* wk->tls_waits */
    struct tls_wire wire;           /* --trace: what the handshake has moved so far */
};

static void tw_free(struct twait *t)
{
    struct worker *wk = t->wk;

    deadline_stop(&t->timer);
    loop_unwatch(wk->loop, &t->w);
    dlist_remove(&t->all);
    tls_conn_free(t->a.tls);
    close(t->a.fd);
    free(t);
    wk->nconns--;
    worker_conn_closed(wk);
}

/* Gives back its place under the limits, resets and closes the connection, and
 * counts the failure with why. */
static void tw_drop(struct twait *t, const char *why)
{
    char detail[300];

    snprintf(detail, sizeof detail, "no TLS handshake: %s", why);
    worker_drop_detail(t->wk, t->l, DROP_BAD_TLS, t->a.fd,
                       t->a.client_len ? (const struct sockaddr *)&t->a.client
                                       : (const struct sockaddr *)&t->a.peer,
                       t->a.client_len ? t->a.client_len : t->a.peer_len, detail);
    worker_conn_release(t->wk, t->a.slot);
    net_reset_on_close(t->a.fd);
    tw_free(t);
}

/* The handshake is done: the connection goes to the engine, with its SSL. */
static void tw_done(struct twait *t)
{
    struct worker *wk = t->wk;
    struct listener *l = t->l;
    struct accepted a = t->a;
    struct tls_info info;

    tls_describe(a.tls, &info);
    counter_add(&l->stats.tls_handshakes, 1);
    if (info.ktls_tx)
        counter_add(&l->stats.tls_ktls, 1);
    deadline_stop(&t->timer);
    loop_unwatch(wk->loop, &t->w);
    dlist_remove(&t->all);
    free(t);
    wk->nconns--;   /* the engine counts it again */
    worker_serve(wk, l, &a);
}

static void tw_step(struct twait *t)
{
    char why[256] = "";
    int rc = tls_handshake(t->a.tls, why, sizeof why);

    if (TRACE_ON)
        tls_trace_op(t->a.tls, &t->wire, TLS_TRACE_HANDSHAKE, 0, rc, why);
    switch (rc) {
    case TLS_OK:
        tw_done(t);
        return;
    case TLS_WANT_READ:
    case TLS_WANT_WRITE:
        if (loop_watch(t->wk->loop, &t->w, rc == TLS_WANT_READ ? LOOP_READ : LOOP_WRITE) < 0)
            tw_drop(t, "cannot watch the socket");
        return;
    default:
        tw_drop(t, why[0] ? why : rc == TLS_RESET ? "reset by the peer" : "failed");
        return;
    }
}

static void tw_event(struct loop *loop, struct watch *w, unsigned events)
{
    (void)loop;
    (void)events;
    tw_step(container_of(w, struct twait, w));
}

static void tw_expired(struct deadline_list *dl, struct deadline *d)
{
    char why[96];

    snprintf(why, sizeof why, "not done within %g s (--tls-timeout)", (double)dl->timeout_ms / 1000.0);
    tw_drop(container_of(d, struct twait, timer), why);
}

void tls_wait_init(struct worker *wk)
{
    dlist_init(&wk->tls_waits);
    deadline_list_init(&wk->tls_handshake, wk->loop, wk->cfg->tls_timeout_ms, tw_expired, wk);
}

void tls_wait_start(struct worker *wk, struct listener *l, const struct accepted *a)
{
    struct twait *t = calloc(1, sizeof *t);
    SSL *ssl = NULL;

    /* io_uring accepts blocking sockets; OpenSSL's reads must return at once. */
    if (t == NULL || net_set_nonblock(a->fd, 1) < 0 ||
        (ssl = tls_server_conn(wk->cfg->tls, a->fd)) == NULL) {
        free(t);
        worker_conn_release(wk, a->slot);
        net_reset_on_close(a->fd);
        close(a->fd);
        return;
    }
    if (TRACE_ON)
        tls_trace_attach(ssl);
    t->a = *a;
    t->a.tls = ssl;
    t->wk = wk;
    t->l = l;
    watch_init(&t->w, a->fd, tw_event);
    dlist_push_tail(&wk->tls_waits, &t->all);
    wk->nconns++;
    deadline_start(&wk->tls_handshake, &t->timer);
    tw_step(t);     /* the ClientHello is often there already */
}

void tls_wait_close_all(struct worker *wk)
{
    for (struct dlink *node = wk->tls_waits.next, *next; node != &wk->tls_waits; node = next) {
        struct twait *t = container_of(node, struct twait, all);

        next = node->next;      /* closing one frees it, and no other */
        worker_conn_release(wk, t->a.slot);
        tw_free(t);
    }
}
