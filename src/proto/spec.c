/* spec.c — the SPEC grammar (see spec.h).
 *
 * The text is taken apart from the outside in: the service before the first '@';
 * the options after the first unescaped ','; then, from the end of what is left,
 * "+tls", "+proxy" and "/tcp" or "/udp"; and what remains is the address. */
#include "proto/spec.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

/* Every parse error ends by quoting the SPEC, so the user sees which one; a long
 * one is shortened so that the message still fits and ends with its quote. */
#define SPEC_QUOTE_MAX 64
#define SPEC_TEXT_MAX 1024          /* longer SPECs are refused whole */

#define BOTH (PROTO_TCP | PROTO_UDP)
#define RELAY_UP (SPEC_KEY_RELAY)
#define RELAY_FIXED (SPEC_KEY_RELAY | SPEC_KEY_FIXED)

/* The faults (docs/kodama.1, FAULTS) and the relay's keys. A fault key "up-KEY" is
 * KEY toward a relay's target. */
const struct spec_key spec_keys[] = {
    { "latency", SPEC_DURATION_JITTER, BOTH, 0 },
    { "rate", SPEC_SIZE, BOTH, 0 },
    { "slice", SPEC_SIZE_JITTER, PROTO_TCP, 0 },
    { "slice-delay", SPEC_DURATION, PROTO_TCP, 0 },
    { "greet-delay", SPEC_DURATION, PROTO_TCP, 0 },
    { "close-after", SPEC_SIZE, PROTO_TCP, 0 },
    { "reset-after", SPEC_SIZE, PROTO_TCP, 0 },
    { "stall-after", SPEC_SIZE, PROTO_TCP, 0 },
    { "drop", SPEC_PROBABILITY, PROTO_UDP, 0 },
    { "dup", SPEC_PROBABILITY, PROTO_UDP, 0 },
    { "toxicity", SPEC_PROBABILITY, BOTH, 0 },
    { "name", SPEC_NAME, BOTH, SPEC_KEY_FIXED },
    { "to", SPEC_TEXT, PROTO_TCP, RELAY_FIXED },
    { "connect-timeout", SPEC_DURATION, PROTO_TCP, RELAY_FIXED },
    { "send-proxy", SPEC_FLAG, PROTO_TCP, RELAY_FIXED },
    { "send-proxy-v2", SPEC_FLAG, PROTO_TCP, RELAY_FIXED },
    { "up-latency", SPEC_DURATION_JITTER, PROTO_TCP, RELAY_UP },
    { "up-rate", SPEC_SIZE, PROTO_TCP, RELAY_UP },
    { "up-slice", SPEC_SIZE_JITTER, PROTO_TCP, RELAY_UP },
    { "up-slice-delay", SPEC_DURATION, PROTO_TCP, RELAY_UP },
    { "up-greet-delay", SPEC_DURATION, PROTO_TCP, RELAY_UP },
    { "up-close-after", SPEC_SIZE, PROTO_TCP, RELAY_UP },
    { "up-reset-after", SPEC_SIZE, PROTO_TCP, RELAY_UP },
    { "up-stall-after", SPEC_SIZE, PROTO_TCP, RELAY_UP },
    { NULL, SPEC_TEXT, 0, 0 },
};

static int spec_error(char *err, size_t errlen, const char *text, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int spec_error(char *err, size_t errlen, const char *text, const char *fmt, ...)
{
    char what[200];
    va_list ap;
    int len = (int)strlen(text);

    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (err && errlen) {
        if (len > SPEC_QUOTE_MAX)
            snprintf(err, errlen, "%s in '%.*s...'", what, SPEC_QUOTE_MAX, text);
        else
            snprintf(err, errlen, "%s in '%s'", what, text);
        printable(err);
    }
    return -1;
}

/* ------------------------------------------------------------------ values */

static void set_reason(char *err, size_t errlen, const char *why)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", why);
}

