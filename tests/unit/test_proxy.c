/* test_proxy.c — unit tests for the PROXY protocol parser (proxy.c): exact v1 and v2
 * vectors, every truncation of each valid header (a valid beginning is never
 * invalid and never complete), bytes after the header not taken, and the invalid
 * forms the spec names. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "lib/addr.h"
#include "proto/proxy.h"

static const char sig[] = "\r\n\r\n\0\r\nQUIT\n";

static const char *fmt(const struct sockaddr_storage *ss, socklen_t len, char *buf)
{
    return addr_format((const struct sockaddr *)ss, len, buf, ADDR_TEXT_MAX);
}

/* Every proper prefix of a complete header is a valid beginning. */
static void check_prefixes(const void *hdr, size_t len)
{
    struct proxy_header h;

    for (size_t n = 0; n < len; n++) {
        enum proxy_status st = proxy_parse(hdr, n, &h);

        if (st != PROXY_NEED_MORE)
            fail_msg("prefix of %zu of %zu bytes: status %d (%s)", n, len, st,
                     h.why ? h.why : "");
    }
}

/* hdr parses complete, also with trailing bytes that must not be taken. */
static void parse_ok(const void *hdr, size_t len, struct proxy_header *h)
{
    char more[PROXY_HEADER_MAX + 64];

    check_prefixes(hdr, len);
    memcpy(more, hdr, len);
    memcpy(more + len, "GET / HTTP/1.0\r\n\r\n", 18);
    assert_int_equal(proxy_parse(more, len + 18, h), PROXY_COMPLETE);
    assert_int_equal(h->len, len);
    assert_int_equal(proxy_parse(hdr, len, h), PROXY_COMPLETE);
    assert_int_equal(h->len, len);
}

static void parse_bad(const void *hdr, size_t len, const char *why)
{
    struct proxy_header h;

    if (proxy_parse(hdr, len, &h) != PROXY_INVALID)
        fail_msg("'%.*s' (%zu bytes) not invalid", (int)len, (const char *)hdr, len);
    assert_non_null(h.why);
    if (why && strstr(h.why, why) == NULL)
        fail_msg("reason '%s', expected '%s'", h.why, why);
}

static void v1_ok(const char *line, int family, const char *src, const char *dst)
{
    struct proxy_header h;
    char a[ADDR_TEXT_MAX], b[ADDR_TEXT_MAX];

    parse_ok(line, strlen(line), &h);
    assert_int_equal(h.version, 1);
    assert_int_equal(h.command, PROXY_CMD_PROXY);
    assert_int_equal(h.family, family);
    if (family == AF_UNSPEC) {
        assert_int_equal(h.src_len, 0);
        return;
    }
    assert_string_equal(fmt(&h.src, h.src_len, a), src);
    assert_string_equal(fmt(&h.dst, h.dst_len, b), dst);
}

static void test_v1_vectors(void **state)
{
    (void)state;
    v1_ok("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n", AF_INET, "192.0.2.1:56324",
          "198.51.100.2:443");
    v1_ok("PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n", AF_INET,
          "255.255.255.255:65535", "255.255.255.255:65535");
    v1_ok("PROXY TCP4 0.0.0.0 10.0.0.1 0 0\r\n", AF_INET, "0.0.0.0:0", "10.0.0.1:0");
    v1_ok("PROXY TCP6 2001:db8::1 ::1 1234 7007\r\n", AF_INET6, "[2001:db8::1]:1234",
          "[::1]:7007");
    v1_ok("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
          "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n", AF_INET6,
          "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535",
          "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");
    v1_ok("PROXY UNKNOWN\r\n", AF_UNSPEC, NULL, NULL);
    v1_ok("PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n", AF_UNSPEC,
          NULL, NULL);
}

