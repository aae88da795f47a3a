/* test_log.c — json_escape (serve --log-format json) and the log time format. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <regex.h>
#include <string.h>

#include "lib/log.h"

struct esc_case {
    const char *in, *out;
};

static const struct esc_case escapes[] = {
    { "plain text", "plain text" },
    { "", "" },
    { "say \"hi\"", "say \\\"hi\\\"" },
    { "back\\slash", "back\\\\slash" },
    { "nl\ncr\rtab\t", "nl\\u000acr\\u000dtab\\u0009" },
    { "\x01\x1f\x7f", "\\u0001\\u001f\\u007f" },
    { "/slash/", "/slash/" },
    { "\xe6\x9c\xa8\xe9\x9c\x8a", "\xe6\x9c\xa8\xe9\x9c\x8a" },           /* 木霊 */
    { "\xf0\x9f\x8d\xb5 tea", "\xf0\x9f\x8d\xb5 tea" },                    /* 4 bytes */
    { "bad\xff", "bad\xef\xbf\xbd" },
    { "\x80", "\xef\xbf\xbd" },
    { "\xc0\x80", "\xef\xbf\xbd\xef\xbf\xbd" },                             /* overlong NUL */
    { "\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },             /* surrogate */
    { "\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" }, /* > U+10FFFF */
    { "cut\xe6\x9c", "cut\xef\xbf\xbd\xef\xbf\xbd" },
};

static void test_json_escape(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof escapes / sizeof escapes[0]; i++) {
        char out[256];
        size_t n = json_escape(escapes[i].in, out, sizeof out);

        assert_string_equal(out, escapes[i].out);
        assert_int_equal(n, strlen(escapes[i].out));
    }
}

/* Cut short only between whole escapes and characters. */
static void test_json_escape_truncates_whole(void **state)
{
    char out[8];

    (void)state;
    assert_int_equal(json_escape("abc\"def", out, 5), 3);         /* "abc" + NUL; \" needs 2 */
    assert_string_equal(out, "abc");
    assert_int_equal(json_escape("a\x01", out, 7), 1);            /* \u0001 needs 6 + NUL */
    assert_string_equal(out, "a");
    assert_int_equal(json_escape("a\xe6\x9c\xa8", out, 4), 1);
    assert_string_equal(out, "a");
    assert_int_equal(json_escape("abc", out, 0), 0);
    assert_int_equal(json_escape("abcdefghij", out, sizeof out), 7);
    assert_string_equal(out, "abcdefg");
}

static void test_time_format(void **state)
{
    char t[LOG_TIME_LEN];
    regex_t re;

    (void)state;
    log_time_now(t, sizeof t);
    assert_int_equal(regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
                                  "\\.[0-9]{3}Z$", REG_EXTENDED | REG_NOSUB), 0);
    assert_int_equal(regexec(&re, t, 0, NULL, 0), 0);
    regfree(&re);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_escape),
        cmocka_unit_test(test_json_escape_truncates_whole),
        cmocka_unit_test(test_time_format),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
