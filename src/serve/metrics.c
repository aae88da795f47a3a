/* metrics.c — the HTTP side of --metrics (see metrics.h); the text is made by
 * metrics_text.c from a snapshot taken here, and served by httpd.c (its thread,
 * bounded connections and timeouts): read the head (at most METRICS_HEAD_MAX
 * bytes, or 431), answer from memory. */
#include "serve/metrics.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/cli.h"
#include "lib/log.h"
#include "lib/net.h"
#include "lib/util.h"
#include "serve/core/worker.h"
#include "serve/httpd.h"
#include "serve/metrics_text.h"

#define METRICS_HEAD_MAX 8192
#define SETTLE_MAX_US 50000        /* how long a scrape waits for the workers (worker_set_settle) */

struct metrics {
    const struct worker_set *ws;
    struct httpd *httpd;
    double start_time;              /* of the process, seconds since the epoch */
    char what[16 + ADDR_TEXT_MAX];  /* "metrics tcp 127.0.0.1:9100": for log lines */
};

/* ------------------------------------------------------------------ binding */

int metrics_addr_parse(const char *text, struct spec *sp, char *err, size_t errlen)
{
    char spec[SPEC_HOST_MAX + 64];

    if (strlen(text) > SPEC_HOST_MAX + 8 || strpbrk(text, "/,+\\") != NULL ||
        strncmp(text, "unix:", 5) == 0) {
        snprintf(err, errlen, "not PORT, HOST:PORT or [IPV6]:PORT");
        return -1;
    }
    snprintf(spec, sizeof spec, "metrics@%s/tcp", text);
    if (spec_parse(spec, sp, err, errlen) < 0) {
        char *made_up = strstr(err, " in 'metrics@");

        if (made_up) {
            /* the SPEC is ours, not the user's: name only ADDR, and drop the ',' that
             * led to the quote ("... as in [::1]:7007, in '...'") */
            *made_up = '\0';
            if (made_up > err && made_up[-1] == ',')
                made_up[-1] = '\0';
        }
        return -1;
    }
    if (sp->port_last != sp->port) {
        snprintf(err, errlen, "one port, not a range");
        return -1;
    }
    return 0;
}

static int bind_one(const struct sockaddr *sa, socklen_t len, int v6only,
                    struct metrics_listen *ml, char *err, size_t errlen)
{
    char why[NET_ERR_LEN], text[ADDR_TEXT_MAX];
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof ss;
    int fd = net_tcp_listen(sa, len, v6only, 0, why, sizeof why);

    if (fd < 0) {
        int saved = errno;

        snprintf(err, errlen, "cannot listen on metrics tcp %s: %s",
                 addr_format(sa, len, text, sizeof text), why);
        errno = saved;
        return -1;
    }
    if (getsockname(fd, (struct sockaddr *)&ss, &sslen) < 0) {
        snprintf(err, errlen, "cannot listen on metrics tcp %s: getsockname: %s",
                 addr_format(sa, len, text, sizeof text), strerror(errno));
        close(fd);
        return -1;
    }
    ml->fd = fd;
    addr_format((struct sockaddr *)&ss, sslen, ml->addr, sizeof ml->addr);
    return 0;
}

/* PORT alone: as a SPEC's, one dual-stack socket on [::], or 0.0.0.0 without IPv6. */
static int bind_any(uint16_t port, int family, struct metrics_listen *ml, char *err,
                    size_t errlen)
{
    struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(port),
                                 .sin6_addr = IN6ADDR_ANY_INIT };
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port),
                               .sin_addr.s_addr = htonl(INADDR_ANY) };

    if (family != AF_INET) {
        if (bind_one((struct sockaddr *)&sin6, sizeof sin6, family == AF_INET6, ml, err,
                     errlen) == 0)
            return 0;
        if (family == AF_INET6 || (errno != EAFNOSUPPORT && errno != EADDRNOTAVAIL))
            return -1;
    }
    return bind_one((struct sockaddr *)&sin, sizeof sin, -1, ml, err, errlen);
}

