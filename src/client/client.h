/* client.h — finding and connecting to a peer, for send and connect. */
#ifndef KODAMA_CLIENT_H
#define KODAMA_CLIENT_H

#include <stddef.h>
#include <stdio.h>

#include "lib/addr.h"

struct target {
    const char *host, *port;    /* tcp/udp */
    const char *unix_path;      /* or a unix stream socket ("@name": abstract) */
    int family;                 /* AF_UNSPEC, AF_INET, AF_INET6 */
    int udp;
    long timeout_ms;            /* connect timeout; <= 0: the kernel's */
    int verbose;
};

struct peer {
    int fd;
    char name[ADDR_TEXT_MAX + 24];  /* "127.0.0.1 port 7007 (tcp)", "unix:/tmp/s" */
    char addr[ADDR_TEXT_MAX];       /* "127.0.0.1:7007", "[::1]:7", "unix:/tmp/s" */
};

/* Connect to the first address of t that accepts, netcat-style. Returns 0, or -1
 * after printing one line: "connect to 127.0.0.1 port 9 (tcp) failed: Connection
 * refused", or "nosuchhost: Name or service not known". */
int client_connect(const struct target *t, struct peer *p);

/* -U PATH (or @NAME): EXIT_OK if it fits a unix socket address, else a usage error
 * already reported. */
int client_unix_path(const char *cmd, const char *path);

/* Take the HOST PORT operands at argv[optind] and step optind past them. Returns
 * EXIT_OK, or a usage error already reported. */
int client_take_host_port(const char *cmd, int argc, char **argv, struct target *t);

struct client_opts {
    struct target t;
    const char *wait_text;      /* -w as given, for messages */
    long wait_ms;               /* -w; the caller sets the default */
};

/* The options send and connect share: -4 -6 -U PATH -u -v -w SECS -h. Options end at
 * the first operand (so a message may start with '-'); optind is left there. Returns
 * EXIT_OK, or a usage error already reported. */
int client_parse_options(const char *cmd, int argc, char **argv, struct client_opts *o,
                         void (*help)(FILE *out));

/* The commands (main.c's table). */
int cmd_send(int argc, char **argv);
int cmd_connect(int argc, char **argv);
void help_send(FILE *out);
void help_connect(FILE *out);

#endif
