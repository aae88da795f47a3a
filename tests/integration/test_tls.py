"""serve's "+tls" listeners against real peers: openssl s_client and Python's ssl
module (OpenSSL underneath, but a different program driving it).

The self-signed certificate and its printed fingerprint, given certificates and
their reload on SIGHUP, client certificates both ways, TLS 1.2-only and 1.3-only
clients, ALPN and SNI in info, +proxy+tls, unix sockets, a 100 MiB round trip,
the handshake abuse cases (a stalled handshake, garbage, a reset mid-way) and the
kTLS probe.
"""
import hashlib
import os
import re
import signal
import socket
import ssl
import struct
import subprocess
import time

import pytest

import kodama_helpers as kh
from tls_certs import cert_fingerprint_file, fingerprint_of, make_ca, make_leaf, openssl


def have_openssl():
    kh.require_tool("openssl")


def client_ctx(minv=None, maxv=None, alpn=None, cert=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if minv:
        ctx.minimum_version = minv
    if maxv:
        ctx.maximum_version = maxv
    if alpn:
        ctx.set_alpn_protocols(alpn)
    if cert:
        ctx.load_cert_chain(*cert)
    return ctx


def tls_connect(addr, ctx=None, sni=None, timeout=10.0):
    raw = kh.connect(addr, timeout=timeout)
    return (ctx or client_ctx()).wrap_socket(raw, server_hostname=sni)


def served_fingerprint(s):
    m = kh.FINGERPRINT_RE.search(s.log())
    assert m, s.log()
    return m.group(1)


# --------------------------------------------------------------------------- basics

def test_openssl_s_client_gets_every_byte_back(server):
    have_openssl()
    s = server.start(["echo@127.0.0.1:0/tcp+tls"])
    host, port = s.addr("echo")
    p = subprocess.Popen(["openssl", "s_client", "-connect", "%s:%d" % (host, port), "-quiet"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        msg = b"through s_client \x00\xff\n"
        p.stdin.write(msg)
        p.stdin.flush()
        got = b""
        deadline = time.monotonic() + kh.scaled(10)
        os.set_blocking(p.stdout.fileno(), False)
        while len(got) < len(msg) and time.monotonic() < deadline:
            try:
                chunk = os.read(p.stdout.fileno(), 4096)
            except BlockingIOError:
                time.sleep(0.02)
                continue
            if not chunk:
                break
            got += chunk
        assert got == msg
    finally:
        p.kill()
        p.wait()
    s.stop()


@pytest.mark.valgrind
def test_self_signed_certificate_and_its_printed_fingerprint(server):
    s = server.start(["echo@127.0.0.1:0/tcp+tls", "hello@[::1]:0/tcp+tls"])
    printed = served_fingerprint(s)
    c = tls_connect(s.addr("echo"))
    der = c.getpeercert(binary_form=True)
    assert fingerprint_of(der) == printed
    c.close()
    pem = ssl.DER_cert_to_PEM_cert(der).encode()
    text = openssl("x509", "-noout", "-text", "-fingerprint", "-sha256", input=pem).decode()
    assert "sha256 Fingerprint=" + printed in text   # the same form openssl prints
    assert "ASN1 OID: prime256v1" in text             # ECDSA P-256
    assert "DNS:%s" % socket.gethostname() in text and "DNS:localhost" in text
    assert "IP Address:127.0.0.1" in text and "IP Address:0:0:0:0:0:0:0:1" in text
    nb, na = (re.search(k + r"\s*: (.*)", text).group(1) for k in ("Not Before", "Not After"))
    t0 = time.mktime(time.strptime(nb, "%b %d %H:%M:%S %Y GMT"))
    t1 = time.mktime(time.strptime(na, "%b %d %H:%M:%S %Y GMT"))
    assert t1 - t0 == 30 * 86400
    # The printed fingerprint is the one every listener serves.
    c = tls_connect(s.addr("hello"))
    assert fingerprint_of(c.getpeercert(binary_form=True)) == printed
    assert c.recv(100) == b"Hello from server!\n"
    c.close()
    assert s.log().count("tls fingerprint sha256") == 1
    s.stop()


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_tls12_only_and_tls13_only_clients(server, version):
    s = server.start(["info@127.0.0.1:0/tcp+tls"])
    c = tls_connect(s.addr("info"), client_ctx(minv=version, maxv=version))
    line = kh.recv_until_eof(c).decode()
    want = {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
    assert c.version() == want
    assert " tls=%s " % want in line, line
    c.close()
    s.stop()


def test_tls11_is_refused(server):
    s = server.start(["echo@127.0.0.1:0/tcp+tls"])
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx = client_ctx(minv=ssl.TLSVersion.TLSv1, maxv=ssl.TLSVersion.TLSv1_1)
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        tls_connect(s.addr("echo"), ctx)
    s.wait_log(lambda t: "no TLS handshake" in t)
    s.stop()


def test_info_over_tls_says_what_the_handshake_said(server):
    s = server.start(["--alpn", "h2,http/1.1", "info@127.0.0.1:0/tcp+tls"])
    c = tls_connect(s.addr("info"), client_ctx(alpn=["http/1.1"]), sni="kodama.test")
    line = kh.recv_until_eof(c).decode()
    c.close()
    m = re.fullmatch(r"name=\S+ proto=tcp local=127\.0\.0\.1:\d+ peer=127\.0\.0\.1:\d+ "
                     r"tls=TLSv1\.3 cipher=TLS_\w+ sni=kodama\.test alpn=http/1\.1 "
                     r"client_cert=no\n", line)
    assert m, line
    c = tls_connect(s.addr("info"))
    line = kh.recv_until_eof(c).decode()
    c.close()
    assert ' sni="" alpn="" client_cert=no\n' in line, line
    s.stop()


def test_every_stream_service_works_over_tls(server, sockdir):
    path = os.path.join(sockdir, "k.sock")
    s = server.start(["hello@127.0.0.1:0/tcp+tls", "daytime@127.0.0.1:0/tcp+tls",
                      "chargen@127.0.0.1:0/tcp+tls", "echo@unix:%s+tls" % path])
    c = tls_connect(s.addr("hello"))
    assert kh.recv_until_eof(c) == b"Hello from server!\n"
    c.close()
    c = tls_connect(s.addr("daytime"))
    assert re.fullmatch(rb"\w+, \w+ \d\d, \d{4} \d\d:\d\d:\d\d-UTC\r\n", kh.recv_until_eof(c))
    c.close()
    c = tls_connect(s.addr("chargen"))
    assert len(kh.recv_exact(c, 74 * 20)) == 74 * 20
    c.close()
    c = tls_connect(path)
    c.sendall(b"over unix")
    assert kh.recv_exact(c, 9) == b"over unix"
    c.close()
    s.stop()


def test_chargen_over_tls_closes_once_the_half_closed_peer_resets(server):
    """The peer shuts down its side (a FIN, no close_notify: OpenSSL takes it for
    one), then closes with unread data: a reset. The server's next write fails, and
    the connection must close then. It used to take that failed write for "0 bytes
    sent" and retry at once, spinning a core until --drain-timeout or a stop."""
    s = server.start(["-v", "chargen@127.0.0.1:0/tcp+tls"])
    c = tls_connect(s.addr("chargen"))
    assert len(kh.recv_exact(c, 74 * 20)) == 74 * 20
    port = c.getsockname()[1]
    c.shutdown(socket.SHUT_WR)
    time.sleep(0.2)         # the server reads our FIN and goes on writing
    c.close()               # unread data: a reset
    text = s.wait_log(lambda t: re.search(r"close chargen tcp 127\.0\.0\.1:%d " % port, t),
                      timeout=2)
    assert "close chargen tcp 127.0.0.1:%d in=0 out=" % port in text
    t0 = time.monotonic()
    s.stop()
    assert time.monotonic() - t0 < kh.scaled(1.5), "the stop waited out the drain"


def hundred_mib_round_trip(addr):
    """In lockstep, 32 KiB at a time: an SSL object must not be read and written from
    two threads at once, so the client sends a piece, then reads its echo. Returns
    the MiB/s it moved each way."""
    c = tls_connect(addr, timeout=120)
    t0 = time.monotonic()
    block = os.urandom(1 << 20)
    sent, got = hashlib.sha256(), hashlib.sha256()
    piece = 32 * 1024
    for i in range(100 * (1 << 20) // piece):
        off = (i * piece) % len(block)
        chunk = block[off:off + piece]
        sent.update(chunk)
        c.sendall(chunk)
        got.update(kh.recv_exact(c, len(chunk)))
    assert got.hexdigest() == sent.hexdigest()
    c.close()
    return 100 / (time.monotonic() - t0)


def test_a_hundred_mib_round_trip(server):
    s = server.start(["echo@127.0.0.1:0/tcp+tls"])
    hundred_mib_round_trip(s.addr("echo"))
    s.stop()


# --------------------------------------------------------------------------- certificates

def test_given_certificate_and_sighup_reload(server, tmp_path):
    d = str(tmp_path)
    ca = make_ca(d)
    one = make_leaf(d, ca, "one", "DNS:localhost,IP:127.0.0.1")
    two = make_leaf(d, ca, "two", "DNS:localhost,IP:127.0.0.1")
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    os.link(one[1], cert)
    os.link(one[0], key)
    s = server.start(["--cert", cert, "--key", key, "echo@127.0.0.1:0/tcp+tls"])
    assert served_fingerprint(s) == cert_fingerprint_file(one[1])
    ctx = ssl.create_default_context(cafile=ca[1])
    old = ctx.wrap_socket(kh.connect(s.addr("echo")), server_hostname="127.0.0.1")
    old.sendall(b"before")
    assert kh.recv_exact(old, 6) == b"before"
    # New files, then SIGHUP: new handshakes get the new certificate, the open
    # connection goes on as it was.
    os.replace(two[1], cert)
    os.replace(two[0], key)
    s.send_signal(signal.SIGHUP)
    s.wait_log(lambda t: "kodama: SIGHUP: reloaded the certificate, tls fingerprint sha256 %s"
               % cert_fingerprint_file(cert) in t)
    new = ctx.wrap_socket(kh.connect(s.addr("echo")), server_hostname="127.0.0.1")
    assert fingerprint_of(new.getpeercert(binary_form=True)) == cert_fingerprint_file(cert)
    new.close()
    old.sendall(b"after")
    assert kh.recv_exact(old, 5) == b"after"
    # Files that cannot be read: the certificate in use stays, and why is logged.
    os.unlink(cert)
    s.send_signal(signal.SIGHUP)
    text = s.wait_log(lambda t: "SIGHUP: kept the certificate in use" in t)
    assert re.search(r"^kodama: SIGHUP: kept the certificate in use: cannot read the "
                     r"certificate %s: .+$" % re.escape(cert), text, re.M), text
    c = ctx.wrap_socket(kh.connect(s.addr("echo")), server_hostname="127.0.0.1")
    c.close()
    old.close()
    s.stop()


def test_sighup_with_a_self_signed_certificate(server):
    s = server.start(["echo@127.0.0.1:0/tcp+tls"])
    s.send_signal(signal.SIGHUP)
    s.wait_log(lambda t: "kodama: SIGHUP: nothing to reload (the certificate is self-signed)" in t)
    s.stop()


def test_client_certificate_required_and_shown_in_info(server, tmp_path):
    d = str(tmp_path)
    ca = make_ca(d)
    client = make_leaf(d, ca, "alice", client=True)
    s = server.start(["--client-ca", ca[1], "--client-cert", "require", "info@127.0.0.1:0/tcp+tls"])
    c = tls_connect(s.addr("info"), client_ctx(cert=(client[1], client[0])))
    line = kh.recv_until_eof(c).decode()
    c.close()
    assert " client_cert=yes cert_subject=CN=alice cert_issuer=CN=kodama-test-ca " \
           "cert_fingerprint=%s\n" % cert_fingerprint_file(client[1]) in line, line
    # Without one: the handshake fails (TLS 1.3: the alert comes with the first read).
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        c = tls_connect(s.addr("info"))
        c.recv(100)
    s.wait_log(lambda t: "no TLS handshake" in t and "certificate" in t)
    s.stop()


def test_client_certificate_required_by_default(server, tmp_path):
    """kodama.1: --client-cert is require by default: --client-ca alone turns a
    client without a certificate away."""
    d = str(tmp_path)
    ca = make_ca(d)
    s = server.start(["--client-ca", ca[1], "info@127.0.0.1:0/tcp+tls"])
    got = b""
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        c = tls_connect(s.addr("info"))
        got = kh.recv_until_eof(c)
        c.close()
    assert b"client_cert=no" not in got, got
    s.wait_log(lambda t: "no TLS handshake" in t and "certificate" in t)
    s.stop()


def test_client_certificate_optional(server, tmp_path):
    d = str(tmp_path)
    ca = make_ca(d)
    s = server.start(["--client-ca", ca[1], "--client-cert", "optional", "info@127.0.0.1:0/tcp+tls"])
    c = tls_connect(s.addr("info"))
    assert " client_cert=no\n" in kh.recv_until_eof(c).decode()
    c.close()
    s.stop()


@pytest.mark.parametrize("args, line", [
    (["--cert", "/nonexistent/c.pem", "echo@127.0.0.1:0/tcp+tls"], None),
    (["--key", "k.pem", "echo@127.0.0.1:0/tcp+tls"], "kodama: --key needs --cert"),
    (["--cert", "c.pem", "echo@127.0.0.1:0/tcp+tls"], "kodama: --cert needs --key"),
    (["--client-cert", "require", "echo@127.0.0.1:0/tcp+tls"],
     "kodama: --client-cert needs --client-ca (whose certificates the client's must be signed by)"),
    (["--client-cert", "maybe", "echo@127.0.0.1:0/tcp+tls"],
     "kodama: --client-cert 'maybe': not optional or require"),
    (["--alpn", "h2", "echo@127.0.0.1:0/tcp"], "kodama: TLS options, but no SPEC with +tls"),
    (["--tls-timeout", "0", "echo@127.0.0.1:0/tcp+tls"],
     "kodama: --tls-timeout '0': must be more than 0"),
])
def test_tls_option_errors(args, line):
    if line is None:
        r = kh.run_kodama(["serve", *args, "--key", "/nonexistent/k.pem"])
        assert r.rc == 1, r
        assert r.stderr.startswith("kodama: cannot read the certificate /nonexistent/c.pem: "), r
        assert len(r.err_lines) == 1, r
        return
    kh.assert_usage_error(kh.run_kodama(["serve", *args]), line, "serve")


# --------------------------------------------------------------------------- stages

def proxy_v1(src, dst):
    return b"PROXY TCP4 %s %s %d %d\r\n" % (src[0].encode(), dst[0].encode(), src[1], dst[1])


def test_proxy_header_then_tls(server):
    s = server.start(["info@127.0.0.1:0/tcp+proxy+tls"])
    raw = kh.connect(s.addr("info"))
    raw.sendall(proxy_v1(("192.0.2.7", 4242), s.addr("info")))
    c = client_ctx().wrap_socket(raw)
    line = kh.recv_until_eof(c).decode()
    assert " client=192.0.2.7:4242 tls=TLSv1.3 " in line, line
    c.close()
    s.stop()


# --------------------------------------------------------------------------- abuse

def drops(s, reason="tls_handshake"):
    m = re.search(r"%s=(\d+)" % reason, s.stop())
    return int(m.group(1)) if m else None


def test_handshake_abuse_costs_one_slot_and_harms_no_one(server):
    s = server.start(["-v", "--tls-timeout", "1", "echo@127.0.0.1:0/tcp+tls"])
    addr = s.addr("echo")
    stalled = kh.connect(addr)                      # says nothing
    garbage = kh.connect(addr)
    garbage.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    half = kh.connect(addr)                         # a ClientHello, then a reset
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = client_ctx().wrap_bio(incoming, outgoing)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    half.sendall(outgoing.read())
    time.sleep(0.1)
    half.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    half.close()
    # Meanwhile, a good client is served at once.
    t0 = time.monotonic()
    c = tls_connect(addr)
    c.sendall(b"fine")
    assert kh.recv_exact(c, 4) == b"fine"
    c.close()
    assert time.monotonic() - t0 < 1.0
    # The garbage is answered with a reset (or an alert) at once.
    garbage.settimeout(kh.scaled(5))
    try:
        garbage.recv(100)
    except ConnectionResetError:
        pass
    # The stalled one is reset after --tls-timeout.
    stalled.settimeout(kh.scaled(5))
    t0 = time.monotonic()
    with pytest.raises(ConnectionResetError):
        stalled.recv(100)
    assert 0.5 < time.monotonic() - t0 < kh.scaled(3)
    # Their log lines share one limit a second (the wording: the test below); the
    # counter has each. The reset one may also end as a failed read: >= 2.
    n = drops(s)
    assert n is not None and n >= 2, n


@pytest.mark.valgrind
def test_stalled_handshake_is_logged_and_reset(server):
    s = server.start(["-v", "--tls-timeout", "1", "echo@127.0.0.1:0/tcp+tls"])
    stalled = kh.connect(s.addr("echo"))
    stalled.settimeout(kh.scaled(5))
    t0 = time.monotonic()
    with pytest.raises(ConnectionResetError):
        stalled.recv(100)
    assert 0.9 < time.monotonic() - t0 < kh.scaled(3)
    text = s.wait_log(lambda t: "(--tls-timeout)" in t)
    assert re.search(r"^kodama: dropped echo tcp 127\.0\.0\.1:\d+ from 127\.0\.0\.1:\d+: no TLS "
                     r"handshake: not done within 1 s \(--tls-timeout\)$", text, re.M), text
    assert drops(s) == 1


def test_ktls_probe(server):
    s = server.start(["-v", "echo@127.0.0.1:0/tcp+tls", "--metrics", "127.0.0.1:0"])
    text = s.log()
    m = re.search(r"^kodama: kTLS: (available|unavailable \((.*)\)): ", text, re.M)
    assert m, text
    c = tls_connect(s.addr("echo"))
    c.sendall(b"x")
    assert kh.recv_exact(c, 1) == b"x"
    c.close()
    m2 = kh.connect(s.addr("metrics"))
    m2.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
    body = kh.recv_until_eof(m2).decode()
    series = re.findall(r'^kodama_tls_handshakes_total\{.*ktls="(yes|no)"\} (\d+)$', body, re.M)
    counts = dict(series)
    assert counts.get("yes") is not None and counts.get("no") is not None, body
    if m.group(1) == "available":
        assert counts == {"yes": "1", "no": "0"}, counts
    else:
        assert counts == {"yes": "0", "no": "1"}, counts
    s.stop()


def test_ktls_hundred_mib_round_trip(server):
    """Where the kernel has the tls ULP: the records are its, every byte still
    comes back, and the rate is said (the -rs summary shows why it skipped)."""
    s = server.start(["-v", "echo@127.0.0.1:0/tcp+tls", "--metrics", "127.0.0.1:0"])
    m = re.search(r"^kodama: kTLS: (available|unavailable \((.*)\)): ", s.log(), re.M)
    assert m, s.log()
    if m.group(1) != "available":
        s.stop()
        pytest.skip("kTLS round trip and MiB/s not run: %s" % m.group(2))
    rate = hundred_mib_round_trip(s.addr("echo"))
    m2 = kh.connect(s.addr("metrics"))
    m2.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
    body = kh.recv_until_eof(m2).decode()
    assert re.search(r'^kodama_tls_handshakes_total\{.*ktls="yes"\} 1$', body, re.M), body
    print("kTLS echo: %.0f MiB/s each way" % rate)
    s.stop()


# --------------------------------------------------------------------------- with faults

@pytest.mark.valgrind
def test_faults_shape_the_plaintext_over_tls(server):
    """Faults act on what the service says, under the records: slices come out as
    records of their own, and close-after counts plaintext bytes."""
    s = server.start(["echo@127.0.0.1:0/tcp+tls,slice=7,slice-delay=5ms",
                      "hello@127.0.0.1:0/tcp+tls,close-after=5"])
    c = tls_connect(s.addr("echo"))
    msg = bytes(range(256)) * 8
    c.sendall(msg)
    pieces = []
    while sum(map(len, pieces)) < len(msg):
        chunk = c.recv(65536)
        assert chunk
        pieces.append(chunk)
    assert b"".join(pieces) == msg
    assert max(map(len, pieces)) <= 7, [len(p) for p in pieces][:20]
    c.close()
    h = tls_connect(s.addr("hello"))
    got = b""
    while True:
        try:
            chunk = h.recv(100)
        except ssl.SSLEOFError:
            break
        if not chunk:
            break
        got += chunk
    assert got == b"Hello"     # "Hello from server!\n" cut after 5 bytes
    h.close()


def test_relay_refuses_tls(server):
    r = kh.run_kodama(["serve", "relay@127.0.0.1:0/tcp+tls,to=127.0.0.1:9"])
    assert r.rc == 2, r
    assert "relay copies bytes as they are: no '+tls'" in r.stderr, r
