/* worker.c — what every engine asks of its worker (see worker.h): admission under
 * the limits, drops and their log lines, accept errors (pause, retry on a timer,
 * resume), the end of a stopping worker, and the counts for other threads. */
#include "serve/core/worker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "lib/list.h"
#include "lib/log.h"
#include "lib/net.h"
#include "lib/util.h"

#define ACCEPT_RETRY_MS 100

const char *listener_kind_name(enum listener_kind kind)
{
    switch (kind) {
    case LISTEN_TCP: return "tcp";
    case LISTEN_UDP: return "udp";
    case LISTEN_UNIX: return "unix";
    }
    return "?";
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

static void arm_log_flush(struct worker *wk);

void worker_drop_detail(struct worker *wk, struct listener *l, enum drop_reason why, int fd,
                        const struct sockaddr *peer, socklen_t len, const char *what)
{
    struct sockaddr_storage ss;
    char text[ADDR_TEXT_MAX], detail[128], more[64] = "";
    unsigned long skipped;

    counter_add(&l->stats.drops[why], 1);
    if (!log_limit_claim(guard_log_limit(wk->guard, why), &skipped)) {
        arm_log_flush(wk);
        return;
    }
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
    net_reset_on_close(fd);
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
    net_reset_on_close(fd);
    close(fd);
    return -1;
}

void worker_conn_release(struct worker *wk, struct ip_count *slot)
{
    guard_conn_release(wk->guard, slot);
}

/* Listeners without faults or TLS keep their engine's own path untouched. */
void worker_serve(struct worker *wk, struct listener *l, const struct accepted *a)
{
    if (l->relay)
        wk->ops->serve_relay(wk, l, a);
    else if (l->shaped)
        wk->ops->serve_shaped(wk, l, a);
    else if (a->tls)
        wk->ops->serve_tls(wk, l, a);
    else
        wk->ops->serve(wk, l, a);
}

void worker_wait_due(struct theap *h, struct theap_entry *e)
{
    struct worker_wait *w = container_of(e, struct worker_wait, e);

    (void)h;
    w->due(w);
}

void fault_slot_set(struct fault_slot *slot, const struct faults *f)
{
    pthread_mutex_lock(&slot->lock);
    slot->cfg = *f;
    atomic_fetch_add_explicit(&slot->version, 1, memory_order_release);
    pthread_mutex_unlock(&slot->lock);
}

void fault_slot_get(struct fault_slot *slot, struct faults *f)
{
    pthread_mutex_lock(&slot->lock);
    *f = slot->cfg;
    pthread_mutex_unlock(&slot->lock);
}

void listener_count_faults(struct listener *l, const struct fault_shape *f)
{
    if (f->latency_ms || f->latency_jitter_ms)
        counter_add(&l->stats.faults[FAULT_LATENCY], 1);
    if (f->rate)
        counter_add(&l->stats.faults[FAULT_RATE], 1);
    if (f->slice || f->slice_delay_ms)
        counter_add(&l->stats.faults[FAULT_SLICE], 1);
    if (f->greet_delay_ms)
        counter_add(&l->stats.faults[FAULT_GREET_DELAY], 1);
}

void listener_faults_copy(struct listener *l)
{
    struct fault_slot *slot = l->slot;

    pthread_mutex_lock(&slot->lock);
    l->faults = slot->cfg;
    l->fault_version = atomic_load_explicit(&slot->version, memory_order_relaxed);
    pthread_mutex_unlock(&slot->lock);
    l->dgram_faulty = l->kind == LISTEN_UDP && faults_active_dgram(&l->faults);
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

void listener_trace_accept(const struct listener *l, int fd, int err,
                           const struct sockaddr *peer, socklen_t len, int completion)
{
    char where[ADDR_TEXT_MAX + 48];

    snprintf(where, sizeof where, "%s %s %s", l->svc->name, listener_kind_name(l->kind), l->addr);
    if (completion)
        trace_cqe(fd >= 0 ? fd : -err, NULL, "accept(%d) [%s]", l->w.fd, where);
    else
        trace_accept(where, l->w.fd, fd, err, peer, len);
}

void svc_ctx_for_conn(struct svc_ctx *ctx, const struct worker *wk,
                      const struct listener *l, const struct accepted *a,
                      struct sockaddr_storage *local, struct tls_info *tls)
{
    socklen_t len = sizeof *local;

    memset(ctx, 0, sizeof *ctx);
    ctx->set = &wk->cfg->svc;
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
    if (a->tls) {
        tls_describe(a->tls, tls);
        ctx->tls = tls;
    }
}

static const char *drop_noun(enum drop_reason why)
{
    return why >= DROP_UDP_PORT ? "datagrams" : "connections";
}

void worker_flush_logs(struct worker *wk, int force)
{
    unsigned long n;

    for (int r = 0; r < DROP_REASONS; r++) {
        char detail[128];

        if (!log_limit_flush(guard_log_limit(wk->guard, (enum drop_reason)r), &n, force))
            continue;
        drop_detail(wk->cfg, (enum drop_reason)r, detail, sizeof detail);
        log_msg("%s %lu more %s since the last report: %s", drop_verb((enum drop_reason)r), n,
                drop_noun((enum drop_reason)r), detail);
    }
    if (wk->accept_err_l && log_limit_flush(&wk->accept_log, &n, force)) {
        const struct listener *l = wk->accept_err_l;

        log_msg("cannot accept on %s %s %s: %s (%lu more since the last report)", l->svc->name,
                listener_kind_name(l->kind), l->addr, strerror(wk->accept_err), n);
    }
}

static int logs_pending(struct worker *wk)
{
    for (int r = 0; r < DROP_REASONS; r++)
        if (log_limit_pending(guard_log_limit(wk->guard, (enum drop_reason)r)))
            return 1;
    return log_limit_pending(&wk->accept_log);
}

static long flush_logs(struct loop *loop, void *data)
{
    struct worker *wk = data;

    (void)loop;
    worker_flush_logs(wk, 0);
    if (logs_pending(wk))
        return LOG_LIMIT_MS;    /* another line went out meanwhile: its tail later */
    wk->log_flush_armed = 0;
    return LOOP_TIMER_DONE;
}

/* A line was skipped: make sure its count is told, even if nothing follows. */
static void arm_log_flush(struct worker *wk)
{
    if (wk->log_flush_armed || wk->loop == NULL)
        return;
    wk->log_flush_armed = 1;
    loop_timer_add(wk->loop, LOG_LIMIT_MS, flush_logs, wk);
}

/* Out of descriptors is a condition that lasts: say so at most once a second. */
static void log_accept_error(struct worker *wk, struct listener *l, int err)
{
    unsigned long skipped;

    counter_add(&l->stats.accept_errors, 1);
    wk->accept_err_l = l;
    wk->accept_err = err;
    if (!log_limit_claim(&wk->accept_log, &skipped)) {
        arm_log_flush(wk);
        return;
    }
    if (skipped)
        log_msg("cannot accept on %s %s %s: %s (%lu more since the last report)", l->svc->name,
                listener_kind_name(l->kind), l->addr, strerror(err), skipped);
    else
        log_msg("cannot accept on %s %s %s: %s", l->svc->name, listener_kind_name(l->kind),
                l->addr, strerror(err));
}

static void resume_accepting(struct worker *wk)
{
    for (size_t i = 0; i < wk->nlisteners; i++) {
        struct listener *l = &wk->listeners[i];

        if (!l->paused)
            continue;
        l->paused = 0;
        wk->paused_listeners--;
        if (wk->ops->listener_start(wk, l) < 0)
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
    wk->ops->listener_stop(wk, l);
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
    if (wk->id == 0 && atomic_load(wk->running) > 1)
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
    default:
        /* Out of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM), or an
         * error that would come back at once: retry on a timer, never in a loop. */
        log_accept_error(wk, l, err);
        pause_accepting(wk, l);
        return 1;
    }
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
    t->tls_handshakes += counter_get(&st->tls_handshakes);
    t->tls_ktls += counter_get(&st->tls_ktls);
    for (int r = 0; r < DROP_REASONS; r++)
        t->drops[r] += counter_get(&st->drops[r]);
    for (int k = 0; k < FAULT_KINDS; k++)
        t->faults[k] += counter_get(&st->faults[k]);
}

/* ------------------------------------------------------------------ settling */

/* After the batch in which the ask came, so the completions before it are in. */
static long settled(struct loop *loop, void *data)
{
    struct worker *wk = data;

    (void)loop;
    atomic_store(&wk->settled, atomic_load(&wk->settle_asked));
    return LOOP_TIMER_DONE;
}

static void settle_ready(struct loop *loop, struct watch *w, unsigned events)
{
    struct worker *wk = container_of(w, struct worker, settle);
    uint64_t count;

    (void)events;
    if (read(w->fd, &count, sizeof count) != (ssize_t)sizeof count)
        return;
    loop_timer_add(loop, 0, settled, wk);
}

int worker_settle_start(struct worker *wk)
{
    watch_init(&wk->settle, eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), settle_ready);
    if (wk->settle.fd < 0)
        return -1;
    return loop_watch(wk->loop, &wk->settle, LOOP_READ);
}

void worker_settle_stop(struct worker *wk)
{
    if (wk->settle.fd >= 0)
        close(wk->settle.fd);
    wk->settle.fd = -1;
}

void worker_set_settle(const struct worker_set *ws, int64_t max_us)
{
    int64_t until = now_us() + max_us;
    uint64_t one = 1;
    size_t left;

    for (size_t i = 0; i < ws->nworkers; i++) {
        struct worker *wk = &ws->workers[i];

        atomic_fetch_add(&wk->settle_asked, 1);
        if (wk->settle.fd >= 0 && write(wk->settle.fd, &one, sizeof one) < 0 && errno != EAGAIN)
            atomic_store(&wk->settled, atomic_load(&wk->settle_asked));     /* cannot ask */
    }
    do {
        left = 0;
        for (size_t i = 0; i < ws->nworkers; i++)
            left += atomic_load(&ws->workers[i].settled) < atomic_load(&ws->workers[i].settle_asked);
        if (left > 0)
            nanosleep(&(struct timespec){ .tv_nsec = 100000 }, NULL);
    } while (left > 0 && now_us() < until);
}

const struct listener *worker_set_totals(const struct worker_set *ws, size_t i,
                                         struct listener_totals *t)
{
    memset(t, 0, sizeof *t);
    for (size_t w = 0; w < ws->nworkers; w++)
        listener_totals_add(t, &ws->workers[w].listeners[i].stats);
    return &ws->workers[0].listeners[i];
}
