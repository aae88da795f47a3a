/* sock.h — the clients' socket calls, each narrated by --trace (lib/trace.h) as it
 * returns. They are the system calls themselves, one each, with nothing retried:
 * EINTR, EAGAIN and partial sends reach the caller, and the trace, as they happen.
 * Every socket is close-on-exec and non-blocking; sends never raise SIGPIPE. */
#ifndef KODAMA_SOCK_H
#define KODAMA_SOCK_H

#include <poll.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#define SK_RECV_CHUNK 65536     /* what each recv asks for */

int sk_socket(int family, int type);
int sk_bind(int fd, const struct sockaddr *sa, socklen_t len);
int sk_listen(int fd, int backlog);
/* accept4; fills the peer's address; the new socket is non-blocking too. */
int sk_accept(int lfd, struct sockaddr_storage *peer, socklen_t *len);
int sk_connect(int fd, const struct sockaddr *sa, socklen_t len);
/* After connect said EINPROGRESS: wait up to timeout_ms (<= 0: for ever) for the
 * outcome. Returns 0 (connected), 1 (connected, but the peer has reset it since:
 * what it sent before is still there to read, and SO_ERROR, which said so, now says
 * nothing), or -1 with errno (SO_ERROR's, or ETIMEDOUT). */
int sk_connect_wait(int fd, long timeout_ms);
/* getsockname as text ("127.0.0.1:40000"); "" if it fails. */
void sk_local(int fd, char *buf, size_t len);
/* Is fd connected to its own address? A source port equal to the destination's, on
 * an address of this host where nothing listens, does that (TCP's simultaneous
 * open; a udp socket simply talks to itself), and then every probe comes back as
 * its own echo. */
int sk_connected_to_itself(int fd);
#define SK_SELF_CONNECTED "connected to itself (the source is the destination, where " \
                          "nothing listens)"

ssize_t sk_send(int fd, const void *buf, size_t len);
ssize_t sk_sendv(int fd, const struct iovec *iov, int cnt);
ssize_t sk_recv(int fd, void *buf, size_t cap);
ssize_t sk_recvv(int fd, const struct iovec *iov, int cnt);
/* recvfrom on an unconnected udp socket (connect -l -u before its peer); *to is the
 * address the datagram was sent to (*tolen 0 if the socket does not say: see
 * net_udp_pktinfo). */
ssize_t sk_recvfrom(int fd, void *buf, size_t cap, struct sockaddr_storage *from,
                    socklen_t *len, struct sockaddr_storage *to, socklen_t *tolen);
int sk_shutdown_wr(int fd);
int sk_close(int fd);

/* poll, with an interrupted wait (EINTR) in the trace: the other outcomes are told
 * by the calls that follow. After sk_catch_stop, SIGINT and SIGTERM arrive only
 * inside it (ppoll), so a stop is never missed between a check and the wait. */
int sk_poll(struct pollfd *pfd, nfds_t n, int timeout_ms);

/* For the commands that end cleanly on SIGINT or SIGTERM (connect -l, ping): from
 * now on the signals only set a flag and interrupt sk_poll (EINTR). */
void sk_catch_stop(void);
/* The signal that asked us to stop, or 0. */
int sk_stop_requested(void);

#endif
