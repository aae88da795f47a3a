/* fuzz_spec.c — spec_parse (the SPEC grammar, proto/spec.c).
 *
 * Input: one SPEC as bytes (no NUL, as on a command line). Properties:
 *   - the result and the struct are the same with a full error buffer, a tiny
 *     one and none (err may be NULL): the message never steers the parse;
 *   - failure: the reason is non-empty, printable, and ends by quoting the SPEC
 *     ("... in 'SPEC'" or "... in 'SPEC...'");
 *   - success: the service is the text before the first '@', lower-case letters,
 *     digits and '-'; kind, protos, port, host and path are consistent (unix is
 *     stream only, a port-only SPEC has no host, an abstract name is not
 *     "@"-prefixed again, a path never empties, "+proxy" and "+tls" only on stream
 *     listeners, a port range never backwards, from 1, of at most SPEC_PORTS_MAX);
 *     and the struct written back as canonical text ("[host]" when it has ':',
 *     starts with '[' or is "unix"; "/tcp" always after unix paths; ',' and '\'
 *     escaped; "+proxy+tls" last; the options as KEY=VALUE with ',' and '\'
 *     escaped, flags alone) parses again to the same struct, options included;
 *   - every option's key is known, applies to the SPEC's protocols, and is a
 *     relay key only on a relay, which is tcp alone and has to=; the option
 *     list alone (spec_parse_options) gives the same options. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/spec.h"
#include "fuzz.h"

#define ERRLEN 256  /* KODAMA_ERR_LEN, as the callers pass */

static void check_same(const struct spec *a, const struct spec *b, const char *what,
                       const char *text)
{
    FUZZ_CHECK(strcmp(a->service, b->service) == 0, "%s: service differs for '%s'", what, text);
    FUZZ_CHECK(a->kind == b->kind, "%s: kind %d vs %d for '%s'", what, a->kind, b->kind, text);
    FUZZ_CHECK(a->protos == b->protos, "%s: protos %u vs %u for '%s'", what, a->protos,
               b->protos, text);
    FUZZ_CHECK(a->port == b->port, "%s: port %u vs %u for '%s'", what, a->port, b->port, text);
    FUZZ_CHECK(strcmp(a->host, b->host) == 0, "%s: host '%s' vs '%s' for '%s'", what, a->host,
               b->host, text);
    FUZZ_CHECK(strcmp(a->path, b->path) == 0, "%s: path '%s' vs '%s' for '%s'", what, a->path,
               b->path, text);
    FUZZ_CHECK(a->abstract == b->abstract, "%s: abstract differs for '%s'", what, text);
    FUZZ_CHECK(a->proxy == b->proxy, "%s: proxy differs for '%s'", what, text);
    FUZZ_CHECK(a->tls == b->tls, "%s: tls differs for '%s'", what, text);
    FUZZ_CHECK(a->port_last == b->port_last, "%s: port_last %u vs %u for '%s'", what,
               a->port_last, b->port_last, text);
    FUZZ_CHECK(a->nopts == b->nopts, "%s: %zu vs %zu options for '%s'", what, a->nopts,
               b->nopts, text);
    for (size_t i = 0; i < a->nopts && i < b->nopts; i++) {
        const struct spec_opt *x = &a->opts[i], *y = &b->opts[i];

        FUZZ_CHECK(x->key == y->key && strcmp(x->text, y->text) == 0 && x->ms == y->ms &&
                       x->jitter_ms == y->jitter_ms && x->bytes == y->bytes &&
                       x->jitter == y->jitter && x->p == y->p,
                   "%s: option %zu differs for '%s'", what, i, text);
    }
}

/* s with ',' and '\\' escaped, as the grammar reads them back. */
static const char *escaped(const char *s, char *out, size_t outlen)
{
    size_t n = 0;

    for (; *s && n + 3 < outlen; s++) {
        if (*s == ',' || *s == '\\')
            out[n++] = '\\';
        out[n++] = *s;
    }
    out[n] = '\0';
    return out;
}

/* The options as ",KEY=VALUE..." (flags alone), escaped, at out. */
static void canonical_options(const struct spec *sp, char *out, size_t outlen)
{
    char esc[2 * SPEC_VALUE_MAX + 2];
    size_t n = strlen(out);

    for (size_t i = 0; i < sp->nopts && n < outlen; i++) {
        const struct spec_opt *o = &sp->opts[i];
        int k = o->key->type == SPEC_FLAG
                    ? snprintf(out + n, outlen - n, ",%s", o->key->name)
                    : snprintf(out + n, outlen - n, ",%s=%s", o->key->name,
                               escaped(o->text, esc, sizeof esc));

        FUZZ_CHECK(k > 0 && (size_t)k < outlen - n, "canonical options truncated");
        n += (size_t)k;
    }
}

