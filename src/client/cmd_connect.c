/* cmd_connect.c — `kodama connect`: a netcat-style relay between stdin/stdout and a
 * socket (relay.c); with -l it waits for the peer instead (listen.c), with -z it only
 * checks which ports of a range accept (scan.c). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/client.h"
#include "client/connect.h"
#include "client/peer_io.h"
#include "client/relay.h"
#include "client/sock.h"
#include "lib/cli.h"
#include "lib/log.h"
#include "lib/util.h"

#define UDP_WAIT_DEFAULT_MS 5000

void help_connect(FILE *out)
{
    fprintf(out,
        "Usage: kodama connect [-u] [-4|-6] [-v] [-w SECS] [OPTION...] HOST PORT\n"
        "       kodama connect [-v] [-w SECS] [OPTION...] -U PATH\n"
        "       kodama connect -l [-k] [-u] [-4|-6] [OPTION...] [ADDR] PORT\n"
        "       kodama connect -l [-k] [OPTION...] -U PATH\n"
        "       kodama connect -z [-u] [-4|-6] [-w SECS] [OPTION...] HOST PORT[-PORT]\n\n"
        "Relay stdin to a socket and the socket to stdout, byte for byte. Each address\n"
        "HOST resolves to is tried in turn. At the end of stdin the write side is shut\n"
        "down and output goes on until the peer closes. With -u each read of stdin is\n"
        "one datagram; after the end of stdin, replies are awaited until every datagram\n"
        "was answered or -w SECS pass without one.\n\n"
        "Options:\n"
        "  -u                 udp\n"
        "  -4, -6             IPv4 or IPv6 only\n"
        "  -U PATH            a unix stream socket (@NAME: abstract)\n"
        "  -w SECS            connect timeout (udp: the wait for replies, default 5;\n"
        "                     -z: per port, default 2; -l: the wait for a peer)\n"
        "  -v                 report the connection on stderr\n"
        "  -l                 listen: wait for one peer on [ADDR] PORT (port 0: any)\n"
        "                     and relay it; udp: the first peer's datagrams\n"
        "  -k                 with -l, go on accepting after each peer leaves, one at\n"
        "                     a time, until SIGINT or SIGTERM\n"
        "  -z                 scan: connect to each port of PORT-PORT at once, print\n"
        "                     one line per port (udp: send an empty datagram)\n"
        "  -s, --source ADDR  connect from this local address\n"
        "  -p, --source-port PORT  connect from this local port\n"
        "      --json         one JSON object per run (per port with -z): on stdout\n"
        "                     with -z, else as the last line on stderr\n"
        "      --trace        narrate each socket call on stderr\n");
    client_tls_help(out, 6, 21, 0);
    fprintf(out,
        "  -h, --help         show this help\n\n"
        "Exit status (the verdict):\n%s\n"
        "(see 'man kodama', EXIT STATUS). A udp relay that heard no reply exits 0.\n",
        verdict_summary());
}

static int connect_opt(void *ctx, int c, const char *arg)
{
    struct connect_opts *o = ctx;

    switch (c) {
    case 'l': o->listen = 1; return EXIT_OK;
    case 'k': o->keep = 1; return EXIT_OK;
    case 'z': o->scan = 1; return EXIT_OK;
    case 's': return client_opt_source("connect", arg, &o->c.t);
    case 'p': return client_opt_source_port("connect", arg, &o->c.t);
    default: return -1;
    }
}

/* Option combinations, as a flat list of one-liners. */
static int check_modes(const struct connect_opts *o)
{
    const struct target *t = &o->c.t;

    if (o->listen && o->scan)
        return usage_error("connect", "cannot use -l with -z");
    if (o->keep && !o->listen)
        return usage_error("connect", "-k needs -l");
    if (o->keep && t->udp)
        return usage_error("connect", "cannot use -k with -u (a udp peer never leaves)");
    if (o->listen && (t->source.ss_family != AF_UNSPEC || t->source_port))
        return usage_error("connect", "cannot use -s or -p with -l (name the address as "
                           "[ADDR] PORT)");
    if (o->scan && t->unix_path)
        return usage_error("connect", "cannot use -z with -U");
    if (o->listen && o->c.tls.on)
        return usage_error("connect", "cannot use --tls with -l (listen mode has no TLS: "
                           "kodama serve's +tls is the server)");
    if (o->scan && o->c.tls.on)
        return usage_error("connect", "cannot use --tls with -z (the scan only connects)");
    return EXIT_OK;
}

/* -l's operands: [ADDR] PORT, port 0 for any. */
static int take_listen_addr(int argc, char **argv, struct target *t)
{
    unsigned long port;

    if (optind >= argc)
        return usage_error("connect", "missing PORT");
    if (optind + 1 < argc)
        t->host = argv[optind++];
    t->port = argv[optind++];
    if (parse_uint(t->port, 0, 65535, &port, NULL, 0) < 0)
        return usage_error("connect", "invalid port '%s'", t->port);
    return EXIT_OK;
}

static int take_operands(int argc, char **argv, struct connect_opts *o)
{
    if (o->c.t.unix_path)
        return EXIT_OK;
    if (o->listen)
        return take_listen_addr(argc, argv, &o->c.t);
    if (o->scan)
        return scan_take_ports(argc, argv, o);
    return client_take_host_port("connect", argc, argv, &o->c.t);
}

static int parse_connect_args(int argc, char **argv, struct connect_opts *o)
{
    static const struct option longopts[] = { { NULL, 0, NULL, 0 } };
    const struct client_cmd cmd = {
        .name = "connect", .help = help_connect, .shortopts = "lkzs:p:", .longopts = longopts,
        .opt = connect_opt, .ctx = o,
    };
    int rc = client_parse_options(&cmd, argc, argv, &o->c);

    if (rc == EXIT_OK)
        rc = check_modes(o);
    if (rc == EXIT_OK)
        rc = take_operands(argc, argv, o);
    if (rc == EXIT_OK && optind < argc)
        rc = usage_error("connect", "unexpected argument '%s'", argv[optind]);
    return rc;
}

static int relay_to(struct connect_opts *o)
{
    struct target *t = &o->c.t;
    char err[CLIENT_TLS_ERR_LEN];
    struct relay rl;
    struct report r;
    struct peer p;
    int v;

    t->timeout_ms = t->udp ? 0 : o->c.wait_ms;
    report_start(&r, t);
    v = client_tls_setup(&o->c.tls, err, sizeof err);
    if (v != V_OK)
        return report_end(&r, o->c.json, report_fail(&r, 0, v, "%s", err));
    v = client_connect(t, &p, &r);
    client_tls_free(&o->c.tls);     /* the connection holds what it needs */
    if (v != V_OK)
        return report_end(&r, o->c.json, v);
    if (t->verbose)
        log_msg("connected to %s", p.name);
    relay_init(&rl, t->udp, o->c.wait_ms > 0 ? o->c.wait_ms : UDP_WAIT_DEFAULT_MS);
    v = relay_run_peer(&rl, &p, &r);
    relay_free(&rl);
    peer_close(&p);
    return report_end(&r, o->c.json, v);
}

int cmd_connect(int argc, char **argv)
{
    struct connect_opts o = { .c = { .t.family = AF_UNSPEC } };
    int rc = parse_connect_args(argc, argv, &o);

    if (rc != EXIT_OK)
        return rc;
    if (o.listen)
        return listen_run(&o);
    if (o.scan)
        return scan_run(&o);
    return relay_to(&o);
}
