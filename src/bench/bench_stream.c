/* bench_stream.c — bench over tcp and unix stream sockets: echo connections that
 * keep -p messages in flight and check every byte that comes back, and hello
 * exchanges (connect, read to EOF, close).
 *
 * A connection keeps three stream offsets: tx_off (sent), tx_end (queued) and
 * rx_off (received and checked). Message m is bytes [m*size, (m+1)*size), so the
 * messages in flight are rx_off/size .. tx_end/size - 1, and stamps[m % depth] is
 * when m was (or, in an open loop, was meant to be) sent. The bytes themselves are
 * never stored: they are made from the pattern when sent and when checked.
 *
 * With --tls a connection makes its handshake (S_HANDSHAKE) before its traffic,
 * and its bytes go through OpenSSL on the same non-blocking socket: sc_send and
 * sc_recv return as send and recv do, so the rest does not care. */
#include "bench/bench_worker.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/client.h"
#include "lib/pattern.h"
#include "lib/util.h"

enum sstate {
    S_IDLE,         /* hello in an open loop: waiting for its turn */
    S_CONNECTING,   /* non-blocking connect under way */
    S_HANDSHAKE,    /* --tls: connected, the TLS handshake under way */
    S_OPEN,         /* established */
    S_WAIT,         /* backing off before connecting again */
};

struct sconn {
    struct bsock s;
    enum sstate state;
    int dirty;
    uint64_t seed;
    uint64_t tx_off, tx_end, rx_off;
    int64_t deadline;       /* connect, reply or EOF timeout; or when to retry */
    int64_t started;        /* hello: when the exchange began (or was meant to) */
    uint64_t got;           /* hello: bytes of greeting */
    int64_t *stamps;        /* echo: per message in flight */
    SSL *tls;               /* --tls: the session; NULL: plain */
    int rd_wants_write;     /* --tls: the last read must write first (EPOLLOUT) */
};

enum err_kind { E_RESET, E_TIMEOUT, E_CORRUPT };

static void on_event(struct bench_worker *w, struct bsock *s, uint32_t events);
static int connect_start(struct bench_worker *w, struct sconn *c);

static int hello(const struct bench_worker *w)
{
    return w->cfg->mode == BENCH_HELLO;
}

static uint64_t in_flight(const struct bench_worker *w, const struct sconn *c)
{
    return c->tx_end / w->cfg->size - c->rx_off / w->cfg->size;
}

static void count_error(struct bench_worker *w, enum err_kind kind)
{
    if (kind == E_RESET)
        w->n.resets++;
    else if (kind == E_TIMEOUT)
        w->n.timeouts++;
    else
        w->n.corrupt++;
}

/* Close the socket and give back the pipeline slots it held. */
static void conn_close(struct bench_worker *w, struct sconn *c)
{
    if (c->state == S_OPEN) {
        w->nopen--;
        if (!hello(w) && w->interval_ns > 0)
            w->room -= w->cfg->depth - in_flight(w, c);
    }
    if (c->tls)
        tls_conn_free(c->tls);
    c->tls = NULL;
    if (c->s.fd >= 0)
        close(c->s.fd);     /* also drops it from epoll */
    c->s.fd = -1;
    c->s.events = 0;
    c->state = S_IDLE;
}

static int open_loop_hello(const struct bench_worker *w)
{
    return hello(w) && w->interval_ns > 0;
}

/* After a failure: an open-loop hello slot waits for the schedule; anything else
 * connects again at the next scan (or after back-off), never from inside the
 * handler that saw the failure. */
static void conn_retry(struct bench_worker *w, struct sconn *c, int64_t after)
{
    if (open_loop_hello(w)) {
        w->room++;
        return;
    }
    c->state = S_WAIT;
    c->deadline = w->now + after;
}

static void conn_lost(struct bench_worker *w, struct sconn *c, enum err_kind kind)
{
    count_error(w, kind);
    conn_close(w, c);
    conn_retry(w, c, 0);
}

static void connect_failed(struct bench_worker *w, struct sconn *c, int err)
{
    if (verdict_of_errno(err) == V_LOCAL) {
        /* This host's shortage (no port left to connect from, say): the run's end,
         * as a socket() that fails is, not a reset to blame on the server. */
        conn_close(w, c);
        bw_fail(w, V_LOCAL, "cannot connect to %s: %s", w->cfg->target, strerror(err));
        return;
    }
    count_error(w, err == ETIMEDOUT ? E_TIMEOUT : E_RESET);
    conn_close(w, c);
    bw_refused(w, err, "cannot reconnect to");
    /* Not at once: a refusing server would make this a busy loop. */
    conn_retry(w, c, RETRY_NS);
}

