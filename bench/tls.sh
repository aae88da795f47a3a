#!/usr/bin/env bash
# tls.sh — TLS handshakes per second, and the server's CPU per handshake: kodama's
# `hello@ADDR/tcp+tls` beside nginx's stream module with `listen ... ssl` and
# `return`, in one run on this machine: the same certificate (ECDSA P-256), the same
# client (`kodama bench --tls -m hello`), one worker each, each server started afresh
# for each round in a cpuacct cgroup of its own (bench/servers.sh), the rounds
# interleaved, medians reported.
#
#   bench/tls.sh [--quick] [--rounds N] [-o FILE]
#
# Cases: full handshakes (no session offered), and resumed ones (`--resume`: each
# connection offers the session ticket the last one got), 16 connections at a time.
# Writes a markdown file (default bench/tls.md; --quick: build/bench/TLS-quick.md),
# which bench/RESULTS.md links to. --quick: one short round (checks the script, not
# the numbers).
set -euo pipefail

usage() {
    echo "usage: bench/tls.sh [--quick] [--rounds N] [-o FILE]" >&2
    exit 2
}

QUICK=0 ROUNDS=3 OUT=
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ROUNDS=1 ;;
        --rounds) [ $# -ge 2 ] && [[ $2 =~ ^[1-9][0-9]?$ ]] || usage; ROUNDS=$2; shift ;;
        -o) [ $# -ge 2 ] || usage; OUT=$2; shift ;;
        *) usage ;;
    esac
    shift
done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
SECONDS=0
B=build/bench
if [ "$QUICK" = 1 ]; then
    OUT=${OUT:-$B/TLS-quick.md} DUR=0.6 WARM=0.2
else
    OUT=${OUT:-bench/tls.md} DUR=3 WARM=1
fi
CONNS=16

LOG_NAME=tls
# shellcheck source=bench/lib.sh
. bench/lib.sh

TMP=$(mktemp -d /tmp/kodama-tls.XXXXXX)
RES=$TMP/results.tsv
SERVERS=()
POLICY_RC=

cleanup() {
    local p
    trap - EXIT INT TERM
    for p in "${SERVERS[@]}"; do stop_tree "$p"; done
    for p in "${CG_ROOT:-/nonexistent}"/kodama-compare.$$.*; do [ -d "$p" ] && rmdir "$p" 2>/dev/null; done
    [ -n "$POLICY_RC" ] && rm -f "$POLICY_RC"
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'log interrupted; exit 130' INT TERM

# free_port, the cgroups (cg_new, cg_usage, cg_remove), launch, wait_port.
# shellcheck source=bench/servers.sh
. bench/servers.sh

# nginx and its stream module, as compare.sh installs them: its service kept
# from starting by a temporary policy-rc.d.
if [ ! -e /usr/lib/nginx/modules/ngx_stream_module.so ] || ! command -v nginx >/dev/null; then
    apt_install nginx-light libnginx-mod-stream
fi
mkdir -p "$B" "$(dirname "$OUT")"
make --no-print-directory -s kodama >&2
KODAMA=$ROOT/kodama
NSRV=0

# One certificate for both: ECDSA P-256, self-signed, for 127.0.0.1; the client
# trusts it as its own CA, so both servers' chains are checked alike.
CERT=$TMP/cert.pem KEY=$TMP/key.pem
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$KEY" \
    -out "$CERT" -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null

# start NAME: the server on a fresh port (SRV_PORT), in a session and cgroup of its own.
start() {
    local d
    NSRV=$((NSRV + 1))
    d=$TMP/srv.$NSRV
    mkdir -p "$d"
    free_port
    SRV_PORT=$port
    case "$1" in
        kodama)
            launch "$d/log" "$KODAMA" serve -t 1 --cert "$CERT" --key "$KEY" \
                "hello@127.0.0.1:$SRV_PORT/tcp+tls"
            SRV_CMD="kodama serve -t 1 --cert cert.pem --key key.pem hello@127.0.0.1:PORT/tcp+tls"
            ;;
        nginx)
            cat >"$d/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
daemon off;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log;
events { worker_connections 4096; }
stream {
	server {
		listen 127.0.0.1:$SRV_PORT ssl backlog=4096;
		ssl_certificate $CERT;
		ssl_certificate_key $KEY;
		ssl_protocols TLSv1.2 TLSv1.3;
		return "Hello from server!\n";
	}
}
EOF
            launch "$d/log" nginx -p "$d" -e "$d/error.log" -c "$d/nginx.conf"
            SRV_CMD="nginx -c nginx.conf  # worker_processes 1; stream { server { listen 127.0.0.1:PORT ssl backlog=4096; ssl_certificate cert.pem; ssl_certificate_key key.pem; ssl_protocols TLSv1.2 TLSv1.3; return \"Hello from server!\\n\"; } }"
            ;;
    esac
    if ! wait_port tcp 127.0.0.1 "$SRV_PORT"; then
        log "$1 did not listen: $(cat "$d"/*.log "$d/log" 2>/dev/null | tr '\n' ' ' | cut -c1-300)"
        exit 1
    fi
    sleep 0.1
    # It answers, over TLS, with the greeting and a clean end.
    if ! "$KODAMA" ping --tls --cafile "$CERT" --connect -c 1 -w 3 127.0.0.1 "$SRV_PORT" >/dev/null; then
        log "$1 does not answer over TLS"
        exit 1
    fi
    rec kind=cmd "server=$1" "cmd=$SRV_CMD"
}

stop() {
    stop_tree "$SRV_PID"
    forget SERVERS "$SRV_PID"
    [ -n "$SRV_CG" ] && cg_remove "$SRV_CG"
    SRV_CG=
}

# server_ns: the server's CPU so far: its cgroup's, else its process tree's.
server_ns() {
    if [ -n "$SRV_CG" ]; then
        cg_usage "$SRV_CG"
    else
        kv srv_ns "$(python3 bench/proctree.py cpu "$SRV_PID" "$$")"
    fi
}

# run_case NAME CASE [--resume]: one measured client run, the server's CPU read
# inside its measured part (0.1 s after the warm-up, 0.1 s before the end).
run_case() {
    local name=$1 cse=$2 out=$TMP/client.json cpid t1 t2 c1 c2
    shift 2
    "$KODAMA" bench --tls --cafile "$CERT" -m hello "$@" -c "$CONNS" -d "$DUR" --warmup "$WARM" \
        -q --json 127.0.0.1 "$SRV_PORT" >"$out" 2>"$TMP/client.err" &
    cpid=$!
    sleep "$(awk -v w="$WARM" 'BEGIN { printf "%.2f", w + 0.1 }')"
    t1=$(date +%s.%N) c1=$(server_ns)
    sleep "$(awk -v d="$DUR" 'BEGIN { printf "%.2f", d - 0.2 }')"
    t2=$(date +%s.%N) c2=$(server_ns)
    wait "$cpid" || true
    python3 - "$out" "$name" "$cse" "$ROUND" "$t1" "$t2" "$c1" "$c2" >>"$RES" <<'EOF'
import json
import sys

out, name, cse, rnd, t1, t2, c1, c2 = sys.argv[1:]
try:
    j = json.load(open(out))
except ValueError:
    j = {}
rate = j.get("conns_per_s", 0.0)
win = float(t2) - float(t1)
print("\t".join(["kind=run", "server=" + name, "case=" + cse, "round=" + rnd,
                 "hs_per_s=%.1f" % rate, "handshakes=%d" % j.get("handshakes", 0),
                 "resumed=%d" % j.get("resumed", 0),
                 "errors=%d" % (j.get("errors", 0) + j.get("corrupt", 0) + j.get("resets", 0)
                                + j.get("timeouts", 0) if j else 1),
                 "us_per_hs=%.2f" % ((int(c2) - int(c1)) / 1e3 / (rate * win) if rate > 0 else 0)]))
EOF
}

rec kind=meta "date=$(date -u '+%Y-%m-%d %H:%M:%S UTC')" "kernel=$(uname -sr)" \
    "cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)" "ncpu=$(nproc)" \
    "kodama=$(git describe --always --dirty 2>/dev/null || echo unknown)" \
    "nginx=$(nginx -v 2>&1 | sed -n 's/^nginx version: nginx\///p')" \
    "openssl=$(openssl version | cut -d' ' -f2)" "cg=${CG_KIND:-none}" \
    "rounds=$ROUNDS" "dur=$DUR" "warm=$WARM" "conns=$CONNS"

