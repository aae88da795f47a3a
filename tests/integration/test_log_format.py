"""serve's log lines on stderr (kodama.1, LOGGING): text with a UTC timestamp after
"ready" (none under the journal: JOURNAL_STREAM naming stderr), and --log-format json."""
import datetime
import json
import os
import re
import signal
import time

import pytest

from kodama_helpers import (READY_LINE, TIMESTAMP_RE, assert_usage_error, connect,
                            recv_exact, run_kodama, scaled, strip_valgrind_notes)

JSON_TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def journal_stream_of_stderr():
    """preexec_fn: JOURNAL_STREAM set to the dev:ino of the child's own stderr, as
    systemd does when it connects a service's stderr to the journal."""
    st = os.fstat(2)
    os.environ["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino + 0)


def some_other_stream():
    st = os.fstat(2)
    os.environ["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino + 1)


def echo_once(s):
    with connect(s.addr("echo")) as c:
        c.sendall(b"ping")
        assert recv_exact(c, 4) == b"ping"


def stop(s):
    s.send_signal(signal.SIGTERM)
    assert s.proc.wait(scaled(10)) == 0, s.raw_log()
    return s.raw_log()


# --------------------------------------------------------------------------- text

def test_text_runtime_lines_carry_utc_time(server):
    s = server.start(["-v", "echo@127.0.0.1:0/tcp"])
    before = datetime.datetime.now(datetime.timezone.utc)
    echo_once(s)
    s.wait_log(lambda t: "kodama: close echo tcp" in t)
    raw = stop(s).splitlines()
    after = datetime.datetime.now(datetime.timezone.utc)
    ready = raw.index(READY_LINE)
    # Start-up lines as ever, scripts parse them.
    assert raw[:ready] == ["kodama: max-conns %s (from the descriptor limit)" % raw[0].split()[2],
                           "kodama: listening echo tcp %s" % s.addr_text("echo")], raw
    runtime = raw[ready + 1:]
    assert [l.split(" ", 2)[2].split()[0] for l in runtime] == \
        ["accept", "close", "stopping", "counters"], runtime
    for line in runtime:
        assert TIMESTAMP_RE.match(line) and line[24:32] == " kodama:", line
        t = datetime.datetime.strptime(line[:23], "%Y-%m-%dT%H:%M:%S.%f").replace(
            tzinfo=datetime.timezone.utc)
        assert before - datetime.timedelta(seconds=1) <= t <= after, (line, before, after)


def test_text_under_the_journal_has_no_timestamps(server):
    s = server.start(["-v", "echo@127.0.0.1:0/tcp"], preexec_fn=journal_stream_of_stderr,
                     timestamps=False)
    echo_once(s)
    s.wait_log(lambda t: "kodama: close echo tcp" in t)
    raw = stop(s).splitlines()
    runtime = raw[raw.index(READY_LINE) + 1:]
    assert len(runtime) == 4, raw
    assert all(l.startswith("kodama: ") for l in runtime), raw
    assert runtime[2] == "kodama: stopping", raw


def test_text_journal_stream_of_another_file_is_ignored(server):
    """Inherited from a parent whose stderr went to the journal, it names a stream
    that is not ours: timestamps stay (the helpers check every runtime line)."""
    s = server.start(["-v", "echo@127.0.0.1:0/tcp"], preexec_fn=some_other_stream)
    echo_once(s)
    s.wait_log(lambda t: "kodama: close echo tcp" in t)
    assert TIMESTAMP_RE.match(s.raw_log().splitlines()[-1]), s.raw_log()
    s.stop()


def test_startup_failure_has_no_timestamp():
    r = run_kodama(["serve", "--log-format", "text", "echo@127.0.0.1:0", "echo@unix:/nonexistent/dir/s"],
                   timeout=10)
    assert r.rc == 1, r
    assert r.stderr == ("kodama: cannot listen on echo unix unix:/nonexistent/dir/s: "
                        "No such file or directory\n"), r


# --------------------------------------------------------------------------- json

def wait_json_ready(s, timeout=10.0):
    deadline = time.monotonic() + scaled(timeout)
    while True:
        lines = s.raw_log().splitlines()
        if any('"event":"ready"' in l for l in lines):
            return
        assert s.proc.poll() is None, s.raw_log()
        assert time.monotonic() < deadline, "no ready line: " + s.raw_log()
        time.sleep(0.02)


def json_lines(text):
    out = []
    for line in strip_valgrind_notes(text).splitlines():
        doc = json.loads(line)
        assert isinstance(doc, dict), line
        out.append(doc)
    return out


def start_json(server, args, **kw):
    s = server.start(["--log-format", "json", *args], wait_ready=False, timestamps=False, **kw)
    wait_json_ready(s)
    for doc in json_lines(s.raw_log()):
        m = re.match(r"^listening (\S+) (tcp|udp|unix) (\S+)$", doc["msg"])
        if m:
            s.listeners.append((m.group(1), m.group(2), m.group(3),
                                ("127.0.0.1", int(m.group(3).rsplit(":", 1)[1]))
                                if m.group(2) != "unix" else m.group(3)[5:]))
    return s


@pytest.mark.valgrind
def test_json_one_object_per_line(server, sockdir):
    weird = os.path.join(sockdir, 'q"b\\\x01\udcff')     # a quote, a backslash, ^A, byte 0xff
    s = start_json(server, ["-v", "echo@127.0.0.1:0/tcp", "echo@unix:" + weird])
    echo_once(s)
    s.wait_log(lambda t: '"event":"close"' in t)
    docs = json_lines(stop(s))
    for d in docs:
        assert JSON_TIME_RE.match(d["time"]), d
        assert list(d)[:3] == ["time", "level", "msg"], d
        assert set(d) <= {"time", "level", "msg", "event"}, d
        assert d["level"] == "info", d
    events = [d.get("event") for d in docs]
    assert events == ["max-conns", "listening", "listening", "ready", "accept", "close",
                      "stopping", "counters", "counters"], docs
    assert docs[1]["msg"] == "listening echo tcp " + s.addr_text("echo")
    # The odd bytes arrive as the same text, escaped; the one that is not UTF-8 as U+FFFD.
    assert docs[2]["msg"] == "listening echo unix unix:" + weird.replace("\udcff", "\ufffd"), docs[2]
    assert docs[4]["msg"].startswith("accept echo tcp 127.0.0.1:")
    assert re.match(r"^close echo tcp 127\.0\.0\.1:\d+ in=4 out=4$", docs[5]["msg"]), docs[5]


def test_json_raw_escapes(server, sockdir):
    """The bytes on the wire: a control character as \\u0001, quotes and backslashes
    escaped, never a raw byte below 0x20 or a byte that is not UTF-8."""
    weird = os.path.join(sockdir, 'x"y\\\x01\udcff')
    s = start_json(server, ["echo@unix:" + weird])
    with open(s.log_path, "rb") as f:
        raw = f.read()
    stop(s)
    assert b'x\\"y\\\\\\u0001\xef\xbf\xbd"' in raw, raw
    assert not re.search(rb"[\x00-\x09\x0b-\x1f]", raw), raw
    raw.decode("utf-8")     # strict: all of it UTF-8


def test_json_levels_for_drops(server):
    s = start_json(server, ["--max-conns", "1", "echo@127.0.0.1:0/tcp"])
    with connect(s.addr("echo")) as held:
        held.sendall(b"a")
        assert recv_exact(held, 1) == b"a"
        try:
            with connect(s.addr("echo")) as c:
                c.recv(10)
        except ConnectionResetError:
            pass
        s.wait_log(lambda t: '"event":"refused"' in t)
    docs = json_lines(stop(s))
    refused = [d for d in docs if d.get("event") == "refused"]
    assert refused and refused[0]["level"] == "warning", docs
    assert "(--max-conns)" in refused[0]["msg"]


def test_json_under_the_journal_has_no_time(server):
    s = start_json(server, ["echo@127.0.0.1:0/tcp"], preexec_fn=journal_stream_of_stderr)
    docs = json_lines(stop(s))
    assert docs[-2:] == [{"level": "info", "msg": "ready", "event": "ready"},
                         {"level": "info", "msg": "stopping", "event": "stopping"}], docs
    assert all("time" not in d for d in docs), docs


def test_json_startup_failure_is_json():
    r = run_kodama(["serve", "--log-format", "json", "echo@unix:/nonexistent/dir/s"], timeout=10)
    assert r.rc == 1, r
    (doc,) = json_lines(r.stderr)
    assert doc["level"] == "error" and "event" not in doc, doc
    assert doc["msg"] == ("cannot listen on echo unix unix:/nonexistent/dir/s: "
                          "No such file or directory"), doc


# --------------------------------------------------------------------------- usage

def test_usage_errors_stay_text_with_json():
    assert_usage_error(run_kodama(["serve", "--log-format", "json", "--bogus"], timeout=5),
                       "kodama: unknown option '--bogus'", "serve")


@pytest.mark.parametrize("fmt", ["xml", "JSON", ""])
def test_log_format_usage_error(fmt):
    assert_usage_error(run_kodama(["serve", "--log-format", fmt, "echo@127.0.0.1:0"], timeout=5),
                       "kodama: --log-format '%s': not text or json" % fmt, "serve")
