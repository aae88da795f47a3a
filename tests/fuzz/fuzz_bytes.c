/* fuzz_bytes.c — parse_bytes (util.c): serve's --max-buffer.
 *
 * Input: the byte count's text (no NUL). The first two input bytes, when present,
 * pick the range from a small table (the callers' and edge cases). Properties:
 *   - success: exactly the value an independent reader gives (DIGITS with an
 *     optional k/K or m/M suffix for KiB or MiB), within [min, max];
 *   - failure: exactly when that reader rejects; the reason is non-empty and
 *     printable; *out is untouched;
 *   - an error buffer of any size, or none, changes nothing but the message. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "lib/util.h"

static const unsigned long ranges[][2] = {
    { 1024, 64UL << 20 },           /* --max-buffer */
    { 0, 1 }, { 1, 1 }, { 0, 1023 }, { 1024, 1024 }, { 0, (unsigned long)-1 },
    { 1UL << 20, 1UL << 20 }, { 5, 100000 },
};

/* The value, or -1 if the text is not a valid count in range. */
static int reference(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
    size_t n = strlen(s), digits;
    unsigned long unit = 1, v = 0;

    if (n > 0 && strchr("kKmM", s[n - 1])) {
        unit = (s[n - 1] == 'k' || s[n - 1] == 'K') ? 1024UL : 1024UL * 1024;
        n--;
    }
    digits = strspn(s, "0123456789");
    if (n == 0 || digits != n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (v > (max / unit - (unsigned long)(s[i] - '0')) / 10)
            return -1;          /* past max / unit */
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v * unit < min)
        return -1;
    *out = v * unit;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned long min, max, out = 12345, ref = 0, again = 0;
    size_t pick = size > 0 ? data[0] % (sizeof ranges / sizeof ranges[0]) : 0;
    char *s = size > 1 ? fuzz_cstr(data + 1, size - 1) : fuzz_cstr(data, 0);
    char err[64], tiny[2];
    int rc, rrc;

    if (s == NULL)
        return 0;
    min = ranges[pick][0];
    max = ranges[pick][1];
    err[0] = '\0';
    rc = parse_bytes(s, min, max, &out, err, sizeof err);
    rrc = reference(s, min, max, &ref);
    FUZZ_CHECK(rc == rrc, "parse_bytes('%s', %lu, %lu) = %d, the reference %d (err '%s')", s, min,
               max, rc, rrc, err);
    FUZZ_CHECK(parse_bytes(s, min, max, &again, NULL, 0) == rc, "'%s': no error buffer", s);
    FUZZ_CHECK(parse_bytes(s, min, max, &again, tiny, sizeof tiny) == rc, "'%s': tiny buffer", s);
    if (rc == 0) {
        FUZZ_CHECK(out == ref, "'%s' = %lu, the reference %lu", s, out, ref);
        FUZZ_CHECK(out >= min && out <= max, "'%s' = %lu outside [%lu, %lu]", s, out, min, max);
    } else {
        FUZZ_CHECK(out == 12345, "'%s': *out changed on failure", s);
        FUZZ_CHECK_ERR(err, sizeof err, s);
    }
    free(s);
    return 0;
}
