/* dgram_fault.c — the datagram faults (see dgram_fault.h). */
#include "serve/core/dgram_fault.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/util.h"
#include "serve/core/dgram.h"

#define QUEUE_MAX 4096              /* replies held back per worker */
#define QUEUE_BYTES_MAX (4u << 20)  /* and their bytes */
#define PEER_HELD_MAX (QUEUE_MAX / 16)    /* one peer's share of them: others keep room */
#define PEER_BYTES_MAX (QUEUE_BYTES_MAX / 16)
#define PEER_SETS 1024              /* peers remembered: sets of PEER_WAYS; a power of two */
#define PEER_WAYS 4

/* A reply held back until it is due. */
struct held {
    struct dlink link;              /* the queue, by due time */
    struct listener *l;
    struct peer *owner;             /* whose share it takes, while owner->key is key */
    uint64_t key;
    int64_t due;
    int copies;
    struct sockaddr_storage peer;
    socklen_t peer_len;
    union pktinfo_cmsg control;
    size_t control_len;
    size_t len;
    char data[];
};

/* What a peer's next reply must wait for: its last one (order), and its rate; and
 * its share of the queue. */
struct peer {
    uint64_t key;                   /* 0: unused */
    int64_t last_due;               /* µs */
    int64_t rate_at_us;             /* its replies so far are paid for until then */
    uint32_t held;                  /* replies of its in the queue */
    size_t bytes;                   /* and their bytes */
};

struct dgram_faults {
    struct worker_wait wait;        /* the head's due time */
    struct dlink queue;
    size_t held, bytes;
    struct peer *peers;             /* PEER_SETS * PEER_WAYS */
};

