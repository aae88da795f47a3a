/* server.c — the workers (one event loop per thread): listeners, accepting, signals,
 * and stopping.
 *
 * Worker 0 runs in the main thread and reads SIGINT/SIGTERM from a signalfd (the
 * signals are blocked in every thread); it tells every worker through its eventfd.
 * Stopping: close the listeners and remove unix socket files, let every connection
 * send what it holds and say goodbye (conn_stop_all), then exit when the last one is
 * gone or STOP_FLUSH_MS have passed, whichever is first. A second signal stops at
 * once. */
#include "serve/core/server.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "serve/engine/conn.h"
#include "serve/listen.h"
#include "lib/log.h"
#include "serve/metrics.h"
#include "lib/net.h"
#include "serve/privdrop.h"
#include "serve/systemd.h"
#include "serve/core/proxy_wait.h"
#include "serve/engine/udp.h"
#include "serve/engine/uring_engine.h"
#include "lib/util.h"

#define ACCEPTS_PER_EVENT 64
#define ACCEPT_RETRY_MS 100
#define ACCEPT_LOG_MS 1000
#define STOP_FLUSH_MS 1000
#define POOL_KEEP 64
#define FD_MARGIN 16                /* descriptors kept free beyond --max-conns */
#define TICK_MS 1000                /* sd_notify STATUS and the inetd udp idle check */

struct server {
    struct worker *workers;
    size_t nworkers;
    struct watch signals;           /* a signalfd, in worker 0's loop */
    struct watch worker_done;       /* an eventfd, in worker 0's loop: another has ended */
    atomic_size_t running;          /* workers whose loop has not ended */
    struct guard *guard;
    char status[128];               /* the last STATUS= sent to the service manager */
    uint64_t dgrams_seen;           /* inetd udp: datagrams in at the last tick */
    int64_t dgram_ms;               /* and when that count last moved */
    size_t nlisteners;              /* each worker's */
    struct metrics *metrics;        /* --metrics, or NULL */
};

const char *listener_kind_name(enum listener_kind kind)
{
    switch (kind) {
    case LISTEN_TCP: return "tcp";
    case LISTEN_UDP: return "udp";
    case LISTEN_UNIX: return "unix";
    }
    return "?";
}

void reset_on_close(int fd)
{
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };

    /* Should this fail, the peer gets a FIN instead: no harm done. */
    (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
}

/* The log line's verb and reason for a drop. */
static const char *drop_verb(enum drop_reason why)
{
    switch (why) {
    case DROP_MAX_CONNS: case DROP_PER_IP: return "refused";
    case DROP_IDLE: return "closed";
    default: return "dropped";
    }
}

static void drop_detail(const struct serve_config *cfg, enum drop_reason why, char *buf,
                        size_t len)
{
    switch (why) {
    case DROP_MAX_CONNS:
        snprintf(buf, len, "%zu connections open (--max-conns)", cfg->limits.max_conns);
        break;
    case DROP_PER_IP:
        snprintf(buf, len, "%u connections from that address (--max-per-ip)",
                 cfg->limits.max_per_ip);
        break;
    case DROP_IDLE:
        snprintf(buf, len, "idle for %g s (--idle-timeout)", cfg->idle_timeout_ms / 1000.0);
        break;
    case DROP_SEND_TIMEOUT:
        snprintf(buf, len, "read nothing for %g s while output waited (--send-timeout)",
                 cfg->send_timeout_ms / 1000.0);
        break;
    case DROP_UDP_PORT:
        snprintf(buf, len, "source port below 1024 (--udp-guard)");
        break;
    case DROP_UDP_OWN_PORT:
        snprintf(buf, len, "source port is one kodama serves on (--udp-guard)");
        break;
    case DROP_UDP_RATE:
        snprintf(buf, len, "over %u datagrams/s from that address (--udp-rate)",
                 cfg->limits.udp_rate);
        break;
    case DROP_UDP_SHORT:
        snprintf(buf, len, "request shorter than the whole reply (--udp-guard)");
        break;
    default:
        snprintf(buf, len, "%s", drop_reason_name(why));
        break;
    }
}

void worker_drop(struct worker *wk, struct listener *l, enum drop_reason why, int fd,
                 const struct sockaddr *peer, socklen_t len)
{
    worker_drop_detail(wk, l, why, fd, peer, len, NULL);
}

