/* relay.c — see relay.h. */
#include "client/relay.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/peer_io.h"
#include "client/sock.h"
#include "lib/log.h"
#include "lib/net.h"
#include "lib/util.h"

#define RELAY_BUF (64 * 1024)

enum { POLL_STDIN, POLL_NETOUT, POLL_NETIN, POLL_STDOUT, POLL_N };

void relay_init(struct relay *rl, int udp, long udp_wait_ms)
{
    size_t out = udp ? NET_DGRAM_MAX * 2 : RELAY_BUF;

    memset(rl, 0, sizeof *rl);
    rl->udp = udp;
    rl->udp_wait_ms = udp_wait_ms;
    rl->stdin_open = 1;
    ring_attach(&rl->to_net, xmalloc(RELAY_BUF), RELAY_BUF);
    ring_attach(&rl->to_out, xmalloc(out), out);
}

void relay_free(struct relay *rl)
{
    free(rl->to_net.data);
    free(rl->to_out.data);
}

static int stdout_write(struct relay *rl)
{
    struct iovec iov[2];
    int cnt = ring_data_iov(&rl->to_out, iov);
    ssize_t n = writev(STDOUT_FILENO, iov, cnt);

    if (n < 0) {
        if (errno == EINTR || errno == EAGAIN)
            return V_OK;
        /* stdout closed early (piped into head): our failure, not the peer's. */
        return report_stdout_failed(rl->r, errno);
    }
    ring_consume(&rl->to_out, (size_t)n);
    return V_OK;
}

static int stdin_read(struct relay *rl)
{
    struct iovec iov[2];
    int cnt = ring_space_iov(&rl->to_net, iov);
    ssize_t n;

    /* One read is one datagram over udp: read into one contiguous piece. */
    if (rl->udp) {
        cnt = 1;
        if (iov[0].iov_len > NET_UDP_PAYLOAD_MAX)
            iov[0].iov_len = NET_UDP_PAYLOAD_MAX;
    }
    n = readv(STDIN_FILENO, iov, cnt);
    if (n < 0) {
        if (errno == EINTR || errno == EAGAIN)
            return V_OK;
        return report_fail(rl->r, 0, V_LOCAL, "cannot read stdin: %s", strerror(errno));
    }
    if (n == 0)
        rl->stdin_open = 0;
    ring_produce(&rl->to_net, (size_t)n);
    return V_OK;
}

static int net_write(struct relay *rl)
{
    struct iovec iov[2];
    int cnt = ring_data_iov(&rl->to_net, iov);
    ssize_t n;

    if (cnt == 0)
        return V_OK;    /* woken to retry our close_notify (shut_net_out) */
    n = peer_sendv(rl->p, iov, rl->udp ? 1 : cnt);
    if (n < 0) {
        if (errno == EINTR || errno == EAGAIN)
            return V_OK;
        return peer_fail(rl->r, 0, rl->p, errno, "send to");
    }
    if (rl->udp)
        rl->dgrams_sent++;
    rl->r->bytes_out += (uint64_t)n;
    ring_consume(&rl->to_net, (size_t)n);
    return V_OK;
}

static int net_read(struct relay *rl)
{
    struct iovec iov[2];
    int cnt = ring_space_iov(&rl->to_out, iov);
    ssize_t n = peer_recvv(rl->p, iov, rl->udp ? 1 : cnt);

    if (n < 0) {
        if (errno == EINTR || errno == EAGAIN)
            return V_OK;
        if (rl->udp)
            return report_fail(rl->r, 0, verdict_of_errno(errno), "no reply from %s: %s",
                               rl->p->name, strerror(errno));
        return peer_fail(rl->r, 0, rl->p, errno, "receive from");
    }
    if (rl->udp)
        rl->dgrams_received++;
    else if (n == 0)
        rl->net_in_open = 0;
    if (n > 0 || rl->udp)
        report_first_byte(rl->r);
    rl->r->bytes_in += (uint64_t)n;
    ring_produce(&rl->to_out, (size_t)n);
    return V_OK;
}

/* Our side is done: tell the peer (tcp, unix) so it can finish and close. Over
 * TLS the close_notify may not fit in the socket yet: then it is tried again when
 * the socket is writable (relay_poll_set watches for it while shut_wanted). */
static void shut_net_out(struct relay *rl)
{
    if (!rl->udp && peer_shutdown_wr(rl->p) < 0) {
        if (errno == EAGAIN)
            return;
        if (errno != ENOTCONN)
            log_msg("shutdown: %s", strerror(errno));
    }
    rl->net_out_open = 0;
}

static int shut_wanted(const struct relay *rl)
{
    return !rl->stdin_open && ring_empty(&rl->to_net) && rl->net_out_open;
}

static int relay_done(const struct relay *rl)
{
    if (!ring_empty(&rl->to_out))
        return 0;
    if (rl->udp)
        return !rl->udp_until_quiet && !rl->stdin_open && ring_empty(&rl->to_net) &&
               rl->dgrams_received >= rl->dgrams_sent;
    return !rl->net_in_open;
}

/* Room for what the socket gives next: any byte of a stream; over udp a whole
 * datagram in one contiguous piece (the read takes one iovec: a shorter one would cut
 * the datagram short), which a slow stdout may leave only once it has caught up. */
