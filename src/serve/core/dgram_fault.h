/* dgram_fault.h — the datagram faults (latency, rate per peer, drop, dup,
 * toxicity), one path for both engines.
 *
 * An engine hands a faulty listener's replies here instead of sending them: each
 * is dropped, sent now (once, or twice for dup), or copied into the worker's queue
 * and sent from a timer when it is due, with sendmsg (MSG_DONTWAIT) on the
 * listener's socket. A peer's replies never overtake each other: each peer's due
 * times only grow (its entry in a fixed table of peers remembers the last, and
 * what rate has paid for). The queue is bounded in replies and bytes; beyond it a
 * reply is dropped and counted as a failed send. A duplicate counts against the
 * UDP guard's bound on a reply (guard_udp_reply_max): when two copies would pass
 * it, only one is sent. */
#ifndef KODAMA_DGRAM_FAULT_H
#define KODAMA_DGRAM_FAULT_H

#include <stddef.h>
#include <sys/socket.h>

#include "serve/core/worker.h"

/* Does l have datagram faults now? One relaxed load while they have not changed. */
static inline int dgram_faulty(struct listener *l)
{
    listener_faults_fresh(l);
    return l->dgram_faulty;
}

/* Take the reply (len bytes at data) to a datagram of in_len bytes from peer; in
 * holds the datagram's control data (its IP_PKTINFO, for the reply's source
 * address: it is rewritten), or NULL. The engine sends nothing itself. */
void dgram_fault_reply(struct listener *l, const struct sockaddr *peer, socklen_t peer_len,
                       struct msghdr *in, const char *data, size_t len, size_t in_len);

/* Free the worker's queue (what is still in it is not sent). */
void dgram_faults_free(struct worker *wk);

#endif
