/* log.c — see log.h. serve's formats are in docs/kodama.1, LOGGING. */
#include "lib/log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "lib/utf8.h"
#include "lib/util.h"

/* Set by serve before its threads start, except log_stamp, which turns on after
 * "ready" while workers may be logging already. */
static _Atomic int log_json;        /* LOG_FORMAT_JSON */
static _Atomic int log_timed;       /* json lines carry "time" */
static _Atomic int log_stamp;       /* text lines start with the time */
static int use_syslog;              /* --inetd with stderr the client's socket */

void log_to_syslog(void)
{
    openlog("kodama", LOG_PID, LOG_DAEMON);
    use_syslog = 1;
}


/* One write(2) per line, so that lines from several threads never interleave. */
static void write_all(const char *buf, size_t len)
{
    for (size_t off = 0; off < len;) {
        ssize_t w = write(STDERR_FILENO, buf + off, len - off);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;  /* stderr is gone: nobody to tell */
        off += (size_t)w;
    }
}

/* vsnprintf into buf, cut to fit; returns the length. */
static size_t format_text(char *buf, size_t cap, const char *fmt, va_list ap)
{
    int n = vsnprintf(buf, cap, fmt, ap);

    if (n < 0) {
        buf[0] = '\0';
        return 0;
    }
    return (size_t)n < cap ? (size_t)n : cap - 1;
}

/* syslog stamps and frames lines itself: the plain message, whatever the format. */
static void write_syslog(const char *fmt, va_list ap)
{
    char msg[1024];

    format_text(msg, sizeof msg, fmt, ap);
    printable(msg);
    syslog(LOG_INFO, "%s", msg);
}

static void write_text(const char *prefix, const char *fmt, va_list ap)
{
    char line[1024];
    size_t off = 0, n;

    if (prefix[0] && atomic_load_explicit(&log_stamp, memory_order_relaxed)) {
        log_time_now(line, LOG_TIME_LEN);
        off = strlen(line);
        line[off++] = ' ';
    }
    memcpy(line + off, prefix, strlen(prefix));
    off += strlen(prefix);
    n = format_text(line + off, sizeof line - off - 1, fmt, ap);
    printable(line + off);
    off += n;
    line[off++] = '\n';
    write_all(line, off);
}

static const char *json_level(const char *msg)
{
    if (strncmp(msg, "cannot ", 7) == 0 || strncmp(msg, "event loop failed", 17) == 0)
        return "error";
    if (strncmp(msg, "refused ", 8) == 0 || strncmp(msg, "dropped ", 8) == 0)
        return "warning";
    return "info";
}

/* The event a line tells of is its first word ("accept", "close", "listening",
 * "ready", "refused", ...); errors have none. Returns its length, or 0. */
static size_t json_event(const char *msg, const char *level)
{
    size_t n = strspn(msg, "abcdefghijklmnopqrstuvwxyz_-");

    if (strcmp(level, "error") == 0 || n == 0 || n > 32 || (msg[n] != ' ' && msg[n] != '\0'))
        return 0;
    return n;
}

static void write_json(const char *fmt, va_list ap)
{
    char msg[1024], line[6 * sizeof msg + 256];
    const char *level;
    size_t off = 0, ev;

    format_text(msg, sizeof msg, fmt, ap);
    level = json_level(msg);
    ev = json_event(msg, level);
    line[off++] = '{';
    if (atomic_load_explicit(&log_timed, memory_order_relaxed)) {
        char t[LOG_TIME_LEN];

        log_time_now(t, sizeof t);
        off += (size_t)snprintf(line + off, sizeof line - off, "\"time\":\"%s\",", t);
    }
    off += (size_t)snprintf(line + off, sizeof line - off, "\"level\":\"%s\",\"msg\":\"", level);
    off += json_escape(msg, line + off, sizeof line - off - 64);    /* room for the rest */
    off += (size_t)snprintf(line + off, sizeof line - off, "\"");
    if (ev)
        off += (size_t)snprintf(line + off, sizeof line - off, ",\"event\":\"%.*s\"", (int)ev,
                                msg);
    line[off++] = '}';
    line[off++] = '\n';
    write_all(line, off);
}

