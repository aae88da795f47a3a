/* metrics.c — the HTTP side of --metrics (see metrics.h); the text is made by
 * metrics_text.c from a snapshot taken here.
 *
 * One request per connection (Connection: close): read the head (at most
 * METRICS_HEAD_MAX bytes, or 431), answer from memory, shut down our side, and
 * read what the client still sends until it closes, so that closing never resets
 * a response it has not read yet. A connection lives METRICS_TIMEOUT_MS at most;
 * beyond METRICS_CONNS_MAX the listening socket is left alone until one closes, and
 * further clients wait in its backlog. */
#include "serve/metrics.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/cli.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "serve/metrics_text.h"
#include "lib/net.h"
#include "serve/core/worker.h"
#include "lib/util.h"

#define METRICS_CONNS_MAX 8
#define METRICS_HEAD_MAX 8192
#define METRICS_TIMEOUT_MS 5000
#define ACCEPT_RETRY_MS 100

enum mconn_state { MC_FREE, MC_READ, MC_WRITE, MC_DRAIN };

struct mconn {
    struct watch w;
    struct metrics *m;
    enum mconn_state state;
    uint64_t timer;
    size_t head_len;
    char *out;                      /* the whole response */
    size_t out_len, out_off;
    char head[METRICS_HEAD_MAX];
};

struct metrics {
    const struct worker_set *ws;
    struct loop *loop;
    pthread_t thread;
    struct watch listen;
    struct watch wake;              /* an eventfd: stop */
    size_t nconns;
    int paused;                     /* out of descriptors: not accepting for now */
    struct log_limit accept_log;    /* accept errors: a line a second at most */
    int accept_err;                 /* the last one, for the tail's line */
    int flush_armed;
    double start_time;              /* of the process, seconds since the epoch */
    struct mconn conns[METRICS_CONNS_MAX];
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

        if (made_up)
            *made_up = '\0';   /* the SPEC is ours, not the user's: name only ADDR */
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
        snprintf(err, errlen, "cannot listen on metrics tcp %s: %s", sp->host,
                 rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
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

static const char *find_head_end(const char *buf, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (buf[i] == '\n' && buf[i + 1] == '\n')
            return buf + i + 2;
        if (i + 3 < len && memcmp(buf + i, "\r\n\r\n", 4) == 0)
            return buf + i + 4;
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

    for (size_t i = 0; i < n; i++) {
        const struct listener *l = worker_set_totals(m->ws, i, &ls[i].t);

        ls[i].service = l->svc->name;
        ls[i].proto = listener_kind_name(l->kind);
        ls[i].address = l->addr;
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

static const char *status_text(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 431: return "Request Header Fields Too Large";
    default: return "Internal Server Error";
    }
}

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
    char *body = NULL, *out = NULL, head[256];
    size_t blen = 0;
    int hlen;

    if (status == 200 && (body = exposition(m, &blen)) == NULL)
        status = 500;
    if (status != 200) {
        body = xstrdup(status_body(status));
        blen = strlen(body);
    }
    hlen = snprintf(head, sizeof head,
                    "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                    "Connection: close\r\n\r\n", status, status_text(status),
                    status == 200 ? METRICS_CONTENT_TYPE : "text/plain; charset=utf-8", blen,
                    status == 405 ? "Allow: GET, HEAD\r\n" : "");
    if (head_only)
        blen = 0;
    out = xmalloc((size_t)hlen + blen);
    memcpy(out, head, (size_t)hlen);
    if (blen)
        memcpy(out + hlen, body, blen);
    free(body);
    *len = (size_t)hlen + blen;
    return out;
}

/* ------------------------------------------------------------------ connections */

static void mconn_close(struct mconn *c)
{
    struct metrics *m = c->m;

    loop_unwatch(m->loop, &c->w);
    close(c->w.fd);
    c->w.fd = -1;
    loop_timer_del(m->loop, c->timer);
    free(c->out);
    c->out = NULL;
    c->state = MC_FREE;
    if (m->nconns-- == METRICS_CONNS_MAX && !m->paused &&
        loop_watch(m->loop, &m->listen, LOOP_READ) < 0)
        log_msg("cannot watch metrics tcp: %s", strerror(errno));
}

static long mconn_timeout(struct loop *loop, void *data)
{
    struct mconn *c = data;

    (void)loop;
    c->timer = 0;
    mconn_close(c);
    return LOOP_TIMER_DONE;
}

/* All sent: say goodbye, then wait for the client's. */
static void mconn_drain(struct mconn *c)
{
    if (shutdown(c->w.fd, SHUT_WR) < 0 ||
        loop_watch(c->m->loop, &c->w, LOOP_READ) < 0) {
        mconn_close(c);
        return;
    }
    c->state = MC_DRAIN;
}

static void mconn_write(struct mconn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->w.fd, c->out + c->out_off, c->out_len - c->out_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            if (loop_watch(c->m->loop, &c->w, LOOP_WRITE) < 0)
                mconn_close(c);
            return;
        }
        if (n <= 0) {
            mconn_close(c);     /* the client went away: nothing to tell */
            return;
        }
        c->out_off += (size_t)n;
    }
    mconn_drain(c);
}

