/* test_http.c — the control API's request parser (proto/http.h): whole requests,
 * the framing of a body, and every refusal with its status. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "proto/http.h"

static struct http_request r;

static enum http_parse parse(const char *text)
{
    return http_parse_request(text, strlen(text), 100, &r);
}

static void bad(const char *text, int status, const char *why)
{
    assert_int_equal(parse(text), HTTP_BAD);
    assert_int_equal(r.status, status);
    assert_string_equal(r.why, why);
}

static void test_whole_requests(void **state)
{
    (void)state;
    assert_int_equal(parse("GET /faults HTTP/1.1\r\nHost: x\r\n\r\n"), HTTP_DONE);
    assert_string_equal(r.method, "GET");
    assert_int_equal(r.target_len, 7);
    assert_memory_equal(r.target, "/faults", 7);
    assert_int_equal(r.minor, 1);
    assert_int_equal(r.body_len, 0);
    assert_int_equal(parse("PUT /faults/e HTTP/1.0\nContent-Length:  4 \n\nrate=1"), HTTP_DONE);
    assert_int_equal(r.minor, 0);
    assert_int_equal(r.body_len, 4);
    assert_memory_equal(r.body, "rate", 4);    /* what follows is not ours */
    assert_int_equal(parse("GET /faults/x?y=1 HTTP/1.1\r\n\r\n"), HTTP_DONE);
    assert_int_equal(r.target_len, 9);
    assert_int_equal(parse("PUT /f HTTP/1.1\r\nContent-Length: 3\r\nCONTENT-LENGTH: 3\r\n\r\nabc"),
                     HTTP_DONE);
}

static void test_incomplete(void **state)
{
    (void)state;
    assert_int_equal(parse(""), HTTP_INCOMPLETE);
    assert_int_equal(parse("GET /faults HTTP/1.1\r\nHost: x\r\n"), HTTP_INCOMPLETE);
    assert_int_equal(parse("PUT /f HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc"), HTTP_INCOMPLETE);
}

static void test_refusals(void **state)
{
    char big[HTTP_HEAD_MAX + 16];

    (void)state;
    bad("\r\n\r\n", 400, "not a request line (METHOD /PATH HTTP/1.1)");
    bad("GET faults HTTP/1.1\r\n\r\n", 400, "the target must be a path (/faults)");
    bad("GET /faults HTTP/2.0\r\n\r\n", 505, "only HTTP/1.1 and HTTP/1.0");
    bad("GET /faults HTTP/1.1 x\r\n\r\n", 400, "not a request line (METHOD /PATH HTTP/1.1)");
    bad("GET /faults HTTP/1.1\r\n folded\r\n\r\n", 400, "folded header lines are not allowed");
    bad("GET /faults HTTP/1.1\r\nNo colon\r\n\r\n", 400, "a header line is not NAME: VALUE");
    bad("GET /faults HTTP/1.1\r\nName : x\r\n\r\n", 400, "a header line is not NAME: VALUE");
    bad("PUT /f HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", 400, "Content-Length is not a number");
    bad("PUT /f HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400,
        "two Content-Length values");
    bad("PUT /f HTTP/1.1\r\nContent-Length: 101\r\n\r\n", 413, "the body is too long");
    bad("PUT /f HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", 413,
        "the body is too long");
    bad("PUT /f HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 501,
        "Transfer-Encoding is not supported: send Content-Length");
    bad("GET /fa\001ults HTTP/1.1\r\n\r\n", 400, "a control character in the head");
    bad("ABCDEFGHIJKLMNOPQ / HTTP/1.1\r\n\r\n", 501, "unknown method");
    memset(big, 'a', sizeof big);
    memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
    assert_int_equal(http_parse_request(big, sizeof big, 100, &r), HTTP_BAD);
    assert_int_equal(r.status, 431);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole_requests),
        cmocka_unit_test(test_incomplete),
        cmocka_unit_test(test_refusals),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
