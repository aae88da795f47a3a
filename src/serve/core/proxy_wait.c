/* proxy_wait.c — the header stage of "+proxy" connections (see proxy_wait.h).
 *
 * Why MSG_PEEK: the parser must see the bytes to know where the header ends, and the
 * bytes after it belong to the service. Each readable event peeks at what has come;
 * a valid beginning of a header is then read for real (it is all header: waiting on
 * a readable socket whose bytes were only peeked at would wake at once, for ever),
 * and a complete header is read up to its last byte and no further.
 *
 * Waiting for input is a loop watch on either engine (on io_uring, a poll request
 * the loop re-arms). io_uring's accepted sockets are blocking, hence MSG_DONTWAIT. */
#include "serve/core/proxy_wait.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/net.h"
#include "proto/proxy.h"
#include "serve/core/worker.h"

#define WHY_LEN 96

struct pwait {
    struct watch w;                 /* w.fd is the connection's */
    struct worker *wk;
    struct listener *l;
    struct accepted a;
    struct deadline timer;          /* on wk->proxy_header */
    struct dlink all;               /* wk->proxy_waits, until freed */
    size_t have;                    /* header bytes read so far, in buf */
    uint8_t buf[PROXY_HEADER_MAX];
};

static void pw_read(struct pwait *p);

static void pw_free(struct pwait *p)
{
    struct worker *wk = p->wk;
    int rc;

    dlist_remove(&p->all);
    rc = close(p->a.fd);
    if (TRACE_ON)
        trace_fd("close(%d)", p->a.fd, rc);
    free(p);
    wk->nconns--;
    worker_conn_closed(wk);
}

/* Gives back its place under --max-conns and closes it. */
static void pw_close(struct pwait *p)
{
    deadline_stop(&p->timer);
    worker_conn_release(p->wk, p->a.slot);
    loop_unwatch(p->wk->loop, &p->w);
    pw_free(p);
}

static void pw_drop(struct pwait *p, const char *why)
{
    char detail[WHY_LEN + 32];

    snprintf(detail, sizeof detail, "bad PROXY protocol header: %s", why);
    worker_drop_detail(p->wk, p->l, DROP_BAD_PROXY, p->a.fd,
                       (const struct sockaddr *)&p->a.peer, p->a.peer_len, detail);
    net_reset_on_close(p->a.fd);
    pw_close(p);
}

static void pw_event(struct loop *loop, struct watch *w, unsigned events)
{
    (void)loop;
    (void)events;
    pw_read(container_of(w, struct pwait, w));
}

/* Wait until more input comes. */
static void pw_arm(struct pwait *p)
{
    if (loop_watch(p->wk->loop, &p->w, LOOP_READ) < 0) {
        net_reset_on_close(p->a.fd);
        pw_close(p);
    }
}

/* The header is in: admit its client, and hand the connection to the engine. */
static void pw_done(struct pwait *p, const struct proxy_header *h)
{
    struct worker *wk = p->wk;
    struct listener *l = p->l;
    struct accepted a = p->a;
    const struct sockaddr *who = (const struct sockaddr *)&a.peer;
    socklen_t wlen = l->kind == LISTEN_UNIX ? 0 : a.peer_len;

    if (h->command == PROXY_CMD_PROXY && h->src_len > 0) {
        memcpy(&a.client, &h->src, sizeof a.client);
        a.client_len = h->src_len;
        who = (const struct sockaddr *)&a.client;
        wlen = a.client_len;
    }
    deadline_stop(&p->timer);
    loop_unwatch(wk->loop, &p->w);
    dlist_remove(&p->all);
    free(p);
    wk->nconns--;   /* the engine counts it again */
    if (worker_admit_client(wk, l, a.fd, who, wlen, &a.slot) == 0)
        l->after_proxy(wk, l, &a);
}

/* Take the n bytes at p->buf + p->have off the socket: they were peeked at, so
 * they are there. */
static int pw_take(struct pwait *p, size_t n)
{
    ssize_t got;

    do
        got = recv(p->a.fd, p->buf + p->have, n, MSG_DONTWAIT);
    while (got < 0 && errno == EINTR);
    if (TRACE_ON)
        trace_call(got, errno, NULL, "recv(%d, %zu)", p->a.fd, n);
    if (got != (ssize_t)n)
        return -1;
    p->have += n;
    return 0;
}

static void pw_read(struct pwait *p)
{
    struct proxy_header h;
    char why[WHY_LEN];
    ssize_t n;

    do
        n = recv(p->a.fd, p->buf + p->have, sizeof p->buf - p->have, MSG_PEEK | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (TRACE_ON)
        trace_call(n, errno, n == 0 ? "peer closed: FIN" : NULL, "recv(%d, %zu, MSG_PEEK)",
                   p->a.fd, sizeof p->buf - p->have);
    if (n < 0 && errno == EAGAIN) {
        pw_arm(p);
        return;
    }
    if (n < 0) {
        snprintf(why, sizeof why, "recv: %s", strerror(errno));
        pw_drop(p, why);
        return;
    }
    if (n == 0) {
        snprintf(why, sizeof why, "closed by the peer after %zu bytes", p->have);
        pw_drop(p, why);
        return;
    }
    switch (proxy_parse(p->buf, p->have + (size_t)n, &h)) {
    case PROXY_INVALID:
        pw_drop(p, h.why);
        return;
    case PROXY_NEED_MORE:
        if (pw_take(p, (size_t)n) < 0)
            pw_drop(p, "short read");
        else
            pw_arm(p);
        return;
    case PROXY_COMPLETE:
        if (pw_take(p, h.len - p->have) < 0)
            pw_drop(p, "short read");
        else
            pw_done(p, &h);
        return;
    }
}

static void pw_expired(struct deadline_list *dl, struct deadline *d)
{
    struct pwait *p = container_of(d, struct pwait, timer);
    char why[WHY_LEN];

    snprintf(why, sizeof why, "none within %g s (--proxy-timeout), %zu bytes",
             (double)dl->timeout_ms / 1000.0, p->have);
    pw_drop(p, why);
}

void proxy_wait_init(struct worker *wk)
{
    dlist_init(&wk->proxy_waits);
    deadline_list_init(&wk->proxy_header, wk->loop, wk->cfg->proxy_timeout_ms, pw_expired, wk);
}

void proxy_wait_start(struct worker *wk, struct listener *l, const struct accepted *a)
{
    struct pwait *p = malloc(sizeof *p);

    if (p == NULL) {
        worker_conn_release(wk, a->slot);
        net_reset_on_close(a->fd);
        close(a->fd);
        return;
    }
    memset(p, 0, offsetof(struct pwait, buf));
    p->wk = wk;
    p->l = l;
    p->a = *a;
    if (p->a.peer_len == 0) {
        /* For logs, and for LOCAL headers, which keep the connection's own peer. */
        p->a.peer_len = sizeof p->a.peer;
        if (getpeername(a->fd, (struct sockaddr *)&p->a.peer, &p->a.peer_len) < 0)
            p->a.peer_len = 0;
    }
    watch_init(&p->w, a->fd, pw_event);
    dlist_push_tail(&wk->proxy_waits, &p->all);
    wk->nconns++;
    deadline_start(&wk->proxy_header, &p->timer);
    pw_read(p);     /* a balancer sends the header at once: it is usually there */
}

void proxy_wait_close_all(struct worker *wk)
{
    for (struct dlink *node = wk->proxy_waits.next, *next; node != &wk->proxy_waits;
         node = next) {
        next = node->next;      /* closing one frees it, and no other */
        pw_close(container_of(node, struct pwait, all));
    }
}
