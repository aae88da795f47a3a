/* svc_discard.c — the discard service of RFC 863: read everything, say nothing.
 *
 * A tcp connection stays open until the peer closes it (or --idle-timeout passes
 * with nothing read); udp datagrams get no answer. */
#include "serve/services/service.h"

static void discard_open(struct conn_plan *p, const struct svc_ctx *ctx)
{
    (void)p;
    (void)ctx;
}

static long discard_udp(const struct svc_ctx *ctx, const char **reply)
{
    (void)ctx;
    (void)reply;
    return -1;
}

const struct service service_discard = {
    .name = "discard",
    .summary = "read and throw away; never answer (RFC 863)",
    .tcp_open = discard_open,
    .udp_reply = discard_udp,
};
