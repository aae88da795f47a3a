/* histogram.h — a log-linear latency histogram in the manner of HdrHistogram.
 *
 * Values are unsigned 64-bit integers (kodama records nanoseconds). Each power of
 * two is split into HIST_SUB_BUCKETS equal buckets, so a value is known to within
 * 1/HIST_SUB_BUCKETS of itself; reporting the middle of the bucket halves that, to
 * about 0.4%. Values below HIST_SUB_BUCKETS are counted exactly. The table covers
 * the whole uint64_t range (7,424 counters, 58 KiB), so nothing is ever clamped.
 * Recording is two shifts and an add: cheap enough for every message. */
#ifndef KODAMA_HISTOGRAM_H
#define KODAMA_HISTOGRAM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define HIST_SUB_BITS 7
#define HIST_SUB_BUCKETS (1u << HIST_SUB_BITS)
/* Exact values 0..127, then one row of 128 buckets per power of two 2^7..2^63. */
#define HIST_BUCKETS ((64 - HIST_SUB_BITS + 1) * HIST_SUB_BUCKETS)

struct histogram {
    uint64_t count;
    uint64_t min, max;          /* exact; min is UINT64_MAX while empty */
    double sum;                 /* for the mean; a double cannot overflow */
    uint64_t buckets[HIST_BUCKETS];
};

void hist_init(struct histogram *h);
void hist_record(struct histogram *h, uint64_t v);
/* Add every count of src to dst (per-thread histograms into one). */
void hist_merge(struct histogram *dst, const struct histogram *src);

/* The value below which pct percent (0..100) of the recorded values lie: the middle
 * of the bucket holding the value of that rank, kept within [min, max]. 0 when
 * empty. pct 100 is the exact maximum. */
uint64_t hist_percentile(const struct histogram *h, double pct);
double hist_mean(const struct histogram *h);

/* The bucket a value falls in, the value that bucket reports (its middle), and
 * its highest value; exposed for the unit tests of the error bound and for
 * writers of the buckets. */
size_t hist_index(uint64_t v);
uint64_t hist_bucket_value(size_t index);
uint64_t hist_bucket_high(size_t index);

/* Add count values to bucket index (buckets written by another run, min, max and
 * sum set by the caller): 0, or -1 if the index is out of range or the counts
 * would overflow. */
int hist_add_bucket(struct histogram *h, size_t index, uint64_t count);

/* The percentile distribution in HdrHistogram's text form (the .hgrm files wrk2
 * writes and HdrHistogram's plotter reads): a row at each percentile that
 * HdrHistogram's iterator reports with 5 ticks per half distance (0, 10, 20, ...,
 * 50, 55, ..., 90, 91.25, ...), each with its bucket's highest value divided by
 * scale (1e6: nanoseconds as milliseconds), then the footer with the mean, the
 * standard deviation (of the bucket values), the maximum and the count. Returns 0,
 * or -1 if out reported an error. */
int hist_write_hgrm(FILE *out, const struct histogram *h, double scale);

#endif
