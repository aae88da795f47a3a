/* http.h — an HTTP/1.1 request as a small API server needs it (the control API):
 * the request line, the one header that frames a body (Content-Length), and a
 * bounded body. Pure (no sockets, no allocation): given the bytes received so far
 * it says whether they are a whole request, the beginning of one, or a bad one with
 * the status to answer and a one-line reason, so the caller never reads past it.
 *
 * Strict where being lenient could be abused (RFC 9112): one request line of a
 * method token, an origin-form target and HTTP/1.0 or HTTP/1.1; header names are
 * tokens followed at once by ':'; no obsolete line folding; Content-Length is
 * digits only, given once (or repeated with the same value), and no more than the
 * caller's bound; Transfer-Encoding is not supported (a length is required);
 * no NUL or other control character but HTAB in the head. */
#ifndef KODAMA_HTTP_H
#define KODAMA_HTTP_H

#include <stddef.h>

#define HTTP_HEAD_MAX 8192          /* the request line and headers, blank line included */
#define HTTP_METHOD_MAX 15

enum http_parse {
    HTTP_BAD = -1,                  /* answer status with why, then close */
    HTTP_INCOMPLETE = 0,            /* a valid beginning: read more */
    HTTP_DONE = 1,                  /* a whole request */
};

struct http_request {
    char method[HTTP_METHOD_MAX + 1];
    const char *target;             /* into the buffer: the path, before any '?' */
    size_t target_len;
    int minor;                      /* HTTP/1.0 or HTTP/1.1 */
    size_t head_len;                /* through the blank line */
    size_t body_len;                /* Content-Length, 0 without */
    const char *body;               /* into the buffer, when HTTP_DONE */
    int status;                     /* HTTP_BAD: 400, 413, 431, 501 or 505 */
    const char *why;                /* HTTP_BAD: what was wrong, a static string */
};

/* Parse the len bytes received so far at buf; a body of more than body_max bytes
 * is refused (413) as soon as the head says so. */
enum http_parse http_parse_request(const char *buf, size_t len, size_t body_max,
                                   struct http_request *r);

#endif
