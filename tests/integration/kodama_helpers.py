"""Shared helpers for kodama's black-box integration tests.

Everything here talks to the binary only through argv, stdio, signals and sockets.
The binary is $KODAMA_BIN (default: <repo>/kodama).  Only loopback addresses are used.
"""
import hashlib
import os
import re
import shutil
import resource
import shlex
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _find_binary():
    env = os.environ.get("KODAMA_BIN")
    if not env:
        return str(REPO / "kodama")
    p = Path(env)
    if not p.is_absolute():
        # Accept a path relative to the current directory or to the repository.
        cand = (Path.cwd() / p)
        p = cand if cand.exists() else (REPO / p)
    return str(p)


KODAMA = _find_binary()

# $KODAMA_WRAPPER: a command that runs every kodama the helpers start (Server and
# run_kodama, through kodama_cmd), e.g. "valgrind --tool=memcheck --error-exitcode=99 -q"
# (make valgrind).  Its reports on stderr are caught by sanitizer_problems.
WRAPPER = shlex.split(os.environ.get("KODAMA_WRAPPER", ""))
UNDER_VALGRIND = bool(WRAPPER) and os.path.basename(WRAPPER[0]).startswith("valgrind")


def _wrapper_error_exitcode():
    """valgrind's --error-exitcode=N, if the wrapper sets one: kodama never exits N itself."""
    for w in WRAPPER:
        if w.startswith("--error-exitcode="):
            return int(w.split("=", 1)[1])
    return None


WRAPPER_ERROR_RC = _wrapper_error_exitcode()


def kodama_cmd(*args):
    """argv for running kodama ARGS, under $KODAMA_WRAPPER if set."""
    return [*WRAPPER, KODAMA, *[str(a) for a in args]]


# Deadlines (not correctness bounds) are stretched for sanitizer builds and valgrind.
_scale_env = os.environ.get("KODAMA_TIME_SCALE")
if _scale_env:
    TIME_SCALE = float(_scale_env)
elif UNDER_VALGRIND:
    TIME_SCALE = 10.0
elif "asan" in KODAMA.lower() or "san" in Path(KODAMA).parent.name.lower():
    TIME_SCALE = 2.5
else:
    TIME_SCALE = 1.0

GREETING = b"Hello from server!\n"
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer")
# valgrind -q prints only findings: memcheck's reports start "==PID== " ("==PID== Invalid
# read of size 4", "==PID== 16 bytes in 1 blocks are definitely lost ..."), valgrind's own
# warnings "--PID-- ".  Every "==PID==" line counts, except these notes about the run.
VALGRIND_BENIGN = ("Warning: set address range perms", "Warning: client switching stacks",
                   "further instances of this message will not be shown")
# Named in the failure message when present.
VALGRIND_MARKERS = ("Invalid read", "Invalid write", "Invalid free", "Mismatched free",
                    "uninitialised", "unaddressable", "Syscall param",
                    "Source and destination overlap", "fishy value", "Jump to the invalid address",
                    "definitely lost", "indirectly lost", "possibly lost", "invalid file descriptor",
                    "Process terminating with default action")
VALGRIND_LINE_RE = re.compile(r"^==\d+== (.*)$", re.M)
VALGRIND_NOTE_RE = re.compile(r"^--\d+-- (.*)$", re.M)
# Syscalls valgrind 3.19 (Debian 12) does not know, which kodama does without: the
# call fails with ENOSYS and kodama falls back.  Any other unhandled syscall is a finding
# (memcheck could not see what it did to memory).
VALGRIND_UNHANDLED_OK = {
    441: "epoll_pwait2: epoll_wait_ns (bench, serve's epoll loop) falls back to epoll_wait",
}
VALGRIND_UNHANDLED_RE = re.compile(r"^--\d+-- WARNING: unhandled \S+ syscall: (\d+)$", re.M)
VALGRIND_SUMMARY_RE = re.compile(r"^==\d+== ERROR SUMMARY: ([1-9]\d*) errors?", re.M)
READY_LINE = "kodama: ready"
# serve -v says so when --io auto falls back to epoll.
# -v notes that may come before the listening lines: the engine fallback, the
# limit derived from the descriptor limit, the user the server runs as.
IO_NOTE_RE = re.compile(r"^kodama: (io_uring unavailable \(.*\); using epoll"
                        r"|max-conns \d+ \(from the descriptor limit\)"
                        r"|running as user \S+ \(uid \d+, gid \d+\)"
                        r"|TLS listeners: using epoll"
                        r"|kTLS: .*"
                        r"|--batch-wait(: this kernel's| is for) .*"
                        r"|tls fingerprint sha256 [0-9A-F:]{95})$")
