/* listen.c — binding SPECs (see listen.h), in the getaddrinfo-loop style of netcat. */
#include "serve/listen.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/net.h"
#include "lib/util.h"
#include "serve/listen_opts.h"

struct binder {
    struct listener *ls;
    size_t n, cap;
    int family;
    int reuseport;
    char *err;
    size_t errlen;
};

static struct listener *binder_add(struct binder *b)
{
    struct listener *l;

    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 8;
        b->ls = realloc(b->ls, b->cap * sizeof *b->ls);
        if (b->ls == NULL) {
            fprintf(stderr, "kodama: out of memory\n");
            exit(1);
        }
    }
    l = &b->ls[b->n++];
    memset(l, 0, sizeof *l);
    return l;
}

static int cannot_listen(struct binder *b, const struct service *svc, const char *kind,
                         const char *where, const char *why)
{
    int saved = errno;  /* bind_any decides on a fallback by it */

    snprintf(b->err, b->errlen, "cannot listen on %s %s %s: %s", svc->name, kind, where, why);
    errno = saved;
    return -1;
}

static void set_port(struct sockaddr *sa, uint16_t port)
{
    if (sa->sa_family == AF_INET)
        ((struct sockaddr_in *)sa)->sin_port = htons(port);
    else if (sa->sa_family == AF_INET6)
        ((struct sockaddr_in6 *)sa)->sin6_port = htons(port);
}

/* What fd is: tcp, udp or unix (by its domain, type and protocol), its family and
 * its address as text (*ss gets the address). Sets l->w.fd. Returns 0, or -1 with
 * the reason in why. */
static int socket_describe(int fd, struct listener *l, struct sockaddr_storage *ss,
                           char *why, size_t whylen)
{
    int domain, type, proto;
    socklen_t optlen = sizeof domain, len = sizeof *ss;

    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &optlen) < 0 ||
        (optlen = sizeof type, getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &optlen)) < 0 ||
        (optlen = sizeof proto, getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &optlen)) < 0) {
        snprintf(why, whylen, errno == ENOTSOCK ? "not a socket" : "getsockopt: %s",
                 strerror(errno));
        return -1;
    }
    if (domain == AF_UNIX && type == SOCK_STREAM)
        l->kind = LISTEN_UNIX;
    else if ((domain == AF_INET || domain == AF_INET6) && type == SOCK_STREAM &&
             proto == IPPROTO_TCP)
        l->kind = LISTEN_TCP;
    else if ((domain == AF_INET || domain == AF_INET6) && type == SOCK_DGRAM &&
             proto == IPPROTO_UDP)
        l->kind = LISTEN_UDP;
    else {
        snprintf(why, whylen, "a socket of family %d, type %d, protocol %d: not tcp, udp "
                 "or a unix stream socket", domain, type, proto);
        return -1;
    }
    if (getsockname(fd, (struct sockaddr *)ss, &len) < 0) {
        snprintf(why, whylen, "getsockname: %s", strerror(errno));
        return -1;
    }
    watch_init(&l->w, fd, NULL);
    l->family = domain;
    addr_format((struct sockaddr *)ss, len, l->addr, sizeof l->addr);
    /* A wildcard udp socket answers from the address each datagram came to. */
    l->pktinfo = l->kind == LISTEN_UDP && addr_is_wildcard((struct sockaddr *)ss);
    return 0;
}

/* Make a described socket behave as our own listeners do, whoever made it. */
static int listener_prepare(struct listener *l, char *why, size_t whylen)
{
    int flags = fcntl(l->w.fd, F_GETFD);

    if (flags < 0 || fcntl(l->w.fd, F_SETFD, flags | FD_CLOEXEC) < 0) {
        snprintf(why, whylen, "fcntl FD_CLOEXEC: %s", strerror(errno));
        return -1;
    }
    if (net_set_nonblock(l->w.fd, 1) < 0) {
        snprintf(why, whylen, "fcntl O_NONBLOCK: %s", strerror(errno));
        return -1;
    }
    if (l->pktinfo)
        return net_udp_pktinfo(l->w.fd, l->family, why, whylen);
    return 0;
}

