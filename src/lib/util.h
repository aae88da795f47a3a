/* util.h — small helpers shared by every command: numbers, escapes, memory. */
#ifndef KODAMA_UTIL_H
#define KODAMA_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define KODAMA_ERR_LEN 256

/* Parse a decimal unsigned integer in [min, max]. The whole string must be digits.
 * Returns 0, or -1 with a reason ("empty", "not a number", "too large", "too small")
 * in err. */
int parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out,
               char *err, size_t errlen);

/* Parse a duration in seconds: "5", "0.5", "2.25" (at most millisecond precision),
 * in (0, 86400]. Returns milliseconds, or -1 with a reason in err. */
long parse_seconds(const char *s, char *err, size_t errlen);

/* A timeout: as parse_seconds, or "0" (also "0.0") for none, which returns 0. */
long parse_timeout(const char *s, char *err, size_t errlen);

/* A byte count: digits with an optional K or M suffix (KiB, MiB), in [min, max].
 * Returns 0, or -1 with a reason in err. */
int parse_bytes(const char *s, unsigned long min, unsigned long max, unsigned long *out,
                char *err, size_t errlen);

/* Decode the escapes \n \r \t \\ in src into dst (at least strlen(src) + 1 bytes).
 * Returns the decoded length (dst is also NUL-terminated), or -1 with a reason
 * naming the bad escape in err. */
long unescape(const char *src, char *dst, char *err, size_t errlen);

/* Replace control characters in s with '?', so text quoted from the user or the
 * network can never split a log line or reach a terminal as a control sequence. */
void printable(char *s);

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);

/* Monotonic clock in milliseconds, cut to the ms (not rounded). */
int64_t now_ms(void);
/* The same clock in microseconds: for waits that must end neither early nor a
 * millisecond late (the faults' latency, a relay's connect-timeout). */
int64_t now_us(void);
/* The same clock in nanoseconds. */
int64_t now_ns(void);

/* epoll_wait with a timeout in ns (-1: none): epoll_pwait2, whose timespec lets a
 * timer end when due rather than on a whole ms; before Linux 5.11 (and under
 * valgrind 3.19, which does not know it) epoll_wait with the ms rounded up, so a
 * wait never ends early. Returns as epoll_wait does. */
struct epoll_event;
int epoll_wait_ns(int epfd, struct epoll_event *events, int max, int64_t timeout_ns);

/* Descriptors this process has open (from /proc/self/fd, not counting the one used
 * to read it), or -1 without /proc. */
long open_fd_count(void);

#endif
