/* fuzz_uint.c — parse_uint (util.c): ports, --threads, bench's -c -s -p -t -r.
 *
 * Input: the number's text (no NUL); the input is plain text, so each one is
 * parsed against several ranges: the callers' ([0, 65535], [1, 65535], [1, 1024],
 * [0, ULONG_MAX]) and, when it is a number, ranges just around its value.
 * Properties:
 *   - success: only for a non-empty all-digit string whose value, computed
 *     independently with overflow checks, is in [min, max]; *out is that value;
 *   - failure: *out untouched; the reason is non-empty, printable and one of
 *     "empty", "not a number", "too large" (above max or ULONG_MAX), "too small";
 *   - an error buffer of any size, or none, changes nothing but the message. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "lib/util.h"

#define ERRLEN 64   /* cmd_bench.c's opt_uint */

enum ref { R_OK, R_EMPTY, R_NAN, R_OVERFLOW };

static enum ref reference(const char *s, unsigned long *v)
{
    *v = 0;
    if (*s == '\0')
        return R_EMPTY;
    if (strspn(s, "0123456789") != strlen(s))
        return R_NAN;
    for (; *s; s++)
        if (__builtin_mul_overflow(*v, 10UL, v) ||
            __builtin_add_overflow(*v, (unsigned long)(*s - '0'), v))
            return R_OVERFLOW;
    return R_OK;
}

static void check(const char *s, unsigned long min, unsigned long max)
{
    const unsigned long sentinel = 0xdeadbeefUL;
    unsigned long out = sentinel, out2 = sentinel, v;
    char err[ERRLEN], tiny[4];
    enum ref r = reference(s, &v);
    const char *want;
    int rc;

    err[0] = '\0';
    rc = parse_uint(s, min, max, &out, err, sizeof err);
    FUZZ_CHECK(parse_uint(s, min, max, &out2, NULL, 0) == rc && out2 == out,
               "'%s' in [%lu, %lu]: result changes without an error buffer", s, min, max);
    FUZZ_CHECK(parse_uint(s, min, max, &out2, tiny, sizeof tiny) == rc && out2 == out,
               "'%s' in [%lu, %lu]: result changes with a 4-byte error buffer", s, min, max);

    if (r == R_EMPTY)
        want = "empty";
    else if (r == R_NAN)
        want = "not a number";
    else if (r == R_OVERFLOW || v > max)
        want = "too large";
    else if (v < min)
        want = "too small";
    else
        want = NULL;

    if (want == NULL) {
        FUZZ_CHECK(rc == 0, "'%s' in [%lu, %lu] rejected: %s", s, min, max, err);
        FUZZ_CHECK(out == v && out >= min && out <= max,
                   "'%s' in [%lu, %lu] gave %lu, expected %lu", s, min, max, out, v);
    } else {
        FUZZ_CHECK(rc == -1, "'%s' in [%lu, %lu] accepted as %lu, expected '%s'", s, min, max,
                   out, want);
        FUZZ_CHECK(out == sentinel, "'%s': *out written on failure", s);
        FUZZ_CHECK_ERR(err, sizeof err, s);
        FUZZ_CHECK(strcmp(err, want) == 0, "'%s' in [%lu, %lu]: reason '%s', expected '%s'", s,
                   min, max, err, want);
        FUZZ_CHECK(memchr(tiny, '\0', sizeof tiny) != NULL && fuzz_printable(tiny),
                   "'%s': truncated reason not terminated or not printable", s);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_cstr(data, size);
    unsigned long v;

    if (s == NULL)
        return 0;
    check(s, 0, 65535);
    check(s, 1, 65535);
    check(s, 1, 1024);
    check(s, 0, ULONG_MAX);
    if (reference(s, &v) == R_OK) {
        check(s, v, v);
        if (v < ULONG_MAX)
            check(s, v + 1, ULONG_MAX);
        if (v > 0)
            check(s, 0, v - 1);
    }
    free(s);
    return 0;
}
