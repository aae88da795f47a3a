/* bench_report.c — bench's results for people (key value lines), for scripts
 * (one JSON object) and, while running, a progress line. */
#include "bench/bench.h"

#include <stdio.h>

const char *bench_mode_name(enum bench_mode mode)
{
    return mode == BENCH_UDP ? "udp" : mode == BENCH_HELLO ? "hello" : "echo";
}

#define MIB (1024.0 * 1024.0)

struct rates {
    double msgs, mib, conns;
    double p50, p90, p99, p999, max, mean;  /* microseconds */
};

static double us(uint64_t ns)
{
    return (double)ns / 1000.0;
}

static void rates(const struct bench_result *res, struct rates *r)
{
    double d = res->duration_s > 0 ? res->duration_s : 1.0;
    const struct histogram *h = res->hist;

    r->msgs = (double)res->n.msgs / d;
    r->mib = (double)res->n.bytes / MIB / d;
    r->conns = (double)res->n.connections / d;
    if (res->runs > 1) {    /* merged: each run's rate over its own time, summed */
        r->msgs = res->msgs_per_s;
        r->mib = res->mib_per_s;
        r->conns = res->conns_per_s;
    }
    r->p50 = us(hist_percentile(h, 50));
    r->p90 = us(hist_percentile(h, 90));
    r->p99 = us(hist_percentile(h, 99));
    r->p999 = us(hist_percentile(h, 99.9));
    r->max = us(hist_percentile(h, 100));
    r->mean = hist_mean(h) / 1000.0;
}

void bench_report_text(const struct bench_config *cfg, const struct bench_result *res)
{
    const struct bench_counts *n = &res->n;
    struct rates r;

    rates(res, &r);
    printf("target %s mode %s conns %lu size %lu depth %lu threads %lu duration %.2f rate %lu\n",
           cfg->target, bench_mode_name(cfg->mode), cfg->conns, cfg->size, cfg->depth,
           cfg->threads, res->duration_s, cfg->rate);
    printf("msgs %llu msgs/s %.0f MiB/s %.2f bytes %llu\n", (unsigned long long)n->msgs,
           r.msgs, r.mib, (unsigned long long)n->bytes);
    printf("connections %llu conns/s %.1f", (unsigned long long)n->connections, r.conns);
    if (cfg->tls_ctx || res->tls)
        printf(" tls handshakes %llu resumed %llu", (unsigned long long)n->handshakes,
               (unsigned long long)n->resumed);
    putchar('\n');
    printf("errors %llu corrupt %llu lost %llu resets %llu timeouts %llu\n",
           (unsigned long long)bench_errors(n), (unsigned long long)n->corrupt,
           (unsigned long long)n->lost, (unsigned long long)n->resets,
           (unsigned long long)n->timeouts);
    printf("latency_us p50 %.1f p90 %.1f p99 %.1f p99.9 %.1f max %.1f mean %.1f\n",
           r.p50, r.p90, r.p99, r.p999, r.max, r.mean);
    if (res->runs > 1)
        printf("runs %u overlap %.2f\n", res->runs, res->overlap_s);
    fflush(stdout);
}

/* A JSON string: quotes, backslashes and control characters escaped. */
static void json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

/* Every bucket that holds a value, so that runs can be merged exactly (--merge):
 * "histogram": {"unit": "ns", "sub_bits": 7, "count": N, "min": .., "max": ..,
 * "sum": .., "buckets": [[INDEX, COUNT], ...]} (lib/histogram.h's layout). */
static void json_histogram(const struct histogram *h)
{
    int first = 1;

    printf("\"histogram\": {\"unit\": \"ns\", \"sub_bits\": %d, \"count\": %llu, "
           "\"min\": %llu, \"max\": %llu, \"sum\": %.17g, \"buckets\": [", HIST_SUB_BITS,
           (unsigned long long)h->count, (unsigned long long)(h->count ? h->min : 0),
           (unsigned long long)h->max, h->sum);
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        if (h->buckets[i] == 0)
            continue;
        printf("%s[%zu, %llu]", first ? "" : ", ", i, (unsigned long long)h->buckets[i]);
        first = 0;
    }
    printf("]}");
}

void bench_report_json(const struct bench_config *cfg, const struct bench_result *res)
{
    const struct bench_counts *n = &res->n;
    struct rates r;

    rates(res, &r);
    printf("{\"mode\": \"%s\", \"target\": ", bench_mode_name(cfg->mode));
    json_string(cfg->target);
    if (cfg->label) {
        printf(", \"label\": ");
        json_string(cfg->label);
    }
    printf(", \"conns\": %lu, \"size\": %lu, \"depth\": %lu, \"threads\": %lu, \"rate\": %lu, "
           "\"warmup_s\": %.3f, \"duration_s\": %.3f, ",
           cfg->conns, cfg->size, cfg->depth, cfg->threads, cfg->rate,
           (double)cfg->warmup_ns / 1e9, res->duration_s);
    printf("\"msgs\": %llu, \"msgs_per_s\": %.1f, \"bytes\": %llu, \"mib_per_s\": %.3f, "
           "\"connections\": %llu, \"conns_per_s\": %.1f, ",
           (unsigned long long)n->msgs, r.msgs, (unsigned long long)n->bytes, r.mib,
           (unsigned long long)n->connections, r.conns);
    printf("\"tls\": %s, \"handshakes\": %llu, \"resumed\": %llu, ",
           cfg->tls_ctx || res->tls ? "true" : "false", (unsigned long long)n->handshakes,
           (unsigned long long)n->resumed);
    printf("\"errors\": %llu, \"corrupt\": %llu, \"lost\": %llu, \"resets\": %llu, "
           "\"timeouts\": %llu, \"interrupted\": %s, ",
           (unsigned long long)bench_errors(n), (unsigned long long)n->corrupt,
           (unsigned long long)n->lost, (unsigned long long)n->resets,
           (unsigned long long)n->timeouts, res->interrupted ? "true" : "false");
    printf("\"latency_us\": {\"p50\": %.1f, \"p90\": %.1f, \"p99\": %.1f, \"p999\": %.1f, "
           "\"max\": %.1f, \"mean\": %.1f}, ", r.p50, r.p90, r.p99, r.p999, r.max, r.mean);
    printf("\"start_unix\": %.6f, \"end_unix\": %.6f, \"runs\": %u, \"overlap_s\": %.3f, ",
           res->start_unix, res->end_unix, res->runs, res->overlap_s);
    json_histogram(res->hist);
    printf("}\n");
    fflush(stdout);
}

int bench_progress_line(char *buf, size_t len, double elapsed_s, double msgs_per_s,
                        uint64_t p99_ns, uint64_t errors, int warming)
{
    if (warming)
        return snprintf(buf, len, "\r%6.1f s  warm-up  errors %llu\033[K", elapsed_s,
                        (unsigned long long)errors);
    return snprintf(buf, len, "\r%6.1f s  msgs/s %.0f  p99 %.1f us  errors %llu\033[K",
                    elapsed_s, msgs_per_s, us(p99_ns), (unsigned long long)errors);
}
