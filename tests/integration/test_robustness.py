"""Shutdown under load, unix socket files, abusive clients (and test_abuse.py)."""
import errno
import os
import re
import resource
import selectors
import signal
import socket
import struct
import subprocess
import time
from types import SimpleNamespace

import pytest

from kodama_helpers import (GREETING, TIME_SCALE, connect, recv_until_eof, run_echo_clients,
                            run_kodama, scaled, udp_exchange)

CLOSE_RE = re.compile(r"^kodama: close echo tcp (\S+) in=(\d+) out=(\d+)$")


# --------------------------------------------------------------------------- SIGTERM under load

def test_sigterm_with_100_clients_mid_transfer(server):
    sigterm_mid_transfer(server, 100)


@pytest.mark.valgrind
def test_sigterm_with_8_clients_mid_transfer(server):
    """The same, small enough for valgrind: the stop path frees what it must."""
    sigterm_mid_transfer(server, 8)


def sigterm_mid_transfer(server, nclients):
    """nclients that never stop sending: after the drain (1 s here) and the flush
    (1 s), every client has had back all the server read, then EOF or a reset."""
    s = server.start(["-v", "--drain-timeout", "1", "echo@127.0.0.1:0/tcp"])
    sa = s.addr("echo", "tcp")
    pattern = os.urandom(1 << 20)
    L = len(pattern)
    doubled = pattern + pattern
    CHUNK = 16384
    MAX_IN_FLIGHT = 256 * 1024

    sel = selectors.DefaultSelector()
    clients = []
    for i in range(nclients):
        c = socket.socket()
        c.setblocking(False)
        rc = c.connect_ex(sa)
        assert rc in (0, errno.EINPROGRESS), os.strerror(rc)
        st = SimpleNamespace(i=i, sock=c, sent=0, recvd=0, sending=True, end=None,
                             bad=None, port=None)
        clients.append(st)
        sel.register(c, selectors.EVENT_READ | selectors.EVENT_WRITE, st)

    def update_events(st):
        ev = selectors.EVENT_READ
        if st.sending and st.sent - st.recvd < MAX_IN_FLIGHT:
            ev |= selectors.EVENT_WRITE
        sel.modify(st.sock, ev, st)

    def finish(st, how):
        st.end = how
        sel.unregister(st.sock)
        st.sock.close()

    t0 = time.monotonic()
    term_at = None
    exited_at = None
    deadline = t0 + scaled(20)
    live = nclients
    while live and time.monotonic() < deadline:
        now = time.monotonic()
        if term_at is None and now - t0 > 0.5 and all(st.recvd > 0 for st in clients):
            s.send_signal(signal.SIGTERM)
            term_at = time.monotonic()
        if term_at is not None and exited_at is None and s.proc.poll() is not None:
            exited_at = time.monotonic()
        for key, ev in sel.select(timeout=0.05):
            st = key.data
            c = st.sock
            try:
                if st.port is None:
                    st.port = c.getsockname()[1]
                if ev & selectors.EVENT_READ:
                    b = c.recv(65536)
                    if not b:
                        finish(st, "eof")
                        live -= 1
                        continue
                    off = st.recvd % L
                    if b != doubled[off:off + len(b)]:
                        st.bad = "data mismatch at byte %d" % st.recvd
                    st.recvd += len(b)
                    if st.recvd > st.sent:
                        st.bad = "received more than sent"
                if ev & selectors.EVENT_WRITE and st.sending:
                    off = st.sent % L
                    k = c.send(doubled[off:off + CHUNK])
                    st.sent += k
                update_events(st)
            except (BlockingIOError, InterruptedError):
                pass
            except (ConnectionResetError, BrokenPipeError):
                if ev & selectors.EVENT_READ or not st.sending:
                    finish(st, "reset")
                    live -= 1
                else:
                    # the server stopped reading: stop sending, keep reading what is left
                    st.sending = False
                    try:
                        update_events(st)
                    except (OSError, ValueError):
                        finish(st, "reset")
                        live -= 1
            except OSError as e:
                finish(st, "error %s" % e)
                live -= 1
    assert term_at is not None, "transfers never got going"
    # Drain 1 s + flush 1 s, plus exit (plus valgrind's leak check at exit).
    limit = 3.0 if TIME_SCALE == 1 else 2.0 + 0.6 * TIME_SCALE
    try:
        s.proc.wait(max(0.0, limit - (time.monotonic() - term_at)) + 0.01)
    except subprocess.TimeoutExpired:
        pass
    if exited_at is None and s.proc.poll() is not None:
        exited_at = time.monotonic()
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    sel.close()

    assert s.proc.poll() is not None, "server still running %.1f s after SIGTERM" % limit
    assert exited_at - term_at <= limit + 0.06, "server took %.2f s to exit" % (
        exited_at - term_at)
    log = s.log()
    assert s.proc.returncode == 0, "exit code %s; log tail:\n%s" % (s.proc.returncode, log[-3000:])
    assert "kodama: stopping" in log.splitlines()
    unfinished = [st.i for st in clients if st.end is None]
    assert not unfinished, "clients neither at EOF nor reset: %r" % unfinished
    bad = [(st.i, st.bad) for st in clients if st.bad]
    assert not bad, bad
    assert all(st.end in ("eof", "reset") for st in clients), [st.end for st in clients]
    closes = {}
    for line in log.splitlines():
        if line.startswith("kodama: close echo tcp "):
            m = CLOSE_RE.match(line)
            assert m, line
            assert m.group(2) == m.group(3), "unbalanced close line: %s" % line
            closes[m.group(1)] = int(m.group(3))
    for st in clients:
        key = "127.0.0.1:%d" % st.port
        if st.end == "eof" and key in closes:
            assert closes[key] == st.recvd, "client %s got %d bytes, server says out=%d" % (
                key, st.recvd, closes[key])


