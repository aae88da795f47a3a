/* test_util.c — unit tests for parse_uint, parse_seconds and unescape.
 *
 * Build: cc -std=c17 -Wall -Wextra -Werror -Isrc tests/unit/test_util.c \
 *            src/addr.c src/util.c src/ring.c -lcmocka -o build/test_util
 *
 * Table rows each become a cmocka test named after the input. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

#define NAMELEN 160

static void check_reason(const char *err, size_t errlen)
{
    assert_true(strlen(err) > 0);
    assert_true(strlen(err) < errlen);
    assert_null(strchr(err, '\n'));
}

/* ------------------------------------------------------------------------- */
/* parse_uint                                                                */

struct uint_case {
    const char *s;
    unsigned long min, max;
    int rc;
    unsigned long out;      /* when rc == 0 */
    const char *err;        /* when rc == -1: the reason, exactly */
};

#define U_OK(s, min, max, out) { s, min, max, 0, out, NULL }
#define U_BAD(s, min, max, err) { s, min, max, -1, 0, err }
#define NAN_ "not a number"
#define BIG "too large"
#define SMALL "too small"

static const struct uint_case uint_cases[] = {
    U_OK("0", 0, 65535, 0),
    U_OK("1", 0, 65535, 1),
    U_OK("7007", 0, 65535, 7007),
    U_OK("65535", 0, 65535, 65535),
    U_OK("1", 1, 1, 1),
    U_OK("007", 0, 65535, 7),
    U_OK("000000000000000000000000001", 0, 65535, 1),
    U_OK("18446744073709551615", 0, ULONG_MAX, ULONG_MAX),
    U_OK("4294967296", 0, ULONG_MAX, 4294967296UL),
    U_BAD("65536", 0, 65535, BIG),
    U_BAD("99999", 0, 65535, BIG),
    U_BAD("0", 1, 65535, SMALL),
    U_BAD("9", 10, 20, SMALL),
    U_BAD("21", 10, 20, BIG),
    U_BAD("18446744073709551616", 0, ULONG_MAX, BIG),
    U_BAD("99999999999999999999", 0, ULONG_MAX, BIG),
    U_BAD("123456789012345678901234567890", 0, ULONG_MAX, BIG),
    U_BAD("99999999999999999999", 0, 65535, BIG),
    U_BAD("", 0, 65535, "empty"),
    U_BAD("+5", 0, 65535, NAN_),
    U_BAD("-1", 0, 65535, NAN_),
    U_BAD("-0", 0, 65535, NAN_),
    U_BAD(" 5", 0, 65535, NAN_),
    U_BAD("5 ", 0, 65535, NAN_),
    U_BAD("\t5", 0, 65535, NAN_),
    U_BAD("5\n", 0, 65535, NAN_),
    U_BAD("abc", 0, 65535, NAN_),
    U_BAD("12a", 0, 65535, NAN_),
    U_BAD("0x50", 0, 65535, NAN_),
    U_BAD("1.5", 0, 65535, NAN_),
    U_BAD("1e3", 0, 65535, NAN_),
    U_BAD("99999999999999999999x", 0, 65535, NAN_),
    U_BAD("18446744073709551616 ", 0, ULONG_MAX, NAN_),
};

#define N_UINT (sizeof(uint_cases) / sizeof(uint_cases[0]))

static void test_uint_case(void **state)
{
    const struct uint_case *c = *state;
    char err[KODAMA_ERR_LEN] = "";
    unsigned long out = 12345;

    int rc = parse_uint(c->s, c->min, c->max, &out, err, sizeof(err));
    if (rc != c->rc)
        fail_msg("parse_uint(\"%s\", %lu, %lu) = %d (out %lu, err \"%s\"); expected %d",
                 c->s, c->min, c->max, rc, out, err, c->rc);
    if (c->rc == 0) {
        assert_int_equal(out, c->out);
    } else {
        check_reason(err, sizeof(err));
        assert_string_equal(err, c->err);
    }
}

/* ------------------------------------------------------------------------- */
/* parse_seconds: milliseconds in (0, 86400 s], at most millisecond precision */

struct sec_case {
    const char *s;
    long ms;                /* -1: must fail */
};

