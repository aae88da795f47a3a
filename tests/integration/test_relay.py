"""relay@ADDR,to=TARGET (kodama.1, SERVICES and FAULTS): 100 MiB round trips through it
to a kodama echo and to a socat echo, half-close passed both ways, a reset passed as a
reset, a target that refuses or never answers, clients that never read (memory stays
bounded), unix sockets on either side, the PROXY protocol in and out, and faults each
way."""
import os
import re
import shutil
import signal
import socket
import socketserver
import struct
import threading
import time

import pytest

from kodama_helpers import (assert_usage_error, connect, free_port, recv_exact,
                            recv_until_eof, run_kodama, scaled, sha256, stream_through)
from test_limits import counters
from peers import SocatEcho
from test_proxy import v1
from test_services import read_chargen_slowly


def relay(server, target, *opts, args=()):
    return server.start(["-t", "1", *args, "relay@127.0.0.1:0,to=%s%s" % (target, "".join(opts))])


def echo_target(server, *args):
    return server.start(["-t", "1", *args, "echo@127.0.0.1:0/tcp"])


class Target:
    """A one-connection target in a thread: accepts, then runs fn(conn)."""

    def __init__(self, fn, family=socket.AF_INET, path=None):
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        if path:
            self.sock.bind(path)
            self.addr = "unix:" + path
        else:
            self.sock.bind(("127.0.0.1", 0))
            self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.sock.listen(8)
        self.sock.settimeout(scaled(10))
        self.result = None
        self.error = None
        self.thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self.thread.start()

    def _run(self, fn):
        try:
            conn, _ = self.sock.accept()
            conn.settimeout(scaled(10))
            with conn:
                self.result = fn(conn)
        except BaseException as e:  # noqa: BLE001 - reported by join
            self.error = e

    def join(self):
        self.thread.join(scaled(15))
        self.sock.close()
        assert not self.thread.is_alive(), "target still running"
        if self.error:
            raise self.error
        return self.result


# --------------------------------------------------------------------------- streams

def test_100_mib_round_trip_to_a_kodama_echo(server):
    e = echo_target(server)
    r = relay(server, e.addr_text("echo"))
    data = os.urandom(1 << 20) * 100
    with connect(r.addr("relay"), timeout=60) as c:
        n, digest = stream_through(c, data, timeout=120)
    assert (n, digest) == (len(data), sha256(data))
    r.stop()
    e.stop()


def test_100_mib_round_trip_to_a_socat_echo(server, tmp_path):
    socat_log = tmp_path / "socat.log"
    with SocatEcho(log_path=socat_log) as socat:
        r = relay(server, "127.0.0.1:%d" % socat.port, args=["-v"])
        data = os.urandom(1 << 20) * 100
        try:
            with connect(r.addr("relay"), timeout=60) as c:
                n, digest = stream_through(c, data, timeout=120)
        except AssertionError as e:
            raise AssertionError("%s\nrelay's log:\n%s\nsocat's log:\n%s" % (
                e, r.log()[-3000:], socat_log.read_text(errors="replace")[-3000:])) from e
        assert (n, digest) == (len(data), sha256(data))
        r.stop()


def test_faults_toward_both_sides_keep_every_byte(server):
    """Shaped both ways, the buffers fill: each round trip must still finish (a relay
    that ran out of turns with bytes held once waited for an event that never came)."""
    e = echo_target(server)
    r = relay(server, e.addr_text("echo"), ",slice=3000~2000,up-slice=100~50,up-latency=1ms")
    data = os.urandom(1 << 20) * 2
    for _ in range(5):
        with connect(r.addr("relay"), timeout=20) as c:
            assert stream_through(c, data, timeout=20) == (len(data), sha256(data))
    r.stop()
    e.stop()


# --------------------------------------------------------------------------- half-close, reset

def test_half_close_from_the_client_reaches_the_target(server):
    def target(conn):
        got = recv_until_eof(conn)      # the client's FIN, passed on
        conn.sendall(b"still here: " + got)
        return got

    t = Target(target)
    r = relay(server, t.addr)
    with connect(r.addr("relay")) as c:
        c.sendall(b"hello")
        c.shutdown(socket.SHUT_WR)
        assert recv_until_eof(c) == b"still here: hello"
    assert t.join() == b"hello"
    r.stop()


