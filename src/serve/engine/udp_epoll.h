/* udp_epoll.h — datagrams on the epoll engine (udp_epoll.c). */
#ifndef KODAMA_UDP_EPOLL_H
#define KODAMA_UDP_EPOLL_H

#include "lib/loop.h"
#include "serve/core/dgram.h"

struct udp_batch;

/* Buffers for a worker's recvmmsg/sendmmsg batches. */
struct udp_batch *udp_batch_new(void);
void udp_batch_free(struct udp_batch *b);

/* A udp listener's read handler: answers a bounded number of waiting datagrams
 * with one recvmmsg and one sendmmsg per batch. */
void udp_readable(struct loop *loop, struct watch *w, unsigned events);

#endif