void worker_drop_detail(struct worker *wk, struct listener *l, enum drop_reason why, int fd,
                        const struct sockaddr *peer, socklen_t len, const char *what)
{
    struct sockaddr_storage ss;
    char text[ADDR_TEXT_MAX], detail[128], more[64] = "";
    unsigned long skipped;

    counter_add(&l->stats.drops[why], 1);
    if (!log_limit_claim(guard_log_limit(wk->guard, why), &skipped))
        return;
    if (len == 0 && fd >= 0) {
        len = sizeof ss;
        if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
            len = 0;
        peer = (const struct sockaddr *)&ss;
    }
    if (what)
        snprintf(detail, sizeof detail, "%s", what);
    else
        drop_detail(wk->cfg, why, detail, sizeof detail);
    if (skipped)
        snprintf(more, sizeof more, " (%lu more since the last report)", skipped);
    log_msg("%s %s %s %s from %s: %s%s", drop_verb(why), l->svc->name,
            listener_kind_name(l->kind), l->addr,
            len > 0 ? addr_format(peer, len, text, sizeof text) : "?", detail, more);
}

int worker_admit(struct worker *wk, struct listener *l, int fd, const struct sockaddr *peer,
                 socklen_t len, struct ip_count **slot)
{
    enum drop_reason why;
    /* Behind a PROXY header the peer is the load balancer: the per-address limit
     * waits for the client the header names (worker_admit_client). */
    socklen_t counted = l->kind == LISTEN_UNIX || l->proxy ? 0 : len;

    if (guard_conn_admit(wk->guard, peer, counted, slot, &why) == 0)
        return 0;
    worker_drop(wk, l, why, fd, peer, len);
    reset_on_close(fd);
    close(fd);
    return -1;
}

int worker_admit_client(struct worker *wk, struct listener *l, int fd,
                        const struct sockaddr *addr, socklen_t len, struct ip_count **slot)
{
    enum drop_reason why;

    if (guard_conn_admit_addr(wk->guard, addr, len, slot, &why) == 0)
        return 0;
    guard_conn_release(wk->guard, NULL);    /* its place under --max-conns */
    worker_drop(wk, l, why, fd, addr, len);
    reset_on_close(fd);
    close(fd);
    return -1;
}

void worker_accepted(struct worker *wk, struct listener *l, const struct accepted *a)
{
    if (l->proxy)
        proxy_wait_start(wk, l, a);
    else
        worker_serve(wk, l, a);
}

void worker_conn_release(struct worker *wk, struct ip_count *slot)
{
    guard_conn_release(wk->guard, slot);
}

void worker_serve(struct worker *wk, struct listener *l, const struct accepted *a)
{
    if (wk->uring)
        uconn_open(wk, l, a);
    else
        conn_open(wk, l, a);
}

char *conn_log_accept(const struct listener *l, const struct accepted *a)
{
    char text[ADDR_TEXT_MAX];
    const char *peer = "?";

    if (a->client_len)
        peer = addr_format((const struct sockaddr *)&a->client, a->client_len, text,
                           sizeof text);
    else if (a->peer_len)
        peer = addr_format((const struct sockaddr *)&a->peer, a->peer_len, text,
                           sizeof text);
    log_msg("accept %s %s %s", l->svc->name, listener_kind_name(l->kind), peer);
    return xstrdup(peer);
}

void svc_ctx_for_conn(struct svc_ctx *ctx, const struct worker *wk,
                      const struct listener *l, const struct accepted *a,
                      struct sockaddr_storage *local)
{
    socklen_t len = sizeof *local;

    memset(ctx, 0, sizeof *ctx);
    ctx->cfg = wk->cfg;
    ctx->proto = listener_kind_name(l->kind);
    if (!l->svc->wants_addresses)
        return;
    if (getsockname(a->fd, (struct sockaddr *)local, &len) == 0) {
        ctx->local = (const struct sockaddr *)local;
        ctx->local_len = len;
    }
    ctx->peer = (const struct sockaddr *)&a->peer;
    ctx->peer_len = a->peer_len;
    ctx->client = (const struct sockaddr *)&a->client;
    ctx->client_len = a->client_len;
}

/* Many clients need many descriptors: take all the hard limit allows. */
static void raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            log_msg("cannot raise the descriptor limit: %s", strerror(errno));
    }
}

