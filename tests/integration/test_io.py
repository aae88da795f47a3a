"""serve --io: the epoll and io_uring engines, the fallback, and idle connections' memory.

The whole suite runs once per engine (make integration sets KODAMA_IO); these tests
check the choice itself, seen from outside through /proc/PID/fd."""
import os
import socket

import pytest

from kodama_helpers import assert_usage_error, connect, recv_exact, run_kodama, scaled


def engine_fds(pid):
    """Count of (io_uring, epoll) descriptors the process holds."""
    uring = epoll = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        uring += target == "anon_inode:[io_uring]"
        epoll += target == "anon_inode:[eventpoll]"
    return uring, epoll


def echo_once(s):
    with connect(s.addr("echo"), socket.AF_INET) as c:
        c.sendall(b"ping")
        assert recv_exact(c, 4) == b"ping"


def env_with(**kw):
    env = dict(os.environ)
    env.pop("KODAMA_IO", None)
    env.pop("KODAMA_NO_IO_URING", None)
    env.update(kw)
    return env


@pytest.mark.parametrize("io,expect", [("epoll", (0, 3)), ("uring", (3, 0))])
def test_io_engine_is_the_one_asked_for(server, io, expect):
    s = server.start(["--io", io, "-t", "3", "echo@127.0.0.1:0/tcp"], env=env_with())
    assert engine_fds(s.proc.pid) == expect
    echo_once(s)
    s.stop()


def test_io_env_default(server):
    s = server.start(["-t", "2", "echo@127.0.0.1:0/tcp"], env=env_with(KODAMA_IO="epoll"))
    assert engine_fds(s.proc.pid) == (0, 2)
    s.stop()


def test_io_auto_falls_back_to_epoll_when_uring_is_denied(server):
    s = server.start(["-v", "--io", "auto", "-t", "2", "echo@127.0.0.1:0/tcp"],
                     env=env_with(KODAMA_NO_IO_URING="1"))
    assert engine_fds(s.proc.pid) == (0, 2)
    assert ("kodama: io_uring unavailable (Operation not permitted); using epoll"
            in s.log_lines())
    echo_once(s)
    s.stop()


def test_io_auto_fallback_is_quiet_without_v(server):
    s = server.start(["-t", "1", "echo@127.0.0.1:0/tcp"], env=env_with(KODAMA_NO_IO_URING="1"))
    assert engine_fds(s.proc.pid) == (0, 1)
    assert not any("io_uring" in l for l in s.log_lines())
    s.stop()


def test_io_auto_takes_uring_where_it_works(server):
    s = server.start(["-t", "1", "echo@127.0.0.1:0/tcp"], env=env_with())
    assert engine_fds(s.proc.pid) == (1, 0)
    s.stop()


def test_io_uring_denied_is_an_error():
    r = run_kodama(["serve", "--io", "uring", "echo@127.0.0.1:0"],
                   env=env_with(KODAMA_NO_IO_URING="1"))
    assert r.rc == 1, r
    assert r.stdout == b""
    assert r.err_lines == ["kodama: cannot use io_uring: Operation not permitted"], r


def test_io_bad_mode():
    r = run_kodama(["serve", "--io", "poll", "echo@127.0.0.1:0"])
    assert_usage_error(r, "kodama: --io 'poll': not epoll, uring or auto", "serve")


def test_io_bad_env():
    r = run_kodama(["serve", "echo@127.0.0.1:0"], env=env_with(KODAMA_IO="kqueue"))
    assert_usage_error(r, "kodama: KODAMA_IO='kqueue': not epoll, uring or auto", "serve")


def test_idle_connections_hold_no_buffer(server):
    """An idle connection costs its bookkeeping, not a buffer: well under 1 KiB of
    user-space memory each (bench/compare.sh measures the exact figure)."""
    s = server.start(["-t", "1", "echo@127.0.0.1:0/tcp"])
    dest = s.addr("echo")
    # Warm up: the first echo allocates what every later one reuses.
    echo_once(s)
    before = s.rss_kib()
    conns = []
    try:
        for _ in range(3000):
            c = socket.create_connection(dest, timeout=scaled(10))
            conns.append(c)
        # The last one answers, so the server has accepted every one before it.
        conns[-1].sendall(b"x")
        assert recv_exact(conns[-1], 1) == b"x"
        after = s.rss_kib()
    finally:
        for c in conns:
            c.close()
    per_conn = (after - before) * 1024 / len(conns)
    assert per_conn < 512, "%.0f bytes of RSS per idle connection" % per_conn
    s.stop()
