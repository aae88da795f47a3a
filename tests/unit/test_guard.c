/* test_guard.c — unit tests for the connection limits and the UDP guard (guard.c):
 * how addresses are grouped (IPv4, IPv4-mapped, IPv6 /64, loopback), exact counts
 * given back at close, and the token bucket's burst. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#include "serve/core/guard.h"

static socklen_t make_addr(const char *text, unsigned port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (strchr(text, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        assert_int_equal(inet_pton(AF_INET6, text, &s6->sin6_addr), 1);
        return sizeof *s6;
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    assert_int_equal(inet_pton(AF_INET, text, &s4->sin_addr), 1);
    return sizeof *s4;
}

static int admit(struct guard *g, const char *text, struct ip_count **slot,
                 enum drop_reason *why)
{
    struct sockaddr_storage ss;
    socklen_t len = make_addr(text, 40000, &ss);

    return guard_conn_admit(g, (struct sockaddr *)&ss, len, slot, why);
}

static struct guard *per_ip_guard(unsigned max_per_ip, int limit_loopback)
{
    struct guard_config cfg = { .max_conns = 1000, .max_per_ip = max_per_ip,
                                .limit_loopback = limit_loopback };

    return guard_new(&cfg, NULL, 0);
}

static void test_per_ip_counts_and_releases(void **state)
{
    struct guard *g = per_ip_guard(2, 0);
    struct ip_count *a, *b, *c;
    enum drop_reason why = DROP_REASONS;

    (void)state;
    assert_int_equal(admit(g, "192.0.2.1", &a, &why), 0);
    assert_non_null(a);
    assert_int_equal(admit(g, "192.0.2.1", &b, &why), 0);
    assert_int_equal(admit(g, "192.0.2.1", &c, &why), -1);
    assert_int_equal(why, DROP_PER_IP);
    assert_int_equal(admit(g, "192.0.2.2", &c, &why), 0);     /* another address */
    guard_conn_release(g, c);
    guard_conn_release(g, a);
    assert_int_equal(admit(g, "192.0.2.1", &a, &why), 0);     /* a place is free again */
    guard_conn_release(g, a);
    guard_conn_release(g, b);
    guard_free(g);
}

/* An IPv6 host has a /64 to itself: its addresses count together. A dual-stack
 * socket's IPv4 client is the same client as over plain IPv4. */
static void test_ipv6_by_64_and_mapped_v4(void **state)
{
    struct guard *g = per_ip_guard(1, 0);
    struct ip_count *a, *b, *c, *d;
    enum drop_reason why;

    (void)state;
    assert_int_equal(admit(g, "2001:db8:1:2::1", &a, &why), 0);
    assert_int_equal(admit(g, "2001:db8:1:2:ffff::9", &b, &why), -1);
    assert_int_equal(why, DROP_PER_IP);
    assert_int_equal(admit(g, "2001:db8:1:3::1", &b, &why), 0);   /* next /64 */
    assert_int_equal(admit(g, "198.51.100.7", &c, &why), 0);
    assert_int_equal(admit(g, "::ffff:198.51.100.7", &d, &why), -1);
    assert_int_equal(admit(g, "::ffff:198.51.100.8", &d, &why), 0);
    guard_conn_release(g, a);
    guard_conn_release(g, b);
    guard_conn_release(g, c);
    guard_conn_release(g, d);
    guard_free(g);
}

static void test_loopback_exempt_unless_asked(void **state)
{
    const char *loopbacks[] = { "127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1" };

    (void)state;
    for (size_t i = 0; i < sizeof loopbacks / sizeof *loopbacks; i++) {
        struct guard *g = per_ip_guard(1, 0);
        struct ip_count *a, *b;
        enum drop_reason why;

        assert_int_equal(admit(g, loopbacks[i], &a, &why), 0);
        assert_int_equal(admit(g, loopbacks[i], &b, &why), 0);
        assert_null(a);
        guard_conn_release(g, a);
        guard_conn_release(g, b);
        guard_free(g);
        g = per_ip_guard(1, 1);
        assert_int_equal(admit(g, loopbacks[i], &a, &why), 0);
        assert_int_equal(admit(g, loopbacks[i], &b, &why), -1);
        guard_conn_release(g, a);
        guard_free(g);
    }
}

static void test_max_conns_counts_every_kind(void **state)
{
    struct guard_config cfg = { .max_conns = 2 };
    struct guard *g = guard_new(&cfg, NULL, 0);
    struct sockaddr_un un = { .sun_family = AF_UNIX };
    struct ip_count *a, *b, *c;
    enum drop_reason why;

    (void)state;
    assert_int_equal(guard_conn_admit(g, (struct sockaddr *)&un, 0, &a, &why), 0);
    assert_int_equal(admit(g, "::1", &b, &why), 0);
    assert_int_equal(admit(g, "192.0.2.1", &c, &why), -1);
    assert_int_equal(why, DROP_MAX_CONNS);
    guard_conn_release(g, a);
    assert_int_equal(admit(g, "192.0.2.1", &c, &why), 0);
    guard_conn_release(g, b);
    guard_conn_release(g, c);
    guard_free(g);
}