# --------------------------------------------------------------------------- fd exhaustion

def _limit_nofile_64():
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))


def test_emfile_200_clients_with_64_fds(server):
    """--max-conns above what the descriptors allow: accept hits EMFILE, and the
    clients beyond wait in the backlog until descriptors free up."""
    s = server.start(["--max-conns", "1000", "echo@127.0.0.1:0/tcp"], preexec_fn=_limit_nofile_64)
    t0 = time.monotonic()
    ok, failures = run_echo_clients(s.addr("echo", "tcp"), 200, 1, timeout=30,
                                    msg_fmt=b"fd-%d-%d\n")
    assert not failures, "%d failures, first: %r" % (len(failures), failures[:5])
    assert ok == 200
    # afterwards a new client is served promptly
    with connect(s.addr("echo", "tcp"), timeout=10) as c:
        c.sendall(b"after the storm")
        c.shutdown(socket.SHUT_WR)
        assert recv_until_eof(c) == b"after the storm"
    elapsed = time.monotonic() - t0
    log = s.log()
    emfile = [l for l in log.splitlines() if "Too many open files" in l]
    assert all(l.startswith("kodama: ") for l in emfile), emfile
    assert len(emfile) <= elapsed + 2, "%d EMFILE lines in %.1f s (rate-limit to ~1/s)" % (
        len(emfile), elapsed)
    s.stop()


# --------------------------------------------------------------------------- unix socket files

def test_unix_socket_removed_on_sigterm(server, sockdir):
    path = os.path.join(sockdir, "gone.sock")
    s = server.start(["echo@unix:" + path])
    assert os.path.exists(path)
    s.stop()
    assert not os.path.exists(path)


def test_unix_socket_removed_on_sigint(server, sockdir):
    path = os.path.join(sockdir, "int.sock")
    s = server.start(["hello@unix:" + path])
    s.stop(sig=signal.SIGINT)
    assert not os.path.exists(path)


def test_stale_unix_socket_replaced(server, sockdir):
    path = os.path.join(sockdir, "stale.sock")
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(path)
    dead.listen(1)
    dead.close()  # the file stays: a dead listener's leftover
    assert os.path.exists(path)
    s = server.start(["echo@unix:" + path])
    with connect(path) as c:
        c.sendall(b"fresh")
        c.shutdown(socket.SHUT_WR)
        assert recv_until_eof(c) == b"fresh"
    s.stop()
    assert not os.path.exists(path)


def test_live_unix_socket_refused(server, sockdir):
    path = os.path.join(sockdir, "live.sock")
    live = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    live.bind(path)
    live.listen(4)
    try:
        r = run_kodama(["serve", "echo@unix:" + path], timeout=5)
        assert r.rc == 1, r
        assert r.stderr == ("kodama: cannot listen on echo unix unix:%s: Address already in use\n"
                            % path), r
        assert os.path.exists(path), "the live listener's socket file was removed"
    finally:
        live.close()


