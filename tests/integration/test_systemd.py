"""systemd: socket activation (with systemd-socket-activate, and by hand for the error
cases) and sd_notify (READY=1, STATUS=, STOPPING=1 on a socket of the test's own)."""
import fcntl
import os
import socket
import subprocess
import time

import pytest

from kodama_helpers import (GREETING, connect, free_port, kodama_cmd, recv_exact,
                            recv_until_eof, require_tool, sanitizer_problems, scaled,
                            udp_exchange)


def activate(server, listen, fdnames, args=(), datagram=False):
    """kodama serve ARGS under systemd-socket-activate -l each of listen. It execs
    kodama on the first connection or datagram, so the caller triggers it and then
    calls s.wait_ready."""
    sa = require_tool("systemd-socket-activate")
    prefix = [sa] + (["-d"] if datagram else [])
    for addr in listen:
        prefix += ["-l", addr]
    prefix.append("--fdname=" + ":".join(fdnames))
    s = server.start(list(args), prefix=prefix, wait_ready=False)
    s.wait_log(lambda text: text.count("Listening on ") == len(listen), 10)
    return s


def test_activated_tcp_echo_same_lines_as_spec(server):
    port = free_port()
    s = activate(server, ["127.0.0.1:%d" % port], ["echo"])
    with connect(("127.0.0.1", port)) as c:
        s.wait_ready(scaled(10))
        c.sendall(b"activated\x00\xff")
        assert recv_exact(c, 11) == b"activated\x00\xff"
    assert [l[:3] for l in s.listeners] == [("echo", "tcp", "127.0.0.1:%d" % port)]
    activated_lines = [l for l in s.stop().splitlines() if l.startswith("kodama: listening")]
    # The same address bound from a SPEC prints the same line.
    spec = server.start(["echo@127.0.0.1:%d/tcp" % port])
    spec_lines = [l for l in spec.stop().splitlines() if l.startswith("kodama: listening")]
    assert activated_lines == spec_lines == ["kodama: listening echo tcp 127.0.0.1:%d" % port]


def test_activated_udp_echo(server):
    port = free_port(kind=socket.SOCK_DGRAM)
    s = activate(server, ["127.0.0.1:%d" % port], ["echo"], datagram=True)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.settimeout(scaled(10))
        u.sendto(b"first datagram", ("127.0.0.1", port))
        s.wait_ready(scaled(10))
        reply, src = u.recvfrom(2048)
        assert reply == b"first datagram" and src == ("127.0.0.1", port)
        reply, src = udp_exchange(("127.0.0.1", port), b"x" * 1400, sock=u)
        assert reply == b"x" * 1400
    assert [l[:3] for l in s.listeners] == [("echo", "udp", "127.0.0.1:%d" % port)]
    s.stop()


def test_activated_wildcard_udp_answers_from_the_address_used(server):
    """A passed wildcard udp socket gets IP_PKTINFO as our own do."""
    port = free_port("0.0.0.0", kind=socket.SOCK_DGRAM)
    s = activate(server, ["0.0.0.0:%d" % port], ["echo"], datagram=True)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.settimeout(scaled(10))
        u.sendto(b"wake", ("127.0.0.1", port))
        s.wait_ready(scaled(10))
        assert u.recvfrom(2048)[0] == b"wake"
    assert s.listeners[0][:3] == ("echo", "udp", "0.0.0.0:%d" % port)
    reply, src = udp_exchange(("127.0.0.2", port), b"to .2")
    assert reply == b"to .2" and src == ("127.0.0.2", port)
    s.stop()


def test_activated_several_sockets_by_name(server):
    p_hello, p_echo = free_port(), free_port()
    s = activate(server, ["127.0.0.1:%d" % p_hello, "127.0.0.1:%d" % p_echo],
                 ["hello", "echo"], args=["-t", "2"])
    with connect(("127.0.0.1", p_hello)) as c:
        s.wait_ready(scaled(10))
        assert recv_until_eof(c) == GREETING
    assert sorted(l[:3] for l in s.listeners) == sorted([
        ("hello", "tcp", "127.0.0.1:%d" % p_hello), ("echo", "tcp", "127.0.0.1:%d" % p_echo)])
    for i in range(4):      # both loops share the passed sockets
        with connect(("127.0.0.1", p_echo)) as c:
            c.sendall(b"echo %d" % i)
            assert recv_exact(c, 6) == b"echo %d" % i
        with connect(("127.0.0.1", p_hello)) as c:
            assert recv_until_eof(c) == GREETING
    s.stop()


