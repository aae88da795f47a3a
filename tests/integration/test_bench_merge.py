"""kodama bench --json's histogram and times, --merge of several runs, --hgrm.

Three bench processes against one server, merged, agree with one process at the
same total load: the counts are the runs' sums exactly, and the merged p99 lies
between the runs' own (a quantile of a mixture always does) and near the single
run's. Runs that did not overlap are said to be so; a report a log line carries
after a prefix (kubectl logs) is read; bad files get one line naming them.
"""
import json
import re
import subprocess
import time

import pytest

import kodama_helpers as kh


def bench_json(addr, *args, duration="1"):
    r = kh.run_kodama(["bench", "-d", duration, "--json", "-q", *args, addr[0], str(addr[1])],
                      timeout=30)
    assert r.rc == 0, r
    return json.loads(r.stdout)


def run_parallel(addr, n, conns, duration="1.5", extra=()):
    procs = [subprocess.Popen(kh.kodama_cmd("bench", "-c", str(conns), "-d", duration, "--json",
                                            "-q", *extra, addr[0], str(addr[1])),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(n)]
    out = []
    for p in procs:
        so, se = p.communicate(timeout=kh.scaled(30))
        assert p.returncode == 0, se
        out.append(so)
    return out


def test_json_carries_the_histogram_and_the_times(server):
    s = server.start(["echo@127.0.0.1:0/tcp"])
    t0 = time.time()
    j = bench_json(s.addr("echo"), "-c", "2", duration="0.5")
    t1 = time.time()
    h = j["histogram"]
    assert h["unit"] == "ns" and h["sub_bits"] == 7
    assert h["count"] == j["msgs"] == sum(c for _, c in h["buckets"])
    assert all(0 <= i < 58 * 128 for i, _ in h["buckets"])
    assert [i for i, _ in h["buckets"]] == sorted(i for i, _ in h["buckets"])
    assert t0 - 1 <= j["start_unix"] < j["end_unix"] <= t1 + 1
    assert abs(j["end_unix"] - j["start_unix"] - j["duration_s"]) < 0.01
    assert j["runs"] == 1
    s.stop()


def test_three_runs_merged_agree_with_one(server, tmp_path):
    s = server.start(["-t", "2", "echo@127.0.0.1:0/tcp"])
    addr = s.addr("echo")
    # Open loop at a light load, so that both sides see the same arrivals and the
    # latency is the path's, not a queue's: 3 × 1000/s over 4 connections each.
    outs = run_parallel(addr, 3, 4, extra=("-r", "1000"))
    files = []
    for i, o in enumerate(outs):
        f = tmp_path / ("run%d.json" % i)
        f.write_bytes(o)
        files.append(str(f))
    runs = [json.loads(o) for o in outs]
    r = kh.run_kodama(["bench", "--merge", "--json", *files])
    assert r.rc == 0, r
    m = json.loads(r.stdout)
    for key in ("msgs", "bytes", "connections", "errors", "lost"):
        assert m[key] == sum(x[key] for x in runs), key
    assert m["conns"] == 12 and m["runs"] == 3
    assert m["histogram"]["count"] == m["msgs"]
    assert abs(m["msgs_per_s"] - sum(x["msgs_per_s"] for x in runs)) < 1.0
    assert m["overlap_s"] > 1.0
    p99s = [x["latency_us"]["p99"] for x in runs]
    assert min(p99s) * 0.99 <= m["latency_us"]["p99"] <= max(p99s) * 1.01, (p99s, m["latency_us"])
    # One process at the same total load: the same rate, exactly, and latency of
    # the same order. The median is the path's round trip, which no averaging of
    # percentiles would keep; the bounds leave room for this machine's noise.
    one = bench_json(addr, "-c", "12", "-t", "3", "-r", "3000", duration="1.5")
    assert abs(m["msgs_per_s"] - 3000) <= 30 and abs(one["msgs_per_s"] - 3000) <= 30, (m, one)
    assert one["latency_us"]["p50"] / 3 <= m["latency_us"]["p50"] <= one["latency_us"]["p50"] * 3
    assert m["latency_us"]["p99"] <= max(one["latency_us"]["p99"] * 10, 5000), (m, one)
    # The text report says how many runs it merged.
    r = kh.run_kodama(["bench", "--merge", *files])
    assert re.search(r"^runs 3 overlap \d+\.\d\d$", r.stdout.decode(), re.M), r
    s.stop()


def test_reports_in_a_log_with_prefixes(server, tmp_path):
    s = server.start(["echo@127.0.0.1:0/tcp"])
    outs = run_parallel(s.addr("echo"), 2, 2, duration="0.5")
    log = tmp_path / "pods.log"
    log.write_bytes(b"starting\n" + b"".join(b"bench-%d: " % i + o for i, o in enumerate(outs)))
    r = kh.run_kodama(["bench", "--merge", "--json", str(log)])
    assert r.rc == 0, r
    m = json.loads(r.stdout)
    assert m["runs"] == 2 and m["msgs"] == sum(json.loads(o)["msgs"] for o in outs)
    s.stop()


def test_runs_that_did_not_overlap_are_said_to(server, tmp_path):
    s = server.start(["echo@127.0.0.1:0/tcp"])
    a = bench_json(s.addr("echo"), duration="0.3")
    b = bench_json(s.addr("echo"), duration="0.3")
    fa, fb = tmp_path / "a.json", tmp_path / "b.json"
    fa.write_text(json.dumps(a))
    fb.write_text(json.dumps(b))
    r = kh.run_kodama(["bench", "--merge", str(fa), str(fb)])
    assert r.rc == 0, r
    assert "kodama: bench: --merge: the 2 runs did not overlap in time: the merged rates " \
           "were never one load\n" == r.stderr, r
    s.stop()


def test_hgrm_file(server, tmp_path):
    s = server.start(["echo@127.0.0.1:0/tcp"])
    out = tmp_path / "lat.hgrm"
    r = kh.run_kodama(["bench", "-d", "0.5", "-q", "--json", "--hgrm", str(out),
                       *map(str, s.addr("echo"))])
    assert r.rc == 0, r
    msgs = json.loads(r.stdout)["msgs"]
    text = out.read_text()
    assert text.startswith("       Value   Percentile   TotalCount 1/(1-Percentile)\n\n")
    rows = [l.split() for l in text.splitlines()[2:] if l and not l.startswith("#")]
    assert rows[-1][1:] == ["1.000000", str(msgs), "inf"], rows[-1]
    pcts = [float(r_[1]) for r_ in rows]
    assert pcts == sorted(pcts) and pcts[0] == 0.0
    assert "Total count    = %12d]" % msgs in text
    s.stop()


@pytest.mark.parametrize("content, reason", [
    (b"not json at all {\n", "kodama: bench: --merge: %s line 1: a key must be a string at byte 1\n"),
    (b'{"mode": "echo"}\n', "kodama: bench: --merge: %s line 1: not a kodama bench --json report\n"),
    (b"nothing here\n", "kodama: bench: --merge: no report in %s\n"),
])
def test_merge_bad_files(tmp_path, content, reason):
    f = tmp_path / "bad.json"
    f.write_bytes(content)
    r = kh.run_kodama(["bench", "--merge", str(f)])
    assert r.rc == 9 and r.stdout == b"", r     # a local failure (verdict 9)
    assert r.stderr == reason % f, r


def test_merge_a_file_without_a_report_among_others(server, tmp_path):
    """A file with no report (a pod that died first) is not skipped from the sum."""
    s = server.start(["echo@127.0.0.1:0/tcp"])
    good = tmp_path / "good.json"
    good.write_text(json.dumps(bench_json(s.addr("echo"), duration="0.2")) + "\n")
    s.stop()
    for content in (b"", b"nothing here\n"):
        empty = tmp_path / "empty.json"
        empty.write_bytes(content)
        for files in ([good, empty], [empty, good]):
            r = kh.run_kodama(["bench", "--merge", *map(str, files)])
            assert r.rc == 9 and r.stdout == b"", r
            assert r.stderr == "kodama: bench: --merge: no report in %s\n" % empty, r


def test_merge_refuses_the_same_run_twice_and_another_size(server, tmp_path):
    s = server.start(["echo@127.0.0.1:0/tcp"])
    a = tmp_path / "a.json"
    a.write_text(json.dumps(bench_json(s.addr("echo"), duration="0.2")) + "\n")
    big = tmp_path / "big.json"
    big.write_text(json.dumps(bench_json(s.addr("echo"), "-s", "1000", duration="0.2")) + "\n")
    s.stop()
    r = kh.run_kodama(["bench", "--merge", str(a), str(a)])
    assert r.rc == 9 and r.stdout == b"", r
    assert r.stderr == ("kodama: bench: --merge: %s line 1: the same run as an earlier one "
                        "(a file given twice?)\n" % a), r
    r = kh.run_kodama(["bench", "--merge", str(a), str(big)])
    assert r.rc == 9 and r.stdout == b"", r
    assert r.stderr == "kodama: bench: --merge: %s line 1: a run of another message size\n" % big, r


def test_merge_missing_file_and_usage(tmp_path):
    r = kh.run_kodama(["bench", "--merge", str(tmp_path / "none.json")])
    assert r.rc == 9
    assert r.stderr == "kodama: bench: --merge: cannot read %s: No such file or directory\n" % (
        tmp_path / "none.json"), r
    kh.assert_usage_error(kh.run_kodama(["bench", "--merge"]),
                          "kodama: --merge needs the REPORT files", "bench")


def test_merged_tls_runs_keep_their_handshakes(server, tmp_path):
    """Counts are summed (kodama.1, --merge): the handshakes of runs over TLS too."""
    s = server.start(["echo@127.0.0.1:0/tcp+tls"])
    addr = s.addr("echo")
    files, runs = [], []
    for i in range(2):
        j = bench_json(addr, "-c", "2", "--tls", "--insecure", duration="0.3")
        assert j["tls"] is True and j["handshakes"] >= 2, j
        runs.append(j)
        f = tmp_path / ("tls%d.json" % i)
        f.write_text(json.dumps(j))
        files.append(str(f))
    r = kh.run_kodama(["bench", "--merge", "--json", *files])
    assert r.rc == 0, r
    m = json.loads(r.stdout)
    assert m["tls"] is True, m
    assert m["handshakes"] == sum(x["handshakes"] for x in runs), m
    assert m["resumed"] == sum(x["resumed"] for x in runs), m
    r = kh.run_kodama(["bench", "--merge", *files])
    assert re.search(r"^connections \d+ conns/s [\d.]+ tls handshakes %d resumed %d$"
                     % (m["handshakes"], m["resumed"]), r.stdout.decode(), re.M), r
    s.stop()
