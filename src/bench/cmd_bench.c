/* cmd_bench.c — `kodama bench`: a load generator with honest latency percentiles.
 * Reads the options, finds the target and checks that it answers (so a refused
 * server is one line and exit 3 at once, not a run full of errors), raises the
 * open-files limit, runs the workers (bench_run.c) and prints the report. */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench/bench.h"
#include "lib/cli.h"
#include "client/client.h"
#include "client/sock.h"
#include "lib/log.h"
#include "lib/net.h"
#include "lib/util.h"
#include "lib/verdict.h"

#define CONNS_MAX 1000000ul
#define DEPTH_MAX 4096ul
#define THREADS_MAX 1024ul
#define RATE_MAX 100000000ul

void help_bench(FILE *out)
{
    fprintf(out,
        "Usage: kodama bench [OPTIONS] HOST PORT\n"
        "       kodama bench [OPTIONS] -U PATH\n"
        "       kodama bench --merge [--json] [--hgrm FILE] REPORT...\n\n"
        "Generate load against an echo or hello service, check every byte that comes\n"
        "back, and report messages/s, MiB/s, connections/s, errors and latency\n"
        "percentiles (microseconds). Closed loop by default: each connection sends its\n"
        "next message when a reply is back. With -r, an open loop at a fixed rate whose\n"
        "latency counts from when each message was due, however late it went out.\n\n"
        "Options:\n"
        "  -m MODE        echo (tcp, the default), udp (echo over udp), or hello\n"
        "                 (connect, read to EOF, close)\n"
        "  -c CONNS       connections (udp: sockets; hello: connections at once);\n"
        "                 default 1\n"
        "  -s SIZE        message bytes (default 64, at most 1048576; udp 16 to 65507)\n"
        "  -p DEPTH       messages in flight per connection (default 1)\n"
        "  -d SECS        measured duration (default 5; fractions allowed)\n"
        "  -t THREADS     client threads, each with its share of -c (default 1)\n"
        "  -r RATE        open loop: RATE messages/s in all (hello: connections/s)\n"
        "  --warmup SECS  run this long first, not counted (default 0)\n"
        "  -w SECS        connect timeout, and how long a reply may take (default 5;\n"
        "                 udp 1: a datagram not back by then is lost)\n"
        "  -4, -6         IPv4 or IPv6 only\n"
        "  -U PATH        a unix stream socket (@NAME: abstract) instead of HOST PORT\n"
        "  --source ADDR  connect from this local address\n"
        "  --source-port PORT  connect from this local port (needs -c 1, echo or udp)\n"
        "  -q, --quiet    no progress line (it is shown only on a terminal anyway)\n"
        "  --json         print one JSON object instead of the text report (with the\n"
        "                 whole latency histogram and the run's start and end)\n"
        "  --label TEXT   name this run in the --json report (which pod it was)\n"
        "  --hgrm FILE    also write the latency distribution to FILE in\n"
        "                 HdrHistogram's text form (milliseconds), for its plotter\n"
        "  --merge        sum the --json REPORTs of several runs (files; a log with a\n"
        "                 report a line is fine) into one report: counts and rates\n"
        "                 added, percentiles from the merged histogram\n");
    client_tls_help(out, 2, 17, 1);
    fprintf(out,
        "  -h, --help     show this help\n\n"
        "Exit status (the verdict):\n%s\n"
        "(see 'man kodama', EXIT STATUS): 0 a clean run, 1 a run with errors (the\n"
        "report is still printed), 3 to 9 why no exchange completed at all.\n",
        verdict_summary());
}

struct bench_opts {
    struct bench_config cfg;
    struct target t;
    struct client_tls tls;
    int json, quiet, shape_given;
    int merge;                  /* --merge: the operands are reports */
    const char *hgrm;           /* --hgrm FILE */
};

enum { OPT_JSON = 256, OPT_WARMUP, OPT_SOURCE, OPT_SOURCE_PORT, OPT_HGRM, OPT_MERGE, OPT_LABEL };

