#!/usr/bin/env python3
"""plot.py RESULTS.tsv OUTDIR: the pictures of one bench/compare.sh run.

From the fixed-rate cases (NAME@RATE), two SVG files in OUTDIR: the server's CPU
per message (or connection) against the offered rate, and the p99 latency against
it, a panel per kind of load (TCP over 100 connections, UDP, hello) and a line per
server. Drawn by gnuplot (Debian's gnuplot-nox); without it, or without fixed-rate
runs, nothing is drawn. Prints the names of the files it wrote, one a line.
"""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report  # noqa: E402  (the same parsing and medians as the tables)

PANELS = [("tcp64", "TCP echo, 64 B, 100 connections", "msg"),
          ("tcp64x10", "TCP echo, 64 B, 10 connections", "msg"),
          ("udp64", "UDP echo, 64 B, 8 sockets", "msg"),
          ("hello", "hello, ≤ 50 at a time", "conn")]
PICTURES = [("rate-cpu.svg", "srv_us", "server CPU µs per {unit}", False),
            ("rate-p99.svg", "p99", "p99 latency, µs", True)]


def series(runs, base, attr):
    """{server: [(offered rate, value)]} for the fixed-rate runs of base."""
    out = {}
    for r in runs:
        parts = report.fixed_parts(r.case)
        if not parts or parts[0] != base or getattr(r, attr) is None:
            continue
        out.setdefault(r.server, []).append((parts[1], getattr(r, attr)))
    return {s: sorted(v) for s, v in out.items()}


def quote(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def script(path, panels, tmp, ylabel, logy):
    """The gnuplot commands for one picture, its data in files under tmp."""
    g = ["set terminal svg size %d,480 dynamic noenhanced font 'sans,11'" % (420 * len(panels)),
         "set output " + quote(path),
         "set multiplot layout 1,%d" % len(panels),
         "set logscale x", "set grid", "set key below font ',9'",
         "set xlabel 'offered rate /s'", "set format x '%.0s%c'"]
    # CPU from zero, so that the gaps between servers look as large as they are.
    g.append("set logscale y" if logy else "set yrange [0:*]")
    for n, (base, title, unit, data) in enumerate(panels):
        g.append("set title " + quote(title))
        g.append("set ylabel " + quote(ylabel.format(unit=unit)))
        plots = []
        for i, (server, pts) in enumerate(sorted(data.items())):
            f = os.path.join(tmp, f"{n}-{i}.dat")
            with open(f, "w") as out:
                out.writelines(f"{x} {y}\n" for x, y in pts)
            plots.append(f"{quote(f)} using 1:2 with linespoints pointtype 7 pointsize 0.6 title {quote(server)}")
        g.append("plot " + ", ".join(plots))
    g.append("unset multiplot")
    return "\n".join(g) + "\n"


def main(argv):
    if len(argv) != 3:
        print("usage: plot.py RESULTS.tsv OUTDIR", file=sys.stderr)
        return 2
    if shutil.which("gnuplot") is None:
        print("plot.py: gnuplot is not installed (gnuplot-nox): no pictures", file=sys.stderr)
        return 0
    recs = report.load(argv[1])
    strace = {}
    runs = report.merge_rounds([report.Run(r, strace) for r in recs if r.get("kind") == "run"])
    wrote = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, attr, ylabel, logy in PICTURES:
            panels = []
            for base, title, unit in PANELS:
                data = series(runs, base, attr)
                if data:
                    panels.append((base, title, unit, data))
            if not panels:
                continue
            path = os.path.join(argv[2], name)
            gp = os.path.join(tmp, name + ".gp")
            with open(gp, "w") as f:
                f.write(script(path, panels, tmp, ylabel, logy))
            rc = subprocess.run(["gnuplot", gp], stderr=subprocess.PIPE, text=True)
            if rc.returncode != 0:
                print(f"plot.py: gnuplot failed for {name}: {rc.stderr.strip()[:300]}", file=sys.stderr)
                continue
            wrote.append(name)
    for w in wrote:
        print(w)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