/* Out of descriptors is a condition that lasts: say so at most once a second. */
static void log_accept_error(struct worker *wk, struct listener *l, int err)
{
    int64_t now = now_ms();

    counter_add(&l->stats.accept_errors, 1);
    if (now - wk->accept_log_ms < ACCEPT_LOG_MS) {
        wk->accept_errors_unlogged++;
        return;
    }
    if (wk->accept_errors_unlogged)
        log_msg("cannot accept on %s %s %s: %s (%lu more since the last report)", l->svc->name,
                listener_kind_name(l->kind), l->addr, strerror(err), wk->accept_errors_unlogged);
    else
        log_msg("cannot accept on %s %s %s: %s", l->svc->name, listener_kind_name(l->kind),
                l->addr, strerror(err));
    wk->accept_log_ms = now;
    wk->accept_errors_unlogged = 0;
}

static unsigned listener_mask(const struct listener *l)
{
    return LOOP_READ | (l->shared ? LOOP_EXCLUSIVE : 0);
}

static void resume_accepting(struct worker *wk)
{
    for (size_t i = 0; i < wk->nlisteners; i++) {
        struct listener *l = &wk->listeners[i];

        if (!l->paused)
            continue;
        l->paused = 0;
        wk->paused_listeners--;
        if (wk->uring)
            uring_listener_start(wk, l);
        else if (loop_watch(wk->loop, &l->w, listener_mask(l)) < 0)
            log_msg("cannot watch %s %s %s: %s", l->svc->name, listener_kind_name(l->kind),
                    l->addr, strerror(errno));
    }
}

static long accept_retry(struct loop *loop, void *data)
{
    struct worker *wk = data;

    (void)loop;
    wk->accept_retry_armed = 0;
    if (wk->paused_listeners && !wk->stopping)
        resume_accepting(wk);
    return LOOP_TIMER_DONE;
}

/* The pending connections wait in the kernel's backlog until a descriptor frees up
 * (a connection closes, or the retry timer fires); the others are served meanwhile. */
static void pause_accepting(struct worker *wk, struct listener *l)
{
    l->paused = 1;
    wk->paused_listeners++;
    if (!wk->uring)
        loop_watch(wk->loop, &l->w, 0);
    if (!wk->accept_retry_armed) {
        loop_timer_add(wk->loop, ACCEPT_RETRY_MS, accept_retry, wk);
        wk->accept_retry_armed = 1;
    }
}

/* A stopping worker is done when its last connection has closed and, on io_uring,
 * the last listener's request has ended: until then that request holds the socket
 * open, and the port must be free again when the process has exited. */
int worker_check_done(struct worker *wk)
{
    if (!wk->stopping || wk->nconns > 0)
        return 0;
    /* Worker 0 reads the signals: it waits for the others, so that a second
     * signal still stops them at once. */
    if (wk->id == 0 && atomic_load(&wk->srv->running) > 1)
        return 0;
    for (size_t i = 0; i < wk->nlisteners; i++)
        if (wk->listeners[i].armed)
            return 0;
    loop_stop(wk->loop);
    return 1;
}

void worker_conn_closed(struct worker *wk)
{
    if (wk->paused_listeners && !wk->stopping)
        resume_accepting(wk);
    worker_check_done(wk);
}

int worker_accept_error(struct worker *wk, struct listener *l, int err)
{
    switch (err) {
    case EAGAIN: case ECONNABORTED: case EPROTO: case EPERM: case EINTR:
        return 0;   /* that client is gone or refused; the next may be fine */
    case EMFILE: case ENFILE: case ENOBUFS: case ENOMEM:
        log_accept_error(wk, l, err);
        pause_accepting(wk, l);
        return 1;
    default:
        log_accept_error(wk, l, err);
        return 0;
    }
}

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
        a.client_len = 0;
        if (a.fd >= 0) {
            if (worker_admit(l->wk, l, a.fd, (struct sockaddr *)&a.peer, a.peer_len,
                             &a.slot) == 0)
                worker_accepted(l->wk, l, &a);
            continue;
        }
        if (err == EAGAIN || worker_accept_error(l->wk, l, err))
            return;
        if (err != ECONNABORTED && err != EPROTO && err != EPERM && err != EINTR)
            return;     /* logged; the next readable event tries again */
    }
}

