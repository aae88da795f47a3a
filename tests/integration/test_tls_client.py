"""The clients' --tls (send, connect, ping, bench) against real peers: openssl
s_server, socat OPENSSL-LISTEN, kodama's own +tls listeners, and small Python peers
that misbehave in the handshake.

Verification by a CA file, a pinned fingerprint (any spelling) and --insecure; an
expired and a wrong-name certificate; --sni choosing the name checked; TLS 1.2-only
and 1.3-only peers; client certificates both ways; the handshake failures and their
verdicts (7 tls, 5 reset, 4 timeout, 3 refused); --json's TLS facts; bench's
handshakes and --resume; the usage errors; --trace's handshake lines.
"""
import json
import os
import re
import socket
import struct
import subprocess
import threading
import time

import pytest

import kodama_helpers as kh
from tls_certs import cert_fingerprint_file, make_ca, make_leaf


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA; a leaf for localhost and 127.0.0.1; one expired; one for another name;
    a client certificate."""
    kh.require_tool("openssl")
    d = str(tmp_path_factory.mktemp("pki"))
    ca = make_ca(d)
    return {
        "dir": d,
        "ca": ca,
        "leaf": make_leaf(d, ca, "localhost", san="DNS:localhost,IP:127.0.0.1"),
        "expired": make_leaf(d, ca, "expired.test", san="DNS:localhost,IP:127.0.0.1", days=-1),
        "other": make_leaf(d, ca, "other.test", san="DNS:other.test"),
        "client": make_leaf(d, ca, "kodama-client", client=True),
    }


# --------------------------------------------------------------------------- peers

class Peer:
    """A peer program listening on 127.0.0.1:port, stopped at the end."""

    def __init__(self, args, port, ready=None, stdin=None):
        self.port = port
        self.p = subprocess.Popen(args, stdin=stdin, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT)
        self.out = b""
        if ready:
            self.wait_output(ready)
        else:
            kh.wait_tcp_accepting("127.0.0.1", port)

    def wait_output(self, what, timeout=10.0):
        deadline = time.monotonic() + kh.scaled(timeout)
        os.set_blocking(self.p.stdout.fileno(), False)
        while what not in self.out:
            if time.monotonic() > deadline or self.p.poll() is not None:
                pytest.fail("peer %r: no %r in %r" % (self.p.args, what, self.out))
            try:
                chunk = os.read(self.p.stdout.fileno(), 65536)
            except BlockingIOError:
                time.sleep(0.02)
                continue
            self.out += chunk
        return self.out

    def stop(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()


@pytest.fixture
def peers():
    running = []

    def start(*a, **kw):
        p = Peer(*a, **kw)
        running.append(p)
        return p
    yield start
    for p in running:
        p.stop()


def s_server(peers, pki, *extra, leaf="leaf"):
    """openssl s_server -rev (each line back reversed) with pki[leaf]."""
    kh.require_tool("openssl")
    port = kh.free_port()
    key, crt = pki[leaf]
    return peers(["openssl", "s_server", "-accept", "127.0.0.1:%d" % port, "-cert", crt,
                  "-key", key, "-rev", *extra], port, ready=b"ACCEPT")


def socat_echo(peers, pki, leaf="leaf"):
    """socat OPENSSL-LISTEN with cat behind it: every byte back."""
    kh.require_tool("socat")
    port = kh.free_port()
    key, crt = pki[leaf]
    return peers(["socat", "OPENSSL-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork,cert=%s,key=%s,"
                  "verify=0" % (port, crt, key), "EXEC:cat"], port)


class PyPeer(threading.Thread):
    """A listener on 127.0.0.1 whose every connection is handed to how(conn)."""

    def __init__(self, how):
        super().__init__(daemon=True)
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(8)
        self.port = self.lsock.getsockname()[1]
        self.how = how
        self.conns = []
        self.start()

    def run(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            self.conns.append(c)
            self.how(c)

    def close(self):
        self.lsock.close()
        for c in self.conns:
            c.close()


@pytest.fixture
def pypeer():
    made = []

    def start(how):
        p = PyPeer(how)
        made.append(p)
        return p
    yield start
    for p in made:
        p.close()


INSECURE = "kodama: --insecure: the server's certificate is not verified\n"


def tls_server(server, spec, *args):
    s = server.start([*args, spec])
    return s, s.port(spec.split("@")[0])


def printed_fingerprint(s):
    m = kh.FINGERPRINT_RE.search(s.log())
    assert m, s.log()
    return m.group(1)


def send(port, *args, msgs=("hello, tls\n",), host="127.0.0.1", timeout=15.0):
    return kh.run_kodama(["send", "--tls", *args, host, port, *msgs], timeout=timeout)


# --------------------------------------------------------------------------- real peers

def test_send_and_connect_against_openssl_s_server(peers, pki):
    p = s_server(peers, pki)
    # -rev answers each line reversed: a palindrome is an echo, anything else is not.
    r = send(p.port, "--cafile", pki["ca"][1], msgs=("step on no pets\n",))
    assert (r.rc, r.stdout) == (0, b"step on no pets\n\n"), r
    r = send(p.port, "--cafile", pki["ca"][1], msgs=("abc\n",))
    assert r.rc == 1, r
    r = kh.run_kodama(["connect", "--tls", "--cafile", pki["ca"][1], "-w", "3", "127.0.0.1",
                       p.port], input=b"kodama\n")
    assert r.rc == 0, r
    assert r.stdout == b"amadok\n", r


def test_send_ping_and_connect_against_socat(peers, pki):
    p = socat_echo(peers, pki)
    msg = "bytes \x01\x7f and more\n"
    r = send(p.port, "--cafile", pki["ca"][1], msgs=(msg, "second"))
    assert (r.rc, r.stdout) == (0, msg.encode() + b"\nsecond\n"), r
    r = kh.run_kodama(["ping", "--tls", "--cafile", pki["ca"][1], "-c", "3", "-i", "0.05",
                       "-s", "100", "127.0.0.1", p.port])
    assert r.rc == 0, r
    assert b"3 probes, 3 replies, 0% loss" in r.stdout, r
    assert b"TLSv1.3" in r.stdout, r
    data = bytes(range(256)) * 64
    r = kh.run_kodama(["connect", "--tls", "--cafile", pki["ca"][1], "127.0.0.1", p.port],
                      input=data)
    assert (r.rc, r.stdout) == (0, data), r


def test_ping_connect_mode_against_socat(peers, pki):
    p = socat_echo(peers, pki)
    r = kh.run_kodama(["ping", "--tls", "--connect", "--cafile", pki["ca"][1], "-c", "2",
                       "-i", "0.05", "-s", "16", "--json", "127.0.0.1", p.port])
    assert r.rc == 0, r
    j = json.loads(r.stdout)
    assert (j["probes"], j["replies"]) == (2, 2), j
    assert j["tls"] is True and j["tls_version"] == "TLSv1.3", j


# --------------------------------------------------------------------------- verification

def test_cafile_verifies_a_ca_signed_leaf(peers, pki):
    p = socat_echo(peers, pki)
    for host in ("127.0.0.1", "localhost"):
        if host == "localhost":
            kh.require_localhost_name()
        r = send(p.port, "--cafile", pki["ca"][1], host=host)
        assert (r.rc, r.stdout) == (0, b"hello, tls\n\n"), r
    # Without it the system's store knows no such CA.
    r = send(p.port)
    assert r.rc == 7, r
    assert r.stderr == ("kodama: 127.0.0.1:%d: tls: certificate verify failed: unable to get "
                        "local issuer certificate\n" % p.port), r


@pytest.mark.valgrind
def test_fingerprint_pin_in_every_spelling(server):
    s, port = tls_server(server, "echo@127.0.0.1:0/tcp+tls")
    fp = printed_fingerprint(s)
    for spelling in (fp, fp.replace(":", ""), fp.lower(), fp.replace(":", "").lower()):
        r = send(port, "--fingerprint", spelling)
        assert (r.rc, r.stdout, r.stderr) == (0, b"hello, tls\n\n", ""), (spelling, r)
    # Without the pin the self-signed certificate does not verify.
    r = send(port)
    assert r.rc == 7, r
    assert r.stderr == ("kodama: 127.0.0.1:%d: tls: certificate verify failed: self-signed "
                        "certificate\n" % port), r


def test_a_fingerprint_that_does_not_match_is_7(server):
    s, port = tls_server(server, "echo@127.0.0.1:0/tcp+tls")
    fp = printed_fingerprint(s)
    wrong = ("00" if fp[:2] != "00" else "11") + fp[2:]
    r = send(port, "--fingerprint", wrong, "--json")
    assert r.rc == 7, r
    assert r.stderr == ("kodama: 127.0.0.1:%d: tls: certificate fingerprint %s is not the "
                        "pinned one\n" % (port, fp)), r
    j = json.loads(r.stdout)
    assert (j["verdict"], j["exit"], j["tls_fingerprint"]) == ("tls", 7, fp), j


@pytest.mark.parametrize("leaf,reason", [
    ("expired", "certificate verify failed: certificate has expired"),
    ("other", "certificate verify failed: hostname mismatch"),
])
def test_expired_and_wrong_name_leaf_are_7_unless_insecure(peers, pki, leaf, reason):
    p = socat_echo(peers, pki, leaf=leaf)
    host = "localhost" if leaf == "other" else "127.0.0.1"
    if host == "localhost":
        kh.require_localhost_name()
    r = send(p.port, "--cafile", pki["ca"][1], host=host)
    assert r.rc == 7, r
    # The message names the address connected to.
    assert r.stderr == "kodama: 127.0.0.1:%d: tls: %s\n" % (p.port, reason), r
    r = send(p.port, "--insecure", host=host)
    assert (r.rc, r.stdout) == (0, b"hello, tls\n\n"), r
    assert r.stderr == INSECURE, r


def test_a_wrong_address_is_7_too(peers, pki):
    # The leaf names other.test only: connecting by address checks the address.
    p = socat_echo(peers, pki, leaf="other")
    r = send(p.port, "--cafile", pki["ca"][1])
    assert r.rc == 7, r
    assert "tls: certificate verify failed: IP address mismatch" in r.stderr, r


def test_sni_chooses_the_name_checked(peers, pki):
    p = socat_echo(peers, pki, leaf="other")
    r = send(p.port, "--cafile", pki["ca"][1], "--sni", "other.test")
    assert (r.rc, r.stdout) == (0, b"hello, tls\n\n"), r
    r = send(p.port, "--cafile", pki["ca"][1], "--sni", "localhost")
    assert r.rc == 7, r
    assert "hostname mismatch" in r.stderr, r


def test_sni_is_what_the_server_sees(server):
    s, port = tls_server(server, "info@127.0.0.1:0/tcp+tls")
    r = kh.run_kodama(["connect", "--tls", "--insecure", "--sni", "svc.example", "--alpn",
                       "h2,http/1.1", "127.0.0.1", port])
    assert r.rc == 0, r
    assert b' sni=svc.example ' in r.stdout, r
    assert b' alpn="" ' in r.stdout, r    # serve offers none without --alpn


def test_alpn_is_negotiated_and_reported(server):
    s, port = tls_server(server, "echo@127.0.0.1:0/tcp+tls", "--alpn", "h2,http/1.1")
    r = send(port, "--insecure", "--alpn", "http/1.1", "--json")
    assert r.rc == 0, r
    assert json.loads(r.stdout)["tls_alpn"] == "http/1.1", r


# --------------------------------------------------------------------------- versions

@pytest.mark.parametrize("flag,version", [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")])
def test_tls12_only_and_tls13_only_peers(peers, pki, flag, version):
    p = s_server(peers, pki, flag)
    r = send(p.port, "--cafile", pki["ca"][1], "--json", msgs=("level\n",))
    assert r.rc == 0, r
    j = json.loads(r.stdout)
    assert (j["verdict"], j["tls_version"], j["bytes_in"]) == ("ok", version, 6), j
    assert j["tls_cipher"], j
    assert j["handshake_ms"] >= j["connect_ms"], j
    r = send(p.port, "--cafile", pki["ca"][1], "-v", msgs=("level\n",))
    assert r.rc == 0, r
    assert re.search(r"^kodama: 127\.0\.0\.1:%d: %s \S+, ALPN none, certificate CN=localhost "
                     r"sha256 [0-9A-F:]{95}$" % (p.port, re.escape(version)), r.stderr,
                     re.M), r


# --------------------------------------------------------------------------- client certs

def test_client_cert_against_s_server_verify(peers, pki):
    p = s_server(peers, pki, "-Verify", "1", "-CAfile", pki["ca"][1])
    key, crt = pki["client"]
    r = send(p.port, "--cafile", pki["ca"][1], "--cert", crt, "--key", key, msgs=("kayak\n",))
    assert (r.rc, r.stdout) == (0, b"kayak\n\n"), r
    p.wait_output(b"Peer certificate: CN = kodama-client")


def test_client_cert_required_but_not_given_is_7(peers, pki):
    p = s_server(peers, pki, "-Verify", "1", "-CAfile", pki["ca"][1])
    r = send(p.port, "--cafile", pki["ca"][1], msgs=("kayak\n",))
    assert r.rc == 7, r
    assert re.search(r"tls: .*(certificate required|handshake failure)", r.stderr), r


def test_client_cert_against_kodama_serve(server, pki):
    s, port = tls_server(server, "info@127.0.0.1:0/tcp+tls", "--client-ca", pki["ca"][1],
                         "--client-cert", "require")
    key, crt = pki["client"]
    r = kh.run_kodama(["connect", "--tls", "--insecure", "--cert", crt, "--key", key,
                       "127.0.0.1", port])
    assert r.rc == 0, r
    line = r.stdout.decode()
    assert "client_cert=yes" in line, line
    assert " cert_subject=CN=kodama-client cert_issuer=CN=kodama-test-ca " in line, line
    fp = cert_fingerprint_file(crt)
    assert line.endswith(" cert_fingerprint=%s\n" % fp), line
    # Without one the server refuses: TLS 1.3 says so in an alert after the handshake.
    r = kh.run_kodama(["connect", "--tls", "--insecure", "127.0.0.1", port])
    assert r.rc == 7, r
    assert "tls: tlsv13 alert certificate required" in r.stderr, r


def test_a_client_key_that_does_not_fit_is_9(pki):
    key, _ = pki["leaf"]
    _, crt = pki["client"]
    r = kh.run_kodama(["send", "--tls", "--insecure", "--cert", crt, "--key", key,
                       "127.0.0.1", kh.free_port(), "x"])
    assert r.rc == 9, r
    assert "does not match the certificate" in r.stderr, r


# --------------------------------------------------------------------------- failures

def test_a_plain_peer_answering_garbage_is_7(server):
    s = server.start(["echo@127.0.0.1:0/tcp", "hello@127.0.0.1:0/tcp"])
    for svc in ("echo", "hello"):
        r = send(s.port(svc), "--insecure")
        assert r.rc == 7, (svc, r)
        assert re.search(r"^kodama: 127\.0\.0\.1:%d: tls: " % s.port(svc), r.stderr, re.M), r
        assert "wrong version number" in r.stderr or "packet length too long" in r.stderr \
            or "record layer failure" in r.stderr or "unexpected" in r.stderr, r


def _reset_after_hello(c):
    c.settimeout(5)
    try:
        c.recv(4096)           # the ClientHello
    except OSError:
        pass
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()


@pytest.mark.valgrind
def test_a_reset_mid_handshake_is_5(pypeer):
    p = pypeer(_reset_after_hello)
    r = send(p.port, "--insecure")
    assert r.rc == 5, r
    assert r.stderr == (INSECURE + "kodama: 127.0.0.1:%d: tls: handshake: Connection reset "
                        "by peer\n" % p.port), r
    r = kh.run_kodama(["ping", "--tls", "--insecure", "-c", "1", "127.0.0.1", p.port])
    assert r.rc == 5, r


def test_a_silent_peer_is_4_within_the_wait(pypeer):
    p = pypeer(lambda c: None)
    r = send(p.port, "--insecure", "-w", "1")
    assert r.rc == 4, r
    assert r.stderr == INSECURE + "kodama: 127.0.0.1:%d: tls: no handshake within 1 s\n" % p.port, r
    assert r.elapsed < kh.scaled(4), r


def test_refused_is_still_3():
    port = kh.free_port()
    r = send(port, "--insecure")
    assert r.rc == 3, r
    assert "Connection refused" in r.stderr, r


# --------------------------------------------------------------------------- --json

def test_json_of_send_and_ping_has_the_tls_facts(server):
    s, port = tls_server(server, "echo@127.0.0.1:0/tcp+tls")
    fp = printed_fingerprint(s)
    r = send(port, "--fingerprint", fp, "--json")
    assert r.rc == 0, r
    j = json.loads(r.stdout)
    assert j["tls"] is True and j["tls_version"] == "TLSv1.3", j
    assert j["tls_cipher"].startswith("TLS_"), j
    assert j["tls_fingerprint"] == fp and j["tls_alpn"] is None, j
    assert 0 <= j["connect_ms"] <= j["handshake_ms"] <= j["total_ms"], j
    r = kh.run_kodama(["ping", "--tls", "--fingerprint", fp, "-c", "2", "-i", "0.05", "--json",
                       "127.0.0.1", port])
    assert r.rc == 0, r
    j = json.loads(r.stdout)
    assert (j["tls"], j["tls_version"], j["tls_fingerprint"], j["replies"]) == \
        (True, "TLSv1.3", fp, 2), j
    assert j["tls_cipher"].startswith("TLS_"), j
    # A failed verification names the certificate one would pin.
    r = send(port, "--json")
    assert r.rc == 7, r
    j = json.loads(r.stdout)
    assert (j["verdict"], j["tls_version"], j["tls_fingerprint"]) == ("tls", None, fp), j
    assert j["error"].endswith("tls: certificate verify failed: self-signed certificate"), j


# --------------------------------------------------------------------------- bench

def bench_counts(r):
    m = re.search(rb"tls handshakes (\d+) resumed (\d+)", r.stdout)
    assert m, r
    return int(m.group(1)), int(m.group(2))


@pytest.mark.valgrind
def test_bench_hello_counts_handshakes_and_resumes_only_with_resume(server):
    s, port = tls_server(server, "hello@127.0.0.1:0/tcp+tls")
    fp = printed_fingerprint(s)
    r = kh.run_kodama(["bench", "--tls", "--fingerprint", fp, "-m", "hello", "-d", "0.5",
                       "127.0.0.1", port], timeout=20)
    assert r.rc == 0, r
    full, resumed = bench_counts(r)
    assert full > 5 and resumed == 0, r
    assert re.search(rb"^errors 0 corrupt 0 ", r.stdout, re.M), r
    r = kh.run_kodama(["bench", "--tls", "--fingerprint", fp, "-m", "hello", "--resume",
                       "-d", "0.5", "127.0.0.1", port], timeout=20)
    assert r.rc == 0, r
    full, resumed = bench_counts(r)
    assert full > 5 and 0 < resumed <= full and resumed >= full // 2, r


def test_bench_tls_echo_is_exact(server, peers, pki):
    s, port = tls_server(server, "echo@127.0.0.1:0/tcp+tls")
    r = kh.run_kodama(["bench", "--tls", "--insecure", "-c", "4", "-s", "1000", "-p", "2",
                       "-d", "0.5", "--json", "127.0.0.1", port], timeout=20)
    assert r.rc == 0, r
    j = json.loads(r.stdout)
    assert j["msgs"] > 10 and j["errors"] == 0 and j["corrupt"] == 0, j
    # And against socat's cat: bytes checked by bench itself.
    p = socat_echo(peers, pki)
    r = kh.run_kodama(["bench", "--tls", "--cafile", pki["ca"][1], "-s", "333", "-d", "0.3",
                       "127.0.0.1", p.port], timeout=20)
    assert r.rc == 0, r
    assert re.search(rb"^errors 0 corrupt 0 ", r.stdout, re.M), r


# --------------------------------------------------------------------------- usage

@pytest.mark.parametrize("cmd,args,line", [
    ("send", ["--tls", "--key", "k.pem"], "--key needs --cert"),
    ("send", ["--tls", "--cert", "c.pem"], "--cert needs --key"),
    ("send", ["--tls", "--insecure", "--fingerprint", "AB" * 32],
     "cannot use --insecure with --fingerprint"),
    ("send", ["--tls", "-u"], "cannot use --tls with -u (there is no DTLS)"),
    ("ping", ["--tls", "-u"], "cannot use --tls with -u (there is no DTLS)"),
    ("send", ["--insecure"], "--insecure needs --tls"),
    ("send", ["--tls", "--fingerprint", "AB:CD"],
     "--fingerprint 'AB:CD': not a SHA-256 fingerprint (64 hex digits, with or without a colon "
     "between each pair)"),
    ("connect", ["--tls", "--fingerprint", "G" * 64],
     "--fingerprint '%s': not a SHA-256 fingerprint (64 hex digits, with or without a colon "
     "between each pair)" % ("G" * 64)),
    ("send", ["--tls", "--alpn", "h2,,x"],
     "--alpn 'h2,,x': not a comma-separated list of names (of 1 to 255 bytes each)"),
])
def test_usage_errors(cmd, args, line):
    r = kh.run_kodama([cmd, *args, "127.0.0.1", "7"] + (["x"] if cmd == "send" else []))
    kh.assert_usage_error(r, "kodama: " + line, cmd)


@pytest.mark.parametrize("args,line", [
    (["--tls", "--insecure", "--resume"], "--resume needs -m hello (an echo connection makes one handshake)"),
    (["--tls", "-m", "udp"], "cannot use --tls with -m udp (there is no DTLS)"),
    (["--resume", "-m", "hello"], "--resume needs --tls"),
])
def test_bench_usage_errors(args, line):
    r = kh.run_kodama(["bench", *args, "127.0.0.1", "7"])
    kh.assert_usage_error(r, "kodama: " + line, "bench")


def test_resume_is_benchs_alone():
    r = kh.run_kodama(["send", "--tls", "--resume", "127.0.0.1", "7", "x"])
    assert r.rc == 2 and r.stdout == b"", r
    assert "resume" in r.err_lines[0], r


# --------------------------------------------------------------------------- --trace

def test_trace_shows_the_handshake_and_record_sizes(server):
    s, port = tls_server(server, "echo@127.0.0.1:0/tcp+tls")
    r = send(port, "--insecure", "--trace", msgs=("traced\n",))
    assert r.rc == 0, r
    err = r.stderr
    assert re.search(r"tls\(\d+\) sent ClientHello \(\d+ B\)", err), err
    assert re.search(r"tls\(\d+\) received ServerHello \(\d+ B\)", err), err
    assert re.search(r"tls handshake\(\d+\) = done TLSv1\.3 \S+ +\(on the wire: \d+ B in", err), err
    assert re.search(r"tls write\(\d+, 7\) = 7 +\(on the wire: \d+ B out\)", err), err
    assert re.search(r"tls read\(\d+, \d+\) = 7 +\(on the wire: \d+ B in\)", err), err
