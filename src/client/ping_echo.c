/* ping_echo.c — ping's echo mode: one connection (or one connected udp socket), a
 * probe every -i seconds, each reply named by the sequence number it carries:
 *
 *   56 bytes from 127.0.0.1:7007: seq=3 time=0.081 ms
 *   56 bytes from 127.0.0.1:7007: seq=3 time=0.090 ms (DUP!)
 *   56 bytes from 127.0.0.1:7007: seq=1 time=1502.311 ms (late)
 *   56 bytes from 127.0.0.1:7007: corrupt reply (bad check)
 *   no reply from 127.0.0.1:7007: seq=4 within 1 s
 *
 * Probes are remembered in a window by sequence number; they go out in order and
 * all wait the same -w, so they also expire in order, from the oldest (head). Over
 * a stream the replies are read back as a stream of SIZE-byte records. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/peer_io.h"
#include "client/ping.h"
#include "client/sock.h"
#include "lib/log.h"
#include "lib/util.h"
#include "proto/ping.h"

#define WINDOW 4096                 /* probes remembered: a power of two */
#define NS_PER_MS 1000000LL

enum { P_FREE, P_WAITING, P_ANSWERED, P_LOST, P_FAILED };

struct slot {
    int64_t sent;
    uint32_t seq;
    uint8_t state;
};

struct echo {
    struct ping_opts *o;
    struct ping_stats *st;
    struct report *r;
    struct peer *p;
    const char *peer;               /* as the lines name it */
    int stream;
    uint32_t id;
    uint32_t next_seq, head;        /* the next to send; the oldest perhaps waiting */
    unsigned outstanding;
    int64_t next_due;
    unsigned char *tx;              /* the probe being sent (a stream may take part) */
    size_t tx_off, tx_len;
    unsigned char *rx;              /* replies read, not yet whole */
    size_t rx_len, rx_cap;
    struct slot win[WINDOW];
};

static struct slot *slot_of(struct echo *e, uint32_t seq)
{
    return &e->win[seq & (WINDOW - 1)];
}

static const struct slot *cslot_of(const struct echo *e, uint32_t seq)
{
    return &e->win[seq & (WINDOW - 1)];
}

static double ms(int64_t ns)
{
    return (double)ns / 1e6;
}

/* ------------------------------------------------------------------ replies */

static int good_reply(struct echo *e, uint32_t seq, int64_t now, size_t len)
{
    struct slot *s = slot_of(e, seq);
    int known = s->state != P_FREE && s->seq == seq;
    double t = known ? ms(now - s->sent) : -1;

    if (seq >= e->next_seq) {
        e->st->corrupt++;
        return ping_fail_line(e->o, e->st, V_MISMATCH,
                              "%zu bytes from %s: corrupt reply (seq=%u never sent)", len,
                              e->peer, seq);
    }
    if (known && s->state == P_WAITING) {
        s->state = P_ANSWERED;
        e->outstanding--;
        e->st->replies++;
        ping_series_add(&e->st->rtt, now - s->sent);
        return ping_line(e->o, "%zu bytes from %s: seq=%u time=%.3f ms", len, e->peer, seq, t);
    }
    if (known && s->state == P_ANSWERED) {
        e->st->duplicates++;
        return ping_line(e->o, "%zu bytes from %s: seq=%u time=%.3f ms (DUP!)", len, e->peer,
                         seq, t);
    }
    e->st->late++;      /* lost already, or so old it left the window */
    if (t < 0)
        return ping_line(e->o, "%zu bytes from %s: seq=%u (late)", len, e->peer, seq);
    return ping_line(e->o, "%zu bytes from %s: seq=%u time=%.3f ms (late)", len, e->peer, seq, t);
}

static int reply(struct echo *e, const unsigned char *buf, size_t len)
{
    uint32_t seq;
    enum ping_kind k = ping_parse(buf, len, e->o->size, e->id, &seq);
    int64_t now = now_ns();

    report_first_byte(e->r);
    if (k == PING_OK)
        return good_reply(e, seq, now, len);
    e->st->corrupt++;
    return ping_fail_line(e->o, e->st, V_MISMATCH, "%zu bytes from %s: corrupt reply (%s)", len,
                          e->peer, ping_kind_name(k));
}

