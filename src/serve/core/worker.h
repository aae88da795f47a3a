/* worker.h — listeners, workers and what every engine asks of them: admission under
 * the limits, drops, pausing on accept errors, and the table an engine fills.
 *
 * A listener is a bound descriptor plus what it serves; it does not care how the
 * descriptor was made (bound from a SPEC, passed by systemd or inetd). A worker owns
 * one loop (one thread), its own copy of the listeners, its connections and its
 * buffer pool; nothing is shared between workers but the listening sockets and the
 * guard. This unit sits below the engines: it reaches the worker's engine only
 * through the worker's table (struct engine_ops), as nginx's core reaches its event
 * module through ngx_event_actions, and it never names one. */
#ifndef KODAMA_WORKER_H
#define KODAMA_WORKER_H

#include <stddef.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

#include "lib/addr.h"
#include "lib/counter.h"
#include "lib/deadline.h"
#include "lib/list.h"
#include "lib/loop.h"
#include "lib/pool.h"
#include "lib/trace.h"              /* --trace: the engines' hooks (TRACE_ON) */
#include "lib/tls.h"
#include "lib/timeheap.h"
#include "proto/spec.h"
#include "serve/core/fault.h"
#include "serve/core/guard.h"
#include "serve/services/service.h"

#define ECHO_BUF_SIZE (64 * 1024)       /* --max-buffer's default */
#define LINGER_MS 5000                  /* the wait for the peer's goodbye after ours */

struct serve_config {
    struct svc_settings svc;    /* what the services are told */
    int verbose;
    size_t threads;             /* event loops, one per thread */
    int io;                     /* enum loop_io: LOOP_IO_EPOLL or LOOP_IO_URING */
    unsigned batch_wait_us;     /* io_uring: let completions gather this long */
    int share_listeners;        /* one socket for all loops, not SO_REUSEPORT siblings */
    struct guard_config limits; /* max_conns 0: from RLIMIT_NOFILE (server_run) */
    long idle_timeout_ms;       /* 0: none */
    long send_timeout_ms;       /* 0: none */
    long drain_timeout_ms;      /* after SIGTERM, connections go on this long */
    long proxy_timeout_ms;      /* "+proxy" listeners: wait this long for the header */
    long tls_timeout_ms;        /* "+tls" listeners: the longest handshake */
    struct tls_server *tls;     /* "+tls" listeners' certificate and settings */
    size_t max_buffer;          /* echoed bytes a connection may hold */
    const struct run_as *user;  /* run as this user once every socket is made */
    /* --inetd: serve the socket inetd passed on stdin, with no listening, ready or
     * stopping lines. tcp: inetd_conn is the connection (the one listener only
     * describes it); udp: exit after idle_timeout_ms without a datagram. */
    int inetd;
    int inetd_conn;             /* -1: none */
    const struct metrics_listen *metrics;   /* --metrics: its bound socket, or NULL */
    const struct control_listen *control;   /* --control: its bound socket, or NULL */
    uint64_t seed;              /* --seed: the faults' random choices repeat */
    int seeded;
};

enum listener_kind { LISTEN_TCP, LISTEN_UDP, LISTEN_UNIX };

const char *listener_kind_name(enum listener_kind kind);

/* Written by the listener's worker only (counter.h); read by anyone. */
struct listener_stats {
    counter_t accepted, active, bytes_in, bytes_out;
    counter_t dgrams_in, dgrams_out, dgrams_dropped;
    counter_t accept_errors;
    counter_t tls_handshakes, tls_ktls;     /* "+tls": done, and of those with kTLS */
    counter_t drops[DROP_REASONS];  /* connections and datagrams turned away, by reason */
    counter_t faults[FAULT_KINDS];  /* connections and datagrams a fault acted on */
};

