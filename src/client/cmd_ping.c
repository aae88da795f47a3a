/* cmd_ping.c — `kodama ping HOST PORT`: the seeds' "connect five times in a loop"
 * client grown into ping(8) for ports. The options, the per-probe lines' writer,
 * and the summary, as ping's:
 *
 *   --- 127.0.0.1 port 7007 (tcp) ping statistics ---
 *   5 probes, 5 replies, 0% loss, time 4004 ms
 *   rtt min/avg/max/mdev = 0.051/0.070/0.093/0.015 ms
 *
 * The modes are ping_echo.c and ping_connect.c. */
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "client/ping.h"
#include "client/sock.h"
#include "lib/cli.h"
#include "lib/log.h"
#include "lib/net.h"
#include "lib/util.h"
#include "proto/ping.h"

#define PING_WAIT_DEFAULT_MS 1000
#define PING_INTERVAL_DEFAULT_MS 1000
#define PING_COUNT_MAX 100000000ul

enum { OPT_CONNECT = 512 };

void help_ping(FILE *out)
{
    fprintf(out,
        "Usage: kodama ping [-u] [-4|-6] [-c COUNT] [-i SECS] [-s SIZE] [-w SECS]\n"
        "                   [--connect] [OPTION...] HOST PORT\n"
        "       kodama ping [OPTION...] -U PATH\n\n"
        "ping(8) for ports. Echo mode (the default): one connection (-u: udp), a probe\n"
        "of SIZE bytes every -i seconds, each reply timed and checked (the probe carries\n"
        "its sequence number, so late, duplicated and corrupt replies are named).\n"
        "--connect: a new connection per probe, timed to the handshake and to the first\n"
        "byte back (hello's greeting, or the echo of the SIZE bytes sent). A summary\n"
        "follows as ping's; SIGINT ends the run early.\n\n"
        "Options:\n"
        "  -c COUNT           stop after COUNT probes (default: until SIGINT)\n"
        "  -i SECS            between probes (default 1; fractions allowed; 0: each as\n"
        "                     soon as the last is answered)\n"
        "  -s SIZE            probe bytes (default 56; echo mode 16 to 65507, --connect\n"
        "                     0 to 65507)\n"
        "  -w SECS            how long each probe may take (default 1)\n"
        "      --connect      connect mode\n"
        "  -u                 udp (echo mode)\n"
        "  -4, -6             IPv4 or IPv6 only\n"
        "  -U PATH            a unix stream socket (@NAME: abstract)\n"
        "  -v                 report the connection on stderr\n"
        "      --source ADDR  connect from this local address\n"
        "      --source-port PORT  connect from this local port (echo mode)\n"
        "      --json         print the summary as one JSON object, and no other line\n"
        "      --trace        narrate each socket call on stderr\n");
    client_tls_help(out, 6, 21, 0);
    fprintf(out,
        "  -h, --help         show this help\n\n"
        "Exit status (the verdict):\n%s\n"
        "0 every probe answered, 4 any lost; else the first other failure's verdict.\n",
        verdict_summary());
}

/* ------------------------------------------------------------------ options */

static int opt_number(const char *what, const char *arg, unsigned long min, unsigned long max,
                      unsigned long *out)
{
    char err[64];

    if (parse_uint(arg, min, max, out, err, sizeof err) < 0)
        return usage_error("ping", "invalid %s '%s': %s", what, arg, err);
    return EXIT_OK;
}

static int ping_opt(void *ctx, int c, const char *arg)
{
    struct ping_opts *o = ctx;
    char err[64];

    switch (c) {
    case 'c': return opt_number("-c", arg, 1, PING_COUNT_MAX, &o->count);
    case 's': return opt_number("-s", arg, 0, PING_SIZE_MAX, &o->size);
    case 'i':
        o->interval_ms = parse_timeout(arg, err, sizeof err);
        if (o->interval_ms < 0)
            return usage_error("ping", "invalid -i '%s': %s", arg, err);
        return EXIT_OK;
    case OPT_CONNECT: o->connect_mode = 1; return EXIT_OK;
    default: return -1;
    }
}

