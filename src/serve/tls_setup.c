/* tls_setup.c — see tls_setup.h. */
#include "serve/tls_setup.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cli.h"
#include "lib/log.h"
#include "lib/util.h"
#include "serve/core/worker.h"

enum { OPT_CERT = TLS_OPT_FIRST, OPT_KEY, OPT_CLIENT_CA, OPT_CLIENT_CERT, OPT_ALPN, OPT_TLS_TIMEOUT };

const struct option tls_longopts[] = {
    { "cert", required_argument, NULL, OPT_CERT },
    { "key", required_argument, NULL, OPT_KEY },
    { "client-ca", required_argument, NULL, OPT_CLIENT_CA },
    { "client-cert", required_argument, NULL, OPT_CLIENT_CERT },
    { "alpn", required_argument, NULL, OPT_ALPN },
    { "tls-timeout", required_argument, NULL, OPT_TLS_TIMEOUT },
};

void tls_opts_defaults(struct tls_opts *o)
{
    memset(o, 0, sizeof *o);
    o->timeout_ms = 10 * 1000;
    o->cfg.client_cert_required = 1;    /* --client-cert require, the default */
}

int tls_option(int c, const char *arg, struct tls_opts *o)
{
    char err[KODAMA_ERR_LEN];

    switch (c) {
    case OPT_CERT: o->cfg.cert_file = arg; break;
    case OPT_KEY: o->cfg.key_file = arg; break;
    case OPT_CLIENT_CA: o->cfg.client_ca_file = arg; break;
    case OPT_CLIENT_CERT:
        if (strcmp(arg, "optional") != 0 && strcmp(arg, "require") != 0)
            return usage_error("serve", "--client-cert '%s': not optional or require", arg);
        o->cfg.client_cert_required = strcmp(arg, "require") == 0;
        o->client_cert_given = 1;
        break;
    case OPT_ALPN:
        if (arg[0] == '\0' || strstr(arg, ",,") || arg[0] == ',' || arg[strlen(arg) - 1] == ',')
            return usage_error("serve", "--alpn '%s': not a comma-separated list of names", arg);
        o->cfg.alpn = arg;
        break;
    case OPT_TLS_TIMEOUT:
        o->timeout_ms = parse_seconds(arg, err, sizeof err);
        if (o->timeout_ms < 0)
            return usage_error("serve", "--tls-timeout '%s': %s", arg, err);
        break;
    default:
        return usage_error("serve", "unknown TLS option");
    }
    return EXIT_OK;
}

static int any_tls(const struct listener *ls, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ls[i].tls)
            return 1;
    return 0;
}

int tls_opts_check(const struct tls_opts *o, const struct listener *ls, size_t n)
{
    const struct tls_server_config *c = &o->cfg;

    if (c->cert_file && !c->key_file)
        return usage_error("serve", "--cert needs --key");
    if (c->key_file && !c->cert_file)
        return usage_error("serve", "--key needs --cert");
    if (o->client_cert_given && !c->client_ca_file)
        return usage_error("serve", "--client-cert needs --client-ca (whose certificates "
                           "the client's must be signed by)");
    if ((c->cert_file || c->client_ca_file || c->alpn) && !any_tls(ls, n))
        return usage_error("serve", "TLS options, but no SPEC with +tls");
    return EXIT_OK;
}

static void add_ip(const char **ips, size_t *n, char (*text)[64], const char *host)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(ips[i], host) == 0)
            return;
    snprintf(text[*n], sizeof text[*n], "%s", host);
    ips[*n] = text[*n];
    (*n)++;
}

/* The host part of a listener's address, for the certificate; a wildcard stands for
 * the loopback addresses (the host name is in the list already). */
static void add_ips(const struct listener *l, const char **ips, size_t *n, char (*text)[64])
{
    const char *a = l->addr;
    char host[64];

    if (l->kind == LISTEN_UNIX)
        return;
    if (a[0] == '[')
        snprintf(host, sizeof host, "%.*s", (int)strcspn(a + 1, "]%"), a + 1);
    else
        snprintf(host, sizeof host, "%.*s", (int)strcspn(a, ":"), a);
    if (strcmp(host, "::") == 0) {
        add_ip(ips, n, text, "::1");
        add_ip(ips, n, text, "127.0.0.1");     /* dual-stack */
    } else if (strcmp(host, "0.0.0.0") == 0) {
        add_ip(ips, n, text, "127.0.0.1");
    } else {
        add_ip(ips, n, text, host);
    }
}

int tls_setup(struct tls_opts *o, const struct listener *ls, size_t n, const char *host,
              struct tls_server **out)
{
    const char *names[2] = { host, "localhost" };
    const char **ips;
    char (*text)[64], err[KODAMA_ERR_LEN + 600];
    size_t nips = 0;

    *out = NULL;
    if (!any_tls(ls, n))
        return 0;
    ips = xcalloc(2 * n + 2, sizeof *ips);     /* two each at most */
    text = xcalloc(2 * n + 2, sizeof *text);
    for (size_t i = 0; i < n; i++)
        if (ls[i].tls)
            add_ips(&ls[i], ips, &nips, text);
    o->cfg.names = names;
    o->cfg.nnames = strcmp(host, "localhost") == 0 ? 1 : 2;
    o->cfg.ips = ips;
    o->cfg.nips = nips;
    *out = tls_server_new(&o->cfg, err, sizeof err);
    free(ips);
    free(text);
    o->cfg.names = o->cfg.ips = NULL;   /* used only here, for the self-signed one */
    o->cfg.nnames = o->cfg.nips = 0;
    if (*out == NULL) {
        log_msg("%s", err);
        return -1;
    }
    return 0;
}
