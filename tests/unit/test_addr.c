/* test_addr.c — unit tests for spec_parse, addr_format, addr_host and addr_port.
 *
 * The spec_parse cases are tables; every row becomes its own cmocka test, named
 * after its input, so a failure says which SPEC broke. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* if_nametoindex and friends under -std=c17 */
#endif

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "lib/addr.h"
#include "proto/spec.h"

#define ERRLEN 512
#define NAMELEN 160

/* ------------------------------------------------------------------------- */
/* spec_parse: valid SPECs                                                   */

struct ok_case {
    const char *text;
    const char *service;
    enum addr_kind kind;
    const char *host;     /* ADDR_HOST only */
    unsigned port;        /* ADDR_ANY, ADDR_HOST */
    const char *path;     /* ADDR_UNIX only */
    int abstract;         /* ADDR_UNIX only */
    unsigned protos;
};

#define BOTH (PROTO_TCP | PROTO_UDP)
#define ANY(text, svc, port, protos) { text, svc, ADDR_ANY, NULL, port, NULL, 0, protos }
#define HOST(text, svc, host, port, protos) { text, svc, ADDR_HOST, host, port, NULL, 0, protos }
#define UNIX(text, svc, path, abs) { text, svc, ADDR_UNIX, NULL, 0, path, abs, PROTO_TCP }

static const struct ok_case ok_cases[] = {
    ANY("echo@7007", "echo", 7007, BOTH),
    ANY("hello@0", "hello", 0, BOTH),
    ANY("hello@8080", "hello", 8080, BOTH),
    ANY("echo@65535", "echo", 65535, BOTH),
    ANY("echo@7007/tcp", "echo", 7007, PROTO_TCP),
    ANY("echo@7007/udp", "echo", 7007, PROTO_UDP),
    ANY("my-svc2@80", "my-svc2", 80, BOTH),
    ANY("abcdefghijklmnopqrstuvwxyz01234@1", "abcdefghijklmnopqrstuvwxyz01234", 1, BOTH),
    HOST("echo@127.0.0.1:5000", "echo", "127.0.0.1", 5000, BOTH),
    HOST("echo@localhost:80/tcp", "echo", "localhost", 80, PROTO_TCP),
    HOST("echo@example.com:443/udp", "echo", "example.com", 443, PROTO_UDP),
    HOST("hello@host-name.example:8080", "hello", "host-name.example", 8080, BOTH),
    HOST("echo@0.0.0.0:0", "echo", "0.0.0.0", 0, BOTH),
    HOST("echo@[::1]:7/udp", "echo", "::1", 7, PROTO_UDP),
    HOST("echo@[::]:7007", "echo", "::", 7007, BOTH),
    HOST("echo@[fe80::1%lo]:7", "echo", "fe80::1%lo", 7, BOTH),
    HOST("echo@[2001:db8::1]:65535/tcp", "echo", "2001:db8::1", 65535, PROTO_TCP),
    HOST("echo@[::ffff:127.0.0.1]:80", "echo", "::ffff:127.0.0.1", 80, BOTH),
    UNIX("echo@unix:/tmp/s", "echo", "/tmp/s", 0),
    UNIX("echo@unix:@name", "echo", "name", 1),
    UNIX("hello@unix:relative.sock", "hello", "relative.sock", 0),
    UNIX("echo@unix:/tmp/s/tcp", "echo", "/tmp/s", 0),
    UNIX("echo@unix:@name/tcp", "echo", "name", 1),
};

#define N_OK (sizeof(ok_cases) / sizeof(ok_cases[0]))

static void check_ok(const struct ok_case *c)
{
    struct spec sp;
    char err[ERRLEN] = "";

    memset(&sp, 0x5a, sizeof(sp));
    int rc = spec_parse(c->text, &sp, err, sizeof(err));
    if (rc != 0)
        fail_msg("spec_parse(\"%s\") = %d, err \"%s\"; expected success", c->text, rc, err);
    assert_string_equal(sp.service, c->service);
    assert_int_equal(sp.kind, c->kind);
    assert_int_equal(sp.protos, c->protos);
    switch (c->kind) {
    case ADDR_ANY:
        assert_int_equal(sp.port, c->port);
        break;
    case ADDR_HOST:
        assert_string_equal(sp.host, c->host);
        assert_int_equal(sp.port, c->port);
        break;
    case ADDR_UNIX:
        assert_string_equal(sp.path, c->path);
        assert_int_equal(!!sp.abstract, c->abstract);
        break;
    }
}