/* The longest line the spec allows: 107 bytes with the CRLF. */
static void test_v1_length_bound(void **state)
{
    char line[200];
    struct proxy_header h;

    (void)state;
    memset(line, 'x', sizeof line);
    memcpy(line, "PROXY UNKNOWN ", 14);
    memcpy(line + 105, "\r\n", 2);
    assert_int_equal(proxy_parse(line, 107, &h), PROXY_COMPLETE);
    assert_int_equal(h.len, 107);
    memset(line, 'x', sizeof line);
    memcpy(line, "PROXY UNKNOWN ", 14);
    memcpy(line + 106, "\r\n", 2);
    parse_bad(line, 108, "longer than 107");
    parse_bad(line, 107, "longer than 107");    /* the CR is the 107th byte: no room */
    assert_int_equal(proxy_parse(line, 106, &h), PROXY_NEED_MORE);
    memset(line, 'x', sizeof line);
    memcpy(line, "PROXY UNKNOWN ", 14);
    parse_bad(line, 107, "longer than 107");    /* no CR at all */
}

static void test_v1_invalid(void **state)
{
    static const char *const bad[] = {
        "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\n",      /* LF alone */
        "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\rX",
        "PROXY  TCP4 192.0.2.1 198.51.100.2 56324 443\r\n",   /* two spaces */
        "PROXY TCP4  192.0.2.1 198.51.100.2 56324 443\r\n",
        "PROXY TCP4 192.0.2.1  198.51.100.2 56324 443\r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.2 56324  443\r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443 \r\n",   /* trailing space */
        "PROXY TCP4 192.0.2.1 198.51.100.2 56324\r\n",        /* missing port */
        "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443 1\r\n",  /* one too many */
        "PROXY TCP4 192.0.2.01 198.51.100.2 56324 443\r\n",   /* leading zero */
        "PROXY TCP4 192.0.2.1 198.51.100.2 056324 443\r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.2 56324 0443\r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.2 65536 443\r\n",    /* out of range */
        "PROXY TCP4 192.0.2.256 198.51.100.2 1 2\r\n",
        "PROXY TCP4 192.0.2 198.51.100.2 1 2\r\n",
        "PROXY TCP4 192.0.2.1.5 198.51.100.2 1 2\r\n",
        "PROXY TCP4 ::1 198.51.100.2 1 2\r\n",                /* wrong family */
        "PROXY TCP6 192.0.2.1 ::1 1 2\r\n",
        "PROXY TCP6 ::1 ::g 1 2\r\n",
        "PROXY TCP6 1::2::3 ::1 1 2\r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.2 -1 2\r\n",
        "PROXY TCP4 192.0.2.1 198.51.100.2 +1 2\r\n",
        "PROXY TCP5 192.0.2.1 198.51.100.2 1 2\r\n",
        "PROXY tcp4 192.0.2.1 198.51.100.2 1 2\r\n",
        "PROXY UNKNOWNX\r\n",
        "PROXY \r\n",
        "PROXY TCP4\r\n",
        "PROXY TCP4 \r\n",
        "PROXY\r\n",
        "proxy TCP4 192.0.2.1 198.51.100.2 1 2\r\n",
        "PROXY TCP4 192.0.2.1\t198.51.100.2 1 2\r\n",
        "GET / HTTP/1.1\r\n",
        "SSH-2.0-OpenSSH_9.2\r\n",
    };

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        parse_bad(bad[i], strlen(bad[i]), NULL);
    parse_bad("PROXY TCP4 \x01", 12, "control character");
    parse_bad("G", 1, "not a PROXY");
    parse_bad("PROXZ", 5, "not a PROXY");
}

/* A v2 header: signature, ver_cmd, fam, then body (len bytes). */
static size_t v2(uint8_t *out, uint8_t ver_cmd, uint8_t fam, const void *body, size_t len)
{
    memcpy(out, sig, 12);
    out[12] = ver_cmd;
    out[13] = fam;
    out[14] = (uint8_t)(len >> 8);
    out[15] = (uint8_t)len;
    if (len)
        memcpy(out + 16, body, len);
    return 16 + len;
}

static const uint8_t inet_body[] = {
    192, 0, 2, 1, 198, 51, 100, 2, 0xdc, 0x04, 0x01, 0xbb,     /* 56324 -> 443 */
};

