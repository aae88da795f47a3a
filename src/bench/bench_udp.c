/* bench_udp.c — bench over udp: each socket is connected to the target and keeps
 * -p datagrams in flight, sent and received in batches (sendmmsg, recvmmsg).
 *
 * A datagram is its sequence number (8 bytes), the pipeline slot it occupies (4),
 * a check of both (4), then the pattern of (socket, sequence number). A reply of
 * the wrong length, with a bad check or pattern, or for a datagram never sent or
 * already answered (among the last max(64, 2 * depth)), is corrupt; a datagram
 * not answered within -w is lost, and a reply arriving after that is ignored. */
#include "bench/bench_worker.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client/client.h"
#include "lib/pattern.h"
#include "lib/util.h"

#define UDP_BATCH 64

enum { U_FREE, U_QUEUED, U_INFLIGHT, U_DONE, U_LOST };

struct uslot {
    uint64_t seq;
    int64_t stamp;          /* when it was (meant to be) sent: latency */
    int64_t sent;           /* when it was sent: the loss timeout */
    int state;
};

struct usock {
    struct bsock s;
    int dirty;
    uint64_t seed, next_seq;
    struct uslot *slots;    /* depth */
    uint32_t *free;         /* stack of free slot numbers */
    uint32_t nfree;
    uint32_t *queue;        /* ring of slots waiting to be sent, oldest first */
    uint32_t qhead, qlen;
    uint32_t *answered;     /* seq + 1 of the recent replies, by seq & wmask */
    uint32_t wmask;
};

struct ubatch {
    size_t n;               /* datagrams per sendmmsg or recvmmsg */
    struct mmsghdr msgs[UDP_BATCH];
    struct iovec iov[UDP_BATCH];
};

static uint32_t check_of(uint64_t seed, uint64_t seq, uint32_t slot)
{
    return (uint32_t)mix64(seed ^ seq ^ ((uint64_t)slot << 48));
}

static void build(const struct usock *u, uint32_t slot, unsigned char *buf, size_t size)
{
    uint64_t seq = u->slots[slot].seq;
    uint32_t check = check_of(u->seed, seq, slot);

    memcpy(buf, &seq, 8);
    memcpy(buf + 8, &slot, 4);
    memcpy(buf + 12, &check, 4);
    pattern_fill(mix64(u->seed + seq), BENCH_UDP_HEADER, buf + BENCH_UDP_HEADER,
                 size - BENCH_UDP_HEADER);
}

static void queue_msg(struct bench_worker *w, struct usock *u, int64_t stamp)
{
    uint32_t slot;
    unsigned long depth = w->cfg->depth;

    if (w->draining)
        return;     /* the period is over */
    slot = u->free[--u->nfree];
    u->slots[slot] = (struct uslot){ .seq = u->next_seq++, .stamp = stamp, .state = U_QUEUED };
    u->queue[(u->qhead + u->qlen++) % depth] = slot;
    bw_mark_dirty(w, &u->s, &u->dirty);
}

static void slot_free(struct bench_worker *w, struct usock *u, uint32_t slot, int state)
{
    u->slots[slot].state = state;
    u->free[u->nfree++] = slot;
    if (w->interval_ns > 0)
        w->room++;
    else
        queue_msg(w, u, w->now);
}

static void refused(struct bench_worker *w)
{
    /* The ICMP error of one datagram; the server is gone only if nothing at all
     * has come back for a whole -w. */
    if (w->now - w->last_reply >= w->cfg->wait_ns)
        bw_fail(w, V_REFUSED, "no reply from %s (udp): %s", w->cfg->target, strerror(ECONNREFUSED));
}

/* sendmmsg what is queued. Returns how many went out, or -1 if the socket cannot
 * take more now. */
static int send_batch(struct bench_worker *w, struct usock *u)
{
    struct ubatch *b = w->ub;
    size_t k = u->qlen < b->n ? u->qlen : b->n, size = w->cfg->size;
    int r;

    for (size_t i = 0; i < k; i++) {
        unsigned char *buf = w->tx + i * size;

        build(u, u->queue[(u->qhead + i) % w->cfg->depth], buf, size);
        b->iov[i] = (struct iovec){ .iov_base = buf, .iov_len = size };
        b->msgs[i].msg_hdr = (struct msghdr){ .msg_iov = &b->iov[i], .msg_iovlen = 1 };
    }
    do
        r = sendmmsg(u->s.fd, b->msgs, (unsigned)k, 0);
    while (r < 0 && errno == EINTR);
    if (r < 0 && errno == ECONNREFUSED)
        refused(w);
    else if (r < 0 && errno != EAGAIN && errno != ENOBUFS)
        bw_fail(w, verdict_of_errno(errno), "send to %s (udp) failed: %s", w->cfg->target, strerror(errno));
    if (r <= 0)
        return -1;
    for (int i = 0; i < r; i++) {
        struct uslot *sl = &u->slots[u->queue[u->qhead]];

        sl->state = U_INFLIGHT;
        sl->sent = w->now;
        u->qhead = (uint32_t)((u->qhead + 1) % w->cfg->depth);
        u->qlen--;
    }
    return (size_t)r == k ? r : -1;
}

