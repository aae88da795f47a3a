"""Echo through a hostile path: a fault-injecting proxy (writes split down to one byte,
delays, one-second stalls) and, where the kernel has it, tc netem between two network
namespaces (loss and delay).

A run's faults come from a seed that every failure message shows; set
KODAMA_HOSTILE_SEED=N to replay it.
"""
import ctypes
import hashlib
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest

from faulty_proxy import DIRECTIONS, FaultyProxy
from kodama_helpers import scaled

TOTAL = 50 << 20
CONNS = 4
PER_CONN = TOTAL // CONNS

# The fault rates, chosen so that 50 MiB takes a few seconds of Python: about one chunk
# in eight is split (into up to 12 pieces, about a third of them one byte long), one
# write in a hundred waits 0..50 ms first, and each connection stalls once for a second,
# two of them on the way in and two on the way out.
FAULTS = dict(split_prob=0.5, one_byte_prob=0.35, max_pieces=12, delay_prob=0.03,
              max_delay=0.05, stall_seconds=1.0)

CLOSE_RE = re.compile(r"^kodama: close echo tcp (\S+) in=(\d+) out=(\d+)$")
ALLOWED_LOG_RE = re.compile(r"^kodama: (listening echo tcp \S+|ready|accept echo tcp \S+"
                            r"|close echo tcp \S+ in=\d+ out=\d+|stopping"
                            r"|max-conns \d+ \(from the descriptor limit\)"
                            # nothing refused, nothing timed out
                            r"|counters echo tcp \S+ accepted=\d+ bytes_in=\d+ bytes_out=\d+"
                            r" max_conns=0 per_ip=0 idle_timeout=0 send_timeout=0 bad_proxy_header=0"
                            r" tls_handshake=0 relay_target=0)$")


def run_seed():
    env = os.environ.get("KODAMA_HOSTILE_SEED")
    return int(env) if env else random.SystemRandom().randrange(1 << 32)


def first_difference(a, b):
    """Offset of the first byte where a and b differ (or the shorter length)."""
    n = min(len(a), len(b))
    lo = 0
    step = 1 << 16
    while lo < n and a[lo:lo + step] == b[lo:lo + step]:
        lo += step
    for i in range(lo, min(lo + step, n)):
        if a[i] != b[i]:
            return i
    return n


def check_log_clean(text, what):
    bad = [line for line in text.splitlines() if not ALLOWED_LOG_RE.match(line)]
    assert not bad, "%s: unexpected server log lines: %r\nlog:\n%s" % (what, bad[:10], text[-4000:])


class EchoClient:
    """One connection: a writer thread sends `data` in random-sized pieces then SHUT_WR;
    a reader thread reads to EOF into a buffer (one byte of room to spare)."""

    def __init__(self, sockaddr, data, rng, timeout):
        self.data = data
        self.sock = socket.create_connection(sockaddr, timeout=timeout)
        self.rng = rng
        self.buf = bytearray(len(data) + 1)
        self.received = 0
        self.eof = False
        self.errors = []
        self.done_at = None
        self.threads = [threading.Thread(target=self._write, daemon=True),
                        threading.Thread(target=self._read, daemon=True)]

    def start(self):
        for t in self.threads:
            t.start()

    def join(self, deadline):
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self.threads)

    def _write(self):
        try:
            mv = memoryview(self.data)
            off = 0
            while off < len(mv):
                k = self.rng.choice((1 << 10, 1 << 14, 1 << 16, 1 << 18, 1 << 20))
                self.sock.sendall(mv[off:off + k])
                off += k
            self.sock.shutdown(socket.SHUT_WR)
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.errors.append("writer: %r" % e)

    def _read(self):
        try:
            mv = memoryview(self.buf)
            while True:
                if self.received == len(self.buf):
                    self.errors.append("more than the %d bytes sent came back" % len(self.data))
                    return
                k = self.sock.recv_into(mv[self.received:])
                if k == 0:
                    self.eof = True
                    self.done_at = time.monotonic()
                    return
                self.received += k
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.errors.append("reader after %d bytes: %r" % (self.received, e))

    def problem(self):
        """None if every byte came back in order and then EOF, else why not."""
        if self.errors:
            return "; ".join(self.errors)
        if not self.eof:
            return "no EOF after %d of %d bytes" % (self.received, len(self.data))
        got = bytes(self.buf[:self.received])
        if got == self.data:
            return None
        off = first_difference(got, self.data)
        return ("got %d bytes (sha256 %s), sent %d (sha256 %s); first difference at offset %d"
                % (len(got), hashlib.sha256(got).hexdigest()[:16], len(self.data),
                   hashlib.sha256(self.data).hexdigest()[:16], off))


