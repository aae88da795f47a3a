/* cmd_connect.c — `kodama connect`: a netcat-style relay between stdin/stdout and a
 * socket, binary safe.
 *
 * The loop follows OpenBSD netcat's readwrite(): four poll slots (stdin, net out,
 * net in, stdout) with one buffer per direction. The socket is non-blocking so a peer
 * that stops reading never stops us from reading what it sends; stdin and stdout are
 * left as they are (they may be shared with the shell) and only read or written after
 * poll says so. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/cli.h"
#include "client/client.h"
#include "lib/log.h"
#include "lib/net.h"
#include "lib/ring.h"
#include "lib/util.h"

#define RELAY_BUF (64 * 1024)
#define UDP_WAIT_DEFAULT_MS 5000

enum { POLL_STDIN, POLL_NETOUT, POLL_NETIN, POLL_STDOUT, POLL_N };

void help_connect(FILE *out)
{
    fprintf(out,
        "Usage: kodama connect [-u] [-4|-6] [-v] [-w SECS] HOST PORT\n"
        "       kodama connect [-v] [-w SECS] -U PATH\n\n"
        "Relay stdin to a socket and the socket to stdout, byte for byte. Each address\n"
        "HOST resolves to is tried in turn. At the end of stdin the write side is shut\n"
        "down and output goes on until the peer closes. With -u each read of stdin is\n"
        "one datagram; after the end of stdin, replies are awaited until every datagram\n"
        "was answered or -w SECS pass without one.\n\n"
        "Options:\n"
        "  -u          udp\n"
        "  -4, -6      IPv4 or IPv6 only\n"
        "  -U PATH     a unix stream socket (@NAME: abstract)\n"
        "  -w SECS     connect timeout (udp: the wait for replies, default 5)\n"
        "  -v          report the connection on stderr\n"
        "  -h, --help  show this help\n\n"
        "Exit status: 0 the peer closed (or, udp, all answered), 1 failure, 2 usage error.\n");
}

struct relay {
    struct peer *p;
    int udp;
    long udp_wait_ms;
    struct ring to_net, to_out;
    int stdin_open, net_in_open, net_out_open;
    unsigned long dgrams_sent, dgrams_received;
};

static int stdout_write(struct relay *r)
{
    struct iovec iov[2];
    int cnt = ring_data_iov(&r->to_out, iov);
    ssize_t n = writev(STDOUT_FILENO, iov, cnt);

    if (n < 0) {
        if (errno == EINTR || errno == EAGAIN)
            return 0;
        log_msg("cannot write to stdout: %s", strerror(errno));
        return -1;
    }
    ring_consume(&r->to_out, (size_t)n);
    return 0;
}

static int stdin_read(struct relay *r)
{
    struct iovec iov[2];
    int cnt = ring_space_iov(&r->to_net, iov);
    ssize_t n;

    /* One read is one datagram over udp: read into one contiguous piece. */
    if (r->udp) {
        cnt = 1;
        if (iov[0].iov_len > NET_UDP_PAYLOAD_MAX)
            iov[0].iov_len = NET_UDP_PAYLOAD_MAX;
    }
    n = readv(STDIN_FILENO, iov, cnt);
    if (n < 0) {
        if (errno == EINTR || errno == EAGAIN)
            return 0;
        log_msg("cannot read stdin: %s", strerror(errno));
        return -1;
    }
    if (n == 0)
        r->stdin_open = 0;
    ring_produce(&r->to_net, (size_t)n);
    return 0;
}

static int net_write(struct relay *r)
{
    struct iovec iov[2];
    int cnt = ring_data_iov(&r->to_net, iov);
    struct msghdr msg = { .msg_iov = iov, .msg_iovlen = (size_t)(r->udp ? 1 : cnt) };
    ssize_t n = sendmsg(r->p->fd, &msg, MSG_NOSIGNAL);

    if (n < 0) {
        if (errno == EINTR || errno == EAGAIN)
            return 0;
        log_msg("send to %s failed: %s", r->p->name, strerror(errno));
        return -1;
    }
    if (r->udp)
        r->dgrams_sent++;
    ring_consume(&r->to_net, (size_t)n);
    return 0;
}

static int net_read(struct relay *r)
{
    struct iovec iov[2];
    int cnt = ring_space_iov(&r->to_out, iov);
    ssize_t n = readv(r->p->fd, iov, cnt);

    if (n < 0) {
        if (errno == EINTR || errno == EAGAIN)
            return 0;
        if (r->udp)
            log_msg("no reply from %s: %s", r->p->name, strerror(errno));
        else
            log_msg("receive from %s failed: %s", r->p->name, strerror(errno));
        return -1;
    }
    if (r->udp)
        r->dgrams_received++;
    else if (n == 0)
        r->net_in_open = 0;
    ring_produce(&r->to_out, (size_t)n);
    return 0;
}

/* Our side is done: tell the peer (tcp, unix) so it can finish and close. */
static void shut_net_out(struct relay *r)
{
    r->net_out_open = 0;
    if (!r->udp && shutdown(r->p->fd, SHUT_WR) < 0 && errno != ENOTCONN)
        log_msg("shutdown: %s", strerror(errno));
}

