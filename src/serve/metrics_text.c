/* metrics_text.c — see metrics_text.h.
 *
 * Every family gets its HELP and TYPE lines and then all its series together, as
 * the format requires; a family no listener has (no udp listener: no datagram
 * families) is left out whole. Counters end in _total and units are in the names,
 * per the Prometheus naming conventions. */
#include "serve/metrics_text.h"

#include <stddef.h>
#include <string.h>

#include "serve/core/fault.h"
#include "serve/core/guard.h"
#include "lib/utf8.h"

/* Which listeners a family describes. */
enum family_scope { SCOPE_STREAM, SCOPE_DGRAM, SCOPE_ALL };

struct family {
    const char *name;
    const char *type;
    const char *help;
    enum family_scope scope;
    size_t offset;                  /* of its count in struct listener_totals */
};

#define TOTAL(field) offsetof(struct listener_totals, field)

static const struct family families[] = {
    { "kodama_connections_accepted_total", "counter",
      "Stream connections accepted and admitted by the limits.", SCOPE_STREAM, TOTAL(accepted) },
    { "kodama_connections_active", "gauge",
      "Stream connections open now.", SCOPE_STREAM, TOTAL(active) },
    { "kodama_accept_errors_total", "counter",
      "Failed accept calls other than a vanished client (e.g. out of descriptors).",
      SCOPE_STREAM, TOTAL(accept_errors) },
    { "kodama_datagrams_received_total", "counter",
      "Datagrams received.", SCOPE_DGRAM, TOTAL(dgrams_in) },
    { "kodama_datagrams_sent_total", "counter",
      "Datagrams sent in reply.", SCOPE_DGRAM, TOTAL(dgrams_out) },
    { "kodama_datagrams_send_failed_total", "counter",
      "Replies the kernel refused to send.", SCOPE_DGRAM, TOTAL(dgrams_dropped) },
    { "kodama_received_bytes_total", "counter",
      "Bytes received: stream payload, or datagram payload.", SCOPE_ALL, TOTAL(bytes_in) },
    { "kodama_sent_bytes_total", "counter",
      "Bytes sent: stream payload, or datagram payload.", SCOPE_ALL, TOTAL(bytes_out) },
};

void metrics_label_value(FILE *out, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t left = strlen(s);

    while (left > 0) {
        size_t seq = utf8_seq_len(p, left);

        if (*p == '\\' || *p == '"') {
            fputc('\\', out);
            fputc(*p, out);
        } else if (*p == '\n') {
            fputs("\\n", out);
        } else if (seq == 0) {
            fputs(UTF8_REPLACEMENT, out);
            seq = 1;
        } else {
            fwrite(p, 1, seq, out);
        }
        p += seq;
        left -= seq;
    }
}

static int in_scope(const struct metrics_listener *l, enum family_scope scope)
{
    int dgram = strcmp(l->proto, "udp") == 0;

    return scope == SCOPE_ALL || (scope == SCOPE_DGRAM) == dgram;
}

static void header(FILE *out, const char *name, const char *type, const char *help)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void listener_labels(FILE *out, const struct metrics_listener *l)
{
    fputs("service=\"", out);
    metrics_label_value(out, l->service);
    fputs("\",proto=\"", out);
    metrics_label_value(out, l->proto);
    fputs("\",address=\"", out);
    metrics_label_value(out, l->address);
    fputs("\",name=\"", out);
    metrics_label_value(out, l->name ? l->name : "");
    fputc('"', out);
}

static void write_family(FILE *out, const struct metrics_snapshot *s, const struct family *f)
{
    int any = 0;

    for (size_t i = 0; i < s->n; i++) {
        const struct metrics_listener *l = &s->listeners[i];
        uint64_t v;

        if (!in_scope(l, f->scope))
            continue;
        if (!any++)
            header(out, f->name, f->type, f->help);
        memcpy(&v, (const char *)&l->t + f->offset, sizeof v);
        fprintf(out, "%s{", f->name);
        listener_labels(out, l);
        fprintf(out, "} %llu\n", (unsigned long long)v);
    }
}

/* Every reason for every listener, zeros included: a reason added later needs no
 * change here, and a sum by reason always finds its series. */
