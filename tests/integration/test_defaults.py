"""`kodama serve` with no SPEC: hello on 8080 and echo on 7007, tcp and udp, one
dual-stack socket each. Those fixed ports may be taken on the test machine, so the
server runs in a network namespace of its own (unshare -n), where only loopback exists."""
import os
import shutil
import subprocess

import pytest

from kodama_helpers import KODAMA, scaled, strip_timestamps

SCRIPT = r"""
set -e
ip link set lo up
"$KODAMA" serve 2>serve.log &
pid=$!
for i in $(seq 100); do grep -q 'kodama: ready' serve.log && break; sleep 0.05; done
"$KODAMA" connect 127.0.0.1 8080 </dev/null >hello4.out
"$KODAMA" connect ::1 8080 </dev/null >hello6.out
"$KODAMA" send 127.0.0.1 7007 four >echo4.out
"$KODAMA" send ::1 7007 six >echo6.out
"$KODAMA" send -u 127.0.0.1 7007 udp4 >echo4u.out
"$KODAMA" send -u ::1 7007 udp6 >echo6u.out
kill -TERM $pid
wait $pid
echo "serve exit $?" >>serve.log
"""


def test_serve_defaults_in_own_network_namespace(tmp_path):
    if not shutil.which("unshare") or not shutil.which("ip"):
        pytest.skip("needs unshare (util-linux) and ip (iproute2)")
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("cannot make a network namespace here: %s" % probe.stderr.decode().strip())
    r = subprocess.run(["unshare", "-n", "sh", "-c", SCRIPT], cwd=tmp_path,
                       env=dict(os.environ, KODAMA=KODAMA), capture_output=True, text=True,
                       timeout=scaled(30))
    log = (tmp_path / "serve.log").read_text()
    assert r.returncode == 0, (r.stderr, log)
    assert strip_timestamps(log).splitlines() == [
        "kodama: listening hello tcp [::]:8080",
        "kodama: listening hello udp [::]:8080",
        "kodama: listening echo tcp [::]:7007",
        "kodama: listening echo udp [::]:7007",
        "kodama: ready",
        "kodama: stopping",
        "serve exit 0",
    ]
    out = {name: (tmp_path / name).read_bytes() for name in
           ("hello4.out", "hello6.out", "echo4.out", "echo6.out", "echo4u.out", "echo6u.out")}
    assert out == {"hello4.out": b"Hello from server!\n", "hello6.out": b"Hello from server!\n",
                   "echo4.out": b"four\n", "echo6.out": b"six\n",
                   "echo4u.out": b"udp4\n", "echo6u.out": b"udp6\n"}