/* A listener's counts summed over the workers that serve it. */
struct listener_totals {
    uint64_t accepted, active, bytes_in, bytes_out;
    uint64_t dgrams_in, dgrams_out, dgrams_dropped;
    uint64_t accept_errors;
    uint64_t tls_handshakes, tls_ktls;
    uint64_t drops[DROP_REASONS];
    uint64_t faults[FAULT_KINDS];
};

/* Add one worker's counts of a listener to t. */
void listener_totals_add(struct listener_totals *t, const struct listener_stats *st);

struct worker;
struct listener;

/* What the listeners of one SPEC share, over their sockets (tcp and udp, a port
 * range) and the workers' copies: the name, and the faults, which the control
 * thread may replace while the workers run. A worker copies them (under the lock)
 * when the version has moved since its last copy, which it checks with one relaxed
 * load when a connection opens and at each chunk; the slot lives until every
 * thread that reads it has ended. */
struct fault_slot {
    char name[SPEC_NAME_MAX + 1];
    int named;                      /* by name=, not SERVICE-PORT */
    const struct service *svc;
    unsigned protos;                /* PROTO_TCP | PROTO_UDP: its sockets' */
    pthread_mutex_t lock;
    _Atomic uint64_t version;
    struct faults cfg;              /* under lock */
};

/* Replace a slot's faults (the control thread). */
void fault_slot_set(struct fault_slot *slot, const struct faults *f);
/* A copy of a slot's faults, taken under its lock. */
void fault_slot_get(struct fault_slot *slot, struct faults *f);

/* A relay listener's target (to=), resolved once at start-up, and how to reach it. */
struct relay_conf {
    struct sockaddr_storage to;
    socklen_t to_len;
    char to_text[ADDR_TEXT_MAX];    /* for logs */
    long connect_timeout_ms;        /* connect-timeout=, 5 s by default */
    int send_proxy;                 /* 0, or the PROXY protocol version to send first */
};

#define RELAY_CONNECT_TIMEOUT_MS 5000

/* A stream connection accepted and admitted, ready to be served. */
struct accepted {
    int fd;
    struct ip_count *slot;              /* its count under the limits (worker_admit) */
    struct sockaddr_storage peer;       /* as the socket sees it */
    socklen_t peer_len;                 /* 0: unknown (not asked for) */
    struct sockaddr_storage client;     /* the client a PROXY protocol header named */
    socklen_t client_len;               /* 0: none */
    SSL *tls;                           /* "+tls": the connection, handshake done */
    int inherited;                      /* another process may hold the socket too
                                         * (inetd's connection): see loop_unwatch_closing */
};

/* What happens to a connection once accepted and admitted: the first stage it goes
 * through (the PROXY header, proxy_wait.c) or the engine at once (worker_serve). */
typedef void accepted_fn(struct worker *wk, struct listener *l, const struct accepted *a);

struct listener {
    struct watch w;                 /* w.fd is the listening descriptor */
    struct worker *wk;
    const struct service *svc;
    accepted_fn *on_accepted;       /* set when its worker starts */
    accepted_fn *after_proxy;       /* "+proxy": what follows the header */
    enum listener_kind kind;
    char addr[ADDR_TEXT_MAX];       /* as bound, for the listening line and logs */
    char *unlink_path;              /* a unix socket file to remove at exit */
    int family;                     /* AF_INET, AF_INET6 or AF_UNIX */
    int pktinfo;                    /* udp, wildcard: answer from the datagram's address */
    int reuseport;                  /* bound with SO_REUSEPORT: siblings may join */
    int shared;                     /* the same socket is served by other loops too */
    int paused;                     /* out of descriptors: not accepting for now */
    int armed;                      /* io_uring: its accept or recvmsg is in flight */
    struct sockaddr_storage local;  /* udp, for services that want addresses: as bound */
    socklen_t local_len;            /* 0: unknown */
    int proxy;                      /* "+proxy": a PROXY protocol header comes first */
    int tls;                        /* "+tls": a TLS handshake (after the header) */
    struct fault_slot *slot;        /* its name and faults; NULL: none (inetd) */
    int owns_slot;                  /* the listener listen.c made first for its SPEC:
                                     * frees slot and relay with it */
    /* Its stream connections run on the readiness path (conn.c) with a shaper:
     * it had faults when it started, or --control may give it some. */
    int shaped;
    const struct relay_conf *relay; /* a relay listener's target, or NULL */
    struct faults faults;           /* this worker's copy of slot->cfg ... */
    uint64_t fault_version;         /* ... as of this version */
    int dgram_faulty;               /* udp, with datagram faults in that copy */
    struct listener_stats stats;
};

