/* service.h — the table of services a listener can serve.
 *
 * A service says what to do with a stream connection when it opens (through the
 * conn_* calls in conn.h: queue a greeting, echo input, close after sending) and how
 * to answer one datagram. The I/O itself (epoll today, io_uring later) lives in
 * conn.c and udp.c, so a service never touches a socket. */
#ifndef KODAMA_SERVICE_H
#define KODAMA_SERVICE_H

#include <stddef.h>

struct conn;

struct serve_config {
    const char *message;        /* hello's greeting, escapes decoded */
    size_t message_len;
    int verbose;
    size_t threads;             /* event loops, one per thread */
    int share_listeners;        /* one socket for all loops, not SO_REUSEPORT siblings */
};

struct service {
    const char *name;
    const char *summary;        /* one line for --help */
    void (*tcp_open)(struct conn *c, const struct serve_config *cfg);
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
