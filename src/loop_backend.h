/* loop_backend.h — what loop.c needs from a readiness backend (epoll today). */
#ifndef KODAMA_LOOP_BACKEND_H
#define KODAMA_LOOP_BACKEND_H

struct backend;
struct fired {
    void *ptr;
    unsigned events;     /* LOOP_READ | LOOP_WRITE */
};

struct backend *backend_new(void);
void backend_free(struct backend *b);
/* Register, change or remove (mask 0 with registered set) a descriptor. */
int backend_add(struct backend *b, int fd, unsigned mask, void *ptr);
int backend_mod(struct backend *b, int fd, unsigned mask, void *ptr);
void backend_del(struct backend *b, int fd);
/* Wait up to timeout_ms (-1: forever); fills at most max; returns the count or -1. */
int backend_poll(struct backend *b, int timeout_ms, struct fired *out, int max);
const char *backend_name(void);

#endif
