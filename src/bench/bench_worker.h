/* bench_worker.h — one bench worker thread: its epoll loop, its clock and open-loop
 * schedule, its counters; and the three kinds of traffic it can drive (echo over a
 * stream, echo over udp, hello), each in a file of its own. Private to bench_*.c. */
#ifndef KODAMA_BENCH_WORKER_H
#define KODAMA_BENCH_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "bench/bench.h"
#include "lib/verdict.h"

#define NS_PER_S 1000000000LL
#define NS_PER_MS 1000000LL
#define SCRATCH_LEN (256 * 1024)        /* per-thread send and receive buffers */
#define SCAN_EVERY_NS (10 * NS_PER_MS)  /* timeouts and retries are checked this often */
#define RETRY_NS (100 * NS_PER_MS)      /* back-off after a refused reconnect */

/* What the calling thread and the workers share. */
struct bench_shared {
    int64_t start, measure, end;        /* CLOCK_MONOTONIC ns: warm-up, measured period */
    double measure_unix;                /* the measured period's start, real time */
    atomic_int stop;                    /* signal, end of a failed run */
    atomic_llong stop_at;               /* when stop was first set (0: not yet) */
    atomic_int finished;                /* workers that have returned */
    atomic_int failed;                  /* a worker gave up; why is in fail_msg */
    char fail_msg[256];
    int fail_verdict;                   /* and its verdict (lib/verdict.h) */
};

/* One worker's share of the run, and what it reports back. */
struct bench_thread {
    const struct bench_config *cfg;
    const struct bench_traffic *traffic;
    struct bench_shared *sh;
    pthread_t tid;
    unsigned index;
    unsigned long nconns;
    double rate;                        /* this worker's share of -r; 0: closed loop */
    struct bench_counts n;              /* final counts, valid after join */
    struct histogram *hist;
    /* For the progress line, while running. */
    atomic_ullong live_msgs, live_errors;
    pthread_mutex_t pub_lock;
    struct histogram *pub;              /* NULL unless the progress line is on */
};

/* The first member of every socket the worker watches: epoll hands it back. */
struct bench_worker;
struct bsock {
    int fd;
    uint32_t events;                    /* the mask epoll has now; 0: not added */
    void (*on_event)(struct bench_worker *w, struct bsock *s, uint32_t events);
};

struct sconn;
struct usock;
struct ubatch;

struct bench_worker {
    struct bench_thread *t;
    const struct bench_config *cfg;
    const struct bench_traffic *traffic;
    struct bench_shared *sh;
    int ep;
    int64_t now;                        /* ns, refreshed after each wait and read */
    int64_t next_scan, next_publish;
    /* open loop: message number next_msg is due at start + next_msg * interval_ns */
    double interval_ns;
    uint64_t next_msg;
    uint64_t room;                      /* free pipeline slots on usable sockets */
    size_t cursor;                      /* where the search for room starts */
    uint64_t next_id;                   /* pattern stream numbers */
    size_t nopen;                       /* established stream connections */
    int64_t last_reply;                 /* udp: the last good reply */
    int draining;                       /* the period is over: no new messages */
    struct sconn *conns;
    struct usock *socks;
    struct ubatch *ub;                  /* udp: sendmmsg and recvmmsg vectors */
    struct bsock **dirty;               /* sockets with messages queued to flush */
    size_t ndirty;
    unsigned char *tx, *rx;             /* SCRATCH_LEN each (udp: sized by udp_setup) */
    struct bench_counts n;
    struct histogram *hist;
    SSL_SESSION *session;               /* --resume: the last one a hello ended with */
};

int64_t clock_ns(void);
/* Ask every worker to stop; the first call's time ends the measured period. */
void bench_stop(struct bench_shared *sh, int64_t now);

/* epoll: add, change or drop interest; -1 with errno on failure. */
int bw_watch(struct bench_worker *w, struct bsock *s, uint32_t events);

/* A message (or hello exchange) meant to start at stamp has just completed. */
void bw_done(struct bench_worker *w, int64_t stamp, uint64_t bytes);
/* Inside the measured period (completions count only there). */
int bw_measuring(const struct bench_worker *w);
/* Open loop: the intended time of the next message if it is due, else -1. */
int64_t bw_due(const struct bench_worker *w);
void bw_mark_dirty(struct bench_worker *w, struct bsock *s, int *flag);
/* Stop the whole run: one line (without "kodama: bench: ") for the report. */
void bw_fail(struct bench_worker *w, int verdict, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A connect was refused with err: with nothing else established, the server is
 * gone and the run stops. */
void bw_refused(struct bench_worker *w, int err, const char *what);
/* A new pattern seed for a stream or socket. */
uint64_t bw_new_seed(struct bench_worker *w);

/* The kind of traffic a worker drives, one table per kind (bench_run.c picks it):
 * streams (tcp or unix: echo and hello, bench_stream.c) or udp (bench_udp.c). The
 * worker's loop calls nothing else of them. */
struct bench_traffic {
    int (*setup)(struct bench_worker *w);           /* 0, or -1 after bw_fail */
    void (*issue)(struct bench_worker *w);          /* start what is due */
    /* Timeouts and retries; returns the ns until it wants to run again. */
    int64_t (*scan)(struct bench_worker *w);
    void (*flush_dirty)(struct bench_worker *w);    /* send what issue queued */
    int (*in_flight)(const struct bench_worker *w); /* anything not answered yet? */
    void (*teardown)(struct bench_worker *w);
};

extern const struct bench_traffic bench_stream_traffic;
extern const struct bench_traffic bench_udp_traffic;

void *bw_main(void *arg);

#endif