static int room_for_net(const struct relay *rl)
{
    struct iovec iov[2];

    if (!rl->udp)
        return ring_space(&rl->to_out) >= 1;
    return ring_space_iov(&rl->to_out, iov) > 0 && iov[0].iov_len >= NET_DGRAM_MAX;
}

static void relay_poll_set(struct relay *rl, struct pollfd pfd[POLL_N])
{
    pfd[POLL_STDIN].fd = rl->stdin_open && rl->udp ? (ring_empty(&rl->to_net) ? STDIN_FILENO : -1)
                         : rl->stdin_open && ring_space(&rl->to_net) ? STDIN_FILENO : -1;
    pfd[POLL_STDIN].events = POLLIN;
    pfd[POLL_NETOUT].fd = !ring_empty(&rl->to_net) || shut_wanted(rl) ? rl->p->fd : -1;
    pfd[POLL_NETOUT].events = POLLOUT;
    pfd[POLL_NETIN].fd = -1;
    pfd[POLL_NETIN].events = peer_recv_events(rl->p);
    if (rl->net_in_open && room_for_net(rl))
        pfd[POLL_NETIN].fd = rl->p->fd;
    rl->read_now = pfd[POLL_NETIN].fd >= 0 && pfd[POLL_NETIN].events == 0;
    pfd[POLL_STDOUT].fd = !ring_empty(&rl->to_out) ? STDOUT_FILENO : -1;
    pfd[POLL_STDOUT].events = POLLOUT;
}

/* The run ends on a failure (the peer reset, stdin failed): what the peer sent before
 * it is still owed to stdout. Waits for stdout as the relay does (a stop signal ends
 * the wait); a failure of stdout itself ends it too (the first verdict stays). */
static void drain_stdout(struct relay *rl)
{
    while (!ring_empty(&rl->to_out)) {
        struct pollfd pfd = { .fd = STDOUT_FILENO, .events = POLLOUT };
        int n = sk_poll(&pfd, 1, -1);

        if (n < 0 && (errno != EINTR || sk_stop_requested()))
            return;
        if (n <= 0)
            continue;
        if (pfd.revents & POLLNVAL)
            return;
        if (stdout_write(rl) != V_OK)
            return;
    }
}

static int relay_step(struct relay *rl, struct pollfd pfd[POLL_N])
{
    /* POLLHUP/POLLERR/POLLNVAL on a slot: let the read or write say what happened. */
    const short any = POLLIN | POLLOUT | POLLHUP | POLLERR | POLLNVAL;
    int v = V_OK;

    if ((pfd[POLL_STDIN].revents & POLLNVAL))
        rl->stdin_open = 0;
    else if ((pfd[POLL_STDIN].revents & any) && (v = stdin_read(rl)) != V_OK)
        return v;
    if ((pfd[POLL_NETOUT].revents & any) && (v = net_write(rl)) != V_OK)
        return v;
    if ((pfd[POLL_NETIN].revents & any) && (v = net_read(rl)) != V_OK)
        return v;
    if (pfd[POLL_STDOUT].revents & POLLNVAL)
        return report_stdout_failed(rl->r, EBADF);
    if ((pfd[POLL_STDOUT].revents & any) && (v = stdout_write(rl)) != V_OK)
        return v;
    if (shut_wanted(rl))
        shut_net_out(rl);
    return V_OK;
}

/* udp has no end of stream: after stdin ends, wait a while for answers. Returns the
 * poll timeout, or 0 when the wait is over. */
static int udp_quiet_left(const struct relay *rl, int64_t *quiet_since)
{
    int64_t left;

    if (!rl->udp || rl->stdin_open || !ring_empty(&rl->to_net) || !ring_empty(&rl->to_out))
        return -1;
    if (*quiet_since == 0)
        *quiet_since = now_ms();
    left = *quiet_since + rl->udp_wait_ms - now_ms();
    return left > 0 ? (int)left : 0;
}

int relay_run(struct relay *rl, int fd, const char *name, struct report *r)
{
    memset(&rl->plain, 0, sizeof rl->plain);
    rl->plain.fd = fd;
    snprintf(rl->plain.name, sizeof rl->plain.name, "%s", name);
    snprintf(rl->plain.addr, sizeof rl->plain.addr, "%s", r->peer);
    return relay_run_peer(rl, &rl->plain, r);
}

int relay_run_peer(struct relay *rl, struct peer *p, struct report *r)
{
    struct pollfd pfd[POLL_N];
    int64_t quiet_since = 0;

    rl->p = p;
    rl->r = r;
    rl->net_in_open = rl->net_out_open = 1;
    rl->dgrams_sent = rl->dgrams_received = 0;
    while (!relay_done(rl)) {
        int timeout = udp_quiet_left(rl, &quiet_since), n, v;

        if (timeout == 0 || sk_stop_requested())
            return V_OK;
        relay_poll_set(rl, pfd);
        n = sk_poll(pfd, POLL_N, rl->read_now ? 0 : timeout);
        if (rl->read_now && n >= 0) {
            pfd[POLL_NETIN].revents = POLLIN;
            n++;
        }
        if (n < 0 && errno != EINTR)
            return report_fail(r, 0, V_LOCAL, "poll: %s", strerror(errno));
        if (n <= 0)
            continue;
        if (pfd[POLL_NETIN].revents)
            quiet_since = 0;
        if ((v = relay_step(rl, pfd)) != V_OK) {
            drain_stdout(rl);
            return v;
        }
    }
    return V_OK;
}
