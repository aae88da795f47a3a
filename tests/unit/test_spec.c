/* test_spec.c — the SPEC grammar's newer parts (proto/spec.h): port ranges, the
 * order of "+proxy+tls", escapes in unix paths, options (the faults, the relay's)
 * and their value types, the bare option lists of the control API.
 * (test_addr.c has the addresses, protocols and limits.) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "proto/spec.h"

#define ERRLEN 512

static struct spec sp;

static void parse_ok(const char *text)
{
    char err[ERRLEN] = "";

    if (spec_parse(text, &sp, err, sizeof err) != 0)
        fail_msg("spec_parse(\"%s\") failed: %s", text, err);
}

static void parse_bad(const char *text, const char *want)
{
    char err[ERRLEN] = "";

    if (spec_parse(text, &sp, err, sizeof err) != -1)
        fail_msg("spec_parse(\"%s\") succeeded; expected \"%s\"", text, want);
    assert_string_equal(err, want);
}

static void test_port_range(void **state)
{
    (void)state;
    parse_ok("echo@127.0.0.1:7000-7009");
    assert_int_equal(sp.kind, ADDR_HOST);
    assert_int_equal(sp.port, 7000);
    assert_int_equal(sp.port_last, 7009);
    parse_ok("echo@7000-7000/udp");
    assert_int_equal(sp.kind, ADDR_ANY);
    assert_int_equal(sp.port, 7000);
    assert_int_equal(sp.port_last, 7000);
    parse_ok("echo@[::1]:1-1024/tcp");
    assert_int_equal(sp.port_last, 1024);
    parse_ok("echo@7007");
    assert_int_equal(sp.port_last, 7007);   /* no range: the port itself */
}

static void test_port_range_bad(void **state)
{
    (void)state;
    parse_bad("echo@7009-7000", "port range 7009-7000 runs backwards in 'echo@7009-7000'");
    parse_bad("echo@0-10", "a port range cannot start at 0 in 'echo@0-10'");
    parse_bad("echo@1-1025", "port range of 1025 ports (at most 1024) in 'echo@1-1025'");
    parse_bad("echo@7000-", "missing port in 'echo@7000-'");
    parse_bad("echo@-7000", "invalid port '-7000' in 'echo@-7000'");
    parse_bad("echo@7000-70000", "invalid port '70000' in 'echo@7000-70000'");
    parse_bad("echo@7000-7001-7002", "invalid port '7001-7002' in 'echo@7000-7001-7002'");
}

static void test_suffix_order(void **state)
{
    (void)state;
    parse_ok("echo@7443/tcp+tls");
    assert_true(sp.tls);
    assert_false(sp.proxy);
    parse_ok("echo@7443/tcp+proxy+tls");
    assert_true(sp.tls);
    assert_true(sp.proxy);
    parse_ok("info@unix:/run/k.sock+tls");
    assert_true(sp.tls);
    assert_string_equal(sp.path, "/run/k.sock");
    parse_bad("echo@7443/tcp+tls+proxy", "'+tls' goes after '+proxy' (the PROXY header comes "
              "before the ClientHello) in 'echo@7443/tcp+tls+proxy'");
    parse_bad("echo@7443+tls", "'+tls' is for stream listeners: add /tcp before it in 'echo@7443+tls'");
    parse_bad("echo@7443/udp+tls", "'+tls' is for stream listeners: add /tcp before it in "
              "'echo@7443/udp+tls'");
}

static void test_unix_escapes(void **state)
{
    (void)state;
    /* "/tcp" ends a path: a path may end in /tcp, or hold +proxy or +tls. */
    parse_ok("echo@unix:/x/tcp/tcp");
    assert_string_equal(sp.path, "/x/tcp");
    parse_ok("echo@unix:/x+tls/tcp");
    assert_string_equal(sp.path, "/x+tls");
    assert_false(sp.tls);
    parse_ok("echo@unix:/x+proxy+tls/tcp+proxy");
    assert_string_equal(sp.path, "/x+proxy+tls");
    assert_true(sp.proxy);
    /* "\," is a comma, "\\" a backslash; other backslashes are themselves. */
    parse_ok("echo@unix:/tmp/a\\,b.sock");
    assert_string_equal(sp.path, "/tmp/a,b.sock");
    assert_int_equal(sp.nopts, 0);
    parse_ok("echo@unix:/tmp/a\\\\b");
    assert_string_equal(sp.path, "/tmp/a\\b");
    parse_ok("echo@unix:/tmp/a\\b");
    assert_string_equal(sp.path, "/tmp/a\\b");
    parse_ok("echo@unix:@a\\,b");
    assert_true(sp.abstract);
    assert_string_equal(sp.path, "a,b");
}

