"""--trace: the socket calls, narrated on stderr as they happen. The exact sequence of
a send and of a refused connect; partial sends, EAGAIN, EINTR, a reset and a
half-close as they show on a real socket; serve's lines on either engine; and
nothing at all without --trace."""
import json
import os
import re
import signal
import socket
import struct
import subprocess
import time

import pytest

from kodama_helpers import (free_port, kodama_cmd, run_kodama, sanitizer_problems,
                            scaled)
from peers import TcpPeer

T = r"\+\d+\.\d{6} "        # each line's time since the trace began


def trace_lines(stderr):
    return [l for l in stderr.splitlines() if re.match(T, l)]


def untimed(stderr):
    """The trace lines without their times, and the other lines as they are."""
    return [re.sub("^" + T, "", l) for l in stderr.splitlines()]


def times_rise(stderr):
    ts = [float(l.split()[0][1:]) for l in trace_lines(stderr)]
    return ts == sorted(ts) and ts[0] < 1


@pytest.fixture
def srv(server):
    return server(["echo@127.0.0.1:0", "hello@127.0.0.1:0/tcp"])


# --------------------------------------------------------------------------- exact sequences

@pytest.mark.valgrind
def test_send_exact_sequence(srv):
    port = srv.port("echo", "tcp")
    r = run_kodama(["send", "--trace", "127.0.0.1", port, "hello"])
    assert r.rc == 0, r
    assert r.stdout == b"hello\n"
    got = "\n".join(untimed(r.stderr))
    want = (r"getaddrinfo\(127\.0\.0\.1, {p}\) = 127\.0\.0\.1:{p}\n"
            r"socket\(AF_INET, SOCK_STREAM\) = 3\n"
            r"connect\(3, 127\.0\.0\.1:{p}\) = -1 EINPROGRESS\n"
            r"connect\(3\): connected, local 127\.0\.0\.1:\d+\n"
            r"send\(3, 5\) = 5\n"
            r"recv\(3, 65536\) = 5\n"
            r"shutdown\(3, SHUT_WR\) = 0\n"
            r"recv\(3, 65536\) = 0  \(peer closed: FIN\)\n"
            r"close\(3\) = 0").format(p=port)
    assert re.fullmatch(want, got), got
    assert times_rise(r.stderr), r.stderr


@pytest.mark.valgrind
def test_refused_connect_exact_sequence():
    port = free_port()
    r = run_kodama(["send", "--trace", "127.0.0.1", port, "hi"])
    assert r.rc == 3, r
    assert untimed(r.stderr) == [
        "getaddrinfo(127.0.0.1, %d) = 127.0.0.1:%d" % (port, port),
        "socket(AF_INET, SOCK_STREAM) = 3",
        "connect(3, 127.0.0.1:%d) = -1 EINPROGRESS" % port,
        "connect(3): ECONNREFUSED (SO_ERROR)",
        "close(3) = 0",
        "kodama: connect to 127.0.0.1 port %d (tcp) failed: Connection refused" % port,
    ], r.stderr


def test_udp_refused_shows_the_icmp():
    port = free_port(kind=socket.SOCK_DGRAM)
    r = run_kodama(["send", "--trace", "-u", "127.0.0.1", port, "hi"])
    assert r.rc == 3, r
    lines = untimed(r.stderr)
    assert lines[1:4] == ["socket(AF_INET, SOCK_DGRAM) = 3",
                          "connect(3, 127.0.0.1:%d) = 0" % port, "send(3, 2) = 2"], lines
    assert "recv(3, 65536) = -1 ECONNREFUSED  (ICMP port unreachable)" in lines, lines


def test_resolve_failure_is_traced():
    r = run_kodama(["send", "--trace", "nosuch!host", "7", "hi"])
    assert r.rc == 6, r
    assert untimed(r.stderr) == ["getaddrinfo(nosuch!host, 7) = Name or service not known",
                                 "kodama: nosuch!host: Name or service not known"], r.stderr


# --------------------------------------------------------------------------- as they happen

