"""serve --metrics: the HTTP responder (exact status lines), the counters against the
traffic the test sent, promtool's check of a real scrape, and a real Prometheus server
scraping kodama (kodama.1, METRICS)."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from kodama_helpers import (assert_usage_error, connect, free_port, recv_exact,
                            recv_until_eof, run_kodama, scaled, udp_exchange)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
KNOWN_REASONS = {"max_conns", "per_ip", "idle_timeout", "send_timeout", "udp_source_port",
                 "udp_own_port", "udp_rate"}


def http(addr, request, timeout=5.0):
    """Send request bytes to the metrics port, read to EOF; returns
    (status line, {header: value}, body bytes)."""
    with socket.create_connection(addr, timeout=scaled(timeout)) as s:
        s.sendall(request)
        data = recv_until_eof(s)
    head, sep, body = data.partition(b"\r\n\r\n")
    assert sep, "no end of head in %r" % data[:500]
    lines = head.decode("ascii").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(": ")
        assert name.lower() not in headers, "header %s twice" % name
        headers[name.lower()] = value
    return lines[0], headers, body


def get(addr, path="/metrics", method="GET"):
    return http(addr, ("%s %s HTTP/1.1\r\nHost: kodama\r\n\r\n" % (method, path)).encode())


def parse(body):
    """The exposition as {(name, ((label, value), ...)): float}; checks that every
    family has HELP and TYPE before its samples and that no series appears twice."""
    samples, typed, helped = {}, {}, set()
    for line in body.decode("utf-8").splitlines():
        if line.startswith("# HELP "):
            helped.add(line.split()[2])
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            assert name not in typed, "TYPE twice for " + name
            typed[name] = kind
            continue
        m = SAMPLE_RE.match(line)
        assert m, "not a sample line: %r" % line
        name, labels, value = m.groups()
        assert name in typed and name in helped, "no HELP/TYPE before %r" % line
        if typed[name] == "counter":
            assert name.endswith("_total"), name
        key = (name, tuple(sorted(LABEL_RE.findall(labels or ""))))
        assert key not in samples, "series twice: %r" % (key,)
        samples[key] = float(value)
    return samples


def value(samples, family, **labels):
    """The one series of family whose labels include these (a listener's series carry
    its name too)."""
    want = set(labels.items())
    found = [v for (n, ls), v in samples.items() if n == family and want <= set(ls)]
    assert len(found) == 1, "%d series %s%r in %s" % (
        len(found), family, labels, sorted(k for k in samples if k[0] == family))
    return found[0]


def scrape(addr):
    status, headers, body = get(addr)
    assert status == "HTTP/1.1 200 OK", (status, body[:300])
    return parse(body)


def wait_scrape(addr, pred, timeout, what):
    deadline = time.monotonic() + scaled(timeout)
    while True:
        samples = scrape(addr)
        if pred(samples):
            return samples
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s; last scrape: %r" % (what, samples))
        time.sleep(0.05)


def metrics_server(server, *args, threads=2):
    return server.start(["-t", str(threads), "--metrics", "127.0.0.1:0", *args])


# --------------------------------------------------------------------------- HTTP

def test_listening_line_before_ready(server):
    s = metrics_server(server, "echo@127.0.0.1:0/tcp")
    lines = s.log().splitlines()
    i = lines.index("kodama: ready")
    assert re.match(r"^kodama: listening metrics tcp 127\.0\.0\.1:\d+$", lines[i - 1]), lines
    assert s.port("metrics") != 0
    s.stop()


def test_ipv6_metrics_address(server):
    s = server.start(["--metrics", "[::1]:0", "echo@127.0.0.1:0/tcp"])
    assert s.addr_text("metrics").startswith("[::1]:")
    status, _, _ = get(("::1", s.port("metrics")))
    assert status == "HTTP/1.1 200 OK"
    s.stop()


@pytest.mark.valgrind
def test_get_metrics_response(server):
    s = metrics_server(server, "echo@127.0.0.1:0")
    status, headers, body = get(s.addr("metrics"))
    assert status == "HTTP/1.1 200 OK"
    assert headers == {"content-type": CONTENT_TYPE, "content-length": str(len(body)),
                       "connection": "close"}
    samples = parse(body)
    assert value(samples, "kodama_build_info", version="0.1.0") == 1
    assert value(samples, "process_open_fds") >= 5
    assert value(samples, "process_resident_memory_bytes") > 1 << 20
    start = value(samples, "process_start_time_seconds")
    assert time.time() - scaled(60) < start <= time.time() + 1, start
    s.stop()


def test_head_has_no_body(server):
    s = metrics_server(server, "echo@127.0.0.1:0/tcp")
    status, headers, body = get(s.addr("metrics"), method="HEAD")
    assert status == "HTTP/1.1 200 OK"
    assert headers["content-type"] == CONTENT_TYPE
    assert int(headers["content-length"]) > 1000
    assert body == b""
    s.stop()


@pytest.mark.parametrize("path,status_line", [
    ("/", "HTTP/1.1 404 Not Found"),
    ("/favicon.ico", "HTTP/1.1 404 Not Found"),
])
def test_head_of_an_error_has_no_body_either(server, path, status_line):
    """RFC 9110 9.3.2: a response to HEAD has no content, whatever its status; the
    body's bytes would be read as the start of the next response."""
    s = metrics_server(server, "echo@127.0.0.1:0/tcp")
    status, headers, body = get(s.addr("metrics"), path=path, method="HEAD")
    assert status == status_line
    assert int(headers["content-length"]) > 0
    assert body == b""
    s.stop()