/* A connection opened under the faults f: count each that shapes its output
 * (latency, rate, slice, greet-delay) once. */
void listener_count_faults(struct listener *l, const struct fault_shape *f);

/* Copy the listener's faults from its slot: call listener_faults_fresh. */
void listener_faults_copy(struct listener *l);

/* Bring l->faults up to date with its slot: one relaxed load, unless they moved. */
static inline void listener_faults_fresh(struct listener *l)
{
    if (l->slot && atomic_load_explicit(&l->slot->version, memory_order_relaxed) !=
                       l->fault_version)
        listener_faults_copy(l);
}

/* An engine: how a worker accepts, receives and sends (epoll's readiness, or
 * io_uring's completions). One table per engine, chosen when the worker starts;
 * nothing above the engines calls an engine's functions by name. */
struct engine_ops {
    const char *name;
    /* Set up the worker's engine state and deadlines (its loop exists). 0, or -1
     * with errno. */
    int (*init)(struct worker *wk);
    void (*destroy)(struct worker *wk);
    /* Start accepting or receiving on l (0, or -1 with errno); stop before its
     * descriptor is closed, or to pause it (start again resumes). */
    int (*listener_start)(struct worker *wk, struct listener *l);
    void (*listener_stop)(struct worker *wk, struct listener *l);
    /* Serve an accepted, admitted connection; on failure it closes a->fd and
     * releases its slot. */
    void (*serve)(struct worker *wk, struct listener *l, const struct accepted *a);
    /* The same on the readiness path, for a listener with faults (conn.c, with a
     * shaper) and for a relay (relay.c): loop watches on either engine. */
    void (*serve_shaped)(struct worker *wk, struct listener *l, const struct accepted *a);
    void (*serve_relay)(struct worker *wk, struct listener *l, const struct accepted *a);
    /* A "+tls" connection, handshake done (a->tls): OpenSSL does the records, so it
     * takes the readiness path (conn.c) on either engine. */
    void (*serve_tls)(struct worker *wk, struct listener *l, const struct accepted *a);
    /* The server is stopping: read no more to echo, send what is held, say
     * goodbye. */
    void (*stop_all)(struct worker *wk);
    /* Close every connection at once (the stop deadline, or exit). */
    void (*close_all)(struct worker *wk);
    /* Its accepted sockets are blocking (io_uring's): the readiness path makes
     * them non-blocking. */
    int accepts_blocking;
};

extern const struct engine_ops engine_epoll;
extern const struct engine_ops engine_uring;

struct udp_batch;
struct uring_state;
struct server;
struct dgram_faults;
struct stream;

/* The kinds of stream connection, each on a set of its own: the engines' expiry
 * handlers and stop/close loops know their own kind's struct only. */
enum stream_kind {
    STREAM_CONN,            /* conn.c: epoll's, and every engine's shaped ones */
    STREAM_UCONN,           /* conn_uring.c */
    STREAM_RELAY,           /* relay.c */
    STREAM_KINDS
};

/* A connection waits on one of these at a time: for the peer's goodbye after
 * ours, for input while it has nothing to send, or for the peer to read. */
