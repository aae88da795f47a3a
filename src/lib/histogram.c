/* histogram.c — see histogram.h. */
#include "lib/histogram.h"

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
