"""A fault-injecting TCP proxy for tests: a hostile path between a client and a server.

    with FaultyProxy(("127.0.0.1", port), seed=1234) as p:
        c = socket.create_connection(p.addr)
        ...
    p.stats["c2s"]["one_byte_writes"], p.errors, ...

It listens on 127.0.0.1 port 0 and, for each client it accepts, connects to the target
and pumps both directions in two threads.  For every chunk it reads, a pump may
  * split the write into pieces, some of them a single byte (`split_prob`,
    `one_byte_prob`), each sent with TCP_NODELAY so that it leaves as its own segment,
    and after a one-byte piece wait `tiny_gap` seconds so that the receiver has time to
    read that byte on its own rather than together with the next piece;
  * sleep a random 0..max_delay seconds before a write (`delay_prob`);
  * stall for `stall_seconds` where the stall plan says so: a list of
    (connection index, "c2s"|"s2c", byte offset); the pump of that connection and
    direction stops once it has carried that many bytes, then goes on.
Half-close is passed on: EOF from the client becomes shutdown(SHUT_WR) towards the
server, EOF from the server shutdown(SHUT_WR) towards the client.  Both sockets of a
connection are closed once both directions have ended.

Every decision comes from a random.Random seeded with (seed, connection index,
direction), so a run is reproducible up to how the kernel cuts the reads; `describe()`
gives the seed and the settings for a failure message.  `stats` counts what was carried
and every fault injected, so a test can check that the faults really happened.
"""
import math
import random
import socket
import threading
import time

DIRECTIONS = ("c2s", "s2c")
_COUNTERS = ("bytes", "chunks", "writes", "splits", "one_byte_writes", "delays",
             "delay_seconds", "stalls", "stall_seconds", "eofs")