static void test_v2_inet(void **state)
{
    uint8_t buf[PROXY_HEADER_MAX + 16];
    struct proxy_header h;
    char a[ADDR_TEXT_MAX];
    size_t n = v2(buf, 0x21, 0x11, inet_body, sizeof inet_body);

    (void)state;
    /* The exact bytes HAProxy documents for TCP over IPv4. */
    assert_memory_equal(buf, "\x0d\x0a\x0d\x0a\x00\x0d\x0a\x51\x55\x49\x54\x0a\x21\x11\x00\x0c",
                        16);
    parse_ok(buf, n, &h);
    assert_int_equal(h.version, 2);
    assert_int_equal(h.command, PROXY_CMD_PROXY);
    assert_int_equal(h.family, AF_INET);
    assert_string_equal(fmt(&h.src, h.src_len, a), "192.0.2.1:56324");
    assert_string_equal(fmt(&h.dst, h.dst_len, a), "198.51.100.2:443");
    n = v2(buf, 0x21, 0x12, inet_body, sizeof inet_body);   /* UDP4 parses the same */
    parse_ok(buf, n, &h);
    assert_int_equal(h.family, AF_INET);
}

static void test_v2_inet6(void **state)
{
    uint8_t body[36] = { 0x20, 0x01, 0x0d, 0xb8 }, buf[64];
    struct proxy_header h;
    char a[ADDR_TEXT_MAX];
    size_t n;

    (void)state;
    body[15] = 1;
    body[31] = 1;               /* dst ::1 */
    body[32] = 0x30;
    body[33] = 0x39;            /* 12345 */
    body[34] = 0x1b;
    body[35] = 0x5f;            /* 7007 */
    n = v2(buf, 0x21, 0x21, body, sizeof body);
    parse_ok(buf, n, &h);
    assert_int_equal(h.family, AF_INET6);
    assert_string_equal(fmt(&h.src, h.src_len, a), "[2001:db8::1]:12345");
    assert_string_equal(fmt(&h.dst, h.dst_len, a), "[::1]:7007");
}

static void test_v2_unix(void **state)
{
    uint8_t body[216] = { 0 }, buf[256];
    struct proxy_header h;
    char a[ADDR_TEXT_MAX];
    size_t n;

    (void)state;
    memcpy(body, "/run/client.sock", 16);
    memcpy(body + 109, "kodama", 6);        /* dst abstract: NUL, then the name */
    n = v2(buf, 0x21, 0x31, body, sizeof body);
    parse_ok(buf, n, &h);
    assert_int_equal(h.family, AF_UNIX);
    assert_string_equal(fmt(&h.src, h.src_len, a), "unix:/run/client.sock");
    assert_string_equal(fmt(&h.dst, h.dst_len, a), "unix:@kodama");
    memset(body, 'x', sizeof body);         /* a full 108-byte path, no NUL */
    n = v2(buf, 0x21, 0x32, body, sizeof body);
    parse_ok(buf, n, &h);
    assert_int_equal(h.src_len, offsetof(struct sockaddr_un, sun_path) + 108);
}

static void test_v2_local_and_unspec(void **state)
{
    uint8_t buf[64], junk[5] = { 1, 2, 3, 4, 5 };
    struct proxy_header h;
    size_t n;

    (void)state;
    n = v2(buf, 0x20, 0x00, NULL, 0);       /* HAProxy's health check */
    parse_ok(buf, n, &h);
    assert_int_equal(h.command, PROXY_CMD_LOCAL);
    assert_int_equal(h.src_len, 0);
    /* LOCAL discards the block, whatever the family says. */
    n = v2(buf, 0x20, 0x11, junk, sizeof junk);
    parse_ok(buf, n, &h);
    assert_int_equal(h.command, PROXY_CMD_LOCAL);
    assert_int_equal(h.len, 21);
    n = v2(buf, 0x21, 0x00, junk, sizeof junk);
    parse_ok(buf, n, &h);
    assert_int_equal(h.command, PROXY_CMD_PROXY);
    assert_int_equal(h.family, AF_UNSPEC);
    assert_int_equal(h.src_len, 0);
}

