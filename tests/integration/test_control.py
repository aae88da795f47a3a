"""serve --control (kodama.1, FAULTS): list, set and clear a listener's faults over
HTTP/1.1 while it serves; new connections see a change at once and open ones at their
next chunk; bad requests get a 4xx with a one-line reason and never harm the server;
only unix sockets and loopback addresses unless --control-any."""
import json
import os
import re
import socket
import stat
import time

import pytest

from kodama_helpers import (assert_usage_error, connect, recv_exact, recv_until_eof,
                            run_kodama, scaled)
from test_audit import hold_until_refused, limit_fds, proc_cpu_seconds


def http(addr, request, timeout=5.0):
    """Send raw request bytes, read to EOF: (status code, headers, body bytes)."""
    fam = socket.AF_UNIX if isinstance(addr, str) else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.settimeout(scaled(timeout))
        s.connect(addr)
        s.sendall(request)
        data = recv_until_eof(s)
    head, sep, body = data.partition(b"\r\n\r\n")
    assert sep, data[:300]
    lines = head.decode().split("\r\n")
    headers = dict(l.split(": ", 1) for l in lines[1:])
    assert int(headers["Content-Length"]) == len(body), data[:300]
    assert headers["Connection"] == "close"
    return int(lines[0].split()[1]), headers, body


def call(addr, method, path, body=None):
    req = "%s %s HTTP/1.1\r\nHost: kodama\r\n" % (method, path)
    if body is not None:
        req += "Content-Length: %d\r\n" % len(body.encode())
    req += "\r\n" + (body or "")
    return http(addr, req.encode())


def ok_json(addr, method, path, body=None):
    status, headers, data = call(addr, method, path, body)
    assert status == 200, (status, data)
    assert headers["Content-Type"] == "application/json"
    return json.loads(data)


def rtt(sock, data=b"ping"):
    t0 = time.monotonic()
    sock.sendall(data)
    assert recv_exact(sock, len(data)) == data
    return time.monotonic() - t0


def controlled(server, *specs, args=()):
    return server.start(["-t", "2", "--control", "127.0.0.1:0", *args, *specs])


def test_listening_line_and_the_list(server):
    s = controlled(server, "echo@127.0.0.1:0,latency=10ms,name=slow", "hello@127.0.0.1:0/tcp")
    lines = s.log().splitlines()
    assert re.match(r"^kodama: listening control tcp 127\.0\.0\.1:\d+$",
                    lines[lines.index("kodama: ready") - 1]), lines
    got = ok_json(s.addr("control"), "GET", "/faults")
    hello = "hello-%d" % s.port("hello")
    assert [g["name"] for g in got] == ["slow", hello]
    assert got[0]["service"] == "echo"
    assert got[0]["sockets"] == [{"proto": "tcp", "address": s.addr_text("echo")},
                                 {"proto": "udp", "address": s.addr_text("echo", "udp")}]
    assert got[0]["faults"] == "latency=10ms"
    assert got[1]["faults"] == ""
    assert ok_json(s.addr("control"), "GET", "/faults/slow") == got[0]
    s.stop()


def test_put_reaches_new_connections_at_once_and_delete_clears(server):
    s = controlled(server, "echo@127.0.0.1:0/tcp")
    name = "echo-%d" % s.port("echo")
    got = ok_json(s.addr("control"), "PUT", "/faults/" + name, "latency=200ms\n")
    assert got["faults"] == "latency=200ms" and got["version"] == 1
    with connect(s.addr("echo")) as c:
        t = rtt(c)
    assert 0.2 <= t <= 0.3 + scaled(0.1), t
    got = ok_json(s.addr("control"), "DELETE", "/faults/" + name)
    assert got["faults"] == "" and got["version"] == 2
    with connect(s.addr("echo")) as c:
        assert rtt(c) < 0.1
    s.wait_log(lambda log: ("kodama: control: the faults of %s are now 'latency=200ms'" % name)
               in log.splitlines())
    s.stop()


