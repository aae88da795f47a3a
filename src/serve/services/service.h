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


/* The most bytes plan_send_copy takes: no more than the smallest buffer a connection
 * may hold (--max-buffer's minimum), into which the engines copy them. */
#define PLAN_COPY_MAX 1024

/* What a service wants from a new stream connection; filled by the calls below and
 * carried out by whichever engine serves it (conn.c on epoll, conn_uring.c). */
struct conn_plan {
    const char *tx;             /* bytes that outlive the connection (a greeting) */
    size_t tx_len;
    unsigned echo : 1;
    unsigned close_after_send : 1;
    unsigned repeat : 1;        /* tx again and again, until the peer or a stop ends it */
    size_t copy_len;
    char copy[PLAN_COPY_MAX];   /* bytes made up for this connection, sent after tx */
};

/* An empty plan. Not a zeroing initializer: it would clear copy[] too, a kilobyte per
 * connection that most services never touch. */
void plan_init(struct conn_plan *p);
/* Queue static bytes (a greeting); they are sent first. At most 4 GiB. */
void plan_send_static(struct conn_plan *p, const char *data, size_t len);
/* Queue static bytes to be sent over and over (chargen) until the peer closes or the
 * server stops; input is read and discarded meanwhile. */
void plan_send_repeating(struct conn_plan *p, const char *data, size_t len);
/* Queue bytes made up for this connection; they are copied, so data may be the
 * caller's own. Returns 0, or -1 (nothing queued) if len > PLAN_COPY_MAX. The copy
 * takes a buffer from the worker's pool only until it is sent. */
int plan_send_copy(struct conn_plan *p, const void *data, size_t len);
/* Send back every byte read, in order. */
void plan_echo_input(struct conn_plan *p);
/* Once everything queued is sent: shut down our side, linger, close. */
void plan_close_after_send(struct conn_plan *p);

/* What serve's options tell the services, once, at start-up. */
struct svc_settings {
    const char *message;        /* hello's greeting, escapes decoded */
    size_t message_len;
    const char *name;           /* the info service's instance name */
    int info_json;              /* info answers with JSON, not key=value */
};

struct tls_info;

/* What a service may know of the connection it opens or the datagram it answers.
 * An address of length 0 is unknown. */
struct svc_ctx {
    const struct svc_settings *set;
    const char *proto;                  /* "tcp", "udp" or "unix" */
    /* Filled only for services with wants_addresses (they cost a system call or two
     * per connection on some paths): */
    const struct sockaddr *local;       /* ours, as the peer reached us */
    socklen_t local_len;
    const struct sockaddr *peer;        /* the peer as the socket sees it */
    socklen_t peer_len;
    const struct sockaddr *client;      /* the client a PROXY protocol header named */
    socklen_t client_len;
    const struct tls_info *tls;         /* "+tls": what the handshake said; NULL: none */
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
    /* Its udp reply is a record (a date, a time, a report) that means nothing cut
     * short: when the UDP guard would cut it, no reply is sent at all. */
    unsigned udp_record : 1;
    /* The relay (engine/relay.c): stream only, with a target (to=) and no plan. */
    unsigned relay : 1;
    void (*tcp_open)(struct conn_plan *p, const struct svc_ctx *ctx);
    /* Point *reply at the answer to one datagram (ctx->in, ctx->out or static
     * memory); returns its length, or -1 to send nothing. */
    long (*udp_reply)(const struct svc_ctx *ctx, const char **reply);
};

extern const struct service service_hello;
extern const struct service service_echo;
extern const struct service service_discard;
extern const struct service service_chargen;
extern const struct service service_daytime;
extern const struct service service_time;
extern const struct service service_info;
extern const struct service service_relay;

/* NULL-terminated, in the order --help lists them. */
extern const struct service *const services[];

const struct service *service_find(const char *name);
/* "hello, echo, ...": the table's names, for messages (cut to fit len). */
void service_names(char *buf, size_t len);

#endif
