/* fuzz_timeout.c — parse_timeout (util.c): serve's --idle-timeout, --send-timeout
 * and --drain-timeout, and bench's --warmup.
 *
 * Input: the timeout's text (no NUL). Properties:
 *   - 0 exactly for a zero written in seconds' syntax: digits all 0, at least
 *     one, and at most one '.';
 *   - otherwise exactly what parse_seconds says, with its reason on failure. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "lib/util.h"

static int written_zero(const char *s)
{
    size_t zeros = 0, dots = 0;

    for (const char *p = s; *p; p++) {
        if (*p == '0')
            zeros++;
        else if (*p == '.')
            dots++;
        else
            return 0;
    }
    return zeros > 0 && dots <= 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_cstr(data, size);
    char err[64], err2[64];
    long ms, plain;

    if (s == NULL)
        return 0;
    err[0] = err2[0] = '\0';
    ms = parse_timeout(s, err, sizeof err);
    if (written_zero(s)) {
        FUZZ_CHECK(ms == 0, "parse_timeout('%s') = %ld, not 0", s, ms);
    } else {
        plain = parse_seconds(s, err2, sizeof err2);
        FUZZ_CHECK(ms == plain, "parse_timeout('%s') = %ld, parse_seconds %ld", s, ms, plain);
        if (ms < 0) {
            FUZZ_CHECK(strcmp(err, err2) == 0, "'%s': '%s' vs '%s'", s, err, err2);
            FUZZ_CHECK_ERR(err, sizeof err, s);
        }
    }
    FUZZ_CHECK(parse_timeout(s, NULL, 0) == ms, "'%s': no error buffer", s);
    free(s);
    return 0;
}
