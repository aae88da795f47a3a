"""Command line: help, version, usage errors (exit 2), listen failures (exit 1)."""
import socket

import pytest

from kodama_helpers import (assert_usage_error, free_port, run_kodama)


# --------------------------------------------------------------------------- top level

def test_version():
    r = run_kodama(["--version"])
    assert r.rc == 0, r
    assert r.stdout == b"kodama 0.1.0\n"
    assert r.stderr == ""


@pytest.mark.parametrize("args", [["--help"], ["-h"], ["help"]])
def test_top_level_help(args):
    r = run_kodama(args)
    assert r.rc == 0, r
    assert r.stderr == ""
    out = r.stdout.decode()
    for cmd in ("serve", "send", "connect", "ping", "bench"):
        assert cmd in out, out
    # the verdicts, in the top-level help's exit status
    assert ("0 ok, 1 mismatch, 2 usage, 3 refused, 4 timeout, 5 reset, 6 resolve,\n"
            "  7 tls, 8 unreachable, 9 local." in out), out


def test_top_level_help_forms_agree():
    outs = {tuple(a): run_kodama(a).stdout for a in (["--help"], ["-h"], ["help"])}
    assert len(set(outs.values())) == 1, outs


@pytest.mark.parametrize("cmd", ["serve", "send", "connect", "ping", "bench"])
def test_command_help(cmd):
    a = run_kodama(["help", cmd])
    b = run_kodama([cmd, "--help"])
    for r in (a, b):
        assert r.rc == 0, r
        assert r.stderr == "", r
        assert cmd in r.stdout.decode(), r
    assert a.stdout == b.stdout
    # each command's help is its own, not the top-level usage
    assert a.stdout != run_kodama(["--help"]).stdout


def test_no_arguments_prints_usage_on_stderr():
    r = run_kodama([])
    assert r.rc == 2, r
    assert r.stdout == b""
    assert "serve" in r.stderr, r


def test_unknown_command():
    assert_usage_error(run_kodama(["nope"]), "kodama: unknown command 'nope'")


def test_unknown_top_level_option():
    assert_usage_error(run_kodama(["-x"]), "kodama: unknown option '-x'")


# --------------------------------------------------------------------------- serve usage

@pytest.mark.parametrize("spec,msg", [
    ("echo@99999", "kodama: invalid port '99999' in 'echo@99999'"),
    ("nope@1", "kodama: unknown service 'nope' in 'nope@1'"),
    ("echo@[::1", "kodama: missing ']' in 'echo@[::1'"),
    ("echo@", "kodama: missing address in 'echo@'"),
])
def test_serve_bad_spec(spec, msg):
    assert_usage_error(run_kodama(["serve", spec], timeout=5), msg, "serve")


@pytest.mark.valgrind
def test_serve_bad_spec_among_good_ones():
    # parsing happens before anything listens: nothing starts, exit 2
    r = run_kodama(["serve", "echo@127.0.0.1:0", "nope@1"], timeout=5)
    assert_usage_error(r, "kodama: unknown service 'nope' in 'nope@1'", "serve")


def test_serve_unknown_option():
    assert_usage_error(run_kodama(["serve", "--bogus"], timeout=5),
                       "kodama: unknown option '--bogus'", "serve")


def test_serve_unknown_short_option():
    assert_usage_error(run_kodama(["serve", "-x"], timeout=5),
                       "kodama: unknown option '-x'", "serve")


def test_serve_bad_escape():
    assert_usage_error(run_kodama(["serve", "--message", "a\\q", "hello@127.0.0.1:0"], timeout=5),
                       "kodama: invalid escape '\\q' in --message", "serve")


def test_serve_message_needs_argument():
    assert_usage_error(run_kodama(["serve", "--message"], timeout=5),
                       "kodama: option '--message' needs an argument", "serve")


# --------------------------------------------------------------------------- send / connect usage

def test_send_missing_port():
    assert_usage_error(run_kodama(["send", "127.0.0.1"], timeout=5),
                       "kodama: missing PORT", "send")


def test_send_missing_message():
    assert_usage_error(run_kodama(["send", "127.0.0.1", "7"], timeout=5),
                       "kodama: missing MESSAGE", "send")


def test_send_missing_host():
    assert_usage_error(run_kodama(["send"], timeout=5), "kodama: missing HOST", "send")


def test_send_invalid_port():
    assert_usage_error(run_kodama(["send", "127.0.0.1", "70000", "hi"], timeout=5),
                       "kodama: invalid port '70000'", "send")


@pytest.mark.parametrize("cmd", ["send", "ping", "connect"])
@pytest.mark.parametrize("value, why", [("-1", "not a number of seconds"),
                                        ("0", "must be more than 0"),
                                        ("nan", "not a number of seconds"),
                                        ("0.0001", "finer than a millisecond")])
