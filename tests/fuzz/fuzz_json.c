/* fuzz_json.c — json_parse and the getters (proto/json.c) on arbitrary bytes.
 *
 * Properties: the parse either fails with a one-line reason naming a byte offset
 * within the input, or succeeds with tokens that are well formed: each inside the
 * text and inside its parent, spans that add up (an object's children come in
 * key-value pairs whose keys are strings), and every getter on every token
 * returning without reading past the text (ASan watches the exact-size copy). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "proto/json.h"

#define TOKS 4096

static size_t check_tok(const char *text, size_t len, const struct json_tok *t, size_t i,
                        size_t used)
{
    const struct json_tok *k = &t[i];
    size_t next = i + 1;

    FUZZ_CHECK(k->start <= k->end && k->end <= len, "token %zu outside the text", i);
    FUZZ_CHECK(k->span >= 1 && i + k->span <= used, "token %zu spans past the end", i);
    if (k->type == JSON_ARRAY || k->type == JSON_OBJECT) {
        for (size_t c = 0; c < k->children; c++) {
            if (k->type == JSON_OBJECT) {
                FUZZ_CHECK(t[next].type == JSON_STRING, "key %zu of %zu is no string", c, i);
                next = check_tok(text, len, t, next, used);
            }
            FUZZ_CHECK(t[next].start >= k->start && t[next].end <= k->end,
                       "child of %zu outside it", i);
            next = check_tok(text, len, t, next, used);
        }
        FUZZ_CHECK(next == i + k->span, "span of %zu is %zu, children end at %zu", i, k->span,
                   next - i);
    }
    return next;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size ? size : 1), err[128], buf[64];
    struct json_tok toks[TOKS];
    long n;

    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    n = json_parse(text, size, toks, TOKS, err, sizeof err);
    if (n < 0) {
        unsigned long at;

        FUZZ_CHECK(strchr(err, '\n') == NULL && sscanf(strstr(err, "at byte ") ?
                   strstr(err, "at byte ") : "", "at byte %lu", &at) == 1 && at <= size,
                   "reason '%s'", err);
    } else {
        FUZZ_CHECK(n >= 1 && check_tok(text, size, toks, 0, (size_t)n) == (size_t)n,
                   "the tokens do not add up");
        for (long i = 0; i < n; i++) {
            double d;
            uint64_t u;

            (void)json_double(text, &toks[i], &d);
            (void)json_u64(text, &toks[i], &u);
            (void)json_string(text, &toks[i], buf, sizeof buf);
            (void)json_get(text, toks, (size_t)i, "histogram");
            (void)json_at(toks, (size_t)i, 1);
        }
    }
    free(text);
    return 0;
}