# --------------------------------------------------------------------------- the proxy itself

def test_faulty_proxy_self_test():
    """The proxy really splits writes down to single bytes that arrive on their own,
    stalls at the planned offset, and passes half-close on both ways."""
    seen = []           # (monotonic time, size) of each recv at the far end
    far = {}
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    lsock.settimeout(scaled(10))

    def far_end():
        try:
            c, _ = lsock.accept()
            c.settimeout(scaled(10))
            got = bytearray()
            while True:
                b = c.recv(65536)
                if not b:
                    break
                seen.append((time.monotonic(), len(b)))
                got += b
            far["data"] = bytes(got)
            c.sendall(b"bye")
            c.shutdown(socket.SHUT_WR)
            far["tail"] = c.recv(1)     # the proxy passes our EOF on: b""
            c.close()
        except BaseException as e:  # noqa: BLE001
            far["error"] = repr(e)

    t = threading.Thread(target=far_end, daemon=True)
    t.start()
    payload = random.Random(7).randbytes(40000)
    with FaultyProxy(lsock.getsockname(), seed=7, split_prob=1.0, one_byte_prob=0.4,
                     delay_prob=0.5, max_delay=0.005, stall_seconds=0.3,
                     stall_plan=[(0, "c2s", 10000), (0, "s2c", 1)]) as p:
        c = socket.create_connection(p.addr, timeout=scaled(10))
        for off in range(0, len(payload), 2000):
            c.sendall(payload[off:off + 2000])
            time.sleep(0.002)
        c.shutdown(socket.SHUT_WR)
        t0 = time.monotonic()
        reply = b""
        while True:
            b = c.recv(10)
            if not b:
                break
            reply += b
        reply_time = time.monotonic() - t0
        t.join(scaled(10))
        assert p.join(scaled(10)), "proxy pumps still running: " + p.summary()
        c.close()
    lsock.close()
    info = p.describe() + "\n" + p.summary()
    assert "error" not in far, far["error"] + "\n" + info
    assert not p.errors, "%r\n%s" % (p.errors, info)
    assert far["data"] == payload, info
    assert far["tail"] == b"", info
    assert reply == b"bye", info
    assert sum(size for _, size in seen) == len(payload)
    assert any(size == 1 for _, size in seen), "no 1-byte read at the far end: %r\n%s" % (
        sorted({size for _, size in seen})[:20], info)
    # the c2s stall: the far end's reads stop for ~0.3 s right after byte 10000
    total = 0
    gap = None
    for (t_prev, size), (t_next, _) in zip(seen, seen[1:]):
        total += size
        if total == 10000:
            gap = t_next - t_prev
    assert gap is not None and gap >= 0.2, "gap after byte 10000: %r\n%s" % (gap, info)
    # the s2c stall after the first byte of the reply
    assert reply_time >= 0.25, "reply came in %.3f s\n%s" % (reply_time, info)
    for d in DIRECTIONS:
        st = p.stats[d]
        assert st["stalls"] == 1 and st["eofs"] == 1 and st["splits"] > 0, info
    assert p.stats["c2s"]["one_byte_writes"] > 0 and p.stats["c2s"]["delays"] > 0, info
    assert p.stats["c2s"]["bytes"] == len(payload) and p.stats["s2c"]["bytes"] == 3, info


# --------------------------------------------------------------------------- 50 MiB through it