# The certificate's fingerprint, printed once before ready when a SPEC has +tls.
FINGERPRINT_RE = re.compile(r"^kodama: tls fingerprint sha256 ([0-9A-F:]{95})$", re.M)
LISTEN_RE = re.compile(r"^kodama: listening (\S+) (tcp|udp|unix) (\S+)$")
# A --trace line: the time since the trace began, then the call (kodama.1, TRACE).
TRACE_RE = re.compile(r"^\+\d+\.\d{6} ")
# serve's text log lines after "ready" start with the time (kodama.1, LOGGING).
TIMESTAMP_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ")


def strip_timestamps(text):
    """serve's stderr with the timestamp of every line after "kodama: ready" checked
    and removed, so that tests compare the messages exactly.  A "kodama: " line after
    ready without one fails the test (lines of others, such as sanitizer reports,
    are left alone)."""
    out, after_ready = [], False
    for line in text.splitlines(True):
        if after_ready:
            m = TIMESTAMP_RE.match(line)
            if m:
                line = line[m.end():]
            else:
                assert not line.startswith("kodama: "), (
                    "log line after ready without a timestamp: %r" % line)
        elif line.rstrip("\n") == READY_LINE:
            after_ready = True
        out.append(line)
    return "".join(out)


def scaled(seconds):
    return seconds * TIME_SCALE


def assert_exact_latency(one_round, d, rounds=30):
    """A fault latency of d seconds, timed by one_round(i) (returns seconds) in
    rounds started at varied phases of the ms: none shorter than d, the median
    within 0.6 ms after it (a clock cut to the ms would be up to 1 ms early, or
    1 ms late if padded against that)."""
    times = []
    for i in range(rounds):
        times.append(one_round(i))
        time.sleep(0.0001 * (i % 10))
    times.sort()
    assert times[0] >= d, times
    assert times[len(times) // 2] < d + scaled(0.0006), times


def raise_nofile_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard
    if hard == resource.RLIM_INFINITY:
        target = 1 << 20
    if soft == resource.RLIM_INFINITY or soft >= target:
        return
    for t in (target, 65536, 16384, 8192, 4096):
        if t <= soft:
            break
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (t, hard))
            return
        except (ValueError, OSError):
            continue


def valgrind_report(text):
    """What valgrind found, per a process's stderr (empty: nothing)."""
    lines = [l for l in VALGRIND_LINE_RE.findall(text)
             if l.strip() and not any(b in l for b in VALGRIND_BENIGN)]
    found = []
    if lines:
        found = [m for m in VALGRIND_MARKERS if any(m in l for l in lines)] or ["valgrind output"]
    m = VALGRIND_SUMMARY_RE.search(text)
    if m:
        found.append("ERROR SUMMARY: %s errors" % m.group(1))
    found += ["unhandled syscall %s" % n for n in VALGRIND_UNHANDLED_RE.findall(text)
              if int(n) not in VALGRIND_UNHANDLED_OK]
    return found


def strip_valgrind_notes(text):
    """stderr without valgrind's own "--PID--" lines (checked by valgrind_report first),
    so that tests can compare kodama's stderr exactly."""
    if not WRAPPER:
        return text
    return "".join(l for l in text.splitlines(True) if not VALGRIND_NOTE_RE.match(l))


def sanitizer_problems(text, what):
    """Reports of a memory checker in a kodama's stderr: ASan/UBSan/LSan, or valgrind
    when it runs under $KODAMA_WRAPPER.  Returns a list of problems (empty: none)."""
    found = [m for m in SANITIZER_MARKERS if m in text]
    if WRAPPER:
        found += valgrind_report(text)
    if not found:
        return []
    return ["%s: memory checker report (%s):\n%s" % (what, ", ".join(found), text[-6000:])]