/* A number option in [min, max], or a usage error naming it and the limits. */
static int opt_uint(char opt, const char *s, unsigned long min, unsigned long max,
                    unsigned long *out)
{
    char err[64];

    if (parse_uint(s, min, max, out, err, sizeof err) == 0)
        return EXIT_OK;
    if (strcmp(err, "too large") == 0)
        return usage_error("bench", "invalid -%c '%s': more than %lu", opt, s, max);
    if (strcmp(err, "too small") == 0)
        return usage_error("bench", "invalid -%c '%s': less than %lu", opt, s, min);
    return usage_error("bench", "invalid -%c '%s': %s", opt, s, err);
}

static int opt_seconds(const char *name, const char *s, int zero_ok, int64_t *ns)
{
    char err[64];
    /* --warmup 0 means none; the others must be more than 0. */
    long ms = zero_ok ? parse_timeout(s, err, sizeof err) : parse_seconds(s, err, sizeof err);

    if (ms < 0)
        return usage_error("bench", "invalid %s '%s': %s", name, s, err);
    *ns = (int64_t)ms * 1000000;
    return EXIT_OK;
}

static int opt_mode(const char *s, enum bench_mode *mode)
{
    if (strcmp(s, "echo") == 0)
        *mode = BENCH_ECHO;
    else if (strcmp(s, "udp") == 0)
        *mode = BENCH_UDP;
    else if (strcmp(s, "hello") == 0)
        *mode = BENCH_HELLO;
    else
        return usage_error("bench", "unknown mode '%s' (echo, udp or hello)", s);
    return EXIT_OK;
}

static int parse_option(struct bench_opts *o, int c, char **argv)
{
    struct bench_config *cfg = &o->cfg;

    switch (c) {
    case 'm': return opt_mode(optarg, &cfg->mode);
    case 'c': return opt_uint('c', optarg, 1, CONNS_MAX, &cfg->conns);
    case 's': o->shape_given = 1; return opt_uint('s', optarg, 1, BENCH_SIZE_MAX, &cfg->size);
    case 'p': o->shape_given = 1; return opt_uint('p', optarg, 1, DEPTH_MAX, &cfg->depth);
    case 't': return opt_uint('t', optarg, 1, THREADS_MAX, &cfg->threads);
    case 'r': return opt_uint('r', optarg, 0, RATE_MAX, &cfg->rate);
    case 'd': return opt_seconds("-d", optarg, 0, &cfg->duration_ns);
    case 'w': return opt_seconds("-w", optarg, 0, &cfg->wait_ns);
    case OPT_WARMUP: return opt_seconds("--warmup", optarg, 1, &cfg->warmup_ns);
    case '4': o->t.family = AF_INET; return EXIT_OK;
    case '6': o->t.family = AF_INET6; return EXIT_OK;
    case 'U':
        o->t.unix_path = optarg;
        return client_unix_path("bench", optarg);
    case 'q': o->quiet = 1; return EXIT_OK;
    case OPT_JSON: o->json = 1; return EXIT_OK;
    case OPT_SOURCE: return client_opt_source("bench", optarg, &o->t);
    case OPT_SOURCE_PORT: return client_opt_source_port("bench", optarg, &o->t);
    case OPT_HGRM: o->hgrm = optarg; return EXIT_OK;
    case OPT_MERGE: o->merge = 1; return EXIT_OK;
    case OPT_LABEL: o->cfg.label = optarg; return EXIT_OK;
    default: {
        /* EXIT_OK, a usage error it has told (--sni '', --fingerprint x), or -1. */
        int rc = client_tls_option("bench", &o->tls, c, optarg, 1);

        (void)argv;
        return rc == -1 ? EXIT_USAGE : rc;
    }
    }
}

