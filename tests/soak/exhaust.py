#!/usr/bin/python3
"""exhaust.py — `make soak`'s second part: one `kodama serve` run out of descriptors
again and again, on every kind of listening socket it has (the workers' tcp and unix
listeners, and the --metrics thread's).

    tests/soak/exhaust.py --seconds 60 --kodama ./kodama [--io epoll|uring]

The server runs with RLIMIT_NOFILE 96, two worker threads, echo and hello over tcp,
echo over a unix socket, and --metrics. Each cycle:

  1. clients open connections to every listener until kodama stops accepting (the
     kernel still queues a few in the backlogs, unanswered), and a scrape waits on
     the metrics port;
  2. for 2-4 s nothing is released: every thread of the server must stay under 10 %
     of a CPU (a listener left armed on level-triggered epoll spins at 100 %), and
     the log may grow by at most one line a second per listener (plus the count
     of the rest, a second later);
  3. everything is released: within 5 s each listener must answer again (an echo
     over tcp and unix, the greeting, a 200 from /metrics), the waiting scrape too.

Exit status 0 only if every cycle passed; the last lines say what failed.
"""
import argparse
import os
import random
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NOFILE = 96
CPU_MAX = 0.10          # of one CPU, per thread, while exhausted


def thread_cpu(pid):
    """{tid: (name, seconds of CPU)} for every thread of pid."""
    out = {}
    hz = os.sysconf("SC_CLK_TCK")
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                text = f.read()
        except OSError:
            continue
        name = text[text.index("(") + 1:text.rindex(")")]
        fields = text.rsplit(")", 1)[1].split()
        out[tid] = (name, (int(fields[11]) + int(fields[12])) / hz)
    return out


class Server:
    def __init__(self, kodama, io, workdir):
        self.unix_path = os.path.join(workdir, "echo.sock")
        args = [kodama, "serve", "-t", "2", "--max-conns", "100000",
                "echo@127.0.0.1:0/tcp", "hello@127.0.0.1:0/tcp", "echo@unix:" + self.unix_path,
                "--metrics", "127.0.0.1:0"]
        if io:
            args[2:2] = ["--io", io]
        self.log_path = os.path.join(workdir, "serve.log")
        self.log_file = open(self.log_path, "wb")

        def limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))

        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self.log_file, preexec_fn=limit)
        self.addrs = {}
        deadline = time.monotonic() + 10
        while "kodama: ready" not in self.log().splitlines():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("exhaust: kodama serve did not get ready:\n" + self.log())
            time.sleep(0.02)
        for line in self.log().splitlines():
            parts = line.split()
            if len(parts) == 5 and parts[1] == "listening" and parts[3] == "tcp":
                host, port = parts[4].rsplit(":", 1)
                self.addrs[parts[2] + "/" + parts[3]] = (host, int(port))

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            return None


def connect(target, timeout=2.0):
    if isinstance(target, str):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(target)
    return s


def answers(server, what, timeout=0.5):
    """Does the listener serve (right now, within timeout)?"""
    try:
        if what == "metrics":
            s = connect(server.addrs["metrics/tcp"], timeout)
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            ok = s.recv(16).startswith(b"HTTP/1.1 200")
        elif what == "hello":
            s = connect(server.addrs["hello/tcp"], timeout)
            ok = s.recv(64).startswith(b"Hello")
        else:
            s = connect(server.unix_path if what == "unix" else server.addrs["echo/tcp"], timeout)
            s.sendall(b"ping")
            ok = s.recv(4) == b"ping"
        s.close()
        return ok
    except OSError:
        return False


def exhaust(server):
    """Hold connections to every listener until kodama takes no more. Returns them."""
    held = []
    for what in ("echo", "unix", "hello"):
        for _ in range(200):
            try:
                s = connect(server.unix_path if what == "unix" else server.addrs[what + "/tcp"])
            except OSError:
                break
            held.append(s)
            if what == "hello":
                continue        # it says hello and waits for our close: a descriptor each
            s.sendall(b"x")
            s.settimeout(0.3)
            try:
                if s.recv(1) != b"x":
                    break
            except OSError:
                break           # queued by the kernel, not taken by kodama
    return held


def cycle(server, n, rng):
    problems = []
    held = exhaust(server)
    scrape = connect(server.addrs["metrics/tcp"])
    scrape.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    lines0 = len(server.log().splitlines())
    cpu0 = thread_cpu(server.proc.pid)
    hold = rng.uniform(2, 4)
    time.sleep(hold)
    cpu1 = thread_cpu(server.proc.pid)
    lines = server.log().splitlines()[lines0:]
    for tid, (name, sec) in cpu1.items():
        used = (sec - cpu0.get(tid, (name, 0.0))[1]) / hold
        if used > CPU_MAX:
            problems.append("cycle %d: thread %s (%s) used %.0f %% of a CPU while out of "
                            "descriptors" % (n, tid, name, used * 100))
    # A line a second per listener that hit the limit, and its tail a second later.
    most = 4 * (int(hold) + 2)
    if len(lines) > most:
        problems.append("cycle %d: %d log lines in %.1f s while out of descriptors (at most %d): %s"
                        % (n, len(lines), hold, most, lines[:3]))
    for s in held:
        s.close()
    deadline = time.monotonic() + 5
    for what in ("echo", "unix", "hello", "metrics"):
        while not answers(server, what):
            if time.monotonic() > deadline:
                problems.append("cycle %d: %s does not answer 5 s after the descriptors came back"
                                % (n, what))
                break
            time.sleep(0.1)
    try:
        scrape.settimeout(5)
        if not scrape.recv(16).startswith(b"HTTP/1.1 200"):
            problems.append("cycle %d: the scrape that waited got no 200" % n)
    except OSError as e:
        problems.append("cycle %d: the scrape that waited failed: %s" % (n, e))
    scrape.close()
    return problems, len(held), len(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--kodama", default=os.environ.get("KODAMA_BIN", str(REPO / "kodama")))
    ap.add_argument("--io", choices=("epoll", "uring", "auto"))
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    workdir = tempfile.mkdtemp(prefix="kd-exhaust-", dir="/tmp")
    server = Server(args.kodama, args.io, workdir)
    print("exhaust: kodama serve pid %d, RLIMIT_NOFILE %d, %g s of cycles"
          % (server.proc.pid, NOFILE, args.seconds), flush=True)
    problems, n, t0 = [], 0, time.monotonic()
    while time.monotonic() - t0 < args.seconds and not problems:
        n += 1
        found, held, lines = cycle(server, n, rng)
        problems += found
        print("  cycle %d: %d connections held, %d log lines, %s"
              % (n, held, lines, "ok" if not found else "FAILED"), flush=True)
    rc = server.stop()
    if rc != 0:
        problems.append("kodama serve exit status after SIGTERM: %s" % rc)
    for p in problems:
        print("exhaust: " + p, file=sys.stderr)
    if problems:
        print("exhaust: server log (last lines):\n" + "\n".join(server.log().splitlines()[-20:]),
              file=sys.stderr)
    print("exhaust: %d cycles, %s" % (n, "FAILED" if problems else "all passed"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
