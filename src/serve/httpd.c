/* httpd.c — the small HTTP/1.1 responder of --metrics and --control (see httpd.h). */
#include "serve/httpd.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/list.h"
#include "lib/log.h"
#include "lib/loop.h"
#include "lib/net.h"
#include "lib/util.h"

#define ACCEPT_RETRY_MS 100

enum hconn_state { HC_FREE, HC_READ, HC_WRITE, HC_DRAIN };

struct hconn {
    struct watch w;
    struct httpd *h;
    enum hconn_state state;
    uint64_t timer;
    size_t in_len;
    char *in;                       /* request_max bytes, while reading */
    char *out;                      /* the whole response */
    size_t out_len, out_off;
};

struct httpd {
    const char *what;               /* "metrics tcp 127.0.0.1:9100": for log lines */
    size_t request_max;
    httpd_respond_fn *respond;
    void *data;
    struct loop *loop;
    pthread_t thread;
    struct watch listen;
    struct watch wake;              /* an eventfd: stop */
    size_t nconns;
    int paused;                     /* out of descriptors: not accepting for now */
    struct log_limit accept_log;    /* accept errors: a line a second at most */
    int accept_err;                 /* the last one, for the tail's line */
    int flush_armed;
    struct hconn conns[HTTPD_CONNS_MAX];
};

/* ------------------------------------------------------------------ responses */

const char *httpd_status_text(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 431: return "Request Header Fields Too Large";
    case 501: return "Not Implemented";
    case 505: return "HTTP Version Not Supported";
    default: return "Internal Server Error";
    }
}

char *httpd_response(int status, const char *content_type, const char *extra_head,
                     const char *body, size_t body_len, int head_only, size_t *len)
{
    char head[512], *out;
    int hlen = snprintf(head, sizeof head,
                        "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                        "Connection: close\r\n\r\n", status, httpd_status_text(status),
                        content_type, body_len, extra_head);

    if (hlen < 0 || (size_t)hlen >= sizeof head)
        hlen = 0;   /* not reached: the callers' heads are short */
    if (head_only)
        body_len = 0;
    out = xmalloc((size_t)hlen + body_len + 1);
    memcpy(out, head, (size_t)hlen);
    if (body_len)
        memcpy(out + hlen, body, body_len);
    *len = (size_t)hlen + body_len;
    return out;
}

/* ------------------------------------------------------------------ connections */

static void hconn_close(struct hconn *c)
{
    struct httpd *h = c->h;

    loop_unwatch(h->loop, &c->w);
    close(c->w.fd);
    c->w.fd = -1;
    loop_timer_del(h->loop, c->timer);
    free(c->in);
    free(c->out);
    c->in = c->out = NULL;
    c->state = HC_FREE;
    if (h->nconns-- == HTTPD_CONNS_MAX && !h->paused &&
        loop_watch(h->loop, &h->listen, LOOP_READ) < 0)
        log_msg("cannot watch %s: %s", h->what, strerror(errno));
}

static long hconn_timeout(struct loop *loop, void *data)
{
    struct hconn *c = data;

    (void)loop;
    c->timer = 0;
    hconn_close(c);
    return LOOP_TIMER_DONE;
}

/* All sent: say goodbye, then wait for the client's. */
static void hconn_drain(struct hconn *c)
{
    if (shutdown(c->w.fd, SHUT_WR) < 0 || loop_watch(c->h->loop, &c->w, LOOP_READ) < 0) {
        hconn_close(c);
        return;
    }
    c->state = HC_DRAIN;
}

static void hconn_write(struct hconn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->w.fd, c->out + c->out_off, c->out_len - c->out_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            if (loop_watch(c->h->loop, &c->w, LOOP_WRITE) < 0)
                hconn_close(c);
            return;
        }
        if (n <= 0) {
            hconn_close(c);     /* the client went away: nothing to tell */
            return;
        }
        c->out_off += (size_t)n;
    }
    hconn_drain(c);
}

