/* ping_connect.c — ping's connect mode (--connect): each probe is a connection of its
 * own. It is timed from the connect to the handshake's end and to the first byte
 * back: against hello the greeting, against echo the echo of the -s bytes sent
 * (-s 0 sends none). Then our side is shut down and the connection closed as soon as
 * the peer's is, so the server sees a clean end:
 *
 *   connected to 127.0.0.1:8080: seq=0 connect=0.061 ms first_byte=0.120 ms
 *   seq=1: connect to 127.0.0.1 port 8081 (tcp) failed: Connection refused
 *   no first byte from 127.0.0.1:8080: seq=2 within 1 s */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
static int send_probe(struct probe_run *pr, int fd, int64_t deadline)
{
    size_t off = 0, size = pr->o->size;

    while (off < size) {
        ssize_t n = sk_send(fd, pr->buf + off, size - off);

        if (n >= 0) {
            off += (size_t)n;
            pr->r->bytes_out += (uint64_t)n;
        } else if (errno != EAGAIN && errno != EINTR) {
            return -1;
        } else if (wait_until(fd, POLLOUT, deadline) <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
    }
    return 0;
}

/* After the first byte: our FIN, and the rest read until the peer's (within -w). */
static void finish_probe(struct probe_run *pr, int fd, int64_t deadline)
{
    if (sk_shutdown_wr(fd) == 0)
        while (wait_until(fd, POLLIN, deadline) > 0) {
            ssize_t n = sk_recv(fd, pr->buf, pr->o->size > 0 ? pr->o->size : 1);

            if (n > 0)
                pr->r->bytes_in += (uint64_t)n;
            else if (n == 0 || (errno != EAGAIN && errno != EINTR))
                break;
        }
    sk_close(fd);
}

/* Wait for the first byte. Returns V_OK with the time in *first, V_TIMEOUT, or the
 * verdict of the failure (its text in r->error). */
static int first_byte(struct probe_run *pr, int fd, int64_t deadline, int64_t *first,
                      struct report *r)
{
    for (;;) {
        int ev = wait_until(fd, POLLIN, deadline);
        ssize_t n;

        if (ev == 0)
            return V_TIMEOUT;
        if (ev < 0)
            return report_fail(r, 1, V_LOCAL, "poll: %s", strerror(errno));
        n = sk_recv(fd, pr->buf, pr->o->size > 0 ? pr->o->size : 1);
        if (n > 0) {
            *first = now_ns();
            pr->r->bytes_in += (uint64_t)n;
            report_first_byte(pr->r);
            return V_OK;
        }
        if (n == 0)
            return report_fail(r, 1, V_RESET, "closed by the peer before the first byte");
        if (errno != EAGAIN && errno != EINTR)
            return report_fail(r, 1, verdict_of_errno(errno), "receive failed: %s",
                               strerror(errno));
    }
}

/* One probe, from the connect to the close. Returns 0, or -1 if stdout failed. */
static int probe(struct probe_run *pr, uint32_t seq)
{
    struct ping_opts *o = pr->o;
    int64_t wait = (int64_t)o->c.wait_ms * NS_PER_MS, first = 0;
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
            ping_failed(pr->st, v);
        return ping_line(o, "seq=%u: %s", seq, r.error);
    }
    snprintf(pr->r->local, sizeof pr->r->local, "%s", r.local);
    if (pr->r->t_connected == 0)
        pr->r->t_connected = r.t_connected;
    if (o->size >= PING_HEADER)
        ping_build(pr->buf, o->size, pr->id, seq);
    else
        memset(pr->buf, 'k', o->size);     /* too short for a probe's header */
    if (o->size > 0 && send_probe(pr, p.fd, r.t_connected + wait) < 0)
        v = report_fail(&r, 1, verdict_of_errno(errno), "send failed: %s", strerror(errno));
    if (v == V_OK)
        v = first_byte(pr, p.fd, r.t_connected + wait, &first, &r);
    if (v != V_OK) {
        sk_close(p.fd);
        if (v != V_TIMEOUT) {
            ping_failed(pr->st, v);
            return ping_line(o, "seq=%u: %s: %s", seq, p.addr, r.error);
        }
        return ping_line(o, "no first byte from %s: seq=%u within %s s", p.addr, seq,
                         o->c.wait_text);
    }
    finish_probe(pr, p.fd, first + wait);
    pr->st->replies++;
    ping_series_add(&pr->st->connect, r.t_connected - r.t_connecting);
    ping_series_add(&pr->st->rtt, first - r.t_connecting);
    return ping_line(o, "connected to %s: seq=%u connect=%.3f ms first_byte=%.3f ms", p.addr,
                     seq, (double)(r.t_connected - r.t_connecting) / 1e6,
                     (double)(first - r.t_connecting) / 1e6);
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
            v = report_fail(r, 0, V_LOCAL, "cannot write to stdout: %s", strerror(errno));
            break;
        }
        due += o->interval_ms * NS_PER_MS;
    }
    st->t_last = now_ns();
    free(pr.buf);
    return v;
}
