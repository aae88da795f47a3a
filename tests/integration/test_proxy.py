"""PROXY protocol listeners (SPEC suffix "+proxy"): hand-built v1 and v2 headers from
Python sockets.  The carried client shows in the -v accept lines and counts under
--max-per-ip; bytes after the header reach the service intact; a bad, missing or late
header resets the connection and is counted as bad_proxy_header."""
import re
import signal
import socket
import struct
import time

import pytest

from kodama_helpers import (GREETING, assert_usage_error, connect, recv_exact,
                            recv_until_eof, run_kodama, scaled)
from test_limits import counters, fd_count, refused_connect, wait_for

SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v1(src="192.0.2.1", dst="198.51.100.2", sport=56324, dport=443):
    proto = "TCP6" if ":" in src else "TCP4"
    return ("PROXY %s %s %s %d %d\r\n" % (proto, src, dst, sport, dport)).encode()


def v2(src="192.0.2.1", dst="198.51.100.2", sport=56324, dport=443, command=1, tlvs=b""):
    if command == 0:
        return SIG + bytes([0x20, 0x00]) + struct.pack("!H", len(tlvs)) + tlvs
    fam = socket.AF_INET6 if ":" in src else socket.AF_INET
    body = (socket.inet_pton(fam, src) + socket.inet_pton(fam, dst) +
            struct.pack("!HH", sport, dport) + tlvs)
    return SIG + bytes([0x21, 0x21 if fam == socket.AF_INET6 else 0x11]) + \
        struct.pack("!H", len(body)) + body


def accept_lines(log, service="echo", proto="tcp"):
    return re.findall(r"^kodama: accept %s %s (\S+)$" % (service, proto), log, re.M)


def expect_reset(sock, timeout=5.0):
    """The server gives up on the connection: a reset (or, if the reset raced our
    last write, an EOF), never data."""
    sock.settimeout(scaled(timeout))
    try:
        data = sock.recv(100)
    except ConnectionResetError:
        return True
    finally:
        sock.close()
    assert data == b"", "got %r instead of a reset" % data
    return True


def proxied_echo(server, *extra):
    return server.start(["-v", *extra, "echo@127.0.0.1:0/tcp+proxy"])


# --------------------------------------------------------------------------- usage

@pytest.mark.parametrize("spec,msg", [
    ("echo@127.0.0.1:0+proxy",
     "'+proxy' is for stream listeners: add /tcp before it in 'echo@127.0.0.1:0+proxy'"),
    ("echo@127.0.0.1:0/udp+proxy",
     "'+proxy' is for stream listeners: add /tcp before it in 'echo@127.0.0.1:0/udp+proxy'"),
])
def test_proxy_suffix_usage_errors(spec, msg):
    assert_usage_error(run_kodama(["serve", spec], timeout=5), "kodama: " + msg, "serve")


def test_proxy_timeout_usage_error():
    assert_usage_error(run_kodama(["serve", "--proxy-timeout", "soon", "echo@127.0.0.1:0/tcp+proxy"],
                                  timeout=5),
                       "kodama: --proxy-timeout 'soon': not a number of seconds", "serve")


# --------------------------------------------------------------------------- good headers

@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("src,dst,shown", [
    ("192.0.2.1", "198.51.100.2", "192.0.2.1:56324"),
    ("2001:db8::7", "2001:db8::1", "[2001:db8::7]:56324"),
])
def test_carried_address_and_data_in_the_same_segment(server, version, src, dst, shown):
    s = proxied_echo(server)
    hdr = (v1 if version == 1 else v2)(src, dst)
    payload = b"first bytes\x00\r\n right after the header"
    with connect(s.addr("echo")) as c:
        c.sendall(hdr + payload)                      # one write: one segment on loopback
        assert recv_exact(c, len(payload)) == payload
        c.shutdown(socket.SHUT_WR)
        assert recv_until_eof(c) == b""
    log = s.wait_log(lambda t: "close echo tcp %s" % shown in t)
    assert accept_lines(log) == [shown], log
    assert re.search(r"^kodama: close echo tcp %s in=%d out=%d$"
                     % (re.escape(shown), len(payload), len(payload)), log, re.M), log
    assert counters(s.stop(), "echo", "tcp")["bad_proxy_header"] == 0


