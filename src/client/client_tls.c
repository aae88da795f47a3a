/* client_tls.c — see client_tls.h. */
#include "client/client_tls.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "client/client.h"
#include "client/sock.h"
#include "lib/cli.h"
#include "lib/log.h"
#include "lib/trace.h"
#include "lib/util.h"

enum {
    OPT_TLS = CLIENT_TLS_OPT_FIRST, OPT_SNI, OPT_ALPN, OPT_CERT, OPT_KEY, OPT_CAFILE,
    OPT_FINGERPRINT, OPT_INSECURE, OPT_RESUME,
};

const struct option client_tls_longopts[CLIENT_TLS_NLONGOPTS] = {
    { "tls", no_argument, NULL, OPT_TLS },
    { "sni", required_argument, NULL, OPT_SNI },
    { "alpn", required_argument, NULL, OPT_ALPN },
    { "cert", required_argument, NULL, OPT_CERT },
    { "key", required_argument, NULL, OPT_KEY },
    { "cafile", required_argument, NULL, OPT_CAFILE },
    { "fingerprint", required_argument, NULL, OPT_FINGERPRINT },
    { "insecure", no_argument, NULL, OPT_INSECURE },
    { "resume", no_argument, NULL, OPT_RESUME },
};

/* --help's lines: an option, or "" for a description's next line. */
static const struct { const char *opt, *what; } help_lines[] = {
    { "--tls", "speak TLS (1.3 or 1.2); the certificate is checked against" },
    { "", "the system's CAs and HOST (or --sni), unless:" },
    { "--cafile FILE", "trust the CAs in FILE instead of the system's" },
    { "--fingerprint SHA256", "trust the certificate with this SHA-256" },
    { "", "fingerprint alone, whatever its chain (as serve prints it;" },
    { "", "colons optional, any case)" },
    { "--insecure", "check nothing (said on stderr)" },
    { "--sni NAME", "the server name to send and check (default: HOST)" },
    { "--alpn LIST", "offer these protocols, e.g. h2,http/1.1" },
    { "--cert FILE", "present this client certificate (with --key)" },
    { "--key FILE", "the client certificate's private key" },
};

void client_tls_help(FILE *out, int indent, int width, int bench)
{
    for (size_t i = 0; i < sizeof help_lines / sizeof help_lines[0]; i++) {
        const char *opt = help_lines[i].opt;
        int len = indent + (int)strlen(opt);

        if (len + 2 > width)    /* as --source-port PORT is: two spaces, then the text */
            fprintf(out, "%*s%s  %s\n", indent, "", opt, help_lines[i].what);
        else
            fprintf(out, "%*s%-*s%s\n", indent, "", width - indent, opt, help_lines[i].what);
    }
    if (bench)
        fprintf(out, "%*s%-*s%s\n%*s%s\n", indent, "", width - indent, "--resume",
                "-m hello: offer each connection the session the last", width, "",
                "one ended with (resumed handshakes, not full ones)");
}

/* serve's rule too: no empty name, so no leading, trailing or doubled comma; and
 * each name fits ALPN's length byte. */
static int alpn_list_ok(const char *list)
{
    unsigned char wire[256];
    size_t n = strlen(list);

    return n > 0 && list[0] != ',' && list[n - 1] != ',' && strstr(list, ",,") == NULL &&
           tls_alpn_wire(list, wire, sizeof wire) > 0;
}