struct stream_set {
    struct dlink conns;
    struct deadline_list lingering, idle, stalled;
    void (*stop)(struct stream *s);         /* the server is stopping (stop_all) */
    void (*close_now)(struct stream *s);    /* close it at once (close_all) */
};

struct worker {
    size_t id;                      /* 0: the main thread's */
    struct server *srv;             /* server.c's, opaque here */
    const struct engine_ops *ops;
    pthread_t thread;
    struct loop *loop;
    struct watch wake;              /* an eventfd: the server is stopping */
    /* worker_set_settle's: an eventfd to ask, and the asks made and answered. */
    struct watch settle;
    atomic_uint_fast64_t settle_asked, settled;
    int failed;                     /* its loop failed */
    const struct serve_config *cfg;
    atomic_size_t *running;         /* the server's workers whose loop has not ended */
    struct listener *listeners;
    size_t nlisteners;
    struct guard *guard;            /* the server's, shared */
    struct stream_set streams[STREAM_KINDS];   /* every open stream connection */
    size_t nconns;
    struct theap waits;             /* shaped connections' own waits (fault.h) */
    struct fault_rng rng;           /* the faults' random choices */
    struct dgram_faults *dfaults;   /* datagrams held back by faults, if any */
    struct dlink proxy_waits;       /* connections waiting for their PROXY header */
    struct deadline_list proxy_header;  /* their --proxy-timeout */
    struct dlink tls_waits;         /* connections in their TLS handshake */
    struct deadline_list tls_handshake; /* their --tls-timeout */
    struct pool pool;               /* echo buffers */
    struct udp_batch *udp;          /* epoll: datagrams in and out, if any udp listener */
    struct uring_state *uring;      /* the io_uring engine, if that is the loop's */
    int stopping;                   /* the listeners are closed */
    int finishing;                  /* the connections have been told to finish */
    int paused_listeners;
    int accept_retry_armed;
    struct log_limit accept_log;    /* accept errors: a line a second at most */
    const struct listener *accept_err_l;    /* the last one, for the tail's line */
    int accept_err;
    int log_flush_armed;            /* a timer will tell the tail of a burst */
};

/* A wait of a shaped connection, a relay or the datagram queue on the worker's
 * heap (wk->waits): due() runs when its time has come. */
struct worker_wait {
    struct theap_entry e;
    void (*due)(struct worker_wait *w);
};

static inline void worker_wait_init(struct worker_wait *w, void (*due)(struct worker_wait *w))
{
    theap_entry_init(&w->e);
    w->due = due;
}

/* Wake w at `at` (µs, now_us's clock). Returns 0, or -1 if out of memory. */
static inline int worker_wait_set(struct worker *wk, struct worker_wait *w, int64_t at)
{
    return theap_set(&wk->waits, &w->e, at);
}

static inline void worker_wait_del(struct worker *wk, struct worker_wait *w)
{
    theap_del(&wk->waits, &w->e);
}

/* The heap's expiry (theap_init's callback): runs the wait's due(). */
void worker_wait_due(struct theap *h, struct theap_entry *e);

/* The workers of a server, for readers in other threads (metrics, the exit
 * report): listener i of every worker is the same listener. */
struct worker_set {
    struct worker *workers;
    size_t nworkers;
    size_t nlisteners;              /* each worker's */
};

/* Listener i (its service, kind and address never change) with its counts summed
 * over the workers into *t; safe while the workers run. */
const struct listener *worker_set_totals(const struct worker_set *ws, size_t i,
                                         struct listener_totals *t);

/* Let each worker's loop take in what it holds before its counts are read: the
 * io_uring engine leaves the completion of a send made as it was submitted for
 * its next wake, which on a quiet server may be long in coming, and only there
 * is the send counted. Waits for them for at most max_us; safe from any thread. */
void worker_set_settle(const struct worker_set *ws, int64_t max_us);
/* Its eventfd in wk's loop (0, or -1 with errno), and its end. */
int worker_settle_start(struct worker *wk);
void worker_settle_stop(struct worker *wk);