/* The socket said no (udp: ICMP port unreachable): the oldest probe waiting that
 * went out failed (one still to be sent cannot have been refused). */
static int probe_refused(struct echo *e, int err)
{
    uint32_t sent = e->next_seq - (e->tx_off < e->tx_len ? 1 : 0);
    struct slot *s = NULL;

    for (uint32_t q = e->head; q < sent; q++)
        if (slot_of(e, q)->state == P_WAITING) {
            s = slot_of(e, q);
            break;
        }
    e->st->failed++;
    if (s == NULL)
        return ping_fail_line(e->o, e->st, verdict_of_errno(err), "from %s: %s", e->peer,
                              strerror(err));
    s->state = P_FAILED;
    e->outstanding--;
    return ping_fail_line(e->o, e->st, verdict_of_errno(err), "from %s: seq=%u %s", e->peer,
                          s->seq, strerror(err));
}

/* Read what came. Returns V_OK, or the verdict that ends the run. */
static int echo_read(struct echo *e)
{
    size_t size = e->o->size, done = 0;
    ssize_t n = peer_recv(e->p, e->rx + e->rx_len, e->rx_cap - e->rx_len);

    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return V_OK;
    if (n < 0 && !e->stream)
        return probe_refused(e, errno) < 0 ? report_stdout_failed(e->r, errno) : V_OK;
    if (n < 0)
        return peer_fail(e->r, 0, e->p, errno, "receive from");
    e->r->bytes_in += (uint64_t)n;
    if (!e->stream)
        return reply(e, e->rx, (size_t)n) < 0 ? report_stdout_failed(e->r, errno) : V_OK;
    if (n == 0)
        return report_fail(e->r, 0, V_RESET, "%s closed the connection", e->p->name);
    e->rx_len += (size_t)n;
    for (; e->rx_len - done >= size; done += size)
        if (reply(e, e->rx + done, size) < 0)
            return report_stdout_failed(e->r, errno);
    memmove(e->rx, e->rx + done, e->rx_len - done);
    e->rx_len -= done;
    return V_OK;
}

/* ------------------------------------------------------------------ probes */

/* Probes whose -w has passed are lost, oldest first. */
static int expire(struct echo *e, int64_t now)
{
    int64_t wait = (int64_t)e->o->c.wait_ms * NS_PER_MS;

    for (; e->head < e->next_seq; e->head++) {
        struct slot *s = slot_of(e, e->head);

        if (s->state != P_WAITING)
            continue;
        if (now < s->sent + wait)
            break;
        s->state = P_LOST;
        e->outstanding--;
        if (ping_loss_line(e->o, e->st, "no reply from %s: seq=%u within %s s", e->peer,
                           s->seq, e->o->c.wait_text) < 0)
            return report_stdout_failed(e->r, errno);
    }
    return V_OK;
}

static int flush_tx(struct echo *e)
{
    ssize_t n;

    if (e->tx_off == e->tx_len)
        return V_OK;
    n = peer_send(e->p, e->tx + e->tx_off, e->tx_len - e->tx_off);
    if (n >= 0) {
        e->tx_off += (size_t)n;
        e->r->bytes_out += (uint64_t)n;
        return V_OK;
    }
    if (errno == EAGAIN || errno == EINTR)
        return V_OK;
    if (!e->stream)     /* an earlier datagram's error; this one goes out next time */
        return probe_refused(e, errno) < 0 ? report_stdout_failed(e->r, errno) : V_OK;
    return peer_fail(e->r, 0, e->p, errno, "send to");
}

/* Is the next probe due, and is there room for it? */
static int may_send(const struct echo *e, int64_t now)
{
    return ping_more(e->o, e->st) && now >= e->next_due && e->tx_off == e->tx_len &&
           e->next_seq - e->head < WINDOW && (e->o->interval_ms > 0 || e->outstanding == 0);
}

