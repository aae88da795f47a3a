/* fuzz_ping.c — ping_parse (proto/ping.c): a reply to one of `kodama ping`'s probes.
 *
 * Input: the first 6 bytes choose the probe's size (2 bytes, big-endian, at least
 * PING_HEADER) and the run id's low bytes (4); the rest is the reply. Properties:
 *   - the parse reads only the len bytes it is given (ASan: the reply is a heap
 *     copy of exactly that length) and returns one of the four kinds;
 *   - PING_OK only for a reply of exactly SIZE bytes that is byte for byte the
 *     probe ping_build makes for the sequence number it returned;
 *   - a built probe parses as itself, and with any one byte changed it is never
 *     PING_OK (the check catches every single-byte change), nor with a length
 *     one byte off. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "proto/ping.h"

static void check_built(size_t size, uint32_t id, uint32_t seq, size_t flip, uint8_t x)
{
    unsigned char *p = malloc(size + 1);
    uint32_t got = ~seq;

    if (p == NULL)
        abort();
    ping_build(p, size, id, seq);
    FUZZ_CHECK(ping_parse(p, size, size, id, &got) == PING_OK && got == seq,
               "built probe %u of %zu bytes does not parse back", seq, size);
    FUZZ_CHECK(ping_parse(p, size, size, id + 1, &got) == PING_NOT_OURS,
               "probe of another run taken for ours");
    FUZZ_CHECK(ping_parse(p, size - 1, size, id, &got) != PING_OK, "a probe one byte short parses");
    p[size] = 0;
    FUZZ_CHECK(ping_parse(p, size + 1, size, id, &got) != PING_OK, "a probe one byte long parses");
    if (x != 0) {
        p[flip % size] ^= x;
        FUZZ_CHECK(ping_parse(p, size, size, id, &got) != PING_OK,
                   "byte %zu of probe %u changed by 0x%02x, and it still parses", flip % size,
                   seq, x);
    }
    free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t psize, len;
    uint32_t id, seq = 0;
    unsigned char *reply, *want;
    enum ping_kind k;

    if (size < 6)
        return 0;
    psize = PING_HEADER + (((size_t)data[0] << 8 | data[1]) % 2048);
    id = (uint32_t)data[2] << 24 | (uint32_t)data[3] << 16 | (uint32_t)data[4] << 8 | data[5];
    len = size - 6;
    reply = malloc(len ? len : 1);
    if (reply == NULL)
        abort();
    memcpy(reply, data + 6, len);
    k = ping_parse(reply, len, psize, id, &seq);
    FUZZ_CHECK(k == PING_OK || k == PING_WRONG_SIZE || k == PING_NOT_OURS || k == PING_CORRUPT,
               "kind %d", (int)k);
    if (k == PING_OK) {
        want = malloc(psize);
        if (want == NULL)
            abort();
        ping_build(want, psize, id, seq);
        FUZZ_CHECK(len == psize && memcmp(want, reply, psize) == 0,
                   "a reply that is not probe %u parsed as it", seq);
        free(want);
    }
    check_built(psize, id, len >= 4 ? (uint32_t)reply[0] << 24 | reply[1] << 16 | reply[2] << 8 | reply[3] : 0,
                len >= 6 ? (size_t)reply[4] << 8 | reply[5] : 0, len >= 7 ? reply[6] : 0x01);
    free(reply);
    return 0;
}
