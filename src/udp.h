/* udp.h — the read handler of a udp listener. */
#ifndef KODAMA_UDP_H
#define KODAMA_UDP_H

#include "loop.h"

#define UDP_DGRAM_MAX 65536

void udp_readable(struct loop *loop, struct watch *w, unsigned events);

#endif
