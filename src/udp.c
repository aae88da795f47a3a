/* udp.c — answering datagrams on a udp listener.
 *
 * On a wildcard bind the reply must leave from the address the datagram was sent to
 * (a client of 127.0.0.2 expects its answer from 127.0.0.2, and a multi-homed host
 * must not answer from whichever address routing picks): the local address comes in
 * an IP_PKTINFO / IPV6_PKTINFO control message and goes back out in one. */
#include "udp.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "server.h"

#define DGRAM_MAX UDP_DGRAM_MAX
#define DGRAMS_PER_EVENT 64

union pktinfo_cmsg {
    char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
    struct cmsghdr align;
};

/* Turn the received destination into the source for the reply; returns the control
 * length to send, 0 if there is none. */
static size_t reply_pktinfo(struct msghdr *msg)
{
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(msg); cm; cm = CMSG_NXTHDR(msg, cm)) {
        if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO) {
            struct in_pktinfo *pi = (struct in_pktinfo *)CMSG_DATA(cm);

            pi->ipi_spec_dst = pi->ipi_addr;
            pi->ipi_ifindex = 0;
            memmove(msg->msg_control, cm, CMSG_SPACE(sizeof *pi));
            return CMSG_SPACE(sizeof *pi);
        }
        if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO) {
            struct in6_pktinfo *pi = (struct in6_pktinfo *)CMSG_DATA(cm);

            /* Routing picks the interface, except for link-local, which needs one. */
            if (!IN6_IS_ADDR_LINKLOCAL(&pi->ipi6_addr))
                pi->ipi6_ifindex = 0;
            memmove(msg->msg_control, cm, CMSG_SPACE(sizeof *pi));
            return CMSG_SPACE(sizeof *pi);
        }
    }
    return 0;
}

static void log_datagram(struct listener *l, const struct sockaddr_storage *peer,
                         socklen_t len, size_t in, long out)
{
    char text[ADDR_TEXT_MAX];

    log_msg("datagram %s udp %s in=%zu out=%ld", l->svc->name,
            addr_format((const struct sockaddr *)peer, len, text, sizeof text), in,
            out < 0 ? 0 : out);
}

/* Returns 1 if a datagram was handled, 0 when none is waiting. */
static int udp_answer_one(struct listener *l)
{
    struct worker *wk = l->wk;
    struct sockaddr_storage peer;
    union pktinfo_cmsg control;
    struct iovec iov = { .iov_base = wk->dgram, .iov_len = DGRAM_MAX };
    struct msghdr msg = {
        .msg_name = &peer, .msg_namelen = sizeof peer,
        .msg_iov = &iov, .msg_iovlen = 1,
        .msg_control = l->pktinfo ? control.buf : NULL,
        .msg_controllen = l->pktinfo ? sizeof control.buf : 0,
    };
    const char *reply;
    ssize_t n = recvmsg(l->w.fd, &msg, MSG_DONTWAIT);
    long rlen;

    if (n < 0) {
        /* Errors queued by ICMP for earlier replies are not this datagram's business. */
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : 1;
    }
    l->stats.dgrams_in++;
    l->stats.bytes_in += (uint64_t)n;
    rlen = l->svc->udp_reply(wk->cfg, wk->dgram, (size_t)n, &reply);
    if (rlen >= 0) {
        iov.iov_base = (void *)reply;
        iov.iov_len = (size_t)rlen;
        msg.msg_controllen = l->pktinfo ? reply_pktinfo(&msg) : 0;
        if (msg.msg_controllen == 0)
            msg.msg_control = NULL;
        msg.msg_flags = 0;
        if (sendmsg(l->w.fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0) {
            l->stats.dgrams_out++;
            l->stats.bytes_out += (uint64_t)rlen;
        } else {
            /* A full send buffer or an unreachable peer: udp may drop, and we do. */
            l->stats.dgrams_dropped++;
        }
    }
    if (wk->cfg->verbose)
        log_datagram(l, &peer, msg.msg_namelen, (size_t)n, rlen);
    return 1;
}

void udp_readable(struct loop *loop, struct watch *w, unsigned events)
{
    struct listener *l = container_of(w, struct listener, w);

    (void)loop;
    (void)events;
    /* A bounded batch: other sockets get their turn even under a flood. */
    for (int i = 0; i < DGRAMS_PER_EVENT; i++)
        if (!udp_answer_one(l))
            break;
}
