/* svc_hello.c — the tutorial's greeting server: say hello, then hang up cleanly.
 *
 * Over tcp the greeting is followed by shutdown(SHUT_WR) and the connection lingers,
 * discarding input, until the client closes (at most 5 s, see conn.c): closing with
 * unread data would make the kernel send a reset, and a client that spoke first
 * would lose its greeting. Over udp every datagram gets the greeting. */
#include "serve/services/service.h"

static void hello_open(struct conn_plan *p, const struct svc_ctx *ctx)
{
    plan_send_static(p, ctx->set->message, ctx->set->message_len);
    plan_close_after_send(p);
}

static long hello_udp(const struct svc_ctx *ctx, const char **reply)
{
    *reply = ctx->set->message;
    return (long)ctx->set->message_len;
}

const struct service service_hello = {
    .name = "hello",
    .summary = "send a greeting, then close (udp: answer each datagram with it)",
    .tcp_open = hello_open,
    .udp_reply = hello_udp,
};
