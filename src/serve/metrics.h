/* metrics.h — serve's --metrics: Prometheus scrapes GET /metrics over HTTP/1.1.
 *
 * The responder is a thread of its own with its own small epoll loop: a scrape
 * reads the workers' counters (single-writer atomics, counter.h) without a lock and
 * never runs in a serving loop, so it cannot delay their traffic. It keeps at most
 * a handful of connections, each for at most a few seconds. */
#ifndef KODAMA_METRICS_H
#define KODAMA_METRICS_H

#include <stddef.h>

#include "lib/addr.h"
#include "proto/spec.h"

struct worker_set;

/* The bound --metrics socket, made before privileges are dropped. */
struct metrics_listen {
    int fd;
    char addr[ADDR_TEXT_MAX];       /* as bound, for the listening line */
};

/* Check ADDR's syntax: PORT, HOST:PORT or [IPV6]:PORT (tcp only). Returns 0, or
 * -1 with a reason in err. */
int metrics_addr_parse(const char *text, struct spec *sp, char *err, size_t errlen);

/* Bind sp (family AF_UNSPEC, or AF_INET/AF_INET6 for -4/-6). Returns 0, or -1 with
 * "cannot listen on metrics tcp ADDR: why" in err. */
int metrics_listen(const struct spec *sp, int family, struct metrics_listen *ml, char *err,
                   size_t errlen);

/* Serve ml in a thread of its own until metrics_stop; it reads the workers'
 * counters through worker_set_totals. Returns NULL (reported) on failure. */
struct metrics *metrics_start(const struct metrics_listen *ml, const struct worker_set *ws);
/* Stop and join the thread, close its connections; NULL is fine. The socket in ml
 * stays open: its owner closes it. */
void metrics_stop(struct metrics *m);

/* The answer to a request head (the bytes up to and including the blank line):
 * 200 for GET or HEAD /metrics (*head_only for HEAD), 404 for another path, 405
 * for another method on /metrics, 400 for anything that is not an HTTP/1.x
 * request. */
int metrics_route(const char *head, size_t len, int *head_only);

#endif
