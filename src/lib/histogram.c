/* histogram.c — see histogram.h. */
#include "lib/histogram.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

void hist_init(struct histogram *h)
{
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
}

size_t hist_index(uint64_t v)
{
    unsigned msb, shift;

    if (v < HIST_SUB_BUCKETS)
        return (size_t)v;
    msb = 63u - (unsigned)__builtin_clzll(v);
    shift = msb - HIST_SUB_BITS;
    /* Row msb - HIST_SUB_BITS + 1; the top bit is implied, the next 7 pick the bucket. */
    return (size_t)(msb - HIST_SUB_BITS + 1) * HIST_SUB_BUCKETS
           + (size_t)((v >> shift) - HIST_SUB_BUCKETS);
}

static uint64_t bucket_low(size_t index, uint64_t *width)
{
    size_t row = index / HIST_SUB_BUCKETS, sub = index % HIST_SUB_BUCKETS;
    unsigned shift;

    if (row == 0) {
        *width = 1;
        return index;
    }
    shift = (unsigned)row - 1;
    *width = (uint64_t)1 << shift;
    return ((uint64_t)HIST_SUB_BUCKETS + sub) << shift;
}

uint64_t hist_bucket_value(size_t index)
{
    uint64_t width, low = bucket_low(index, &width);

    return low + (width >> 1);
}

uint64_t hist_bucket_high(size_t index)
{
    uint64_t width, low = bucket_low(index, &width);

    return low + (width - 1);
}

int hist_add_bucket(struct histogram *h, size_t index, uint64_t count)
{
    if (index >= HIST_BUCKETS || h->buckets[index] > UINT64_MAX - count ||
        h->count > UINT64_MAX - count)
        return -1;
    h->buckets[index] += count;
    h->count += count;
    return 0;
}

void hist_record(struct histogram *h, uint64_t v)
{
    h->buckets[hist_index(v)]++;
    h->count++;
    h->sum += (double)v;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

void hist_merge(struct histogram *dst, const struct histogram *src)
{
    if (src->count == 0)
        return;
    for (size_t i = 0; i < HIST_BUCKETS; i++)
        dst->buckets[i] += src->buckets[i];
    dst->count += src->count;
    dst->sum += src->sum;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

uint64_t hist_percentile(const struct histogram *h, double pct)
{
    uint64_t rank, seen = 0, v;
    double want;

    if (h->count == 0)
        return 0;
    if (pct >= 100.0)
        return h->max;
    if (pct < 0.0)
        pct = 0.0;
    /* The smallest value with at least pct% of the values at or below it. */
    want = pct / 100.0 * (double)h->count;
    rank = (uint64_t)want;
    if ((double)rank < want)
        rank++;
    if (rank == 0)
        rank = 1;
    if (rank > h->count)
        rank = h->count;
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            v = hist_bucket_value(i);
            return v < h->min ? h->min : v > h->max ? h->max : v;
        }
    }
    return h->max;
}

double hist_mean(const struct histogram *h)
{
    return h->count ? h->sum / (double)h->count : 0.0;
}

static double stddev(const struct histogram *h)
{
    double mean = hist_mean(h), sq = 0;

    if (h->count == 0)
        return 0;
    for (size_t i = 0; i < HIST_BUCKETS; i++)
        if (h->buckets[i]) {
            double d = (double)hist_bucket_value(i) - mean;

            sq += d * d * (double)h->buckets[i];
        }
    return sqrt(sq / (double)h->count);
}

/* HdrHistogram's percentile iteration: after reporting percentile p, the next is
 * p + 100 / (ticks * 2^(floor(log2(100 / (100 - p))) + 1)): evenly spaced ticks
 * that halve their step each time the distance to 100 halves. */
static double next_percentile(double p)
{
    double half = pow(2.0, floor(log(100.0 / (100.0 - p)) / log(2.0)) + 1.0);

    return p + 100.0 / (5.0 * half);
}

int hist_write_hgrm(FILE *out, const struct histogram *h, double scale)
{
    uint64_t seen = 0;
    double target = 0.0;
    size_t i = 0, rows = 0;

    fprintf(out, "%12s %12s %12s %12s\n\n", "Value", "Percentile", "TotalCount",
            "1/(1-Percentile)");
    while (h->count > 0 && i < HIST_BUCKETS) {
        double pct = 100.0 * (double)(seen + h->buckets[i]) / (double)h->count;

        if (h->buckets[i] == 0 || pct < target) {
            seen += h->buckets[i++];
            continue;
        }
        /* This bucket reaches the target percentile: one row, then the next. */
        fprintf(out, "%12.3f %12f %12" PRIu64 " %12.2f\n", (double)hist_bucket_high(i) / scale,
                target / 100.0, seen + h->buckets[i], 1.0 / (1.0 - target / 100.0));
        rows++;
        /* As HdrHistogram's iterator: the bucket that brings the count to the total
         * gives one row (the maximum's, at a finite 1/(1-Percentile) the plotter
         * draws), then only the 100 % row follows. */
        if (seen + h->buckets[i] == h->count || rows > 10000)
            break;
        target = next_percentile(target);
    }
    if (h->count > 0) {
        uint64_t last = h->max < UINT64_MAX ? hist_bucket_high(hist_index(h->max)) : h->max;

        fprintf(out, "%12.3f %12f %12" PRIu64 " %12s\n", (double)last / scale, 1.0, h->count,
                "inf");
    }
    fprintf(out, "#[Mean    = %12.3f, StdDeviation   = %12.3f]\n"
                 "#[Max     = %12.3f, Total count    = %12" PRIu64 "]\n"
                 "#[Buckets = %12d, SubBuckets     = %12d]\n",
            hist_mean(h) / scale, stddev(h) / scale, (double)(h->count ? h->max : 0) / scale,
            h->count, 64 - HIST_SUB_BITS + 1, HIST_SUB_BUCKETS);
    return ferror(out) ? -1 : 0;
}
