/* fault.h — the faults a listener injects (docs/kodama.1, FAULTS), modelled on
 * Toxiproxy's toxics: what they are, read from a SPEC's options (or the control
 * API's text, which is the same grammar), written back as that text, and the pure
 * decisions that carry them out. No sockets and no clock of its own: callers pass
 * the time (now_us's monotonic clock, in µs: a wait of D ends D later, neither a
 * part of a ms early nor a ms late), so that tests/unit/test_fault.c can check
 * every decision.
 *
 * A stream's output goes through a shaper, which answers one question before each
 * send: how many bytes may go now, and if none, when to ask again. latency,
 * greet-delay, rate and slice/slice-delay decide that; close-after, reset-after
 * and stall-after cut the output at a byte count and say what happens then. A
 * datagram's reply is dropped, duplicated or delayed by fault_dgram_copies and
 * fault_delay_us; its pacing per peer is dgram_fault.c's. */
#ifndef KODAMA_FAULT_H
#define KODAMA_FAULT_H

#include <stddef.h>
#include <stdint.h>

struct spec;

#define FAULT_NONE UINT64_MAX       /* a byte count that is never reached */
#define FAULT_TEXT_MAX 1024         /* faults_format's longest text */

/* What a fault counter counts (struct listener_stats' faults[], /metrics'
 * kodama_faults_total): connections or datagrams it acted on. */
enum fault_kind {
    FAULT_LATENCY,          /* a connection with latency, or a datagram delayed */
    FAULT_RATE,             /* a connection or a datagram paced */
    FAULT_SLICE,            /* a connection whose output went in slices */
    FAULT_GREET_DELAY,      /* a connection held silent after accept */
    FAULT_CLOSE_AFTER,      /* a FIN sent at its byte count */
    FAULT_RESET_AFTER,      /* a reset sent at its byte count */
    FAULT_STALL_AFTER,      /* a connection stalled at its byte count */
    FAULT_DROP,             /* a datagram's reply dropped */
    FAULT_DUP,              /* a datagram's reply sent twice */
    FAULT_KINDS
};

/* The label value of a kind: the key's own spelling ("greet-delay"). */
const char *fault_kind_name(enum fault_kind k);
/* Does kind k apply to tcp (stream) or to udp sockets? */
int fault_kind_on_stream(enum fault_kind k);
int fault_kind_on_dgram(enum fault_kind k);

/* The faults on one direction of a stream; latency and rate also on datagrams. */
struct fault_shape {
    uint32_t latency_ms, latency_jitter_ms;
    uint32_t slice_delay_ms;
    uint32_t greet_delay_ms;
    uint64_t rate;                  /* bytes per second; 0: none */
    uint64_t slice, slice_jitter;   /* 0: none */
    uint64_t close_after, reset_after, stall_after;    /* FAULT_NONE: none */
};

struct faults {
    struct fault_shape down;        /* toward the client: every service's output */
    struct fault_shape up;          /* toward a relay's target ("up-" keys) */
    double drop, dup;               /* udp: per datagram */
    double toxicity;                /* the share of connections (datagrams) that get them */
};

/* No faults at all (toxicity 1). */
void faults_clear(struct faults *f);

/* A direction with no fault: what a connection the toxicity roll left out gets. */
extern const struct fault_shape fault_shape_none;

/* From a parsed SPEC's or option list's options (spec.c has checked them). */
void faults_from_spec(struct faults *f, const struct spec *sp);

/* Does the direction, or any of the faults, do anything? (Toxicity alone does not.) */
int fault_shape_active(const struct fault_shape *s);
int faults_active(const struct faults *f);
int faults_active_stream(const struct faults *f);
int faults_active_dgram(const struct faults *f);

/* The faults as option text that parses back to them ("latency=200ms~50ms,rate=65536"),
 * keys in the table's order, durations in ms, sizes in bytes; "" for none. Writes at
 * most len bytes (NUL included; FAULT_TEXT_MAX is always enough); returns out. */
char *faults_format(const struct faults *f, char *out, size_t len);

/* ------------------------------------------------------------------ randomness */

/* splitmix64: small, fast, and repeatable from a seed (--seed). */
struct fault_rng {
    uint64_t s;
};

/* Seeded from seed and the worker's id, so that every worker draws its own
 * repeatable sequence. */
void fault_rng_seed(struct fault_rng *r, uint64_t seed, uint64_t worker);
uint64_t fault_rng_next(struct fault_rng *r);
/* Uniform in [0, 1). */
double fault_rng_unit(struct fault_rng *r);
/* True with probability p (always for p >= 1, never for p <= 0). */
int fault_rng_chance(struct fault_rng *r, double p);
/* base plus or minus jitter, uniformly, never below min. */
uint64_t fault_rng_jitter(struct fault_rng *r, uint64_t base, uint64_t jitter, uint64_t min);

/* A datagram's delay: latency plus or minus its jitter, in µs. */
int64_t fault_delay_us(const struct fault_shape *s, struct fault_rng *r);

/* How many copies of a datagram's reply to send: 0 (drop), 1, or 2 (dup). */
int fault_dgram_copies(const struct faults *f, struct fault_rng *r);

/* ------------------------------------------------------------------ the shaper */

#define SHAPE_MARKS 16

/* What a byte count did when the output reached it. */
enum shape_act {
    SHAPE_GO,               /* nothing: go on */
    SHAPE_FIN,              /* close-after: shut down our side, send nothing more */
    SHAPE_RESET,            /* reset-after: a reset once the bytes are delivered */
    SHAPE_STALL,            /* stall-after: read and write nothing, until idle */
};

/* One direction's state. Bytes are numbered as they enter the output ("made") and
 * as they go ("out"); a latency mark holds back made bytes until they are due. */
struct shaper {
    int64_t next_us;                /* nothing goes before this (greet-delay, slice-delay) */
    int64_t rate_at_us;             /* the bytes sent so far are paid for until then */
    uint64_t out;                   /* bytes sent */
    uint64_t made;                  /* bytes that entered the output */
    uint64_t piece_left;            /* of the slice being sent */
    struct shape_mark {
        uint64_t start, end;        /* bytes [start, end) */
        int64_t due;                /* may go from then (µs) */
    } marks[SHAPE_MARKS];
    uint8_t mhead, mcount;
};

/* A new connection at now: greet-delay starts. */
void shape_open(struct shaper *sh, const struct fault_shape *f, int64_t now);

/* n bytes entered the output at now (n may be FAULT_NONE: endless output, such as
 * chargen's); with latency they are due D (plus or minus J) later, never before the
 * bytes made before them. */
void shape_made(struct shaper *sh, const struct fault_shape *f, uint64_t n, int64_t now,
                struct fault_rng *r);

/* How many of the pending bytes may be sent now: at most the slice in progress,
 * what the rate has paid for, what is due and what the byte counts leave. 0 means
 * wait: *wait_us says for how long (at least 1 µs), or -1 when only more output
 * can change it (or a byte count was reached: see shape_act). */
size_t shape_allow(struct shaper *sh, const struct fault_shape *f, size_t pending, int64_t now,
                   struct fault_rng *r, int64_t *wait_us);

/* n of the allowed bytes went out at now (a short send is fine: the slice goes on
 * without a delay). */
void shape_sent(struct shaper *sh, const struct fault_shape *f, size_t n, int64_t now);

/* What the byte counts say now: SHAPE_GO until the output has reached one. */
enum shape_act shape_act(const struct shaper *sh, const struct fault_shape *f);

#endif
