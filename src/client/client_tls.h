/* client_tls.h — --tls for send, connect, ping and bench: the options (one table,
 * merged into each command's), their checks, the context made once per run, and
 * the handshake after each connect, with its verdicts:
 *
 *   7 tls    the handshake failed (OpenSSL's reason), the certificate did not
 *            verify or is not the pinned one, or an alert came later
 *   5 reset  the peer reset or closed the connection during the handshake
 *   4 timeout the handshake was not done within the wait
 *
 * Messages name the address: "127.0.0.1:8443: tls: certificate verify failed:
 * self-signed certificate". */
#ifndef KODAMA_CLIENT_TLS_H
#define KODAMA_CLIENT_TLS_H

#include <getopt.h>
#include <stddef.h>
#include <stdio.h>

#include "lib/tls.h"

struct peer;
struct report;

struct client_tls {
    int on;                             /* --tls */
    struct tls_client_config cfg;
    int resume;                         /* bench --resume: offer the last session */
    SSL_CTX *ctx;                       /* made by client_tls_setup */
};

/* The long options, with vals from CLIENT_TLS_OPT_FIRST up; --resume is bench's
 * alone (client_tls_option takes it only when resume_ok). */
enum { CLIENT_TLS_OPT_FIRST = 400 };
#define CLIENT_TLS_NLONGOPTS 9
extern const struct option client_tls_longopts[CLIENT_TLS_NLONGOPTS];

/* One of them: EXIT_OK, a usage error already told, or -1 if c is not one. */
int client_tls_option(const char *cmd, struct client_tls *ct, int c, const char *arg,
                      int resume_ok);

/* The options' lines for a command's --help: each option from column indent, its
 * description from column width; bench adds --resume. */
void client_tls_help(FILE *out, int indent, int width, int bench);

/* After parsing, the combinations, as a flat list of one-liners ("--key needs
 * --cert", "cannot use --insecure with --fingerprint", "cannot use --tls with -u
 * (there is no DTLS)"); udp names the option that chose udp ("-u", "-m udp"), or is
 * NULL. EXIT_OK, or a usage error already told. */
int client_tls_check(const char *cmd, const struct client_tls *ct, const char *udp);

#define CLIENT_TLS_ERR_LEN 768     /* a reason naming a file, with OpenSSL's words */

/* Make the context once (with --insecure, say so on stderr). V_OK, or V_LOCAL with
 * the reason in err (a file that cannot be read). Nothing to do without --tls. */
int client_tls_setup(struct client_tls *ct, char *err, size_t errlen);
void client_tls_free(struct client_tls *ct);

/* Without --trace or the failure's wait, the handshake waits this long. */
#define CLIENT_TLS_WAIT_MS 10000

/* The handshake on the connected p->fd for host (NULL for a unix socket), for at
 * most timeout_ms (<= 0: CLIENT_TLS_WAIT_MS), then the pin. Sets p->tls, and r's
 * TLS facts and t_handshake; verbose: one line with them. Returns V_OK, or the
 * verdict after the line (quiet: in r only). */
int client_tls_handshake(const struct client_tls *ct, struct peer *p, const char *host,
                         long timeout_ms, int verbose, int quiet, struct report *r);

#endif