static const struct sec_case sec_cases[] = {
    { "5", 5000 },
    { "0.5", 500 },
    { "0.001", 1 },
    { "2.25", 2250 },
    { "1.0", 1000 },
    { "1.50", 1500 },
    { "10.125", 10125 },
    { "86400", 86400000 },
    { "86400.000", 86400000 },
    { "1", 1000 },
    { "0", -1 },
    { "0.0", -1 },
    { "0.000", -1 },
    { "-1", -1 },
    { "-0.5", -1 },
    { "abc", -1 },
    { "", -1 },
    { "1.2.3", -1 },
    { "0.0001", -1 },
    { "1.0005", -1 },
    { "86401", -1 },
    { "86400.001", -1 },
    { "99999999999999999999", -1 },
    { "18446744073709551617", -1 },
    { "5s", -1 },
    { "5 ", -1 },
    { " 5", -1 },
    { "+5", -1 },
    { "1e3", -1 },
    { "0x10", -1 },
    { "inf", -1 },
    { "nan", -1 },
    { ".", -1 },
};

#define N_SEC (sizeof(sec_cases) / sizeof(sec_cases[0]))

static void test_seconds_case(void **state)
{
    const struct sec_case *c = *state;
    char err[KODAMA_ERR_LEN] = "";

    long ms = parse_seconds(c->s, err, sizeof(err));
    if (ms != c->ms)
        fail_msg("parse_seconds(\"%s\") = %ld (err \"%s\"); expected %ld", c->s, ms, err, c->ms);
    if (c->ms == -1)
        check_reason(err, sizeof(err));
}

/* ------------------------------------------------------------------------- */
/* unescape                                                                  */

struct esc_case {
    const char *src;
    const char *want;       /* NULL: must fail */
    long len;               /* decoded length, or the exact reason below */
    const char *err;
};

#define E_OK(src, want) { src, want, (long)sizeof(want) - 1, NULL }
#define E_BAD(src, err) { src, NULL, -1, err }

static const struct esc_case esc_cases[] = {
    E_OK("", ""),
    E_OK("plain text", "plain text"),
    E_OK("\\n", "\n"),
    E_OK("\\r", "\r"),
    E_OK("\\t", "\t"),
    E_OK("\\\\", "\\"),
    E_OK("Hello from server!\\n", "Hello from server!\n"),
    E_OK("a\\tb\\r\\nc\\\\d", "a\tb\r\nc\\d"),
    E_OK("\\\\n", "\\n"),
    E_OK("\\\\\\n", "\\\n"),
    E_OK("\\n\\n\\n", "\n\n\n"),
    E_OK("\\\\\\\\", "\\\\"),
    E_OK("tab\\t", "tab\t"),
    E_OK("raw\nnewline", "raw\nnewline"),
    E_BAD("\\q", "invalid escape '\\q'"),
    E_BAD("ok\\q", "invalid escape '\\q'"),
    E_BAD("\\n\\x41", "invalid escape '\\x'"),
    E_BAD("\\0", "invalid escape '\\0'"),
    E_BAD("\\N", "invalid escape '\\N'"),
    E_BAD("\\", "trailing backslash"),
    E_BAD("abc\\", "trailing backslash"),
    E_BAD("\\\\\\", "trailing backslash"),
};

#define N_ESC (sizeof(esc_cases) / sizeof(esc_cases[0]))

static void test_unescape_case(void **state)
{
    const struct esc_case *c = *state;
    char err[KODAMA_ERR_LEN] = "";
    size_t n = strlen(c->src) + 1;
    /* Exactly the documented size, on the heap so a sanitizer build sees overruns. */
    char *dst = malloc(n);

    assert_non_null(dst);
    memset(dst, '#', n);
    long len = unescape(c->src, dst, err, sizeof(err));
    if (len != c->len) {
        free(dst);
        fail_msg("unescape(\"%s\") = %ld (err \"%s\"); expected %ld", c->src, len, err, c->len);
    }
    if (c->want) {
        assert_memory_equal(dst, c->want, (size_t)len);
        assert_int_equal(dst[len], '\0');
    } else {
        check_reason(err, sizeof(err));
        assert_string_equal(err, c->err);
    }
    free(dst);
}

