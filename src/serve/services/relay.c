/* relay.c — the relay's entry in the service table. A relay is not a plan (it
 * copies between two sockets of its own), so its connections go to the engines'
 * relay (serve/engine/relay.c) instead; the entry gives it a name, --help's line,
 * and says it is stream only. */
#include "serve/services/service.h"

static void relay_open(struct conn_plan *p, const struct svc_ctx *ctx)
{
    (void)p;
    (void)ctx;
}

static long relay_udp(const struct svc_ctx *ctx, const char **reply)
{
    (void)ctx;
    (void)reply;
    return -1;
}

const struct service service_relay = {
    .name = "relay",
    .summary = "copy each connection to and from to=HOST:PORT, faults applied",
    .relay = 1,
    .tcp_open = relay_open,
    .udp_reply = relay_udp,
};
