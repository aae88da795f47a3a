/* trace.c — see trace.h. */
#include "lib/trace.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lib/addr.h"
#include "lib/log.h"
#include "lib/util.h"

#define TRACE_LINE_MAX 512

int trace_enabled;
static struct timespec trace_t0;

void trace_start(void)
{
    clock_gettime(CLOCK_MONOTONIC, &trace_t0);
    trace_enabled = 1;
}

const char *trace_errno_name(int err, char *buf, size_t len)
{
    const char *name = strerrorname_np(err);

    if (name)
        return name;
    snprintf(buf, len, "E%d", err);
    return buf;
}

char *trace_addr(const struct sockaddr *sa, socklen_t len, char *buf)
{
    return addr_format(sa, len, buf, TRACE_ADDR_MAX);
}

const char *trace_family(int family)
{
    return family == AF_INET ? "AF_INET" : family == AF_INET6 ? "AF_INET6"
         : family == AF_UNIX ? "AF_UNIX" : "AF_?";
}

const char *trace_socktype(int type)
{
    return type == SOCK_STREAM ? "SOCK_STREAM" : type == SOCK_DGRAM ? "SOCK_DGRAM" : "SOCK_?";
}

/* The "+S.UUUUUU " prefix; returns its length. */
static size_t stamp(char *line, size_t cap)
{
    struct timespec now;
    long long us;
    int n;

    clock_gettime(CLOCK_MONOTONIC, &now);
    us = (long long)(now.tv_sec - trace_t0.tv_sec) * 1000000 +
         (now.tv_nsec - trace_t0.tv_nsec) / 1000;
    n = snprintf(line, cap, "+%lld.%06lld ", us / 1000000, us % 1000000);
    return n > 0 ? (size_t)n : 0;
}

static size_t append(char *line, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static size_t append(char *line, size_t off, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (off >= TRACE_LINE_MAX - 1)
        return off;
    va_start(ap, fmt);
    n = vsnprintf(line + off, TRACE_LINE_MAX - 1 - off, fmt, ap);
    va_end(ap);
    if (n < 0)
        return off;
    off += (size_t)n;
    return off < TRACE_LINE_MAX - 1 ? off : TRACE_LINE_MAX - 2;
}

static size_t vappend(char *line, size_t off, const char *fmt, va_list ap)
{
    int n;

    if (off >= TRACE_LINE_MAX - 1)
        return off;
    n = vsnprintf(line + off, TRACE_LINE_MAX - 1 - off, fmt, ap);
    if (n < 0)
        return off;
    off += (size_t)n;
    return off < TRACE_LINE_MAX - 1 ? off : TRACE_LINE_MAX - 2;
}

/* Control characters in a name (a unix path, say) must not split the line. */
static void finish(char *line, size_t off)
{
    line[off] = '\0';
    printable(line);
    line[off++] = '\n';
    log_raw(line, off);
}

void trace_note(const char *fmt, ...)
{
    char line[TRACE_LINE_MAX];
    int saved = errno;
    size_t off = stamp(line, sizeof line);
    va_list ap;

    va_start(ap, fmt);
    off = vappend(line, off, fmt, ap);
    va_end(ap);
    finish(line, off);
    errno = saved;
}

void trace_submit(const char *fmt, ...)
{
    char line[TRACE_LINE_MAX];
    int saved = errno;
    size_t off = stamp(line, sizeof line);
    va_list ap;

    off = append(line, off, "io_uring: submit ");
    va_start(ap, fmt);
    off = vappend(line, off, fmt, ap);
    va_end(ap);
    finish(line, off);
    errno = saved;
}

void trace_accept(const char *where, int lfd, int fd, int err, const struct sockaddr *peer,
                  socklen_t len)
{
    char a[TRACE_ADDR_MAX], note[TRACE_ADDR_MAX + 8];

    if (fd >= 0 && len > 0) {
        snprintf(note, sizeof note, "from %s", trace_addr(peer, len, a));
        trace_call(fd, 0, note, "accept(%d) [%s]", lfd, where);
    } else {
        trace_call(fd, err, NULL, "accept(%d) [%s]", lfd, where);
    }
}

void trace_call(long rc, int err, const char *note, const char *fmt, ...)
{
    char line[TRACE_LINE_MAX], name[16];
    int saved = errno;
    size_t off = stamp(line, sizeof line);
    va_list ap;

    va_start(ap, fmt);
    off = vappend(line, off, fmt, ap);
    va_end(ap);
    if (rc < 0)
        off = append(line, off, " = -1 %s", trace_errno_name(err, name, sizeof name));
    else
        off = append(line, off, " = %ld", rc);
    if (note)
        off = append(line, off, "  (%s)", note);
    finish(line, off);
    errno = saved;
}

void trace_io(const char *op, int fd, long n, size_t len)
{
    int err = errno;

    trace_call(n, err, n == 0 && op[0] == 'r' ? "peer closed: FIN" : NULL, "%s(%d, %zu)", op, fd,
               len);
}

void trace_fd(const char *call, int fd, long rc)
{
    char line[TRACE_LINE_MAX];
    int err = errno;

    /* call is one of ours, a literal with a single %d. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    snprintf(line, sizeof line, call, fd);
#pragma GCC diagnostic pop
    trace_call(rc, err, NULL, "%s", line);
}

void trace_cqe_fd(const char *op, int fd, int res)
{
    trace_cqe(res, NULL, "%s(%d)", op, fd);
}

void trace_cqe(int res, const char *note, const char *fmt, ...)
{
    char line[TRACE_LINE_MAX], name[16];
    int saved = errno;
    size_t off = stamp(line, sizeof line);
    va_list ap;

    off = append(line, off, "io_uring: complete ");
    va_start(ap, fmt);
    off = vappend(line, off, fmt, ap);
    va_end(ap);
    if (res < 0)
        off = append(line, off, " = -%s", trace_errno_name(-res, name, sizeof name));
    else
        off = append(line, off, " = %d", res);
    if (note)
        off = append(line, off, "  (%s)", note);
    finish(line, off);
    errno = saved;
}
