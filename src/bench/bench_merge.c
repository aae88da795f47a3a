/* bench_merge.c — `kodama bench --merge FILE...`: several runs' --json reports (from
 * several machines, pods or processes driving one server) summed into one report.
 *
 * The counts add up; the rates are the sum of each run's own; the latency
 * percentiles come from the sum of the runs' histograms, bucket by bucket (never
 * from averaged percentiles, which mean nothing). The runs' real-time start and
 * end say how long they all ran at once: the merged rates stand for that load only
 * while the runs overlapped, so a report whose runs did not is said to be so. */
#include "bench/bench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/util.h"
#include "proto/json.h"

#define MERGE_FILE_MAX (64 << 20)       /* a report is a few KiB; a log of many, more */
#define MERGE_TOKENS (HIST_BUCKETS * 3 + 256)

struct run {
    double duration, start, end, msgs_per_s, mib_per_s, conns_per_s;
};

static int read_file(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    size_t cap = 1 << 16, n = 0;
    char *buf;

    if (f == NULL)
        return -1;
    buf = xmalloc(cap + 1);
    for (;;) {
        size_t got = fread(buf + n, 1, cap - n, f);

        n += got;
        if (n < cap)
            break;
        if (cap >= MERGE_FILE_MAX) {
            fclose(f);
            free(buf);
            errno = EFBIG;
            return -1;
        }
        cap *= 2;
        buf = xrealloc(buf, cap + 1);
    }
    if (ferror(f)) {
        fclose(f);
        free(buf);
        return -1;
    }
    fclose(f);
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

struct reader {
    const char *text;
    struct json_tok *t;
    const char *where;          /* "FILE line N", for messages */
    char *err;
    size_t errlen;
};

static int bad(struct reader *r, const char *what)
{
    snprintf(r->err, r->errlen, "%s: %s", r->where, what);
    return -1;
}

static int get_u64(struct reader *r, size_t obj, const char *key, uint64_t *v)
{
    long i = json_get(r->text, r->t, obj, key);
    char what[96];

    if (i < 0 || json_u64(r->text, &r->t[i], v) < 0) {
        snprintf(what, sizeof what, "no whole number '%s'", key);
        return bad(r, what);
    }
    return 0;
}

static int get_double(struct reader *r, size_t obj, const char *key, double *v)
{
    long i = json_get(r->text, r->t, obj, key);
    char what[96];

    if (i < 0 || json_double(r->text, &r->t[i], v) < 0) {
        snprintf(what, sizeof what, "no number '%s'", key);
        return bad(r, what);
    }
    return 0;
}

/* The histogram object of one report, added to h. */
static int add_histogram(struct reader *r, size_t obj, struct histogram *h)
{
    long hi = json_get(r->text, r->t, obj, "histogram"), bi;
    uint64_t bits, count, min, max, sum_check = 0;
    double sum;

    if (hi < 0 || r->t[hi].type != JSON_OBJECT)
        return bad(r, "no histogram (a report of an older kodama?)");
    if (get_u64(r, (size_t)hi, "sub_bits", &bits) < 0 || get_u64(r, (size_t)hi, "count", &count) < 0 ||
        get_u64(r, (size_t)hi, "min", &min) < 0 || get_u64(r, (size_t)hi, "max", &max) < 0 ||
        get_double(r, (size_t)hi, "sum", &sum) < 0)
        return -1;
    if (bits != HIST_SUB_BITS)
        return bad(r, "a histogram of another layout (sub_bits)");
    bi = json_get(r->text, r->t, (size_t)hi, "buckets");
    if (bi < 0 || r->t[bi].type != JSON_ARRAY)
        return bad(r, "no histogram buckets");
    for (size_t k = 0; k < r->t[bi].children; k++) {
        long pair = json_at(r->t, (size_t)bi, k);
        long ii = pair >= 0 ? json_at(r->t, (size_t)pair, 0) : -1;
        long ci = pair >= 0 ? json_at(r->t, (size_t)pair, 1) : -1;
        uint64_t index, n;

        if (ii < 0 || ci < 0 || r->t[pair].children != 2 || json_u64(r->text, &r->t[ii], &index) < 0 ||
            json_u64(r->text, &r->t[ci], &n) < 0 || hist_add_bucket(h, (size_t)index, n) < 0 ||
            (sum_check += n) < n)
            return bad(r, "a bad histogram bucket");
    }
    if (sum_check != count)
        return bad(r, "histogram buckets that do not add up to its count");
    h->sum += sum;
    if (count && min < h->min)
        h->min = min;
    if (count && max > h->max)
        h->max = max;
    return 0;
}

/* One report (the object at token 0) added to cfg and res. */
static int add_run(struct reader *r, struct bench_config *cfg, struct bench_result *res,
                   struct run *run)
{
    uint64_t conns, threads, rate, msgs, bytes, connections, corrupt, lost, resets, timeouts;
    uint64_t size, depth, handshakes = 0, resumed = 0;
    long tli = json_get(r->text, r->t, 0, "tls");
    long mi = json_get(r->text, r->t, 0, "mode"), ti = json_get(r->text, r->t, 0, "target");
    char mode[16], target[ADDR_TEXT_MAX];

    if (r->t[0].type != JSON_OBJECT || mi < 0 || ti < 0 ||
        json_string(r->text, &r->t[mi], mode, sizeof mode) < 0 ||
        json_string(r->text, &r->t[ti], target, sizeof target) < 0)
        return bad(r, "not a kodama bench --json report");
    if (get_u64(r, 0, "conns", &conns) < 0 || get_u64(r, 0, "threads", &threads) < 0 ||
        get_u64(r, 0, "rate", &rate) < 0 || get_u64(r, 0, "msgs", &msgs) < 0 ||
        get_u64(r, 0, "size", &size) < 0 || get_u64(r, 0, "depth", &depth) < 0 ||
        get_u64(r, 0, "bytes", &bytes) < 0 || get_u64(r, 0, "connections", &connections) < 0 ||
        get_u64(r, 0, "corrupt", &corrupt) < 0 || get_u64(r, 0, "lost", &lost) < 0 ||
        get_u64(r, 0, "resets", &resets) < 0 || get_u64(r, 0, "timeouts", &timeouts) < 0 ||
        get_double(r, 0, "duration_s", &run->duration) < 0 ||
        get_double(r, 0, "start_unix", &run->start) < 0 ||
        get_double(r, 0, "end_unix", &run->end) < 0 ||
        get_double(r, 0, "msgs_per_s", &run->msgs_per_s) < 0 ||
        get_double(r, 0, "mib_per_s", &run->mib_per_s) < 0 ||
        get_double(r, 0, "conns_per_s", &run->conns_per_s) < 0)
        return -1;
    /* A run over TLS: its handshakes count as its connections do. */
    if (tli >= 0 && r->t[tli].type == JSON_TRUE &&
        (get_u64(r, 0, "handshakes", &handshakes) < 0 || get_u64(r, 0, "resumed", &resumed) < 0))
        return -1;
    if (res->runs == 0) {
        cfg->mode = strcmp(mode, "udp") == 0 ? BENCH_UDP : strcmp(mode, "hello") == 0 ? BENCH_HELLO
                                                                                    : BENCH_ECHO;
        snprintf(cfg->target, sizeof cfg->target, "%s", target);
        cfg->size = size;
        cfg->depth = depth;
    } else if (strcmp(mode, bench_mode_name(cfg->mode)) != 0) {
        return bad(r, "a run of another mode");
    } else if (size != cfg->size) {
        /* Its latencies are of other messages, and the sum of bytes would not be
         * msgs times the size the report says. */
        return bad(r, "a run of another message size");
    }
    if (add_histogram(r, 0, res->hist) < 0)
        return -1;
    cfg->conns += conns;
    cfg->threads += threads;
    cfg->rate += rate;
    res->n.msgs += msgs;
    res->n.bytes += bytes;
    res->n.connections += connections;
    res->n.corrupt += corrupt;
    res->n.lost += lost;
    res->n.resets += resets;
    res->n.timeouts += timeouts;
    res->n.handshakes += handshakes;
    res->n.resumed += resumed;
    res->tls |= tli >= 0 && r->t[tli].type == JSON_TRUE;
    res->runs++;
    return 0;
}

/* Is the last of runs[0..n] one of those before it? The times are µs and its rate
 * is the run's own: two real runs never share all three. */
static int seen_before(const struct run *runs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (runs[i].start == runs[n].start && runs[i].end == runs[n].end &&
            runs[i].msgs_per_s == runs[n].msgs_per_s)
            return 1;
    return 0;
}

/* Each line of text that holds a report (after any prefix a log adds, such as a
 * pod's name: from its first '{'). */
static int add_file(const char *path, char *text, size_t len, struct json_tok *toks,
                    struct bench_config *cfg, struct bench_result *res, struct run **runs,
                    size_t *nruns, char *err, size_t errlen)
{
    size_t line = 0;

    for (char *p = text, *nl; p < text + len; p = nl + 1) {
        char where[300], jerr[128];
        struct reader r = { .text = NULL, .t = toks, .where = where, .err = err, .errlen = errlen };
        char *brace;
        long n;

        nl = memchr(p, '\n', (size_t)(text + len - p));
        if (nl == NULL)
            nl = text + len;
        line++;
        brace = memchr(p, '{', (size_t)(nl - p));
        snprintf(where, sizeof where, "%s line %zu", path, line);
        if (brace == NULL)
            continue;   /* a log's other lines */
        n = json_parse(brace, (size_t)(nl - brace), toks, MERGE_TOKENS, jerr, sizeof jerr);
        if (n < 0)
            return bad(&r, jerr);
        r.text = brace;
        *runs = xrealloc(*runs, (*nruns + 1) * sizeof **runs);
        if (add_run(&r, cfg, res, &(*runs)[*nruns]) < 0)
            return -1;
        if (seen_before(*runs, *nruns))
            return bad(&r, "the same run as an earlier one (a file given twice?)");
        (*nruns)++;
    }
    return 0;
}

static void sum_runs(const struct run *runs, size_t n, struct bench_result *res)
{
    double start, end, dur = 0;

    if (n == 0)
        return;     /* no file (a usage error): each file given has a report */
    start = runs[0].start;
    end = runs[0].end;
    for (size_t i = 0; i < n; i++) {
        if (runs[i].start > start)
            start = runs[i].start;
        if (runs[i].end < end)
            end = runs[i].end;
        res->msgs_per_s += runs[i].msgs_per_s;
        res->mib_per_s += runs[i].mib_per_s;
        res->conns_per_s += runs[i].conns_per_s;
        dur = runs[i].duration > dur ? runs[i].duration : dur;
        res->start_unix = i == 0 || runs[i].start < res->start_unix ? runs[i].start : res->start_unix;
        res->end_unix = runs[i].end > res->end_unix ? runs[i].end : res->end_unix;
    }
    res->duration_s = dur;
    res->overlap_s = end > start ? end - start : 0;
}

int bench_merge(char *const *files, size_t nfiles, struct bench_config *cfg,
                struct bench_result *res)
{
    struct json_tok *toks = xcalloc(MERGE_TOKENS, sizeof *toks);
    struct run *runs = NULL;
    size_t nruns = 0;
    char err[600];
    int rc = 0;

    memset(res, 0, sizeof *res);
    res->hist = xmalloc(sizeof *res->hist);
    hist_init(res->hist);
    for (size_t i = 0; i < nfiles && rc == 0; i++) {
        size_t before = nruns;
        char *text;
        size_t len;

        if (read_file(files[i], &text, &len) < 0) {
            log_msg("bench: --merge: cannot read %s: %s", files[i], strerror(errno));
            rc = -1;
            break;
        }
        if (add_file(files[i], text, len, toks, cfg, res, &runs, &nruns, err, sizeof err) < 0) {
            log_msg("bench: --merge: %s", err);
            rc = -1;
        } else if (nruns == before) {
            /* An empty log (a pod that died before its report) is a run missing
             * from the sum: said, as for one file, not skipped. */
            log_msg("bench: --merge: no report in %s", files[i]);
            rc = -1;
        }
        free(text);
    }
    if (rc == 0) {
        sum_runs(runs, nruns, res);
        if (res->overlap_s <= 0)
            log_msg("bench: --merge: the %zu runs did not overlap in time: the merged rates "
                    "were never one load", nruns);
        else if (res->overlap_s < 0.9 * res->duration_s)
            log_msg("bench: --merge: the %zu runs overlap for %.2f s of their %.2f s", nruns,
                    res->overlap_s, res->duration_s);
    }
    free(runs);
    free(toks);
    return rc;
}
