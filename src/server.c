/* server.c — one worker: its loop, listeners, accepting, signals, and stopping.
 *
 * Stopping (SIGINT/SIGTERM): close the listeners and remove unix socket files, let
 * every connection send what it holds and say goodbye (conn_stop_all), then exit when
 * the last one is gone or STOP_FLUSH_MS have passed, whichever is first. A second
 * signal stops at once. */
#include "server.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "conn.h"
#include "listen.h"
#include "log.h"
#include "net.h"
#include "udp.h"
#include "util.h"

#define ACCEPTS_PER_EVENT 64
#define ACCEPT_RETRY_MS 100
#define ACCEPT_LOG_MS 1000
#define STOP_FLUSH_MS 2000
#define POOL_KEEP 64

struct signal_watch {
    struct watch w;
    struct worker *wk;
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

    l->stats.accept_errors++;
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

static void resume_accepting(struct worker *wk)
{
    for (size_t i = 0; i < wk->nlisteners; i++) {
        struct listener *l = &wk->listeners[i];

        if (!l->paused)
            continue;
        l->paused = 0;
        wk->paused_listeners--;
        if (loop_watch(wk->loop, &l->w, LOOP_READ) < 0)
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
    loop_watch(wk->loop, &l->w, 0);
    if (!wk->accept_retry_armed) {
        loop_timer_add(wk->loop, ACCEPT_RETRY_MS, accept_retry, wk);
        wk->accept_retry_armed = 1;
    }
}

void worker_conn_closed(struct worker *wk)
{
    if (wk->paused_listeners && !wk->stopping)
        resume_accepting(wk);
    if (wk->stopping && wk->nconns == 0)
        loop_stop(wk->loop);
}

static void accept_ready(struct loop *loop, struct watch *w, unsigned events)
{
    struct listener *l = container_of(w, struct listener, w);

    (void)loop;
    (void)events;
    for (int i = 0; i < ACCEPTS_PER_EVENT && !l->paused; i++) {
        struct sockaddr_storage peer;
        socklen_t len;
        int fd = net_accept(l->w.fd, &peer, &len);

        if (fd >= 0) {
            conn_open(l->wk, l, fd, (struct sockaddr *)&peer, len);
            continue;
        }
        switch (errno) {
        case EAGAIN:
            return;
        case EMFILE: case ENFILE: case ENOBUFS: case ENOMEM:
            log_accept_error(l->wk, l, errno);
            pause_accepting(l->wk, l);
            return;
        case ECONNABORTED: case EPROTO: case EPERM:
            continue;   /* that client is gone or refused; the next may be fine */
        default:
            log_accept_error(l->wk, l, errno);
            return;
        }
    }
}

static long stop_deadline(struct loop *loop, void *data)
{
    struct worker *wk = data;

    conn_close_all(wk);
    loop_stop(loop);
    return LOOP_TIMER_DONE;
}

static void close_listeners(struct worker *wk)
{
    for (size_t i = 0; i < wk->nlisteners; i++) {
        struct listener *l = &wk->listeners[i];

        if (l->w.fd < 0)
            continue;
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

static void begin_stop(struct worker *wk)
{
    if (wk->stopping) {
        conn_close_all(wk);
        loop_stop(wk->loop);
        return;
    }
    log_msg("stopping");
    wk->stopping = 1;
    close_listeners(wk);
    conn_stop_all(wk);
    if (wk->nconns == 0)
        loop_stop(wk->loop);
    else
        loop_timer_add(wk->loop, STOP_FLUSH_MS, stop_deadline, wk);
}

static long stop_now(struct loop *loop, void *data)
{
    (void)loop;
    begin_stop(data);
    return LOOP_TIMER_DONE;
}

/* Stopping closes connections, and a connection may have an event waiting later in
 * this very batch: the work is deferred to a timer, which runs after the batch. */
static void signal_ready(struct loop *loop, struct watch *w, unsigned events)
{
    struct signal_watch *sw = container_of(w, struct signal_watch, w);
    struct signalfd_siginfo si;

    (void)events;
    while (read(w->fd, &si, sizeof si) == (ssize_t)sizeof si)
        loop_timer_add(loop, 0, stop_now, sw->wk);
}

/* Signals arrive as readable events on a signalfd, in the loop like everything else. */
static int setup_signals(struct signal_watch *sw, struct loop *loop)
{
    sigset_t set;
    int fd;

    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
        return -1;
    fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0)
        return -1;
    watch_init(&sw->w, fd, signal_ready);
    if (loop_watch(loop, &sw->w, LOOP_READ) < 0) {
        close(fd);
        return -1;
    }
    return 0;
}

static int worker_init(struct worker *wk, struct listener *ls, size_t n,
                       const struct serve_config *cfg)
{
    memset(wk, 0, sizeof *wk);
    wk->cfg = cfg;
    wk->listeners = ls;
    wk->nlisteners = n;
    dlist_init(&wk->conns);
    dlist_init(&wk->lingering);
    pool_init(&wk->pool, ECHO_BUF_SIZE, POOL_KEEP);
    wk->dgram = xmalloc(UDP_DGRAM_MAX);
    wk->loop = loop_new();
    if (wk->loop == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        ls[i].wk = wk;
        ls[i].w.fn = ls[i].kind == LISTEN_UDP ? udp_readable : accept_ready;
        if (loop_watch(wk->loop, &ls[i].w, LOOP_READ) < 0)
            return -1;
    }
    return 0;
}

static void worker_destroy(struct worker *wk)
{
    conn_close_all(wk);
    pool_destroy(&wk->pool);
    free(wk->dgram);
    loop_free(wk->loop);
}

int server_run(struct listener *ls, size_t n, const struct serve_config *cfg)
{
    struct worker wk;
    struct signal_watch sw = { .wk = &wk };
    int rc = 0;

    raise_fd_limit();
    if (worker_init(&wk, ls, n, cfg) < 0 || setup_signals(&sw, wk.loop) < 0) {
        log_msg("cannot start the event loop: %s", strerror(errno));
        rc = 1;
        goto end;
    }
    for (size_t i = 0; i < n; i++)
        log_msg("listening %s %s %s", ls[i].svc->name, listener_kind_name(ls[i].kind),
                ls[i].addr);
    log_msg("ready");
    if (loop_run(wk.loop) < 0) {
        log_msg("event loop failed: %s", strerror(errno));
        rc = 1;
    }
end:
    if (sw.w.fd > 0)
        close(sw.w.fd);
    wk.stopping = 1;    /* closing connections must not resume accepting */
    worker_destroy(&wk);
    listeners_close(ls, n);
    return rc;
}
