/* proxy.h — the PROXY protocol header (HAProxy's doc/proxy-protocol.txt), v1 and v2.
 *
 * A load balancer sends it first on a connection to say who the client was. The
 * parser is pure (no sockets, no allocation): given the bytes received so far it
 * says whether they are a complete header, a valid beginning of one, or not one at
 * all, so that the caller can read exactly the header and not one byte beyond it.
 *
 * Strict, as the spec asks of receivers: v1 with exact spacing, dotted-quad IPv4 and
 * ports without leading zeros, CRLF within 107 bytes; v2 with its 12-byte signature,
 * version 2, command LOCAL or PROXY, one of the seven defined family/transport bytes,
 * an address block long enough for its family, and TLVs that exactly fill the rest
 * (their contents are skipped). */
#ifndef KODAMA_PROXY_H
#define KODAMA_PROXY_H

#include <stddef.h>
#include <sys/socket.h>

#define PROXY_V1_MAX 107            /* the spec's longest line, CRLF included */
#define PROXY_HEADER_MAX 1024       /* our bound on a v2 header, TLVs included */

enum proxy_status {
    PROXY_INVALID = -1,             /* not a (valid) header: drop the connection */
    PROXY_NEED_MORE = 0,            /* a valid beginning: read more */
    PROXY_COMPLETE = 1,             /* a header of h->len bytes */
};

enum proxy_command {
    PROXY_CMD_PROXY,                /* relayed: the addresses are the client's */
    PROXY_CMD_LOCAL,                /* v2 LOCAL (health checks): use the connection's own */
};

struct proxy_header {
    size_t len;                     /* bytes of the header, TLVs included */
    int version;                    /* 1 or 2 */
    enum proxy_command command;
    /* AF_INET, AF_INET6, AF_UNIX, or AF_UNSPEC (v1 UNKNOWN, v2 UNSPEC: no
     * addresses; the connection's own apply, as for LOCAL) */
    int family;
    struct sockaddr_storage src, dst;
    socklen_t src_len, dst_len;     /* 0 when family is AF_UNSPEC or the command LOCAL */
    const char *why;                /* PROXY_INVALID: what was wrong, a static string */
};

/* Parse the len bytes received so far at buf. */
enum proxy_status proxy_parse(const void *buf, size_t len, struct proxy_header *h);

#define PROXY_WRITE_MAX PROXY_V1_MAX    /* the longest header proxy_write makes */

/* Write the header a relay sends first (HAProxy's send-proxy, send-proxy-v2):
 * version 1 or 2, the client src and the address it reached, dst. Two IPv4 (or
 * IPv4-mapped) addresses go as TCP4, two IPv6 as TCP6, one of each as TCP6 with
 * the IPv4 one mapped; anything else (a unix socket) as v1 UNKNOWN or v2 PROXY
 * with no addresses (UNSPEC), so that the receiver keeps the connection's own.
 * Returns the length (at most PROXY_WRITE_MAX), or 0 if cap is too small. */
size_t proxy_write(int version, const struct sockaddr *src, const struct sockaddr *dst,
                   void *out, size_t cap);

#endif
