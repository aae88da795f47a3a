/* test_metrics.c — the exposition text of --metrics (metrics_text.c) and the
 * routing of its requests (metrics_route), exactly. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/core/fault.h"
#include "serve/core/guard.h"
#include "serve/metrics.h"
#include "serve/metrics_text.h"

/* Run metrics_write or metrics_label_value into a string, to free. */
static char *written(const struct metrics_snapshot *s, const char *label)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);

    assert_non_null(out);
    if (s)
        assert_int_equal(metrics_write(out, s), 0);
    else
        metrics_label_value(out, label);
    assert_int_equal(fclose(out), 0);
    return text;
}

static void check_label(const char *in, const char *want)
{
    char *got = written(NULL, in);

    assert_string_equal(got, want);
    free(got);
}

static void test_label_escaping(void **state)
{
    (void)state;
    check_label("127.0.0.1:7007", "127.0.0.1:7007");
    check_label("unix:/tmp/a\"b", "unix:/tmp/a\\\"b");
    check_label("unix:/tmp/a\\b", "unix:/tmp/a\\\\b");
    check_label("line\nbreak", "line\\nbreak");
    check_label("tab\there", "tab\there");              /* allowed as is */
    check_label("\xe6\x9c\xa8\xe9\x9c\x8a", "\xe6\x9c\xa8\xe9\x9c\x8a");  /* 木霊 stays */
    check_label("bad\xff" "byte", "bad\xef\xbf\xbd" "byte");
    check_label("cut\xe6\x9c", "cut\xef\xbf\xbd\xef\xbf\xbd");
    check_label("overlong\xc0\xaf", "overlong\xef\xbf\xbd\xef\xbf\xbd");
    check_label("surrogate\xed\xa0\x80", "surrogate\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    check_label("", "");
}

#define LABELS_TCP "service=\"echo\",proto=\"tcp\",address=\"127.0.0.1:7007\",name=\"echo-7007\""
#define LABELS_UDP "service=\"echo\",proto=\"udp\",address=\"[::1]:7\\\"x\",name=\"slow\\\\1\""

static void test_exposition_exact(void **state)
{
    struct metrics_listener ls[2] = {
        { .service = "echo", .proto = "tcp", .address = "127.0.0.1:7007", .name = "echo-7007",
          .t = { .accepted = 3, .active = 1, .bytes_in = 100, .bytes_out = 99,
                 .accept_errors = 2, .drops = { [DROP_MAX_CONNS] = 5 },
                 .faults = { [FAULT_LATENCY] = 8, [FAULT_RESET_AFTER] = 1 } } },
        { .service = "echo", .proto = "udp", .address = "[::1]:7\"x", .name = "slow\\1",
          .t = { .dgrams_in = 4, .dgrams_out = 3, .dgrams_dropped = 1, .bytes_in = 40,
                 .bytes_out = 30, .drops = { [DROP_UDP_RATE] = 7 },
                 .faults = { [FAULT_DROP] = 2 } } },
    };
    struct metrics_snapshot s = {
        .listeners = ls, .n = 2,
        .proc = { .version = "1.2.3", .open_fds = 12, .max_fds = 1024, .rss_bytes = 4096,
                  .start_time = 1700000000.25 },
    };
    char drops[4096] = "", faults[4096] = "";
    char *want, *got;
    size_t off = 0, foff = 0;

    (void)state;
    for (int l = 0; l < 2; l++)
        for (int r = 0; r < DROP_REASONS; r++)
            off += (size_t)snprintf(drops + off, sizeof drops - off,
                                    "kodama_drops_total{%s,reason=\"%s\"} %llu\n",
                                    l == 0 ? LABELS_TCP : LABELS_UDP,
                                    drop_reason_name((enum drop_reason)r),
                                    (unsigned long long)ls[l].t.drops[r]);
    for (int l = 0; l < 2; l++)
        for (int k = 0; k < FAULT_KINDS; k++)
            if (l == 0 ? fault_kind_on_stream((enum fault_kind)k)
                       : fault_kind_on_dgram((enum fault_kind)k))
                foff += (size_t)snprintf(faults + foff, sizeof faults - foff,
                                         "kodama_faults_total{%s,fault=\"%s\"} %llu\n",
                                         l == 0 ? LABELS_TCP : LABELS_UDP,
                                         fault_kind_name((enum fault_kind)k),
                                         (unsigned long long)ls[l].t.faults[k]);
    assert_true(asprintf(&want,
        "# HELP kodama_connections_accepted_total Stream connections accepted and admitted by the limits.\n"
        "# TYPE kodama_connections_accepted_total counter\n"
        "kodama_connections_accepted_total{" LABELS_TCP "} 3\n"
        "# HELP kodama_connections_active Stream connections open now.\n"
        "# TYPE kodama_connections_active gauge\n"
        "kodama_connections_active{" LABELS_TCP "} 1\n"
        "# HELP kodama_accept_errors_total Failed accept calls other than a vanished client (e.g. out of descriptors).\n"
        "# TYPE kodama_accept_errors_total counter\n"
        "kodama_accept_errors_total{" LABELS_TCP "} 2\n"
        "# HELP kodama_datagrams_received_total Datagrams received.\n"
        "# TYPE kodama_datagrams_received_total counter\n"
        "kodama_datagrams_received_total{" LABELS_UDP "} 4\n"
        "# HELP kodama_datagrams_sent_total Datagrams sent in reply.\n"
        "# TYPE kodama_datagrams_sent_total counter\n"
        "kodama_datagrams_sent_total{" LABELS_UDP "} 3\n"
        "# HELP kodama_datagrams_send_failed_total Replies the kernel refused to send.\n"
        "# TYPE kodama_datagrams_send_failed_total counter\n"
        "kodama_datagrams_send_failed_total{" LABELS_UDP "} 1\n"
        "# HELP kodama_received_bytes_total Bytes received: stream payload, or datagram payload.\n"
        "# TYPE kodama_received_bytes_total counter\n"
        "kodama_received_bytes_total{" LABELS_TCP "} 100\n"
        "kodama_received_bytes_total{" LABELS_UDP "} 40\n"
        "# HELP kodama_sent_bytes_total Bytes sent: stream payload, or datagram payload.\n"
        "# TYPE kodama_sent_bytes_total counter\n"
        "kodama_sent_bytes_total{" LABELS_TCP "} 99\n"
        "kodama_sent_bytes_total{" LABELS_UDP "} 30\n"
        "# HELP kodama_drops_total Connections and datagrams turned away (refused, closed or dropped), by reason.\n"
        "# TYPE kodama_drops_total counter\n"
        "%s"
        "# HELP kodama_faults_total Connections and datagrams a fault acted on, by fault (kodama(1), FAULTS).\n"
        "# TYPE kodama_faults_total counter\n"
        "%s"
        "# HELP kodama_build_info Always 1; the version is in its label.\n"
        "# TYPE kodama_build_info gauge\n"
        "kodama_build_info{version=\"1.2.3\"} 1\n"
        "# HELP process_open_fds Number of open file descriptors.\n"
        "# TYPE process_open_fds gauge\n"
        "process_open_fds 12\n"
        "# HELP process_max_fds Maximum number of open file descriptors.\n"
        "# TYPE process_max_fds gauge\n"
        "process_max_fds 1024\n"
        "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
        "# TYPE process_resident_memory_bytes gauge\n"
        "process_resident_memory_bytes 4096\n"
        "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n"
        "# TYPE process_start_time_seconds gauge\n"
        "process_start_time_seconds 1700000000.25\n", drops, faults) > 0);
    got = written(&s, NULL);
    assert_string_equal(got, want);
    /* The reasons are all there, by name, for both listeners. */
    assert_non_null(strstr(got, LABELS_TCP ",reason=\"max_conns\"} 5\n"));
    assert_non_null(strstr(got, LABELS_UDP ",reason=\"udp_rate\"} 7\n"));
    assert_non_null(strstr(got, LABELS_TCP ",fault=\"latency\"} 8\n"));
    assert_non_null(strstr(got, LABELS_TCP ",fault=\"reset-after\"} 1\n"));
    assert_non_null(strstr(got, LABELS_UDP ",fault=\"drop\"} 2\n"));
    assert_null(strstr(got, LABELS_UDP ",fault=\"slice\""));
    free(got);
    free(want);
}

/* Unknown process figures leave their families out; no listener, no listener families. */
static void test_exposition_unknowns(void **state)
{
    struct metrics_snapshot s = {
        .n = 0, .proc = { .version = "v", .open_fds = -1, .max_fds = -1, .rss_bytes = -1,
                          .start_time = -1 },
    };
    char *got = written(&s, NULL);

    (void)state;
    assert_string_equal(got,
        "# HELP kodama_build_info Always 1; the version is in its label.\n"
        "# TYPE kodama_build_info gauge\n"
        "kodama_build_info{version=\"v\"} 1\n");
    free(got);
}

struct route_case {
    const char *head;
    int status, head_only;
};

static const struct route_case routes[] = {
    { "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 200, 0 },
    { "GET /metrics HTTP/1.0\r\n\r\n", 200, 0 },
    { "GET /metrics?x=1 HTTP/1.1\r\n\r\n", 200, 0 },
    { "GET /metrics HTTP/1.1\n\n", 200, 0 },
    { "HEAD /metrics HTTP/1.1\r\n\r\n", 200, 1 },
    { "GET / HTTP/1.1\r\n\r\n", 404, 0 },
    { "GET /metricsx HTTP/1.1\r\n\r\n", 404, 0 },
    { "GET /metrics/ HTTP/1.1\r\n\r\n", 404, 0 },
    { "POST / HTTP/1.1\r\n\r\n", 404, 0 },
    { "POST /metrics HTTP/1.1\r\n\r\n", 405, 0 },
    { "DELETE /metrics HTTP/1.1\r\n\r\n", 405, 0 },
    { "get /metrics HTTP/1.1\r\n\r\n", 405, 0 },         /* methods are case-sensitive */
    { "GET /metrics HTTP/2.0\r\n\r\n", 400, 0 },
    { "GET /metrics\r\n\r\n", 400, 0 },
    { "GET  /metrics HTTP/1.1\r\n\r\n", 400, 0 },
    { "GET metrics HTTP/1.1\r\n\r\n", 400, 0 },
    { "GET /metrics HTTP/1.1 \r\n\r\n", 400, 0 },
    { "G(T /metrics HTTP/1.1\r\n\r\n", 400, 0 },
    { "\r\n\r\n", 400, 0 },
    { "GET /met\x01rics HTTP/1.1\r\n\r\n", 400, 0 },
};

static void test_route(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        int head_only = -1;
        int status = metrics_route(routes[i].head, strlen(routes[i].head), &head_only);

        if (status != routes[i].status || head_only != routes[i].head_only)
            fail_msg("%s: %d (head only %d), expected %d (%d)", routes[i].head, status,
                     head_only, routes[i].status, routes[i].head_only);
    }
}

static void test_addr_parse(void **state)
{
    char err[256];
    struct spec sp;

    (void)state;
    assert_int_equal(metrics_addr_parse("9100", &sp, err, sizeof err), 0);
    assert_int_equal(sp.kind, ADDR_ANY);
    assert_int_equal(sp.port, 9100);
    assert_int_equal(metrics_addr_parse("127.0.0.1:0", &sp, err, sizeof err), 0);
    assert_string_equal(sp.host, "127.0.0.1");
    assert_int_equal(metrics_addr_parse("[::1]:9100", &sp, err, sizeof err), 0);
    assert_string_equal(sp.host, "::1");
    assert_int_equal(metrics_addr_parse("unix:/tmp/m", &sp, err, sizeof err), -1);
    assert_int_equal(metrics_addr_parse("9100/udp", &sp, err, sizeof err), -1);
    assert_int_equal(metrics_addr_parse("99999", &sp, err, sizeof err), -1);
    assert_int_equal(metrics_addr_parse("", &sp, err, sizeof err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_label_escaping),
        cmocka_unit_test(test_exposition_exact),
        cmocka_unit_test(test_exposition_unknowns),
        cmocka_unit_test(test_route),
        cmocka_unit_test(test_addr_parse),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