@pytest.mark.valgrind
def test_live_kodama_unix_socket_refused(server, sockdir):
    path = os.path.join(sockdir, "k.sock")
    s = server.start(["echo@unix:" + path])
    r = run_kodama(["serve", "hello@unix:" + path], timeout=5)
    assert r.rc == 1, r
    assert r.stderr == ("kodama: cannot listen on hello unix unix:%s: Address already in use\n"
                        % path), r
    # the first server still owns and serves the path
    with connect(path) as c:
        c.sendall(b"mine")
        c.shutdown(socket.SHUT_WR)
        assert recv_until_eof(c) == b"mine"
    s.stop()


def test_regular_file_not_replaced(server, sockdir):
    """A path that is not a socket is not deleted."""
    path = os.path.join(sockdir, "precious.txt")
    with open(path, "w") as f:
        f.write("do not delete")
    r = run_kodama(["serve", "echo@unix:" + path], timeout=5)
    assert r.rc == 1, r
    assert r.stderr.startswith("kodama: cannot listen on echo unix unix:%s: " % path), r
    with open(path) as f:
        assert f.read() == "do not delete"


# --------------------------------------------------------------------------- abusive clients

def _rst_close(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@pytest.mark.valgrind
def test_resetting_clients_do_not_hurt(server):
    s = server.start(["echo@127.0.0.1:0/tcp", "hello@127.0.0.1:0/tcp"])
    for service in ("echo", "hello"):
        sa = s.addr(service, "tcp")
        for i in range(50):
            c = connect(sa)
            if i % 2:
                c.sendall(os.urandom(100000))
            _rst_close(c)
        # half-open: connect and vanish without a word
        for _ in range(20):
            socket.create_connection(sa, timeout=5).close()
    with connect(s.addr("echo", "tcp")) as c:
        c.sendall(b"ok?")
        c.shutdown(socket.SHUT_WR)
        assert recv_until_eof(c) == b"ok?"
    with connect(s.addr("hello", "tcp")) as c:
        assert recv_until_eof(c) == GREETING
    s.stop()


@pytest.mark.valgrind
def test_echo_client_that_never_reads_then_resets(server):
    s = server.start(["echo@127.0.0.1:0/tcp"])
    sa = s.addr("echo", "tcp")
    c = connect(sa)
    c.setblocking(False)
    sent = 0
    t_end = time.monotonic() + 1.0
    while time.monotonic() < t_end:
        try:
            sent += c.send(b"z" * 65536)
        except BlockingIOError:
            time.sleep(0.01)
    _rst_close(c)
    ok, failures = run_echo_clients(sa, 20, 3, timeout=10)
    assert ok == 20, failures[:3]
    s.stop()


@pytest.mark.valgrind
def test_udp_garbage_and_icmp_do_not_hurt(server):
    s = server.start(["echo@127.0.0.1:0/udp", "hello@127.0.0.1:0/udp"])
    # datagrams whose sender is gone: the replies draw ICMP port unreachable
    for _ in range(50):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.sendto(os.urandom(512), s.addr("echo", "udp"))
        u.sendto(b"x", s.addr("hello", "udp"))
        u.close()
    time.sleep(0.2)
    reply, _ = udp_exchange(s.addr("echo", "udp"), b"still echoing")
    assert reply == b"still echoing"
    reply, _ = udp_exchange(s.addr("hello", "udp"), b"?" * len(GREETING))
    assert reply == GREETING
    s.stop()


def test_sigterm_idle_server_quick(server):
    s = server.start(["echo@127.0.0.1:0", "hello@[::1]:0"])
    t = time.monotonic()
    s.stop(timeout=3)
    assert time.monotonic() - t < scaled(2)


@pytest.mark.valgrind
def test_sigterm_flushes_pending_echo(server):
    """Data the server has read but not yet written goes out before it exits."""
    s = server.start(["-v", "echo@127.0.0.1:0/tcp"])
    c = connect(s.addr("echo", "tcp"))
    c.sendall(b"q" * 50000)
    time.sleep(0.3)  # the server has it (in its ring or the socket buffers)
    s.send_signal(signal.SIGTERM)
    got = recv_until_eof(c)
    c.close()
    assert s.proc.wait(scaled(3)) == 0
    assert "kodama: stopping" in s.log().splitlines()
    assert got == b"q" * len(got)
    assert len(got) == 50000, "only %d of 50000 bytes came back" % len(got)

