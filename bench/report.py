#!/usr/bin/env python3
"""report.py RESULTS.tsv [PICTURE...]: the Markdown report of one bench/compare.sh run.

Reads the records compare.sh wrote (one a line, tab-separated key=value) and
prints the tables, the ratios to the best peer, a verdict per target and the
list of peers that broke.  The best peer is the best non-kodama server in that
case, measured by the same client, among the runs without errors or losses.
"""
import json
import os
import sys

HZ = os.sysconf("SC_CLK_TCK")
CASES = {
    "tcp64": "TCP echo, 64 B messages, 100 connections, depth 16",
    "tcp16k": "TCP echo, 16 KiB messages, 10 connections, depth 1",
    "udp64": "UDP echo, 64 B datagrams, 8 sockets, depth 16",
    "hello": "hello: connections per second, 50 concurrent",
    "hello4": "hello: connections per second, 4 concurrent",
    "hello1": "hello: connections per second, one at a time",
    "pingpong-tcp": "TCP ping-pong: one connection, one 64 B message in flight",
    "pingpong-udp": "UDP ping-pong: one socket, one 64 B datagram in flight",
}
# Fixed offered rates (open loop): NAME@RATE.
FIXED = {
    "tcp64": "TCP echo, 64 B messages, 100 connections",
    "tcp64x10": "TCP echo, 64 B messages, 10 connections",
    "udp64": "UDP echo, 64 B datagrams, 8 sockets",
    "hello": "hello, at most 50 connections at a time",
}


def is_hello(cse):
    return cse.startswith("hello")


def engine(server):
    """The io engine of a kodama variant's label, "default" when it names none. The
    opt-in gathering wait (--batch-wait) is a configuration of its own: its figures
    are judged together, never mixed with the plain engine's."""
    if "batch-wait" in server:
        return "uring, batch-wait"
    return "uring" if "uring" in server else "epoll" if "epoll" in server else "default"


def fixed_parts(cse):
    """("tcp64", 20000.0) for "tcp64@20k"; None for a case of no fixed rate."""
    if "@" not in cse:
        return None
    base, rate = cse.split("@", 1)
    return base, float(rate.rstrip("k")) * (1000 if rate.endswith("k") else 1)
# Why peers break, shown when they do.
KNOWN = [
    ("socat", "socat: forks a child per connection (`fork`) and echoes through a pipe (`PIPE`); the ≈44 ms per "
     "16 KiB message is the Nagle / delayed-ACK pattern of a server without TCP_NODELAY. Over UDP, "
     "`UDP4-LISTEN,fork` hands each new peer to a child of its own; the losses and wrong replies come with "
     "that (likely cause, not traced)."),
    ("xinetd", "xinetd: listens with a backlog of 64 (`ss -ltn`) and forks a child per echo connection, so "
     "opening 10,000 takes longer than the idle case allows; its built-in UDP echo loses most datagrams "
     "from 8 concurrent senders (cause not traced); the 16 KiB stall as for socat."),
    ("openbsd-inetd", "openbsd-inetd: forks a child per echo connection; the 16 KiB stall as for socat."),
    ("ncat", "ncat: `-k -e /bin/cat` forks and execs cat per connection and listens with a backlog of 10 "
     "(`ss -ltn`): the 100-connection burst overflows it (TcpExtListenOverflows) and some runs get a reset; "
     "the idle case cannot open 10,000 in time; in UDP mode it loses datagrams; the 16 KiB stall as for socat."),
]

CLIENT_NAMES = {"echoload": "echoload", "kodama-bench": "kodama bench"}


def load(path):
    recs = []
    with open(path) as f:
        for line in f:
            rec = {}
            for field in line.rstrip("\n").split("\t"):
                if "=" in field:
                    k, v = field.split("=", 1)
                    rec[k] = v
            if rec:
                recs.append(rec)
    return recs


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def fmt(v, digits=None):
    """A number for a table cell: n/a when missing, fewer digits when large."""
    if v is None:
        return "n/a"
    if digits is None:
        a = abs(v)
        digits = 0 if a >= 1000 else 1 if a >= 100 else 2 if a >= 1 else 3
    return f"{v:.{digits}f}"


