"""The classic inetd services (discard, chargen, daytime, time) and info, over tcp
and udp, IPv4 and IPv6, and unix where a stream makes sense: exact bytes against
RFC 863, 864, 867 and 868, the info line's keys and values, and the UDP guard's rule
for each (a record reply is sent whole or not at all)."""
import calendar
import json
import os
import re
import socket
import threading
import time

import pytest

from kodama_helpers import (assert_usage_error, connect, recv_exact, recv_until_eof,
                            run_kodama, scaled, udp_exchange)
from test_limits import COUNTERS_RE, counters

RFC868_1970 = 2208988800
LINE = 74


def chargen_line(i):
    """RFC 864: 72 characters of the 95 printable ones from the (i mod 95)th, CR LF."""
    chars = bytes(range(0x20, 0x7f))
    start = i % 95
    return bytes(chars[(start + k) % 95] for k in range(72)) + b"\r\n"


def chargen(n_lines, first=0):
    return b"".join(chargen_line(i) for i in range(first, first + n_lines))


def test_chargen_reference_lines():
    """The reference itself, against the RFC's printed first line."""
    assert chargen_line(0) == (b" !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                               b"[\\]^_`abcdefg\r\n")
    assert chargen_line(94)[:2] == b"~ "
    assert chargen_line(95) == chargen_line(0)


def start_all(server, sockdir, extra=(), services=("discard", "chargen", "daytime", "time",
                                                   "info")):
    specs = []
    for svc in services:
        specs += ["%s@127.0.0.1:0" % svc, "%s@[::1]:0" % svc,
                  "%s@unix:%s" % (svc, os.path.join(sockdir, svc + ".sock"))]
    return server.start([*extra, *specs])


def stream_addrs(s, service):
    """(label, sockaddr) of each stream listener of service."""
    out = []
    for svc, proto, text, sa in s.listeners:
        if svc == service and proto in ("tcp", "unix"):
            out.append((text, sa))
    assert len(out) == 3, s.listeners
    return out


def udp_addrs(s, service):
    return [sa for svc, proto, text, sa in s.listeners if svc == service and proto == "udp"]


def no_reply(dest, payload, wait=0.4):
    with pytest.raises(socket.timeout):
        udp_exchange(dest, payload, timeout=wait)


# --------------------------------------------------------------------------- chargen

def test_chargen_tcp_rotation_all_transports(server, sockdir):
    """Two full rotations (190 lines) exact, on tcp v4, v6 and unix; input is ignored."""
    s = start_all(server, sockdir, services=("chargen",))
    want = chargen(2 * 95 + 3)
    for label, sa in stream_addrs(s, "chargen"):
        with connect(sa) as c:
            c.sendall(b"ignored input\r\n" * 100)
            assert recv_exact(c, len(want)) == want, label
    s.stop()


def test_chargen_long_run_stays_in_pattern(server):
    """Several MiB: past the server's own buffer of cycles, the rotation goes on."""
    s = server.start(["chargen@127.0.0.1:0/tcp"])
    cycle = chargen(95)
    n = 4 << 20
    with connect(s.addr("chargen")) as c:
        got = recv_exact(c, n)
    reps = n // len(cycle) + 1
    assert got == (cycle * reps)[:n]
    s.stop()


def test_chargen_reader_that_never_reads_is_reset(server):
    """--send-timeout resets a chargen peer that reads nothing, and nobody else."""
    s = server.start(["-v", "--send-timeout", "1", "chargen@127.0.0.1:0/tcp"])
    hog = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    hog.connect(s.addr("chargen"))
    good = connect(s.addr("chargen"))
    cycle = chargen(95)
    got = bytearray()
    t0 = time.monotonic()
    while time.monotonic() - t0 < scaled(3):          # reads all the while
        got += good.recv(65536)
        time.sleep(0.01)
    reps = len(got) // len(cycle) + 1
    assert bytes(got) == (cycle * reps)[:len(got)]
    hog.settimeout(scaled(5))
    with pytest.raises(ConnectionResetError):
        while hog.recv(65536):
            pass
    hog.close()
    good.close()
    log = s.stop()
    assert re.search(r"^kodama: dropped chargen tcp 127\.0\.0\.1:\d+ from 127\.0\.0\.1:\d+: "
                     r"read nothing for 1 s while output waited \(--send-timeout\)$", log, re.M), log
    assert counters(log, "chargen", "tcp")["send_timeout"] == 1


def read_chargen_slowly(addr, size, pause, secs):
    """Read chargen from addr for secs, size bytes at a time with a pause between:
    the bytes must be chargen's, and no EOF or reset may come."""
    c = connect(addr)
    c.settimeout(scaled(5))
    got = bytearray()
    t0 = time.monotonic()
    while time.monotonic() - t0 < secs:
        b = c.recv(size)
        assert b, "EOF after %d bytes" % len(got)
        got += b
        time.sleep(pause)
    c.close()
    cycle = chargen(95)
    assert bytes(got) == (cycle * (len(got) // len(cycle) + 1))[:len(got)]


@pytest.mark.parametrize("size,pause", [(8192, 0.02), (8192, 0.05)])   # ~400, ~160 KB/s
def test_chargen_reader_that_reads_slowly_is_not_reset(server, size, pause):
    """--send-timeout counts only time in which the peer takes nothing. The kernel
    wakes a waiting send only once a third of the send buffer (up to 4 MiB) is free,
    which a reader at 160-400 KB/s takes seconds to make: the server must see the
    reader's progress in the socket's queue, not only in its own sends. (That shows
    it in steps of the peer's window updates, an MSS apart: 64 KiB on loopback.)"""
    s = server.start(["-v", "--send-timeout", "1", "chargen@127.0.0.1:0/tcp"])
    read_chargen_slowly(s.addr("chargen"), size, pause, 4)
    log = s.stop()
    assert counters(log, "chargen", "tcp")["send_timeout"] == 0, log


def test_chargen_and_discard_end_with_the_drain(server):
    """SIGTERM: when --drain-timeout ends, chargen stops at once and says goodbye (EOF),
    well before the 1 s stop deadline would close it; discard too; the server exits 0."""
    s = server.start(["--drain-timeout", "0.3", "chargen@127.0.0.1:0/tcp",
                      "discard@127.0.0.1:0/tcp"])
    cg = connect(s.addr("chargen"))
    dc = connect(s.addr("discard"))
    dc.sendall(b"x" * 1000)
    assert len(recv_exact(cg, 10000)) == 10000
    done = {}

    def drain_chargen():
        n = 0
        while True:
            b = cg.recv(65536)
            if not b:
                break
            n += len(b)
        done["chargen"] = n
        done["at"] = time.monotonic()

    t = threading.Thread(target=drain_chargen, daemon=True)
    t.start()
    t0 = time.monotonic()
    s.send_signal()
    assert recv_until_eof(dc) == b""
    t.join(scaled(10))
    assert "chargen" in done, "chargen never ended after SIGTERM"
    assert done["at"] - t0 < 0.3 + 0.6, "chargen ended %.2f s after SIGTERM" % (done["at"] - t0)
    assert s.proc.wait(scaled(10)) == 0
    cg.close()
    dc.close()


# The UDP guard's bound: a reply's wire bytes (payload + IP and UDP headers) at most
# three times the request's (RFC 9000 §8.1). Headers: IPv4 28 bytes, IPv6 48.
WIRE = {"127.0.0.1": 28, "::1": 48}


def udp_bound(host, request_len):
    return 3 * (request_len + WIRE[host]) - WIRE[host]


def shortest_request(host, reply_len):
    """The shortest request whose bound holds a reply of reply_len bytes."""
    return max(0, -(-(reply_len + WIRE[host]) // 3) - WIRE[host])


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_chargen_udp(server, host):
    """Six whole lines (444 bytes) per datagram, cut by the guard to three times the
    request on the wire (any prefix is still chargen); with the guard off every
    datagram, empty too, gets all six."""
    h = "[::1]" if host == "::1" else host
    s = server.start(["chargen@%s:0/udp" % h])
    dest = s.addr("chargen", "udp")
    reply, src = udp_exchange(dest, b"x" * 1000)
    assert reply == chargen(6) and len(reply) == 444
    assert src[:2] == dest
    for n in (100, 1, 0):
        reply, _ = udp_exchange(dest, b"x" * n)
        assert reply == chargen(6)[:udp_bound(host, n)], (n, len(reply))
    assert len(udp_exchange(dest, b"")[0]) == (56 if host == "127.0.0.1" else 96)
    reply, _ = udp_exchange(dest, b"x" * shortest_request(host, 444))
    assert reply == chargen(6)
    s.stop()
    s = server.start(["--udp-guard", "off", "chargen@%s:0/udp" % h])
    for payload in (b"", b"x", b"x" * 2000):
        reply, _ = udp_exchange(s.addr("chargen", "udp"), payload)
        assert reply == chargen(6)
    s.stop()


def test_chargen_udp_sizes_the_man_page_gives(server):
    """kodama.1's chargen numbers for IPv4 are the guard's: the first N bytes for an
    empty datagram, all 444 from a request of M bytes on, not one byte sooner."""
    from test_docs import render_man_page
    page = " ".join(render_man_page().stdout.split())
    m = re.search(r"an empty IPv4 datagram gets the first (\d+) bytes, one of (\d+) bytes "
                  r"or more all 444", page)
    assert m, "the chargen sentence is gone from kodama.1"
    empty, whole = int(m.group(1)), int(m.group(2))
    s = server.start(["chargen@127.0.0.1:0/udp"])
    dest = s.addr("chargen", "udp")
    assert len(udp_exchange(dest, b"")[0]) == empty
    assert udp_exchange(dest, b"x" * whole)[0] == chargen(6)
    assert len(udp_exchange(dest, b"x" * (whole - 1))[0]) < 444
    s.stop()


# --------------------------------------------------------------------------- daytime, time

WEEKDAYS = "Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday"
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
DAYTIME_RE = re.compile(r"^(%s), (%s) (\d\d), (\d{4}) (\d\d):(\d\d):(\d\d)-UTC\r\n\Z"
                        % (WEEKDAYS, "|".join(MONTHS)))


def check_daytime(line):
    m = DAYTIME_RE.match(line.decode("ascii"))
    assert m, line
    wday, month, day, year, hh, mm, ss = m.groups()
    t = calendar.timegm((int(year), MONTHS.index(month) + 1, int(day), int(hh), int(mm),
                         int(ss)))
    assert abs(t - time.time()) < 3, line
    assert time.strftime("%A", time.gmtime(t)) == wday, line


def check_time(data):
    assert len(data) == 4, data
    t = int.from_bytes(data, "big") - RFC868_1970
    assert abs(t - time.time()) < 3, (t, time.time())


def test_daytime_tcp_all_transports(server, sockdir):
    s = start_all(server, sockdir, services=("daytime",))
    for label, sa in stream_addrs(s, "daytime"):
        with connect(sa) as c:
            check_daytime(recv_until_eof(c))
    s.stop()


def test_time_tcp_all_transports(server, sockdir):
    s = start_all(server, sockdir, services=("time",))
    for label, sa in stream_addrs(s, "time"):
        with connect(sa) as c:
            check_time(recv_until_eof(c))
    s.stop()


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_daytime_and_time_udp_answer_rfc_empty_requests(server, host):
    """RFC 867/868 clients send an empty datagram: with the guard on it may bring back
    56 bytes (IPv4) or 96 (IPv6), room for the whole daytime line (at most 41) and
    time value (4), so every request is answered and none counts as short."""
    h = "[::1]" if host == "::1" else host
    s = server.start(["-v", "daytime@%s:0/udp" % h, "time@%s:0/udp" % h])
    for n in (64, 20, 0):
        reply, _ = udp_exchange(s.addr("daytime", "udp"), b"?" * n)
        check_daytime(reply)
    for n in (4, 500, 3, 0):
        reply, _ = udp_exchange(s.addr("time", "udp"), b"?" * n)
        check_time(reply)
    log = s.stop()
    assert counters(log, "daytime", "udp")["udp_short_request"] == 0
    assert counters(log, "daytime", "udp")["datagrams_out"] == 3
    assert counters(log, "time", "udp")["udp_short_request"] == 0
    assert counters(log, "time", "udp")["datagrams_out"] == 4
    s = server.start(["--udp-guard", "off", "daytime@%s:0/udp" % h, "time@%s:0/udp" % h])
    reply, _ = udp_exchange(s.addr("daytime", "udp"), b"")
    check_daytime(reply)
    reply, _ = udp_exchange(s.addr("time", "udp"), b"")
    check_time(reply)
    s.stop()


# --------------------------------------------------------------------------- discard

def test_discard_tcp_reads_says_nothing_stays_open(server, sockdir):
    s = start_all(server, sockdir, extra=["-v"], services=("discard",))
    total = {}
    for label, sa in stream_addrs(s, "discard"):
        with connect(sa) as c:
            data = os.urandom(300000)
            c.sendall(data)
            c.settimeout(0.3)
            with pytest.raises(socket.timeout):
                c.recv(100)                     # nothing back, and no EOF: still open
            c.sendall(b"more")
            with pytest.raises(socket.timeout):
                c.recv(100)
            c.settimeout(scaled(5))
            c.shutdown(socket.SHUT_WR)
            assert recv_until_eof(c) == b""     # our close gets a clean close back
        kind = "unix" if isinstance(sa, str) else "tcp"
        total[kind] = total.get(kind, 0) + len(data) + 4
    log = s.wait_log(lambda t: t.count("kodama: close discard") == 3)
    log = s.stop()
    tcp = [c for line in log.splitlines() if (c := COUNTERS_RE.match(line))
           and c.group(1) == "discard" and c.group(2) == "tcp"]
    assert sum(counters_of(m)["bytes_in"] for m in tcp) == total["tcp"], log
    assert all(counters_of(m)["bytes_out"] == 0 for m in tcp), log
    assert counters(log, "discard", "unix")["bytes_in"] == total["unix"]


def counters_of(m):
    return {k: int(v) for k, v in (kv.split("=") for kv in m.group(4).split())}


def test_discard_idle_timeout(server):
    s = server.start(["--idle-timeout", "0.5", "discard@127.0.0.1:0/tcp"])
    with connect(s.addr("discard")) as c:
        c.sendall(b"hello?")
        t0 = time.monotonic()
        assert recv_until_eof(c) == b""
        assert 0.3 < time.monotonic() - t0 < scaled(3)
    s.stop()


@pytest.mark.parametrize("guard", ["on", "off"])
def test_discard_udp_never_answers(server, guard):
    s = server.start(["-v", "--udp-guard", guard, "discard@127.0.0.1:0/udp",
                      "discard@[::1]:0/udp"])
    for dest in udp_addrs(s, "discard"):
        no_reply(dest, b"x" * 100, wait=0.3)
        no_reply(dest, b"", wait=0.3)
    log = s.stop()
    lines = [counters_of(m) for line in log.splitlines() if (m := COUNTERS_RE.match(line))]
    assert sum(c["datagrams_in"] for c in lines) == 4, log
    assert sum(c["datagrams_out"] for c in lines) == 0, log
    assert sum(c["bytes_in"] for c in lines) == 200, log


# --------------------------------------------------------------------------- info

KV_RE = re.compile(r'([a-z]+)=("(?:[^"\\]|\\.)*"|[^ "]+)(?: |\n\Z)')


def parse_kv(line):
    """The info line's key=value pairs, in order, quotes and escapes undone."""
    text = line.decode("ascii")
    assert text.endswith("\n") and text.count("\n") == 1, line
    pairs = []
    pos = 0
    while pos < len(text):
        m = KV_RE.match(text, pos)
        assert m, "unparseable at %d: %r" % (pos, text)
        key, value = m.groups()
        if value.startswith('"'):
            value = re.sub(r'\\x([0-9a-f]{2})|\\(["\\])',
                           lambda e: chr(int(e.group(1), 16)) if e.group(1) else e.group(2),
                           value[1:-1])
        pairs.append((key, value))
        pos = m.end()
    return pairs


def text_of(sa):
    """A socket address as kodama prints it."""
    if isinstance(sa, str):
        return "unix:" + ("@" + sa[1:] if sa.startswith("\0") else sa)
    host, port = sa[0], sa[1]
    return "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)


def udp_peer_text(u, dest):
    """An unconnected loopback socket's address as the server sees it: the
    destination's host (loopback answers itself), our port."""
    return text_of((dest[0], u.getsockname()[1]))


def test_info_tcp_all_transports(server, sockdir):
    s = start_all(server, sockdir, extra=["--name", "node-7"], services=("info",))
    for label, sa in stream_addrs(s, "info"):
        with connect(sa) as c:
            peer = c.getsockname()
            line = recv_until_eof(c)
        proto = "unix" if isinstance(sa, str) else "tcp"
        want_peer = "unix:" if proto == "unix" else text_of(peer)
        assert parse_kv(line) == [("name", "node-7"), ("proto", proto),
                                  ("local", text_of(sa)), ("peer", want_peer)], line
        assert line == ("name=node-7 proto=%s local=%s peer=%s\n"
                        % (proto, text_of(sa), want_peer)).encode(), line
    s.stop()


def test_info_json_tcp_and_udp(server):
    s = server.start(["--info-format", "json", "--name", 'a "quoted" name',
                      "info@127.0.0.1:0", "info@[::1]:0"])
    for svc, proto, text, sa in s.listeners:
        if proto == "tcp":
            with connect(sa) as c:
                peer = c.getsockname()
                line = recv_until_eof(c)
        else:
            with socket.socket(socket.AF_INET6 if ":" in sa[0] else socket.AF_INET,
                               socket.SOCK_DGRAM) as u:
                line, _ = udp_exchange(sa, b"?" * 300, sock=u)
                peer = (sa[0], u.getsockname()[1])
        assert line.endswith(b"}\n") and line.count(b"\n") == 1, line
        obj = json.loads(line)
        assert list(obj) == ["name", "proto", "local", "peer"], obj
        assert obj == {"name": 'a "quoted" name', "proto": proto, "local": text,
                       "peer": text_of(peer)}, obj
    s.stop()


def test_info_default_name_is_the_host_name(server):
    s = server.start(["info@127.0.0.1:0/tcp"])
    with connect(s.addr("info")) as c:
        pairs = dict(parse_kv(recv_until_eof(c)))
    assert pairs["name"] == socket.gethostname()
    s.stop()


def test_info_name_needing_quotes(server):
    s = server.start(["--name", "two words\\", "info@127.0.0.1:0/tcp"])
    with connect(s.addr("info")) as c:
        line = recv_until_eof(c)
    assert line.startswith(b'name="two words\\\\" proto=tcp '), line
    assert dict(parse_kv(line))["name"] == "two words\\"
    s.stop()


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_info_udp_whole_or_nothing(server, host):
    h = "[::1]" if host == "::1" else host
    name = "n" * 64      # a line longer than any empty request's bound (96 over IPv6)
    s = server.start(["-v", "--name", name, "info@%s:0/udp" % h])
    dest = s.addr("info", "udp")
    with socket.socket(socket.AF_INET6 if host == "::1" else socket.AF_INET,
                       socket.SOCK_DGRAM) as u:
        reply, src = udp_exchange(dest, b"?" * 200, sock=u)
        want = "name=%s proto=udp local=%s peer=%s\n" % (name, text_of(dest),
                                                        udp_peer_text(u, dest))
        assert reply == want.encode()
        assert src[:2] == dest
        n = shortest_request(host, len(want))
        assert n > 0, len(want)
        no_reply(dest, b"?" * (n - 1), wait=0.3)
        reply, _ = udp_exchange(dest, b"?" * n, sock=u)
        assert reply == want.encode()
    log = s.stop()
    assert counters(log, "info", "udp")["udp_short_request"] == 1
    s = server.start(["--udp-guard", "off", "--name", "u", "info@%s:0/udp" % h])
    with socket.socket(socket.AF_INET6 if host == "::1" else socket.AF_INET,
                       socket.SOCK_DGRAM) as u:
        reply, _ = udp_exchange(s.addr("info", "udp"), b"", sock=u)
        assert dict(parse_kv(reply))["peer"] == udp_peer_text(u, s.addr("info", "udp"))
    s.stop()


def test_info_wildcard_reports_the_address_reached(server):
    """On a wildcard bind, local is the datagram's (or connection's) destination,
    with the listener's port: 127.0.0.2 and ::1 are told apart."""
    s = server.start(["--name", "w", "info@0"])
    port = s.port("info", "udp")
    assert s.port("info", "tcp") == port
    for host in ("127.0.0.1", "127.0.0.2", "::1"):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(fam, socket.SOCK_DGRAM) as u:
            reply, _ = udp_exchange((host, port), b"?" * 300, sock=u)
            local = dict(parse_kv(reply))["local"]
        assert local == text_of((host, port)), reply
        with connect((host, port), family=fam) as c:
            peer = c.getsockname()
            pairs = dict(parse_kv(recv_until_eof(c)))
        assert pairs["local"] == text_of((host, port)), pairs
        assert pairs["peer"] == text_of(peer), pairs
    s.stop()


# --------------------------------------------------------------------------- cli

def test_help_lists_every_service():
    r = run_kodama(["serve", "--help"])
    assert r.rc == 0
    for name in ("hello", "echo", "discard", "chargen", "daytime", "time", "info"):
        assert re.search(r"^  %s +\S" % name, r.stdout.decode(), re.M), r.stdout
    assert b"--name NAME" in r.stdout and b"--info-format" in r.stdout


def test_info_option_errors():
    assert_usage_error(run_kodama(["serve", "--info-format", "xml", "info@127.0.0.1:0"]),
                       "kodama: --info-format 'xml': not kv or json", "serve")
    assert_usage_error(run_kodama(["serve", "--name", "", "info@127.0.0.1:0"]),
                       "kodama: --name '': not 1 to 64 bytes", "serve")
    assert_usage_error(run_kodama(["serve", "--name", "x" * 65, "info@127.0.0.1:0"]),
                       "kodama: --name '%s': not 1 to 64 bytes" % ("x" * 65), "serve")
