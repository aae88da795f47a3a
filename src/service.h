/* service.h — the table of services a listener can serve.
 *
 * A service says what to do with a stream connection when it opens (a plan: queue a
 * greeting, echo input, close after sending) and how to answer one datagram. The
 * I/O itself lives in the engines (conn.c and udp.c on epoll, conn_uring.c and
 * udp_uring.c on io_uring), so a service never touches a socket. */
#ifndef KODAMA_SERVICE_H
#define KODAMA_SERVICE_H

#include <stddef.h>

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
};

struct service {
    const char *name;
    const char *summary;        /* one line for --help */
    void (*tcp_open)(struct conn_plan *p, const struct serve_config *cfg);
    /* Point *reply at the answer to one datagram (it may be `in` itself); returns
     * its length, or -1 to send nothing. */
    long (*udp_reply)(const struct serve_config *cfg, const char *in, size_t len,
                      const char **reply);
};

extern const struct service service_hello;
extern const struct service service_echo;

/* NULL-terminated, in the order --help lists them. */
extern const struct service *const services[];

const struct service *service_find(const char *name);

#endif
