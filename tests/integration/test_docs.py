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


@pytest.mark.parametrize("cmd", ["serve", "send", "connect", "ping", "bench"])
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


def test_every_serve_option_has_an_entry_of_its_own():
    """Each option of 'kodama serve --help' is the tag of an entry in OPTIONS (a line
    indented as a tag, not a word inside another option's text)."""
    page = render_man_page().stdout.replace("\u2010", "-").replace("\u2212", "-")
    section = page[page.index("\nOPTIONS\n"):page.index("\nOUTPUT\n")].expandtabs()
    tags = [l for l in section.splitlines() if re.match(r"^ {7}-", l)]
    help_text = run_kodama(["serve", "--help"]).stdout.decode()
    options = set(re.findall(r"^\s+(?:-\w, )?(--[-\w]+)", help_text, re.M))
    assert options, help_text
    missing = sorted(o for o in options
                     if not any(re.search(r"(?<![-\w])%s(?![-\w])" % re.escape(o), t) for t in tags))
    assert missing == [], "no entry in OPTIONS for " + ", ".join(missing)


def test_serve_help_lists_every_option_of_the_man_page():
    """The other way round: each entry of OPTIONS, serve, is in 'kodama serve --help'
    (its TLS options, --cert to --tls-timeout, were missing), and so is +tls."""
    page = render_man_page().stdout.replace("\u2010", "-").replace("\u2212", "-")
    section = page[page.index("\nOPTIONS\n"):page.index("\nOUTPUT\n")].expandtabs()
    section = section[section.index("\n   serve\n"):section.index("\n   send\n")]
    tags = [l for l in section.splitlines() if re.match(r"^ {7}-", l)]
    options = set()
    for t in tags:
        options |= set(re.findall(r"(?<![-\w])(--?[a-z][-a-z0-9]*)", t))
    assert "--cert" in options and "--threads" in options, tags
    help_text = run_kodama(["serve", "--help"]).stdout.decode()
    missing = sorted(o for o in options
                     if not re.search(r"(?<![-\w])%s(?![-\w])" % re.escape(o), help_text))
    assert missing == [], "in the man page's OPTIONS, serve, but not in --help: " + ", ".join(missing)
    assert "[+proxy][+tls]" in help_text


VERDICTS = ["ok", "mismatch", "usage", "refused", "timeout", "reset", "resolve", "tls",
            "unreachable", "local"]


def test_exit_status_lists_every_verdict():
    """The man page's EXIT STATUS, the README's table and every client's --help
    name the same ten verdicts with the same codes."""
    page = render_man_page().stdout
    section = page[page.index("\nEXIT STATUS\n"):page.index("\nEXAMPLES\n")]
    for code, name in enumerate(VERDICTS):
        assert re.search(r"^\s+%d %s\b" % (code, name), section, re.M), (code, name)
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    for code, name in enumerate(VERDICTS):
        assert re.search(r"^\| %d \| %s \|" % (code, name), readme, re.M), (code, name)
    summary = ", ".join("%d %s" % (c, n) for c, n in enumerate(VERDICTS))
    for cmd in ("send", "connect", "ping", "bench"):
        text = " ".join(run_kodama([cmd, "--help"]).stdout.decode().split())
        assert summary in text, cmd


def test_man_page_documents_the_new_sections():
    page = render_man_page().stdout
    for heading in ("PING", "LISTEN AND SCAN", "JSON OUTPUT", "TRACE"):
        assert re.search(r"^%s$" % heading, page, re.M), heading
    # ping's probe format, the scan's states, the json keys
    for text in ("KDMP", "open|filtered", "first_byte_ms", "kodama: listening relay tcp"):
        assert text in page.replace("\u2010", "-"), text
