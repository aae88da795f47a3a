/* test_histogram.c — unit tests for the log-linear latency histogram: the error
 * bound, percentiles of known distributions, merging and the extremes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/histogram.h"

static struct histogram *new_hist(void)
{
    struct histogram *h = malloc(sizeof *h);

    assert_non_null(h);
    hist_init(h);
    return h;
}

/* |reported - v| <= v / 100, for the bucket v falls in. */
static void assert_within_1pct(uint64_t v)
{
    uint64_t r = hist_bucket_value(hist_index(v));
    uint64_t diff = r > v ? r - v : v - r;

    if ((double)diff > (double)v / 100.0)
        fail_msg("value %llu reported as %llu", (unsigned long long)v, (unsigned long long)r);
}

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void test_error_bound(void **state)
{
    uint64_t seed = 88172645463325252ULL;

    (void)state;
    for (uint64_t v = 0; v < 100000; v++)
        assert_within_1pct(v);
    for (int bit = 0; bit < 64; bit++) {
        uint64_t p = (uint64_t)1 << bit;
        assert_within_1pct(p);
        assert_within_1pct(p - 1);
        assert_within_1pct(p + 1);
        assert_within_1pct(p | (p - 1));    /* the top of each row */
    }
    for (int i = 0; i < 1000000; i++) {
        uint64_t v = xorshift(&seed);
        assert_within_1pct(v >> (v & 63));  /* every magnitude */
    }
}

static void test_small_values_are_exact(void **state)
{
    (void)state;
    for (uint64_t v = 0; v < HIST_SUB_BUCKETS; v++)
        assert_int_equal(hist_bucket_value(hist_index(v)), v);
}

static void test_indexes_are_monotonic_and_in_range(void **state)
{
    size_t prev = 0;
    uint64_t seed = 1234567;

    (void)state;
    for (uint64_t v = 0; v < 1 << 20; v++) {
        size_t i = hist_index(v);
        assert_true(i >= prev);
        assert_true(i < HIST_BUCKETS);
        prev = i;
    }
    assert_int_equal(hist_index(UINT64_MAX), HIST_BUCKETS - 1);
    for (int i = 0; i < 100000; i++) {
        uint64_t a = xorshift(&seed) >> (seed & 63), b = xorshift(&seed) >> (seed & 63);
        if (a <= b)
            assert_true(hist_index(a) <= hist_index(b));
    }
}

static void assert_near(uint64_t got, double want)
{
    double diff = (double)got - want;

    if (diff < 0)
        diff = -diff;
    if (diff > want / 100.0 + 1.0)
        fail_msg("got %llu, want %.1f (more than 1%% off)", (unsigned long long)got, want);
}

static void test_uniform_distribution(void **state)
{
    struct histogram *h = new_hist();

    (void)state;
    for (uint64_t v = 1; v <= 100000; v++)
        hist_record(h, v * 1000);   /* 1 us .. 100 ms in ns */
    assert_int_equal(h->count, 100000);
    assert_near(hist_percentile(h, 50), 50000e3);
    assert_near(hist_percentile(h, 90), 90000e3);
    assert_near(hist_percentile(h, 99), 99000e3);
    assert_near(hist_percentile(h, 99.9), 99900e3);
    assert_int_equal(hist_percentile(h, 100), 100000000);
    assert_int_equal(h->min, 1000);
    assert_int_equal(h->max, 100000000);
    assert_near((uint64_t)hist_mean(h), 50000.5e3);
    free(h);
}

/* 99% fast, 1% slow: p99 is still fast, p99.9 is slow. */
static void test_bimodal_distribution(void **state)
{
    struct histogram *h = new_hist();

    (void)state;
    for (int i = 0; i < 9900; i++)
        hist_record(h, 40000);
    for (int i = 0; i < 100; i++)
        hist_record(h, 10000000);
    assert_near(hist_percentile(h, 50), 40000);
    assert_near(hist_percentile(h, 99), 40000);
    assert_near(hist_percentile(h, 99.5), 10000000);
    assert_near(hist_percentile(h, 99.9), 10000000);
    assert_int_equal(hist_percentile(h, 100), 10000000);
    free(h);
}

