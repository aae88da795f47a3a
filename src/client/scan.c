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
 * which counts as open for the exit status.
 *
 * A free socket slot takes the next port at once, whatever is still pending below
 * it, so a few dropped ports never hold up the rest; each port's outcome is kept in
 * a small record (the range may be all 65535) until the lines before it are out. */
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
#include "lib/net.h"
#include "lib/util.h"
#include "proto/spec.h"

#define SCAN_PARALLEL 256
#define SCAN_WAIT_DEFAULT_MS 2000
#define NS_PER_MS 1000000LL

/* What a port came to. */
struct outcome {
    int64_t t_start, t_connected, t_first_byte, t_end;
    const char *state;              /* "open", "refused", "timeout", "open|filtered", ... */
    int err;                        /* the errno behind a failure, ERR_SELF, or 0 */
    uint16_t local_port;            /* our end's port (its address is the scan's) */
    uint8_t verdict;
    uint8_t done;
};

/* A socket slot: the port it is trying, or none. */
struct active {
    int fd;                         /* -1: free */
    unsigned port;
    int64_t deadline;               /* ns */
};

struct scan {
    struct connect_opts *o;
    int udp;
    struct sockaddr_storage addr;   /* the first address HOST resolves to */
    socklen_t addrlen;
    char host[ADDR_TEXT_MAX];       /* as the lines show it */
    char local_host[ADDR_TEXT_MAX]; /* our end's address, the same for every port */
    struct outcome *out;            /* per port of the range */
    struct active *act;
    size_t nact;
    unsigned next_start, next_print;
    int first_failure;              /* the verdict of the lowest port not open */
    char local_why[ADDR_TEXT_MAX + 96]; /* why a probe could not start (said once) */
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

static struct outcome *outcome_of(struct scan *sc, unsigned port)
{
    return &sc->out[port - sc->o->port_first];
}

static void set_port(struct scan *sc, unsigned port)
{
    struct sockaddr *sa = (struct sockaddr *)&sc->addr;

    if (sa->sa_family == AF_INET6)
        ((struct sockaddr_in6 *)sa)->sin6_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in *)sa)->sin_port = htons((uint16_t)port);
}

/* Our end of a probe: its port, and the address once for all. */
static void note_local(struct scan *sc, int fd, struct outcome *oc)
{
    struct sockaddr_storage ss = { 0 };
    socklen_t len = sizeof ss;

    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0 || addr_port((struct sockaddr *)&ss) <= 0)
        return;
    oc->local_port = (uint16_t)addr_port((struct sockaddr *)&ss);
    if (sc->local_host[0] == '\0')
        addr_format((struct sockaddr *)&ss, len, sc->local_host, sizeof sc->local_host);
}

/* The port is decided: its state and verdict; the socket is closed, its slot free. */
static void finish(struct scan *sc, struct active *a, struct outcome *oc, enum verdict v,
                   const char *state, int err)
{
    oc->verdict = (uint8_t)v;
    oc->state = state;
    oc->err = v == V_OK ? 0 : err;
    if (a->fd >= 0) {
        if (v == V_OK)      /* a failed connect has no local end (--json: null) */
            note_local(sc, a->fd, oc);
        sk_close(a->fd);
    }
    a->fd = -1;
    oc->done = 1;
    oc->t_end = now_ns();
}

/* A failure that is no errno: the socket connected to itself. */
#define ERR_SELF (-1)

static const char *err_text(int err)
{
    return err == ERR_SELF ? SK_SELF_CONNECTED : strerror(err);
}

/* It answered: open, unless the socket is connected to itself (a source port equal
 * to this one, sk_connected_to_itself), where nothing listens. */
static void finish_open(struct scan *sc, struct active *a, struct outcome *oc)
{
    if (sk_connected_to_itself(a->fd)) {
        oc->t_connected = 0;    /* as for any refused port: --json's connect_ms null */
        finish(sc, a, oc, V_REFUSED, "refused", ERR_SELF);
    } else {
        finish(sc, a, oc, V_OK, "open", 0);
    }
}

/* What an error means for this port. */
static void finish_errno(struct scan *sc, struct active *a, struct outcome *oc, int err)
{
    enum verdict v = verdict_of_errno(err);

    if (sc->udp && v == V_TIMEOUT)
        finish(sc, a, oc, V_OK, "open|filtered", 0);
    else
        finish(sc, a, oc, v, v == V_REFUSED ? "refused" : verdict_name(v), err);
}

