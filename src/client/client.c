/* client.c — see client.h. */
#include "client/client.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/cli.h"
#include "lib/log.h"
#include "lib/net.h"
#include "lib/util.h"

int client_unix_path(const char *cmd, const char *path)
{
    struct sockaddr_un sun;
    int abstract = path[0] == '@';

    if (path[abstract] == '\0')
        return usage_error(cmd, "-U '%s': missing %s", path, abstract ? "name" : "path");
    if (net_unix_addr(path + abstract, abstract, &sun) == (socklen_t)-1)
        return usage_error(cmd, "-U: %s longer than %zu bytes", abstract ? "an abstract name" : "a path",
                           sizeof sun.sun_path - 1);
    return EXIT_OK;
}

int client_take_host_port(const char *cmd, int argc, char **argv, struct target *t)
{
    unsigned long port;

    if (optind >= argc)
        return usage_error(cmd, "missing HOST");
    if (optind + 1 >= argc)
        return usage_error(cmd, "missing PORT");
    t->host = argv[optind++];
    t->port = argv[optind++];
    if (parse_uint(t->port, 1, 65535, &port, NULL, 0) < 0)
        return usage_error(cmd, "invalid port '%s'", t->port);
    return EXIT_OK;
}

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

static int connect_unix(const struct target *t, struct peer *p)
{
    struct sockaddr_un sun;
    int abstract = t->unix_path[0] == '@';
    socklen_t len = net_unix_addr(t->unix_path + abstract, abstract, &sun);
    int fd;

    if (len == (socklen_t)-1) {
        log_msg("unix:%s: %s", t->unix_path, strerror(errno));
        return -1;
    }
    describe(p, (struct sockaddr *)&sun, len, 0);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || net_connect(fd, (struct sockaddr *)&sun, len, t->timeout_ms) < 0) {
        log_msg("connect to %s failed: %s", p->name, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    p->fd = fd;
    return 0;
}

/* Try one address; returns the descriptor or -1 with errno. */
static int try_connect(const struct addrinfo *ai, long timeout_ms)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    int saved;

    if (fd < 0)
        return -1;
    if (net_connect(fd, ai->ai_addr, ai->ai_addrlen, timeout_ms) == 0)
        return fd;
    saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

int client_connect(const struct target *t, struct peer *p)
{
    struct addrinfo hints = { 0 }, *res, *ai;
    int rc, fd = -1;

    p->fd = -1;
    if (t->unix_path)
        return connect_unix(t, p);
    hints.ai_family = t->family;
    hints.ai_socktype = t->udp ? SOCK_DGRAM : SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    rc = getaddrinfo(t->host, t->port, &hints, &res);
    if (rc != 0) {
        log_msg("%s: %s", t->host, rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        describe(p, ai->ai_addr, ai->ai_addrlen, t->udp);
        fd = try_connect(ai, t->timeout_ms);
        if (fd >= 0)
            break;
        /* Only the last failure is the command's error; -v tells each one. */
        if (t->verbose || ai->ai_next == NULL)
            log_msg("connect to %s failed: %s", p->name, strerror(errno));
    }
    freeaddrinfo(res);
    if (fd < 0)
        return -1;
    p->fd = fd;
    return 0;
}

int client_parse_options(const char *cmd, int argc, char **argv, struct client_opts *o,
                         void (*help)(FILE *out))
{
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;

    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:46hU:uvw:", longopts, NULL)) != -1) {
        switch (c) {
        case '4': o->t.family = AF_INET; break;
        case '6': o->t.family = AF_INET6; break;
        case 'U':
            if (client_unix_path(cmd, optarg) != EXIT_OK)
                return EXIT_USAGE;
            o->t.unix_path = optarg;
            break;
        case 'u': o->t.udp = 1; break;
        case 'v': o->t.verbose = 1; break;
        case 'w':
            o->wait_text = optarg;
            o->wait_ms = parse_seconds(optarg, NULL, 0);
            if (o->wait_ms < 0)
                return usage_error(cmd, "invalid timeout '%s'", optarg);
            break;
        case 'h': help(stdout); exit(EXIT_OK);
        default: return option_error(cmd, c, argv, longopts);
        }
    }
    if (o->t.unix_path && o->t.udp)
        return usage_error(cmd, "cannot use -U with -u");
    if (o->t.unix_path && o->t.family != AF_UNSPEC)
        return usage_error(cmd, "cannot use -U with -4 or -6");
    return EXIT_OK;
}
