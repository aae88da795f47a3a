/* listen.c — `kodama connect -l`: wait for one peer and relay it to stdin/stdout,
 * as nc -l does; -k takes the next one when it leaves (one at a time: the others
 * wait in the listen backlog). Over udp the first datagram's sender is the peer:
 * the socket is connected to it, so only its datagrams are relayed.
 *
 * The listening line is serve's, with "relay" for the service:
 *   kodama: listening relay tcp 127.0.0.1:40001 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/connect.h"
#include "client/relay.h"
#include "client/sock.h"
#include "lib/cli.h"
#include "lib/log.h"
#include "lib/net.h"
#include "lib/util.h"

#define UDP_WAIT_DEFAULT_MS 5000
#define LISTEN_BACKLOG 16

struct listening {
    int fd;
    const char *kind;               /* "tcp", "udp", "unix" */
    char addr[ADDR_TEXT_MAX];
    const char *unix_file;          /* ours to remove at the end */
    int udp_wildcard;               /* udp on 0.0.0.0 or [::]: datagrams say their address */
};

/* Bind and (for streams) listen on sa. Returns the descriptor, or -1 with errno. */
static int open_on(const struct sockaddr *sa, socklen_t len, int type, int v6only)
{
    int fd = sk_socket(sa->sa_family, type), one = 1, err;

    if (fd < 0)
        return -1;
    /* A listener restarted at once must not wait out the last one's TIME_WAIT. */
    if ((type == SOCK_STREAM && sa->sa_family != AF_UNIX &&
         setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) ||
        (sa->sa_family == AF_INET6 && v6only >= 0 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only) < 0) ||
        sk_bind(fd, sa, len) < 0 || (type == SOCK_STREAM && sk_listen(fd, LISTEN_BACKLOG) < 0)) {
        err = errno;
        sk_close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

/* No ADDR: every address, on one dual-stack socket as serve's PORT does (0.0.0.0
 * without IPv6, or with -4; IPv6 only with -6). */
static int open_wildcard(const struct target *t, int type, unsigned port, struct listening *ls)
{
    struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port),
                                 .sin6_addr = IN6ADDR_ANY_INIT };
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                               .sin_addr.s_addr = htonl(INADDR_ANY) };

    ls->fd = -1;
    if (t->family != AF_INET)
        ls->fd = open_on((struct sockaddr *)&sin6, sizeof sin6, type, t->family == AF_INET6);
    if (ls->fd < 0 && t->family != AF_INET6 && (t->family == AF_INET || errno == EAFNOSUPPORT))
        ls->fd = open_on((struct sockaddr *)&sin, sizeof sin, type, -1);
    return ls->fd;
}

/* ADDR PORT: the first address the name gives, as nc binds. */
static int open_named(const struct target *t, struct listening *ls, struct report *r)
{
    struct addrinfo *res;
    int v = client_resolve(t, t->port, 1, &res, r);

    if (v != V_OK)
        return -v;
    ls->fd = open_on(res->ai_addr, res->ai_addrlen, res->ai_socktype, -1);
    freeaddrinfo(res);
    return ls->fd;
}

static int open_unix(const struct target *t, struct listening *ls)
{
    struct sockaddr_un sun;
    int abstract = t->unix_path[0] == '@';
    socklen_t len = net_unix_addr(t->unix_path + abstract, abstract, &sun);

    ls->fd = len == (socklen_t)-1 ? -1 : open_on((struct sockaddr *)&sun, len, SOCK_STREAM, -1);
    if (ls->fd >= 0 && !abstract)
        ls->unix_file = t->unix_path;
    return ls->fd;
}

/* The address asked for, as text, for a message: "127.0.0.1:40001", "[::1]:40001",
 * "*:40001", "unix:/tmp/s". */
static void listen_name(const struct target *t, char *buf, size_t len)
{
    if (t->unix_path)
        snprintf(buf, len, "unix:%s", t->unix_path);
    else if (t->host && strchr(t->host, ':'))
        snprintf(buf, len, "[%s]:%s", t->host, t->port);
    else
        snprintf(buf, len, "%s:%s", t->host ? t->host : "*", t->port);
}

