/* scan.c — `kodama connect -z HOST PORT[-PORT]`: which ports accept? Each port gets
 * a non-blocking connect (udp: one empty datagram on a connected socket), up to
 * SCAN_PARALLEL at once, each bounded by -w (2 s by default, not the kernel's two
 * minutes for a port whose SYNs are dropped). One line per port, in port order:
 *
 *   127.0.0.1 port 7001 (tcp): open
 *   127.0.0.1 port 7002 (tcp): refused
 *   127.0.0.1 port 7003 (udp): open|filtered
 *
 * udp as nmap reads it: an answer is "open", ICMP port unreachable "refused", and
 * silence "open|filtered" (a firewall that drops, or a service that says nothing),
 * which counts as open for the exit status. */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "client/connect.h"
#include "client/sock.h"
#include "lib/cli.h"
#include "lib/log.h"
#include "lib/util.h"
#include "proto/spec.h"

#define SCAN_PARALLEL 256
#define SCAN_WAIT_DEFAULT_MS 2000

struct probe {
    int fd;                 /* -1 once done */
    int done;
    const char *state;      /* "open", "refused", "timeout", "open|filtered", ... */
    int64_t deadline;
    char port[8];
    struct report r;
};

struct scan {
    struct connect_opts *o;
    struct sockaddr_storage addr;   /* the first address HOST resolves to */
    socklen_t addrlen;
    char host[ADDR_TEXT_MAX];       /* as messages show it */
    struct probe *slot;             /* a window of nslots ports, by port % nslots */
    size_t nslots;
    unsigned next_start, next_print;
    int first_failure;              /* the verdict of the lowest port not open */
};

int scan_take_ports(int argc, char **argv, struct connect_opts *o)
{
    char err[96];
    uint16_t first, last;
    const char *ports;

    if (optind >= argc)
        return usage_error("connect", "missing HOST");
    if (optind + 1 >= argc)
        return usage_error("connect", "missing PORT");
    o->c.t.host = argv[optind++];
    ports = argv[optind++];
    if (spec_port_range(ports, strlen(ports), 65535, &first, &last, err, sizeof err) < 0)
        return usage_error("connect", "%s", err);
    if (first == 0)
        return usage_error("connect", "invalid port '%s'", ports);
    o->c.t.port = ports;
    o->port_first = first;
    o->port_last = last;
    return EXIT_OK;
}

static struct probe *slot_of(struct scan *sc, unsigned port)
{
    return &sc->slot[port % sc->nslots];
}

static void set_port(struct scan *sc, unsigned port)
{
    struct sockaddr *sa = (struct sockaddr *)&sc->addr;

    if (sa->sa_family == AF_INET6)
        ((struct sockaddr_in6 *)sa)->sin6_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in *)sa)->sin_port = htons((uint16_t)port);
}

/* The port is decided: its state and verdict; the socket is closed. */
static void finish(struct probe *p, enum verdict v, const char *state, int err)
{
    p->r.verdict = v;
    p->state = state;
    if (err && v != V_OK)
        snprintf(p->r.error, sizeof p->r.error, "%s", strerror(err));
    if (p->fd >= 0) {
        sk_local(p->fd, p->r.local, sizeof p->r.local);
        sk_close(p->fd);
    }
    p->fd = -1;
    p->done = 1;
    p->r.t_end = now_ns();
}

/* What a connect's error means for this port. */
static void finish_errno(struct scan *sc, struct probe *p, int err)
{
    enum verdict v = verdict_of_errno(err);

    if (sc->o->c.t.udp && v == V_TIMEOUT)
        finish(p, V_OK, "open|filtered", 0);
    else
        finish(p, v, v == V_REFUSED ? "refused" : verdict_name(v), err);
}

static void start_probe(struct scan *sc, unsigned port)
{
    struct probe *p = slot_of(sc, port);
    const struct target *t = &sc->o->c.t;
    struct sockaddr *sa = (struct sockaddr *)&sc->addr;

    report_start(&p->r, t);
    snprintf(p->port, sizeof p->port, "%u", port);
    p->r.port = p->port;
    p->done = 0;
    p->deadline = now_ms() + sc->o->c.wait_ms;
    set_port(sc, port);
    addr_format(sa, sc->addrlen, p->r.peer, sizeof p->r.peer);
    p->fd = sk_socket(sa->sa_family, t->udp ? SOCK_DGRAM : SOCK_STREAM);
    if (p->fd < 0 || client_bind_source(p->fd, t, sa->sa_family) < 0) {
        finish(p, V_LOCAL, "local", errno);
        return;
    }
    if (sk_connect(p->fd, sa, sc->addrlen) == 0) {
        p->r.t_connected = now_ns();
        if (!t->udp)
            finish(p, V_OK, "open", 0);
        else if (sk_send(p->fd, "", 0) < 0)
            finish_errno(sc, p, errno);
        return;
    }
    if (errno != EINPROGRESS)
        finish_errno(sc, p, errno);
}

