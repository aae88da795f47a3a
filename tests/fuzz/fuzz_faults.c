/* fuzz_faults.c — the fault text of the control API and FileDescriptorName=
 * (spec_parse_options, proto/spec.c) and its form written back (faults_format,
 * serve/core/fault.c).
 *
 * Input: one byte that picks the listener (bit 0: a relay, else echo; bits 1-2:
 * tcp, udp or both; bit 3: keys fixed at start-up allowed, as on the command line),
 * then the text of a PUT /faults/NAME body. Properties:
 *   - the result is the same with a full error buffer, a tiny one and none;
 *   - failure: the reason is non-empty, printable, and ends by quoting the text;
 *   - success: every option applies to the listener's protocols (a relay's keys
 *     only on a relay), and the faults written back as text parse again, at run
 *     time, to the same faults (probabilities to within 1e-9). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/spec.h"
#include "serve/core/fault.h"
#include "fuzz.h"

#define ERRLEN 256

static struct spec sp, sp2;

static void listener(struct spec *s, uint8_t pick)
{
    static const unsigned protos[4] = { PROTO_TCP, PROTO_UDP, PROTO_TCP | PROTO_UDP, PROTO_TCP };

    memset(s, 0, offsetof(struct spec, opts));
    snprintf(s->service, sizeof s->service, "%s", pick & 1 ? SPEC_RELAY_SERVICE : "echo");
    s->protos = pick & 1 ? PROTO_TCP : protos[(pick >> 1) & 3];
}

static void same_faults(const struct faults *a, const struct faults *b, const char *text)
{
    FUZZ_CHECK(memcmp(&a->down, &b->down, sizeof a->down) == 0, "down differs for '%s'", text);
    FUZZ_CHECK(memcmp(&a->up, &b->up, sizeof a->up) == 0, "up differs for '%s'", text);
    FUZZ_CHECK(fabs(a->drop - b->drop) < 1e-9 && fabs(a->dup - b->dup) < 1e-9 &&
                   fabs(a->toxicity - b->toxicity) < 1e-9,
               "probabilities differ for '%s'", text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[ERRLEN], small[8], out[FAULT_TEXT_MAX];
    struct faults f, g;
    char *text;
    int rc, fixed;

    if (size < 1)
        return 0;
    text = fuzz_cstr(data + 1, size - 1);
    if (text == NULL)
        return 0;
    fixed = (data[0] >> 3) & 1;
    listener(&sp, data[0]);
    rc = spec_parse_options(text, &sp, fixed, err, sizeof err);
    FUZZ_CHECK(rc == 0 || rc == -1, "spec_parse_options returned %d", rc);
    listener(&sp2, data[0]);
    FUZZ_CHECK(spec_parse_options(text, &sp2, fixed, small, sizeof small) == rc,
               "result changes with an 8-byte error buffer for '%s'", text);
    listener(&sp2, data[0]);
    FUZZ_CHECK(spec_parse_options(text, &sp2, fixed, NULL, 0) == rc,
               "result changes without an error buffer for '%s'", text);
    if (rc < 0) {
        size_t n = strlen(err);

        FUZZ_CHECK_ERR(err, ERRLEN, text);
        FUZZ_CHECK(n >= 5 && err[n - 1] == '\'' && strstr(err, " in '") != NULL,
                   "error '%s' does not end by quoting the text", err);
        free(text);
        return 0;
    }
    for (size_t i = 0; i < sp.nopts; i++) {
        const struct spec_key *k = sp.opts[i].key;

        FUZZ_CHECK(k->protos & sp.protos, "'%s' accepted on other protocols", k->name);
        FUZZ_CHECK(!(k->flags & SPEC_KEY_RELAY) || (data[0] & 1), "relay key '%s' on echo",
                   k->name);
        FUZZ_CHECK(fixed || !(k->flags & SPEC_KEY_FIXED), "'%s' changed at run time", k->name);
    }
    faults_from_spec(&f, &sp);
    faults_format(&f, out, sizeof out);
    FUZZ_CHECK(strlen(out) < sizeof out - 1, "faults_format filled its buffer");
    listener(&sp2, data[0]);
    FUZZ_CHECK(spec_parse_options(out, &sp2, 0, err, sizeof err) == 0,
               "'%s' (from '%s') does not parse back: %s", out, text, err);
    faults_from_spec(&g, &sp2);
    same_faults(&f, &g, text);
    free(text);
    return 0;
}