static void test_options_unknown(void **state)
{
    (void)state;
    parse_bad("echo@7007/tcp,lateness=200ms", "unknown option 'lateness' in 'echo@7007/tcp,lateness=200ms'");
    parse_bad("echo@7007,x", "unknown option 'x' in 'echo@7007,x'");
    parse_bad("echo@7007,", "an empty option (',,' or a ',' at the end) in 'echo@7007,'");
    parse_bad("echo@7007,=1", "an option without a key in 'echo@7007,=1'");
    parse_bad("echo@unix:/tmp/a,b", "unknown option 'b' in 'echo@unix:/tmp/a,b'");
    parse_bad("echo@,name=x", "missing address in 'echo@,name=x'");
}

static void test_fault_options(void **state)
{
    const struct spec_opt *o;

    (void)state;
    parse_ok("echo@7007/tcp,latency=200ms~50ms,rate=64k");
    assert_int_equal(sp.nopts, 2);
    o = spec_opt(&sp, "latency");
    assert_non_null(o);
    assert_int_equal(o->ms, 200);
    assert_int_equal(o->jitter_ms, 50);
    assert_int_equal(spec_opt(&sp, "rate")->bytes, 65536);
    parse_ok("echo@7007,slice=1~1,slice-delay=10ms,greet-delay=1s,close-after=10,"
             "reset-after=0,stall-after=1k,drop=0.5,dup=5%,toxicity=1,name=slow.echo_1");
    assert_int_equal(sp.nopts, 10);
    assert_int_equal(spec_opt(&sp, "slice")->jitter, 1);
    assert_int_equal(spec_opt(&sp, "greet-delay")->ms, 1000);
    assert_true(spec_opt(&sp, "dup")->p > 0.049 && spec_opt(&sp, "dup")->p < 0.051);
    assert_string_equal(spec_opt(&sp, "name")->text, "slow.echo_1");
    assert_null(spec_opt(&sp, "to"));
    /* A key of the other protocol alone is a usage error; on a SPEC of both it is
     * kept for the sockets it applies to. */
    parse_bad("echo@7007/udp,slice=1", "'slice' is for stream listeners in 'echo@7007/udp,slice=1'");
    parse_bad("echo@7007/tcp,drop=0.1", "'drop' is for udp listeners in 'echo@7007/tcp,drop=0.1'");
    parse_bad("echo@unix:/x,dup=0.1", "'dup' is for udp listeners in 'echo@unix:/x,dup=0.1'");
    parse_ok("echo@unix:/x,slice=4");
    parse_bad("echo@7007,latency=200ms~x", "latency=200ms~x: not a duration (seconds, or with ms "
              "or s) in 'echo@7007,latency=200ms~x'");
    parse_bad("echo@7007,rate=64k~1k", "rate takes no ~JITTER in 'echo@7007,rate=64k~1k'");
    parse_bad("echo@7007,drop=2", "drop=2: more than 1 (100%) in 'echo@7007,drop=2'");
    parse_bad("echo@7007,name=a/b", "name needs 1 to 63 letters, digits, '.', '_' or '-' in "
              "'echo@7007,name=a/b'");
    parse_bad("echo@7007,latency=1s,latency=2s", "option 'latency' given twice in "
              "'echo@7007,latency=1s,latency=2s'");
    parse_bad("echo@7007,to=127.0.0.1:7", "'to' is for relay listeners in 'echo@7007,to=127.0.0.1:7'");
    parse_bad("echo@7007,up-latency=1s", "'up-latency' is for relay listeners in "
              "'echo@7007,up-latency=1s'");
}

