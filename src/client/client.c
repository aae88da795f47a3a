/* client.c — resolving and connecting netcat-style (see client.h): each address the
 * name gives is tried in turn; only the last failure is the command's error. Every
 * socket call goes through sock.c, so --trace tells each one. */
#include "client/client.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "client/sock.h"
#include "lib/log.h"
#include "lib/net.h"
#include "lib/trace.h"
#include "lib/util.h"

static void describe(struct peer *p, const struct sockaddr *sa, socklen_t len, int udp)
{
    char host[ADDR_TEXT_MAX];

    addr_format(sa, len, p->addr, sizeof p->addr);
    if (sa->sa_family == AF_UNIX)
        snprintf(p->name, sizeof p->name, "%s", p->addr);
    else
        snprintf(p->name, sizeof p->name, "%s port %d (%s)", addr_host(sa, host, sizeof host),
                 addr_port(sa), udp ? "udp" : "tcp");
}

void client_source_name(const struct target *t, char *buf, size_t len)
{
    char host[ADDR_TEXT_MAX];

    if (t->source.ss_family != AF_UNSPEC && t->source_port)
        snprintf(buf, len, "source address %s port %u",
                 addr_host((const struct sockaddr *)&t->source, host, sizeof host), t->source_port);
    else if (t->source.ss_family != AF_UNSPEC)
        snprintf(buf, len, "source address %s",
                 addr_host((const struct sockaddr *)&t->source, host, sizeof host));
    else
        snprintf(buf, len, "source port %u", t->source_port);
}

int client_bind_source(int fd, const struct target *t, int family)
{
    struct sockaddr_storage ss = { 0 };
    socklen_t len = family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    int one = 1;

    if (t->source.ss_family == AF_UNSPEC && t->source_port == 0)
        return 0;
    if (t->source.ss_family != AF_UNSPEC)
        ss = t->source;
    ss.ss_family = (sa_family_t)family;
    if (family == AF_INET6)
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)t->source_port);
    else
        ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)t->source_port);
    /* A port of ours still in TIME_WAIT from the last run may be bound again; one
     * that a live socket holds may not (EADDRINUSE), as it should. */
    if (t->source_port && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
        return -1;
    return sk_bind(fd, (struct sockaddr *)&ss, len);
}

/* A unix listener whose backlog is full makes a non-blocking connect fail at once
 * (EAGAIN); a blocking one waits for room, for at most SO_SNDTIMEO. */
static int unix_connect(int fd, const struct sockaddr *sa, socklen_t len, long timeout_ms)
{
    struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
    int rc;

    if (net_set_nonblock(fd, 0) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0)
        return -1;
    do
        rc = sk_connect(fd, sa, len);
    while (rc < 0 && errno == EINTR);
    if (rc < 0 && errno == EAGAIN)
        errno = ETIMEDOUT;      /* the backlog stayed full for the whole wait */
    if (rc == 0 && net_set_nonblock(fd, 1) < 0)
        return -1;
    return rc;
}

/* Connect fd to sa within timeout_ms. Returns 0, 1 if connected but reset since
 * (sk_connect_wait), or -1 with errno. */
static int connect_to(int fd, const struct sockaddr *sa, socklen_t len, long timeout_ms)
{
    if (sa->sa_family == AF_UNIX)
        return unix_connect(fd, sa, len, timeout_ms);
    if (sk_connect(fd, sa, len) == 0)
        return 0;
    if (errno != EINPROGRESS && errno != EINTR)
        return -1;
    return sk_connect_wait(fd, timeout_ms);
}

/* A socket bound and connected to one address. Returns the descriptor, or -1: with
 * errno if the connect failed, with the report's verdict set if the socket or its
 * source did (those are local, and the message names the source). */
static int try_connect(const struct target *t, const struct sockaddr *sa, socklen_t len,
                       int socktype, struct peer *p, struct report *r)
{
    int fd = sk_socket(sa->sa_family, socktype), err, rc;
    char src[ADDR_TEXT_MAX + 32];

    if (fd < 0) {
        report_fail(r, t->quiet, verdict_of_local_errno(errno), "socket: %s", strerror(errno));
        return -1;
    }
    if (client_bind_source(fd, t, sa->sa_family) < 0) {
        err = errno;
        client_source_name(t, src, sizeof src);
        sk_close(fd);
        report_fail(r, t->quiet, V_LOCAL, "cannot use %s: %s", src, strerror(err));
        return -1;
    }
    r->t_connecting = now_ns();
    rc = connect_to(fd, sa, len, t->timeout_ms);
    if (rc >= 0) {
        p->reset_pending = rc == 1;
        r->t_connected = now_ns();
        sk_local(fd, p->local, sizeof p->local);
        snprintf(r->local, sizeof r->local, "%s", p->local);
        if (!sk_connected_to_itself(fd))
            return fd;
        sk_close(fd);
        r->t_connected = 0;     /* as for any refused connect: --json's nulls */
        p->local[0] = r->local[0] = '\0';
        report_fail(r, t->quiet, V_REFUSED, "connect to %s failed: " SK_SELF_CONNECTED,
                    p->name);
        return -1;
    }
    err = errno;
    sk_close(fd);
    errno = err;
    return -1;
}