@pytest.mark.parametrize("version", [1, 2])
def test_header_in_one_byte_writes(server, version):
    s = proxied_echo(server)
    hdr = (v1 if version == 1 else v2)("203.0.113.9", "198.51.100.2", 40000, 7)
    with connect(s.addr("echo")) as c:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(hdr)):
            c.sendall(hdr[i:i + 1])
            time.sleep(0.002)
        c.sendall(b"ping")
        assert recv_exact(c, 4) == b"ping"
    log = s.wait_log(lambda t: "close echo tcp 203.0.113.9:40000" in t)
    assert accept_lines(log) == ["203.0.113.9:40000"], log
    s.stop()


def test_v2_with_tlvs(server):
    s = proxied_echo(server)
    tlvs = b"\x01\x00\x02h2" + b"\x05\x00\x10" + b"0123456789abcdef" + b"\x04\x00\x00"
    with connect(s.addr("echo")) as c:
        c.sendall(v2("192.0.2.44", "198.51.100.2", 1234, 443, tlvs=tlvs) + b"x")
        assert recv_exact(c, 1) == b"x"
    s.wait_log(lambda t: "accept echo tcp 192.0.2.44:1234" in t)
    s.stop()


@pytest.mark.parametrize("hdr", [v2(command=0), b"PROXY UNKNOWN\r\n",
                                 b"PROXY UNKNOWN 1.2.3.4 5.6.7.8 1 2\r\n"],
                         ids=["v2-local", "v1-unknown", "v1-unknown-rest"])
def test_local_and_unknown_keep_the_real_peer(server, hdr):
    s = proxied_echo(server)
    with connect(s.addr("echo")) as c:
        port = c.getsockname()[1]
        c.sendall(hdr + b"hc")
        assert recv_exact(c, 2) == b"hc"
    log = s.wait_log(lambda t: "close echo tcp 127.0.0.1:%d" % port in t)
    assert accept_lines(log) == ["127.0.0.1:%d" % port], log
    s.stop()


def test_hello_greets_only_after_the_header(server):
    s = server.start(["-v", "hello@127.0.0.1:0/tcp+proxy"])
    with connect(s.addr("hello")) as c:
        c.settimeout(scaled(0.3))
        with pytest.raises(socket.timeout):
            c.recv(100)                                   # nothing before the header
        c.settimeout(scaled(5))
        c.sendall(v1("192.0.2.5", "198.51.100.2", 5555, 80))
        assert recv_until_eof(c) == GREETING
    s.wait_log(lambda t: "accept hello tcp 192.0.2.5:5555" in t)
    s.stop()


def test_unix_listener_with_proxy(server, sockdir):
    path = sockdir + "/p.sock"
    s = server.start(["-v", "echo@unix:%s+proxy" % path])
    with connect(path) as c:
        c.sendall(v2("192.0.2.77", "198.51.100.2", 6000, 7) + b"unix")
        assert recv_exact(c, 4) == b"unix"
    s.wait_log(lambda t: "accept echo unix 192.0.2.77:6000" in t)
    s.stop()


def test_plain_listener_beside_is_unaffected(server):
    s = server.start(["-v", "echo@127.0.0.1:0/tcp+proxy", "hello@127.0.0.1:0/tcp"])
    with connect(s.addr("hello")) as c:
        assert recv_until_eof(c) == GREETING              # no header asked for there
    with connect(s.addr("echo")) as c:
        c.sendall(b"PROXY TCP4 192.0.2.1 198.51.100.2 1 2\r\nok")
        assert recv_exact(c, 2) == b"ok"
    s.stop()


# --------------------------------------------------------------------------- bad headers

