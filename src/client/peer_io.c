/* peer_io.c — see peer_io.h. The plain path is sock.c's calls as they were; the TLS
 * path turns lib/tls.h's statuses into the errno a caller of send and recv knows. */
#include "client/peer_io.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "client/sock.h"
#include "lib/trace.h"

/* errno for a TLS status (< 0); the reason is kept for peer_fail. */
static ssize_t tls_errno(struct peer *p, long rc, const char *why)
{
    switch (rc) {
    case TLS_WANT_READ:
    case TLS_WANT_WRITE:
        errno = EAGAIN;
        return -1;
    case TLS_RESET:
        errno = ECONNRESET;
        return -1;
    case TLS_CLOSED:    /* a write after the peer's close_notify */
        errno = EPIPE;
        return -1;
    default:
        p->tls_failed = 1;
        snprintf(p->tls_why, sizeof p->tls_why, "%s", why[0] ? why : "failed");
        errno = EPROTO;
        return -1;
    }
}

/* A write that met a reset may have been answered with an alert first (a server
 * that refused our certificate after a TLS 1.3 handshake, then reset): the alert
 * says why, the reset does not. */
static void read_alert(struct peer *p)
{
    char buf[256], why[256] = "";
    long rc = tls_read(p->tls, buf, sizeof buf, why, sizeof why);

    if (TRACE_ON)
        tls_trace_op(p->tls, &p->wire, TLS_TRACE_READ, sizeof buf, rc, why);
    if (rc == TLS_FAILED) {
        p->tls_failed = 1;
        snprintf(p->tls_why, sizeof p->tls_why, "%s", why);
    }
}

/* The end of a connection reset as it was made (struct peer's reset_pending): the
 * socket shows an EOF to a read and EPIPE to a send, the reset was what happened. */
static ssize_t pending_reset(const struct peer *p, ssize_t n)
{
    if (p->reset_pending && (n == 0 || (n < 0 && errno == EPIPE))) {
        errno = ECONNRESET;
        return -1;
    }
    return n;
}

ssize_t peer_send(struct peer *p, const void *buf, size_t len)
{
    char why[256] = "";
    long n;

    if (p->tls == NULL)
        return pending_reset(p, sk_send(p->fd, buf, len));
    n = tls_write(p->tls, buf, len, why, sizeof why);
    if (TRACE_ON)
        tls_trace_op(p->tls, &p->wire, TLS_TRACE_WRITE, len, n, why);
    if (n > 0)
        return n;
    if (n == TLS_RESET)
        read_alert(p);
    if (p->tls_failed) {
        errno = EPROTO;
        return -1;
    }
    return tls_errno(p, n, why);
}

ssize_t peer_recv(struct peer *p, void *buf, size_t cap)
{
    char why[256] = "";
    long n;

    if (p->tls == NULL)
        return pending_reset(p, sk_recv(p->fd, buf, cap));
    n = tls_read(p->tls, buf, cap, why, sizeof why);
    if (TRACE_ON)
        tls_trace_op(p->tls, &p->wire, TLS_TRACE_READ, cap, n, why);
    p->tls_read_wants_write = n == TLS_WANT_WRITE;
    if (n > 0)
        return n;
    if (n == TLS_CLOSED)
        return 0;
    return tls_errno(p, n, why);
}

static int first_piece(const struct iovec *iov, int cnt)
{
    int i = 0;

    while (i < cnt - 1 && iov[i].iov_len == 0)
        i++;
    return i;
}

ssize_t peer_sendv(struct peer *p, const struct iovec *iov, int cnt)
{
    int i;

    if (p->tls == NULL)
        return pending_reset(p, sk_sendv(p->fd, iov, cnt));
    i = first_piece(iov, cnt);
    return peer_send(p, iov[i].iov_base, iov[i].iov_len);
}

ssize_t peer_recvv(struct peer *p, const struct iovec *iov, int cnt)
{
    int i;

    if (p->tls == NULL)
        return pending_reset(p, sk_recvv(p->fd, iov, cnt));
    i = first_piece(iov, cnt);
    return peer_recv(p, iov[i].iov_base, iov[i].iov_len);
}

int peer_shutdown_wr(struct peer *p)
{
    if (p->tls && !p->tls_shut) {
        int rc = tls_shutdown(p->tls);

        if (TRACE_ON)
            tls_trace_op(p->tls, &p->wire, TLS_TRACE_SHUTDOWN, 0, rc, NULL);
        if (rc == TLS_WANT_WRITE || rc == TLS_WANT_READ) {
            errno = EAGAIN;
            return -1;
        }
        p->tls_shut = 1;
    }
    return sk_shutdown_wr(p->fd);
}

void peer_close(struct peer *p)
{
    if (p->tls) {
        if (!p->tls_shut && !p->tls_failed) {
            int rc = tls_shutdown(p->tls);     /* once, as far as the socket takes it */

            if (TRACE_ON)
                tls_trace_op(p->tls, &p->wire, TLS_TRACE_SHUTDOWN, 0, rc, NULL);
        }
        tls_conn_free(p->tls);
        p->tls = NULL;
    }
    if (p->fd >= 0)
        sk_close(p->fd);
    p->fd = -1;
}

short peer_recv_events(const struct peer *p)
{
    if (p->tls && tls_pending(p->tls) > 0)
        return 0;
    return (short)(POLLIN | (p->tls && p->tls_read_wants_write ? POLLOUT : 0));
}

int peer_fail(struct report *r, int quiet, const struct peer *p, int err, const char *what)
{
    if (p->tls_failed)
        return report_fail(r, quiet, V_TLS, "%s: tls: %s", p->addr, p->tls_why);
    return report_fail(r, quiet, verdict_of_errno(err), "%s %s failed: %s", what, p->name,
                       strerror(err));
}
