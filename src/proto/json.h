/* json.h — a small, strict JSON reader (RFC 8259) for what kodama reads back of
 * its own output: `bench --merge` reads bench's --json reports.
 *
 * The text is parsed into a flat array of tokens, each a value with its place in
 * the text and, for objects and arrays, the number of tokens it spans (so a
 * value's siblings can be skipped over without recursion). Nothing is allocated:
 * the caller gives the token array. Pure: unit-tested and fuzzed. */
#ifndef KODAMA_JSON_H
#define KODAMA_JSON_H

#include <stddef.h>
#include <stdint.h>

enum json_type { JSON_NULL, JSON_FALSE, JSON_TRUE, JSON_NUMBER, JSON_STRING, JSON_ARRAY,
                 JSON_OBJECT };

struct json_tok {
    enum json_type type;
    size_t start, end;      /* the value's text: [start, end); a string's without quotes */
    size_t span;            /* tokens from this one to the end of its value, itself included */
    size_t children;        /* an array's values, an object's keys (each key is a string
                             * token followed by its value) */
};

#define JSON_DEPTH_MAX 32

/* Parse text[0..len) into at most ntoks tokens. Returns the number used (the first
 * is the whole document), or -1 with a one-line reason and its byte offset in err:
 * a syntax error, a nesting deeper than JSON_DEPTH_MAX, too many tokens, or bytes
 * after the document. */
long json_parse(const char *text, size_t len, struct json_tok *toks, size_t ntoks,
                char *err, size_t errlen);

/* In the object at toks[obj], the value of key (a plain key, compared byte for
 * byte with the unescaped text); -1 if there is none or toks[obj] is no object. */
long json_get(const char *text, const struct json_tok *toks, size_t obj, const char *key);

/* The n-th value of the array at toks[arr]; -1 past its end. */
long json_at(const struct json_tok *toks, size_t arr, size_t n);

/* A number's value: 0, or -1 if the token is not a number. */
int json_double(const char *text, const struct json_tok *t, double *out);
/* A number that is a whole number from 0 to 2^64-1, exactly: 0, or -1. */
int json_u64(const char *text, const struct json_tok *t, uint64_t *out);

/* A string's value, unescaped (\uXXXX as UTF-8; an unpaired surrogate as U+FFFD),
 * into out (NUL-terminated, cut to fit). Returns its full length, or -1 if the
 * token is not a string. */
long json_string(const char *text, const struct json_tok *t, char *out, size_t outlen);

#endif
