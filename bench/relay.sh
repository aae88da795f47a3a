#!/usr/bin/env bash
# relay.sh — kodama's relay (relay@ADDR,to=TARGET, no fault: splice(2)) beside the
# relays a user would pick instead, socat and HAProxy in tcp mode, in one run on
# this machine: the same target (a kodama echo), the same client (echoload), each
# relay started afresh for each round, the rounds interleaved, medians reported.
#
#   bench/relay.sh [--quick] [--rounds N] [-o FILE]
#
# Cases: 16 KiB and 1 MiB messages echoed through the relay (echoload -p 1), so
# every byte crosses it twice. Columns: MiB/s echoed (the client's count), and the
# relay's own CPU per MiB echoed, from the run time of every thread of its process
# tree (/proc/PID/task/TID/schedstat, bench/proctree.py) over the measured window.
# Writes a markdown section (default build/bench/RELAY.md) for bench/RESULTS.md.
# --quick: tiny runs, one round (checks the script, not the numbers).
set -euo pipefail

usage() {
    echo "usage: bench/relay.sh [--quick] [--rounds N] [-o FILE]" >&2
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
OUT=${OUT:-$B/RELAY.md}
if [ "$QUICK" = 1 ]; then DUR=1 WARM=0; else DUR=3 WARM=1; fi

LOG_NAME=relay
# shellcheck source=bench/lib.sh
. bench/lib.sh

TMP=$(mktemp -d /tmp/kodama-relay.XXXXXX)
RES=$TMP/results.tsv
SERVERS=()

cleanup() {
    local p
    trap - EXIT INT TERM
    for p in "${SERVERS[@]}"; do stop_tree "$p"; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'log interrupted; exit 130' INT TERM

for tool in socat haproxy; do
    if ! command -v "$tool" >/dev/null; then
        log "installing $tool"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool" >/dev/null
    fi
done
mkdir -p "$B" "$(dirname "$OUT")"
build_echoload "$B"
make --no-print-directory -s kodama >&2
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
KODAMA=$ROOT/kodama
ECHOLOAD=$ROOT/$B/echoload

launch() { # launch LOG CMD...: its own session; SRV_PID is its pid
    local logf=$1
    shift
    setsid "$@" >"$logf" 2>&1 </dev/null &
    SRV_PID=$!
    disown "$SRV_PID"
    SERVERS+=("$SRV_PID")
}

stop_server() {
    local kept=() p
    stop_tree "$SRV_PID"
    for p in "${SERVERS[@]}"; do [ "$p" = "$SRV_PID" ] || kept+=("$p"); done
    SERVERS=("${kept[@]}")
}

NEXT_PORT=$((32000 + RANDOM % 4000))
free_port() {
    while :; do
        port=$NEXT_PORT
        NEXT_PORT=$((NEXT_PORT + 1))
        [ -z "$(ss -Htan "( sport = :$port )" 2>/dev/null)" ] && return
    done
}

wait_port() {
    local i
    for i in $(seq 100); do
        [ -n "$(ss -Hltn "( sport = :$1 )")" ] && return 0
        sleep 0.05
    done
    log "nothing listens on $1"
    return 1
}

# The target every relay forwards to: one kodama echo, alike for all.
free_port
TARGET=$port
launch "$TMP/target.log" "$KODAMA" serve -t 1 --io epoll "echo@127.0.0.1:$TARGET/tcp"
wait_port "$TARGET"
TARGET_PID=$SRV_PID

# start_relay NAME: the relay on a fresh port (RELAY_PORT), as its own session.
start_relay() {
    free_port
    RELAY_PORT=$port
    case "$1" in
        kodama)
            launch "$TMP/kodama.log" "$KODAMA" serve -t 1 "relay@127.0.0.1:$RELAY_PORT,to=127.0.0.1:$TARGET"
            RELAY_CMD="kodama serve -t 1 relay@127.0.0.1:PORT,to=127.0.0.1:TARGET"
            ;;
        socat)
            # nodelay, as kodama's relay and HAProxy have: without it socat's 8 KiB
            # blocks meet Nagle and delayed ACKs, 40 ms a message.
            launch "$TMP/socat.log" socat \
                "TCP4-LISTEN:$RELAY_PORT,bind=127.0.0.1,reuseaddr,fork,backlog=4096,nodelay" \
                "TCP4:127.0.0.1:$TARGET,nodelay"
            RELAY_CMD="socat TCP4-LISTEN:PORT,bind=127.0.0.1,reuseaddr,fork,backlog=4096,nodelay TCP4:127.0.0.1:TARGET,nodelay"
            ;;
        haproxy)
            cat >"$TMP/haproxy.cfg" <<EOF
global
	nbthread 1
	maxconn 2000
defaults
	mode tcp
	timeout connect 5s
	timeout client 60s
	timeout server 60s
frontend relay
	bind 127.0.0.1:$RELAY_PORT
	default_backend target
backend target
	server echo 127.0.0.1:$TARGET
EOF
            launch "$TMP/haproxy.log" haproxy -db -f "$TMP/haproxy.cfg"
            RELAY_CMD="haproxy -db -f haproxy.cfg  # mode tcp, nbthread 1, one frontend, one server"
            ;;
    esac
    wait_port "$RELAY_PORT"
    rec kind=cmd "relay=$1" "cmd=$RELAY_CMD"
}

