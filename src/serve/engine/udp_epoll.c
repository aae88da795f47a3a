/* udp_epoll.c — answering datagrams on the epoll engine: up to UDP_BATCH of them
 * with one recvmmsg, their replies (dgram.c) with one sendmmsg, a peer's equal
 * replies as one UDP GSO send. */
#include "serve/engine/udp_epoll.h"
#include "serve/engine/gso.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "lib/log.h"
#include "serve/core/dgram_fault.h"
#include "serve/core/worker.h"
#include "lib/util.h"

#define DGRAM_MAX UDP_DGRAM_MAX
#define DGRAMS_PER_EVENT 64
#define UDP_BATCH 32
_Static_assert(UDP_BATCH <= GSO_ORDER_MAX, "gso_order takes one batch");

/* A reply's control data: the source address, and for several replies sent as one,
 * their segment size. */
union reply_cmsg {
    char buf[CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(sizeof(uint16_t))];
    size_t align;
};

/* One recvmmsg's worth of datagrams, and the replies built in place of them. */
struct udp_batch {
    struct mmsghdr in[UDP_BATCH];
    struct mmsghdr out[UDP_BATCH];      /* a message per reply, or per run (coalesce) */
    struct iovec in_iov[UDP_BATCH], out_iov[UDP_BATCH];
    struct sockaddr_storage peer[UDP_BATCH];
    union pktinfo_cmsg control[UDP_BATCH];
    union reply_cmsg out_control[UDP_BATCH];
    size_t pktinfo_len[UDP_BATCH];      /* of out[k]'s control data, without UDP_SEGMENT */
    int dgrams[UDP_BATCH];              /* replies in out[k] */
    size_t bytes[UDP_BATCH];
    int gso_off;                        /* the kernel refused UDP_SEGMENT once */
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
        if (cfg->verbose)
            udp_log_datagram(l, &b->peer[i], in->msg_namelen, b->in[i].msg_len, rlen);
        if (rlen < 0)
            continue;
        if (dgram_faulty(l)) {
            dgram_fault_reply(l, in->msg_name, in->msg_namelen, in, reply, (size_t)rlen,
                              b->in[i].msg_len);
            continue;
        }
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

/* Do replies i and j go to the same peer from the same source address? */
static int same_destination(const struct udp_batch *b, int i, int j)
{
    const struct msghdr *a = &b->out[i].msg_hdr, *m = &b->out[j].msg_hdr;

    return m->msg_namelen == a->msg_namelen &&
           memcmp(m->msg_name, a->msg_name, a->msg_namelen) == 0 &&
           m->msg_controllen == a->msg_controllen &&
           (a->msg_controllen == 0 ||
            memcmp(m->msg_control, a->msg_control, a->msg_controllen) == 0);
}

/* Bring each peer's replies together, in the order they were asked, so that runs
 * grow long: replies to different peers may go out in any order. */
static int same_destination_at(const void *ctx, int i, int j)
{
    return same_destination(ctx, i, j);
}

static void group_by_peer(struct udp_batch *b, int nout)
{
    struct mmsghdr out[UDP_BATCH];
    struct iovec iov[UDP_BATCH];
    int order[UDP_BATCH];

    if (gso_order(nout, same_destination_at, b, order) == 0)
        return;
    for (int k = 0; k < nout; k++) {
        out[k] = b->out[order[k]];
        iov[k] = b->out_iov[order[k]];
        out[k].msg_hdr.msg_iov = &b->out_iov[k];
    }
    memcpy(b->out, out, (size_t)nout * sizeof out[0]);
    memcpy(b->out_iov, iov, (size_t)nout * sizeof iov[0]);
}

/* May reply j join the run of replies first..j-1 in one GSO send? The same
 * destination, and every segment but the last of one size. */
static int joins_run(const struct udp_batch *b, int first, int j)
{
    size_t seg = b->out_iov[first].iov_len;

    return j - first < GSO_SEGMENTS_MAX && b->out_iov[j - 1].iov_len == seg &&
           b->out_iov[j].iov_len > 0 && b->out_iov[j].iov_len <= seg &&
           same_destination(b, first, j);
}

/* Make out[k] the message for replies first..first+count-1: one iovec each, the
 * source address, and the segment size if there are several. */
static void run_message(struct udp_batch *b, int k, int first, int count)
{
    struct msghdr m = b->out[first].msg_hdr;
    union reply_cmsg *ctl = &b->out_control[k];
    size_t len = m.msg_controllen;

    if (len > 0)
        memcpy(ctl->buf, m.msg_control, len);
    b->pktinfo_len[k] = len;
    b->dgrams[k] = count;
    b->bytes[k] = 0;
    for (int i = first; i < first + count; i++)
        b->bytes[k] += b->out_iov[i].iov_len;
    m.msg_iov = &b->out_iov[first];
    m.msg_iovlen = (size_t)count;
    if (count > 1) {
        struct cmsghdr *cm = (struct cmsghdr *)(ctl->buf + len);
        uint16_t seg = (uint16_t)b->out_iov[first].iov_len;

        cm->cmsg_level = SOL_UDP;
        cm->cmsg_type = UDP_SEGMENT;
        cm->cmsg_len = CMSG_LEN(sizeof seg);
        memcpy(CMSG_DATA(cm), &seg, sizeof seg);
        len += CMSG_SPACE(sizeof seg);
    }
    m.msg_control = len > 0 ? ctl->buf : NULL;
    m.msg_controllen = len;
    b->out[k].msg_hdr = m;
}

/* Turn nout replies into messages: a run of replies of one size to one peer goes as
 * one GSO send, which costs the kernel one trip down the stack for all of them.
 * Returns the number of messages. */
static int batch_coalesce(struct udp_batch *b, int nout)
{
    int k = 0;

    if (!b->gso_off)
        group_by_peer(b, nout);

    for (int first = 0; first < nout; k++) {
        int count = 1;

        if (!b->gso_off && b->out_iov[first].iov_len > 0 &&
            b->out_iov[first].iov_len <= GSO_SEGMENT_MAX)
            while (first + count < nout && joins_run(b, first, first + count))
                count++;
        run_message(b, k, first, count);
        first += count;
    }
    return k;
}

/* A GSO send the kernel refused as such (no UDP_SEGMENT here, or no checksum
 * offload on the route): send its replies one by one, and no more GSO. Returns
 * how many went out. */
static int send_run_singly(struct udp_batch *b, struct listener *l, int k)
{
    struct msghdr m = b->out[k].msg_hdr;
    struct iovec *iov = m.msg_iov;
    int sent = 0;

    b->gso_off = 1;
    m.msg_controllen = b->pktinfo_len[k];
    if (m.msg_controllen == 0)
        m.msg_control = NULL;
    m.msg_iovlen = 1;
    for (int i = 0; i < b->dgrams[k]; i++) {
        m.msg_iov = &iov[i];
        ssize_t n = sendmsg(l->w.fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);

        if (TRACE_ON)
            trace_call(n, errno, NULL, "sendmsg(%d, %zu)", l->w.fd, iov[i].iov_len);
        if (n >= 0) {
            counter_add(&l->stats.bytes_out, iov[i].iov_len);
            sent++;
        }
    }
    return sent;
}

/* sendmmsg stops at the first failure: count that message's replies as dropped (a
 * full send buffer or an unreachable peer: udp may drop, and we do) and go on
 * after it. */
static void batch_send(struct udp_batch *b, struct listener *l, int nmsg)
{
    int done = 0;

    while (done < nmsg) {
        int sent = sendmmsg(l->w.fd, b->out + done, (unsigned)(nmsg - done),
                            MSG_DONTWAIT | MSG_NOSIGNAL);

        if (TRACE_ON)
            trace_call(sent, errno, b->dgrams[done] > 1 ? "GSO" : NULL, "sendmmsg(%d, %d)",
                       l->w.fd, nmsg - done);

        if (sent < 0) {
            int ok = 0;

            if (errno == EINTR)
                continue;
            if (b->dgrams[done] > 1 && gso_refused(errno))
                ok = send_run_singly(b, l, done);
            counter_add(&l->stats.dgrams_out, (uint64_t)ok);
            counter_add(&l->stats.dgrams_dropped, (uint64_t)(b->dgrams[done] - ok));
            done++;
            continue;
        }
        for (int k = done; k < done + sent; k++) {
            counter_add(&l->stats.dgrams_out, (uint64_t)b->dgrams[k]);
            counter_add(&l->stats.bytes_out, (uint64_t)b->bytes[k]);
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
    if (TRACE_ON)
        trace_call(n, errno, NULL, "recvmmsg(%d, %d)", l->w.fd, UDP_BATCH);
    if (n <= 0) {
        /* EAGAIN: all read. Other errors are queued by ICMP for earlier replies and
         * are not this batch's business; the next event tries again. */
        return 0;
    }
    batch_send(b, l, batch_coalesce(b, batch_answer(b, l, n)));
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

        if (n < UDP_BATCH)
            break;      /* all read */
        handled += n;
    }
}
