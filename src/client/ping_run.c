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

/* The line of a probe that failed or was lost, kept in keep (with its verdict in
 * *first, if given) if it is the run's first of its kind. */
static int probe_line(const struct ping_opts *o, char *keep, size_t keep_len, int *first,
                      int verdict, const char *fmt, va_list ap)
{
    char text[320];

    vsnprintf(text, sizeof text, fmt, ap);
    if (keep[0] == '\0') {
        snprintf(keep, keep_len, "%s", text);
        if (first)
            *first = verdict;
    }
    if (o->c.json)
        return 0;
    fputs(text, stdout);
    return end_line();
}

int ping_fail_line(const struct ping_opts *o, struct ping_stats *st, int verdict,
                   const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = probe_line(o, st->first_error, sizeof st->first_error, &st->first_failure, verdict,
                    fmt, ap);
    va_end(ap);
    return rc;
}

int ping_loss_line(const struct ping_opts *o, struct ping_stats *st, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = probe_line(o, st->first_loss, sizeof st->first_loss, NULL, V_TIMEOUT, fmt, ap);
    va_end(ap);
    return rc;
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