@pytest.mark.parametrize("first", [[], ["hello"]])
def test_activated_relay_names_its_target_with_a_colon(server, first):
    """LISTEN_FDNAMES separates the names with ':', and a relay's to=HOST:PORT has
    one too: systemd-socket-activate --fdname=relay,to=127.0.0.1:PORT passes the
    name whole (LISTEN_FDS=1), and it must not be cut at its port."""
    import threading
    target = socket.socket()
    target.bind(("127.0.0.1", 0))
    target.listen(1)
    target.settimeout(scaled(10))

    def serve_target():
        c, _ = target.accept()
        with c:
            c.sendall(b"target got " + recv_exact(c, 4))

    t = threading.Thread(target=serve_target, daemon=True)
    t.start()
    ports = [free_port() for _ in first] + [free_port()]
    s = activate(server, ["127.0.0.1:%d" % p for p in ports],
                 first + ["relay,to=127.0.0.1:%d,name=up" % target.getsockname()[1]],
                 args=["-t", "1"])
    with connect(("127.0.0.1", ports[-1])) as c:
        s.wait_ready(scaled(10))
        c.sendall(b"ping")
        assert recv_until_eof(c) == b"target got ping"
    t.join(scaled(10))
    target.close()
    assert ("relay", "tcp", "127.0.0.1:%d" % ports[-1]) in [l[:3] for l in s.listeners]
    s.stop()


def test_activated_unix_socket(server, sockdir):
    path = os.path.join(sockdir, "echo.sock")
    s = activate(server, [path], ["echo"])
    with connect(path) as c:
        s.wait_ready(scaled(10))
        c.sendall(b"over unix")
        assert recv_exact(c, 9) == b"over unix"
    assert [l[:3] for l in s.listeners] == [("echo", "unix", "unix:" + path)]
    s.stop()
    assert os.path.exists(path), "the socket file is systemd's to remove, not ours"


def test_activated_socket_takes_faults_in_its_name(server):
    """FileDescriptorName=SERVICE,KEY=VALUE...: the options of a SPEC."""
    port = free_port()
    s = activate(server, ["127.0.0.1:%d" % port], ["echo,latency=200ms,name=slow"],
                 args=["-t", "1", "-v"])
    with connect(("127.0.0.1", port)) as c:
        s.wait_ready(scaled(10))
        t0 = time.monotonic()
        c.sendall(b"ping")
        assert recv_exact(c, 4) == b"ping"
        assert 0.2 <= time.monotonic() - t0 <= 0.3 + scaled(0.1)
    assert [l[:3] for l in s.listeners] == [("echo", "tcp", "127.0.0.1:%d" % port)]
    s.wait_log(lambda log: "kodama: faults slow " in log)
    s.stop()


# --------------------------------------------------------------------------- by hand

def run_with_passed(socks, args, env_extra, timeout=10.0):
    """Run kodama serve ARGS with socks as descriptors 3, 4, ... and LISTEN_PID set to
    its own pid (a shell sets it, then execs kodama)."""
    fds = [s.fileno() for s in socks]

    def to_fds_3_on():
        # Above every target first, so that no dup2 overwrites a source.
        moved = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 100) for fd in fds]
        for i, fd in enumerate(moved):
            os.dup2(fd, 3 + i)

    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")}
    env.update(LISTEN_FDS=str(len(socks)), **env_extra)
    cmd = ["/bin/sh", "-c", 'LISTEN_PID=$$; export LISTEN_PID; exec "$@"', "sh",
           *kodama_cmd("serve", *args)]
    p = subprocess.run(cmd, env=env, preexec_fn=to_fds_3_on, capture_output=True,
                       timeout=scaled(timeout), close_fds=False)
    err = p.stderr.decode()
    probs = sanitizer_problems(err, "kodama serve")
    assert not probs, probs[0]
    return p.returncode, err


def listening_tcp():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s


@pytest.mark.parametrize("names, why", [
    ("bogus", "descriptor 3 is named 'bogus': not a service name"),
    (None, "descriptor 3 has no name: not a service name"),
])
def test_passed_socket_needs_a_service_name(names, why):
    with listening_tcp() as ls:
        env = {"LISTEN_FDNAMES": names} if names else {}
        rc, err = run_with_passed([ls], [], env)
    assert rc == 1, err
    assert err == ("kodama: %s (set FileDescriptorName= or --fdname= to one of: "
                   "hello, echo, discard, chargen, daytime, time, info, relay; options may "
                   "follow a ',', as in a SPEC)\n" % why), err


