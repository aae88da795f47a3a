"""The echo service over udp: sizes, reply source address, wildcard binds, -v log."""
import os
import time
import signal
import socket
import struct

import pytest

from kodama_helpers import recv_until_eof, scaled, udp_exchange

SIZES = [0, 1, 1472, 65507]


@pytest.mark.valgrind
@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_udp_echo_sizes(server, host):
    spec_host = "[::1]" if host == "::1" else host
    s = server.start(["echo@%s:0/udp" % spec_host])
    dest = s.addr("echo", "udp")
    assert dest[0] == host
    fam = socket.AF_INET6 if host == "::1" else socket.AF_INET
    with socket.socket(fam, socket.SOCK_DGRAM) as u:
        u.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        for size in SIZES:
            payload = os.urandom(size)
            reply, src = udp_exchange(dest, payload, sock=u)
            assert len(reply) == size
            assert reply == payload, size
            assert src[:2] == dest, (src, dest)
    s.stop()


def test_udp_echo_wildcard_dual_stack(server):
    s = server.start(["echo@0/udp"])
    text = s.addr_text("echo", "udp")
    assert text.startswith("[::]:"), text
    port = s.port("echo", "udp")
    for host in ("127.0.0.2", "127.0.0.1", "::1"):
        payload = b"to " + host.encode()
        reply, src = udp_exchange((host, port), payload)
        assert reply == payload
        assert src[0] == host and src[1] == port, "sent to %s, reply from %r" % (host, src)
    # a large one through the mapped path too
    payload = os.urandom(65507)
    reply, src = udp_exchange(("127.0.0.2", port), payload)
    assert reply == payload and src[:2] == ("127.0.0.2", port)
    s.stop()


def test_udp_echo_wildcard_ipv4_only(server):
    s = server.start(["-4", "echo@0/udp"])
    text = s.addr_text("echo", "udp")
    assert text.startswith("0.0.0.0:"), text
    port = s.port("echo", "udp")
    for host in ("127.0.0.2", "127.0.0.1"):
        reply, src = udp_exchange((host, port), b"v4 only")
        assert reply == b"v4 only"
        assert src[:2] == (host, port), src
    s.stop()


def test_udp_echo_ipv6_only_flag(server):
    s = server.start(["-6", "echo@0/udp"])
    assert s.addr_text("echo", "udp").startswith("[::]:"), s.listeners
    reply, src = udp_exchange(("::1", s.port("echo", "udp")), b"v6")
    assert reply == b"v6" and src[0] == "::1"
    s.stop()


def test_udp_echo_many_datagrams_one_socket(server):
    s = server.start(["echo@127.0.0.1:0/udp"])
    dest = s.addr("echo", "udp")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.settimeout(scaled(5))
        for i in range(300):
            m = b"dgram %d" % i
            u.sendto(m, dest)
            reply, src = u.recvfrom(2048)
            assert reply == m
    s.stop()


@pytest.mark.valgrind
def test_udp_echo_verbose_log(server):
    s = server.start(["-v", "echo@127.0.0.1:0/udp"])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
        reply, _ = udp_exchange(s.addr("echo", "udp"), b"hello", sock=u)
        assert reply == b"hello"
        reply, _ = udp_exchange(s.addr("echo", "udp"), b"", sock=u)
        assert reply == b""
    log = s.wait_log(lambda t: "kodama: datagram echo udp 127.0.0.1:%d in=0 out=0" % port
                     in t.splitlines())
    assert "kodama: datagram echo udp 127.0.0.1:%d in=5 out=5" % port in log.splitlines()
    s.stop()


def test_udp_and_tcp_same_spec(server):
    """No /proto: both tcp and udp listen and echo."""
    s = server.start(["echo@127.0.0.1:0"])
    reply, _ = udp_exchange(s.addr("echo", "udp"), b"udp!")
    assert reply == b"udp!"
    with socket.create_connection(s.addr("echo", "tcp"), timeout=scaled(5)) as c:
        c.sendall(b"tcp!")
        c.shutdown(socket.SHUT_WR)
        assert recv_until_eof(c) == b"tcp!"
    s.stop()


UDP_GRO = 104       # linux/udp.h: receive a GSO train whole, its segment size in a cmsg
SOL_UDP = 17


def _wait_stopped(pid):
    """Until every thread of pid has stopped (SIGSTOP takes effect asynchronously:
    a datagram sent at once could still be read alone)."""
    deadline = time.monotonic() + scaled(5)
    while time.monotonic() < deadline:
        states = []
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                states.append(f.read().rsplit(")", 1)[1].split()[0])
        if all(st in ("T", "t") for st in states):
            return
        time.sleep(0.001)
    raise AssertionError("server did not stop")