def test_client_invalid_timeout_says_why(cmd, value, why):
    assert_usage_error(run_kodama([cmd, "-w", value, "127.0.0.1", "7"], timeout=5),
                       "kodama: invalid timeout '%s': %s" % (value, why), cmd)


def test_send_w_needs_argument():
    assert_usage_error(run_kodama(["send", "-w"], timeout=5),
                       "kodama: option '-w' needs an argument", "send")


def test_send_unknown_option():
    assert_usage_error(run_kodama(["send", "--bogus", "127.0.0.1", "7", "hi"], timeout=5),
                       "kodama: unknown option '--bogus'", "send")


def test_send_unix_without_message():
    assert_usage_error(run_kodama(["send", "-U", "/tmp/nonexistent.sock"], timeout=5),
                       "kodama: missing MESSAGE", "send")


def test_send_unix_with_udp():
    r = run_kodama(["send", "-u", "-U", "/tmp/nonexistent.sock", "hi"], timeout=5)
    assert r.rc == 2, r
    lines = r.err_lines
    assert len(lines) == 2 and lines[0].startswith("kodama: "), r
    assert lines[1] == "Try 'kodama send --help'.", r


def test_connect_unix_with_host_port():
    r = run_kodama(["connect", "-U", "/tmp/nonexistent.sock", "127.0.0.1", "7"], timeout=5)
    assert r.rc == 2, r
    lines = r.err_lines
    assert len(lines) == 2 and lines[0].startswith("kodama: "), r
    assert lines[1] == "Try 'kodama connect --help'.", r


def test_connect_missing_port():
    assert_usage_error(run_kodama(["connect", "127.0.0.1"], timeout=5),
                       "kodama: missing PORT", "connect")


def test_connect_missing_host():
    assert_usage_error(run_kodama(["connect"], timeout=5), "kodama: missing HOST", "connect")


def test_connect_unknown_option():
    assert_usage_error(run_kodama(["connect", "--bogus"], timeout=5),
                       "kodama: unknown option '--bogus'", "connect")


def test_connect_invalid_port():
    assert_usage_error(run_kodama(["connect", "127.0.0.1", "70000"], timeout=5),
                       "kodama: invalid port '70000'", "connect")


# --------------------------------------------------------------------------- listen failures

@pytest.mark.valgrind
def test_port_in_use(server):
    s = server.start(["echo@127.0.0.1:0/tcp"])
    port = s.port("echo", "tcp")
    r = run_kodama(["serve", "echo@127.0.0.1:%d/tcp" % port], timeout=5)
    assert r.rc == 1, r
    assert r.stdout == b""
    assert r.stderr == ("kodama: cannot listen on echo tcp 127.0.0.1:%d: Address already in use\n"
                        % port), r
    # the first server is unharmed
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        c.sendall(b"still here")
        c.shutdown(socket.SHUT_WR)
        c.settimeout(5)
        assert c.recv(100) == b"still here"
    s.stop()


def test_udp_port_in_use():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
        r = run_kodama(["serve", "echo@127.0.0.1:%d/udp" % port], timeout=5)
    assert r.rc == 1, r
    assert r.stderr == ("kodama: cannot listen on echo udp 127.0.0.1:%d: Address already in use\n"
                        % port), r


# --------------------------------------------------------------------------- listening lines

def test_listening_lines_and_ready(server):
    s = server.start(["hello@127.0.0.1:0", "echo@[::1]:0/tcp", "echo@127.0.0.1:0/udp"])
    lines = s.log_lines()
    assert lines[-1] == "kodama: ready"
    got = [(svc, proto, text.rsplit(":", 1)[0]) for svc, proto, text, _ in s.listeners]
    assert sorted(got) == sorted([
        ("hello", "tcp", "127.0.0.1"),
        ("hello", "udp", "127.0.0.1"),
        ("echo", "tcp", "[::1]"),
        ("echo", "udp", "127.0.0.1"),
    ]), lines
    for _, _, _, sa in s.listeners:
        assert sa[1] != 0
    s.stop()


def test_same_port_for_tcp_and_udp_when_given(server):
    port = free_port()
    # a port free for tcp is very likely free for udp as well; retry once if not
    s = server.start(["echo@127.0.0.1:%d" % port])
    assert s.port("echo", "tcp") == port
    assert s.port("echo", "udp") == port
    assert s.addr_text("echo", "tcp") == "127.0.0.1:%d" % port
    s.stop()


def test_wildcard_listening_text(server):
    s = server.start(["echo@0/tcp"])
    text = s.addr_text("echo", "tcp")
    assert text.startswith("[::]:"), text
    s.stop()
    s4 = server.start(["-4", "echo@0/tcp"])
    assert s4.addr_text("echo", "tcp").startswith("0.0.0.0:"), s4.listeners
    s4.stop()
