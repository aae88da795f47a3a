/* cmd_serve.c — `kodama serve`: parse SPECs and options, bind, serve. */
#include <netinet/in.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "cli.h"
#include "listen.h"
#include "loop_uring.h"
#include "log.h"
#include "server.h"
#include "service.h"
#include "util.h"

static const char *const default_specs[] = { "hello@8080", "echo@7007" };

void help_serve(FILE *out)
{
    fprintf(out,
        "Usage: kodama serve [-4|-6] [-v] [--message TEXT] [SPEC...]\n\n"
        "Serve each SPEC until SIGINT or SIGTERM. SPEC is SERVICE@ADDRESS[/tcp|/udp]:\n"
        "  ADDRESS  PORT (all addresses: one dual-stack [::] socket), HOST:PORT,\n"
        "           [IPV6]:PORT, unix:PATH or unix:@NAME (abstract); port 0 = any free\n"
        "  proto    /tcp or /udp; without it, both (unix sockets: stream only)\n"
        "Default: hello@8080 echo@7007\n\nServices:\n");
    for (size_t i = 0; services[i]; i++)
        fprintf(out, "  %-6s %s\n", services[i]->name, services[i]->summary);
    fprintf(out,
        "\nOptions:\n"
        "  -4                 IPv4 only\n"
        "  -6                 IPv6 only\n"
        "  -m, --message TEXT hello's greeting (escapes \\n \\r \\t \\\\;\n"
        "                     default 'Hello from server!\\n')\n"
        "      --io MODE      epoll, uring (io_uring) or auto (default: $KODAMA_IO,\n"
        "                     else auto: uring where the kernel allows it, else epoll)\n"
        "  -t, --threads N    event loops, one per thread (default: online CPUs)\n"
        "  -v, --verbose      log each connection and datagram\n"
        "  -h, --help         show this help\n\n"
        "stderr gets 'kodama: listening SERVICE PROTO ADDR' per listener, then\n"
        "'kodama: ready'. Exit status: 0 stopped by a signal, 1 failure, 2 usage error.\n");
}

#define MAX_THREADS 1024

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
};

static int parse_serve_args(int argc, char **argv, struct serve_opts *o)
{
    static const struct option longopts[] = {
        { "message", required_argument, NULL, 'm' },
        { "threads", required_argument, NULL, 't' },
        { "io", required_argument, NULL, 'I' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    char err[KODAMA_ERR_LEN];
    const char *text = "Hello from server!\\n";
    unsigned long n;
    int c;
    long len;

    opterr = 0;
    o->cfg.threads = default_threads();
    o->io = getenv("KODAMA_IO") ? getenv("KODAMA_IO") : "auto";
    if (!io_mode_valid(o->io))
        return usage_error("serve", "KODAMA_IO='%s': not epoll, uring or auto", o->io);
    o->cfg.share_listeners = share_listeners_wanted();
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
        case 'I':
            if (!io_mode_valid(optarg))
                return usage_error("serve", "--io '%s': not epoll, uring or auto", optarg);
            o->io = optarg;
            break;
        case 'v': o->cfg.verbose = 1; break;
        case 'h': help_serve(stdout); exit(EXIT_OK);
        default: return option_error("serve", c, argv, longopts);
        }
    }
    o->message = xmalloc(strlen(text) + 1);
    len = unescape(text, o->message, err, sizeof err);
    if (len < 0)
        return usage_error("serve", "%s in --message", err);
    o->cfg.message = o->message;
    o->cfg.message_len = (size_t)len;
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
    if (strcmp(mode, "epoll") == 0) {
        cfg->io = LOOP_IO_EPOLL;
        return 0;
    }
    if (uring_available() == 0) {
        cfg->io = LOOP_IO_URING;
        return 0;
    }
    if (strcmp(mode, "uring") == 0) {
        log_msg("cannot use io_uring: %s", strerror(errno));
        return -1;
    }
    if (cfg->verbose)
        log_msg("io_uring unavailable (%s); using epoll", strerror(errno));
    cfg->io = LOOP_IO_EPOLL;
    return 0;
}

int cmd_serve(int argc, char **argv)
{
    struct serve_opts o = { .family = AF_UNSPEC };
    char err[KODAMA_ERR_LEN + ADDR_TEXT_MAX];
    struct listener *ls;
    struct spec *specs;
    size_t nls;
    int nspecs, rc;
    char **texts;

    rc = parse_serve_args(argc, argv, &o);
    nspecs = argc - optind;
    texts = argv + optind;
    if (nspecs == 0) {
        nspecs = 2;
        texts = (char **)default_specs;
    }
    specs = xcalloc((size_t)nspecs, sizeof *specs);
    if (rc == EXIT_OK)
        rc = parse_specs(nspecs, texts, specs);
    if (rc == EXIT_OK && listen_specs(specs, (size_t)nspecs, o.family,
                                     o.cfg.threads > 1 && !o.cfg.share_listeners, &ls, &nls,
                                     err, sizeof err) < 0) {
        log_msg("%s", err);
        rc = EXIT_FAIL;
    }
    free(specs);
    if (rc == EXIT_OK && choose_io(o.io, &o.cfg) < 0) {
        listeners_close(ls, nls);
        rc = EXIT_FAIL;
    }
    if (rc == EXIT_OK)
        rc = server_run(ls, nls, &o.cfg);
    free(o.message);
    return rc;
}