static int relay_done(const struct relay *r)
{
    if (!ring_empty(&r->to_out))
        return 0;
    if (r->udp)
        return !r->stdin_open && ring_empty(&r->to_net) && r->dgrams_received >= r->dgrams_sent;
    return !r->net_in_open;
}

static void relay_poll_set(const struct relay *r, struct pollfd pfd[POLL_N])
{
    pfd[POLL_STDIN].fd = r->stdin_open && r->udp ? (ring_empty(&r->to_net) ? STDIN_FILENO : -1)
                         : r->stdin_open && ring_space(&r->to_net) ? STDIN_FILENO : -1;
    pfd[POLL_STDIN].events = POLLIN;
    pfd[POLL_NETOUT].fd = !ring_empty(&r->to_net) ? r->p->fd : -1;
    pfd[POLL_NETOUT].events = POLLOUT;
    pfd[POLL_NETIN].fd = r->net_in_open && ring_space(&r->to_out) >= (r->udp ? NET_DGRAM_MAX : 1)
                         ? r->p->fd : -1;
    pfd[POLL_NETIN].events = POLLIN;
    pfd[POLL_STDOUT].fd = !ring_empty(&r->to_out) ? STDOUT_FILENO : -1;
    pfd[POLL_STDOUT].events = POLLOUT;
}

static int relay_step(struct relay *r, struct pollfd pfd[POLL_N])
{
    /* POLLHUP/POLLERR/POLLNVAL on a slot: let the read or write say what happened. */
    const short any = POLLIN | POLLOUT | POLLHUP | POLLERR | POLLNVAL;

    if ((pfd[POLL_STDIN].revents & POLLNVAL))
        r->stdin_open = 0;
    else if ((pfd[POLL_STDIN].revents & any) && stdin_read(r) < 0)
        return -1;
    if ((pfd[POLL_NETOUT].revents & any) && net_write(r) < 0)
        return -1;
    if ((pfd[POLL_NETIN].revents & any) && net_read(r) < 0)
        return -1;
    if ((pfd[POLL_STDOUT].revents & POLLNVAL) || ((pfd[POLL_STDOUT].revents & any) && stdout_write(r) < 0))
        return -1;
    if (!r->stdin_open && ring_empty(&r->to_net) && r->net_out_open)
        shut_net_out(r);
    return 0;
}

static int relay_run(struct relay *r)
{
    struct pollfd pfd[POLL_N];
    int64_t quiet_since = 0;

    while (!relay_done(r)) {
        int timeout = -1, n;

        relay_poll_set(r, pfd);
        /* udp has no end of stream: after stdin ends, wait a while for answers. */
        if (r->udp && !r->stdin_open && ring_empty(&r->to_net)) {
            if (quiet_since == 0)
                quiet_since = now_ms();
            timeout = (int)(quiet_since + r->udp_wait_ms - now_ms());
            if (timeout <= 0)
                return EXIT_OK;
        }
        n = poll(pfd, POLL_N, timeout);
        if (n < 0 && errno != EINTR) {
            log_msg("poll: %s", strerror(errno));
            return EXIT_FAIL;
        }
        if (n <= 0)
            continue;
        if (pfd[POLL_NETIN].revents)
            quiet_since = 0;
        if (relay_step(r, pfd) < 0)
            return EXIT_FAIL;
    }
    return EXIT_OK;
}

static int parse_connect_args(int argc, char **argv, struct client_opts *o)
{
    int rc = client_parse_options("connect", argc, argv, o, help_connect);

    if (rc == EXIT_OK && !o->t.unix_path)
        rc = client_take_host_port("connect", argc, argv, &o->t);
    if (rc == EXIT_OK && optind < argc)
        rc = usage_error("connect", "unexpected argument '%s'", argv[optind]);
    return rc;
}

int cmd_connect(int argc, char **argv)
{
    struct client_opts o = { .t.family = AF_UNSPEC };
    struct target *t = &o.t;
    struct peer p;
    struct relay r = { .stdin_open = 1, .net_in_open = 1, .net_out_open = 1 };
    int rc = parse_connect_args(argc, argv, &o);
    long wait_ms = o.wait_ms;

    if (rc != EXIT_OK)
        return rc;
    t->timeout_ms = t->udp ? 0 : wait_ms;
    if (client_connect(t, &p) < 0)
        return EXIT_FAIL;
    if (t->verbose)
        log_msg("connected to %s", p.name);
    r.p = &p;
    r.udp = t->udp;
    r.udp_wait_ms = wait_ms > 0 ? wait_ms : UDP_WAIT_DEFAULT_MS;
    ring_attach(&r.to_net, xmalloc(RELAY_BUF), RELAY_BUF);
    ring_attach(&r.to_out, xmalloc(r.udp ? NET_DGRAM_MAX * 2 : RELAY_BUF),
                r.udp ? NET_DGRAM_MAX * 2 : RELAY_BUF);
    rc = relay_run(&r);
    free(r.to_net.data);
    free(r.to_out.data);
    close(p.fd);
    return rc;
}