# Run inside a network namespace of its own whose TCP send buffers are small: on the
# host's loopback the kernel grows a new socket's buffer to megabytes at once, more
# than any MESSAGE (an argument is at most 128 KiB) could fill.
NETNS_SLOW_PEER = r"""
import socket, subprocess, sys, threading, time
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
with open("/proc/sys/net/ipv4/tcp_wmem", "w") as f:
    f.write("4096 4096 4096")
size = int(sys.argv[1])
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
ls.bind(("127.0.0.1", 0))
ls.listen(1)
def slow_echo():
    c, _ = ls.accept()
    got = 0
    while got < size:
        b = c.recv(4096)
        if not b:
            break
        got += len(b)
        for i in range(0, len(b), 1024):    # each piece wakes the sender, whose
            c.sendall(b[i:i + 1024])         # buffer has no more room yet: EAGAIN
            time.sleep(0.0005)
    c.shutdown(socket.SHUT_WR)
    c.recv(1)
    c.close()
threading.Thread(target=slow_echo, daemon=True).start()
argv = sys.argv[2:] + ["send", "--trace", "127.0.0.1", str(ls.getsockname()[1]), "x" * size]
r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
sys.stderr.write(r.stderr.decode())
sys.exit(r.returncode)
"""


def test_partial_sends_and_eagain():
    """A peer that reads slowly, through small send buffers: sends are partial, later
    ones find the socket full (EAGAIN), and every byte still comes back."""
    import sys
    size = 120000        # an argument of at most 128 KiB (MAX_ARG_STRLEN)
    if os.geteuid() != 0 or subprocess.run(["unshare", "-n", "true"],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs a network namespace of its own (root, unshare -n)")
    r = subprocess.run(["unshare", "-n", sys.executable, "-c", NETNS_SLOW_PEER, str(size),
                        *kodama_cmd()], capture_output=True, timeout=scaled(60))
    err = r.stderr.decode()
    assert not sanitizer_problems(err, "send"), err
    assert r.returncode == 0, err[-3000:]
    lines = untimed(err)
    partial = [l for l in lines if re.fullmatch(r"send\(3, \d+\) = \d+  \(partial send\)", l)]
    assert partial and lines.index(partial[0]) < lines.index("shutdown(3, SHUT_WR) = 0"), lines[:20]
    assert any(re.fullmatch(r"send\(3, \d+\) = -1 EAGAIN", l) for l in lines), lines[:40]
    sent = sum(int(m.group(1)) for l in lines
               for m in [re.fullmatch(r"send\(3, \d+\) = (\d+).*", l)] if m)
    got = sum(int(m.group(1)) for l in lines
              for m in [re.fullmatch(r"recv\(3, 65536\) = (\d+).*", l)] if m)
    assert sent == got == size, (sent, got)


def test_reset_shows_as_econnreset():
    def reset(c):
        c.recv(10)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    peer = TcpPeer(reset)
    try:
        r = run_kodama(["send", "--trace", "127.0.0.1", peer.port, "hi"])
    finally:
        peer.close()
    assert r.rc == 5, r
    assert "recv(3, 65536) = -1 ECONNRESET  (peer reset: RST)" in untimed(r.stderr), r.stderr


def test_half_close_of_a_relay(srv):
    """connect to hello with stdin still open: the greeting, then the peer's FIN ends
    the relay, without our side ever shutting down."""
    port = srv.port("hello", "tcp")
    p = subprocess.Popen(kodama_cmd("connect", "--trace", "127.0.0.1", port),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        rc = p.wait(scaled(5))
        out, err = p.stdout.read(), p.stderr.read().decode()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        for f in (p.stdin, p.stdout, p.stderr):
            f.close()
    assert rc == 0, err
    assert out == b"Hello from server!\n"
    lines = untimed(err)
    i = lines.index("recv(3, 65536) = 19")
    assert re.fullmatch(r"recv\(3, \d+\) = 0  \(peer closed: FIN\)", lines[i + 1]), lines
    assert lines[i + 2:] == ["close(3) = 0"], lines
    assert "shutdown(3, SHUT_WR) = 0" not in lines, lines


def test_eintr_on_sigint(srv):
    p = subprocess.Popen(kodama_cmd("ping", "--trace", "-i", "0.2", "127.0.0.1",
                                    srv.port("echo", "tcp")),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(scaled(0.5))
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=scaled(5))
    err = err.decode()
    assert not sanitizer_problems(err, "ping"), err
    assert p.returncode == 0, err
    lines = untimed(err)
    assert any(re.fullmatch(r"poll\(1 fds, \d+ ms\) = -1 EINTR", l) for l in lines), lines
    assert any(re.fullmatch(r"send\(3, 56\) = 56", l) for l in lines), lines
    assert lines[-1] == "close(3) = 0", lines


def test_listen_mode_is_traced():
    p = subprocess.Popen(kodama_cmd("connect", "--trace", "-l", "127.0.0.1", 0),
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + scaled(5)
        port = None
        buf = b""
        while port is None and time.monotonic() < deadline:
            buf += os.read(p.stderr.fileno(), 4096)
            m = re.search(rb"kodama: listening relay tcp 127\.0\.0\.1:(\d+)\n", buf)
            port = m and int(m.group(1))
        with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
            c.sendall(b"ping")
            c.shutdown(socket.SHUT_WR)
            assert c.recv(10) == b""
        out, err = p.communicate(timeout=scaled(5))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    lines = untimed(buf.decode() + err.decode())
    assert lines[:5] == ["getaddrinfo(127.0.0.1, 0) = 127.0.0.1:0",
                         "socket(AF_INET, SOCK_STREAM) = 3",
                         "bind(3, 127.0.0.1:0) = 0", "listen(3, 16) = 0",
                         "kodama: listening relay tcp 127.0.0.1:%d" % port], lines
    assert any(re.fullmatch(r"accept\(3\) = 4  \(from 127\.0\.0\.1:\d+\)", l) for l in lines), lines
    assert "recv(4, 65536) = 4" in lines and out == b"ping", lines


# --------------------------------------------------------------------------- serve

def test_serve_trace_names_each_connection(server):
    s = server(["--trace", "-t", "1", "echo@127.0.0.1:0/tcp"])
    port = s.port("echo", "tcp")
    r = run_kodama(["send", "--json", "127.0.0.1", port, "hello"])
    assert r.rc == 0, r
    local = json.loads(r.stdout)["local"]       # the client's end, which serve accepted
    log = s.wait_log(lambda t: re.search(r"close\(\d+\)", t))
    lines = untimed(s.stop())
    where = r"\[echo tcp 127\.0\.0\.1:%d\]" % port
    if os.environ.get("KODAMA_IO", "auto") == "epoll":
        acc = [l for l in lines if re.fullmatch(r"accept\(\d+\) %s = (\d+)  \(from %s\)"
                                                % (where, re.escape(local)), l)]
        assert acc, lines
        fd = re.search(r"= (\d+) ", acc[0]).group(1)
        seq = ["recv(%s, 65536) = 5" % fd, "send(%s, 5) = 5" % fd,
               "recv(%s, 65536) = 0  (peer closed: FIN)" % fd, "shutdown(%s, SHUT_WR) = 0" % fd,
               "close(%s) = 0" % fd]
    else:
        acc = [l for l in lines if re.fullmatch(r"io_uring: complete accept\(\d+\) %s = (\d+)"
                                                % where, l)]
        assert acc, lines
        fd = re.search(r"= (\d+)$", acc[0]).group(1)
        # The cap: --max-buffer's 64 KiB less a 16 KiB buffer's worth but a byte.
        seq = ["io_uring: submit recv_multishot(%s, cap 49153)" % fd, "io_uring: complete recv(%s) = 5" % fd,
               "io_uring: submit send(%s, 5)" % fd, "io_uring: complete send(%s) = 5" % fd,
               "io_uring: complete recv(%s) = 0  (peer closed: FIN)" % fd,
               "shutdown(%s, SHUT_WR) = 0" % fd, "io_uring: submit close(%s)" % fd]
    after = lines[lines.index(acc[0]) + 1:]
    assert [l for l in after if l in seq] == seq, after
    assert "accept" in log


def test_serve_trace_udp(server):
    s = server(["--trace", "-t", "1", "echo@127.0.0.1:0/udp"])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.settimeout(5)
        u.sendto(b"abc", s.addr("echo", "udp"))
        assert u.recv(10) == b"abc"
        me = "127.0.0.1:%d" % u.getsockname()[1]
    lines = untimed(s.stop())
    if os.environ.get("KODAMA_IO", "auto") == "epoll":
        assert any(re.fullmatch(r"recvmmsg\(\d+, 32\) = 1", l) for l in lines), lines
        assert any(re.fullmatch(r"sendmmsg\(\d+, 1\) = 1", l) for l in lines), lines
    else:
        assert any(re.fullmatch(r"io_uring: complete recvmsg\(\d+\) = 3  \(from %s\)"
                                % re.escape(me), l) for l in lines), lines
        assert any(re.fullmatch(r"io_uring: complete sendmsg\(\d+\) = 3", l) for l in lines), lines


def test_no_trace_without_the_option(srv):
    s = srv
    r = run_kodama(["send", "127.0.0.1", s.port("echo", "tcp"), "quiet"])
    assert r.rc == 0 and r.stderr == "", r
    r = run_kodama(["ping", "-c", 1, "127.0.0.1", s.port("echo", "tcp")])
    assert r.rc == 0 and r.stderr == "", r
    assert not trace_lines(s.stop())