/* HOST:PORT: the first address the name resolves to that binds. */
static int bind_host(const struct spec *sp, int family, struct metrics_listen *ml, char *err,
                     size_t errlen)
{
    struct addrinfo hints = { .ai_family = family, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_NUMERICSERV | AI_PASSIVE };
    struct addrinfo *res, *ai;
    char port[8];
    int rc;

    snprintf(port, sizeof port, "%u", sp->port);
    rc = getaddrinfo(sp->host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "cannot listen on metrics tcp %s:%s: %s", sp->host, port,
                 rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));   /* as a listener's */
        return -1;
    }
    rc = -1;
    for (ai = res; ai && rc < 0; ai = ai->ai_next)
        rc = bind_one(ai->ai_addr, ai->ai_addrlen, ai->ai_family == AF_INET6 ? 1 : -1, ml, err,
                      errlen);
    freeaddrinfo(res);
    return rc;
}

int metrics_listen(const struct spec *sp, int family, struct metrics_listen *ml, char *err,
                   size_t errlen)
{
    ml->fd = -1;
    if (sp->kind == ADDR_ANY)
        return bind_any(sp->port, family, ml, err, errlen);
    return bind_host(sp, family, ml, err, errlen);
}

/* ------------------------------------------------------------------ requests */

/* Just past the blank line that ends the head, or NULL if not yet. A line ends in
 * CRLF or a bare LF, so the last header's end and the blank line are LF LF, LF CRLF
 * (CRLF CRLF among them). */
static const char *find_head_end(const char *buf, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (buf[i] != '\n')
            continue;
        if (buf[i + 1] == '\n')
            return buf + i + 2;
        if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
            return buf + i + 3;
    }
    return NULL;
}

/* RFC 9110's token, the characters a method may have. */
static size_t token_len(const char *s, size_t len)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";
    size_t n = 0;

    while (n < len && s[n] != '\0' &&
           ((s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= 'a' && s[n] <= 'z') ||
            (s[n] >= '0' && s[n] <= '9') || strchr(extra, s[n]) != NULL))
        n++;
    return n;
}

int metrics_route(const char *head, size_t len, int *head_only)
{
    const char *eol = memchr(head, '\n', len), *p = head, *target, *version;
    size_t mlen, tlen, line, vlen;

    *head_only = 0;
    if (eol == NULL)
        return 400;
    line = (size_t)(eol - head);
    if (line > 0 && head[line - 1] == '\r')
        line--;
    mlen = token_len(p, line);
    if (mlen == 0 || mlen >= line || p[mlen] != ' ')
        return 400;
    target = p + mlen + 1;
    tlen = 0;
    while (mlen + 1 + tlen < line && target[tlen] > ' ' && target[tlen] != 0x7f)
        tlen++;
    version = target + tlen + 1;
    if (tlen == 0 || mlen + 1 + tlen >= line || target[tlen] != ' ' || target[0] != '/')
        return 400;
    vlen = line - mlen - tlen - 2;
    if (vlen != 8 || (memcmp(version, "HTTP/1.1", 8) != 0 && memcmp(version, "HTTP/1.0", 8) != 0))
        return 400;
    if (!((tlen == 8 || (tlen > 8 && target[8] == '?')) && memcmp(target, "/metrics", 8) == 0))
        return 404;
    if (mlen == 4 && memcmp(p, "HEAD", 4) == 0) {
        *head_only = 1;
        return 200;
    }
    if (mlen == 3 && memcmp(p, "GET", 3) == 0)
        return 200;
    return 405;
}

/* ------------------------------------------------------------------ snapshot */

static int64_t max_fds(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
        return -1;
    return (int64_t)rl.rlim_cur;
}

static int64_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "re");
    unsigned long long size, resident;
    int n;

    if (f == NULL)
        return -1;
    n = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    return n == 2 ? (int64_t)(resident * (unsigned long long)sysconf(_SC_PAGESIZE)) : -1;
}

/* From the clock ticks since boot in /proc/self/stat (field 22, after the command
 * name, which may hold spaces and parentheses) and the boot time in /proc/stat. */
