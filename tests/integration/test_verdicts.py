"""The verdicts (kodama.1, EXIT STATUS): the same exit status from every client
command for the same failure, each provoked on loopback as it happens on a real path:
0 ok, 1 mismatch, 3 refused, 4 timeout, 5 reset, 6 resolve, 8 unreachable, 9 local;
the --json object that carries the verdict; --source and --source-port."""
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import threading
import time

import pytest

from kodama_helpers import (assert_usage_error, free_port, kodama_cmd, run_kodama,
                            sanitizer_problems, scaled)
from peers import FullBacklog, SilentUdp, TcpPeer

JSON_KEYS = {"verdict", "exit", "proto", "host", "port", "local", "peer", "bytes_out",
             "bytes_in", "connect_ms", "first_byte_ms", "total_ms", "error"}
BAD_NAME = "nosuch!host"     # glibc refuses it without asking a resolver


@pytest.fixture
def srv(server):
    return server(["echo@127.0.0.1:0", "hello@127.0.0.1:0/tcp", "chargen@127.0.0.1:0/tcp"])


def one_json(text):
    lines = text.splitlines()
    assert len(lines) == 1, text
    j = json.loads(lines[0])
    assert set(j) >= JSON_KEYS, sorted(JSON_KEYS - set(j))
    return j


def echo_then(extra, delay=0.0, close=True):
    """A tcp peer that echoes what it gets, then sends extra (after delay)."""
    def behaviour(c):
        data = c.recv(65536)
        c.sendall(data)
        if delay:
            time.sleep(delay)
        if extra:
            c.sendall(extra)
        if close:
            c.shutdown(socket.SHUT_WR)
            c.recv(1)
        else:
            time.sleep(scaled(3))
    return behaviour


def reset_after_reading(c):
    c.recv(65536)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


# --------------------------------------------------------------------------- 1 mismatch

def test_mismatch_wrong_reply(srv):
    port = srv.port("hello", "tcp")
    for cmd in (["send"], ["send", "--json"]):
        r = run_kodama([*cmd, "127.0.0.1", port, "hi"])
        assert r.rc == 1, r
    j = one_json(r.stdout.decode())
    assert j["verdict"] == "mismatch" and j["exit"] == 1, j
    assert j["error"] == "reply from 127.0.0.1 port %d (tcp) differs from the message sent" % port


def test_surplus_in_the_same_read_is_a_mismatch():
    """'hellohello' for 'hello': the reply is longer than what was sent."""
    def twice(c):
        data = c.recv(65536)
        c.sendall(data + data)
        c.recv(1)

    with TcpPeer(twice) as peer:
        r = run_kodama(["send", "127.0.0.1", peer.port, "hello"])
    assert r.rc == 1, r
    assert r.stderr == ("kodama: reply from 127.0.0.1 port %d (tcp) is longer than the message "
                        "sent\n" % peer.port), r


def test_surplus_after_the_last_reply_is_a_mismatch():
    """The extra bytes come after the reply, before the peer's FIN: send reads to the
    FIN after the last reply, so it sees them."""
    with TcpPeer(echo_then(b"more", delay=0.1)) as peer:
        r = run_kodama(["send", "--json", "127.0.0.1", peer.port, "hello"])
    assert r.rc == 1, r
    j = one_json(r.stdout.decode())
    assert j["verdict"] == "mismatch" and j["bytes_out"] == 5 and j["bytes_in"] == 9, j


def test_no_fin_within_w_is_still_a_pass():
    with TcpPeer(echo_then(b"", close=False)) as peer:
        r = run_kodama(["send", "-w", "0.4", "127.0.0.1", peer.port, "hello"])
    assert r.rc == 0, r
    assert r.stdout == b"hello\n"
    assert 0.35 < r.elapsed < scaled(3), r.elapsed


def test_udp_longer_reply_is_a_mismatch():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.bind(("127.0.0.1", 0))

        def answer():
            data, addr = u.recvfrom(100)
            u.sendto(data + b"!", addr)
        t = threading.Thread(target=answer, daemon=True)
        t.start()
        r = run_kodama(["send", "-u", "127.0.0.1", u.getsockname()[1], "abc"])
        t.join(5)
    assert r.rc == 1, r
    assert "is longer than the message sent" in r.stderr, r