static void test_percentiles_are_ordered(void **state)
{
    struct histogram *h = new_hist();
    uint64_t seed = 42, prev = 0;

    (void)state;
    for (int i = 0; i < 50000; i++)
        hist_record(h, xorshift(&seed) % 5000000);
    for (double p = 0; p <= 100; p += 0.1) {
        uint64_t v = hist_percentile(h, p);
        assert_true(v >= prev);
        prev = v;
    }
    free(h);
}

static void test_empty(void **state)
{
    struct histogram *h = new_hist();

    (void)state;
    assert_int_equal(h->count, 0);
    assert_int_equal(hist_percentile(h, 50), 0);
    assert_int_equal(hist_percentile(h, 100), 0);
    assert_true(hist_mean(h) == 0.0);
    free(h);
}

static void test_single_value_is_exact(void **state)
{
    struct histogram *h = new_hist();

    (void)state;
    hist_record(h, 123456789);
    /* The bucket's middle is clamped to [min, max]: one value reports itself. */
    assert_int_equal(hist_percentile(h, 0), 123456789);
    assert_int_equal(hist_percentile(h, 50), 123456789);
    assert_int_equal(hist_percentile(h, 99.9), 123456789);
    free(h);
}

static void test_extremes(void **state)
{
    struct histogram *h = new_hist();

    (void)state;
    hist_record(h, 0);
    hist_record(h, 0);
    hist_record(h, UINT64_MAX);
    hist_record(h, UINT64_MAX);
    assert_int_equal(h->count, 4);
    assert_int_equal(h->min, 0);
    assert_int_equal(h->max, UINT64_MAX);
    assert_int_equal(hist_percentile(h, 50), 0);
    /* The top bucket's middle: within 1% of the huge value. */
    assert_true(hist_percentile(h, 75) >= UINT64_MAX - UINT64_MAX / 100);
    assert_int_equal(hist_percentile(h, 100), UINT64_MAX);
    assert_int_equal(h->buckets[0], 2);
    assert_int_equal(h->buckets[HIST_BUCKETS - 1], 2);
    assert_true(hist_mean(h) > 9e18);
    free(h);
}

static void test_merge(void **state)
{
    struct histogram *a = new_hist(), *b = new_hist(), *all = new_hist(), *sum = new_hist();
    uint64_t seed = 7;

    (void)state;
    for (int i = 0; i < 20000; i++) {
        uint64_t v = xorshift(&seed) % 1000000;
        hist_record(i % 3 ? a : b, v);
        hist_record(all, v);
    }
    hist_record(b, 5);
    hist_record(all, 5);
    hist_merge(sum, a);
    hist_merge(sum, b);
    assert_int_equal(sum->count, all->count);
    assert_int_equal(sum->min, all->min);
    assert_int_equal(sum->max, all->max);
    assert_memory_equal(sum->buckets, all->buckets, sizeof all->buckets);
    for (double p = 1; p < 100; p += 7.5)
        assert_int_equal(hist_percentile(sum, p), hist_percentile(all, p));
    assert_true(hist_mean(sum) - hist_mean(all) < 1e-6 && hist_mean(all) - hist_mean(sum) < 1e-6);
    /* Merging an empty histogram changes nothing, min included. */
    hist_init(b);
    hist_merge(sum, b);
    assert_int_equal(sum->min, 5);
    assert_int_equal(sum->count, all->count);
    free(a);
    free(b);
    free(all);
    free(sum);
}

/* The .hgrm text: HdrHistogram's header, its percentile ticks, the 100 % row and
 * the footer, as its plotter reads them. */
