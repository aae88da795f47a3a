"""The hello service: a greeting, then a clean EOF, over tcp (v4, v6), unix and udp."""
import os
import secrets
import socket
import struct
import threading
import time

import pytest

from kodama_helpers import GREETING, connect, recv_until_eof, scaled, udp_exchange


def start_hello(server, sockdir, extra=()):
    path = os.path.join(sockdir, "hello.sock")
    name = "kodama-test-%d-%s" % (os.getpid(), secrets.token_hex(4))
    s = server.start([*extra, "hello@127.0.0.1:0", "hello@[::1]:0",
                      "hello@unix:" + path, "hello@unix:@" + name])
    return s, path, name


def stream_targets(s, path, name):
    """(label, sockaddr) of each stream listener, checking the printed addresses."""
    by_text = {text: sa for svc, proto, text, sa in s.listeners if proto in ("tcp", "unix")}
    assert "unix:" + path in by_text, s.listeners
    assert "unix:@" + name in by_text, s.listeners
    assert by_text["unix:" + path] == path
    assert by_text["unix:@" + name] == "\0" + name
    tcp = [sa for svc, proto, text, sa in s.listeners if proto == "tcp"]
    assert sorted(sa[0] for sa in tcp) == ["127.0.0.1", "::1"], s.listeners
    return [("ipv4", next(sa for sa in tcp if sa[0] == "127.0.0.1")),
            ("ipv6", next(sa for sa in tcp if sa[0] == "::1")),
            ("unix", path),
            ("abstract", "\0" + name)]


@pytest.mark.valgrind
def test_hello_stream_transports(server, sockdir):
    s, path, name = start_hello(server, sockdir)
    assert os.path.exists(path)
    for label, sa in stream_targets(s, path, name):
        with connect(sa) as c:
            got = recv_until_eof(c)
            assert got == GREETING, label
    s.stop()
    assert not os.path.exists(path), "unix socket file left after SIGTERM"


# The UDP guard's bound: a reply's wire bytes (payload + IP and UDP headers) at most
# three times the request's (RFC 9000 §8.1). Headers: IPv4 28 bytes, IPv6 48.
WIRE = {"127.0.0.1": 28, "::1": 48}


def udp_bound(host, request_len):
    return 3 * (request_len + WIRE[host]) - WIRE[host]


@pytest.mark.valgrind
@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_hello_udp(server, host):
    """With the UDP guard on (the default), short probes get the whole greeting:
    even an empty datagram may bring back 56 bytes over IPv4, 96 over IPv6."""
    s = server.start(["hello@%s:0/udp" % (host if host != "::1" else "[::1]")])
    dest = s.addr("hello", "udp")
    assert dest[0] == host
    for payload in (b"anything at all\n" * 10, b"x" * len(GREETING), b"hi\n", b""):
        reply, src = udp_exchange(dest, payload)
        assert reply == GREETING
        assert src[:2] == dest
    s.stop()


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_hello_udp_long_greeting_is_cut_at_three_times(server, host):
    """A greeting longer than the bound is cut to it, byte for byte."""
    msg = "".join(chr(ord("a") + i % 26) for i in range(500))
    s = server.start(["--message", msg, "hello@%s:0/udp" % (host if host != "::1" else "[::1]")])
    dest = s.addr("hello", "udp")
    for n in (0, 1, 10, 100):
        reply, _ = udp_exchange(dest, b"x" * n)
        assert reply == msg.encode()[:udp_bound(host, n)], (n, len(reply))
    reply, _ = udp_exchange(dest, b"x" * 200)
    assert reply == msg.encode()
    s.stop()


def test_hello_udp_guard_off_answers_any_datagram(server):
    s = server.start(["--udp-guard", "off", "hello@127.0.0.1:0/udp"])
    for payload in (b"x", b"", b"anything at all\n" * 10):
        reply, _ = udp_exchange(s.addr("hello", "udp"), payload)
        assert reply == GREETING
    s.stop()


def test_hello_message_escapes(server, sockdir):
    s = server.start(["--message", "hi\\tthere\\n", "hello@127.0.0.1:0", "hello@unix:"
                      + os.path.join(sockdir, "m.sock")])
    with connect(s.addr("hello", "tcp")) as c:
        assert recv_until_eof(c) == b"hi\tthere\n"
    with connect(s.addr("hello", "unix")) as c:
        assert recv_until_eof(c) == b"hi\tthere\n"
    reply, _ = udp_exchange(s.addr("hello", "udp"), b"?" * 10)
    assert reply == b"hi\tthere\n"
    s.stop()


def test_hello_message_all_escapes(server):
    s = server.start(["--message", "a\\r\\nb\\\\c\\td", "hello@127.0.0.1:0/tcp"])
    with connect(s.addr("hello", "tcp")) as c:
        assert recv_until_eof(c) == b"a\r\nb\\c\td"
    s.stop()


