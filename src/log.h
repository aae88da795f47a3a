/* log.h — one-line messages on stderr, each prefixed "kodama: " and written with a
 * single write(2) so that lines from a busy server never interleave. */
#ifndef KODAMA_LOG_H
#define KODAMA_LOG_H

#include <stdarg.h>
#include <stdint.h>

void log_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_vmsg(const char *fmt, va_list ap);
/* Print a message without the prefix (send -v's "Received ..." lines). */
void log_plain(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* From now on, send the lines to syslog(3) (facility daemon) instead of stderr:
 * for serve --inetd, when stderr is the client's socket. */
void log_to_syslog(void);

/* A condition that can repeat thousands of times a second (a flood, a limit being
 * hit) is logged at most once per LOG_LIMIT_MS; the lines skipped meanwhile are
 * counted and mentioned in the next one. Safe to share between threads. */
#define LOG_LIMIT_MS 1000

struct log_limit {
    _Atomic int64_t last_ms;        /* when a line was last written; 0: never */
    _Atomic unsigned long skipped;
};

/* Returns 1 if a line is due now (with the number skipped since the last one in
 * *skipped): the caller writes it; 0 if it is to be skipped (counted). */
int log_limit_claim(struct log_limit *ll, unsigned long *skipped);

void log_limited(struct log_limit *ll, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