int spec_duration(const char *s, long *ms, char *err, size_t errlen)
{
    char num[32], why[KODAMA_ERR_LEN];
    size_t n = strlen(s);
    long scale = 1000;

    if (n >= 2 && strcmp(s + n - 2, "ms") == 0) {
        scale = 1;
        n -= 2;
    } else if (n >= 1 && s[n - 1] == 's') {
        n--;
    }
    if (n == 0 || n >= sizeof num) {
        set_reason(err, errlen, "not a duration (seconds, or with ms or s)");
        return -1;
    }
    memcpy(num, s, n);
    num[n] = '\0';
    if (scale == 1) {
        unsigned long v;

        if (parse_uint(num, 0, 86400000UL, &v, why, sizeof why) < 0) {
            set_reason(err, errlen, strcmp(why, "too large") == 0 ? "longer than a day"
                                                                   : "not a duration (seconds, or with ms or s)");
            return -1;
        }
        *ms = (long)v;
        return 0;
    }
    *ms = parse_timeout(num, why, sizeof why);
    if (*ms < 0) {
        set_reason(err, errlen, strstr(why, "too large") ? "longer than a day" :
                   strstr(why, "millisecond") ? "finer than a millisecond"
                                              : "not a duration (seconds, or with ms or s)");
        return -1;
    }
    return 0;
}

int spec_size(const char *s, unsigned long *bytes, char *err, size_t errlen)
{
    return parse_bytes(s, 0, 1UL << 40, bytes, err, errlen);
}

int spec_probability(const char *s, double *p, char *err, size_t errlen)
{
    size_t n = strlen(s);
    int percent = n > 0 && s[n - 1] == '%';
    unsigned long whole = 0, frac = 0, scale = 1;
    const char *q = s;
    int digits = 0;

    for (; *q >= '0' && *q <= '9' && whole < 1000; q++, digits++)
        whole = whole * 10 + (unsigned long)(*q - '0');
    if (*q == '.')
        for (q++; *q >= '0' && *q <= '9' && scale < 1000000000UL; q++, digits++) {
            frac = frac * 10 + (unsigned long)(*q - '0');
            scale *= 10;
        }
    if (digits == 0 || q != s + n - (size_t)percent) {
        set_reason(err, errlen, "not a probability (0 to 1, or 0% to 100%)");
        return -1;
    }
    *p = ((double)whole + (double)frac / (double)scale) / (percent ? 100.0 : 1.0);
    if (*p > 1.0) {
        set_reason(err, errlen, "more than 1 (100%)");
        return -1;
    }
    return 0;
}

/* "VALUE~JITTER": the two halves, the jitter "" when there is none. */
static void split_jitter(char *value, char **jitter)
{
    char *tilde = strchr(value, '~');

    *jitter = NULL;
    if (tilde) {
        *tilde = '\0';
        *jitter = tilde + 1;
    }
}

