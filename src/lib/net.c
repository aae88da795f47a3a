/* net.c — socket set-up helpers (see net.h). */
#include "lib/net.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/util.h"

static int net_fail(int fd, char *err, size_t errlen, const char *what)
{
    int saved = errno;

    if (err && errlen) {
        if (what)
            snprintf(err, errlen, "%s: %s", what, strerror(saved));
        else
            snprintf(err, errlen, "%s", strerror(saved));
    }
    if (fd >= 0)
        close(fd);
    errno = saved;
    return -1;
}

int net_set_nonblock(int fd, int on)
{
    int flags = fcntl(fd, F_GETFL);

    if (flags < 0)
        return -1;
    flags = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
    return fcntl(fd, F_SETFL, flags);
}

static int set_int(int fd, int level, int opt, int value)
{
    return setsockopt(fd, level, opt, &value, sizeof value);
}

static int plain_bound_socket(const struct sockaddr *sa, socklen_t len, int type, int v6only,
                              int reuseport, char *err, size_t errlen)
{
    int fd = socket(sa->sa_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return net_fail(-1, err, errlen, "socket");
    /* A restarted server must not wait for the old one's TIME_WAIT connections. */
    if (type == SOCK_STREAM && set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1) < 0)
        return net_fail(fd, err, errlen, "setsockopt SO_REUSEADDR");
    /* Echo writes what it has read at once; with Nagle, a short tail would wait for
     * the peer's delayed ACK (40 ms). Accepted sockets inherit the option. */
    if (type == SOCK_STREAM && set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1) < 0)
        return net_fail(fd, err, errlen, "setsockopt TCP_NODELAY");
    if (reuseport && set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1) < 0)
        return net_fail(fd, err, errlen, "setsockopt SO_REUSEPORT");
    /* A v4-mapped address ([::ffff:127.0.0.1]) is IPv4 through an IPv6 socket, which
     * IPV6_V6ONLY would refuse to bind (EINVAL). */
    if (sa->sa_family == AF_INET6 &&
        IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)sa)->sin6_addr))
        v6only = 0;
    if (sa->sa_family == AF_INET6 && v6only >= 0 &&
        set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, v6only) < 0)
        return net_fail(fd, err, errlen, "setsockopt IPV6_V6ONLY");
    if (bind(fd, sa, len) < 0)
        return net_fail(fd, err, errlen, NULL);
    return fd;
}

/* With SO_REUSEPORT, any socket of the same user may join the group without a word,
 * a second kodama started by mistake on the same port included. A plain bind first
 * proves that the address is ours alone (and settles port 0); the group is then
 * bound on that port at once. */
static int bound_socket(const struct sockaddr *sa, socklen_t len, int type, int v6only,
                        int reuseport, char *err, size_t errlen)
{
    struct sockaddr_storage ss = { 0 };  /* getsockname fills what it knows */
    socklen_t sslen = sizeof ss;
    int probe;

    if (!reuseport)
        return plain_bound_socket(sa, len, type, v6only, 0, err, errlen);
    probe = plain_bound_socket(sa, len, type, v6only, 0, err, errlen);
    if (probe < 0)
        return -1;
    if (getsockname(probe, (struct sockaddr *)&ss, &sslen) < 0)
        return net_fail(probe, err, errlen, "getsockname");
    close(probe);
    return plain_bound_socket((struct sockaddr *)&ss, sslen, type, v6only, 1, err, errlen);
}

int net_tcp_listen(const struct sockaddr *sa, socklen_t len, int v6only, int reuseport,
                   char *err, size_t errlen)
{
    int fd = bound_socket(sa, len, SOCK_STREAM, v6only, reuseport, err, errlen);

    if (fd < 0)
        return -1;
    if (listen(fd, NET_BACKLOG) < 0)
        return net_fail(fd, err, errlen, NULL);
    return fd;
}

int net_udp_bind(const struct sockaddr *sa, socklen_t len, int v6only, int reuseport,
                 char *err, size_t errlen)
{
    return bound_socket(sa, len, SOCK_DGRAM, v6only, reuseport, err, errlen);
}

int net_reuseport_sibling(int fd, char *err, size_t errlen)
{
    struct sockaddr_storage ss = { 0 };  /* getsockname fills what it knows */
    socklen_t len = sizeof ss, optlen = sizeof(int);
    int type, v6only = -1, nfd;

    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return net_fail(-1, err, errlen, "getsockname");
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &optlen) < 0)
        return net_fail(-1, err, errlen, "getsockopt SO_TYPE");
    optlen = sizeof v6only;
    if (ss.ss_family == AF_INET6 &&
        getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &optlen) < 0)
        return net_fail(-1, err, errlen, "getsockopt IPV6_V6ONLY");
    nfd = plain_bound_socket((struct sockaddr *)&ss, len, type, v6only, 1, err, errlen);
    if (nfd >= 0 && type == SOCK_STREAM && listen(nfd, NET_BACKLOG) < 0)
        return net_fail(nfd, err, errlen, NULL);
    return nfd;
}

int net_udp_pktinfo(int fd, int family, char *err, size_t errlen)
{
    /* On an AF_INET6 socket IPV6_RECVPKTINFO also reports IPv4 datagrams, as
     * v4-mapped addresses; the reply's IPV6_PKTINFO is accepted for them too. */
    if (family == AF_INET6) {
        if (set_int(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1) < 0)
            return net_fail(-1, err, errlen, "setsockopt IPV6_RECVPKTINFO");
    } else if (set_int(fd, IPPROTO_IP, IP_PKTINFO, 1) < 0) {
        return net_fail(-1, err, errlen, "setsockopt IP_PKTINFO");
    }
    return 0;
}