/* Option combinations, as a flat list of one-liners. */
static int check_options(struct bench_opts *o)
{
    struct bench_config *cfg = &o->cfg;

    if (o->t.unix_path && cfg->mode == BENCH_UDP)
        return usage_error("bench", "cannot use -U with -m udp (unix sockets are stream only)");
    if (o->t.unix_path && o->t.family != AF_UNSPEC)
        return usage_error("bench", "cannot use -U with -4 or -6");
    if (o->t.unix_path && (o->t.source.ss_family != AF_UNSPEC || o->t.source_port))
        return usage_error("bench", "cannot use -U with --source or --source-port");
    if (o->t.source.ss_family != AF_UNSPEC && o->t.family != AF_UNSPEC &&
        o->t.source.ss_family != o->t.family)
        return usage_error("bench", "cannot use --source '%s' with -%c", o->t.source_text,
                           o->t.family == AF_INET ? '4' : '6');
    /* One port is one connection: a second, or hello's next, could not have it. */
    if (o->t.source_port && (cfg->conns != 1 || cfg->mode == BENCH_HELLO))
        return usage_error("bench", "--source-port needs -c 1 and -m echo or udp");
    if (cfg->mode == BENCH_HELLO && o->shape_given)
        return usage_error("bench", "-s and -p do not apply to -m hello");
    if (cfg->mode == BENCH_UDP && cfg->size > BENCH_UDP_MAX)
        return usage_error("bench", "invalid -s '%lu': more than a udp datagram holds (%d)",
                           cfg->size, BENCH_UDP_MAX);
    if (cfg->mode == BENCH_UDP && cfg->size < BENCH_UDP_HEADER)
        return usage_error("bench", "invalid -s '%lu': udp needs at least %d (sequence number and check)",
                           cfg->size, BENCH_UDP_HEADER);
    if (cfg->threads > cfg->conns)
        return usage_error("bench", "cannot use more threads (-t %lu) than connections (-c %lu)",
                           cfg->threads, cfg->conns);
    if (client_tls_check("bench", &o->tls, cfg->mode == BENCH_UDP ? "-m udp" : NULL) != EXIT_OK)
        return EXIT_USAGE;
    if (o->tls.resume && cfg->mode != BENCH_HELLO)
        return usage_error("bench", "--resume needs -m hello (an echo connection makes one "
                           "handshake)");
    if (cfg->mode == BENCH_HELLO) {
        cfg->size = 0;
        cfg->depth = 1;
    }
    if (cfg->wait_ns == 0)
        cfg->wait_ns = (cfg->mode == BENCH_UDP ? 1 : 5) * 1000000000LL;
    return EXIT_OK;
}

static int parse_bench_args(int argc, char **argv, struct bench_opts *o)
{
    static const struct option own[] = {
        { "help", no_argument, NULL, 'h' },
        { "quiet", no_argument, NULL, 'q' },
        { "json", no_argument, NULL, OPT_JSON },
        { "warmup", required_argument, NULL, OPT_WARMUP },
        { "source", required_argument, NULL, OPT_SOURCE },
        { "source-port", required_argument, NULL, OPT_SOURCE_PORT },
        { "hgrm", required_argument, NULL, OPT_HGRM },
        { "merge", no_argument, NULL, OPT_MERGE },
        { "label", required_argument, NULL, OPT_LABEL },
    };
    struct option longopts[sizeof own / sizeof own[0] + CLIENT_TLS_NLONGOPTS + 1] = { 0 };
    size_t nown = sizeof own / sizeof own[0];
    int c, rc;

    memcpy(longopts, own, sizeof own);
    memcpy(longopts + nown, client_tls_longopts, sizeof client_tls_longopts);

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":46c:d:hm:p:qr:s:t:U:w:", longopts, NULL)) != -1) {
        if (c == 'h') {
            help_bench(stdout);
            exit(EXIT_OK);
        }
        if (c == '?' || c == ':')
            return option_error("bench", c, argv, longopts);
        rc = parse_option(o, c, argv);
        if (rc != EXIT_OK)
            return rc;
    }
    if (o->merge) {
        if (optind >= argc)
            return usage_error("bench", "--merge needs the REPORT files");
        return EXIT_OK;
    }
    if (!o->t.unix_path) {
        rc = client_take_host_port("bench", argc, argv, &o->t);
        if (rc != EXIT_OK)
            return rc;
    }
    if (optind < argc)
        return usage_error("bench", "unexpected argument '%s'", argv[optind]);
    return check_options(o);
}

/* ------------------------------------------------------------------ target */

