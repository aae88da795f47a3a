/* fuzz.h — what the libFuzzer harnesses share: turning the fuzzer's bytes into a
 * C string the way argv would hold it, a property check that aborts with a reason
 * (libFuzzer reports the abort as a crash and saves the input), and the checks
 * every error message must pass. Header-only: each harness is one file. */
#ifndef KODAMA_FUZZ_H
#define KODAMA_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Longer inputs teach nothing the first few KiB do not, and slow every run. */
#define FUZZ_TEXT_MAX 4096

#define FUZZ_CHECK(cond, ...)                                                     \
    do {                                                                          \
        if (!(cond)) {                                                            \
            fprintf(stderr, "fuzz: %s:%d: property failed: %s\n  ", __FILE__,    \
                    __LINE__, #cond);                                             \
            fprintf(stderr, __VA_ARGS__);                                         \
            fputc('\n', stderr);                                                  \
            abort();                                                              \
        }                                                                         \
    } while (0)

/* A heap copy of data as a C string, sized exactly (so ASan sees a read past its
 * NUL), or NULL when the bytes could not be a command-line argument: an embedded
 * NUL, or longer than FUZZ_TEXT_MAX. The caller frees it. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s;

    if (size > FUZZ_TEXT_MAX || memchr(data, '\0', size) != NULL)
        return NULL;
    s = malloc(size + 1);
    if (s == NULL)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* True if s has no control characters: it can go on one log line as it is. */
static inline int fuzz_printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

/* A failed parse's reason: NUL-terminated inside err[errlen], non-empty, and
 * printable. */
#define FUZZ_CHECK_ERR(err, errlen, input)                                        \
    do {                                                                          \
        FUZZ_CHECK(memchr((err), '\0', (errlen)) != NULL,                         \
                   "error not NUL-terminated for input '%s'", (input));           \
        FUZZ_CHECK((err)[0] != '\0', "empty error for input '%s'", (input));      \
        FUZZ_CHECK(fuzz_printable(err), "control character in error '%s'", (err)); \
    } while (0)

#endif
