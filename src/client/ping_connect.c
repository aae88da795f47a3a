/* ping_connect.c — ping's connect mode (--connect): each probe is a connection of its
 * own. It is timed from the connect to the handshake's end, with --tls the TLS
 * handshake after it, and from the connect to the first byte back: against hello
 * the greeting, against echo the echo of the -s bytes sent (-s 0 sends none). Then
 * our side is shut down and the connection closed as soon as the peer's is, so the
 * server sees a clean end:
 *
 *   connected to 127.0.0.1:8080: seq=0 connect=0.061 ms first_byte=0.120 ms
 *   connected to 127.0.0.1:8443: seq=0 connect=0.058 ms handshake=1.202 ms first_byte=1.411 ms
 *   seq=1: connect to 127.0.0.1 port 8081 (tcp) failed: Connection refused
 *   no first byte from 127.0.0.1:8080: seq=2 within 1 s */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/peer_io.h"
#include "client/ping.h"
#include "client/sock.h"
#include "lib/util.h"
#include "proto/ping.h"

#define NS_PER_MS 1000000LL

struct probe_run {
    struct ping_opts *o;
    struct ping_stats *st;
    struct report *r;               /* the whole run's */
    unsigned char *buf;
    uint32_t id;
};

/* Wait for fd to be ready for events until deadline (ns). Returns revents, 0 at the
 * deadline or on a stop signal, -1 on error. */
