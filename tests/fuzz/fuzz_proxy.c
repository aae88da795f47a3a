/* fuzz_proxy.c — proxy_parse (the PROXY protocol header, proxy.c).
 *
 * Input: the first bytes a load balancer sent on a connection (binary; NULs
 * allowed). Properties:
 *   - the status is one of the three; nothing is read past the input (the bytes
 *     are copied to a buffer of exactly their size, for ASan);
 *   - invalid: a reason, non-empty and printable;
 *   - need more: the input is shorter than the largest header, and every shorter
 *     prefix needs more too (a valid beginning stays valid as it shortens);
 *   - complete: the header fits in the input and in its version's bound (107
 *     bytes for v1, PROXY_HEADER_MAX for v2); the header alone parses to the same
 *     result, its prefix one byte shorter needs more; addresses are present
 *     exactly for the PROXY command with a known family, and are of that family;
 *     a v1 TCP4 line written back from the parsed addresses is the input line;
 *     a v2 INET header's address block written back is the input's. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "proto/proxy.h"

static uint8_t *copy(const uint8_t *data, size_t size)
{
    uint8_t *b = malloc(size ? size : 1);

    if (b == NULL)
        abort();
    memcpy(b, data, size);
    return b;
}

static enum proxy_status parse_exact(const uint8_t *data, size_t size, struct proxy_header *h)
{
    uint8_t *b = copy(data, size);
    enum proxy_status st = proxy_parse(b, size, h);

    free(b);
    return st;
}

static void check_v1_tcp4(const uint8_t *data, const struct proxy_header *h)
{
    const struct sockaddr_in *s = (const struct sockaddr_in *)&h->src;
    const struct sockaddr_in *d = (const struct sockaddr_in *)&h->dst;
    char a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN], line[128];
    int n;

    inet_ntop(AF_INET, &s->sin_addr, a, sizeof a);
    inet_ntop(AF_INET, &d->sin_addr, b, sizeof b);
    n = snprintf(line, sizeof line, "PROXY TCP4 %s %s %u %u\r\n", a, b, ntohs(s->sin_port),
                 ntohs(d->sin_port));
    FUZZ_CHECK((size_t)n == h->len && memcmp(line, data, h->len) == 0,
               "TCP4 line written back as '%s' differs from the input", line);
}

static void check_v2_inet(const uint8_t *data, const struct proxy_header *h)
{
    const struct sockaddr_in *s = (const struct sockaddr_in *)&h->src;
    const struct sockaddr_in *d = (const struct sockaddr_in *)&h->dst;
    uint8_t block[12];

    memcpy(block, &s->sin_addr, 4);
    memcpy(block + 4, &d->sin_addr, 4);
    memcpy(block + 8, &s->sin_port, 2);
    memcpy(block + 10, &d->sin_port, 2);
    FUZZ_CHECK(memcmp(block, data + 16, 12) == 0, "v2 INET block written back differs");
}

static void check_complete(const uint8_t *data, size_t size, const struct proxy_header *h)
{
    struct proxy_header again;
    int has_addr = h->command == PROXY_CMD_PROXY && h->family != AF_UNSPEC;

    FUZZ_CHECK(h->len > 0 && h->len <= size, "header of %zu bytes in %zu", h->len, size);
    FUZZ_CHECK(h->version == 1 || h->version == 2, "version %d", h->version);
    FUZZ_CHECK(h->len <= (h->version == 1 ? (size_t)PROXY_V1_MAX : (size_t)PROXY_HEADER_MAX),
               "v%d header of %zu bytes", h->version, h->len);
    FUZZ_CHECK(parse_exact(data, h->len, &again) == PROXY_COMPLETE && again.len == h->len &&
                   again.family == h->family && again.command == h->command,
               "the header alone parses differently");
    FUZZ_CHECK(parse_exact(data, h->len - 1, &again) == PROXY_NEED_MORE,
               "one byte short of the header is not a valid beginning");
    FUZZ_CHECK(has_addr == (h->src_len > 0) && has_addr == (h->dst_len > 0),
               "addresses %u/%u for command %d family %d", (unsigned)h->src_len,
               (unsigned)h->dst_len, h->command, h->family);
    if (has_addr)
        FUZZ_CHECK(h->src.ss_family == h->family && h->dst.ss_family == h->family,
                   "address families %d/%d for %d", h->src.ss_family, h->dst.ss_family,
                   h->family);
    if (h->version == 1)
        FUZZ_CHECK(h->command == PROXY_CMD_PROXY && data[h->len - 2] == '\r' &&
                       data[h->len - 1] == '\n', "v1 header not a PROXY line ending in CRLF");
    if (h->version == 1 && h->family == AF_INET)
        check_v1_tcp4(data, h);
    if (h->version == 2 && has_addr && h->family == AF_INET)
        check_v2_inet(data, h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct proxy_header h, shorter;
    enum proxy_status st;

    if (size > 2 * PROXY_HEADER_MAX)
        return 0;
    st = parse_exact(data, size, &h);
    switch (st) {
    case PROXY_INVALID:
        FUZZ_CHECK(h.why != NULL && h.why[0] != '\0' && fuzz_printable(h.why),
                   "invalid without a printable reason");
        break;
    case PROXY_NEED_MORE:
        FUZZ_CHECK(size < PROXY_HEADER_MAX, "needs more after %zu bytes", size);
        for (size_t n = size; n-- > 0;)
            FUZZ_CHECK(parse_exact(data, n, &shorter) == PROXY_NEED_MORE,
                       "prefix of %zu bytes is not a valid beginning", n);
        break;
    case PROXY_COMPLETE:
        check_complete(data, size, &h);
        break;
    default:
        FUZZ_CHECK(0, "status %d", st);
    }
    return 0;
}