def ratio(v, best):
    if v is None or best is None or best == 0:
        return "n/a"
    return f"{v / best:.2f}×"


class Run:
    """One measured client run against one server, with its derived figures."""

    def __init__(self, rec, strace):
        self.case = rec["case"]
        self.server = rec["server"]
        self.role = rec["role"]
        self.client = rec["client"]
        self.failure = None
        rc = int(rec.get("rc", "1"))
        self.errors = self.lost = None
        self.rate = self.mib = self.p50 = self.p99 = self.p999 = self.srv_us = None
        self.offered = None     # open loop: the rate asked for (kodama bench -r)
        if self.client == "echoload":
            self.rate = num(rec.get("conns_per_s" if is_hello(self.case) else "msgs_per_s"))
            self.mib = num(rec.get("mib_per_s"))
            self.p50, self.p99 = num(rec.get("p50_us")), num(rec.get("p99_us"))
            self.srv_us = num(rec.get("server_us_per_msg"))
            self.errors = num(rec.get("errors"))
            self.lost = num(rec.get("lost", "0"))
        else:
            try:
                j = json.loads(rec.get("json", ""))
            except ValueError:
                j = None
            if isinstance(j, dict):
                self.rate = num(j.get("conns_per_s" if is_hello(self.case) else "msgs_per_s"))
                self.mib = num(j.get("mib_per_s"))
                lat = j.get("latency_us") or {}
                self.p50, self.p99 = num(lat.get("p50")), num(lat.get("p99"))
                self.p999 = num(lat.get("p999"))
                self.offered = num(j.get("rate")) or None
                self.errors = sum(num(j.get(k)) or 0 for k in ("errors", "resets", "timeouts", "corrupt"))
                self.lost = num(j.get("lost")) or 0
        if self.rate is None:
            err = rec.get("stderr", "").strip() or f"exit status {rc}"
            self.failure = err[:80]
        elif self.rate == 0:
            self.p50 = self.p99 = self.mib = None
            if not self.errors:
                self.failure = "no replies"
        elif rc != 0 and not self.errors:
            self.failure = f"exit status {rc}: " + rec.get("stderr", "").strip()[:60]
        # Server CPU over the sampled window, per message.
        win_msgs = (self.rate or 0) * (num(rec.get("win_s")) or 0)
        self.proc_us = None
        if rec.get("win_ok", "1") != "1":
            win_msgs = 0  # the client was gone before the window closed
        if win_msgs > 0 and int(rec["win_srv_ns"]) >= 0:
            # (negative when children left the tree unreaped: no figure)
            self.proc_us = int(rec["win_srv_ns"]) / 1e3 / win_msgs
            if self.client != "echoload":
                self.srv_us = (int(rec["win_busy"]) - int(rec["win_cli"])) / HZ * 1e6 / win_msgs
        # The server's own cgroup: its CPU, forked children included, and nothing
        # else's. Where there is one, it is the server µs column, for both clients.
        self.cg_us = None
        cg_ns, cg_s = num(rec.get("win_cg_ns")), num(rec.get("win_cg_s"))
        if cg_ns is not None and cg_ns >= 0 and cg_s and rec.get("win_ok", "1") == "1" and self.rate:
            self.cg_us = cg_ns / 1e3 / (self.rate * cg_s)
            self.srv_us = self.cg_us
        # Syscalls per message, from the strace pass against this server.
        self.sys = self.uring = None
        st = strace.get((self.case, self.server))
        # Syscalls per message depend on the client's batching: only on the
        # row of the client that ran under strace.
        if st and st.get("client", "echoload") == self.client:
            srate = num(st.get("conns_per_s" if is_hello(self.case) else "msgs_per_s"))
            calls = num(st.get("calls"))
            if srate and calls is not None:
                msgs = srate * float(st.get("secs", "1"))
                self.sys = calls / msgs
                self.uring = (num(st.get("uring_enter")) or 0) / msgs

    @property
    def kept_up(self):
        """Open loop: did the server answer at the offered rate? Within 2 % of it,
        nothing lost, and a p99 under a second (a queue that grows would not be)."""
        if self.offered is None:
            return None
        return (self.failure is None and self.rate is not None and self.rate >= 0.98 * self.offered
                and not self.lost and not self.errors and (self.p99 or 0) < 1e6)

    @property
    def clean(self):
        return self.failure is None and not self.errors and not self.lost

    def errcell(self):
        if self.failure:
            return "FAILED: " + self.failure.replace("|", "/")
        e = "n/a" if self.errors is None else f"{self.errors:.0f}"
        lo = "n/a" if self.lost is None else f"{self.lost:.0f}"
        return f"{e}/{lo}"