def wrapper_failed(rc):
    """True if rc is the wrapper's (valgrind's --error-exitcode) error status."""
    return WRAPPER_ERROR_RC is not None and rc == WRAPPER_ERROR_RC


# --------------------------------------------------------------------------- addresses

def parse_addr(text):
    """'127.0.0.1:5000' / '[::1]:5000' / '[::]:5000' / 'unix:/p' / 'unix:@n'
    -> (family, sockaddr) where sockaddr is what Python's socket module takes."""
    if text.startswith("unix:@"):
        return socket.AF_UNIX, "\0" + text[len("unix:@"):]
    if text.startswith("unix:"):
        return socket.AF_UNIX, text[len("unix:"):]
    if text.startswith("["):
        end = text.index("]")
        host = text[1:end]
        assert text[end + 1] == ":", text
        return socket.AF_INET6, (host, int(text[end + 2:]))
    host, port = text.rsplit(":", 1)
    return socket.AF_INET, (host, int(port))


def free_port(host="127.0.0.1", kind=socket.SOCK_STREAM):
    """A port that was free a moment ago (bound then closed)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, kind) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def fam_of(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


# --------------------------------------------------------------------------- server

class Server:
    """A running `kodama serve ...`.  stderr goes to a file that is polled."""

    def __init__(self, args, logdir, preexec_fn=None, env=None, ready_timeout=10.0,
                 wait_ready=True, prefix=None, pass_fds=(), timestamps=True):
        # prefix: a launcher that execs kodama (systemd-socket-activate ...); its own
        # lines on stderr, which do not start with "kodama: ", are skipped.
        self.args = [str(a) for a in args]
        self.prefix = [str(a) for a in prefix or ()]
        self.timestamps = timestamps    # False: log() is raw_log() (--log-format json, journal)
        fd, self.log_path = tempfile.mkstemp(prefix="serve-", suffix=".err", dir=logdir)
        ofd, self.out_path = tempfile.mkstemp(prefix="serve-", suffix=".out", dir=logdir)
        errf = os.fdopen(fd, "wb")
        outf = os.fdopen(ofd, "wb")
        self._signalled = False
        self.listeners = []
        self.start_time = time.monotonic()
        try:
            self.proc = subprocess.Popen([*self.prefix, *kodama_cmd("serve", *self.args)],
                                         stdin=subprocess.DEVNULL,
                                         stdout=outf, stderr=errf, preexec_fn=preexec_fn,
                                         env=env, close_fds=True, pass_fds=pass_fds)
        finally:
            errf.close()
            outf.close()
        if wait_ready:
            self.wait_ready(scaled(ready_timeout))

    # -- logs
    def raw_log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def log(self):
        """stderr, with the runtime lines' timestamps checked and removed."""
        text = self.raw_log()
        return strip_timestamps(text) if self.timestamps else text

    def stdout(self):
        with open(self.out_path, "rb") as f:
            return f.read()

    def log_lines(self):
        return self.log().splitlines()

    def wait_log(self, pred, timeout=5.0):
        """Wait until pred(log_text) is true; returns the log text."""
        deadline = time.monotonic() + scaled(timeout)
        while True:
            text = self.log()
            if pred(text):
                return text
            if time.monotonic() > deadline:
                pytest.fail("timed out waiting for the server log; log so far:\n" + text[-4000:])
            time.sleep(0.01)

    def wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            text = self.log()
            lines = text.splitlines()
            if READY_LINE in lines:
                break
            rc = self.proc.poll()
            if rc is not None:
                pytest.fail("kodama serve %s exited with %s before '%s'; stderr:\n%s"
                            % (" ".join(self.args), rc, READY_LINE, text[-4000:]))
            if time.monotonic() > deadline:
                pytest.fail("kodama serve %s: no '%s' within %.1f s; stderr:\n%s"
                            % (" ".join(self.args), READY_LINE, timeout, text[-4000:]))
            time.sleep(0.01)
        for line in lines:
            if line == READY_LINE:
                break
            if IO_NOTE_RE.match(line) or (self.prefix and not line.startswith("kodama: ")):
                continue
            if TRACE_RE.match(line):
                continue    # serve --trace: io_uring's first submissions come before ready
            if WRAPPER and (VALGRIND_LINE_RE.match(line) or VALGRIND_NOTE_RE.match(line)):
                continue  # a finding: stop() and cleanup() report it
            m = LISTEN_RE.match(line)
            assert m, "unexpected line before ready: %r\nfull stderr:\n%s" % (line, text)
            service, proto, addr_text = m.groups()
            self.listeners.append((service, proto, addr_text, parse_addr(addr_text)[1]))
        assert self.listeners, "no listening lines before ready:\n" + text

    # -- addresses
    def listener(self, service, proto):
        for lst in self.listeners:
            if lst[0] == service and lst[1] == proto:
                return lst
        pytest.fail("no %s %s listener; have %r" % (service, proto, self.listeners))

    def addr(self, service, proto="tcp"):
        """(host, port) for tcp/udp (host as printed, e.g. '::' for a wildcard), or the
        path for unix ('\\0name' for an abstract name)."""
        sa = self.listener(service, proto)[3]
        if isinstance(sa, str):
            return sa
        return sa[0], sa[1]

    def port(self, service, proto="tcp"):
        return self.addr(service, proto)[1]

    def addr_text(self, service, proto="tcp"):
        return self.listener(service, proto)[2]

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS for pid %d" % self.proc.pid)

    # -- stopping
    def send_signal(self, sig=signal.SIGTERM):
        self._signalled = True
        self.proc.send_signal(sig)

    def stop(self, timeout=5.0, sig=signal.SIGTERM):
        """SIGTERM; assert exit 0 within timeout, 'kodama: stopping', no sanitizer report."""
        assert self.proc.poll() is None, "server already exited with %s; log:\n%s" % (
            self.proc.returncode, self.log()[-4000:])
        self.send_signal(sig)
        try:
            rc = self.proc.wait(scaled(timeout))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            pytest.fail("server did not exit within %.1f s of %s; log:\n%s"
                        % (scaled(timeout), sig.name, self.log()[-4000:]))
        text = self.log()
        probs = sanitizer_problems(text, "kodama serve")
        assert not probs, probs[0]
        assert not wrapper_failed(rc), "kodama serve: %s exit code %s (it found errors); log:\n%s" % (
            WRAPPER[0], rc, text[-6000:])
        assert rc == 0, "server exit code %s after %s; log:\n%s" % (rc, sig.name, text[-4000:])
        assert "kodama: stopping" in text.splitlines(), "no 'kodama: stopping' line:\n" + text[-4000:]
        return text

    def cleanup(self):
        """Kill if still running (under a wrapper: SIGTERM first); return a list of
        problems (sanitizer or valgrind reports, the wrapper's error status, crashes)."""
        problems = []
        if self.proc.poll() is None and WRAPPER:
            # Under valgrind a server the test left running gets its exit check too:
            # SIGTERM (kodama exits 0 and valgrind checks for leaks), not SIGKILL.
            self._signalled = True
            self.proc.terminate()
            try:
                self.proc.wait(scaled(5))
            except subprocess.TimeoutExpired:
                pass
        if self.proc.poll() is None:
            self._signalled = True
            self.proc.kill()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                problems.append("server pid %d did not die" % self.proc.pid)
        rc = self.proc.returncode
        text = self.raw_log()   # a report must never hide behind a format check
        found = sanitizer_problems(text, "kodama serve " + " ".join(self.args))
        problems += found
        if wrapper_failed(rc) and not found:
            problems.append("kodama serve %s: %s exit code %s (it found errors); log:\n%s"
                            % (" ".join(self.args), WRAPPER[0], rc, text[-6000:]))
        if rc is not None and rc < 0 and not self._signalled:
            problems.append("kodama serve %s died of signal %d; log:\n%s"
                            % (" ".join(self.args), -rc, text[-4000:]))
        return problems


