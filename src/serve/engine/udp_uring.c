/* udp_uring.c — answering datagrams on io_uring (see uring_engine.h).
 *
 * One multishot recvmsg per listener fills buffers from the ring: each holds the
 * sender's address, the IP_PKTINFO / IPV6_PKTINFO message of a wildcard bind, and
 * the payload. A reply goes out with a sendmsg from a slot that keeps its header
 * alive until it completes; an echo is sent from the very buffer it arrived in.
 *
 * A reply may not wait for room (MSG_DONTWAIT: UDP may drop, as on epoll), so its
 * send completes while it is submitted, and the loop may sleep past that
 * completion (uring_expect_inline): a datagram ping-pong takes one io_uring_enter
 * per datagram. Except while a receive waits for buffers that only those
 * completions give back.
 *
 * Replies are not sent as they are made but at the end of the batch of
 * completions (udp_uring_batch_end): a peer's replies of one size then go out as one
 * sendmsg with UDP_SEGMENT (GSO, as on epoll), one trip down the stack for all
 * of them. The first reply's slot carries the run: its header, its iovecs (one
 * per reply, each from the buffer that reply was made in) and the list of the
 * run's other slots, freed when the send completes. */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <netinet/udp.h>

#include "lib/loop_uring.h"
#include "serve/core/worker.h"
#include "serve/core/dgram.h"
#include "serve/engine/gso.h"
#include "serve/core/dgram_fault.h"
#include "serve/engine/uring_engine.h"
#include "lib/util.h"

#define DGRAM_BUFS 64               /* per worker at most; a power of two */
#define DGRAM_BUFS_FIRST 8          /* published at start; more as load needs them */
#define DGRAM_SLOTS DGRAM_BUFS      /* a reply holds its buffer: never more needed */
#define DGRAM_NAME_MAX ((unsigned)sizeof(struct sockaddr_storage))
/* Header, name and control data come before the payload in each buffer. */
#define DGRAM_BUF_SIZE (UDP_DGRAM_MAX + 512)
_Static_assert(DGRAM_SLOTS <= GSO_ORDER_MAX, "gso_order takes a batch of slots");

/* A GSO send's header, iovecs and control data (the source address, then the
 * segment size), while it is in flight. */
struct udp_run {
    struct msghdr msg;
    struct iovec iov[GSO_SEGMENTS_MAX];
    union {
        char buf[CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(sizeof(uint16_t))];
        size_t align;
    } control;
    struct udp_run *next_free;
};

struct udp_slot {
    struct msghdr msg;
    struct iovec iov;
    struct sockaddr_storage peer;
    union pktinfo_cmsg control;
    struct listener *l;
    struct udp_slot *next_free;
    struct udp_slot *run_next;      /* in a run's first slot: the run's other slots */
    struct udp_run *run;            /* in a run's first slot, while it is in flight */
    unsigned nrun;                  /* replies in this slot's send: 1, or the run's */
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
    us->pending = xcalloc(DGRAM_SLOTS, sizeof *us->pending);
    us->udp_tmpl = xcalloc(wk->nlisteners, sizeof *us->udp_tmpl);
    return 0;
}

void udp_uring_destroy(struct worker *wk)
{
    struct uring_state *us = wk->uring;

    bufring_destroy(&us->dgram);
    free(us->slots);
    free(us->pending);
    free(us->udp_tmpl);
    while (us->free_runs) {
        struct udp_run *r = us->free_runs;

        us->free_runs = r->next_free;
        free(r);
    }
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
    if (TRACE_ON)
        trace_submit("recvmsg_multishot(%d)", l->w.fd);
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
    if (TRACE_ON)
        udp_trace_recv(l, &slot->peer, namelen, len);
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
    slot->nrun = 1;
    slot->run = NULL;
    slot->run_next = NULL;
    us->pending[us->npending++] = slot;     /* sent at the end of the batch */
}

static size_t iov_total(const struct msghdr *msg)
{
    size_t total = 0;

    for (size_t i = 0; i < msg->msg_iovlen; i++)
        total += msg->msg_iov[i].iov_len;
    return total;
}