/* A probe that could not start: our failure, the same for every port, so its
 * reason goes to stderr once (as send says it) and into each --json error. */
static void local_failure(struct scan *sc, struct active *a, struct outcome *oc, int no_socket)
{
    int err = errno;

    if (sc->local_why[0] == '\0') {
        char src[ADDR_TEXT_MAX + 32];

        if (no_socket) {
            snprintf(sc->local_why, sizeof sc->local_why, "cannot open a socket: %s",
                     strerror(err));
        } else {
            client_source_name(&sc->o->c.t, src, sizeof src);
            snprintf(sc->local_why, sizeof sc->local_why, "cannot use %s: %s", src,
                     strerror(err));
        }
        log_msg("%s", sc->local_why);
    }
    finish(sc, a, oc, V_LOCAL, "local", err);
}

static void start_probe(struct scan *sc, struct active *a, unsigned port)
{
    struct outcome *oc = outcome_of(sc, port);
    struct sockaddr *sa = (struct sockaddr *)&sc->addr;

    oc->t_start = now_ns();
    a->port = port;
    a->deadline = oc->t_start + (int64_t)sc->o->c.wait_ms * NS_PER_MS;
    set_port(sc, port);
    a->fd = sk_socket(sa->sa_family, sc->udp ? SOCK_DGRAM : SOCK_STREAM);
    if (a->fd < 0 || client_bind_source(a->fd, &sc->o->c.t, sa->sa_family) < 0) {
        local_failure(sc, a, oc, a->fd < 0);
        return;
    }
    if (sk_connect(a->fd, sa, sc->addrlen) == 0) {
        oc->t_connected = now_ns();
        if (!sc->udp || sk_connected_to_itself(a->fd))
            finish_open(sc, a, oc);
        else if (sk_send(a->fd, "", 0) < 0)
            finish_errno(sc, a, oc, errno);
        return;
    }
    if (errno != EINPROGRESS)
        finish_errno(sc, a, oc, errno);
}

