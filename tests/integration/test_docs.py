"""The man page renders cleanly and documents every option the --help texts list."""
import os
import re
import subprocess

import pytest

from kodama_helpers import run_kodama

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAN_PAGE = os.path.join(ROOT, "docs", "kodama.1")


def render_man_page():
    env = dict(os.environ, MANPAGER="cat", PAGER="cat", MANWIDTH="100", LC_ALL="C.UTF-8")
    return subprocess.run(["man", "--warnings", "-l", MAN_PAGE], env=env,
                          capture_output=True, text=True, timeout=30)


def test_man_page_renders_without_warnings():
    r = render_man_page()
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    for heading in ("NAME", "SYNOPSIS", "DESCRIPTION", "EXIT STATUS", "EXAMPLES"):
        assert re.search(r"^%s$" % heading, r.stdout, re.M), heading


@pytest.mark.parametrize("cmd", ["serve", "send", "connect"])
def test_man_page_documents_every_option(cmd):
    page = render_man_page().stdout
    # man renders hyphens as U+2010 in some locales: compare on plain ASCII.
    page = page.replace("\u2010", "-").replace("\u2212", "-")
    help_text = run_kodama([cmd, "--help"]).stdout.decode()
    options = set(re.findall(r"^\s+(-[-\w]+)", help_text, re.M))
    options |= set(re.findall(r"^\s+-\w, (--[-\w]+)", help_text, re.M))
    assert options, help_text
    missing = sorted(o for o in options if not re.search(r"(?<![-\w])%s(?![-\w])" % re.escape(o), page))
    assert missing == [], "options in 'kodama %s --help' but not in the man page" % cmd
    assert re.search(r"\b%s\b" % cmd, page)
