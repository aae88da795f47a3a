/* svc_daytime.c — the daytime service of RFC 867: one line with the date and time,
 * then close; over udp the same line answers each datagram.
 *
 * RFC 867 fixes no syntax; it suggests "Weekday, Month Day, Year Time-Zone". kodama
 * writes exactly that in English and UTC (see svc_formats.h), whatever the locale
 * or TZ, so that a test or a script can parse it. */
#include <stdio.h>
#include <time.h>

#include "serve/services/svc_formats.h"

static const char *const weekdays[7] = {
    "Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
};

static const char *const months[12] = {
    "January", "February", "March", "April", "May", "June", "July", "August",
    "September", "October", "November", "December",
};

long daytime_format(time_t t, char *buf, size_t cap)
{
    struct tm tm;
    int n;

    if (gmtime_r(&t, &tm) == NULL || tm.tm_wday < 0 || tm.tm_wday > 6 || tm.tm_mon < 0 ||
        tm.tm_mon > 11)
        return -1;
    n = snprintf(buf, cap, "%s, %s %02d, %04lld %02d:%02d:%02d-UTC\r\n", weekdays[tm.tm_wday],
                 months[tm.tm_mon], tm.tm_mday, (long long)tm.tm_year + 1900, tm.tm_hour,
                 tm.tm_min, tm.tm_sec);
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

static void daytime_open(struct conn_plan *p, const struct svc_ctx *ctx)
{
    char line[DAYTIME_MAX];
    long len = daytime_format(time(NULL), line, sizeof line);

    (void)ctx;
    if (len > 0)
        plan_send_copy(p, line, (size_t)len);
    plan_close_after_send(p);
}

static long daytime_udp(const struct svc_ctx *ctx, const char **reply)
{
    *reply = ctx->out;
    return daytime_format(time(NULL), ctx->out, ctx->out_cap);
}

const struct service service_daytime = {
    .name = "daytime",
    .summary = "send the date and time in one line, UTC, then close (RFC 867)",
    .udp_record = 1,
    .tcp_open = daytime_open,
    .udp_reply = daytime_udp,
};
