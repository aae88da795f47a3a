/* cmd_serve.c — `kodama serve`: parse SPECs and options, bind, serve. */
#include <netinet/in.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/addr.h"
#include "proto/spec.h"
#include "lib/cli.h"
#include "serve/control.h"
#include "serve/inetd.h"
#include "serve/listen.h"
#include "lib/loop_uring.h"
#include "lib/log.h"
#include "lib/trace.h"
#include "serve/metrics.h"
#include "serve/privdrop.h"
#include "serve/serve.h"
#include "serve/server.h"
#include "serve/services/service.h"
#include "serve/systemd.h"
#include "serve/tls_setup.h"
#include "serve/services/svc_formats.h"
#include "lib/util.h"

static const char *const default_specs[] = { "hello@8080", "echo@7007" };

/* --inetd SERVICE/udp exits this long after the last datagram (no --idle-timeout). */
#define INETD_UDP_IDLE_MS 30000

void help_serve(FILE *out)
{
    fprintf(out,
        "Usage: kodama serve [-4|-6] [-v] [OPTION...] [SPEC...]\n\n"
        "Serve each SPEC until SIGINT or SIGTERM.\n"
        "SPEC is SERVICE@ADDRESS[/tcp|/udp][+proxy][+tls][,KEY=VALUE...]:\n"
        "  ADDRESS  PORT (all addresses: one dual-stack [::] socket), HOST:PORT,\n"
        "           [IPV6]:PORT, unix:PATH or unix:@NAME (abstract); port 0 = any free;\n"
        "           PORT-PORT: a listener on each port of the range\n"
        "  proto    /tcp or /udp; without it, both (unix sockets: stream only)\n"
        "  +proxy   (after /tcp, or a unix address) each connection starts with a PROXY\n"
        "           protocol v1 or v2 header naming the client (behind a load balancer)\n"
        "  +tls     (after /tcp and +proxy, or a unix address) speak TLS (see below)\n"
        "  KEY=VALUE faults (D: a duration, 250ms or 2s; N: bytes, k or m suffix; P: 0 to 1):\n"
        "           latency=D[~J] rate=N (tcp and udp), slice=N[~V] slice-delay=D\n"
        "           greet-delay=D close-after=N reset-after=N stall-after=N (tcp),\n"
        "           drop=P dup=P (udp), toxicity=P name=NAME (both); relay@ADDRESS takes\n"
        "           to=HOST:PORT or to=unix:PATH, connect-timeout=D, send-proxy,\n"
        "           send-proxy-v2, and up-KEY=VALUE faults toward its target\n"
        "  In a unix path '\\,' is a comma; a trailing /tcp ends the path (unix:/x/tcp/tcp)\n"
        "Default: hello@8080 echo@7007\n\nServices:\n");
    for (size_t i = 0; services[i]; i++)
        fprintf(out, "  %-8s %s\n", services[i]->name, services[i]->summary);
    fprintf(out,
        "\nOptions:\n"
        "  -4                 IPv4 only\n"
        "  -6                 IPv6 only\n"
        "  -m, --message TEXT hello's greeting (escapes \\n \\r \\t \\\\;\n"
        "                     default 'Hello from server!\\n')\n"
        "      --name NAME    the instance name info reports (default: the host\n"
        "                     name; at most 64 bytes)\n"
        "      --info-format kv|json  info's line: key=value pairs (default) or JSON\n"
        "      --io MODE      epoll, uring (io_uring) or auto (default: $KODAMA_IO,\n"
        "                     else auto: uring where the kernel allows it, else epoll)\n"
        "  -t, --threads N    event loops, one per thread (default: online CPUs)\n"
        "      --batch-wait USEC  io_uring, under load: let completions gather up to\n"
        "                     USEC microseconds before handling them: less CPU per\n"
        "                     message, up to USEC more latency (default 0: never;\n"
        "                     Linux 6.12 or later)\n"
        "  -v, --verbose      log each connection and datagram, and counters at exit\n"
        "  -h, --help         show this help\n\n"
        "Limits (each refusal or drop is counted, and logged at most once a second):\n"
        "      --max-conns N       connections open at once (default: what the\n"
        "                          descriptor limit allows)\n"
        "      --max-per-ip N      connections from one address, IPv6: one /64\n"
        "                          (default 64; 0: no limit)\n"
        "      --idle-timeout SECS close connections silent this long (default 300)\n"
        "      --send-timeout SECS reset a peer that reads nothing this long while\n"
        "                          output waits for it (default 30)\n"
        "      --max-buffer BYTES  echoed bytes held per connection; K, M suffixes\n"
        "                          (default 64K)\n"
        "      --udp-guard on|off  drop datagrams from ports below 1024 or from our\n"
        "                          own ports, limit each source's rate, never answer\n"
        "                          more than 3x the bytes that came in, counted on\n"
        "                          the wire (default on)\n"
        "      --udp-rate PPS      datagrams answered per second per source address\n"
        "                          (default 100; 0: no limit)\n"
        "      --limit-loopback    apply --max-per-ip and --udp-rate to loopback\n"
        "                          sources too (they are exempt by default)\n"
        "      --drain-timeout SECS after SIGTERM, serve open connections up to this\n"
        "                          long before closing them (default 5)\n"
        "      --proxy-timeout SECS on +proxy listeners, drop a connection whose PROXY\n"
        "                          header has not come within this time (default 5)\n"
        "      --user NAME         bind, then run as this user\n"
        "A timeout of 0 means none.\n\n"
        "TLS (+tls listeners; without --cert, a self-signed certificate):\n"
        "      --cert FILE         the certificate (PEM, chain after it), read again\n"
        "                          on SIGHUP\n"
        "      --key FILE          its private key\n"
        "      --client-ca FILE    ask each client for a certificate signed by one\n"
        "                          in FILE, and check it\n"
        "      --client-cert optional|require  with --client-ca: serve a client\n"
        "                          without one, or fail it (default require)\n"
        "      --alpn LIST         the protocols offered, by preference: h2,http/1.1\n"
        "      --tls-timeout SECS  reset a connection whose handshake has not\n"
        "                          completed this long (default 10)\n\n"
        "Started by an init system (no SPEC):\n"
        "  socket activation   with LISTEN_PID/LISTEN_FDS from systemd, serve the passed\n"
        "                      sockets; each one's name (LISTEN_FDNAMES) is its service\n"
        "      --inetd SERVICE[/udp]  serve the connection on stdin (inetd nowait), or\n"
        "                      with /udp the datagram socket on stdin (inetd wait; exit\n"
        "                      after --idle-timeout without a datagram, default 30)\n\n"
        "Seen from outside:\n"
        "      --metrics ADDR      serve Prometheus metrics at http://ADDR/metrics;\n"
        "                          ADDR is PORT, HOST:PORT or [IPV6]:PORT\n"
        "      --control ADDR      serve the fault API (GET, PUT, DELETE /faults/NAME)\n"
        "                          on unix:PATH, or HOST:PORT on a loopback address\n"
        "                          (PORT alone: 127.0.0.1)\n"
        "      --control-any       allow --control on any address: it has no\n"
        "                          authentication\n"
        "      --seed N            the faults' random choices repeat from run to run\n"
        "      --log-format FMT    text (default; after 'ready', lines start with the\n"
        "                          UTC time unless stderr is the journal) or json\n"
        "                          (one object per line)\n"
        "      --trace             narrate each connection's socket calls on stderr\n"
        "                          (io_uring: each submission and completion)\n\n"
        "stderr gets 'kodama: listening SERVICE PROTO ADDR' per listener, then\n"
        "'kodama: ready'. Exit status: 0 stopped by a signal, 1 failure, 2 usage error.\n");
}