static void engine_stop_all(struct worker *wk)
{
    if (wk->uring)
        uconn_stop_all(wk);
    else
        conn_stop_all(wk);
}

/* The loop stops right after (a deadline, a second signal, or exit). */
static void engine_close_all(struct worker *wk)
{
    proxy_wait_close_all(wk, 1);
    if (wk->uring)
        uconn_close_all(wk);
    else
        conn_close_all(wk);
}

static long stop_deadline(struct loop *loop, void *data)
{
    struct worker *wk = data;

    engine_close_all(wk);
    loop_stop(loop);
    return LOOP_TIMER_DONE;
}

static void close_listeners(struct worker *wk)
{
    for (size_t i = 0; i < wk->nlisteners; i++) {
        struct listener *l = &wk->listeners[i];

        if (l->w.fd < 0)
            continue;
        if (wk->uring)
            uring_listener_stop(wk, l);
        else
            loop_unwatch(wk->loop, &l->w);
        close(l->w.fd);
        l->w.fd = -1;
        if (l->unlink_path) {
            unlink(l->unlink_path);
            free(l->unlink_path);
            l->unlink_path = NULL;
        }
    }
}

/* The drain is over: every connection gets what it is owed and a goodbye, and
 * whatever is left after STOP_FLUSH_MS is closed. */
static void finish_connections(struct worker *wk)
{
    wk->finishing = 1;
    engine_stop_all(wk);
    if (!worker_check_done(wk))
        loop_timer_add(wk->loop, STOP_FLUSH_MS, stop_deadline, wk);
}

static long drain_over(struct loop *loop, void *data)
{
    struct worker *wk = data;

    (void)loop;
    if (!wk->finishing)
        finish_connections(wk);
    return LOOP_TIMER_DONE;
}

/* Stop accepting at once; connections are served as usual for the drain time, so
 * that clients in the middle of an exchange lose nothing. */
static void begin_stop(struct worker *wk)
{
    if (wk->stopping) {
        engine_close_all(wk);
        loop_stop(wk->loop);
        return;
    }
    if (wk->id == 0 && !wk->cfg->inetd)
        log_msg("stopping");
    if (wk->id == 0)
        sd_notify_send("STOPPING=1");
    wk->stopping = 1;
    close_listeners(wk);
    proxy_wait_close_all(wk, 0);    /* no header yet: nothing was promised them */
    if (worker_check_done(wk))
        return;
    if (wk->cfg->drain_timeout_ms > 0)
        loop_timer_add(wk->loop, wk->cfg->drain_timeout_ms, drain_over, wk);
    else
        finish_connections(wk);
}

static long stop_now(struct loop *loop, void *data)
{
    (void)loop;
    begin_stop(data);
    return LOOP_TIMER_DONE;
}

/* Tell every worker to stop (or, the second time, to stop at once). */
static void server_stop_all(struct server *srv)
{
    uint64_t one = 1;

    for (size_t i = 0; i < srv->nworkers; i++)
        if (write(srv->workers[i].wake.fd, &one, sizeof one) < 0 && errno != EAGAIN)
            log_msg("cannot wake worker %zu: %s", i, strerror(errno));
}

static void signal_ready(struct loop *loop, struct watch *w, unsigned events)
{
    struct server *srv = container_of(w, struct server, signals);
    struct signalfd_siginfo si;

    (void)loop;
    (void)events;
    while (read(w->fd, &si, sizeof si) == (ssize_t)sizeof si)
        server_stop_all(srv);
}

/* Stopping closes connections, and a connection may have an event waiting later in
 * this very batch: the work is deferred to a timer, which runs after the batch. */
static void wake_ready(struct loop *loop, struct watch *w, unsigned events)
{
    struct worker *wk = container_of(w, struct worker, wake);
    uint64_t count;

    (void)events;
    if (read(w->fd, &count, sizeof count) != (ssize_t)sizeof count)
        return;
    while (count--)
        loop_timer_add(loop, 0, stop_now, wk);
}

/* Signals arrive as readable events on a signalfd, in worker 0's loop. They are
 * blocked before any other thread starts, so every thread inherits the mask. */
static int block_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    return pthread_sigmask(SIG_BLOCK, set, NULL) == 0 ? 0 : -1;
}

