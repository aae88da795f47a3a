/* server.c — running a server: its workers (one event loop per thread), signals,
 * draining and stopping, the service manager's notifications, --user and --metrics.
 * A worker's engine is its table (worker.h), chosen here and called through it.
 *
 * Worker 0 runs in the main thread and reads SIGINT, SIGTERM and SIGHUP from a signalfd (the
 * signals are blocked in every thread); it tells every worker through its eventfd.
 * Stopping: close the listeners and remove unix socket files, let every connection
 * send what it holds and say goodbye (the engine's stop_all), then exit when the last one is
 * gone or STOP_FLUSH_MS have passed, whichever is first. A second signal stops at
 * once. */
#include "serve/server.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"
#include "serve/core/dgram.h"
#include "serve/core/dgram_fault.h"
#include "serve/core/proxy_wait.h"
#include "serve/core/tls_wait.h"
#include "serve/control.h"
#include "serve/listen.h"
#include "serve/metrics.h"
#include "serve/privdrop.h"
#include "serve/systemd.h"

#define STOP_FLUSH_MS 1000
#define POOL_KEEP 64
#define FD_MARGIN 16                /* descriptors kept free beyond --max-conns */
#define TICK_MS 1000                /* sd_notify STATUS and the inetd udp idle check */

struct server {
    struct worker_set ws;           /* every worker, for the metrics thread too */
    struct worker *workers;         /* ws.workers */
    size_t nworkers;
    struct watch signals;           /* a signalfd, in worker 0's loop */
    struct watch worker_done;       /* an eventfd, in worker 0's loop: another has ended */
    atomic_size_t running;          /* workers whose loop has not ended */
    struct guard *guard;
    char status[128];               /* the last STATUS= sent to the service manager */
    uint64_t dgrams_seen;           /* inetd udp: datagrams in at the last tick */
    int64_t dgram_ms;               /* and when that count last moved */
    struct metrics *metrics;        /* --metrics, or NULL */
    struct control *control;        /* --control, or NULL */
};

/* The loop stops right after (a deadline, a second signal, or exit). */
static void close_all(struct worker *wk)
{
    proxy_wait_close_all(wk);
    tls_wait_close_all(wk);
    wk->ops->close_all(wk);
}

static long stop_deadline(struct loop *loop, void *data)
{
    struct worker *wk = data;

    close_all(wk);
    loop_stop(loop);
    return LOOP_TIMER_DONE;
}

static void close_listeners(struct worker *wk)
{
    for (size_t i = 0; i < wk->nlisteners; i++) {
        struct listener *l = &wk->listeners[i];

        if (l->w.fd < 0)
            continue;
        wk->ops->listener_stop(wk, l);
        close(l->w.fd);
        l->w.fd = -1;
        listener_remove_file(l);
    }
}

/* The drain is over: every connection gets what it is owed and a goodbye, and
 * whatever is left after STOP_FLUSH_MS is closed. */
static void finish_connections(struct worker *wk)
{
    wk->finishing = 1;
    wk->ops->stop_all(wk);
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
        close_all(wk);
        loop_stop(wk->loop);
        return;
    }
    if (wk->id == 0 && !wk->cfg->inetd)
        log_msg("stopping");
    if (wk->id == 0)
        sd_notify_send("STOPPING=1");
    wk->stopping = 1;
    close_listeners(wk);
    proxy_wait_close_all(wk);
    tls_wait_close_all(wk);
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

/* SIGHUP: a service manager's "reload", or the terminal going away. Never a reason
 * to stop; what can be read again is (and a failure keeps what was there). */
