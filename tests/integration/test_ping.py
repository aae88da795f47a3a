"""kodama ping: echo mode over tcp, udp and unix, connect mode, and what it says about
replies that are lost, late, duplicated or corrupt, against kodama serve and against
small peers here that misbehave on purpose. The probe format is the man page's."""
import json
import re
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

from kodama_helpers import (assert_usage_error, free_port, kodama_cmd, run_kodama,
                            sanitizer_problems, scaled)
from peers import TcpPeer

REPLY_RE = r"56 bytes from %s: seq=%d time=\d+\.\d{3} ms"
SUMMARY_RE = (r"\n--- %s ping statistics ---\n"
              r"%d probes, %d replies, %s%% loss, time \d+ ms\n")
RTT_RE = r"rtt min/avg/max/mdev = \d+\.\d{3}/\d+\.\d{3}/\d+\.\d{3}/\d+\.\d{3} ms\n"


@pytest.fixture
def srv(server, sockdir):
    s = server(["echo@127.0.0.1:0", "hello@127.0.0.1:0/tcp", "echo@unix:%s/e.sock" % sockdir])
    s.unix_path = "%s/e.sock" % sockdir
    return s


def probe_seq(data):
    """The sequence number in a probe (bytes 8..11)."""
    return struct.unpack(">I", data[8:12])[0]


class UdpPeer:
    """A udp echo on 127.0.0.1 that answers through reply(seq, data) -> list of
    (delay, bytes) to send back."""

    def __init__(self, reply):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.reply = reply
        self.stop = threading.Event()
        self.timers = []
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.stop.is_set():
            try:
                data, addr = self.sock.recvfrom(70000)
            except socket.timeout:
                continue
            except OSError:
                return
            for delay, out in self.reply(probe_seq(data), data):
                t = threading.Timer(delay, self._send, (out, addr))
                t.start()
                self.timers.append(t)

    def _send(self, out, addr):
        try:
            self.sock.sendto(out, addr)
        except OSError:
            pass

    def close(self):
        self.stop.set()
        self.t.join(5)
        for t in self.timers:
            t.cancel()
        self.sock.close()


@pytest.fixture
def udp_peer():
    peers = []

    def start(reply):
        p = UdpPeer(reply)
        peers.append(p)
        return p
    yield start
    for p in peers:
        p.close()


def records(c, size=56):
    """The probes a tcp peer receives, one at a time."""
    buf = b""
    while True:
        while len(buf) < size:
            b = c.recv(65536)
            if not b:
                return
            buf += b
        yield buf[:size]
        buf = buf[size:]


# --------------------------------------------------------------------------- echo mode

@pytest.mark.valgrind
def test_tcp_echo(srv):
    port = srv.port("echo", "tcp")
    r = run_kodama(["ping", "-c", 3, "-i", "0.05", "127.0.0.1", port])
    assert r.rc == 0, r
    assert r.stderr == "", r
    peer, name = "127.0.0.1:%d" % port, re.escape("127.0.0.1 port %d (tcp)" % port)
    assert re.fullmatch(r"PING %s: 56 data bytes\n" % name + "".join(
        REPLY_RE % (peer, i) + "\n" for i in range(3)) + SUMMARY_RE % (name, 3, 3, "0") + RTT_RE,
        r.stdout.decode()), r.stdout.decode()


def test_udp_echo(srv):
    port = srv.port("echo", "udp")
    r = run_kodama(["ping", "-u", "-c", 3, "-i", "0.05", "-s", 100, "127.0.0.1", port])
    assert r.rc == 0, r
    out = r.stdout.decode()
    name = re.escape("127.0.0.1 port %d (udp)" % port)
    assert out.startswith("PING 127.0.0.1 port %d (udp): 100 data bytes\n" % port), out
    assert len(re.findall(r"^100 bytes from 127\.0\.0\.1:%d: seq=[012] time=" % port, out, re.M)) == 3
    assert re.search(SUMMARY_RE % (name, 3, 3, "0") + RTT_RE, out), out


def test_unix_echo(srv):
    r = run_kodama(["ping", "-c", 2, "-i", "0", "-U", srv.unix_path])
    assert r.rc == 0, r
    out = r.stdout.decode()
    assert out.startswith("PING unix:%s: 56 data bytes\n" % srv.unix_path), out
    assert "2 probes, 2 replies, 0% loss" in out, out


def test_interval_zero_is_as_fast_as_replies(srv):
    r = run_kodama(["ping", "-c", 200, "-i", "0", "127.0.0.1", srv.port("echo", "tcp")])
    assert r.rc == 0, r
    assert "200 probes, 200 replies, 0% loss" in r.stdout.decode()
    assert r.elapsed < scaled(3), r.elapsed


def test_interval_is_kept(srv):
    t0 = time.monotonic()
    r = run_kodama(["ping", "-c", 4, "-i", "0.2", "127.0.0.1", srv.port("echo", "tcp")])
    assert r.rc == 0, r
    assert 0.55 < time.monotonic() - t0 < scaled(3)     # 3 intervals between 4 probes


def test_loss_and_exit_4(udp_peer):
    peer = udp_peer(lambda seq, data: [] if seq % 2 else [(0, data)])
    r = run_kodama(["ping", "-u", "-c", 4, "-i", "0.1", "-w", "0.3", "127.0.0.1", peer.port])
    assert r.rc == 4, r     # timeout: probes were lost
    out = r.stdout.decode()
    for seq in (1, 3):
        assert "no reply from 127.0.0.1:%d: seq=%d within 0.3 s\n" % (peer.port, seq) in out, out
    for seq in (0, 2):
        assert re.search(REPLY_RE % ("127.0.0.1:%d" % peer.port, seq), out), out
    assert "4 probes, 2 replies, 50% loss, time" in out, out


def test_duplicate_is_named_and_not_a_failure(udp_peer):
    peer = udp_peer(lambda seq, data: [(0, data), (0.02, data)] if seq == 1 else [(0, data)])
    r = run_kodama(["ping", "-u", "-c", 3, "-i", "0.1", "127.0.0.1", peer.port])
    assert r.rc == 0, r
    out = r.stdout.decode()
    assert re.search(r"^56 bytes from 127\.0\.0\.1:%d: seq=1 time=\S+ ms \(DUP!\)$" % peer.port,
                     out, re.M), out
    assert "3 probes, 3 replies, +1 duplicates, 0% loss" in out, out


def test_late_reply_is_named(udp_peer):
    peer = udp_peer(lambda seq, data: [(0.5, data)] if seq == 1 else [(0, data)])
    r = run_kodama(["ping", "-u", "-c", 4, "-i", "0.3", "-w", "0.2", "127.0.0.1", peer.port])
    assert r.rc == 4, r
    out = r.stdout.decode()
    lines = out.splitlines()
    lost = lines.index("no reply from 127.0.0.1:%d: seq=1 within 0.2 s" % peer.port)
    late = [i for i, l in enumerate(lines) if re.fullmatch(
        r"56 bytes from 127\.0\.0\.1:%d: seq=1 time=(\d+)\.\d{3} ms \(late\)" % peer.port, l)]
    assert late and late[0] > lost, out
    assert "4 probes, 3 replies, 1 late, 25% loss" in out, out


def test_corrupt_reply_is_a_mismatch():
    def flip_second(c):
        for data in records(c):
            if probe_seq(data) == 1:
                data = data[:30] + bytes([data[30] ^ 0x20]) + data[31:]
            c.sendall(data)

    peer = TcpPeer(flip_second)
    try:
        r = run_kodama(["ping", "-c", 3, "-i", "0.05", "127.0.0.1", peer.port])
    finally:
        peer.close()
    assert r.rc == 1, r     # mismatch
    out = r.stdout.decode()
    assert "56 bytes from 127.0.0.1:%d: corrupt reply (bad check)\n" % peer.port in out, out
    assert "no reply from 127.0.0.1:%d: seq=1 within 1 s" % peer.port in out, out
    assert "3 probes, 2 replies, 1 corrupt, 33.3333% loss" in out, out


def test_peer_closes_mid_run_is_a_reset():
    def close_after_one(c):
        data = next(records(c))
        c.sendall(data)

    peer = TcpPeer(close_after_one)
    try:
        r = run_kodama(["ping", "-c", 5, "-i", "0.1", "127.0.0.1", peer.port])
    finally:
        peer.close()
    assert r.rc == 5, r
    assert r.stderr == "kodama: 127.0.0.1 port %d (tcp) closed the connection\n" % peer.port, r
    assert "probes, 1 replies" in r.stdout.decode(), r


def test_udp_refused_each_probe():
    port = free_port(kind=socket.SOCK_DGRAM)
    r = run_kodama(["ping", "-u", "-c", 2, "-i", "0.1", "127.0.0.1", port])
    assert r.rc == 3, r     # refused: ICMP port unreachable
    out = r.stdout.decode()
    assert "from 127.0.0.1:%d: seq=0 Connection refused\n" % port in out, out
    assert "2 probes, 0 replies, 100% loss" in out, out


@pytest.mark.parametrize("mode, first", [
    (["-u"], "from 127.0.0.1:{port}: seq=0 Connection refused"),
    (["--connect"], "seq=0: connect to 127.0.0.1 port {port} (tcp) failed: Connection refused"),
])
def test_json_error_is_the_first_failed_probe(mode, first):
    """The per-probe lines are not printed with --json: "error" carries the first
    failure's, so that a script learns why as well as the verdict."""
    port = free_port(kind=socket.SOCK_DGRAM if mode == ["-u"] else socket.SOCK_STREAM)
    r = run_kodama(["ping", "--json", *mode, "-c", 2, "-i", "0.1", "-w", "0.5",
                    "127.0.0.1", port])
    assert r.rc == 3, r
    j = json.loads(r.stdout)
    assert j["verdict"] == "refused" and j["probes"] == 2, j
    assert j["error"] == first.format(port=port), j


def test_silent_udp_is_a_timeout():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
        r = run_kodama(["ping", "-u", "-c", 1, "-w", "0.3", "127.0.0.1", port])
    assert r.rc == 4, r
    assert "1 probes, 0 replies, 100% loss" in r.stdout.decode()
    assert "rtt" not in r.stdout.decode()


def test_json_error_of_a_run_that_only_lost_probes_is_the_first_loss():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
        r = run_kodama(["ping", "-u", "--json", "-c", 2, "-i", "0.1", "-w", "0.3",
                        "127.0.0.1", port])
    assert r.rc == 4, r
    j = json.loads(r.stdout)
    assert (j["verdict"], j["probes"], j["replies"]) == ("timeout", 2, 0), j
    assert j["error"] == "no reply from 127.0.0.1:%d: seq=0 within 0.3 s" % port, j


def test_json_error_of_a_connect_probe_with_no_first_byte():
    stop = threading.Event()
    peer = TcpPeer(lambda c: stop.wait(scaled(5)))
    try:
        r = run_kodama(["ping", "--connect", "--json", "-s", 0, "-c", 1, "-w", "0.3",
                        "127.0.0.1", peer.port])
    finally:
        stop.set()
        peer.close()
    assert r.rc == 4, r
    j = json.loads(r.stdout)
    assert j["error"] == "no first byte from 127.0.0.1:%d: seq=0 within 0.3 s" % peer.port, j


def test_v_tells_the_connection_on_stderr(srv):
    port = srv.port("echo", "tcp")
    r = run_kodama(["ping", "-v", "-c", 1, "127.0.0.1", port])
    assert r.rc == 0, r
    assert r.stderr == "kodama: connected to 127.0.0.1 port %d (tcp)\n" % port, r
    assert r.stdout.decode().startswith("PING 127.0.0.1 port %d (tcp): 56 data bytes\n56 bytes "
                                        "from 127.0.0.1:%d: seq=0 time=" % (port, port)), r
    r = run_kodama(["ping", "-c", 1, "127.0.0.1", port])
    assert r.rc == 0 and r.stderr == "", r


def test_refused_at_start():
    port = free_port()
    r = run_kodama(["ping", "-c", 2, "127.0.0.1", port])
    assert r.rc == 3, r
    assert r.stderr == "kodama: connect to 127.0.0.1 port %d (tcp) failed: Connection refused\n" % port
    assert r.stdout == b"PING 127.0.0.1 port %d (tcp): 56 data bytes\n" % port, r


@pytest.mark.parametrize("mode", [[], ["--connect"], ["-u"]])
def test_a_name_that_does_not_resolve_is_one_line_and_no_header(mode):
    r = run_kodama(["ping", *mode, "-c", 3, "-i", "0.1", "nosuch!host", 7])
    assert r.rc == 6, r
    assert r.stderr == "kodama: nosuch!host: Name or service not known\n", r
    assert r.stdout == b"", r
    r = run_kodama(["ping", *mode, "--json", "-c", 3, "-i", "0.1", "nosuch!host", 7])
    assert r.rc == 6, r
    j = json.loads(r.stdout)
    assert (j["verdict"], j["probes"], j["error"]) == \
        ("resolve", 0, "nosuch!host: Name or service not known"), j


def test_connect_mode_looks_the_name_up_once():
    port = free_port()
    r = run_kodama(["ping", "--connect", "--trace", "-c", 3, "-i", "0.05", "127.0.0.1", port])
    assert r.rc == 3, r
    assert r.stdout.decode().count("failed: Connection refused") == 3, r
    assert r.stderr.count("getaddrinfo(") == 1, r.stderr
    assert r.stderr.count("connect(") >= 3, r.stderr


def test_sigint_ends_with_the_summary(srv):
    p = subprocess.Popen(kodama_cmd("ping", "-i", "0.1", "127.0.0.1", srv.port("echo", "tcp")),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(scaled(0.55))
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=scaled(5))
    out, err = out.decode(), err.decode()
    assert not sanitizer_problems(err, "ping"), err
    assert p.returncode == 0, (out, err)
    m = re.search(r"^(\d+) probes, (\d+) replies, 0% loss", out, re.M)
    assert m and int(m.group(1)) >= 3 and m.group(1) == m.group(2), out


def test_json_summary(srv):
    port = srv.port("echo", "tcp")
    r = run_kodama(["ping", "--json", "-c", 3, "-i", "0", "127.0.0.1", port])
    assert r.rc == 0, r
    out = r.stdout.decode()
    assert out.count("\n") == 1, out        # one object, no other line
    j = json.loads(out)
    assert j["verdict"] == "ok" and j["exit"] == 0 and j["mode"] == "echo", j
    assert j["probes"] == 3 and j["replies"] == 3 and j["loss_pct"] == 0, j
    assert j["peer"] == "127.0.0.1:%d" % port and j["local"].startswith("127.0.0.1:"), j
    assert j["bytes_out"] == j["bytes_in"] == 3 * 56, j
    assert 0 < j["rtt_min_ms"] <= j["rtt_avg_ms"] <= j["rtt_max_ms"], j
    assert j["rtt_mdev_ms"] >= 0 and j["error"] is None, j


# --------------------------------------------------------------------------- connect mode

@pytest.mark.valgrind
def test_connect_mode_against_hello(srv):
    port = srv.port("hello", "tcp")
    r = run_kodama(["ping", "--connect", "-s", 0, "-c", 3, "-i", "0.05", "127.0.0.1", port])
    assert r.rc == 0, r
    out = r.stdout.decode()
    name = re.escape("127.0.0.1 port %d (tcp)" % port)
    lines = "".join(r"connected to 127\.0\.0\.1:%d: seq=%d connect=\d+\.\d{3} ms "
                    r"first_byte=\d+\.\d{3} ms\n" % (port, i) for i in range(3))
    assert re.fullmatch(r"PING %s: connect, 0 data bytes\n" % name + lines +
                        SUMMARY_RE % (name, 3, 3, "0") + RTT_RE +
                        RTT_RE.replace("rtt", "connect"), out), out


def test_connect_mode_against_echo(srv):
    r = run_kodama(["ping", "--connect", "--json", "-s", 20, "-c", 2, "-i", "0",
                    "127.0.0.1", srv.port("echo", "tcp")])
    assert r.rc == 0, r
    j = json.loads(r.stdout)
    assert j["mode"] == "connect" and j["replies"] == 2, j
    assert j["bytes_out"] == 40 and j["bytes_in"] == 40, j
    assert 0 < j["connect_min_ms"] <= j["rtt_min_ms"], j


def test_connect_mode_refused():
    port = free_port()
    r = run_kodama(["ping", "--connect", "-c", 2, "-i", "0.05", "127.0.0.1", port])
    assert r.rc == 3, r
    out = r.stdout.decode()
    for seq in (0, 1):
        assert ("seq=%d: connect to 127.0.0.1 port %d (tcp) failed: Connection refused\n"
                % (seq, port)) in out, out
    assert "2 probes, 0 replies, 100% loss" in out, out


def test_connect_mode_no_first_byte():
    stop = threading.Event()
    peer = TcpPeer(lambda c: stop.wait(scaled(5)))
    try:
        r = run_kodama(["ping", "--connect", "-s", 0, "-c", 1, "-w", "0.3", "127.0.0.1", peer.port])
    finally:
        stop.set()
        peer.close()
    assert r.rc == 4, r
    assert "no first byte from 127.0.0.1:%d: seq=0 within 0.3 s\n" % peer.port in r.stdout.decode()


def test_connect_mode_no_burst_after_a_slow_probe():
    """A probe that took longer than -i (here it waits out -w) is not made up for with
    a burst: the next ones still go -i apart, as in echo mode."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)
    ls.settimeout(scaled(10))
    accepted = []

    def serve():
        held = []
        for i in range(5):
            try:
                c, _ = ls.accept()
            except OSError:
                break
            accepted.append(time.monotonic())
            if i == 0:
                held.append(c)      # no first byte: the probe waits out -w 1
            else:
                c.sendall(b"hi\n")
                c.close()
        for c in held:
            c.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        r = run_kodama(["ping", "--connect", "-s", 0, "-c", 5, "-i", "0.2", "-w", "1",
                        "127.0.0.1", ls.getsockname()[1]], timeout=scaled(20))
        t.join(scaled(10))
    finally:
        ls.close()
    assert r.rc == 4, r     # the first probe's timeout
    gaps = [b - a for a, b in zip(accepted, accepted[1:])]
    assert len(gaps) == 4 and gaps[0] >= 0.9, (gaps, r)
    assert all(g >= 0.15 for g in gaps[1:]), (gaps, r)


# --------------------------------------------------------------------------- usage

@pytest.mark.parametrize("args,msg", [
    (["-s", "8", "127.0.0.1", "7"], "kodama: invalid -s '8': a probe needs at least 16 bytes"),
    (["-s", "70000", "127.0.0.1", "7"], "kodama: invalid -s '70000': too large"),
    (["-c", "0", "127.0.0.1", "7"], "kodama: invalid -c '0': too small"),
    (["-i", "x", "127.0.0.1", "7"], "kodama: invalid -i 'x': not a number of seconds"),
    (["--connect", "-u", "127.0.0.1", "7"],
     "kodama: cannot use --connect with -u (udp has no connection)"),
    (["127.0.0.1"], "kodama: missing PORT"),
    (["127.0.0.1", "7", "x"], "kodama: unexpected argument 'x'"),
])
def test_usage(args, msg):
    assert_usage_error(run_kodama(["ping", *args]), msg, "ping")