static void check_options(const struct spec *sp, const char *text)
{
    int relay = strcmp(sp->service, SPEC_RELAY_SERVICE) == 0;
    const char *comma = NULL;

    for (size_t i = 0; i < sp->nopts; i++) {
        const struct spec_key *k = sp->opts[i].key;

        FUZZ_CHECK(k != NULL && k->name != NULL, "option %zu without a key in '%s'", i, text);
        FUZZ_CHECK(k->protos & sp->protos, "'%s' on a SPEC of other protocols: '%s'", k->name,
                   text);
        FUZZ_CHECK(relay || !(k->flags & SPEC_KEY_RELAY), "relay key '%s' on '%s'", k->name, text);
    }
    if (relay)
        FUZZ_CHECK(sp->protos == PROTO_TCP && spec_opt(sp, "to") != NULL,
                   "relay '%s' not tcp alone with to=", text);
    /* The option list alone reads the same (the first unescaped ',' starts it). */
    for (const char *p = text; *p; p++) {
        if (*p == '\\' && (p[1] == ',' || p[1] == '\\')) {
            p++;
            continue;
        }
        if (*p == ',') {
            comma = p;
            break;
        }
    }
    if (comma) {
        struct spec *alone = malloc(sizeof *alone);
        char err[ERRLEN];

        FUZZ_CHECK(alone != NULL, "out of memory");
        memcpy(alone, sp, sizeof *alone);
        FUZZ_CHECK(spec_parse_options(comma + 1, alone, 1, err, sizeof err) == 0,
                   "options of '%s' alone do not parse: %s", text, err);
        check_same(sp, alone, "options alone", text);
        free(alone);
    }
}

static void check_error(const char *err, const char *text)
{
    size_t n = strlen(err);

    FUZZ_CHECK_ERR(err, ERRLEN, text);
    FUZZ_CHECK(n >= 5 && err[n - 1] == '\'' && strstr(err, " in '") != NULL,
               "error '%s' does not end by quoting the SPEC", err);
}

/* The struct as the simplest text that means it. */
static void canonical(const struct spec *sp, char *out, size_t outlen)
{
    const char *proto = sp->protos == PROTO_TCP ? "/tcp" : sp->protos == PROTO_UDP ? "/udp" : "";
    char suffix[16], ports[16], esc[2 * (SPEC_HOST_MAX + 1)];
    int n;

    snprintf(suffix, sizeof suffix, "%s%s", sp->proxy ? PROXY_SUFFIX : "", sp->tls ? TLS_SUFFIX : "");
    if (sp->port_last != sp->port)
        snprintf(ports, sizeof ports, "%u-%u", sp->port, sp->port_last);
    else
        snprintf(ports, sizeof ports, "%u", sp->port);
    switch (sp->kind) {
    case ADDR_ANY:
        n = snprintf(out, outlen, "%s@%s%s%s", sp->service, ports, proto, suffix);
        break;
    case ADDR_HOST:
        /* Brackets where the bare host would read otherwise: a ':' in it, a
         * leading '[', or "unix" (unix:PORT would be a path). */
        if (strchr(sp->host, ':') || sp->host[0] == '[' || strcmp(sp->host, "unix") == 0)
            n = snprintf(out, outlen, "%s@[%s]:%s%s%s", sp->service,
                         escaped(sp->host, esc, sizeof esc), ports, proto, suffix);
        else
            n = snprintf(out, outlen, "%s@%s:%s%s%s", sp->service,
                         escaped(sp->host, esc, sizeof esc), ports, proto, suffix);
        break;
    default:
        /* "/tcp" always: a path may itself end in "/tcp" or "/udp". */
        n = snprintf(out, outlen, "%s@unix:%s%s/tcp%s", sp->service, sp->abstract ? "@" : "",
                     escaped(sp->path, esc, sizeof esc), suffix);
        break;
    }
    FUZZ_CHECK(n > 0 && (size_t)n < outlen, "canonical text truncated");
}