/* A refusal by address must not keep a place in the total. */
static void test_per_ip_refusal_gives_back_total(void **state)
{
    struct guard_config cfg = { .max_conns = 2, .max_per_ip = 1 };
    struct guard *g = guard_new(&cfg, NULL, 0);
    struct ip_count *a, *b;
    enum drop_reason why;

    (void)state;
    assert_int_equal(admit(g, "192.0.2.1", &a, &why), 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(admit(g, "192.0.2.1", &b, &why), -1);
    assert_int_equal(admit(g, "192.0.2.2", &b, &why), 0);
    guard_conn_release(g, a);
    guard_conn_release(g, b);
    guard_free(g);
}

static int admit_client(struct guard *g, const char *text, struct ip_count **slot,
                        enum drop_reason *why)
{
    struct sockaddr_storage ss;
    socklen_t len = make_addr(text, 40000, &ss);

    return guard_conn_admit_addr(g, (struct sockaddr *)&ss, len, slot, why);
}

/* A PROXY listener: accepted with no address (the load balancer's is not counted
 * per address), then admitted by the client its header names. */
static void test_two_step_admission(void **state)
{
    struct guard_config cfg = { .max_conns = 3, .max_per_ip = 1 };
    struct guard *g = guard_new(&cfg, NULL, 0);
    struct ip_count *waiting[4], *client[3];
    enum drop_reason why = DROP_REASONS;

    (void)state;
    /* Three from the balancer despite --max-per-ip 1; the fourth is over the total,
     * whether or not its header ever comes. */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(guard_conn_admit(g, NULL, 0, &waiting[i], &why), 0);
        assert_null(waiting[i]);
    }
    assert_int_equal(guard_conn_admit(g, NULL, 0, &waiting[3], &why), -1);
    assert_int_equal(why, DROP_MAX_CONNS);
    /* The per-address limit applies to the clients. */
    assert_int_equal(admit_client(g, "192.0.2.1", &client[0], &why), 0);
    assert_non_null(client[0]);
    assert_int_equal(admit_client(g, "192.0.2.2", &client[1], &why), 0);
    why = DROP_REASONS;
    assert_int_equal(admit_client(g, "192.0.2.1", &client[2], &why), -1);
    assert_int_equal(why, DROP_PER_IP);
    assert_null(client[2]);
    /* The refused one is closed: its place in the total comes back. */
    guard_conn_release(g, client[2]);
    assert_int_equal(guard_conn_admit(g, NULL, 0, &waiting[3], &why), 0);
    guard_conn_release(g, waiting[3]);
    /* Closing gives back both the total and the client's count. */
    guard_conn_release(g, client[0]);
    assert_int_equal(guard_conn_admit(g, NULL, 0, &waiting[3], &why), 0);
    assert_int_equal(admit_client(g, "192.0.2.1", &client[0], &why), 0);
    guard_conn_release(g, client[0]);
    guard_conn_release(g, client[1]);
    guard_free(g);
}

/* The per-address half alone never touches the total. */
static void test_admit_addr_leaves_total(void **state)
{
    struct guard_config cfg = { .max_conns = 1, .max_per_ip = 5 };
    struct guard *g = guard_new(&cfg, NULL, 0);
    struct ip_count *a, *b, *c;
    enum drop_reason why;

    (void)state;
    assert_int_equal(guard_conn_admit(g, NULL, 0, &a, &why), 0);
    assert_int_equal(admit_client(g, "192.0.2.9", &b, &why), 0);
    assert_int_equal(admit_client(g, "127.0.0.1", &c, &why), 0);     /* loopback: exempt */
    assert_null(c);
    assert_int_equal(guard_conn_admit(g, NULL, 0, &c, &why), -1);
    assert_int_equal(why, DROP_MAX_CONNS);
    guard_conn_release(g, b);
    assert_int_equal(guard_conn_admit(g, NULL, 0, &c, &why), 0);
    guard_conn_release(g, c);
    guard_free(g);
}

static int udp_check(struct guard *g, const char *text, unsigned port, enum drop_reason *why)
{
    struct sockaddr_storage ss;
    socklen_t len = make_addr(text, port, &ss);

    return guard_udp_check(g, (struct sockaddr *)&ss, len, why);
}

static void test_udp_ports(void **state)
{
    const uint16_t ours[] = { 7007, 8080 };
    struct guard_config cfg = { .udp_guard = 1 };
    struct guard *g = guard_new(&cfg, ours, 2);
    enum drop_reason why;

    (void)state;
    for (unsigned p = 0; p < 1024; p++) {
        why = DROP_REASONS;
        assert_int_equal(udp_check(g, "192.0.2.1", p, &why), -1);
        assert_int_equal(why, DROP_UDP_PORT);
    }
    assert_int_equal(udp_check(g, "192.0.2.1", 1024, &why), 0);
    assert_int_equal(udp_check(g, "192.0.2.1", 7007, &why), -1);
    assert_int_equal(why, DROP_UDP_OWN_PORT);
    assert_int_equal(udp_check(g, "2001:db8::1", 8080, &why), -1);
    assert_int_equal(udp_check(g, "2001:db8::1", 65535, &why), 0);
    guard_free(g);
    cfg.udp_guard = 0;
    g = guard_new(&cfg, ours, 2);
    assert_int_equal(udp_check(g, "192.0.2.1", 53, &why), 0);
    assert_int_equal(udp_check(g, "192.0.2.1", 7007, &why), 0);
    guard_free(g);
}