static void test_hgrm(void **state)
{
    struct histogram h;
    char *text = NULL, line[128];
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    double pct[64];
    unsigned long long last_count = 0;
    int rows = 0;

    (void)state;
    hist_init(&h);
    for (uint64_t v = 1; v <= 1000; v++)
        hist_record(&h, v * 1000);             /* 1 µs to 1 ms, in ns */
    assert_int_equal(hist_write_hgrm(out, &h, 1e6), 0);
    fclose(out);
    assert_true(strncmp(text, "       Value   Percentile   TotalCount 1/(1-Percentile)\n\n", 57) == 0);
    for (char *p = text + 57, *nl; *p && *p != '#'; p = nl + 1) {
        double v, q, inv;
        unsigned long long c;

        nl = strchr(p, '\n');
        assert_non_null(nl);
        snprintf(line, sizeof line, "%.*s", (int)(nl - p), p);
        if (strstr(line, " inf")) {
            assert_int_equal(sscanf(line, "%lf %lf %llu", &v, &q, &c), 3);
            assert_true(q == 1.0 && c == 1000 && v >= 1.0 && v < 1.01);
            continue;
        }
        assert_int_equal(sscanf(line, "%lf %lf %llu %lf", &v, &q, &c, &inv), 4);
        assert_true(rows < 64);
        pct[rows++] = q;
        last_count = c;
        /* The value there is within the histogram's error of the exact one. */
        assert_true(v >= q * 1.0 - 0.005 && v <= q * 1.0 + 0.012);
    }
    /* 0, 10, ..., 50, then steps that halve: 55, 60, ..., 75, 77.5, ... */
    assert_true(rows > 12);
    assert_true(pct[0] == 0.0 && pct[1] == 0.1 && pct[5] == 0.5 && pct[6] == 0.55 && pct[10] == 0.75);
    assert_true(pct[11] > 0.7749 && pct[11] < 0.7751);
    for (int i = 1; i < rows; i++)
        assert_true(pct[i] > pct[i - 1] && pct[i] < 1.0);
    /* As HdrHistogram's: the maximum's bucket has a row of its own before the 100 %
     * one, whose 1/(1-Percentile) is inf and is not plotted. */
    assert_int_equal(last_count, 1000);
    assert_non_null(strstr(text, "#[Max     =        1.000, Total count    =         1000]\n"));
    assert_non_null(strstr(text, "#[Buckets =           58, SubBuckets     =          128]\n"));
    free(text);
}

/* Every value in one bucket: HdrHistogram's iterator gives that bucket one row
 * (at percentile 0), then the 100 % row; no more. */
static void test_hgrm_one_bucket(void **state)
{
    struct histogram h;
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    int rows = 0;

    (void)state;
    hist_init(&h);
    for (int i = 0; i < 1000; i++)
        hist_record(&h, 5000);
    assert_int_equal(hist_write_hgrm(out, &h, 1.0), 0);
    fclose(out);
    for (char *p = strstr(text, "\n\n") + 2; *p && *p != '#'; p = strchr(p, '\n') + 1)
        rows++;
    assert_int_equal(rows, 2);
    assert_non_null(strstr(text, "    5023.000     0.000000         1000         1.00\n"
                                 "    5023.000     1.000000         1000          inf\n"));
    free(text);
}

/* Buckets of another run add up as if recorded here; bad ones are refused. */
static void test_add_bucket(void **state)
{
    struct histogram a, b;

    (void)state;
    hist_init(&a);
    hist_init(&b);
    for (uint64_t v = 0; v < 5000; v += 7)
        hist_record(&a, v * 13);
    for (size_t i = 0; i < HIST_BUCKETS; i++)
        if (a.buckets[i])
            assert_int_equal(hist_add_bucket(&b, i, a.buckets[i]), 0);
    b.min = a.min;
    b.max = a.max;
    b.sum = a.sum;
    assert_int_equal(b.count, a.count);
    assert_int_equal(hist_percentile(&b, 99), hist_percentile(&a, 99));
    assert_int_equal(hist_add_bucket(&b, HIST_BUCKETS, 1), -1);
    assert_int_equal(hist_add_bucket(&b, 0, UINT64_MAX), -1);
    assert_true(hist_bucket_high(hist_index(12345)) >= 12345);
    assert_true(hist_bucket_high(hist_index(12345)) < 12345 + 12345 / 64);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_bound),
        cmocka_unit_test(test_small_values_are_exact),
        cmocka_unit_test(test_indexes_are_monotonic_and_in_range),
        cmocka_unit_test(test_uniform_distribution),
        cmocka_unit_test(test_bimodal_distribution),
        cmocka_unit_test(test_percentiles_are_ordered),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_single_value_is_exact),
        cmocka_unit_test(test_extremes),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_hgrm),
        cmocka_unit_test(test_hgrm_one_bucket),
        cmocka_unit_test(test_add_bucket),
    };

    return cmocka_run_group_tests_name("histogram", tests, NULL, NULL);
}