def test_half_close_from_the_target_reaches_the_client(server):
    def target(conn):
        conn.sendall(b"first")
        conn.shutdown(socket.SHUT_WR)
        return recv_until_eof(conn)

    t = Target(target)
    r = relay(server, t.addr)
    with connect(r.addr("relay")) as c:
        assert recv_until_eof(c) == b"first"    # the target's FIN, passed on
        c.sendall(b"after the FIN")
        c.shutdown(socket.SHUT_WR)
        time.sleep(0.1)
    assert t.join() == b"after the FIN"
    r.stop()


def test_a_reset_from_the_target_is_a_reset_for_the_client(server):
    def target(conn):
        conn.sendall(b"bye")
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        time.sleep(0.1)

    t = Target(target)
    r = relay(server, t.addr)
    with connect(r.addr("relay")) as c:
        assert recv_exact(c, 3) == b"bye"
        with pytest.raises(ConnectionResetError):
            c.settimeout(scaled(5))
            while c.recv(100):
                pass
    t.join()
    r.stop()


def test_a_reset_from_the_client_is_a_reset_for_the_target(server):
    def target(conn):
        assert recv_exact(conn, 4) == b"ping"
        conn.sendall(b"pong")
        try:
            while conn.recv(100):
                pass
        except ConnectionResetError:
            return "reset"
        return "eof"

    t = Target(target)
    r = relay(server, t.addr)
    c = connect(r.addr("relay"))
    c.sendall(b"ping")
    assert recv_exact(c, 4) == b"pong"
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    c.close()
    assert t.join() == "reset"
    r.stop()


# --------------------------------------------------------------------------- the target down

def expect_reset_at_once(addr, most=1.0):
    t0 = time.monotonic()
    try:
        with connect(addr) as c:
            c.settimeout(scaled(5))
            with pytest.raises(ConnectionResetError):
                c.recv(10)
    except ConnectionResetError:
        pass        # before connect() even returned
    return time.monotonic() - t0


def test_a_target_that_refuses_ends_the_client_at_once(server):
    port = free_port()      # nothing listens there
    r = relay(server, "127.0.0.1:%d" % port, args=["-v"])
    for _ in range(3):
        assert expect_reset_at_once(r.addr("relay")) < 0.5
    log = r.stop()
    assert counters(log, "relay", "tcp")["relay_target"] == 3, log
    assert re.search(r"^kodama: dropped relay tcp 127\.0\.0\.1:\d+ from 127\.0\.0\.1:\d+: the "
                     r"relay's target 127\.0\.0\.1:%d refused \(Connection refused\)$" % port,
                     log, re.M), log


def stop_under_strace(s):
    """SIGTERM to the kodama that strace runs (strace itself blocks it): strace exits
    with kodama's status, which must be 0; returns the log."""
    with open("/proc/%d/task/%d/children" % (s.proc.pid, s.proc.pid)) as f:
        child = int(f.read().split()[0])
    os.kill(child, signal.SIGTERM)
    assert s.proc.wait(scaled(5)) == 0, s.log()
    log = s.log()
    assert "kodama: stopping" in log.splitlines(), log
    return log


