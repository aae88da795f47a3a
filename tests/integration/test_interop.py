"""Other tools against `kodama serve` (nc, socat, ruby), and kodama's clients against socat."""
import os
import socket
import subprocess
import time

import pytest

from kodama_helpers import (GREETING, free_port, received_lines, require_tool, run_kodama, scaled)
from peers import SocatEcho


def run_tool(argv, input=b"", timeout=10.0):
    try:
        p = subprocess.run(argv, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=scaled(timeout))
    except subprocess.TimeoutExpired as e:
        pytest.fail("%s: no exit within %.1f s (stdout=%r)" % (argv, scaled(timeout),
                                                                (e.stdout or b"")[:300]))
    return p


@pytest.fixture
def srv(server, sockdir):
    s = server.start(["hello@127.0.0.1:0", "echo@127.0.0.1:0", "echo@[::1]:0/tcp",
                      "echo@unix:" + os.path.join(sockdir, "e.sock"),
                      "hello@unix:" + os.path.join(sockdir, "h.sock")])
    yield s
    s.stop()


def tcp_port(s, service, host="127.0.0.1"):
    for svc, proto, text, sa in s.listeners:
        if svc == service and proto == "tcp" and sa[0] == host:
            return sa[1]
    raise AssertionError(s.listeners)


def unix_path(s, service):
    return s.addr(service, "unix")


# --------------------------------------------------------------------------- nc

def test_nc_hello(srv):
    nc = require_tool("nc")
    p = run_tool([nc, "-N", "127.0.0.1", str(tcp_port(srv, "hello"))])
    assert p.returncode == 0, p
    assert p.stdout == GREETING


def test_nc_echo_tcp(srv):
    nc = require_tool("nc")
    data = b"".join(b"line %d through nc\n" % i for i in range(2000))
    p = run_tool([nc, "-N", "127.0.0.1", str(tcp_port(srv, "echo"))], input=data)
    assert p.returncode == 0, p
    assert p.stdout == data


def test_nc_echo_ipv6(srv):
    nc = require_tool("nc")
    p = run_tool([nc, "-N", "-6", "::1", str(tcp_port(srv, "echo", "::1"))], input=b"six\n")
    assert p.returncode == 0, p
    assert p.stdout == b"six\n"


def test_nc_unix(srv):
    nc = require_tool("nc")
    p = run_tool([nc, "-N", "-U", unix_path(srv, "echo")], input=b"unix nc\n")
    assert p.stdout == b"unix nc\n", p
    p = run_tool([nc, "-N", "-U", unix_path(srv, "hello")])
    assert p.stdout == GREETING, p


def test_nc_udp(srv):
    nc = require_tool("nc")
    p = run_tool([nc, "-u", "-w", "1", "127.0.0.1", str(srv.port("echo", "udp"))],
                 input=b"udp via nc\n")
    assert p.stdout == b"udp via nc\n", p
    p = run_tool([nc, "-u", "-w", "1", "127.0.0.1", str(srv.port("hello", "udp"))],
                 input=b"hello, who is there?\n")
    assert p.stdout == GREETING, p


# --------------------------------------------------------------------------- socat

def test_socat_hello_and_echo(srv):
    socat = require_tool("socat")
    p = run_tool([socat, "-t", "5", "-", "TCP:127.0.0.1:%d" % tcp_port(srv, "hello")])
    assert p.returncode == 0, p
    assert p.stdout == GREETING
    data = os.urandom(1 << 20)
    p = run_tool([socat, "-t", "5", "-", "TCP:127.0.0.1:%d" % tcp_port(srv, "echo")], input=data)
    assert p.returncode == 0, p
    assert p.stdout == data
    p = run_tool([socat, "-t", "5", "-", "TCP6:[::1]:%d" % tcp_port(srv, "echo", "::1")],
                 input=b"socat6")
    assert p.stdout == b"socat6", p
    p = run_tool([socat, "-t", "5", "-", "UNIX-CONNECT:" + unix_path(srv, "echo")],
                 input=b"socat unix")
    assert p.stdout == b"socat unix", p


def test_socat_udp(srv):
    socat = require_tool("socat")
    p = run_tool([socat, "-t", "1", "-", "UDP:127.0.0.1:%d" % srv.port("echo", "udp")],
                 input=b"udp socat")
    assert p.stdout == b"udp socat", p
    p = run_tool([socat, "-t", "1", "-", "UDP:127.0.0.1:%d" % srv.port("hello", "udp")],
                 input=b"x" * len(GREETING))
    assert p.stdout == GREETING, p


# --------------------------------------------------------------------------- ruby

RUBY_LOOP = """
port = Integer(ARGV[0])
5.times do
  s = TCPSocket.new("127.0.0.1", port)
  print s.read
  s.close
  sleep 0.1
end
"""


def test_ruby_tutorial_loop(srv):
    ruby = require_tool("ruby")
    p = run_tool([ruby, "-rsocket", "-e", RUBY_LOOP, str(tcp_port(srv, "hello"))], timeout=20)
    assert p.returncode == 0, p
    assert p.stdout == GREETING * 5


# --------------------------------------------------------------------------- kodama clients vs socat

@pytest.fixture
def socat_echo():
    with SocatEcho() as socat:
        yield socat.port


def stop_process(p):
    """Ask a peer tool to stop; kill it if it will not within 5 s."""
    p.terminate()
    try:
        p.wait(5)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


@pytest.fixture
def socat_udp_echo():
    socat = require_tool("socat")
    port = free_port(kind=socket.SOCK_DGRAM)
    p = subprocess.Popen([socat, "UDP-RECVFROM:%d,bind=127.0.0.1,reuseaddr,fork" % port, "PIPE"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    time.sleep(0.2)
    try:
        yield port
    finally:
        stop_process(p)


def test_send_against_socat(socat_echo):
    r = run_kodama(["send", "-v", "127.0.0.1", socat_echo, "via socat", "again"])
    assert r.rc == 0, r
    assert r.stdout == b"via socat\nagain\n"
    assert received_lines(r) == ["Received 9 bytes from 127.0.0.1:%d" % socat_echo,
                           "Received 5 bytes from 127.0.0.1:%d" % socat_echo], r


def test_connect_against_socat(socat_echo):
    data = os.urandom(2 << 20)
    r = run_kodama(["connect", "127.0.0.1", socat_echo], input=data, timeout=20)
    assert r.rc == 0, r
    assert r.stdout == data


def test_send_udp_against_socat(socat_udp_echo):
    # socat's fork mode needs the first datagram to spawn a child; allow a retry-free wait
    r = run_kodama(["send", "-u", "127.0.0.1", socat_udp_echo, "udp one"])
    assert r.rc == 0, r
    assert r.stdout == b"udp one\n"