static void server_reload(struct server *srv)
{
    struct tls_server *tls = srv->workers[0].cfg->tls;
    char err[KODAMA_ERR_LEN + 600];
    int rc = tls ? tls_server_reload(tls, err, sizeof err) : 0;

    if (rc > 0)
        log_msg("SIGHUP: reloaded the certificate, tls fingerprint sha256 %s",
                tls_server_fingerprint(tls));
    else if (rc < 0)
        log_msg("SIGHUP: kept the certificate in use: %s", err);
    else if (tls)
        log_msg("SIGHUP: nothing to reload (the certificate is self-signed)");
    else
        log_msg("SIGHUP: nothing to reload");
}

static void signal_ready(struct loop *loop, struct watch *w, unsigned events)
{
    struct server *srv = container_of(w, struct server, signals);
    struct signalfd_siginfo si;

    (void)loop;
    (void)events;
    while (read(w->fd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGHUP)
            server_reload(srv);
        else
            server_stop_all(srv);
    }
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
    sigaddset(set, SIGHUP);
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

/* A listener's faults as it starts: its copy of the slot's, and whether its stream
 * connections need a shaper (faults now, or a control API that may add some). */
static void listener_faults_start(struct listener *l, const struct serve_config *cfg)
{
    faults_clear(&l->faults);
    if (l->slot == NULL)
        return;
    listener_faults_copy(l);
    l->shaped = l->kind != LISTEN_UDP &&
                (cfg->control != NULL || faults_active_stream(&l->faults));
}

/* --seed N makes every worker's choices repeat; without it, they differ each run. */
static void worker_rng_seed(struct worker *wk, const struct serve_config *cfg)
{
    uint64_t seed = cfg->seed;

    if (!cfg->seeded && getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed)
        seed = (uint64_t)now_ms() ^ ((uint64_t)getpid() << 32);
    fault_rng_seed(&wk->rng, seed, wk->id);
}

static int worker_init(struct server *srv, struct worker *wk, size_t id,
                       struct listener *ls, size_t n, const struct serve_config *cfg)
{
    int fd;

    memset(wk, 0, sizeof *wk);
    wk->id = id;
    wk->srv = srv;
    wk->running = &srv->running;
    wk->cfg = cfg;
    wk->ops = cfg->io == LOOP_IO_URING ? &engine_uring : &engine_epoll;
    wk->listeners = ls;
    wk->nlisteners = n;
    for (int k = 0; k < STREAM_KINDS; k++)
        dlist_init(&wk->streams[k].conns);
    dlist_init(&wk->proxy_waits);
    pool_init(&wk->pool, cfg->max_buffer, POOL_KEEP);
    watch_init(&wk->wake, -1, wake_ready);
    watch_init(&wk->settle, -1, NULL);
    for (size_t i = 0; i < n; i++) {
        ls[i].wk = wk;
        /* A PROXY header comes first, then the TLS handshake; then the engine
         * serves the connection. */
        ls[i].after_proxy = ls[i].tls ? tls_wait_start : worker_serve;
        ls[i].on_accepted = ls[i].proxy ? proxy_wait_start : ls[i].after_proxy;
        if (ls[i].kind == LISTEN_UDP && ls[i].svc->wants_addresses)
            udp_listener_local(&ls[i]);
        listener_faults_start(&ls[i], cfg);
    }
    worker_rng_seed(wk, cfg);
    wk->loop = loop_new(cfg->io);
    if (wk->loop == NULL || wk->ops->init(wk) < 0)
        return -1;
    proxy_wait_init(wk);
    tls_wait_init(wk);
    theap_init(&wk->waits, wk->loop, worker_wait_due);
    fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0)
        return -1;
    wk->wake.fd = fd;
    if (loop_watch(wk->loop, &wk->wake, LOOP_READ) < 0 || worker_settle_start(wk) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (ls[i].w.fd < 0)
            continue;   /* --inetd tcp: the connection was accepted for us */
        if (wk->ops->listener_start(wk, &ls[i]) < 0)
            return -1;
    }
    return 0;
}

