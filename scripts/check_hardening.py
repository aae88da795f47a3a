#!/usr/bin/python3
"""check_hardening.py BINARY -- is BINARY built with Debian's hardening flags?

The checks of devscripts' hardening-check, each read off the ELF file with readelf
and objdump (binutils), one line each, "yes" or "no" with the reason; exit 1 if any
is "no":

  Position Independent Executable  ELF type DYN with DF_1_PIE         (-fPIE -pie)
  Stack protected                  calls __stack_chk_fail             (-fstack-protector-strong)
  Fortify Source functions         calls some __*_chk function        (-D_FORTIFY_SOURCE=2)
  Read-only relocations            a GNU_RELRO segment                (-z relro)
  Immediate binding                BIND_NOW                           (-z now)
  Stack clash protection           every frame of 4 KiB or more is probed a page at a
                                   time: no `sub rsp,N` with N > 4096, and at least one
                                   probe (`sub rsp,0x1000` then `or [rsp],0x0`)
                                                                      (-fstack-clash-protection)
  Control flow integrity           the IBT and SHSTK property note, and an endbr64 at
                                   the entry of every function of external linkage
                                                                      (-fcf-protection)

Why not hardening-check itself: its stack clash test looks only for the probing
loop GCC emits for alloca and variable-length arrays, which kodama has none of
(its large frames are fixed and GCC probes them unrolled), so it says "unknown"
however the binary was built.
"""
import re
import subprocess
import sys


def run(*argv):
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def check_pie(elf):
    header, dynamic = elf["header"], elf["dynamic"]
    if not re.search(r"Type:\s+DYN", header):
        return "no, not a position independent ELF (type is not DYN)"
    if not re.search(r"\(FLAGS_1\).*\bPIE\b", dynamic):
        return "no, DYN without DF_1_PIE (a shared library?)"
    return None


def check_symbol(elf, pattern, what):
    if not re.search(pattern, elf["dynsyms"], re.M):
        return "no, %s not found" % what
    return None


def check_relro(elf):
    return None if "GNU_RELRO" in elf["segments"] else "no, no GNU_RELRO segment"


def check_bindnow(elf):
    d = elf["dynamic"]
    if re.search(r"\(BIND_NOW\)", d) or re.search(r"\(FLAGS\).*\bBIND_NOW\b", d) \
            or re.search(r"\(FLAGS_1\).*\bNOW\b", d):
        return None
    return "no, no BIND_NOW or DF_1_NOW"


SUB_RSP = re.compile(r"^\s*([0-9a-f]+):\s+sub\s+rsp,(0x[0-9a-f]+)\s*$")
PROBE = re.compile(r"^\s*[0-9a-f]+:\s+or\s+QWORD PTR \[rsp(\+0x[0-9a-f]+)?\],0x0\s*$")


def check_stack_clash(elf):
    lines = elf["disasm"]
    probes, unprobed = 0, []
    for i, line in enumerate(lines):
        m = SUB_RSP.match(line)
        if not m:
            continue
        size = int(m.group(2), 16)
        if size >= 1 << 63:
            continue    # "sub rsp,-128": gcc's short form of giving 128 bytes back
        if size == 0x1000 and i + 1 < len(lines) and PROBE.match(lines[i + 1]):
            probes += 1
        elif size > 0x1000:
            unprobed.append("%s (sub rsp,%s)" % (m.group(1), m.group(2)))
    if unprobed:
        return "no, %d frame(s) over a page allocated at once, at %s" % (
            len(unprobed), ", ".join(unprobed[:3]))
    if probes == 0:
        return "no, no stack probe found (no frame over a page either?)"
    return None


def check_cfi(elf):
    if not re.search(r"Properties: x86 feature: IBT, SHSTK", elf["notes"]):
        return "no, no IBT and SHSTK property note"
    # The first instruction of every function with external linkage, which
    # anything may call through a pointer (GCC leaves endbr64 out of static
    # functions whose address is never taken: no indirect branch can reach them).
    globals_ = set(re.findall(r"^[0-9a-f]+ T (\S+)$", elf["symbols"], re.M))
    starts = {}
    for line in elf["disasm"]:
        m = re.match(r"^([0-9a-f]+) <([^>]+)>:$", line)
        if m:
            current = m.group(2)
            starts[current] = None
            continue
        m = re.match(r"^\s*[0-9a-f]+:\s+(\S+)", line)
        if m and starts and starts.get(current, 1) is None:
            starts[current] = m.group(1)
    # The linker's and libc's startup stubs are not the compiler's; the loader
    # never branches to them indirectly.
    skip = {"_start", "_init", "_fini", "deregister_tm_clones", "register_tm_clones",
            "__do_global_dtors_aux", "frame_dummy", "_dl_relocate_static_pie"}
    missing = sorted(f for f, insn in starts.items()
                     if f in globals_ and insn != "endbr64" and f not in skip)
    if not any(f in globals_ for f in starts):
        return "no, no function of external linkage found in .text"
    if missing:
        return "no, %d function(s) without endbr64: %s" % (len(missing), ", ".join(missing[:5]))
    return None


def main():
    if len(sys.argv) != 2:
        print("usage: check_hardening.py BINARY", file=sys.stderr)
        return 2
    path = sys.argv[1]
    try:
        elf = {
            "header": run("readelf", "-hW", path),
            "dynamic": run("readelf", "-dW", path),
            "segments": run("readelf", "-lW", path),
            "notes": run("readelf", "-nW", path),
            "dynsyms": run("readelf", "--dyn-syms", "-W", path),
            "symbols": run("nm", "--defined-only", path),
            "disasm": run("objdump", "-d", "-M", "intel", "--no-show-raw-insn",
                          "-j", ".text", path).splitlines(),
        }
    except (OSError, subprocess.CalledProcessError) as e:
        print("check_hardening: %s: %s" % (path, e), file=sys.stderr)
        return 1
    checks = [
        ("Position Independent Executable", check_pie),
        ("Stack protected", lambda e: check_symbol(e, r"\b__stack_chk_fail\b",
                                                   "__stack_chk_fail")),
        ("Fortify Source functions", lambda e: check_symbol(e, r"\b__\w+_chk\b",
                                                            "any __*_chk function")),
        ("Read-only relocations", check_relro),
        ("Immediate binding", check_bindnow),
        ("Stack clash protection", check_stack_clash),
        ("Control flow integrity", check_cfi),
    ]
    print("%s:" % path)
    bad = 0
    for name, check in checks:
        why = check(elf)
        print(" %s: %s" % (name, why or "yes"))
        bad += why is not None
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