class ServerFactory:
    def __init__(self, logdir):
        self.logdir = logdir
        self.servers = []

    def start(self, args, **kw):
        s = Server(args, self.logdir, **kw)
        self.servers.append(s)
        return s

    __call__ = start

    def cleanup(self):
        problems = []
        for s in self.servers:
            problems += s.cleanup()
        return problems


# --------------------------------------------------------------------------- clients

class Result:
    def __init__(self, args, rc, stdout, stderr, elapsed):
        self.args = args
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.elapsed = elapsed

    @property
    def err_lines(self):
        return self.stderr.splitlines()

    def __repr__(self):
        return "Result(args=%r, rc=%r, stdout=%r, stderr=%r)" % (
            self.args, self.rc, self.stdout[:300], self.stderr[-2000:])


def run_kodama(args, input=None, timeout=10.0, env=None, allow_sanitizer=False, prefix=()):
    """Run kodama ARGS (under the command prefix, e.g. strace) to completion; returns
    Result(rc, stdout bytes, stderr text). Fails the test on a timeout, a death by
    signal or a sanitizer report."""
    args = [str(a) for a in args]
    t0 = time.monotonic()
    try:
        p = subprocess.run([*prefix, *kodama_cmd(*args)],
                           input=input if input is not None else b"",
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=scaled(timeout), env=env)
    except subprocess.TimeoutExpired as e:
        pytest.fail("kodama %s: no exit within %.1f s (stdout=%r stderr=%r)"
                    % (" ".join(args), scaled(timeout), (e.stdout or b"")[:300],
                       (e.stderr or b"")[-2000:]))
    r = Result(args, p.returncode, p.stdout, p.stderr.decode("utf-8", "replace"),
               time.monotonic() - t0)
    if not allow_sanitizer:
        probs = sanitizer_problems(r.stderr, "kodama " + " ".join(args))
        assert not probs, probs[0]
        assert not wrapper_failed(r.rc), "kodama %s: %s exit code %s (it found errors): %r" % (
            " ".join(args), WRAPPER[0], r.rc, r)
    r.stderr = strip_valgrind_notes(r.stderr)
    assert r.rc >= 0, "kodama %s died of signal %d: %r" % (" ".join(args), -r.rc, r)
    return r