static void worker_destroy(struct worker *wk)
{
    wk->stopping = 1;   /* closing connections must not resume accepting */
    close_all(wk);
    wk->ops->destroy(wk);
    dgram_faults_free(wk);
    theap_destroy(&wk->waits);
    pool_destroy(&wk->pool);
    if (wk->wake.fd >= 0)
        close(wk->wake.fd);
    worker_settle_stop(wk);
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
        if (worker_init(srv, wk, i, own, n, cfg) < 0) {
            log_msg("cannot start event loop %zu: %s", i, strerror(errno));
            return -1;
        }
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
    struct accepted a = { .fd = wk->cfg->inetd_conn, .inherited = 1 };

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
        if (srv->workers[0].cfg->tls)
            log_msg("tls fingerprint sha256 %s", tls_server_fingerprint(srv->workers[0].cfg->tls));
        if (srv->metrics)
            log_msg("listening metrics tcp %s", srv->workers[0].cfg->metrics->addr);
        if (srv->control)
            log_msg("listening control %s %s", srv->workers[0].cfg->control->kind,
                    srv->workers[0].cfg->control->addr);
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
static int become_user(const struct run_as *user, const struct serve_config *cfg,
                       struct listener *ls, size_t n)
{
    char err[KODAMA_ERR_LEN + ADDR_TEXT_MAX];
    int verbose = cfg->verbose;

    if (user == NULL)
        return 0;
    if (listeners_give_files(ls, n, user->uid, user->gid, err, sizeof err) < 0) {
        log_msg("%s", err);
        return -1;
    }
    if (cfg->control && cfg->control->unlink_path &&
        chown(cfg->control->unlink_path, user->uid, user->gid) < 0) {
        log_msg("cannot give the control socket file %s to the user: %s",
                cfg->control->unlink_path, strerror(errno));
        return -1;
    }
    if (run_as_become(user, err, sizeof err) < 0) {
        log_msg("cannot run as user %s: %s", user->name, err);
        return -1;
    }
    if (verbose)
        log_msg("running as user %s (uid %lu, gid %lu)", user->name, (unsigned long)user->uid,
                (unsigned long)user->gid);
    return 0;
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
    struct server srv = { .nworkers = cfg->threads > 0 ? cfg->threads : 1 };
    struct serve_config run = *cfg;     /* with the limits made concrete */
    sigset_t set;
    int rc = 1;

    raise_fd_limit();
    srv.workers = xcalloc(srv.nworkers, sizeof *srv.workers);
    srv.ws = (struct worker_set){ .workers = srv.workers, .nworkers = srv.nworkers,
                                  .nlisteners = n };
    watch_init(&srv.signals, -1, signal_ready);
    watch_init(&srv.worker_done, -1, worker_done_ready);
    if (block_signals(&set) < 0 || server_init(&srv, ls, n, &run) < 0 ||
        server_guard(&srv, ls, n, &run) < 0)
        goto end;
    if (watch_signals(&srv, &set) < 0) {
        log_msg("cannot watch signals: %s", strerror(errno));
        goto end;
    }
    if (become_user(run.user, &run, ls, n) < 0)
        goto end;
    /* Started before any worker thread; stopped once they have all ended, so that
     * it never reads a listener that is gone, and scrapes go on during the drain. */
    if (run.metrics && (srv.metrics = metrics_start(run.metrics, &srv.ws)) == NULL)
        goto end;
    if (run.control && (srv.control = control_start(run.control, &srv.ws)) == NULL) {
        metrics_stop(srv.metrics);
        goto end;
    }
    rc = server_serve(&srv, ls, n);
    for (size_t i = 0; i < srv.nworkers; i++)
        worker_flush_logs(&srv.workers[i], 1);     /* the tail of any burst */
    metrics_stop(srv.metrics);
    control_stop(srv.control);
    if (run.verbose)
        log_counters(&srv, ls, n);
end:
    server_destroy(&srv, n);
    listeners_close(ls, n);
    guard_free(srv.guard);
    return rc;
}
