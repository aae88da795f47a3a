"""Small scripted peers for the client tests: a tcp peer with a behaviour, a listener
whose backlog is full and that never accepts (its SYNs are dropped: a filtered
port), a udp socket that never answers, and socat's echo. All on loopback."""
import socket
import subprocess
import threading
import time

from kodama_helpers import free_port, require_tool, scaled


class TcpPeer:
    """Accepts connections on 127.0.0.1 one at a time and serves each with
    behaviour(conn) in a thread, until closed."""

    def __init__(self, behaviour, conns=1, host="127.0.0.1"):
        self.ls = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.ls.bind((host, 0))
        self.ls.listen(8)
        self.ls.settimeout(scaled(10))
        self.port = self.ls.getsockname()[1]
        self.peers = []         # the accepted connections' peer addresses
        self.behaviour = behaviour
        self.t = threading.Thread(target=self._run, args=(conns,), daemon=True)
        self.t.start()

    def _run(self, conns):
        for _ in range(conns):
            try:
                c, addr = self.ls.accept()
            except OSError:
                return
            self.peers.append(addr)
            c.settimeout(scaled(10))
            try:
                self.behaviour(c)
            except OSError:
                pass
            finally:
                c.close()

    def close(self):
        self.ls.close()
        self.t.join(scaled(10))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class FullBacklog:
    """A listener that never accepts, with its queue already full: further SYNs are
    dropped, so a connect waits as through a firewall that drops."""

    def __init__(self):
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(0)
        self.port = self.ls.getsockname()[1]
        self.fillers = []
        # listen(0) queues one connection; a second fills the SYN side too.
        for _ in range(2):
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(("127.0.0.1", self.port))
            self.fillers.append(c)

    def close(self):
        for c in self.fillers:
            c.close()
        self.ls.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class SilentUdp:
    """A bound udp socket that reads nothing and answers nothing."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class SocatEcho:
    """socat's tcp echo: TCP-LISTEN with fork, each connection echoed by a PIPE.

    -b4096: a socat PIPE writes its blocks to a pipe that only it reads, with
    blocking writes, whenever select says the pipe is writable, which is when one
    page of it is free. A block larger than a page (the default is 8192) can then
    block it for ever in its own write (seen: a 20 MiB round trip with a reader
    that takes its time stopped after 3 MiB, socat asleep in anon_pipe_write); a
    page always fits.

    The port is picked before socat binds it, so a server started meanwhile by
    another test may take it; socat then exits, and another port is tried. With
    log_path, socat says what it does (-d -d) there."""

    def __init__(self, listen_opts="", log_path=None):
        socat = require_tool("socat")
        for _ in range(3):
            self.port = free_port()
            log = open(log_path, "ab") if log_path else subprocess.DEVNULL
            try:
                self.proc = subprocess.Popen(
                    [socat, *(["-d", "-d"] if log_path else []), "-b4096",
                     "TCP4-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork%s" % (self.port, listen_opts),
                     "PIPE"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
            finally:
                if log_path:
                    log.close()
            if self._listening():
                return
            self.proc.wait(5)
        raise AssertionError("socat could not listen on a free port three times")

    def _listening(self):
        deadline = time.monotonic() + scaled(5)
        while self.proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                time.sleep(0.05)
                if self.proc.poll() is None:    # still listening: the port is socat's
                    return True
            except OSError:
                assert time.monotonic() < deadline, "socat did not start"
                time.sleep(0.05)
        return False

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