static int set_nodelay(const struct bench_worker *w, int fd)
{
    int one = 1;

    if (w->cfg->addr.ss_family == AF_UNIX)
        return 0;
    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void established(struct bench_worker *w, struct sconn *c);
static void connected(struct bench_worker *w, struct sconn *c);

/* ------------------------------------------------------------------ transport */

/* errno for a TLS status: EAGAIN for either readiness, EPROTO for a failure,
 * which also stops the run (a TLS failure would only repeat), with its reason. */
static ssize_t tls_errno(struct bench_worker *w, long rc, const char *why)
{
    switch (rc) {
    case TLS_WANT_READ: case TLS_WANT_WRITE: errno = EAGAIN; return -1;
    case TLS_RESET: errno = ECONNRESET; return -1;
    case TLS_CLOSED: errno = EPIPE; return -1;
    default:
        bw_fail(w, V_TLS, "%s: tls: %s", w->cfg->target, why[0] ? why : "failed");
        errno = EPROTO;
        return -1;
    }
}

static ssize_t sc_send(struct bench_worker *w, struct sconn *c, const void *buf, size_t len)
{
    char why[256] = "";
    long n;

    if (c->tls == NULL)
        return send(c->s.fd, buf, len, MSG_NOSIGNAL);
    n = tls_write(c->tls, buf, len, why, sizeof why);
    return n > 0 ? n : tls_errno(w, n, why);
}

static ssize_t sc_recv(struct bench_worker *w, struct sconn *c, void *buf, size_t cap)
{
    char why[256] = "";
    long n;

    if (c->tls == NULL)
        return recv(c->s.fd, buf, cap, 0);
    n = tls_read(c->tls, buf, cap, why, sizeof why);
    c->rd_wants_write = n == TLS_WANT_WRITE;
    if (n > 0)
        return n;
    return n == TLS_CLOSED ? 0 : tls_errno(w, n, why);
}

/* What to watch while reading: EPOLLIN, and EPOLLOUT while TLS must write first. */
static uint32_t read_events(const struct sconn *c)
{
    return EPOLLIN | (c->rd_wants_write ? EPOLLOUT : 0);
}

/* ------------------------------------------------------------------ handshake */

/* A TLS failure (or a pin that does not match) repeats on every connection: stop. */
static void handshake_failed(struct bench_worker *w, struct sconn *c, const char *why)
{
    bw_fail(w, V_TLS, "%s: tls: %s", w->cfg->target, why[0] ? why : "handshake failed");
    conn_close(w, c);
}

static void handshake_done(struct bench_worker *w, struct sconn *c)
{
    const struct tls_client_config *tc = w->cfg->tls_cfg;
    char why[256];

    if (tc->fingerprint && tls_check_pin(c->tls, tc->fingerprint, why, sizeof why) < 0) {
        handshake_failed(w, c, why);
        return;
    }
    if (!hello(w) || bw_measuring(w)) {
        w->n.handshakes++;
        w->n.resumed += (uint64_t)tls_session_reused(c->tls);
    }
    established(w, c);
}

static void handshake_step(struct bench_worker *w, struct sconn *c)
{
    char why[256] = "";
    int rc = tls_handshake(c->tls, why, sizeof why);

    if (rc == TLS_OK) {
        handshake_done(w, c);
    } else if (rc == TLS_WANT_READ || rc == TLS_WANT_WRITE) {
        if (bw_watch(w, &c->s, rc == TLS_WANT_READ ? EPOLLIN : EPOLLOUT) < 0)
            bw_fail(w, V_LOCAL, "epoll_ctl: %s", strerror(errno));
    } else if (rc == TLS_RESET) {
        conn_lost(w, c, E_RESET);   /* counted; a server that resets them all ends with 5 */
    } else {
        handshake_failed(w, c, why);
    }
}

/* The connect is done: the traffic starts, or first the TLS handshake (with the
 * worker's last session on offer, with --resume). */
static void connected(struct bench_worker *w, struct sconn *c)
{
    const struct bench_config *cfg = w->cfg;

    if (cfg->tls_ctx == NULL) {
        established(w, c);
        return;
    }
    c->tls = tls_client_conn(cfg->tls_ctx, cfg->tls_cfg, c->s.fd, cfg->tls_host);
    if (c->tls == NULL || (cfg->tls_resume && tls_offer_session(c->tls, w->session) < 0)) {
        bw_fail(w, V_LOCAL, "tls: cannot make a connection (out of memory?)");
        conn_close(w, c);
        return;
    }
    c->rd_wants_write = 0;
    c->state = S_HANDSHAKE;
    handshake_step(w, c);
}

/* Start a non-blocking connect. Returns -1 if the connection is not under way. */
static int connect_start(struct bench_worker *w, struct sconn *c)
{
    const struct bench_config *cfg = w->cfg;
    int fd = socket(cfg->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        bw_fail(w, V_LOCAL, "cannot open a socket: %s", strerror(errno));
        return -1;
    }
    c->s.fd = fd;
    c->s.events = 0;
    c->seed = pattern_seed(bw_new_seed(w));
    c->tx_off = c->tx_end = c->rx_off = c->got = 0;
    c->deadline = w->now + cfg->wait_ns;
    if (set_nodelay(w, fd) < 0) {
        bw_fail(w, V_LOCAL, "setsockopt TCP_NODELAY: %s", strerror(errno));
        return -1;
    }
    if (cfg->source && client_bind_source(fd, cfg->source, cfg->addr.ss_family) < 0) {
        char src[ADDR_TEXT_MAX + 32];

        client_source_name(cfg->source, src, sizeof src);
        bw_fail(w, V_LOCAL, "cannot use %s: %s", src, strerror(errno));
        return -1;
    }
    if (connect(fd, (const struct sockaddr *)&cfg->addr, cfg->addrlen) == 0) {
        connected(w, c);
        return 0;
    }
    if (errno == EAGAIN) {
        /* A unix listener's backlog is full: not an error; the slot keeps its
         * place (and an open loop its intended time) and tries at the next scan. */
        conn_close(w, c);
        c->state = S_WAIT;
        c->deadline = w->now;
        return -1;
    }
    if (errno != EINPROGRESS && errno != EINTR) {
        connect_failed(w, c, errno);
        return -1;
    }
    c->state = S_CONNECTING;
    if (bw_watch(w, &c->s, EPOLLOUT) < 0) {
        bw_fail(w, V_LOCAL, "epoll_ctl: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ echo */

static void queue_msg(struct bench_worker *w, struct sconn *c, int64_t stamp)
{
    uint64_t m = c->tx_end / w->cfg->size;

    if (w->draining)
        return;     /* the period is over */
    /* The reply timeout runs while something is in flight. */
    if (c->tx_end == c->rx_off)
        c->deadline = w->now + w->cfg->wait_ns;
    c->stamps[m % w->cfg->depth] = stamp;
    c->tx_end += w->cfg->size;
    bw_mark_dirty(w, &c->s, &c->dirty);
}

/* Send what is queued, as much as the socket takes. Returns -1 if the connection
 * was lost. */
static int echo_flush(struct bench_worker *w, struct sconn *c)
{
    while (c->tx_off < c->tx_end) {
        size_t len = c->tx_end - c->tx_off < SCRATCH_LEN ? c->tx_end - c->tx_off : SCRATCH_LEN;
        ssize_t n;

        pattern_fill(c->seed, c->tx_off, w->tx, len);
        n = sc_send(w, c, w->tx, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN) {
            conn_lost(w, c, E_RESET);
            return -1;
        }
        if (n > 0)
            c->tx_off += (uint64_t)n;
        /* A short send is a full socket; over TLS it is one record of several. */
        if (n < 0 || ((size_t)n < len && c->tls == NULL))
            break;
    }
    if (bw_watch(w, &c->s, read_events(c) | (c->tx_off < c->tx_end ? EPOLLOUT : 0)) < 0) {
        bw_fail(w, V_LOCAL, "epoll_ctl: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* Check n received bytes and complete the messages they finish. Returns -1 if
 * the connection was lost. */
static int echo_input(struct bench_worker *w, struct sconn *c, size_t n)
{
    uint64_t size = w->cfg->size, first = c->rx_off / size, last;

    /* More than was sent, or not what was sent: either way the stream is wrong. */
    if (c->rx_off + n > c->tx_off || pattern_check(c->seed, c->rx_off, w->rx, n) != n) {
        conn_lost(w, c, E_CORRUPT);
        return -1;
    }
    c->rx_off += n;
    c->deadline = w->now + w->cfg->wait_ns;
    last = c->rx_off / size;
    for (uint64_t m = first; m < last; m++)
        bw_done(w, c->stamps[m % w->cfg->depth], size);
    if (w->interval_ns > 0)
        w->room += last - first;
    else
        for (uint64_t m = first; m < last; m++)
            queue_msg(w, c, w->now);
    return 0;
}

static void echo_readable(struct bench_worker *w, struct sconn *c)
{
    /* A few reads per event: enough to drain, not enough to starve the others. */
    for (int i = 0; i < 4; i++) {
        ssize_t n = sc_recv(w, c, w->rx, SCRATCH_LEN);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            if (c->rd_wants_write)
                bw_mark_dirty(w, &c->s, &c->dirty);     /* echo_flush watches EPOLLOUT */
            return;
        }
        if (n <= 0) {
            /* Reset, or closed by the server: an echo server never closes first. */
            conn_lost(w, c, E_RESET);
            return;
        }
        w->now = clock_ns();
        /* A short read drained the socket; over TLS it is one record of several. */
        if (echo_input(w, c, (size_t)n) < 0 || ((size_t)n < SCRATCH_LEN && c->tls == NULL))
            return;
    }
}

/* ------------------------------------------------------------------ hello */

/* --resume: the session this hello ended with is the next one offered. TLS 1.3
 * sends its tickets after the handshake, so by the end of the greeting they came. */
static void keep_session(struct bench_worker *w, struct sconn *c)
{
    SSL_SESSION *sess;

    if (c->tls == NULL || !w->cfg->tls_resume || (sess = tls_resumable_session(c->tls)) == NULL)
        return;
    tls_session_free(w->session);
    w->session = sess;
}

static void hello_readable(struct bench_worker *w, struct sconn *c)
{
    for (int i = 0; i < 4; i++) {
        ssize_t n = sc_recv(w, c, w->rx, SCRATCH_LEN);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            if (bw_watch(w, &c->s, read_events(c)) < 0)
                bw_fail(w, V_LOCAL, "epoll_ctl: %s", strerror(errno));
            return;
        }
        if (n < 0) {
            conn_lost(w, c, E_RESET);
            return;
        }
        if (n == 0) {
            w->now = clock_ns();
            bw_done(w, c->started, c->got);
            keep_session(w, c);
            conn_close(w, c);
            if (open_loop_hello(w)) {
                w->room++;
            } else if (!w->draining) {
                c->started = w->now;
                connect_start(w, c);
            }
            return;
        }
        c->got += (uint64_t)n;
    }
}

/* ------------------------------------------------------------------ both */

static void established(struct bench_worker *w, struct sconn *c)
{
    c->state = S_OPEN;
    w->nopen++;
    /* Hello counts the connections of the measured period, echo every socket. */
    if (!hello(w) || bw_measuring(w))
        w->n.connections++;
    if (hello(w)) {
        c->deadline = c->deadline > w->now ? c->deadline : w->now;
        if (bw_watch(w, &c->s, EPOLLIN) < 0)
            bw_fail(w, V_LOCAL, "epoll_ctl: %s", strerror(errno));
        return;
    }
    if (w->interval_ns > 0)
        w->room += w->cfg->depth;
    else
        for (unsigned long i = 0; i < w->cfg->depth; i++)
            queue_msg(w, c, w->now);
    if (bw_watch(w, &c->s, EPOLLIN) < 0)
        bw_fail(w, V_LOCAL, "epoll_ctl: %s", strerror(errno));
}

static void connect_done(struct bench_worker *w, struct sconn *c)
{
    int err = 0;
    socklen_t len = sizeof err;

    if (getsockopt(c->s.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err != 0) {
        connect_failed(w, c, err);
        return;
    }
    connected(w, c);
}

static void on_event(struct bench_worker *w, struct bsock *s, uint32_t events)
{
    struct sconn *c = (struct sconn *)s;

    if (c->state == S_CONNECTING) {
        connect_done(w, c);
        return;
    }
    if (c->state == S_HANDSHAKE) {
        handshake_step(w, c);
        return;
    }
    if (c->state != S_OPEN)
        return;
    if (hello(w)) {
        hello_readable(w, c);
        return;
    }
    if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) || (c->rd_wants_write && (events & EPOLLOUT)))
        echo_readable(w, c);
    if (c->state == S_OPEN && (events & EPOLLOUT))
        bw_mark_dirty(w, &c->s, &c->dirty);
}

static void stream_flush_dirty(struct bench_worker *w)
{
    /* A stack, each connection on it at most once: capacity nconns is enough. */
    while (w->ndirty > 0) {
        struct sconn *c = (struct sconn *)w->dirty[--w->ndirty];

        c->dirty = 0;
        if (c->state == S_OPEN && !hello(w))
            echo_flush(w, c);
    }
}

static struct sconn *find_room(struct bench_worker *w)
{
    for (size_t i = 0; i < w->t->nconns; i++) {
        size_t k = (w->cursor + i) % w->t->nconns;
        struct sconn *c = &w->conns[k];

        if ((hello(w) && c->state == S_IDLE)
            || (!hello(w) && c->state == S_OPEN && in_flight(w, c) < w->cfg->depth)) {
            w->cursor = (k + 1) % w->t->nconns;   /* the next message, the next one */
            return c;
        }
    }
    return NULL;
}

static void stream_issue(struct bench_worker *w)
{
    int64_t at;

    while (w->room > 0 && (at = bw_due(w)) >= 0) {
        struct sconn *c = find_room(w);

        if (c == NULL)
            break;
        w->room--;
        w->next_msg++;
        if (hello(w)) {
            c->started = at;
            connect_start(w, c);
        } else {
            queue_msg(w, c, at);
        }
    }
}

static int64_t stream_scan(struct bench_worker *w)
{
    for (size_t i = 0; i < w->t->nconns; i++) {
        struct sconn *c = &w->conns[i];

        if (c->state == S_WAIT && w->now >= c->deadline && !w->draining) {
            if (!open_loop_hello(w))
                c->started = w->now;
            connect_start(w, c);
        } else if (c->state == S_CONNECTING && w->now >= c->deadline) {
            connect_failed(w, c, ETIMEDOUT);
        } else if (c->state == S_HANDSHAKE && w->now >= c->deadline) {
            conn_lost(w, c, E_TIMEOUT);
        } else if (c->state == S_OPEN && w->now >= c->deadline
                   && (hello(w) || c->tx_end > c->rx_off)) {
            conn_lost(w, c, E_TIMEOUT);
        }
        if (atomic_load_explicit(&w->sh->stop, memory_order_relaxed))
            break;
    }
    return SCAN_EVERY_NS;
}

/* Echo: messages sent and not all answered; hello: an exchange under way, from
 * its connect on (an echo connection still connecting carries no message). */
static int stream_in_flight(const struct bench_worker *w)
{
    for (size_t i = 0; w->conns && i < w->t->nconns; i++) {
        const struct sconn *c = &w->conns[i];

        if (hello(w) ? c->state == S_CONNECTING || c->state == S_HANDSHAKE || c->state == S_OPEN
                     : c->state == S_OPEN && c->tx_end > c->rx_off)
            return 1;
    }
    return 0;
}

static int stream_setup(struct bench_worker *w)
{
    size_t n = w->t->nconns;

    w->conns = xcalloc(n, sizeof *w->conns);
    w->dirty = xcalloc(n, sizeof *w->dirty);
    for (size_t i = 0; i < n; i++) {
        w->conns[i].s.fd = -1;
        w->conns[i].s.on_event = on_event;
        if (!hello(w))
            w->conns[i].stamps = xcalloc(w->cfg->depth, sizeof(int64_t));
    }
    if (hello(w) && w->interval_ns > 0) {
        w->room = n;    /* every slot idle, waiting for the schedule */
        return 0;
    }
    for (size_t i = 0; i < n && !atomic_load(&w->sh->stop); i++) {
        w->conns[i].started = w->now;
        connect_start(w, &w->conns[i]);
    }
    return 0;
}

static void stream_teardown(struct bench_worker *w)
{
    for (size_t i = 0; w->conns && i < w->t->nconns; i++) {
        if (w->conns[i].tls)
            tls_conn_free(w->conns[i].tls);
        if (w->conns[i].s.fd >= 0)
            close(w->conns[i].s.fd);
        free(w->conns[i].stamps);
    }
    free(w->conns);
}

const struct bench_traffic bench_stream_traffic = {
    .setup = stream_setup,
    .issue = stream_issue,
    .scan = stream_scan,
    .flush_dirty = stream_flush_dirty,
    .in_flight = stream_in_flight,
    .teardown = stream_teardown,
};