int client_tls_option(const char *cmd, struct client_tls *ct, int c, const char *arg,
                      int resume_ok)
{
    unsigned char pin[TLS_SHA256_LEN];

    switch (c) {
    case OPT_TLS: ct->on = 1; return EXIT_OK;
    case OPT_SNI:
        if (arg[0] == '\0')
            return usage_error(cmd, "--sni '': not a name");
        ct->cfg.sni = arg;
        return EXIT_OK;
    case OPT_ALPN:
        if (!alpn_list_ok(arg))
            return usage_error(cmd, "--alpn '%s': not a comma-separated list of names (of 1 to "
                               "255 bytes each)", arg);
        ct->cfg.alpn = arg;
        return EXIT_OK;
    case OPT_CERT: ct->cfg.cert_file = arg; return EXIT_OK;
    case OPT_KEY: ct->cfg.key_file = arg; return EXIT_OK;
    case OPT_CAFILE: ct->cfg.cafile = arg; return EXIT_OK;
    case OPT_FINGERPRINT:
        if (tls_parse_fingerprint(arg, pin) < 0)
            return usage_error(cmd, "--fingerprint '%s': not a SHA-256 fingerprint (64 hex "
                               "digits, with or without a colon between each pair)", arg);
        ct->cfg.fingerprint = arg;
        return EXIT_OK;
    case OPT_INSECURE: ct->cfg.insecure = 1; return EXIT_OK;
    case OPT_RESUME:
        if (!resume_ok)
            return -1;
        ct->resume = 1;
        return EXIT_OK;
    default: return -1;
    }
}

/* The first TLS option given, by name, or NULL. */
static const char *tls_option_given(const struct client_tls *ct)
{
    const struct tls_client_config *c = &ct->cfg;

    return c->sni ? "--sni" : c->alpn ? "--alpn" : c->cert_file ? "--cert"
         : c->key_file ? "--key" : c->cafile ? "--cafile" : c->fingerprint ? "--fingerprint"
         : c->insecure ? "--insecure" : ct->resume ? "--resume" : NULL;
}

int client_tls_check(const char *cmd, const struct client_tls *ct, const char *udp)
{
    const struct tls_client_config *c = &ct->cfg;
    const char *given = tls_option_given(ct);

    if (!ct->on && given)
        return usage_error(cmd, "%s needs --tls", given);
    if (!ct->on)
        return EXIT_OK;
    if (udp)
        return usage_error(cmd, "cannot use --tls with %s (there is no DTLS)", udp);
    if (c->key_file && !c->cert_file)
        return usage_error(cmd, "--key needs --cert");
    if (c->cert_file && !c->key_file)
        return usage_error(cmd, "--cert needs --key");
    if (c->insecure && c->fingerprint)
        return usage_error(cmd, "cannot use --insecure with --fingerprint");
    if (c->insecure && c->cafile)
        return usage_error(cmd, "cannot use --insecure with --cafile");
    if (c->fingerprint && c->cafile)
        return usage_error(cmd, "cannot use --fingerprint with --cafile (a pin trusts no CA)");
    return EXIT_OK;
}

int client_tls_setup(struct client_tls *ct, char *err, size_t errlen)
{
    if (!ct->on || ct->ctx)
        return V_OK;
    ct->ctx = tls_client_ctx(&ct->cfg, err, errlen);
    if (ct->ctx == NULL)
        return V_LOCAL;
    if (ct->cfg.insecure)
        log_msg("--insecure: the server's certificate is not verified");
    return V_OK;
}

void client_tls_free(struct client_tls *ct)
{
    tls_client_ctx_free(ct->ctx);
    ct->ctx = NULL;
}

/* ------------------------------------------------------------------ handshake */

static void keep_facts(struct report *r, SSL *ssl)
{
    struct tls_info info;

    tls_describe(ssl, &info);
    snprintf(r->tls_version, sizeof r->tls_version, "%s", info.version);
    snprintf(r->tls_cipher, sizeof r->tls_cipher, "%s", info.cipher);
    snprintf(r->tls_alpn, sizeof r->tls_alpn, "%s", info.alpn);
    snprintf(r->tls_fingerprint, sizeof r->tls_fingerprint, "%s", info.fingerprint);
}

/* "kodama: 127.0.0.1:8443: TLSv1.3 TLS_AES_256_GCM_SHA384, ALPN h2, certificate
 * CN=vm sha256 AB:CD:..." (-v). */
