/* ping_run.c — what ping's two modes share (see ping.h): the series of times, the
 * failures, the per-probe lines, when to stop. */
#include <stdarg.h>
#include <stdio.h>

#include "client/ping.h"
#include "client/sock.h"

void ping_series_add(struct ping_series *s, int64_t ns)
{
    double ms = (double)ns / 1e6;

    if (s->n == 0 || ms < s->min)
        s->min = ms;
    if (s->n == 0 || ms > s->max)
        s->max = ms;
    s->n++;
    s->sum += ms;
    s->sum2 += ms * ms;
}

static int end_line(void)
{
    if (putchar('\n') == EOF || fflush(stdout) == EOF)
        return -1;
    return 0;
}

int ping_fail_line(const struct ping_opts *o, struct ping_stats *st, int verdict,
                   const char *fmt, ...)
{
    char text[sizeof st->first_error];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (st->first_failure == V_OK) {
        st->first_failure = verdict;
        snprintf(st->first_error, sizeof st->first_error, "%s", text);
    }
    if (o->c.json)
        return 0;
    fputs(text, stdout);
    return end_line();
}

int ping_line(const struct ping_opts *o, const char *fmt, ...)
{
    va_list ap;

    if (o->c.json)
        return 0;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    return end_line();
}

const char *ping_peer_text(const struct peer *p)
{
    return p->addr;
}

int ping_more(const struct ping_opts *o, const struct ping_stats *st)
{
    return !sk_stop_requested() && (o->count == 0 || st->probes < o->count);
}