@pytest.mark.parametrize("request_bytes,status_line", [
    (b"GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found"),
    (b"GET /metricsfoo HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found"),
    (b"GET /favicon.ico HTTP/1.0\r\n\r\n", "HTTP/1.1 404 Not Found"),
    (b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 405 Method Not Allowed"),
    (b"PUT /metrics HTTP/1.1\r\n\r\n", "HTTP/1.1 405 Method Not Allowed"),
    (b"GET /metrics HTTP/9.9\r\n\r\n", "HTTP/1.1 400 Bad Request"),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", "HTTP/1.1 400 Bad Request"),
    (b"GET /metrics HTTP/1.1\r\nX-Pad: " + b"a" * 9000 + b"\r\n\r\n",
     "HTTP/1.1 431 Request Header Fields Too Large"),
])
def test_error_status_lines(server, request_bytes, status_line):
    s = metrics_server(server, "echo@127.0.0.1:0/tcp")
    status, headers, body = http(s.addr("metrics"), request_bytes)
    assert status == status_line, (status, body)
    assert headers["connection"] == "close"
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert headers["content-length"] == str(len(body))
    assert body.endswith(b"\n") and b"kodama_" not in body
    if "405" in status_line:
        assert headers["allow"] == "GET, HEAD"
    else:
        assert "allow" not in headers
    # The server goes on answering.
    assert get(s.addr("metrics"))[0] == "HTTP/1.1 200 OK"
    s.stop()


def test_request_in_pieces(server):
    s = metrics_server(server, "echo@127.0.0.1:0/tcp")
    with socket.create_connection(s.addr("metrics"), timeout=scaled(5)) as c:
        for piece in (b"GE", b"T /met", b"rics HTTP/1.1\r\nHo", b"st: x\r\n", b"\r\n"):
            c.sendall(piece)
            time.sleep(0.05)
        data = recv_until_eof(c)
    assert data.startswith(b"HTTP/1.1 200 OK\r\n"), data[:200]
    s.stop()


@pytest.mark.parametrize("request_bytes", [
    b"GET /metrics HTTP/1.1\r\nHost: x\n\r\n",     # a bare LF, then the CRLF blank line
    b"GET /metrics HTTP/1.0\n\r\n",
])
def test_head_ending_in_lf_crlf_is_answered(server, request_bytes):
    """A line may end in a bare LF (as --control's parser allows): a head whose last
    line does is whole at the blank line after it, not left to time out unanswered."""
    s = metrics_server(server, "echo@127.0.0.1:0/tcp")
    with socket.create_connection(s.addr("metrics"), timeout=scaled(5)) as c:
        c.sendall(request_bytes)
        t0 = time.monotonic()
        data = recv_until_eof(c)
    assert data.startswith(b"HTTP/1.1 200 OK\r\n"), data[:200]
    assert time.monotonic() - t0 < 2.0
    s.stop()


def test_silent_client_is_closed_and_others_are_served(server):
    s = metrics_server(server, "echo@127.0.0.1:0/tcp")
    silent = [socket.create_connection(s.addr("metrics")) for _ in range(3)]
    t0 = time.monotonic()
    assert get(s.addr("metrics"))[0] == "HTTP/1.1 200 OK"   # not held up by them
    for c in silent:
        c.settimeout(scaled(10))
        assert c.recv(100) == b""                            # closed, without an answer
        c.close()
    waited = time.monotonic() - t0
    assert 4.0 < waited < scaled(8), waited
    s.stop()


def test_more_clients_than_slots_wait_their_turn(server):
    """Eight silent clients take every slot; a ninth waits in the backlog and is
    served once their time is up, and the echo service is never held up."""
    s = metrics_server(server, "echo@127.0.0.1:0/tcp")
    silent = [socket.create_connection(s.addr("metrics")) for _ in range(8)]
    time.sleep(0.2)
    with connect(s.addr("echo")) as e:
        e.sendall(b"still here")
        assert recv_exact(e, 10) == b"still here"
    t0 = time.monotonic()
    status, _, _ = get(s.addr("metrics"), "/metrics")
    assert status == "HTTP/1.1 200 OK"
    assert time.monotonic() - t0 > 3.0      # it had to wait for a slot
    for c in silent:
        c.close()
    s.stop()


# --------------------------------------------------------------------------- values

@pytest.mark.valgrind
@pytest.mark.parametrize("threads", [1, 2])
def test_a_quiet_servers_last_replies_are_counted_at_the_next_scrape(server, threads):
    """io_uring leaves the completion of a send made as it was submitted for the
    worker's next wake: with no more traffic, a scrape asks the workers to take it
    in first (it used to say 0 sent until another datagram came)."""
    s = metrics_server(server, "echo@127.0.0.1:0/udp", threads=threads)
    for i in range(3):
        reply, _ = udp_exchange(s.addr("echo", "udp"), b"quiet-%d" % i)
        assert reply == b"quiet-%d" % i
    time.sleep(0.2)     # the workers are asleep again
    udp = dict(service="echo", proto="udp", address=s.addr_text("echo", "udp"))
    samples = scrape(s.addr("metrics"))
    assert value(samples, "kodama_datagrams_received_total", **udp) == 3
    assert value(samples, "kodama_datagrams_sent_total", **udp) == 3
    assert value(samples, "kodama_sent_bytes_total", **udp) == 21


def test_counters_match_traffic(server):
    """Three tcp connections and four datagrams over two workers: exact sums."""
    s = metrics_server(server, "echo@127.0.0.1:0", threads=2)
    m = s.addr("metrics")
    tcp_bytes = 0
    for i in range(3):
        payload = b"x" * (1000 * (i + 1))
        with connect(s.addr("echo")) as c:
            c.sendall(payload)
            assert recv_exact(c, len(payload)) == payload
        tcp_bytes += len(payload)
    udp_bytes = 0
    for i in range(4):
        payload = b"datagram-%d" % i
        reply, _ = udp_exchange(s.addr("echo", "udp"), payload)
        assert reply == payload
        udp_bytes += len(payload)
    tcp = dict(service="echo", proto="tcp", address=s.addr_text("echo"))
    udp = dict(service="echo", proto="udp", address=s.addr_text("echo", "udp"))
    # A reply can reach us before its sender has counted it: wait for the counts that
    # come last (a connection closes after its bytes are counted).
    samples = wait_scrape(m, lambda x: value(x, "kodama_connections_active", **tcp) == 0
                          and value(x, "kodama_sent_bytes_total", **udp) >= udp_bytes, 5,
                          "the connections to close and the replies to be counted")
    assert value(samples, "kodama_connections_accepted_total", **tcp) == 3
    assert value(samples, "kodama_received_bytes_total", **tcp) == tcp_bytes
    assert value(samples, "kodama_sent_bytes_total", **tcp) == tcp_bytes
    assert value(samples, "kodama_accept_errors_total", **tcp) == 0
    assert value(samples, "kodama_datagrams_received_total", **udp) == 4
    assert value(samples, "kodama_datagrams_sent_total", **udp) == 4
    assert value(samples, "kodama_datagrams_send_failed_total", **udp) == 0
    assert value(samples, "kodama_received_bytes_total", **udp) == udp_bytes
    assert value(samples, "kodama_sent_bytes_total", **udp) == udp_bytes
    # Stream families are not about udp listeners, nor datagram ones about tcp.
    name = "echo-%d" % s.port("echo")
    assert ("kodama_connections_accepted_total", tuple(sorted(dict(udp, name=name).items()))) \
        not in samples
    assert ("kodama_datagrams_received_total", tuple(sorted(dict(tcp, name=name).items()))) \
        not in samples
    drops = {k[1]: v for k, v in samples.items() if k[0] == "kodama_drops_total"}
    assert set(drops.values()) == {0.0}, drops
    # Every reason for both listeners, whatever reasons a later kodama adds.
    reasons = {lst: {dict(k)["reason"] for k in drops if dict(k)["proto"] == lst}
               for lst in ("tcp", "udp")}
    assert reasons["tcp"] == reasons["udp"] >= KNOWN_REASONS, reasons
    assert len(drops) == 2 * len(reasons["tcp"]), drops
    s.stop()


def test_active_connections_gauge(server):
    s = metrics_server(server, "echo@127.0.0.1:0/tcp", threads=2)
    tcp = dict(service="echo", proto="tcp", address=s.addr_text("echo"))
    held = [connect(s.addr("echo")) for _ in range(5)]
    for c in held:
        c.sendall(b"a")
        assert recv_exact(c, 1) == b"a"
    samples = scrape(s.addr("metrics"))
    assert value(samples, "kodama_connections_active", **tcp) == 5
    for c in held:
        c.close()
    wait_scrape(s.addr("metrics"), lambda x: value(x, "kodama_connections_active", **tcp) == 0,
                5, "active back to 0")
    s.stop()


def test_drops_after_a_limit_refusal(server):
    s = metrics_server(server, "--max-conns", "1", "echo@127.0.0.1:0/tcp")
    tcp = dict(service="echo", proto="tcp", address=s.addr_text("echo"))
    held = connect(s.addr("echo"))
    held.sendall(b"a")
    assert recv_exact(held, 1) == b"a"
    for _ in range(2):
        try:        # the reset may come before connect() has returned
            with connect(s.addr("echo")) as c:
                assert c.recv(10) == b""
        except ConnectionResetError:
            pass
    samples = wait_scrape(s.addr("metrics"),
                          lambda x: value(x, "kodama_drops_total", reason="max_conns", **tcp) == 2,
                          5, "two max_conns drops")
    assert value(samples, "kodama_drops_total", reason="per_ip", **tcp) == 0
    assert value(samples, "kodama_connections_accepted_total", **tcp) == 1
    held.close()
    s.stop()


def test_udp_guard_drops_by_reason(server):
    s = metrics_server(server, "--limit-loopback", "--udp-rate", "1", "echo@127.0.0.1:0/udp")
    udp = dict(service="echo", proto="udp", address=s.addr_text("echo", "udp"))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        for i in range(5):
            u.sendto(b"burst-%d" % i, s.addr("echo", "udp"))
    def settled(x):
        return (value(x, "kodama_drops_total", reason="udp_rate", **udp)
                + value(x, "kodama_datagrams_sent_total", **udp)) == 5

    samples = wait_scrape(s.addr("metrics"), settled, 5, "five datagrams answered or dropped")
    assert value(samples, "kodama_datagrams_received_total", **udp) == 5
    assert value(samples, "kodama_drops_total", reason="udp_rate", **udp) >= 3, samples
    assert value(samples, "kodama_drops_total", reason="udp_source_port", **udp) == 0
    s.stop()


def test_labels_escaped_for_a_unix_path(server, sockdir):
    path = os.path.join(sockdir, 'a"b\\c')
    s = metrics_server(server, "echo@unix:" + path)
    status, _, body = get(s.addr("metrics"))
    assert status == "HTTP/1.1 200 OK"
    text = body.decode()
    assert ('kodama_connections_accepted_total{service="echo",proto="unix",address="unix:%s",'
            'name="echo-unix"} 0' % path.replace("\\", "\\\\").replace('"', '\\"')
            ) in text.splitlines(), text[:2000]
    s.stop()


def test_name_label_and_fault_counters(server):
    """Every listener's series carry its name (name=, else SERVICE-PORT, shared by a
    SPEC's sockets); kodama_faults_total counts what each fault acted on."""
    s = metrics_server(server, "hello@127.0.0.1:0/tcp,close-after=0,name=shut",
                       "echo@127.0.0.1:0,drop=1", threads=1)
    for _ in range(3):
        with connect(s.addr("hello")) as c:
            assert recv_until_eof(c) == b""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        for i in range(4):
            u.sendto(b"gone-%d" % i, s.addr("echo", "udp"))
    echo = "echo-%d" % s.port("echo")
    samples = wait_scrape(s.addr("metrics"), lambda x: value(
        x, "kodama_faults_total", name=echo, proto="udp", fault="drop") == 4, 5, "4 drops")
    assert value(samples, "kodama_faults_total", name="shut", fault="close-after") == 3
    assert value(samples, "kodama_faults_total", name="shut", fault="latency") == 0
    assert value(samples, "kodama_connections_accepted_total", name="shut") == 3
    assert value(samples, "kodama_datagrams_sent_total", name=echo) == 0
    # The tcp and udp sockets of a SPEC share its name; stream faults are not about udp.
    assert value(samples, "kodama_received_bytes_total", name=echo, proto="tcp") == 0
    assert not [k for k in samples if k[0] == "kodama_faults_total" and
                dict(k[1])["proto"] == "udp" and dict(k[1])["fault"] == "slice"]
    assert not [k for k in samples if k[0] == "kodama_faults_total" and
                dict(k[1])["proto"] == "tcp" and dict(k[1])["fault"] == "drop"]
    s.stop()


# --------------------------------------------------------------------------- usage

@pytest.mark.parametrize("addr,msg", [
    ("unix:/tmp/m", "--metrics 'unix:/tmp/m': not PORT, HOST:PORT or [IPV6]:PORT"),
    ("9100/udp", "--metrics '9100/udp': not PORT, HOST:PORT or [IPV6]:PORT"),
    ("nope", "--metrics 'nope': invalid port 'nope'"),
    ("127.0.0.1:99999", "--metrics '127.0.0.1:99999': invalid port '99999'"),
    ("::1:9100", "--metrics '::1:9100': an IPv6 address needs brackets, as in [::1]:7007"),
])
def test_metrics_usage_errors(addr, msg):
    assert_usage_error(run_kodama(["serve", "--metrics", addr, "echo@127.0.0.1:0"], timeout=5),
                       "kodama: " + msg, "serve")


def test_metrics_port_in_use_is_a_startup_failure():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = run_kodama(["serve", "--metrics", "127.0.0.1:%d" % port, "echo@127.0.0.1:0"],
                       timeout=10)
    assert r.rc == 1, r
    assert r.stderr == ("kodama: cannot listen on metrics tcp 127.0.0.1:%d: Address already in use\n"
                        % port), r


def test_metrics_name_that_does_not_resolve_is_a_startup_failure():
    """The line names HOST:PORT, as a listener's and --control's do."""
    r = run_kodama(["serve", "--metrics", "nosuch!host:9100", "echo@127.0.0.1:0"], timeout=10)
    assert r.rc == 1, r
    assert r.stderr.startswith("kodama: cannot listen on metrics tcp nosuch!host:9100: "), r
    assert len(r.stderr.splitlines()) == 1, r


# --------------------------------------------------------------------------- real tools

def test_promtool_accepts_a_real_scrape(server):
    promtool = shutil.which("promtool")
    if not promtool:
        pytest.skip("promtool is not installed (Debian package prometheus; scripts/deps.sh)")
    s = metrics_server(server, "--max-conns", "1", "echo@127.0.0.1:0", "hello@127.0.0.1:0/tcp")
    with connect(s.addr("echo")) as c:
        c.sendall(b"ping")
        assert recv_exact(c, 4) == b"ping"
    _, _, body = get(s.addr("metrics"))
    r = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True,
                       timeout=scaled(30))
    assert r.returncode == 0 and r.stdout == b"" and r.stderr == b"", r
    s.stop()