def test_a_target_that_accepts_then_resets_is_told_apart_from_a_refusal(server):
    """The target accepts and resets before the relay looks at its connect: strace
    makes connect() return late, so the handshake and the reset both happen meanwhile
    and SO_ERROR says ECONNRESET. The relay says so, and resets the client as for a
    refusal (kodama.1, relay: connect-timeout)."""
    strace = shutil.which("strace")
    if not strace:
        pytest.skip("strace is not installed (scripts/deps.sh installs it)")

    def reset_at_once(conn):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    t = Target(reset_at_once)
    # LeakSanitizer cannot run under ptrace; ASan's other checks can.
    env = dict(os.environ, ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0")
    r = server.start(["-t", "1", "-v", "relay@127.0.0.1:0,to=" + t.addr], env=env, prefix=[
        strace, "-f", "-qq", "-o", "/dev/null", "-e", "trace=connect",
        "-e", "inject=connect:delay_exit=%d" % int(scaled(0.2) * 1e6)])
    expect_reset_at_once(r.addr("relay"))
    t.join()
    log = stop_under_strace(r)
    assert counters(log, "relay", "tcp")["relay_target"] == 1, log
    assert re.search(r"^kodama: dropped relay tcp 127\.0\.0\.1:\d+ from 127\.0\.0\.1:\d+: the "
                     r"relay's target %s accepted, then reset \(Connection reset by peer\)$"
                     % re.escape(t.addr), log, re.M), log


def test_a_target_that_never_answers_times_out(server):
    """A listener whose backlog is full drops the SYN: the connect never completes."""
    full = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    fillers = []
    for _ in range(4):
        f = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        f.setblocking(False)
        f.connect_ex(full.getsockname())
        fillers.append(f)
    time.sleep(0.2)
    try:
        r = relay(server, "127.0.0.1:%d" % full.getsockname()[1], ",connect-timeout=300ms")
        t = expect_reset_at_once(r.addr("relay"))
        assert 0.3 <= t <= 0.3 + scaled(0.5), t
        r.stop()
    finally:
        for f in fillers:
            f.close()
        full.close()


# --------------------------------------------------------------------------- --send-timeout

def test_a_client_that_reads_slowly_is_not_reset(server):
    """Through the relay as direct: --send-timeout is for a side that takes nothing,
    not one that takes 160 KB/s (whose every wait for room lasts seconds)."""
    g = server.start(["-t", "1", "--send-timeout", "0", "chargen@127.0.0.1:0/tcp"])
    r = relay(server, g.addr_text("chargen"), args=["-v", "--send-timeout", "1"])
    read_chargen_slowly(r.addr("relay"), 8192, 0.05, 4)
    log = r.stop()
    assert counters(log, "relay", "tcp")["send_timeout"] == 0, log


def test_a_client_that_reads_nothing_is_reset(server):
    g = server.start(["-t", "1", "--send-timeout", "0", "chargen@127.0.0.1:0/tcp"])
    r = relay(server, g.addr_text("chargen"), args=["-v", "--send-timeout", "1"])
    c = socket.socket()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    c.connect(r.addr("relay"))
    time.sleep(1.5 + scaled(1))
    c.settimeout(scaled(5))
    with pytest.raises(ConnectionResetError):
        while c.recv(65536):
            pass
    c.close()
    log = r.stop()
    assert counters(log, "relay", "tcp")["send_timeout"] == 1, log
    assert re.search(r"read nothing for 1 s while output waited \(--send-timeout\)$", log,
                     re.M), log


# --------------------------------------------------------------------------- bounded memory

@pytest.mark.parametrize("faults", ["", ",latency=1ms"])
def test_clients_that_never_read_keep_memory_bounded(server, faults):
    """20 clients of a relay to chargen read nothing: each direction holds at most its
    pipe or buffer (64 KiB), so the relay's memory stops growing."""
    g = server.start(["-t", "1", "chargen@127.0.0.1:0/tcp"])
    r = relay(server, g.addr_text("chargen"), faults, args=["--send-timeout", "0"])
    clients = []
    for _ in range(20):
        c = connect(r.addr("relay"))
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        clients.append(c)
    time.sleep(1.0)
    rss0 = r.rss_kib()
    time.sleep(1.5)
    grown = r.rss_kib() - rss0
    assert grown < 2048, "RSS grew %d KiB in 1.5 s with 20 silent clients" % grown
    assert r.rss_kib() < 64 * 1024
    # And they are all still served: each reads some chargen.
    for c in clients:
        c.settimeout(scaled(5))
        assert len(c.recv(100)) > 0
        c.close()
    r.stop()
    g.stop()


# --------------------------------------------------------------------------- unix, PROXY

def test_unix_sockets_on_either_side(server, sockdir):
    e = server.start(["-t", "1", "echo@unix:%s/echo.sock" % sockdir])
    r = server.start(["-t", "1", "relay@unix:%s/relay.sock,to=unix:%s/echo.sock" % (sockdir, sockdir)])
    with connect(r.addr("relay", "unix")) as c:
        data = os.urandom(300000)
        assert stream_through(c, data) == (len(data), sha256(data))
    r.stop()
    e.stop()


@pytest.mark.parametrize("opt", ["send-proxy", "send-proxy-v2"])
def test_send_proxy_names_the_client_to_the_target(server, opt):
    i = server.start(["-t", "1", "info@127.0.0.1:0/tcp+proxy"])
    r = relay(server, i.addr_text("info"), "," + opt)
    with connect(r.addr("relay")) as c:
        line = recv_until_eof(c).decode()
        port = c.getsockname()[1]
    assert "client=127.0.0.1:%d" % port in line, line
    r.stop()
    i.stop()


def test_proxy_in_and_out_carries_the_first_client(server):
    i = server.start(["-t", "1", "info@127.0.0.1:0/tcp+proxy"])
    r = server.start(["-t", "1", "relay@127.0.0.1:0/tcp+proxy,to=%s,send-proxy" % i.addr_text("info")])
    with connect(r.addr("relay")) as c:
        c.sendall(v1())
        line = recv_until_eof(c).decode()
    assert "client=192.0.2.1:56324" in line, line
    r.stop()
    i.stop()


# --------------------------------------------------------------------------- faults

def test_latency_toward_the_client_and_toward_the_target(server):
    e = echo_target(server)
    for opts, d in ((",latency=150ms", 0.15), (",up-latency=150ms", 0.15),
                    (",latency=100ms,up-latency=100ms", 0.2)):
        r = relay(server, e.addr_text("echo"), opts)
        with connect(r.addr("relay")) as c:
            c.sendall(b"x")             # the connect to the target is done by now
            recv_exact(c, 1)
            t0 = time.monotonic()
            c.sendall(b"ping")
            assert recv_exact(c, 4) == b"ping"
            t = time.monotonic() - t0
        assert d <= t <= d + scaled(0.1), (opts, t)
        r.stop()
    e.stop()


def test_up_close_after_cuts_what_the_target_gets(server):
    def target(conn):
        return len(recv_until_eof(conn))

    t = Target(target)
    r = relay(server, t.addr, ",up-close-after=1000")
    with connect(r.addr("relay")) as c:
        c.sendall(b"y" * 5000)
        time.sleep(0.2)
    assert t.join() == 1000
    r.stop()


def test_reset_after_toward_the_client(server):
    g = server.start(["-t", "1", "chargen@127.0.0.1:0/tcp"])
    r = relay(server, g.addr_text("chargen"), ",reset-after=5000")
    with connect(r.addr("relay")) as c:
        time.sleep(0.3)
        data = bytearray()
        with pytest.raises(ConnectionResetError):
            c.settimeout(scaled(5))
            while True:
                b = c.recv(65536)
                assert b, "EOF instead of a reset"
                data += b
        assert len(data) == 5000
    r.stop()
    g.stop()


def test_reset_after_toward_a_client_that_reset_first_closes_at_once(server):
    """As test_faults.py's test of the same name, through the relay. The client
    shuts down its side first: otherwise the relay, still reading it, hears the
    reset that way."""
    from test_faults import reset_by_a_peer_that_never_read
    g = server.start(["-t", "1", "chargen@127.0.0.1:0/tcp"])
    r = relay(server, g.addr_text("chargen"), ",reset-after=100000", args=["-v"])
    port = reset_by_a_peer_that_never_read(r.addr("relay"), half_close=True)
    r.wait_log(lambda t: re.search(r"close relay tcp 127\.0\.0\.1:%d .*out=100000\n" % port, t),
               timeout=1)
    r.stop()
    g.stop()


def test_close_after_toward_a_client_of_chargen_ends_when_the_client_has(server):
    """close-after=N: the client gets N bytes and a FIN; the relay throws away what
    the target still sends. Once the client's FIN has come (and gone up), nothing
    is owed to anyone: chargen never answers a FIN, and the relay used to read and
    discard its stream at full speed until the linger clock (5 s) ran out."""
    g = server.start(["-t", "1", "-v", "chargen@127.0.0.1:0/tcp"])
    r = relay(server, g.addr_text("chargen"), ",close-after=2000", args=["-v"])
    with connect(r.addr("relay")) as c:
        assert len(recv_until_eof(c)) == 2000
        port = c.getsockname()[1]
    r.wait_log(lambda t: re.search(r"close relay tcp 127\.0\.0\.1:%d in=0 out=2000\n" % port, t),
               timeout=1)
    g.wait_log(lambda t: "close chargen tcp" in t, timeout=1)
    r.stop()
    g.stop()


class CountingEcho(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """A python echo target (slower than kodama's, which widens the race below)
    that counts the connections it has open."""
    daemon_threads = True

    def __init__(self):
        self.open = 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), self.Handler)
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            with self.server.lock:
                self.server.open += 1
            try:
                while True:
                    data = self.request.recv(65536)
                    if not data:
                        break
                    self.request.sendall(data)
            except OSError:
                pass
            with self.server.lock:
                self.server.open -= 1


