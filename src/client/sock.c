/* sock.c — see sock.h. Each call is made, its errno kept, and then, only with
 * --trace on, told: "recv(3, 65536) = 0  (peer closed: FIN)". */
#include "client/sock.h"

#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lib/addr.h"
#include "lib/net.h"
#include "lib/trace.h"
#include "lib/util.h"

static int sock_type(int fd)
{
    int type = 0;
    socklen_t len = sizeof type;

    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
        return 0;
    return type;
}

/* What the trace adds after a receive's result: the event behind it. */
static const char *recv_note(int fd, ssize_t n, int err)
{
    if (n == 0)
        return sock_type(fd) == SOCK_STREAM ? "peer closed: FIN" : "empty datagram";
    if (n > 0)
        return NULL;
    if (err == ECONNRESET)
        return "peer reset: RST";
    if (err == ECONNREFUSED)
        return sock_type(fd) == SOCK_DGRAM ? "ICMP port unreachable" : NULL;
    return NULL;
}

static const char *send_note(ssize_t n, size_t len, int err)
{
    if (n >= 0 && (size_t)n < len)
        return "partial send";
    if (n < 0 && err == EPIPE)
        return "peer gone";
    if (n < 0 && err == ECONNRESET)
        return "peer reset: RST";
    return NULL;
}

int sk_socket(int family, int type)
{
    int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (TRACE_ON)
        trace_call(fd, errno, NULL, "socket(%s, %s)", trace_family(family), trace_socktype(type));
    return fd;
}

int sk_bind(int fd, const struct sockaddr *sa, socklen_t len)
{
    int rc = bind(fd, sa, len);

    if (TRACE_ON) {
        int err = errno;
        char a[TRACE_ADDR_MAX];

        trace_call(rc, err, NULL, "bind(%d, %s)", fd, trace_addr(sa, len, a));
    }
    return rc;
}

int sk_listen(int fd, int backlog)
{
    int rc = listen(fd, backlog);

    if (TRACE_ON)
        trace_call(rc, errno, NULL, "listen(%d, %d)", fd, backlog);
    return rc;
}

int sk_accept(int lfd, struct sockaddr_storage *peer, socklen_t *len)
{
    int fd;

    *len = sizeof *peer;
    fd = accept4(lfd, (struct sockaddr *)peer, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (TRACE_ON) {
        int err = errno;
        char a[TRACE_ADDR_MAX], note[TRACE_ADDR_MAX + 8];

        snprintf(note, sizeof note, "from %s", fd >= 0 ? trace_addr((struct sockaddr *)peer, *len, a) : "");
        trace_call(fd, err, fd >= 0 ? note : NULL, "accept(%d)", lfd);
    }
    return fd;
}

int sk_connect(int fd, const struct sockaddr *sa, socklen_t len)
{
    int rc = connect(fd, sa, len);

    if (TRACE_ON) {
        int err = errno;
        char a[TRACE_ADDR_MAX];

        trace_call(rc, err, NULL, "connect(%d, %s)", fd, trace_addr(sa, len, a));
    }
    return rc;
}

void sk_local(int fd, char *buf, size_t len)
{
    struct sockaddr_storage ss = { 0 };
    socklen_t sl = sizeof ss;

    buf[0] = '\0';
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        addr_format((struct sockaddr *)&ss, sl, buf, len);
}

int sk_connected_to_itself(int fd)
{
    struct sockaddr_storage a = { 0 }, b = { 0 };
    socklen_t al = sizeof a, bl = sizeof b;
    char at[ADDR_TEXT_MAX], bt[ADDR_TEXT_MAX];

    if (getsockname(fd, (struct sockaddr *)&a, &al) < 0 ||
        getpeername(fd, (struct sockaddr *)&b, &bl) < 0 || a.ss_family == AF_UNIX)
        return 0;
    addr_format((struct sockaddr *)&a, al, at, sizeof at);
    addr_format((struct sockaddr *)&b, bl, bt, sizeof bt);
    return strcmp(at, bt) == 0;
}

static void trace_connected(int fd, int err, long timeout_ms)
{
    char local[ADDR_TEXT_MAX], name[16];

    if (err == 0) {
        sk_local(fd, local, sizeof local);
        trace_note("connect(%d): connected, local %s", fd, local);
    } else if (err == ETIMEDOUT) {
        trace_note("connect(%d): no answer within %ld ms", fd, timeout_ms);
    } else if (net_reset_after_handshake(err)) {
        trace_note("connect(%d): connected, then reset by the peer (SO_ERROR %s)", fd,
                   trace_errno_name(err, name, sizeof name));
    } else {
        trace_note("connect(%d): %s (SO_ERROR)", fd, trace_errno_name(err, name, sizeof name));
    }
}

int sk_connect_wait(int fd, long timeout_ms)
{
    struct pollfd pfd = { .fd = fd, .events = POLLOUT };
    int64_t deadline = now_ms() + timeout_ms;
    int soerr = 0;
    socklen_t slen = sizeof soerr;

    for (;;) {
        int64_t left = deadline - now_ms();
        int rc;

        if (timeout_ms > 0 && left <= 0) {
            soerr = ETIMEDOUT;
            break;
        }
        rc = sk_poll(&pfd, 1, timeout_ms > 0 ? (int)left : -1);
        if (rc > 0) {
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) < 0)
                soerr = errno;
            break;
        }
        if (rc < 0 && errno != EINTR) {
            soerr = errno;
            break;
        }
    }
    if (TRACE_ON)
        trace_connected(fd, soerr, timeout_ms);
    if (net_reset_after_handshake(soerr))
        return 1;
    errno = soerr;
    return soerr ? -1 : 0;
}