static void tell_facts(const struct peer *p)
{
    struct tls_info info;

    tls_describe(p->tls, &info);
    log_msg("%s: %s %s, ALPN %s, certificate %s sha256 %s", p->addr, info.version, info.cipher,
            info.alpn[0] ? info.alpn : "none", info.subject[0] ? info.subject : "(no subject)",
            info.fingerprint[0] ? info.fingerprint : "(none)");
}

static int handshake_failed(struct peer *p, int rc, const char *why, int quiet,
                            struct report *r)
{
    struct tls_info info;

    /* The certificate that failed to verify may be the one to pin: --json says it. */
    tls_describe(p->tls, &info);
    snprintf(r->tls_fingerprint, sizeof r->tls_fingerprint, "%s", info.fingerprint);
    p->tls_failed = rc == TLS_FAILED;
    if (rc == TLS_RESET && p->reset_pending)     /* the socket says EPIPE, or EOF */
        return report_fail(r, quiet, V_RESET, "%s: tls: handshake: %s", p->addr,
                           strerror(ECONNRESET));
    if (rc == TLS_RESET)
        return report_fail(r, quiet, V_RESET, "%s: tls: handshake: %s", p->addr,
                           why[0] ? why : "the peer closed the connection");
    return report_fail(r, quiet, V_TLS, "%s: tls: %s", p->addr, why[0] ? why : "handshake failed");
}

/* Wait for what the handshake wants, until deadline (ms). V_OK to go on, or the
 * verdict of the wait. */
static int handshake_wait(struct peer *p, int want, int64_t deadline, long wait_ms, int quiet,
                          struct report *r)
{
    struct pollfd pfd = { .fd = p->fd, .events = want == TLS_WANT_READ ? POLLIN : POLLOUT };
    int64_t left = deadline - now_ms();
    int n;

    if (left <= 0 || sk_stop_requested())
        return report_fail(r, quiet, V_TIMEOUT, "%s: tls: no handshake within %g s", p->addr,
                           (double)wait_ms / 1000);
    n = sk_poll(&pfd, 1, (int)left);
    if (n < 0 && errno != EINTR)
        return report_fail(r, quiet, V_LOCAL, "poll: %s", strerror(errno));
    return V_OK;
}

int client_tls_handshake(const struct client_tls *ct, struct peer *p, const char *host,
                         long timeout_ms, int verbose, int quiet, struct report *r)
{
    long wait_ms = timeout_ms > 0 ? timeout_ms : CLIENT_TLS_WAIT_MS;
    int64_t deadline = now_ms() + wait_ms;
    char why[256];
    int rc, v;

    memset(&p->wire, 0, sizeof p->wire);
    p->tls_failed = p->tls_shut = p->tls_read_wants_write = 0;
    p->tls = tls_client_conn(ct->ctx, &ct->cfg, p->fd, host);
    if (p->tls == NULL)
        return report_fail(r, quiet, V_LOCAL, "%s: tls: out of memory", p->addr);
    if (TRACE_ON)
        tls_trace_attach(p->tls);
    r->tls = 1;
    for (;;) {
        why[0] = '\0';
        rc = tls_handshake(p->tls, why, sizeof why);
        if (TRACE_ON)
            tls_trace_op(p->tls, &p->wire, TLS_TRACE_HANDSHAKE, 0, rc, why);
        if (rc == TLS_OK)
            break;
        if (rc != TLS_WANT_READ && rc != TLS_WANT_WRITE)
            return handshake_failed(p, rc, why, quiet, r);
        if ((v = handshake_wait(p, rc, deadline, wait_ms, quiet, r)) != V_OK)
            return v;
    }
    if (ct->cfg.fingerprint && tls_check_pin(p->tls, ct->cfg.fingerprint, why, sizeof why) < 0) {
        p->tls_failed = 1;
        keep_facts(r, p->tls);
        return report_fail(r, quiet, V_TLS, "%s: tls: %s", p->addr, why);
    }
    r->t_handshake = now_ns();
    keep_facts(r, p->tls);
    if (verbose && !quiet)
        tell_facts(p);
    return V_OK;
}
