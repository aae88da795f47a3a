/* svc_info.c — the info service: one line saying who served and what it saw.
 *
 * It is what one checks behind a load balancer, a NAT or a firewall: which instance
 * answered (--name), which of our addresses the peer reached, the peer's address as
 * this host sees it, and the client a PROXY protocol header named, if any. The line
 * is key=value or JSON (--info-format json); svc_formats.h has the exact rules.
 * tcp: the line, then close, as hello; udp: the line answers each datagram. */
#include <stdio.h>
#include <string.h>

#include "lib/addr.h"
#include "lib/tls.h"
#include "serve/services/svc_formats.h"

struct out {
    char *buf;
    size_t cap, len;
    int full;                   /* something did not fit: the line is unusable */
};

static void put_char(struct out *o, char c)
{
    if (o->len + 1 >= o->cap) {     /* keep room for a NUL, as snprintf would */
        o->full = 1;
        return;
    }
    o->buf[o->len++] = c;
}

static void put_str(struct out *o, const char *s)
{
    while (*s)
        put_char(o, *s++);
}

static void put_hex_escape(struct out *o, const char *prefix, unsigned char c)
{
    static const char hex[] = "0123456789abcdef";

    put_str(o, prefix);
    put_char(o, hex[c >> 4]);
    put_char(o, hex[c & 15]);
}

static int kv_bare(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if (*s <= ' ' || *s > '~' || *s == '"' || *s == '\\')
            return 0;
    return 1;
}

static void put_kv_value(struct out *o, const char *s)
{
    if (kv_bare(s)) {
        put_str(o, s);
        return;
    }
    put_char(o, '"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\') {
            put_char(o, '\\');
            put_char(o, (char)c);
        } else if (c < 0x20 || c > 0x7e) {
            put_hex_escape(o, "\\x", c);
        } else {
            put_char(o, (char)c);
        }
    }
    put_char(o, '"');
}

static void put_json_string(struct out *o, const char *s)
{
    put_char(o, '"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        switch (c) {
        case '"': put_str(o, "\\\""); break;
        case '\\': put_str(o, "\\\\"); break;
        case '\n': put_str(o, "\\n"); break;
        case '\r': put_str(o, "\\r"); break;
        case '\t': put_str(o, "\\t"); break;
        default:
            if (c < 0x20 || c >= 0x7f)
                put_hex_escape(o, "\\u00", c);
            else
                put_char(o, (char)c);
        }
    }
    put_char(o, '"');
}

static void put_field(struct out *o, int json, const char *key, const char *value, int first)
{
    if (json) {
        put_str(o, first ? "{\"" : ",\"");
        put_str(o, key);
        put_str(o, "\":");
        put_json_string(o, value);
    } else {
        if (!first)
            put_char(o, ' ');
        put_str(o, key);
        put_char(o, '=');
        put_kv_value(o, value);
    }
}

long info_format(const struct info_fields *f, int json, char *buf, size_t cap)
{
    struct out o = { .buf = buf, .cap = cap };

    put_field(&o, json, "name", f->name ? f->name : "", 1);
    put_field(&o, json, "proto", f->proto ? f->proto : "", 0);
    put_field(&o, json, "local", f->local ? f->local : "", 0);
    put_field(&o, json, "peer", f->peer ? f->peer : "", 0);
    if (f->client && *f->client)
        put_field(&o, json, "client", f->client, 0);
    if (f->tls_version) {
        put_field(&o, json, "tls", f->tls_version, 0);
        put_field(&o, json, "cipher", f->tls_cipher ? f->tls_cipher : "", 0);
        put_field(&o, json, "sni", f->sni ? f->sni : "", 0);
        put_field(&o, json, "alpn", f->alpn ? f->alpn : "", 0);
        put_field(&o, json, "client_cert", f->client_cert ? "yes" : "no", 0);
        if (f->client_cert) {
            put_field(&o, json, "cert_subject", f->cert_subject ? f->cert_subject : "", 0);
            put_field(&o, json, "cert_issuer", f->cert_issuer ? f->cert_issuer : "", 0);
            put_field(&o, json, "cert_fingerprint", f->cert_fingerprint ? f->cert_fingerprint : "", 0);
        }
    }
    if (json)
        put_char(&o, '}');
    put_char(&o, '\n');
    if (o.full)
        return -1;
    buf[o.len] = '\0';
    return (long)o.len;
}

static const char *addr_text(const struct sockaddr *sa, socklen_t len, char *buf, size_t cap)
{
    if (sa == NULL || len == 0)
        return "";
    return addr_format(sa, len, buf, cap);
}

/* The line for ctx into buf (INFO_LINE_MAX); returns its length or -1. */
static long info_line(const struct svc_ctx *ctx, char *buf)
{
    char local[ADDR_TEXT_MAX], peer[ADDR_TEXT_MAX], client[ADDR_TEXT_MAX];
    struct info_fields f = {
        .name = ctx->set->name,
        .proto = ctx->proto,
        .local = addr_text(ctx->local, ctx->local_len, local, sizeof local),
        .peer = addr_text(ctx->peer, ctx->peer_len, peer, sizeof peer),
        .client = addr_text(ctx->client, ctx->client_len, client, sizeof client),
    };
    char subject[INFO_CERT_NAME_MAX + 1], issuer[INFO_CERT_NAME_MAX + 1];
    char sni[INFO_SNI_MAX + 1];

    if (ctx->tls) {
        /* A certificate's names may be long: cut, so that the line fits. */
        snprintf(subject, sizeof subject, "%.*s", INFO_CERT_NAME_MAX, ctx->tls->subject);
        snprintf(issuer, sizeof issuer, "%.*s", INFO_CERT_NAME_MAX, ctx->tls->issuer);
        f.tls_version = ctx->tls->version;
        f.tls_cipher = ctx->tls->cipher;
        snprintf(sni, sizeof sni, "%.*s", INFO_SNI_MAX, ctx->tls->sni);
        f.sni = sni;
        f.alpn = ctx->tls->alpn;
        f.client_cert = ctx->tls->peer_cert;
        f.cert_subject = subject;
        f.cert_issuer = issuer;
        f.cert_fingerprint = ctx->tls->fingerprint;
    }
    return info_format(&f, ctx->set->info_json, buf, INFO_LINE_MAX);
}

/* A line too long to send (only names full of unprintable bytes can make one: a
 * unix socket's, a certificate's, the SNI) is not sent: the peer gets a clean close
 * and nothing else. */
static void info_open(struct conn_plan *p, const struct svc_ctx *ctx)
{
    char line[INFO_LINE_MAX];
    long len = info_line(ctx, line);

    if (len > 0)
        plan_send_copy(p, line, (size_t)len);
    plan_close_after_send(p);
}

static long info_udp(const struct svc_ctx *ctx, const char **reply)
{
    if (ctx->out_cap < INFO_LINE_MAX)
        return -1;
    *reply = ctx->out;
    return info_line(ctx, ctx->out);
}

const struct service service_info = {
    .name = "info",
    .summary = "send one line: instance, local and peer addresses, then close",
    .wants_addresses = 1,
    .udp_record = 1,
    .tcp_open = info_open,
    .udp_reply = info_udp,
};