static void test_spec_ok(void **state)
{
    check_ok(*state);
}

/* ------------------------------------------------------------------------- */
/* spec_parse: invalid SPECs, with the exact one-line reason                 */

struct bad_case {
    const char *text;
    const char *err;      /* exact text expected in err */
};

static const struct bad_case bad_cases[] = {
    /* ports */
    { "echo@99999", "invalid port '99999' in 'echo@99999'" },
    { "echo@65536", "invalid port '65536' in 'echo@65536'" },
    { "echo@-1", "invalid port '-1' in 'echo@-1'" },
    { "echo@0x50", "invalid port '0x50' in 'echo@0x50'" },
    { "echo@ 80", "invalid port ' 80' in 'echo@ 80'" },
    { "echo@+80", "invalid port '+80' in 'echo@+80'" },
    { "echo@80a", "invalid port '80a' in 'echo@80a'" },
    { "echo@99999999999999999999999", "invalid port '99999999999999999999999' in 'echo@99999999999999999999999'" },
    { "echo@host:0x50", "invalid port '0x50' in 'echo@host:0x50'" },
    { "echo@127.0.0.1:99999", "invalid port '99999' in 'echo@127.0.0.1:99999'" },
    { "echo@[::1]:70000/udp", "invalid port '70000' in 'echo@[::1]:70000/udp'" },
    /* missing parts */
    { "echo@", "missing address in 'echo@'" },
    { "echo@/tcp", "missing port in 'echo@/tcp'" },
    { "@80", "missing service in '@80'" },
    { "echo", "missing '@ADDRESS' in 'echo'" },
    { "", "missing '@ADDRESS' in ''" },
    { "echo@host:", "missing port in 'echo@host:'" },
    { "echo@:80", "missing host in 'echo@:80'" },
    { "echo@[]:80", "missing host in 'echo@[]:80'" },
    /* brackets */
    { "echo@[::1", "missing ']' in 'echo@[::1'" },
    { "echo@[::1]", "missing ':PORT' after ']' in 'echo@[::1]'" },
    { "echo@[::1]:", "missing port in 'echo@[::1]:'" },
    { "echo@[::1]80", "missing ':PORT' after ']' in 'echo@[::1]80'" },
    { "echo@::1:80", "an IPv6 address needs brackets, as in [::1]:7007, in 'echo@::1:80'" },
    { "echo@fe80::1:7/tcp", "an IPv6 address needs brackets, as in [::1]:7007, in 'echo@fe80::1:7/tcp'" },
    /* protocols */
    { "echo@80/sctp", "unknown protocol 'sctp' (tcp or udp) in 'echo@80/sctp'" },
    { "echo@80/", "missing protocol after '/' in 'echo@80/'" },
    { "echo@unix:/x/udp", "unix sockets are stream only (no /udp) in 'echo@unix:/x/udp'" },
    /* +proxy: stream only, and last */
    { "echo@7007+proxy", "'+proxy' is for stream listeners: add /tcp before it in 'echo@7007+proxy'" },
    { "echo@7007/udp+proxy",
      "'+proxy' is for stream listeners: add /tcp before it in 'echo@7007/udp+proxy'" },
    { "echo@+proxy", "missing address in 'echo@+proxy'" },
    { "echo@7007+prox", "invalid port '7007+prox' in 'echo@7007+prox'" },
    { "echo@7007+proxy/tcp", "invalid port '7007+proxy' in 'echo@7007+proxy/tcp'" },
    { "echo@7007/tcp+PROXY", "unknown protocol 'tcp+PROXY' (tcp or udp) in 'echo@7007/tcp+PROXY'" },
    /* unix */
    { "echo@unix:", "missing path in 'echo@unix:'" },
    { "echo@unix:@", "missing name in 'echo@unix:@'" },
    /* service names */
    { "E cho@80", "invalid service name 'E cho' in 'E cho@80'" },
    { "Echo@80", "invalid service name 'Echo' in 'Echo@80'" },
    { "ec_ho@80", "invalid service name 'ec_ho' in 'ec_ho@80'" },
    { "abcdefghijklmnopqrstuvwxyz012345@1",
      "invalid service name 'abcdefghijklmnopqrstuvwxyz012345' in 'abcdefghijklmnopqrstuvwxyz012345@1'" },
};

