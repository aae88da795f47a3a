/* tls_setup.h — serve's TLS options, and the server context its "+tls" listeners
 * share. */
#ifndef KODAMA_TLS_SETUP_H
#define KODAMA_TLS_SETUP_H

#include <getopt.h>
#include <stddef.h>

#include "lib/tls.h"

struct listener;

struct tls_opts {
    struct tls_server_config cfg;   /* the files and ALPN from the options */
    long timeout_ms;                /* --tls-timeout */
    int client_cert_given;          /* --client-cert was given */
};

/* serve's TLS options, for its getopt_long table (value TLS_OPT_FIRST and up). */
#define TLS_OPT_FIRST 512
extern const struct option tls_longopts[];
#define TLS_LONGOPTS_N 6

void tls_opts_defaults(struct tls_opts *o);

/* One of tls_longopts (c is its value): EXIT_OK, or a usage error already reported. */
int tls_option(int c, const char *arg, struct tls_opts *o);

/* After the options: a usage error if they do not go together (a key without its
 * certificate, --client-cert without --client-ca, TLS options without a "+tls"
 * listener among the n). */
int tls_opts_check(const struct tls_opts *o, const struct listener *ls, size_t n);

/* The context for the listeners' "+tls" ones (NULL if none has "+tls"): the given
 * certificate, or a self-signed one for host and the listeners' addresses. Returns
 * 0 with *out set, or -1 after logging why. */
int tls_setup(struct tls_opts *o, const struct listener *ls, size_t n, const char *host,
              struct tls_server **out);

#endif
