/* log.c — see log.h. */
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

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