static int wait_until(int fd, short events, int64_t deadline)
{
    struct pollfd pfd = { .fd = fd, .events = events };

    for (;;) {
        int64_t left = deadline - now_ns();
        int n;

        if (left <= 0 || sk_stop_requested())
            return 0;
        n = sk_poll(&pfd, fd >= 0 ? 1 : 0, (int)((left + NS_PER_MS - 1) / NS_PER_MS));
        if (n > 0)
            return pfd.revents;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

/* Send the probe's bytes (all of them, within the deadline). 0, or -1 with errno. */
static int send_probe(struct probe_run *pr, struct peer *p, int64_t deadline)
{
    size_t off = 0, size = pr->o->size;

    while (off < size) {
        ssize_t n = peer_send(p, pr->buf + off, size - off);

        if (n >= 0) {
            off += (size_t)n;
            pr->r->bytes_out += (uint64_t)n;
        } else if (errno != EAGAIN && errno != EINTR) {
            return -1;
        } else if (wait_until(p->fd, POLLOUT, deadline) <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
    }
    return 0;
}

/* Wait until p can be read (at once if TLS holds decrypted bytes). */
static int wait_readable(struct peer *p, int64_t deadline)
{
    short want = peer_recv_events(p);

    return want ? wait_until(p->fd, want, deadline) : POLLIN;
}

/* After the first byte: our FIN (TLS: close_notify first), and the rest read until
 * the peer's (within -w). */
static void finish_probe(struct probe_run *pr, struct peer *p, int64_t deadline)
{
    int rc;

    while ((rc = peer_shutdown_wr(p)) < 0 && errno == EAGAIN &&
           wait_until(p->fd, POLLOUT, deadline) > 0)
        ;
    if (rc == 0)
        while (wait_readable(p, deadline) > 0) {
            ssize_t n = peer_recv(p, pr->buf, pr->o->size > 0 ? pr->o->size : 1);

            if (n > 0)
                pr->r->bytes_in += (uint64_t)n;
            else if (n == 0 || (errno != EAGAIN && errno != EINTR))
                break;
        }
    peer_close(p);
}

/* A send or receive failed with err: its verdict and line, in r alone. */
static int probe_failed(struct report *r, const struct peer *p, int err, const char *what)
{
    if (p->tls_failed)
        return report_fail(r, 1, V_TLS, "tls: %s", p->tls_why);
    return report_fail(r, 1, verdict_of_errno(err), "%s failed: %s", what, strerror(err));
}

/* Wait for the first byte. Returns V_OK with the time in *first, V_TIMEOUT, or the
 * verdict of the failure (its text in r->error). */
static int first_byte(struct probe_run *pr, struct peer *p, int64_t deadline, int64_t *first,
                      struct report *r)
{
    for (;;) {
        int ev = wait_readable(p, deadline);
        ssize_t n;

        if (ev == 0)
            return V_TIMEOUT;
        if (ev < 0)
            return report_fail(r, 1, V_LOCAL, "poll: %s", strerror(errno));
        n = peer_recv(p, pr->buf, pr->o->size > 0 ? pr->o->size : 1);
        if (n > 0) {
            *first = now_ns();
            pr->r->bytes_in += (uint64_t)n;
            report_first_byte(pr->r);
            return V_OK;
        }
        if (n == 0)
            return report_fail(r, 1, V_RESET, "closed by the peer before the first byte");
        if (errno != EAGAIN && errno != EINTR)
            return probe_failed(r, p, errno, "receive");
    }
}

/* The run's report takes the first connection's addresses and TLS facts. */
static void keep_first(struct report *run, const struct report *r)
{
    snprintf(run->local, sizeof run->local, "%s", r->local);
    if (run->t_connected == 0)
        run->t_connected = r->t_connected;
    if (r->tls && run->t_handshake == 0) {
        run->tls = 1;
        run->t_handshake = r->t_handshake;
        memcpy(run->tls_version, r->tls_version, sizeof run->tls_version);
        memcpy(run->tls_cipher, r->tls_cipher, sizeof run->tls_cipher);
        memcpy(run->tls_alpn, r->tls_alpn, sizeof run->tls_alpn);
        memcpy(run->tls_fingerprint, r->tls_fingerprint, sizeof run->tls_fingerprint);
    }
}

static int probe_done(struct probe_run *pr, uint32_t seq, const struct peer *p,
                      const struct report *r, int64_t first)
{
    double connect = (double)(r->t_connected - r->t_connecting) / 1e6;
    double to_first = (double)(first - r->t_connecting) / 1e6;

    pr->st->replies++;
    ping_series_add(&pr->st->connect, r->t_connected - r->t_connecting);
    ping_series_add(&pr->st->rtt, first - r->t_connecting);
    if (!r->tls)
        return ping_line(pr->o, "connected to %s: seq=%u connect=%.3f ms first_byte=%.3f ms",
                         p->addr, seq, connect, to_first);
    ping_series_add(&pr->st->handshake, r->t_handshake - r->t_connected);
    return ping_line(pr->o, "connected to %s: seq=%u connect=%.3f ms handshake=%.3f ms "
                     "first_byte=%.3f ms", p->addr, seq, connect,
                     (double)(r->t_handshake - r->t_connected) / 1e6, to_first);
}

/* One probe, from the connect to the close. Returns 0, or -1 if stdout failed. */
static int probe(struct probe_run *pr, uint32_t seq)
{
    struct ping_opts *o = pr->o;
    int64_t wait = (int64_t)o->c.wait_ms * NS_PER_MS, first = 0, ready;
    struct report r;
    struct peer p;
    int v;

    report_start(&r, &o->c.t);
    pr->st->probes++;
    v = client_connect(&o->c.t, &p, &r);
    if (pr->r->peer[0] == '\0')
        snprintf(pr->r->peer, sizeof pr->r->peer, "%s", r.peer);
    if (v != V_OK) {
        if (v != V_TIMEOUT)
            return ping_fail_line(o, pr->st, v, "seq=%u: %s", seq, r.error);
        return ping_loss_line(o, pr->st, "seq=%u: %s", seq, r.error);
    }
    keep_first(pr->r, &r);
    ready = r.tls ? r.t_handshake : r.t_connected;
    if (o->size >= PING_HEADER)
        ping_build(pr->buf, o->size, pr->id, seq);
    else
        memset(pr->buf, 'k', o->size);     /* too short for a probe's header */
    if (o->size > 0 && send_probe(pr, &p, ready + wait) < 0)
        v = probe_failed(&r, &p, errno, "send");
    if (v == V_OK)
        v = first_byte(pr, &p, ready + wait, &first, &r);
    if (v != V_OK) {
        peer_close(&p);
        if (v != V_TIMEOUT)
            return ping_fail_line(o, pr->st, v, "seq=%u: %s: %s", seq, p.addr, r.error);
        return ping_loss_line(o, pr->st, "no first byte from %s: seq=%u within %s s", p.addr,
                              seq, o->c.wait_text);
    }
    finish_probe(pr, &p, first + wait);
    return probe_done(pr, seq, &p, &r, first);
}

int ping_connect_run(struct ping_opts *o, struct ping_stats *st, struct report *r,
                     struct peer *p)
{
    struct probe_run pr = { .o = o, .st = st, .r = r };
    int64_t due = now_ns();
    int v = V_OK;

    (void)p;
    o->c.t.timeout_ms = o->c.wait_ms;
    o->c.t.quiet = 1;           /* each probe's failure is a line of the report */
    pr.buf = xmalloc(o->size > 0 ? o->size : 1);
    pr.id = (uint32_t)now_ns() ^ ((uint32_t)getpid() << 16);
    st->t_first = due;
    for (uint32_t seq = 0; ping_more(o, st); seq++) {
        if (seq > 0 && (wait_until(-1, 0, due) < 0 || !ping_more(o, st)))
            break;
        if (probe(&pr, seq) < 0) {
            v = report_stdout_failed(r, errno);
            break;
        }
        /* On schedule, but no burst to catch up after a slow probe (as echo mode). */
        due += o->interval_ms * NS_PER_MS;
        if (due < now_ns())
            due = now_ns();
    }
    st->t_last = now_ns();
    free(pr.buf);
    return v;
}
