/* test_pattern.c — unit tests for bench's verification pattern: any window of a
 * stream can be made again, and a wrong, shifted or foreign byte is found. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "lib/pattern.h"

#define LEN 4096

static void test_windows_match_the_whole(void **state)
{
    static unsigned char whole[LEN], part[LEN];
    uint64_t seed = pattern_seed(3);

    (void)state;
    pattern_fill(seed, 0, whole, LEN);
    /* Every start and length, odd ones included, gives the same bytes. */
    for (size_t off = 0; off < 64; off++)
        for (size_t len = 0; len + off <= 200; len += 13) {
            pattern_fill(seed, off, part, len);
            assert_memory_equal(part, whole + off, len);
            assert_int_equal(pattern_check(seed, off, whole + off, len), len);
        }
}

static void test_finds_a_flipped_byte(void **state)
{
    static unsigned char buf[LEN];
    uint64_t seed = pattern_seed(11);

    (void)state;
    for (size_t at = 0; at < 300; at += 7) {
        pattern_fill(seed, 1000, buf, LEN);
        buf[at] ^= 0x01;
        assert_int_equal(pattern_check(seed, 1000, buf, LEN), at);
    }
}

static void test_finds_a_shift(void **state)
{
    static unsigned char buf[LEN];
    uint64_t seed = pattern_seed(5);

    (void)state;
    /* A missing byte: the stream one further on, checked as if it were here. */
    pattern_fill(seed, 1, buf, 64);
    assert_true(pattern_check(seed, 0, buf, 64) < 8);
    /* An extra byte: everything moves up by one. */
    pattern_fill(seed, 0, buf + 1, 63);
    buf[0] = 0;
    assert_true(pattern_check(seed, 0, buf, 64) < 8);
}

static void test_streams_differ(void **state)
{
    static unsigned char a[LEN];
    size_t same = 0;

    (void)state;
    pattern_fill(pattern_seed(1), 0, a, LEN);
    assert_true(pattern_check(pattern_seed(2), 0, a, LEN) < 8);
    for (uint64_t id = 2; id < 1000; id++) {
        unsigned char b[16];
        pattern_fill(pattern_seed(id), 0, b, sizeof b);
        same += memcmp(a, b, sizeof b) == 0;
    }
    assert_int_equal(same, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_windows_match_the_whole),
        cmocka_unit_test(test_finds_a_flipped_byte),
        cmocka_unit_test(test_finds_a_shift),
        cmocka_unit_test(test_streams_differ),
    };

    return cmocka_run_group_tests_name("pattern", tests, NULL, NULL);
}