static void mconn_answer(struct mconn *c, int status, int head_only)
{
    c->out = response(c->m, status, head_only, &c->out_len);
    c->out_off = 0;
    c->state = MC_WRITE;
    mconn_write(c);
}

static void mconn_read(struct mconn *c)
{
    for (;;) {
        size_t room = sizeof c->head - c->head_len;
        ssize_t n = recv(c->w.fd, c->head + c->head_len, room, 0);
        const char *end;
        int head_only, status;

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            mconn_close(c);
            return;
        }
        c->head_len += (size_t)n;
        end = find_head_end(c->head, c->head_len);
        if (end) {
            status = metrics_route(c->head, (size_t)(end - c->head), &head_only);
            mconn_answer(c, status, head_only);
            return;
        }
        if (c->head_len == sizeof c->head) {
            mconn_answer(c, 431, 0);
            return;
        }
    }
}

/* Whatever the client sends after its request is read and thrown away. */
static void mconn_discard(struct mconn *c)
{
    char buf[4096];

    for (;;) {
        ssize_t n = recv(c->w.fd, buf, sizeof buf, 0);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            mconn_close(c);
            return;
        }
    }
}

static void mconn_ready(struct loop *loop, struct watch *w, unsigned events)
{
    struct mconn *c = container_of(w, struct mconn, w);

    (void)loop;
    switch (c->state) {
    case MC_READ: mconn_read(c); break;
    case MC_WRITE: if (events & LOOP_WRITE) mconn_write(c); break;
    case MC_DRAIN: mconn_discard(c); break;
    case MC_FREE: break;
    }
}

static struct mconn *mconn_slot(struct metrics *m)
{
    for (size_t i = 0; i < METRICS_CONNS_MAX; i++)
        if (m->conns[i].state == MC_FREE)
            return &m->conns[i];
    return NULL;
}

static void mconn_open(struct metrics *m, int fd)
{
    struct mconn *c = mconn_slot(m);

    if (c == NULL) {
        close(fd);      /* not reached: the listener is not watched while all are taken */
        return;
    }
    watch_init(&c->w, fd, mconn_ready);
    c->m = m;
    c->head_len = 0;
    c->out = NULL;
    c->state = MC_READ;
    c->timer = loop_timer_add(m->loop, METRICS_TIMEOUT_MS, mconn_timeout, c);
    if (++m->nconns == METRICS_CONNS_MAX)
        loop_watch(m->loop, &m->listen, 0);     /* the rest wait in the backlog */
    if (loop_watch(m->loop, &c->w, LOOP_READ) < 0)
        mconn_close(c);
}

static long flush_accept_log(struct loop *loop, void *data)
{
    struct metrics *m = data;
    unsigned long n;

    (void)loop;
    if (log_limit_flush(&m->accept_log, &n, 0))
        log_msg("cannot accept on metrics tcp: %s (%lu more since the last report)",
                strerror(m->accept_err), n);
    if (log_limit_pending(&m->accept_log))
        return LOG_LIMIT_MS;
    m->flush_armed = 0;
    return LOOP_TIMER_DONE;
}

