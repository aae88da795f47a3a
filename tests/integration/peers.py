"""Small scripted peers for the client tests: a tcp peer with a behaviour, a listener
whose backlog is full and that never accepts (its SYNs are dropped: a filtered
port), and a udp socket that never answers. All on loopback."""
import socket
import threading

from kodama_helpers import scaled


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
