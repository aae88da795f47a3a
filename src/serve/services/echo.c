/* svc_echo.c — the echo service of RFC 862: every byte back, in order.
 *
 * tcp input is sent back from a bounded buffer (the engines stop reading while it is
 * full, so a peer that does not read cannot grow our memory); udp answers each
 * datagram with itself. */
#include "serve/services/service.h"

static void echo_open(struct conn_plan *p, const struct svc_ctx *ctx)
{
    (void)ctx;
    plan_echo_input(p);
}

static long echo_udp(const struct svc_ctx *ctx, const char **reply)
{
    *reply = ctx->in;
    return (long)ctx->in_len;
}

const struct service service_echo = {
    .name = "echo",
    .summary = "send back every byte received (RFC 862)",
    .tcp_open = echo_open,
    .udp_reply = echo_udp,
};
