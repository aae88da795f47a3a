#!/usr/bin/env bash
# client_cost.sh — does the load generator change what the server spends? The
# same servers at the same offered rate under two open-loop clients, kodama bench
# and sockperf, each server's CPU read from a cgroup of its own; medians of
# interleaved rounds. See bench/analysis.md ("The client changes the server's
# cost") for what it found.
#
#   bench/client_cost.sh [--rounds N] [--rate R] [--conns C] [--secs S]
#
# sockperf's client drops every reply that still carries its "client" flag, which
# a plain echo server sends back unchanged; so it needs a sockperf whose client
# accepts them. Give its path in SOCKPERF (default: sockperf on PATH, which only
# works if it was built so): the one-line change is in src/client.h, "if
# (m_pMsgReply->isClient()) return true;" made to never return there.
# Segments per message come from /proc/net/snmp, machine-wide: on a quiet
# machine only.
set -euo pipefail

ROUNDS=3 RATE=20000 CONNS=100 SECS=3
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS=$2; shift ;;
        --rate) RATE=$2; shift ;;
        --conns) CONNS=$2; shift ;;
        --secs) SECS=$2; shift ;;
        *) echo "usage: bench/client_cost.sh [--rounds N] [--rate R] [--conns C] [--secs S]" >&2; exit 2 ;;
    esac
    shift
done
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
SOCKPERF=${SOCKPERF:-$(command -v sockperf || true)}
[ -x "$SOCKPERF" ] || { echo "client_cost.sh: no sockperf (set SOCKPERF)" >&2; exit 2; }
CGROOT=/sys/fs/cgroup/cpuacct
[ -w "$CGROOT" ] || { echo "client_cost.sh: needs a writable $CGROOT (root, cgroup v1)" >&2; exit 2; }
make --no-print-directory -s kodama >&2
mkdir -p build/bench
cc -std=c17 -O2 -Wall -Wextra -Werror -o build/bench/fork_echo bench/peers/fork_echo.c
TMP=$(mktemp -d /tmp/kodama-client-cost.XXXXXX)
CG=$CGROOT/kodama-client-cost.$$
SRV=
cleanup() {
    [ -n "$SRV" ] && kill -TERM -- "-$SRV" 2>/dev/null
    sleep 0.2
    rmdir "$CG" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

out_segs() { awk '/^Tcp:/ { if (++n == 2) print $12 }' /proc/net/snmp; }

# one SERVER CLIENT: prints "SERVER CLIENT msgs us_per_msg segs_per_msg"
one() {
    local srv=$1 cli=$2 port u0 u1 s0 s1 msgs out
    mkdir -p "$CG"
    case "$srv" in
        kodama-*) set -- ./kodama serve --io "${srv#kodama-}" --threads 1 echo@127.0.0.1:0/tcp ;;
        fork_echo) set -- build/bench/fork_echo 127.0.0.1 0 ;;
    esac
    # shellcheck disable=SC2016
    setsid sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' sh "$CG" "$@" >"$TMP/srv.log" 2>&1 &
    SRV=$!
    for _ in $(seq 100); do grep -q 'listening' "$TMP/srv.log" && break; sleep 0.05; done
    port=$(sed -n 's/.*listening.*:\([0-9]*\)$/\1/p' "$TMP/srv.log" | head -n1)
    u0=$(cat "$CG/cpuacct.usage") s0=$(out_segs)
    if [ "$cli" = kodama-bench ]; then
        out=$(./kodama bench -m echo -c "$CONNS" -s 64 -p 16 -r "$RATE" -d "$SECS" -q --json 127.0.0.1 "$port")
        msgs=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["msgs"])' "$out")
    else
        for _ in $(seq "$CONNS"); do echo "T:127.0.0.1:$port"; done >"$TMP/feed"
        out=$("$SOCKPERF" ul -f "$TMP/feed" --mps "$RATE" -m 64 -t "$SECS" --reply-every 1 2>&1)
        msgs=$(sed -n 's/.*Total Run.*ReceivedMessages=\([0-9]*\).*/\1/p' <<<"$out" | head -n1)
    fi
    u1=$(cat "$CG/cpuacct.usage") s1=$(out_segs)
    kill -TERM -- "-$SRV" 2>/dev/null || true
    wait "$SRV" 2>/dev/null || true
    SRV=
    for _ in $(seq 40); do rmdir "$CG" 2>/dev/null && break; sleep 0.05; done
    awk -v s="$srv" -v c="$cli" -v m="${msgs:-0}" -v u=$((u1 - u0)) -v g=$((s1 - s0)) \
        'BEGIN { if (m > 0) printf "%s %s %d %.3f %.2f\n", s, c, m, u / 1e3 / m, g / m }'
}

for _ in $(seq "$ROUNDS"); do
    for srv in kodama-epoll kodama-uring fork_echo; do
        one "$srv" kodama-bench
        one "$srv" sockperf
    done
done | python3 -c '
import statistics, sys
rows = {}
for line in sys.stdin:
    s, c, m, us, segs = line.split()
    rows.setdefault((s, c), []).append((float(us), float(segs)))
print("| server | client | server µs/msg | segments/msg | rounds |")
print("|---|---|---|---|---|")
for (s, c), v in sorted(rows.items()):
    print(f"| {s} | {c} | {statistics.median(x[0] for x in v):.2f} | "
          f"{statistics.median(x[1] for x in v):.2f} | {len(v)} |")
'
echo "rate $RATE/s over $CONNS connections, $SECS s a run, 64 B messages"
