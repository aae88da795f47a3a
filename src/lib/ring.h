/* ring.h — a bounded byte ring: what an echo connection holds between read and write.
 *
 * The ring never grows: its capacity is fixed when the storage is attached, which is
 * how a connection bounds its memory. Reads and writes go through iovecs so that one
 * readv/writev moves the data in place, whether or not it wraps. */
#ifndef KODAMA_RING_H
#define KODAMA_RING_H

#include <stddef.h>
#include <sys/uio.h>

struct ring {
    char *data;   /* NULL while detached (an idle connection owns no storage) */
    size_t cap;
    size_t head;  /* offset of the oldest byte */
    size_t len;   /* bytes held */
};

void ring_attach(struct ring *r, char *data, size_t cap);
char *ring_detach(struct ring *r);          /* only when empty; returns the storage */

static inline size_t ring_used(const struct ring *r) { return r->len; }
static inline size_t ring_space(const struct ring *r) { return r->cap - r->len; }
static inline int ring_empty(const struct ring *r) { return r->len == 0; }
static inline int ring_full(const struct ring *r) { return r->len == r->cap; }

/* The free space as up to two iovecs; returns how many (0 when full). */
int ring_space_iov(const struct ring *r, struct iovec iov[2]);
/* The held bytes, oldest first, as up to two iovecs; returns how many. */
int ring_data_iov(const struct ring *r, struct iovec iov[2]);
/* After a read into the free space: n more bytes are held (n <= space). */
void ring_produce(struct ring *r, size_t n);
/* After a write of the held bytes: the n oldest are gone (n <= used). */
void ring_consume(struct ring *r, size_t n);
/* Copy in as much of src as fits; returns the bytes copied. */
size_t ring_put(struct ring *r, const void *src, size_t n);
/* Copy out and consume up to n bytes; returns the bytes copied. */
size_t ring_get(struct ring *r, void *dst, size_t n);

#endif
