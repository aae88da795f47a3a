"""make install / uninstall into a DESTDIR: the files, their modes, the units' ExecStart=,
a man page that renders, and units that systemd-analyze accepts."""
import os
import shutil
import stat
import subprocess

import pytest

from kodama_helpers import KODAMA, REPO

UNITS = ["kodama-hello.socket", "kodama-inetd.socket", "kodama-inetd@.service",
         "kodama.service", "kodama.socket"]
EXPECTED = sorted([("usr/bin/kodama", 0o755), ("usr/share/man/man1/kodama.1", 0o644)]
                  + [("usr/lib/systemd/system/" + u, 0o644) for u in UNITS])


def make(*args):
    r = subprocess.run(["make", "--no-print-directory", "-s", "-C", str(REPO), *args],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def installed(root):
    found = []
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = os.path.join(dirpath, f)
            found.append((os.path.relpath(p, root), stat.S_IMODE(os.lstat(p).st_mode)))
    return sorted(found)


@pytest.fixture
def destdir(tmp_path):
    d = tmp_path / "dest"
    d.mkdir()
    return d


def test_install_with_prefix_usr_then_uninstall(destdir):
    make("install", "DESTDIR=%s" % destdir, "PREFIX=/usr")
    assert installed(destdir) == EXPECTED
    unitdir = destdir / "usr/lib/systemd/system"
    for unit in ("kodama.service", "kodama-inetd@.service"):
        execs = [l for l in (unitdir / unit).read_text().splitlines()
                 if l.startswith("ExecStart=")]
        assert len(execs) == 1 and execs[0].startswith("ExecStart=/usr/bin/kodama serve"), execs
    make("uninstall", "DESTDIR=%s" % destdir, "PREFIX=/usr")
    assert installed(destdir) == []


def test_installed_man_page_renders(destdir):
    make("install", "DESTDIR=%s" % destdir, "PREFIX=/usr")
    env = dict(os.environ, MANPAGER="cat", PAGER="cat", MANWIDTH="100", LC_ALL="C.UTF-8")
    r = subprocess.run(["man", "--warnings", "-l",
                        str(destdir / "usr/share/man/man1/kodama.1")],
                       env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert "LISTEN_FDNAMES" in r.stdout and "--inetd" in r.stdout.replace("\u2010", "-")


def test_installed_units_verify(destdir):
    """systemd-analyze verify (no systemd needs to run): with ExecStart= pointed at the
    binary under test, since /usr/bin/kodama is not there."""
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        pytest.skip("systemd-analyze is not installed")
    make("install", "DESTDIR=%s" % destdir, "PREFIX=/usr")
    unitdir = destdir / "usr/lib/systemd/system"
    for unit in UNITS:
        p = unitdir / unit
        p.write_text(p.read_text().replace("/usr/bin/kodama", KODAMA))
    r = subprocess.run([analyze, "verify", "--man=no", *[str(unitdir / u) for u in UNITS]],
                       capture_output=True, text=True, timeout=60, cwd=str(unitdir))
    assert r.returncode == 0 and r.stderr == "", r.stderr
