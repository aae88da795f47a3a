#!/usr/bin/env python3
"""profile_report.py PROFILE.tsv: the Markdown report of one bench/profile.sh run.

Reads the records profile.sh wrote (one a line, tab-separated key=value) and
the callgrind dumps they name, and prints the summary table, the top functions
per case and the commands.

  profile_report.py PROFILE.tsv      the report, on stdout
  profile_report.py --dump CG.OUT    one dump's totals, per object and function

The dumps are read here rather than with callgrind_annotate: a dump taken after
`callgrind_control --zero` records the calls that were in progress at the
zeroing (main, the event loop) with a call count of 0, and callgrind_annotate
3.19 takes the inclusive cost of such a call for the caller's own cost, so its
"self" list starts with __libc_start_main at 100 %.
"""
import os
import re
import sys

CASES = {
    "tcp64": ("TCP echo, 64 B messages, 100 connections, depth 16", "message"),
    "udp64": ("UDP echo, 64 B datagrams, 8 sockets, depth 16", "datagram"),
    "hello": ("greeting and close, 50 concurrent connections", "connection"),
}
CLIENT_ARGS = {
    "tcp64": "-m tcp -c 100 -s 64 -p 16 -t 1",
    "udp64": "-m udp -c 8 -s 64 -p 16 -t 1",
    "hello": "-m hello -c 50 -t 1",
}
SPECS = {"tcp64": "echo@127.0.0.1:0/tcp", "udp64": "echo@127.0.0.1:0/udp", "hello": "hello@127.0.0.1:0/tcp"}
TOP = 8
GREETING = len("Hello from server!\n")


def load(path):
    recs = []
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            r = {}
            for field in line.split("\t"):
                k, _, v = field.partition("=")
                r[k] = v
            recs.append(r)
    return recs


# --- callgrind dumps ---------------------------------------------------------

NAME_RE = re.compile(r"^\((\d+)\)(?: (.*))?$")


class Dump:
    """Self cost per function (first event, Ir) and call counts, from one dump."""

    def __init__(self, path):
        self.summary = None
        self.self_ir = {}       # (object, function) -> Ir
        self.calls = {}         # function -> calls made in the window
        names = {"ob": {}, "fl": {}, "fn": {}}
        space = {"ob": "ob", "cob": "ob", "fl": "fl", "fi": "fl", "fe": "fl",
                 "cfi": "fl", "cfl": "fl", "fn": "fn", "cfn": "fn"}
        npos = 1
        ob = fn = None
        cob = cfn = None
        in_call = False
        with open(path) as f:
            for line in f:
                line = line.rstrip("\n")
                if not line or line.startswith("#"):
                    continue
                c = line[0]
                if c.isdigit() or c in "+-*":
                    if in_call:         # the inclusive cost of the call before: not ours
                        in_call = False
                        continue
                    parts = line.split()
                    costs = parts[npos:]
                    ir = int(costs[0]) if costs else 0
                    key = (ob, fn)
                    self.self_ir[key] = self.self_ir.get(key, 0) + ir
                    continue
                key, eq, val = line.partition("=")
                if not eq:
                    key, _, val = line.partition(":")
                    val = val.strip()
                    if key == "positions":
                        npos = len(val.split())
                    elif key in ("summary", "totals"):
                        self.summary = int(val.split()[0])
                    elif key == "events" and val.split()[0] != "Ir":
                        raise ValueError(f"{path}: first event is {val.split()[0]}, not Ir")
                    continue
                if key == "calls":
                    in_call = True
                    n = int(val.split()[0])
                    callee = (cob if cob is not None else ob, cfn)
                    self.calls[callee] = self.calls.get(callee, 0) + n
                    cob = None
                    continue
                if key in ("jump", "jcnd"):
                    continue
                if key not in space:
                    continue
                m = NAME_RE.match(val)
                table = names[space[key]]
                if m:
                    if m.group(2) is not None:
                        table[m.group(1)] = m.group(2)
                    name = table.get(m.group(1), "(" + m.group(1) + ")")
                else:
                    name = val
                if key == "ob":
                    ob = name
                elif key == "cob":
                    cob = name
                elif key == "fn":
                    fn = name
                elif key == "cfn":
                    cfn = name
        self.total = sum(self.self_ir.values())
        # The last of summary: and totals: wins; callgrind's summary: can be a few Ir
        # short of its totals:, which is the sum of the cost lines.
        if self.summary is not None and self.summary != self.total:
            raise ValueError(f"{path}: self costs add up to {self.total}, the dump says {self.summary}")


