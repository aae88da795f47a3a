"""The clients, `kodama send` and `kodama connect`, against `kodama serve` and against
small peers written here (silent, short-reply)."""
import os
import socket
import subprocess
import threading
import time

import pytest

from kodama_helpers import (require_localhost_name, GREETING, free_port, kodama_cmd, received_lines, run_kodama,
                            sanitizer_problems, scaled)
from peers import TcpPeer


@pytest.fixture
def echo(server, sockdir):
    path = os.path.join(sockdir, "echo.sock")
    s = server.start(["-v", "echo@127.0.0.1:0", "echo@[::1]:0", "echo@unix:" + path,
                      "hello@127.0.0.1:0", "hello@unix:" + os.path.join(sockdir, "hello.sock")])
    s.unix_path = path
    yield s


def v4(s, service, proto):
    for svc, pr, text, sa in s.listeners:
        if svc == service and pr == proto and not isinstance(sa, str) and sa[0] == "127.0.0.1":
            return sa[1]
    raise AssertionError("no %s %s on 127.0.0.1: %r" % (service, proto, s.listeners))


def v6(s, service, proto):
    for svc, pr, text, sa in s.listeners:
        if svc == service and pr == proto and not isinstance(sa, str) and sa[0] == "::1":
            return sa[1]
    raise AssertionError("no %s %s on ::1: %r" % (service, proto, s.listeners))


# =========================================================================== send

def test_send_tcp(echo):
    port = v4(echo, "echo", "tcp")
    r = run_kodama(["send", "127.0.0.1", port, "hello", "world", "two words", ""])
    assert r.rc == 0, r
    assert r.stdout == b"hello\nworld\ntwo words\n\n"


@pytest.mark.valgrind
def test_send_tcp_verbose(echo):
    port = v4(echo, "echo", "tcp")
    r = run_kodama(["send", "-v", "127.0.0.1", port, "hello", "hi"])
    assert r.rc == 0, r
    assert r.stdout == b"hello\nhi\n"
    assert received_lines(r) == ["Received 5 bytes from 127.0.0.1:%d" % port,
                           "Received 2 bytes from 127.0.0.1:%d" % port], r


@pytest.mark.valgrind
def test_send_tcp_ipv6(echo):
    port = v6(echo, "echo", "tcp")
    r = run_kodama(["send", "-v", "-6", "::1", port, "six"])
    assert r.rc == 0, r
    assert r.stdout == b"six\n"
    assert received_lines(r) == ["Received 3 bytes from [::1]:%d" % port], r


@pytest.mark.valgrind
def test_send_udp(echo):
    port = v4(echo, "echo", "udp")
    r = run_kodama(["send", "-u", "-v", "127.0.0.1", port, "one", "two!", "three"])
    assert r.rc == 0, r
    assert r.stdout == b"one\ntwo!\nthree\n"
    assert received_lines(r) == ["Received 3 bytes from 127.0.0.1:%d" % port,
                           "Received 4 bytes from 127.0.0.1:%d" % port,
                           "Received 5 bytes from 127.0.0.1:%d" % port], r


def test_send_udp_ipv6(echo):
    port = v6(echo, "echo", "udp")
    r = run_kodama(["send", "-u", "::1", port, "udp6"])
    assert r.rc == 0, r
    assert r.stdout == b"udp6\n"


@pytest.mark.valgrind
def test_send_unix(echo):
    r = run_kodama(["send", "-U", echo.unix_path, "over unix", "again"])
    assert r.rc == 0, r
    assert r.stdout == b"over unix\nagain\n"


def test_send_messages_may_start_with_dash(echo):
    port = v4(echo, "echo", "tcp")
    r = run_kodama(["send", "127.0.0.1", port, "-n", "--bogus", "-"])
    assert r.rc == 0, r
    assert r.stdout == b"-n\n--bogus\n-\n"


@pytest.mark.valgrind
def test_send_large_message(echo):
    port = v4(echo, "echo", "tcp")
    msg = "x" * 100000
    r = run_kodama(["send", "127.0.0.1", port, msg])
    assert r.rc == 0, r
    assert r.stdout == msg.encode() + b"\n"


@pytest.mark.valgrind
def test_send_to_hello_differs(echo):
    port = v4(echo, "hello", "tcp")
    r = run_kodama(["send", "127.0.0.1", port, "hi"])
    assert r.rc == 1, r
    assert ("kodama: reply from 127.0.0.1 port %d (tcp) differs from the message sent" % port
            in r.err_lines), r


@pytest.mark.valgrind
def test_send_peer_closes_early():
    def three_of_five(c):
        got = b""
        while len(got) < 5:
            b = c.recv(5 - len(got))
            if not b:
                break
            got += b
        c.sendall(got[:3])
        c.shutdown(socket.SHUT_WR)
        time.sleep(0.5)

    peer = TcpPeer(three_of_five)
    try:
        r = run_kodama(["send", "127.0.0.1", peer.port, "hello"])
    finally:
        peer.close()
    assert r.rc == 5, r     # reset: the peer closed before the whole reply came
    assert ("kodama: 127.0.0.1 port %d (tcp) closed the connection after 3 of 5 bytes"
            % peer.port in r.err_lines), r


