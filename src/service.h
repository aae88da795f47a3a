/* service.h — the table of services a listener can serve.
 *
 * A service says what to do with a stream connection when it opens (a plan: queue a
 * greeting, echo input, close after sending) and how to answer one datagram. The
 * I/O itself lives in the engines (conn.c and udp.c on epoll, conn_uring.c and
 * udp_uring.c on io_uring), so a service never touches a socket. */
#ifndef KODAMA_SERVICE_H
#define KODAMA_SERVICE_H

#include <stddef.h>
#include <sys/socket.h>

#include "guard.h"

/* What a service wants from a new stream connection; filled by the calls below and
 * carried out by whichever engine serves it (conn.c on epoll, conn_uring.c). */
struct conn_plan {
    const char *tx;             /* bytes that outlive the connection (a greeting) */
    size_t tx_len;
    unsigned echo : 1;
    unsigned close_after_send : 1;
};

/* Queue static bytes (a greeting); they are sent first. */
void plan_send_static(struct conn_plan *p, const char *data, size_t len);
/* Send back every byte read, in order. */
void plan_echo_input(struct conn_plan *p);
/* Once everything queued is sent: shut down our side, linger, close. */
void plan_close_after_send(struct conn_plan *p);

struct serve_config {
    const char *message;        /* hello's greeting, escapes decoded */
    size_t message_len;
    int verbose;
    size_t threads;             /* event loops, one per thread */
    int io;                     /* enum loop_io: LOOP_IO_EPOLL or LOOP_IO_URING */
    int share_listeners;        /* one socket for all loops, not SO_REUSEPORT siblings */
    struct guard_config limits; /* max_conns 0: from RLIMIT_NOFILE (server_run) */
    long idle_timeout_ms;       /* 0: none */
    long send_timeout_ms;       /* 0: none */
    long drain_timeout_ms;      /* after SIGTERM, connections go on this long */
    size_t max_buffer;          /* echoed bytes a connection may hold */
    const struct run_as *user;  /* run as this user once every socket is made */
    const struct metrics_listen *metrics;   /* --metrics: its bound socket, or NULL */
};

/* What a service may know of the connection it opens or the datagram it answers.
 * An address of length 0 is unknown. */
struct svc_ctx {
    const struct serve_config *cfg;
    const char *proto;                  /* "tcp", "udp" or "unix" */
    /* Filled only for services with wants_addresses (they cost a system call or two
     * per connection on some paths): */
    const struct sockaddr *local;       /* ours, as the peer reached us */
    socklen_t local_len;
    const struct sockaddr *peer;        /* the peer as the socket sees it */
    socklen_t peer_len;
    const struct sockaddr *client;      /* the client a PROXY protocol header named */
    socklen_t client_len;
    /* udp only: the datagram, and room for a reply made up on the spot, which may be
     * the datagram's own memory (read what you need of in before writing out). */
    const char *in;
    size_t in_len;
    char *out;
    size_t out_cap;
};

struct service {
    const char *name;
    const char *summary;        /* one line for --help */
    unsigned wants_addresses : 1;
    void (*tcp_open)(struct conn_plan *p, const struct svc_ctx *ctx);
    /* Point *reply at the answer to one datagram (ctx->in, ctx->out or static
     * memory); returns its length, or -1 to send nothing. */
    long (*udp_reply)(const struct svc_ctx *ctx, const char **reply);
};

extern const struct service service_hello;
extern const struct service service_echo;

/* NULL-terminated, in the order --help lists them. */
extern const struct service *const services[];

const struct service *service_find(const char *name);

#endif
