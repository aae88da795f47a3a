/* json.c — see json.h. A recursive-descent parser with an explicit depth bound;
 * every token records where its value ends, so lookups never re-parse. */
#include "proto/json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct parser {
    const char *s;
    size_t len, pos;
    struct json_tok *toks;
    size_t ntoks, used;
    char *err;
    size_t errlen;
};

static int fail(struct parser *p, const char *why)
{
    if (p->err && p->errlen)
        snprintf(p->err, p->errlen, "%s at byte %zu", why, p->pos);
    return -1;
}

static void skip_ws(struct parser *p)
{
    while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
                               p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
        p->pos++;
}

static long new_tok(struct parser *p, enum json_type type)
{
    struct json_tok *t;

    if (p->used == p->ntoks)
        return fail(p, "too many values");
    t = &p->toks[p->used];
    t->type = type;
    t->start = p->pos;
    t->end = p->pos;
    t->span = 1;
    t->children = 0;
    return (long)p->used++;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int parse_value(struct parser *p, int depth);

/* "...": escapes checked (\uXXXX needs four hex digits), raw control bytes refused. */
static int parse_string(struct parser *p)
{
    long t = new_tok(p, JSON_STRING);

    if (t < 0)
        return -1;
    p->pos++;   /* the opening quote */
    p->toks[t].start = p->pos;
    while (p->pos < p->len) {
        unsigned char c = (unsigned char)p->s[p->pos];

        if (c == '"') {
            p->toks[t].end = p->pos++;
            return 0;
        }
        if (c < 0x20)
            return fail(p, "a control byte in a string");
        if (c == '\\') {
            char e;

            if (++p->pos >= p->len)
                break;
            e = p->s[p->pos];
            if (e == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (p->pos + (size_t)i >= p->len || !is_hex(p->s[p->pos + (size_t)i]))
                        return fail(p, "a bad \\u escape");
                p->pos += 4;
            } else if (!strchr("\"\\/bfnrt", e)) {
                return fail(p, "a bad escape");
            }
        }
        p->pos++;
    }
    return fail(p, "an unterminated string");
}

static int parse_number(struct parser *p)
{
    long t = new_tok(p, JSON_NUMBER);
    size_t start = p->pos;

    if (t < 0)
        return -1;
    if (p->pos < p->len && p->s[p->pos] == '-')
        p->pos++;
    if (p->pos < p->len && p->s[p->pos] == '0') {
        p->pos++;
    } else if (p->pos < p->len && is_digit(p->s[p->pos])) {
        while (p->pos < p->len && is_digit(p->s[p->pos]))
            p->pos++;
    } else {
        return fail(p, "a bad number");
    }
    if (p->pos < p->len && p->s[p->pos] == '.') {
        if (++p->pos >= p->len || !is_digit(p->s[p->pos]))
            return fail(p, "a bad number");
        while (p->pos < p->len && is_digit(p->s[p->pos]))
            p->pos++;
    }
    if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        p->pos++;
        if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
            p->pos++;
        if (p->pos >= p->len || !is_digit(p->s[p->pos]))
            return fail(p, "a bad number");
        while (p->pos < p->len && is_digit(p->s[p->pos]))
            p->pos++;
    }
    p->toks[t].start = start;
    p->toks[t].end = p->pos;
    return 0;
}

static int parse_word(struct parser *p, const char *word, enum json_type type)
{
    size_t n = strlen(word);
    long t;

    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
        return fail(p, "an unexpected character");
    if ((t = new_tok(p, type)) < 0)
        return -1;
    p->pos += n;
    p->toks[t].end = p->pos;
    return 0;
}

/* [ value, ... ] or { "key": value, ... } */
static int parse_container(struct parser *p, int depth, int object)
{
    long t = new_tok(p, object ? JSON_OBJECT : JSON_ARRAY);
    char close = object ? '}' : ']';

    if (t < 0)
        return -1;
    if (depth >= JSON_DEPTH_MAX)
        return fail(p, "nested too deep");
    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
        p->toks[t].end = p->pos;
        return 0;
    }
    for (;;) {
        skip_ws(p);
        if (object) {
            if (p->pos >= p->len || p->s[p->pos] != '"')
                return fail(p, "a key must be a string");
            if (parse_string(p) < 0)
                return -1;
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':')
                return fail(p, "a ':' expected");
            p->pos++;
        }
        if (parse_value(p, depth + 1) < 0)
            return -1;
        p->toks[t].children++;
        skip_ws(p);
        if (p->pos < p->len && p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->len && p->s[p->pos] == close) {
            p->pos++;
            p->toks[t].end = p->pos;
            p->toks[t].span = p->used - (size_t)t;
            return 0;
        }
        return fail(p, object ? "a ',' or '}' expected" : "a ',' or ']' expected");
    }
}

