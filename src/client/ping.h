/* ping.h — `kodama ping`, ping(8) for ports: what its two modes share. Echo mode
 * (ping_echo.c) sends a probe (proto/ping.h) every -i seconds on one connection or
 * udp socket and names each reply; connect mode (ping_connect.c) opens a new
 * connection per probe and times the connect and the first byte back. cmd_ping.c
 * reads the options and prints the summary. */
#ifndef KODAMA_CLIENT_PING_H
#define KODAMA_CLIENT_PING_H

#include <stdint.h>

#include "client/client.h"

struct ping_opts {
    struct client_opts c;
    unsigned long size;             /* -s */
    long interval_ms;               /* -i; 0: as fast as replies come */
    unsigned long count;            /* -c; 0: until SIGINT */
    int connect_mode;               /* --connect */
};

/* min/avg/max/mdev of a series of times, in ns. */
struct ping_series {
    uint64_t n;
    double sum, sum2, min, max;
};

void ping_series_add(struct ping_series *s, int64_t ns);

struct ping_stats {
    uint64_t probes, replies, duplicates, corrupt, late, failed;
    struct ping_series rtt;         /* echo: send to reply; connect: to the first byte */
    struct ping_series connect;     /* connect mode: the connect itself */
    struct ping_series handshake;   /* --tls: the TLS handshake, after the connect */
    int first_failure;              /* the verdict of the first failure not a loss */
    char first_error[320];          /* and its line: --json's "error" if none other */
    char first_loss[320];           /* the first lost probe's line: "error" if no failure */
    int64_t t_first, t_last;        /* when the first probe went, when it ended */
};

/* A failure other than a lost probe (refused, reset, a corrupt reply...): its line
 * of the per-probe report, kept with its verdict if it is the run's first (the
 * exit status; --json's "error", where no line is printed). Returns as ping_line. */
int ping_fail_line(const struct ping_opts *o, struct ping_stats *st, int verdict,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* A lost probe's line (no reply within -w), kept if it is the run's first: the
 * "error" of a run that only lost probes. Returns as ping_line. */
int ping_loss_line(const struct ping_opts *o, struct ping_stats *st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A line of the per-probe report on stdout (none with --json). Returns 0, or -1
 * if stdout failed. */
int ping_line(const struct ping_opts *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The run: the peer named in p and r, the stats filled. Return V_OK, or the verdict
 * that ended the run early (connect failed, reset, stdout gone). */
int ping_echo_run(struct ping_opts *o, struct ping_stats *st, struct report *r, struct peer *p);
int ping_connect_run(struct ping_opts *o, struct ping_stats *st, struct report *r,
                     struct peer *p);

/* The peer as the per-probe lines name it ("127.0.0.1:7007", "unix:/tmp/s"). */
const char *ping_peer_text(const struct peer *p);

/* More probes to send? (-c, a stop signal.) */
int ping_more(const struct ping_opts *o, const struct ping_stats *st);

#endif
