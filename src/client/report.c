/* report.c — the report of a client run and its --json object (see client.h). The
 * keys are documented in kodama.1, JSON OUTPUT. */
#include "client/client.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/util.h"

void report_start(struct report *r, const struct target *t)
{
    memset(r, 0, sizeof *r);
    r->proto = t->unix_path ? "unix" : t->udp ? "udp" : "tcp";
    if (t->unix_path) {
        r->path = t->unix_path;
    } else {
        r->host = t->host;
        r->port = t->port;
    }
    r->tls = t->tls != NULL;
    r->t_start = now_ns();
}

int report_fail(struct report *r, int quiet, enum verdict v, const char *fmt, ...)
{
    va_list ap;

    if (r->verdict != V_OK)
        return r->verdict;
    r->verdict = v;
    va_start(ap, fmt);
    vsnprintf(r->error, sizeof r->error, fmt, ap);
    va_end(ap);
    if (!quiet)
        log_msg("%s", r->error);
    return v;
}

int report_stdout_failed(struct report *r, int err)
{
    return report_fail(r, 0, V_LOCAL, "cannot write to stdout: %s", strerror(err));
}

void report_first_byte(struct report *r)
{
    if (r->t_first_byte == 0)
        r->t_first_byte = now_ns();
}

double report_ms(const struct report *r, int64_t t)
{
    return t ? (double)(t - r->t_start) / 1e6 : -1;
}

/* What the handshake said: null for what it did not get to (a failed handshake
 * keeps only the certificate's fingerprint, which is what one would pin). */
static void tls_json(const struct report *r, struct json_obj *j)
{
    int done = r->t_handshake != 0;

    json_bool(j, "tls", 1);
    json_str(j, "tls_version", done ? r->tls_version : NULL);
    json_str(j, "tls_cipher", done ? r->tls_cipher : NULL);
    json_str(j, "tls_alpn", done && r->tls_alpn[0] ? r->tls_alpn : NULL);
    json_str(j, "tls_fingerprint", r->tls_fingerprint[0] ? r->tls_fingerprint : NULL);
}

void report_json(struct report *r, struct json_obj *j)
{
    if (r->t_end == 0)
        r->t_end = now_ns();
    json_begin(j);
    json_str(j, "verdict", verdict_name(r->verdict));
    json_int(j, "exit", r->verdict);
    json_str(j, "proto", r->proto);
    if (r->path) {
        json_str(j, "path", r->path);
    } else {
        json_str(j, "host", r->host);
        json_int(j, "port", r->port ? atol(r->port) : 0);
    }
    json_str(j, "local", r->local[0] ? r->local : NULL);
    json_str(j, "peer", r->peer[0] ? r->peer : NULL);
    json_uint(j, "bytes_out", r->bytes_out);
    json_uint(j, "bytes_in", r->bytes_in);
    json_ms(j, "connect_ms", report_ms(r, r->t_connected));
    if (r->tls)
        json_ms(j, "handshake_ms", report_ms(r, r->t_handshake));
    json_ms(j, "first_byte_ms", report_ms(r, r->t_first_byte));
    json_ms(j, "total_ms", report_ms(r, r->t_end));
    if (r->tls)
        tls_json(r, j);
    json_str(j, "error", r->error[0] ? r->error : NULL);
}

int report_end(struct report *r, int json, int v)
{
    r->t_end = now_ns();
    if (json)
        report_print(r, stderr);
    return v;
}

int report_print(struct report *r, FILE *out)
{
    struct json_obj j;

    const char *text;

    report_json(r, &j);
    text = json_end(&j);
    if (out == stderr) {
        log_raw(text, strlen(text));    /* one write, as every line there */
        return 0;
    }
    fputs(text, out);
    if (fflush(out) == EOF || ferror(out))
        return -1;
    return 0;
}
