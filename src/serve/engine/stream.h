/* stream.h — the rules every stream connection (tcp or unix) follows, on either
 * engine, written once. Each engine's connection (conn.c's struct conn,
 * conn_uring.c's struct uconn) embeds a struct stream and calls these at the
 * same points; only how bytes move is its own.
 *
 * - Output is a static part (a greeting; chargen's repeats until the server
 *   stops), then bytes made up for this connection, then echoed bytes, in order.
 * - Echo input is read only while there is room for it (the backpressure that
 *   bounds memory); other services read and discard it.
 * - After our shutdown(SHUT_WR) a connection lingers until the peer closes (at
 *   most LINGER_MS), discarding whatever it still sends, echo included: closing
 *   with unread input would send a reset, and echoing after our FIN would fail
 *   with EPIPE and close at once.
 * - A connection runs on one clock at a time: idle (nothing to send; any byte in
 *   or out restarts it), stalled (output waits for the peer; only bytes the peer
 *   takes restart it: a send of ours that completes, or, when the clock runs out,
 *   a socket queue shorter than when a send found it full) or lingering (after
 *   our goodbye). Idle too long: goodbye as after any exchange; stalled too long:
 *   a reset. */
#ifndef KODAMA_STREAM_H
#define KODAMA_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "lib/deadline.h"
#include "lib/list.h"
#include "lib/ring.h"
#include "serve/core/worker.h"

struct stream {
    struct listener *l;             /* l->wk is the worker that serves it */
    const char *tx;                 /* static output: tx[tx_off .. tx_len) is not sent yet */
    uint32_t tx_off, tx_len;
    uint64_t in, out;
    struct deadline timer;          /* on its set's idle, stalled or lingering clock */
    struct dlink all;               /* its set's conns */
    struct ip_count *ipc;           /* its address's count (guard.h), if counted */
    /* The socket's untaken bytes (net_unsent) when a send last found it full, and
     * s->out then: the stalled clock's proof that a slow peer still reads. */
    int full_unsent;                /* -1: not known */
    uint64_t full_out;
    char *peer;                     /* peer address text, kept only with -v */
    int fd;
    unsigned echo : 1;              /* input goes back out */
    unsigned shut_after_send : 1;   /* say goodbye once everything queued is sent */
    unsigned rd_eof : 1;            /* the peer has shut down its side */
    unsigned wr_shut : 1;           /* we have shut down ours */
    unsigned stopping : 1;          /* the server is stopping */
    unsigned repeat : 1;            /* the static output starts again once sent */
    unsigned inherited : 1;         /* the socket may be another process's too */
    unsigned kind : 2;              /* enum stream_kind: the set it is on */
};

static inline struct worker *stream_wk(const struct stream *s)
{
    return s->l->wk;
}

static inline struct stream_set *stream_set_of(const struct stream *s)
{
    return &stream_wk(s)->streams[s->kind];
}

/* A new connection of a kind: counted, listed on its set, logged (-v), and shaped
 * by its service's plan (the static output and the flags; the copied bytes stay
 * in *plan for the engine to queue). */
void stream_open(struct stream *s, struct listener *l, const struct accepted *a,
                 struct conn_plan *plan, enum stream_kind kind);

/* Bytes the plan made up for this connection go into ring (the one it echoes
 * into: conn.c's ring, conn_uring.c's spill buffer), from the worker's pool,
 * which takes the buffer back once they are sent: an idle connection holds none.
 * Returns 0, or -1 if out of memory. */
int stream_queue_copy(struct stream *s, struct ring *ring, const struct conn_plan *plan);

/* The connection is closing: the -v close line, the counts, off every list and
 * clock. The engine frees it, then calls stream_freed. */
void stream_retire(struct stream *s);
/* After the engine freed a retired stream (ipc was its slot). */
void stream_freed(struct worker *wk, struct ip_count *ipc);

/* Is there static output not sent yet? */
static inline int stream_tx_left(const struct stream *s)
{
    return s->tx_off < s->tx_len;
}

/* n bytes went out; returns how many of them were not static output (they came
 * from the engine's own buffers). Repeating output starts again at its end. */
size_t stream_sent(struct stream *s, size_t n);

/* Bytes the peer sent are echoed only before our goodbye (see above). */
static inline int stream_echoes_input(const struct stream *s)
{
    return s->echo && !s->wr_shut;
}

/* Endless output ends when the server stops: what is left of it is not owed. */
void stream_stop_repeating(struct stream *s);

/* Say goodbye: shut down our side and linger for the peer's (on the lingering
 * clock), unless it has gone already. */
void stream_shutdown(struct stream *s);

/* Restart or keep the clock the connection runs on now. has_output: output waits
 * for the peer; took: the peer took bytes since the last call; moved: any byte
 * moved either way. Nothing to do once our side is shut (the linger clock runs). */
void stream_schedule(struct stream *s, int has_output, int took, int moved);

/* The idle clock ran out: counted and logged; the engine then says goodbye as
 * after any exchange (shut_after_send is set). */
void stream_idle_expired(struct stream *s);
/* A send took less than it was offered, or nothing (EAGAIN): the socket is full.
 * Noted (one ioctl) for the send clock. */
void stream_send_full(struct stream *s);
/* The send clock ran out. Returns 0 if the peer took bytes meanwhile all the same
 * (the clock starts again), or 1: counted and logged, and closing will reset. */
int stream_stall_expired(struct stream *s);

/* A kind's set: its clocks, each expiring through the kind's handler, and how to
 * stop and close one of its connections. */
void stream_set_init(struct worker *wk, enum stream_kind kind, deadline_fn *linger,
                     deadline_fn *idle, deadline_fn *stall, void (*stop)(struct stream *s),
                     void (*close_now)(struct stream *s));

/* Every set's connections: the server is stopping (engine_ops.stop_all), or
 * close them at once (close_all). */
void stream_stop_all(struct worker *wk);
void stream_close_all(struct worker *wk);

#endif