#define N_BAD (sizeof(bad_cases) / sizeof(bad_cases[0]))

/* Parse text, expect -1 and a one-line, non-empty reason; the reason is left in err. */
static void expect_fail(const char *text, char *err, size_t errlen)
{
    struct spec sp;

    memset(&sp, 0x5a, sizeof(sp));
    memset(err, 0, errlen);
    int rc = spec_parse(text, &sp, err, errlen);
    if (rc != -1)
        fail_msg("spec_parse(\"%s\") = %d; expected -1", text, rc);
    assert_true(strlen(err) > 0);
    assert_null(strchr(err, '\n'));
    assert_true(strlen(err) < errlen);
}

static void test_spec_bad(void **state)
{
    const struct bad_case *c = *state;
    char err[ERRLEN];

    expect_fail(c->text, err, sizeof(err));
    assert_string_equal(err, c->err);
}

/* "+proxy" sets the flag and nothing else; without it, never set. */
static void test_spec_proxy_suffix(void **state)
{
    static const struct {
        const char *text, *with;
    } cases[] = {
        { "echo@7007/tcp+proxy", "echo@7007/tcp" },
        { "echo@127.0.0.1:0/tcp+proxy", "echo@127.0.0.1:0/tcp" },
        { "echo@[::1]:7/tcp+proxy", "echo@[::1]:7/tcp" },
        { "hello@unix:/tmp/s+proxy", "hello@unix:/tmp/s" },
        { "hello@unix:/tmp/s/tcp+proxy", "hello@unix:/tmp/s" },
        { "echo@unix:@name+proxy", "echo@unix:@name" },
    };
    struct spec a, b;
    char err[ERRLEN];

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (spec_parse(cases[i].text, &a, err, sizeof err) != 0)
            fail_msg("spec_parse(\"%s\"): %s", cases[i].text, err);
        assert_int_equal(spec_parse(cases[i].with, &b, err, sizeof err), 0);
        assert_int_equal(a.proxy, 1);
        assert_int_equal(b.proxy, 0);
        b.proxy = 1;
        assert_memory_equal(&a, &b, offsetof(struct spec, opts));
    }
    /* A unix path may itself end in "+proxy": a /tcp after it says so. */
    assert_int_equal(spec_parse("echo@unix:/tmp/a+proxy/tcp", &a, err, sizeof err), 0);
    assert_int_equal(a.proxy, 0);
    assert_string_equal(a.path, "/tmp/a+proxy");
}

/* The CLI relies on the bare-IPv6 reason pointing at the brackets. */
static void test_spec_bare_ipv6_mentions_brackets(void **state)
{
    (void)state;
    char err[ERRLEN];

    expect_fail("echo@::1:80", err, sizeof(err));
    assert_non_null(strstr(err, "bracket"));
}

/* addr.h promises a one-line reason, and the CLI's usage errors are exactly two lines:
 * a control character in the SPEC must not break the reason across lines. */
static void test_spec_reason_one_line_with_newline(void **state)
{
    (void)state;
    static const char *const texts[] = { "echo@8\n0", "ec\nho@80", "echo@80/\n", "echo@\n" };
    char err[ERRLEN];

    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        struct spec sp;
        memset(err, 0, sizeof(err));
        assert_int_equal(spec_parse(texts[i], &sp, err, sizeof(err)), -1);
        if (strchr(err, '\n') != NULL)
            fail_msg("reason for SPEC #%zu spans lines: \"%s\"", i, err);
    }
}

/* ------------------------------------------------------------------------- */
/* spec_parse: length limits                                                 */