static int check_ping(const struct ping_opts *o)
{
    if (o->connect_mode && o->c.t.udp)
        return usage_error("ping", "cannot use --connect with -u (udp has no connection)");
    if (o->connect_mode && o->c.t.source_port)
        return usage_error("ping", "cannot use --connect with --source-port (one port, "
                           "one connection)");
    if (!o->connect_mode && o->size < PING_HEADER)
        return usage_error("ping", "invalid -s '%lu': a probe needs at least %d bytes",
                           o->size, PING_HEADER);
    return EXIT_OK;
}

static int parse_ping_args(int argc, char **argv, struct ping_opts *o)
{
    static const struct option longopts[] = {
        { "connect", no_argument, NULL, OPT_CONNECT },
        { NULL, 0, NULL, 0 },
    };
    const struct client_cmd cmd = {
        .name = "ping", .help = help_ping, .shortopts = "c:i:s:", .longopts = longopts,
        .opt = ping_opt, .ctx = o,
    };
    int rc = client_parse_options(&cmd, argc, argv, &o->c);

    if (rc == EXIT_OK && !o->c.t.unix_path)
        rc = client_take_host_port("ping", argc, argv, &o->c.t);
    if (rc == EXIT_OK && optind < argc)
        rc = usage_error("ping", "unexpected argument '%s'", argv[optind]);
    return rc == EXIT_OK ? check_ping(o) : rc;
}

/* ------------------------------------------------------------------ summary */

static double series_avg(const struct ping_series *s)
{
    return s->n ? s->sum / (double)s->n : -1;
}

static double series_mdev(const struct ping_series *s)
{
    double avg = series_avg(s), var;

    if (s->n == 0)
        return -1;
    var = s->sum2 / (double)s->n - avg * avg;
    return var > 0 ? sqrt(var) : 0;
}


static double loss_pct(const struct ping_stats *st)
{
    return st->probes ? 100.0 * (double)(st->probes - st->replies) / (double)st->probes : 0;
}

static int verdict_of_run(const struct ping_stats *st, int v)
{
    if (v != V_OK)
        return v;
    if (st->first_failure != V_OK)
        return st->first_failure;
    return st->replies < st->probes ? V_TIMEOUT : V_OK;
}

static void print_series(const char *name, const struct ping_series *s)
{
    if (s->n)
        printf("%s min/avg/max/mdev = %.3f/%.3f/%.3f/%.3f ms\n", name, s->min, series_avg(s),
               s->max, series_mdev(s));
}

static void print_summary(const struct ping_opts *o, const struct ping_stats *st,
                          const char *name)
{
    printf("\n--- %s ping statistics ---\n%llu probes, %llu replies, ", name,
           (unsigned long long)st->probes, (unsigned long long)st->replies);
    if (st->duplicates)
        printf("+%llu duplicates, ", (unsigned long long)st->duplicates);
    if (st->corrupt)
        printf("%llu corrupt, ", (unsigned long long)st->corrupt);
    if (st->late)
        printf("%llu late, ", (unsigned long long)st->late);
    printf("%g%% loss, time %.0f ms\n", loss_pct(st),
           st->t_first ? (double)(st->t_last - st->t_first) / 1e6 : 0.0);
    print_series("rtt", &st->rtt);
    if (o->connect_mode)
        print_series("connect", &st->connect);
    print_series("handshake", &st->handshake);
}

static void series_json(struct json_obj *j, const char *prefix, const struct ping_series *s)
{
    char key[32];

    snprintf(key, sizeof key, "%s_min_ms", prefix);
    json_ms(j, key, s->n ? s->min : -1);
    snprintf(key, sizeof key, "%s_avg_ms", prefix);
    json_ms(j, key, series_avg(s));
    snprintf(key, sizeof key, "%s_max_ms", prefix);
    json_ms(j, key, s->n ? s->max : -1);
    snprintf(key, sizeof key, "%s_mdev_ms", prefix);
    json_ms(j, key, series_mdev(s));
}