static void test_relay(void **state)
{
    struct spec_target t;
    char err[ERRLEN];

    (void)state;
    parse_ok("relay@7000,to=127.0.0.1:7007");
    assert_int_equal(sp.protos, PROTO_TCP);     /* a stream service: tcp without /tcp */
    assert_string_equal(spec_opt(&sp, "to")->text, "127.0.0.1:7007");
    parse_ok("relay@127.0.0.1:0/tcp+proxy,to=unix:/run/a\\,b.sock,send-proxy-v2,"
             "connect-timeout=250ms,up-latency=10ms~5ms,latency=1ms,up-close-after=1m");
    assert_true(sp.proxy);
    assert_string_equal(spec_opt(&sp, "to")->text, "unix:/run/a,b.sock");
    assert_non_null(spec_opt(&sp, "send-proxy-v2"));
    assert_int_equal(spec_opt(&sp, "connect-timeout")->ms, 250);
    assert_int_equal(spec_opt(&sp, "up-close-after")->bytes, 1048576);
    parse_bad("relay@7000", "relay needs to=HOST:PORT or to=unix:PATH in 'relay@7000'");
    parse_bad("relay@7000/udp,to=1.2.3.4:5", "relay is a stream service (no /udp) in "
              "'relay@7000/udp,to=1.2.3.4:5'");
    parse_bad("relay@7000,to=1.2.3.4:5,drop=0.5", "'drop' is for udp listeners in "
              "'relay@7000,to=1.2.3.4:5,drop=0.5'");
    parse_bad("relay@7000,to=7007", "to=7007: not HOST:PORT, [IPV6]:PORT, unix:PATH or "
              "unix:@NAME (one port, not 0) in 'relay@7000,to=7007'");
    parse_bad("relay@7000,to=h:0", "to=h:0: not HOST:PORT, [IPV6]:PORT, unix:PATH or "
              "unix:@NAME (one port, not 0) in 'relay@7000,to=h:0'");
    parse_bad("relay@7000,to=::1:7", "to=::1:7: an IPv6 address needs brackets, as in "
              "[::1]:7007, in 'relay@7000,to=::1:7'");
    parse_bad("relay@7000,to=a:1,send-proxy=1", "option 'send-proxy' takes no value in "
              "'relay@7000,to=a:1,send-proxy=1'");
    parse_bad("relay@7000,to=a:1,latency", "option 'latency' needs a value (latency=VALUE) in "
              "'relay@7000,to=a:1,latency'");
    assert_int_equal(spec_target_parse("[::1]:7007", &t, err, sizeof err), 0);
    assert_int_equal(t.kind, ADDR_HOST);
    assert_string_equal(t.host, "::1");
    assert_int_equal(t.port, 7007);
    assert_int_equal(spec_target_parse("unix:@k", &t, err, sizeof err), 0);
    assert_int_equal(t.kind, ADDR_UNIX);
    assert_true(t.abstract);
    assert_string_equal(t.path, "k");
    assert_int_equal(spec_target_parse("h:1-2", &t, err, sizeof err), -1);
}

/* The control API's and FileDescriptorName='s text: a bare option list. */
static void test_parse_options(void **state)
{
    struct spec o;
    char err[ERRLEN];

    (void)state;
    memset(&o, 0, sizeof o);
    snprintf(o.service, sizeof o.service, "echo");
    o.protos = PROTO_TCP;
    assert_int_equal(spec_parse_options("latency=5ms,rate=1k", &o, 0, err, sizeof err), 0);
    assert_int_equal(o.nopts, 2);
    assert_int_equal(spec_parse_options("", &o, 0, err, sizeof err), 0);
    assert_int_equal(o.nopts, 0);
    assert_int_equal(spec_parse_options("name=x", &o, 0, err, sizeof err), -1);
    assert_string_equal(err, "'name' cannot change at run time in 'name=x'");
    assert_int_equal(spec_parse_options("name=x", &o, 1, err, sizeof err), 0);
    assert_int_equal(spec_parse_options("drop=0.1", &o, 0, err, sizeof err), -1);
    assert_string_equal(err, "'drop' is for udp listeners in 'drop=0.1'");
    assert_int_equal(spec_parse_options("latency=1d", &o, 0, err, sizeof err), -1);
    assert_int_equal(spec_parse_options("latency=1s,", &o, 0, err, sizeof err), -1);
    snprintf(o.service, sizeof o.service, "relay");
    assert_int_equal(spec_parse_options("up-rate=1k", &o, 0, err, sizeof err), 0);
    assert_int_equal(spec_parse_options("to=a:1", &o, 0, err, sizeof err), -1);
    assert_string_equal(err, "'to' cannot change at run time in 'to=a:1'");
    assert_int_equal(spec_parse_options("up-rate=1k", &o, 1, err, sizeof err), -1);
    assert_string_equal(err, "relay needs to=HOST:PORT or to=unix:PATH in 'up-rate=1k'");
}