/* Bind one tcp or udp socket and record it. *shared_port carries a SPEC's port 0
 * choice to its next sockets; if that port is taken there, a fresh one is fine. */
static int bind_inet(struct binder *b, const struct service *svc, int udp,
                     struct sockaddr_storage *ss, socklen_t len, int v6only,
                     uint16_t *shared_port, int spec_port_zero)
{
    const char *kind = udp ? "udp" : "tcp";
    char text[ADDR_TEXT_MAX], why[NET_ERR_LEN];
    struct sockaddr *sa = (struct sockaddr *)ss;
    struct listener *l;
    int fd;

    if (spec_port_zero)
        set_port(sa, *shared_port);
    fd = udp ? net_udp_bind(sa, len, v6only, b->reuseport, why, sizeof why)
             : net_tcp_listen(sa, len, v6only, b->reuseport, why, sizeof why);
    if (fd < 0 && spec_port_zero && *shared_port != 0 && errno == EADDRINUSE) {
        set_port(sa, 0);
        fd = udp ? net_udp_bind(sa, len, v6only, b->reuseport, why, sizeof why)
                 : net_tcp_listen(sa, len, v6only, b->reuseport, why, sizeof why);
    }
    if (fd < 0)
        return cannot_listen(b, svc, kind, addr_format(sa, len, text, sizeof text), why);
    l = binder_add(b);
    l->svc = svc;
    l->reuseport = b->reuseport;
    if (socket_describe(fd, l, ss, why, sizeof why) < 0 ||
        listener_prepare(l, why, sizeof why) < 0) {
        b->n--;
        close(fd);
        return cannot_listen(b, svc, kind, addr_format(sa, len, text, sizeof text), why);
    }
    if (spec_port_zero && *shared_port == 0)
        *shared_port = (uint16_t)addr_port(sa);
    return 0;
}

/* PORT alone: one dual-stack socket on [::], or 0.0.0.0 where there is no IPv6. */
static int bind_any(struct binder *b, const struct service *svc, int udp, uint16_t port,
                    uint16_t *shared_port)
{
    struct sockaddr_storage ss;
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    size_t before = b->n;

    if (b->family != AF_INET) {
        memset(&ss, 0, sizeof ss);
        sin6->sin6_family = AF_INET6;
        sin6->sin6_addr = in6addr_any;
        sin6->sin6_port = htons(port);
        if (bind_inet(b, svc, udp, &ss, sizeof *sin6, b->family == AF_INET6, shared_port,
                      port == 0) == 0)
            return 0;
        if (b->family == AF_INET6 || (errno != EAFNOSUPPORT && errno != EADDRNOTAVAIL))
            return -1;
        b->n = before;
    }
    memset(&ss, 0, sizeof ss);
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(INADDR_ANY);
    sin->sin_port = htons(port);
    return bind_inet(b, svc, udp, &ss, sizeof *sin, -1, shared_port, port == 0);
}

static int same_addr(const struct addrinfo *a, const struct addrinfo *list)
{
    for (const struct addrinfo *p = list; p != a; p = p->ai_next)
        if (p->ai_addrlen == a->ai_addrlen && memcmp(p->ai_addr, a->ai_addr, a->ai_addrlen) == 0)
            return 1;
    return 0;
}

