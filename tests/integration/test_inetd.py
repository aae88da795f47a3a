"""serve --inetd: one connection (nowait) or one datagram socket (wait) on stdin, under
systemd-socket-activate --inetd, a real xinetd, and by hand (stdio set up here)."""
import os
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

from kodama_helpers import (KODAMA, connect, free_port, kodama_cmd, recv_until_eof,
                            require_tool, run_echo_clients, run_kodama, sanitizer_problems,
                            scaled, udp_exchange, wait_tcp_accepting)


class Launcher:
    """A process that runs kodama per connection (systemd-socket-activate, xinetd)."""

    def __init__(self, argv, log_path):
        self.log_path = log_path
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_text(self, needle, timeout=10):
        deadline = time.monotonic() + scaled(timeout)
        while needle not in self.text():
            assert self.proc.poll() is None, "launcher exited: %s" % self.text()
            assert time.monotonic() < deadline, "no %r in: %s" % (needle, self.text())
            time.sleep(0.02)

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(scaled(5))
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.log.close()
        probs = sanitizer_problems(self.text(), "kodama --inetd")
        assert not probs, probs[0]


@pytest.fixture
def launch(tmp_path):
    started = []

    def start(argv):
        lau = Launcher([str(a) for a in argv], str(tmp_path / ("launcher-%d.log" % len(started))))
        started.append(lau)
        return lau
    yield start
    for lau in started:
        lau.stop()


def socket_activate_inetd(launch, port, *args):
    sa = require_tool("systemd-socket-activate")
    lau = launch([sa, "--inetd", "-a", "-l", "127.0.0.1:%d" % port,
                  *kodama_cmd("serve", "--inetd", *args)])
    lau.wait_text("Listening on ")
    return lau


def echo_once(port, payload):
    with connect(("127.0.0.1", port)) as c:
        c.sendall(payload)
        c.shutdown(socket.SHUT_WR)
        return recv_until_eof(c)


def test_socket_activate_inetd_echo_sequential_and_concurrent(launch):
    port = free_port()
    lau = socket_activate_inetd(launch, port, "echo")
    for i in range(3):
        payload = os.urandom(1000 * (i + 1)) + b"end %d" % i
        assert echo_once(port, payload) == payload
    ok, failures = run_echo_clients(("127.0.0.1", port), 6, 5)
    assert (ok, failures) == (6, [])
    # Each kodama exits 0 when its connection ends.
    lau.wait_text("died with code 0")
    assert "died with code 1" not in lau.text() and "kodama: listening" not in lau.text()
    assert "kodama: ready" not in lau.text()


def test_socket_activate_inetd_hello(launch):
    port = free_port()
    socket_activate_inetd(launch, port, "hello", "--message", "inetd says hi\\n")
    with connect(("127.0.0.1", port)) as c:
        assert recv_until_eof(c) == b"inetd says hi\n"
    with connect(("127.0.0.1", port)) as c:
        assert recv_until_eof(c) == b"inetd says hi\n"


def test_socket_activate_inetd_limits_apply(launch):
    """The connection is served by the normal engine: --idle-timeout says goodbye."""
    port = free_port()
    socket_activate_inetd(launch, port, "echo", "--idle-timeout", "0.3")
    with connect(("127.0.0.1", port)) as c:
        t0 = time.monotonic()
        assert recv_until_eof(c) == b""
        assert time.monotonic() - t0 < scaled(5)


def run_on_socket(args, sock, stderr_too, timeout=10):
    """kodama serve ARGS with sock on stdin and stdout (and stderr)."""
    err = sock.fileno() if stderr_too else subprocess.PIPE
    p = subprocess.Popen(kodama_cmd("serve", *args), stdin=sock.fileno(),
                         stdout=sock.fileno(), stderr=err)
    return p


