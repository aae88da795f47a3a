/* udp.c — answering datagrams on a udp listener.
 *
 * On a wildcard bind the reply must leave from the address the datagram was sent to
 * (a client of 127.0.0.2 expects its answer from 127.0.0.2, and a multi-homed host
 * must not answer from whichever address routing picks): the local address comes in
 * an IP_PKTINFO / IPV6_PKTINFO control message and goes back out in one. */
#include "udp.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "server.h"
#include "util.h"

#define DGRAM_MAX UDP_DGRAM_MAX
#define DGRAMS_PER_EVENT 64
#define UDP_BATCH 32

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

/* The destination in an IP_PKTINFO / IPV6_PKTINFO message, with port; returns its
 * length, 0 if msg has none. */
static socklen_t pktinfo_dest(struct msghdr *msg, in_port_t port, struct sockaddr_storage *out)
{
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(msg); cm; cm = CMSG_NXTHDR(msg, cm)) {
        if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO) {
            const struct in_pktinfo *pi = (const struct in_pktinfo *)CMSG_DATA(cm);
            struct sockaddr_in *sin = (struct sockaddr_in *)out;

            memset(sin, 0, sizeof *sin);
            sin->sin_family = AF_INET;
            sin->sin_addr = pi->ipi_addr;
            sin->sin_port = port;
            return sizeof *sin;
        }
        if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO) {
            const struct in6_pktinfo *pi = (const struct in6_pktinfo *)CMSG_DATA(cm);
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;

            memset(sin6, 0, sizeof *sin6);
            sin6->sin6_family = AF_INET6;
            sin6->sin6_addr = pi->ipi6_addr;
            sin6->sin6_port = port;
            if (IN6_IS_ADDR_LINKLOCAL(&pi->ipi6_addr))
                sin6->sin6_scope_id = (uint32_t)pi->ipi6_ifindex;
            return sizeof *sin6;
        }
    }
    return 0;
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
        len = pktinfo_dest(msg, listener_port(l), room);
    if (len > 0) {
        ctx->local = (const struct sockaddr *)room;
        ctx->local_len = len;
    } else {
        ctx->local = (const struct sockaddr *)&l->local;
        ctx->local_len = l->local_len;
    }
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

long udp_service_reply(struct listener *l, struct svc_ctx *ctx, const char **reply)
{
    long rlen;

    ctx->cfg = l->wk->cfg;
    ctx->proto = "udp";
    rlen = l->svc->udp_reply(ctx, reply);
    if (rlen > 0) {
        size_t max = guard_udp_reply_max(l->wk->guard, ctx->in_len, (size_t)rlen);

        if (max < (size_t)rlen && l->svc->udp_record) {
            /* A date or a report cut short is garbage: send it whole or not at all. */
            worker_drop(l->wk, l, DROP_UDP_SHORT, -1, ctx->peer, ctx->peer_len);
            return -1;
        }
        if (max == 0)
            return -1;  /* cut to nothing: no answer at all */
        rlen = (long)max;
    }
    return rlen;
}

/* One recvmmsg's worth of datagrams, and the replies built in place of them. */
struct udp_batch {
    struct mmsghdr in[UDP_BATCH];
    struct mmsghdr out[UDP_BATCH];
    struct iovec in_iov[UDP_BATCH], out_iov[UDP_BATCH];
    struct sockaddr_storage peer[UDP_BATCH];
    union pktinfo_cmsg control[UDP_BATCH];
    long reply_len[UDP_BATCH];
    char *data;                         /* UDP_BATCH buffers of DGRAM_MAX bytes */
};

struct udp_batch *udp_batch_new(void)
{
    struct udp_batch *b = xcalloc(1, sizeof *b);

    /* Pages are touched only as far as datagrams reach: small ones cost little. */
    b->data = xmalloc((size_t)UDP_BATCH * DGRAM_MAX);
    return b;
}

void udp_batch_free(struct udp_batch *b)
{
    if (b == NULL)
        return;
    free(b->data);
    free(b);
}