static void submit_slot(struct uring_state *us, struct udp_slot *slot, struct msghdr *msg)
{
    struct io_uring_sqe *sqe = uring_get_sqe(us->ring);

    io_uring_prep_sendmsg(sqe, slot->l->w.fd, msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    io_uring_sqe_set_data64(sqe, uring_ud(slot, TAG_UDP_SEND));
    if (TRACE_ON)
        trace_submit("sendmsg(%d, %zu)", slot->l->w.fd, iov_total(msg));
    if (slot->l->armed)
        uring_expect_inline(us->ring);
}

/* Do pending replies i and j go out of one socket to one peer from one address? */
static int same_destination(const void *ctx, int i, int j)
{
    const struct udp_slot *const *p = ctx;
    const struct msghdr *a = &p[i]->msg, *b = &p[j]->msg;

    return p[i]->l == p[j]->l && a->msg_namelen == b->msg_namelen &&
           memcmp(a->msg_name, b->msg_name, a->msg_namelen) == 0 &&
           a->msg_controllen == b->msg_controllen &&
           (a->msg_controllen == 0 || memcmp(a->msg_control, b->msg_control, a->msg_controllen) == 0);
}

/* May pending reply j join the run first..j-1 in one GSO send? The same
 * destination, and every segment but the last of the first one's size. */
static int joins_run(struct udp_slot **p, int first, int j)
{
    size_t seg = p[first]->len;

    return j - first < GSO_SEGMENTS_MAX && p[j - 1]->len == seg && p[j]->len > 0 &&
           p[j]->len <= seg && same_destination(p, first, j);
}

static struct udp_run *run_get(struct uring_state *us)
{
    struct udp_run *r = us->free_runs;

    if (r == NULL)
        return malloc(sizeof *r);
    us->free_runs = r->next_free;
    return r;
}

static void run_put(struct uring_state *us, struct udp_run *r)
{
    r->next_free = us->free_runs;
    us->free_runs = r;
}

/* Send p[0..count) as one GSO send from p[0]'s slot; 0, or -1 without memory for
 * the run's header (then they go one by one). */
static int submit_run(struct uring_state *us, struct udp_slot **p, int count)
{
    struct udp_slot *first = p[0];
    struct udp_run *r = run_get(us);
    size_t len = first->msg.msg_controllen;
    uint16_t seg = (uint16_t)first->len;
    struct cmsghdr *cm;

    if (r == NULL)
        return -1;
    r->msg = first->msg;
    for (int i = 0; i < count; i++) {
        r->iov[i] = p[i]->iov;
        p[i]->run_next = i + 1 < count ? p[i + 1] : NULL;
    }
    r->msg.msg_iov = r->iov;
    r->msg.msg_iovlen = (size_t)count;
    if (len > 0)
        memcpy(r->control.buf, first->msg.msg_control, len);
    cm = (struct cmsghdr *)(r->control.buf + len);
    cm->cmsg_level = SOL_UDP;
    cm->cmsg_type = UDP_SEGMENT;
    cm->cmsg_len = CMSG_LEN(sizeof seg);
    memcpy(CMSG_DATA(cm), &seg, sizeof seg);
    r->msg.msg_control = r->control.buf;
    r->msg.msg_controllen = len + CMSG_SPACE(sizeof seg);
    first->run = r;
    first->nrun = (unsigned)count;
    submit_slot(us, first, &r->msg);
    return 0;
}

static void slot_release(struct worker *wk, struct udp_slot *slot)
{
    bufring_put(&wk->uring->dgram, slot->bid);
    slot_put(wk->uring, slot);
}

/* The batch's replies go out: each peer's brought together, in the order asked,
 * and runs of one size as one GSO send. */
void udp_uring_batch_end(struct worker *wk)
{
    struct uring_state *us = wk->uring;
    struct udp_slot *sorted[DGRAM_SLOTS];
    int order[DGRAM_SLOTS], n = (int)us->npending;

    if (n == 0)
        return;
    us->npending = 0;
    if (us->gso_off || gso_order(n, same_destination, us->pending, order) == 0)
        memcpy(sorted, us->pending, (size_t)n * sizeof sorted[0]);
    else
        for (int k = 0; k < n; k++)
            sorted[k] = us->pending[order[k]];
    for (int first = 0; first < n;) {
        int count = 1;

        if (sorted[first]->l->w.fd < 0) {   /* closed meanwhile (stopping) */
            slot_release(wk, sorted[first++]);
            continue;
        }
        if (!us->gso_off && sorted[first]->len > 0 && sorted[first]->len <= GSO_SEGMENT_MAX)
            while (first + count < n && joins_run(sorted, first, first + count))
                count++;
        if (count == 1 || submit_run(us, sorted + first, count) < 0)
            for (int i = first; i < first + count; i++)
                submit_slot(us, sorted[i], &sorted[i]->msg);
        first += count;
    }
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
    if (TRACE_ON && res < 0)    /* a datagram is told by build_reply, with its size */
        trace_cqe_fd("recvmsg", l->w.fd, res);
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
    if (!l->armed) {
        /* The sends in flight give back the buffers it waits for: handle them. */
        uring_unexpect_all(wk->uring->ring);
        worker_check_done(wk);
    }
}

/* A GSO send the kernel refused as such: no more runs, and its replies go again
 * one by one, each from its own slot. */
static void run_resend_singly(struct worker *wk, struct udp_slot *first)
{
    struct uring_state *us = wk->uring;

    us->gso_off = 1;
    for (struct udp_slot *s = first, *next; s; s = next) {
        next = s->run_next;
        s->run_next = NULL;
        s->nrun = 1;
        submit_slot(us, s, &s->msg);
    }
}

void udp_uring_on_send(struct worker *wk, struct udp_slot *slot, int res)
{
    struct uring_state *us = wk->uring;
    struct listener *l = slot->l;
    struct udp_run *r = slot->run;

    if (TRACE_ON)
        trace_cqe_fd("sendmsg", l->w.fd, res);
    slot->run = NULL;
    if (r) {
        run_put(us, r);
        if (res < 0 && gso_refused(-res) && l->w.fd >= 0) {
            run_resend_singly(wk, slot);
            return;
        }
    }
    if (res >= 0) {
        counter_add(&l->stats.dgrams_out, slot->nrun);
        counter_add(&l->stats.bytes_out, (uint64_t)res);
    } else {
        counter_add(&l->stats.dgrams_dropped, slot->nrun);     /* udp may drop, and we do */
    }
    for (struct udp_slot *s = slot, *next; s; s = next) {
        next = s->run_next;
        s->run_next = NULL;
        slot_release(wk, s);
    }
    rearm_waiting(wk);
}