def test_passed_socket_with_bad_options_in_its_name():
    with listening_tcp() as ls:
        rc, err = run_with_passed([ls], [], {"LISTEN_FDNAMES": "echo,drop=0.5"})
    assert rc == 1, err
    assert err == "kodama: descriptor 3 is named 'echo,drop=0.5': 'drop' is for udp listeners " \
        "in 'drop=0.5'\n", err


def test_passed_sockets_and_specs_is_a_usage_error():
    with listening_tcp() as ls:
        rc, err = run_with_passed([ls], ["echo@127.0.0.1:0"], {"LISTEN_FDNAMES": "echo"})
    assert rc == 2, err
    assert err == ("kodama: SPECs given, but systemd passed 1 socket (LISTEN_FDS): use one "
                   "or the other\nTry 'kodama serve --help'.\n"), err


def test_passed_stream_socket_must_be_listening():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        rc, err = run_with_passed([s], [], {"LISTEN_FDNAMES": "echo"})
    assert rc == 1, err
    assert "a stream socket that is not listening (for Accept=yes, use --inetd)" in err, err


def test_listen_pid_of_another_process_is_ignored(server):
    """Variables inherited from a parent that was socket-activated are not ours."""
    env = dict(os.environ, LISTEN_PID="1", LISTEN_FDS="1", LISTEN_FDNAMES="hello")
    s = server.start(["echo@127.0.0.1:0/tcp"], env=env)
    assert [l[:2] for l in s.listeners] == [("echo", "tcp")]
    with connect(s.addr("echo")) as c:
        c.sendall(b"bound from the SPEC")
        assert recv_exact(c, 19) == b"bound from the SPEC"
    s.stop()


# --------------------------------------------------------------------------- sd_notify

def notify_messages(sock, until, timeout):
    """Datagrams from kodama until one contains `until`; returns them all."""
    got = []
    deadline = time.monotonic() + scaled(timeout)
    while not any(until in m for m in got):
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail("no %r within %.1f s; got %r" % (until, scaled(timeout), got))
        sock.settimeout(left)
        try:
            got.append(sock.recv(4096).decode())
        except socket.timeout:
            continue
    return got


@pytest.mark.parametrize("abstract", [False, True])
def test_sd_notify_ready_status_stopping(server, sockdir, abstract):
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as n:
        if abstract:
            name = "kodama-test-notify-%d" % os.getpid()
            n.bind("\0" + name)
            where = "@" + name
        else:
            where = os.path.join(sockdir, "notify")
            n.bind(where)
        env = dict(os.environ, NOTIFY_SOCKET=where)
        s = server.start(["echo@127.0.0.1:0/tcp"], env=env)
        first = notify_messages(n, "READY=1", 5)
        assert first[-1] == ("READY=1\nSTATUS=connections: 0 open, 0 served; "
                             "datagrams: 0 answered"), first
        with connect(s.addr("echo")) as c:
            c.sendall(b"x")
            assert recv_exact(c, 1) == b"x"
            # Updated within a tick or two of worker 0's timer.
            got = notify_messages(n, "STATUS=connections: 1 open, 1 served", 5)
        got += notify_messages(n, "STATUS=connections: 0 open, 1 served", 5)
        text = s.stop()
        got += notify_messages(n, "STOPPING=1", 5)
        assert got[-1] == "STOPPING=1", got
        assert all(m.startswith("STATUS=") for m in got[:-1]), got
        assert "cannot notify" not in text


def test_a_notify_socket_that_is_gone_is_named_once(server, sockdir):
    """A manager that is gone costs only the notifications: one line, which names
    the NOTIFY_SOCKET it could not reach and why."""
    where = os.path.join(sockdir, "gone")
    env = dict(os.environ, NOTIFY_SOCKET=where)
    s = server.start(["-t", "1", "echo@127.0.0.1:0/tcp"], env=env)
    s.wait_log(lambda log: "cannot notify" in log)
    text = s.stop()
    lines = [l for l in text.splitlines() if "cannot notify" in l]
    assert lines == ["kodama: cannot notify the service manager at NOTIFY_SOCKET=%s: "
                     "No such file or directory" % where], text
