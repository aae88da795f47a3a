/* uring_engine.h — the io_uring engine of a worker: accepting, stream connections
 * (conn_uring.c) and datagrams (udp_uring.c) as completions instead of readiness.
 *
 * - Accepting: one multishot accept request per listener.
 * - Receiving: one multishot receive per connection (per udp listener: recvmsg),
 *   with buffers the kernel picks from a provided-buffer ring, so an idle connection
 *   holds no buffer at all. Echoed bytes are sent from the very buffer they arrived
 *   in (MSG_DONTWAIT), which goes back to the ring once sent; when the peer is slow
 *   to take them they move to a buffer of the connection's own (conn_uring.c), so
 *   that slow readers never hold the ring's buffers the others receive into.
 * - Everything a batch of completions queues goes to the kernel with the one
 *   io_uring_enter that waits for the next batch.
 * The behaviour (greeting, echo, backpressure, linger, stopping) is conn.c's. */
#ifndef KODAMA_URING_ENGINE_H
#define KODAMA_URING_ENGINE_H

#include <liburing.h>
#include <stdint.h>

#include "lib/bufring.h"
#include "lib/list.h"
#include "lib/loop_uring.h"
#include "serve/core/worker.h"

struct worker;
struct listener;

/* Request kinds, in the low bits of user_data (loop_uring.h); tags 0 and 7 are
 * the backend's. */
enum {
    TAG_ACCEPT = 1,         /* listener */
    TAG_RECV = 2,           /* connection */
    TAG_SEND = 3,           /* connection */
    TAG_HUP = 4,            /* connection: stopping, waiting for the peer to close */
    TAG_UDP_RECV = 5,       /* listener */
    TAG_UDP_SEND = 6,       /* udp send slot */
};

#define STREAM_GROUP 0
#define DGRAM_GROUP 1
#define BUF_NONE 0xffffu

struct udp_slot;
struct send_ctx;

struct uring_state {
    struct io_uring *ring;
    struct bufring stream;          /* buffers for stream input */
    uint16_t *next;                 /* per stream buffer: the next in its queue */
    uint16_t *len;                  /* per stream buffer: bytes in it */
    struct dlink starved;           /* connections waiting for a free buffer */
    struct dlink closing;           /* connections closed, waiting for their requests */
    size_t max_held;                /* buffers a connection may hold: --max-buffer */
    struct send_ctx *free_sends;    /* headers for sends of several buffers */
    size_t nfree_sends;
    struct bufring dgram;           /* buffers for datagrams, if any udp listener */
    struct udp_slot *slots;         /* replies in flight */
    struct udp_slot *free_slots;
    struct msghdr *udp_tmpl;        /* per listener: what its recvmsg asks for */
    struct udp_slot **pending;      /* replies made in this batch, not yet sent */
    unsigned npending;
    struct udp_run *free_runs;      /* headers for GSO sends */
    int gso_off;                    /* the kernel refused UDP_SEGMENT once */
    int recv_cap_off;               /* the kernel refused a multishot receive's byte cap
                                     * (newer kernels have it; 6.18 here does) */
    unsigned expect_backoff;        /* sends left before echoes are again expected to
                                     * complete whole while submitted */
};

/* Cancel the request whose user_data is ud (its completion says -ECANCELED). */
static inline void uring_cancel(struct worker *wk, uint64_t ud)
{
    struct io_uring_sqe *sqe = uring_get_sqe(wk->uring->ring);

    io_uring_prep_cancel64(sqe, ud, 0);
    io_uring_sqe_set_data64(sqe, 0);
}

struct accepted;

/* conn_uring.c: the stream buffers and the set of its connections, set up and
 * torn down with the engine; connections served; a completion of theirs (tag). */
int uconn_init(struct worker *wk);
void uconn_destroy(struct worker *wk);
void uconn_open(struct worker *wk, struct listener *l, const struct accepted *a);
void uconn_complete(void *obj, unsigned tag, int32_t res, uint32_t flags);
void uconn_close_all(struct worker *wk);

/* udp_uring.c */
int udp_uring_init(struct worker *wk);
void udp_uring_destroy(struct worker *wk);
void udp_uring_start(struct worker *wk, struct listener *l);
void udp_uring_on_recv(struct worker *wk, struct listener *l, int res, unsigned flags);
void udp_uring_on_send(struct worker *wk, struct udp_slot *slot, int res);
/* The batch of completions has been handled: send the replies it made. */
void udp_uring_batch_end(struct worker *wk);

#endif
