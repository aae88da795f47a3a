"""The echo service over stream sockets: bulk data, half-close, bounded memory, many clients."""
import os
import socket
import threading
import time

import pytest

from kodama_helpers import (connect, recv_exact, recv_until_eof, require_localhost_name, run_echo_clients, scaled,
                            sha256, stream_through)

BIG = 100 << 20


@pytest.fixture(scope="module")
def big_data():
    return os.urandom(BIG)


@pytest.fixture(scope="module")
def big_hash(big_data):
    return sha256(big_data)


@pytest.mark.parametrize("kind", ["ipv4", "ipv6", "v4mapped"])
def test_echo_100mib(server, big_data, big_hash, kind):
    spec, host = {
        "ipv4": ("echo@127.0.0.1:0/tcp", "127.0.0.1"),
        "ipv6": ("echo@[::1]:0/tcp", "::1"),
        "v4mapped": ("echo@0/tcp", "127.0.0.1"),  # dual-stack [::], peer is ::ffff:127.0.0.1
    }[kind]
    s = server.start(["-v", spec])
    if kind == "v4mapped":
        assert s.addr_text("echo", "tcp").startswith("[::]:"), s.listeners
    port = s.port("echo", "tcp")
    c = connect((host, port), timeout=60)
    local = c.getsockname()
    peer_text = ("[%s]:%d" % local[:2]) if kind == "ipv6" else ("%s:%d" % local[:2])
    n, h = stream_through(c, big_data, timeout=60)
    c.close()
    assert n == len(big_data)
    assert h == big_hash
    # IPv4-mapped peers print as plain IPv4
    log = s.wait_log(lambda t: ("kodama: close echo tcp %s in=%d out=%d" % (peer_text, BIG, BIG))
                     in t.splitlines())
    assert "kodama: accept echo tcp %s" % peer_text in log.splitlines(), log
    assert "::ffff:" not in log
    s.stop()


@pytest.mark.valgrind
def test_v4mapped_accept_log(server):
    s = server.start(["-v", "echo@0/tcp"])
    with connect(("127.0.0.1", s.port("echo", "tcp"))) as c:
        port = c.getsockname()[1]
        c.sendall(b"hello")
        c.shutdown(socket.SHUT_WR)
        assert recv_until_eof(c) == b"hello"
    log = s.wait_log(lambda t: "kodama: close echo tcp 127.0.0.1:%d in=5 out=5" % port
                     in t.splitlines())
    assert "kodama: accept echo tcp 127.0.0.1:%d" % port in log.splitlines(), log
    # and a real IPv6 peer on the same listener prints bracketed
    with connect(("::1", s.port("echo", "tcp"))) as c:
        port6 = c.getsockname()[1]
        c.sendall(b"x")
        c.shutdown(socket.SHUT_WR)
        assert recv_until_eof(c) == b"x"
    s.wait_log(lambda t: "kodama: close echo tcp [::1]:%d in=1 out=1" % port6 in t.splitlines())
    s.stop()


@pytest.mark.valgrind
@pytest.mark.parametrize("kind", ["ipv4", "ipv6", "unix"])
def test_echo_half_close(server, sockdir, kind):
    spec = {"ipv4": "echo@127.0.0.1:0/tcp", "ipv6": "echo@[::1]:0/tcp",
            "unix": "echo@unix:" + os.path.join(sockdir, "e.sock")}[kind]
    s = server.start([spec])
    proto = "unix" if kind == "unix" else "tcp"
    payload = b"half-close test\n" * 2000 + b"tail without newline"
    with connect(s.addr("echo", proto)) as c:
        c.sendall(payload)
        c.shutdown(socket.SHUT_WR)
        assert recv_until_eof(c) == payload
    s.stop()


@pytest.mark.valgrind
def test_echo_interactive_small_messages(server):
    s = server.start(["echo@127.0.0.1:0/tcp"])
    with connect(s.addr("echo", "tcp")) as c:
        for i in range(200):
            m = b"line %d\n" % i
            c.sendall(m)
            assert recv_exact(c, len(m)) == m
        c.shutdown(socket.SHUT_WR)
        assert recv_until_eof(c) == b""
    s.stop()


@pytest.mark.valgrind
def test_echo_abstract_unix(server):
    name = "kodama-echo-%d-%d" % (os.getpid(), int(time.monotonic() * 1000))
    s = server.start(["echo@unix:@" + name])
    assert s.addr_text("echo", "unix") == "unix:@" + name
    with connect("\0" + name) as c:
        c.sendall(b"abstract")
        c.shutdown(socket.SHUT_WR)
        assert recv_until_eof(c) == b"abstract"
    s.stop()


