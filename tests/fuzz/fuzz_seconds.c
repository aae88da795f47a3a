/* fuzz_seconds.c — parse_seconds (util.c): -w of send, connect and bench, bench's
 * -d and --warmup.
 *
 * Input: the duration's text (no NUL). Properties:
 *   - success: a value in [1, 86400000] ms, and exactly the one an independent
 *     decimal reader gives: DIGITS[.DIGITS] (either side may be empty, not
 *     both), digits past the third decimal all zero, more than 0, at most 86400 s;
 *   - failure: exactly when that reader rejects; the reason is non-empty and
 *     printable, and one of the four documented ones;
 *   - an error buffer of any size, or none, changes nothing but the message. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "lib/util.h"

#define ERRLEN 64   /* cmd_bench.c's opt_seconds */
#define MAX_MS (86400L * 1000)

/* Milliseconds, or -1. Reads the integer part as text so no size overflows. */
static long reference(const char *s)
{
    size_t ilen = strspn(s, "0123456789"), flen = 0;
    const char *i = s, *f = s + ilen;
    long ms = 0;

    if (*f == '.') {
        f++;
        flen = strspn(f, "0123456789");
    }
    if (f[flen] != '\0' || ilen + flen == 0)
        return -1;
    while (ilen > 0 && *i == '0') {
        i++;
        ilen--;
    }
    if (ilen > 5)                       /* 100000 s and up */
        return -1;
    for (size_t k = 0; k < ilen; k++)
        ms = ms * 10 + (i[k] - '0');
    ms *= 1000;
    for (size_t k = 0; k < flen; k++) {
        if (k >= 3 && f[k] != '0')
            return -1;
        if (k < 3)
            ms += (f[k] - '0') * (k == 0 ? 100 : k == 1 ? 10 : 1);
    }
    return ms > 0 && ms <= MAX_MS ? ms : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const reasons[] = {
        "too large (at most 86400)", "finer than a millisecond", "not a number of seconds",
        "must be more than 0",
    };
    char *s = fuzz_cstr(data, size);
    char err[ERRLEN], tiny[2];
    long ms, ref;
    int known = 0;

    if (s == NULL)
        return 0;
    err[0] = '\0';
    ms = parse_seconds(s, err, sizeof err);
    ref = reference(s);
    FUZZ_CHECK(ms == ref, "parse_seconds('%s') = %ld, the reference %ld (err '%s')", s, ms, ref,
               err);
    FUZZ_CHECK(parse_seconds(s, NULL, 0) == ms, "'%s': result changes without an error buffer", s);
    FUZZ_CHECK(parse_seconds(s, tiny, sizeof tiny) == ms,
               "'%s': result changes with a 2-byte error buffer", s);
    if (ms < 0) {
        FUZZ_CHECK(ms == -1, "'%s': %ld", s, ms);
        FUZZ_CHECK_ERR(err, sizeof err, s);
        for (size_t k = 0; k < sizeof reasons / sizeof reasons[0]; k++)
            known |= strcmp(err, reasons[k]) == 0;
        FUZZ_CHECK(known, "'%s': unexpected reason '%s'", s, err);
        FUZZ_CHECK(memchr(tiny, '\0', sizeof tiny) != NULL, "'%s': 2-byte reason unterminated", s);
    } else {
        FUZZ_CHECK(ms >= 1 && ms <= MAX_MS, "'%s' = %ld ms", s, ms);
    }
    free(s);
    return 0;
}