def test_an_open_connection_sees_a_change_at_its_next_chunk(server):
    s = controlled(server, "echo@127.0.0.1:0/tcp,name=e")
    with connect(s.addr("echo")) as c:
        assert rtt(c) < 0.1
        ok_json(s.addr("control"), "PUT", "/faults/e", "latency=200ms")
        t = rtt(c)
        assert 0.2 <= t <= 0.3 + scaled(0.1), t
        ok_json(s.addr("control"), "PUT", "/faults/e", "close-after=0")
        c.sendall(b"next")              # its next chunk meets the new faults: a FIN
        assert c.recv(10) == b""
    s.stop()


def test_put_replaces_the_faults_given_at_start(server):
    s = controlled(server, "hello@127.0.0.1:0/tcp,close-after=0,name=h")
    with connect(s.addr("hello")) as c:
        assert recv_until_eof(c) == b""
    got = ok_json(s.addr("control"), "PUT", "/faults/h", "greet-delay=100ms")
    assert got["faults"] == "greet-delay=100ms"
    with connect(s.addr("hello")) as c:
        assert recv_until_eof(c) == b"Hello from server!\n"
    s.stop()


def test_udp_faults_at_run_time(server):
    s = controlled(server, "echo@127.0.0.1:0/udp,name=u")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.settimeout(scaled(2))
        u.sendto(b"one", s.addr("echo", "udp"))
        assert u.recv(10) == b"one"
        ok_json(s.addr("control"), "PUT", "/faults/u", "drop=1")
        u.sendto(b"two", s.addr("echo", "udp"))
        u.settimeout(0.3)
        with pytest.raises(socket.timeout):
            u.recv(10)
        ok_json(s.addr("control"), "DELETE", "/faults/u")
        u.settimeout(scaled(2))
        u.sendto(b"three", s.addr("echo", "udp"))
        assert u.recv(10) == b"three"
    s.stop()


@pytest.mark.parametrize("request_bytes,status,reason", [
    (b"PUT /faults/e HTTP/1.1\r\nContent-Length: 7\r\n\r\nbogus=1", 400,
     "unknown option 'bogus' in 'bogus=1'"),
    (b"PUT /faults/e HTTP/1.1\r\nContent-Length: 8\r\n\r\ndrop=0.5", 400,
     "'drop' is for udp listeners in 'drop=0.5'"),
    (b"PUT /faults/e HTTP/1.1\r\nContent-Length: 6\r\n\r\nname=x", 400,
     "'name' cannot change at run time in 'name=x'"),
    (b"PUT /faults/e HTTP/1.1\r\nContent-Length: 13\r\n\r\nlatency=2days", 400,
     "latency=2days: not a duration (seconds, or with ms or s) in 'latency=2days'"),
    (b"PUT /faults/e HTTP/1.1\r\nContent-Length: 3\r\n\r\na\x00b", 400, "the body has a NUL byte"),
    # The reason quotes the body: what is not UTF-8 comes back as U+FFFD (charset=utf-8).
    (b"PUT /faults/e HTTP/1.1\r\nContent-Length: 6\r\n\r\n\xff\xfe\xc3\xa9=1", 400,
     "unknown option '\ufffd\ufffd\u00e9' in '\ufffd\ufffd\u00e9=1'"),
    (b"GET /faults/nope HTTP/1.1\r\n\r\n", 404, "no listener is named 'nope' (GET /faults lists them)"),
    (b"GET /metrics HTTP/1.1\r\n\r\n", 404, "kodama serves /faults and /faults/NAME here"),
    (b"POST /faults HTTP/1.1\r\n\r\n", 405, "GET /faults, or PUT and DELETE /faults/NAME"),
    (b"PATCH /faults/e HTTP/1.1\r\n\r\n", 405, "GET, PUT or DELETE /faults/NAME"),
    (b"PUT /faults/e HTTP/1.1\r\nContent-Length: 5000\r\n\r\n", 413, "the body is too long"),
    (b"PUT /faults/e HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 501,
     "Transfer-Encoding is not supported: send Content-Length"),
    (b"GET /faults HTTP/3.0\r\n\r\n", 505, "only HTTP/1.1 and HTTP/1.0"),
    (b"hello\r\n\r\n", 400, "not a request line (METHOD /PATH HTTP/1.1)"),
    (b"hello there HTTP/1.1\r\n\r\n", 400, "the target must be a path (/faults)"),
    (b"GET /faults HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n", 431, "the head is longer than 8 KiB"),
])
def test_bad_requests_get_a_4xx_and_a_reason(server, request_bytes, status, reason):
    s = controlled(server, "echo@127.0.0.1:0/tcp,name=e,latency=5ms")
    got, headers, body = http(s.addr("control"), request_bytes)
    assert (got, body) == (status, reason.encode() + b"\n")
    if status == 405:
        assert "GET" in headers["Allow"]
    # Nothing changed, and the server goes on.
    assert ok_json(s.addr("control"), "GET", "/faults/e")["faults"] == "latency=5ms"
    s.stop()


