/* log.h — one-line messages on stderr, each prefixed "kodama: " and written with a
 * single write(2) so that lines from a busy server never interleave. */
#ifndef KODAMA_LOG_H
#define KODAMA_LOG_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

void log_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_vmsg(const char *fmt, va_list ap);
/* Print a message without the prefix (send -v's "Received ..." lines). */
void log_plain(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A line made elsewhere (the --trace lines, newline included), as it is: one
 * write(2) on stderr, or to syslog when the log goes there. */
void log_raw(const char *line, size_t len);

/* From now on, send the lines to syslog(3) (facility daemon) instead of stderr:
 * for serve --inetd, when stderr is the client's socket. */
void log_to_syslog(void);
/* A usage error: plain text on stderr whatever --log-format says, as any Unix tool's. */
void log_vusage(const char *fmt, va_list ap);

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

/* The tail of a burst: lines were skipped and nothing has been written for
 * LOG_LIMIT_MS (or at once with force, at exit). Returns 1 with their number in
 * *skipped (the caller writes the line), else 0. Call it on a timer while
 * log_limit_pending says so, or the last of a burst is never told. */
int log_limit_flush(struct log_limit *ll, unsigned long *skipped, int force);
static inline int log_limit_pending(struct log_limit *ll)
{
    return atomic_load_explicit(&ll->skipped, memory_order_relaxed) != 0;
}

/* serve's --log-format. Until log_setup, every line is text without a timestamp,
 * as for any Unix tool (usage errors, the other commands). */
enum log_format { LOG_FORMAT_TEXT, LOG_FORMAT_JSON };

/* From now on, lines of log_msg and log_limited take this format; json lines carry
 * "time" unless stderr is the journal (log_stderr_is_journal). Call before any
 * other thread starts. */
void log_setup(enum log_format format);

/* Start-up is over ("ready" is out): text lines get a timestamp from now on, unless
 * stderr is the journal, which adds its own. */
void log_runtime_begin(void);

/* systemd.exec(5): JOURNAL_STREAM is "DEV:INODE" of the stream the journal gave us;
 * it is ours only if stderr is still that very stream. */
int log_stderr_is_journal(void);

/* Write s as the inside of a JSON string into out (NUL-terminated): quotes,
 * backslashes and control characters escaped, bytes that are not UTF-8 replaced by
 * U+FFFD. Stops before an escape or a character that would not fit whole. Returns
 * the length written. */
size_t json_escape(const char *s, char *out, size_t outlen);

/* An RFC 3339 UTC time with milliseconds, "2025-01-02T03:04:05.678Z", of the
 * real-time clock; buf needs LOG_TIME_LEN bytes. */
#define LOG_TIME_LEN 32
void log_time_now(char *buf, size_t len);

#endif