static void print_json(const struct ping_opts *o, const struct ping_stats *st, struct report *r)
{
    struct json_obj j;

    report_json(r, &j);
    json_str(&j, "mode", o->connect_mode ? "connect" : "echo");
    json_uint(&j, "size", o->size);
    json_uint(&j, "probes", st->probes);
    json_uint(&j, "replies", st->replies);
    json_uint(&j, "duplicates", st->duplicates);
    json_uint(&j, "corrupt", st->corrupt);
    json_uint(&j, "late", st->late);
    json_ms(&j, "loss_pct", loss_pct(st));
    series_json(&j, "rtt", &st->rtt);
    if (o->connect_mode)
        series_json(&j, "connect", &st->connect);
    if (o->c.tls.on)
        series_json(&j, "handshake", &st->handshake);
    fputs(json_end(&j), stdout);
}

/* "127.0.0.1 port 7007 (tcp)", "unix:/tmp/s": the target as the user named it. */
static void target_name(const struct target *t, char *buf, size_t len)
{
    if (t->unix_path)
        snprintf(buf, len, "unix:%s", t->unix_path);
    else
        snprintf(buf, len, "%s port %s (%s)", t->host, t->port, t->udp ? "udp" : "tcp");
}

int cmd_ping(int argc, char **argv)
{
    struct ping_opts o = {
        .c = { .t.family = AF_UNSPEC, .wait_text = "1", .wait_ms = PING_WAIT_DEFAULT_MS },
        .size = PING_SIZE_DEFAULT, .interval_ms = PING_INTERVAL_DEFAULT_MS,
    };
    struct ping_stats st = { 0 };
    struct report r;
    struct peer p = { .fd = -1 };
    char name[ADDR_TEXT_MAX + 32], err[CLIENT_TLS_ERR_LEN];
    int rc = parse_ping_args(argc, argv, &o), v;

    if (rc != EXIT_OK)
        return rc;
    sk_catch_stop();
    report_start(&r, &o.c.t);
    target_name(&o.c.t, name, sizeof name);
    v = client_tls_setup(&o.c.tls, err, sizeof err);
    if (v != V_OK)
        report_fail(&r, 0, v, "%s", err);
    else if (o.c.t.unix_path == NULL)
        v = client_resolve(&o.c.t, o.c.t.port, 0, &o.c.t.resolved, &r);
    if (v != V_OK) {
        client_tls_free(&o.c.tls);
        if (o.c.json)
            print_json(&o, &st, &r);
        return v;
    }
    /* The header only once the name has resolved: as with ping(8), a name that does
     * not is told on stderr alone. */
    if (!o.c.json)
        printf("PING %s: %s%s%lu data bytes\n", name, o.connect_mode ? "connect, " : "",
               o.c.tls.on ? "tls, " : "", o.size);
    v = o.connect_mode ? ping_connect_run(&o, &st, &r, &p) : ping_echo_run(&o, &st, &r, &p);
    client_tls_free(&o.c.tls);
    if (o.c.t.resolved)
        freeaddrinfo(o.c.t.resolved);
    r.verdict = verdict_of_run(&st, v);
    if (r.error[0] == '\0' && v == V_OK && r.verdict != V_OK)
        snprintf(r.error, sizeof r.error, "%s",
                 st.first_failure != V_OK ? st.first_error : st.first_loss);
    r.t_end = now_ns();
    if (o.c.json)
        print_json(&o, &st, &r);
    else if (st.probes > 0)
        print_summary(&o, &st, name);
    if (fflush(stdout) == EOF && r.verdict == V_OK)
        return report_stdout_failed(&r, errno);
    return r.verdict;
}
