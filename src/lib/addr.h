/* addr.h — socket addresses as text, for people and scripts. (The SPEC grammar is
 * proto/spec.h.) */
#ifndef KODAMA_ADDR_H
#define KODAMA_ADDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

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
/* 0.0.0.0 or [::]: a bind to every address. */
int addr_is_wildcard(const struct sockaddr *sa);

#endif
