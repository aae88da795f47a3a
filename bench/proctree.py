#!/usr/bin/env python3
"""proctree.py: figures about one server's process tree, for bench/compare.sh.

The tree is every process in the server's session (compare.sh starts each
server with setsid, so its session id is its pid).

  proctree.py cpu SID [CLIENT_PID]  t=SECS busy=TICKS srv_ns=NS cli=TICKS procs=N
  proctree.py mem SID               procs=N rss_kb=N pss_kb=N
  proctree.py pids SID              the pids, one a line

busy is the machine's busy CPU time from /proc/stat (user+nice+system+irq+
softirq+steal, as echoload counts it); srv_ns is the CPU time of the tree:
every thread's run time from /proc/PID/task/TID/schedstat (nanoseconds: the
utime and stime fields are whole clock ticks per process, and a forking
server's hundred children each below one tick would count as nothing) plus
each process's cutime+cstime (a reaped child's time moves there, so nothing is
counted twice); cli is the client process's own utime+stime in ticks.
rss_kb sums VmRSS over the tree; pss_kb sums Pss, which shares each shared
page among the processes mapping it, so a forking server's libraries are not
counted once per child.
"""
import os
import sys
import time


def stat_fields(pid):
    """Fields of /proc/PID/stat after the command name (field 3 is [0])."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    return s[s.rindex(")") + 2:].split()


def session_pids(sid):
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            f = stat_fields(name)
            if f and int(f[3]) == sid:
                pids.append(int(name))
    return pids


def busy_ticks():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return v[0] + v[1] + v[2] + v[5] + v[6] + v[7]


def cpu_ticks(pid, children=True):
    f = stat_fields(pid)
    if not f:
        return 0
    n = int(f[11]) + int(f[12])
    if children:
        n += int(f[13]) + int(f[14])
    return n


def run_ns(pid):
    """Run time of every thread of pid plus its reaped children's, in ns."""
    n = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                n += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    f = stat_fields(pid)
    if f:
        n += (int(f[13]) + int(f[14])) * 1000000000 // os.sysconf("SC_CLK_TCK")
    return n


def status_kb(pid, path, key):
    try:
        with open(f"/proc/{pid}/{path}") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def main(argv):
    if len(argv) < 3 or argv[1] not in ("cpu", "mem", "pids"):
        sys.stderr.write(__doc__)
        return 2
    sid = int(argv[2])
    pids = session_pids(sid)
    if argv[1] == "pids":
        print("\n".join(str(p) for p in pids))
    elif argv[1] == "cpu":
        cli = cpu_ticks(int(argv[3]), False) if len(argv) > 3 else 0
        srv = sum(run_ns(p) for p in pids)
        print(f"t={time.time():.4f} busy={busy_ticks()} srv_ns={srv} cli={cli} procs={len(pids)}")
    else:
        rss = sum(status_kb(p, "status", "VmRSS:") for p in pids)
        pss = sum(status_kb(p, "smaps_rollup", "Pss:") for p in pids)
        print(f"procs={len(pids)} rss_kb={rss} pss_kb={pss}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