#define MAX_THREADS 1024
#define BATCH_WAIT_MAX_US 1000000

static size_t default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    return n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : (size_t)n;
}

/* For measuring (docs/DESIGN.md): KODAMA_LISTEN=shared makes every loop serve the same
 * sockets (EPOLLEXCLUSIVE) instead of SO_REUSEPORT siblings. */
static int share_listeners_wanted(void)
{
    const char *mode = getenv("KODAMA_LISTEN");

    return mode && strcmp(mode, "shared") == 0;
}

static int io_mode_valid(const char *mode)
{
    return strcmp(mode, "epoll") == 0 || strcmp(mode, "uring") == 0 || strcmp(mode, "auto") == 0;
}

struct serve_opts {
    int family;
    const char *io;
    struct serve_config cfg;
    char *message;
    struct run_as user;
    int have_user;
    const char *inetd;          /* --inetd SERVICE[/udp] */
    int idle_given;             /* --idle-timeout was given */
    char hostname[INFO_NAME_MAX + 1];
    struct spec metrics;            /* --metrics ADDR */
    int have_metrics;
    const char *control;            /* --control ADDR */
    int control_any;
    enum log_format log_format;
    struct tls_opts tls;
};

enum {
    OPT_IO = 256, OPT_MAX_CONNS, OPT_MAX_PER_IP, OPT_IDLE_TIMEOUT, OPT_SEND_TIMEOUT,
    OPT_MAX_BUFFER, OPT_UDP_GUARD, OPT_UDP_RATE, OPT_LIMIT_LOOPBACK, OPT_DRAIN_TIMEOUT, OPT_USER,
    OPT_INETD,
    OPT_NAME, OPT_INFO_FORMAT,
    OPT_PROXY_TIMEOUT,
    OPT_METRICS, OPT_LOG_FORMAT, OPT_TRACE,
    OPT_SEED, OPT_CONTROL, OPT_CONTROL_ANY, OPT_BATCH_WAIT,
};

