/* svc_time.c — the time service of RFC 868: 4 bytes, big-endian seconds since 1900,
 * then close; over udp the same 4 bytes answer each datagram. */
#include <stdint.h>
#include <time.h>

#include "serve/services/svc_formats.h"

void time_format(time_t t, unsigned char out[TIME_LEN])
{
    /* Unsigned arithmetic wraps modulo 2^32, which is RFC 868's era rule. */
    uint32_t v = (uint32_t)((unsigned long long)t + TIME_EPOCH_1900);

    out[0] = (unsigned char)(v >> 24);
    out[1] = (unsigned char)(v >> 16);
    out[2] = (unsigned char)(v >> 8);
    out[3] = (unsigned char)v;
}

static void time_open(struct conn_plan *p, const struct svc_ctx *ctx)
{
    unsigned char now[TIME_LEN];

    (void)ctx;
    time_format(time(NULL), now);
    plan_send_copy(p, now, sizeof now);
    plan_close_after_send(p);
}

static long time_udp(const struct svc_ctx *ctx, const char **reply)
{
    time_format(time(NULL), (unsigned char *)ctx->out);
    *reply = ctx->out;
    return TIME_LEN;
}

const struct service service_time = {
    .name = "time",
    .summary = "send the time as 4 bytes, seconds since 1900, then close (RFC 868)",
    .udp_record = 1,
    .tcp_open = time_open,
    .udp_reply = time_udp,
};
