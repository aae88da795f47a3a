/* client.h — finding and connecting to a peer, the options the client commands
 * share, and the report of a run (its verdict, addresses, counts and times), for
 * send, connect, ping and bench. */
#ifndef KODAMA_CLIENT_H
#define KODAMA_CLIENT_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "client/client_tls.h"
#include "lib/addr.h"
#include "lib/tls.h"
#include "lib/verdict.h"

struct addrinfo;

struct target {
    const char *host, *port;    /* tcp/udp */
    /* The addresses of host, looked up once for the whole run (ping, as ping(8));
     * NULL: each connect looks the name up, as netcat's does. */
    struct addrinfo *resolved;
    const char *unix_path;      /* or a unix stream socket ("@name": abstract) */
    int family;                 /* AF_UNSPEC, AF_INET, AF_INET6 */
    int udp;
    long timeout_ms;            /* connect timeout; <= 0: the kernel's */
    int verbose;
    int quiet;                  /* failures go to the report only (ping's probes) */
    /* --source ADDR, --source-port PORT: the local end, bound before connecting. */
    const char *source_text;
    struct sockaddr_storage source;     /* family AF_UNSPEC: no --source */
    unsigned source_port;               /* 0: none */
    /* --tls: a handshake after each connect (client_tls.h); NULL or off: plain. */
    const struct client_tls *tls;
};

struct peer {
    int fd;
    char name[ADDR_TEXT_MAX + 24];  /* "127.0.0.1 port 7007 (tcp)", "unix:/tmp/s" */
    char addr[ADDR_TEXT_MAX];       /* "127.0.0.1:7007", "[::1]:7", "unix:/tmp/s" */
    char local[ADDR_TEXT_MAX];      /* our end, once connected */
    /* Reset by the peer as the connect completed (sk_connect_wait): the bytes it sent
     * first are read, then the end is a reset, not the EOF the socket now shows. */
    int reset_pending;
    /* --tls: the session over fd (peer_io.h moves the bytes either way). */
    SSL *tls;
    struct tls_wire wire;           /* for --trace: what the socket had moved */
    int tls_failed;                 /* a TLS failure (not the socket's) ended it */
    int tls_shut;                   /* our close_notify is out */
    int tls_read_wants_write;       /* the last read must write first (POLLOUT) */
    char tls_why[256];              /* the reason of the failure */
};

/* ------------------------------------------------------------------ the report */

/* What one run (one connection, one probe series, one scanned port) came to; the
 * --json object is made from it. Times are now_ns() values, 0 until reached. */
struct report {
    enum verdict verdict;
    const char *proto;              /* "tcp", "udp" or "unix" */
    const char *host, *port, *path; /* as the user named the peer */
    char local[ADDR_TEXT_MAX], peer[ADDR_TEXT_MAX];
    uint64_t bytes_out, bytes_in;
    int64_t t_start, t_connected, t_first_byte, t_end;
    int64_t t_connecting;           /* the last connect began (after the lookup) */
    int64_t t_handshake;            /* --tls: the last handshake was done */
    int tls;                        /* --tls: the facts of the last handshake */
    char tls_version[16], tls_cipher[64], tls_alpn[64];
    char tls_fingerprint[TLS_FINGERPRINT_LEN];  /* the server's certificate */
    char error[320];                /* the one line told on stderr, without "kodama: " */
};

void report_start(struct report *r, const struct target *t);
/* The run failed: the first failure decides the verdict. Writes the line on stderr
 * (unless quiet) and keeps it for --json. Returns v. */