static void worker_done_ready(struct loop *loop, struct watch *w, unsigned events)
{
    struct server *srv = container_of(w, struct server, worker_done);
    uint64_t count;

    (void)loop;
    (void)events;
    if (read(w->fd, &count, sizeof count) == (ssize_t)sizeof count)
        worker_check_done(&srv->workers[0]);
}

static int watch_signals(struct server *srv, const sigset_t *set)
{
    int fd = signalfd(-1, set, SFD_NONBLOCK | SFD_CLOEXEC);

    if (fd < 0)
        return -1;
    watch_init(&srv->signals, fd, signal_ready);
    if (loop_watch(srv->workers[0].loop, &srv->signals, LOOP_READ) < 0)
        return -1;
    fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0)
        return -1;
    watch_init(&srv->worker_done, fd, worker_done_ready);
    return loop_watch(srv->workers[0].loop, &srv->worker_done, LOOP_READ);
}

static int worker_init(struct worker *wk, size_t id, struct listener *ls, size_t n,
                       const struct serve_config *cfg)
{
    int fd;

    memset(wk, 0, sizeof *wk);
    wk->id = id;
    wk->cfg = cfg;
    wk->listeners = ls;
    wk->nlisteners = n;
    dlist_init(&wk->conns);
    dlist_init(&wk->proxy_waits);
    pool_init(&wk->pool, cfg->max_buffer, POOL_KEEP);
    watch_init(&wk->wake, -1, wake_ready);
    for (size_t i = 0; i < n; i++) {
        ls[i].wk = wk;
        if (ls[i].kind == LISTEN_UDP && wk->udp == NULL && cfg->io == LOOP_IO_EPOLL)
            wk->udp = udp_batch_new();
        if (ls[i].kind == LISTEN_UDP && ls[i].svc->wants_addresses)
            udp_listener_local(&ls[i]);
    }
    wk->loop = loop_new(cfg->io);
    if (wk->loop == NULL)
        return -1;
    if (cfg->io == LOOP_IO_URING) {
        if (uring_engine_init(wk) < 0)
            return -1;
    } else {
        conn_engine_init(wk);
    }
    proxy_wait_init(wk);
    fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0)
        return -1;
    wk->wake.fd = fd;
    if (loop_watch(wk->loop, &wk->wake, LOOP_READ) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        ls[i].w.fn = ls[i].kind == LISTEN_UDP ? udp_readable : accept_ready;
        if (ls[i].w.fd < 0)
            continue;   /* --inetd tcp: the connection was accepted for us */
        if (wk->uring)
            uring_listener_start(wk, &ls[i]);
        else if (loop_watch(wk->loop, &ls[i].w, listener_mask(&ls[i])) < 0)
            return -1;
    }
    return 0;
}

static void worker_destroy(struct worker *wk)
{
    wk->stopping = 1;   /* closing connections must not resume accepting */
    engine_close_all(wk);
    uring_engine_destroy(wk);
    pool_destroy(&wk->pool);
    udp_batch_free(wk->udp);
    if (wk->wake.fd >= 0)
        close(wk->wake.fd);
    loop_free(wk->loop);
}

/* Runs a worker's loop; a loop that fails takes the whole server down with it. */
static void *worker_main(void *arg)
{
    struct worker *wk = arg;
    uint64_t one = 1;

    if (loop_run(wk->loop) < 0) {
        log_msg("event loop failed: %s", strerror(errno));
        wk->failed = 1;
        server_stop_all(wk->srv);
    }
    atomic_fetch_sub(&wk->srv->running, 1);
    if (wk->id > 0 && write(wk->srv->worker_done.fd, &one, sizeof one) < 0)
        log_msg("cannot tell worker 0 that worker %zu ended: %s", wk->id, strerror(errno));
    return NULL;
}

/* Worker 0 serves the listeners it was given; every other one a copy of its own. */
static int server_init(struct server *srv, struct listener *ls, size_t n,
                       const struct serve_config *cfg)
{
    char err[KODAMA_ERR_LEN + ADDR_TEXT_MAX];

    for (size_t i = 0; i < srv->nworkers; i++) {
        struct worker *wk = &srv->workers[i];
        struct listener *own = ls;

        if (i > 0 && listeners_copy(ls, n, cfg->share_listeners, &own, err, sizeof err) < 0) {
            log_msg("%s", err);
            return -1;
        }
        if (worker_init(wk, i, own, n, cfg) < 0) {
            log_msg("cannot start event loop %zu: %s", i, strerror(errno));
            return -1;
        }
        wk->srv = srv;
    }
    return 0;
}