class FaultyProxy:
    def __init__(self, target, seed, *, split_prob=0.25, one_byte_prob=0.3, max_pieces=12,
                 tiny_gap=0.001, delay_prob=0.01, max_delay=0.05, stall_plan=(),
                 stall_seconds=1.0,
                 io_timeout=60.0, recv_size=65536):
        self.target = target
        self.seed = seed
        self.split_prob = split_prob
        self.one_byte_prob = one_byte_prob
        self.max_pieces = max_pieces
        self.tiny_gap = tiny_gap
        self.delay_prob = delay_prob
        self.max_delay = max_delay
        self.stall_seconds = stall_seconds
        self.io_timeout = io_timeout
        self.recv_size = recv_size
        self._plan = {}
        for conn, direction, offset in stall_plan:
            assert direction in DIRECTIONS, direction
            self._plan.setdefault((conn, direction), []).append(offset)
        for offsets in self._plan.values():
            offsets.sort()
        self.stats = {d: dict.fromkeys(_COUNTERS, 0) for d in DIRECTIONS}
        self.piece_sizes = {d: {} for d in DIRECTIONS}   # size -> count, for pieces < 16
        self.errors = []        # (connection index, direction or "connect", repr)
        self.connections = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads = []
        self._socks = []
        self._lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._lsock.bind(("127.0.0.1", 0))
        self._lsock.listen(64)
        self._lsock.settimeout(0.1)
        self.addr = self._lsock.getsockname()
        self._acceptor = threading.Thread(target=self._accept_loop, name="proxy-accept",
                                          daemon=True)
        self._acceptor.start()

    # ------------------------------------------------------------------ public

    def describe(self):
        return ("FaultyProxy(seed=%r, split_prob=%g, one_byte_prob=%g, max_pieces=%d, "
                "tiny_gap=%g, delay_prob=%g, max_delay=%g, stall_plan=%r, stall_seconds=%g)"
                % (self.seed, self.split_prob, self.one_byte_prob, self.max_pieces, self.tiny_gap,
                   self.delay_prob, self.max_delay, self.stall_plan(), self.stall_seconds))

    def stall_plan(self):
        return sorted((c, d, o) for (c, d), offs in self._plan.items() for o in offs)

    def summary(self):
        return "; ".join("%s: %s" % (d, ", ".join(
            "%s=%s" % (k, ("%.2f" % v) if isinstance(v, float) else v)
            for k, v in self.stats[d].items())) for d in DIRECTIONS)

    def join(self, timeout):
        """Wait until every pump has ended (each connection closed both ways).
        Returns True when all have."""
        deadline = time.monotonic() + timeout
        for t in list(self._threads):
            t.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    def close(self):
        self._stopping.set()
        self._acceptor.join(5)
        self._lsock.close()
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in list(self._threads):
            t.join(5)
        for s in socks:
            s.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ internals

    def _accept_loop(self):
        while not self._stopping.is_set():
            try:
                client, _ = self._lsock.accept()
            except socket.timeout:
                continue
            except OSError as e:
                if not self._stopping.is_set():
                    self.errors.append((None, "accept", repr(e)))
                return
            index = self.connections
            self.connections += 1
            try:
                server = socket.create_connection(self.target, timeout=self.io_timeout)
            except OSError as e:
                self.errors.append((index, "connect", repr(e)))
                client.close()
                continue
            for s in (client, server):
                s.settimeout(self.io_timeout)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._socks += [client, server]
            pair = {"left": 2, "socks": (client, server)}
            for direction, src, dst in (("c2s", client, server), ("s2c", server, client)):
                t = threading.Thread(target=self._pump, args=(index, direction, src, dst, pair),
                                     name="proxy-%d-%s" % (index, direction), daemon=True)
                self._threads.append(t)
                t.start()

    def _count(self, direction, key, n=1):
        with self._lock:
            self.stats[direction][key] += n

    def _pieces(self, rng, n):
        """Sizes to cut a chunk of n bytes into: [n] or a random split, some pieces 1 byte,
        the others log-uniform in size so that short ones are common."""
        if n < 2 or rng.random() >= self.split_prob:
            return [n]
        sizes = []
        left = n
        while left and len(sizes) < self.max_pieces - 1:
            if rng.random() < self.one_byte_prob:
                k = 1
            else:
                k = min(left, int(math.exp(rng.uniform(0.0, math.log(n)))))
            sizes.append(k)
            left -= k
        if left:
            sizes.append(left)
        return sizes

    def _write(self, direction, dst, piece):
        dst.sendall(piece)
        k = len(piece)
        with self._lock:
            st = self.stats[direction]
            st["writes"] += 1
            st["bytes"] += k
            if k == 1:
                st["one_byte_writes"] += 1
            if k < 16:
                sizes = self.piece_sizes[direction]
                sizes[k] = sizes.get(k, 0) + 1

    def _pump(self, index, direction, src, dst, pair):
        rng = random.Random("%s/%d/%s" % (self.seed, index, direction))
        stalls = list(self._plan.get((index, direction), ()))
        carried = 0
        buf = bytearray(self.recv_size)
        try:
            while True:
                n = src.recv_into(buf)
                if n == 0:
                    self._count(direction, "eofs")
                    dst.shutdown(socket.SHUT_WR)
                    return
                self._count(direction, "chunks")
                mv = memoryview(buf)[:n]
                pieces = self._pieces(rng, n)
                if len(pieces) > 1:
                    self._count(direction, "splits")
                off = 0
                for k in pieces:
                    while stalls and carried + k > stalls[0]:
                        # Forward exactly up to the planned offset, then stop a while.
                        head = stalls.pop(0) - carried
                        if head > 0:
                            self._write(direction, dst, mv[off:off + head])
                            off += head
                            carried += head
                            k -= head
                        time.sleep(self.stall_seconds)
                        self._count(direction, "stalls")
                        self._count(direction, "stall_seconds", self.stall_seconds)
                    if k == 0:
                        continue
                    if rng.random() < self.delay_prob:
                        d = rng.uniform(0.0, self.max_delay)
                        time.sleep(d)
                        self._count(direction, "delays")
                        self._count(direction, "delay_seconds", d)
                    self._write(direction, dst, mv[off:off + k])
                    off += k
                    carried += k
                    if k == 1 and off < n and self.tiny_gap:
                        time.sleep(self.tiny_gap)
        except OSError as e:
            if not self._stopping.is_set():
                self.errors.append((index, direction, repr(e)))
            for s in pair["socks"]:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        finally:
            with self._lock:
                pair["left"] -= 1
                last = pair["left"] == 0
            if last:
                for s in pair["socks"]:
                    s.close()