static void write_line(const char *prefix, const char *fmt, va_list ap)
{
    int saved = errno;

    if (use_syslog)
        write_syslog(fmt, ap);
    else if (prefix[0] && atomic_load_explicit(&log_json, memory_order_relaxed))
        write_json(fmt, ap);
    else
        write_text(prefix, fmt, ap);
    errno = saved;
}

void log_time_now(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;

    if (clock_gettime(CLOCK_REALTIME, &ts) < 0 || gmtime_r(&ts.tv_sec, &tm) == NULL) {
        snprintf(buf, len, "1970-01-01T00:00:00.000Z");
        return;
    }
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             ts.tv_nsec / 1000000);
}

int log_stderr_is_journal(void)
{
    const char *env = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    int end = 0;

    if (env == NULL || sscanf(env, "%llu:%llu%n", &dev, &ino, &end) != 2 || env[end] != '\0')
        return 0;
    if (fstat(STDERR_FILENO, &st) < 0)
        return 0;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_setup(enum log_format format)
{
    atomic_store(&log_json, format == LOG_FORMAT_JSON);
    atomic_store(&log_timed, !log_stderr_is_journal());
}

void log_runtime_begin(void)
{
    if (!atomic_load(&log_json) && atomic_load(&log_timed))
        atomic_store(&log_stamp, 1);
}

size_t json_escape(const char *s, char *out, size_t outlen)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t off = 0, left = strlen(s);

    if (outlen == 0)
        return 0;
    while (left > 0) {
        char esc[8];
        const char *piece = esc;
        size_t plen, used = 1, seq = utf8_seq_len(p, left);

        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            plen = 2;
        } else if (*p < 0x20 || *p == 0x7f) {
            plen = (size_t)snprintf(esc, sizeof esc, "\\u%04x", *p);
        } else if (seq == 0) {
            piece = UTF8_REPLACEMENT;
            plen = 3;
        } else {
            piece = (const char *)p;
            plen = used = seq;
        }
        if (off + plen >= outlen)
            break;
        memcpy(out + off, piece, plen);
        off += plen;
        p += used;
        left -= used;
    }
    out[off] = '\0';
    return off;
}

void log_vmsg(const char *fmt, va_list ap)
{
    write_line("kodama: ", fmt, ap);
}

void log_vusage(const char *fmt, va_list ap)
{
    int saved = errno;

    /* Plain text, never json; but to syslog if stderr is an inetd client's socket. */
    if (use_syslog)
        write_syslog(fmt, ap);
    else
        write_text("kodama: ", fmt, ap);
    errno = saved;
}

void log_msg(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    write_line("kodama: ", fmt, ap);
    va_end(ap);
}

void log_raw(const char *line, size_t len)
{
    int saved = errno;

    if (use_syslog)
        syslog(LOG_DEBUG, "%.*s", (int)(len > 0 && line[len - 1] == '\n' ? len - 1 : len), line);
    else
        write_all(line, len);
    errno = saved;
}

void log_plain(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    write_line("", fmt, ap);
    va_end(ap);
}

int log_limit_claim(struct log_limit *ll, unsigned long *skipped)
{
    int64_t now = now_ms(), last = atomic_load_explicit(&ll->last_ms, memory_order_relaxed);

    /* Of the threads that find the interval over, only the one that moves the
     * timestamp writes the line. */
    if ((last != 0 && now - last < LOG_LIMIT_MS) ||
        !atomic_compare_exchange_strong(&ll->last_ms, &last, now)) {
        atomic_fetch_add_explicit(&ll->skipped, 1, memory_order_relaxed);
        return 0;
    }
    *skipped = atomic_exchange(&ll->skipped, 0);
    return 1;
}

int log_limit_flush(struct log_limit *ll, unsigned long *skipped, int force)
{
    int64_t now = now_ms(), last = atomic_load_explicit(&ll->last_ms, memory_order_relaxed);

    if (!log_limit_pending(ll) || (!force && now - last < LOG_LIMIT_MS) ||
        !atomic_compare_exchange_strong(&ll->last_ms, &last, now))
        return 0;
    *skipped = atomic_exchange(&ll->skipped, 0);
    return *skipped != 0;
}

void log_limited(struct log_limit *ll, const char *fmt, ...)
{
    unsigned long skipped;
    char text[768];
    va_list ap;

    if (!log_limit_claim(ll, &skipped))
        return;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (skipped)
        log_msg("%s (%lu more since the last report)", text, skipped);
    else
        log_msg("%s", text);
}