def test_every_target_connection_closes_when_its_client_resets(server):
    """Clients that send, read a little and close (a reset: their echo is unread).
    On io_uring, a watch's poll whose removal came while it was being woken
    (EALREADY) went on waiting: the relay's target socket stayed established, held
    by the ring with no descriptor left, and the target kept the connection."""
    t = CountingEcho()
    r = relay(server, "127.0.0.1:%d" % t.server_address[1])
    try:
        for _ in range(150):
            with connect(r.addr("relay"), timeout=0.3) as c:
                c.sendall(os.urandom(70000))
                assert c.recv(1000)
        deadline = time.monotonic() + scaled(3)
        while t.open and time.monotonic() < deadline:
            time.sleep(0.05)
        assert t.open == 0, "%d target connections still open" % t.open
        r.stop()
    finally:
        t.shutdown()
        t.server_close()


def test_control_sets_up_faults_on_a_relay(server):
    from test_control import ok_json
    e = echo_target(server)
    r = server.start(["-t", "1", "--control", "127.0.0.1:0",
                      "relay@127.0.0.1:0,to=%s,name=r" % e.addr_text("echo")])
    got = ok_json(r.addr("control"), "GET", "/faults/r")
    assert got["to"] == e.addr_text("echo") and got["service"] == "relay"
    ok_json(r.addr("control"), "PUT", "/faults/r", "up-latency=200ms")
    with connect(r.addr("relay")) as c:
        t0 = time.monotonic()
        c.sendall(b"ping")
        assert recv_exact(c, 4) == b"ping"
        assert time.monotonic() - t0 >= 0.2
    r.stop()
    e.stop()


