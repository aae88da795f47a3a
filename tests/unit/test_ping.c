/* test_ping.c — ping's probe payload (proto/ping.c): the exact bytes of a probe (the
 * man page's format, computed independently), and what the parser calls wrong. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "proto/ping.h"

/* A 20-byte probe, seq 5, id 0x01020304: "KDMP", id, seq, FNV-1a of bytes 0..11 and
 * 16..19, then filler bytes 16 + 35 .. 19 + 35 (i + 7 * seq). */
static const unsigned char probe20[20] = {
    0x4b, 0x44, 0x4d, 0x50, 0x01, 0x02, 0x03, 0x04, 0x00, 0x00, 0x00, 0x05,
    0x6c, 0x52, 0x97, 0x70, 0x33, 0x34, 0x35, 0x36,
};

static void test_exact_bytes(void **state)
{
    unsigned char buf[20];
    uint32_t seq = 0;

    (void)state;
    ping_build(buf, sizeof buf, 0x01020304, 5);
    assert_memory_equal(buf, probe20, sizeof buf);
    assert_int_equal(ping_parse(buf, sizeof buf, sizeof buf, 0x01020304, &seq), PING_OK);
    assert_int_equal(seq, 5);
}

static void test_wrong_replies(void **state)
{
    unsigned char buf[56], big[57];
    uint32_t seq = 99;

    (void)state;
    ping_build(buf, sizeof buf, 7, 3);
    assert_int_equal(ping_parse(buf, sizeof buf, sizeof buf, 8, &seq), PING_NOT_OURS);
    assert_int_equal(ping_parse(buf, 40, sizeof buf, 7, &seq), PING_WRONG_SIZE);
    assert_int_equal(ping_parse(buf, 10, sizeof buf, 7, &seq), PING_WRONG_SIZE);
    memcpy(big, buf, sizeof buf);
    big[56] = 'x';
    assert_int_equal(ping_parse(big, sizeof big, sizeof buf, 7, &seq), PING_WRONG_SIZE);
    for (size_t i = 0; i < sizeof buf; i++) {
        buf[i] ^= 0x40;
        assert_int_not_equal(ping_parse(buf, sizeof buf, sizeof buf, 7, &seq), PING_OK);
        buf[i] ^= 0x40;
    }
    buf[20] ^= 1;
    assert_int_equal(ping_parse(buf, sizeof buf, sizeof buf, 7, &seq), PING_CORRUPT);
    assert_int_equal(seq, 99);      /* untouched unless PING_OK */
    assert_int_equal(ping_parse("Hello from server!\n", 19, 56, 7, &seq), PING_WRONG_SIZE);
    assert_string_equal(ping_kind_name(PING_CORRUPT), "bad check");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_bytes),
        cmocka_unit_test(test_wrong_replies),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