static void test_udp_rate_burst_per_source(void **state)
{
    struct guard_config cfg = { .udp_guard = 1, .udp_rate = 5 };
    struct guard *g = guard_new(&cfg, NULL, 0);
    enum drop_reason why;
    int answered = 0;

    (void)state;
    /* Well within a millisecond or two: the burst, and hardly any refill. */
    for (int i = 0; i < 50; i++)
        answered += udp_check(g, "192.0.2.1", 5000 + (unsigned)i, &why) == 0;
    assert_in_range(answered, 5, 6);
    assert_int_equal(why, DROP_UDP_RATE);
    assert_int_equal(udp_check(g, "192.0.2.2", 5000, &why), 0);       /* its own bucket */
    assert_int_equal(udp_check(g, "2001:db8:0:1::5", 5000, &why), 0);
    for (int i = 0; i < 50; i++)
        answered += udp_check(g, "127.0.0.1", 5000, &why) == 0;       /* exempt */
    assert_true(answered >= 55);
    guard_free(g);
}

/* Three times the request on the wire, headers included (RFC 9000 §8.1). */
static void test_udp_reply_bound(void **state)
{
    struct guard_config on = { .udp_guard = 1 }, off = { 0 };
    struct guard *g = guard_new(&on, NULL, 0), *h = guard_new(&off, NULL, 0);

    (void)state;
    /* An empty IPv4 request is 28 bytes on the wire: 84 may come back, 56 of payload. */
    assert_int_equal(guard_udp_reply_max(g, 0, UDP_WIRE_V4, 1, 1000), 56);
    assert_int_equal(guard_udp_reply_max(g, 0, UDP_WIRE_V4, 1, 19), 19);
    /* "hi\n" gets the whole greeting; 100 bytes, 356 of chargen's 444. */
    assert_int_equal(guard_udp_reply_max(g, 3, UDP_WIRE_V4, 1, 19), 19);
    assert_int_equal(guard_udp_reply_max(g, 100, UDP_WIRE_V4, 1, 444), 3 * 128 - 28);
    /* IPv6: 48 bytes of headers, so an empty request may bring back 96. */
    assert_int_equal(guard_udp_reply_max(g, 0, UDP_WIRE_V6, 1, 1000), 96);
    /* Two copies share the bound: each carries (84 / 2) - 28. */
    assert_int_equal(guard_udp_reply_max(g, 0, UDP_WIRE_V4, 2, 1000), 14);
    assert_int_equal(guard_udp_reply_max(g, 0, UDP_WIRE_V4, 3, 1000), 0);
    assert_int_equal(guard_udp_reply_max(g, 0, UDP_WIRE_V4, 4, 1000), 0);
    assert_int_equal(guard_udp_reply_max(h, 0, UDP_WIRE_V4, 4, 1000), 1000);
    guard_free(g);
    guard_free(h);
}

static void test_udp_overhead(void **state)
{
    struct sockaddr_in sin = { .sin_family = AF_INET };
    struct sockaddr_in6 v6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
    struct sockaddr_in6 mapped = { .sin6_family = AF_INET6 };

    (void)state;
    inet_pton(AF_INET6, "::ffff:127.0.0.1", &mapped.sin6_addr);
    assert_int_equal(guard_udp_overhead((struct sockaddr *)&sin), 28);
    assert_int_equal(guard_udp_overhead((struct sockaddr *)&v6), 48);
    assert_int_equal(guard_udp_overhead((struct sockaddr *)&mapped), 28);
}

static void test_reason_names(void **state)
{
    (void)state;
    for (int r = 0; r < DROP_REASONS; r++) {
        const char *name = drop_reason_name((enum drop_reason)r);

        assert_non_null(name);
        assert_true(strlen(name) > 0);
        assert_null(strchr(name, ' '));
    }
    assert_string_equal(drop_reason_name(DROP_REASONS), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_per_ip_counts_and_releases),
        cmocka_unit_test(test_two_step_admission),
        cmocka_unit_test(test_admit_addr_leaves_total),
        cmocka_unit_test(test_ipv6_by_64_and_mapped_v4),
        cmocka_unit_test(test_loopback_exempt_unless_asked),
        cmocka_unit_test(test_max_conns_counts_every_kind),
        cmocka_unit_test(test_per_ip_refusal_gives_back_total),
        cmocka_unit_test(test_udp_ports),
        cmocka_unit_test(test_udp_rate_burst_per_source),
        cmocka_unit_test(test_udp_reply_bound),
        cmocka_unit_test(test_udp_overhead),
        cmocka_unit_test(test_reason_names),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