# run_case NAME CASE SIZE CONNS: one measured echoload run through the relay.
run_case() {
    local name=$1 cse=$2 size=$3 conns=$4 out=$TMP/client.out cpid s1 s2 line
    "$ECHOLOAD" -m tcp -c "$conns" -s "$size" -p 1 -d "$DUR" -w "$WARM" 127.0.0.1 "$RELAY_PORT" \
        >"$out" 2>"$TMP/client.err" &
    cpid=$!
    sleep "$(awk -v w="$WARM" 'BEGIN { printf "%.2f", w + 0.1 }')"
    s1=$(python3 bench/proctree.py cpu "$SRV_PID" "$cpid")
    sleep "$(awk -v d="$DUR" 'BEGIN { printf "%.2f", d - 0.2 }')"
    s2=$(python3 bench/proctree.py cpu "$SRV_PID" "$cpid")
    wait "$cpid" || true
    line=$(tail -n1 "$out")
    rec kind=run "relay=$name" "case=$cse" "round=$ROUND" \
        "win_s=$(awk -v a="$(kv t "$s1")" -v b="$(kv t "$s2")" 'BEGIN { printf "%.4f", b - a }')" \
        "win_srv_ns=$(( $(kv srv_ns "$s2") - $(kv srv_ns "$s1") ))" \
        "mib_per_s=$(kv mib_per_s "$line")" "errors=$(kv errors "$line")" \
        "client=$line"
}

rec kind=meta "date=$(date -u '+%Y-%m-%d %H:%M:%S UTC')" "kernel=$(uname -sr)" \
    "cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)" "ncpu=$(nproc)" \
    "kodama=$(git describe --always --dirty 2>/dev/null || echo unknown)" \
    "socat=$(socat -V 2>/dev/null | sed -n 's/^socat version \([^ ]*\).*/\1/p' | head -n1)" \
    "haproxy=$(haproxy -v 2>/dev/null | sed -n 's/^HAProxy version \([^ ]*\).*/\1/p')" \
    "rounds=$ROUNDS" "dur=$DUR" "warm=$WARM"

for ROUND in $(seq "$ROUNDS"); do
    for name in kodama socat haproxy; do
        log "round $ROUND of $ROUNDS: $name"
        start_relay "$name"
        run_case "$name" 16k 16384 10
        run_case "$name" 1m 1048576 4
        stop_server
    done
done
SRV_PID=$TARGET_PID
stop_server

python3 - "$RES" "$OUT" <<'EOF'
import statistics
import sys

rows, meta, cmds = [], {}, {}
for line in open(sys.argv[1]):
    kv = dict(f.split("=", 1) for f in line.rstrip("\n").split("\t") if "=" in f)
    if kv.get("kind") == "meta":
        meta = kv
    elif kv.get("kind") == "cmd":
        cmds[kv["relay"]] = kv["cmd"]
    elif kv.get("kind") == "run":
        rows.append(kv)

def med(xs):
    return statistics.median(xs) if xs else float("nan")

out = ["## relay: kodama vs socat vs HAProxy (tcp mode)", "",
       "Generated by `bench/relay.sh` on %s (%s, %s CPUs, %s), kodama %s, socat %s, HAProxy %s; "
       "median of %s interleaved rounds of %s s each." % (
           meta.get("date"), meta.get("cpu"), meta.get("ncpu"), meta.get("kernel"),
           meta.get("kodama"), meta.get("socat"), meta.get("haproxy"), meta.get("rounds"),
           meta.get("dur")), "",
       "| case | relay | MiB/s echoed | relay CPU ms per MiB | errors |",
       "|---|---|---|---|---|"]
for cse, label in (("16k", "16 KiB × 10 conns"), ("1m", "1 MiB × 4 conns")):
    for relay in ("kodama", "socat", "haproxy"):
        rs = [r for r in rows if r["case"] == cse and r["relay"] == relay]
        mib = [float(r["mib_per_s"] or 0) for r in rs]
        cpu = [int(r["win_srv_ns"]) / 1e6 / (float(r["mib_per_s"]) * float(r["win_s"]))
               for r in rs if r["mib_per_s"] and float(r["mib_per_s"]) > 0]
        errs = sum(int(r["errors"] or 0) for r in rs)
        out.append("| %s | %s | %.1f | %.2f | %d |" % (label, relay, med(mib), med(cpu), errs))
out += ["", "How each ran (PORT and TARGET filled in; the target is `kodama serve -t 1 --io "
        "epoll echo@127.0.0.1:TARGET/tcp` for all):", ""]
for relay in ("kodama", "socat", "haproxy"):
    out.append("- %s: `%s`" % (relay, cmds.get(relay, "?")))
out += ["",
        "Each byte crosses the relay twice (to the echo and back), so the relay moves twice the "
        "MiB/s shown. The relay's CPU is its own process tree's (socat's forked children "
        "included), not the client's or the target's. kodama moves the bytes with splice(2) "
        "when the relay has no fault; HAProxy 2.6 does not splice by default (no `option "
        "splice-auto`), socat copies through user space. The machine is small and shared "
        "(2 CPUs with the client, the target and other work): read the ratios, not the "
        "absolute numbers, and expect a few tens of per cent between runs.", ""]
open(sys.argv[2], "w").write("\n".join(out))
print("\n".join(out))
EOF
log "done: $OUT"