static const struct option serve_longopts[] = {
    { "message", required_argument, NULL, 'm' },
    { "threads", required_argument, NULL, 't' },
    { "io", required_argument, NULL, OPT_IO },
    { "batch-wait", required_argument, NULL, OPT_BATCH_WAIT },
    { "verbose", no_argument, NULL, 'v' },
    { "help", no_argument, NULL, 'h' },
    { "max-conns", required_argument, NULL, OPT_MAX_CONNS },
    { "max-per-ip", required_argument, NULL, OPT_MAX_PER_IP },
    { "idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT },
    { "send-timeout", required_argument, NULL, OPT_SEND_TIMEOUT },
    { "max-buffer", required_argument, NULL, OPT_MAX_BUFFER },
    { "udp-guard", required_argument, NULL, OPT_UDP_GUARD },
    { "udp-rate", required_argument, NULL, OPT_UDP_RATE },
    { "limit-loopback", no_argument, NULL, OPT_LIMIT_LOOPBACK },
    { "drain-timeout", required_argument, NULL, OPT_DRAIN_TIMEOUT },
    { "user", required_argument, NULL, OPT_USER },
    { "inetd", required_argument, NULL, OPT_INETD },
    { "name", required_argument, NULL, OPT_NAME },
    { "info-format", required_argument, NULL, OPT_INFO_FORMAT },
    { "proxy-timeout", required_argument, NULL, OPT_PROXY_TIMEOUT },
    { "metrics", required_argument, NULL, OPT_METRICS },
    { "log-format", required_argument, NULL, OPT_LOG_FORMAT },
    { "trace", no_argument, NULL, OPT_TRACE },
    { "seed", required_argument, NULL, OPT_SEED },
    { "control", required_argument, NULL, OPT_CONTROL },
    { "control-any", no_argument, NULL, OPT_CONTROL_ANY },
    { NULL, 0, NULL, 0 },
};
#define SERVE_LONGOPTS_N (sizeof serve_longopts / sizeof serve_longopts[0] - 1)

#define MAX_CONNS_LIMIT 10000000UL
#define MAX_BUFFER_MIN 1024UL
#define MAX_BUFFER_MAX (64UL * 1024 * 1024)

static void serve_defaults(struct serve_opts *o)
{
    o->cfg.threads = default_threads();
    o->cfg.share_listeners = share_listeners_wanted();
    o->cfg.limits.max_per_ip = 64;
    o->cfg.limits.udp_guard = 1;
    o->cfg.limits.udp_rate = 100;
    o->cfg.idle_timeout_ms = 300 * 1000;
    o->cfg.send_timeout_ms = 30 * 1000;
    o->cfg.drain_timeout_ms = 5 * 1000;
    o->cfg.proxy_timeout_ms = 5 * 1000;
    o->cfg.max_buffer = ECHO_BUF_SIZE;
    o->cfg.inetd_conn = -1;
    tls_opts_defaults(&o->tls);
}

static int opt_count(const char *name, const char *arg, unsigned long min, unsigned long max,
                     unsigned long *out)
{
    char err[KODAMA_ERR_LEN];

    if (parse_uint(arg, min, max, out, err, sizeof err) < 0)
        return usage_error("serve", "%s '%s': %s (%lu to %lu)", name, arg, err, min, max);
    return EXIT_OK;
}

static int opt_timeout(const char *name, const char *arg, long *ms)
{
    char err[KODAMA_ERR_LEN];

    *ms = parse_timeout(arg, err, sizeof err);
    if (*ms < 0)
        return usage_error("serve", "%s '%s': %s", name, arg, err);
    return EXIT_OK;
}

/* The options of LIMITS (kodama.1); returns EXIT_OK or EXIT_USAGE. */
static int limit_option(int c, const char *arg, struct serve_opts *o)
{
    struct serve_config *cfg = &o->cfg;
    char err[KODAMA_ERR_LEN];
    unsigned long n = 0;
    int rc = EXIT_OK;

    switch (c) {
    case OPT_MAX_CONNS:
        rc = opt_count("--max-conns", arg, 1, MAX_CONNS_LIMIT, &n);
        cfg->limits.max_conns = n;
        break;
    case OPT_MAX_PER_IP:
        rc = opt_count("--max-per-ip", arg, 0, MAX_CONNS_LIMIT, &n);
        cfg->limits.max_per_ip = (unsigned)n;
        break;
    case OPT_UDP_RATE:
        rc = opt_count("--udp-rate", arg, 0, 10000000, &n);
        cfg->limits.udp_rate = (unsigned)n;
        break;
    case OPT_IDLE_TIMEOUT:
        o->idle_given = 1;
        return opt_timeout("--idle-timeout", arg, &cfg->idle_timeout_ms);
    case OPT_SEND_TIMEOUT: return opt_timeout("--send-timeout", arg, &cfg->send_timeout_ms);
    case OPT_DRAIN_TIMEOUT: return opt_timeout("--drain-timeout", arg, &cfg->drain_timeout_ms);
    case OPT_PROXY_TIMEOUT: return opt_timeout("--proxy-timeout", arg, &cfg->proxy_timeout_ms);
    case OPT_MAX_BUFFER:
        if (parse_bytes(arg, MAX_BUFFER_MIN, MAX_BUFFER_MAX, &n, err, sizeof err) < 0)
            return usage_error("serve", "--max-buffer '%s': %s (1K to 64M)", arg, err);
        cfg->max_buffer = n;
        break;
    case OPT_UDP_GUARD:
        if (strcmp(arg, "on") != 0 && strcmp(arg, "off") != 0)
            return usage_error("serve", "--udp-guard '%s': not on or off", arg);
        cfg->limits.udp_guard = strcmp(arg, "on") == 0;
        break;
    case OPT_LIMIT_LOOPBACK: cfg->limits.limit_loopback = 1; break;
    case OPT_SEED:
        rc = opt_count("--seed", arg, 0, ULONG_MAX, &n);
        cfg->seed = n;
        cfg->seeded = 1;
        break;
    case OPT_USER:
        if (run_as_lookup(arg, &o->user, err, sizeof err) < 0)
            return usage_error("serve", "--user '%s': %s", arg, err);
        o->have_user = 1;
        break;
    }
    return rc;
}

/* info's default name: the host's. */
static void default_name(struct serve_opts *o)
{
    if (gethostname(o->hostname, sizeof o->hostname) < 0)
        snprintf(o->hostname, sizeof o->hostname, "kodama");
    o->hostname[sizeof o->hostname - 1] = '\0';   /* gethostname may not end it */
    o->cfg.svc.name = o->hostname;
}

/* --name and --info-format; returns EXIT_OK or EXIT_USAGE. */
static int info_option(int c, const char *arg, struct serve_opts *o)
{
    if (c == OPT_NAME) {
        size_t len = strlen(arg);

        if (len == 0 || len > INFO_NAME_MAX)
            return usage_error("serve", "--name '%s': not 1 to %d bytes", arg, INFO_NAME_MAX);
        o->cfg.svc.name = arg;
        return EXIT_OK;
    }
    if (strcmp(arg, "kv") != 0 && strcmp(arg, "json") != 0)
        return usage_error("serve", "--info-format '%s': not kv or json", arg);
    o->cfg.svc.info_json = strcmp(arg, "json") == 0;
    return EXIT_OK;
}

/* The options of "Seen from outside" in --help; returns EXIT_OK or EXIT_USAGE. */
static int outside_option(int c, const char *arg, struct serve_opts *o)
{
    char err[KODAMA_ERR_LEN];

    switch (c) {
    case OPT_METRICS:
        if (metrics_addr_parse(arg, &o->metrics, err, sizeof err) < 0)
            return usage_error("serve", "--metrics '%s': %s", arg, err);
        o->have_metrics = 1;
        break;
    case OPT_LOG_FORMAT:
        if (strcmp(arg, "text") != 0 && strcmp(arg, "json") != 0)
            return usage_error("serve", "--log-format '%s': not text or json", arg);
        o->log_format = strcmp(arg, "json") == 0 ? LOG_FORMAT_JSON : LOG_FORMAT_TEXT;
        break;
    case OPT_TRACE:
        trace_start();      /* before any thread: the flag is only read after */
        break;
    case OPT_CONTROL: o->control = arg; break;
    case OPT_CONTROL_ANY: o->control_any = 1; break;
    }
    return EXIT_OK;
}

/* serve's own options and the TLS ones, in one getopt_long table. */
static struct option all_longopts[SERVE_LONGOPTS_N + TLS_LONGOPTS_N + 1];

static const struct option *longopts_table(void)
{
    memcpy(all_longopts, serve_longopts, SERVE_LONGOPTS_N * sizeof serve_longopts[0]);
    memcpy(all_longopts + SERVE_LONGOPTS_N, tls_longopts, TLS_LONGOPTS_N * sizeof tls_longopts[0]);
    memset(&all_longopts[SERVE_LONGOPTS_N + TLS_LONGOPTS_N], 0, sizeof all_longopts[0]);
    return all_longopts;
}

static int parse_serve_args(int argc, char **argv, struct serve_opts *o)
{
    const struct option *longopts = longopts_table();
    char err[KODAMA_ERR_LEN];
    const char *text = "Hello from server!\\n";
    unsigned long n;
    int c;
    long len;

    opterr = 0;
    serve_defaults(o);
    default_name(o);
    o->io = getenv("KODAMA_IO");
    if (o->io == NULL)
        o->io = "auto";
    if (!io_mode_valid(o->io))
        return usage_error("serve", "KODAMA_IO='%s': not epoll, uring or auto", o->io);
    while ((c = getopt_long(argc, argv, ":46hm:t:v", longopts, NULL)) != -1) {
        switch (c) {
        case '4': o->family = AF_INET; break;
        case '6': o->family = AF_INET6; break;
        case 'm': text = optarg; break;
        case 't':
            if (parse_uint(optarg, 1, MAX_THREADS, &n, err, sizeof err) < 0)
                return usage_error("serve", "--threads '%s': %s (1 to %d)", optarg, err,
                                   MAX_THREADS);
            o->cfg.threads = n;
            break;
        case OPT_BATCH_WAIT:
            if (parse_uint(optarg, 0, BATCH_WAIT_MAX_US, &n, err, sizeof err) < 0)
                return usage_error("serve", "--batch-wait '%s': %s (0 to %d microseconds)",
                                   optarg, err, BATCH_WAIT_MAX_US);
            o->cfg.batch_wait_us = (unsigned)n;
            break;
        case OPT_IO:
            if (!io_mode_valid(optarg))
                return usage_error("serve", "--io '%s': not epoll, uring or auto", optarg);
            o->io = optarg;
            break;
        case 'v': o->cfg.verbose = 1; break;
        case OPT_INETD: o->inetd = optarg; break;
        case 'h': help_serve(stdout); exit(EXIT_OK);
        case '?': case ':': return option_error("serve", c, argv, longopts);
        case OPT_NAME: case OPT_INFO_FORMAT:
            if (info_option(c, optarg, o) != EXIT_OK)
                return EXIT_USAGE;
            break;
        case OPT_METRICS: case OPT_LOG_FORMAT: case OPT_TRACE: case OPT_CONTROL:
        case OPT_CONTROL_ANY:
            if (outside_option(c, optarg, o) != EXIT_OK)
                return EXIT_USAGE;
            break;
        default:
            if ((c >= TLS_OPT_FIRST ? tls_option(c, optarg, &o->tls)
                                    : limit_option(c, optarg, o)) != EXIT_OK)
                return EXIT_USAGE;
            break;
        }
    }
    o->message = xmalloc(strlen(text) + 1);
    len = unescape(text, o->message, err, sizeof err);
    if (len < 0)
        return usage_error("serve", "%s in --message", err);
    o->cfg.svc.message = o->message;
    o->cfg.svc.message_len = (size_t)len;
    return EXIT_OK;
}

static int parse_specs(int n, char **texts, struct spec *specs)
{
    char err[KODAMA_ERR_LEN];

    for (int i = 0; i < n; i++) {
        if (spec_parse(texts[i], &specs[i], err, sizeof err) < 0)
            return usage_error("serve", "%s", err);
        if (service_find(specs[i].service) == NULL)
            return usage_error("serve", "unknown service '%s' in '%s'", specs[i].service, texts[i]);
    }
    return EXIT_OK;
}

/* auto takes io_uring where it works and says why not where it does not; asked for
 * by name, it must work. */
static int choose_io(const char *mode, struct serve_config *cfg)
{
    if (strcmp(mode, "epoll") != 0 && uring_available() == 0) {
        cfg->io = LOOP_IO_URING;
        return 0;
    }
    if (strcmp(mode, "uring") == 0) {
        log_msg("cannot use io_uring: %s", strerror(errno));
        return -1;
    }
    if (strcmp(mode, "auto") == 0 && cfg->verbose)
        log_msg("io_uring unavailable (%s); using epoll", strerror(errno));
    cfg->io = LOOP_IO_EPOLL;
    if (cfg->batch_wait_us > 0)
        log_msg("--batch-wait is for io_uring; epoll handles each batch as it comes");
    return 0;
}

/* --metrics: bound with the listeners, so that a port in use is a start-up failure
 * and a port below 1024 works with --user. */
static int listen_metrics(const struct serve_opts *o, struct metrics_listen *ml)
{
    char err[KODAMA_ERR_LEN + ADDR_TEXT_MAX];

    if (metrics_listen(&o->metrics, o->family, ml, err, sizeof err) < 0) {
        log_msg("%s", err);
        return -1;
    }
    return 0;
}

/* The SPECs (or the defaults) bound. */
static int listen_on_specs(struct serve_opts *o, int nspecs, char **texts,
                           struct listener **ls, size_t *nls)
{
    char err[KODAMA_ERR_LEN + ADDR_TEXT_MAX];
    struct spec *specs;
    int rc;

    if (nspecs == 0) {
        nspecs = 2;
        texts = (char **)default_specs;
    }
    specs = xcalloc((size_t)nspecs, sizeof *specs);
    rc = parse_specs(nspecs, texts, specs);
    if (rc == EXIT_OK && listen_specs(specs, (size_t)nspecs, o->family,
                                     o->cfg.threads > 1 && !o->cfg.share_listeners, ls, nls,
                                     err, sizeof err) < 0) {
        log_msg("%s", err);
        rc = EXIT_FAIL;
    }
    free(specs);
    return rc;
}

/* Socket activation: the sockets systemd passed, if any (*nls 0 if none). Their
 * names say the services; SPECs beside them would be ambiguous. */
static int listen_on_passed(int nspecs, struct listener **ls, size_t *nls)
{
    char err[KODAMA_ERR_LEN + ADDR_TEXT_MAX];
    char **names;
    int n = sd_take_listen_fds(&names, err, sizeof err), rc = EXIT_OK;

    *nls = 0;
    if (n < 0) {
        log_msg("%s", err);
        return EXIT_FAIL;
    }
    if (n > 0 && nspecs > 0)
        rc = usage_error("serve", "SPECs given, but systemd passed %d socket%s (LISTEN_FDS): "
                         "use one or the other", n, n == 1 ? "" : "s");
    else if (n > 0 && listen_fds(SD_LISTEN_FDS_START, (size_t)n, names, ls, err,
                                 sizeof err) < 0) {
        log_msg("%s", err);
        rc = EXIT_FAIL;
    }
    if (n > 0 && rc == EXIT_OK)
        *nls = (size_t)n;
    sd_names_free(names, n > 0 ? (size_t)n : 0);
    return rc;
}

/* --inetd SERVICE[/udp]: the socket on stdin, one loop on epoll (a process per
 * connection or per burst of datagrams: io_uring's rings would cost more to set up
 * than they save). */
static int listen_on_stdin(struct serve_opts *o, int nspecs, struct listener **ls,
                           size_t *nls)
{
    char err[KODAMA_ERR_LEN + ADDR_TEXT_MAX], name[32];
    const char *slash = strchr(o->inetd, '/');
    size_t len = slash ? (size_t)(slash - o->inetd) : strlen(o->inetd);
    const struct service *svc;
    int udp = slash && strcmp(slash, "/udp") == 0;

    if (nspecs > 0)
        return usage_error("serve", "--inetd serves stdin: no SPEC");
    if (len >= sizeof name || (slash && !udp && strcmp(slash, "/tcp") != 0))
        return usage_error("serve", "--inetd '%s': not SERVICE, SERVICE/tcp or SERVICE/udp",
                           o->inetd);
    memcpy(name, o->inetd, len);
    name[len] = '\0';
    svc = service_find(name);
    if (svc == NULL)
        return usage_error("serve", "unknown service '%s' in --inetd '%s'", name, o->inetd);
    if (svc->relay)
        return usage_error("serve", "--inetd '%s': a relay needs to=, which only a SPEC or "
                           "FileDescriptorName= can give", o->inetd);
    *ls = xcalloc(1, sizeof **ls);
    if (inetd_take_stdin(svc, udp, *ls, &o->cfg.inetd_conn, err, sizeof err) < 0) {
        free(*ls);
        log_msg("%s", err);
        return EXIT_FAIL;
    }
    *nls = 1;
    o->cfg.inetd = 1;
    o->cfg.threads = 1;
    o->io = "epoll";
    if (udp && !o->idle_given)
        o->cfg.idle_timeout_ms = INETD_UDP_IDLE_MS;
    return EXIT_OK;
}

/* Listeners from stdin (--inetd), from systemd, or bound from the SPECs. */
static int get_listeners(struct serve_opts *o, int nspecs, char **texts,
                         struct listener **ls, size_t *nls)
{
    int rc;

    if (o->inetd && o->have_metrics)
        return usage_error("serve", "--metrics with --inetd: each connection's process "
                           "would need a port of its own");
    if (o->inetd && o->control)
        return usage_error("serve", "--control with --inetd: each connection's process "
                           "would need a port of its own");
    if (o->control_any && !o->control)
        return usage_error("serve", "--control-any without --control");
    if (o->inetd)
        return listen_on_stdin(o, nspecs, ls, nls);
    rc = listen_on_passed(nspecs, ls, nls);
    if (rc != EXIT_OK || *nls > 0)
        return rc;
    return listen_on_specs(o, nspecs, texts, ls, nls);
}

/* --control: bound with the listeners, as --metrics is. Returns EXIT_OK, or
 * EXIT_USAGE / EXIT_FAIL (reported). */
static int listen_control(const struct serve_opts *o, struct control_listen *cl)
{
    char err[KODAMA_ERR_LEN + ADDR_TEXT_MAX];
    int usage;

    if (control_listen(o->control, o->control_any, cl, &usage, err, sizeof err) == 0)
        return EXIT_OK;
    if (usage)
        return usage_error("serve", "%s", err);
    log_msg("%s", err);
    return EXIT_FAIL;
}

/* Type=notify: a NOTIFY_SOCKET we cannot use only costs the notifications. */
static void notify_open(void)
{
    char err[KODAMA_ERR_LEN];

    if (sd_notify_open(err, sizeof err) < 0)
        log_msg("%s; not notifying the service manager", err);
}

int cmd_serve(int argc, char **argv)
{
    struct serve_opts o = { .family = AF_UNSPEC };
    struct metrics_listen ml = { .fd = -1 };
    struct control_listen cl = { .fd = -1 };
    struct listener *ls = NULL;
    size_t nls = 0;
    int rc;

    inetd_log_setup();
    rc = parse_serve_args(argc, argv, &o);
    if (rc == EXIT_OK) {
        log_setup(o.log_format);    /* usage errors stay plain text (log_vusage) */
        rc = get_listeners(&o, argc - optind, argv + optind, &ls, &nls);
    }
    if (rc == EXIT_OK && o.have_metrics) {
        if (listen_metrics(&o, &ml) < 0) {
            listeners_close(ls, nls);
            rc = EXIT_FAIL;
        }
        o.cfg.metrics = &ml;
    }
    if (rc == EXIT_OK) {
        rc = tls_opts_check(&o.tls, ls, nls);
        if (rc == EXIT_OK && tls_setup(&o.tls, ls, nls, o.hostname, &o.cfg.tls) < 0)
            rc = EXIT_FAIL;
        if (rc != EXIT_OK)
            listeners_close(ls, nls);
    }
    o.cfg.tls_timeout_ms = o.tls.timeout_ms;
    if (rc == EXIT_OK && o.cfg.tls && o.cfg.verbose) {
        const char *why = NULL;

        if (tls_ktls_available(&why))
            log_msg("kTLS: available: the kernel takes the record layer after each handshake");
        else
            log_msg("kTLS: unavailable (%s): OpenSSL does the records", why);
    }
    if (rc == EXIT_OK && o.control) {
        rc = listen_control(&o, &cl);
        if (rc != EXIT_OK)
            listeners_close(ls, nls);
        o.cfg.control = &cl;
    }
    if (rc == EXIT_OK)
        notify_open();
    if (o.have_user)
        o.cfg.user = &o.user;
    if (rc == EXIT_OK && choose_io(o.io, &o.cfg) < 0) {
        listeners_close(ls, nls);
        rc = EXIT_FAIL;
    }
    if (rc == EXIT_OK)
        rc = server_run(ls, nls, &o.cfg);
    if (ml.fd >= 0)
        close(ml.fd);
    tls_server_free(o.cfg.tls);
    control_listen_close(&cl);
    free(o.message);
    return rc;
}
