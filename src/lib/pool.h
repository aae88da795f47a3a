/* pool.h — equal-sized buffers handed out while a connection has data in flight and
 * taken back when it is drained, so an idle connection holds no buffer. */
#ifndef KODAMA_POOL_H
#define KODAMA_POOL_H

#include <stddef.h>

struct pool {
    size_t size;        /* bytes per buffer */
    size_t keep;        /* at most this many free buffers are kept for reuse */
    size_t nfree;
    char **free;
};

void pool_init(struct pool *p, size_t size, size_t keep);
void pool_destroy(struct pool *p);
char *pool_get(struct pool *p);             /* NULL if memory is short */
void pool_put(struct pool *p, char *buf);

#endif
