#!/usr/bin/python3
"""check_layers.py OBJDIR [SRCDIR] -- do kodama's objects respect its layers?

Reads which unit calls (or takes the address of) which from the symbol tables of
the objects under OBJDIR (`nm`: a unit's undefined symbols, resolved to the unit
that defines them), and fails (exit 1) on either of:

  - a call from one folder into another that FOLDER_MAY_CALL does not allow (a
    lower layer calling a higher one);
  - a circle: units that call each other, directly or round a loop, even within
    one folder.

docs/DESIGN.md describes the layers; the table below is the rule the build keeps.
Only the objects of SRCDIR's sources count (OBJDIR/lib/net.o for SRCDIR/lib/net.c;
SRCDIR is the src/ beside this script by default), so that the other builds nested
in OBJDIR (asan, clang, fuzz, ...) are left out.
"""
import os
import subprocess
import sys

# Each folder of src/, and the folders its units may call into (besides their own).
FOLDER_MAY_CALL = {
    "lib": set(),
    "proto": {"lib"},
    "serve/services": {"lib", "proto"},
    "serve/core": {"lib", "proto", "serve/services"},
    "serve/engine": {"lib", "proto", "serve/services", "serve/core"},
    "serve": {"lib", "proto", "serve/services", "serve/core", "serve/engine"},
    "client": {"lib", "proto"},
    "bench": {"lib", "proto", "client"},
    ".": {"lib", "proto", "serve", "client", "bench"},   # main.c: the command table
}


def objects(root, srcdir):
    found = []
    for dirpath, _, filenames in os.walk(srcdir):
        for f in filenames:
            if f.endswith(".c"):
                rel = os.path.relpath(os.path.join(dirpath, f), srcdir)[:-2] + ".o"
                if os.path.exists(os.path.join(root, rel)):
                    found.append(os.path.join(root, rel))
    return sorted(found)


def symbols(path):
    out = subprocess.run(["nm", "-P", path], check=True, capture_output=True,
                         text=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        name, kind = parts[0], parts[1]
        if kind == "U":
            undefined.add(name)
        elif kind.isupper() and kind not in "VW":
            defined.add(name)   # external: T, D, B, R (local ones are lower case)
    return defined, undefined


def folder_of(unit):
    return os.path.dirname(unit) or "."


def circles(graph):
    """Strongly connected components of more than one unit (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main():
    if len(sys.argv) not in (2, 3):
        print("usage: check_layers.py OBJDIR [SRCDIR]", file=sys.stderr)
        return 2
    root = sys.argv[1]
    here = os.path.dirname(os.path.abspath(__file__))
    srcdir = sys.argv[2] if len(sys.argv) == 3 else os.path.join(os.path.dirname(here), "src")
    objs = objects(root, srcdir)
    if not objs:
        print("check_layers: no objects under %s" % root, file=sys.stderr)
        return 1
    defs, undefs = {}, {}
    for o in objs:
        unit = os.path.relpath(o, root)[:-2]
        defs[unit], undefs[unit] = symbols(o)
    owner = {}
    for unit, names in defs.items():
        for n in names:
            owner.setdefault(n, unit)
    graph = {u: set() for u in defs}
    calls = {}
    for unit, names in undefs.items():
        for n in names:
            callee = owner.get(n)
            if callee and callee != unit:
                graph[unit].add(callee)
                calls.setdefault((unit, callee), []).append(n)
    problems = 0
    for (caller, callee), names in sorted(calls.items()):
        a, b = folder_of(caller), folder_of(callee)
        if a == b:
            continue
        if a not in FOLDER_MAY_CALL:
            print("layers: %s is in a folder the rules do not name (%s)" % (caller, a))
            problems += 1
        elif b not in FOLDER_MAY_CALL[a]:
            print("layers: %s calls up into %s (%s), which %s/ may not: %s" % (
                caller, callee, b, a, ", ".join(sorted(names)[:4])))
            problems += 1
    for comp in circles(graph):
        print("layers: circle among %d units: %s" % (len(comp), " ".join(comp)))
        for u in comp:
            for v in sorted(graph[u] & set(comp)):
                print("  %s -> %s: %s" % (u, v, ", ".join(sorted(calls[(u, v)])[:4])))
        problems += 1
    print("layers: %d units, %d calls between them, %d problem(s)" % (
        len(defs), len(calls), problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