/* Open the listener and say so. Returns V_OK, or the verdict after one line. */
static int open_listener(const struct target *t, struct listening *ls, struct report *r)
{
    struct sockaddr_storage ss = { 0 };
    socklen_t len = sizeof ss;
    unsigned long port = t->port ? strtoul(t->port, NULL, 10) : 0;
    int fd;

    ls->kind = t->unix_path ? "unix" : t->udp ? "udp" : "tcp";
    if (t->unix_path)
        fd = open_unix(t, ls);
    else if (t->host)
        fd = open_named(t, ls, r);
    else
        fd = open_wildcard(t, t->udp ? SOCK_DGRAM : SOCK_STREAM, (unsigned)port, ls);
    if (fd < -1)
        return -fd;     /* the name did not resolve: told already */
    if (fd < 0) {
        int err = errno;

        listen_name(t, ls->addr, sizeof ls->addr);
        return report_fail(r, 0, verdict_of_local_errno(err), "cannot listen on relay %s %s: %s",
                           ls->kind, ls->addr, strerror(err));
    }
    if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
        addr_format((struct sockaddr *)&ss, len, ls->addr, sizeof ls->addr);
    if (t->udp && !t->unix_path && addr_is_wildcard((struct sockaddr *)&ss)) {
        char why[NET_ERR_LEN];

        /* Where the first datagram was sent to: see udp_own_socket. */
        if (net_udp_pktinfo(fd, ss.ss_family, why, sizeof why) < 0)
            return report_fail(r, 0, V_LOCAL, "cannot listen on relay %s %s: %s", ls->kind,
                               ls->addr, why);
        ls->udp_wildcard = 1;
    }
    snprintf(r->local, sizeof r->local, "%s", ls->addr);
    log_msg("listening relay %s %s", ls->kind, ls->addr);
    return V_OK;
}

static void close_listener(struct listening *ls)
{
    if (ls->fd >= 0)
        sk_close(ls->fd);
    if (ls->unix_file && unlink(ls->unix_file) < 0 && errno != ENOENT)
        log_msg("cannot remove unix:%s: %s", ls->unix_file, strerror(errno));
}

/* Wait for the listener to be readable: V_OK, V_TIMEOUT after -w, or -1 on a stop
 * signal. */
static int wait_peer(struct connect_opts *o, const struct listening *ls, struct report *r)
{
    struct pollfd pfd = { .fd = ls->fd, .events = POLLIN };
    int64_t deadline = now_ms() + o->c.wait_ms;

    for (;;) {
        int64_t left = deadline - now_ms();
        int rc;

        if (sk_stop_requested())
            return -1;
        if (o->c.wait_given && left <= 0)
            return report_fail(r, 0, V_TIMEOUT, "no peer on relay %s %s within %s s", ls->kind,
                               ls->addr, o->c.wait_text);
        rc = sk_poll(&pfd, 1, o->c.wait_given ? (int)left : -1);
        if (rc > 0)
            return V_OK;
        if (rc < 0 && errno != EINTR)
            return report_fail(r, 0, V_LOCAL, "poll: %s", strerror(errno));
    }
}

static void peer_name(char *name, size_t len, const struct sockaddr_storage *ss,
                      const char *kind)
{
    char host[ADDR_TEXT_MAX];

    if (ss->ss_family == AF_UNIX)
        snprintf(name, len, "unix peer");
    else
        snprintf(name, len, "%s port %d (%s)", addr_host((const struct sockaddr *)ss, host, sizeof host),
                 addr_port((const struct sockaddr *)ss), kind);
}

/* One stream peer: accept, relay, close. Returns the peer's verdict, or -1 if the
 * accept found nobody after all (the peer left at once). */
static int serve_stream_peer(struct connect_opts *o, const struct listening *ls,
                             struct relay *rl, struct report *r)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    char name[ADDR_TEXT_MAX + 24];
    int fd = sk_accept(ls->fd, &ss, &sl), v;

    if (fd < 0) {
        if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
            return -1;
        return report_fail(r, 0, verdict_of_local_errno(errno), "accept on relay %s %s: %s",
                           ls->kind, ls->addr, strerror(errno));
    }
    r->t_connected = now_ns();
    addr_format((struct sockaddr *)&ss, sl, r->peer, sizeof r->peer);
    sk_local(fd, r->local, sizeof r->local);
    peer_name(name, sizeof name, &ss, ls->kind);
    if (o->c.t.verbose)
        log_msg("connection from %s", ss.ss_family == AF_UNIX ? ls->addr : name);
    v = relay_run(rl, fd, name, r);
    sk_close(fd);
    return v;
}

/* A wildcard socket connected to the peer would answer from the address routing
 * picks toward it (127.0.0.1 for a peer that wrote to 127.0.0.2), and the connect
 * pins its own address to that one too: the peer's next datagrams, sent to
 * 127.0.0.2, would be lost. So the peer gets a socket of its own, bound to the
 * address it wrote to, and the listener, needed no more (no -k over udp), is
 * closed; a datagram that reached it in the meantime is lost, as udp may lose one.
 * Returns 0, or -1 with the listener left to serve, as it would without. */
