"""serve --io: the epoll and io_uring engines, the fallback, and idle connections' memory.

The whole suite runs once per engine (make integration sets KODAMA_IO); these tests
check the choice itself, seen from outside through /proc/PID/fd."""
import json
import os
import socket
import time

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


def test_port_is_free_again_right_after_stop(server):
    """On io_uring a pending accept or recvmsg holds its socket open: serve must end
    those requests before it exits, or a restart finds its own port still in use."""
    first = server.start(["-t", "2", "echo@127.0.0.1:0", "hello@127.0.0.1:0/tcp"])
    ports = (first.port("echo"), first.port("hello"))
    first.stop()
    for _ in range(3):
        again = server.start(["-t", "2", "echo@127.0.0.1:%d" % ports[0],
                              "hello@127.0.0.1:%d/tcp" % ports[1]])
        assert (again.port("echo"), again.port("hello")) == ports
        again.stop()


# --batch-wait: io_uring's minimum wait (Linux 6.12), seen from the round trips.

NO_MIN_WAIT = "kodama: --batch-wait: this kernel's io_uring has no minimum wait"


def start_batch_wait(server, usec, *extra):
    s = server.start(["--io", "uring", "-t", "1", "--batch-wait", str(usec), *extra,
                      "echo@127.0.0.1:0/tcp"], env=env_with())
    if any(l.startswith(NO_MIN_WAIT) for l in s.log_lines()):
        s.stop()
        pytest.skip("this kernel's io_uring has no minimum wait")
    return s


def round_trips(c, n):
    """Seconds for n echoes of one line each, each sent when the last is back."""
    t0 = time.monotonic()
    for i in range(n):
        line = b"line %d\n" % i
        c.sendall(line)
        assert recv_exact(c, len(line)) == line
    return time.monotonic() - t0


def bench_p50_us(s, conns, rate):
    """kodama bench at a fixed rate for 1 s against s's echo: the median latency."""
    host, port = s.addr("echo")
    r = run_kodama(["bench", "-m", "echo", "-c", str(conns), "-p", "16", "-r", str(rate),
                    "-d", "1", "--json", host, str(port)], timeout=scaled(20))
    assert r.rc == 0, r
    report = json.loads(r.stdout)
    assert report["errors"] == 0 and report["corrupt"] == 0 and report["lost"] == 0, report
    return report["latency_us"]["p50"]


def context_switches(pid):
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
            for line in f:
                if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                    total += int(line.split()[1])
    return total


def test_batch_wait_gathers_under_load(server):
    """At 2,000 echoes/s (4,000 completions/s, 80 in 20 ms) the loop gathers: a
    wait ends when 64 completions are in, ~16 ms, and the median message waits
    for half of that. Without the option, a fraction of a millisecond."""
    s = start_batch_wait(server, 20000)
    assert bench_p50_us(s, 20, 2000) >= 4000
    assert [l for l in s.log_lines() if not l.startswith("kodama: listening")] == \
        ["kodama: ready"]
    s.stop()
    plain = server.start(["--io", "uring", "-t", "1", "echo@127.0.0.1:0/tcp"],
                         env=env_with())
    assert bench_p50_us(plain, 20, 2000) < 2000
    plain.stop()


def test_batch_wait_stays_off_at_low_rates(server):
    """At 50 echoes/s a 20 ms wait would take in 2 completions, too few to gather:
    each message is answered at once."""
    s = start_batch_wait(server, 20000)
    assert bench_p50_us(s, 1, 50) < 5000
    with connect(s.addr("echo"), socket.AF_INET) as c:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        assert round_trips(c, 10) < 0.18
    s.stop()


def test_batch_wait_after_load_a_quiet_loop_answers_at_once_and_sleeps(server):
    """Gathering under load, then quiet: the wait in progress finds nothing by the
    end of its 300 ms and sleeps on (no wake-up every 300 ms), and the first message
    after it is answered at once."""
    s = start_batch_wait(server, 300000)
    assert bench_p50_us(s, 20, 2000) >= 4000       # it gathered
    time.sleep(0.6)
    before = context_switches(s.proc.pid)
    time.sleep(1.0)
    woke = context_switches(s.proc.pid) - before
    assert woke < 20, "%d context switches in 1 s of quiet" % woke
    with connect(s.addr("echo"), socket.AF_INET) as c:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        assert round_trips(c, 1) < 0.25
    s.stop()


def test_batch_wait_on_epoll_is_said_and_harmless(server):
    s = server.start(["--io", "epoll", "-t", "1", "--batch-wait", "100",
                      "echo@127.0.0.1:0/tcp"], env=env_with())
    assert ("kodama: --batch-wait is for io_uring; epoll handles each batch as it comes"
            in s.log_lines())
    echo_once(s)
    s.stop()


@pytest.mark.parametrize("arg,why", [("1000001", "too large"), ("-1", "not a number"),
                                     ("20ms", "not a number")])
def test_batch_wait_bad_value(arg, why):
    r = run_kodama(["serve", "--batch-wait", arg, "echo@127.0.0.1:0"])
    assert_usage_error(r, "kodama: --batch-wait '%s': %s (0 to 1000000 microseconds)"
                       % (arg, why), "serve")