@pytest.mark.parametrize("path,status", [("/faults/nope", 404), ("/nothing", 404)])
def test_head_of_an_error_has_no_body_either(server, path, status):
    """RFC 9110 9.3.2: a response to HEAD has no content, whatever its status."""
    s = controlled(server, "echo@127.0.0.1:0/tcp,name=e")
    with socket.create_connection(s.addr("control"), timeout=scaled(5)) as c:
        c.sendall(("HEAD %s HTTP/1.1\r\nHost: kodama\r\n\r\n" % path).encode())
        data = recv_until_eof(c)
    head, sep, body = data.partition(b"\r\n\r\n")
    assert sep, data
    lines = head.decode().split("\r\n")
    headers = dict(l.split(": ", 1) for l in lines[1:])
    assert int(lines[0].split()[1]) == status
    assert int(headers["Content-Length"]) > 0
    assert body == b""
    # and a HEAD that finds its listener is the GET's head
    with socket.create_connection(s.addr("control"), timeout=scaled(5)) as c:
        c.sendall(b"HEAD /faults/e HTTP/1.1\r\n\r\n")
        assert recv_until_eof(c).endswith(b"\r\n\r\n")
    s.stop()


def test_hostile_clients_cannot_wedge_it(server):
    """Half requests held open, garbage, and clients that vanish: the control API and
    the listeners still answer, and nothing changed."""
    s = controlled(server, "echo@127.0.0.1:0/tcp,name=e")
    held = []
    for i in range(12):     # more than it serves at once
        h = socket.create_connection(s.addr("control"), timeout=scaled(5))
        h.sendall(b"PUT /faults/e HTTP/1.1\r\nContent-Length: 100\r\n\r\nlat")
        held.append(h)
    for junk in (b"\x00\xff" * 100, b"GET", b"\r\n" * 50):
        with socket.create_connection(s.addr("control"), timeout=scaled(5)) as j:
            j.sendall(junk)
    with connect(s.addr("echo")) as c:
        assert rtt(c) < 0.5
    for h in held:
        h.close()
    assert ok_json(s.addr("control"), "GET", "/faults/e")["faults"] == ""
    s.stop()


def test_a_unix_control_socket_is_the_users_alone(server, sockdir):
    path = os.path.join(sockdir, "control.sock")
    s = server.start(["--control", "unix:" + path, "echo@127.0.0.1:0/tcp,name=e"])
    assert s.addr_text("control", "unix") == "unix:" + path
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert ok_json(path, "PUT", "/faults/e", "rate=1m")["faults"] == "rate=1048576"
    s.stop()
    assert not os.path.exists(path)


def test_curl_drives_it(server):
    import shutil
    import subprocess
    curl = shutil.which("curl")
    if not curl:
        pytest.skip("curl is not installed")
    s = controlled(server, "echo@127.0.0.1:0/tcp,name=e")
    url = "http://127.0.0.1:%d/faults/e" % s.port("control")
    out = subprocess.run([curl, "-sf", "-X", "PUT", "--data", "latency=50ms,slice=2", url],
                         capture_output=True, timeout=10, check=True).stdout
    assert json.loads(out)["faults"] == "latency=50ms,slice=2"
    out = subprocess.run([curl, "-s", "-X", "PUT", "--data", "slice=x", url],
                         capture_output=True, timeout=10).stdout
    assert out == b"slice=x: not a byte count in 'slice=x'\n" or out.startswith(b"slice=x: "), out
    s.stop()