static void server_destroy(struct server *srv, size_t n)
{
    for (size_t i = 0; i < srv->nworkers; i++) {
        struct worker *wk = &srv->workers[i];

        if (wk->loop)
            worker_destroy(wk);
        if (i > 0 && wk->listeners)
            listeners_close(wk->listeners, n);
    }
    if (srv->signals.fd >= 0)
        close(srv->signals.fd);
    if (srv->worker_done.fd >= 0)
        close(srv->worker_done.fd);
    free(srv->workers);
}

static void log_listening(const struct listener *ls, size_t n)
{
    for (size_t i = 0; i < n; i++)
        log_msg("listening %s %s %s", ls[i].svc->name, listener_kind_name(ls[i].kind),
                ls[i].addr);
}

/* Connections open and served, datagrams answered, over every worker. */
static void server_status(const struct server *srv, char *buf, size_t len)
{
    struct listener_totals t = { 0 };
    const struct worker *w0 = &srv->workers[0];

    for (size_t w = 0; w < srv->nworkers; w++)
        for (size_t i = 0; i < w0->nlisteners; i++)
            listener_totals_add(&t, &srv->workers[w].listeners[i].stats);
    snprintf(buf, len, "STATUS=connections: %llu open, %llu served; datagrams: %llu answered",
             (unsigned long long)t.active, (unsigned long long)t.accepted,
             (unsigned long long)t.dgrams_out);
}

static void notify_status(struct server *srv)
{
    char status[sizeof srv->status];

    server_status(srv, status, sizeof status);
    if (strcmp(status, srv->status) == 0)
        return;     /* unchanged: nothing to tell */
    snprintf(srv->status, sizeof srv->status, "%s", status);
    sd_notify_send(status);
}

/* inetd "wait" udp: inetd listens again only once we have exited. Returns 1 if the
 * socket has been idle long enough and the server is stopping. */
static int inetd_udp_idle(struct server *srv, int64_t now)
{
    struct listener_totals t = { 0 };
    struct worker *wk = &srv->workers[0];

    listener_totals_add(&t, &wk->listeners[0].stats);
    if (t.dgrams_in != srv->dgrams_seen || srv->dgram_ms == 0) {
        srv->dgrams_seen = t.dgrams_in;
        srv->dgram_ms = now;
    }
    if (wk->cfg->idle_timeout_ms <= 0 || now - srv->dgram_ms < wk->cfg->idle_timeout_ms)
        return 0;
    server_stop_all(srv);
    return 1;
}

/* Worker 0's periodic work: cheap (a sum of counters), and only when asked for. */
static long server_tick(struct loop *loop, void *data)
{
    struct server *srv = data;
    struct worker *wk = &srv->workers[0];

    if (wk->stopping)
        return LOOP_TIMER_DONE;
    notify_status(srv);
    if (wk->cfg->inetd && wk->nlisteners == 1 && wk->listeners[0].kind == LISTEN_UDP &&
        inetd_udp_idle(srv, loop_now(loop)))
        return LOOP_TIMER_DONE;
    return TICK_MS;
}

/* inetd "nowait": the connection inetd accepted, served as if worker 0 had accepted
 * it. The worker counts as stopping (it accepts nothing), so it ends with the
 * connection; a signal closes the connection at once. Run from the loop, where the
 * engine is fully started. */
static long inetd_conn_start(struct loop *loop, void *data)
{
    struct worker *wk = data;
    struct listener *l = &wk->listeners[0];
    struct accepted a = { .fd = wk->cfg->inetd_conn };

    (void)loop;
    wk->stopping = 1;
    a.peer_len = sizeof a.peer;
    if (getpeername(a.fd, (struct sockaddr *)&a.peer, &a.peer_len) < 0)
        a.peer_len = 0;
    if (worker_admit(wk, l, a.fd, (struct sockaddr *)&a.peer, a.peer_len, &a.slot) == 0)
        worker_serve(wk, l, &a);
    worker_check_done(wk);
    return LOOP_TIMER_DONE;
}

