/* test_fault.c — the faults' pure decisions (serve/core/fault.h): from options to a
 * struct and back to text, the PRNG's repeatability, and the shaper's answers to
 * "how many bytes may go now, and if none, when to ask again". */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "proto/spec.h"
#include "serve/core/fault.h"

#define ERRLEN 512

static struct spec sp;

static void faults_of(const char *text, struct faults *f)
{
    char err[ERRLEN] = "";

    if (spec_parse(text, &sp, err, sizeof err) != 0)
        fail_msg("spec_parse(\"%s\") failed: %s", text, err);
    faults_from_spec(f, &sp);
}

static void test_from_spec(void **state)
{
    struct faults f;

    (void)state;
    faults_of("echo@7007,latency=200ms~50ms,rate=64k,slice=10~3,slice-delay=1s,greet-delay=5ms,"
              "close-after=0,drop=0.5,dup=1%,toxicity=0.25", &f);
    assert_int_equal(f.down.latency_ms, 200);
    assert_int_equal(f.down.latency_jitter_ms, 50);
    assert_int_equal(f.down.rate, 65536);
    assert_int_equal(f.down.slice, 10);
    assert_int_equal(f.down.slice_jitter, 3);
    assert_int_equal(f.down.slice_delay_ms, 1000);
    assert_int_equal(f.down.greet_delay_ms, 5);
    assert_int_equal(f.down.close_after, 0);
    assert_true(f.down.reset_after == FAULT_NONE);
    assert_true(f.drop == 0.5);
    assert_true(f.toxicity == 0.25);
    assert_false(fault_shape_active(&f.up));
    assert_true(faults_active_stream(&f));
    assert_true(faults_active_dgram(&f));
    faults_of("relay@7000,to=127.0.0.1:1,up-latency=7ms,up-reset-after=3", &f);
    assert_int_equal(f.up.latency_ms, 7);
    assert_int_equal(f.up.reset_after, 3);
    assert_false(fault_shape_active(&f.down));
    assert_true(faults_active_stream(&f));
    assert_false(faults_active_dgram(&f));
    faults_of("echo@7007,name=x,toxicity=0.5", &f);
    assert_false(faults_active(&f));    /* toxicity alone does nothing */
    faults_of("echo@7007,latency=5ms,toxicity=0", &f);
    assert_false(faults_active(&f));
}

/* What faults_format writes parses back to the same faults. */
static void round_trip(const char *spec_text, const char *want)
{
    struct faults f, g;
    char text[FAULT_TEXT_MAX], again[FAULT_TEXT_MAX + 64], err[ERRLEN];

    faults_of(spec_text, &f);
    faults_format(&f, text, sizeof text);
    assert_string_equal(text, want);
    memset(&sp, 0, sizeof sp);
    snprintf(sp.service, sizeof sp.service, "%s", strncmp(spec_text, "relay", 5) ? "echo" : "relay");
    sp.protos = PROTO_TCP | PROTO_UDP;
    if (strcmp(sp.service, "relay") == 0)
        sp.protos = PROTO_TCP;
    snprintf(again, sizeof again, "%s", text);
    if (spec_parse_options(again, &sp, 0, err, sizeof err) != 0)
        fail_msg("'%s' does not parse back: %s", text, err);
    faults_from_spec(&g, &sp);
    assert_memory_equal(&f.down, &g.down, sizeof f.down);
    assert_memory_equal(&f.up, &g.up, sizeof f.up);
    assert_true(f.drop == g.drop && f.dup == g.dup && f.toxicity == g.toxicity);
}

static void test_format(void **state)
{
    (void)state;
    round_trip("echo@7007", "");
    round_trip("echo@7007,latency=0.2~50ms,rate=64k", "latency=200ms~50ms,rate=65536");
    round_trip("echo@7007,toxicity=50%,drop=0.125,dup=0.000000001,stall-after=0",
               "stall-after=0,drop=0.125,dup=0.000000001,toxicity=0.5");
    round_trip("echo@7007,slice=1,slice-delay=10ms,greet-delay=2s,close-after=1k,reset-after=7",
               "slice=1,slice-delay=10ms,greet-delay=2000ms,close-after=1024,reset-after=7");
    round_trip("relay@7000,to=h:1,up-slice=4~2,latency=1ms,name=r",
               "latency=1ms,up-slice=4~2");
}

