/* client_opts.c — the options send, connect and ping share (see client.h), and the
 * operands HOST PORT. */
#include "client/client.h"

#include <netdb.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cli.h"
#include "lib/net.h"
#include "lib/trace.h"
#include "lib/util.h"

enum { OPT_SOURCE = 300, OPT_SOURCE_PORT, OPT_JSON, OPT_TRACE };

#define LONGOPTS_MAX 32
#define SHORTOPTS_MAX 64

static const struct option shared_longopts[] = {
    { "help", no_argument, NULL, 'h' },
    { "source", required_argument, NULL, OPT_SOURCE },
    { "source-port", required_argument, NULL, OPT_SOURCE_PORT },
    { "json", no_argument, NULL, OPT_JSON },
    { "trace", no_argument, NULL, OPT_TRACE },
};

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

int client_opt_source(const char *cmd, const char *arg, struct target *t)
{
    struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_PASSIVE }, *res;

    /* A literal only: a source that needs a lookup would be a guess among several. */
    if (getaddrinfo(arg, NULL, &hints, &res) != 0)
        return usage_error(cmd, "invalid --source '%s': not an IPv4 or IPv6 address", arg);
    memcpy(&t->source, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    t->source_text = arg;
    return EXIT_OK;
}

int client_opt_source_port(const char *cmd, const char *arg, struct target *t)
{
    unsigned long port;

    if (parse_uint(arg, 1, 65535, &port, NULL, 0) < 0)
        return usage_error(cmd, "invalid --source-port '%s'", arg);
    t->source_port = (unsigned)port;
    return EXIT_OK;
}

/* The shared options and the command's own, in one getopt string and table. */
static void merge_options(const struct client_cmd *cmd, char *shortopts, struct option *longopts)
{
    size_t n = 0;

    snprintf(shortopts, SHORTOPTS_MAX, "+:46hU:uvw:%s", cmd->shortopts ? cmd->shortopts : "");
    for (size_t i = 0; i < sizeof shared_longopts / sizeof shared_longopts[0]; i++)
        longopts[n++] = shared_longopts[i];
    for (size_t i = 0; i < CLIENT_TLS_NLONGOPTS; i++)
        if (strcmp(client_tls_longopts[i].name, "resume") != 0)    /* bench's alone */
            longopts[n++] = client_tls_longopts[i];
    for (const struct option *o = cmd->longopts; o && o->name && n < LONGOPTS_MAX - 1; o++)
        longopts[n++] = *o;
    memset(&longopts[n], 0, sizeof longopts[n]);
}

static int shared_option(const struct client_cmd *cmd, int c, struct client_opts *o)
{
    switch (c) {
    case '4': o->t.family = AF_INET; return EXIT_OK;
    case '6': o->t.family = AF_INET6; return EXIT_OK;
    case 'U':
        if (client_unix_path(cmd->name, optarg) != EXIT_OK)
            return EXIT_USAGE;
        o->t.unix_path = optarg;
        return EXIT_OK;
    case 'u': o->t.udp = 1; return EXIT_OK;
    case 'v': o->t.verbose = 1; return EXIT_OK;
    case 'w': {
        char why[64];

        o->wait_text = optarg;
        o->wait_ms = parse_seconds(optarg, why, sizeof why);
        o->wait_given = 1;
        if (o->wait_ms < 0)
            return usage_error(cmd->name, "invalid timeout '%s': %s", optarg, why);
        return EXIT_OK;
    }
    case OPT_SOURCE: return client_opt_source(cmd->name, optarg, &o->t);
    case OPT_SOURCE_PORT: return client_opt_source_port(cmd->name, optarg, &o->t);
    case OPT_JSON: o->json = 1; return EXIT_OK;
    case OPT_TRACE: o->trace = 1; return EXIT_OK;
    default: return -1;
    }
}

/* Option combinations, as a flat list of one-liners. */
static int check_shared(const char *cmd, const struct client_opts *o)
{
    int sfam = o->t.source.ss_family;

    if (o->t.unix_path && o->t.udp)
        return usage_error(cmd, "cannot use -U with -u");
    if (o->t.unix_path && o->t.family != AF_UNSPEC)
        return usage_error(cmd, "cannot use -U with -4 or -6");
    if (o->t.unix_path && (sfam != AF_UNSPEC || o->t.source_port))
        return usage_error(cmd, "cannot use -U with --source or --source-port");
    if (sfam != AF_UNSPEC && o->t.family != AF_UNSPEC && sfam != o->t.family)
        return usage_error(cmd, "cannot use --source '%s' with -%c", o->t.source_text,
                           o->t.family == AF_INET ? '4' : '6');
    return EXIT_OK;
}

int client_parse_options(const struct client_cmd *cmd, int argc, char **argv,
                         struct client_opts *o)
{
    char shortopts[SHORTOPTS_MAX];
    struct option longopts[LONGOPTS_MAX];
    int c, rc;

    merge_options(cmd, shortopts, longopts);
    opterr = 0;
    while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        if (c == 'h') {
            cmd->help(stdout);
            exit(EXIT_OK);
        }
        if (c == '?' || c == ':')
            return option_error(cmd->name, c, argv, longopts);
        rc = shared_option(cmd, c, o);
        if (rc == -1)
            rc = client_tls_option(cmd->name, &o->tls, c, optarg, 0);
        if (rc == -1 && cmd->opt)
            rc = cmd->opt(cmd->ctx, c, optarg);
        if (rc == -1)
            return option_error(cmd->name, '?', argv, longopts);
        if (rc != EXIT_OK)
            return rc;
    }
    rc = check_shared(cmd->name, o);
    if (rc == EXIT_OK)
        rc = client_tls_check(cmd->name, &o->tls, o->t.udp ? "-u" : NULL);
    if (rc == EXIT_OK && o->tls.on)
        o->t.tls = &o->tls;
    if (rc == EXIT_OK && o->trace)
        trace_start();
    return rc;
}
