/* fuzz_port_range.c — spec_port_range (proto/spec.c): PORT or PORT-PORT, as a SPEC's
 * address ends and as `connect -z` takes its ports.
 *
 * Input: the text (no NUL). Each is parsed with the limits the callers use (1024
 * ports for a SPEC, 65535 for a scan) and with the whole string and a prefix of it.
 * Properties:
 *   - success: the text is digits, or digits '-' digits, with values that a simple
 *     reference parse computes; first <= last; a range starts at 1 or more and
 *     holds at most the limit; a single port is first == last;
 *   - failure: the reason is non-empty and printable, *first and *last untouched;
 *   - the result does not depend on the error buffer, or its absence. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "proto/spec.h"

/* Digits only, value at most 65535; returns -1 otherwise. */
static long ref_port(const char *s, size_t len)
{
    long v = 0;

    if (len == 0 || len > 15)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
        if (v > 65535)
            return -1;
    }
    return v;
}

static void check(const char *s, size_t len, unsigned long max)
{
    uint16_t first = 0xbeef, last = 0xbeef, f2 = 0xbeef, l2 = 0xbeef;
    char err[96];
    const char *dash = memchr(s, '-', len);
    long a, b;
    int rc = spec_port_range(s, len, max, &first, &last, err, sizeof err);
    int ok;

    FUZZ_CHECK(spec_port_range(s, len, max, &f2, &l2, NULL, 0) == rc && f2 == first &&
                   l2 == last, "result changes without an error buffer for '%.*s'", (int)len, s);
    if (dash == NULL || dash == s) {
        a = b = ref_port(s, len);
        ok = a >= 0;
    } else {
        a = ref_port(s, (size_t)(dash - s));
        b = ref_port(dash + 1, (size_t)(s + len - dash - 1));
        ok = a >= 1 && b >= a && (unsigned long)(b - a + 1) <= max;
    }
    if (ok) {
        FUZZ_CHECK(rc == 0, "'%.*s' (max %lu) rejected: %s", (int)len, s, max, err);
        FUZZ_CHECK(first == a && last == b, "'%.*s' gave %u-%u, expected %ld-%ld", (int)len, s,
                   first, last, a, b);
    } else {
        FUZZ_CHECK(rc == -1, "'%.*s' (max %lu) accepted as %u-%u", (int)len, s, max, first, last);
        FUZZ_CHECK(first == 0xbeef && last == 0xbeef, "output written on failure");
        FUZZ_CHECK_ERR(err, sizeof err, s);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_cstr(data, size);

    if (s == NULL)
        return 0;
    check(s, size, 1024);
    check(s, size, 65535);
    if (size > 1)
        check(s, size - 1, 65535);
    free(s);
    return 0;
}
