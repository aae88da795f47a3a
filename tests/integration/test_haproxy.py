"""Behind a real HAProxy (Debian package haproxy; skipped if the binary is missing):
one frontend, three kodama echo backends with "+proxy", health checks that send the
PROXY header too.  Every backend must see each client's own address and port (the
clients bind distinct loopback addresses, 127.0.0.10 and up, so the health checks,
which come from 127.0.0.1, are never mistaken for them), echo its bytes intact, and
when one backend stops (SIGTERM), new clients go to the other two once HAProxy's
health check has marked it down.  The config is the one docs/SCALING.md shows."""
import os
import re
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from kodama_helpers import free_port, recv_exact, require_tool, scaled
from test_limits import counters

CONFIG = """\
global
    maxconn 500

defaults
    mode tcp
    timeout connect 2s
    timeout client 30s
    timeout server 30s

frontend echo
    bind 127.0.0.1:{port}
    default_backend kodama

backend kodama
    balance roundrobin
{servers}
"""
SERVER = ("    server k{i} 127.0.0.1:{port} {send} check check-send-proxy"
          " inter 200ms fall 1 rise 1")
ACCEPT_RE = re.compile(r"^kodama: accept echo tcp (127\.0\.0\.\d+):(\d+)$", re.M)


class HAProxy:
    def __init__(self, cfg_text, tmpdir):
        self.cfg = os.path.join(tmpdir, "haproxy.cfg")
        with open(self.cfg, "w") as f:
            f.write(cfg_text)
        fd, self.log_path = tempfile.mkstemp(prefix="haproxy-", suffix=".err", dir=tmpdir)
        with os.fdopen(fd, "wb") as err:
            self.proc = subprocess.Popen([require_tool("haproxy"), "-f", self.cfg, "-db"],
                                         stdin=subprocess.DEVNULL, stdout=err, stderr=err)

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_log(self, pattern, timeout):
        deadline = time.monotonic() + scaled(timeout)
        while not re.search(pattern, self.log()):
            assert self.proc.poll() is None, "haproxy exited:\n" + self.log()
            assert time.monotonic() < deadline, "no %r from haproxy:\n%s" % (pattern, self.log())
            time.sleep(0.05)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(scaled(5))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def haproxy(tmp_path):
    started = []

    def start(cfg_text):
        h = HAProxy(cfg_text, str(tmp_path))
        started.append(h)
        return h

    yield start
    for h in started:
        h.stop()


def wait_up(port, timeout=10.0):
    """Until the frontend answers an echo through some backend."""
    deadline = time.monotonic() + scaled(timeout)
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as c:
                c.sendall(b"up?")
                if recv_exact(c, 3) == b"up?":
                    return
        except (OSError, AssertionError):
            pass
        assert time.monotonic() < deadline, "nothing echoes through haproxy on %d" % port
        time.sleep(0.1)


def run_clients(port, first, n):
    """n clients at once, client i from 127.0.0.(first+i): each sends its own bytes and
    reads them back. Returns {(address, port): payload}."""
    clients = {}
    socks = []
    try:
        for i in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(scaled(10))
            s.bind(("127.0.0.%d" % (first + i), 0))
            s.connect(("127.0.0.1", port))
            payload = (b"client %d " % i) * (1 + i * 37) + bytes(range(256))
            s.sendall(payload)
            socks.append((s, payload))
            clients[s.getsockname()] = payload
        for s, payload in socks:
            assert recv_exact(s, len(payload)) == payload
    finally:
        for s, _ in socks:
            s.close()
    return clients


def seen_by(backend):
    return {(a, int(p)) for a, p in ACCEPT_RE.findall(backend.log())}


@pytest.mark.parametrize("send", ["send-proxy-v2", "send-proxy"])
def test_three_backends_behind_haproxy(server, haproxy, send):
    require_tool("haproxy")
    backends = [server.start(["-v", "-t", "1", "--drain-timeout", "2",
                              "echo@127.0.0.1:0/tcp+proxy"]) for _ in range(3)]
    front = free_port()
    servers = "\n".join(SERVER.format(i=i, port=b.addr("echo")[1], send=send)
                        for i, b in enumerate(backends))
    hap = haproxy(CONFIG.format(port=front, servers=servers))
    wait_up(front)

    clients = run_clients(front, 10, 60)
    seen = [seen_by(b) for b in backends]
    for addr in clients:
        owners = [i for i in range(3) if addr in seen[i]]
        assert len(owners) == 1, "client %s:%d seen by backends %s" % (addr + (owners,))
    per_backend = [len([a for a in clients if a in s]) for s in seen]
    assert per_backend == [20, 20, 20], per_backend     # roundrobin, all three up

    # One backend stops: it closes its listener at once and HAProxy's check sees it.
    backends[0].send_signal(signal.SIGTERM)
    hap.wait_log(r"Server kodama/k0 is DOWN", 10)
    before = [seen_by(b) for b in backends]
    clients = run_clients(front, 100, 30)
    after = [seen_by(b) for b in backends]
    assert not (after[0] - before[0]), "the stopped backend got clients"
    for addr in clients:
        assert addr in after[1] or addr in after[2], "client %s:%d seen nowhere" % addr
    assert backends[0].proc.wait(scaled(10)) == 0, backends[0].log()
    for b in backends[1:]:
        log = b.stop()
        assert counters(log, "echo", "tcp")["bad_proxy_header"] == 0, log
