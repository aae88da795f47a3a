/* peer_io.h — a connected peer's bytes, plain or over TLS (p->tls): what send, the
 * relay and ping call instead of sk_send and sk_recv. They return as send(2) and
 * recv(2) do, one call each, nothing retried: a count, 0 at the end of the stream
 * (the FIN, or TLS's close_notify), or -1 with errno: EAGAIN when the call must
 * wait (TLS: for what peer_recv_events says), ECONNRESET or EPIPE, and for a TLS
 * failure (an alert, a broken record) EPROTO with p->tls_failed set and the reason
 * in p->tls_why. With --trace each TLS call is a line of its own (lib/tls.h). */
#ifndef KODAMA_PEER_IO_H
#define KODAMA_PEER_IO_H

#include <poll.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "client/client.h"

ssize_t peer_send(struct peer *p, const void *buf, size_t len);
ssize_t peer_recv(struct peer *p, void *buf, size_t cap);
/* The same on a ring's pieces; over TLS only the first piece moves per call. */
ssize_t peer_sendv(struct peer *p, const struct iovec *iov, int cnt);
ssize_t peer_recvv(struct peer *p, const struct iovec *iov, int cnt);

/* Our side is done. TLS: our close_notify, then the FIN (after it, TLS 1.3 may
 * still read; a TLS 1.2 peer may answer with its own and stop). 0, or -1 with
 * errno (EAGAIN: call again when writable; ENOTCONN: the peer is gone). */
int peer_shutdown_wr(struct peer *p);

/* The end: a close_notify first if none went and nothing failed (so a TLS peer
 * sees a clean end), then the SSL and the descriptor. */
void peer_close(struct peer *p);

/* What to poll the socket for before the next peer_recv: POLLIN, with POLLOUT
 * while TLS must write before it can read on; 0 when it need not wait at all
 * (TLS holds decrypted bytes already). */
short peer_recv_events(const struct peer *p);

/* After a call failed with err: one line naming the peer, its verdict into r (tls
 * for a TLS failure, else verdict_of_errno): "receive from 127.0.0.1 port 7007
 * (tcp) failed: Connection reset by peer", or "127.0.0.1:8443: tls: tlsv13 alert
 * certificate required". what is "receive from" or "send to". Returns the verdict. */
int peer_fail(struct report *r, int quiet, const struct peer *p, int err, const char *what);

#endif