static int parse_value(struct parser *p, int depth)
{
    skip_ws(p);
    if (p->pos >= p->len)
        return fail(p, "a value expected");
    switch (p->s[p->pos]) {
    case '{': return parse_container(p, depth, 1);
    case '[': return parse_container(p, depth, 0);
    case '"': return parse_string(p);
    case 't': return parse_word(p, "true", JSON_TRUE);
    case 'f': return parse_word(p, "false", JSON_FALSE);
    case 'n': return parse_word(p, "null", JSON_NULL);
    default: return parse_number(p);
    }
}

long json_parse(const char *text, size_t len, struct json_tok *toks, size_t ntoks,
                char *err, size_t errlen)
{
    struct parser p = { .s = text, .len = len, .toks = toks, .ntoks = ntoks, .err = err,
                        .errlen = errlen };

    if (parse_value(&p, 0) < 0)
        return -1;
    skip_ws(&p);
    if (p.pos != len)
        return fail(&p, "bytes after the value");
    return (long)p.used;
}

long json_get(const char *text, const struct json_tok *toks, size_t obj, const char *key)
{
    size_t klen = strlen(key), i = obj + 1;

    if (toks[obj].type != JSON_OBJECT)
        return -1;
    for (size_t n = 0; n < toks[obj].children; n++) {
        const struct json_tok *k = &toks[i];
        char buf[256];
        long l = json_string(text, k, buf, sizeof buf);

        if (l >= 0 && (size_t)l == klen && memcmp(buf, key, klen) == 0)
            return (long)(i + 1);
        i += 1 + toks[i + 1].span;   /* the key, then its value */
    }
    return -1;
}

long json_at(const struct json_tok *toks, size_t arr, size_t n)
{
    size_t i = arr + 1;

    if (toks[arr].type != JSON_ARRAY || n >= toks[arr].children)
        return -1;
    while (n-- > 0)
        i += toks[i].span;
    return (long)i;
}

int json_double(const char *text, const struct json_tok *t, double *out)
{
    char buf[64], *end;
    size_t n = t->end - t->start;

    if (t->type != JSON_NUMBER || n >= sizeof buf)
        return -1;
    memcpy(buf, text + t->start, n);
    buf[n] = '\0';
    errno = 0;
    *out = strtod(buf, &end);
    return *end == '\0' && errno != ERANGE ? 0 : -1;
}

int json_u64(const char *text, const struct json_tok *t, uint64_t *out)
{
    uint64_t v = 0;

    if (t->type != JSON_NUMBER || t->end == t->start)
        return -1;
    for (size_t i = t->start; i < t->end; i++) {
        unsigned d;

        if (!is_digit(text[i]))
            return -1;  /* a sign, a fraction or an exponent */
        d = (unsigned)(text[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static unsigned hex4(const char *s)
{
    unsigned v = 0;

    for (int i = 0; i < 4; i++) {
        char c = s[i];

        v = v * 16 + (unsigned)(is_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return v;
}

static size_t put_utf8(char *out, size_t outlen, size_t n, unsigned cp)
{
    char b[4];
    size_t k;

    if (cp < 0x80) {
        b[0] = (char)cp;
        k = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xc0 | cp >> 6);
        b[1] = (char)(0x80 | (cp & 0x3f));
        k = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xe0 | cp >> 12);
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        b[2] = (char)(0x80 | (cp & 0x3f));
        k = 3;
    } else {
        b[0] = (char)(0xf0 | cp >> 18);
        b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        b[3] = (char)(0x80 | (cp & 0x3f));
        k = 4;
    }
    for (size_t i = 0; i < k; i++, n++)
        if (n + 1 < outlen)
            out[n] = b[i];
    return n;
}

long json_string(const char *text, const struct json_tok *t, char *out, size_t outlen)
{
    size_t n = 0;

    if (t->type != JSON_STRING)
        return -1;
    for (size_t i = t->start; i < t->end; i++) {
        unsigned cp;

        if (text[i] != '\\') {
            if (n + 1 < outlen)
                out[n] = text[i];
            n++;
            continue;
        }
        switch (text[++i]) {
        case 'b': cp = '\b'; break;
        case 'f': cp = '\f'; break;
        case 'n': cp = '\n'; break;
        case 'r': cp = '\r'; break;
        case 't': cp = '\t'; break;
        case 'u':
            cp = hex4(text + i + 1);
            i += 4;
            if (cp >= 0xd800 && cp < 0xdc00 && i + 6 < t->end && text[i + 1] == '\\' &&
                text[i + 2] == 'u' && hex4(text + i + 3) >= 0xdc00 && hex4(text + i + 3) < 0xe000) {
                cp = 0x10000 + ((cp - 0xd800) << 10) + (hex4(text + i + 3) - 0xdc00);
                i += 6;
            } else if (cp >= 0xd800 && cp < 0xe000) {
                cp = 0xfffd;    /* an unpaired surrogate */
            }
            break;
        default: cp = (unsigned char)text[i]; break;   /* " \ / */
        }
        n = put_utf8(out, outlen, n, cp);
    }
    if (outlen)
        out[n < outlen ? n : outlen - 1] = '\0';
    return (long)n;
}