def assert_usage_error(r, first_line, cmd=None):
    """Exit 2, nothing on stdout, exactly: first_line, then the Try line."""
    try_line = "Try 'kodama %s --help'." % cmd if cmd else "Try 'kodama --help'."
    assert r.rc == 2, r
    assert r.stdout == b"", r
    assert r.stderr == first_line + "\n" + try_line + "\n", r


# --------------------------------------------------------------------------- sockets

def connect(sockaddr, family=None, timeout=10.0):
    if family is None:
        if isinstance(sockaddr, str):
            family = socket.AF_UNIX
        else:
            family = fam_of(sockaddr[0])
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(scaled(timeout))
    s.connect(sockaddr)
    return s


def recv_until_eof(sock, limit=1 << 26):
    chunks = []
    n = 0
    while True:
        b = sock.recv(65536)
        if not b:
            return b"".join(chunks)
        chunks.append(b)
        n += len(b)
        assert n <= limit, "more than %d bytes before EOF" % limit


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        b = sock.recv(n - len(buf))
        if not b:
            raise AssertionError("EOF after %d of %d bytes" % (len(buf), n))
        buf += b
    return bytes(buf)


def stream_through(sock, data, chunk=1 << 20, timeout=60.0):
    """Send data from a thread (then SHUT_WR) while reading to EOF here.
    Returns (bytes received, sha256 hexdigest of them)."""
    errors = []

    def writer():
        try:
            mv = memoryview(data)
            for off in range(0, len(mv), chunk):
                sock.sendall(mv[off:off + chunk])
            sock.shutdown(socket.SHUT_WR)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    h = hashlib.sha256()
    n = 0
    buf = bytearray(1 << 20)
    mv = memoryview(buf)
    deadline = time.monotonic() + scaled(timeout)
    try:
        while True:
            assert time.monotonic() < deadline, "stream_through: deadline passed after %d bytes" % n
            k = sock.recv_into(buf)
            if k == 0:
                break
            h.update(mv[:k])
            n += k
    finally:
        t.join(scaled(timeout))
    assert not t.is_alive(), "writer thread still blocked"
    assert not errors, "writer failed: %r" % errors
    return n, h.hexdigest()


def sha256(b):
    return hashlib.sha256(b).hexdigest()


def udp_exchange(dest, payload, timeout=5.0, sock=None):
    """Send one datagram from an unconnected socket; return (reply, source)."""
    own = sock is None
    if own:
        sock = socket.socket(fam_of(dest[0]), socket.SOCK_DGRAM)
    try:
        sock.settimeout(scaled(timeout))
        sock.sendto(payload, dest)
        return sock.recvfrom(70000)
    finally:
        if own:
            sock.close()