/* A socket's poll woke: the connect's outcome (tcp) or the datagram's (udp). */
static void probe_event(struct scan *sc, struct active *a)
{
    struct outcome *oc = outcome_of(sc, a->port);
    char buf[512];
    int err = 0;
    socklen_t len = sizeof err;

    if (!sc->udp) {
        if (getsockopt(a->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err == 0 || net_reset_after_handshake(err)) {  /* it accepted: open */
            oc->t_connected = now_ns();
            finish_open(sc, a, oc);
        } else {
            finish_errno(sc, a, oc, err);
        }
        return;
    }
    if (sk_recv(a->fd, buf, sizeof buf) >= 0) {
        oc->t_first_byte = now_ns();
        finish(sc, a, oc, V_OK, "open", 0);
    } else if (errno != EAGAIN && errno != EINTR) {
        finish_errno(sc, a, oc, errno);
    }
}

/* One port's --json object: the run report's keys, and its state. */
static void print_json(struct scan *sc, unsigned port, const struct outcome *oc)
{
    struct json_obj j;
    struct report r;
    char ptext[12];

    report_start(&r, &sc->o->c.t);
    snprintf(ptext, sizeof ptext, "%u", port);
    r.port = ptext;
    r.verdict = oc->verdict;
    r.t_start = oc->t_start;
    r.t_connected = oc->t_connected;
    r.t_first_byte = oc->t_first_byte;
    r.t_end = oc->t_end;
    if (oc->local_port) {
        /* local_host is "ADDR:PORT" of the first probe: keep its address part. */
        size_t n = strlen(sc->local_host);

        while (n > 0 && sc->local_host[n - 1] != ':')
            n--;
        snprintf(r.local, sizeof r.local, "%.*s%u", (int)n, sc->local_host, oc->local_port);
    }
    set_port(sc, port);
    addr_format((struct sockaddr *)&sc->addr, sc->addrlen, r.peer, sizeof r.peer);
    if (oc->verdict == V_LOCAL && sc->local_why[0])
        snprintf(r.error, sizeof r.error, "%s", sc->local_why);
    else if (oc->err)   /* as send's line says it */
        snprintf(r.error, sizeof r.error, "connect to %s port %u (%s) failed: %s", sc->host,
                 port, sc->udp ? "udp" : "tcp", err_text(oc->err));
    report_json(&r, &j);
    json_str(&j, "state", oc->state);
    fputs(json_end(&j), stdout);
}

/* Print the ports decided, in order, as far as the first one still pending. */
static int print_done(struct scan *sc)
{
    for (; sc->next_print < sc->next_start; sc->next_print++) {
        struct outcome *oc = outcome_of(sc, sc->next_print);

        if (!oc->done)
            break;
        if (oc->verdict != V_OK && sc->first_failure == V_OK)
            sc->first_failure = oc->verdict;
        if (sc->o->c.json)
            print_json(sc, sc->next_print, oc);
        else
            printf("%s port %u (%s): %s\n", sc->host, sc->next_print, sc->udp ? "udp" : "tcp",
                   oc->state);
        if (fflush(stdout) == EOF) {
            log_msg("cannot write to stdout: %s", strerror(errno));
            return V_LOCAL;
        }
    }
    return V_OK;
}

/* Give each free slot the next port. */
static void start_more(struct scan *sc)
{
    for (size_t i = 0; i < sc->nact && sc->next_start <= sc->o->port_last; i++)
        if (sc->act[i].fd < 0)
            start_probe(sc, &sc->act[i], sc->next_start++);
}

/* One poll over every port under way; those past -w decided. */
static int poll_round(struct scan *sc)
{
    struct pollfd pfd[SCAN_PARALLEL];
    size_t idx[SCAN_PARALLEL];
    int64_t now = now_ns(), soonest = -1;
    nfds_t n = 0;
    int rc;

    for (size_t i = 0; i < sc->nact; i++) {
        struct active *a = &sc->act[i];

        if (a->fd < 0)
            continue;
        if (now >= a->deadline) {
            finish(sc, a, outcome_of(sc, a->port), sc->udp ? V_OK : V_TIMEOUT,
                   sc->udp ? "open|filtered" : "timeout", ETIMEDOUT);
            continue;
        }
        pfd[n] = (struct pollfd){ .fd = a->fd, .events = sc->udp ? POLLIN : POLLOUT };
        idx[n++] = i;
        if (soonest < 0 || a->deadline < soonest)
            soonest = a->deadline;
    }
    if (n == 0)
        return V_OK;
    rc = sk_poll(pfd, n, (int)((soonest - now + NS_PER_MS - 1) / NS_PER_MS));
    if (rc < 0 && errno != EINTR) {
        log_msg("poll: %s", strerror(errno));
        return V_LOCAL;
    }
    for (nfds_t i = 0; rc > 0 && i < n; i++)
        if (pfd[i].revents)
            probe_event(sc, &sc->act[idx[i]]);
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

/* The name did not resolve: with --json, still one object per port of the range
 * (on stdout, as the scan's objects go), each with the lookup's error. */
static void print_unresolved(const struct scan *sc, struct report *r, enum verdict v)
{
    char ptext[12];

    for (unsigned port = sc->o->port_first; port <= sc->o->port_last; port++) {
        struct json_obj j;

        snprintf(ptext, sizeof ptext, "%u", port);
        r->port = ptext;
        report_json(r, &j);
        json_str(&j, "state", verdict_name(v));
        fputs(json_end(&j), stdout);
    }
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
            print_unresolved(sc, &r, v);
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
    struct scan sc = { .o = o, .udp = o->c.t.udp, .next_start = o->port_first,
                       .next_print = o->port_first };
    int v;

    if (!o->c.wait_given)
        o->c.wait_ms = SCAN_WAIT_DEFAULT_MS;
    v = resolve_first(&sc);
    if (v != V_OK)
        return v;
    sc.out = xcalloc(o->port_last - o->port_first + 1, sizeof *sc.out);
    sc.nact = parallel();
    sc.act = xcalloc(sc.nact, sizeof *sc.act);
    for (size_t i = 0; i < sc.nact; i++)
        sc.act[i].fd = -1;
    while (v == V_OK && sc.next_print <= o->port_last) {
        start_more(&sc);
        v = print_done(&sc);
        if (v == V_OK && sc.next_print <= o->port_last)
            v = poll_round(&sc);
    }
    for (size_t i = 0; i < sc.nact; i++)
        if (sc.act[i].fd >= 0)
            sk_close(sc.act[i].fd);
    free(sc.act);
    free(sc.out);
    return v != V_OK ? v : sc.first_failure;
}