static int send_probe(struct echo *e, int64_t now)
{
    struct slot *s = slot_of(e, e->next_seq);

    ping_build(e->tx, e->o->size, e->id, e->next_seq);
    e->tx_off = 0;
    e->tx_len = e->o->size;
    *s = (struct slot){ .sent = now, .seq = e->next_seq, .state = P_WAITING };
    e->next_seq++;
    e->outstanding++;
    e->st->probes++;
    if (e->st->t_first == 0)
        e->st->t_first = now;
    /* On schedule, but no burst to catch up after a stall. */
    e->next_due += e->o->interval_ms * NS_PER_MS;
    if (e->next_due < now)
        e->next_due = now;
    return flush_tx(e);
}

/* How long poll may sleep: until the next probe is due or the oldest expires. */
static int poll_timeout(const struct echo *e, int64_t now)
{
    int64_t until = -1, wait = (int64_t)e->o->c.wait_ms * NS_PER_MS;

    if (ping_more(e->o, e->st) && e->tx_off == e->tx_len &&
        (e->o->interval_ms > 0 || e->outstanding == 0))
        until = e->next_due;
    for (uint32_t q = e->head; q < e->next_seq; q++)
        if (cslot_of(e, q)->state == P_WAITING) {
            int64_t t = cslot_of(e, q)->sent + wait;

            until = until < 0 || t < until ? t : until;
            break;
        }
    if (until < 0)
        return -1;
    return until <= now ? 0 : (int)((until - now + NS_PER_MS - 1) / NS_PER_MS);
}

static int echo_step(struct echo *e)
{
    struct pollfd pfd = { .fd = e->p->fd, .events = peer_recv_events(e->p) };
    int64_t now = now_ns();
    int v = expire(e, now), n, read_now = pfd.events == 0;

    if (v == V_OK && may_send(e, now))
        v = send_probe(e, now);
    if (v != V_OK || (!ping_more(e->o, e->st) && e->outstanding == 0))
        return v;   /* a failure, or the last probe is answered or lost */
    if (e->tx_off < e->tx_len)
        pfd.events |= POLLOUT;
    n = sk_poll(&pfd, 1, read_now ? 0 : poll_timeout(e, now_ns()));
    if (n < 0 && errno != EINTR)
        return report_fail(e->r, 0, V_LOCAL, "poll: %s", strerror(errno));
    if (read_now && n >= 0) {
        pfd.revents |= POLLIN;      /* TLS holds decrypted replies already */
        n++;
    }
    if (n > 0 && (pfd.revents & POLLOUT))
        v = flush_tx(e);
    if (v == V_OK && n > 0 && ((pfd.revents & (POLLIN | POLLHUP | POLLERR)) ||
                               (e->p->tls_read_wants_write && (pfd.revents & POLLOUT))))
        v = echo_read(e);
    return v;
}

int ping_echo_run(struct ping_opts *o, struct ping_stats *st, struct report *r, struct peer *p)
{
    struct echo *e = xcalloc(1, sizeof *e);     /* its window is 64 KiB */
    int v;

    e->o = o;
    e->st = st;
    e->r = r;
    e->p = p;
    e->stream = !o->c.t.udp;
    o->c.t.timeout_ms = o->c.wait_ms;
    v = client_connect(&o->c.t, p, r);
    if (v != V_OK) {
        free(e);
        return v;
    }
    e->peer = ping_peer_text(p);
    if (o->c.t.verbose)
        log_msg("connected to %s", p->name);
    if (r->tls) {
        ping_series_add(&st->handshake, r->t_handshake - r->t_connected);
        if (ping_line(o, "%s %s with %s: handshake=%.3f ms", r->tls_version, r->tls_cipher,
                      e->peer, (double)(r->t_handshake - r->t_connected) / 1e6) < 0)
            v = report_stdout_failed(r, errno);
    }
    e->id = (uint32_t)now_ns() ^ ((uint32_t)getpid() << 16);
    e->tx = xmalloc(o->size);
    e->rx_cap = o->size * 2 + SK_RECV_CHUNK;
    e->rx = xmalloc(e->rx_cap);
    e->next_due = now_ns();
    while (v == V_OK && !sk_stop_requested() && (ping_more(o, st) || e->outstanding > 0))
        v = echo_step(e);
    st->t_last = now_ns();
    peer_close(p);
    free(e->tx);
    free(e->rx);
    free(e);
    return v;
}
