/* relay_open.c — a relay's start (relay.h): a client accepted on a relay@
 * listener gets its faults rolled, its send-proxy header written, and a
 * non-blocking connect to the target; relay.c takes over from there. */
#include "serve/engine/relay.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/net.h"
#include "lib/util.h"
#include "serve/engine/relay_impl.h"

/* send-proxy: the client (as a PROXY header named it, or the peer) and the address
 * it reached, ours. */
static void make_header(struct relay *r, const struct accepted *a, int version)
{
    struct sockaddr_storage peer, local;
    socklen_t plen = sizeof peer, llen = sizeof local;
    const struct sockaddr *src = NULL;
    size_t n;

    if (a->client_len) {
        src = (const struct sockaddr *)&a->client;
    } else if (a->peer_len) {
        src = (const struct sockaddr *)&a->peer;
    } else if (getpeername(a->fd, (struct sockaddr *)&peer, &plen) == 0) {
        src = (const struct sockaddr *)&peer;
    }
    if (getsockname(a->fd, (struct sockaddr *)&local, &llen) < 0)
        local.ss_family = AF_UNSPEC;
    n = proxy_write(version, src, (const struct sockaddr *)&local, r->hdr, sizeof r->hdr);
    r->hdr_len = (uint8_t)n;
}

static void dir_init(struct relay_dir *d, int up, const struct fault_shape *f, int64_t now)
{
    d->pipe[0] = d->pipe[1] = -1;
    d->full_unsent = -1;
    d->up = (unsigned)up;
    worker_wait_init(&d->wait, relay_dir_due);
    shape_open(&d->sh, f, now);
}

/* -v and the counters: which faults this connection got. */
static void note_faults(struct relay *r)
{
    const struct fault_shape *dirs[2] = { relay_dir_faults(r, &r->down), relay_dir_faults(r, &r->up) };
    char text[FAULT_TEXT_MAX];
    struct faults only;

    listener_count_faults(r->s.l, dirs[0]);
    listener_count_faults(r->s.l, dirs[1]);
    if (!r->s.peer || (!fault_shape_active(dirs[0]) && !fault_shape_active(dirs[1])))
        return;
    faults_clear(&only);
    only.down = *dirs[0];
    only.up = *dirs[1];
    log_msg("faults %s %s %s", r->s.l->slot->name, r->s.peer,
            faults_format(&only, text, sizeof text));
}

/* A relay adds no Nagle delay of its own: what a side sends goes on at once (a
 * client's small writes, and the faults' own timing, stay its own). */
static void no_delay(int fd)
{
    int on = 1;

    /* Not a tcp socket (unix), or refused: the bytes still go, maybe merged. */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
}

/* Start connecting to the target; returns 0, or the errno of a failure at once (a
 * unix socket's full backlog, EAGAIN, is one: it does not complete later). */
static int start_connect(struct relay *r)
{
    const struct relay_conf *rc = r->s.l->relay;
    int fd = socket(rc->to.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return errno;
    watch_init(&r->tw, fd, relay_target_event);
    if (rc->to.ss_family != AF_UNIX)
        no_delay(fd);
    if (connect(fd, (const struct sockaddr *)&rc->to, rc->to_len) == 0) {
        if (TRACE_ON)
            trace_fd("connect(%d) [relay target]", fd, 0);
        r->connecting = 0;
        return 0;
    }
    if (TRACE_ON)
        trace_fd("connect(%d) [relay target]", fd, -1);
    if (errno != EINPROGRESS)
        return errno;
    r->connecting = 1;
    if (rc->connect_timeout_ms > 0 &&
        worker_wait_set(relay_wk(r), &r->connect_wait,
                        now_us() + (int64_t)rc->connect_timeout_ms * 1000) < 0)
        return ENOMEM;
    return 0;
}

void relay_open(struct worker *wk, struct listener *l, const struct accepted *a)
{
    struct relay *r;
    struct conn_plan plan;
    int64_t now = now_us();
    int err;

    if ((wk->ops->accepts_blocking && net_set_nonblock(a->fd, 1) < 0) ||
        (r = calloc(1, sizeof *r)) == NULL) {
        worker_conn_release(wk, a->slot);
        close(a->fd);
        return;
    }
    watch_init(&r->cw, a->fd, relay_client_event);
    if (l->kind == LISTEN_TCP)
        no_delay(a->fd);
    watch_init(&r->tw, -1, relay_target_event);
    worker_wait_init(&r->connect_wait, relay_connect_timed_out);
    stream_open(&r->s, l, a, &plan, STREAM_RELAY);
    listener_faults_fresh(l);
    r->roll = fault_rng_unit(&wk->rng);
    dir_init(&r->up, 1, relay_dir_faults(r, &r->up), now);
    dir_init(&r->down, 0, relay_dir_faults(r, &r->down), now);
    note_faults(r);
    if (l->relay->send_proxy)
        make_header(r, a, l->relay->send_proxy);
    err = start_connect(r);
    if (err) {
        relay_target_failed(r, "refused", err);
        return;
    }
    if (r->connecting)
        relay_watch(r);
    else
        relay_step(r);
}