/* HOST:PORT: every address the name resolves to, each IPv6 one without IPv4. */
static int bind_host(struct binder *b, const struct service *svc, int udp,
                     const struct spec *sp, uint16_t port_num, uint16_t *shared_port)
{
    struct addrinfo hints = { 0 }, *res;
    char port[8], where[SPEC_HOST_MAX + 16];
    int rc;

    hints.ai_family = b->family;
    hints.ai_socktype = udp ? SOCK_DGRAM : SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(port, sizeof port, "%u", port_num);
    rc = getaddrinfo(sp->host, port, &hints, &res);
    if (rc != 0) {
        snprintf(where, sizeof where, strchr(sp->host, ':') ? "[%s]:%u" : "%s:%u", sp->host,
                 port_num);
        return cannot_listen(b, svc, udp ? "udp" : "tcp", where,
                             rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
    }
    rc = 0;
    for (struct addrinfo *ai = res; ai && rc == 0; ai = ai->ai_next) {
        struct sockaddr_storage ss;

        if (same_addr(ai, res) || ai->ai_addrlen > sizeof ss)
            continue;
        memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
        rc = bind_inet(b, svc, udp, &ss, ai->ai_addrlen, ai->ai_family == AF_INET6 ? 1 : -1,
                       shared_port, port_num == 0);
    }
    freeaddrinfo(res);
    return rc;
}

static int bind_unix(struct binder *b, const struct service *svc, const struct spec *sp)
{
    char why[NET_ERR_LEN], where[SPEC_PATH_MAX + 8];
    struct listener *l;
    int fd = net_unix_listen(sp->path, sp->abstract, why, sizeof why);

    snprintf(where, sizeof where, "unix:%s%s", sp->abstract ? "@" : "", sp->path);
    if (fd < 0)
        return cannot_listen(b, svc, "unix", where, why);
    l = binder_add(b);
    watch_init(&l->w, fd, NULL);
    l->svc = svc;
    l->kind = LISTEN_UNIX;
    l->family = AF_UNIX;
    snprintf(l->addr, sizeof l->addr, "%s", where);
    if (!sp->abstract)
        l->unlink_path = xstrdup(sp->path);
    return 0;
}

static int bind_spec(struct binder *b, const struct spec *sp)
{
    const struct service *svc = service_find(sp->service);
    uint16_t shared_port = 0;
    size_t first = b->n;

    if (svc == NULL) {
        snprintf(b->err, b->errlen, "unknown service '%s'", sp->service);
        return -1;
    }
    if (sp->kind == ADDR_UNIX) {
        if (bind_unix(b, svc, sp) < 0)
            return -1;
    }
    /* Each port of a PORT-PORT range as if it were a SPEC of its own. */
    for (unsigned port = sp->port; sp->kind != ADDR_UNIX && port <= sp->port_last; port++) {
        shared_port = 0;
        for (int udp = 0; udp <= 1; udp++) {
            int rc;

            if (!(sp->protos & (udp ? PROTO_UDP : PROTO_TCP)))
                continue;
            rc = sp->kind == ADDR_ANY ? bind_any(b, svc, udp, (uint16_t)port, &shared_port)
                                      : bind_host(b, svc, udp, sp, (uint16_t)port, &shared_port);
            if (rc < 0)
                return -1;
        }
    }
    for (size_t i = first; i < b->n; i++) {
        b->ls[i].proxy = sp->proxy;
        b->ls[i].tls = sp->tls;
    }
    return listen_group(b->ls + first, b->n - first, sp, b->err, b->errlen);
}

int listen_specs(const struct spec *specs, size_t nspecs, int family, int reuseport,
                 struct listener **out, size_t *n, char *err, size_t errlen)
{
    struct binder b = { .family = family, .reuseport = reuseport, .err = err, .errlen = errlen };

    for (size_t i = 0; i < nspecs; i++) {
        if (bind_spec(&b, &specs[i]) < 0) {
            listeners_close(b.ls, b.n);
            return -1;
        }
    }
    if (listen_names(b.ls, b.n, err, errlen) < 0) {
        listeners_close(b.ls, b.n);
        return -1;
    }
    *out = b.ls;
    *n = b.n;
    return 0;
}

static int is_accepting(int fd)
{
    int on = 0;
    socklen_t len = sizeof on;

    return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) == 0 && on;
}

/* A listener for svc that describes the socket fd, made elsewhere. */
static int listener_describe(int fd, const struct service *svc, struct listener *l,
                             char *err, size_t errlen)
{
    struct sockaddr_storage ss = { 0 };  /* getsockname fills what it knows */
    char why[NET_ERR_LEN];

    memset(l, 0, sizeof *l);
    l->svc = svc;
    if (socket_describe(fd, l, &ss, why, sizeof why) < 0) {
        snprintf(err, errlen, "descriptor %d: %s", fd, why);
        return -1;
    }
    return 0;
}

