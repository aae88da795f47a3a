/* test_gso.c — unit tests for grouping a batch's replies by peer: each
 * peer's replies become one run, in the order they were asked. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "serve/engine/gso.h"

static int same_letter(const void *ctx, int i, int j)
{
    const char *s = ctx;

    return s[i] == s[j];
}

/* The places of s (one letter per item) in the order gso_order gives, and the
 * number of runs of one place in that order. */
static int runs_after(const char *s, char *out, int *moved)
{
    int order[GSO_ORDER_MAX], n = (int)strlen(s), runs = 0;

    *moved = gso_order(n, same_letter, s, order);
    for (int k = 0; k < n; k++) {
        out[k] = s[order[k]];
        runs += k == 0 || out[k] != out[k - 1];
    }
    out[n] = '\0';
    return runs;
}

static void test_interleaved_peers_become_one_run_each(void **state)
{
    char out[GSO_ORDER_MAX + 1];
    int order[6], moved;

    (void)state;
    /* A1 B1 A2 B2 A3 B3: two runs, A's first, each in asked order. */
    assert_int_equal(runs_after("ABABAB", out, &moved), 2);
    assert_string_equal(out, "AAABBB");
    assert_int_equal(moved, 4);
    gso_order(6, same_letter, "ABABAB", order);
    int want[6] = { 0, 2, 4, 1, 3, 5 };
    assert_memory_equal(order, want, sizeof want);
}

static void test_grouped_batch_stays_as_it_is(void **state)
{
    char out[GSO_ORDER_MAX + 1];
    int moved;

    (void)state;
    assert_int_equal(runs_after("AAAA", out, &moved), 1);
    assert_int_equal(moved, 0);
    assert_int_equal(runs_after("AABBC", out, &moved), 3);
    assert_string_equal(out, "AABBC");
    assert_int_equal(moved, 0);
}

static void test_three_peers_in_first_seen_order(void **state)
{
    char out[GSO_ORDER_MAX + 1];
    int moved;

    (void)state;
    assert_int_equal(runs_after("CABCBAAC", out, &moved), 3);
    assert_string_equal(out, "CCCAAABB");
    assert_int_equal(runs_after("", out, &moved), 0);
    assert_int_equal(runs_after("Z", out, &moved), 1);
}

static void test_refusals_that_mean_no_gso(void **state)
{
    (void)state;
    assert_true(gso_refused(EIO));
    assert_true(gso_refused(EINVAL));
    assert_false(gso_refused(EAGAIN));
    assert_false(gso_refused(ECONNREFUSED));
}

static void test_full_batch_of_distinct_peers(void **state)
{
    char s[GSO_ORDER_MAX + 1], out[GSO_ORDER_MAX + 1];
    int moved;

    (void)state;
    for (int i = 0; i < GSO_ORDER_MAX; i++)
        s[i] = (char)(' ' + i);
    s[GSO_ORDER_MAX] = '\0';
    assert_int_equal(runs_after(s, out, &moved), GSO_ORDER_MAX);
    assert_string_equal(out, s);
    assert_int_equal(moved, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_interleaved_peers_become_one_run_each),
        cmocka_unit_test(test_grouped_batch_stays_as_it_is),
        cmocka_unit_test(test_three_peers_in_first_seen_order),
        cmocka_unit_test(test_full_batch_of_distinct_peers),
        cmocka_unit_test(test_refusals_that_mean_no_gso),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
