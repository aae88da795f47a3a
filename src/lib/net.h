/* net.h — thin wrappers over socket set-up, in the spirit of Redis' anet.
 *
 * Each function returns a descriptor (or 0) on success and -1 on failure, with errno
 * kept and, where err is not NULL, a message in err that names the failed call when it
 * is not the obvious one (bind/listen failures are just the errno text, since the
 * caller already says "cannot listen on ..."). Every socket is non-blocking and
 * close-on-exec. */
#ifndef KODAMA_NET_H
#define KODAMA_NET_H

#include <stddef.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#define NET_ERR_LEN 256
#define NET_BACKLOG 4096   /* the kernel caps it at net.core.somaxconn */
#define NET_DGRAM_MAX 65536     /* room for any datagram */
#define NET_UDP_PAYLOAD_MAX 65507   /* the most a udp datagram over IPv4 can carry */

int net_set_nonblock(int fd, int on);

/* Make close() send a reset (SO_LINGER 0): unsent data is dropped at once instead
 * of holding kernel memory, and no FIN_WAIT or TIME_WAIT keeps the four-tuple.
 * Should that fail, the peer gets a FIN instead: no harm done. */
void net_reset_on_close(int fd);

/* v6only: -1 leave the default, 0 dual-stack, 1 IPv6 only (AF_INET6 only).
 * reuseport: bind with SO_REUSEPORT, so that net_reuseport_sibling can add sockets
 * that share the address (one per event loop); the address must still be free. */
int net_tcp_listen(const struct sockaddr *sa, socklen_t len, int v6only, int reuseport,
                   char *err, size_t errlen);
int net_udp_bind(const struct sockaddr *sa, socklen_t len, int v6only, int reuseport,
                 char *err, size_t errlen);
/* Another socket on fd's address and type in its SO_REUSEPORT group, listening if
 * fd is a stream socket; the kernel spreads connections and datagrams among them. */
int net_reuseport_sibling(int fd, char *err, size_t errlen);
/* Ask for the local address of each datagram (to answer from it on a wildcard bind). */
int net_udp_pktinfo(int fd, int family, char *err, size_t errlen);

/* Fill *sun for a path or an abstract name; returns the address length, or -1 with
 * errno ENAMETOOLONG. */
socklen_t net_unix_addr(const char *path, int abstract, struct sockaddr_un *sun);
/* Listen on a unix stream socket. A socket file left by a dead listener is replaced;
 * one somebody still listens on is EADDRINUSE; a file that is not a socket, EEXIST. */
int net_unix_listen(const char *path, int abstract, char *err, size_t errlen);

/* Accept a connection as a non-blocking, close-on-exec socket. */
int net_accept(int lfd, struct sockaddr_storage *peer, socklen_t *len);

/* Connect fd (blocking or not) to sa within timeout_ms (<= 0: the kernel's own).
 * Leaves fd non-blocking. Returns 0, or -1 with errno (ETIMEDOUT on timeout). */
int net_connect(int fd, const struct sockaddr *sa, socklen_t len, long timeout_ms);
/* Whether a connect's SO_ERROR says the handshake completed and a reset followed:
 * a peer that accepted and reset at once, before the connect's outcome was read. */
int net_reset_after_handshake(int so_error);
/* Bytes written to a stream socket that its peer has not taken yet (SIOCOUTQ: tcp's
 * unsent and unacknowledged bytes, a unix socket's unread ones), or -1. */
int net_unsent(int fd);
/* The same, but 0 once the connection is closed (reset): SIOCOUTQ goes on counting
 * what was unacknowledged when the reset came, though none of it will ever go. */
int net_undelivered(int fd);
/* The destination of a datagram received with net_udp_pktinfo on (its IP_PKTINFO
 * or IPV6_PKTINFO message in msg), with port; returns its length, 0 if none. */
socklen_t net_pktinfo_dest(struct msghdr *msg, in_port_t port, struct sockaddr_storage *out);

#endif