# --------------------------------------------------------------------------- 3 refused

@pytest.mark.parametrize("cmd", [["send"], ["connect"], ["ping", "-c", "1"],
                                 ["bench", "-d", "0.3"], ["connect", "-z"]])
def test_refused_everywhere(cmd):
    port = free_port()
    r = run_kodama([*cmd, "127.0.0.1", port, *(["hi"] if cmd == ["send"] else [])])
    assert r.rc == 3, r


@pytest.mark.parametrize("cmd", [["send", "-u"], ["ping", "-u", "-c", "1"],
                                 ["connect", "-u"], ["bench", "-m", "udp", "-d", "0.3"]])
def test_udp_refused_everywhere(cmd):
    """ICMP port unreachable, heard on a connected udp socket."""
    port = free_port(kind=socket.SOCK_DGRAM)
    r = run_kodama([*cmd, "127.0.0.1", port, *(["hi"] if cmd[0] == "send" else [])],
                   input=b"hi\n")
    assert r.rc == 3, r


def test_refused_json(srv):
    port = free_port()
    r = run_kodama(["send", "--json", "127.0.0.1", port, "hi"])
    assert r.rc == 3, r
    j = one_json(r.stdout.decode())
    assert j == {**j, "verdict": "refused", "exit": 3, "proto": "tcp", "host": "127.0.0.1",
                 "port": port, "local": None, "peer": "127.0.0.1:%d" % port, "bytes_out": 0,
                 "bytes_in": 0, "connect_ms": None, "first_byte_ms": None,
                 "error": "connect to 127.0.0.1 port %d (tcp) failed: Connection refused" % port}
    assert j["total_ms"] >= 0, j


# --------------------------------------------------------------------------- 4 timeout

@pytest.mark.parametrize("cmd", [["send"], ["connect"], ["ping", "-c", "1", "--connect"],
                                 ["connect", "-z"]])
def test_timeout_full_backlog(cmd):
    """A listener whose backlog is full and never accepts: its SYNs are dropped, as a
    firewall that drops would."""
    with FullBacklog() as fb:
        r = run_kodama([*cmd, "-w", "0.4", "127.0.0.1", fb.port,
                        *(["hi"] if cmd == ["send"] else [])])
    assert r.rc == 4, r
    assert r.elapsed < scaled(3), r.elapsed


def test_timeout_accepts_and_never_answers():
    stop = threading.Event()
    with TcpPeer(lambda c: stop.wait(scaled(5))) as peer:
        try:
            r = run_kodama(["send", "--json", "-w", "0.4", "127.0.0.1", peer.port, "hi"])
        finally:
            stop.set()
    assert r.rc == 4, r
    j = one_json(r.stdout.decode())
    assert j["verdict"] == "timeout" and j["connect_ms"] is not None, j
    assert j["first_byte_ms"] is None and j["bytes_out"] == 2 and j["bytes_in"] == 0, j


def test_udp_silence_is_a_timeout_for_send_but_not_connect():
    with SilentUdp() as u:
        r = run_kodama(["send", "-u", "-w", "0.3", "127.0.0.1", u.port, "hi"])
        assert r.rc == 4, r
        r = run_kodama(["connect", "-u", "-w", "0.3", "127.0.0.1", u.port], input=b"hi\n")
        assert r.rc == 0, r     # a relay may be one-way


def test_bench_timeout_when_nothing_completes():
    stop = threading.Event()
    with TcpPeer(lambda c: stop.wait(scaled(5)), conns=4) as peer:
        try:
            r = run_kodama(["bench", "-d", "0.5", "-w", "0.2", "127.0.0.1", peer.port])
        finally:
            stop.set()
    assert r.rc == 4, r


# --------------------------------------------------------------------------- 5 reset

@pytest.mark.parametrize("cmd", [["send"], ["connect"]])
def test_reset(cmd):
    with TcpPeer(reset_after_reading) as peer:
        r = run_kodama([*cmd, "127.0.0.1", peer.port, *(["hi"] if cmd == ["send"] else [])],
                       input=b"hi")
    assert r.rc == 5, r
    assert r.stderr == ("kodama: receive from 127.0.0.1 port %d (tcp) failed: Connection reset "
                        "by peer\n" % peer.port), r