static void fill(char *p, size_t n, char c)
{
    memset(p, c, n);
    p[n] = '\0';
}

static void test_spec_unix_path_max(void **state)
{
    (void)state;
    char path[SPEC_PATH_MAX + 1], text[256], err[ERRLEN] = "";
    struct spec sp;

    assert_int_equal(SPEC_PATH_MAX, 107);
    path[0] = '/';
    fill(path + 1, SPEC_PATH_MAX - 1, 'p');
    snprintf(text, sizeof(text), "echo@unix:%s", path);
    int rc = spec_parse(text, &sp, err, sizeof(err));
    if (rc != 0)
        fail_msg("107-byte unix path rejected: %s", err);
    assert_int_equal(sp.kind, ADDR_UNIX);
    assert_false(sp.abstract);
    assert_int_equal(strlen(sp.path), SPEC_PATH_MAX);
    assert_string_equal(sp.path, path);
    assert_int_equal(sp.protos, PROTO_TCP);
}

static void test_spec_unix_path_too_long(void **state)
{
    (void)state;
    char path[SPEC_PATH_MAX + 2], text[256], want[2 * 256], err[ERRLEN];

    path[0] = '/';
    fill(path + 1, SPEC_PATH_MAX, 'p'); /* 108 bytes */
    snprintf(text, sizeof(text), "echo@unix:%s", path);
    expect_fail(text, err, sizeof(err));
    snprintf(want, sizeof(want), "unix socket path longer than 107 bytes in '%.64s...'", text);
    assert_string_equal(err, want);
}

static void test_spec_abstract_name_max(void **state)
{
    (void)state;
    char name[SPEC_PATH_MAX + 1], text[256], err[ERRLEN] = "";
    struct spec sp;

    fill(name, SPEC_PATH_MAX, 'n');
    snprintf(text, sizeof(text), "echo@unix:@%s", name);
    int rc = spec_parse(text, &sp, err, sizeof(err));
    if (rc != 0)
        fail_msg("107-byte abstract name rejected: %s", err);
    assert_int_equal(sp.kind, ADDR_UNIX);
    assert_true(sp.abstract);
    assert_string_equal(sp.path, name);
}

static void test_spec_abstract_name_too_long(void **state)
{
    (void)state;
    char name[SPEC_PATH_MAX + 2], text[256], want[2 * 256], err[ERRLEN];

    fill(name, SPEC_PATH_MAX + 1, 'n'); /* 108 bytes: with the leading NUL, 109 */
    snprintf(text, sizeof(text), "echo@unix:@%s", name);
    expect_fail(text, err, sizeof(err));
    snprintf(want, sizeof(want), "abstract socket name longer than 107 bytes in '%.64s...'", text);
    assert_string_equal(err, want);
}

static void test_spec_host_max(void **state)
{
    (void)state;
    char host[SPEC_HOST_MAX + 1], text[512], err[ERRLEN] = "";
    struct spec sp;

    fill(host, SPEC_HOST_MAX, 'h');
    snprintf(text, sizeof(text), "echo@%s:80", host);
    int rc = spec_parse(text, &sp, err, sizeof(err));
    if (rc != 0)
        fail_msg("255-byte host rejected: %s", err);
    assert_int_equal(sp.kind, ADDR_HOST);
    assert_string_equal(sp.host, host);
    assert_int_equal(sp.port, 80);
}

static void test_spec_host_too_long(void **state)
{
    (void)state;
    char host[SPEC_HOST_MAX + 2], text[512], want[1024], err[ERRLEN];

    fill(host, SPEC_HOST_MAX + 1, 'h'); /* 256 bytes */
    snprintf(text, sizeof(text), "echo@%s:80", host);
    expect_fail(text, err, sizeof(err));
    snprintf(want, sizeof(want), "host name too long in '%.64s...'", text);
    assert_string_equal(err, want);
}