def test_out_of_descriptors_it_pauses_and_logs_a_line_a_second(server):
    s = server.start(["-t", "1", "--max-conns", "1000", "echo@127.0.0.1:0/tcp",
                      "--control", "127.0.0.1:0"], preexec_fn=limit_fds(80))
    held = hold_until_refused(s.addr("echo"), 100)
    assert len(held) < 100, "the descriptor limit did not bite"
    m = socket.create_connection(s.addr("control"), timeout=scaled(5))
    m.sendall(b"GET /faults HTTP/1.1\r\nHost: x\r\n\r\n")
    cpu0 = proc_cpu_seconds(s.proc.pid)
    time.sleep(2.0)
    cpu = proc_cpu_seconds(s.proc.pid) - cpu0
    lines = [l for l in s.log_lines() if "cannot accept on control tcp" in l]
    assert cpu < 0.5, cpu
    assert 1 <= len(lines) <= 4, lines
    assert lines[0] == ("kodama: cannot accept on control tcp %s: Too many open files"
                        % s.addr_text("control")), lines
    for h in held:
        h.close()
    m.settimeout(scaled(5))
    assert recv_until_eof(m).startswith(b"HTTP/1.1 200 OK\r\n")
    m.close()
    s.stop()


def test_any_address_needs_control_any(server):
    r = run_kodama(["serve", "--control", "0.0.0.0:0", "echo@127.0.0.1:0"])
    assert_usage_error(r, "kodama: --control '0.0.0.0:0': 0.0.0.0 is not a loopback address, "
                       "and the control API has no authentication (--control-any allows it)",
                       "serve")
    s = server.start(["--control", "0.0.0.0:0", "--control-any", "echo@127.0.0.1:0/tcp"])
    assert s.addr_text("control").startswith("0.0.0.0:")
    assert call(("127.0.0.1", s.port("control")), "GET", "/faults")[0] == 200
    s.stop()


def test_a_v4_mapped_loopback_address_binds(server):
    """[::ffff:127.0.0.1] is a loopback address (IPv4 through an IPv6 socket), so it
    is allowed without --control-any: it must bind too, not fail with EINVAL from an
    IPV6_V6ONLY socket that can never hold an IPv4 address."""
    s = server.start(["--control", "[::ffff:127.0.0.1]:0", "echo@127.0.0.1:0/tcp"])
    assert call(("127.0.0.1", s.port("control")), "GET", "/faults")[0] == 200
    s.stop()


def test_a_bare_port_means_loopback(server):
    from kodama_helpers import free_port
    port = free_port()
    s = server.start(["--control", str(port), "echo@127.0.0.1:0/tcp"])
    assert s.addr_text("control") == "127.0.0.1:%d" % port
    s.stop()


@pytest.mark.parametrize("args,msg", [
    (["--control", "nope"], "--control 'nope': invalid port 'nope'"),
    (["--control", "1.2.3.4:7/udp"], "--control '1.2.3.4:7/udp': not unix:PATH, PORT, HOST:PORT "
     "or [IPV6]:PORT"),
    (["--control", "127.0.0.1:7-9"], "--control '127.0.0.1:7-9': one port, not a range"),
    (["--control", "::1:9000"],
     "--control '::1:9000': an IPv6 address needs brackets, as in [::1]:7007"),
    (["--control-any"], "--control-any without --control"),
    # A malformed unix: address is a usage error (exit 2), as in a SPEC.
    (["--control", "unix:"], "--control 'unix:': not unix:PATH (at most 107 bytes)"),
    (["--control", "unix:@"], "--control 'unix:@': not unix:PATH (at most 107 bytes)"),
])
def test_control_usage_errors(args, msg):
    assert_usage_error(run_kodama(["serve", *args, "echo@127.0.0.1:0"]), "kodama: " + msg, "serve")