/* The reason for a bad escape quotes the escape even deep into a long message. */
static void test_unescape_long(void **state)
{
    (void)state;
    char src[4096], want[4096], dst[4096], err[KODAMA_ERR_LEN];
    size_t s = 0, w = 0;

    for (int i = 0; i < 500; i++) {
        static const char *const esc[] = { "\\n", "\\r", "\\t", "\\\\", "x" };
        static const char dec[] = { '\n', '\r', '\t', '\\', 'x' };
        int k = i % 5;
        size_t l = strlen(esc[k]);
        memcpy(src + s, esc[k], l);
        s += l;
        want[w++] = dec[k];
    }
    src[s] = '\0';
    assert_int_equal(unescape(src, dst, err, sizeof(err)), (long)w);
    assert_memory_equal(dst, want, w);
    assert_int_equal(dst[w], '\0');

    memcpy(src + s, "\\z", 3);
    assert_int_equal(unescape(src, dst, err, sizeof(err)), -1);
    assert_string_equal(err, "invalid escape '\\z'");
}

/* The CLI prints "kodama: <reason> in --message" as one of exactly two usage lines, so
 * a backslash before a control character must not put that character in the reason raw. */
static void test_unescape_reason_one_line(void **state)
{
    (void)state;
    static const char *const srcs[] = { "a\\\nb", "\\\r", "x\\\t" };
    char dst[16], err[KODAMA_ERR_LEN];

    for (size_t i = 0; i < sizeof(srcs) / sizeof(srcs[0]); i++) {
        memset(err, 0, sizeof(err));
        assert_int_equal(unescape(srcs[i], dst, err, sizeof(err)), -1);
        assert_memory_equal(err, "invalid escape '\\", 17);
        for (const char *p = err; *p; p++)
            if ((unsigned char)*p < 0x20)
                fail_msg("reason for source #%zu holds control byte 0x%02x: \"%s\"",
                         i, (unsigned char)*p, err);
    }
}

/* A short err buffer: truncated, NUL-terminated, nothing written past errlen. */
static void test_unescape_err_truncated(void **state)
{
    (void)state;
    char dst[8], err[32];

    memset(err, '#', sizeof(err));
    assert_int_equal(unescape("\\q", dst, err, 5), -1);
    assert_true(memchr(err, '\0', 5) != NULL);
    assert_memory_equal(err, "inva", 4);
    for (size_t i = 5; i < sizeof(err); i++)
        assert_int_equal(err[i], '#');
}

/* ------------------------------------------------------------------------- */
/* x* helpers and the clock: cheap sanity checks                             */

static void test_xalloc(void **state)
{
    (void)state;
    char *p = xmalloc(16);
    assert_non_null(p);
    memset(p, 1, 16);
    free(p);

    unsigned char *z = xcalloc(8, 4);
    assert_non_null(z);
    for (size_t i = 0; i < 32; i++)
        assert_int_equal(z[i], 0);
    free(z);

    char *d = xstrdup("kodama");
    assert_non_null(d);
    assert_string_equal(d, "kodama");
    free(d);
}

static void test_now_ms_monotonic(void **state)
{
    (void)state;
    int64_t a = now_ms();
    int64_t b = now_ms();
    assert_true(a >= 0);
    assert_true(b >= a);
}

/* ------------------------------------------------------------------------- */

/* ------------------------------------------------------------------------- */
/* parse_bytes, parse_timeout                                                */

static void test_parse_bytes(void **state)
{
    char err[64];
    unsigned long v = 0;

    (void)state;
    assert_int_equal(parse_bytes("1024", 1024, 1 << 26, &v, err, sizeof err), 0);
    assert_int_equal(v, 1024);
    assert_int_equal(parse_bytes("64K", 1024, 1 << 26, &v, err, sizeof err), 0);
    assert_int_equal(v, 65536);
    assert_int_equal(parse_bytes("2m", 1024, 1 << 26, &v, err, sizeof err), 0);
    assert_int_equal(v, 2 << 20);
    assert_int_equal(parse_bytes("64M", 1024, 1 << 26, &v, err, sizeof err), 0);
    assert_int_equal(parse_bytes("65M", 1024, 1 << 26, &v, err, sizeof err), -1);
    assert_string_equal(err, "too large");
    assert_int_equal(parse_bytes("1023", 1024, 1 << 26, &v, err, sizeof err), -1);
    assert_string_equal(err, "too small");
    assert_int_equal(parse_bytes("0K", 1024, 1 << 26, &v, err, sizeof err), -1);
    assert_int_equal(parse_bytes("K", 1024, 1 << 26, &v, err, sizeof err), -1);
    assert_string_equal(err, "empty");
    assert_int_equal(parse_bytes("", 1024, 1 << 26, &v, err, sizeof err), -1);
    assert_int_equal(parse_bytes("1KK", 1024, 1 << 26, &v, err, sizeof err), -1);
    assert_int_equal(parse_bytes("1.5M", 1024, 1 << 26, &v, err, sizeof err), -1);
    assert_int_equal(parse_bytes("18446744073709551615K", 1, 1UL << 40, &v, err, sizeof err), -1);
    assert_int_equal(parse_bytes("99999999999999999999999999999999999", 1, 10, &v, err,
                                 sizeof err), -1);
}

