/* dgram.h — answering one datagram, the same on both engines: the guard's verdict,
 * the service's reply, the address it leaves from, the -v line. */
#ifndef KODAMA_DGRAM_H
#define KODAMA_DGRAM_H

#include <netinet/in.h>
#include <sys/socket.h>

#include "lib/net.h"


struct listener;

/* Room for one IP_PKTINFO or IPV6_PKTINFO control message, aligned as a cmsghdr (a
 * cmsghdr member itself would make this a variable-sized type: it ends in a
 * flexible array). */
union pktinfo_cmsg {
    char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
    size_t align;
};

/* Turn a received datagram's destination (IP_PKTINFO / IPV6_PKTINFO in msg's control
 * data) into the source of the reply, written to out (which may be msg's own control
 * buffer); returns the control length to send, 0 if there is none. */
size_t udp_reply_pktinfo(struct msghdr *msg, void *out);

/* The UDP guard's verdict on a datagram from peer: 1 to answer it; 0 if it was
 * dropped (counted and logged). */
int udp_admit(struct listener *l, const void *peer, socklen_t len);

struct svc_ctx;

/* The service's reply to the datagram ctx holds (in, out and peer filled by the
 * engine), cut to what the guard allows (guard.h: three times the request, on the
 * wire); -1: none. */
long udp_service_reply(struct listener *l, struct svc_ctx *ctx, const char **reply);
/* The same for a reply sent as `copies` datagrams (a fault that duplicates it):
 * they count against the bound together. */
long udp_service_reply_n(struct listener *l, struct svc_ctx *ctx, const char **reply,
                         unsigned copies);

/* Ask once, at start-up, for the address a udp listener is bound to (l->local), for
 * services that want addresses: asking per datagram would cost a system call each. */
void udp_listener_local(struct listener *l);

/* Fill ctx->local with our address as the datagram msg reached it: on a wildcard
 * bind its destination (from msg's IP_PKTINFO / IPV6_PKTINFO control data) with the
 * listener's port, else the listener's address. room holds what ctx->local points
 * to. Call it before udp_reply_pktinfo, which rewrites the control data. */
void udp_ctx_local(struct svc_ctx *ctx, const struct listener *l, struct msghdr *msg,
                   struct sockaddr_storage *room);

#define UDP_DGRAM_MAX NET_DGRAM_MAX

/* --trace: a datagram received on io_uring, "complete recvmsg(4) = 5  (from ADDR)". */
void udp_trace_recv(const struct listener *l, const void *peer, socklen_t len, size_t n);

/* The -v line for one datagram. */
void udp_log_datagram(const struct listener *l, const void *peer, socklen_t len, size_t in,
                      long out);

#endif
