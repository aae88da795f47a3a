/* udp_uring.c — answering datagrams on io_uring (see uring_engine.h).
 *
 * One multishot recvmsg per listener fills buffers from the ring: each holds the
 * sender's address, the IP_PKTINFO / IPV6_PKTINFO message of a wildcard bind, and
 * the payload. A reply goes out with a sendmsg from a slot that keeps its header
 * alive until it completes; an echo is sent from the very buffer it arrived in. */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "lib/loop_uring.h"
#include "serve/core/worker.h"
#include "serve/core/dgram.h"
#include "serve/core/dgram_fault.h"
#include "serve/engine/uring_engine.h"
#include "lib/util.h"

#define DGRAM_BUFS 64               /* per worker at most; a power of two */
#define DGRAM_BUFS_FIRST 8          /* published at start; more as load needs them */
#define DGRAM_SLOTS DGRAM_BUFS      /* a reply holds its buffer: never more needed */
#define DGRAM_NAME_MAX ((unsigned)sizeof(struct sockaddr_storage))
/* Header, name and control data come before the payload in each buffer. */
#define DGRAM_BUF_SIZE (UDP_DGRAM_MAX + 512)

struct udp_slot {
    struct msghdr msg;
    struct iovec iov;
    struct sockaddr_storage peer;
    union pktinfo_cmsg control;
    struct listener *l;
    struct udp_slot *next_free;
    unsigned bid;
    size_t len;
};

static void slot_put(struct uring_state *us, struct udp_slot *slot)
{
    slot->next_free = us->free_slots;
    us->free_slots = slot;
}

int udp_uring_init(struct worker *wk)
{
    struct uring_state *us = wk->uring;
    int any = 0;

    for (size_t i = 0; i < wk->nlisteners; i++)
        any |= wk->listeners[i].kind == LISTEN_UDP;
    if (!any)
        return 0;
    if (bufring_init(&us->dgram, wk->loop, DGRAM_GROUP, DGRAM_BUFS, DGRAM_BUF_SIZE,
                     DGRAM_BUFS_FIRST) < 0)
        return -1;
    us->slots = xcalloc(DGRAM_SLOTS, sizeof *us->slots);
    for (unsigned i = 0; i < DGRAM_SLOTS; i++)
        slot_put(us, &us->slots[i]);
    us->udp_tmpl = xcalloc(wk->nlisteners, sizeof *us->udp_tmpl);
    return 0;
}

void udp_uring_destroy(struct worker *wk)
{
    struct uring_state *us = wk->uring;

    bufring_destroy(&us->dgram);
    free(us->slots);
    free(us->udp_tmpl);
}

static struct msghdr *template_of(struct worker *wk, struct listener *l)
{
    return &wk->uring->udp_tmpl[l - wk->listeners];
}