static void test_parse_timeout(void **state)
{
    char err[64];

    (void)state;
    assert_int_equal(parse_timeout("0", err, sizeof err), 0);
    assert_int_equal(parse_timeout("00", err, sizeof err), 0);
    assert_int_equal(parse_timeout("0.0", err, sizeof err), 0);
    assert_int_equal(parse_timeout("0.5", err, sizeof err), 500);
    assert_int_equal(parse_timeout("300", err, sizeof err), 300000);
    assert_int_equal(parse_timeout("0.0.0", err, sizeof err), -1);
    assert_int_equal(parse_timeout(".", err, sizeof err), -1);
    assert_int_equal(parse_timeout("", err, sizeof err), -1);
    assert_int_equal(parse_timeout("-1", err, sizeof err), -1);
    assert_int_equal(parse_timeout("0.0001", err, sizeof err), -1);
}

static const struct CMUnitTest fixed_tests[] = {
    cmocka_unit_test(test_unescape_long),
    cmocka_unit_test(test_unescape_reason_one_line),
    cmocka_unit_test(test_unescape_err_truncated),
    cmocka_unit_test(test_xalloc),
    cmocka_unit_test(test_now_ms_monotonic),
    cmocka_unit_test(test_parse_bytes),
    cmocka_unit_test(test_parse_timeout),
};

#define N_FIXED (sizeof(fixed_tests) / sizeof(fixed_tests[0]))
#define N_ALL (N_UINT + N_SEC + N_ESC + N_FIXED)

/* Make a printable test name: control characters as C escapes. */
static void name_of(char *dst, const char *prefix, const char *s)
{
    size_t n = (size_t)snprintf(dst, NAMELEN, "%s \"", prefix);
    for (; *s && n + 6 < NAMELEN; s++) {
        switch (*s) {
        case '\n': dst[n++] = '\\'; dst[n++] = 'n'; break;
        case '\r': dst[n++] = '\\'; dst[n++] = 'r'; break;
        case '\t': dst[n++] = '\\'; dst[n++] = 't'; break;
        default: dst[n++] = *s; break;
        }
    }
    dst[n++] = '"';
    dst[n] = '\0';
}

int main(void)
{
    static char names[N_ALL][NAMELEN];
    struct CMUnitTest tests[N_ALL];
    size_t n = 0;

    for (size_t i = 0; i < N_UINT; i++, n++) {
        char prefix[64];
        snprintf(prefix, sizeof(prefix), "parse_uint [%lu,%lu]", uint_cases[i].min, uint_cases[i].max);
        name_of(names[n], prefix, uint_cases[i].s);
        tests[n] = (struct CMUnitTest){ names[n], test_uint_case, NULL, NULL, (void *)&uint_cases[i] };
    }
    for (size_t i = 0; i < N_SEC; i++, n++) {
        name_of(names[n], "parse_seconds", sec_cases[i].s);
        tests[n] = (struct CMUnitTest){ names[n], test_seconds_case, NULL, NULL, (void *)&sec_cases[i] };
    }
    for (size_t i = 0; i < N_ESC; i++, n++) {
        name_of(names[n], "unescape", esc_cases[i].src);
        tests[n] = (struct CMUnitTest){ names[n], test_unescape_case, NULL, NULL, (void *)&esc_cases[i] };
    }
    for (size_t i = 0; i < N_FIXED; i++, n++)
        tests[n] = fixed_tests[i];

    return cmocka_run_group_tests(tests, NULL, NULL);
}