static int parse_value(struct spec_opt *o, const char *text, char *err, size_t errlen)
{
    char buf[SPEC_VALUE_MAX + 1], *jitter;

    snprintf(buf, sizeof buf, "%s", o->text);
    switch (o->key->type) {
    case SPEC_DURATION:
    case SPEC_DURATION_JITTER:
        split_jitter(buf, &jitter);
        if (jitter && o->key->type == SPEC_DURATION)
            return spec_error(err, errlen, text, "%s takes no ~JITTER", o->key->name);
        if (spec_duration(buf, &o->ms, err, errlen) < 0 ||
            (jitter && spec_duration(jitter, &o->jitter_ms, err, errlen) < 0))
            goto bad;
        return 0;
    case SPEC_SIZE:
    case SPEC_SIZE_JITTER:
        split_jitter(buf, &jitter);
        if (jitter && o->key->type == SPEC_SIZE)
            return spec_error(err, errlen, text, "%s takes no ~JITTER", o->key->name);
        if (spec_size(buf, &o->bytes, err, errlen) < 0 ||
            (jitter && spec_size(jitter, &o->jitter, err, errlen) < 0))
            goto bad;
        return 0;
    case SPEC_PROBABILITY:
        if (spec_probability(buf, &o->p, err, errlen) < 0)
            goto bad;
        return 0;
    case SPEC_TEXT:
        if (buf[0] == '\0' || strcspn(buf, " \t") != strlen(buf))
            return spec_error(err, errlen, text, "%s needs a value without spaces", o->key->name);
        return 0;
    case SPEC_NAME:
        if (buf[0] == '\0' || strlen(buf) > SPEC_NAME_MAX ||
            strspn(buf, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") !=
                strlen(buf))
            return spec_error(err, errlen, text, "%s needs 1 to %d letters, digits, '.', '_' "
                              "or '-'", o->key->name, SPEC_NAME_MAX);
        return 0;
    case SPEC_FLAG:
        return 0;
    }
bad:
    {
        char why[KODAMA_ERR_LEN];

        snprintf(why, sizeof why, "%s", err && errlen ? err : "bad value");
        return spec_error(err, errlen, text, "%s=%.*s: %s", o->key->name, 40, o->text, why);
    }
}

/* ------------------------------------------------------------------ escapes */

/* The first ',' in s[0..len) that is not written "\,", or NULL. */
static const char *unescaped_comma(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\\' && i + 1 < len && (s[i + 1] == ',' || s[i + 1] == '\\'))
            i++;
        else if (s[i] == ',')
            return s + i;
    }
    return NULL;
}

/* s[0..len) with "\," and "\\" decoded, into out (cap bytes); returns the length,
 * or -1 if it does not fit. */
static long decode(const char *s, size_t len, char *out, size_t cap)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        char c = s[i];

        if (c == '\\' && i + 1 < len && (s[i + 1] == ',' || s[i + 1] == '\\'))
            c = s[++i];
        if (n + 1 >= cap)
            return -1;
        out[n++] = c;
    }
    out[n] = '\0';
    return (long)n;
}

/* ------------------------------------------------------------------ the address */

static int parse_service(const char *text, const char *at, struct spec *sp, char *err,
                         size_t errlen)
{
    size_t len = (size_t)(at - text);

    if (len == 0)
        return spec_error(err, errlen, text, "missing service");
    if (len > SPEC_SERVICE_MAX || strspn(text, "abcdefghijklmnopqrstuvwxyz0123456789-") < len)
        return spec_error(err, errlen, text, "invalid service name '%.*s'",
                          (int)(len > 40 ? 40 : len), text);
    memcpy(sp->service, text, len);
    sp->service[len] = '\0';
    return 0;
}

/* The reason quotes the text: no control character may reach a terminal. */
static int port_error(char *err, size_t errlen)
{
    if (err && errlen)
        printable(err);
    return -1;
}