int listener_from_fd(int fd, const struct service *svc, struct listener *l, char *err,
                     size_t errlen)
{
    char why[NET_ERR_LEN];

    if (listener_describe(fd, svc, l, err, errlen) < 0)
        return -1;
    /* Accept=yes hands over one connection per process: that is --inetd's job. */
    if (l->kind != LISTEN_UDP && !is_accepting(fd)) {
        snprintf(err, errlen, "descriptor %d (%s %s %s): a stream socket that is not "
                 "listening (for Accept=yes, use --inetd)", fd, svc->name,
                 listener_kind_name(l->kind), l->addr);
        return -1;
    }
    if (listener_prepare(l, why, sizeof why) < 0) {
        snprintf(err, errlen, "cannot listen on %s %s %s: %s", svc->name,
                 listener_kind_name(l->kind), l->addr, why);
        return -1;
    }
    return 0;
}

int listener_for_conn(int fd, const struct service *svc, struct listener *l, char *err,
                      size_t errlen)
{
    if (listener_describe(fd, svc, l, err, errlen) < 0)
        return -1;
    if (l->kind == LISTEN_UDP || is_accepting(fd)) {
        snprintf(err, errlen, "descriptor %d (%s %s): not a connected stream socket", fd,
                 listener_kind_name(l->kind), l->addr);
        return -1;
    }
    watch_init(&l->w, -1, NULL);    /* nothing to accept on */
    return 0;
}

/* FileDescriptorName=SERVICE[,KEY=VALUE...]: the service's name, into svc. */
static void fdname_service(const char *fdname, char *svc, size_t len)
{
    size_t n = strcspn(fdname, ",");

    snprintf(svc, len, "%.*s", (int)(n < len ? n : len - 1), fdname);
}

/* The passed sockets whose names are the same text share a slot, as a SPEC's do;
 * the options after the service apply to them. Listener i is the first of its
 * name: it gets the slot of every listener from i on with that name. */
static int fds_group(struct listener *ls, size_t n, char *const *names, size_t i, char *err,
                     size_t errlen)
{
    struct spec *sp = xcalloc(1, sizeof *sp);
    const char *opts = strchr(names[i], ',');
    struct listener **group = xcalloc(n, sizeof *group);
    size_t ng = 0;
    int rc = -1;

    fdname_service(names[i], sp->service, sizeof sp->service);
    for (size_t j = i; j < n; j++)
        if (strcmp(names[j], names[i]) == 0) {
            group[ng++] = &ls[j];
            sp->protos |= ls[j].kind == LISTEN_UDP ? PROTO_UDP : PROTO_TCP;
        }
    if (ls[i].svc->relay && (sp->protos & PROTO_UDP)) {
        snprintf(err, errlen, "descriptor %d (%s): relay is a stream service, not udp",
                 ls[i].w.fd, names[i]);
        goto end;
    }
    if (spec_parse_options(opts ? opts + 1 : "", sp, 1, err, errlen) < 0) {
        char why[KODAMA_ERR_LEN];

        snprintf(why, sizeof why, "%s", err);
        snprintf(err, errlen, "descriptor %d is named '%s': %s", ls[i].w.fd, names[i], why);
        goto end;
    }
    /* One slot for the group: made for the first, then shared. */
    if (listen_group(group[0], 1, sp, err, errlen) < 0)
        goto end;
    for (size_t g = 1; g < ng; g++) {
        group[g]->slot = group[0]->slot;
        group[g]->relay = group[0]->relay;
        group[g]->owns_slot = 0;
    }
    rc = 0;
end:
    free(group);
    free(sp);
    return rc;
}

