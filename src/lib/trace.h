/* trace.h — --trace: every socket call narrated on stderr as it happens, one line
 * each, with the time since the trace began, the call, the arguments that matter,
 * the result and the errno's name:
 *
 *   +0.000012 connect(3, [::1]:7007) = -1 EINPROGRESS
 *   +0.000300 recv(3, 65536) = 0  (peer closed: FIN)
 *   +0.000410 io_uring: complete recv(7) = -ECONNRESET
 *
 * Off, it costs one predictable branch per call site: every site is written
 *   if (TRACE_ON) trace_call(...);
 * and nothing (no formatting, no clock) happens behind a false flag. The flag is set
 * once, before any thread starts, and only read afterwards. Lines go out with one
 * write(2) each (log.c), so the threads of serve never mix them. */
#ifndef KODAMA_TRACE_H
#define KODAMA_TRACE_H

#include <sys/socket.h>

extern int trace_enabled;

#define TRACE_ON __builtin_expect(trace_enabled, 0)

/* Turn the trace on; its clock starts now. */
void trace_start(void);

/* "+T.TTTTTT <text>". */
void trace_note(const char *fmt, ...) __attribute__((cold, format(printf, 1, 2)));

/* A system call and its result: "<call> = RC", or "<call> = -1 ENAME" when rc < 0
 * (err is the call's errno), then "  (note)" if note is not NULL. */
void trace_call(long rc, int err, const char *note, const char *fmt, ...)
    __attribute__((cold, format(printf, 4, 5)));

/* The common case, kept short so that a hot path pays nothing for it (cold: the
 * compiler keeps it, and what it needs, off that path): "OP(FD, LEN) = N", with
 * errno read here, so call it right after the system call; a recv of 0 is told as
 * the peer's FIN. */
void trace_io(const char *op, int fd, long n, size_t len) __attribute__((cold));
/* The same for a call on a descriptor alone: call is a format with one %d for fd,
 * "close(%d)", "shutdown(%d, SHUT_WR)". */
void trace_fd(const char *call, int fd, long rc) __attribute__((cold));
/* An io_uring completion on a descriptor: "io_uring: complete OP(FD) = RES". */
void trace_cqe_fd(const char *op, int fd, int res) __attribute__((cold));

/* An io_uring completion: "io_uring: complete <what> = RES", or "= -ENAME" for a
 * negative res (liburing's -errno), then "  (note)" if note is not NULL. */
void trace_cqe(int res, const char *note, const char *fmt, ...)
    __attribute__((cold, format(printf, 3, 4)));

/* An io_uring submission: "io_uring: submit <what>". */
void trace_submit(const char *fmt, ...) __attribute__((cold, format(printf, 1, 2)));

/* An accept: "accept(5) [echo tcp 127.0.0.1:7007] = 9  (from 127.0.0.1:53422)", or
 * "accept(5) [...] = -1 EAGAIN" (fd < 0, err its errno); where names the listener. */
void trace_accept(const char *where, int lfd, int fd, int err, const struct sockaddr *peer,
                  socklen_t len) __attribute__((cold));

/* "EAGAIN", "ECONNREFUSED", ...; "E123" for an errno glibc has no name for. */
const char *trace_errno_name(int err, char *buf, size_t len);

/* A socket address as the trace shows it (addr_format): 127.0.0.1:7, [::1]:7,
 * unix:/path. Returns buf. */
#define TRACE_ADDR_MAX 128
char *trace_addr(const struct sockaddr *sa, socklen_t len, char *buf);

/* "AF_INET", "AF_INET6", "AF_UNIX"; "SOCK_STREAM", "SOCK_DGRAM". */
const char *trace_family(int family);
const char *trace_socktype(int type);

#endif