/* A response to HEAD has no content, whatever its status (RFC 9110, 9.3.2): the
 * responders leave out a 200's body themselves, but an error's (404, 400, ...) was
 * sent, and a client reading HEAD's answer takes those bytes for the next one. The
 * head that httpd_response made ends at its first blank line. */
static void head_only_for_head(const char *req, size_t req_len, char *out, size_t *out_len)
{
    const char *end;

    if (req_len < 5 || memcmp(req, "HEAD ", 5) != 0)
        return;
    end = memmem(out, *out_len, "\r\n\r\n", 4);
    if (end)
        *out_len = (size_t)(end + 4 - out);
}

static void hconn_read(struct hconn *c)
{
    struct httpd *h = c->h;

    for (;;) {
        size_t room = h->request_max - c->in_len;
        ssize_t n = recv(c->w.fd, c->in + c->in_len, room, MSG_DONTWAIT);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            hconn_close(c);
            return;
        }
        c->in_len += (size_t)n;
        if (h->respond(h->data, c->in, c->in_len, c->in_len == h->request_max, &c->out,
                       &c->out_len)) {
            head_only_for_head(c->in, c->in_len, c->out, &c->out_len);
            free(c->in);
            c->in = NULL;
            c->out_off = 0;
            c->state = HC_WRITE;
            hconn_write(c);
            return;
        }
    }
}

/* Whatever the client sends after its request is read and thrown away. */
static void hconn_discard(struct hconn *c)
{
    char buf[4096];

    for (;;) {
        ssize_t n = recv(c->w.fd, buf, sizeof buf, MSG_DONTWAIT);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            hconn_close(c);
            return;
        }
    }
}

static void hconn_ready(struct loop *loop, struct watch *w, unsigned events)
{
    struct hconn *c = container_of(w, struct hconn, w);

    (void)loop;
    switch (c->state) {
    case HC_READ: hconn_read(c); break;
    case HC_WRITE: if (events & LOOP_WRITE) hconn_write(c); break;
    case HC_DRAIN: hconn_discard(c); break;
    case HC_FREE: break;
    }
}

static struct hconn *hconn_slot(struct httpd *h)
{
    for (size_t i = 0; i < HTTPD_CONNS_MAX; i++)
        if (h->conns[i].state == HC_FREE)
            return &h->conns[i];
    return NULL;
}

static void hconn_open(struct httpd *h, int fd)
{
    struct hconn *c = hconn_slot(h);

    if (c == NULL) {
        close(fd);      /* not reached: the listener is not watched while all are taken */
        return;
    }
    watch_init(&c->w, fd, hconn_ready);
    c->h = h;
    c->in_len = 0;
    c->in = xmalloc(h->request_max);
    c->out = NULL;
    c->state = HC_READ;
    c->timer = loop_timer_add(h->loop, HTTPD_TIMEOUT_MS, hconn_timeout, c);
    if (++h->nconns == HTTPD_CONNS_MAX)
        loop_watch(h->loop, &h->listen, 0);     /* the rest wait in the backlog */
    if (loop_watch(h->loop, &c->w, LOOP_READ) < 0)
        hconn_close(c);
}

/* ------------------------------------------------------------------ accepting */

static long flush_accept_log(struct loop *loop, void *data)
{
    struct httpd *h = data;
    unsigned long n;

    (void)loop;
    if (log_limit_flush(&h->accept_log, &n, 0))
        log_msg("cannot accept on %s: %s (%lu more since the last report)", h->what,
                strerror(h->accept_err), n);
    if (log_limit_pending(&h->accept_log))
        return LOG_LIMIT_MS;
    h->flush_armed = 0;
    return LOOP_TIMER_DONE;
}

/* A line a second at most, and the count of the rest told a second later. */
static void log_accept_error(struct httpd *h, int err)
{
    unsigned long skipped;

    h->accept_err = err;
    if (log_limit_claim(&h->accept_log, &skipped)) {
        if (skipped)
            log_msg("cannot accept on %s: %s (%lu more since the last report)", h->what,
                    strerror(err), skipped);
        else
            log_msg("cannot accept on %s: %s", h->what, strerror(err));
    } else if (!h->flush_armed) {
        h->flush_armed = 1;
        loop_timer_add(h->loop, LOG_LIMIT_MS, flush_accept_log, h);
    }
}