static void test_rng(void **state)
{
    struct fault_rng a, b, c;
    int hits = 0;

    (void)state;
    fault_rng_seed(&a, 42, 0);
    fault_rng_seed(&b, 42, 0);
    fault_rng_seed(&c, 42, 1);
    for (int i = 0; i < 100; i++) {
        uint64_t x = fault_rng_next(&a);

        assert_true(x == fault_rng_next(&b));      /* a seed repeats */
        assert_true(x != fault_rng_next(&c));      /* each worker its own */
    }
    for (int i = 0; i < 10000; i++)
        hits += fault_rng_chance(&a, 0.3);
    assert_in_range(hits, 2800, 3200);
    assert_false(fault_rng_chance(&a, 0));
    assert_true(fault_rng_chance(&a, 1));
    for (int i = 0; i < 1000; i++) {
        uint64_t v = fault_rng_jitter(&a, 10, 3, 1);

        assert_in_range(v, 7, 13);
        assert_in_range(fault_rng_jitter(&a, 1, 5, 1), 1, 6);     /* never below min */
        assert_in_range(fault_rng_jitter(&a, 0, 5, 0), 0, 5);
    }
}

static void test_dgram_copies(void **state)
{
    struct faults f;
    struct fault_rng r;
    int n[3] = { 0 };

    (void)state;
    fault_rng_seed(&r, 7, 0);
    faults_of("echo@7007/udp,drop=0.5,dup=0.5", &f);
    for (int i = 0; i < 4000; i++)
        n[fault_dgram_copies(&f, &r)]++;
    assert_in_range(n[0], 1800, 2200);      /* half dropped */
    assert_in_range(n[2], 800, 1200);       /* half the rest twice */
}

static struct fault_rng rng;

#define MS 1000                     /* the shaper's clock counts µs */

static void test_shape_latency(void **state)
{
    struct faults f;
    struct shaper sh;
    int64_t wait;

    (void)state;
    faults_of("echo@7007/tcp,latency=100ms", &f);
    shape_open(&sh, &f.down, 1000 * MS);
    assert_int_equal(shape_allow(&sh, &f.down, 0, 1000 * MS, &rng, &wait), 0);
    assert_int_equal(wait, -1);                 /* nothing to send */
    shape_made(&sh, &f.down, 10, 1000 * MS + 999, &rng);   /* due at 1100.999 ms */
    assert_int_equal(shape_allow(&sh, &f.down, 10, 1000 * MS + 999, &rng, &wait), 0);
    assert_int_equal(wait, 100 * MS);           /* exactly: neither short nor padded */
    shape_made(&sh, &f.down, 5, 1050 * MS, &rng);           /* due at 1150 ms */
    assert_int_equal(shape_allow(&sh, &f.down, 15, 1100 * MS + 998, &rng, &wait), 0);
    assert_int_equal(wait, 1);                  /* a µs early: not yet */
    assert_int_equal(shape_allow(&sh, &f.down, 15, 1100 * MS + 999, &rng, &wait), 10);
    shape_sent(&sh, &f.down, 4, 1101 * MS);     /* a short send */
    assert_int_equal(shape_allow(&sh, &f.down, 11, 1101 * MS, &rng, &wait), 6);
    shape_sent(&sh, &f.down, 6, 1101 * MS);
    assert_int_equal(shape_allow(&sh, &f.down, 5, 1101 * MS, &rng, &wait), 0);
    assert_int_equal(wait, 49 * MS);
    assert_int_equal(shape_allow(&sh, &f.down, 5, 1150 * MS, &rng, &wait), 5);
}

static void test_shape_latency_order(void **state)
{
    struct faults f;
    struct shaper sh;
    int64_t wait;
    int64_t now = 0;

    (void)state;
    faults_of("echo@7007/tcp,latency=100ms~90ms", &f);
    shape_open(&sh, &f.down, 0);
    /* More chunks than marks: the newest takes the rest, never earlier. */
    for (int i = 0; i < 3 * SHAPE_MARKS; i++, now += MS)
        shape_made(&sh, &f.down, 1, now, &rng);
    for (size_t sent = 0; sent < 3 * SHAPE_MARKS;) {
        size_t n = shape_allow(&sh, &f.down, 3 * SHAPE_MARKS - sent, now, &rng, &wait);

        if (n == 0) {
            assert_true(wait >= 1);
            now += wait;
            continue;
        }
        shape_sent(&sh, &f.down, n, now);
        sent += n;
    }
    assert_true(now >= 10 * MS && now <= (3 * SHAPE_MARKS + 190) * MS);
}