for ROUND in $(seq "$ROUNDS"); do
    for name in kodama nginx; do
        log "round $ROUND of $ROUNDS: $name"
        start "$name"
        run_case "$name" full
        run_case "$name" resumed --resume
        stop
    done
done

python3 - "$RES" "$OUT" "$QUICK" <<'EOF'
import statistics
import sys

rows, meta, cmds = [], {}, {}
for line in open(sys.argv[1]):
    kv = dict(f.split("=", 1) for f in line.rstrip("\n").split("\t") if "=" in f)
    if kv.get("kind") == "meta":
        meta = kv
    elif kv.get("kind") == "cmd":
        cmds[kv["server"]] = kv["cmd"]
    elif kv.get("kind") == "run":
        rows.append(kv)


def med(xs):
    return statistics.median(xs) if xs else float("nan")


cpu_from = {"v1": "its cgroup's cpuacct.usage", "v2": "its cgroup's cpu.stat"}.get(
    meta.get("cg"), "its process tree's schedstat (no writable cgroup)")
out = ["# TLS handshakes: kodama vs nginx's stream module", "",
       "Generated by `bench/tls.sh` on %s (%s, %s CPUs, %s), kodama %s, nginx %s, OpenSSL %s; "
       "median of %s interleaved rounds of %s s each (after %s s of warm-up), %s connections "
       "at a time." % (meta.get("date"), meta.get("cpu"), meta.get("ncpu"), meta.get("kernel"),
                       meta.get("kodama"), meta.get("nginx"), meta.get("openssl"),
                       meta.get("rounds"), meta.get("dur"), meta.get("warm"), meta.get("conns")),
       "",
       "| case | server | handshakes/s | server µs per handshake | resumed | errors |",
       "|---|---|---|---|---|---|"]
for cse, label in (("full", "full handshake"), ("resumed", "resumed (--resume)")):
    for srv in ("kodama", "nginx"):
        rs = [r for r in rows if r["case"] == cse and r["server"] == srv]
        hs = [float(r["hs_per_s"]) for r in rs]
        cpu = [float(r["us_per_hs"]) for r in rs if float(r["us_per_hs"]) > 0]
        res = sum(int(r["resumed"]) for r in rs)
        tot = sum(int(r["handshakes"]) for r in rs)
        errs = sum(int(r["errors"]) for r in rs)
        out.append("| %s | %s | %.0f | %.1f | %.0f %% | %d |" % (
            label, srv, med(hs), med(cpu), 100.0 * res / tot if tot else 0, errs))
out += ["", "Client, for both: `kodama bench --tls --cafile cert.pem -m hello [--resume] -c %s "
        "-d %s --warmup %s 127.0.0.1 PORT` (one thread). Each connection: TCP connect, the TLS "
        "handshake (TLS 1.3, each side with OpenSSL's defaults), the greeting, the close_notify, close." % (meta.get("conns"), meta.get("dur"),
                                                  meta.get("warm")), "",
        "How each server ran (one certificate for both, self-signed ECDSA P-256 for 127.0.0.1):",
        ""]
for srv in ("kodama", "nginx"):
    out.append("- %s: `%s`" % (srv, cmds.get(srv, "?")))
out += ["",
        "The server's CPU is %s over the measured window, divided by the handshakes the client "
        "completed in it; it includes the kernel's work for its sockets. Client and servers "
        "share the CPUs, and the client's side of each handshake costs about as much as the "
        "server's, so handshakes/s is bounded by the client as much as by the server: compare "
        "the µs per handshake. A resumed TLS 1.3 handshake still makes a new (EC)DHE key "
        "exchange (OpenSSL's psk_dhe_ke); it saves the certificate signature and its check." % cpu_from,
        ""]
if sys.argv[3] == "1":
    out.insert(2, "**--quick run: checks the script, not the numbers.**\n")
open(sys.argv[2], "w").write("\n".join(out))
print("\n".join(out))
EOF
log "done: $OUT"
