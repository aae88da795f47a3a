/* log.c — see log.h. */
#include "log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "util.h"

static int use_syslog;

void log_to_syslog(void)
{
    openlog("kodama", LOG_PID, LOG_DAEMON);
    use_syslog = 1;
}

static void write_line(const char *prefix, const char *fmt, va_list ap)
{
    char line[1024];
    size_t plen = strlen(prefix);
    int n;
    int saved = errno;

    memcpy(line, prefix, plen);
    n = vsnprintf(line + plen, sizeof line - plen - 1, fmt, ap);
    if (n < 0)
        n = 0;
    if ((size_t)n > sizeof line - plen - 2)
        n = (int)(sizeof line - plen - 2);
    line[plen + (size_t)n] = '\0';
    printable(line);
    if (use_syslog) {
        syslog(LOG_INFO, "%s", line + plen);
        errno = saved;
        return;
    }
    line[plen + (size_t)n] = '\n';
    for (size_t off = 0, len = plen + (size_t)n + 1; off < len;) {
        ssize_t w = write(STDERR_FILENO, line + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;  /* stderr is gone: nobody to tell */
        off += (size_t)w;
    }
    errno = saved;
}

void log_vmsg(const char *fmt, va_list ap)
{
    write_line("kodama: ", fmt, ap);
}

void log_msg(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    write_line("kodama: ", fmt, ap);
    va_end(ap);
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