static int connect_unix(const struct target *t, struct peer *p, struct report *r)
{
    struct sockaddr_un sun;
    int abstract = t->unix_path[0] == '@';
    socklen_t len = net_unix_addr(t->unix_path + abstract, abstract, &sun);

    if (len == (socklen_t)-1)
        return report_fail(r, t->quiet, V_LOCAL, "unix:%s: %s", t->unix_path, strerror(errno));
    describe(p, (struct sockaddr *)&sun, len, 0);
    snprintf(r->peer, sizeof r->peer, "%s", p->addr);
    p->fd = try_connect(t, (struct sockaddr *)&sun, len, SOCK_STREAM, p, r);
    if (p->fd >= 0)
        return V_OK;
    if (r->verdict != V_OK)
        return r->verdict;      /* the socket or its source: told already */
    return report_fail(r, t->quiet, verdict_of_errno(errno), "connect to %s failed: %s",
                       p->name, strerror(errno));
}

/* "getaddrinfo(localhost, 7007) = [::1]:7007 127.0.0.1:7007", or the EAI_ text. */
static void trace_resolved(const char *host, const char *port, int rc, const struct addrinfo *res)
{
    char list[400], a[TRACE_ADDR_MAX];
    size_t off = 0;

    list[0] = '\0';
    for (; res && off + 2 < sizeof list; res = res->ai_next) {
        int n = snprintf(list + off, sizeof list - off, "%s%s", off ? " " : "",
                         trace_addr(res->ai_addr, res->ai_addrlen, a));

        off = n > 0 && (size_t)n < sizeof list - off ? off + (size_t)n : sizeof list - 1;
    }
    trace_note("getaddrinfo(%s, %s) = %s", host ? host : "NULL", port,
               rc == 0 ? list : rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
}

const char *client_resolve_why(const struct target *t, int rc, char *buf, size_t len)
{
    int family = t->source.ss_family != AF_UNSPEC ? t->source.ss_family : t->family;
    const char *fam = family == AF_INET6 ? "IPv6" : "IPv4";

    if (rc == EAI_SYSTEM)
        return strerror(errno);
    if (rc != EAI_ADDRFAMILY || family == AF_UNSPEC)
        return gai_strerror(rc);
    /* The address is of the other family: say which option asked for this one. */
    if (t->source.ss_family != AF_UNSPEC)
        snprintf(buf, len, "not an %s address, as --source %s needs", fam, t->source_text);
    else
        snprintf(buf, len, "not an %s address, as %s asks", fam, family == AF_INET6 ? "-6" : "-4");
    return buf;
}

int client_resolve(const struct target *t, const char *port, int passive,
                   struct addrinfo **res, struct report *r)
{
    char why[160];
    struct addrinfo hints = { 0 };
    int rc;

    hints.ai_family = t->source.ss_family != AF_UNSPEC ? t->source.ss_family : t->family;
    hints.ai_socktype = t->udp ? SOCK_DGRAM : SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
    rc = getaddrinfo(t->host, port, &hints, res);
    if (TRACE_ON)
        trace_resolved(t->host, port, rc, rc == 0 ? *res : NULL);
    if (rc == 0)
        return V_OK;
    return report_fail(r, t->quiet, verdict_of_gai(rc, errno), "%s: %s", t->host ? t->host : "*",
                       client_resolve_why(t, rc, why, sizeof why));
}

/* --tls: the handshake on the connection just made; a failure closes it. */
static int start_tls(const struct target *t, struct peer *p, struct report *r)
{
    int v;

    if (t->tls == NULL || !t->tls->on)
        return V_OK;
    v = client_tls_handshake(t->tls, p, t->host, t->timeout_ms, t->verbose, t->quiet, r);
    if (v != V_OK) {
        tls_conn_free(p->tls);
        p->tls = NULL;
        sk_close(p->fd);
        p->fd = -1;
    }
    return v;
}

static int connect_plain(const struct target *t, struct peer *p, struct report *r)
{
    struct addrinfo *res, *ai;
    int v, err = 0;

    if (t->unix_path)
        return connect_unix(t, p, r);
    res = t->resolved;
    if (res == NULL && (v = client_resolve(t, t->port, 0, &res, r)) != V_OK)
        return v;
    for (ai = res; ai; ai = ai->ai_next) {
        describe(p, ai->ai_addr, ai->ai_addrlen, t->udp);
        snprintf(r->peer, sizeof r->peer, "%s", p->addr);
        p->fd = try_connect(t, ai->ai_addr, ai->ai_addrlen, ai->ai_socktype, p, r);
        if (p->fd >= 0 || r->verdict != V_OK)
            break;      /* connected, or a local failure no other address would mend */
        err = errno;
        /* Only the last failure is the command's error; -v tells each one. */
        if (t->verbose && ai->ai_next && !t->quiet)
            log_msg("connect to %s failed: %s", p->name, strerror(err));
    }
    if (res != t->resolved)
        freeaddrinfo(res);
    if (p->fd >= 0)
        return V_OK;
    if (r->verdict != V_OK)
        return r->verdict;
    return report_fail(r, t->quiet, verdict_of_errno(err), "connect to %s failed: %s", p->name,
                       strerror(err));
}

int client_connect(const struct target *t, struct peer *p, struct report *r)
{
    int v;

    p->fd = -1;
    p->local[0] = '\0';
    p->tls = NULL;
    p->tls_failed = 0;
    p->reset_pending = 0;
    v = connect_plain(t, p, r);
    return v == V_OK ? start_tls(t, p, r) : v;
}

int client_write_stdout(const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = write(STDOUT_FILENO, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}
