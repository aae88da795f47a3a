/* test_json.c — the JSON reader (proto/json.c) that bench --merge reads reports with. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "proto/json.h"

static struct json_tok toks[64];

static long parse(const char *s)
{
    char err[128];

    return json_parse(s, strlen(s), toks, 64, err, sizeof err);
}

static void bad(const char *s, const char *want)
{
    char err[128] = "";

    assert_int_equal(json_parse(s, strlen(s), toks, 64, err, sizeof err), -1);
    assert_string_equal(err, want);
}

static void test_values_and_lookup(void **state)
{
    const char *s = " {\"msgs\": 123, \"rate\": 2.5e3, \"name\": \"a\\\"b\\u00e9\", \"ok\": true,"
                    " \"list\": [1, [2, 3], {}], \"none\": null} ";
    char buf[32];
    uint64_t u;
    double d;
    long n = parse(s), i, l;

    (void)state;
    assert_int_equal(n, 18);
    assert_int_equal(toks[0].type, JSON_OBJECT);
    assert_int_equal(toks[0].children, 6);
    assert_int_equal(toks[0].span, 18);
    i = json_get(s, toks, 0, "msgs");
    assert_true(i > 0);
    assert_int_equal(json_u64(s, &toks[i], &u), 0);
    assert_int_equal(u, 123);
    i = json_get(s, toks, 0, "rate");
    assert_int_equal(json_double(s, &toks[i], &d), 0);
    assert_true(d == 2500.0);
    assert_int_equal(json_u64(s, &toks[i], &u), -1);     /* not a whole number as written */
    i = json_get(s, toks, 0, "name");
    assert_int_equal(json_string(s, &toks[i], buf, sizeof buf), 5);
    assert_string_equal(buf, "a\"b\xc3\xa9");
    assert_int_equal(toks[json_get(s, toks, 0, "ok")].type, JSON_TRUE);
    assert_int_equal(toks[json_get(s, toks, 0, "none")].type, JSON_NULL);
    l = json_get(s, toks, 0, "list");
    assert_int_equal(toks[l].children, 3);
    i = json_at(toks, (size_t)l, 2);
    assert_int_equal(toks[i].type, JSON_OBJECT);
    i = json_at(toks, (size_t)l, 1);
    assert_int_equal(json_u64(s, &toks[json_at(toks, (size_t)i, 1)], &u), 0);
    assert_int_equal(u, 3);
    assert_int_equal(json_at(toks, (size_t)l, 3), -1);
    assert_int_equal(json_get(s, toks, 0, "missing"), -1);
}

static void test_strings(void **state)
{
    char buf[16];
    const char *s = "\"\\ud83d\\ude00 \\ud800x \\n\\/\"";

    (void)state;
    assert_int_equal(parse(s), 1);
    /* A pair makes one code point; a lone surrogate becomes U+FFFD. */
    assert_int_equal(json_string(s, &toks[0], buf, sizeof buf), 12);
    assert_memory_equal(buf, "\xf0\x9f\x98\x80 \xef\xbf\xbdx \n/", 12);
    /* Cut to fit, NUL-terminated; the full length is returned. */
    assert_int_equal(json_string(s, &toks[0], buf, 3), 12);
    assert_int_equal(strlen(buf), 2);
}

static void test_u64_limits(void **state)
{
    uint64_t u;

    (void)state;
    assert_int_equal(parse("18446744073709551615"), 1);
    assert_int_equal(json_u64("18446744073709551615", &toks[0], &u), 0);
    assert_true(u == UINT64_MAX);
    assert_int_equal(parse("18446744073709551616"), 1);
    assert_int_equal(json_u64("18446744073709551616", &toks[0], &u), -1);
    assert_int_equal(parse("-1"), 1);
    assert_int_equal(json_u64("-1", &toks[0], &u), -1);
}

static void test_errors(void **state)
{
    char deep[80];

    (void)state;
    bad("", "a value expected at byte 0");
    bad("{\"a\":1,}", "a key must be a string at byte 7");
    bad("{\"a\" 1}", "a ':' expected at byte 5");
    bad("[1 2]", "a ',' or ']' expected at byte 3");
    bad("1 2", "bytes after the value at byte 2");
    bad("\"\\x\"", "a bad escape at byte 2");
    bad("\"\\u12g4\"", "a bad \\u escape at byte 2");
    bad("\"a\nb\"", "a control byte in a string at byte 2");
    bad("\"abc", "an unterminated string at byte 4");
    bad("01", "bytes after the value at byte 1");
    bad("1.", "a bad number at byte 2");
    bad("-", "a bad number at byte 1");
    bad("tru", "an unexpected character at byte 0");
    memset(deep, '[', 40);
    deep[40] = '\0';
    bad(deep, "nested too deep at byte 32");
}

static void test_too_many_tokens(void **state)
{
    struct json_tok few[3];
    char err[64];

    (void)state;
    assert_int_equal(json_parse("[1,2,3]", 7, few, 3, err, sizeof err), -1);
    assert_string_equal(err, "too many values at byte 5");
    assert_int_equal(json_parse("[1,2]", 5, few, 3, err, sizeof err), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_and_lookup),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_u64_limits),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_too_many_tokens),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
