/* util.c — numbers, escapes and memory helpers shared by every command. */
#include "lib/util.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    printable(err);
}

int parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out,
               char *err, size_t errlen)
{
    unsigned long v = 0;

    if (*s == '\0') {
        set_err(err, errlen, "empty");
        return -1;
    }
    /* All of it first: "99999999999999999999x" is not a number, not too large. */
    if (s[strspn(s, "0123456789")] != '\0') {
        set_err(err, errlen, "not a number");
        return -1;
    }
    for (const char *p = s; *p; p++) {
        if (v > (ULONG_MAX - (unsigned long)(*p - '0')) / 10) {
            set_err(err, errlen, "too large");
            return -1;
        }
        v = v * 10 + (unsigned long)(*p - '0');
    }
    if (v > max) {
        set_err(err, errlen, "too large");
        return -1;
    }
    if (v < min) {
        set_err(err, errlen, "too small");
        return -1;
    }
    *out = v;
    return 0;
}

long parse_seconds(const char *s, char *err, size_t errlen)
{
    const long max_ms = 86400L * 1000;
    long ms = 0, scale = 1000;
    const char *p = s;
    int digits = 0;

    for (; *p >= '0' && *p <= '9'; p++, digits++) {
        ms = ms * 10 + (*p - '0') * 1000;
        if (ms > max_ms) {
            set_err(err, errlen, "too large (at most 86400)");
            return -1;
        }
    }
    if (*p == '.') {
        for (p++; *p >= '0' && *p <= '9'; p++, digits++) {
            scale /= 10;
            if (scale == 0 && *p != '0') {
                set_err(err, errlen, "finer than a millisecond");
                return -1;
            }
            ms += (*p - '0') * scale;
        }
    }
    if (*p != '\0' || digits == 0) {
        set_err(err, errlen, "not a number of seconds");
        return -1;
    }
    if (ms == 0) {
        set_err(err, errlen, "must be more than 0");
        return -1;
    }
    if (ms > max_ms) {
        set_err(err, errlen, "too large (at most 86400)");
        return -1;
    }
    return ms;
}

/* "0", "0.0", "00": a zero written as a number of seconds. */
static int is_zero(const char *s)
{
    int digits = 0, dots = 0;

    for (; *s; s++) {
        if (*s == '0')
            digits++;
        else if (*s != '.' || dots++ > 0)
            return 0;
    }
    return digits > 0;
}

long parse_timeout(const char *s, char *err, size_t errlen)
{
    return is_zero(s) ? 0 : parse_seconds(s, err, errlen);
}

int parse_bytes(const char *s, unsigned long min, unsigned long max, unsigned long *out,
                char *err, size_t errlen)
{
    char digits[32];
    size_t n = strlen(s);
    unsigned long unit = 1, v;

    if (n > 0 && strchr("kKmM", s[n - 1])) {
        unit = s[n - 1] == 'k' || s[n - 1] == 'K' ? 1024 : 1024 * 1024;
        n--;
    }
    if (n >= sizeof digits) {
        set_err(err, errlen, "too large");
        return -1;
    }
    memcpy(digits, s, n);
    digits[n] = '\0';
    if (parse_uint(digits, 0, max / unit, &v, err, errlen) < 0)
        return -1;
    if (v * unit < min) {
        set_err(err, errlen, "too small");
        return -1;
    }
    *out = v * unit;
    return 0;
}

long unescape(const char *src, char *dst, char *err, size_t errlen)
{
    char *out = dst;

    for (const char *p = src; *p; p++) {
        if (*p != '\\') {
            *out++ = *p;
            continue;
        }
        switch (*++p) {
        case 'n': *out++ = '\n'; break;
        case 'r': *out++ = '\r'; break;
        case 't': *out++ = '\t'; break;
        case '\\': *out++ = '\\'; break;
        case '\0':
            set_err(err, errlen, "trailing backslash");
            return -1;
        default:
            set_err(err, errlen, "invalid escape '\\%c'", *p);
            return -1;
        }
    }
    *out = '\0';
    return out - dst;
}

void printable(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = '?';
}

static void *oom(size_t n)
{
    char msg[80];
    int len = snprintf(msg, sizeof msg, "kodama: out of memory (%zu bytes)\n", n);

    /* Nothing sensible is left to do; write(2) needs no memory. */
    if (write(STDERR_FILENO, msg, (size_t)len) < 0)
        _exit(1);
    _exit(1);
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    return p ? p : oom(n);
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    return p ? p : oom(n * size);
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    return q ? q : oom(n);
}

char *xstrdup(const char *s)
{
    char *p = strdup(s);
    return p ? p : oom(strlen(s) + 1);
}

int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int epoll_wait_ns(int epfd, struct epoll_event *events, int max, int64_t timeout_ns)
{
    static atomic_int no_pwait2;

    if (timeout_ns >= 0 && !atomic_load_explicit(&no_pwait2, memory_order_relaxed)) {
        struct timespec ts = { .tv_sec = timeout_ns / 1000000000,
                               .tv_nsec = timeout_ns % 1000000000 };
        int n = epoll_pwait2(epfd, events, max, &ts, NULL);

        if (n >= 0 || errno != ENOSYS)
            return n;
        atomic_store_explicit(&no_pwait2, 1, memory_order_relaxed);
    }
    if (timeout_ns > (int64_t)INT_MAX * 1000000)
        timeout_ns = (int64_t)INT_MAX * 1000000;
    return epoll_wait(epfd, events, max,
                      timeout_ns < 0 ? -1 : (int)((timeout_ns + 999999) / 1000000));
}

long open_fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    long n = 0;

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.' && atoi(e->d_name) != dirfd(d))
            n++;
    closedir(d);
    return n;
}