def test_peer_closes_before_the_whole_reply():
    def half(c):
        c.sendall(c.recv(100)[:2])
    with TcpPeer(half) as peer:
        r = run_kodama(["send", "127.0.0.1", peer.port, "hello"])
    assert r.rc == 5, r
    assert "closed the connection after 2 of 5 bytes" in r.stderr, r


def test_bench_reset_when_every_connection_is_reset():
    with TcpPeer(reset_after_reading, conns=50) as peer:
        # -w 1: a connection the peer has not got to yet waits out -w after the run.
        r = run_kodama(["bench", "-d", "0.5", "-w", "1", "127.0.0.1", peer.port])
    assert r.rc == 5, r


# --------------------------------------------------------------------------- 6 resolve

@pytest.mark.parametrize("cmd", [["send"], ["connect"], ["ping"], ["bench"], ["connect", "-z"],
                                 ["connect", "-l"]])
def test_resolve(cmd):
    r = run_kodama([*cmd, BAD_NAME, "7", *(["hi"] if cmd == ["send"] else [])])
    assert r.rc == 6, r
    assert r.stderr.endswith("nosuch!host: Name or service not known\n"), r


def test_resolve_json():
    r = run_kodama(["connect", "--json", BAD_NAME, "7"])
    assert r.rc == 6, r
    j = json.loads(r.stderr.splitlines()[-1])    # the relay's object: the last line of stderr
    assert j["verdict"] == "resolve" and j["peer"] is None and j["host"] == BAD_NAME, j
    assert j["error"] == "nosuch!host: Name or service not known", j


# --------------------------------------------------------------------------- 8 unreachable

@pytest.mark.parametrize("cmd", [["send"], ["connect"], ["ping", "-c", "1"], ["bench", "-d", "0.3"],
                                 ["connect", "-z"]])
def test_unreachable(cmd):
    """A tcp connect to the broadcast address fails with ENETUNREACH before anything
    is sent."""
    r = run_kodama([*cmd, "255.255.255.255", "7", *(["hi"] if cmd == ["send"] else [])])
    assert r.rc == 8, r


# --------------------------------------------------------------------------- 9 local

@pytest.mark.parametrize("cmd", [["send"], ["connect"], ["ping", "-c", "1"], ["bench", "-d", "0.3"]])
def test_local_source_not_on_this_host(srv, cmd):
    port = srv.port("echo", "tcp")
    r = run_kodama([*cmd, "--source", "192.0.2.1", "127.0.0.1", port,
                    *(["hi"] if cmd == ["send"] else [])])
    assert r.rc == 9, r
    assert r.stderr.endswith("cannot use source address 192.0.2.1: Cannot assign requested "
                             "address\n"), r


def test_local_source_port_in_use(srv):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        p = busy.getsockname()[1]
        r = run_kodama(["send", "--source", "127.0.0.1", "--source-port", p, "127.0.0.1",
                        srv.port("echo", "tcp"), "hi"])
    assert r.rc == 9, r
    assert r.stderr == ("kodama: cannot use source address 127.0.0.1 port %d: Address already "
                        "in use\n" % p), r