def wait_tcp_accepting(host, port, timeout=10.0):
    deadline = time.monotonic() + scaled(timeout)
    while True:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                pytest.fail("nothing accepting on %s port %d" % (host, port))
            time.sleep(0.05)


def short_tmpdir():
    """A short directory for unix socket paths (sun_path is 108 bytes)."""
    return tempfile.mkdtemp(prefix="kd-", dir="/tmp")


def require_tool(name):
    path = shutil.which(name)
    if not path:
        pytest.skip("%s is not installed (the project's deps script installs it)" % name)
    return path


def run_echo_clients(sockaddr, n, rounds, timeout=30.0, family=None, msg_fmt=b"msg-%d-%d\n"):
    """n concurrent non-blocking clients in one thread (selectors); each sends
    `rounds` messages one after another, waiting for each echo.  Every client closes
    when done.  Returns (number of clients served correctly, list of failures)."""
    import errno
    import selectors
    from types import SimpleNamespace

    if family is None:
        family = socket.AF_UNIX if isinstance(sockaddr, str) else fam_of(sockaddr[0])
    sel = selectors.DefaultSelector()
    failures = []
    ok = 0
    live = 0
    try:
        for i in range(n):
            s = socket.socket(family, socket.SOCK_STREAM)
            s.setblocking(False)
            rc = s.connect_ex(sockaddr)
            if rc not in (0, errno.EINPROGRESS, errno.EAGAIN):
                failures.append((i, "connect: %s" % os.strerror(rc)))
                s.close()
                continue
            st = SimpleNamespace(i=i, k=0, out=msg_fmt % (i, 0), inbuf=bytearray(), sock=s)
            sel.register(s, selectors.EVENT_WRITE, st)
            live += 1

        def finish(st, why=None):
            nonlocal live, ok
            sel.unregister(st.sock)
            st.sock.close()
            live -= 1
            if why is None:
                ok += 1
            else:
                failures.append((st.i, why))

        deadline = time.monotonic() + scaled(timeout)
        while live and time.monotonic() < deadline:
            for key, ev in sel.select(timeout=0.5):
                st = key.data
                s = st.sock
                try:
                    if ev & selectors.EVENT_WRITE:
                        k = s.send(st.out)
                        st.out = st.out[k:]
                        if not st.out:
                            sel.modify(s, selectors.EVENT_READ, st)
                    elif ev & selectors.EVENT_READ:
                        b = s.recv(65536)
                        if not b:
                            finish(st, "EOF after %d replies (+%r)" % (st.k, bytes(st.inbuf)))
                            continue
                        st.inbuf += b
                        exp = msg_fmt % (st.i, st.k)
                        if len(st.inbuf) >= len(exp):
                            if bytes(st.inbuf) != exp:
                                finish(st, "reply %r, expected %r" % (bytes(st.inbuf), exp))
                                continue
                            st.k += 1
                            st.inbuf.clear()
                            if st.k == rounds:
                                finish(st)
                            else:
                                st.out = msg_fmt % (st.i, st.k)
                                sel.modify(s, selectors.EVENT_WRITE, st)
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError as e:
                    finish(st, "%s after %d replies" % (e, st.k))
        if live:
            for key in list(sel.get_map().values()):
                st = key.data
                failures.append((st.i, "unfinished at the deadline after %d replies" % st.k))
    finally:
        for key in list(sel.get_map().values()):
            key.fileobj.close()
        sel.close()
    return ok, failures


def received_lines(r):
    """send -v's stderr: one 'Received N bytes from ADDR' line per reply and nothing else."""
    for line in r.err_lines:
        assert line.startswith("Received "), "unexpected stderr line %r in %r" % (line, r)
    return r.err_lines


def require_localhost_name():
    """Skip unless the name 'localhost' resolves to 127.0.0.1 here: it comes from
    /etc/hosts, which a minimal root may not have. Returns its addresses."""
    try:
        infos = socket.getaddrinfo("localhost", 7, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        pytest.skip("the name 'localhost' does not resolve on this machine: %s" % e)
    addrs = sorted({info[4][0] for info in infos})
    if "127.0.0.1" not in addrs:
        pytest.skip("'localhost' resolves to %s, not 127.0.0.1" % addrs)
    return addrs
