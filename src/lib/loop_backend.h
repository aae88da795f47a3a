/* loop_backend.h — what loop.c needs from a backend: epoll (readiness only) or
 * io_uring (readiness through poll requests, and completions of other requests). */
#ifndef KODAMA_LOOP_BACKEND_H
#define KODAMA_LOOP_BACKEND_H

#include <stdint.h>

struct backend;
struct io_uring;

enum fired_kind { FIRED_WATCH, FIRED_COMPLETION, FIRED_FORGOTTEN /* loop.c: its watch left */ };

struct fired {
    enum fired_kind kind;
    void *ptr;              /* FIRED_WATCH: the watch */
    unsigned events;        /* FIRED_WATCH: LOOP_READ | LOOP_WRITE | LOOP_HUP */
    uint64_t user_data;     /* FIRED_COMPLETION: as submitted */
    int32_t res;
    uint32_t flags;
};

struct backend_ops {
    const char *name;
    struct backend *(*create)(void);    /* NULL with errno on failure */
    void (*destroy)(struct backend *b);
    /* Register, change or remove a descriptor's readiness interest. */
    int (*add)(struct backend *b, int fd, unsigned mask, void *ptr);
    int (*mod)(struct backend *b, int fd, unsigned mask, void *ptr);
    void (*del)(struct backend *b, int fd, void *ptr);
    /* Closing a descriptor that is its socket's only one takes it out of the set. */
    int close_drops_watch;
    /* Wait up to timeout_us (-1: forever; the backend rounds up what it cannot
     * express); fills at most max; returns the count, or -1 with errno. */
    int (*poll)(struct backend *b, int64_t timeout_us, struct fired *out, int max);
    /* The io_uring ring under the loop, for the engines that drive it; NULL (no
     * function) on epoll. */
    struct io_uring *(*ring)(struct backend *b);
};

extern const struct backend_ops backend_epoll;
extern const struct backend_ops backend_uring;

#endif
