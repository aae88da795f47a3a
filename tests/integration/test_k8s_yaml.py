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
