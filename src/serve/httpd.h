/* httpd.h — a small HTTP/1.1 responder in a thread of its own, with its own epoll
 * loop: what --metrics and --control share.
 *
 * One request per connection (Connection: close): read until the owner says the
 * request is whole (or at most request_max bytes), answer from memory, shut down
 * our side, and read what the client still sends until it closes, so that closing
 * never resets a response it has not read yet. A connection lives HTTPD_TIMEOUT_MS
 * at most; beyond HTTPD_CONNS_MAX the listening socket is left alone until one
 * closes, and further clients wait in its backlog. Out of descriptors, accepting
 * pauses and retries on a timer, and says so at most once a second. So a slow or
 * hostile client costs a slot for a few seconds and nothing else. */
#ifndef KODAMA_HTTPD_H
#define KODAMA_HTTPD_H

#include <stddef.h>

#define HTTPD_CONNS_MAX 8
#define HTTPD_TIMEOUT_MS 5000

struct httpd;

/* The request so far, len bytes at req (full: request_max bytes came and it is not
 * whole yet). Returns 0 while more is needed (never when full), or 1 with the whole
 * response, head and body, in a malloc'd *out of *out_len bytes. Runs in the
 * responder's thread. */
typedef int httpd_respond_fn(void *data, const char *req, size_t len, int full, char **out,
                             size_t *out_len);

/* Serve the listening socket fd (which stays the caller's) until httpd_stop; what
 * names it in log lines ("metrics tcp"). Returns NULL (reported) on failure. */
struct httpd *httpd_start(int fd, const char *what, size_t request_max,
                          httpd_respond_fn *respond, void *data);
/* Stop and join the thread, close its connections; NULL is fine. */
void httpd_stop(struct httpd *h);

/* A whole response: the status line, Content-Type, Content-Length, any extra head
 * lines (each ending in CRLF; "" for none), Connection: close, then the body (left
 * out with head_only, its length kept). Returns it malloc'd, *len bytes. */
char *httpd_response(int status, const char *content_type, const char *extra_head,
                     const char *body, size_t body_len, int head_only, size_t *len);

/* The reason phrase of a status code. */
const char *httpd_status_text(int status);

#endif