MEDIAN_ATTRS = ("rate", "mib", "p50", "p99", "p999", "srv_us", "proc_us", "cg_us")


def median(vals):
    vals = sorted(vals)
    n = len(vals)
    return vals[n // 2] if n % 2 else (vals[n // 2 - 1] + vals[n // 2]) / 2


def merge_rounds(runs):
    """One Run per case, server and client: with --rounds, the median of each
    figure over the rounds whose run did not fail; errors and losses summed."""
    groups = {}
    for r in runs:
        groups.setdefault((r.case, r.server, r.client), []).append(r)
    out = []
    for group in groups.values():
        first = group[0]
        ok = [r for r in group if r.failure is None]
        if len(group) > 1 and ok:
            first = ok[0]
            for attr in MEDIAN_ATTRS:
                vals = [getattr(r, attr) for r in ok if getattr(r, attr) is not None]
                setattr(first, attr, median(vals) if vals else None)
            first.errors = sum(r.errors or 0 for r in group)
            first.lost = sum(r.lost or 0 for r in group)
            first.rounds = len(ok)
            if len(ok) < len(group):
                first.failure = f"{len(group) - len(ok)} of {len(group)} rounds failed: " + \
                    next(r.failure for r in group if r.failure)
        out.append(first)
    return out


def best(runs, attr, low):
    vals = [(getattr(r, attr), r) for r in runs if r.role == "peer" and r.clean and getattr(r, attr) is not None]
    if not vals:
        return None, None
    v, r = (min if low else max)(vals, key=lambda x: x[0])
    return v, r


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        out.append("| " + " | ".join(row) + " |")
    return out


def fixed_section(o, runs, starts, bg, verdict, plots):
    """The open-loop cases: every server offered the same rate; its CPU per message
    or connection, its latency, and whether it kept up. plots: the pictures of
    them (bench/plot.py) beside the report."""
    cases = [c for c in dict.fromkeys(r.case for r in runs) if fixed_parts(c)]
    if not cases:
        return
    o.append("## At fixed offered rates (open loop)")
    o.append("")
    o.append("`kodama bench -r RATE` offers the same arrivals to every server, and times each message from "
             "when it was due, however late it went out. *Kept up*: answered within 2 % of the offered rate, "
             "nothing lost, p99 under a second. Server µs from the server's own cgroup. The best peer is the "
             "lowest of the peers that kept up.")
    o.append("")
    for name in plots:
        what = "p99 latency" if "p99" in name else "server CPU per message"
        o.append(f"![{what} against the offered rate, a line per server]({name})")
        o.append("")
    header = ["case", "server", "offered/s", "answered/s", "kept up", "server µs", "p50 µs", "p99 µs",
              "p99.9 µs", "errors/lost", "µs ÷ best", "p99 − best p99 µs"]
    rows = []
    for cse in cases:
        base, rate = fixed_parts(cse)
        crs = [r for r in runs if r.case == cse]
        kept = [r for r in crs if r.role == "peer" and r.kept_up and r.clean]
        bus = min((r.srv_us for r in kept if r.srv_us is not None), default=None)
        bp99 = min((r.p99 for r in kept if r.p99 is not None), default=None)
        for r in crs:
            d99 = "n/a" if r.p99 is None or bp99 is None else f"{r.p99 - bp99:+.0f}"
            rows.append([cse, r.server, fmt(rate, 0), fmt(r.rate, 0),
                         "n/a" if r.kept_up is None else "yes" if r.kept_up else "NO",
                         fmt(r.srv_us), fmt(r.p50, 0), fmt(r.p99, 0), fmt(r.p999, 0), r.errcell(),
                         ratio(r.srv_us, bus), d99])
        for st in starts:
            if st["case"] == cse:
                rows.append([cse, st["server"], fmt(rate, 0)] + ["n/a"] * 6 +
                            ["FAILED to start: " + st["error"].replace("|", "/")[:60], "n/a", "n/a"])
        everyone = [r for r in crs if r.kept_up is not None]
        behind = [r.server for r in everyone if not r.kept_up]
        o.append(f"- {cse} ({FIXED.get(base, base)}, {fmt(rate, 0)}/s; machine busy before: "
                 f"{bg.get(cse, '?')} %): " + ("every server kept up" if everyone and not behind else
                                               "fell behind: " + ", ".join(behind) if behind else "no runs"))
        unit = "µs/conn" if is_hello(base) else "µs/msg"
        for eng in ("epoll", "uring", "uring, batch-wait", "default"):
            ks = [r for r in crs if r.role == "kodama" and engine(r.server) == eng and r.srv_us is not None]
            if not ks:
                continue
            k = min(ks, key=lambda r: r.srv_us)
            if bus is None:
                verdict(f"{cse}: server {unit} ≤ 0.6× best peer ({eng})", False, "no peer kept up to compare with")
                continue
            verdict(f"{cse}: server {unit} ≤ 0.6× best peer ({eng})", k.kept_up and k.srv_us <= 0.6 * bus,
                    f"{k.server} {fmt(k.srv_us)} vs {fmt(bus)} ({ratio(k.srv_us, bus)})"
                    + ("" if k.kept_up else ", and it fell behind"))
            if not is_hello(base) and bp99 is not None and k.p99 is not None:
                kp = min((r for r in ks if r.p99 is not None), key=lambda r: r.p99)
                verdict(f"{cse}: p99 ≤ best peer's + 100 µs ({eng})", kp.p99 <= bp99 + 100,
                        f"{kp.server} {fmt(kp.p99, 0)} µs vs {fmt(bp99, 0)} µs ({kp.p99 - bp99:+.0f})")
    o.append("")
    o.extend(table(header, rows))
    o.append("")


def main(argv):
    recs = load(argv[1])
    meta = {}
    for r in recs:
        if r.get("kind") == "meta":
            meta.update(r)
    strace = {(r["case"], r["server"]): r for r in recs if r.get("kind") == "strace"}
    runs = merge_rounds([Run(r, strace) for r in recs if r.get("kind") == "run"])
    starts = [r for r in recs if r.get("kind") == "start"]
    idles = [r for r in recs if r.get("kind") == "idle"]
    cmds = [r for r in recs if r.get("kind") == "cmd"]
    bg = {r["case"]: r.get("busy_pct", "?") for r in recs if r.get("kind") == "bg"}
    clients = [c for c in CLIENT_NAMES if any(r.client == c for r in runs)]
    st = next(iter(strace.values()), {})
    strace_run = f"{st.get('secs', '?')} s {CLIENT_NAMES.get(st.get('client'), st.get('client', '?'))}"
    quick = meta.get("quick") == "1"

    o = []
    o.append("# kodama compared with the servers a user would pick instead" + (" (quick run)" if quick else ""))
    o.append("")
    o.append(f"Generated by `{meta.get('command', 'bench/compare.sh')}` on {meta.get('date', '?')}; "
             f"kodama {meta.get('kodama', '?')}. See bench/README.md for how each figure is measured.")
    o.append("")
    o.append(f"- Machine: {meta.get('cpu', '?')}, {meta.get('ncpu', '?')} CPUs, {meta.get('mem', '?')}, "
             f"{meta.get('kernel', '?')}, Debian {meta.get('debian', '?')}. Client and server share the CPUs.")
    o.append(f"- Runs: echoload {meta.get('dur')} s after {meta.get('warm')} s warm-up; kodama bench "
             f"{meta.get('kb_dur')} s after {meta.get('kb_warm')} s; syscalls from a separate {strace_run} run "
             f"under `strace -c -f`; {meta.get('idle_n')} idle connections; "
             f"open files limit {meta.get('nofile')}; whole run {meta.get('elapsed_s', '?')} s.")
    notes = []
    if meta.get("has_bench") != "1":
        notes.append("`kodama bench` is not in this build: only echoload rows.")
    if meta.get("has_io") != "1" or meta.get("has_threads") != "1":
        notes.append("`kodama serve --io`/`--threads` are not in this build: kodama runs once, with its defaults "
                     "(epoll, 1 thread); the io_uring and all-CPU rows are missing.")
    if meta.get("has_strace") != "1":
        notes.append("strace is missing: syscalls/msg are n/a.")
    if quick:
        notes.append("Quick run: tiny durations, fewer servers; it checks the harness, not the numbers.")
    for n in notes:
        o.append(f"- Note: {n}")
    o.append("")

    verdicts = []

    def verdict(target, ok, detail):
        verdicts.append(f"- {'met' if ok else 'MISSED'}: {target} — {detail}")

    def kodama_runs(cse, client):
        return [r for r in runs if r.case == cse and r.client == client and r.role == "kodama"]

    def compare(cse, client, attr, low, factor, target, unit, eng=None):
        """A verdict: the best kodama variant's attr (of engine eng, if given) against
        factor × the best peer's."""
        peer_v, peer_r = best([r for r in runs if r.case == cse and r.client == client], attr, low)
        ks = [r for r in kodama_runs(cse, client) if getattr(r, attr) is not None and r.failure is None
              and (eng is None or engine(r.server) == eng)]
        cname = CLIENT_NAMES[client]
        if eng is not None and not any(engine(r.server) == eng for r in kodama_runs(cse, client)):
            return      # that engine was not run (--quick, or an old build)
        if peer_v is None or not ks:
            verdict(f"{target} ({cname})", False, "no figure to compare" +
                    ("" if ks else " (no kodama run)") + ("" if peer_v is not None else " (no clean peer run)"))
            return
        k = (min if low else max)(ks, key=lambda r: getattr(r, attr))
        kv = getattr(k, attr)
        ok = kv <= factor * peer_v if low else kv >= factor * peer_v
        others = "; ".join(f"{r.server} {fmt(getattr(r, attr))}" for r in ks if r is not k)
        verdict(f"{target} ({cname})", ok,
                f"{k.server} {fmt(kv)} {unit} vs best peer {peer_r.server} {fmt(peer_v)} {unit} "
                f"({ratio(kv, peer_v)}; target {'≤' if low else '≥'} {factor:g}×)" + (f"; others: {others}" if others else ""))

    for cse, title in CASES.items():
        cruns = [r for r in runs if r.case == cse]
        cstarts = [s for s in starts if s["case"] == cse]
        if not cruns and not cstarts:
            continue
        unit = "conn" if is_hello(cse) else "msg"
        ratecol = "conns/s" if is_hello(cse) else "msgs/s"
        big = cse == "tcp16k"
        header = ["server", "client", ratecol] + (["MiB/s"] if big else []) + [
            "p50 µs", "p99 µs", f"server µs/{unit}", f"proc µs/{unit}", f"syscalls/{unit}"]
        if any(r.server.startswith("kodama") and "uring" in r.server for r in cruns):
            header.append(f"io_uring_enter/{unit}")
        header += ["errors/lost", ("MiB/s" if big else ratecol) + " ÷ best", "p99 ÷ best", f"µs/{unit} ÷ best",
                   f"syscalls/{unit} ÷ best"]
        rows = []
        for client in clients:
            crs = [r for r in cruns if r.client == client]
            brate, _ = best(crs, "mib" if big else "rate", False)
            bp99, _ = best(crs, "p99", True)
            bus, _ = best(crs, "srv_us", True)
            bsys, _ = best(crs, "sys", True)
            for r in crs:
                row = [r.server, CLIENT_NAMES[client], fmt(r.rate, 0)] + ([fmt(r.mib, 1)] if big else []) + [
                    fmt(r.p50, 0), fmt(r.p99, 0), fmt(r.srv_us), fmt(r.proc_us), fmt(r.sys)]
                if "io_uring_enter/" + unit in header:
                    row.append(fmt(r.uring) if "uring" in r.server else "n/a")
                row += [r.errcell(), ratio(r.mib if big else r.rate, brate), ratio(r.p99, bp99),
                        ratio(r.srv_us, bus), ratio(r.sys, bsys)]
                rows.append(row)
        for s in cstarts:
            rows.append([s["server"], "n/a", "n/a"] + (["n/a"] if big else []) +
                        ["n/a"] * (len(header) - (4 if big else 3) - 5) +
                        ["FAILED to start: " + s["error"].replace("|", "/")[:80], "n/a", "n/a", "n/a", "n/a"])
        o.append(f"## {title}")
        o.append("")
        o.append(f"Machine busy before this case, with nothing of ours running: {bg.get(cse, '?')} % of the CPUs.")
        o.append("")
        o.extend(table(header, rows))
        o.append("")

        for client in clients:
            if cse in ("tcp64", "udp64"):
                compare(cse, client, "srv_us", True, 0.6, f"{cse}: server µs/msg ≤ 0.6× best peer", "µs")
                compare(cse, client, "rate", False, 1.0, f"{cse}: msgs/s ≥ best peer", "msgs/s")
                compare(cse, client, "p99", True, 1.0, f"{cse}: p99 ≤ best peer", "µs")
            elif cse == "tcp16k":
                compare(cse, client, "mib", False, 1.0, "tcp16k: MiB/s ≥ best peer", "MiB/s")
            elif is_hello(cse):
                compare(cse, client, "rate", False, 1.2, f"{cse}: connections/s ≥ 1.2× best peer", "conns/s")
                compare(cse, client, "srv_us", True, 0.6, f"{cse}: server µs/connection ≤ 0.6× best peer", "µs")
            elif cse.startswith("pingpong"):
                for eng, factor in (("uring", 0.8), ("epoll", 1.0)):
                    compare(cse, client, "srv_us", True, factor,
                            f"{cse}: server µs/msg ≤ {factor:g}× best peer on {eng}", "µs", eng)
                    compare(cse, client, "p99", True, 1.0, f"{cse}: p99 ≤ best peer on {eng}", "µs", eng)
            ks = kodama_runs(cse, client)
            bad = [f"{r.server}: {r.errcell()}" for r in ks if not r.clean]
            what = {"tcp64": "100-connection burst, no resets or errors",
                    "tcp16k": "16 KiB messages, no errors",
                    "udp64": "8 concurrent UDP senders, 0 lost",
                    "hello": "50 concurrent connects, no errors",
                    "hello4": "4 concurrent connects, no errors",
                    "hello1": "one connect at a time, no errors",
                    "pingpong-tcp": "no errors", "pingpong-udp": "0 lost"}[cse]
            if ks:
                verdict(f"{cse}: {what} ({CLIENT_NAMES[client]})", not bad,
                        "; ".join(bad) if bad else f"{len(ks)} kodama run(s) clean")
        ur = {r.server: r for r in cruns if r.role == "kodama" and "uring" in r.server and r.uring is not None}
        # One message in flight: it must wait for each, so one enter per message
        # (its send and the next receive in one submission) is the floor. One
        # connection at a time waits at least for its accept and for its FIN.
        if cse == "hello1":
            ur = {}
        limit = 1 if cse.startswith("pingpong") else None
        for r in ur.values():
            ok = r.uring is not None and (r.uring <= limit * 1.01 if limit else r.uring < 1)
            verdict(f"{cse}: {'≤' if limit else '<'} 1 io_uring_enter per {unit} ({r.server})", ok,
                    f"{fmt(r.uring)} io_uring_enter per {unit}, {fmt(r.sys)} syscalls per {unit}")

    fixed_section(o, runs, starts, bg, verdict, argv[2:])

    if idles:
        n = idles[0].get("n", "?")
        o.append(f"## {n} idle connections: server memory per connection")
        o.append("")
        o.append(f"Machine busy before this case, with nothing of ours running: {bg.get('idle', '?')} % of the CPUs.")
        o.append("")
        per = []
        for r in idles:
            opened = num(r.get("opened")) or 0
            d_rss = (int(r["rss1_kb"]) - int(r["rss0_kb"])) * 1024 / opened if opened else None
            d_pss = (int(r["pss1_kb"]) - int(r["pss0_kb"])) * 1024 / opened if opened else None
            per.append((r, opened, d_rss, d_pss))
        peers = [x for x in per if x[0]["role"] == "peer" and x[2] is not None and x[0].get("failed") == "0"]
        b_rss = min((x[2] for x in peers), default=None)
        rows = []
        for r, opened, d_rss, d_pss in per:
            rows.append([r["server"], fmt(opened, 0), r.get("failed", "n/a"),
                         fmt((num(r.get("open_ms")) or 0) / 1000, 2), r["rss0_kb"], r["rss1_kb"],
                         fmt(d_rss, 0), fmt(d_pss, 0), r["procs1"], ratio(d_rss, b_rss)])
        o.extend(table(["server", "conns held", "failed", "open s", "RSS before KiB", "RSS after KiB",
                        "RSS Δ B/conn", "PSS Δ B/conn", "procs", "RSS Δ ÷ best"], rows))
        o.append("")
        o.append("RSS and PSS are summed over the server's processes; for a forking server the RSS sum counts "
                 "shared library pages once per child, PSS shares them out. Kernel socket memory is in neither.")
        o.append("")
        o.append(f"## Then all {n} connections closed at once")
        o.append("")
        rows = []
        for r, opened, _, _ in per:
            rows.append([r["server"], r.get("closed", "0"), r.get("close_ms", "n/a"), r.get("release_ms", "n/a"),
                         r.get("left", "n/a"), r.get("procs2", "n/a"), r.get("rss2_kb", "n/a"), r.get("alive", "no")])
        o.extend(table(["server", "closed", "client close() ms", "server released ms", "sockets left",
                        "procs after", "RSS after KiB", "still answers"], rows))
        o.append("")
        o.append("`server released ms`: from the client's first close() until the server holds no socket of "
                 "them (established, close-wait or last-ack) and has no more processes than before.")
        o.append("")
        for r, opened, d_rss, _ in per:
            if r["role"] != "kodama":
                continue
            verdict(f"idle: ≤ 256 B of user-space memory per idle connection ({r['server']})",
                    d_rss is not None and d_rss <= 256 and r.get("failed") == "0",
                    f"RSS Δ {fmt(d_rss, 0)} B/conn over {fmt(opened, 0)} connections, {r.get('failed')} failed")
            verdict(f"close: {n} simultaneous closes handled ({r['server']})",
                    r.get("left") == "0" and r.get("alive") == "yes",
                    f"released in {r.get('release_ms')} ms, {r.get('left')} sockets left, still answers: {r.get('alive')}")
    for s in starts:
        if s["case"] == "idle":
            o.append(f"- {s['server']} did not start for the idle case: {s['error']}")

    base = [r for r in runs if r.role == "baseline"]
    if base:
        o.append("## Before and after (--baseline)")
        o.append("")
        o.append(f"`./kodama` ({meta.get('kodama', '?')}) against the baseline binary "
                 f"({meta.get('baseline', '?').strip()}), the same variant and client, run one right "
                 f"after the other" + (f", median of {meta.get('rounds')} interleaved rounds"
                                       if meta.get("rounds", "1") != "1" else "") + ". "
                 "Ratios are new ÷ baseline: above 1 is more (faster, or more CPU).")
        o.append("")
        rows = []
        for b in base:
            new_name = "kodama" + b.server[len("baseline"):]
            n = next((r for r in runs if r.role == "kodama" and r.server == new_name and r.case == b.case
                      and r.client == b.client), None)
            if n is None:
                continue
            rows.append([b.case, new_name, CLIENT_NAMES[b.client], fmt(n.rate, 0), fmt(b.rate, 0),
                         ratio(n.rate, b.rate), fmt(n.srv_us), fmt(b.srv_us), ratio(n.srv_us, b.srv_us),
                         fmt(n.p99, 0), fmt(b.p99, 0), ratio(n.p99, b.p99),
                         n.errcell() + " / " + b.errcell()])
        o.extend(table(["case", "variant", "client", "rate new", "rate base", "rate ÷", "µs new",
                        "µs base", "µs ÷", "p99 new", "p99 base", "p99 ÷", "errors/lost new / base"], rows))
        o.append("")

    o.append("## Targets")
    o.append("")
    o.append("kodama's best variant for each figure against the best peer, per client.")
    o.append("")
    o.extend(verdicts or ["- no verdicts: no kodama runs"])
    o.append("")

    o.append("## Peers that broke")
    o.append("")
    broke = []
    for s in starts:
        broke.append(f"- {s['server']} ({s['case']}): did not start: {s['error']}")
    for r in runs:
        if r.role != "peer":
            continue
        if not r.clean:
            broke.append(f"- {r.server} ({r.case}, {CLIENT_NAMES[r.client]}): errors/lost {r.errcell()}")
        if r.case == "tcp16k" and r.p50 is not None and r.p50 >= 30000:
            broke.append(f"- {r.server} (tcp16k, {CLIENT_NAMES[r.client]}): p50 {fmt(r.p50, 0)} µs — "
                         "the Nagle / delayed-ACK stall (≈40–44 ms per message)")
    for r in idles:
        if r["role"] != "peer":
            continue
        if r.get("failed") != "0":
            broke.append(f"- {r['server']} (idle): {r.get('failed')} of {r.get('n')} connections failed to open "
                         f"or were not served {r.get('stderr', '').strip()}".rstrip())
        if r.get("left") != "0" or r.get("alive") != "yes":
            broke.append(f"- {r['server']} (close): {r.get('left')} socket(s) left after {r.get('release_ms')} ms, "
                         f"still answers: {r.get('alive')}")
    o.extend(broke or ["- none in this run"])
    o.append("")
    known = [text for name, text in KNOWN if any(b.startswith(f"- {name} (") for b in broke)]
    if known:
        o.append("Why (seen with `ss -ltn`, the process counts and nstat while building this harness; "
                 "what says 'not traced' is a likely cause, not a verified one):")
        o.append("")
        o.extend(f"- {t}" for t in known)
        o.append("")
    if any(r.server == "openbsd-inetd" and r.case == "udp64" for r in runs):
        o.append("openbsd-inetd's UDP echo is measured over [::1]: it drops every datagram from 127.0.0.0/8 "
                 "(its anti-loop check), so it cannot answer 127.0.0.1 at all.")
        o.append("")

    analysis = os.path.join(os.path.dirname(os.path.abspath(__file__)), "analysis.md")
    if os.path.exists(analysis):
        with open(analysis) as f:
            o.append(f.read().rstrip("\n"))
        o.append("")

    # The TLS handshake comparison is a run of its own (bench/tls.sh); its table
    # lives beside this file, so that a compare.sh run keeps the link.
    if os.path.exists(os.path.join(os.path.dirname(os.path.abspath(__file__)), "tls.md")):
        o.append("## TLS handshakes")
        o.append("")
        o.append("kodama's `hello@ADDR/tcp+tls` beside nginx's stream module over TLS, "
                 "handshakes/s and server CPU per handshake, full and resumed: "
                 "[tls.md](tls.md), from `bench/tls.sh`.")
        o.append("")

    o.append("## Commands")
    o.append("")
    o.append("Clients (HOST PORT of the server under test; `-d`/`-w` as above):")
    o.append("")
    o.append("```")
    for a in (r for r in recs if r.get("kind") == "args"):
        if a.get("echoload"):
            o.append(f"build/bench/echoload {a['echoload']} -d {meta.get('dur')} -w {meta.get('warm')} HOST PORT"
                     f"   # {a['case']}")
        if meta.get("has_bench") == "1" and a.get("kodama_bench"):
            o.append(f"kodama bench {a['kodama_bench']} -d {meta.get('kb_dur')} --warmup {meta.get('kb_warm')} "
                     f"--json -q HOST PORT   # {a['case']}")
    o.append(f"strace -c -f -qq -p PID...   # every process of the server, during: echoload ... -d {meta.get('strace_dur')} -w 0")
    o.append(f"build/bench/holdconns -n {meta.get('idle_n')} -b 100 -w 5 -t {meta.get('idle_secs')} HOST PORT   # idle, then SIGUSR1: close all")
    o.append("```")
    o.append("")
    o.append("Servers (each started with setsid on 127.0.0.1, port 0 or a free port, stopped after its case):")
    o.append("")
    o.append("```")
    seen = set()
    for c in cmds:
        line = f"{c['cmd']}"
        key = (c["server"], line)
        if key in seen:
            continue
        seen.add(key)
        o.append(f"{c['server']}: {line}")
    o.append("```")
    print("\n".join(o))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