/* FNV-1a of the listener and the peer's address: which peer entry is whose. */
static uint64_t peer_key(const struct listener *l, const struct sockaddr *sa, socklen_t len)
{
    uint64_t h = 1469598103934665603ULL;
    const unsigned char *p = (const unsigned char *)sa;
    uintptr_t lp = (uintptr_t)l;

    for (size_t i = 0; i < sizeof lp; i++, lp >>= 8) {
        h ^= (unsigned char)lp;
        h *= 1099511628211ULL;
    }
    for (socklen_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h ? h : 1;
}

/* The peer's entry, or a fresh one in place of the set's idlest (a peer whose
 * last reply is long gone loses nothing by being forgotten). */
static struct peer *peer_find(struct dgram_faults *df, uint64_t key)
{
    struct peer *set = &df->peers[(key & (PEER_SETS - 1)) * PEER_WAYS], *idlest = set;

    for (int w = 0; w < PEER_WAYS; w++) {
        if (set[w].key == key)
            return &set[w];
        if (set[w].last_due < idlest->last_due)
            idlest = &set[w];
    }
    memset(idlest, 0, sizeof *idlest);
    idlest->key = key;
    return idlest;
}

static void send_copies(struct listener *l, const struct sockaddr *peer, socklen_t peer_len,
                        const void *control, size_t control_len, const char *data, size_t len,
                        int copies)
{
    struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
    struct msghdr msg = {
        .msg_name = (void *)peer, .msg_namelen = peer_len, .msg_iov = &iov, .msg_iovlen = 1,
        .msg_control = control_len ? (void *)control : NULL, .msg_controllen = control_len,
    };

    for (int i = 0; i < copies; i++) {
        ssize_t n = l->w.fd < 0 ? -1 : sendmsg(l->w.fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);

        if (TRACE_ON && l->w.fd >= 0)
            trace_io("sendmsg", l->w.fd, n, len);
        if (n < 0 && errno == EINTR) {
            i--;
            continue;
        }
        if (n < 0) {
            counter_add(&l->stats.dgrams_dropped, 1);   /* udp may drop, and we do */
            continue;
        }
        counter_add(&l->stats.dgrams_out, 1);
        counter_add(&l->stats.bytes_out, len);
    }
}

static void queue_due(struct worker_wait *w);

static struct dgram_faults *faults_of(struct worker *wk)
{
    if (wk->dfaults == NULL) {
        wk->dfaults = xcalloc(1, sizeof *wk->dfaults);
        dlist_init(&wk->dfaults->queue);
        worker_wait_init(&wk->dfaults->wait, queue_due);
        wk->dfaults->peers = xcalloc(PEER_SETS * PEER_WAYS, sizeof *wk->dfaults->peers);
    }
    return wk->dfaults;
}

static void held_free(struct dgram_faults *df, struct held *h)
{
    dlist_remove(&h->link);
    df->held--;
    df->bytes -= h->len;
    if (h->owner->key == h->key) {     /* not forgotten since (its entry reused) */
        h->owner->held--;
        h->owner->bytes -= h->len;
    }
    free(h);
}

static void queue_due(struct worker_wait *w)
{
    struct dgram_faults *df = container_of(w, struct dgram_faults, wait);
    int64_t now = now_us();

    for (struct dlink *node = df->queue.next, *next; node != &df->queue; node = next) {
        struct held *h = container_of(node, struct held, link);

        next = node->next;      /* sending frees h, and no other */
        if (h->due > now) {
            /* Out of memory: the next reply that comes re-arms it. */
            (void)worker_wait_set(h->l->wk, &df->wait, h->due);
            return;
        }
        send_copies(h->l, (struct sockaddr *)&h->peer, h->peer_len, h->control.buf,
                    h->control_len, h->data, h->len, h->copies);
        held_free(df, h);
    }
}

/* Keep the queue sorted by due time; equal ones stay in arrival order, so that a
 * peer's replies (whose due times never fall) keep theirs. Usually at the tail. */
static void queue_insert(struct dgram_faults *df, struct held *h)
{
    struct dlink *at = df->queue.prev;

    while (at != &df->queue && container_of(at, struct held, link)->due > h->due)
        at = at->prev;
    h->link.prev = at;
    h->link.next = at->next;
    at->next->prev = &h->link;
    at->next = &h->link;
    df->held++;
    df->bytes += h->len;
}

/* Is there room in the queue for one more reply of p's? The whole queue's bound,
 * and p's share of it: a peer that sends faster than its rate lets replies go
 * fills its own share and loses its own replies, not the others'. */
static int room_for(const struct dgram_faults *df, const struct peer *p, size_t len)
{
    return df->held < QUEUE_MAX && df->bytes + len <= QUEUE_BYTES_MAX &&
           p->held < PEER_HELD_MAX && p->bytes + len <= PEER_BYTES_MAX;
}

/* Hold p's reply until due; returns 0, or -1 without memory (it is dropped). */
static int hold(struct listener *l, struct peer *p, const struct sockaddr *peer,
                socklen_t peer_len, const void *control, size_t control_len, const char *data,
                size_t len, int copies, int64_t due)
{
    struct dgram_faults *df = faults_of(l->wk);
    struct held *h;

    if (peer_len > sizeof h->peer || control_len > sizeof h->control ||
        (h = malloc(sizeof *h + len)) == NULL)
        return -1;
    h->owner = p;
    h->key = p->key;
    p->held++;
    p->bytes += len;
    h->l = l;
    h->due = due;
    h->copies = copies;
    memcpy(&h->peer, peer, peer_len);
    h->peer_len = peer_len;
    if (control_len)
        memcpy(h->control.buf, control, control_len);
    h->control_len = control_len;
    h->len = len;
    memcpy(h->data, data, len);
    queue_insert(df, h);
    if (df->queue.next == &h->link && worker_wait_set(l->wk, &df->wait, due) < 0) {
        held_free(df, h);
        return -1;
    }
    return 0;
}

/* When may p's reply go? latency (jittered), never before the peer's last, and
 * after what the peer's rate has paid for. */
static int64_t due_time(struct listener *l, struct peer *p, size_t bytes, int64_t now)
{
    const struct fault_shape *f = &l->faults.down;
    int64_t due = now + fault_delay_us(f, &l->wk->rng);

    if (due < p->last_due)
        due = p->last_due;
    if (f->rate) {
        if (due < p->rate_at_us)
            due = p->rate_at_us;
        p->rate_at_us = due + (int64_t)((uint64_t)bytes * 1000000u / f->rate);
    }
    p->last_due = due;
    return due;
}

/* -v: what the faults did to one datagram's reply. */
static void log_fault(const struct listener *l, const struct sockaddr *peer, socklen_t len,
                      const char *what, long delay /* µs */)
{
    char text[ADDR_TEXT_MAX];

    addr_format(peer, len, text, sizeof text);
    if (delay > 0 && delay % 1000 == 0)
        log_msg("faults %s %s %s %ldms", l->slot->name, text, what, delay / 1000);
    else if (delay > 0)     /* a rate's wait: not whole ms */
        log_msg("faults %s %s %s %ld.%03ldms", l->slot->name, text, what, delay / 1000,
                delay % 1000);
    else
        log_msg("faults %s %s %s", l->slot->name, text, what);
}

void dgram_fault_reply(struct listener *l, const struct sockaddr *peer, socklen_t peer_len,
                       struct msghdr *in, const char *data, size_t len, size_t in_len)
{
    struct worker *wk = l->wk;
    const struct faults *f = &l->faults;
    union pktinfo_cmsg control;
    size_t control_len = l->pktinfo && in && in->msg_controllen ? udp_reply_pktinfo(in, control.buf)
                                                                : 0;
    int copies = 1, verbose = wk->cfg->verbose;
    struct peer *p = NULL;
    int64_t now, due;

    if (!fault_rng_chance(&wk->rng, f->toxicity)) {
        send_copies(l, peer, peer_len, control.buf, control_len, data, len, 1);
        return;
    }
    copies = fault_dgram_copies(f, &wk->rng);
    if (copies == 0) {
        counter_add(&l->stats.faults[FAULT_DROP], 1);
        if (verbose)
            log_fault(l, peer, peer_len, "dropped", 0);
        return;
    }
    /* Both copies count against the guard's bound on a reply. */
    if (copies == 2 &&
        guard_udp_reply_max(wk->guard, in_len, guard_udp_overhead(peer), 2, len) < len)
        copies = 1;
    if (copies == 2)
        counter_add(&l->stats.faults[FAULT_DUP], 1);
    now = now_us();
    due = now;
    if (f->down.latency_ms || f->down.latency_jitter_ms || f->down.rate) {
        p = peer_find(faults_of(wk), peer_key(l, peer, peer_len));
        if (!room_for(wk->dfaults, p, len)) {
            /* Dropped as a full router queue drops: before it is paid for, so the
             * peer's next reply does not wait for this one. */
            counter_add(&l->stats.dgrams_dropped, (uint64_t)copies);
            if (verbose)
                log_fault(l, peer, peer_len, "dropped (its queue is full)", 0);
            return;
        }
        due = due_time(l, p, copies * len, now);
    }
    if (verbose && (copies == 2 || due > now))
        log_fault(l, peer, peer_len, copies == 1 ? "delayed" : due > now ? "duplicated, delayed"
                                                                        : "duplicated",
                  (long)(due - now));
    if (due <= now) {
        send_copies(l, peer, peer_len, control.buf, control_len, data, len, copies);
        return;
    }
    if (f->down.latency_ms || f->down.latency_jitter_ms)
        counter_add(&l->stats.faults[FAULT_LATENCY], 1);
    if (f->down.rate)
        counter_add(&l->stats.faults[FAULT_RATE], 1);
    if (hold(l, p, peer, peer_len, control.buf, control_len, data, len, copies, due) < 0)
        counter_add(&l->stats.dgrams_dropped, (uint64_t)copies);
}

void dgram_faults_free(struct worker *wk)
{
    struct dgram_faults *df = wk->dfaults;

    if (df == NULL)
        return;
    for (struct dlink *node = df->queue.next, *next; node != &df->queue; node = next) {
        next = node->next;
        held_free(df, container_of(node, struct held, link));
    }
    worker_wait_del(wk, &df->wait);
    free(df->peers);
    free(df);
    wk->dfaults = NULL;
}
