"""Fixtures for kodama's integration tests (see kodama_helpers for the helpers).

Run:  /usr/bin/python3 -m pytest tests/integration        (binary: $KODAMA_BIN or ./kodama)
"""
import os
import shutil
import signal
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kodama_helpers as kh  # noqa: E402

# 2,000 concurrent client sockets in one test: lift our own soft limit at import.
kh.raise_nofile_limit()

# A per-test watchdog so that no test can hang the run.
TEST_WATCHDOG = 90.0


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "valgrind: in the short subset `make valgrind` runs under valgrind memcheck "
        "(with KODAMA_IO=epoll; nothing with tight timing or heavy load)")


def pytest_report_header(config):
    header = "kodama binary: %s (time scale %.1f)" % (kh.KODAMA, kh.TIME_SCALE)
    if kh.WRAPPER:
        header += "\nkodama wrapper: %s" % " ".join(kh.WRAPPER)
    return header


@pytest.fixture(autouse=True)
def _kodama_binary_and_watchdog():
    if not (os.path.isfile(kh.KODAMA) and os.access(kh.KODAMA, os.X_OK)):
        pytest.fail("kodama binary not found or not executable: %s (build it with `make`, "
                    "or set KODAMA_BIN)" % kh.KODAMA, pytrace=False)

    def on_alarm(signum, frame):
        raise pytest.fail.Exception("test watchdog: still running after %.0f s"
                                    % kh.scaled(TEST_WATCHDOG))

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, kh.scaled(TEST_WATCHDOG))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture
def server(tmp_path):
    """Factory: server.start(ARGS_AFTER_SERVE, ...) or server(ARGS) -> kh.Server.
    At teardown every server still running is killed, and the test fails if any
    server's stderr has a sanitizer report or a server died of a signal we did not send."""
    logdir = tmp_path / "serve-logs"
    logdir.mkdir()
    factory = kh.ServerFactory(str(logdir))
    yield factory
    problems = factory.cleanup()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def sockdir():
    """A short temporary directory for unix socket paths."""
    d = kh.short_tmpdir()
    yield d
    shutil.rmtree(d, ignore_errors=True)