/* Wait for fd to be readable for at most ms. Returns 1, 0 on timeout, -1. */
static int wait_readable(int fd, long ms)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    int64_t deadline = now_ms() + ms;
    int rc;

    do {
        int64_t left = deadline - now_ms();
        rc = poll(&pfd, 1, left > 0 ? (int)left : 0);
    } while (rc < 0 && errno == EINTR);
    return rc;
}

/* A udp echo service answers a datagram; returns 0, or -1 with errno. */
static int udp_probe(int fd, long wait_ms)
{
    static const char ping[] = "kodama bench probe";
    char buf[64];
    ssize_t n;
    int rc;

    if (send(fd, ping, sizeof ping - 1, 0) < 0)
        return -1;
    rc = wait_readable(fd, wait_ms);
    if (rc == 0)
        errno = ETIMEDOUT;
    if (rc <= 0)
        return -1;
    n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    return n < 0 ? -1 : 0;
}

/* Whose fault a failed probe was: the peer's (errno says how), ours (the socket,
 * or the source address), or the socket connected to itself (sk_connected_to_itself:
 * nothing listens there, and bench would measure its own echo). */
enum { PROBE_PEER, PROBE_LOCAL, PROBE_SELF };

/* Connect to (and for udp, hear back from) one address. Returns 0, or -1 with errno
 * and *local set to the PROBE_ kind of the failure. */