static double process_start_time(void)
{
    char buf[1024], *p;
    unsigned long long ticks = 0, btime = 0;
    long hz = sysconf(_SC_CLK_TCK);
    FILE *f = fopen("/proc/self/stat", "re");
    size_t n;

    if (f == NULL)
        return -1;
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    p = strrchr(buf, ')');
    if (p == NULL || hz <= 0 ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d "
                      "%*d %*d %llu", &ticks) != 1)
        return -1;
    f = fopen("/proc/stat", "re");
    if (f == NULL)
        return -1;
    while (fgets(buf, sizeof buf, f))
        if (sscanf(buf, "btime %llu", &btime) == 1)
            break;
    fclose(f);
    return btime ? (double)btime + (double)ticks / (double)hz : -1;
}

/* The exposition text, in a malloc'd buffer (*len bytes); NULL if out of memory. */
static char *exposition(const struct metrics *m, size_t *len)
{
    size_t n = m->ws->nlisteners;
    struct metrics_listener *ls = xcalloc(n ? n : 1, sizeof *ls);
    struct metrics_snapshot s = { .listeners = ls, .n = n };
    char *text = NULL;
    FILE *out;
    int rc;

    /* A quiet io_uring worker may not have counted its last sends yet; a scrape
     * is rare enough to wait a moment for them. */
    worker_set_settle(m->ws, SETTLE_MAX_US);
    for (size_t i = 0; i < n; i++) {
        const struct listener *l = worker_set_totals(m->ws, i, &ls[i].t);

        ls[i].service = l->svc->name;
        ls[i].proto = listener_kind_name(l->kind);
        ls[i].address = l->addr;
        ls[i].tls = l->tls;
        ls[i].name = l->slot ? l->slot->name : "";
    }
    s.proc = (struct metrics_process){ .version = KODAMA_VERSION, .open_fds = open_fd_count(),
                                       .max_fds = max_fds(), .rss_bytes = rss_bytes(),
                                       .start_time = m->start_time };
    out = open_memstream(&text, len);
    if (out == NULL) {
        free(ls);
        return NULL;
    }
    rc = metrics_write(out, &s);
    if (fclose(out) != 0 || rc < 0) {
        free(text);
        text = NULL;
    }
    free(ls);
    return text;
}

/* ------------------------------------------------------------------ responses */

static const char *status_body(int status)
{
    switch (status) {
    case 404: return "Not Found: kodama serves only /metrics here.\n";
    case 405: return "Method Not Allowed: GET or HEAD /metrics.\n";
    case 431: return "Request Header Fields Too Large: at most 8 KiB.\n";
    case 400: return "Bad Request: expected GET /metrics HTTP/1.1.\n";
    default: return "Internal Server Error.\n";
    }
}

/* The whole response, head and body, in one malloc'd buffer. */
static char *response(struct metrics *m, int status, int head_only, size_t *len)
{
    char *body = NULL, *out;
    size_t blen = 0;

    if (status == 200 && (body = exposition(m, &blen)) == NULL)
        status = 500;
    if (status != 200) {
        body = xstrdup(status_body(status));
        blen = strlen(body);
    }
    out = httpd_response(status, status == 200 ? METRICS_CONTENT_TYPE : "text/plain; charset=utf-8",
                         status == 405 ? "Allow: GET, HEAD\r\n" : "", body, blen, head_only, len);
    free(body);
    return out;
}

/* httpd's question: is the head in (then answer it)? */
static int metrics_respond(void *data, const char *req, size_t len, int full, char **out,
                           size_t *out_len)
{
    const char *end = find_head_end(req, len);
    int head_only = 0, status;

    if (end == NULL && !full)
        return 0;
    status = end ? metrics_route(req, (size_t)(end - req), &head_only) : 431;
    *out = response(data, status, head_only, out_len);
    return 1;
}

/* ------------------------------------------------------------------ the thread */

struct metrics *metrics_start(const struct metrics_listen *ml, const struct worker_set *ws)
{
    struct metrics *m = xcalloc(1, sizeof *m);

    m->ws = ws;
    m->start_time = process_start_time();
    /* Its log lines name the address, as a listener's do. */
    snprintf(m->what, sizeof m->what, "metrics tcp %s", ml->addr);
    m->httpd = httpd_start(ml->fd, m->what, METRICS_HEAD_MAX, metrics_respond, m);
    if (m->httpd == NULL) {
        free(m);
        return NULL;
    }
    return m;
}

void metrics_stop(struct metrics *m)
{
    if (m == NULL)
        return;
    httpd_stop(m->httpd);
    free(m);
}
