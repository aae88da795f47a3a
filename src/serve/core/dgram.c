/* dgram.c — the rules for answering a datagram that both engines follow (see
 * dgram.h): the UDP guard's verdict, the service's reply cut to what the guard
 * allows, the local address a reply leaves from, and the -v line.
 *
 * On a wildcard bind the reply must leave from the address the datagram was sent to
 * (a client of 127.0.0.2 expects its answer from 127.0.0.2, and a multi-homed host
 * must not answer from whichever address routing picks): the local address comes in
 * an IP_PKTINFO / IPV6_PKTINFO control message and goes back out in one. */
#include "serve/core/dgram.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "lib/log.h"
#include "lib/net.h"
#include "serve/core/worker.h"

size_t udp_reply_pktinfo(struct msghdr *msg, void *out)
{
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(msg); cm; cm = CMSG_NXTHDR(msg, cm)) {
        if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO) {
            struct in_pktinfo *pi = (struct in_pktinfo *)CMSG_DATA(cm);

            pi->ipi_spec_dst = pi->ipi_addr;
            pi->ipi_ifindex = 0;
            memmove(out, cm, CMSG_SPACE(sizeof *pi));
            return CMSG_SPACE(sizeof *pi);
        }
        if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO) {
            struct in6_pktinfo *pi = (struct in6_pktinfo *)CMSG_DATA(cm);

            /* Routing picks the interface, except for link-local, which needs one. */
            if (!IN6_IS_ADDR_LINKLOCAL(&pi->ipi6_addr))
                pi->ipi6_ifindex = 0;
            memmove(out, cm, CMSG_SPACE(sizeof *pi));
            return CMSG_SPACE(sizeof *pi);
        }
    }
    return 0;
}

void udp_listener_local(struct listener *l)
{
    l->local_len = sizeof l->local;
    if (getsockname(l->w.fd, (struct sockaddr *)&l->local, &l->local_len) < 0) {
        log_msg("cannot read the address of %s udp %s: %s", l->svc->name, l->addr,
                strerror(errno));
        l->local_len = 0;
    }
}

static in_port_t listener_port(const struct listener *l)
{
    if (l->local.ss_family == AF_INET)
        return ((const struct sockaddr_in *)&l->local)->sin_port;
    if (l->local.ss_family == AF_INET6)
        return ((const struct sockaddr_in6 *)&l->local)->sin6_port;
    return 0;
}

void udp_ctx_local(struct svc_ctx *ctx, const struct listener *l, struct msghdr *msg,
                   struct sockaddr_storage *room)
{
    socklen_t len = 0;

    if (l->pktinfo && msg->msg_controllen > 0)
        len = net_pktinfo_dest(msg, listener_port(l), room);
    if (len > 0) {
        ctx->local = (const struct sockaddr *)room;
        ctx->local_len = len;
    } else {
        ctx->local = (const struct sockaddr *)&l->local;
        ctx->local_len = l->local_len;
    }
}

void udp_trace_recv(const struct listener *l, const void *peer, socklen_t len, size_t n)
{
    char a[TRACE_ADDR_MAX], note[TRACE_ADDR_MAX + 8];

    snprintf(note, sizeof note, "from %s", trace_addr(peer, len, a));
    trace_cqe((int)n, note, "recvmsg(%d)", l->w.fd);
}

void udp_log_datagram(const struct listener *l, const void *peer, socklen_t len, size_t in,
                      long out)
{
    char text[ADDR_TEXT_MAX];

    log_msg("datagram %s udp %s in=%zu out=%ld", l->svc->name,
            addr_format((const struct sockaddr *)peer, len, text, sizeof text), in,
            out < 0 ? 0 : out);
}

int udp_admit(struct listener *l, const void *peer, socklen_t len)
{
    enum drop_reason why;

    if (guard_udp_check(l->wk->guard, peer, len, &why) == 0)
        return 1;
    worker_drop(l->wk, l, why, -1, peer, len);
    return 0;
}

long udp_service_reply_n(struct listener *l, struct svc_ctx *ctx, const char **reply,
                         unsigned copies)
{
    long rlen;

    ctx->set = &l->wk->cfg->svc;
    ctx->proto = "udp";
    rlen = l->svc->udp_reply(ctx, reply);
    if (rlen > 0) {
        size_t max = guard_udp_reply_max(l->wk->guard, ctx->in_len,
                                         guard_udp_overhead(ctx->peer), copies, (size_t)rlen);

        if (max < (size_t)rlen && l->svc->udp_record) {
            /* A date or a report cut short is garbage: send it whole or not at all.
             * A daytime line or a time value fits any request's bound; an info
             * line may not. */
            worker_drop(l->wk, l, DROP_UDP_SHORT, -1, ctx->peer, ctx->peer_len);
            return -1;
        }
        if (max == 0)
            return -1;  /* cut to nothing: no answer at all */
        rlen = (long)max;
    }
    return rlen;
}

long udp_service_reply(struct listener *l, struct svc_ctx *ctx, const char **reply)
{
    return udp_service_reply_n(l, ctx, reply, 1);
}
