/* fuzz_metrics_route.c — metrics_route (metrics.c): the request head a --metrics
 * client sends, straight from the network.
 *
 * Input: the head's bytes, any bytes (NULs too), in a buffer of exactly that size
 * so that ASan sees any read past it. Properties:
 *   - the status is 200, 400, 404 or 405; head_only only with 200, and only for HEAD;
 *   - anything but 400 has a first line "TOKEN SP /TARGET SP HTTP/1.0|1.1";
 *   - 200 only for "GET /metrics" or "HEAD /metrics", with nothing or "?..." after. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "serve/metrics.h"

static int starts(const uint8_t *data, size_t size, const char *prefix)
{
    size_t n = strlen(prefix);

    return size >= n && memcmp(data, prefix, n) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *head;
    const uint8_t *eol;
    size_t line;
    int status, head_only = -1;

    if (size > FUZZ_TEXT_MAX)
        return 0;
    head = malloc(size ? size : 1);
    if (head == NULL)
        abort();
    memcpy(head, data, size);
    status = metrics_route(head, size, &head_only);
    free(head);
    FUZZ_CHECK(status == 200 || status == 400 || status == 404 || status == 405,
               "status %d", status);
    FUZZ_CHECK(head_only == 0 || (head_only == 1 && status == 200 && starts(data, size, "HEAD ")),
               "head_only %d with status %d", head_only, status);
    if (status == 400)
        return 0;
    eol = memchr(data, '\n', size);
    FUZZ_CHECK(eol != NULL, "status %d without a line end", status);
    line = (size_t)(eol - data);
    if (line > 0 && data[line - 1] == '\r')
        line--;
    FUZZ_CHECK(line >= 8 && (memcmp(data + line - 8, "HTTP/1.1", 8) == 0 ||
                             memcmp(data + line - 8, "HTTP/1.0", 8) == 0),
               "status %d without an HTTP/1.x version", status);
    FUZZ_CHECK(memchr(data, ' ', line) != NULL && ((const uint8_t *)memchr(data, ' ', line))[1] == '/',
               "status %d without an absolute path", status);
    if (status == 200)
        FUZZ_CHECK((starts(data, size, "GET /metrics") && (data[12] == ' ' || data[12] == '?')) ||
                   (starts(data, size, "HEAD /metrics") && (data[13] == ' ' || data[13] == '?')),
                   "200 for another request");
    return 0;
}