/* Called by the engines when a connection has closed: descriptors may be free again. */
void worker_conn_closed(struct worker *wk);

/* Stop the loop if the worker is stopping and nothing is left to wait for; returns
 * 1 if so. The engines call it when a listener's request has ended. */
int worker_check_done(struct worker *wk);

/* Serve a on the worker's engine; it closes a->fd and releases its slot if it
 * cannot. */
void worker_serve(struct worker *wk, struct listener *l, const struct accepted *a);

/* What l's service may know of connection a (service.h); local and tls are room
 * for our own address and what the TLS handshake said, asked for only if the
 * service wants addresses. */
void svc_ctx_for_conn(struct svc_ctx *ctx, const struct worker *wk,
                      const struct listener *l, const struct accepted *a,
                      struct sockaddr_storage *local, struct tls_info *tls);

/* --trace: an accept on l (fd < 0: the error err), as a system call (epoll) or a
 * completion (io_uring). */
void listener_trace_accept(const struct listener *l, int fd, int err,
                           const struct sockaddr *peer, socklen_t len, int completion);

/* -v: log the accept line of a; returns the peer's text for the close line (the
 * client a PROXY header named, if any), to free. */
char *conn_log_accept(const struct listener *l, const struct accepted *a);

/* Called by the engines for every accepted descriptor: 0 to serve it (*slot to
 * give back with worker_conn_release), or -1 if a limit refused it (fd is closed,
 * with a reset, and the refusal counted and logged). */
int worker_admit(struct worker *wk, struct listener *l, int fd, const struct sockaddr *peer,
                 socklen_t len, struct ip_count **slot);
void worker_conn_release(struct worker *wk, struct ip_count *slot);

/* The second half of admission on a "+proxy" listener (proxy_wait.c): the client a
 * header named (or the peer, for LOCAL) under --max-per-ip. 0 to serve it with *slot,
 * or -1 if refused (fd is closed with a reset, its place under --max-conns given
 * back, the refusal counted and logged with addr). */
int worker_admit_client(struct worker *wk, struct listener *l, int fd,
                        const struct sockaddr *addr, socklen_t len, struct ip_count **slot);

/* The engines' entry for an accepted, admitted connection: l->on_accepted. */
static inline void worker_accepted(struct worker *wk, struct listener *l,
                                   const struct accepted *a)
{
    l->on_accepted(wk, l, a);
}

/* Count a connection or datagram turned away and log it (at most once a second per
 * reason). fd, if >= 0, is the connection's, for its peer's address; peer (len > 0)
 * names a datagram's source. */
void worker_drop(struct worker *wk, struct listener *l, enum drop_reason why, int fd,
                 const struct sockaddr *peer, socklen_t len);
/* The same, saying what was wrong in detail's words instead of the reason's. */
void worker_drop_detail(struct worker *wk, struct listener *l, enum drop_reason why, int fd,
                        const struct sockaddr *peer, socklen_t len, const char *detail);

/* Flags for a connection's send when its side is shut down as soon as the output is
 * sent: MSG_MORE holds back the last, short segment, and the FIN then rides in it.
 * A greeting thus costs one segment (and one ACK) less. Endless output never ends. */
static inline int final_send_flags(int shut_after_send, int repeat)
{
    return shut_after_send && !repeat ? MSG_MORE : 0;
}

/* Write the lines a burst of drops or accept errors left unwritten (their count):
 * on a timer, a second after the last line; with force, now (at exit). */
void worker_flush_logs(struct worker *wk, int force);

/* Called by the engines when accepting failed with err. Returns 1 if the listener is
 * paused now (out of descriptors or memory, or any error that would come back at once:
 * it resumes by itself, and the engine's listener_stop has been called), 0 otherwise. */
int worker_accept_error(struct worker *wk, struct listener *l, int err);

#endif