static void batch_arm(struct udp_batch *b, const struct listener *l)
{
    for (int i = 0; i < UDP_BATCH; i++) {
        struct msghdr *m = &b->in[i].msg_hdr;

        b->in_iov[i].iov_base = b->data + (size_t)i * DGRAM_MAX;
        b->in_iov[i].iov_len = DGRAM_MAX;
        m->msg_name = &b->peer[i];
        m->msg_namelen = sizeof b->peer[i];
        m->msg_iov = &b->in_iov[i];
        m->msg_iovlen = 1;
        m->msg_control = l->pktinfo ? b->control[i].buf : NULL;
        m->msg_controllen = l->pktinfo ? sizeof b->control[i].buf : 0;
        m->msg_flags = 0;
    }
}

/* Build the replies to n received datagrams; returns how many there are to send. */
static int batch_answer(struct udp_batch *b, struct listener *l, int n)
{
    const struct serve_config *cfg = l->wk->cfg;
    int nout = 0;

    for (int i = 0; i < n; i++) {
        struct msghdr *in = &b->in[i].msg_hdr, *out = &b->out[nout].msg_hdr;
        const char *reply;
        long rlen;

        counter_add(&l->stats.dgrams_in, 1);
        counter_add(&l->stats.bytes_in, b->in[i].msg_len);
        if (!udp_admit(l, in->msg_name, in->msg_namelen))
            continue;
        struct svc_ctx ctx = {
            .peer = in->msg_name, .peer_len = in->msg_namelen,
            .in = in->msg_iov->iov_base, .in_len = b->in[i].msg_len,
            .out = in->msg_iov->iov_base, .out_cap = DGRAM_MAX,
        };
        struct sockaddr_storage local;

        if (l->svc->wants_addresses)
            udp_ctx_local(&ctx, l, in, &local);
        rlen = udp_service_reply(l, &ctx, &reply);
        b->reply_len[nout] = rlen;
        if (cfg->verbose)
            udp_log_datagram(l, &b->peer[i], in->msg_namelen, b->in[i].msg_len, rlen);
        if (rlen < 0)
            continue;
        b->out_iov[nout].iov_base = (void *)reply;
        b->out_iov[nout].iov_len = (size_t)rlen;
        *out = *in;
        out->msg_iov = &b->out_iov[nout];
        out->msg_controllen = l->pktinfo ? udp_reply_pktinfo(in, in->msg_control) : 0;
        if (out->msg_controllen == 0)
            out->msg_control = NULL;
        out->msg_flags = 0;
        nout++;
    }
    return nout;
}

/* sendmmsg stops at the first failure: count that reply as dropped (a full send
 * buffer or an unreachable peer: udp may drop, and we do) and go on after it. */
static void batch_send(struct udp_batch *b, struct listener *l, int nout)
{
    int done = 0;

    while (done < nout) {
        int sent = sendmmsg(l->w.fd, b->out + done, (unsigned)(nout - done),
                            MSG_DONTWAIT | MSG_NOSIGNAL);

        if (sent < 0) {
            if (errno == EINTR)
                continue;
            counter_add(&l->stats.dgrams_dropped, 1);
            done++;
            continue;
        }
        for (int i = done; i < done + sent; i++) {
            counter_add(&l->stats.dgrams_out, 1);
            counter_add(&l->stats.bytes_out, (uint64_t)b->reply_len[i]);
        }
        done += sent;
    }
}

/* Returns the number of datagrams handled, 0 when none was waiting. */
static int udp_answer_batch(struct listener *l)
{
    struct udp_batch *b = l->wk->udp;
    int n;

    batch_arm(b, l);
    n = recvmmsg(l->w.fd, b->in, UDP_BATCH, MSG_DONTWAIT, NULL);
    if (n <= 0) {
        /* EAGAIN: all read. Other errors are queued by ICMP for earlier replies and
         * are not this batch's business; the next event tries again. */
        return 0;
    }
    batch_send(b, l, batch_answer(b, l, n));
    return n;
}

void udp_readable(struct loop *loop, struct watch *w, unsigned events)
{
    struct listener *l = container_of(w, struct listener, w);
    int handled = 0;

    (void)loop;
    (void)events;
    /* A bounded batch: other sockets get their turn even under a flood. */
    while (handled < DGRAMS_PER_EVENT) {
        int n = udp_answer_batch(l);

        if (n < UDP_BATCH) {
            handled += n;
            break;
        }
        handled += n;
    }
}
