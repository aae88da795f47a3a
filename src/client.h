/* client.h — finding and connecting to a peer, for send and connect. */
#ifndef KODAMA_CLIENT_H
#define KODAMA_CLIENT_H

#include <stddef.h>

#include "addr.h"

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

/* Validate a port operand (1-65535) for usage errors. */
int client_port_ok(const char *port);

#endif