static size_t iov_total(const struct iovec *iov, int cnt)
{
    size_t n = 0;

    for (int i = 0; i < cnt; i++)
        n += iov[i].iov_len;
    return n;
}

ssize_t sk_send(int fd, const void *buf, size_t len)
{
    ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

    if (TRACE_ON) {
        int err = errno;

        trace_call(n, err, send_note(n, len, err), "send(%d, %zu)", fd, len);
    }
    return n;
}

ssize_t sk_sendv(int fd, const struct iovec *iov, int cnt)
{
    struct msghdr msg = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)cnt };
    ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);

    if (TRACE_ON) {
        int err = errno;
        size_t len = iov_total(iov, cnt);

        trace_call(n, err, send_note(n, len, err), "send(%d, %zu)", fd, len);
    }
    return n;
}

ssize_t sk_recv(int fd, void *buf, size_t cap)
{
    ssize_t n = recv(fd, buf, cap, 0);

    if (TRACE_ON) {
        int err = errno;

        trace_call(n, err, recv_note(fd, n, err), "recv(%d, %zu)", fd, cap);
    }
    return n;
}

ssize_t sk_recvv(int fd, const struct iovec *iov, int cnt)
{
    struct msghdr msg = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)cnt };
    ssize_t n = recvmsg(fd, &msg, 0);

    if (TRACE_ON) {
        int err = errno;

        trace_call(n, err, recv_note(fd, n, err), "recv(%d, %zu)", fd, iov_total(iov, cnt));
    }
    return n;
}

ssize_t sk_recvfrom(int fd, void *buf, size_t cap, struct sockaddr_storage *from,
                    socklen_t *len, struct sockaddr_storage *to, socklen_t *tolen)
{
    union {
        char buf[CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(sizeof(struct in_pktinfo))];
        struct cmsghdr align;
    } control;
    struct iovec iov = { .iov_base = buf, .iov_len = cap };
    struct msghdr msg = { .msg_name = from, .msg_namelen = sizeof *from, .msg_iov = &iov,
                          .msg_iovlen = 1, .msg_control = control.buf,
                          .msg_controllen = sizeof control.buf };
    ssize_t n;

    n = recvmsg(fd, &msg, 0);
    *len = msg.msg_namelen;
    *tolen = n >= 0 ? net_pktinfo_dest(&msg, 0, to) : 0;
    if (TRACE_ON) {
        int err = errno;
        char a[TRACE_ADDR_MAX], note[TRACE_ADDR_MAX + 8];

        snprintf(note, sizeof note, "from %s", n >= 0 ? trace_addr((struct sockaddr *)from, *len, a) : "");
        trace_call(n, err, n >= 0 ? note : recv_note(fd, n, err), "recvfrom(%d, %zu)", fd, cap);
    }
    return n;
}

int sk_shutdown_wr(int fd)
{
    int rc = shutdown(fd, SHUT_WR);

    if (TRACE_ON)
        trace_call(rc, errno, NULL, "shutdown(%d, SHUT_WR)", fd);
    return rc;
}

int sk_close(int fd)
{
    int rc = close(fd);

    if (TRACE_ON)
        trace_call(rc, errno, NULL, "close(%d)", fd);
    return rc;
}

static volatile sig_atomic_t stop_signal;
static int catching;
static sigset_t poll_mask;          /* the mask inside ppoll: the stop signals open */

static void on_stop(int sig)
{
    stop_signal = sig;
}

void sk_catch_stop(void)
{
    struct sigaction sa = { .sa_handler = on_stop };
    sigset_t block;

    sigemptyset(&sa.sa_mask);
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigprocmask(SIG_BLOCK, &block, &poll_mask);
    sigdelset(&poll_mask, SIGINT);
    sigdelset(&poll_mask, SIGTERM);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    catching = 1;
}

int sk_stop_requested(void)
{
    return stop_signal;
}

int sk_poll(struct pollfd *pfd, nfds_t n, int timeout_ms)
{
    struct timespec ts = { .tv_sec = timeout_ms / 1000, .tv_nsec = (timeout_ms % 1000) * 1000000L };
    int rc;

    if (catching && stop_signal) {
        errno = EINTR;
        return -1;
    }
    rc = catching ? ppoll(pfd, n, timeout_ms < 0 ? NULL : &ts, &poll_mask)
                  : poll(pfd, n, timeout_ms);

    if (TRACE_ON && rc < 0)
        trace_call(rc, errno, NULL, "poll(%u fds, %d ms)", (unsigned)n, timeout_ms);
    return rc;
}
