"""The build's own checks (scripts/check_layers.py, scripts/check_hardening.py) fail
on what they are meant to catch, and pass on kodama itself.

Run:  /usr/bin/python3 -m pytest tests/build   (make checks runs it)
"""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAYERS = os.path.join(ROOT, "scripts", "check_layers.py")
HARDENING = os.path.join(ROOT, "scripts", "check_hardening.py")
KODAMA = os.environ.get("KODAMA_BIN", os.path.join(ROOT, "kodama"))


def build_units(tmp_path, units):
    """units: {"lib/a": "C source", ...} -> objects under tmp_path/obj."""
    obj = tmp_path / "obj"
    for name, source in units.items():
        src = tmp_path / "src" / (name + ".c")
        src.parent.mkdir(parents=True, exist_ok=True)
        src.write_text(source)
        out = obj / (name + ".o")
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cc", "-c", "-o", str(out), str(src)], check=True)
    return obj, tmp_path / "src"


def layers(obj, src=None):
    argv = [sys.executable, LAYERS, str(obj)] + ([str(src)] if src else [])
    return subprocess.run(argv, capture_output=True, text=True)


def test_layers_pass_when_only_higher_folders_call_lower_ones(tmp_path):
    obj, src = build_units(tmp_path, {
        "lib/util": "int util_add(int a, int b) { return a + b; }\n",
        "serve/core/worker": "int util_add(int, int);\nint worker_go(void) { return util_add(1, 2); }\n",
        "serve/server": "int worker_go(void);\nint server_run(void) { return worker_go(); }\n",
    })
    r = layers(obj, src)
    assert r.returncode == 0, r.stdout
    assert "0 problem(s)" in r.stdout


def test_layers_fail_on_a_call_up_into_a_higher_folder(tmp_path):
    obj, src = build_units(tmp_path, {
        "lib/log": "int server_run(void);\nint log_it(void) { return server_run(); }\n",
        "serve/server": "int server_run(void) { return 0; }\n",
    })
    r = layers(obj, src)
    assert r.returncode == 1
    assert "layers: lib/log calls up into serve/server (serve), which lib/ may not: " \
           "server_run" in r.stdout


def test_layers_fail_on_a_circle_within_one_folder(tmp_path):
    obj, src = build_units(tmp_path, {
        "lib/a": "int b(void);\nint a(void) { return b(); }\n",
        "lib/b": "int a(void);\nint b(void) { return a() + 1; }\n",
    })
    r = layers(obj, src)
    assert r.returncode == 1
    assert "layers: circle among 2 units: lib/a lib/b" in r.stdout
    assert "  lib/a -> lib/b: b" in r.stdout


def test_layers_see_a_function_pointer_taken_as_a_call(tmp_path):
    obj, src = build_units(tmp_path, {
        "serve/core/worker": "int engine_serve(void);\n"
                             "int (*serve_fn)(void) = engine_serve;\n",
        "serve/engine/epoll": "int engine_serve(void) { return 0; }\n",
    })
    r = layers(obj, src)
    assert r.returncode == 1
    assert "serve/core/worker calls up into serve/engine/epoll" in r.stdout


def test_layers_pass_on_kodama():
    r = layers(os.path.join(ROOT, "build"))
    assert r.returncode == 0, r.stdout


HARDEN = ["-O2", "-D_FORTIFY_SOURCE=2", "-fstack-protector-strong",
          "-fstack-clash-protection", "-fcf-protection", "-fPIE", "-pie",
          "-Wl,-z,relro,-z,now", "-Wl,-z,ibt,-z,shstk"]
PROGRAM = r"""
#include <stdio.h>
#include <string.h>
int copy(const char *s) { char big[20000]; strcpy(big, s); return puts(big); }
int main(int argc, char **argv) { (void)argc; return copy(argv[0]) < 0; }
"""
LINES = ["Position Independent Executable", "Stack protected", "Fortify Source functions",
         "Read-only relocations", "Immediate binding", "Stack clash protection",
         "Control flow integrity"]


def hardening(tmp_path, flags):
    src = tmp_path / "p.c"
    src.write_text(PROGRAM)
    binary = tmp_path / "p"
    subprocess.run(["cc"] + flags + ["-o", str(binary), str(src)], check=True)
    r = subprocess.run([sys.executable, HARDENING, str(binary)], capture_output=True, text=True)
    return r, dict(line.strip().split(": ", 1) for line in r.stdout.splitlines()[1:])


def test_hardening_passes_with_every_flag(tmp_path):
    r, report = hardening(tmp_path, HARDEN)
    assert r.returncode == 0, r.stdout
    assert report == {name: "yes" for name in LINES}


@pytest.mark.parametrize("drop, line", [
    (["-fPIE", "-pie"], "Position Independent Executable"),
    (["-fstack-protector-strong"], "Stack protected"),
    (["-D_FORTIFY_SOURCE=2"], "Fortify Source functions"),
    (["-Wl,-z,relro,-z,now"], "Immediate binding"),
    (["-fstack-clash-protection"], "Stack clash protection"),
    (["-fcf-protection"], "Control flow integrity"),
])
def test_hardening_names_each_missing_flag(tmp_path, drop, line):
    flags = [f for f in HARDEN if f not in drop]
    if "-fPIE" in drop:
        flags.append("-no-pie")
    if "-fstack-protector-strong" in drop:
        flags.append("-fno-stack-protector")     # Debian's gcc protects by default
    if "-fstack-clash-protection" in drop:
        flags.append("-fno-stack-clash-protection")
    if "-fcf-protection" in drop:
        flags.append("-fcf-protection=none")
    r, report = hardening(tmp_path, flags)
    assert r.returncode == 1
    assert report[line].startswith("no, "), r.stdout
    assert [n for n in LINES if report[n] != "yes"] == [line], r.stdout


def test_hardening_passes_on_kodama():
    r = subprocess.run([sys.executable, HARDENING, KODAMA], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout
