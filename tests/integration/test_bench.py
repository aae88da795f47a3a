"""kodama bench: the load generator, black box, against kodama serve, socat and small
python servers that misbehave on purpose (a corrupted byte, a slow reply, a lost
or duplicated datagram). Every run is short (-d 0.5 or so)."""
import json
import re
import signal
import socket
import socketserver
import subprocess
import threading
import time

import pytest

from kodama_helpers import (GREETING, KODAMA, assert_usage_error, free_port, run_kodama,
                            sanitizer_problems, scaled)
from peers import SocatEcho
from test_docs import render_man_page

JSON_KEYS = {"mode", "target", "conns", "size", "depth", "threads", "rate", "duration_s",
             "msgs", "msgs_per_s", "bytes", "mib_per_s", "connections", "conns_per_s",
             "errors", "corrupt", "lost", "resets", "timeouts", "latency_us"}
LATENCY_KEYS = {"p50", "p90", "p99", "p999", "max", "mean"}
ERROR_KINDS = ("corrupt", "lost", "resets", "timeouts")


def bench(args, timeout=10.0):
    return run_kodama(["bench", *args], timeout=timeout)


def bench_json(args, rc=0, timeout=10.0):
    r = bench(["--json", *args], timeout=timeout)
    assert r.rc == rc, r
    out = r.stdout.decode()
    assert out.count("\n") == 1 and out.endswith("\n"), r
    j = json.loads(out)
    assert JSON_KEYS <= set(j), sorted(JSON_KEYS - set(j))
    assert set(j["latency_us"]) >= LATENCY_KEYS, j
    assert j["errors"] == sum(j[k] for k in ERROR_KINDS), j
    return j, r


def assert_clean(j, r):
    assert r.rc == 0, r
    assert r.stderr == "", r     # no progress line when stderr is not a terminal
    assert j["msgs"] > 0, j
    assert j["errors"] == 0 and all(j[k] == 0 for k in ERROR_KINDS), j


def assert_latency_ordered(j):
    lat = j["latency_us"]
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p999"] <= lat["max"], lat
    assert 0 < lat["mean"] <= lat["max"], lat


@pytest.fixture
def echo(server):
    return server(["echo@127.0.0.1:0"])


# --------------------------------------------------------------------------- python servers

class _Threading(socketserver.ThreadingMixIn):
    daemon_threads = True
    allow_reuse_address = True


class _TCP(_Threading, socketserver.TCPServer):
    pass


class _UDP(socketserver.UDPServer):
    allow_reuse_address = True


def serve_in_thread(srv):
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    return srv


@pytest.fixture
def py_server():
    """Factory: py_server(kind, handler) -> port of a server on 127.0.0.1 in a thread."""
    servers = []

    def start(kind, handler):
        cls = _TCP if kind == "tcp" else _UDP
        srv = serve_in_thread(cls(("127.0.0.1", 0), handler))
        servers.append(srv)
        return srv.server_address[1]

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def corrupting_echo(flip_at):
    """A tcp echo that flips one bit of byte flip_at of each connection's stream."""
    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            off = 0
            while True:
                try:
                    data = bytearray(self.request.recv(65536))
                except OSError:
                    return
                if not data:
                    return
                if off <= flip_at < off + len(data):
                    data[flip_at - off] ^= 0x20
                off += len(data)
                try:
                    self.request.sendall(data)
                except OSError:
                    return
    return Handler


def slow_echo(delay):
    """A tcp echo that answers each read delay seconds after it arrived."""
    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            while True:
                try:
                    data = self.request.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                time.sleep(delay)
                try:
                    self.request.sendall(data)
                except OSError:
                    return
    return Handler


def faulty_udp_echo(duplicate, drop):
    """A udp echo that sends datagram number `duplicate` twice and never answers `drop`."""
    count = [0]

    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            data, sock = self.request
            count[0] += 1
            if count[0] == drop:
                return
            sock.sendto(data, self.client_address)
            if count[0] == duplicate:
                sock.sendto(data, self.client_address)
    return Handler


# --------------------------------------------------------------------------- echo, udp, hello, unix

@pytest.mark.parametrize("conns,size,depth,threads", [(1, 64, 1, 1), (8, 1000, 16, 2),
                                                      (3, 100000, 2, 3)])
def test_echo_tcp_json(echo, conns, size, depth, threads):
    port = echo.port("echo")
    j, r = bench_json(["-d", "0.5", "-c", conns, "-s", size, "-p", depth, "-t", threads,
                       "127.0.0.1", port])
    assert_clean(j, r)
    assert (j["mode"], j["target"]) == ("echo", "127.0.0.1:%d" % port), j
    assert (j["conns"], j["size"], j["depth"], j["threads"], j["rate"]) == (
        conns, size, depth, threads, 0), j
    assert j["bytes"] == j["msgs"] * size, j
    assert j["connections"] == conns, j
    assert 0.45 <= j["duration_s"] <= 0.6, j
    assert j["msgs_per_s"] == pytest.approx(j["msgs"] / j["duration_s"], rel=0.01), j
    assert j["mib_per_s"] == pytest.approx(j["bytes"] / 2**20 / j["duration_s"], rel=0.01, abs=0.01)
    assert_latency_ordered(j)


def test_warmup_is_not_counted(echo):
    j, r = bench_json(["-d", "0.3", "--warmup", "0.3", "127.0.0.1", echo.port("echo")])
    assert_clean(j, r)
    assert 0.25 <= j["duration_s"] <= 0.4, j


@pytest.mark.valgrind
def test_udp(server):
    srv = server(["echo@127.0.0.1:0/udp"])
    j, r = bench_json(["-m", "udp", "-d", "0.5", "-c", 4, "-p", 8, "-s", 200,
                       "127.0.0.1", srv.port("echo", "udp")])
    assert_clean(j, r)
    assert j["mode"] == "udp" and j["connections"] == 4, j
    assert j["lost"] == 0 and j["bytes"] == j["msgs"] * 200, j
    assert_latency_ordered(j)


def test_udp_loss_and_duplicate_are_caught(py_server):
    port = py_server("udp", faulty_udp_echo(duplicate=30, drop=60))
    j, r = bench_json(["-m", "udp", "-d", "0.6", "-w", "0.2", "127.0.0.1", port], rc=1)
    assert j["lost"] == 1, j
    assert j["corrupt"] == 1, j
    assert j["msgs"] > 60, j
    assert "kodama: bench: 2 errors against 127.0.0.1:%d" % port in r.stderr, r


def echo_that_holds_on(hold):
    """A tcp echo that keeps its side open for hold seconds after the client's FIN."""
    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            while True:
                try:
                    data = self.request.recv(65536)
                    if not data:
                        break
                    self.request.sendall(data)
                except OSError:
                    return
            time.sleep(hold)
    return Handler


def test_the_probe_from_a_source_port_leaves_the_port_to_the_run(py_server):
    """bench's probe connects from --source-port too. Closed with a FIN, its end
    stayed in FIN_WAIT2 while this server held its own side open, and the run's
    first connect from that port failed with EADDRNOTAVAIL (exit 9, no message
    sent). The probe now resets its connection, which frees the port at once."""
    port = py_server("tcp", echo_that_holds_on(3))
    j, r = bench_json(["-c", 1, "-d", 0.3, "--source-port", free_port(), "127.0.0.1", port])
    assert_clean(j, r)
    assert j["connections"] == 1, j


@pytest.mark.valgrind
def test_a_reconnect_that_this_host_cannot_make_is_local_not_a_reset(server):
    """From one --source-port, the reconnect after a timeout finds our own end of the
    last connection in TIME_WAIT (EADDRNOTAVAIL): the run ends as a local failure,
    said on stderr, instead of counting resets the server never made."""
    srv = server(["echo@127.0.0.1:0/tcp,stall-after=640"])
    port = srv.port("echo", "tcp")
    src = free_port()
    j, r = bench_json(["-c", 1, "-d", 2, "-w", 0.1, "--source-port", src, "127.0.0.1", port],
                      rc=1)
    assert (j["msgs"], j["timeouts"], j["resets"]) == (10, 1, 0), j
    assert ("kodama: bench: cannot connect to 127.0.0.1:%d: Cannot assign requested address\n"
            % port) in r.stderr, r
    assert j["duration_s"] < 1, j


def test_a_server_that_stalls_in_the_last_w_is_a_timeout_not_a_clean_run(server):
    """What is in flight when the period ends gets its -w: a stall is counted."""
    srv = server(["echo@127.0.0.1:0/tcp,stall-after=640"])
    t0 = time.monotonic()
    j, r = bench_json(["-c", 1, "-d", 0.3, "-w", 0.5, "127.0.0.1", srv.port("echo", "tcp")],
                      rc=1)
    took = time.monotonic() - t0
    assert (j["msgs"], j["timeouts"], j["errors"]) == (10, 1, 1), j
    assert j["duration_s"] == pytest.approx(0.3, abs=0.05), j
    assert 0.45 < took < scaled(3), took


def test_a_udp_server_gone_silent_in_the_last_w_loses_its_datagrams():
    """It answers 200 datagrams, then nothing: the ones in flight at the end are lost
    once -w is up, not forgotten (the run used to end clean)."""
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    u.settimeout(scaled(5))

    def echo_then_silence():
        for _ in range(200):
            try:
                data, peer = u.recvfrom(2048)
            except OSError:
                return
            u.sendto(data, peer)

    th = threading.Thread(target=echo_then_silence, daemon=True)
    th.start()
    try:
        j, r = bench_json(["-m", "udp", "-c", 2, "-p", 4, "-d", 0.5, "-w", 0.5, "127.0.0.1",
                           u.getsockname()[1]], rc=1)
    finally:
        u.close()
    assert j["msgs"] <= 200 and j["lost"] == 8 and j["errors"] == 8, j


def test_a_healthy_run_ends_on_time_though_w_is_long(echo):
    t0 = time.monotonic()
    j, r = bench_json(["-c", 8, "-p", 4, "-d", 0.3, "-w", 20, "127.0.0.1", echo.port("echo")])
    assert_clean(j, r)
    assert time.monotonic() - t0 < scaled(3)


def test_hello(server):
    srv = server(["hello@127.0.0.1:0/tcp"])
    j, r = bench_json(["-m", "hello", "-d", "0.5", "-c", 4, "127.0.0.1", srv.port("hello")])
    assert_clean(j, r)
    assert j["mode"] == "hello" and j["connections"] > 0, j
    assert j["msgs"] <= j["connections"] + 4, j
    assert j["bytes"] == j["msgs"] * len(GREETING), j
    assert j["conns_per_s"] > 0, j
    assert_latency_ordered(j)


def test_hello_open_loop(server):
    srv = server(["hello@127.0.0.1:0/tcp"])
    j, r = bench_json(["-m", "hello", "-r", 400, "-d", "0.5", "-c", 4, "127.0.0.1",
                       srv.port("hello")])
    assert_clean(j, r)
    assert 170 <= j["msgs"] <= 230, j


@pytest.mark.valgrind
def test_unix(server, sockdir):
    path = sockdir + "/echo.sock"
    server(["echo@unix:" + path])
    j, r = bench_json(["-d", "0.5", "-c", 3, "-p", 4, "-U", path])
    assert_clean(j, r)
    assert j["target"] == "unix:" + path, j
    assert j["bytes"] == j["msgs"] * 64, j


def test_unix_hello(server, sockdir):
    path = sockdir + "/hello.sock"
    server(["hello@unix:" + path])
    j, r = bench_json(["-m", "hello", "-d", "0.3", "-c", 2, "-U", path])
    assert_clean(j, r)


# --------------------------------------------------------------------------- other servers

@pytest.fixture
def socat_echo():
    with SocatEcho(",backlog=4096") as socat:
        yield socat.port


def test_socat_echo(socat_echo):
    j, r = bench_json(["-d", "0.5", "-c", 2, "-p", 4, "-s", 300, "127.0.0.1", socat_echo])
    assert_clean(j, r)
    assert j["bytes"] == j["msgs"] * 300, j
    assert j["connections"] == 2, j


def test_corrupt_byte_is_caught(py_server):
    # One bit of the 1000th message of every connection's stream.
    port = py_server("tcp", corrupting_echo(flip_at=999 * 64 + 5))
    j, r = bench_json(["-d", "1", "-p", 8, "127.0.0.1", port], rc=1)
    assert j["msgs"] >= 999, j
    assert j["corrupt"] >= 1 and j["errors"] >= 1, j
    assert j["connections"] >= 2, j     # closed, then reopened
    assert "kodama: bench: %d errors against 127.0.0.1:%d: corrupt %d" % (
        j["errors"], port, j["corrupt"]) in r.stderr, r


def test_slow_server_latency(py_server):
    port = py_server("tcp", slow_echo(0.010))
    j, r = bench_json(["-d", "0.5", "127.0.0.1", port])
    assert_clean(j, r)
    assert 10000 <= j["latency_us"]["p50"] < 100000, j
    assert j["msgs"] <= 50, j


# --------------------------------------------------------------------------- open loop

def test_open_loop_rate(echo):
    j, r = bench_json(["-r", 200, "-d", "1", "127.0.0.1", echo.port("echo")])
    assert_clean(j, r)
    assert j["rate"] == 200, j
    assert 170 <= j["msgs"] <= 230, j


def test_open_loop_counts_from_the_intended_time(py_server):
    # The server answers at most ~100 msgs/s on one connection; 500/s are due. A
    # closed loop would see 10 ms; late messages must count their wait in the queue.
    port = py_server("tcp", slow_echo(0.010))
    j, r = bench_json(["-c", 1, "-p", 1, "-r", 500, "-d", "0.5", "127.0.0.1", port])
    assert_clean(j, r)
    assert j["msgs"] < 100, j
    assert j["latency_us"]["p50"] >= 50000, j
    assert j["latency_us"]["max"] >= 150000, j


def counting_echo(counts):
    """A tcp echo that adds each connection's received bytes to counts, when it ends."""
    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            total = 0
            try:
                while True:
                    data = self.request.recv(65536)
                    if not data:
                        return
                    total += len(data)
                    self.request.sendall(data)
            except OSError:
                return
            finally:
                counts.append(total)
    return Handler


def counting_udp_echo(counts):
    """A udp echo that counts the datagrams of each sender (by address)."""
    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            data, sock = self.request
            counts[self.client_address] = counts.get(self.client_address, 0) + 1
            sock.sendto(data, self.client_address)
    return Handler


def test_open_loop_spreads_messages_over_every_connection(py_server):
    # 4 connections with room for 16 each: every one carries its share of the
    # schedule, not the first one with room (which had them all).
    counts = []
    port = py_server("tcp", counting_echo(counts))
    j, r = bench_json(["-c", 4, "-p", 16, "-s", 64, "-r", 400, "-d", "1", "127.0.0.1", port])
    assert_clean(j, r)
    deadline = time.monotonic() + 5
    while len(counts) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    live = sorted(counts)[-4:]  # bench's probe connection, before the run, says nothing
    total = sum(live)
    assert sum(counts) == total == 64 * j["msgs"], (counts, j["msgs"])
    assert min(live) >= total // 4 - 64 * 2, counts


def test_open_loop_spreads_datagrams_over_every_socket(py_server):
    counts = {}
    port = py_server("udp", counting_udp_echo(counts))
    j, r = bench_json(["-m", "udp", "-c", 4, "-p", 16, "-s", 64, "-r", 400, "-d", "1", "127.0.0.1", port])
    assert_clean(j, r)
    live = sorted(counts.values())[-4:]     # and the probe's one datagram
    assert sum(live) == j["msgs"], (counts, j["msgs"])
    assert min(live) >= j["msgs"] // 4 - 2, counts


# --------------------------------------------------------------------------- failures

def test_refused():
    port = free_port()
    r = bench(["-d", "5", "127.0.0.1", port])
    assert r.rc == 3, r     # refused: nothing completed at all
    assert r.elapsed < 3, r
    assert r.stdout == b"", r
    assert r.stderr == "kodama: bench: cannot connect to 127.0.0.1:%d: Connection refused\n" % port


def run_bench_proc(args):
    return subprocess.Popen([KODAMA, "bench", *[str(a) for a in args]], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(p, timeout):
    try:
        out, err = p.communicate(timeout=scaled(timeout))
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        pytest.fail("kodama bench did not stop within %.1f s" % scaled(timeout))
    err = err.decode("utf-8", "replace")
    probs = sanitizer_problems(err, "kodama bench")
    assert not probs, probs[0]
    return p.returncode, out.decode(), err


def test_server_killed_mid_run(echo):
    port = echo.port("echo")
    p = run_bench_proc(["-d", "10", "-c", 4, "-t", 2, "--json", "127.0.0.1", port])
    time.sleep(scaled(0.5))
    echo.send_signal(signal.SIGKILL)
    t0 = time.monotonic()
    rc, out, err = finish(p, 5)
    assert time.monotonic() - t0 < scaled(3), err
    assert rc == 1, (out, err)
    j = json.loads(out)
    assert j["msgs"] > 0 and j["resets"] >= 1, j
    assert j["duration_s"] < 5, j
    assert "kodama: bench: cannot reconnect to 127.0.0.1:%d: Connection refused" % port in err, err


def test_sigint_prints_the_report_so_far(echo):
    p = run_bench_proc(["-d", "10", "127.0.0.1", echo.port("echo")])
    time.sleep(scaled(0.5))
    p.send_signal(signal.SIGINT)
    rc, out, err = finish(p, 3)
    assert rc == 0, (out, err)
    assert err == "", err
    m = re.search(r"^msgs (\d+) ", out, re.M)
    assert m and int(m.group(1)) > 0, out
    d = float(re.search(r" duration ([\d.]+)", out).group(1))
    assert 0.2 < d < 3, out


# --------------------------------------------------------------------------- text report

TEXT_LINES = [
    r"target 127\.0\.0\.1:\d+ mode echo conns 2 size 32 depth 3 threads 1 duration 0\.\d\d rate 0",
    r"msgs \d+ msgs/s \d+ MiB/s \d+\.\d\d bytes \d+",
    r"connections 2 conns/s \d+\.\d",
    r"errors 0 corrupt 0 lost 0 resets 0 timeouts 0",
    r"latency_us p50 [\d.]+ p90 [\d.]+ p99 [\d.]+ p99\.9 [\d.]+ max [\d.]+ mean [\d.]+",
]


def test_text_report(echo):
    r = bench(["-d", "0.3", "-c", 2, "-s", 32, "-p", 3, "127.0.0.1", echo.port("echo")])
    assert r.rc == 0 and r.stderr == "", r
    lines = r.stdout.decode().splitlines()
    assert len(lines) == len(TEXT_LINES), r
    for line, pat in zip(lines, TEXT_LINES):
        assert re.fullmatch(pat, line), (line, pat)
    msgs = int(lines[1].split()[1])
    assert int(lines[1].split()[7]) == msgs * 32


# --------------------------------------------------------------------------- usage

@pytest.mark.parametrize("args,first", [
    (["-m", "tcp", "h", "1"], "kodama: unknown mode 'tcp' (echo, udp or hello)"),
    (["-c", "0", "h", "1"], "kodama: invalid -c '0': less than 1"),
    (["-s", "0", "h", "1"], "kodama: invalid -s '0': less than 1"),
    (["-s", "1048577", "h", "1"], "kodama: invalid -s '1048577': more than 1048576"),
    (["-m", "udp", "-s", "65508", "h", "1"],
     "kodama: invalid -s '65508': more than a udp datagram holds (65507)"),
    (["-m", "udp", "-s", "8", "h", "1"],
     "kodama: invalid -s '8': udp needs at least 16 (sequence number and check)"),
    (["-p", "x", "h", "1"], "kodama: invalid -p 'x': not a number"),
    (["-d", "0", "h", "1"], "kodama: invalid -d '0': must be more than 0"),
    (["--warmup", "-1", "h", "1"], "kodama: invalid --warmup '-1': not a number of seconds"),
    (["-t", "3", "-c", "2", "h", "1"], "kodama: cannot use more threads (-t 3) than connections (-c 2)"),
    (["-m", "hello", "-s", "10", "h", "1"], "kodama: -s and -p do not apply to -m hello"),
    (["-U", "/tmp/x", "-m", "udp"], "kodama: cannot use -U with -m udp (unix sockets are stream only)"),
    ([], "kodama: missing HOST"),
    (["127.0.0.1"], "kodama: missing PORT"),
    (["127.0.0.1", "0"], "kodama: invalid port '0'"),
    (["127.0.0.1", "7", "extra"], "kodama: unexpected argument 'extra'"),
    (["-U", "/tmp/x", "extra"], "kodama: unexpected argument 'extra'"),
    (["--bogus", "h", "1"], "kodama: unknown option '--bogus'"),
    (["-c"], "kodama: option '-c' needs an argument"),
    # A bad TLS option's usage error stops bench, as it does send and ping.
    (["--tls", "--fingerprint", "zz", "127.0.0.1", "1"],
     "kodama: --fingerprint 'zz': not a SHA-256 fingerprint (64 hex digits, with or without "
     "a colon between each pair)"),
    (["--tls", "--sni", "", "127.0.0.1", "1"], "kodama: --sni '': not a name"),
    (["--tls", "--alpn", ",,", "127.0.0.1", "1"],
     "kodama: --alpn ',,': not a comma-separated list of names (of 1 to 255 bytes each)"),
])
def test_usage_errors(args, first):
    assert_usage_error(bench(args, timeout=5), first, "bench")


HELP_OPTIONS = ["-m", "-c", "-s", "-p", "-d", "-t", "-r", "--warmup", "-w", "-4", "-6", "-U",
                "-q", "--quiet", "--json", "-h", "--help"]


def test_help_lists_every_option():
    r = run_kodama(["bench", "--help"])
    assert r.rc == 0 and r.stderr == "", r
    out = r.stdout.decode()
    assert out.startswith("Usage: kodama bench "), out
    for opt in HELP_OPTIONS:
        assert re.search(r"^\s+(-\w, )?%s\b" % re.escape(opt), out, re.M), opt
    assert run_kodama(["help", "bench"]).stdout == r.stdout
    assert "bench" in run_kodama(["--help"]).stdout.decode()


def test_man_page_documents_every_bench_option():
    page = render_man_page().stdout.replace("\u2010", "-").replace("\u2212", "-")
    assert re.search(r"^\s+kodama bench", page, re.M), "no bench in the SYNOPSIS"
    for opt in HELP_OPTIONS:
        assert re.search(r"(?<![-\w])%s(?![-\w])" % re.escape(opt), page), opt
    for key in ("latency_us", "msgs_per_s", "conns_per_s", "p999", "timeouts"):
        assert key in page, key