def prometheus_query(port, query):
    url = "http://127.0.0.1:%d/api/v1/query?%s" % (port, urllib.parse.urlencode({"query": query}))
    with urllib.request.urlopen(url, timeout=scaled(5)) as resp:
        doc = json.load(resp)
    assert doc["status"] == "success", doc
    return doc["data"]["result"]


def wait_query(port, query, pred, proc, log_path, timeout=30.0):
    deadline = time.monotonic() + scaled(timeout)
    last = None
    while time.monotonic() < deadline:
        assert proc.poll() is None, "prometheus exited with %s:\n%s" % (
            proc.returncode, open(log_path).read()[-4000:])
        try:
            last = prometheus_query(port, query)
            if pred(last):
                return last
        except OSError as e:     # not listening yet
            last = e
        time.sleep(0.2)
    raise AssertionError("prometheus: %s never as expected; last %r; log:\n%s"
                         % (query, last, open(log_path).read()[-4000:]))


def test_real_prometheus_scrapes_kodama(server, tmp_path):
    prometheus = "/usr/bin/prometheus"
    if not os.access(prometheus, os.X_OK):
        pytest.skip("prometheus is not installed (Debian package prometheus; scripts/deps.sh)")
    s = metrics_server(server, "echo@127.0.0.1:0")
    payload = b"p" * 12345
    with connect(s.addr("echo")) as c:
        c.sendall(payload)
        assert recv_exact(c, len(payload)) == payload
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: kodama\n    static_configs:\n"
        "      - targets: ['127.0.0.1:%d']\n" % s.port("metrics"))
    log_path = tmp_path / "prometheus.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([prometheus, "--config.file=%s" % config,
                                 "--storage.tsdb.path=%s" % (tmp_path / "data"),
                                 "--web.listen-address=127.0.0.1:%d" % port],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        up = wait_query(port, 'up{job="kodama"}', lambda r: r and r[0]["value"][1] == "1",
                        proc, log_path)
        assert up[0]["metric"]["instance"] == "127.0.0.1:%d" % s.port("metrics")
        query = 'kodama_received_bytes_total{service="echo",proto="tcp",address="%s"}' % (
            s.addr_text("echo"))
        got = wait_query(port, query, lambda r: bool(r), proc, log_path)
        assert got[0]["value"][1] == str(len(payload)), got
        sent = prometheus_query(port, query.replace("received", "sent"))
        assert sent[0]["value"][1] == str(len(payload)), sent
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(scaled(20))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    s.stop()