def object_class(ob, kodama):
    if ob is None:
        return "?"
    if ob == kodama or os.path.basename(ob) == "kodama":
        return "kodama"
    base = os.path.basename(ob)
    if base.startswith("libc.so"):
        return "libc"
    if base.startswith("ld-linux"):
        return "ld.so"
    return base


# --- the report ------------------------------------------------------------------

# libc's system-call wrappers, as the dumps name them: calls to these count as
# system calls (clock_gettime is not one: it runs in the vDSO).
SYSCALLS = {
    "read", "readv", "write", "writev", "recv", "recvfrom", "recvmsg", "recvmmsg", "send", "sendto",
    "sendmsg", "sendmmsg", "accept", "accept4", "epoll_wait", "epoll_pwait", "epoll_pwait2",
    "epoll_ctl", "close", "shutdown", "setsockopt", "getsockopt", "getsockname", "getpeername",
    "fcntl", "fcntl64", "ioctl", "socket", "connect", "bind", "listen", "open", "openat",
    "eventfd", "eventfd_read", "eventfd_write", "timerfd_settime", "splice", "io_uring_enter",
}
READS = {"read", "readv", "recv", "recvfrom", "recvmsg", "recvmmsg"}


def syscall_name(fn):
    """A libc function's plain name: close for __close, __GI___close or close@@GLIBC_2.2.5."""
    fn = fn.split("@")[0]
    for prefix in ("__GI___", "__GI_", "__libc_", "__"):
        if fn.startswith(prefix):
            return fn[len(prefix):]
    return fn


def fmt(x, digits=None):
    if x is None:
        return "n/a"
    if digits is not None:
        return f"{x:.{digits}f}"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


# Functions kodama calls once per datagram answered (udp echo) or per connection
# served (hello): their call counts in a dump are an exact count, shown as a check.
PER_MSG_FN = {"udp64": "echo_udp", "hello": "hello_open"}


def msgs_of(r):
    """Messages served in a window, and how they were counted.

    tcp64: the bytes kodama read (rchar of /proc/PID/io; it reads TCP with
    readv, and every byte read is echoed) ÷ 64, exact. udp64 and hello: from
    echoload, a little low (what it counts misses what was in flight when it
    stopped)."""
    if r["case"] == "tcp64":
        rchar = int(r["rchar"])
        return rchar / 64, f"{rchar:,} B read by the server (rchar of /proc/PID/io) ÷ 64"
    if r["case"] == "hello":
        b = int(r.get("bytes", 0))
        return b / GREETING, f"echoload's greeting bytes, {b:,} B ÷ {GREETING}"
    rate = float(r.get("msgs_per_s", 0))
    return rate * float(r["secs"]), f"echoload's msgs_per_s × {r['secs']} s"


class CgCase:
    """The figures of one case's callgrind window."""

    def __init__(self, r, kodama):
        self.r = r
        self.d = Dump(r["dump"])
        self.n, self.how = msgs_of(r)
        fn = PER_MSG_FN.get(r["case"])
        self.check = sum(n for (ob, f), n in self.d.calls.items()
                         if f == fn and object_class(ob, kodama) == "kodama") if fn else None
        self.check_fn = fn
        self.by_class = {}
        for (ob, _fn), ir in self.d.self_ir.items():
            k = object_class(ob, kodama)
            self.by_class[k] = self.by_class.get(k, 0) + ir
        self.syscalls = self.reads = self.waits = 0
        for (ob, fn), calls in self.d.calls.items():
            if object_class(ob, kodama) != "libc":
                continue
            name = syscall_name(fn or "")
            if name in SYSCALLS:
                self.syscalls += calls
            if name in READS:
                self.reads += calls
            if name in ("epoll_wait", "epoll_pwait", "epoll_pwait2"):
                self.waits += calls
        self.ipm = self.d.total / self.n if self.n else None

    def share(self, k):
        return f"{100 * self.by_class.get(k, 0) / self.d.total:.0f} %" if self.d.total else "n/a"