static long accept_retry(struct loop *loop, void *data)
{
    struct httpd *h = data;

    h->paused = 0;
    if (h->nconns < HTTPD_CONNS_MAX && loop_watch(loop, &h->listen, LOOP_READ) < 0)
        log_msg("cannot watch %s: %s", h->what, strerror(errno));
    return LOOP_TIMER_DONE;
}

/* As a worker's listeners do: out of descriptors (or memory), the listening socket
 * is left alone for a while instead of waking the loop at once, level-triggered,
 * for ever; the waiting clients stay in its backlog. */
static void pause_accepting(struct httpd *h)
{
    h->paused = 1;
    loop_watch(h->loop, &h->listen, 0);
    loop_timer_add(h->loop, ACCEPT_RETRY_MS, accept_retry, h);
}

static void accept_ready(struct loop *loop, struct watch *w, unsigned events)
{
    struct httpd *h = container_of(w, struct httpd, listen);

    (void)loop;
    (void)events;
    while (h->nconns < HTTPD_CONNS_MAX) {
        struct sockaddr_storage peer;
        socklen_t len;
        int fd = net_accept(w->fd, &peer, &len);

        if (fd >= 0) {
            hconn_open(h, fd);
            continue;
        }
        switch (errno) {
        case EAGAIN: case ECONNABORTED: case EPROTO: case EPERM: case EINTR:
            return;     /* that client is gone or refused; the next may be fine */
        default:
            /* Out of descriptors or memory, or anything else that would fail again
             * at once: pause. */
            log_accept_error(h, errno);
            pause_accepting(h);
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

static void *httpd_main(void *arg)
{
    struct httpd *h = arg;

    if (loop_run(h->loop) < 0)
        log_msg("cannot serve %s any longer: %s", h->what, strerror(errno));
    return NULL;
}

static void httpd_free(struct httpd *h)
{
    for (size_t i = 0; i < HTTPD_CONNS_MAX; i++)
        if (h->conns[i].state != HC_FREE)
            hconn_close(&h->conns[i]);
    if (h->loop)
        loop_unwatch(h->loop, &h->listen);
    if (h->wake.fd >= 0)
        close(h->wake.fd);
    loop_free(h->loop);
    free(h);
}

struct httpd *httpd_start(int fd, const char *what, size_t request_max,
                          httpd_respond_fn *respond, void *data)
{
    struct httpd *h = xcalloc(1, sizeof *h);
    int err;

    h->what = what;
    h->request_max = request_max;
    h->respond = respond;
    h->data = data;
    watch_init(&h->listen, fd, accept_ready);
    watch_init(&h->wake, eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), wake_ready);
    h->loop = loop_new(LOOP_IO_EPOLL);
    if (h->loop == NULL || h->wake.fd < 0 || loop_watch(h->loop, &h->wake, LOOP_READ) < 0 ||
        loop_watch(h->loop, &h->listen, LOOP_READ) < 0) {
        log_msg("cannot serve %s: %s", what, strerror(errno));
        httpd_free(h);
        return NULL;
    }
    err = pthread_create(&h->thread, NULL, httpd_main, h);
    if (err != 0) {
        log_msg("cannot start the %s thread: %s", what, strerror(err));
        httpd_free(h);
        return NULL;
    }
    return h;
}

void httpd_stop(struct httpd *h)
{
    uint64_t one = 1;
    unsigned long n;

    if (h == NULL)
        return;
    while (write(h->wake.fd, &one, sizeof one) < 0 && errno == EINTR)
        ;
    pthread_join(h->thread, NULL);
    if (log_limit_flush(&h->accept_log, &n, 1))
        log_msg("cannot accept on %s: %s (%lu more since the last report)", h->what,
                strerror(h->accept_err), n);
    httpd_free(h);
}