/* Everything is running: tell the service manager, start the periodic work. */
static void server_started(struct server *srv)
{
    struct worker *wk = &srv->workers[0];
    char msg[sizeof srv->status + 16];

    server_status(srv, srv->status, sizeof srv->status);
    snprintf(msg, sizeof msg, "READY=1\n%s", srv->status);
    sd_notify_send(msg);
    if (wk->cfg->inetd && wk->cfg->inetd_conn >= 0)
        loop_timer_add(wk->loop, 0, inetd_conn_start, wk);
    if (sd_notify_enabled() || wk->cfg->inetd)
        loop_timer_add(wk->loop, TICK_MS, server_tick, srv);
}

/* Starts workers 1..N-1 in threads and runs worker 0 here. "ready" comes once every
 * thread is running. */
static int server_serve(struct server *srv, const struct listener *ls, size_t n)
{
    size_t started = 1;
    int rc = 0;

    atomic_store(&srv->running, srv->nworkers);
    for (; started < srv->nworkers; started++) {
        struct worker *wk = &srv->workers[started];
        int err = pthread_create(&wk->thread, NULL, worker_main, wk);

        if (err != 0) {
            log_msg("cannot start a thread: %s", strerror(err));
            atomic_fetch_sub(&srv->running, srv->nworkers - started);
            server_stop_all(srv);
            rc = 1;
            break;
        }
    }
    if (rc == 0 && !srv->workers[0].cfg->inetd) {
        log_listening(ls, n);
        if (srv->metrics)
            log_msg("listening metrics tcp %s", srv->workers[0].cfg->metrics->addr);
        log_msg("ready");
    }
    if (rc == 0) {
        log_runtime_begin();
        server_started(srv);
    }
    worker_main(&srv->workers[0]);
    for (size_t i = 1; i < started; i++)
        pthread_join(srv->workers[i].thread, NULL);
    for (size_t i = 0; i < started; i++)
        if (srv->workers[i].failed)
            rc = 1;
    return rc;
}

/* Once every socket is made (SO_REUSEPORT siblings must share their owner's uid),
 * before anything is served. */
static int become_user(const struct run_as *user, int verbose)
{
    char err[KODAMA_ERR_LEN];

    if (user == NULL)
        return 0;
    if (run_as_become(user, err, sizeof err) < 0) {
        log_msg("cannot run as user %s: %s", user->name, err);
        return -1;
    }
    if (verbose)
        log_msg("running as user %s (uid %lu, gid %lu)", user->name, (unsigned long)user->uid,
                (unsigned long)user->gid);
    return 0;
}

/* --max-conns by default: every descriptor the limit leaves, minus those in use and
 * a margin, so that a connection beyond the limit can still be accepted (and
 * refused at once) instead of waiting in the backlog. */
static size_t default_max_conns(size_t nworkers)
{
    struct rlimit rl;
    long nopen = open_fd_count();
    /* Without /proc, 64 in use is a generous guess. */
    size_t used = (nopen < 0 ? 64 : (size_t)nopen) + FD_MARGIN + nworkers;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
        return 1 << 20;
    return rl.rlim_cur > used ? (size_t)rl.rlim_cur - used : 1;
}

/* The ports we answer datagrams on, for the UDP guard. */
static size_t udp_ports(const struct listener *ls, size_t n, uint16_t *ports)
{
    size_t np = 0;

    for (size_t i = 0; i < n; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;

        if (ls[i].kind == LISTEN_UDP && getsockname(ls[i].w.fd, (struct sockaddr *)&ss, &len) == 0)
            ports[np++] = (uint16_t)addr_port((struct sockaddr *)&ss);
    }
    return np;
}

static int server_guard(struct server *srv, const struct listener *ls, size_t n,
                        struct serve_config *cfg)
{
    uint16_t *ports = xcalloc(n ? n : 1, sizeof *ports);
    size_t np = udp_ports(ls, n, ports);

    if (cfg->limits.max_conns == 0) {
        cfg->limits.max_conns = default_max_conns(srv->nworkers);
        if (cfg->verbose)
            log_msg("max-conns %zu (from the descriptor limit)", cfg->limits.max_conns);
    }
    srv->guard = guard_new(&cfg->limits, ports, np);
    free(ports);
    for (size_t i = 0; i < srv->nworkers; i++)
        srv->workers[i].guard = srv->guard;
    return 0;
}