def _hello_with_upload(sa, size=1 << 20):
    """Send `size` bytes first (in a thread) while reading: the greeting, then a clean
    EOF, never a reset; the upload completes; then close."""
    data = os.urandom(size)
    errors = []
    c = connect(sa)

    def upload():
        try:
            c.sendall(data)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    t = threading.Thread(target=upload, daemon=True)
    t.start()
    time.sleep(0.05)  # let the upload get going before we read
    got = recv_until_eof(c)  # a ConnectionResetError here fails the test
    assert got == GREETING
    t.join(scaled(10))
    assert not t.is_alive(), "upload blocked: the server stopped reading"
    assert not errors, "upload failed: %r" % errors
    # still no reset after the whole upload went out
    time.sleep(0.1)
    assert c.recv(100) == b""
    c.close()


@pytest.mark.valgrind
def test_hello_client_sends_first_then_reads(server, sockdir):
    path = os.path.join(sockdir, "up.sock")
    s = server.start(["hello@127.0.0.1:0/tcp", "hello@[::1]:0/tcp", "hello@unix:" + path])
    for svc, proto, text, sa in s.listeners:
        _hello_with_upload(sa)
    s.stop()


def test_hello_upload_then_shutdown(server):
    """Client sends, half-closes, then reads: greeting then EOF."""
    s = server.start(["hello@127.0.0.1:0/tcp"])
    with connect(s.addr("hello", "tcp")) as c:
        c.sendall(b"some request\n" * 1000)
        c.shutdown(socket.SHUT_WR)
        assert recv_until_eof(c) == GREETING
    s.stop()


def test_hello_many_sequential_clients(server):
    s = server.start(["hello@127.0.0.1:0/tcp"])
    for _ in range(50):
        with connect(s.addr("hello", "tcp")) as c:
            assert recv_until_eof(c) == GREETING
    s.stop()


def test_hello_verbose_logs(server):
    s = server.start(["-v", "hello@127.0.0.1:0"])
    with connect(s.addr("hello", "tcp")) as c:
        port = c.getsockname()[1]
        assert recv_until_eof(c) == GREETING
    s.wait_log(lambda t: "kodama: accept hello tcp 127.0.0.1:%d" % port in t.splitlines())
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    uport = u.getsockname()[1]
    probe = b"hey" * 10
    reply, _ = udp_exchange(s.addr("hello", "udp"), probe, sock=u)
    u.close()
    assert reply == GREETING
    s.wait_log(lambda t: "kodama: datagram hello udp 127.0.0.1:%d in=%d out=%d"
               % (uport, len(probe), len(GREETING)) in t.splitlines())
    s.stop()


def test_hello_500_concurrent_clients(server):
    import selectors
    s = server.start(["hello@127.0.0.1:0/tcp"])
    sa = s.addr("hello", "tcp")
    sel = selectors.DefaultSelector()
    got = {}
    for i in range(500):
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(sa)
        got[c] = b""
        sel.register(c, selectors.EVENT_READ)
    done = []
    deadline = time.monotonic() + scaled(20)
    while len(done) < 500 and time.monotonic() < deadline:
        for key, _ in sel.select(0.5):
            c = key.fileobj
            b = c.recv(4096)  # a reset raises here and fails the test
            if b:
                got[c] += b
            else:
                sel.unregister(c)
                c.close()
                done.append(got[c])
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    sel.close()
    assert len(done) == 500
    assert all(g == GREETING for g in done)
    s.stop()


@pytest.mark.valgrind
def test_hello_idle_client_closed_within_5s(server):
    """A client that never half-closes: the server stops waiting after <= 5 s."""
    s = server.start(["-v", "hello@127.0.0.1:0/tcp"])
    with connect(s.addr("hello", "tcp")) as c:
        port = c.getsockname()[1]
        t0 = time.monotonic()
        assert recv_until_eof(c) == GREETING
        prefix = "kodama: close hello tcp 127.0.0.1:%d " % port
        s.wait_log(lambda t: any(l.startswith(prefix) for l in t.splitlines()), timeout=8)
        elapsed = time.monotonic() - t0
        assert elapsed <= 5.0 + scaled(1.0), "closed after %.2f s" % elapsed
    s.stop()


TCPI_SEGS_IN_OFFSET = 140   # struct tcp_info (linux/tcp.h): u32 tcpi_segs_in


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_hello_greeting_and_fin_share_one_segment(server, host):
    """The greeting is held back (MSG_MORE) until the shutdown that follows it, so the
    FIN rides in its segment: the client receives the SYN-ACK and one segment, not
    three (a segment and an ACK fewer per connection for the server to make)."""
    s = server.start(["hello@%s:0/tcp" % ("[::1]" if ":" in host else host)])
    counts = []
    for _ in range(10):
        with connect(s.addr("hello", "tcp")) as c:
            assert recv_until_eof(c) == GREETING
            info = c.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
            counts.append(struct.unpack_from("I", info, TCPI_SEGS_IN_OFFSET)[0])
    assert counts == [2] * 10, counts
    s.stop()