void udp_uring_start(struct worker *wk, struct listener *l)
{
    struct io_uring_sqe *sqe = uring_get_sqe(wk->uring->ring);
    struct msghdr *tmpl = template_of(wk, l);

    /* Only the sizes count: they say how much room name and control data take. */
    memset(tmpl, 0, sizeof *tmpl);
    tmpl->msg_namelen = DGRAM_NAME_MAX;
    tmpl->msg_controllen = l->pktinfo ? sizeof(union pktinfo_cmsg) : 0;
    io_uring_prep_recvmsg_multishot(sqe, l->w.fd, tmpl, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = DGRAM_GROUP;
    io_uring_sqe_set_data64(sqe, uring_ud(l, TAG_UDP_RECV));
    l->armed = 1;
}

/* Fill a slot with the reply to the datagram in buffer bid; returns 0 if there is
 * one to send. */
static int build_reply(struct worker *wk, struct listener *l, struct udp_slot *slot,
                       struct io_uring_recvmsg_out *o, int res)
{
    struct msghdr *tmpl = template_of(wk, l);
    char *payload = io_uring_recvmsg_payload(o, tmpl);
    size_t len = io_uring_recvmsg_payload_length(o, res, tmpl);
    socklen_t namelen = o->namelen <= DGRAM_NAME_MAX ? o->namelen : DGRAM_NAME_MAX;
    struct svc_ctx ctx = { 0 };
    struct sockaddr_storage local;
    const char *reply;
    long rlen;

    counter_add(&l->stats.dgrams_in, 1);
    counter_add(&l->stats.bytes_in, len);
    memcpy(&slot->peer, io_uring_recvmsg_name(o), namelen);
    if (!udp_admit(l, &slot->peer, namelen))
        return -1;
    ctx.peer = (const struct sockaddr *)&slot->peer;
    ctx.peer_len = namelen;
    ctx.in = payload;
    ctx.in_len = len;
    ctx.out = payload;
    ctx.out_cap = (size_t)((char *)o + DGRAM_BUF_SIZE - payload);
    if (l->svc->wants_addresses) {
        /* The control data follows the room the template gave the name. */
        struct msghdr in = {
            .msg_control = (char *)io_uring_recvmsg_name(o) + tmpl->msg_namelen,
            .msg_controllen = o->controllen,
        };

        udp_ctx_local(&ctx, l, &in, &local);
    }
    rlen = udp_service_reply(l, &ctx, &reply);
    if (wk->cfg->verbose)
        udp_log_datagram(l, &slot->peer, namelen, len, rlen);
    if (rlen < 0)
        return -1;
    if (dgram_faulty(l)) {
        /* The control data follows the room the template gave the name. */
        struct msghdr in = {
            .msg_control = (char *)io_uring_recvmsg_name(o) + tmpl->msg_namelen,
            .msg_controllen = o->controllen,
        };

        dgram_fault_reply(l, (struct sockaddr *)&slot->peer, namelen, &in, reply, (size_t)rlen,
                          len);
        return -1;      /* sent or held by the faults: nothing for the ring to send */
    }
    memset(&slot->msg, 0, sizeof slot->msg);
    slot->iov.iov_base = (void *)reply;
    slot->iov.iov_len = (size_t)rlen;
    slot->len = (size_t)rlen;
    slot->msg.msg_name = &slot->peer;
    slot->msg.msg_namelen = namelen;
    slot->msg.msg_iov = &slot->iov;
    slot->msg.msg_iovlen = 1;
    if (l->pktinfo && o->controllen > 0) {
        /* The control data follows the room the template gave the name. */
        struct msghdr in = {
            .msg_control = (char *)io_uring_recvmsg_name(o) + tmpl->msg_namelen,
            .msg_controllen = o->controllen,
        };

        slot->msg.msg_controllen = udp_reply_pktinfo(&in, slot->control.buf);
        slot->msg.msg_control = slot->msg.msg_controllen ? slot->control.buf : NULL;
    }
    return 0;
}

static void answer(struct worker *wk, struct listener *l, unsigned bid, int res)
{
    struct uring_state *us = wk->uring;
    struct io_uring_recvmsg_out *o =
        io_uring_recvmsg_validate(bufring_addr(&us->dgram, bid), res, template_of(wk, l));
    struct udp_slot *slot = us->free_slots;
    struct io_uring_sqe *sqe;

    if (o == NULL || slot == NULL || (o->flags & MSG_TRUNC) || l->w.fd < 0 ||
        build_reply(wk, l, slot, o, res) < 0) {
        if (slot == NULL || (o && (o->flags & MSG_TRUNC)))
            counter_add(&l->stats.dgrams_dropped, 1);
        bufring_put(&us->dgram, bid);
        return;
    }
    us->free_slots = slot->next_free;
    slot->l = l;
    slot->bid = bid;
    sqe = uring_get_sqe(us->ring);
    io_uring_prep_sendmsg(sqe, l->w.fd, &slot->msg, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, uring_ud(slot, TAG_UDP_SEND));
}

/* A receive that ran out of buffers (ENOBUFS) has ended; it can start again once
 * one is back, whether a reply's send returned it or a dropped datagram did. The
 * buffers are shared by every udp listener of the worker: any of them may wait. */
static void rearm_waiting(struct worker *wk)
{
    struct uring_state *us = wk->uring;

    for (size_t i = 0; i < wk->nlisteners && !bufring_empty(&us->dgram); i++) {
        struct listener *l = &wk->listeners[i];

        if (l->kind == LISTEN_UDP && !l->armed && l->w.fd >= 0 && !wk->stopping)
            udp_uring_start(wk, l);
    }
}

void udp_uring_on_recv(struct worker *wk, struct listener *l, int res, unsigned flags)
{
    if (!(flags & IORING_CQE_F_MORE))
        l->armed = 0;
    if (flags & IORING_CQE_F_BUFFER) {
        unsigned bid = bufring_bid(flags);

        bufring_take(&wk->uring->dgram);
        if (res >= 0)
            answer(wk, l, bid, res);
        else
            bufring_put(&wk->uring->dgram, bid);
    }
    if (res == -ENOBUFS)
        rearm_waiting(wk);      /* if the buffers are all back already */
    else if (!l->armed && res != -ECANCELED && l->w.fd >= 0 && !wk->stopping)
        udp_uring_start(wk, l);
    if (!l->armed)
        worker_check_done(wk);
}

void udp_uring_on_send(struct worker *wk, struct udp_slot *slot, int res)
{
    struct uring_state *us = wk->uring;
    struct listener *l = slot->l;

    if (res >= 0) {
        counter_add(&l->stats.dgrams_out, 1);
        counter_add(&l->stats.bytes_out, slot->len);
    } else {
        counter_add(&l->stats.dgrams_dropped, 1);      /* udp may drop, and we do */
    }
    bufring_put(&us->dgram, slot->bid);
    slot_put(us, slot);
    rearm_waiting(wk);
}