static int probe(const struct bench_config *cfg, const struct sockaddr *sa, socklen_t len,
                 int *local)
{
    int udp = cfg->mode == BENCH_UDP;
    long wait_ms = (long)(cfg->wait_ns / 1000000);
    int fd = socket(sa->sa_family, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
    int rc, saved;

    *local = PROBE_LOCAL;
    if (fd < 0)
        return -1;
    if (cfg->source && client_bind_source(fd, cfg->source, sa->sa_family) < 0) {
        saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    *local = PROBE_PEER;
    rc = udp ? connect(fd, sa, len) : net_connect(fd, sa, len, wait_ms);
    if (rc == 0 && sk_connected_to_itself(fd)) {
        *local = PROBE_SELF;
        rc = -1;
    }
    if (rc == 0 && udp)
        rc = udp_probe(fd, wait_ms);
    saved = errno;
    /* From a fixed source port, the probe's connection must not outlive it: closed
     * gracefully, our end would stay in FIN_WAIT (until the server closes), then in
     * TIME_WAIT (reused at once only on loopback), and the run's first connect from
     * that port would fail with EADDRNOTAVAIL. A reset frees the four-tuple now. */
    if (rc == 0 && !udp && cfg->source && cfg->source->source_port)
        net_reset_on_close(fd);
    close(fd);
    errno = saved;
    return rc;
}

static void keep_target(struct bench_config *cfg, const struct sockaddr *sa, socklen_t len)
{
    memcpy(&cfg->addr, sa, len);
    cfg->addrlen = len;
    addr_format(sa, len, cfg->target, sizeof cfg->target);
}

/* The probe failed: one line, and the verdict. */
static int cannot_reach(const struct bench_config *cfg, const struct target *t, int err, int local)
{
    char src[ADDR_TEXT_MAX + 32];

    if (local == PROBE_SELF) {
        log_msg("bench: cannot connect to %s: " SK_SELF_CONNECTED, cfg->target);
        return V_REFUSED;
    }
    if (local && (t->source_port || t->source.ss_family != AF_UNSPEC)) {
        client_source_name(t, src, sizeof src);
        log_msg("bench: cannot use %s: %s", src, strerror(err));
        return V_LOCAL;
    }
    if (local)
        log_msg("bench: socket: %s", strerror(err));
    else if (cfg->mode == BENCH_UDP && err == ETIMEDOUT)
        log_msg("bench: no reply from %s (udp) within %.3g s", cfg->target, (double)cfg->wait_ns / 1e9);
    else if (cfg->mode == BENCH_UDP)
        log_msg("bench: no reply from %s (udp): %s", cfg->target, strerror(err));
    else
        log_msg("bench: cannot connect to %s: %s", cfg->target, strerror(err));
    return local ? verdict_of_local_errno(err) : verdict_of_errno(err);
}

static int find_unix_target(const struct target *t, struct bench_config *cfg)
{
    struct sockaddr_un sun;
    int abstract = t->unix_path[0] == '@';
    socklen_t len = net_unix_addr(t->unix_path + abstract, abstract, &sun);
    int local;

    if (len == (socklen_t)-1) {
        log_msg("bench: unix:%s: %s", t->unix_path, strerror(errno));
        return V_LOCAL;
    }
    keep_target(cfg, (struct sockaddr *)&sun, len);
    if (probe(cfg, (struct sockaddr *)&sun, len, &local) < 0)
        return cannot_reach(cfg, t, errno, local);
    return V_OK;
}

/* The first address HOST resolves to that answers, netcat-style; only the last
 * failure is reported. Returns V_OK, or the verdict after printing one line. */
static int find_target(const struct target *t, struct bench_config *cfg)
{
    struct addrinfo hints = { 0 }, *res, *ai;
    int rc, err = 0, local = 0;

    if (t->unix_path)
        return find_unix_target(t, cfg);
    hints.ai_family = t->source.ss_family != AF_UNSPEC ? t->source.ss_family : t->family;
    hints.ai_socktype = cfg->mode == BENCH_UDP ? SOCK_DGRAM : SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    rc = getaddrinfo(t->host, t->port, &hints, &res);
    if (rc != 0) {
        char why[160];

        log_msg("bench: %s: %s", t->host, client_resolve_why(t, rc, why, sizeof why));
        return verdict_of_gai(rc, errno);
    }
    for (ai = res; ai; ai = ai->ai_next) {
        keep_target(cfg, ai->ai_addr, ai->ai_addrlen);
        if (probe(cfg, ai->ai_addr, ai->ai_addrlen, &local) == 0)
            break;
        err = errno;
        if (local)
            break;      /* no other address mends a local failure */
    }
    freeaddrinfo(res);
    if (ai == NULL || local)
        return cannot_reach(cfg, t, err, local);
    return V_OK;
}

/* --tls: the context, and one handshake with the target that answered, so that a
 * certificate that does not verify is one line and exit 7 at once, not a run of
 * failed connections. */
static int start_tls(struct bench_opts *o)
{
    struct bench_config *cfg = &o->cfg;
    long wait_ms = (long)(cfg->wait_ns / 1000000);
    char err[CLIENT_TLS_ERR_LEN];
    struct peer p = { .fd = -1 };
    struct report r;
    int v;

    if (!o->tls.on)
        return V_OK;
    if (client_tls_setup(&o->tls, err, sizeof err) != V_OK) {
        log_msg("bench: %s", err);
        return V_LOCAL;
    }
    cfg->tls_ctx = o->tls.ctx;
    cfg->tls_cfg = &o->tls.cfg;
    cfg->tls_host = o->t.host;
    cfg->tls_resume = o->tls.resume;
    report_start(&r, &o->t);
    p.fd = socket(cfg->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (p.fd < 0 || net_connect(p.fd, (struct sockaddr *)&cfg->addr, cfg->addrlen, wait_ms) < 0 ||
        net_set_nonblock(p.fd, 1) < 0) {
        v = cannot_reach(cfg, &o->t, errno, p.fd < 0);
        if (p.fd >= 0)
            close(p.fd);
        return v;
    }
    snprintf(p.addr, sizeof p.addr, "%s", cfg->target);
    v = client_tls_handshake(&o->tls, &p, o->t.host, wait_ms, 0, 1, &r);
    if (v != V_OK)
        log_msg("bench: %s", r.error);
    tls_conn_free(p.tls);
    close(p.fd);
    return v;
}

/* Each connection is a descriptor: lift the soft limit to the hard one. */
static int raise_nofile(const struct bench_config *cfg)
{
    rlim_t need = (rlim_t)cfg->conns + cfg->threads + 32;
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
        log_msg("bench: getrlimit RLIMIT_NOFILE: %s", strerror(errno));
        return -1;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
            log_msg("bench: setrlimit RLIMIT_NOFILE: %s", strerror(errno));
            return -1;
        }
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
        log_msg("bench: -c %lu needs %llu open files; the limit is %llu", cfg->conns,
                (unsigned long long)need, (unsigned long long)rl.rlim_cur);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ run */

/* What stopped a run in which nothing completed at all: the failure's own verdict,
 * or the kind of error counted. */
static int nothing_completed(const struct bench_result *res)
{
    const struct bench_counts *n = &res->n;

    if (res->failed)
        return res->fail_verdict;
    if (n->resets > 0)
        return V_RESET;
    if (n->corrupt > 0)
        return V_MISMATCH;
    return V_TIMEOUT;   /* timeouts, lost datagrams, or no answer in the period */
}

static int verdict(const struct bench_config *cfg, const struct bench_result *res)
{
    const struct bench_counts *n = &res->n;
    int rc = V_OK;

    if (res->failed) {
        log_msg("bench: %s", res->fail_msg);
        rc = V_MISMATCH;
    }
    if (bench_errors(n) > 0) {
        log_msg("bench: %llu errors against %s: corrupt %llu lost %llu resets %llu timeouts %llu",
                (unsigned long long)bench_errors(n), cfg->target, (unsigned long long)n->corrupt,
                (unsigned long long)n->lost, (unsigned long long)n->resets,
                (unsigned long long)n->timeouts);
        rc = V_MISMATCH;
    }
    if (n->msgs == 0 && rc == V_OK)
        log_msg("bench: no %s completed against %s in the measured period",
                cfg->mode == BENCH_HELLO ? "connection" : "message", cfg->target);
    if (n->msgs == 0)
        return nothing_completed(res);
    return rc;
}

/* --hgrm FILE: the distribution for HdrHistogram's plotter. */
static int write_hgrm(const char *path, const struct histogram *h)
{
    FILE *f = fopen(path, "w");
    int rc;

    if (f == NULL) {
        log_msg("bench: cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    rc = hist_write_hgrm(f, h, 1e6);
    if (fclose(f) != 0 || rc < 0) {
        log_msg("bench: cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* The report of a run, or of merged runs, and its exit status. */
static int report(struct bench_opts *o, struct bench_result *res)
{
    int rc;

    if (o->json)
        bench_report_json(&o->cfg, res);
    else
        bench_report_text(&o->cfg, res);
    rc = verdict(&o->cfg, res);
    if (fflush(stdout) == EOF || ferror(stdout)) {
        log_msg("bench: cannot write the report: %s", strerror(errno));
        rc = V_LOCAL;
    }
    if (o->hgrm && write_hgrm(o->hgrm, res->hist) < 0)
        rc = V_LOCAL;
    return rc;
}

int cmd_bench(int argc, char **argv)
{
    struct bench_opts o = {
        .cfg = { .mode = BENCH_ECHO, .conns = 1, .size = 64, .depth = 1, .threads = 1,
                 .duration_ns = 5000000000LL },
        .t.family = AF_UNSPEC,
    };
    struct bench_result res;
    int rc = parse_bench_args(argc, argv, &o);

    if (rc != EXIT_OK)
        return rc;
    if (o.merge) {
        o.cfg.conns = o.cfg.threads = 0;    /* the runs' sums */
        if (bench_merge(argv + optind, (size_t)(argc - optind), &o.cfg, &res) < 0) {
            free(res.hist);
            return V_LOCAL;
        }
    } else {
        o.cfg.progress = !o.quiet && isatty(STDERR_FILENO);
        if (o.t.source.ss_family != AF_UNSPEC || o.t.source_port)
            o.cfg.source = &o.t;
        rc = find_target(&o.t, &o.cfg);
        if (rc == V_OK)
            rc = start_tls(&o);
        if (rc == V_OK && raise_nofile(&o.cfg) < 0)
            rc = V_LOCAL;
        if (rc == V_OK && bench_run(&o.cfg, &res) < 0) {
            free(res.hist);
            rc = V_LOCAL;
        }
        if (rc != V_OK) {
            client_tls_free(&o.tls);
            return rc;
        }
    }
    rc = report(&o, &res);
    free(res.hist);
    client_tls_free(&o.tls);
    return rc;
}
