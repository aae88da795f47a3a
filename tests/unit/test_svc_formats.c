/* test_svc_formats.c — what chargen, daytime, time and info say, without sockets. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <time.h>

#include "serve/services/svc_formats.h"

/* RFC 864's own first lines, as printed in the RFC. */
static void test_chargen_first_lines(void **state)
{
    char line[CHARGEN_LINE_LEN];

    (void)state;
    chargen_line(0, line);
    assert_memory_equal(line, " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                              "[\\]^_`abcdefg\r\n", CHARGEN_LINE_LEN);
    chargen_line(1, line);
    assert_memory_equal(line, "!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                              "[\\]^_`abcdefgh\r\n", CHARGEN_LINE_LEN);
}

/* Every line: 72 characters, each the one after its left neighbour (0x7E wraps to
 * 0x20), starting one further than the line before; line 95 is line 0 again. */
static void test_chargen_rotation(void **state)
{
    char line[CHARGEN_LINE_LEN], again[CHARGEN_LINE_LEN];

    (void)state;
    for (unsigned long i = 0; i < 2 * CHARGEN_LINES; i++) {
        chargen_line(i, line);
        assert_int_equal(line[0], ' ' + (int)(i % 95));
        for (int k = 1; k < CHARGEN_WIDTH; k++)
            assert_int_equal(line[k], line[k - 1] == '~' ? ' ' : line[k - 1] + 1);
        assert_memory_equal(line + CHARGEN_WIDTH, "\r\n", 2);
        chargen_line(i + CHARGEN_LINES, again);
        assert_memory_equal(line, again, CHARGEN_LINE_LEN);
    }
    chargen_line(94, line);
    assert_int_equal(line[0], '~');
    assert_int_equal(line[1], ' ');
}

static void test_chargen_fill_lines_then_part(void **state)
{
    char buf[3 * CHARGEN_LINE_LEN + 10], line[CHARGEN_LINE_LEN];

    (void)state;
    chargen_fill(buf, sizeof buf, 94);
    chargen_line(94, line);
    assert_memory_equal(buf, line, CHARGEN_LINE_LEN);
    chargen_line(0, line);
    assert_memory_equal(buf + CHARGEN_LINE_LEN, line, CHARGEN_LINE_LEN);
    chargen_line(2, line);
    assert_memory_equal(buf + 3 * CHARGEN_LINE_LEN, line, 10);
}

static void check_daytime(time_t t, const char *want)
{
    char buf[DAYTIME_MAX];

    assert_int_equal(daytime_format(t, buf, sizeof buf), (long)strlen(want));
    assert_string_equal(buf, want);
}

static void test_daytime_format(void **state)
{
    (void)state;
    check_daytime(0, "Thursday, January 01, 1970 00:00:00-UTC\r\n");
    /* RFC 867's example date (it calls it a Tuesday: it was a Monday). */
    check_daytime(383247463, "Monday, February 22, 1982 17:37:43-UTC\r\n");
    check_daytime(951782400, "Tuesday, February 29, 2000 00:00:00-UTC\r\n");
    check_daytime(1727740799, "Monday, September 30, 2024 23:59:59-UTC\r\n");
}

static void test_daytime_too_small(void **state)
{
    char buf[10];

    (void)state;
    assert_int_equal(daytime_format(0, buf, sizeof buf), -1);
}

static void check_time(time_t t, uint32_t want)
{
    unsigned char out[TIME_LEN];
    unsigned char be[TIME_LEN] = {
        (unsigned char)(want >> 24), (unsigned char)(want >> 16),
        (unsigned char)(want >> 8), (unsigned char)want,
    };

    time_format(t, out);
    assert_memory_equal(out, be, TIME_LEN);
}

/* RFC 868's table: 1970 is 2,208,988,800; 1980 is 2,524,521,600. */
static void test_time_format(void **state)
{
    (void)state;
    check_time(0, 2208988800u);
    check_time(315532800, 2524521600u);
    check_time(-2208988800LL, 0);
    /* 2036-02-07 06:28:16 UTC: the end of era 0; it wraps to 0. */
    check_time(2085978496LL, 0);
    check_time(2085978497LL, 1);
}

static void check_info(const struct info_fields *f, int json, const char *want)
{
    char buf[INFO_LINE_MAX];

    assert_int_equal(info_format(f, json, buf, sizeof buf), (long)strlen(want));
    assert_string_equal(buf, want);
}

static void test_info_kv(void **state)
{
    struct info_fields f = { .name = "web-1", .proto = "tcp", .local = "127.0.0.1:7",
                            .peer = "[::1]:40000" };

    (void)state;
    check_info(&f, 0, "name=web-1 proto=tcp local=127.0.0.1:7 peer=[::1]:40000\n");
    f.client = "192.0.2.1:5555";
    check_info(&f, 0, "name=web-1 proto=tcp local=127.0.0.1:7 peer=[::1]:40000 "
                      "client=192.0.2.1:5555\n");
    f.client = "";
    check_info(&f, 0, "name=web-1 proto=tcp local=127.0.0.1:7 peer=[::1]:40000\n");
}

static void test_info_kv_escapes(void **state)
{
    struct info_fields f = { .name = "a b\"c\\d\te\x80", .proto = "unix",
                            .local = "unix:/tmp/x=y", .peer = "" };

    (void)state;
    check_info(&f, 0, "name=\"a b\\\"c\\\\d\\x09e\\x80\" proto=unix local=unix:/tmp/x=y "
                      "peer=\"\"\n");
}

static void test_info_json(void **state)
{
    struct info_fields f = { .name = "a \"b\"\n\x01\xff", .proto = "udp", .local = "[::1]:7",
                            .peer = "[::1]:9", .client = "10.0.0.1:1" };

    (void)state;
    check_info(&f, 1, "{\"name\":\"a \\\"b\\\"\\n\\u0001\\u00ff\",\"proto\":\"udp\","
                      "\"local\":\"[::1]:7\",\"peer\":\"[::1]:9\",\"client\":\"10.0.0.1:1\"}\n");
}

static void test_info_tls(void **state)
{
    struct info_fields f = { .name = "web-1", .proto = "tcp", .local = "127.0.0.1:7",
                            .peer = "127.0.0.1:9", .tls_version = "TLSv1.3",
                            .tls_cipher = "TLS_AES_128_GCM_SHA256", .sni = "", .alpn = "h2" };

    (void)state;
    check_info(&f, 0, "name=web-1 proto=tcp local=127.0.0.1:7 peer=127.0.0.1:9 tls=TLSv1.3 "
                      "cipher=TLS_AES_128_GCM_SHA256 sni=\"\" alpn=h2 client_cert=no\n");
    f.client_cert = 1;
    f.cert_subject = "CN=alice,O=Example Corp";
    f.cert_issuer = "CN=ca";
    f.cert_fingerprint = "AB:CD";
    check_info(&f, 1, "{\"name\":\"web-1\",\"proto\":\"tcp\",\"local\":\"127.0.0.1:7\","
                      "\"peer\":\"127.0.0.1:9\",\"tls\":\"TLSv1.3\",\"cipher\":"
                      "\"TLS_AES_128_GCM_SHA256\",\"sni\":\"\",\"alpn\":\"h2\",\"client_cert\":"
                      "\"yes\",\"cert_subject\":\"CN=alice,O=Example Corp\",\"cert_issuer\":"
                      "\"CN=ca\",\"cert_fingerprint\":\"AB:CD\"}\n");
}

static void test_info_too_long(void **state)
{
    char name[INFO_LINE_MAX], buf[INFO_LINE_MAX];
    struct info_fields f = { .name = name, .proto = "tcp", .local = "", .peer = "" };

    (void)state;
    memset(name, 'x', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    assert_int_equal(info_format(&f, 0, buf, sizeof buf), -1);
    assert_int_equal(info_format(&f, 1, buf, sizeof buf), -1);
}

/* The longest --name escaped as JSON, with the longest IPv6 texts, fits. */
static void test_info_worst_ip_case_fits(void **state)
{
    char name[INFO_NAME_MAX + 1], buf[INFO_LINE_MAX];
    const char *v6 = "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255%interface-name0]:65535";
    struct info_fields f = { .name = name, .proto = "unix", .local = v6, .peer = v6, .client = v6 };

    (void)state;
    memset(name, 0x01, INFO_NAME_MAX);
    name[INFO_NAME_MAX] = '\0';
    assert_true(info_format(&f, 1, buf, sizeof buf) > 0);
    assert_true(info_format(&f, 0, buf, sizeof buf) > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chargen_first_lines),
        cmocka_unit_test(test_chargen_rotation),
        cmocka_unit_test(test_chargen_fill_lines_then_part),
        cmocka_unit_test(test_daytime_format),
        cmocka_unit_test(test_daytime_too_small),
        cmocka_unit_test(test_time_format),
        cmocka_unit_test(test_info_kv),
        cmocka_unit_test(test_info_kv_escapes),
        cmocka_unit_test(test_info_json),
        cmocka_unit_test(test_info_tls),
        cmocka_unit_test(test_info_too_long),
        cmocka_unit_test(test_info_worst_ip_case_fits),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
