/* inetd.c — see inetd.h. */
#include "serve/inetd.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "serve/listen.h"
#include "lib/log.h"
#include "lib/net.h"

static int same_file(int a, int b)
{
    struct stat sa, sb;

    return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

/* Point fd at /dev/null, so that it no longer holds the socket open. */
static int to_dev_null(int fd, char *err, size_t errlen)
{
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);

    if (null < 0 || dup2(null, fd) < 0) {
        snprintf(err, errlen, "--inetd: /dev/null: %s", strerror(errno));
        if (null >= 0)
            close(null);
        return -1;
    }
    close(null);
    return 0;
}

/* Move the socket off stdin (and stdout, stderr, where inetd put it too). */
static int take_socket(char *err, size_t errlen)
{
    int fd = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);

    if (fd < 0) {
        snprintf(err, errlen, "--inetd: dup: %s", strerror(errno));
        return -1;
    }
    if (same_file(STDERR_FILENO, fd)) {
        log_to_syslog();
        if (to_dev_null(STDERR_FILENO, err, errlen) < 0) {
            close(fd);
            return -1;
        }
    }
    if (to_dev_null(STDIN_FILENO, err, errlen) < 0 ||
        to_dev_null(STDOUT_FILENO, err, errlen) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* SOCK_STREAM, SOCK_DGRAM, ... or -1. */
static int stdin_type(void)
{
    int type;
    socklen_t len = sizeof type;

    return getsockopt(STDIN_FILENO, SOL_SOCKET, SO_TYPE, &type, &len) == 0 ? type : -1;
}

static int stdin_is_listening(void)
{
    int on = 0;
    socklen_t len = sizeof on;

    return getsockopt(STDIN_FILENO, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) == 0 && on;
}

static int stdin_is_socket(void)
{
    struct stat st;

    return fstat(STDIN_FILENO, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* What a connection from inetd needs that our own listeners give theirs. */
static int prepare_conn(int fd, const struct listener *l, char *err, size_t errlen)
{
    int one = 1;

    if (net_set_nonblock(fd, 1) < 0) {
        snprintf(err, errlen, "--inetd: fcntl O_NONBLOCK: %s", strerror(errno));
        return -1;
    }
    /* Accepted sockets inherit TCP_NODELAY from our listeners, not from inetd's:
     * without it a short echo tail waits for the peer's delayed ACK. */
    if (l->kind == LISTEN_TCP &&
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0) {
        snprintf(err, errlen, "--inetd: setsockopt TCP_NODELAY: %s", strerror(errno));
        return -1;
    }
    return 0;
}

void inetd_log_setup(void)
{
    if (stdin_is_socket() && same_file(STDERR_FILENO, STDIN_FILENO))
        log_to_syslog();
}

int inetd_take_stdin(const struct service *svc, int udp, struct listener *l, int *conn,
                     char *err, size_t errlen)
{
    int fd;

    *conn = -1;
    if (!stdin_is_socket()) {
        snprintf(err, errlen, "--inetd: stdin is not a socket (run by inetd, xinetd or "
                 "systemd-socket-activate --inetd)");
        return -1;
    }
    /* Errors about the socket itself go to syslog if stderr is that socket: see
     * inetd_log_setup, which cmd_serve runs first. */
    if (stdin_type() != (udp ? SOCK_DGRAM : SOCK_STREAM)) {
        snprintf(err, errlen, udp ? "--inetd %s/udp: stdin is a stream socket, not udp "
                 "(inetd: dgram, wait)" : "--inetd %s: stdin is not a stream socket (for "
                 "udp, --inetd %s/udp)", svc->name, svc->name);
        return -1;
    }
    /* Told here, of stdin: once moved, listener_for_conn would name the descriptor
     * it was moved to, which the user never gave. */
    if (!udp && stdin_is_listening()) {
        snprintf(err, errlen, "--inetd %s: stdin is a listening socket, not a connection "
                 "(inetd: stream, nowait)", svc->name);
        return -1;
    }
    fd = take_socket(err, errlen);
    if (fd < 0)
        return -1;
    if (udp ? listener_from_fd(fd, svc, l, err, errlen) < 0
            : listener_for_conn(fd, svc, l, err, errlen) < 0)
        goto fail;
    if (!udp) {
        if (prepare_conn(fd, l, err, errlen) < 0)
            goto fail;
        *conn = fd;
    }
    return 0;
fail:
    close(fd);
    return -1;
}
