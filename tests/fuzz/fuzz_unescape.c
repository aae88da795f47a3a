/* fuzz_unescape.c — unescape (the --message escapes \n \r \t \\, util.c), and
 * printable on its error messages.
 *
 * Input: the escaped text (no NUL). dst is exactly strlen(src) + 1 bytes, the
 * size the contract promises is enough, so ASan catches any write past it.
 * Properties:
 *   - success: the length is <= the input's, dst is NUL-terminated at that
 *     length with no NUL before it, and it equals an independent decoder's
 *     output; escaping the output again and decoding that gives it back;
 *   - failure: exactly when the reference finds a lone trailing backslash or a
 *     backslash before anything but n r t \; the reason is non-empty and
 *     printable, and the same with an error buffer of any size or none. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "lib/util.h"

#define ERRLEN 256

/* The reference: returns the decoded length, or -1. */
static long reference(const char *src, char *dst)
{
    static const char from[] = "nrt\\", to[] = "\n\r\t\\";
    size_t o = 0;

    for (size_t i = 0; src[i]; i++) {
        const char *e;

        if (src[i] != '\\') {
            dst[o++] = src[i];
            continue;
        }
        i++;
        e = src[i] ? strchr(from, src[i]) : NULL;
        if (e == NULL)
            return -1;
        dst[o++] = to[e - from];
    }
    dst[o] = '\0';
    return (long)o;
}

/* The inverse: what a user would type to get plain back. */
static char *escape(const char *plain, size_t len)
{
    char *out = malloc(2 * len + 1), *o = out;

    if (out == NULL)
        abort();
    for (size_t i = 0; i < len; i++) {
        switch (plain[i]) {
        case '\n': *o++ = '\\'; *o++ = 'n'; break;
        case '\r': *o++ = '\\'; *o++ = 'r'; break;
        case '\t': *o++ = '\\'; *o++ = 't'; break;
        case '\\': *o++ = '\\'; *o++ = '\\'; break;
        default: *o++ = plain[i]; break;
        }
    }
    *o = '\0';
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *src = fuzz_cstr(data, size);
    char *dst, *ref, *again, *back;
    char err[ERRLEN], tiny[3];
    long len, ref_len;

    if (src == NULL)
        return 0;
    dst = malloc(size + 1);
    ref = malloc(size + 1);
    if (dst == NULL || ref == NULL)
        abort();

    len = unescape(src, dst, err, sizeof err);
    ref_len = reference(src, ref);
    FUZZ_CHECK(len == ref_len, "unescape gives %ld, the reference %ld", len, ref_len);
    FUZZ_CHECK(unescape(src, dst, NULL, 0) == len, "result changes without an error buffer");
    FUZZ_CHECK(unescape(src, dst, tiny, sizeof tiny) == len,
               "result changes with a 3-byte error buffer");
    if (len < 0) {
        FUZZ_CHECK_ERR(err, sizeof err, src);
        FUZZ_CHECK(strstr(err, "escape") != NULL || strstr(err, "backslash") != NULL,
                   "reason '%s' names no escape", err);
        FUZZ_CHECK(memchr(tiny, '\0', sizeof tiny) != NULL, "3-byte error not terminated");
        FUZZ_CHECK(fuzz_printable(tiny), "control character in truncated error");
    } else {
        FUZZ_CHECK((size_t)len <= size, "decoded %ld bytes from %zu", len, size);
        FUZZ_CHECK(dst[len] == '\0', "output not NUL-terminated at its length");
        FUZZ_CHECK(strlen(dst) == (size_t)len, "NUL inside the output");
        FUZZ_CHECK(memcmp(dst, ref, (size_t)len) == 0, "output differs from the reference");

        again = escape(dst, (size_t)len);
        back = malloc(strlen(again) + 1);
        if (back == NULL)
            abort();
        FUZZ_CHECK(unescape(again, back, err, sizeof err) == len,
                   "escaped output '%s' does not decode to %ld bytes", again, len);
        FUZZ_CHECK(memcmp(back, dst, (size_t)len + 1) == 0, "escape round trip differs");
        free(again);
        free(back);
    }
    free(src);
    free(dst);
    free(ref);
    return 0;
}
