/* fuzz_http.c — http_parse_request (proto/http.c): a --control client's request,
 * head and body, as it arrives.
 *
 * Input: the bytes a client sent. Properties:
 *   - the verdict on every prefix of the input is INCOMPLETE until the first
 *     prefix that is DONE or BAD, and the same from then on (bytes that come later
 *     never change a verdict; a BAD one keeps its status and reason);
 *   - BAD: a status of 400, 413, 431, 501 or 505 and a non-empty printable reason;
 *   - DONE: the head ends in a blank line within HTTP_HEAD_MAX, the body lies
 *     within the input right after it and is no longer than the bound, the method
 *     is a non-empty token, and the target starts with '/' and holds no '?',
 *     space or control character;
 *   - INCOMPLETE only while the head is shorter than HTTP_HEAD_MAX or the body
 *     has not all come. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/http.h"
#include "fuzz.h"

#define BODY_MAX 4096

static void check_done(const struct http_request *r, const uint8_t *buf, size_t len)
{
    const char *b = (const char *)buf;

    FUZZ_CHECK(r->head_len >= 2 && r->head_len <= HTTP_HEAD_MAX && r->head_len <= len,
               "head of %zu bytes in %zu", r->head_len, len);
    FUZZ_CHECK(b[r->head_len - 1] == '\n', "the head does not end a line");
    FUZZ_CHECK(r->body == b + r->head_len && r->body_len <= BODY_MAX &&
                   r->head_len + r->body_len <= len,
               "body of %zu bytes outside the input", r->body_len);
    FUZZ_CHECK(r->method[0] != '\0' && strlen(r->method) <= HTTP_METHOD_MAX, "method '%s'",
               r->method);
    FUZZ_CHECK(r->target >= b && r->target + r->target_len <= b + r->head_len &&
                   r->target_len >= 1 && r->target[0] == '/',
               "target outside the head");
    for (size_t i = 0; i < r->target_len; i++)
        FUZZ_CHECK((unsigned char)r->target[i] > ' ' && r->target[i] != '?' &&
                       r->target[i] != 0x7f,
                   "target has byte 0x%02x", (unsigned char)r->target[i]);
    FUZZ_CHECK(r->minor == 0 || r->minor == 1, "HTTP/1.%d", r->minor);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct http_request r, first;
    enum http_parse verdict = HTTP_INCOMPLETE, v;
    size_t decided = 0;
    /* Every prefix would be quadratic on long inputs: a sample of them, and all
     * of the short ones. */
    size_t step = size > 512 ? size / 256 : 1;

    if (size > 3 * HTTP_HEAD_MAX)
        return 0;
    for (size_t n = 0; n <= size; n += (n + step > size && n < size) ? size - n : step) {
        v = http_parse_request((const char *)data, n, BODY_MAX, &r);
        FUZZ_CHECK(v == HTTP_BAD || v == HTTP_INCOMPLETE || v == HTTP_DONE, "verdict %d", v);
        if (verdict == HTTP_INCOMPLETE) {
            verdict = v;
            decided = n;
            first = r;
        } else {
            FUZZ_CHECK(v == verdict, "verdict %d at %zu bytes, %d at %zu", verdict, decided, v, n);
            if (v == HTTP_BAD)
                FUZZ_CHECK(r.status == first.status && strcmp(r.why, first.why) == 0,
                           "the reason changed after %zu bytes", decided);
            if (v == HTTP_DONE)
                FUZZ_CHECK(r.head_len == first.head_len && r.body_len == first.body_len,
                           "the framing changed after %zu bytes", decided);
        }
        if (v == HTTP_BAD) {
            FUZZ_CHECK(r.status == 400 || r.status == 413 || r.status == 431 ||
                           r.status == 501 || r.status == 505,
                       "status %d", r.status);
            FUZZ_CHECK(r.why && r.why[0] && fuzz_printable(r.why), "reason '%s'",
                       r.why ? r.why : "(null)");
        } else if (v == HTTP_DONE) {
            check_done(&r, data, n);
        } else {
            FUZZ_CHECK(n < HTTP_HEAD_MAX || r.head_len > 0, "still incomplete at %zu bytes", n);
        }
        if (n == size)
            break;
    }
    return 0;
}