def test_logs_never_reach_the_client_when_stderr_is_the_socket():
    """xinetd puts the socket on stderr too: -v lines must go elsewhere (syslog)."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        p = run_on_socket(["-v", "--inetd", "echo"], theirs, stderr_too=True)
        theirs.close()
        ours.settimeout(scaled(10))
        ours.sendall(b"only this")
        ours.shutdown(socket.SHUT_WR)
        assert recv_until_eof(ours) == b"only this"
        assert p.wait(scaled(10)) == 0


def test_logs_go_to_stderr_when_it_is_not_the_socket():
    ours, theirs = socket.socketpair()
    with ours, theirs:
        p = run_on_socket(["-v", "--inetd", "echo"], theirs, stderr_too=False)
        theirs.close()
        ours.settimeout(scaled(10))
        ours.sendall(b"data")
        ours.shutdown(socket.SHUT_WR)
        assert recv_until_eof(ours) == b"data"
        _, err = p.communicate(timeout=scaled(10))
    assert p.returncode == 0
    lines = err.decode().splitlines()
    # A runtime line: it starts with the time, as after "ready" (a socketpair: no names).
    assert [l for l in lines
            if re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z "
                            r"kodama: accept echo unix unix:", l)], lines
    assert not [l for l in lines if "listening" in l or l == "kodama: ready"], lines


def test_stdin_not_a_socket_is_an_error():
    r = run_kodama(["serve", "--inetd", "echo"], input=b"")
    assert r.rc == 1, r
    assert r.stderr == ("kodama: --inetd: stdin is not a socket (run by inetd, xinetd or "
                        "systemd-socket-activate --inetd)\n"), r


def test_udp_wanted_but_stdin_is_a_stream():
    ours, theirs = socket.socketpair()
    with ours, theirs:
        p = run_on_socket(["--inetd", "echo/udp"], theirs, stderr_too=False)
        _, err = p.communicate(timeout=scaled(10))
    assert p.returncode == 1
    assert err == (b"kodama: --inetd echo/udp: stdin is a stream socket, not udp "
                   b"(inetd: dgram, wait)\n"), err


@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_UNIX])
def test_listening_socket_on_stdin_is_named_as_stdin(family, tmp_path):
    """inetd "wait" for a stream service (or systemd Accept=no) hands over the
    listening socket: the line names stdin and the kind wanted, not the descriptor
    kodama moved it to."""
    with socket.socket(family, socket.SOCK_STREAM) as lst:
        lst.bind(("127.0.0.1", 0) if family == socket.AF_INET else str(tmp_path / "s"))
        lst.listen(1)
        p = subprocess.Popen(kodama_cmd("serve", "--inetd", "echo"), stdin=lst.fileno(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, err = p.communicate(timeout=scaled(10))
    assert p.returncode == 1
    assert err == (b"kodama: --inetd echo: stdin is a listening socket, not a connection "
                   b"(inetd: stream, nowait)\n"), err


def test_a_wrong_socket_kind_is_not_told_to_the_client_on_stderr():
    """xinetd puts the socket on stderr too: a stream socket where --inetd echo/udp
    wants a datagram one is an error for syslog, never text sent to the client."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        p = run_on_socket(["--inetd", "echo/udp"], theirs, stderr_too=True)
        theirs.close()
        assert p.wait(scaled(10)) == 1
        ours.settimeout(scaled(10))
        assert recv_until_eof(ours) == b""


@pytest.mark.parametrize("args", [["--inetd", "nosuch"], ["--inetd", "echo", "echo@7007"],
                                  ["--bogus", "--inetd", "echo"]])
