/* http.c — the HTTP/1.1 request parser (see http.h). */
#include "proto/http.h"

#include <string.h>

static enum http_parse bad(struct http_request *r, int status, const char *why)
{
    r->status = status;
    r->why = why;
    return HTTP_BAD;
}

/* RFC 9110's tchar. */
static int is_tchar(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Where the head ends (just past its blank line), or 0 if not yet. A line ends in
 * CRLF or a bare LF. */
static size_t head_end(const char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (buf[i] != '\n')
            continue;
        if (i + 1 < len && buf[i + 1] == '\n')
            return i + 2;
        if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

/* The line at buf[off..] up to its end, without the CR LF: its length; *next is
 * where the following line starts. */
static size_t line_at(const char *buf, size_t end, size_t off, size_t *next)
{
    const char *nl = memchr(buf + off, '\n', end - off);
    size_t n = nl ? (size_t)(nl - (buf + off)) : end - off;

    *next = off + n + (nl ? 1 : 0);
    if (n > 0 && buf[off + n - 1] == '\r')
        n--;
    return n;
}

static enum http_parse request_line(const char *s, size_t n, struct http_request *r)
{
    size_t m = 0, t, v;

    while (m < n && is_tchar(s[m]))
        m++;
    if (m == 0 || m >= n || s[m] != ' ')
        return bad(r, 400, "not a request line (METHOD /PATH HTTP/1.1)");
    if (m > HTTP_METHOD_MAX)
        return bad(r, 501, "unknown method");
    memcpy(r->method, s, m);
    r->method[m] = '\0';
    t = m + 1;
    v = t;
    while (v < n && s[v] > ' ' && s[v] != 0x7f)
        v++;
    if (v == t || v >= n || s[v] != ' ' || s[t] != '/')
        return bad(r, 400, "the target must be a path (/faults)");
    r->target = s + t;
    r->target_len = v - t;
    {
        const char *q = memchr(r->target, '?', r->target_len);

        if (q)
            r->target_len = (size_t)(q - r->target);
    }
    v++;
    if (n - v != 8 || memcmp(s + v, "HTTP/1.", 7) != 0 || (s[v + 7] != '0' && s[v + 7] != '1')) {
        if (n - v == 8 && memcmp(s + v, "HTTP/", 5) == 0)
            return bad(r, 505, "only HTTP/1.1 and HTTP/1.0");
        return bad(r, 400, "not a request line (METHOD /PATH HTTP/1.1)");
    }
    r->minor = s[v + 7] - '0';
    return HTTP_DONE;
}

static int name_is(const char *s, size_t n, const char *name)
{
    size_t len = strlen(name);

    if (n != len)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char a = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] - 'A' + 'a') : s[i];

        if (a != name[i])
            return 0;
    }
    return 1;
}

/* Content-Length: 1*DIGIT, no more than max. */
static enum http_parse content_length(const char *v, size_t n, size_t max, struct http_request *r,
                                      int *seen)
{
    size_t len = 0;

    if (n == 0)
        return bad(r, 400, "Content-Length is not a number");
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return bad(r, 400, "Content-Length is not a number");
        len = len * 10 + (size_t)(v[i] - '0');
        if (len > max)
            return bad(r, 413, "the body is too long");     /* and no overflow */
    }
    if (*seen && len != r->body_len)
        return bad(r, 400, "two Content-Length values");
    if (len > max)
        return bad(r, 413, "the body is too long");
    r->body_len = len;
    *seen = 1;
    return HTTP_DONE;
}

static enum http_parse header(const char *s, size_t n, size_t body_max, struct http_request *r,
                              int *seen_length)
{
    size_t k = 0, v;

    if (s[0] == ' ' || s[0] == '\t')
        return bad(r, 400, "folded header lines are not allowed");
    while (k < n && is_tchar(s[k]))
        k++;
    if (k == 0 || k >= n || s[k] != ':')
        return bad(r, 400, "a header line is not NAME: VALUE");
    v = k + 1;
    while (v < n && (s[v] == ' ' || s[v] == '\t'))
        v++;
    while (n > v && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (name_is(s, k, "content-length"))
        return content_length(s + v, n - v, body_max, r, seen_length);
    if (name_is(s, k, "transfer-encoding"))
        return bad(r, 501, "Transfer-Encoding is not supported: send Content-Length");
    return HTTP_DONE;
}

enum http_parse http_parse_request(const char *buf, size_t len, size_t body_max,
                                   struct http_request *r)
{
    size_t end, off, next, n;
    int seen_length = 0;

    memset(r, 0, sizeof *r);
    end = head_end(buf, len < HTTP_HEAD_MAX ? len : HTTP_HEAD_MAX);
    for (size_t i = 0; i < (end ? end : (len < HTTP_HEAD_MAX ? len : HTTP_HEAD_MAX)); i++)
        if ((unsigned char)buf[i] < 0x20 && buf[i] != '\r' && buf[i] != '\n' && buf[i] != '\t')
            return bad(r, 400, "a control character in the head");
    if (end == 0)
        return len >= HTTP_HEAD_MAX ? bad(r, 431, "the head is longer than 8 KiB")
                                    : HTTP_INCOMPLETE;
    n = line_at(buf, end, 0, &next);
    if (request_line(buf, n, r) != HTTP_DONE)
        return HTTP_BAD;
    for (off = next; off < end; off = next) {
        n = line_at(buf, end, off, &next);
        if (n == 0)
            break;      /* the blank line */
        if (header(buf + off, n, body_max, r, &seen_length) != HTTP_DONE)
            return HTTP_BAD;
    }
    r->head_len = end;
    if (len - end < r->body_len)
        return HTTP_INCOMPLETE;
    r->body = buf + end;
    return HTTP_DONE;
}