static void flush(struct bench_worker *w, struct usock *u)
{
    while (u->qlen > 0 && send_batch(w, u) >= 0)
        ;
    /* Writable interest only while something waits; a refusal waits for the scan. */
    if (bw_watch(w, &u->s, EPOLLIN | (u->qlen > 0 ? EPOLLOUT : 0)) < 0)
        bw_fail(w, V_LOCAL, "epoll_ctl: %s", strerror(errno));
}

static void udp_flush_dirty(struct bench_worker *w)
{
    while (w->ndirty > 0) {
        struct usock *u = (struct usock *)w->dirty[--w->ndirty];

        u->dirty = 0;
        flush(w, u);
    }
}

/* Check one reply and complete its datagram. */
static void reply(struct bench_worker *w, struct usock *u, const unsigned char *buf, size_t len)
{
    size_t size = w->cfg->size;
    uint64_t seq;
    uint32_t slot, check;

    if (len != size) {
        w->n.corrupt++;
        return;
    }
    memcpy(&seq, buf, 8);
    memcpy(&slot, buf + 8, 4);
    memcpy(&check, buf + 12, 4);
    if (slot >= w->cfg->depth || check != check_of(u->seed, seq, slot) || seq >= u->next_seq
        || pattern_check(mix64(u->seed + seq), BENCH_UDP_HEADER, buf + BENCH_UDP_HEADER,
                         size - BENCH_UDP_HEADER) != size - BENCH_UDP_HEADER) {
        w->n.corrupt++;
        return;
    }
    struct uslot *sl = &u->slots[slot];
    if (sl->seq != seq || sl->state != U_INFLIGHT) {
        /* Answered already: a duplicate. Otherwise late, and counted as lost. */
        if (u->next_seq - seq <= u->wmask + 1 && u->answered[seq & u->wmask] == (uint32_t)seq + 1)
            w->n.corrupt++;
        return;
    }
    u->answered[seq & u->wmask] = (uint32_t)seq + 1;
    w->last_reply = w->now;
    bw_done(w, sl->stamp, size);
    slot_free(w, u, slot, U_DONE);
}

static void readable(struct bench_worker *w, struct usock *u)
{
    struct ubatch *b = w->ub;
    size_t cap = w->cfg->size + 1;  /* one more: a longer reply shows as longer */
    int r;

    for (size_t i = 0; i < b->n; i++) {
        b->iov[i] = (struct iovec){ .iov_base = w->rx + i * cap, .iov_len = cap };
        b->msgs[i].msg_hdr = (struct msghdr){ .msg_iov = &b->iov[i], .msg_iovlen = 1 };
    }
    do
        r = recvmmsg(u->s.fd, b->msgs, (unsigned)b->n, MSG_DONTWAIT, NULL);
    while (r < 0 && errno == EINTR);
    w->now = clock_ns();
    if (r < 0 && errno == ECONNREFUSED)
        refused(w);
    else if (r < 0 && errno != EAGAIN)
        bw_fail(w, verdict_of_errno(errno), "receive from %s (udp) failed: %s", w->cfg->target, strerror(errno));
    for (int i = 0; i < r; i++)
        reply(w, u, w->rx + (size_t)i * cap,
              (b->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) ? cap + 1 : b->msgs[i].msg_len);
}

static void on_event(struct bench_worker *w, struct bsock *s, uint32_t events)
{
    struct usock *u = (struct usock *)s;

    if (events & (EPOLLIN | EPOLLERR))
        readable(w, u);
    if (events & EPOLLOUT)
        bw_mark_dirty(w, &u->s, &u->dirty);
}

static struct usock *find_room(struct bench_worker *w)
{
    for (size_t i = 0; i < w->t->nconns; i++) {
        size_t k = (w->cursor + i) % w->t->nconns;

        if (w->socks[k].nfree > 0) {
            w->cursor = (k + 1) % w->t->nconns;   /* the next message, the next one */
            return &w->socks[k];
        }
    }
    return NULL;
}

static void udp_issue(struct bench_worker *w)
{
    int64_t at;

    while (w->room > 0 && (at = bw_due(w)) >= 0) {
        struct usock *u = find_room(w);

        if (u == NULL)
            break;
        w->room--;
        w->next_msg++;
        queue_msg(w, u, at);
    }
}

