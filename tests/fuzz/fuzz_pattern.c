/* fuzz_pattern.c — pattern_check (pattern.c), which judges every byte bench gets
 * back from the network against the pattern it sent.
 *
 * Input: seed (8 bytes), stream offset (8), then the received bytes (the rest,
 * any length, any offset alignment; short inputs are zero-padded to 16). The
 * input is reused as a nearly-right reply too: the expected bytes with the first
 * input byte's worth of them flipped at a position the second picks. Properties:
 *   - pattern_check returns exactly the index of the first byte that differs
 *     from pattern_fill's output for the same window, or the length if none;
 *   - a window made by pattern_fill always checks whole, and any window of it
 *     is the same bytes as a fill of that window alone (bench regenerates from
 *     any offset); the offset may wrap around 2^64. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "lib/pattern.h"

static size_t first_diff(const unsigned char *a, const unsigned char *b, size_t len)
{
    size_t i = 0;

    while (i < len && a[i] == b[i])
        i++;
    return i;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char head[16] = { 0 };
    uint64_t seed, off;
    const unsigned char *buf = data + (size < 16 ? size : 16);
    size_t len = size < 16 ? 0 : size - 16, got, cut;
    unsigned char *want, *part, *copy;

    if (size > FUZZ_TEXT_MAX)
        return 0;
    memcpy(head, data, size < 16 ? size : 16);
    memcpy(&seed, head, 8);
    memcpy(&off, head + 8, 8);
    want = malloc(len + 1);
    copy = malloc(len + 1);
    if (want == NULL || copy == NULL)
        abort();

    pattern_fill(seed, off, want, len);
    got = pattern_check(seed, off, buf, len);
    FUZZ_CHECK(got == first_diff(buf, want, len), "pattern_check = %zu, first difference at %zu",
               got, first_diff(buf, want, len));
    FUZZ_CHECK(pattern_check(seed, off, want, len) == len, "a filled window does not check");

    /* A sub-window, filled on its own, is the same bytes. */
    cut = len ? (size_t)(seed % (len + 1)) : 0;
    part = malloc(len - cut + 1);
    if (part == NULL)
        abort();
    pattern_fill(seed, off + cut, part, len - cut);
    FUZZ_CHECK(memcmp(part, want + cut, len - cut) == 0, "window at +%zu differs", cut);
    free(part);

    /* The right reply with one byte wrong. */
    if (len > 0) {
        size_t at = (size_t)(head[1] % len);

        memcpy(copy, want, len);
        copy[at] ^= (unsigned char)(head[0] | 1);
        FUZZ_CHECK(pattern_check(seed, off, copy, len) == at, "flipped byte %zu not found", at);
    }
    free(want);
    free(copy);
    return 0;
}
