/* loop_epoll.c — the epoll backend of loop.c. Level-triggered: a handler that leaves
 * data unread is called again, which keeps partial reads and writes simple. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "lib/loop.h"
#include "lib/loop_backend.h"
#include "lib/util.h"

#define BATCH 256

struct backend {
    int epfd;
    struct epoll_event events[BATCH];
};

static struct backend *epoll_create_backend(void)
{
    struct backend *b = malloc(sizeof *b);

    if (b == NULL)
        return NULL;
    b->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (b->epfd < 0) {
        int saved = errno;
        free(b);
        errno = saved;
        return NULL;
    }
    return b;
}

static void epoll_destroy(struct backend *b)
{
    if (b == NULL)
        return;
    close(b->epfd);
    free(b);
}

static int ctl(struct backend *b, int op, int fd, unsigned mask, void *ptr)
{
    struct epoll_event ev = { 0 };

    if (mask & LOOP_READ)
        ev.events |= EPOLLIN;
    if (mask & LOOP_WRITE)
        ev.events |= EPOLLOUT;
    if (mask & LOOP_HUP)
        ev.events |= EPOLLRDHUP;
    if (mask & LOOP_EXCLUSIVE)
        ev.events |= EPOLLEXCLUSIVE;
    ev.data.ptr = ptr;
    return epoll_ctl(b->epfd, op, fd, &ev);
}

static int epoll_add(struct backend *b, int fd, unsigned mask, void *ptr)
{
    return ctl(b, EPOLL_CTL_ADD, fd, mask, ptr);
}

static int epoll_mod(struct backend *b, int fd, unsigned mask, void *ptr)
{
    return ctl(b, EPOLL_CTL_MOD, fd, mask, ptr);
}

static void epoll_del(struct backend *b, int fd, void *ptr)
{
    struct epoll_event ev = { 0 };

    (void)ptr;
    /* Fails only if fd was never added or is already closed: nothing to undo. */
    (void)epoll_ctl(b->epfd, EPOLL_CTL_DEL, fd, &ev);
}

static int epoll_poll(struct backend *b, int64_t timeout_us, struct fired *out, int max)
{
    int n;

    if (max > BATCH)
        max = BATCH;
    /* In µs, not rounded to a ms: a timer ends when due (epoll_wait_ns). */
    n = epoll_wait_ns(b->epfd, b->events, max, timeout_us < 0 ? -1 : timeout_us * 1000);
    if (n < 0)
        return errno == EINTR ? 0 : -1;
    for (int i = 0; i < n; i++) {
        uint32_t e = b->events[i].events;

        out[i].kind = FIRED_WATCH;
        out[i].ptr = b->events[i].data.ptr;
        out[i].events = 0;
        if (e & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP))
            out[i].events |= LOOP_READ;
        if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP))
            out[i].events |= LOOP_WRITE;
        if (e & (EPOLLERR | EPOLLHUP | EPOLLRDHUP))
            out[i].events |= LOOP_HUP;
    }
    return n;
}

const struct backend_ops backend_epoll = {
    .name = "epoll",
    .create = epoll_create_backend,
    .destroy = epoll_destroy,
    .add = epoll_add,
    .mod = epoll_mod,
    .del = epoll_del,
    .close_drops_watch = 1,
    .poll = epoll_poll,
};