void listener_totals_add(struct listener_totals *t, const struct listener_stats *st)
{
    t->accepted += counter_get(&st->accepted);
    t->active += counter_get(&st->active);
    t->bytes_in += counter_get(&st->bytes_in);
    t->bytes_out += counter_get(&st->bytes_out);
    t->dgrams_in += counter_get(&st->dgrams_in);
    t->dgrams_out += counter_get(&st->dgrams_out);
    t->dgrams_dropped += counter_get(&st->dgrams_dropped);
    t->accept_errors += counter_get(&st->accept_errors);
    for (int r = 0; r < DROP_REASONS; r++)
        t->drops[r] += counter_get(&st->drops[r]);
}

size_t server_nlisteners(const struct server *srv)
{
    return srv->nlisteners;
}

const struct listener *server_listener_totals(const struct server *srv, size_t i,
                                              struct listener_totals *t)
{
    memset(t, 0, sizeof *t);
    for (size_t w = 0; w < srv->nworkers; w++)
        listener_totals_add(t, &srv->workers[w].listeners[i].stats);
    return &srv->workers[0].listeners[i];
}

/* -v: what each listener did, summed over the workers, when the server stops. */
static void log_counters(const struct server *srv, const struct listener *ls, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct listener_totals t = { 0 };
        char drops[512] = "";
        size_t off = 0;

        for (size_t w = 0; w < srv->nworkers; w++)
            listener_totals_add(&t, &srv->workers[w].listeners[i].stats);
        for (int r = 0; r < DROP_REASONS && off < sizeof drops; r++)
            if ((r >= DROP_UDP_PORT) == (ls[i].kind == LISTEN_UDP))
                off += (size_t)snprintf(drops + off, sizeof drops - off, " %s=%llu",
                                        drop_reason_name((enum drop_reason)r),
                                        (unsigned long long)t.drops[r]);
        if (ls[i].kind == LISTEN_UDP)
            log_msg("counters %s udp %s datagrams_in=%llu datagrams_out=%llu send_failed=%llu "
                    "bytes_in=%llu bytes_out=%llu%s", ls[i].svc->name, ls[i].addr,
                    (unsigned long long)t.dgrams_in, (unsigned long long)t.dgrams_out,
                    (unsigned long long)t.dgrams_dropped, (unsigned long long)t.bytes_in,
                    (unsigned long long)t.bytes_out, drops);
        else
            log_msg("counters %s %s %s accepted=%llu bytes_in=%llu bytes_out=%llu%s",
                    ls[i].svc->name, listener_kind_name(ls[i].kind), ls[i].addr,
                    (unsigned long long)t.accepted, (unsigned long long)t.bytes_in,
                    (unsigned long long)t.bytes_out, drops);
    }
}

int server_run(struct listener *ls, size_t n, const struct serve_config *cfg)
{
    struct server srv = { .nworkers = cfg->threads > 0 ? cfg->threads : 1, .nlisteners = n };
    struct serve_config run = *cfg;     /* with the limits made concrete */
    sigset_t set;
    int rc = 1;

    raise_fd_limit();
    srv.workers = xcalloc(srv.nworkers, sizeof *srv.workers);
    watch_init(&srv.signals, -1, signal_ready);
    watch_init(&srv.worker_done, -1, worker_done_ready);
    if (block_signals(&set) < 0 || server_init(&srv, ls, n, &run) < 0 ||
        server_guard(&srv, ls, n, &run) < 0)
        goto end;
    if (watch_signals(&srv, &set) < 0) {
        log_msg("cannot watch signals: %s", strerror(errno));
        goto end;
    }
    if (become_user(run.user, run.verbose) < 0)
        goto end;
    /* Started before any worker thread; stopped once they have all ended, so that
     * it never reads a listener that is gone, and scrapes go on during the drain. */
    if (run.metrics && (srv.metrics = metrics_start(run.metrics, &srv)) == NULL)
        goto end;
    rc = server_serve(&srv, ls, n);
    metrics_stop(srv.metrics);
    if (run.verbose)
        log_counters(&srv, ls, n);
end:
    server_destroy(&srv, n);
    listeners_close(ls, n);
    guard_free(srv.guard);
    return rc;
}