def test_echo_bounded_memory(server):
    """A client that writes 20 MiB and reads nothing: the server holds at most its
    per-connection bound, keeps serving others, and loses nothing."""
    s = server.start(["echo@127.0.0.1:0/tcp"])
    sa = s.addr("echo", "tcp")
    # warm up: one full exchange so that lazy allocations are behind us
    with connect(sa) as w:
        w.sendall(b"w" * 200000)
        w.shutdown(socket.SHUT_WR)
        assert len(recv_until_eof(w)) == 200000
    time.sleep(0.2)
    rss0 = s.rss_kib()

    data = os.urandom(20 << 20)
    hog = connect(sa, timeout=60)
    errors = []

    def writer():
        try:
            hog.sendall(data)
            hog.shutdown(socket.SHUT_WR)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    t_end = time.monotonic() + 2.0
    peak = rss0
    other_ok = False
    while time.monotonic() < t_end:
        peak = max(peak, s.rss_kib())
        if not other_ok:
            with connect(sa, timeout=5) as o:
                o.sendall(b"are you there?")
                o.shutdown(socket.SHUT_WR)
                assert recv_until_eof(o) == b"are you there?"
            other_ok = True
        time.sleep(0.05)
    peak = max(peak, s.rss_kib())
    assert other_ok
    grown = peak - rss0
    assert grown < 8 * 1024, "server RSS grew by %d KiB (from %d KiB)" % (grown, rss0)

    # now read: every byte comes back, in order
    got = recv_until_eof(hog, limit=len(data) + 1)
    t.join(scaled(10))
    assert not errors, errors
    assert len(got) == len(data)
    assert sha256(got) == sha256(data)
    hog.close()
    s.stop()


def test_echo_2000_concurrent_clients(server):
    s = server.start(["echo@127.0.0.1:0/tcp"])
    t0 = time.monotonic()
    ok, failures = run_echo_clients(s.addr("echo", "tcp"), 2000, 10, timeout=30)
    assert not failures, "%d failures, first: %r" % (len(failures), failures[:5])
    assert ok == 2000
    assert time.monotonic() - t0 < scaled(30)
    # still healthy
    with connect(s.addr("echo", "tcp")) as c:
        c.sendall(b"after")
        c.shutdown(socket.SHUT_WR)
        assert recv_until_eof(c) == b"after"
    s.stop()


def test_echo_300_clients_log_balance(server):
    """With -v, 300 concurrent clients: every close line balances (in == out)."""
    s = server.start(["-v", "echo@127.0.0.1:0/tcp"])
    ok, failures = run_echo_clients(s.addr("echo", "tcp"), 300, 3, timeout=20)
    assert not failures and ok == 300, failures[:5]
    log = s.wait_log(lambda t: t.count("kodama: close echo tcp ") >= 300)
    closes = [l for l in log.splitlines() if l.startswith("kodama: close echo tcp ")]
    accepts = [l for l in log.splitlines() if l.startswith("kodama: accept echo tcp ")]
    assert len(closes) == 300 and len(accepts) == 300
    for l in closes:
        words = l.split()
        assert words[-2].startswith("in=") and words[-1].startswith("out="), l
        assert words[-2][3:] == words[-1][4:] != "0", l
    s.stop()


def test_unix_peer_logs_as_unix(server, sockdir):
    path = os.path.join(sockdir, "v.sock")
    s = server.start(["-v", "echo@unix:" + path])
    with connect(path) as c:
        c.sendall(b"12345")
        c.shutdown(socket.SHUT_WR)
        assert recv_until_eof(c) == b"12345"
    log = s.wait_log(lambda t: "kodama: close echo unix unix: in=5 out=5" in t.splitlines())
    assert "kodama: accept echo unix unix:" in log.splitlines(), log
    s.stop()


def test_host_name_binds_every_address_on_one_port(server):
    """echo@localhost:0 listens on each address the name resolves to, and with port 0
    the first ephemeral port is shared by the others (tcp and udp alike)."""
    addrs = require_localhost_name()
    s = server.start(["echo@localhost:0"])
    tcp = sorted(addr for svc, proto, addr, sa in s.listeners if proto == "tcp")
    udp = sorted(addr for svc, proto, addr, sa in s.listeners if proto == "udp")
    ports = {addr.rsplit(":", 1)[1] for addr in tcp + udp}
    assert len(ports) == 1, s.listeners
    port = ports.pop()
    want = sorted(("[%s]:%s" if ":" in a else "%s:%s") % (a, port) for a in addrs)
    assert tcp == want and udp == want, s.listeners
    for svc, proto, addr, sa in s.listeners:
        if proto == "tcp":
            c = connect(sa)
            c.sendall(b"named")
            c.shutdown(socket.SHUT_WR)
            assert recv_until_eof(c) == b"named"
            c.close()


def test_ipv6_only_flag_refuses_ipv4(server):
    """-6 on a bare PORT is [::] with IPV6_V6ONLY: ::1 is served, 127.0.0.1 is not;
    without -6 the same wildcard socket serves both."""
    s6 = server.start(["-6", "echo@0/tcp"])
    port = s6.port("echo", "tcp")
    c = connect(("::1", port))
    c.sendall(b"six")
    assert recv_exact(c, 3) == b"six"
    c.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=scaled(5))
    s6.stop()
    both = server.start(["echo@0/tcp"])
    for host in ("127.0.0.1", "::1"):
        c = connect((host, both.port("echo", "tcp")))
        c.sendall(b"dual")
        assert recv_exact(c, 4) == b"dual"
        c.close()
    both.stop()


def test_echo_lockstep_has_no_nagle_stalls(server):
    """A message that does not fill whole segments, echoed in lockstep: with Nagle on
    the server, its short tail waits for our delayed ACK (40 ms) every round."""
    s = server.start(["echo@127.0.0.1:0/tcp"])
    payload = os.urandom(16 * 1024 + 100)
    times = []
    with connect(s.addr("echo"), socket.AF_INET) as c:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(30):
            t0 = time.monotonic()
            c.sendall(payload)
            assert recv_exact(c, len(payload)) == payload
            times.append(time.monotonic() - t0)
    times.sort()
    assert times[len(times) // 2] < 0.02, "median round trip %.1f ms" % (times[len(times) // 2] * 1000)
    s.stop()