static void test_shape_greet_slice(void **state)
{
    struct faults f;
    struct shaper sh;
    int64_t wait;

    (void)state;
    faults_of("echo@7007/tcp,greet-delay=1s,slice=3,slice-delay=10ms", &f);
    shape_open(&sh, &f.down, 0);
    shape_made(&sh, &f.down, 7, 0, &rng);
    assert_int_equal(shape_allow(&sh, &f.down, 7, 0, &rng, &wait), 0);
    assert_int_equal(wait, 1000 * MS);
    assert_int_equal(shape_allow(&sh, &f.down, 7, 1000 * MS, &rng, &wait), 3);
    shape_sent(&sh, &f.down, 2, 1000 * MS);     /* a short send: the slice goes on */
    assert_int_equal(shape_allow(&sh, &f.down, 5, 1000 * MS, &rng, &wait), 1);
    shape_sent(&sh, &f.down, 1, 1000 * MS);
    assert_int_equal(shape_allow(&sh, &f.down, 4, 1005 * MS, &rng, &wait), 0);
    assert_int_equal(wait, 5 * MS);
    assert_int_equal(shape_allow(&sh, &f.down, 4, 1010 * MS, &rng, &wait), 3);
    shape_sent(&sh, &f.down, 3, 1010 * MS);
    assert_int_equal(shape_allow(&sh, &f.down, 1, 1020 * MS, &rng, &wait), 1);
}

static void test_shape_rate(void **state)
{
    struct faults f;
    struct shaper sh;
    int64_t wait;
    int64_t now = 0;
    uint64_t sent = 0;

    (void)state;
    faults_of("echo@7007/tcp,rate=10k", &f);
    shape_open(&sh, &f.down, 0);
    shape_made(&sh, &f.down, FAULT_NONE, 0, &rng);     /* endless output */
    while (now < 2000 * MS) {
        size_t n = shape_allow(&sh, &f.down, 1 << 20, now, &rng, &wait);

        if (n == 0) {
            assert_true(wait >= 1);
            now += wait;
            continue;
        }
        assert_true(n <= 10240 / 100);
        shape_sent(&sh, &f.down, n, now);
        sent += n;
    }
    assert_in_range(sent, 2 * 10240 - 200, 2 * 10240 + 200);
}

static void test_shape_counts(void **state)
{
    struct faults f;
    struct shaper sh;
    int64_t wait;

    (void)state;
    faults_of("echo@7007/tcp,close-after=5,stall-after=9", &f);
    shape_open(&sh, &f.down, 0);
    assert_int_equal(shape_act(&sh, &f.down), SHAPE_GO);
    assert_int_equal(shape_allow(&sh, &f.down, 100, 0, &rng, &wait), 5);
    shape_sent(&sh, &f.down, 5, 0);
    assert_int_equal(shape_act(&sh, &f.down), SHAPE_FIN);
    assert_int_equal(shape_allow(&sh, &f.down, 100, 0, &rng, &wait), 0);
    assert_int_equal(wait, -1);
    faults_of("echo@7007/tcp,reset-after=0,close-after=0", &f);
    shape_open(&sh, &f.down, 0);
    assert_int_equal(shape_act(&sh, &f.down), SHAPE_RESET);    /* at accept */
    faults_of("echo@7007/tcp,stall-after=2", &f);
    shape_open(&sh, &f.down, 0);
    shape_sent(&sh, &f.down, shape_allow(&sh, &f.down, 10, 0, &rng, &wait), 0);
    assert_int_equal(sh.out, 2);
    assert_int_equal(shape_act(&sh, &f.down), SHAPE_STALL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_from_spec),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_rng),
        cmocka_unit_test(test_dgram_copies),
        cmocka_unit_test(test_shape_latency),
        cmocka_unit_test(test_shape_latency_order),
        cmocka_unit_test(test_shape_greet_slice),
        cmocka_unit_test(test_shape_rate),
        cmocka_unit_test(test_shape_counts),
    };

    fault_rng_seed(&rng, 1, 0);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