static void write_drops(FILE *out, const struct metrics_snapshot *s)
{
    if (s->n == 0)
        return;
    header(out, "kodama_drops_total", "counter",
           "Connections and datagrams turned away (refused, closed or dropped), by reason.");
    for (size_t i = 0; i < s->n; i++)
        for (int r = 0; r < DROP_REASONS; r++) {
            fputs("kodama_drops_total{", out);
            listener_labels(out, &s->listeners[i]);
            fputs(",reason=\"", out);
            metrics_label_value(out, drop_reason_name((enum drop_reason)r));
            fprintf(out, "\"} %llu\n", (unsigned long long)s->listeners[i].t.drops[r]);
        }
}

/* "+tls" listeners only: handshakes done, split by whether the kernel took the
 * record layer (kTLS) or OpenSSL keeps it. */
static void write_tls(FILE *out, const struct metrics_snapshot *s)
{
    int any = 0;

    for (size_t i = 0; i < s->n; i++) {
        const struct metrics_listener *l = &s->listeners[i];
        /* The two counts are read one after the other while the worker counts, so a
         * kTLS handshake may be in the second and not yet the first: never below 0. */
        uint64_t ktls = l->t.tls_ktls;
        uint64_t plain = l->t.tls_handshakes > ktls ? l->t.tls_handshakes - ktls : 0;

        if (!l->tls)
            continue;
        if (!any++)
            header(out, "kodama_tls_handshakes_total", "counter",
                   "TLS handshakes completed, by whether the kernel does the records (kTLS).");
        for (int k = 1; k >= 0; k--) {
            fputs("kodama_tls_handshakes_total{", out);
            listener_labels(out, l);
            fprintf(out, ",ktls=\"%s\"} %llu\n", k ? "yes" : "no",
                    (unsigned long long)(k ? ktls : plain));
        }
    }
}

/* Every fault that applies to the listener's protocol, zeros included, as drops. */
static void write_faults(FILE *out, const struct metrics_snapshot *s)
{
    if (s->n == 0)
        return;
    header(out, "kodama_faults_total", "counter",
           "Connections and datagrams a fault acted on, by fault (kodama(1), FAULTS).");
    for (size_t i = 0; i < s->n; i++) {
        int dgram = strcmp(s->listeners[i].proto, "udp") == 0;

        for (int k = 0; k < FAULT_KINDS; k++) {
            if (dgram ? !fault_kind_on_dgram((enum fault_kind)k)
                      : !fault_kind_on_stream((enum fault_kind)k))
                continue;
            fputs("kodama_faults_total{", out);
            listener_labels(out, &s->listeners[i]);
            fputs(",fault=\"", out);
            metrics_label_value(out, fault_kind_name((enum fault_kind)k));
            fprintf(out, "\"} %llu\n", (unsigned long long)s->listeners[i].t.faults[k]);
        }
    }
}

static void write_gauge(FILE *out, const char *name, const char *help, int64_t v)
{
    if (v < 0)
        return;
    header(out, name, "gauge", help);
    fprintf(out, "%s %lld\n", name, (long long)v);
}

static void write_process(FILE *out, const struct metrics_process *p)
{
    header(out, "kodama_build_info", "gauge", "Always 1; the version is in its label.");
    fputs("kodama_build_info{version=\"", out);
    metrics_label_value(out, p->version);
    fputs("\"} 1\n", out);
    write_gauge(out, "process_open_fds", "Number of open file descriptors.", p->open_fds);
    write_gauge(out, "process_max_fds", "Maximum number of open file descriptors.", p->max_fds);
    write_gauge(out, "process_resident_memory_bytes", "Resident memory size in bytes.",
                p->rss_bytes);
    if (p->start_time >= 0) {
        header(out, "process_start_time_seconds", "gauge",
               "Start time of the process since unix epoch in seconds.");
        fprintf(out, "process_start_time_seconds %.2f\n", p->start_time);
    }
}

int metrics_write(FILE *out, const struct metrics_snapshot *s)
{
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++)
        write_family(out, s, &families[f]);
    write_drops(out, s);
    write_tls(out, s);
    write_faults(out, s);
    write_process(out, &s->proc);
    return ferror(out) ? -1 : 0;
}