static void test_v2_tlvs(void **state)
{
    uint8_t body[64], buf[128];
    struct proxy_header h;
    size_t n;

    (void)state;
    memcpy(body, inet_body, 12);
    /* PP2_TYPE_ALPN "h2", then a NOOP with an empty value. */
    memcpy(body + 12, "\x01\x00\x02h2\x04\x00\x00", 8);
    n = v2(buf, 0x21, 0x11, body, 20);
    parse_ok(buf, n, &h);
    assert_int_equal(h.len, 36);
    assert_int_equal(h.family, AF_INET);
    n = v2(buf, 0x21, 0x11, body, 19);      /* the NOOP's length cut short */
    parse_bad(buf, n, "TLV");
    memcpy(body + 12, "\x01\x00\x03h2", 5);   /* value longer than what is left */
    n = v2(buf, 0x21, 0x11, body, 17);
    parse_bad(buf, n, "TLV");
}

static void test_v2_invalid(void **state)
{
    uint8_t buf[PROXY_HEADER_MAX + 64] = { 0 }, body[40] = { 0 };
    size_t n;

    (void)state;
    n = v2(buf, 0x22, 0x11, inet_body, 12);
    parse_bad(buf, n, "version or command");
    parse_bad(buf, 13, "version or command");   /* known at the 13th byte */
    n = v2(buf, 0x11, 0x11, inet_body, 12);
    parse_bad(buf, n, "version or command");
    for (unsigned fam = 0; fam < 256; fam++) {
        struct proxy_header h;
        int ok = fam == 0x00 || fam == 0x11 || fam == 0x12 || fam == 0x21 || fam == 0x22 ||
                 fam == 0x31 || fam == 0x32;

        v2(buf, 0x21, (uint8_t)fam, NULL, 0);
        assert_int_equal(proxy_parse(buf, 14, &h) == PROXY_INVALID, !ok);
    }
    n = v2(buf, 0x21, 0x11, inet_body, 11);     /* shorter than the addresses */
    parse_bad(buf, n, "too short");
    n = v2(buf, 0x21, 0x21, body, 35);
    parse_bad(buf, n, "too short");
    v2(buf, 0x21, 0x11, NULL, 0);
    buf[14] = 0x03;
    buf[15] = 0xf1;                 /* 16 + 1009 > 1024: refused before reading it */
    parse_bad(buf, 16, "longer than 1024");
    buf[15] = 0xf0;                 /* exactly 1024: a valid beginning */
    {
        struct proxy_header h;

        assert_int_equal(proxy_parse(buf, 16, &h), PROXY_NEED_MORE);
    }
    memcpy(buf, "\r\n\r\n\0\r\nQUIX\n", 12);
    parse_bad(buf, 12, "not a PROXY");
}

/* Garbage never parses complete beyond its own length and never reads past it
 * (ASan checks the latter in the asan build). */
static void test_garbage(void **state)
{
    uint8_t buf[300];
    uint32_t x = 12345;
    struct proxy_header h;

    (void)state;
    for (int round = 0; round < 20000; round++) {
        size_t len = x % sizeof buf;
        enum proxy_status st;

        for (size_t i = 0; i < len; i++) {
            x = x * 1103515245u + 12345u;
            buf[i] = (uint8_t)(x >> 16);
        }
        if (round % 3 == 1 && len >= 6)
            memcpy(buf, "PROXY ", 6);
        if (round % 3 == 2 && len >= 12)
            memcpy(buf, sig, 12);
        st = proxy_parse(buf, len, &h);
        if (st == PROXY_COMPLETE)
            assert_true(h.len <= len);
        if (st == PROXY_INVALID)
            assert_non_null(h.why);
    }
}

