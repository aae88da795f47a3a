"""connect -l (wait for a peer and relay it, -k for one after another, udp, unix) and
connect -z (check which ports of a range accept, in parallel, bounded by -w)."""
import json
import os
import re
import signal
import socket
import subprocess
import time

import pytest

from kodama_helpers import (assert_usage_error, free_port, kodama_cmd, run_kodama,
                            sanitizer_problems, scaled)
from peers import FullBacklog, SilentUdp

LISTEN_LINE = re.compile(rb"^kodama: listening relay (tcp|udp|unix) (\S+)\n", re.M)


class Listener:
    """A running `kodama connect -l ...`, its listening line read."""

    def __init__(self, args, stdin=b""):
        self.p = subprocess.Popen(kodama_cmd("connect", *[str(a) for a in args]),
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        self.err = b""
        deadline = time.monotonic() + scaled(5)
        m = None
        while m is None:
            assert time.monotonic() < deadline, self.err
            chunk = os.read(self.p.stderr.fileno(), 4096)
            assert chunk, "connect -l exited: %r" % self.err
            self.err += chunk
            m = LISTEN_LINE.search(self.err)
        self.kind, self.addr = m.group(1).decode(), m.group(2).decode()
        if stdin is not None:
            self.p.stdin.write(stdin)
            self.close_stdin()

    def close_stdin(self):
        self.p.stdin.close()
        self.p.stdin = None     # communicate() must not flush it

    @property
    def port(self):
        return int(self.addr.rsplit(":", 1)[1])

    def finish(self, timeout=5, sig=None):
        if sig:
            self.p.send_signal(sig)
        try:
            out, err = self.p.communicate(timeout=scaled(timeout))
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.communicate()
            pytest.fail("connect -l did not end within %s s" % timeout)
        err = (self.err + err).decode()
        assert not sanitizer_problems(err, "connect -l"), err
        return self.p.returncode, out, err


def exchange(port, data, family=socket.AF_INET, host="127.0.0.1"):
    with socket.socket(family) as c:
        c.settimeout(scaled(5))
        c.connect((host, port))
        c.sendall(data)
        c.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            b = c.recv(65536)
            if not b:
                return got
            got += b


# --------------------------------------------------------------------------- listen

@pytest.mark.valgrind
def test_listen_tcp_one_peer():
    lst = Listener(["-l", "127.0.0.1", 0], stdin=b"from stdin\n")
    assert lst.kind == "tcp" and re.fullmatch(r"127\.0\.0\.1:\d+", lst.addr), lst.addr
    assert exchange(lst.port, b"from the peer\n") == b"from stdin\n"
    rc, out, err = lst.finish()
    assert rc == 0, err
    assert out == b"from the peer\n"
    assert err == "kodama: listening relay tcp %s\n" % lst.addr, err


def test_listen_wildcard_is_dual_stack():
    lst = Listener(["-l", 0])
    assert re.fullmatch(r"\[::\]:\d+", lst.addr), lst.addr
    assert exchange(lst.port, b"v6", socket.AF_INET6, "::1") == b""
    rc, out, _ = lst.finish()
    assert rc == 0 and out == b"v6"


def test_listen_keep_takes_peers_one_after_another():
    lst = Listener(["-l", "-k", "-v", "--json", "127.0.0.1", 0], stdin=None)
    lst.p.stdin.write(b"first only\n")
    lst.close_stdin()
    assert exchange(lst.port, b"peer one\n") == b"first only\n"
    assert exchange(lst.port, b"peer two\n") == b""     # stdin has ended: a FIN at once
    assert exchange(lst.port, b"peer three\n") == b""
    time.sleep(0.2)
    rc, out, err = lst.finish(sig=signal.SIGTERM)
    assert rc == 0, err
    assert out == b"peer one\npeer two\npeer three\n"
    objs = [json.loads(l) for l in err.splitlines() if l.startswith("{")]
    assert [j["bytes_in"] for j in objs] == [9, 9, 11], objs
    assert [j["verdict"] for j in objs] == ["ok"] * 3, objs
    assert len(re.findall(r"^kodama: connection from 127\.0\.0\.1 port \d+ \(tcp\)$", err, re.M)) == 3


def test_listen_keep_holds_the_next_peer_in_the_backlog():
    """One at a time: a second peer waits until the first leaves."""
    lst = Listener(["-l", "-k", "127.0.0.1", 0], stdin=None)
    a = socket.create_connection(("127.0.0.1", lst.port), timeout=5)
    a.sendall(b"A")
    time.sleep(0.2)
    b = socket.create_connection(("127.0.0.1", lst.port), timeout=5)
    b.sendall(b"B")
    time.sleep(0.3)
    a.close()
    b.shutdown(socket.SHUT_WR)
    time.sleep(0.3)
    b.close()
    lst.close_stdin()
    rc, out, err = lst.finish(sig=signal.SIGINT)
    assert rc == 0, err
    assert out == b"AB", out


def test_listen_udp_relays_the_first_peer():
    lst = Listener(["-l", "-u", "-w", "0.5", "127.0.0.1", 0], stdin=None)
    assert lst.kind == "udp"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
        u.settimeout(scaled(5))
        u.sendto(b"hello relay\n", ("127.0.0.1", lst.port))
        time.sleep(0.2)
        lst.p.stdin.write(b"to the first peer\n")
        lst.p.stdin.flush()
        assert u.recv(100) == b"to the first peer\n"
        other.sendto(b"not relayed\n", ("127.0.0.1", lst.port))
        u.sendto(b"again\n", ("127.0.0.1", lst.port))
        time.sleep(0.2)
        lst.close_stdin()
        rc, out, err = lst.finish()
    assert rc == 0, err
    assert out == b"hello relay\nagain\n"


@pytest.mark.parametrize("args", [["0"], ["-4", "0"], ["0.0.0.0", "0"]])
def test_listen_udp_wildcard_answers_from_the_address_used(args):
    """On a wildcard listener the peer that wrote to 127.0.0.2 gets its answers from
    127.0.0.2, and its later datagrams are still relayed (connecting the wildcard
    socket to the peer pinned it to the address routing picks, 127.0.0.1)."""
    lst = Listener(["-l", "-u", "-w", "0.5", *args], stdin=None)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.settimeout(scaled(5))
        u.sendto(b"one\n", ("127.0.0.2", lst.port))
        time.sleep(0.2)
        lst.p.stdin.write(b"reply\n")
        lst.p.stdin.flush()
        assert u.recvfrom(100) == (b"reply\n", ("127.0.0.2", lst.port))
        u.sendto(b"two\n", ("127.0.0.2", lst.port))
        time.sleep(0.2)
        lst.close_stdin()
        rc, out, err = lst.finish()
    assert rc == 0, err
    assert out == b"one\ntwo\n"


@pytest.mark.parametrize("args,family,to", [
    (["0"], socket.AF_INET, "127.0.0.2"), (["-4", "0"], socket.AF_INET, "127.0.0.2"),
    (["0.0.0.0", "0"], socket.AF_INET, "127.0.0.2"), (["0"], socket.AF_INET6, "::1")])
def test_listen_udp_wildcard_json_local_is_the_address_used(args, family, to):
    """--json's local is our end (kodama.1, --json): the address the peer wrote to,
    which the reply socket is bound to, not the wildcard."""
    lst = Listener(["-l", "-u", "-w", "0.5", "--json", *args], stdin=None)
    with socket.socket(family, socket.SOCK_DGRAM) as u:
        u.settimeout(scaled(5))
        u.sendto(b"one\n", (to, lst.port))
        time.sleep(0.2)
        lst.p.stdin.write(b"reply\n")
        lst.p.stdin.flush()
        data, src = u.recvfrom(100)
        assert (data, src[:2]) == (b"reply\n", (to, lst.port))
        peer_port = u.getsockname()[1]
        lst.close_stdin()
        rc, out, err = lst.finish()
    assert rc == 0, err
    j = json.loads(err.splitlines()[-1])
    fmt = "[%s]:%d" if family == socket.AF_INET6 else "%s:%d"
    peer = "::1" if family == socket.AF_INET6 else "127.0.0.1"
    assert (j["local"], j["peer"]) == (fmt % (to, lst.port), fmt % (peer, peer_port)), j


def test_listen_unix(sockdir):
    path = os.path.join(sockdir, "relay.sock")
    lst = Listener(["-l", "-U", path], stdin=b"over unix")
    assert lst.kind == "unix" and lst.addr == "unix:" + path
    with socket.socket(socket.AF_UNIX) as c:
        c.settimeout(5)
        c.connect(path)
        c.sendall(b"hi")
        c.shutdown(socket.SHUT_WR)
        assert c.recv(100) == b"over unix"
    rc, out, _ = lst.finish()
    assert rc == 0 and out == b"hi"
    assert not os.path.exists(path), "socket file left behind"


def test_listen_no_peer_within_w():
    r = run_kodama(["connect", "-l", "-w", "0.3", "127.0.0.1", 0])
    assert r.rc == 4, r
    m = re.fullmatch(r"kodama: listening relay tcp (127\.0\.0\.1:\d+)\n"
                     r"kodama: no peer on relay tcp \1 within 0\.3 s\n", r.stderr)
    assert m, r.stderr


def test_listen_port_in_use():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        r = run_kodama(["connect", "-l", "127.0.0.1", port])
    assert r.rc == 9, r
    assert r.stderr == ("kodama: cannot listen on relay tcp 127.0.0.1:%d: Address already in use\n"
                        % port), r


@pytest.mark.parametrize("args,msg", [
    (["-k", "127.0.0.1", "7"], "kodama: -k needs -l"),
    (["-l", "-k", "-u", "7"], "kodama: cannot use -k with -u (a udp peer never leaves)"),
    (["-l", "-z", "7"], "kodama: cannot use -l with -z"),
    (["-l", "-s", "127.0.0.1", "7"],
     "kodama: cannot use -s or -p with -l (name the address as [ADDR] PORT)"),
    (["-l"], "kodama: missing PORT"),
    (["-l", "127.0.0.1", "70000"], "kodama: invalid port '70000'"),
    (["-z", "-U", "/tmp/x"], "kodama: cannot use -z with -U"),
    (["-z", "127.0.0.1", "9-7"], "kodama: port range 9-7 runs backwards"),
    (["-z", "127.0.0.1", "0"], "kodama: invalid port '0'"),
])
def test_listen_scan_usage(args, msg):
    assert_usage_error(run_kodama(["connect", *args]), msg, "connect")


# --------------------------------------------------------------------------- scan

def free_range(n, kind=socket.SOCK_STREAM):
    """n consecutive ports free a moment ago, with a free port on either side."""
    for _ in range(50):
        base = free_port(kind=kind)
        if base + n + 1 > 65535:
            continue
        socks = []
        try:
            for p in range(base - 1, base + n + 1):
                s = socket.socket(socket.AF_INET, kind)
                socks.append(s)
                s.bind(("127.0.0.1", p))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        return base
    pytest.skip("no free run of %d ports" % (n + 2))


@pytest.mark.valgrind
def test_scan_tcp_range(server):
    base = free_range(3)
    server(["echo@127.0.0.1:%d-%d/tcp" % (base, base + 2)])
    r = run_kodama(["connect", "-z", "127.0.0.1", "%d-%d" % (base - 1, base + 3)])
    assert r.rc == 3, r     # the first port not open is refused
    assert r.stdout.decode() == "".join("127.0.0.1 port %d (tcp): %s\n" % (p, state) for p, state in [
        (base - 1, "refused"), (base, "open"), (base + 1, "open"), (base + 2, "open"),
        (base + 3, "refused")]), r.stdout
    assert r.stderr == "", r
    r = run_kodama(["connect", "-z", "127.0.0.1", "%d-%d" % (base, base + 2)])
    assert r.rc == 0, r


def test_scan_timeout_is_parallel_and_bounded():
    """Three ports whose SYNs are dropped, and -w 1: about one second in all, not three;
    and without -w, two seconds (not the kernel's two minutes)."""
    fbs = [FullBacklog() for _ in range(3)]
    try:
        for fb in fbs:
            r = run_kodama(["connect", "-z", "-w", "1", "127.0.0.1", fb.port])
            assert r.stdout == b"127.0.0.1 port %d (tcp): timeout\n" % fb.port, r
        ports = sorted(fb.port for fb in fbs)
        t0 = time.monotonic()
        r = run_kodama(["connect", "-z", "--json", "-w", "1", "127.0.0.1",
                        "%d-%d" % (ports[0], ports[-1])], timeout=30)
        took = time.monotonic() - t0
        assert r.rc in (3, 4), r
        objs = {j["port"]: j for j in map(json.loads, r.stdout.decode().splitlines())}
        assert all(objs[p]["state"] == "timeout" for p in ports), objs
        assert all(objs[p]["local"] is None and objs[p]["error"] ==
                   "connect to 127.0.0.1 port %d (tcp) failed: Connection timed out" % p
                   for p in ports), objs
        assert took < scaled(2.5), took
        t0 = time.monotonic()
        r = run_kodama(["connect", "-z", "127.0.0.1", fbs[0].port])
        assert r.rc == 4, r
        assert 1.8 < time.monotonic() - t0 < scaled(4)
    finally:
        for fb in fbs:
            fb.close()


def test_scan_json_one_object_per_port(server):
    base = free_range(2)
    server(["echo@127.0.0.1:%d/tcp" % base])
    r = run_kodama(["connect", "-z", "--json", "127.0.0.1", "%d-%d" % (base, base + 1)])
    assert r.rc == 3, r
    objs = [json.loads(l) for l in r.stdout.decode().splitlines()]
    assert [(j["port"], j["state"], j["verdict"], j["exit"]) for j in objs] == [
        (base, "open", "ok", 0), (base + 1, "refused", "refused", 3)], objs
    assert objs[0]["connect_ms"] is not None and objs[0]["peer"] == "127.0.0.1:%d" % base
    assert objs[0]["local"].startswith("127.0.0.1:") and objs[0]["error"] is None, objs[0]
    # A failed connect has no local end, and its error is the line send would print.
    assert objs[1]["local"] is None, objs[1]
    assert objs[1]["error"] == ("connect to 127.0.0.1 port %d (tcp) failed: Connection refused"
                                % (base + 1)), objs[1]


def test_scan_json_of_a_name_that_does_not_resolve_is_still_one_object_per_port():
    r = run_kodama(["connect", "-z", "--json", "nosuch!host", "80-82"])
    assert r.rc == 6, r
    assert r.stderr == "kodama: nosuch!host: Name or service not known\n", r
    objs = [json.loads(l) for l in r.stdout.decode().splitlines()]
    assert [(j["port"], j["state"], j["verdict"], j["error"]) for j in objs] == [
        (p, "resolve", "resolve", "nosuch!host: Name or service not known")
        for p in (80, 81, 82)], objs


def test_scan_local_failure_says_why_once():
    """A probe that cannot start (its source port is taken) is our failure, exit 9, with
    the reason on stderr once for all ports, as send says it, and in --json's error."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        p = taken.getsockname()[1]
        why = "cannot use source address 127.0.0.1 port %d: Address already in use" % p
        r = run_kodama(["connect", "-z", "--source", "127.0.0.1", "--source-port", p,
                        "127.0.0.1", "%d-%d" % (p, p + 1)])
        assert r.rc == 9, r
        assert r.stdout.decode() == ("127.0.0.1 port %d (tcp): local\n"
                                     "127.0.0.1 port %d (tcp): local\n" % (p, p + 1)), r
        assert r.stderr == "kodama: %s\n" % why, r
        r = run_kodama(["connect", "-z", "--json", "--source", "127.0.0.1", "--source-port", p,
                        "127.0.0.1", p])
        assert r.rc == 9, r
        j = json.loads(r.stdout)
        assert (j["verdict"], j["state"], j["local"], j["error"]) == ("local", "local", None, why), j


def test_scan_many_ports(server):
    """A range wider than the sockets kept open at once."""
    base = free_range(1)
    server(["echo@127.0.0.1:%d/tcp" % base])
    lo = max(1025, base - 300)
    r = run_kodama(["connect", "-z", "-w", "0.5", "127.0.0.1", "%d-%d" % (lo, base)], timeout=30)
    lines = r.stdout.decode().splitlines()
    assert len(lines) == base - lo + 1, len(lines)
    assert [int(l.split()[2]) for l in lines] == list(range(lo, base + 1))
    assert lines[-1] == "127.0.0.1 port %d (tcp): open" % base


def test_scan_udp(server):
    base = free_range(2, socket.SOCK_DGRAM)
    server(["echo@127.0.0.1:%d/udp" % base])
    with SilentUdp() as silent:
        r = run_kodama(["connect", "-z", "-u", "-w", "0.5", "127.0.0.1", "%d-%d" % (base, base + 1)])
        assert r.stdout.decode() == ("127.0.0.1 port %d (udp): open\n"
                                     "127.0.0.1 port %d (udp): refused\n" % (base, base + 1)), r
        assert r.rc == 3, r
        r = run_kodama(["connect", "-z", "-u", "-w", "0.5", "127.0.0.1", silent.port])
        assert r.stdout.decode() == "127.0.0.1 port %d (udp): open|filtered\n" % silent.port, r
        assert r.rc == 0, r     # open|filtered counts as open


def test_scan_unreachable():
    r = run_kodama(["connect", "-z", "255.255.255.255", "7-8"])
    assert r.rc == 8, r
    assert r.stdout == (b"255.255.255.255 port 7 (tcp): unreachable\n"
                        b"255.255.255.255 port 8 (tcp): unreachable\n"), r