int listen_fds(int first, size_t n, char *const *names, struct listener **out,
               char *err, size_t errlen)
{
    struct listener *ls = xcalloc(n ? n : 1, sizeof *ls);

    for (size_t i = 0; i < n; i++) {
        int fd = first + (int)i;
        char name[SPEC_SERVICE_MAX + 1] = "";
        const struct service *svc;

        if (names[i])
            fdname_service(names[i], name, sizeof name);
        svc = names[i] ? service_find(name) : NULL;
        if (svc == NULL) {
            char known[128];

            service_names(known, sizeof known);
            snprintf(err, errlen, "descriptor %d %s%s%s: not a service name (set "
                     "FileDescriptorName= or --fdname= to one of: %s; options may follow a "
                     "',', as in a SPEC)", fd, names[i] ? "is named '" : "has no name",
                     names[i] ? names[i] : "", names[i] ? "'" : "", known);
            listeners_close(ls, i);
            return -1;
        }
        if (listener_from_fd(fd, svc, &ls[i], err, errlen) < 0) {
            listeners_close(ls, i);
            return -1;
        }
    }
    for (size_t i = 0; i < n; i++) {
        int seen = 0;

        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(names[j], names[i]) == 0;
        if (!seen && fds_group(ls, n, names, i, err, errlen) < 0) {
            listeners_close(ls, n);
            return -1;
        }
    }
    if (listen_names(ls, n, err, errlen) < 0) {
        listeners_close(ls, n);
        return -1;
    }
    *out = ls;
    return 0;
}

/* One listener for another event loop: a sibling socket in the SO_REUSEPORT group,
 * or the same socket (a dup) shared by the loops. */
static int listener_copy(const struct listener *from, struct listener *to, int share,
                         char *err, size_t errlen)
{
    char why[NET_ERR_LEN];
    int fd;

    *to = *from;
    to->unlink_path = NULL;     /* the original removes the file */
    to->owns_slot = 0;          /* and frees the slot */
    to->armed = 0;
    to->paused = 0;
    memset(&to->stats, 0, sizeof to->stats);
    to->shared = share || from->kind == LISTEN_UNIX || !from->reuseport;
    if (to->shared) {
        fd = fcntl(from->w.fd, F_DUPFD_CLOEXEC, 0);
        if (fd < 0)
            snprintf(why, sizeof why, "dup: %s", strerror(errno));
    } else {
        fd = net_reuseport_sibling(from->w.fd, why, sizeof why);
        if (fd >= 0 && to->pktinfo &&
            net_udp_pktinfo(fd, from->family, why, sizeof why) < 0) {
            close(fd);
            fd = -1;
        }
    }
    watch_init(&to->w, fd, NULL);
    if (fd < 0) {
        snprintf(err, errlen, "cannot listen on %s %s %s: %s", from->svc->name,
                 listener_kind_name(from->kind), from->addr, why);
        return -1;
    }
    return 0;
}

int listeners_copy(const struct listener *ls, size_t n, int share, struct listener **out,
                   char *err, size_t errlen)
{
    struct listener *copy = xcalloc(n ? n : 1, sizeof *copy);

    for (size_t i = 0; i < n; i++) {
        if (listener_copy(&ls[i], &copy[i], share, err, errlen) < 0) {
            listeners_close(copy, i);
            return -1;
        }
    }
    *out = copy;
    return 0;
}

void listener_remove_file(struct listener *l)
{
    if (l->unlink_path == NULL)
        return;
    if (unlink(l->unlink_path) < 0 && errno != ENOENT)
        log_msg("cannot remove the socket file of %s unix %s: %s", l->svc->name, l->addr,
                strerror(errno));
    free(l->unlink_path);
    l->unlink_path = NULL;
}

int listeners_give_files(struct listener *ls, size_t n, uid_t uid, gid_t gid, char *err,
                         size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        if (ls[i].unlink_path && chown(ls[i].unlink_path, uid, gid) < 0) {
            snprintf(err, errlen, "cannot give the socket file of %s unix %s to the user: %s",
                     ls[i].svc->name, ls[i].addr, strerror(errno));
            return -1;
        }
    }
    return 0;
}

void listeners_close(struct listener *ls, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (ls[i].w.fd >= 0)
            close(ls[i].w.fd);
        listener_remove_file(&ls[i]);
        listen_group_free(&ls[i]);
    }
    free(ls);
}