/* What proxy_write writes parses back to the same addresses. */
static void write_back(int version, const char *src, unsigned sport, const char *dst,
                       unsigned dport, int want_family, const char *want_src,
                       const char *want_dst)
{
    struct sockaddr_storage a, b;
    struct proxy_header h;
    uint8_t buf[PROXY_WRITE_MAX];
    char text[INET6_ADDRSTRLEN];
    size_t n;

    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    for (int i = 0; i < 2; i++) {
        struct sockaddr_storage *ss = i ? &b : &a;
        const char *addr = i ? dst : src;
        unsigned port = i ? dport : sport;

        if (strchr(addr, ':')) {
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

            in6->sin6_family = AF_INET6;
            in6->sin6_port = htons(port);
            assert_int_equal(inet_pton(AF_INET6, addr, &in6->sin6_addr), 1);
        } else if (strcmp(addr, "unix") == 0) {
            ss->ss_family = AF_UNIX;
        } else {
            struct sockaddr_in *in = (struct sockaddr_in *)ss;

            in->sin_family = AF_INET;
            in->sin_port = htons(port);
            assert_int_equal(inet_pton(AF_INET, addr, &in->sin_addr), 1);
        }
    }
    n = proxy_write(version, (struct sockaddr *)&a, (struct sockaddr *)&b, buf, sizeof buf);
    assert_true(n > 0 && n <= PROXY_WRITE_MAX);
    assert_int_equal(proxy_parse(buf, n, &h), PROXY_COMPLETE);
    assert_int_equal(h.len, n);
    assert_int_equal(h.version, version);
    assert_int_equal(h.command, PROXY_CMD_PROXY);
    assert_int_equal(h.family, want_family);
    if (want_family == AF_UNSPEC)
        return;
    if (want_family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&h.src)->sin_addr, text, sizeof text);
        assert_string_equal(text, want_src);
        assert_int_equal(ntohs(((struct sockaddr_in *)&h.src)->sin_port), sport);
        inet_ntop(AF_INET, &((struct sockaddr_in *)&h.dst)->sin_addr, text, sizeof text);
        assert_string_equal(text, want_dst);
        assert_int_equal(ntohs(((struct sockaddr_in *)&h.dst)->sin_port), dport);
    } else {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&h.src)->sin6_addr, text, sizeof text);
        assert_string_equal(text, want_src);
        assert_int_equal(ntohs(((struct sockaddr_in6 *)&h.src)->sin6_port), sport);
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&h.dst)->sin6_addr, text, sizeof text);
        assert_string_equal(text, want_dst);
        assert_int_equal(ntohs(((struct sockaddr_in6 *)&h.dst)->sin6_port), dport);
    }
}

static void test_write_parses_back(void **state)
{
    uint8_t small[8];
    struct sockaddr_in in = { .sin_family = AF_INET };

    (void)state;
    for (int v = 1; v <= 2; v++) {
        write_back(v, "192.0.2.1", 56324, "198.51.100.2", 443, AF_INET, "192.0.2.1", "198.51.100.2");
        write_back(v, "2001:db8::1", 1, "2001:db8::2", 65535, AF_INET6, "2001:db8::1", "2001:db8::2");
        write_back(v, "::ffff:192.0.2.1", 5, "::ffff:10.0.0.1", 6, AF_INET, "192.0.2.1", "10.0.0.1");
        write_back(v, "192.0.2.1", 5, "::1", 6, AF_INET6, "::ffff:192.0.2.1", "::1");
        write_back(v, "unix", 0, "unix", 0, AF_UNSPEC, NULL, NULL);
    }
    assert_int_equal(proxy_write(1, (struct sockaddr *)&in, (struct sockaddr *)&in, small,
                                 sizeof small), 0);
    assert_int_equal(proxy_write(2, (struct sockaddr *)&in, (struct sockaddr *)&in, small,
                                 sizeof small), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_vectors),
        cmocka_unit_test(test_v1_length_bound),
        cmocka_unit_test(test_v1_invalid),
        cmocka_unit_test(test_v2_inet),
        cmocka_unit_test(test_v2_inet6),
        cmocka_unit_test(test_v2_unix),
        cmocka_unit_test(test_v2_local_and_unspec),
        cmocka_unit_test(test_v2_tlvs),
        cmocka_unit_test(test_v2_invalid),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_write_parses_back),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