def test_send_tcp_no_reply_timeout():
    stop = threading.Event()

    def silent(c):
        stop.wait(scaled(10))

    peer = TcpPeer(silent)
    try:
        r = run_kodama(["send", "-w", "0.5", "127.0.0.1", peer.port, "hi"])
    finally:
        stop.set()
        peer.close()
    assert r.rc == 4, r     # timeout
    assert r.stderr == "kodama: no reply from 127.0.0.1 port %d (tcp) within 0.5 s\n" % peer.port, r
    assert r.elapsed < scaled(4)


def test_send_udp_no_reply_timeout():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
        r = run_kodama(["send", "-u", "-w", "0.5", "127.0.0.1", port, "hi"])
        u.settimeout(1)
        assert u.recv(100) == b"hi"  # it did send
    assert r.rc == 4, r     # timeout
    assert r.stdout == b""
    assert r.stderr == "kodama: no reply from 127.0.0.1 port %d (udp) within 0.5 s\n" % port, r
    assert 0.4 < r.elapsed < scaled(4)


@pytest.mark.valgrind
def test_send_udp_refused_icmp():
    port = free_port(kind=socket.SOCK_DGRAM)
    r = run_kodama(["send", "-u", "-w", "3", "127.0.0.1", port, "hi"])
    assert r.rc == 3, r     # refused: ICMP port unreachable
    assert r.stderr == "kodama: no reply from 127.0.0.1 port %d (udp): Connection refused\n" % port, r


@pytest.mark.valgrind
def test_send_refused():
    port = free_port()
    r = run_kodama(["send", "127.0.0.1", port, "hi"])
    assert r.rc == 3, r
    assert r.stdout == b""
    assert r.stderr == "kodama: connect to 127.0.0.1 port %d (tcp) failed: Connection refused\n" % port, r


# A name glibc refuses without asking a resolver (a '!' is no host name character): a
# ".invalid" name would send a DNS query to the configured resolver, off the machine.
BAD_NAME = "nosuch!host"


def check_unknown_host(r):
    assert r.rc == 6, r     # resolve
    assert r.stdout == b""
    assert r.err_lines == ["kodama: nosuch!host: Name or service not known"], r


def test_send_unknown_host():
    check_unknown_host(run_kodama(["send", BAD_NAME, "7", "hi"]))


def test_send_unix_missing(sockdir):
    path = os.path.join(sockdir, "absent.sock")
    r = run_kodama(["send", "-U", path, "hi"])
    assert r.rc == 3, r     # refused: nothing listens there
    assert r.stderr == "kodama: connect to unix:%s failed: No such file or directory\n" % path, r


# =========================================================================== connect

@pytest.mark.valgrind
def test_connect_hello_stdin_eof(echo):
    r = run_kodama(["connect", "127.0.0.1", v4(echo, "hello", "tcp")])
    assert r.rc == 0, r
    assert r.stdout == GREETING
    assert r.stderr == ""