BAD = {
    "http": b"GET / HTTP/1.0\r\n\r\n",
    "v1-leading-zero": b"PROXY TCP4 192.0.2.01 198.51.100.2 1 2\r\n",
    "v1-lf-only": b"PROXY TCP4 192.0.2.1 198.51.100.2 1 2\n",
    "v1-too-long": b"PROXY UNKNOWN " + b"x" * 120,
    "v2-bad-version": SIG + b"\x11\x11\x00\x0c" + bytes(12),
    "v2-bad-family": SIG + b"\x21\x41\x00\x0c" + bytes(12),
    "v2-short-block": SIG + b"\x21\x11\x00\x0b" + bytes(11),
    "v2-bad-tlv": SIG + b"\x21\x11\x00\x10" + bytes(12) + b"\x01\x00\x09x",
    "v2-too-long": SIG + b"\x21\x11\x04\x00",
}


def test_bad_headers_reset_and_count(server):
    s = proxied_echo(server)
    for name, data in BAD.items():
        c = connect(s.addr("echo"))
        c.sendall(data)
        assert expect_reset(c), name
    with connect(s.addr("echo")) as c:                    # the listener still serves
        c.sendall(v1() + b"after")
        assert recv_exact(c, 5) == b"after"
    log = s.stop()
    assert counters(log, "echo", "tcp")["bad_proxy_header"] == len(BAD), log
    assert counters(log, "echo", "tcp")["accepted"] == 1, log
    lines = [l for l in log.splitlines() if "bad PROXY protocol header" in l]
    # logged at most once a second: the first says what was wrong, and who sent it
    assert lines and re.match(r"^kodama: dropped echo tcp 127\.0\.0\.1:\d+ from 127\.0\.0\.1:\d+: "
                              r"bad PROXY protocol header: not a PROXY protocol header$",
                              lines[0]), lines
    assert len(lines) <= 3, lines


def test_missing_header_times_out(server):
    s = proxied_echo(server, "--proxy-timeout", "0.4")
    silent = connect(s.addr("echo"))
    partial = connect(s.addr("echo"))
    partial.sendall(b"PROXY TCP4 192.0.2.1 ")
    t0 = time.monotonic()
    assert expect_reset(silent)
    assert expect_reset(partial)
    assert time.monotonic() - t0 < scaled(3)
    log = s.stop()
    assert counters(log, "echo", "tcp")["bad_proxy_header"] == 2, log
    assert re.search(r"bad PROXY protocol header: none within 0\.4 s \(--proxy-timeout\)", log), log


def test_eof_before_the_header_is_counted(server):
    s = proxied_echo(server)
    with connect(s.addr("echo")) as c:
        c.sendall(b"PROXY TCP4 192.0.2.1")
        c.shutdown(socket.SHUT_WR)
        c.settimeout(scaled(5))
        try:
            assert c.recv(10) == b""
        except ConnectionResetError:
            pass
    wait_for(lambda: "closed by the peer after" in s.log() or "counters" in s.log(), 5,
             "the drop")
    log = s.stop()
    assert counters(log, "echo", "tcp")["bad_proxy_header"] == 1, log


# --------------------------------------------------------------------------- limits