def test_a_usage_error_is_not_told_to_the_client_on_stderr(args):
    """A mistyped xinetd server_args: the usage error goes to syslog, not to every
    client that connects (stderr is the client's socket)."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        p = run_on_socket(args, theirs, stderr_too=True)
        theirs.close()
        assert p.wait(scaled(10)) == 2
        ours.settimeout(scaled(10))
        assert recv_until_eof(ours) == b""


@pytest.mark.parametrize("args, line", [
    (["nosuch"], "kodama: unknown service 'nosuch' in --inetd 'nosuch'"),
    (["echo/sctp"], "kodama: --inetd 'echo/sctp': not SERVICE, SERVICE/tcp or SERVICE/udp"),
    (["echo", "echo@7007"], "kodama: --inetd serves stdin: no SPEC"),
])
def test_inetd_usage_errors(args, line):
    r = run_kodama(["serve", "--inetd", *args])
    assert r.rc == 2, r
    assert r.stderr == line + "\nTry 'kodama serve --help'.\n", r


def test_udp_socket_on_stdin_exits_when_idle():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as srv:
        srv.bind(("127.0.0.1", 0))
        dest = srv.getsockname()
        p = subprocess.Popen(kodama_cmd("serve", "--inetd", "echo/udp", "--idle-timeout", "1"),
                             stdin=srv.fileno(), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        t0 = time.monotonic()
        for i in range(3):
            reply, src = udp_exchange(dest, b"dgram %d" % i)
            assert reply == b"dgram %d" % i and src == dest
        _, err = p.communicate(timeout=scaled(10))
        waited = time.monotonic() - t0
    assert p.returncode == 0, err
    assert err == b"", err
    assert waited >= 0.9, waited
    assert waited < scaled(5), waited


# --------------------------------------------------------------------------- xinetd

XINETD_CONF = """defaults
{
	log_type	= FILE %(dir)s/xinetd.log
	log_on_success	=
	log_on_failure	= HOST
}
service kodama-echo
{
	type		= UNLISTED
	id		= kodama-echo-stream
	socket_type	= stream
	protocol	= tcp
	port		= %(port)d
	bind		= 127.0.0.1
	wait		= no
	user		= %(user)s
	server		= %(kodama)s
	server_args	= serve -v --inetd echo
}
service kodama-echo-udp
{
	type		= UNLISTED
	id		= kodama-echo-dgram
	socket_type	= dgram
	protocol	= udp
	port		= %(port)d
	bind		= 127.0.0.1
	wait		= yes
	user		= %(user)s
	server		= %(kodama)s
	server_args	= serve -v --inetd echo/udp --idle-timeout 2
}
"""


def start_xinetd(launch, tmp_path):
    """xinetd in the foreground on a port free for tcp and udp a moment ago; one retry
    if somebody took it meanwhile."""
    xinetd = require_tool("xinetd")
    import pwd
    user = pwd.getpwuid(os.getuid()).pw_name
    for attempt in range(2):
        port = free_port()
        conf = tmp_path / ("xinetd-%d.conf" % attempt)
        conf.write_text(XINETD_CONF % {"dir": tmp_path, "port": port, "user": user,
                                       "kodama": KODAMA})
        lau = launch([xinetd, "-dontfork", "-stayalive", "-pidfile",
                      tmp_path / ("xinetd-%d.pid" % attempt), "-f", conf])
        try:
            wait_tcp_accepting("127.0.0.1", port, timeout=5)
            return port
        except BaseException:
            if attempt == 1:
                raise
            lau.stop()


def test_xinetd_tcp_and_udp_echo_without_log_text(launch, tmp_path):
    if os.environ.get("KODAMA_WRAPPER"):
        pytest.skip("xinetd runs kodama itself, not under the wrapper")
    port = start_xinetd(launch, tmp_path)
    # -v logs an accept and a close line per connection: none may reach the client.
    for i in range(3):
        payload = b"through xinetd %d\n" % i + os.urandom(3000)
        assert echo_once(port, payload) == payload
    results = []

    def client(i):
        results.append(echo_once(port, b"concurrent %d" % i) == b"concurrent %d" % i)
    threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(scaled(20))
    assert results == [True] * 4
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        for i in range(3):
            reply, src = udp_exchange(("127.0.0.1", port), b"udp via xinetd %d" % i, sock=u)
            assert reply == b"udp via xinetd %d" % i and src == ("127.0.0.1", port)