static void test_spec_bracketed_host_too_long(void **state)
{
    (void)state;
    char host[SPEC_HOST_MAX + 2], text[512], want[1024], err[ERRLEN];

    fill(host, SPEC_HOST_MAX + 1, 'a'); /* 256 bytes inside the brackets */
    snprintf(text, sizeof(text), "echo@[%s]:80", host);
    expect_fail(text, err, sizeof(err));
    snprintf(want, sizeof(want), "host name too long in '%.64s...'", text);
    assert_string_equal(err, want);
}

/* A short err buffer gets a truncated, NUL-terminated reason and nothing past it. */
static void test_spec_err_truncated(void **state)
{
    (void)state;
    char buf[32];
    struct spec sp;

    memset(buf, '#', sizeof(buf));
    assert_int_equal(spec_parse("echo@99999", &sp, buf, 8), -1);
    assert_true(memchr(buf, '\0', 8) != NULL);
    assert_memory_equal(buf, "invalid", 7);
    for (size_t i = 8; i < sizeof(buf); i++)
        assert_int_equal(buf[i], '#');
}

/* A failed parse does not stop the next one from working on the same struct. */
static void test_spec_reuse(void **state)
{
    (void)state;
    struct spec sp;
    char err[ERRLEN];

    assert_int_equal(spec_parse("echo@unix:@abc", &sp, err, sizeof(err)), 0);
    assert_int_equal(spec_parse("hello@[::1]:9/udp", &sp, err, sizeof(err)), 0);
    assert_string_equal(sp.service, "hello");
    assert_int_equal(sp.kind, ADDR_HOST);
    assert_string_equal(sp.host, "::1");
    assert_int_equal(sp.port, 9);
    assert_int_equal(sp.protos, PROTO_UDP);
    assert_int_equal(spec_parse("echo@7", &sp, err, sizeof(err)), 0);
    assert_int_equal(sp.kind, ADDR_ANY);
    assert_int_equal(sp.port, 7);
    assert_int_equal(sp.protos, BOTH);
}

/* ------------------------------------------------------------------------- */
/* addr_format, addr_host, addr_port                                          */

static struct sockaddr_in v4(const char *ip, unsigned port)
{
    struct sockaddr_in sin;

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    assert_int_equal(inet_pton(AF_INET, ip, &sin.sin_addr), 1);
    return sin;
}

static struct sockaddr_in6 v6(const char *ip, unsigned port, uint32_t scope)
{
    struct sockaddr_in6 sin6;

    memset(&sin6, 0, sizeof(sin6));
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons((uint16_t)port);
    sin6.sin6_scope_id = scope;
    assert_int_equal(inet_pton(AF_INET6, ip, &sin6.sin6_addr), 1);
    return sin6;
}

static void expect_format(const void *sa, socklen_t len, const char *want)
{
    char buf[ADDR_TEXT_MAX];

    memset(buf, '#', sizeof(buf));
    char *r = addr_format(sa, len, buf, sizeof(buf));
    assert_ptr_equal(r, buf);
    assert_string_equal(buf, want);
}

static void test_format_ipv4(void **state)
{
    (void)state;
    struct sockaddr_in a = v4("127.0.0.1", 5000);
    expect_format(&a, sizeof(a), "127.0.0.1:5000");
    a = v4("0.0.0.0", 0);
    expect_format(&a, sizeof(a), "0.0.0.0:0");
    a = v4("255.255.255.255", 65535);
    expect_format(&a, sizeof(a), "255.255.255.255:65535");
}

static void test_format_ipv6(void **state)
{
    (void)state;
    struct sockaddr_in6 a = v6("::1", 5000, 0);
    expect_format(&a, sizeof(a), "[::1]:5000");
    a = v6("::", 7007, 0);
    expect_format(&a, sizeof(a), "[::]:7007");
    a = v6("2001:db8::1", 65535, 0);
    expect_format(&a, sizeof(a), "[2001:db8::1]:65535");
}

static void test_format_ipv6_scope(void **state)
{
    (void)state;
    unsigned idx = if_nametoindex("lo");
    if (idx == 0)
        skip();
    struct sockaddr_in6 a = v6("fe80::1", 7, idx);
    expect_format(&a, sizeof(a), "[fe80::1%lo]:7");
}

