/* guard.h — what keeps a server on an open network from being exhausted or used as
 * a weapon: limits on connections (in all, and per source address) and the UDP
 * guard against reflection (RFC 862's warning). One guard serves every worker.
 *
 * Per-source rules (--max-per-ip, --udp-rate) leave loopback sources alone unless
 * asked: they cannot come from outside the host (the kernel drops such packets on
 * any other interface), and local load tests should run at full speed. */
#ifndef KODAMA_GUARD_H
#define KODAMA_GUARD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "lib/log.h"

/* Why a connection or a datagram was turned away; each is counted per listener. */
enum drop_reason {
    DROP_MAX_CONNS,         /* --max-conns connections are open */
    DROP_PER_IP,            /* --max-per-ip from this address (IPv6: its /64) */
    DROP_IDLE,              /* silent for --idle-timeout */
    DROP_SEND_TIMEOUT,      /* read nothing for --send-timeout while we had output */
    DROP_BAD_PROXY,         /* "+proxy" listener: no valid PROXY protocol header */
    DROP_BAD_TLS,           /* "+tls" listener: no TLS handshake (failed, reset, late) */
    DROP_RELAY_TARGET,      /* relay: its target refused, timed out or failed */
    DROP_UDP_PORT,          /* source port 0 or below 1024; the udp reasons come last */
    DROP_UDP_OWN_PORT,      /* source port is one we serve on: a loop between servers */
    DROP_UDP_RATE,          /* over its source's --udp-rate */
    DROP_UDP_SHORT,         /* a record reply (time, daytime, info) longer than the
                             * request: the guard would cut it, so none is sent */
    DROP_REASONS
};

/* A short name for logs and metrics: "max_conns", "per_ip", ... */
const char *drop_reason_name(enum drop_reason r);

struct guard_config {
    size_t max_conns;           /* 0: no limit */
    unsigned max_per_ip;        /* 0: no limit */
    int udp_guard;
    unsigned udp_rate;          /* datagrams per second per source; 0: no limit */
    int limit_loopback;         /* apply the per-source rules to loopback too */
};

struct guard;
struct ip_count;                /* one source address's open connections */

struct guard *guard_new(const struct guard_config *cfg, const uint16_t *ports, size_t nports);
void guard_free(struct guard *g);

/* A new connection from peer (len 0: a unix socket). Returns 0 with *slot to give
 * back at close (NULL if the address is not counted), or -1 with *why. */
int guard_conn_admit(struct guard *g, const struct sockaddr *peer, socklen_t len,
                     struct ip_count **slot, enum drop_reason *why);
void guard_conn_release(struct guard *g, struct ip_count *slot);

/* The per-address half of guard_conn_admit, for a client known only later: on a
 * PROXY protocol listener the peer is the load balancer, so the connection is
 * admitted with len 0 when accepted (it counts under --max-conns while its header is
 * awaited) and its client, once the header names one, here. Returns 0 with *slot
 * (NULL if not counted), or -1 with *why; either way the first half's count stays
 * until guard_conn_release. */
int guard_conn_admit_addr(struct guard *g, const struct sockaddr *addr, socklen_t len,
                          struct ip_count **slot, enum drop_reason *why);

/* A datagram from src: 0 to answer it, -1 with *why to drop it. Does nothing with
 * the guard off. */
int guard_udp_check(struct guard *g, const struct sockaddr *src, socklen_t len,
                    enum drop_reason *why);

/* The bound on amplification, as QUIC's before it has validated an address (RFC
 * 9000 §8.1): every datagram a reply becomes (each copy, each GSO segment), counted
 * on the wire with its IP and UDP headers, adds up to at most this many times the
 * request's own wire size. So an empty IPv4 request (28 bytes on the wire) may
 * bring back up to 56 bytes of payload in one datagram, and "hi\n" the greeting. */
#define GUARD_UDP_FACTOR 3
#define UDP_WIRE_V4 28              /* IPv4 header 20 + UDP header 8 */
#define UDP_WIRE_V6 48              /* IPv6 header 40 + UDP header 8 */

/* The header bytes of one datagram exchanged with peer: UDP_WIRE_V6 for IPv6,
 * UDP_WIRE_V4 for IPv4, a v4-mapped address on an AF_INET6 socket included (it is
 * IPv4 on the wire). */
size_t guard_udp_overhead(const struct sockaddr *peer);

/* The most each datagram of a reply sent as `copies` datagrams may carry, in answer
 * to a request of in_len bytes with `overhead` header bytes per datagram (both
 * ways alike): copies * (payload + overhead) <= GUARD_UDP_FACTOR * (in_len +
 * overhead). reply_len, whatever it is, with the guard off. */
size_t guard_udp_reply_max(const struct guard *g, size_t in_len, size_t overhead,
                           unsigned copies, size_t reply_len);

/* One log line a second per reason, shared by every worker. */
struct log_limit *guard_log_limit(struct guard *g, enum drop_reason r);

#endif
