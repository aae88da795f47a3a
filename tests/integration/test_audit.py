"""Reliability, round two: what an audit of the parsers, limits and shutdown found.
Each test fails on the code before its fix.

- out of descriptors, the metrics thread pauses and retries instead of spinning, and
  logs a line a second at most, with a count, then serves again;
- with --user, the unix socket file is the user's, so SIGTERM removes it even in a
  sticky directory; a removal that fails is logged;
- an abstract unix name of 107 bytes works (108 is a clear error), for serve and
  every client;
- SIGHUP never stops the server;
- the count of drops that a burst left unreported is told a second later, or at exit;
- after an idle-timeout goodbye, both engines discard late input and wait for the
  client's FIN: no reset;
- the SPEC grammar: port ranges, escapes in unix paths, options, "+tls".
"""
import os
import pwd
import re
import resource
import signal
import socket
import stat
import time

import pytest

import kodama_helpers as kh


def proc_cpu_seconds(pid):
    """User plus system CPU of a process, all threads, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- 1

def limit_fds(n):
    def pre():
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
    return pre


def hold_until_refused(addr, most):
    """Connections to addr (each answering an echo) until the server stops taking
    them: the last few wait in its backlog unanswered."""
    held = []
    for i in range(most):
        s = socket.create_connection(addr, timeout=kh.scaled(5))
        held.append(s)
        s.sendall(b"x")
        s.settimeout(kh.scaled(0.5))
        try:
            if s.recv(1) != b"x":
                break
        except socket.timeout:
            break       # accepted by the kernel, not by kodama: out of descriptors
    return held


def test_metrics_out_of_descriptors_pauses_logs_and_recovers(server):
    s = server.start(["-t", "1", "--max-conns", "1000", "echo@127.0.0.1:0/tcp",
                      "--metrics", "127.0.0.1:0"], preexec_fn=limit_fds(80))
    held = hold_until_refused(s.addr("echo"), 100)
    assert len(held) < 100, "the descriptor limit did not bite"
    m = socket.create_connection(s.addr("metrics"), timeout=kh.scaled(5))
    m.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    cpu0 = proc_cpu_seconds(s.proc.pid)
    time.sleep(2.0)
    cpu = proc_cpu_seconds(s.proc.pid) - cpu0
    lines = [l for l in s.log_lines() if "cannot accept on metrics tcp" in l]
    assert cpu < 0.5, "the server spent %.2f s of CPU in 2 s while out of descriptors" % cpu
    assert 1 <= len(lines) <= 4, lines
    # The line names the address, as a listener's does.
    where = "metrics tcp " + s.addr_text("metrics")
    assert lines[0] == "kodama: cannot accept on %s: Too many open files" % where, lines
    for l in lines[1:]:
        assert re.fullmatch(r"kodama: cannot accept on %s: Too many open files "
                            r"\(\d+ more since the last report\)" % re.escape(where), l), lines
    for h in held:
        h.close()
    # Back in service: the waiting scrape is answered once descriptors are free.
    m.settimeout(kh.scaled(5))
    reply = kh.recv_until_eof(m)
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n"), reply[:200]
    m.close()
    s.stop()


def test_worker_out_of_descriptors_logs_bounded_and_recovers(server):
    s = server.start(["-t", "1", "--max-conns", "1000", "echo@127.0.0.1:0/tcp"],
                     preexec_fn=limit_fds(40))
    held = hold_until_refused(s.addr("echo"), 100)
    assert len(held) < 100
    cpu0 = proc_cpu_seconds(s.proc.pid)
    time.sleep(2.0)
    cpu = proc_cpu_seconds(s.proc.pid) - cpu0
    lines = [l for l in s.log_lines() if "cannot accept on echo tcp" in l]
    assert cpu < 0.5, cpu
    assert 1 <= len(lines) <= 4, lines
    for h in held:
        h.close()
    c = socket.create_connection(s.addr("echo"), timeout=kh.scaled(5))
    c.sendall(b"back")
    assert kh.recv_exact(c, 4) == b"back"
    c.close()
    s.stop()


# --------------------------------------------------------------------------- 2

def nobody():
    if os.geteuid() != 0:
        pytest.skip("--user needs root")
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody' here")


def test_user_removes_its_unix_socket_in_a_sticky_directory(server, sockdir):
    who = nobody()
    os.chmod(sockdir, 0o755)    # the user must reach the directory
    d = os.path.join(sockdir, "sticky")
    os.mkdir(d)
    os.chmod(d, 0o1777)
    path = os.path.join(d, "k.sock")
    s = server.start(["--user", "nobody", "echo@unix:" + path])
    st = os.stat(path)
    assert stat.S_ISSOCK(st.st_mode)
    assert st.st_uid == who.pw_uid, "the socket file is not the user's"
    c = kh.connect(path)
    c.sendall(b"hi")
    assert kh.recv_exact(c, 2) == b"hi"
    c.close()
    text = s.stop()
    assert not os.path.exists(path), "SIGTERM left the socket file behind"
    assert "cannot remove" not in text, text


def test_user_logs_a_socket_file_it_cannot_remove(server, sockdir):
    nobody()
    os.chmod(sockdir, 0o755)
    d = os.path.join(sockdir, "root-only")
    os.mkdir(d)
    os.chmod(d, 0o755)      # nobody may not remove entries here
    path = os.path.join(d, "k.sock")
    s = server.start(["--user", "nobody", "echo@unix:" + path])
    text = s.stop()
    assert os.path.exists(path)
    assert "kodama: cannot remove the socket file of echo unix unix:%s: Permission denied" % path \
        in text.splitlines(), text


# --------------------------------------------------------------------------- 3

NAME107 = "@" + "a" * 107
NAME108 = "@" + "b" * 108


def test_abstract_name_of_107_bytes_works_everywhere(server):
    s = server.start(["echo@unix:" + NAME107])
    assert s.addr_text("echo", "unix") == "unix:" + NAME107
    r = kh.run_kodama(["send", "-U", NAME107, "hello"])
    assert r.rc == 0 and r.stdout == b"hello\n", r
    r = kh.run_kodama(["connect", "-U", NAME107], input=b"relayed")
    assert r.rc == 0 and r.stdout == b"relayed", r
    r = kh.run_kodama(["bench", "-U", NAME107, "-d", "0.2", "--warmup", "0", "-q"])
    assert r.rc == 0, r
    s.stop()


def test_abstract_name_of_108_bytes_is_a_clear_error():
    r = kh.run_kodama(["serve", "echo@unix:" + NAME108])
    kh.assert_usage_error(r, "kodama: abstract socket name longer than 107 bytes in 'echo@unix:%s...'"
                          % NAME108[:54], "serve")
    for cmd in (["send", "-U", NAME108, "x"], ["connect", "-U", NAME108],
                ["bench", "-U", NAME108]):
        r = kh.run_kodama(cmd)
        kh.assert_usage_error(r, "kodama: -U: an abstract name longer than 107 bytes", cmd[0])


# --------------------------------------------------------------------------- 4

def test_sighup_is_logged_and_serving_goes_on(server, sockdir):
    path = os.path.join(sockdir, "hup.sock")
    s = server.start(["echo@unix:" + path, "echo@127.0.0.1:0/tcp"])
    s.send_signal(signal.SIGHUP)
    s.wait_log(lambda t: "kodama: SIGHUP: nothing to reload" in t.splitlines())
    time.sleep(0.2)
    assert s.proc.poll() is None, "SIGHUP stopped the server"
    for addr in (path, s.addr("echo")):
        c = kh.connect(addr)
        c.sendall(b"still")
        assert kh.recv_exact(c, 5) == b"still"
        c.close()
    text = s.stop()
    assert text.splitlines().count("kodama: SIGHUP: nothing to reload") == 1, text
    assert not os.path.exists(path)


# --------------------------------------------------------------------------- 5

def refuse_burst(s, n):
    keep = socket.create_connection(s.addr("echo"), timeout=kh.scaled(5))
    keep.sendall(b"k")
    assert kh.recv_exact(keep, 1) == b"k"
    for _ in range(n):
        try:
            c = socket.create_connection(s.addr("echo"), timeout=kh.scaled(5))
        except ConnectionResetError:
            continue    # the reset came before connect() returned: refused all the same
        try:
            c.recv(1)
        except (ConnectionResetError, socket.timeout):
            pass
        c.close()
    return keep


TAIL_RE = re.compile(r"kodama: refused (\d+) more connections since the last report: "
                     r"1 connections open \(--max-conns\)$")


def refused_count(text):
    first = [l for l in text.splitlines() if l.startswith("kodama: refused echo tcp ")]
    tails = [int(m.group(1)) for m in map(TAIL_RE.match, text.splitlines()) if m]
    return len(first), tails


def test_drop_counts_of_a_burst_are_told_a_second_later(server):
    s = server.start(["-t", "1", "--max-conns", "1", "echo@127.0.0.1:0/tcp"])
    keep = refuse_burst(s, 20)
    text = s.wait_log(lambda t: refused_count(t)[1], timeout=3)
    first, tails = refused_count(text)
    assert first >= 1 and first + sum(tails) == 20, text
    keep.close()
    s.stop()


def test_drop_counts_left_at_exit_are_told_then(server):
    s = server.start(["-t", "1", "--max-conns", "1", "echo@127.0.0.1:0/tcp"])
    refuse_burst(s, 10).close()
    text = s.stop()     # within the second: the tail comes with the exit
    first, tails = refused_count(text)
    assert first >= 1 and first + sum(tails) == 10, text
    assert text.splitlines().index("kodama: stopping") < \
        [i for i, l in enumerate(text.splitlines()) if TAIL_RE.match(l)][-1], text


# --------------------------------------------------------------------------- 6

def test_idle_goodbye_then_late_input_gets_no_reset(server):
    s = server.start(["-v", "--idle-timeout", "1", "echo@127.0.0.1:0/tcp"])
    c = socket.create_connection(s.addr("echo"), timeout=kh.scaled(5))
    c.sendall(b"first")
    assert kh.recv_exact(c, 5) == b"first"
    assert c.recv(10) == b"", "no goodbye (FIN) after the idle timeout"
    c.sendall(b"late")          # after our FIN: to be discarded, never echoed
    time.sleep(0.3)
    c.sendall(b"later")         # would meet a reset if the server had closed
    time.sleep(0.3)
    c.shutdown(socket.SHUT_WR)
    try:
        rest = c.recv(10)
    except ConnectionResetError:
        pytest.fail("the server reset the connection after its idle goodbye")
    assert rest == b""
    c.close()
    text = s.wait_log(lambda t: " in=14 out=5" in t)
    assert re.search(r"^kodama: close echo tcp 127\.0\.0\.1:\d+ in=14 out=5$", text, re.M), text
    s.stop()


# --------------------------------------------------------------------------- 7

def free_port_run(n):
    """A first port of n free ones in a row on 127.0.0.1 (tcp), below the ephemeral range."""
    import random
    for _ in range(50):
        base = random.randrange(20000, 30000)
        socks = []
        try:
            for i in range(n):
                ps = socket.socket()
                socks.append(ps)
                ps.bind(("127.0.0.1", base + i))
            return base
        except OSError:
            continue
        finally:
            for ps in socks:
                ps.close()
    pytest.skip("no %d free ports in a row" % n)


def test_port_range_listens_on_each_port(server):
    base = free_port_run(3)
    s = server.start(["echo@127.0.0.1:%d-%d/tcp" % (base, base + 2)])
    assert [l[2] for l in s.listeners] == ["127.0.0.1:%d" % (base + i) for i in range(3)]
    for i in range(3):
        c = socket.create_connection(("127.0.0.1", base + i), timeout=kh.scaled(5))
        c.sendall(b"p%d" % i)
        assert kh.recv_exact(c, 2) == b"p%d" % i
        c.close()
    s.stop()


def test_unix_path_with_an_escaped_comma(server, sockdir):
    path = os.path.join(sockdir, "a,b.sock")
    s = server.start(["echo@unix:" + path.replace(",", "\\,")])
    assert s.addr_text("echo", "unix") == "unix:" + path
    assert os.path.exists(path)
    s.stop()


@pytest.mark.parametrize("spec, reason", [
    ("echo@7007/tcp,lateness=200ms", "unknown option 'lateness' in 'echo@7007/tcp,lateness=200ms'"),
    ("echo@7007/udp,slice=1", "'slice' is for stream listeners in 'echo@7007/udp,slice=1'"),
    ("echo@7007/udp+tls", "'+tls' is for stream listeners: add /tcp before it in 'echo@7007/udp+tls'"),
    ("echo@7007/tcp+tls+proxy", "'+tls' goes after '+proxy' (the PROXY header comes before the "
     "ClientHello) in 'echo@7007/tcp+tls+proxy'"),
    ("echo@7009-7000", "port range 7009-7000 runs backwards in 'echo@7009-7000'"),
])
def test_spec_grammar_errors(spec, reason):
    kh.assert_usage_error(kh.run_kodama(["serve", spec]), "kodama: " + reason, "serve")