@pytest.mark.valgrind
def test_connect_hello_peer_closes_first(echo):
    """stdin stays open: the greeting and the server's EOF end the relay, exit 0."""
    p = subprocess.Popen(kodama_cmd("connect", "127.0.0.1", v4(echo, "hello", "tcp")),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        rc = p.wait(scaled(4))
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        rc = None
    out = p.stdout.read()
    err = p.stderr.read().decode()
    for f in (p.stdin, p.stdout, p.stderr):
        f.close()
    assert rc is not None, "connect did not exit after the peer closed (stdin still open)"
    assert not sanitizer_problems(err, "connect"), err
    assert rc == 0, (rc, err)
    assert out == GREETING


def test_connect_echo_small(echo):
    r = run_kodama(["connect", "127.0.0.1", v4(echo, "echo", "tcp")], input=b"abc")
    assert r.rc == 0, r
    assert r.stdout == b"abc"
    assert r.stderr == ""


def test_connect_echo_empty_input(echo):
    r = run_kodama(["connect", "127.0.0.1", v4(echo, "echo", "tcp")], input=b"")
    assert r.rc == 0, r
    assert r.stdout == b""


def test_connect_10mib_binary(echo):
    data = os.urandom(10 << 20)
    r = run_kodama(["connect", "127.0.0.1", v4(echo, "echo", "tcp")], input=data, timeout=30)
    assert r.rc == 0, r
    assert len(r.stdout) == len(data)
    assert r.stdout == data


@pytest.mark.valgrind
def test_connect_ipv6(echo):
    data = os.urandom(100000)
    r = run_kodama(["connect", "-6", "::1", v6(echo, "echo", "tcp")], input=data)
    assert r.rc == 0, r
    assert r.stdout == data


def test_connect_verbose(echo):
    port = v4(echo, "echo", "tcp")
    r = run_kodama(["connect", "-v", "127.0.0.1", port], input=b"v")
    assert r.rc == 0, r
    assert r.stdout == b"v"
    assert "kodama: connected to 127.0.0.1 port %d (tcp)" % port in r.err_lines, r


@pytest.mark.valgrind
def test_connect_unix(echo):
    data = os.urandom(1 << 20)
    r = run_kodama(["connect", "-U", echo.unix_path], input=data, timeout=20)
    assert r.rc == 0, r
    assert r.stdout == data


@pytest.mark.valgrind
def test_connect_udp_lines(echo):
    data = b"first line\nsecond line\n"
    r = run_kodama(["connect", "-u", "127.0.0.1", v4(echo, "echo", "udp")], input=data)
    assert r.rc == 0, r
    assert r.stdout == data
    assert r.elapsed < scaled(4), "connect -u waited although every datagram was answered"


def test_connect_udp_hello(echo):
    r = run_kodama(["connect", "-u", "-w", "2", "127.0.0.1", v4(echo, "hello", "udp")],
                   input=b"is anyone out there?\n")
    assert r.rc == 0, r
    assert r.stdout == GREETING


def test_connect_udp_slow_stdout_keeps_datagrams_whole():
    """connect -u with a stdout that takes part of a write (a full non-blocking pipe):
    a datagram is read only into room for a whole one, never cut short."""
    size, count = 60000, 6
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.bind(("127.0.0.1", 0))
        u.settimeout(scaled(5))
        out_r, out_w = os.pipe()
        os.set_blocking(out_w, False)
        in_r, in_w = os.pipe()
        p = subprocess.Popen(kodama_cmd("connect", "-u", "-w", "2", "127.0.0.1",
                                        u.getsockname()[1]),
                             stdin=in_r, stdout=out_w, stderr=subprocess.PIPE)
        os.close(in_r)
        os.close(out_w)
        got = bytearray()
        try:
            os.write(in_w, b"x")
            _, peer = u.recvfrom(100)
            for i in range(count):
                u.sendto(bytes([65 + i]) * size, peer)
                time.sleep(0.15)
                if i >= 2:      # a reader that falls behind, then takes a pipeful a turn
                    got += os.read(out_r, 65536)
        finally:
            os.close(in_w)
        deadline = time.monotonic() + scaled(10)
        while time.monotonic() < deadline:
            b = os.read(out_r, 65536)
            if not b:
                break
            got += b
        rc = p.wait(scaled(10))
        err = p.stderr.read().decode()
        p.stderr.close()
        os.close(out_r)
    assert not sanitizer_problems(err, "connect -u"), err
    assert rc == 0, (rc, err)
    counts = [got.count(bytes([65 + i])) for i in range(count)]
    # The last may be lost (the run ends when every datagram has been answered): whole
    # or not at all, and the first four, read while stdout was slow, whole.
    assert counts[:4] == [size] * 4 and all(c in (0, size) for c in counts), counts


def test_connect_udp_no_reply_waits_w():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
        r = run_kodama(["connect", "-u", "-w", "0.5", "127.0.0.1", port], input=b"ping\n")
        u.settimeout(1)
        assert u.recv(100) == b"ping\n"
    assert r.rc == 0, r
    assert r.stdout == b""
    assert 0.4 < r.elapsed < scaled(4), r.elapsed


@pytest.mark.valgrind
def test_connect_refused():
    port = free_port()
    r = run_kodama(["connect", "127.0.0.1", port], input=b"x")
    assert r.rc == 3, r
    assert r.stderr == "kodama: connect to 127.0.0.1 port %d (tcp) failed: Connection refused\n" % port, r


def test_connect_unknown_host():
    check_unknown_host(run_kodama(["connect", BAD_NAME, "7"]))


def test_connect_unix_missing(sockdir):
    path = os.path.join(sockdir, "absent.sock")
    r = run_kodama(["connect", "-U", path])
    assert r.rc == 3, r
    assert r.stderr == "kodama: connect to unix:%s failed: No such file or directory\n" % path, r


def test_connect_localhost_name(echo):
    """A host name (not a literal) resolves; 'localhost' is 127.0.0.1 in /etc/hosts."""
    require_localhost_name()
    r = run_kodama(["connect", "-4", "localhost", v4(echo, "echo", "tcp")], input=b"named")
    assert r.rc == 0, r
    assert r.stdout == b"named"


@pytest.mark.valgrind
def test_connect_peer_closes_while_stdin_has_more(echo):
    """hello closes first; the rest of a large stdin is not sent; exit 0."""
    data = os.urandom(10 << 20)
    r = run_kodama(["connect", "127.0.0.1", v4(echo, "hello", "tcp")], input=data, timeout=20)
    assert r.rc == 0, r
    assert r.stdout == GREETING