@pytest.mark.parametrize("spec,msg", [
    ("relay@127.0.0.1:0", "relay needs to=HOST:PORT or to=unix:PATH in 'relay@127.0.0.1:0'"),
    ("relay@127.0.0.1:0/udp,to=127.0.0.1:7", "relay is a stream service (no /udp) in "
     "'relay@127.0.0.1:0/udp,to=127.0.0.1:7'"),
    ("echo@127.0.0.1:0,to=127.0.0.1:7", "'to' is for relay listeners in "
     "'echo@127.0.0.1:0,to=127.0.0.1:7'"),
])
def test_relay_usage_errors(spec, msg):
    assert_usage_error(run_kodama(["serve", spec]), "kodama: " + msg, "serve")


# --------------------------------------------------------------------------- byte counts

def reads_until_eof(conn):
    """Read conn to its end: (the bytes, how it ended: eof, reset or timeout)."""
    conn.settimeout(scaled(3))
    got = b""
    try:
        while True:
            b = conn.recv(65536)
            if not b:
                return got, "eof"
            got += b
    except socket.timeout:
        return got, "timeout"
    except ConnectionResetError:
        return got, "reset"


# up-slice=10 with no delay: each pump sends a slice before and after reading, so 16
# pumps (STEPS_PER_EVENT) move 10 + 15 * 20 = 310 bytes: the count is reached by the
# very last send of the event. 300 is reached mid-event (the control case).
@pytest.mark.parametrize("n,key,end", [(300, "up-close-after", "eof"),
                                       (310, "up-close-after", "eof"),
                                       (310, "up-reset-after", "reset"), (300, "up-reset-after", "reset")])
def test_count_reached_on_the_last_step_of_an_event(server, n, key, end):
    t = Target(reads_until_eof)
    r = relay(server, t.addr, ",up-slice=10,%s=%d" % (key, n))
    with connect(r.addr("relay")) as c:
        c.sendall(b"y" * n)       # exactly n: nothing is held once they are out
        assert t.join() == (b"y" * n, end)
    r.stop()


def test_reset_after_toward_a_client_that_reads_at_once(server):
    """kodama.1: reset-after=N is "a reset (RST) after N bytes out": the client gets
    the reset, not first a FIN (the cut passed on as one) that a client reading at
    once takes for a clean end."""
    e = server.start(["-t", "1", "echo@127.0.0.1:0/tcp"])
    r = relay(server, e.addr_text("echo"), ",reset-after=5")
    ends = []
    for _ in range(5):
        with connect(r.addr("relay")) as c:
            c.sendall(b"0123456789")
            got, end = reads_until_eof(c)
        assert got == b"01234", got
        ends.append(end)
    assert ends == ["reset"] * 5, ends
    r.stop()
    e.stop()


def test_reset_after_toward_a_client_of_chargen_that_reads_at_once(server):
    """The same with the bytes coming from the target (chargen) as fast as it can."""
    g = server.start(["-t", "1", "chargen@127.0.0.1:0/tcp"])
    r = relay(server, g.addr_text("chargen"), ",reset-after=200000")
    ends = []
    for _ in range(5):
        with connect(r.addr("relay")) as c:
            got, end = reads_until_eof(c)
        assert len(got) == 200000, len(got)
        ends.append(end)
    assert ends == ["reset"] * 5, ends
    r.stop()
    g.stop()
