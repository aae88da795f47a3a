#!/usr/bin/env python3
"""check_table.py FILE: is FILE (a bench/compare.sh report) well-formed?

Every Markdown table has a header, a |---| separator and at least one row;
every row has the header's number of cells; no cell is empty; every cell of a
numeric column is a number (optionally with ×) or an explicit "n/a"; every
table has a kodama row; the four throughput tables and the two idle tables
are there.  Exit status 0 when it is, 1 with the reasons when not.
"""
import re
import sys

TEXT_COLUMNS = {"case", "server", "client", "relay", "errors/lost", "still answers"}
NUMBER = re.compile(r"^(n/a|[-+]?[0-9]+(\.[0-9]+)?×?)$")
CHOICES = {"kept up": {"yes", "NO", "n/a"}}
TITLES = ("## TCP echo, 64 B", "## TCP echo, 16 KiB", "## UDP echo, 64 B", "## hello:",
          "ping-pong", "## At fixed offered rates", "idle connections: server memory",
          "closed at once")


def cells(line):
    return [c.strip() for c in line.strip().strip("|").split("|")]


def check(path):
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    problems, tables, i = [], 0, 0
    text = "\n".join(lines)
    for t in TITLES:
        if t not in text:
            problems.append(f"no section with '{t}'")
    while i < len(lines):
        if not lines[i].startswith("|"):
            i += 1
            continue
        start = i
        block = []
        while i < len(lines) and lines[i].startswith("|"):
            block.append(lines[i])
            i += 1
        tables += 1
        where = f"{path}:{start + 1}"
        header = cells(block[0])
        if len(block) < 3 or not re.fullmatch(r"\|(\s*:?-{3,}:?\s*\|)+", block[1].replace(" ", "")):
            problems.append(f"{where}: a table needs a header, a |---| line and a row")
            continue
        if len(cells(block[1])) != len(header):
            problems.append(f"{where}: separator has {len(cells(block[1]))} cells, header {len(header)}")
        kodama = False
        for n, row in enumerate(block[2:], start + 3):
            c = cells(row)
            if len(c) != len(header):
                problems.append(f"{path}:{n}: {len(c)} cells, header has {len(header)}")
                continue
            kodama |= any(v.startswith("kodama") for v in c[:2])
            for h, v in zip(header, c):
                if v == "":
                    problems.append(f"{path}:{n}: empty cell in column '{h}'")
                elif h in CHOICES:
                    if v not in CHOICES[h]:
                        problems.append(f"{path}:{n}: column '{h}' is not one of {sorted(CHOICES[h])}: '{v}'")
                elif h not in TEXT_COLUMNS and not NUMBER.match(v):
                    problems.append(f"{path}:{n}: column '{h}' is not a number or n/a: '{v}'")
        if not kodama:
            problems.append(f"{where}: no kodama row")
    if tables < len(TITLES):
        problems.append(f"{tables} tables, expected at least {len(TITLES)}")
    return problems


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: check_table.py FILE\n")
        return 2
    problems = check(argv[1])
    for p in problems:
        print(f"check_table: {p}", file=sys.stderr)
    if not problems:
        print(f"check_table: {argv[1]} is well-formed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
