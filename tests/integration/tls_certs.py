"""Certificates for the TLS tests, made with the openssl command line: a CA, leaves
signed by it (server or client, any names, any validity), and fingerprints in the
form `openssl x509 -fingerprint -sha256` prints."""
import hashlib
import os
import subprocess

import kodama_helpers as kh


def openssl(*args, input=None, timeout=20):
    kh.require_tool("openssl")
    p = subprocess.run(["openssl", *args], input=input, capture_output=True, timeout=timeout)
    assert p.returncode == 0, p
    return p.stdout


def make_ca(d, name="kodama-test-ca"):
    """(key, cert) of a self-signed ECDSA P-256 CA."""
    key, crt = os.path.join(d, name + ".key"), os.path.join(d, name + ".crt")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", crt, "-days", "2", "-subj", "/CN=" + name)
    return key, crt


def make_leaf(d, ca, cn, san=None, days=2, client=False):
    """(key, cert) signed by ca. days=-1 makes one that expired yesterday."""
    key, csr, crt = (os.path.join(d, cn + s) for s in (".key", ".csr", ".crt"))
    ext = os.path.join(d, cn + ".ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\n")
        f.write("extendedKeyUsage=%s\n" % ("clientAuth" if client else "serverAuth"))
        if san:
            f.write("subjectAltName=%s\n" % san)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", csr, "-subj", "/CN=" + cn)
    openssl("x509", "-req", "-in", csr, "-CA", ca[1], "-CAkey", ca[0], "-CAcreateserial",
            "-out", crt, "-days", str(days), "-extfile", ext)
    return key, crt


def cert_fingerprint_file(path):
    """"AB:CD:...", as openssl x509 -noout -fingerprint -sha256 prints it."""
    out = openssl("x509", "-in", path, "-noout", "-fingerprint", "-sha256").decode()
    return out.strip().split("=", 1)[1]


def fingerprint_of(der):
    h = hashlib.sha256(der).hexdigest().upper()
    return ":".join(h[i:i + 2] for i in range(0, 64, 2))
