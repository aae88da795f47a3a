/* gso.c — group a batch's replies by destination, keeping each one's own
 * order. Quadratic, but over at most one recvmmsg's batch, and one pass when the
 * whole batch comes from one peer, the case GSO is for. */
#include "serve/engine/gso.h"

int gso_order(int n, same_place_fn same, const void *ctx, int order[])
{
    char taken[GSO_ORDER_MAX] = { 0 };
    int k = 0, moved = 0;

    for (int i = 0; i < n; i++) {
        if (taken[i])
            continue;
        /* i is the first of a new place: it and all its later items go next. */
        for (int j = i; j < n; j++) {
            if (taken[j] || (j != i && !same(ctx, i, j)))
                continue;
            taken[j] = 1;
            moved += j != k;
            order[k++] = j;
        }
    }
    return moved;
}