def test_local_stdout_closed_early(srv):
    """connect piped into head: the relay's stdout goes away, our failure."""
    p = subprocess.Popen(kodama_cmd("connect", "127.0.0.1", srv.port("chargen", "tcp")),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert len(p.stdout.read(1000)) == 1000
    p.stdout.close()
    try:
        rc = p.wait(scaled(5))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    err = p.stderr.read().decode()
    p.stdin.close()
    p.stderr.close()
    assert not sanitizer_problems(err, "connect"), err
    assert rc == 9, (rc, err)
    assert err == "kodama: cannot write to stdout: Broken pipe\n", err


@pytest.mark.parametrize("args", [["send", "--json", "127.0.0.1", "{port}", "hi"],
                                  ["ping", "-c", "1", "127.0.0.1", "{port}"]],
                         ids=["send-json", "ping"])
def test_local_stdout_gone_is_said(srv, args):
    """A report or a probe's line that cannot be written: exit 9 with the reason on
    stderr, as every other command says it (not a silent 9)."""
    r, w = os.pipe()
    os.close(r)         # nobody reads stdout: the write gets EPIPE
    argv = [a.format(port=srv.port("echo", "tcp")) for a in args]
    try:
        p = subprocess.run(kodama_cmd(*argv), stdout=w, stderr=subprocess.PIPE,
                           stdin=subprocess.DEVNULL, timeout=scaled(10))
    finally:
        os.close(w)
    err = p.stderr.decode()
    assert not sanitizer_problems(err, args[0]), err
    assert p.returncode == 9, (p.returncode, err)
    assert err.endswith("kodama: cannot write to stdout: Broken pipe\n"), err


def test_reset_keeps_what_came_before_it():
    """connect: the bytes a peer sent before its reset still reach stdout, then exit 5.
    The reset often comes in the same poll round as the data (before stdout is
    writable), so the run is repeated."""
    payload = b"X" * 1000

    def data_then_reset(c):
        c.recv(1)       # the client is relaying: now the data, then the reset
        c.sendall(payload)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    for _ in range(20):
        with TcpPeer(data_then_reset) as peer:
            r = run_kodama(["connect", "127.0.0.1", peer.port], input=b"g")
        assert r.rc == 5, r
        assert r.stdout == payload, (len(r.stdout), r)
        assert "Connection reset by peer" in r.stderr, r


def late_connect(args, input=b""):
    """kodama ARGS with each connect call returning 0.5 s late (strace injects the
    delay): the handshake ends meanwhile, in the kernel, so a peer has accepted,
    spoken and reset before the client looks at the connect's outcome."""
    strace = shutil.which("strace")
    if not strace:
        pytest.skip("strace is not installed (scripts/deps.sh installs it)")
    # LeakSanitizer cannot run under ptrace; ASan's other checks can.
    env = dict(os.environ, ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0")
    r = run_kodama(args, input=input, env=env, prefix=[
        strace, "-qq", "-o", "/dev/null", "-e", "trace=connect",
        "-e", "inject=connect:delay_exit=%d" % int(scaled(0.5) * 1e6)])
    if r.stderr.startswith("strace:"):
        pytest.skip("strace cannot run kodama here: " + r.stderr.splitlines()[0])
    return r


def hello_then_reset(c):
    c.sendall(b"hello")
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def test_a_reset_right_after_accept_is_a_reset_not_a_failed_connect():
    """SO_ERROR says ECONNRESET once the peer has reset a connection it accepted (a
    refused one says ECONNREFUSED): connected, and what came before the reset counts."""
    with TcpPeer(hello_then_reset) as peer:
        r = late_connect(["connect", "127.0.0.1", peer.port])
    assert r.rc == 5, r
    assert r.stdout == b"hello", r
    assert r.stderr == ("kodama: receive from 127.0.0.1 port %d (tcp) failed: Connection reset "
                        "by peer\n" % peer.port), r

    with TcpPeer(hello_then_reset) as peer:
        r = late_connect(["send", "127.0.0.1", peer.port, "hi"])
    assert r.rc == 5, r
    assert r.stderr == ("kodama: send to 127.0.0.1 port %d (tcp) failed: Connection reset "
                        "by peer\n" % peer.port), r

    with TcpPeer(hello_then_reset) as peer:
        r = late_connect(["send", "--tls", "--insecure", "127.0.0.1", peer.port, "hi"])
    assert r.rc == 5, r
    assert r.stderr.endswith("\nkodama: 127.0.0.1:%d: tls: handshake: Connection reset by "
                             "peer\n" % peer.port), r

    with TcpPeer(hello_then_reset) as peer:
        r = late_connect(["connect", "-z", "127.0.0.1", peer.port])
    assert (r.rc, r.stdout) == (0, b"127.0.0.1 port %d (tcp): open\n" % peer.port), r

    with TcpPeer(hello_then_reset) as peer:
        r = late_connect(["send", "--trace", "127.0.0.1", peer.port, "hi"])
    assert r.rc == 5, r
    assert re.search(r"connect\(\d+\): connected, then reset by the peer \(SO_ERROR ECONNRESET\)",
                     r.stderr), r


# --------------------------------------------------------------------------- source

def test_send_source_and_port(srv):
    p = free_port()
    r = run_kodama(["send", "--json", "--source", "127.0.0.2", "--source-port", p, "127.0.0.1",
                    srv.port("echo", "tcp"), "hi"])
    assert r.rc == 0, r
    assert one_json(r.stdout.decode())["local"] == "127.0.0.2:%d" % p


def test_connect_netcat_source_options():
    with TcpPeer(lambda c: c.sendall(b"x")) as peer:
        p = free_port()
        r = run_kodama(["connect", "-s", "127.0.0.3", "-p", p, "127.0.0.1", peer.port])
    assert r.rc == 0, r
    assert peer.peers == [("127.0.0.3", p)], peer.peers


def test_ping_and_bench_source(srv):
    port = srv.port("echo", "tcp")
    r = run_kodama(["ping", "--json", "-c", 1, "--source", "127.0.0.4", "127.0.0.1", port])
    assert r.rc == 0, r
    assert json.loads(r.stdout)["local"].startswith("127.0.0.4:"), r
    r = run_kodama(["bench", "-d", "0.3", "--source", "127.0.0.5", "127.0.0.1", port])
    assert r.rc == 0, r


def test_source_ipv6_picks_the_family(server):
    s = server(["echo@[::1]:0/tcp"])
    r = run_kodama(["send", "--json", "--source", "::1", "::1", s.port("echo", "tcp"), "six"])
    assert r.rc == 0, r
    assert one_json(r.stdout.decode())["local"].startswith("[::1]:"), r


def test_udp_source_port(srv):
    p = free_port(kind=socket.SOCK_DGRAM)
    r = run_kodama(["send", "-u", "--json", "--source-port", p, "127.0.0.1",
                    srv.port("echo", "udp"), "u"])
    assert r.rc == 0, r
    assert one_json(r.stdout.decode())["local"] == "127.0.0.1:%d" % p


@pytest.mark.parametrize("cmd,args,msg", [
    (["send"], ["--source", "::1", "127.0.0.1"], "127.0.0.1: not an IPv6 address, as --source ::1 needs"),
    (["connect", "-z"], ["--source", "127.0.0.1", "::1"],
     "::1: not an IPv4 address, as --source 127.0.0.1 needs"),
    (["ping", "-c", "1"], ["-4", "::1"], "::1: not an IPv4 address, as -4 asks"),
    (["connect", "-l"], ["-6", "127.0.0.1"], "127.0.0.1: not an IPv6 address, as -6 asks"),
    (["bench", "-d", "0.3"], ["--source", "::1", "127.0.0.1"],
     "bench: 127.0.0.1: not an IPv6 address, as --source ::1 needs"),
])
def test_an_address_of_the_other_family_names_the_option(cmd, args, msg):
    r = run_kodama([*cmd, *args, 7, *(["x"] if cmd == ["send"] else [])])
    assert r.rc == 6, r
    assert r.stderr == "kodama: %s\n" % msg, r
    assert r.stdout == b"", r


SELF = "connected to itself (the source is the destination, where nothing listens)"


@pytest.mark.parametrize("cmd", [["send"], ["connect"], ["ping", "-c", "2", "-i", "0.05"],
                                 ["ping", "-u", "-c", "2", "-i", "0.05"], ["bench", "-d", "0.3"],
                                 ["bench", "-m", "udp", "-d", "0.3"]])
def test_a_socket_connected_to_itself_is_refused_not_an_echo(cmd):
    """Source port = destination port where nothing listens: TCP's simultaneous open
    (or a udp socket sending to itself) would echo every byte back."""
    udp = "-u" in cmd or "udp" in cmd
    p = free_port(kind=socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)
    r = run_kodama([*cmd, "--source-port", p, "127.0.0.1", p,
                    *(["hi"] if cmd == ["send"] else [])], input=b"")
    assert r.rc == 3, r
    proto = "udp" if udp else "tcp"
    if cmd[0] == "bench":
        assert r.stderr == "kodama: bench: cannot connect to 127.0.0.1:%d: %s\n" % (p, SELF), r
    else:
        assert r.stderr == "kodama: connect to 127.0.0.1 port %d (%s) failed: %s\n" % (
            p, proto, SELF), r
    assert b"bytes from" not in r.stdout, r


@pytest.mark.parametrize("proto", [[], ["-u"]])
def test_scan_names_a_socket_connected_to_itself_refused(proto):
    p = free_port(kind=socket.SOCK_DGRAM if proto else socket.SOCK_STREAM)
    r = run_kodama(["connect", "-z", "--json", *proto, "--source-port", p, "127.0.0.1", p])
    assert r.rc == 3, r
    j = one_json(r.stdout.decode())
    assert (j["state"], j["connect_ms"]) == ("refused", None), j
    assert j["error"] == "connect to 127.0.0.1 port %d (%s) failed: %s" % (
        p, "udp" if proto else "tcp", SELF), j


@pytest.mark.parametrize("args,msg", [
    (["--source", "host.example", "127.0.0.1", "7", "x"],
     "kodama: invalid --source 'host.example': not an IPv4 or IPv6 address"),
    (["--source-port", "0", "127.0.0.1", "7", "x"], "kodama: invalid --source-port '0'"),
    (["-4", "--source", "::1", "127.0.0.1", "7", "x"], "kodama: cannot use --source '::1' with -4"),
    (["--source", "127.0.0.1", "-U", "/tmp/x", "x"],
     "kodama: cannot use -U with --source or --source-port"),
])
def test_source_usage(args, msg):
    assert_usage_error(run_kodama(["send", *args]), msg, "send")


def test_bench_source_port_needs_one_connection():
    assert_usage_error(run_kodama(["bench", "-c", "2", "--source-port", "5000", "127.0.0.1", "7"]),
                       "kodama: --source-port needs -c 1 and -m echo or udp", "bench")


# --------------------------------------------------------------------------- json

def test_send_json_ok(srv):
    port = srv.port("echo", "tcp")
    r = run_kodama(["send", "--json", "127.0.0.1", port, "one", "two"])
    assert r.rc == 0, r
    assert r.stderr == "", r
    j = one_json(r.stdout.decode())      # replaces the replies
    assert j["verdict"] == "ok" and j["exit"] == 0 and j["error"] is None, j
    assert j["bytes_out"] == j["bytes_in"] == 6, j
    assert j["peer"] == "127.0.0.1:%d" % port and re.fullmatch(r"127\.0\.0\.1:\d+", j["local"]), j
    assert 0 <= j["connect_ms"] <= j["first_byte_ms"] <= j["total_ms"], j


def test_connect_json_is_the_last_line_of_stderr(srv):
    port = srv.port("echo", "tcp")
    r = run_kodama(["connect", "--json", "-v", "127.0.0.1", port], input=b"data")
    assert r.rc == 0, r
    assert r.stdout == b"data"      # stdout is the peer's, untouched
    lines = r.stderr.splitlines()
    assert lines[0] == "kodama: connected to 127.0.0.1 port %d (tcp)" % port, lines
    j = json.loads(lines[-1])
    assert j["verdict"] == "ok" and j["bytes_out"] == j["bytes_in"] == 4, j


def test_unix_json_has_a_path(server, sockdir):
    path = "%s/e.sock" % sockdir
    server(["echo@unix:" + path])
    r = run_kodama(["send", "--json", "-U", path, "u"])
    assert r.rc == 0, r
    j = json.loads(r.stdout)
    assert set(j) == JSON_KEYS - {"host", "port"} | {"path"}, j
    assert j["proto"] == "unix" and j["path"] == path and "host" not in j, j
    assert j["peer"] == "unix:" + path, j


def test_local_out_of_descriptors(srv):
    """bench needs a descriptor per connection: a hard limit too low is a local
    failure, told before anything starts. (That EMFILE itself maps to local is in
    tests/unit/test_verdict.c: the dynamic loader needs descriptors of its own, so
    a process cannot be started with none left.)"""
    import resource

    def few_fds():
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

    p = subprocess.run(kodama_cmd("bench", "-c", 1000, "-d", "0.3", "127.0.0.1",
                                  srv.port("echo", "tcp")),
                       stdin=subprocess.DEVNULL, capture_output=True, preexec_fn=few_fds,
                       timeout=scaled(10))
    err = p.stderr.decode()
    assert not sanitizer_problems(err, "bench"), err
    assert p.returncode == 9, (p.returncode, err)
    assert err == "kodama: bench: -c 1000 needs 1033 open files; the limit is 64\n", err