class ProcCase:
    """The figures of one case's run without valgrind."""

    def __init__(self, r, hz):
        self.r = r
        self.n, self.how = msgs_of(r)
        self.ut, self.st = int(r["utime"]), int(r["stime"])
        self.syscr = int(r["syscr"]) if r.get("syscr") else None
        n = self.n or None
        self.u_us = self.ut * 1e6 / hz / n if n else None
        self.k_us = self.st * 1e6 / hz / n if n else None
        self.user_share = 100 * self.ut / (self.ut + self.st) if self.ut + self.st else None


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--dump":
        d = Dump(sys.argv[2])
        print(f"total\t{d.total}")
        for (ob, fn), ir in sorted(d.self_ir.items(), key=lambda kv: -kv[1]):
            print(f"self\t{ir}\t{ob}\t{fn}")
        for (ob, fn), n in sorted(d.calls.items(), key=lambda kv: -kv[1]):
            print(f"calls\t{n}\t{ob}\t{fn}")
        return
    if len(sys.argv) != 2:
        sys.exit("usage: profile_report.py PROFILE.tsv | --dump CG.OUT")
    recs = load(sys.argv[1])
    meta = {}
    for r in recs:
        if r.get("kind") == "meta":
            meta.update(r)
    hz = int(meta.get("hz") or os.sysconf("SC_CLK_TCK"))
    kodama = meta.get("kodama_path", "")
    mhz = float(meta["mhz"]) if meta.get("mhz") else None
    quick = meta.get("quick") == "1"
    cg_dur, cg_warm = meta.get("cg_dur"), meta.get("cg_warm")
    proc_dur, proc_warm = meta.get("proc_dur"), meta.get("proc_warm")
    cg = {r["case"]: CgCase(r, kodama) for r in recs if r.get("kind") == "cg"}
    proc = {r["case"]: ProcCase(r, hz) for r in recs if r.get("kind") == "proc"}

    out = []
    p = out.append
    p("# kodama's server cost per message: user-space instructions and the kernel's share")
    p("")
    p(f"Generated by `{meta.get('command', 'bench/profile.sh')}` on {meta.get('date', '?')}; "
      f"kodama {meta.get('kodama', '?')}. See bench/README.md for how each figure is measured.")
    p("")
    p(f"- Machine: {meta.get('cpu', '?')}"
      + (f" ({mhz:.0f} MHz)" if mhz else "")
      + f", {meta.get('ncpu', '?')} CPUs, Linux {meta.get('kernel', '?')}; {meta.get('valgrind', 'valgrind')}. "
      "Client and server share the CPUs.")
    p("- Server: `kodama serve --io epoll --threads 1 SPEC`. epoll only: valgrind does not support "
      "io_uring well.")
    p(f"- Instructions: under `valgrind --tool=callgrind`, a {cg_warm} s warm-up run of the client, then "
      f"`callgrind_control --zero`, one {cg_dur} s client run, its connections closed, "
      "`callgrind_control --dump`: the window is one whole client run (its connects, messages and "
      "closes). Ir = user-space instructions of the server, all threads. `--fair-sched=yes`, so that "
      "valgrind's own thread lock does not show in `/proc/PID/io`.")
    p(f"- CPU split: without valgrind, utime and stime of the server process (`/proc/PID/stat`, "
      f"clock ticks of {1000 / hz:g} ms) around one {proc_dur} s client run"
      + (f" after a {proc_warm} s warm-up run" if proc_warm not in (None, "0") else "") + ".")
    if quick:
        p("- --quick: 1 s runs; this checks the harness, not the numbers.")
    if "elapsed_s" in meta:
        p(f"- Whole run {meta['elapsed_s']} s.")
    p("")

    p("## Per message")
    p("")
    p("A message is a 64 B echo for tcp64, a datagram answered for udp64, and a connection "
      "(accept, greeting, close) for hello.")
    p("")
    ipc_head = "user IPC (implied)" if mhz else "user instr per ns (implied)"
    p("| case | msgs in window | user instr/msg | reads/msg | reads/msg, no valgrind "
      f"| instr/msg at those reads (est.) | user µs/msg | kernel µs/msg | user share | {ipc_head} |")
    p("|---|---|---|---|---|---|---|---|---|---|")
    for cse in CASES:
        c, pr = cg.get(cse), proc.get(cse)
        est = None
        if c and pr and c.reads and pr.syscr and pr.n:
            est = c.d.total / c.reads * pr.syscr / pr.n
        cells = [cse, f"{c.n:,.0f}" if c else "n/a", fmt(c.ipm) if c else "n/a",
                 fmt(c.reads / c.n, 3) if c and c.n else "n/a",
                 fmt(pr.syscr / pr.n, 3) if pr and pr.syscr and pr.n else "n/a", fmt(est)]
        if pr:
            cells += [fmt(pr.u_us, 3), fmt(pr.k_us, 2),
                      f"{pr.user_share:.0f} %" if pr.user_share is not None else "n/a"]
        else:
            cells += ["n/a"] * 3
        implied = None
        ipm = est or (c.ipm if c else None)
        if ipm and pr and pr.u_us:
            implied = ipm / (pr.u_us * (mhz if mhz else 1000))
        cells.append(fmt(implied))
        p("| " + " | ".join(cells) + " |")
    p("")
    p("- **msgs in window**, **user instr/msg**: the callgrind window's messages, and the "
      "instructions (Ir) the server executed in user space divided by them.")
    p("- **reads/msg**: read-type system calls per message, under callgrind (calls to libc's read, "
      "readv, recv*) and without valgrind (`syscr` of `/proc/PID/io`, which counts read() and "
      "readv() but not recv*(): n/a for udp64, which uses recvmmsg). valgrind slows the server's "
      "own code many times over, so under callgrind more messages wait per read, and the work done per read "
      "(the system calls, the event loop) is spread over more messages than without valgrind; "
      "and the batching moves from run to run with how the client and the server share the CPUs.")
    p("- **instr/msg at those reads (est.)**: Ir per read under callgrind × reads/msg without "
      "valgrind: the user instructions per message at the un-instrumented run's batching. For "
      "tcp64 kodama never looks at the bytes, and its work is per read and per pass of the event "
      "loop, not per message: under callgrind the Ir per read stayed within 420–580 from 1 to 18 "
      "reads per epoll_wait and 1 to 4 messages per read, so the estimate is good to about ±20 %. "
      "For hello both runs read once per connection.")
    p("- **user µs/msg**, **kernel µs/msg**, **user share**: the un-instrumented server's utime and "
      "stime per message, and utime ÷ (utime + stime). Kernel work done for the server in softirq "
      "context may be charged to whichever process was running, client or server. The split comes "
      "from clock ticks (see the tick counts below): few ticks, coarse figures.")
    p("- **" + ipc_head + "**: instructions per message (the estimate where there is one) ÷ user "
      + ("cycles" if mhz else "ns") + " per message"
      + (f" at the nominal {mhz:.0f} MHz" if mhz else "")
      + ": the two runs combined. Code that runs between system calls starts with cold caches, so "
      "well below 1 is plausible; far outside 0.1–4, one of the two measurements is off.")
    p("")

    p("### Under callgrind")
    p("")
    p("| case | msgs | Ir | kodama | libc | ld.so | syscalls/msg | msgs per epoll_wait | Ir per read |")
    p("|---|---|---|---|---|---|---|---|---|")
    for cse in CASES:
        c = cg.get(cse)
        if not c:
            continue
        p(f"| {cse} | {c.n:,.0f} | {c.d.total:,} | {c.share('kodama')} | {c.share('libc')} | "
          f"{c.share('ld.so')} | {fmt(c.syscalls / c.n if c.n else None, 3)} | "
          f"{fmt(c.n / c.waits) if c.waits else 'n/a'} | {fmt(c.d.total / c.reads) if c.reads else 'n/a'} |")
    p("")
    p("- **kodama / libc / ld.so**: the shares of kodama's own code, the C library and the dynamic "
      "loader in Ir.")
    p("- **syscalls/msg**: calls to libc's system-call wrappers (" + ", ".join(sorted(
        {syscall_name(fn) for c in cg.values() for (ob, fn), _ in c.d.calls.items()
         if object_class(ob, kodama) == "libc" and syscall_name(fn or "") in SYSCALLS}))
      + " here) per message. Compare with the syscalls/msg of bench/RESULTS.md (strace, which "
      "slows the server too).")
    p("")

    p("### Without valgrind")
    p("")
    p("| case | msgs | msgs/s | utime ticks | stime ticks | reads (syscr) |")
    p("|---|---|---|---|---|---|")
    for cse in CASES:
        pr = proc.get(cse)
        if not pr:
            continue
        p(f"| {cse} | {pr.n:,.0f} | {pr.n / float(pr.r['secs']):,.0f} | {pr.ut} | {pr.st} | "
          f"{pr.syscr if pr.syscr is not None else 'n/a'} |")
    p("")
    p(f"A tick is {1000 / hz:g} ms: with N ticks a figure is uncertain by about 1/N.")
    p("")

    p("### How the messages were counted")
    p("")
    for cse in CASES:
        for label, x in (("callgrind", cg.get(cse)), ("without valgrind", proc.get(cse))):
            if not x:
                continue
            r = x.r
            checks = []
            if cse == "tcp64" and "msgs_per_s" in r:
                checks.append(f"echoload counted {float(r['msgs_per_s']) * float(r['secs']):,.0f} "
                              f"(msgs_per_s × {r['secs']} s)")
            if isinstance(x, CgCase) and x.check_fn:
                checks.append(f"kodama called `{x.check_fn}` {x.check:,} times" if x.check
                              else f"no calls to `{x.check_fn}` in the dump")
            p(f"- {cse}, {label}: {x.n:,.0f}, {x.how}"
              + ("; " + "; ".join(checks) if checks else "")
              + f"; echoload's errors {r.get('errors', '?')}"
              + (f", lost {r['lost']}" if "lost" in r else "") + ".")
    p("")
    p("tcp64's count is exact: kodama reads TCP with readv, which /proc/PID/io counts, and echoes "
      "every byte it reads. udp64's and hello's come from echoload and are a little low: it counts "
      "what completed while its clock ran, not what was in flight when it stopped (up to "
      "sockets × depth datagrams, or one connection per concurrent slot), and its msgs_per_s is over "
      "its own clock. The call counts of kodama's per-datagram and per-connection functions in the "
      "dump are exact for the callgrind window.")
    p("")

    for cse, (title, unit) in CASES.items():
        c = cg.get(cse)
        if not c:
            continue
        p(f"## {cse}: {title}")
        p("")
        p(f"Top {TOP} functions by self Ir (their own code, not what they call): "
          f"{c.d.total:,} Ir for {c.n:,.0f} {unit}s.")
        p("")
        p(f"| function | object | Ir/{unit} | share |")
        p("|---|---|---|---|")
        for (ob, fn), ir in sorted(c.d.self_ir.items(), key=lambda kv: -kv[1])[:TOP]:
            p(f"| `{fn}` | {object_class(ob, kodama)} | {fmt(ir / c.n if c.n else None)} | "
              f"{100 * ir / c.d.total:.1f} % |")
        p("")
        p("By object: " + ", ".join(f"{k} {100 * v / c.d.total:.1f} %"
                                    for k, v in sorted(c.by_class.items(), key=lambda kv: -kv[1])) + ".")
        p("")

    p("## Commands")
    p("")
    p("Server (SPEC per case below; PORT from its `kodama: listening` line on stderr):")
    p("")
    p("```")
    p("valgrind --tool=callgrind --fair-sched=yes --callgrind-out-file=$TMP/cg.%p --log-file=$TMP/vg.%p.log \\")
    p("    --vgdb-prefix=$TMP/vgdb-pipe kodama serve --io epoll --threads 1 SPEC")
    p("kodama serve --io epoll --threads 1 SPEC   # without valgrind")
    p("```")
    p("")
    p("Each case under callgrind:")
    p("")
    p("```")
    p(f"build/bench/echoload ARGS -d {cg_warm} -w 0 127.0.0.1 PORT   # warm-up")
    p("callgrind_control --vgdb-prefix=$TMP/vgdb-pipe --zero PID")
    p("# rchar, syscr from /proc/PID/io")
    p(f"build/bench/echoload ARGS -d {cg_dur} -w 0 127.0.0.1 PORT")
    p("# until ss shows none of the server's connections (udp: no queued datagram), then 0.3 s")
    p("# rchar, syscr again")
    p("callgrind_control --vgdb-prefix=$TMP/vgdb-pipe --dump PID")
    p("kill -TERM PID")
    p("```")
    p("")
    p("and without valgrind:")
    p("")
    p("```")
    if proc_warm not in (None, "0"):
        p(f"build/bench/echoload ARGS -d {proc_warm} -w 0 127.0.0.1 PORT   # warm-up")
    p("# utime, stime: fields 14 and 15 of /proc/PID/stat; rchar, syscr from /proc/PID/io")
    p(f"build/bench/echoload ARGS -d {proc_dur} -w 0 127.0.0.1 PORT")
    p("# wait as above; utime, stime, rchar, syscr again")
    p("```")
    p("")
    p("| case | SPEC | ARGS |")
    p("|---|---|---|")
    for cse in CASES:
        p(f"| {cse} | `{SPECS[cse]}` | `{CLIENT_ARGS[cse]}` |")
    p("")
    p("The dumps are summed by bench/profile_report.py (`bench/profile_report.py --dump FILE` lists "
      "every function's self Ir and call count; the dumps of the last run stay in "
      "`build/bench/profile/`).")
    print("\n".join(out))


if __name__ == "__main__":
    main()