/* Longest v6 literal with an interface name still fits ADDR_TEXT_MAX. */
static void test_format_ipv6_longest(void **state)
{
    (void)state;
    unsigned idx = if_nametoindex("lo");
    if (idx == 0)
        skip();
    struct sockaddr_in6 a = v6("fe80:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535, idx);
    expect_format(&a, sizeof(a), "[fe80:ffff:ffff:ffff:ffff:ffff:ffff:ffff%lo]:65535");
}

static void test_format_v4_mapped(void **state)
{
    (void)state;
    struct sockaddr_in6 a = v6("::ffff:127.0.0.1", 53422, 0);
    expect_format(&a, sizeof(a), "127.0.0.1:53422");
    a = v6("::ffff:10.1.2.3", 1, 0);
    expect_format(&a, sizeof(a), "10.1.2.3:1");
}

static socklen_t un_path(struct sockaddr_un *sun, const char *path, int with_nul)
{
    memset(sun, 0, sizeof(*sun));
    sun->sun_family = AF_UNIX;
    size_t n = strlen(path);
    memcpy(sun->sun_path, path, n);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (with_nul ? 1 : 0));
}

static socklen_t un_abstract(struct sockaddr_un *sun, const char *name)
{
    memset(sun, 0, sizeof(*sun));
    sun->sun_family = AF_UNIX;
    size_t n = strlen(name);
    memcpy(sun->sun_path + 1, name, n);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
}

static void test_format_unix_path(void **state)
{
    (void)state;
    struct sockaddr_un sun;
    socklen_t len = un_path(&sun, "/tmp/s", 1);
    expect_format(&sun, len, "unix:/tmp/s");
    len = un_path(&sun, "/tmp/s", 0); /* length without the NUL, as some kernels report */
    expect_format(&sun, len, "unix:/tmp/s");
    un_path(&sun, "/tmp/x.sock", 1);
    expect_format(&sun, sizeof(sun), "unix:/tmp/x.sock");
}

/* A sun_path filled to the last byte, no NUL: the formatter must not read past it. */
static void test_format_unix_full_path(void **state)
{
    (void)state;
    struct {
        struct sockaddr_un sun;
        char guard[16];
    } s;
    char want[ADDR_TEXT_MAX];
    size_t n = sizeof(s.sun.sun_path);

    memset(&s, 'g', sizeof(s));
    s.sun.sun_family = AF_UNIX;
    memset(s.sun.sun_path, 'p', n);
    s.sun.sun_path[0] = '/';
    memcpy(want, "unix:", 5);
    memcpy(want + 5, s.sun.sun_path, n);
    want[5 + n] = '\0';
    expect_format(&s.sun, sizeof(s.sun), want);
}

static void test_format_unix_abstract(void **state)
{
    (void)state;
    struct sockaddr_un sun;
    socklen_t len = un_abstract(&sun, "name");
    expect_format(&sun, len, "unix:@name");
    len = un_abstract(&sun, "kodama-test.1");
    expect_format(&sun, len, "unix:@kodama-test.1");
}

static void test_format_unix_unnamed(void **state)
{
    (void)state;
    struct sockaddr_un sun;

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    expect_format(&sun, (socklen_t)sizeof(sa_family_t), "unix:");
    expect_format(&sun, (socklen_t)offsetof(struct sockaddr_un, sun_path), "unix:");
}

/* A short buffer gets a truncated, NUL-terminated text and nothing past buflen. */
static void test_format_truncated(void **state)
{
    (void)state;
    struct sockaddr_in a = v4("127.0.0.1", 5000);
    char buf[32];

    memset(buf, '#', sizeof(buf));
    assert_ptr_equal(addr_format((struct sockaddr *)&a, sizeof(a), buf, 6), buf);
    assert_true(memchr(buf, '\0', 6) != NULL);
    assert_int_equal(strncmp(buf, "127.0.0.1:5000", strlen(buf)), 0);
    for (size_t i = 6; i < sizeof(buf); i++)
        assert_int_equal(buf[i], '#');
}