int report_fail(struct report *r, int quiet, enum verdict v, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A write to standard output failed with err: report_fail's V_LOCAL, said as every
 * command says it ("cannot write to stdout: Broken pipe"). */
int report_stdout_failed(struct report *r, int err);
/* The peer answered for the first time (the first reply byte). */
void report_first_byte(struct report *r);
/* The object's common keys: verdict, exit, proto, host and port (or path), local,
 * peer, bytes_out, bytes_in, connect_ms, first_byte_ms, total_ms, error; with
 * --tls also handshake_ms, tls, tls_version, tls_cipher, tls_alpn and
 * tls_fingerprint. The caller may add its own, then json_end. t_end is set if it
 * was not. */
void report_json(struct report *r, struct json_obj *j);
/* Milliseconds from the start of the run to t, or -1 (null) if t was not reached. */
double report_ms(const struct report *r, int64_t t);
/* The relay's run is over (connect, connect -l): with json, its object as the last
 * line on stderr, since stdout is the peer's data. Returns v. */
int report_end(struct report *r, int json, int v);
/* The object, alone on its line, on stdout (send, ping, scan) or stderr (connect,
 * whose stdout is the peer's). Returns 0, or -1 if stdout could not take it. */
int report_print(struct report *r, FILE *out);

/* ------------------------------------------------------------------ connecting */

/* Connect to the first address of t that accepts, netcat-style, and with --tls make
 * the handshake on it. Returns V_OK, or the verdict after one line on stderr (the
 * report keeps it): "connect to 127.0.0.1 port 9 (tcp) failed: Connection refused",
 * "nosuch!host: Name or service not known", "cannot use source address 192.0.2.1:
 * Cannot assign requested address", "127.0.0.1:8443: tls: certificate verify
 * failed: self-signed certificate". p->tls is the session, or NULL. */
int client_connect(const struct target *t, struct peer *p, struct report *r);

/* Bind fd to t's --source and --source-port, if any (family: fd's). Returns 0, or
 * -1 with errno. */
int client_bind_source(int fd, const struct target *t, int family);
/* "source address 192.0.2.1", "source port 4000", "source address ::1 port 4000". */
void client_source_name(const struct target *t, char *buf, size_t len);

/* Resolve t (not a unix path) to its addresses, for the scan and listen modes.
 * Returns 0, or the verdict after the line on stderr. */
int client_resolve(const struct target *t, const char *port, int passive,
                   struct addrinfo **res, struct report *r);
/* Why getaddrinfo's rc failed for t, as the line after "HOST: " says it: its own
 * text, or for an address of the other family, which option asked for this one
 * ("not an IPv6 address, as --source ::1 needs"). buf holds it if needed. */
const char *client_resolve_why(const struct target *t, int rc, char *buf, size_t len);

/* ------------------------------------------------------------------ options */

/* -U PATH (or @NAME): EXIT_OK if it fits a unix socket address, else a usage error
 * already reported. */
int client_unix_path(const char *cmd, const char *path);

/* Take the HOST PORT operands at argv[optind] and step optind past them. Returns
 * EXIT_OK, or a usage error already reported. */
int client_take_host_port(const char *cmd, int argc, char **argv, struct target *t);

/* --source ADDR (a numeric address: no lookup) and --source-port PORT. Return
 * EXIT_OK, or a usage error already reported. */
int client_opt_source(const char *cmd, const char *arg, struct target *t);
int client_opt_source_port(const char *cmd, const char *arg, struct target *t);

struct client_opts {
    struct target t;
    const char *wait_text;      /* -w as given, for messages */
    long wait_ms;               /* -w; the caller sets the default */
    int wait_given;
    int json;                   /* --json */
    int trace;                  /* --trace */
    struct client_tls tls;      /* --tls and its options (t.tls points here if on) */
};

/* A command's own options, besides the shared ones: it returns EXIT_OK, a usage
 * error already reported, or -1 if c is not its option. */
typedef int client_opt_fn(void *ctx, int c, const char *arg);

struct client_cmd {
    const char *name;
    void (*help)(FILE *out);
    const char *shortopts;              /* its own, getopt style ("lkz", "s:p:") */
    const struct option *longopts;      /* its own, or NULL; vals at 512 and up */
    client_opt_fn *opt;
    void *ctx;
};

/* The options the clients share: -4 -6 -U PATH -u -v -w SECS -h, --source ADDR,
 * --source-port PORT, --json, --trace, the TLS options (client_tls.h); then the
 * command's own. Options end at the
 * first operand (so a message may start with '-'); optind is left there. Returns
 * EXIT_OK, or a usage error already reported. */
int client_parse_options(const struct client_cmd *cmd, int argc, char **argv,
                         struct client_opts *o);

/* Write buf to stdout whole (the replies, the relay's output). Returns 0, or -1
 * with errno. */
int client_write_stdout(const void *buf, size_t len);

/* The commands (main.c's table). */
int cmd_send(int argc, char **argv);
int cmd_connect(int argc, char **argv);
int cmd_ping(int argc, char **argv);
void help_send(FILE *out);
void help_connect(FILE *out);
void help_ping(FILE *out);

#endif
