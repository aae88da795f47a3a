/* gso.h — what both engines share about UDP GSO: replies to one peer, of one
 * size, go out as one send with UDP_SEGMENT (the kernel cuts the segments), so a
 * batch's replies are first brought together per peer. Pure: no sockets, tested
 * alone. */
#ifndef KODAMA_GSO_H
#define KODAMA_GSO_H

#include <errno.h>

/* Runs are made of replies up to this size, within any path's MTU, where the
 * kernel accepts them; at most GSO_SEGMENTS_MAX of them, the kernel's
 * UDP_MAX_SEGMENTS (Linux 4.18 on). */
#define GSO_SEGMENT_MAX 1200
#define GSO_SEGMENTS_MAX 64

/* Do items i and j go to the same place? */
typedef int (*same_place_fn)(const void *ctx, int i, int j);

/* Fill order[0..n-1] with 0..n-1 reordered so that the items of one place are
 * next to each other: places in the order they first appear, and within a place
 * its items in the order they came (a peer's replies must not overtake each
 * other). n is at most GSO_ORDER_MAX. Returns how many items moved. */
#define GSO_ORDER_MAX 64
int gso_order(int n, same_place_fn same, const void *ctx, int order[]);

/* Did a send fail because the kernel (or the route) takes no UDP_SEGMENT? Then
 * its replies go out one by one, and no more runs are made. */
static inline int gso_refused(int err)
{
    return err == EIO || err == EINVAL || err == ENOPROTOOPT || err == EOPNOTSUPP;
}

#endif
