"""contrib/k8s/kodama.yaml is checked for syntax and shape only (no cluster here):
it parses as YAML (python3-yaml, in scripts/deps.sh; skipped without it), holds a
Deployment and a Service that select the same pods and name the container's ports,
and the container's SPECs, moved to 127.0.0.1 port 0, are ones kodama binds."""
from pathlib import Path

import pytest

from kodama_helpers import REPO

yaml = pytest.importorskip("yaml", reason="python3-yaml is not installed (scripts/deps.sh)")

MANIFEST = REPO / "contrib" / "k8s" / "kodama.yaml"


def docs():
    return [d for d in yaml.safe_load_all(Path(MANIFEST).read_text()) if d]


def test_manifest_parses_with_a_deployment_and_a_service():
    kinds = {d["kind"]: d for d in docs()}
    assert set(kinds) == {"Deployment", "Service"}, kinds.keys()
    dep, svc = kinds["Deployment"], kinds["Service"]
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert dep["spec"]["selector"]["matchLabels"] == labels
    assert all(labels.get(k) == v for k, v in svc["spec"]["selector"].items())
    names = {p["name"] for c in dep["spec"]["template"]["spec"]["containers"] for p in c["ports"]}
    for p in svc["spec"]["ports"]:
        assert p["targetPort"] in names, p


def test_manifest_specs_bind(server):
    dep = [d for d in docs() if d["kind"] == "Deployment"][0]
    args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[0] == "serve"
    specs = [a for a in args[1:] if not a.startswith("-")]
    assert any(sp.endswith("+proxy") for sp in specs)
    local = ["%s@127.0.0.1:0%s" % (s.split("@")[0], s.split("@")[1].lstrip("0123456789"))
             for s in specs]
    s = server.start(["-t", "1", *local])
    assert len(s.listeners) == 4, s.listeners      # hello tcp, echo tcp+udp, echo tcp+proxy
    s.stop()


# --------------------------------------------------------------------------- the bench Job

JOB = REPO / "contrib" / "k8s" / "bench-job.yaml"
COLLECT = REPO / "contrib" / "k8s" / "bench-collect.sh"


def job():
    [d] = [d for d in yaml.safe_load_all(Path(JOB).read_text()) if d]
    return d


def test_bench_job_is_an_indexed_job_of_parallel_bench_pods():
    j = job()
    assert j["apiVersion"] == "batch/v1" and j["kind"] == "Job"
    spec = j["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] >= 2   # all at once: reports overlap
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    [c] = pod["containers"]
    args = c["args"]
    assert args[0] == "bench" and "--json" in args and "-q" in args
    label = args[args.index("--label") + 1]
    assert "$(JOB_COMPLETION_INDEX)" in label          # each report says which pod it was
    # It drives the Service of kodama.yaml, on its echo port.
    svc = [d for d in docs() if d["kind"] == "Service"][0]
    assert args[-2] == svc["metadata"]["name"]
    assert int(args[-1]) in [p["port"] for p in svc["spec"]["ports"]]


def test_bench_job_args_are_ones_bench_takes(server):
    """The Job's command, pointed at a local server, runs (short) and prints one
    report with its label."""
    import json
    from kodama_helpers import run_kodama
    args = job()["spec"]["template"]["spec"]["containers"][0]["args"]
    s = server.start(["-t", "1", "echo@127.0.0.1:0/tcp"])
    local = list(args)
    local[local.index("-d") + 1] = "0.3"
    local[local.index("--warmup") + 1] = "0"
    local[local.index("-c") + 1] = "4"
    local[local.index("--label") + 1] = local[local.index("--label") + 1].replace(
        "$(JOB_COMPLETION_INDEX)", "0")
    local[-2:] = ["127.0.0.1", str(s.port("echo"))]
    r = run_kodama(local, timeout=30)
    assert r.rc == 0, r
    rep = json.loads(r.stdout)
    assert rep["label"] == "kodama-bench-0" and rep["histogram"]["count"] == rep["msgs"]
    s.stop()


def test_collect_script_merges_what_kubectl_logs_prints(server, tmp_path):
    """bench-collect.sh against a stand-in kubectl that serves three local runs'
    reports as `kubectl logs --prefix` would: the merge is the runs' sum."""
    import json
    import os
    import stat
    import subprocess
    from kodama_helpers import KODAMA, kodama_cmd
    s = server.start(["-t", "1", "echo@127.0.0.1:0/tcp"])
    reports = []
    for i in range(3):
        p = subprocess.run(kodama_cmd("bench", "-c", "2", "-d", "0.3", "--json", "-q", "--label",
                                      "kodama-bench-%d" % i, "127.0.0.1", str(s.port("echo"))),
                           capture_output=True, timeout=30)
        assert p.returncode == 0, p
        reports.append(p.stdout.decode().strip())
    logs = tmp_path / "logs.txt"
    logs.write_text("".join("[pod/kodama-bench-%d-x/bench] %s\n" % (i, r)
                            for i, r in enumerate(reports)))
    fake = tmp_path / "kubectl"
    fake.write_text("#!/bin/sh\n"
                    "case \"$*\" in\n"
                    "  *'get job'*) printf 3 ;;\n"
                    "  *wait*) echo 'job.batch/kodama-bench condition met' ;;\n"
                    "  *logs*) cat %s ;;\n"
                    "  *) exit 9 ;;\n"
                    "esac\n" % logs)
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    env = dict(os.environ, KUBECTL=str(fake), KODAMA=KODAMA, MERGE_ARGS="--json")
    p = subprocess.run([str(COLLECT)], cwd=tmp_path, env=env, capture_output=True, timeout=30)
    assert p.returncode == 0, p
    merged = json.loads(p.stdout)
    assert merged["runs"] == 3
    assert merged["msgs"] == sum(json.loads(r)["msgs"] for r in reports)
    assert (tmp_path / "kodama-bench.log").read_text() == logs.read_text()
    # A pod whose report is missing: said so, and no merge.
    logs.write_text("".join("[pod/p%d/bench] %s\n" % (i, r) for i, r in enumerate(reports[:2])))
    p = subprocess.run([str(COLLECT)], cwd=tmp_path, env=env, capture_output=True, timeout=30)
    assert p.returncode == 1
    assert b"bench-collect: 2 reports in kodama-bench.log, but the job has 3 pods" in p.stderr
    s.stop()