static int one_port(const char *s, size_t len, unsigned long *port, char *err, size_t errlen)
{
    char buf[16];

    *port = 0;
    if (len == 0) {
        snprintf(err, errlen, "missing port");
        return -1;
    }
    if (len >= sizeof buf) {
        snprintf(err, errlen, "invalid port '%.*s'", (int)(len > 40 ? 40 : len), s);
        return port_error(err, errlen);
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (parse_uint(buf, 0, 65535, port, NULL, 0) < 0) {
        snprintf(err, errlen, "invalid port '%s'", buf);
        return port_error(err, errlen);
    }
    return 0;
}

int spec_port_range(const char *s, size_t len, unsigned long max_ports, uint16_t *first,
                    uint16_t *last, char *err, size_t errlen)
{
    const char *dash = memchr(s, '-', len);
    unsigned long a = 0, b = 0;     /* set by one_port; zeroed for the analyzer */

    if (dash == NULL || dash == s) {   /* "-1" is no range: an invalid port */
        if (one_port(s, len, &a, err, errlen) < 0)
            return -1;
        *first = *last = (uint16_t)a;
        return 0;
    }
    if (one_port(s, (size_t)(dash - s), &a, err, errlen) < 0 ||
        one_port(dash + 1, (size_t)(s + len - dash - 1), &b, err, errlen) < 0)
        return -1;
    if (a == 0)
        snprintf(err, errlen, "a port range cannot start at 0");
    else if (b < a)
        snprintf(err, errlen, "port range %lu-%lu runs backwards", a, b);
    else if (b - a + 1 > max_ports)
        snprintf(err, errlen, "port range of %lu ports (at most %lu)", b - a + 1, max_ports);
    else {
        *first = (uint16_t)a;
        *last = (uint16_t)b;
        return 0;
    }
    return port_error(err, errlen);
}

/* PORT or PORT-PORT. */
static int parse_port(const char *text, const char *s, size_t len, struct spec *sp,
                      char *err, size_t errlen)
{
    char why[96];

    if (spec_port_range(s, len, SPEC_PORTS_MAX, &sp->port, &sp->port_last, why, sizeof why) < 0)
        return spec_error(err, errlen, text, "%s", why);
    return 0;
}

static int set_host(const char *text, const char *s, size_t len, struct spec *sp,
                    char *err, size_t errlen)
{
    if (len == 0)
        return spec_error(err, errlen, text, "missing host");
    if (len > SPEC_HOST_MAX)
        return spec_error(err, errlen, text, "host name too long");
    memcpy(sp->host, s, len);
    sp->host[len] = '\0';
    sp->kind = ADDR_HOST;
    return 0;
}

static int parse_unix(const char *text, const char *s, size_t len, struct spec *sp,
                      char *err, size_t errlen)
{
    sp->kind = ADDR_UNIX;
    if (len > 0 && s[0] == '@') {
        sp->abstract = 1;
        s++;
        len--;
    }
    if (len == 0)
        return spec_error(err, errlen, text, sp->abstract ? "missing name" : "missing path");
    if (len > SPEC_PATH_MAX)
        return spec_error(err, errlen, text, sp->abstract ? "abstract socket name longer than %zu bytes"
                                                           : "unix socket path longer than %zu bytes",
                          (size_t)SPEC_PATH_MAX);
    memcpy(sp->path, s, len);
    sp->path[len] = '\0';
    return 0;
}

/* [IPV6]:PORT */
static int parse_bracketed(const char *text, const char *s, size_t len, struct spec *sp,
                           char *err, size_t errlen)
{
    const char *close = memchr(s, ']', len);
    const char *rest;

    if (close == NULL)
        return spec_error(err, errlen, text, "missing ']'");
    if (set_host(text, s + 1, (size_t)(close - s - 1), sp, err, errlen) < 0)
        return -1;
    rest = close + 1;
    if (rest == s + len || *rest != ':')
        return spec_error(err, errlen, text, "missing ':PORT' after ']'");
    return parse_port(text, rest + 1, (size_t)(s + len - rest - 1), sp, err, errlen);
}

static int word_is(const char *s, size_t n, const char *word)
{
    return strlen(word) == n && memcmp(s, word, n) == 0;
}

/* Strips a trailing /tcp or /udp; anything else after the last '/' of a network
 * address is an unknown protocol (unix paths keep their slashes). */
static int parse_proto(const char *text, const char *addr, size_t *len, struct spec *sp,
                       char *err, size_t errlen)
{
    int is_unix = strncmp(addr, "unix:", 5) == 0;
    const char *slash = memrchr(addr, '/', *len);
    const char *proto;
    size_t plen;

    sp->protos = PROTO_TCP | PROTO_UDP;
    if (slash == NULL)
        return 0;
    proto = slash + 1;
    plen = (size_t)(addr + *len - proto);
    if (word_is(proto, plen, "tcp")) {
        sp->protos = PROTO_TCP;
    } else if (word_is(proto, plen, "udp")) {
        if (is_unix)
            return spec_error(err, errlen, text, "unix sockets are stream only (no /udp)");
        sp->protos = PROTO_UDP;
    } else if (is_unix) {
        return 0;
    } else if (plen == 0) {
        return spec_error(err, errlen, text, "missing protocol after '/'");
    } else {
        return spec_error(err, errlen, text, "unknown protocol '%.*s' (tcp or udp)",
                          (int)(plen > 40 ? 40 : plen), proto);
    }
    *len = (size_t)(slash - addr);
    return 0;
}

static int ends_with(const char *s, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);

    return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

/* "+tls", then "+proxy", from the end: in that order only, since the PROXY header
 * comes before the ClientHello. */
static int parse_suffixes(const char *text, const char *addr, size_t *len, struct spec *sp,
                          char *err, size_t errlen)
{
    if (ends_with(addr, *len, TLS_SUFFIX)) {
        sp->tls = 1;
        *len -= strlen(TLS_SUFFIX);
    }
    if (ends_with(addr, *len, PROXY_SUFFIX)) {
        sp->proxy = 1;
        *len -= strlen(PROXY_SUFFIX);
    }
    if (ends_with(addr, *len, TLS_SUFFIX))
        return spec_error(err, errlen, text, "'+tls' goes after '+proxy' (the PROXY header "
                          "comes before the ClientHello)");
    return 0;
}

/* SERVICE@ADDRESS, the protocol and the suffixes stripped from the end. */
static int parse_address(const char *text, const char *addr, size_t len, struct spec *sp,
                         char *err, size_t errlen)
{
    const char *colon;

    if (len >= 5 && strncmp(addr, "unix:", 5) == 0) {
        sp->protos = PROTO_TCP;
        return parse_unix(text, addr + 5, len - 5, sp, err, errlen);
    }
    if (addr[0] == '[')
        return parse_bracketed(text, addr, len, sp, err, errlen);
    colon = memchr(addr, ':', len);
    if (colon == NULL) {
        sp->kind = ADDR_ANY;
        return parse_port(text, addr, len, sp, err, errlen);
    }
    if (memchr(colon + 1, ':', (size_t)(addr + len - colon - 1)) != NULL)
        return spec_error(err, errlen, text,
                          "an IPv6 address needs brackets, as in [::1]:7007,");
    if (set_host(text, addr, (size_t)(colon - addr), sp, err, errlen) < 0)
        return -1;
    return parse_port(text, colon + 1, (size_t)(addr + len - colon - 1), sp, err, errlen);
}

static int check_stream_only(const char *text, const struct spec *sp, char *err, size_t errlen)
{
    if (!(sp->protos & PROTO_UDP))
        return 0;
    if (sp->proxy)
        return spec_error(err, errlen, text,
                          "'+proxy' is for stream listeners: add /tcp before it");
    if (sp->tls)
        return spec_error(err, errlen, text, "'+tls' is for stream listeners: add /tcp before it");
    return 0;
}

/* ------------------------------------------------------------------ options */

static const struct spec_key *find_key(const char *name)
{
    for (const struct spec_key *k = spec_keys; k->name; k++)
        if (strcmp(k->name, name) == 0)
            return k;
    return NULL;
}

const struct spec_opt *spec_opt(const struct spec *sp, const char *key)
{
    for (size_t i = 0; i < sp->nopts; i++)
        if (strcmp(sp->opts[i].key->name, key) == 0)
            return &sp->opts[i];
    return NULL;
}

static int is_relay(const struct spec *sp)
{
    return strcmp(sp->service, SPEC_RELAY_SERVICE) == 0;
}

/* May key k stand in sp (its service, its protocols, now or at run time)? */
static int key_allowed(const char *text, const struct spec_key *k, const struct spec *sp,
                       int fixed, char *err, size_t errlen)
{
    if ((k->flags & SPEC_KEY_RELAY) && !is_relay(sp))
        return spec_error(err, errlen, text, "'%s' is for relay listeners", k->name);
    if ((k->flags & SPEC_KEY_FIXED) && !fixed)
        return spec_error(err, errlen, text, "'%s' cannot change at run time", k->name);
    if (!(k->protos & sp->protos))
        return spec_error(err, errlen, text, "'%s' is for %s listeners", k->name,
                          k->protos & PROTO_TCP ? "stream" : "udp");
    return 0;
}

/* One KEY=VALUE (or a flag's KEY) of s[0..len). */
static int parse_option(const char *text, const char *s, size_t len, struct spec *sp,
                        int fixed, char *err, size_t errlen)
{
    const char *eq = memchr(s, '=', len);
    char key[SPEC_KEY_MAX + 1];
    size_t klen = eq ? (size_t)(eq - s) : len;
    const struct spec_key *k;
    struct spec_opt *o;

    if (len == 0)
        return spec_error(err, errlen, text, "an empty option (',,' or a ',' at the end)");
    if (klen == 0)
        return spec_error(err, errlen, text, "an option without a key");
    if (klen > SPEC_KEY_MAX)
        return spec_error(err, errlen, text, "unknown option '%.*s...'", SPEC_KEY_MAX, s);
    memcpy(key, s, klen);
    key[klen] = '\0';
    k = find_key(key);
    if (k == NULL)
        return spec_error(err, errlen, text, "unknown option '%s'", key);
    if (eq == NULL && k->type != SPEC_FLAG)
        return spec_error(err, errlen, text, "option '%s' needs a value (%s=VALUE)", key, key);
    if (eq != NULL && k->type == SPEC_FLAG)
        return spec_error(err, errlen, text, "option '%s' takes no value", key);
    if (spec_opt(sp, key))
        return spec_error(err, errlen, text, "option '%s' given twice", key);
    if (sp->nopts == SPEC_OPTS_MAX)
        return spec_error(err, errlen, text, "more than %d options", SPEC_OPTS_MAX);
    o = &sp->opts[sp->nopts];
    memset(o, 0, sizeof *o);
    o->key = k;
    if (eq && decode(eq + 1, (size_t)(s + len - eq - 1), o->text, sizeof o->text) < 0)
        return spec_error(err, errlen, text, "the value of '%s' is longer than %d bytes", key,
                          SPEC_VALUE_MAX);
    if (parse_value(o, text, err, errlen) < 0 || key_allowed(text, k, sp, fixed, err, errlen) < 0)
        return -1;
    sp->nopts++;
    return 0;
}

static int parse_options(const char *text, const char *s, struct spec *sp, int fixed,
                         char *err, size_t errlen)
{
    size_t left = strlen(s);

    for (;;) {
        const char *comma = unescaped_comma(s, left);
        size_t len = comma ? (size_t)(comma - s) : left;

        if (parse_option(text, s, len, sp, fixed, err, errlen) < 0)
            return -1;
        if (comma == NULL)
            return 0;
        left -= len + 1;
        s = comma + 1;
    }
}

/* ------------------------------------------------------------------ the relay */

int spec_target_parse(const char *text, struct spec_target *t, char *err, size_t errlen)
{
    struct spec sp;
    char why[KODAMA_ERR_LEN];
    size_t len = strlen(text);

    memset(t, 0, sizeof *t);
    memset(&sp, 0, sizeof sp);
    if (len == 0 || len >= SPEC_HOST_MAX + 16) {
        set_reason(err, errlen, len ? "too long" : "empty");
        return -1;
    }
    if (parse_address(text, text, len, &sp, why, sizeof why) < 0) {
        char *quote = strstr(why, " in '");

        if (quote)
            *quote = '\0';     /* the caller quotes the whole SPEC */
        set_reason(err, errlen, why);
        return -1;
    }
    if (sp.kind == ADDR_ANY || (sp.kind == ADDR_HOST && (sp.port == 0 || sp.port_last != sp.port))) {
        set_reason(err, errlen, "not HOST:PORT, [IPV6]:PORT, unix:PATH or unix:@NAME (one port, not 0)");
        return -1;
    }
    t->kind = sp.kind;
    memcpy(t->host, sp.host, sizeof t->host);
    t->port = sp.port;
    memcpy(t->path, sp.path, sizeof t->path);
    t->abstract = sp.abstract;
    return 0;
}

/* A relay needs somewhere to relay to. */
static int check_relay(const char *text, const struct spec *sp, char *err, size_t errlen)
{
    const struct spec_opt *to = spec_opt(sp, "to");
    struct spec_target t;
    char why[KODAMA_ERR_LEN];

    if (!is_relay(sp))
        return 0;
    if (to == NULL)
        return spec_error(err, errlen, text, "relay needs to=HOST:PORT or to=unix:PATH");
    /* splice(2) moves the bytes: there is no plaintext to decrypt or encrypt. */
    if (sp->tls)
        return spec_error(err, errlen, text, "relay copies bytes as they are: no '+tls'");
    if (spec_target_parse(to->text, &t, why, sizeof why) < 0)
        return spec_error(err, errlen, text, "to=%.*s: %s", 40, to->text, why);
    return 0;
}

int spec_parse_options(const char *text, struct spec *sp, int fixed, char *err,
                       size_t errlen)
{
    sp->nopts = 0;
    if (strlen(text) >= SPEC_TEXT_MAX)
        return spec_error(err, errlen, text, "longer than %d bytes", SPEC_TEXT_MAX - 1);
    if (text[0] != '\0' && parse_options(text, text, sp, fixed, err, errlen) < 0)
        return -1;
    return fixed ? check_relay(text, sp, err, errlen) : 0;
}

/* ------------------------------------------------------------------ the whole */

int spec_parse(const char *text, struct spec *sp, char *err, size_t errlen)
{
    const char *at = strchr(text, '@'), *rest, *comma;
    /* Zeroed: clang's analyzer cannot follow strncmp into what decode wrote. */
    char addr[SPEC_TEXT_MAX] = { 0 };
    long len;
    size_t alen;

    memset(sp, 0, offsetof(struct spec, opts));
    if (at == NULL)
        return spec_error(err, errlen, text, "missing '@ADDRESS'");
    if (strlen(text) >= SPEC_TEXT_MAX)
        return spec_error(err, errlen, text, "longer than %d bytes", SPEC_TEXT_MAX - 1);
    if (parse_service(text, at, sp, err, errlen) < 0)
        return -1;
    rest = at + 1;
    comma = unescaped_comma(rest, strlen(rest));
    len = decode(rest, comma ? (size_t)(comma - rest) : strlen(rest), addr, sizeof addr);
    if (len < 0)
        return spec_error(err, errlen, text, "longer than %d bytes", SPEC_TEXT_MAX - 1);
    alen = (size_t)len;
    if (parse_suffixes(text, addr, &alen, sp, err, errlen) < 0)
        return -1;
    if (alen == 0)
        return spec_error(err, errlen, text, "missing address");
    addr[alen] = '\0';
    if (parse_proto(text, addr, &alen, sp, err, errlen) < 0 ||
        parse_address(text, addr, alen, sp, err, errlen) < 0)
        return -1;
    if (is_relay(sp)) {
        /* A relay copies a stream: tcp whether or not /tcp is written. */
        if (sp->protos == PROTO_UDP)
            return spec_error(err, errlen, text, "relay is a stream service (no /udp)");
        sp->protos = PROTO_TCP;
    }
    if (check_stream_only(text, sp, err, errlen) < 0)
        return -1;
    if (comma && parse_options(text, comma + 1, sp, 1, err, errlen) < 0)
        return -1;
    return check_relay(text, sp, err, errlen);
}