/* A socket poll woke: the connect's outcome (tcp) or the datagram's (udp). */
static void probe_event(struct scan *sc, struct probe *p)
{
    char buf[512];
    int err = 0;
    socklen_t len = sizeof err;

    if (!sc->o->c.t.udp) {
        if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err == 0) {
            p->r.t_connected = now_ns();
            finish(p, V_OK, "open", 0);
        } else {
            finish_errno(sc, p, err);
        }
        return;
    }
    if (sk_recv(p->fd, buf, sizeof buf) >= 0) {
        report_first_byte(&p->r);
        finish(p, V_OK, "open", 0);
    } else if (errno != EAGAIN && errno != EINTR) {
        finish_errno(sc, p, errno);
    }
}

/* Print the ports decided, in order, as far as the first one still pending. */
static int print_done(struct scan *sc)
{
    while (sc->next_print < sc->next_start && slot_of(sc, sc->next_print)->done) {
        struct probe *p = slot_of(sc, sc->next_print);

        if (p->r.verdict != V_OK && sc->first_failure == V_OK)
            sc->first_failure = p->r.verdict;
        if (sc->o->c.json) {
            struct json_obj j;

            report_json(&p->r, &j);
            json_str(&j, "state", p->state);
            fputs(json_end(&j), stdout);
        } else {
            printf("%s port %s (%s): %s\n", sc->host, p->port, p->r.proto, p->state);
        }
        if (fflush(stdout) == EOF)
            return report_fail(&p->r, 0, V_LOCAL, "cannot write to stdout: %s", strerror(errno));
        sc->next_print++;
    }
    return V_OK;
}

/* One poll over every pending port; timeouts decided. */
static int poll_round(struct scan *sc)
{
    struct pollfd pfd[SCAN_PARALLEL];
    unsigned port[SCAN_PARALLEL];
    int64_t now = now_ms(), soonest = -1;
    nfds_t n = 0;
    int rc;

    for (unsigned q = sc->next_print; q < sc->next_start; q++) {
        struct probe *p = slot_of(sc, q);

        if (p->done)
            continue;
        if (now >= p->deadline) {
            finish(p, sc->o->c.t.udp ? V_OK : V_TIMEOUT,
                   sc->o->c.t.udp ? "open|filtered" : "timeout", 0);
            continue;
        }
        pfd[n] = (struct pollfd){ .fd = p->fd, .events = sc->o->c.t.udp ? POLLIN : POLLOUT };
        port[n++] = q;
        if (soonest < 0 || p->deadline < soonest)
            soonest = p->deadline;
    }
    if (n == 0)
        return V_OK;
    rc = sk_poll(pfd, n, (int)(soonest - now));
    if (rc < 0 && errno != EINTR)
        return report_fail(&slot_of(sc, port[0])->r, 0, V_LOCAL, "poll: %s", strerror(errno));
    for (nfds_t i = 0; rc > 0 && i < n; i++)
        if (pfd[i].revents)
            probe_event(sc, slot_of(sc, port[i]));
    return V_OK;
}

/* As many sockets at once as the descriptor limit leaves room for. */
static size_t parallel(void)
{
    struct rlimit rl;
    size_t n = SCAN_PARALLEL;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur < n + 16)
        n = rl.rlim_cur > 32 ? (size_t)rl.rlim_cur - 16 : 16;
    return n;
}

static int resolve_first(struct scan *sc)
{
    struct addrinfo *res;
    struct report r;
    int v;

    report_start(&r, &sc->o->c.t);
    v = client_resolve(&sc->o->c.t, "0", 0, &res, &r);
    if (v != V_OK) {
        r.t_end = now_ns();
        if (sc->o->c.json)
            report_print(&r, stdout);   /* the scan's objects go to stdout */
        return v;
    }
    memcpy(&sc->addr, res->ai_addr, res->ai_addrlen);
    sc->addrlen = res->ai_addrlen;
    addr_host(res->ai_addr, sc->host, sizeof sc->host);
    freeaddrinfo(res);
    return V_OK;
}

int scan_run(struct connect_opts *o)
{
    struct scan sc = { .o = o, .next_start = o->port_first, .next_print = o->port_first };
    int v;

    if (!o->c.wait_given)
        o->c.wait_ms = SCAN_WAIT_DEFAULT_MS;
    v = resolve_first(&sc);
    if (v != V_OK)
        return v;
    sc.nslots = parallel();
    sc.slot = xcalloc(sc.nslots, sizeof *sc.slot);
    while (v == V_OK && sc.next_print <= o->port_last) {
        while (sc.next_start <= o->port_last && sc.next_start - sc.next_print < sc.nslots)
            start_probe(&sc, sc.next_start++);
        v = print_done(&sc);
        if (v == V_OK && sc.next_print <= o->port_last)
            v = poll_round(&sc);
    }
    for (unsigned q = sc.next_print; q < sc.next_start; q++)
        if (slot_of(&sc, q)->fd >= 0)
            sk_close(slot_of(&sc, q)->fd);
    free(sc.slot);
    return v != V_OK ? v : sc.first_failure;
}