def test_per_ip_limit_applies_to_the_carried_client(server):
    # --limit-loopback: the balancer (127.0.0.1) would be limited if it were counted.
    s = proxied_echo(server, "--max-per-ip", "2", "--limit-loopback")
    held = []
    for i in range(6):                              # six clients, one balancer
        c = connect(s.addr("echo"))
        c.sendall(v2("192.0.2.%d" % (10 + i // 2), "198.51.100.2", 1000 + i, 7) + b"k")
        assert recv_exact(c, 1) == b"k"
        held.append(c)
    c = connect(s.addr("echo"))                     # a third from 192.0.2.10
    c.sendall(v1("192.0.2.10", "198.51.100.2", 2000, 7) + b"k")
    assert expect_reset(c)
    c = connect(s.addr("echo"))                     # its /64 neighbour in IPv6 is one too
    c.sendall(v1("2001:db8::1", "2001:db8::2", 1, 7) + b"k")
    assert recv_exact(c, 1) == b"k"
    held.append(c)
    held[0].close()                                 # room again for 192.0.2.10
    wait_for(lambda: "close echo tcp 192.0.2.10:1000" in s.log(), 5, "the close")
    with connect(s.addr("echo")) as c:
        c.sendall(v1("192.0.2.10", "198.51.100.2", 2001, 7) + b"k")
        assert recv_exact(c, 1) == b"k"
    for c in held:
        c.close()
    log = s.stop()
    assert counters(log, "echo", "tcp")["per_ip"] == 1, log
    assert re.search(r"^kodama: refused echo tcp 127\.0\.0\.1:\d+ from 192\.0\.2\.10:2000: "
                     r"2 connections from that address \(--max-per-ip\)$", log, re.M), log


def test_max_conns_counts_connections_waiting_for_a_header(server):
    s = proxied_echo(server, "-t", "1", "--max-conns", "2")    # one accept queue: in order
    waiting = [connect(s.addr("echo")) for _ in range(2)]
    time.sleep(0.2)
    assert refused_connect(s.addr("echo"))
    waiting[0].sendall(v1() + b"a")                 # a waiting one is served when its header comes
    assert recv_exact(waiting[0], 1) == b"a"
    for w in waiting:
        w.close()
    log = s.stop()
    assert counters(log, "echo", "tcp")["max_conns"] == 1, log


# --------------------------------------------------------------------------- stopping

def test_sigterm_closes_waiting_connections_and_nothing_leaks(server):
    s = proxied_echo(server, "-t", "1", "--proxy-timeout", "30", "--drain-timeout", "30")
    pid = s.proc.pid
    base = fd_count(pid)
    for _ in range(30):                             # bad and good ones come and go
        c = connect(s.addr("echo"))
        c.sendall(b"junk\r\n")
        expect_reset(c)
    for _ in range(30):
        with connect(s.addr("echo")) as c:
            c.sendall(v2() + b"z")
            assert recv_exact(c, 1) == b"z"
    wait_for(lambda: fd_count(pid) == base, 5, "descriptors back to %d" % base)
    waiting = [connect(s.addr("echo")) for _ in range(5)]
    busy = connect(s.addr("echo"))
    busy.sendall(v1() + b"b")
    assert recv_exact(busy, 1) == b"b"
    wait_for(lambda: fd_count(pid) == base + 6, 5, "six connections held")
    s.send_signal(signal.SIGTERM)
    for w in waiting:                               # closed at once, not after the drain
        w.settimeout(scaled(3))
        try:
            assert w.recv(10) == b""
        except ConnectionResetError:
            pass
        w.close()
    busy.sendall(b"still")                          # the served one drains as usual
    assert recv_exact(busy, 5) == b"still"
    busy.close()
    rc = s.proc.wait(scaled(10))
    assert rc == 0, s.log()
    assert counters(s.log(), "echo", "tcp")["bad_proxy_header"] == 30


@pytest.mark.parametrize("version", [1, 2])
def test_info_reports_the_carried_client_beside_the_real_peer(server, version):
    s = server.start(["--name", "be1", "--info-format", "kv", "info@127.0.0.1:0/tcp+proxy"])
    header = (v1 if version == 1 else v2)("192.0.2.9", "198.51.100.2", 40001, 7)
    with connect(s.addr("info")) as c:
        c.settimeout(scaled(5))
        c.sendall(header)
        line = recv_until_eof(c).decode()
        local, peer = c.getpeername(), c.getsockname()
    assert line == ("name=be1 proto=tcp local=%s:%d peer=%s:%d client=192.0.2.9:40001\n"
                    % (local[0], local[1], peer[0], peer[1])), line
    s.stop()


def test_info_after_local_has_no_client(server):
    s = server.start(["--name", "be1", "info@127.0.0.1:0/tcp+proxy"])
    with connect(s.addr("info")) as c:
        c.settimeout(scaled(5))
        c.sendall(v2(command=0))
        line = recv_until_eof(c).decode()
        peer = c.getsockname()
    assert line.endswith(" peer=%s:%d\n" % peer) and "client=" not in line, line
    s.stop()