static int udp_own_socket(struct listening *ls, struct sockaddr_storage *to, socklen_t tolen)
{
    struct sockaddr_storage local = { 0 };   /* getsockname fills what it knows */
    socklen_t len = sizeof local;
    int one = 1, zero = 0, fd;
    in_port_t port;

    if (getsockname(ls->fd, (struct sockaddr *)&local, &len) < 0 ||
        local.ss_family != to->ss_family)
        return -1;
    port = htons((uint16_t)addr_port((const struct sockaddr *)&local));
    if (to->ss_family == AF_INET)
        ((struct sockaddr_in *)to)->sin_port = port;
    else
        ((struct sockaddr_in6 *)to)->sin6_port = port;
    /* The port is the listener's: both must allow sharing it, the listener too. */
    if (setsockopt(ls->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
        return -1;
    fd = sk_socket(to->ss_family, SOCK_DGRAM);
    if (fd < 0)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        (to->ss_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero) < 0) ||
        sk_bind(fd, (struct sockaddr *)to, tolen) < 0) {
        sk_close(fd);
        return -1;
    }
    sk_close(ls->fd);
    ls->fd = fd;
    return 0;
}

/* udp: the first datagram names the peer; connect to it and relay it alone. */
static int serve_udp_peer(const struct connect_opts *o, struct listening *ls,
                          struct relay *rl, struct report *r)
{
    struct sockaddr_storage ss, to;
    socklen_t sl, tl;
    char name[ADDR_TEXT_MAX + 24];
    ssize_t n = sk_recvfrom(ls->fd, rl->to_out.data, NET_DGRAM_MAX, &ss, &sl, &to, &tl);

    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? -1
               : report_fail(r, 0, verdict_of_errno(errno), "receive on relay udp %s: %s",
                             ls->addr, strerror(errno));
    if (ls->udp_wildcard && tl > 0)
        udp_own_socket(ls, &to, tl);
    if (sk_connect(ls->fd, (struct sockaddr *)&ss, sl) < 0)
        return report_fail(r, 0, verdict_of_local_errno(errno), "connect to the udp peer: %s",
                           strerror(errno));
    r->t_connected = now_ns();
    report_first_byte(r);
    r->bytes_in += (uint64_t)n;
    /* Our end is now the address the replies leave from, not the wildcard. */
    sk_local(ls->fd, r->local, sizeof r->local);
    addr_format((struct sockaddr *)&ss, sl, r->peer, sizeof r->peer);
    peer_name(name, sizeof name, &ss, "udp");
    if (o->c.t.verbose)
        log_msg("datagram from %s", name);
    ring_produce(&rl->to_out, (size_t)n);
    rl->udp_until_quiet = 1;
    return relay_run(rl, ls->fd, name, r);
}

/* Peers, one after another (-k), or the first only. */
static int serve_peers(struct connect_opts *o, struct listening *ls, struct relay *rl,
                       struct report *r)
{
    for (;;) {
        int v = wait_peer(o, ls, r);

        if (v < 0)
            return V_OK;            /* SIGINT or SIGTERM: a normal end */
        if (v != V_OK)
            return report_end(r, o->c.json, v);
        v = o->c.t.udp ? serve_udp_peer(o, ls, rl, r) : serve_stream_peer(o, ls, rl, r);
        if (v < 0)
            continue;               /* nobody after all */
        report_end(r, o->c.json, v);
        if (!o->keep || v == V_LOCAL)
            return v;               /* one peer; or stdio is gone, for every next one */
        if (sk_stop_requested())
            return V_OK;
        report_start(r, &o->c.t);   /* the next peer's run */
        snprintf(r->local, sizeof r->local, "%s", ls->addr);
    }
}

int listen_run(struct connect_opts *o)
{
    struct listening ls = { .fd = -1 };
    struct relay rl;
    struct report r;
    int v;

    sk_catch_stop();
    report_start(&r, &o->c.t);
    v = open_listener(&o->c.t, &ls, &r);
    if (v != V_OK)
        return report_end(&r, o->c.json, v);
    relay_init(&rl, o->c.t.udp, o->c.wait_given ? o->c.wait_ms : UDP_WAIT_DEFAULT_MS);
    v = serve_peers(o, &ls, &rl, &r);
    relay_free(&rl);
    close_listener(&ls);
    return v;
}
