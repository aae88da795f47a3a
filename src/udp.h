/* udp.h — the read handler of a udp listener (epoll). */
#ifndef KODAMA_UDP_H
#define KODAMA_UDP_H

#include "loop.h"

#define UDP_DGRAM_MAX 65536

struct udp_batch;

/* Buffers for a worker's recvmmsg/sendmmsg batches. */
struct udp_batch *udp_batch_new(void);
void udp_batch_free(struct udp_batch *b);

/* Answers a bounded number of waiting datagrams with one recvmmsg and one sendmmsg
 * per batch. */
void udp_readable(struct loop *loop, struct watch *w, unsigned events);

#endif