static void check_ok(const struct spec *sp, const char *text)
{
    const char *at = strchr(text, '@');
    size_t slen = strlen(sp->service);
    static char again[SPEC_SERVICE_MAX + 2 * SPEC_HOST_MAX + 2 * SPEC_PATH_MAX + 64 +
               SPEC_OPTS_MAX * (SPEC_KEY_MAX + 2 * SPEC_VALUE_MAX + 2)];
    char err[ERRLEN];
    static struct spec sp2;

    FUZZ_CHECK(at != NULL && (size_t)(at - text) == slen && memcmp(text, sp->service, slen) == 0,
               "service '%s' is not the text before '@' in '%s'", sp->service, text);
    FUZZ_CHECK(slen > 0 && slen <= SPEC_SERVICE_MAX &&
                   strspn(sp->service, "abcdefghijklmnopqrstuvwxyz0123456789-") == slen,
               "bad service '%s' accepted", sp->service);
    FUZZ_CHECK(sp->protos == PROTO_TCP || sp->protos == PROTO_UDP ||
                   sp->protos == (PROTO_TCP | PROTO_UDP),
               "protos %u for '%s'", sp->protos, text);
    switch (sp->kind) {
    case ADDR_ANY:
        FUZZ_CHECK(sp->host[0] == '\0' && sp->path[0] == '\0' && !sp->abstract,
                   "port-only SPEC '%s' has a host or path", text);
        break;
    case ADDR_HOST:
        FUZZ_CHECK(sp->host[0] != '\0' && strlen(sp->host) <= SPEC_HOST_MAX,
                   "host '%s' from '%s'", sp->host, text);
        FUZZ_CHECK(sp->path[0] == '\0' && !sp->abstract, "host SPEC '%s' has a path", text);
        /* Without /tcp or /udp the last '/' would have been read as one. */
        FUZZ_CHECK(sp->protos != (PROTO_TCP | PROTO_UDP) || strchr(sp->host, '/') == NULL,
                   "host '%s' has a '/' but no protocol was given in '%s'", sp->host, text);
        break;
    case ADDR_UNIX:
        FUZZ_CHECK(sp->protos == PROTO_TCP, "unix SPEC '%s' is not stream only", text);
        FUZZ_CHECK(sp->port == 0 && sp->host[0] == '\0', "unix SPEC '%s' has a host", text);
        FUZZ_CHECK(sp->path[0] != '\0' && strlen(sp->path) <= SPEC_PATH_MAX,
                   "path '%s' from '%s'", sp->path, text);
        FUZZ_CHECK(sp->abstract || sp->path[0] != '@', "path '%s' should be abstract", sp->path);
        break;
    default:
        FUZZ_CHECK(0, "kind %d from '%s'", sp->kind, text);
    }

    FUZZ_CHECK(!sp->proxy || sp->protos == PROTO_TCP, "'+proxy' on a datagram SPEC '%s'", text);
    FUZZ_CHECK(!sp->tls || sp->protos == PROTO_TCP, "'+tls' on a datagram SPEC '%s'", text);
    FUZZ_CHECK(sp->port_last == sp->port ||
                   (sp->port >= 1 && sp->port_last > sp->port &&
                    sp->port_last - sp->port < SPEC_PORTS_MAX && sp->kind != ADDR_UNIX),
               "port range %u-%u from '%s'", sp->port, sp->port_last, text);
    check_options(sp, text);
    canonical(sp, again, sizeof again);
    canonical_options(sp, again, sizeof again);
    FUZZ_CHECK(spec_parse(again, &sp2, err, sizeof err) == 0,
               "canonical '%s' of '%s' does not parse: %s", again, text, err);
    check_same(sp, &sp2, "canonical", again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstr(data, size);
    char err[ERRLEN], small[8];
    struct spec sp, sp_small, sp_none;
    int rc;

    if (text == NULL)
        return 0;
    memset(err, 0x5a, sizeof err);
    rc = spec_parse(text, &sp, err, sizeof err);
    FUZZ_CHECK(rc == 0 || rc == -1, "spec_parse returned %d", rc);
    FUZZ_CHECK(spec_parse(text, &sp_small, small, sizeof small) == rc,
               "result changes with an 8-byte error buffer for '%s'", text);
    FUZZ_CHECK(memchr(small, '\0', sizeof small) != NULL || rc == 0,
               "8-byte error buffer not terminated for '%s'", text);
    FUZZ_CHECK(spec_parse(text, &sp_none, NULL, 0) == rc,
               "result changes without an error buffer for '%s'", text);
    if (rc == 0) {
        check_same(&sp, &sp_small, "small err", text);
        check_same(&sp, &sp_none, "no err", text);
        check_ok(&sp, text);
    } else {
        check_error(err, text);
    }
    free(text);
    return 0;
}
