/* reply_order.h — the order a batch's replies go out in: each peer's together, so
 * that one GSO send can carry them. Pure: no sockets, tested alone. */
#ifndef KODAMA_REPLY_ORDER_H
#define KODAMA_REPLY_ORDER_H

/* Do items i and j go to the same place? */
typedef int (*same_place_fn)(const void *ctx, int i, int j);

/* Fill order[0..n-1] with 0..n-1 reordered so that the items of one place are
 * next to each other: places in the order they first appear, and within a place
 * its items in the order they came (a peer's replies must not overtake each
 * other). n is at most REPLY_ORDER_MAX. Returns how many items moved. */
#define REPLY_ORDER_MAX 64
int reply_order(int n, same_place_fn same, const void *ctx, int order[]);

#endif