def test_echo_50mib_through_faulty_proxy(server):
    seed = run_seed()
    print("hostile path seed: %d (replay with KODAMA_HOSTILE_SEED=%d)" % (seed, seed))
    rng = random.Random(seed)
    data = rng.randbytes(TOTAL)
    # Each connection stalls once, in one direction; two connections each way.
    order = list(range(CONNS))
    rng.shuffle(order)
    plan = [(conn, DIRECTIONS[k % 2], rng.randrange(PER_CONN // 8, PER_CONN * 7 // 8))
            for k, conn in enumerate(order)]

    s = server.start(["-v", "echo@127.0.0.1:0/tcp"])
    t0 = time.monotonic()
    proxy = FaultyProxy(s.addr("echo", "tcp"), seed, stall_plan=plan,
                        io_timeout=scaled(60), **FAULTS)
    try:
        clients = []
        for i in range(CONNS):
            cl = EchoClient(proxy.addr, data[i * PER_CONN:(i + 1) * PER_CONN],
                            random.Random("%d/client/%d" % (seed, i)), scaled(60))
            clients.append(cl)
            cl.start()
        deadline = time.monotonic() + scaled(60)
        finished = [cl.join(deadline) for cl in clients]
        elapsed = time.monotonic() - t0
        info = "seed %d (replay with KODAMA_HOSTILE_SEED=%d), %.1f s; %s\n%s" % (
            seed, seed, elapsed, proxy.describe(), proxy.summary())
        assert all(finished), "clients still running at the deadline: %s\n%s" % (
            ["%d: %d bytes back" % (i, cl.received) for i, cl in enumerate(clients)], info)
        problems = ["connection %d: %s" % (i, why) for i, why in
                    enumerate(cl.problem() for cl in clients) if why]
        assert not problems, "\n".join(problems) + "\n" + info
        assert proxy.join(scaled(10)), "proxy pumps still running\n" + info
        assert not proxy.errors, "proxy errors: %r\n%s" % (proxy.errors, info)
        for cl in clients:
            cl.sock.close()
    finally:
        proxy.close()

    # The faults happened, in both directions.
    for d in DIRECTIONS:
        st = proxy.stats[d]
        assert st["bytes"] == TOTAL and st["eofs"] == CONNS, info
        assert st["splits"] > 0 and st["one_byte_writes"] > 0, info
        assert st["delays"] > 0, info
        assert st["stalls"] == CONNS // 2, info
    assert proxy.connections == CONNS, info

    # The server saw each connection whole, logged nothing amiss and stops cleanly.
    log = s.wait_log(lambda t: sum(1 for line in t.splitlines() if CLOSE_RE.match(line)) >= CONNS)
    closes = [CLOSE_RE.match(line).groups() for line in log.splitlines() if CLOSE_RE.match(line)]
    assert len(closes) == CONNS, "%r\n%s" % (closes, info)
    for peer, n_in, n_out in closes:
        assert int(n_in) == int(n_out) == PER_CONN, "%s in=%s out=%s\n%s" % (peer, n_in, n_out, info)
    text = s.stop()
    check_log_clean(text, info)
    print("hostile path: %s" % info)


# --------------------------------------------------------------------------- tc netem

NETEM = ["netem", "loss", "5%", "delay", "20ms"]
NETEM_BYTES = 2 << 20
NETEM_CONNS = 2
CLONE_NEWNET = 0x40000000

NETNS_CLIENT = r"""
import hashlib, json, random, socket, sys, threading
seed, per, host, port, conns, timeout = (int(sys.argv[1]), int(sys.argv[2]), sys.argv[3],
                                         int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]))
data = random.Random(seed).randbytes(per * conns)
results = [None] * conns

def one(i):
    mine = data[i * per:(i + 1) * per]
    try:
        s = socket.create_connection((host, port), timeout=timeout)
        def write():
            s.sendall(mine)
            s.shutdown(socket.SHUT_WR)
        w = threading.Thread(target=write, daemon=True)
        w.start()
        got = bytearray()
        while True:
            b = s.recv(65536)
            if not b:
                break
            got += b
        w.join(timeout)
        s.close()
        got = bytes(got)
        diff = None
        if got != mine:
            diff = next((k for k in range(min(len(got), per)) if got[k] != mine[k]),
                        min(len(got), per))
        results[i] = {"n": len(got), "sha": hashlib.sha256(got).hexdigest(),
                      "want": hashlib.sha256(mine).hexdigest(), "first_diff": diff}
    except Exception as e:
        results[i] = {"error": repr(e)}

ts = [threading.Thread(target=one, args=(i,)) for i in range(conns)]
for t in ts:
    t.start()
for t in ts:
    t.join()
print(json.dumps(results))
"""


def _ip(*args, check=True):
    r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise RuntimeError("ip %s: %s" % (" ".join(args), (r.stderr or r.stdout).strip()))
    return r


def _netns_entry(name):
    """A preexec_fn that moves the child into network namespace NAME."""
    libc = ctypes.CDLL(None, use_errno=True)
    path = "/run/netns/" + name

    def enter():
        fd = os.open(path, os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns " + path)
        finally:
            os.close(fd)
    return enter


def test_echo_through_netem_between_namespaces(server):
    """Two namespaces made here, joined by a veth pair whose both ends drop 5% and delay
    20 ms (tc netem): 2 MiB echoed over two connections comes back intact."""
    if os.geteuid() != 0:
        pytest.skip("netem part needs root (to make network namespaces); running as uid %d"
                    % os.geteuid())
    for tool in ("ip", "tc"):
        if not shutil.which(tool):
            pytest.skip("netem part needs `%s` (iproute2), which is not installed" % tool)
    tag = "%d-%04x" % (os.getpid(), random.SystemRandom().randrange(1 << 16))
    ns_srv, ns_cli = "kdh-srv-" + tag, "kdh-cli-" + tag
    srv_ip, cli_ip = "10.213.7.1", "10.213.7.2"
    made = []
    had_netns_dir = os.path.isdir("/run/netns")
    try:
        for ns in (ns_srv, ns_cli):
            r = _ip("netns", "add", ns, check=False)
            if r.returncode != 0:
                pytest.skip("netem part: `ip netns add` failed: %s" % r.stderr.strip())
            made.append(ns)
        r = _ip("-n", ns_srv, "link", "add", "kd0", "type", "veth", "peer", "name", "kd1",
                "netns", ns_cli, check=False)
        if r.returncode != 0:
            pytest.skip("netem part: cannot make a veth pair between namespaces: %s"
                        % r.stderr.strip())
        for ns, dev, ip in ((ns_srv, "kd0", srv_ip), (ns_cli, "kd1", cli_ip)):
            _ip("-n", ns, "addr", "add", ip + "/30", "dev", dev)
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "link", "set", dev, "up")
        for ns, dev in ((ns_srv, "kd0"), (ns_cli, "kd1")):
            cmd = ["tc", "qdisc", "add", "dev", dev, "root", *NETEM]
            r = _ip("netns", "exec", ns, *cmd, check=False)
            if r.returncode != 0:
                pytest.skip("tc netem is not available on this kernel (sch_netem, "
                            "CONFIG_NET_SCH_NETEM): `%s` said: %s; the netem part of the "
                            "hostile-path test did not run"
                            % (" ".join(cmd), (r.stderr or r.stdout).strip()))

        s = server.start(["-v", "echo@%s:0/tcp" % srv_ip], preexec_fn=_netns_entry(ns_srv))
        port = s.port("echo", "tcp")
        seed = run_seed()
        per = NETEM_BYTES // NETEM_CONNS
        t0 = time.monotonic()
        try:
            r = subprocess.run(["ip", "netns", "exec", ns_cli, sys.executable, "-c", NETNS_CLIENT,
                                str(seed), str(per), srv_ip, str(port), str(NETEM_CONNS),
                                str(scaled(60))],
                               capture_output=True, text=True, timeout=scaled(80))
        except subprocess.TimeoutExpired:
            pytest.fail("netns client still running after %.0f s (seed %d)" % (scaled(80), seed))
        elapsed = time.monotonic() - t0
        info = "seed %d (KODAMA_HOSTILE_SEED), %.1f s, qdisc %s on both ends" % (
            seed, elapsed, " ".join(NETEM))
        assert r.returncode == 0, "netns client failed (%s): %s %s" % (info, r.stdout, r.stderr)
        results = json.loads(r.stdout)
        for i, res in enumerate(results):
            assert "error" not in res, "connection %d: %s (%s)" % (i, res["error"], info)
            assert res["n"] == per and res["sha"] == res["want"], (
                "connection %d: got %d of %d bytes, first difference at %s (%s)"
                % (i, res["n"], per, res["first_diff"], info))
        log = s.wait_log(lambda t: sum(1 for line in t.splitlines()
                                       if CLOSE_RE.match(line)) >= NETEM_CONNS)
        for line in log.splitlines():
            m = CLOSE_RE.match(line)
            if m:
                assert m.group(1).startswith(cli_ip + ":"), line
                assert int(m.group(2)) == int(m.group(3)) == per, "%s (%s)" % (line, info)
        text = s.stop()
        check_log_clean(text, info)
        print("netem path: %s" % info)
    finally:
        for ns in made:
            _ip("netns", "del", ns, check=False)
        if made and not had_netns_dir:
            # `ip netns add` mounted /run/netns on itself; leave the host as found (a
            # chroot such as fresh-debian.sh's cannot be removed with it mounted).
            subprocess.run(["umount", "/run/netns"], capture_output=True, check=False)
