/* ring.c — the bounded byte ring behind every echo connection. */
#include "lib/ring.h"

#include <assert.h>
#include <string.h>

void ring_attach(struct ring *r, char *data, size_t cap)
{
    r->data = data;
    r->cap = cap;
    r->head = 0;
    r->len = 0;
}

char *ring_detach(struct ring *r)
{
    char *data = r->data;

    assert(r->len == 0);
    r->data = NULL;
    r->cap = 0;
    r->head = 0;
    return data;
}

int ring_space_iov(const struct ring *r, struct iovec iov[2])
{
    size_t tail, first;

    if (ring_space(r) == 0)
        return 0;
    tail = (r->head + r->len) % r->cap;
    first = tail >= r->head ? r->cap - tail : r->head - tail;
    if (first >= ring_space(r))
        first = ring_space(r);
    iov[0].iov_base = r->data + tail;
    iov[0].iov_len = first;
    if (first == ring_space(r))
        return 1;
    iov[1].iov_base = r->data;
    iov[1].iov_len = ring_space(r) - first;
    return 2;
}

int ring_data_iov(const struct ring *r, struct iovec iov[2])
{
    size_t first;

    if (r->len == 0)
        return 0;
    first = r->cap - r->head;
    if (first >= r->len) {
        iov[0].iov_base = r->data + r->head;
        iov[0].iov_len = r->len;
        return 1;
    }
    iov[0].iov_base = r->data + r->head;
    iov[0].iov_len = first;
    iov[1].iov_base = r->data;
    iov[1].iov_len = r->len - first;
    return 2;
}

void ring_produce(struct ring *r, size_t n)
{
    assert(n <= ring_space(r));
    r->len += n;
}

void ring_consume(struct ring *r, size_t n)
{
    assert(n <= r->len);
    r->len -= n;
    /* An emptied ring restarts at offset 0 so the next read is one contiguous iovec. */
    r->head = r->len == 0 ? 0 : (r->head + n) % r->cap;
}

size_t ring_put(struct ring *r, const void *src, size_t n)
{
    struct iovec iov[2];
    int cnt = ring_space_iov(r, iov);
    size_t done = 0;

    for (int i = 0; i < cnt && done < n; i++) {
        size_t take = n - done < iov[i].iov_len ? n - done : iov[i].iov_len;
        memcpy(iov[i].iov_base, (const char *)src + done, take);
        done += take;
    }
    ring_produce(r, done);
    return done;
}

size_t ring_get(struct ring *r, void *dst, size_t n)
{
    struct iovec iov[2];
    int cnt = ring_data_iov(r, iov);
    size_t done = 0;

    for (int i = 0; i < cnt && done < n; i++) {
        size_t take = n - done < iov[i].iov_len ? n - done : iov[i].iov_len;
        memcpy((char *)dst + done, iov[i].iov_base, take);
        done += take;
    }
    ring_consume(r, done);
    return done;
}
