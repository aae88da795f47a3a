/* test_verdict.c — the verdict table (names, errno and getaddrinfo mappings), the
 * JSON object writer, and the trace lines' format. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <regex.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lib/trace.h"
#include "lib/verdict.h"

static void test_names_are_the_exit_codes(void **state)
{
    static const char *const want[] = { "ok", "mismatch", "usage", "refused", "timeout",
                                        "reset", "resolve", "tls", "unreachable", "local" };

    (void)state;
    assert_int_equal(V_COUNT, 10);
    for (int v = 0; v < V_COUNT; v++)
        assert_string_equal(verdict_name(v), want[v]);
    assert_string_equal(verdict_name(-1), "?");
    assert_string_equal(verdict_name(V_COUNT), "?");
}

static void test_errno_mapping(void **state)
{
    (void)state;
    assert_int_equal(verdict_of_errno(ECONNREFUSED), V_REFUSED);
    assert_int_equal(verdict_of_errno(ENOENT), V_REFUSED);
    assert_int_equal(verdict_of_errno(ETIMEDOUT), V_TIMEOUT);
    assert_int_equal(verdict_of_errno(ECONNRESET), V_RESET);
    assert_int_equal(verdict_of_errno(EPIPE), V_RESET);
    assert_int_equal(verdict_of_errno(ENETUNREACH), V_UNREACHABLE);
    assert_int_equal(verdict_of_errno(EHOSTUNREACH), V_UNREACHABLE);
    assert_int_equal(verdict_of_errno(EACCES), V_UNREACHABLE);
    assert_int_equal(verdict_of_errno(EADDRNOTAVAIL), V_LOCAL);
    assert_int_equal(verdict_of_errno(EMFILE), V_LOCAL);
    assert_int_equal(verdict_of_local_errno(EADDRINUSE), V_LOCAL);
    assert_int_equal(verdict_of_local_errno(EPIPE), V_LOCAL);    /* stdout gone */
    assert_int_equal(verdict_of_gai(EAI_NONAME, 0), V_RESOLVE);
    assert_int_equal(verdict_of_gai(EAI_AGAIN, 0), V_RESOLVE);
    assert_int_equal(verdict_of_gai(EAI_MEMORY, 0), V_LOCAL);
    assert_int_equal(verdict_of_gai(EAI_SYSTEM, EMFILE), V_LOCAL);
}

static void test_json_object(void **state)
{
    struct json_obj j;

    (void)state;
    json_begin(&j);
    json_str(&j, "verdict", "refused");
    json_int(&j, "exit", 3);
    json_str(&j, "peer", "say \"hi\"\n");
    json_str(&j, "local", NULL);
    json_uint(&j, "bytes_out", 18446744073709551615ull);
    json_ms(&j, "connect_ms", 0.1234);
    json_ms(&j, "first_byte_ms", -1);
    assert_string_equal(json_end(&j),
        "{\"verdict\":\"refused\",\"exit\":3,\"peer\":\"say \\\"hi\\\"\\u000a\",\"local\":null,"
        "\"bytes_out\":18446744073709551615,\"connect_ms\":0.123,\"first_byte_ms\":null}\n");
}

static void test_json_empty_and_full(void **state)
{
    static char big[JSON_OBJ_MAX];
    struct json_obj j;
    const char *out;

    (void)state;
    json_begin(&j);
    assert_string_equal(json_end(&j), "{}\n");
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    json_begin(&j);
    json_int(&j, "a", 1);
    json_str(&j, "huge", big);      /* does not fit: left out whole */
    json_int(&j, "b", 2);
    out = json_end(&j);
    assert_string_equal(out, "{\"a\":1,\"b\":2}\n");
}

/* The trace lines, read back through a pipe on stderr. */
static void read_trace(char *out, size_t len, void (*emit)(void))
{
    int p[2], saved = dup(STDERR_FILENO);
    ssize_t n;

    assert_int_equal(pipe(p), 0);
    dup2(p[1], STDERR_FILENO);
    emit();
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(p[1]);
    n = read(p[0], out, len - 1);
    close(p[0]);
    assert_true(n > 0);
    out[n] = '\0';
}

static void emit_calls(void)
{
    struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(7007),
                                 .sin6_addr = IN6ADDR_LOOPBACK_INIT };
    char a[TRACE_ADDR_MAX];

    trace_start();
    trace_call(3, 0, NULL, "socket(%s, %s)", trace_family(AF_INET6), trace_socktype(SOCK_STREAM));
    trace_call(-1, EINPROGRESS, NULL, "connect(3, %s)",
               trace_addr((struct sockaddr *)&sin6, sizeof sin6, a));
    trace_call(0, 0, "peer closed: FIN", "recv(3, %d)", 65536);
    trace_cqe(-ECONNRESET, NULL, "recv(7)");
    trace_note("bad\nname");
    trace_io("recv", 9, 0, 16384);
    errno = EAGAIN;
    trace_io("send", 9, -1, 5);
    trace_fd("shutdown(%d, SHUT_WR)", 9, 0);
    trace_cqe_fd("send", 7, 19);
    trace_enabled = 0;
}

static void test_trace_lines(void **state)
{
    char out[2048];
    regex_t re;
    static const char *const pattern =
        "^\\+0\\.0[0-9]{5} socket\\(AF_INET6, SOCK_STREAM\\) = 3\n"
        "\\+0\\.0[0-9]{5} connect\\(3, \\[::1\\]:7007\\) = -1 EINPROGRESS\n"
        "\\+0\\.0[0-9]{5} recv\\(3, 65536\\) = 0  \\(peer closed: FIN\\)\n"
        "\\+0\\.0[0-9]{5} io_uring: complete recv\\(7\\) = -ECONNRESET\n"
        "\\+0\\.0[0-9]{5} bad\\?name\n"
        "\\+0\\.0[0-9]{5} recv\\(9, 16384\\) = 0  \\(peer closed: FIN\\)\n"
        "\\+0\\.0[0-9]{5} send\\(9, 5\\) = -1 EAGAIN\n"
        "\\+0\\.0[0-9]{5} shutdown\\(9, SHUT_WR\\) = 0\n"
        "\\+0\\.0[0-9]{5} io_uring: complete send\\(7\\) = 19\n$";

    (void)state;
    read_trace(out, sizeof out, emit_calls);
    assert_int_equal(regcomp(&re, pattern, REG_EXTENDED), 0);
    if (regexec(&re, out, 0, NULL, 0) != 0)
        fail_msg("trace output:\n%s", out);
    regfree(&re);
    assert_int_equal(trace_enabled, 0);
}

static void test_errno_names(void **state)
{
    char buf[16];

    (void)state;
    assert_string_equal(trace_errno_name(EAGAIN, buf, sizeof buf), "EAGAIN");
    assert_string_equal(trace_errno_name(ECONNREFUSED, buf, sizeof buf), "ECONNREFUSED");
    assert_string_equal(trace_errno_name(4000, buf, sizeof buf), "E4000");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_are_the_exit_codes),
        cmocka_unit_test(test_errno_mapping),
        cmocka_unit_test(test_json_object),
        cmocka_unit_test(test_json_empty_and_full),
        cmocka_unit_test(test_trace_lines),
        cmocka_unit_test(test_errno_names),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