def _burst_while_stopped(s, senders, dest, count, size):
    """Queue count datagrams per sender, interleaved, while the server is stopped, so
    that it reads them in one batch; returns what each sent, in order."""
    sent = {u: [] for u in senders}
    s.proc.send_signal(signal.SIGSTOP)
    _wait_stopped(s.proc.pid)
    try:
        for i in range(count):
            for n, u in enumerate(senders):
                payload = bytes([65 + n]) * 2 + b"%04d" % i + os.urandom(size - 6)
                u.sendto(payload, dest)
                sent[u].append(payload)
        last = b"end"
        for u in senders:
            u.sendto(last, dest)
            sent[u].append(last)
    finally:
        s.proc.send_signal(signal.SIGCONT)
    return sent


def test_udp_echo_burst_from_several_peers_keeps_each_peers_order(server):
    """Replies to one peer may go out as one GSO send (epoll): every peer still gets
    each of its datagrams back whole, once, and in the order it sent them."""
    s = server.start(["echo@127.0.0.1:0/udp"])
    dest = s.addr("echo", "udp")
    senders = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
    try:
        for u in senders:
            u.bind(("127.0.0.1", 0))
            u.settimeout(scaled(5))
        sent = _burst_while_stopped(s, senders, dest, 20, 64)
        for u in senders:
            got = [u.recv(70000) for _ in sent[u]]
            assert got == sent[u]
            u.setblocking(False)
            with pytest.raises(BlockingIOError):
                u.recv(70000)       # nothing twice
    finally:
        for u in senders:
            u.close()
    s.stop()


@pytest.mark.parametrize("io", ["epoll", "uring"])
def test_udp_echo_sends_one_peers_replies_as_one_gso_train(server, io):
    """Equal replies to one peer read in one batch leave in one send with
    UDP_SEGMENT: a receiver with UDP_GRO sees them as one train of 64-byte segments
    (an ordinary receiver sees separate datagrams, as the test above checks)."""
    s = server.start(["--io", io, "echo@127.0.0.1:0/udp"])
    dest = s.addr("echo", "udp")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.setsockopt(SOL_UDP, UDP_GRO, 1)
        u.settimeout(scaled(5))
        sent = _burst_while_stopped(s, [u], dest, 20, 64)[u]
        data, segs = b"", []
        while len(data) < sum(len(p) for p in sent):
            chunk, anc, _, _ = u.recvmsg(70000, socket.CMSG_SPACE(4))
            data += chunk
            segs += [struct.unpack("=H", d[:2])[0] for lvl, typ, d in anc
                     if lvl == SOL_UDP and typ == UDP_GRO]
        assert data == b"".join(sent)
        assert segs and segs[0] == 64, segs     # 20 × 64 B (+ the short "end") in trains
    s.stop()


@pytest.mark.parametrize("io", ["epoll", "uring"])
def test_udp_echo_groups_interleaved_peers_into_one_train_each(server, io):
    """Replies to peers whose datagrams came interleaved (A B A B ...) in one batch
    are brought together per peer first. On epoll (one recvmmsg of 32) each peer
    gets its ten 64-byte replies and the short "end" as a single GSO train; on
    io_uring a batch ends where the receive buffers in the ring run out, and the
    ring starts small, so a peer's replies come in a few trains, never one by one."""
    s = server.start(["--io", io, "echo@127.0.0.1:0/udp"])
    dest = s.addr("echo", "udp")
    senders = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
    try:
        for u in senders:
            u.bind(("127.0.0.1", 0))
            u.setsockopt(SOL_UDP, UDP_GRO, 1)
            u.settimeout(scaled(5))
            u.sendto(b"warm-up", dest)
            assert u.recv(100) == b"warm-up"
        sent = _burst_while_stopped(s, senders, dest, 10, 64)
        for u in senders:
            want, data, trains = b"".join(sent[u]), b"", []
            while len(data) < len(want):
                chunk, anc, _, _ = u.recvmsg(70000, socket.CMSG_SPACE(4))
                data += chunk
                trains.append([struct.unpack("=H", d[:2])[0] for lvl, typ, d in anc
                               if lvl == SOL_UDP and typ == UDP_GRO])
            assert data == want
            if io == "epoll":
                assert trains == [[64]], trains
            else:
                assert len(trains) <= 4 and [64] in trains, trains
    finally:
        for u in senders:
            u.close()
    s.stop()