static void test_duration(void **state)
{
    char err[ERRLEN];
    long ms;

    (void)state;
    assert_int_equal(spec_duration("0.25", &ms, err, sizeof err), 0);
    assert_int_equal(ms, 250);
    assert_int_equal(spec_duration("250ms", &ms, err, sizeof err), 0);
    assert_int_equal(ms, 250);
    assert_int_equal(spec_duration("2s", &ms, err, sizeof err), 0);
    assert_int_equal(ms, 2000);
    assert_int_equal(spec_duration("1.5s", &ms, err, sizeof err), 0);
    assert_int_equal(ms, 1500);
    assert_int_equal(spec_duration("0", &ms, err, sizeof err), 0);
    assert_int_equal(ms, 0);
    assert_int_equal(spec_duration("0ms", &ms, err, sizeof err), 0);
    assert_int_equal(ms, 0);
    assert_int_equal(spec_duration("86400", &ms, err, sizeof err), 0);
    assert_int_equal(ms, 86400000);
    assert_int_equal(spec_duration("86401", &ms, err, sizeof err), -1);
    assert_string_equal(err, "longer than a day");
    assert_int_equal(spec_duration("86400001ms", &ms, err, sizeof err), -1);
    assert_string_equal(err, "longer than a day");
    assert_int_equal(spec_duration("0.0001", &ms, err, sizeof err), -1);
    assert_string_equal(err, "finer than a millisecond");
    assert_int_equal(spec_duration("1.5ms", &ms, err, sizeof err), -1);
    assert_string_equal(err, "not a duration (seconds, or with ms or s)");
    assert_int_equal(spec_duration("ms", &ms, err, sizeof err), -1);
    assert_int_equal(spec_duration("", &ms, err, sizeof err), -1);
    assert_int_equal(spec_duration("1m", &ms, err, sizeof err), -1);
    assert_int_equal(spec_duration("-1", &ms, err, sizeof err), -1);
}

static void test_size(void **state)
{
    char err[ERRLEN];
    unsigned long n;

    (void)state;
    assert_int_equal(spec_size("64k", &n, err, sizeof err), 0);
    assert_int_equal(n, 65536);
    assert_int_equal(spec_size("1m", &n, err, sizeof err), 0);
    assert_int_equal(n, 1048576);
    assert_int_equal(spec_size("0", &n, err, sizeof err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(spec_size("100", &n, err, sizeof err), 0);
    assert_int_equal(n, 100);
    assert_int_equal(spec_size("1.5k", &n, err, sizeof err), -1);
    assert_int_equal(spec_size("k", &n, err, sizeof err), -1);
    assert_int_equal(spec_size("1g", &n, err, sizeof err), -1);
}

static void test_probability(void **state)
{
    char err[ERRLEN];
    double p;

    (void)state;
    assert_int_equal(spec_probability("0.5", &p, err, sizeof err), 0);
    assert_true(p == 0.5);
    assert_int_equal(spec_probability("5%", &p, err, sizeof err), 0);
    assert_true(p > 0.0499 && p < 0.0501);
    assert_int_equal(spec_probability("1", &p, err, sizeof err), 0);
    assert_true(p == 1.0);
    assert_int_equal(spec_probability("0", &p, err, sizeof err), 0);
    assert_true(p == 0.0);
    assert_int_equal(spec_probability("100%", &p, err, sizeof err), 0);
    assert_true(p == 1.0);
    assert_int_equal(spec_probability("1.01", &p, err, sizeof err), -1);
    assert_string_equal(err, "more than 1 (100%)");
    assert_int_equal(spec_probability("101%", &p, err, sizeof err), -1);
    assert_int_equal(spec_probability("%", &p, err, sizeof err), -1);
    assert_string_equal(err, "not a probability (0 to 1, or 0% to 100%)");
    assert_int_equal(spec_probability("-0.1", &p, err, sizeof err), -1);
    assert_int_equal(spec_probability("0.5x", &p, err, sizeof err), -1);
    assert_int_equal(spec_probability("", &p, err, sizeof err), -1);
}

static void test_too_long(void **state)
{
    char text[1200];

    (void)state;
    memset(text, 'a', sizeof text);
    memcpy(text, "echo@unix:/", 11);
    text[sizeof text - 1] = '\0';
    parse_bad(text, "longer than 1023 bytes in 'echo@unix:/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...'");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_port_range),
        cmocka_unit_test(test_port_range_bad),
        cmocka_unit_test(test_suffix_order),
        cmocka_unit_test(test_unix_escapes),
        cmocka_unit_test(test_options_unknown),
        cmocka_unit_test(test_fault_options),
        cmocka_unit_test(test_relay),
        cmocka_unit_test(test_parse_options),
        cmocka_unit_test(test_duration),
        cmocka_unit_test(test_size),
        cmocka_unit_test(test_probability),
        cmocka_unit_test(test_too_long),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
