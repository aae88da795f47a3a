"""serve --threads: one event loop per thread, SO_REUSEPORT siblings, shared unix sockets."""
import os
import socket
import threading

import pytest

from kodama_helpers import (assert_usage_error, connect, free_port, recv_exact, run_kodama,
                            scaled, udp_exchange)


def thread_count(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    raise AssertionError("no Threads: line")


def echo_many(dest, family, clients=200):
    """Many concurrent clients, each with its own payload; returns the failures."""
    failures = []

    def one(i):
        try:
            payload = os.urandom(1000) + b"client %d" % i
            with connect(dest, family, timeout=scaled(10)) as c:
                c.sendall(payload)
                got = recv_exact(c, len(payload))
                if got != payload:
                    failures.append("client %d: wrong bytes" % i)
        except OSError as e:
            failures.append("client %d: %s" % (i, e))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(scaled(30))
    return failures


@pytest.mark.valgrind
@pytest.mark.parametrize("listen_mode", ["reuseport", "shared"])
def test_threads_serve_tcp_udp_unix(server, tmp_path, listen_mode):
    env = dict(os.environ)
    if listen_mode == "shared":
        env["KODAMA_LISTEN"] = "shared"
    path = tmp_path / "echo.sock"
    s = server.start(["--threads", "4", "echo@127.0.0.1:0", "echo@unix:%s" % path], env=env)
    # One listening line per socket the user asked for, not one per thread.
    assert [l[:2] for l in s.listeners] == [("echo", "tcp"), ("echo", "udp"), ("echo", "unix")]
    assert thread_count(s.proc.pid) == 4
    assert echo_many(s.addr("echo", "tcp"), socket.AF_INET) == []
    assert echo_many(str(path), socket.AF_UNIX, clients=50) == []
    dest = s.addr("echo", "udp")
    for i in range(100):
        payload = b"datagram %d" % i
        reply, src = udp_exchange(dest, payload)
        assert reply == payload and src[:2] == dest
    text = s.stop()
    assert text.splitlines().count("kodama: stopping") == 1, text
    assert not path.exists()


def test_threads_default_is_online_cpus(server):
    s = server.start(["echo@127.0.0.1:0/tcp"])
    assert thread_count(s.proc.pid) == os.sysconf("SC_NPROCESSORS_ONLN")
    s.stop()


def test_threads_one(server):
    s = server.start(["-t", "1", "hello@127.0.0.1:0/tcp"])
    assert thread_count(s.proc.pid) == 1
    with connect(s.addr("hello"), socket.AF_INET) as c:
        assert recv_exact(c, 19) == b"Hello from server!\n"
    s.stop()


@pytest.mark.parametrize("first_threads", ["1", "2"])
def test_threads_port_in_use_is_still_an_error(server, first_threads):
    """SO_REUSEPORT must not let a second server join the first one's port."""
    first = server.start(["-t", first_threads, "echo@127.0.0.1:0"])
    port = first.port("echo")
    r = run_kodama(["serve", "-t", "2", "echo@127.0.0.1:%d/tcp" % port], timeout=5)
    assert r.rc == 1, r
    assert r.err_lines == ["kodama: cannot listen on echo tcp 127.0.0.1:%d: Address already in use"
                           % port], r
    r = run_kodama(["serve", "-t", "2", "echo@127.0.0.1:%d/udp" % port], timeout=5)
    assert r.rc == 1, r
    assert r.err_lines == ["kodama: cannot listen on echo udp 127.0.0.1:%d: Address already in use"
                           % port], r
    first.stop()


def test_threads_fixed_port(server):
    port = free_port()
    s = server.start(["-t", "3", "echo@127.0.0.1:%d/tcp" % port])
    assert s.port("echo") == port
    assert echo_many(("127.0.0.1", port), socket.AF_INET, clients=30) == []
    s.stop()


@pytest.mark.parametrize("value,why", [
    ("0", "too small"), ("1025", "too large"), ("x", "not a number"), ("", "empty"),
])
def test_threads_bad_value(value, why):
    r = run_kodama(["serve", "--threads", value, "echo@127.0.0.1:0"])
    assert_usage_error(r, "kodama: --threads '%s': %s (1 to 1024)" % (value, why), "serve")
