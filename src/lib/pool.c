/* pool.c — see pool.h. */
#include "lib/pool.h"

#include <stdlib.h>

#include "lib/util.h"

void pool_init(struct pool *p, size_t size, size_t keep)
{
    p->size = size;
    p->keep = keep;
    p->nfree = 0;
    p->free = xcalloc(keep, sizeof *p->free);
}

void pool_destroy(struct pool *p)
{
    for (size_t i = 0; i < p->nfree; i++)
        free(p->free[i]);
    free(p->free);
    p->free = NULL;
    p->nfree = 0;
}

char *pool_get(struct pool *p)
{
    if (p->nfree > 0)
        return p->free[--p->nfree];
    return malloc(p->size);
}

void pool_put(struct pool *p, char *buf)
{
    if (buf == NULL)
        return;
    if (p->nfree < p->keep)
        p->free[p->nfree++] = buf;
    else
        free(buf);
}
