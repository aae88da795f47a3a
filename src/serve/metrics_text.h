/* metrics_text.h — the Prometheus text exposition format (version 0.0.4) of a
 * snapshot of serve's counters. Pure: no sockets, no clock, no /proc, so that the
 * exact text can be tested. The metrics are listed in docs/kodama.1, METRICS. */
#ifndef KODAMA_METRICS_TEXT_H
#define KODAMA_METRICS_TEXT_H

#include <stdint.h>
#include <stdio.h>

#include "serve/core/worker.h"

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* One listener: its labels and its counts summed over the workers. */
struct metrics_listener {
    const char *service;
    const char *proto;              /* "tcp", "udp" or "unix" */
    const char *address;            /* as in its listening line */
    int tls;                        /* a "+tls" listener */
    const char *name;               /* its SPEC's name= (or SERVICE-PORT) */
    struct listener_totals t;
};

/* What the process is; a negative number is unknown, and its family is left out. */
struct metrics_process {
    const char *version;
    int64_t open_fds, max_fds, rss_bytes;
    double start_time;              /* seconds since the epoch */
};

struct metrics_snapshot {
    const struct metrics_listener *listeners;
    size_t n;
    struct metrics_process proc;
};

/* Write the exposition of s to out. Returns 0, or -1 if out reported an error. */
int metrics_write(FILE *out, const struct metrics_snapshot *s);

/* Write s as a label value (without the quotes): backslash, double quote and
 * newline escaped, bytes that are not UTF-8 replaced by U+FFFD. */
void metrics_label_value(FILE *out, const char *s);

#endif