socklen_t net_unix_addr(const char *path, int abstract, struct sockaddr_un *sun)
{
    size_t len = strlen(path);
    size_t off = abstract ? 1 : 0;

    memset(sun, 0, sizeof *sun);
    sun->sun_family = AF_UNIX;
    /* A path needs room for its NUL; an abstract name has none, only the NUL
     * before it: either way at most sizeof sun_path - 1 bytes of name. */
    if (len + off + !abstract > sizeof sun->sun_path) {
        errno = ENAMETOOLONG;
        return (socklen_t)-1;
    }
    memcpy(sun->sun_path + off, path, len);
    /* Abstract names are exactly as long as given; paths carry their NUL. */
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + off + len + !abstract);
}

/* Is somebody accepting on this socket file? A refused connect means the file was
 * left behind by a listener that is gone. */
static int unix_path_stale(const struct sockaddr_un *sun, socklen_t len)
{
    struct stat st;
    int fd, rc, saved;

    if (lstat(sun->sun_path, &st) < 0)
        return 0;
    if (!S_ISSOCK(st.st_mode)) {
        errno = EEXIST;
        return 0;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    rc = connect(fd, (const struct sockaddr *)sun, len);
    saved = errno;
    close(fd);
    if (rc == 0 || saved != ECONNREFUSED) {
        errno = EADDRINUSE;
        return 0;
    }
    return 1;
}

int net_unix_listen(const char *path, int abstract, char *err, size_t errlen)
{
    struct sockaddr_un sun;
    socklen_t len = net_unix_addr(path, abstract, &sun);
    int fd;

    if (len == (socklen_t)-1)
        return net_fail(-1, err, errlen, NULL);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return net_fail(-1, err, errlen, "socket");
    if (bind(fd, (struct sockaddr *)&sun, len) < 0) {
        if (errno != EADDRINUSE || abstract || !unix_path_stale(&sun, len))
            return net_fail(fd, err, errlen, NULL);
        if (unlink(path) < 0 && errno != ENOENT)
            return net_fail(fd, err, errlen, "unlink stale socket");
        if (bind(fd, (struct sockaddr *)&sun, len) < 0)
            return net_fail(fd, err, errlen, NULL);
    }
    if (listen(fd, NET_BACKLOG) < 0)
        return net_fail(fd, err, errlen, NULL);
    return fd;
}

int net_accept(int lfd, struct sockaddr_storage *peer, socklen_t *len)
{
    int fd;

    do {
        *len = sizeof *peer;
        fd = accept4(lfd, (struct sockaddr *)peer, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    return fd;
}

int net_reset_after_handshake(int so_error)
{
    /* A reset in SYN-SENT is ECONNREFUSED; these two come only from an established
     * connection (a reset in CLOSE_WAIT is EPIPE). */
    return so_error == ECONNRESET || so_error == EPIPE;
}

int net_unsent(int fd)
{
    int n;

    return ioctl(fd, SIOCOUTQ, &n) == 0 ? n : -1;
}

int net_undelivered(int fd)
{
    struct tcp_info ti;
    socklen_t len = sizeof ti;

    /* A unix socket has no TCP_INFO: its count drops when the peer goes. */
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 && ti.tcpi_state == TCP_CLOSE)
        return 0;
    return net_unsent(fd);
}

socklen_t net_pktinfo_dest(struct msghdr *msg, in_port_t port, struct sockaddr_storage *out)
{
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(msg); cm; cm = CMSG_NXTHDR(msg, cm)) {
        if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO) {
            const struct in_pktinfo *pi = (const struct in_pktinfo *)CMSG_DATA(cm);
            struct sockaddr_in *sin = (struct sockaddr_in *)out;

            memset(sin, 0, sizeof *sin);
            sin->sin_family = AF_INET;
            sin->sin_addr = pi->ipi_addr;
            sin->sin_port = port;
            return sizeof *sin;
        }
        if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO) {
            const struct in6_pktinfo *pi = (const struct in6_pktinfo *)CMSG_DATA(cm);
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;

            memset(sin6, 0, sizeof *sin6);
            sin6->sin6_family = AF_INET6;
            sin6->sin6_addr = pi->ipi6_addr;
            sin6->sin6_port = port;
            if (IN6_IS_ADDR_LINKLOCAL(&pi->ipi6_addr))
                sin6->sin6_scope_id = (uint32_t)pi->ipi6_ifindex;
            return sizeof *sin6;
        }
    }
    return 0;
}

int net_connect(int fd, const struct sockaddr *sa, socklen_t len, long timeout_ms)
{
    struct pollfd pfd = { .fd = fd, .events = POLLOUT };
    int64_t deadline = now_ms() + timeout_ms;
    int soerr = 0, rc;
    socklen_t slen = sizeof soerr;

    if (net_set_nonblock(fd, 1) < 0)
        return -1;
    if (connect(fd, sa, len) == 0)
        return 0;
    if (errno != EINPROGRESS && errno != EINTR)
        return -1;
    for (;;) {
        int wait = -1;

        if (timeout_ms > 0) {
            int64_t left = deadline - now_ms();
            if (left <= 0) {
                errno = ETIMEDOUT;
                return -1;
            }
            wait = (int)left;
        }
        rc = poll(&pfd, 1, wait);
        if (rc > 0)
            break;
        if (rc < 0 && errno != EINTR)
            return -1;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) < 0)
        return -1;
    if (soerr != 0) {
        errno = soerr;
        return -1;
    }
    return 0;
}

void net_reset_on_close(int fd)
{
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };

    (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
}
