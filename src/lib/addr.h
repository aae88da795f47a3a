/* addr.h — listener SPECs and socket addresses as text.
 *
 * A SPEC names a service and where it listens: SERVICE@ADDRESS[/tcp|/udp][+proxy],
 * with ADDRESS one of PORT, HOST:PORT, [IPV6]:PORT, unix:PATH or unix:@NAME
 * (abstract). "+proxy" (stream only: /tcp or unix) makes each connection start with
 * a PROXY protocol header.
 * Parsing is pure (no name resolution, no sockets) so it can be tested on its own. */
#ifndef KODAMA_ADDR_H
#define KODAMA_ADDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

enum proto_mask { PROTO_TCP = 1, PROTO_UDP = 2 };

enum addr_kind {
    ADDR_ANY,   /* PORT alone: every local address */
    ADDR_HOST,  /* HOST:PORT or [IPV6]:PORT: host is a name or a literal */
    ADDR_UNIX,  /* unix:PATH or unix:@NAME */
};

#define SPEC_HOST_MAX 255
#define SPEC_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)
#define SPEC_SERVICE_MAX 31

struct spec {
    char service[SPEC_SERVICE_MAX + 1];
    enum addr_kind kind;
    char host[SPEC_HOST_MAX + 1];   /* ADDR_HOST: without brackets */
    uint16_t port;                  /* ADDR_ANY, ADDR_HOST */
    char path[SPEC_PATH_MAX + 1];   /* ADDR_UNIX: the path, or the name after '@' */
    int abstract;                   /* ADDR_UNIX: unix:@NAME */
    unsigned protos;                /* PROTO_TCP | PROTO_UDP; unix is always stream */
    int proxy;                      /* "+proxy": PROXY protocol header first */
};

#define PROXY_SUFFIX "+proxy"
#define PROXY_SUFFIX_LEN 6

/* Parse text into *sp. Checks the syntax only; whether the service exists is the
 * caller's business (the service table lives elsewhere). Returns 0, or -1 with a
 * one-line reason quoting the bad part in err. */
int spec_parse(const char *text, struct spec *sp, char *err, size_t errlen);

/* Longest text addr_format writes: "[" v6 "%" ifname "]:" port, or "unix:" path. */
#define ADDR_TEXT_MAX 128

/* Format a socket address for people and scripts: 127.0.0.1:5000, [::1]:5000,
 * unix:/tmp/s, unix:@name. IPv4-mapped IPv6 addresses print as plain IPv4. An
 * unnamed unix socket prints as "unix:". Returns buf. */
char *addr_format(const struct sockaddr *sa, socklen_t len, char *buf, size_t buflen);

/* Only the host part (127.0.0.1, ::1, unmapped) and the port, for messages in
 * netcat's style: "connect to 127.0.0.1 port 9 (tcp) failed". */
char *addr_host(const struct sockaddr *sa, char *buf, size_t buflen);
int addr_port(const struct sockaddr *sa);

#endif
