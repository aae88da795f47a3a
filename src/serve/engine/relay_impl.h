/* relay_impl.h — what relay.c (moving the bytes, closing) and relay_open.c
 * (accepting a client, connecting to the target) share: a relay's two directions
 * and the steps the opening hands it to. Not for other units: relay.h is the
 * relay's interface. */
#ifndef KODAMA_RELAY_IMPL_H
#define KODAMA_RELAY_IMPL_H

#include <stdint.h>

#include "lib/ring.h"
#include "proto/proxy.h"
#include "serve/engine/stream.h"

struct relay_dir {
    struct ring buf;                /* shaped: read, not sent yet (pool storage) */
    int pipe[2];                    /* unshaped: the kernel's buffer; -1 until needed */
    size_t in_pipe, pipe_cap;
    struct shaper sh;
    struct worker_wait wait;        /* until its shaper lets more go */
    /* The sink's untaken bytes (net_unsent) when a send last found it full, and
     * sh.out then: the stalled clock's proof that a slow sink still reads. */
    int full_unsent;                /* -1: not known */
    uint64_t full_out;
    unsigned up : 1;                /* client to target */
    unsigned eof : 1;               /* the source's FIN came */
    unsigned shut : 1;              /* ... and was passed on: the sink is shut down */
    unsigned discard : 1;           /* close-after, or stopping: input is thrown away */
    unsigned want_write : 1;        /* held bytes wait for room in the sink */
    unsigned resetting : 1;         /* reset-after: the reset waits for the last ACK */
};

struct relay {
    struct stream s;                /* the client's side: listener, counts, clock, -v */
    struct watch cw, tw;            /* the client (s.fd) and the target */
    struct relay_dir up, down;
    struct worker_wait connect_wait;    /* connect-timeout */
    double roll;                    /* it gets the faults while roll < toxicity */
    uint8_t hdr[PROXY_WRITE_MAX];   /* send-proxy: goes to the target first */
    uint8_t hdr_len, hdr_off;
    unsigned connecting : 1;
    unsigned stalled : 1;           /* stall-after: nothing in or out until idle */
    unsigned closed : 1;
};

static inline struct worker *relay_wk(const struct relay *r)
{
    return stream_wk(&r->s);
}


/* The faults on d now (the listener's, unless the toxicity roll left r out). */
const struct fault_shape *relay_dir_faults(struct relay *r, const struct relay_dir *d);

/* Move what can be moved both ways, pass FINs on, close when done, and watch for
 * the rest. */
void relay_step(struct relay *r);

/* Watch both sides for what r waits for; returns 0, or -1 if r is closed. */
int relay_watch(struct relay *r);

/* The target could not be reached (what: "refused", ...): the client is reset,
 * counted as relay_target, and r is freed. */
void relay_target_failed(struct relay *r, const char *what, int err);

/* The handlers relay_open() installs. */
void relay_connect_timed_out(struct worker_wait *w);
void relay_client_event(struct loop *loop, struct watch *w, unsigned events);
void relay_target_event(struct loop *loop, struct watch *w, unsigned events);
void relay_dir_due(struct worker_wait *w);

#endif