/* A line a second at most, and the count of the rest told a second later. */
static void log_accept_error(struct metrics *m, int err)
{
    unsigned long skipped;

    m->accept_err = err;
    if (log_limit_claim(&m->accept_log, &skipped)) {
        if (skipped)
            log_msg("cannot accept on metrics tcp: %s (%lu more since the last report)",
                    strerror(err), skipped);
        else
            log_msg("cannot accept on metrics tcp: %s", strerror(err));
    } else if (!m->flush_armed) {
        m->flush_armed = 1;
        loop_timer_add(m->loop, LOG_LIMIT_MS, flush_accept_log, m);
    }
}

static long accept_retry(struct loop *loop, void *data)
{
    struct metrics *m = data;

    m->paused = 0;
    if (m->nconns < METRICS_CONNS_MAX && loop_watch(loop, &m->listen, LOOP_READ) < 0)
        log_msg("cannot watch metrics tcp: %s", strerror(errno));
    return LOOP_TIMER_DONE;
}

/* As a worker's listeners do: out of descriptors (or memory), the listening socket
 * is left alone for a while instead of waking the loop at once, level-triggered,
 * for ever; the waiting clients stay in its backlog. */
static void pause_accepting(struct metrics *m)
{
    m->paused = 1;
    loop_watch(m->loop, &m->listen, 0);
    loop_timer_add(m->loop, ACCEPT_RETRY_MS, accept_retry, m);
}

static void accept_ready(struct loop *loop, struct watch *w, unsigned events)
{
    struct metrics *m = container_of(w, struct metrics, listen);

    (void)loop;
    (void)events;
    while (m->nconns < METRICS_CONNS_MAX) {
        struct sockaddr_storage peer;
        socklen_t len;
        int fd = net_accept(w->fd, &peer, &len);

        if (fd >= 0) {
            mconn_open(m, fd);
            continue;
        }
        switch (errno) {
        case EAGAIN: case ECONNABORTED: case EPROTO: case EPERM: case EINTR:
            return;     /* that client is gone or refused; the next may be fine */
        default:
            /* Out of descriptors or memory, or anything else that would fail again
             * at once: pause. */
            log_accept_error(m, errno);
            pause_accepting(m);
            return;
        }
    }
}

/* ------------------------------------------------------------------ the thread */

static void wake_ready(struct loop *loop, struct watch *w, unsigned events)
{
    (void)w;
    (void)events;
    loop_stop(loop);
}

static void *metrics_main(void *arg)
{
    struct metrics *m = arg;

    if (loop_run(m->loop) < 0)
        log_msg("cannot serve metrics any longer: %s", strerror(errno));
    return NULL;
}

static void metrics_free(struct metrics *m)
{
    for (size_t i = 0; i < METRICS_CONNS_MAX; i++)
        if (m->conns[i].state != MC_FREE)
            mconn_close(&m->conns[i]);
    if (m->loop)
        loop_unwatch(m->loop, &m->listen);
    if (m->wake.fd >= 0)
        close(m->wake.fd);
    loop_free(m->loop);
    free(m);
}

struct metrics *metrics_start(const struct metrics_listen *ml, const struct worker_set *ws)
{
    struct metrics *m = xcalloc(1, sizeof *m);
    int err;

    m->ws = ws;
    m->start_time = process_start_time();
    watch_init(&m->listen, ml->fd, accept_ready);
    watch_init(&m->wake, eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), wake_ready);
    m->loop = loop_new(LOOP_IO_EPOLL);
    if (m->loop == NULL || m->wake.fd < 0 || loop_watch(m->loop, &m->wake, LOOP_READ) < 0 ||
        loop_watch(m->loop, &m->listen, LOOP_READ) < 0) {
        log_msg("cannot serve metrics: %s", strerror(errno));
        metrics_free(m);
        return NULL;
    }
    err = pthread_create(&m->thread, NULL, metrics_main, m);
    if (err != 0) {
        log_msg("cannot start the metrics thread: %s", strerror(err));
        metrics_free(m);
        return NULL;
    }
    return m;
}

void metrics_stop(struct metrics *m)
{
    uint64_t one = 1;
    unsigned long n;

    if (m == NULL)
        return;
    while (write(m->wake.fd, &one, sizeof one) < 0 && errno == EINTR)
        ;
    pthread_join(m->thread, NULL);
    if (log_limit_flush(&m->accept_log, &n, 1))
        log_msg("cannot accept on metrics tcp: %s (%lu more since the last report)",
                strerror(m->accept_err), n);
    metrics_free(m);
}