static void test_host_and_port(void **state)
{
    (void)state;
    char buf[ADDR_TEXT_MAX];

    struct sockaddr_in a4 = v4("127.0.0.1", 9);
    assert_ptr_equal(addr_host((struct sockaddr *)&a4, buf, sizeof(buf)), buf);
    assert_string_equal(buf, "127.0.0.1");
    assert_int_equal(addr_port((struct sockaddr *)&a4), 9);

    struct sockaddr_in6 a6 = v6("::1", 7007, 0);
    assert_ptr_equal(addr_host((struct sockaddr *)&a6, buf, sizeof(buf)), buf);
    assert_string_equal(buf, "::1");
    assert_int_equal(addr_port((struct sockaddr *)&a6), 7007);

    a6 = v6("::ffff:127.0.0.1", 65535, 0);
    assert_ptr_equal(addr_host((struct sockaddr *)&a6, buf, sizeof(buf)), buf);
    assert_string_equal(buf, "127.0.0.1");
    assert_int_equal(addr_port((struct sockaddr *)&a6), 65535);

    unsigned idx = if_nametoindex("lo");
    if (idx != 0) {
        a6 = v6("fe80::1", 7, idx);
        assert_ptr_equal(addr_host((struct sockaddr *)&a6, buf, sizeof(buf)), buf);
        assert_string_equal(buf, "fe80::1%lo");
        assert_int_equal(addr_port((struct sockaddr *)&a6), 7);
    }

    a4 = v4("10.0.0.1", 0);
    addr_host((struct sockaddr *)&a4, buf, sizeof(buf));
    assert_string_equal(buf, "10.0.0.1");
    assert_int_equal(addr_port((struct sockaddr *)&a4), 0);
}

/* ------------------------------------------------------------------------- */

static const struct CMUnitTest fixed_tests[] = {
    cmocka_unit_test(test_spec_bare_ipv6_mentions_brackets),
    cmocka_unit_test(test_spec_proxy_suffix),
    cmocka_unit_test(test_spec_reason_one_line_with_newline),
    cmocka_unit_test(test_spec_unix_path_max),
    cmocka_unit_test(test_spec_unix_path_too_long),
    cmocka_unit_test(test_spec_abstract_name_max),
    cmocka_unit_test(test_spec_abstract_name_too_long),
    cmocka_unit_test(test_spec_host_max),
    cmocka_unit_test(test_spec_host_too_long),
    cmocka_unit_test(test_spec_bracketed_host_too_long),
    cmocka_unit_test(test_spec_err_truncated),
    cmocka_unit_test(test_spec_reuse),
    cmocka_unit_test(test_format_ipv4),
    cmocka_unit_test(test_format_ipv6),
    cmocka_unit_test(test_format_ipv6_scope),
    cmocka_unit_test(test_format_ipv6_longest),
    cmocka_unit_test(test_format_v4_mapped),
    cmocka_unit_test(test_format_unix_path),
    cmocka_unit_test(test_format_unix_full_path),
    cmocka_unit_test(test_format_unix_abstract),
    cmocka_unit_test(test_format_unix_unnamed),
    cmocka_unit_test(test_format_truncated),
    cmocka_unit_test(test_host_and_port),
};

#define N_FIXED (sizeof(fixed_tests) / sizeof(fixed_tests[0]))

int main(void)
{
    static char names[N_OK + N_BAD][NAMELEN];
    struct CMUnitTest tests[N_OK + N_BAD + N_FIXED];
    size_t n = 0;

    for (size_t i = 0; i < N_OK; i++, n++) {
        snprintf(names[n], NAMELEN, "spec_parse ok \"%s\"", ok_cases[i].text);
        tests[n] = (struct CMUnitTest){ names[n], test_spec_ok, NULL, NULL, (void *)&ok_cases[i] };
    }
    for (size_t i = 0; i < N_BAD; i++, n++) {
        snprintf(names[n], NAMELEN, "spec_parse bad \"%s\"", bad_cases[i].text);
        tests[n] = (struct CMUnitTest){ names[n], test_spec_bad, NULL, NULL, (void *)&bad_cases[i] };
    }
    for (size_t i = 0; i < N_FIXED; i++, n++)
        tests[n] = fixed_tests[i];

    return cmocka_run_group_tests(tests, NULL, NULL);
}