static int64_t udp_scan(struct bench_worker *w)
{
    for (size_t i = 0; i < w->t->nconns; i++) {
        struct usock *u = &w->socks[i];

        for (uint32_t k = 0; k < w->cfg->depth; k++) {
            struct uslot *sl = &u->slots[k];

            if (sl->state == U_INFLIGHT && w->now - sl->sent >= w->cfg->wait_ns) {
                w->n.lost++;
                slot_free(w, u, k, U_LOST);
            }
        }
        /* Datagrams held back by a refusal go out again now. */
        if (u->qlen > 0)
            bw_mark_dirty(w, &u->s, &u->dirty);
    }
    /* Every slot of every socket: a tenth of -w is soon enough to call one lost. */
    return w->cfg->wait_ns / 10 > SCAN_EVERY_NS ? w->cfg->wait_ns / 10 : SCAN_EVERY_NS;
}

static int udp_in_flight(const struct bench_worker *w)
{
    for (size_t i = 0; w->socks && i < w->t->nconns; i++)
        for (uint32_t k = 0; k < w->cfg->depth; k++)
            if (w->socks[i].slots[k].state == U_INFLIGHT)
                return 1;
    return 0;
}

static int open_socket(struct bench_worker *w, struct usock *u)
{
    const struct bench_config *cfg = w->cfg;

    u->s.fd = socket(cfg->addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (u->s.fd < 0) {
        bw_fail(w, V_LOCAL, "cannot open a socket: %s", strerror(errno));
        return -1;
    }
    if (cfg->source && client_bind_source(u->s.fd, cfg->source, cfg->addr.ss_family) < 0) {
        char src[ADDR_TEXT_MAX + 32];

        client_source_name(cfg->source, src, sizeof src);
        bw_fail(w, V_LOCAL, "cannot use %s: %s", src, strerror(errno));
        return -1;
    }
    if (connect(u->s.fd, (const struct sockaddr *)&cfg->addr, cfg->addrlen) < 0) {
        bw_fail(w, verdict_of_errno(errno), "cannot connect to %s (udp): %s", cfg->target, strerror(errno));
        return -1;
    }
    if (bw_watch(w, &u->s, EPOLLIN) < 0) {
        bw_fail(w, V_LOCAL, "epoll_ctl: %s", strerror(errno));
        return -1;
    }
    w->n.connections++;
    return 0;
}

static void init_socket(struct bench_worker *w, struct usock *u)
{
    unsigned long depth = w->cfg->depth;

    u->s.fd = -1;
    u->s.on_event = on_event;
    u->seed = pattern_seed(bw_new_seed(w));
    u->slots = xcalloc(depth, sizeof *u->slots);
    u->free = xcalloc(depth, sizeof *u->free);
    u->queue = xcalloc(depth, sizeof *u->queue);
    u->wmask = 63;
    while (u->wmask + 1 < 2 * depth)
        u->wmask = u->wmask * 2 + 1;
    u->answered = xcalloc(u->wmask + 1, sizeof *u->answered);
    for (uint32_t k = 0; k < depth; k++)
        u->free[u->nfree++] = (uint32_t)(depth - 1 - k);
}

static int udp_setup(struct bench_worker *w)
{
    size_t n = w->t->nconns, per = SCRATCH_LEN / (w->cfg->size + 1);

    w->ub = xcalloc(1, sizeof *w->ub);
    w->ub->n = per < UDP_BATCH ? per : UDP_BATCH;
    w->socks = xcalloc(n, sizeof *w->socks);
    w->dirty = xcalloc(n, sizeof *w->dirty);
    for (size_t i = 0; i < n; i++)
        init_socket(w, &w->socks[i]);
    for (size_t i = 0; i < n; i++) {
        struct usock *u = &w->socks[i];

        if (open_socket(w, u) < 0)
            return -1;
        if (w->interval_ns > 0)
            w->room += w->cfg->depth;
        else
            for (unsigned long k = 0; k < w->cfg->depth; k++)
                queue_msg(w, u, w->now);
    }
    return 0;
}

static void udp_teardown(struct bench_worker *w)
{
    for (size_t i = 0; w->socks && i < w->t->nconns; i++) {
        struct usock *u = &w->socks[i];

        if (u->s.fd >= 0)
            close(u->s.fd);
        free(u->slots);
        free(u->free);
        free(u->queue);
        free(u->answered);
    }
    free(w->socks);
    free(w->ub);
}

const struct bench_traffic bench_udp_traffic = {
    .setup = udp_setup,
    .issue = udp_issue,
    .scan = udp_scan,
    .flush_dirty = udp_flush_dirty,
    .in_flight = udp_in_flight,
    .teardown = udp_teardown,
};
