#!/usr/bin/env bash
# compare.sh — measure kodama side by side with the servers a user would pick
# instead, on this machine, with the same clients for everyone, and write the
# tables to bench/RESULTS.md. See bench/README.md for what each column means.
#
#   bench/compare.sh [--quick] [--baseline BIN] [--cases LIST] [--no-peers]
#                    [--rounds N] [-o FILE]
#
# --quick: tiny runs, kodama + the bench/peers floors + socat only, written to
# build/bench/RESULTS-quick.md unless -o says otherwise; checks the harness,
# not the numbers (make bench-quick).
# --baseline BIN: run BIN (another kodama, e.g. one built from an older commit)
# beside ./kodama, in every kodama variant, each right after the other; the
# report adds a before/after table (./kodama ÷ BIN) with these ratios.
# --cases LIST: only these cases (comma-separated, from ALL_CASES below; "fixed"
# stands for every fixed-rate case, "saturation" for tcp64,tcp16k,udp64,hello).
# --no-peers: kodama (and the baseline) only.
# --rounds N: every server N times, the rounds interleaved (kodama, baseline,
# peers, then again); the tables show the median of the rounds.
# kodama runs on each engine with 1 thread and one per CPU; the TCP echo cases
# (tcp64 at saturation and fixed rates, ping-pong) also run it with the opt-in
# gathering wait (io_uring, 1 thread, --batch-wait $BATCH_WAIT µs).
set -euo pipefail

usage() {
    echo "usage: bench/compare.sh [--quick] [--baseline BIN] [--cases LIST] [--no-peers] [--rounds N] [-o FILE]" >&2
    exit 2
}

QUICK=0
OUT=
BASELINE=
# Saturation (closed loop, as fast as the client goes), then fixed offered rates
# (open loop: kodama bench -r, latency from each message's intended send), the
# latency-bound ping-pong (one message in flight) and hello at 1 and 4 clients.
SATURATION="tcp64 tcp16k udp64 hello"
FIXED="tcp64@10k tcp64@20k tcp64@50k tcp64@100k tcp64x10@20k udp64@20k udp64@100k hello@2k hello@10k"
ALL_CASES="$SATURATION $FIXED pingpong-tcp pingpong-udp hello1 hello4 idle"
CASES=
PEERS=1
ROUNDS=1
BATCH_WAIT=50   # µs, the gathering variant's --batch-wait (bench/analysis.md)
ARGS=("$@")
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        -o) [ $# -ge 2 ] || usage; OUT=$2; shift ;;
        --baseline) [ $# -ge 2 ] || usage; BASELINE=$2; shift ;;
        --cases) [ $# -ge 2 ] || usage; CASES=$2; shift ;;
        --no-peers) PEERS=0 ;;
        --rounds)
            if [ $# -lt 2 ] || ! [[ $2 =~ ^[1-9][0-9]?$ ]]; then usage; fi
            ROUNDS=$2; shift ;;
        -h|--help) usage ;;
        *) usage ;;
    esac
    shift
done
if [ -z "$CASES" ]; then
    CASES=${ALL_CASES// /,}
    # --quick: one case of each kind besides the saturation ones.
    [ "$QUICK" = 1 ] && CASES="${SATURATION// /,},tcp64@20k,udp64@20k,hello@2k,pingpong-tcp,pingpong-udp,hello4,idle"
fi
CASES=${CASES//fixed/${FIXED// /,}}
CASES=${CASES//saturation/${SATURATION// /,}}
for c in ${CASES//,/ }; do
    [[ " $ALL_CASES " == *" $c "* ]] || { echo "compare.sh: unknown case '$c'" >&2; usage; }
done
if [ -n "$BASELINE" ]; then
    [ -x "$BASELINE" ] || { echo "compare.sh: --baseline $BASELINE: not an executable" >&2; exit 2; }
    BASELINE=$(cd "$(dirname "$BASELINE")" && pwd)/$(basename "$BASELINE")
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
SECONDS=0

# Orphans of a forking server (its children, when it is stopped first) would
# otherwise go to PID 1, which in some containers never reaps them: run this
# script as a child subreaper (the attribute survives execve) so bash reaps them.
if [ -z "${KODAMA_COMPARE_REAPER:-}" ]; then
    export KODAMA_COMPARE_REAPER=1
    args=("${ARGS[@]}")
    exec python3 -c 'import ctypes, os, sys
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
os.execv("/bin/bash", ["bash"] + sys.argv[1:])' "${BASH_SOURCE[0]}" "${args[@]}"
fi

B=build/bench
if [ -z "$OUT" ]; then
    if [ "$QUICK" = 1 ]; then OUT=$B/RESULTS-quick.md; else OUT=bench/RESULTS.md; fi
fi
NCPU=$(nproc)
if [ "$QUICK" = 1 ]; then
    DUR=1 WARM=0            # echoload takes whole seconds
    KB_DUR=0.3 KB_WARM=0.1  # kodama bench
    IDLE_N=200 IDLE_SECS=5 IDLE_SETTLE=0.5
    BG_SECS=0.2
else
    DUR=2 WARM=1
    KB_DUR=2 KB_WARM=1
    IDLE_N=10000 IDLE_SECS=30 IDLE_SETTLE=3
    BG_SECS=1
fi
STRACE_DUR=1

LOG_NAME=compare
# shellcheck source=bench/lib.sh
. bench/lib.sh

# --- teardown ---------------------------------------------------------------

TMP=$(mktemp -d /tmp/kodama-compare.XXXXXX)
SERVERS=()   # pids (= session ids) of servers still running
HELPERS=()   # pids of clients and tracers still running
POLICY_RC=   # a policy-rc.d this script put in place, to remove

cleanup() {
    local p
    trap - EXIT INT TERM
    for p in "${HELPERS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    for p in "${SERVERS[@]}"; do stop_tree "$p"; done
    for p in "${CG_ROOT:-/nonexistent}"/kodama-compare.$$.*; do [ -d "$p" ] && rmdir "$p" 2>/dev/null; done
    [ -n "$POLICY_RC" ] && rm -f "$POLICY_RC"
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'log interrupted; exit 130' INT TERM

# --- packages and builds ----------------------------------------------------

if [ "$QUICK" = 1 ]; then
    apt_install socat strace
else
    apt_install socat strace xinetd ncat nginx libnginx-mod-stream gnuplot-nox
fi

mkdir -p "$B" "$(dirname "$OUT")"
CFLAGS_B=(-std=c17 -O2 -Wall -Wextra -Werror)
build_echoload "$B"
build "$B/holdconns" bench/holdconns.c "${CFLAGS_B[@]}"
for f in fork_echo udp_echo fork_hello; do build "$B/$f" "bench/peers/$f.c" "${CFLAGS_B[@]}"; done
make --no-print-directory -s kodama >&2
KODAMA=$ROOT/kodama
ECHOLOAD=$ROOT/$B/echoload
INETD=
if [ "$QUICK" = 0 ]; then
    INETD=$ROOT/$B/openbsd-inetd/usr/sbin/inetd
    if [ ! -x "$INETD" ]; then
        mkdir -p "$B/debs"
        (cd "$B/debs" && apt-get download -qq openbsd-inetd 2>/dev/null)
        debs=("$B"/debs/openbsd-inetd_*.deb)
        dpkg-deb -x "${debs[-1]}" "$B/openbsd-inetd"
    fi
fi

# 10,000 connections: the client and the servers need the descriptors.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
NOFILE=$(ulimit -n)

SERVE_HELP=$("$KODAMA" serve --help 2>&1 || true)
HAS_IO=0 HAS_THREADS=0 HAS_BENCH=0
grep -q -- '--io' <<<"$SERVE_HELP" && HAS_IO=1
grep -q -- '--threads' <<<"$SERVE_HELP" && HAS_THREADS=1
"$KODAMA" bench --help >/dev/null 2>&1 && HAS_BENCH=1
HAS_STRACE=0
command -v strace >/dev/null && HAS_STRACE=1

# kodama variants: "label|serve options".
KVARIANTS=()
if [ "$QUICK" = 1 ]; then
    KVARIANTS=("kodama|")
    [ -n "$BASELINE" ] && KVARIANTS+=("baseline|")
else
    ios=(default)
    [ "$HAS_IO" = 1 ] && ios=(epoll uring)
    threads=(default)
    [ "$HAS_THREADS" = 1 ] && threads=(1 "$NCPU")
    for io in "${ios[@]}"; do
        for t in "${threads[@]}"; do
            label="kodama" opts=""
            if [ "$io" != default ] || [ "$t" != default ]; then
                label+=" ("
                [ "$io" != default ] && { label+="$io"; opts+=" --io $io"; }
                if [ "$t" != default ]; then
                    [ "$io" != default ] && label+=", "
                    label+="$t thread"; [ "$t" != 1 ] && label+="s"
                    opts+=" --threads $t"
                fi
                label+=")"
            fi
            KVARIANTS+=("$label|$opts")
            [ -n "$BASELINE" ] && KVARIANTS+=("baseline${label#kodama}|$opts")
        done
    done
    # The opt-in gathering wait (--batch-wait), where it is meant to pay: TCP
    # echo (servers_for leaves it out of the other cases).
    if [ "$HAS_IO" = 1 ] && grep -q -- '--batch-wait' <<<"$SERVE_HELP"; then
        KVARIANTS+=("kodama (uring, 1 thread, batch-wait $BATCH_WAIT)| --io uring --threads 1 --batch-wait $BATCH_WAIT")
    fi
fi

# --- results file -----------------------------------------------------------

RES=$TMP/results.tsv
: >"$RES"
rec kind=meta "date=$(date -u '+%Y-%m-%d %H:%M:%S UTC')" "kernel=$(uname -sr)" \
    "cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)" "ncpu=$NCPU" \
    "mem=$(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo)" \
    "debian=$(cat /etc/debian_version 2>/dev/null || echo unknown)" \
    "kodama=$(git describe --always --dirty 2>/dev/null || echo unknown)" \
    "quick=$QUICK" "dur=$DUR" "warm=$WARM" "kb_dur=$KB_DUR" "kb_warm=$KB_WARM" \
    "idle_n=$IDLE_N" "idle_secs=$IDLE_SECS" "has_io=$HAS_IO" "has_threads=$HAS_THREADS" "has_bench=$HAS_BENCH" \
    "has_strace=$HAS_STRACE" "nofile=$NOFILE" "strace_dur=$STRACE_DUR" "rounds=$ROUNDS" \
    "baseline=$([ -n "$BASELINE" ] && "$BASELINE" --version 2>/dev/null | head -n1) $BASELINE" \
    "command=bench/compare.sh${ARGS[*]:+ ${ARGS[*]}}"

# --- starting servers: bench/servers.sh ------------------------------------

# shellcheck source=bench/servers.sh
. bench/servers.sh

# --- measuring ----------------------------------------------------------------

sleep_until() { # sleep_until EPOCH_SECONDS
    sleep "$(awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { d = a - b; if (d < 0) d = 0; printf "%.3f", d }')"
}

# Client arguments per case: echoload's (none: kodama bench only) and kodama
# bench's. A fixed-rate case is NAME@RATE: tcp64@20k offers 20,000 msgs/s.
case_args() { # case_args CASE -> EL_ARGS, KB_ARGS, CASE_SVC, CASE_PROTO, CASE_BASE
    local rate=
    case "$1" in *@*) rate=${1#*@}; rate=${rate%k}000 ;; esac
    EL_ARGS=() CASE_SVC=echo CASE_PROTO=tcp CASE_BASE=$1
    case "$1" in
        tcp64)  EL_ARGS=(-m tcp -c 100 -s 64 -p 16 -t 1);   KB_ARGS=(-m echo -c 100 -s 64 -p 16 -t 1) ;;
        tcp16k) EL_ARGS=(-m tcp -c 10 -s 16384 -p 1 -t 1);  KB_ARGS=(-m echo -c 10 -s 16384 -p 1 -t 1) ;;
        udp64)  EL_ARGS=(-m udp -c 8 -s 64 -p 16 -t 1);     KB_ARGS=(-m udp -c 8 -s 64 -p 16 -t 1);      CASE_PROTO=udp ;;
        hello)  EL_ARGS=(-m hello -c 50 -t 1);              KB_ARGS=(-m hello -c 50 -t 1);               CASE_SVC=hello ;;
        tcp64@*)   KB_ARGS=(-m echo -c 100 -s 64 -p 16 -t 1 -r "$rate"); CASE_BASE=tcp64 ;;
        tcp64x10@*) KB_ARGS=(-m echo -c 10 -s 64 -p 16 -t 1 -r "$rate"); CASE_BASE=tcp64 ;;
        udp64@*)   KB_ARGS=(-m udp -c 8 -s 64 -p 16 -t 1 -r "$rate"); CASE_PROTO=udp CASE_BASE=udp64 ;;
        hello@*)   KB_ARGS=(-m hello -c 50 -t 1 -r "$rate"); CASE_SVC=hello CASE_BASE=hello ;;
        pingpong-tcp) EL_ARGS=(-m tcp -c 1 -s 64 -p 1 -t 1); KB_ARGS=(-m echo -c 1 -s 64 -p 1 -t 1); CASE_BASE=tcp64 ;;
        pingpong-udp) EL_ARGS=(-m udp -c 1 -s 64 -p 1 -t 1); KB_ARGS=(-m udp -c 1 -s 64 -p 1 -t 1); CASE_PROTO=udp CASE_BASE=udp64 ;;
        hello1) EL_ARGS=(-m hello -c 1 -t 1); KB_ARGS=(-m hello -c 1 -t 1); CASE_SVC=hello CASE_BASE=hello ;;
        hello4) EL_ARGS=(-m hello -c 4 -t 1); KB_ARGS=(-m hello -c 4 -t 1); CASE_SVC=hello CASE_BASE=hello ;;
        idle)   KB_ARGS=() ;;
    esac
}

cg_sample() { # "t=EPOCH ns=CPU" of the server's cgroup; ns=-1 without one
    if [ -z "$SRV_CG" ]; then echo "t=$EPOCHREALTIME ns=-1"; return; fi
    local t=$EPOCHREALTIME
    echo "t=$t ns=$(cg_usage "$SRV_CG")"
}

# run_client CASE SERVER ROLE CLIENT: one measured run; appends a record.
run_client() {
    local cse=$1 server=$2 role=$3 client=$4 out err cpid rc t0 warm dur s1 s2 c1 c2 line
    out=$TMP/client.out err=$TMP/client.err
    t0=$EPOCHREALTIME
    if [ "$client" = echoload ]; then
        warm=$WARM dur=$DUR
        timeout $((DUR + WARM + 20)) "$ECHOLOAD" "${EL_ARGS[@]}" -d "$DUR" -w "$WARM" "$SRV_HOST" "$SRV_PORT" >"$out" 2>"$err" &
    else
        warm=$KB_WARM dur=$KB_DUR
        timeout 60 "$KODAMA" bench "${KB_ARGS[@]}" -d "$KB_DUR" --warmup "$KB_WARM" --json -q "$SRV_HOST" "$SRV_PORT" >"$out" 2>"$err" &
    fi
    cpid=$!
    HELPERS+=("$cpid")
    # The server's CPU in the measured part of the run, sampled from outside.
    sleep_until "$(awk -v a="$t0" -v w="$warm" -v d="$dur" 'BEGIN { printf "%.6f", a + w + (d > 0.6 ? 0.15 : 0.05) }')"
    c1=$(cg_sample)
    s1=$(python3 bench/proctree.py cpu "$SRV_PID" "$cpid")
    sleep_until "$(awk -v a="$t0" -v w="$warm" -v d="$dur" 'BEGIN { printf "%.6f", a + w + d - (d > 0.6 ? 0.15 : 0.05) }')"
    c2=$(cg_sample)
    s2=$(python3 bench/proctree.py cpu "$SRV_PID" "$cpid")
    # A window that ends after the client does measures nothing.
    local win_ok=1
    kill -0 "$cpid" 2>/dev/null || win_ok=0
    rc=0
    wait "$cpid" || rc=$?
    forget HELPERS "$cpid"
    local fields=(kind=run "case=$cse" "server=$server" "role=$role" "client=$client" "rc=$rc" "round=$ROUND"
        "win_s=$(awk -v a="$(kv t "$s1")" -v b="$(kv t "$s2")" 'BEGIN { printf "%.4f", b - a }')"
        "win_busy=$(( $(kv busy "$s2") - $(kv busy "$s1") ))"
        "win_srv_ns=$(( $(kv srv_ns "$s2") - $(kv srv_ns "$s1") ))"
        "win_cli=$(( $(kv cli "$s2") - $(kv cli "$s1") ))"
        "win_cg_s=$(awk -v a="$(kv t "$c1")" -v b="$(kv t "$c2")" 'BEGIN { printf "%.4f", b - a }')"
        "win_cg_ns=$([ "$(kv ns "$c1")" = -1 ] && echo -1 || echo $(( $(kv ns "$c2") - $(kv ns "$c1") )))"
        "procs=$(kv procs "$s2")" "win_ok=$win_ok")
    if [ "$client" = echoload ]; then
        line=$(tail -n1 "$out")
        [ -n "$line" ] && fields+=("${line// /$'\t'}")
    else
        fields+=("json=$(tr -d '\n\t' <"$out")")
    fi
    fields+=("stderr=$(tr '\n\t' '  ' <"$err" | cut -c1-300)")
    rec "${fields[@]}"
}

# strace_pass CASE SERVER: counts the server's syscalls over a short run of
# one client (echoload for 1 s; with --quick kodama bench for 0.3 s if built).
strace_pass() {
    local cse=$1 server=$2 sout=$TMP/strace.out out=$TMP/strace.client spid pids=() p i rc=0 line total uring secs
    for p in $(python3 bench/proctree.py pids "$SRV_PID"); do pids+=(-p "$p"); done
    strace -c -f -qq -o "$sout" "${pids[@]}" 2>"$TMP/strace.err" &
    spid=$!
    HELPERS+=("$spid")
    for i in $(seq 60); do
        [ "$(awk '/^TracerPid:/{print $2}' "/proc/$SRV_PID/status" 2>/dev/null)" != 0 ] && break
        sleep 0.05
    done
    sleep 0.1
    if [ "$QUICK" = 1 ] && [ "$HAS_BENCH" = 1 ]; then
        secs=0.3
        timeout 30 "$KODAMA" bench "${KB_ARGS[@]}" -d "$secs" --json -q "$SRV_HOST" "$SRV_PORT" >"$out" 2>/dev/null || rc=$?
        line=$(python3 -c 'import json, sys
j = json.load(open(sys.argv[1]))
print("client=kodama-bench msgs_per_s=%s conns_per_s=%s" % (j["msgs_per_s"], j["conns_per_s"]))' "$out" 2>/dev/null || true)
    else
        secs=$STRACE_DUR
        timeout $((STRACE_DUR + 20)) "$ECHOLOAD" "${EL_ARGS[@]}" -d "$secs" -w 0 "$SRV_HOST" "$SRV_PORT" >"$out" 2>/dev/null || rc=$?
        line="client=echoload $(tail -n1 "$out")"
    fi
    kill -INT "$spid" 2>/dev/null || true
    wait "$spid" || true
    forget HELPERS "$spid"
    total=$(awk '$NF == "total" { print $4 }' "$sout" 2>/dev/null)
    uring=$(awk '$NF == "io_uring_enter" { print $4 }' "$sout" 2>/dev/null)
    rec kind=strace "case=$cse" "server=$server" "rc=$rc" "secs=$secs" "calls=${total:-}" \
        "uring_enter=${uring:-0}" "top=$(sort -k4 -n -r "$sout" 2>/dev/null | awk '$NF != "total" && $4 ~ /^[0-9]+$/ { printf "%s:%s ", $NF, $4 }' | head -c 200)" \
        "${line// /$'\t'}"
}

# idle_pass SERVER ROLE: IDLE_N idle connections, then all closed at once.
idle_pass() {
    local server=$1 role=$2 hout=$TMP/hold.out hpid m0 m1 m2 i t0 t1 open left alive=no procs
    m0=$(python3 bench/proctree.py mem "$SRV_PID")
    "$ROOT/$B/holdconns" -n "$IDLE_N" -b 100 -w 5 -t "$IDLE_SECS" "$SRV_HOST" "$SRV_PORT" >"$hout" 2>"$TMP/hold.err" &
    hpid=$!
    HELPERS+=("$hpid")
    for i in $(seq $(((IDLE_SECS + 15) * 20))); do
        grep -q '^opened=' "$hout" && break
        kill -0 "$hpid" 2>/dev/null || break
        sleep 0.05
    done
    open=$(grep '^opened=' "$hout" || true)
    # Idle means settled: kodama's io_uring workers give back the pages of their
    # receive buffers after 1 s without traffic (bufring.h).
    sleep "$IDLE_SETTLE"
    m1=$(python3 bench/proctree.py mem "$SRV_PID")
    # Close them all at once; time until the server has closed its side of
    # every one (nothing left established, in close-wait or last-ack).
    t0=$EPOCHREALTIME
    kill -USR1 "$hpid" 2>/dev/null || true
    wait "$hpid" || true
    forget HELPERS "$hpid"
    left=-1
    for i in $(seq 400); do
        left=$(ss -Htn state established state close-wait state last-ack "( sport = :$SRV_PORT )" | wc -l)
        procs=$(kv procs "$(python3 bench/proctree.py mem "$SRV_PID")")
        [ "$left" = 0 ] && [ "$procs" -le "$(kv procs "$m0")" ] && break
        sleep 0.05
    done
    t1=$EPOCHREALTIME
    sleep 0.2
    m2=$(python3 bench/proctree.py mem "$SRV_PID")
    check_server echo tcp && alive=yes
    rec kind=idle "server=$server" "role=$role" "n=$IDLE_N" "$(tr ' ' '\t' <<<"${open:-opened=0 failed=$IDLE_N open_ms=0}")" \
        "$(grep '^closed=' "$hout" | tr ' ' '\t' || echo closed=0)" \
        "rss0_kb=$(kv rss_kb "$m0")" "rss1_kb=$(kv rss_kb "$m1")" "rss2_kb=$(kv rss_kb "$m2")" \
        "pss0_kb=$(kv pss_kb "$m0")" "pss1_kb=$(kv pss_kb "$m1")" "pss2_kb=$(kv pss_kb "$m2")" \
        "procs0=$(kv procs "$m0")" "procs1=$(kv procs "$m1")" "procs2=$(kv procs "$m2")" \
        "left=$left" "release_ms=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", (b - a) * 1000 }')" \
        "alive=$alive" "stderr=$(tr '\n\t' '  ' <"$TMP/hold.err" | cut -c1-200)"
}

# --- the run ------------------------------------------------------------------

kodama_names() { local v; for v in "${KVARIANTS[@]}"; do printf '%s\n' "${v%%|*}"; done; }

servers_for() { # servers_for CASE: "name|role" lines
    local name
    case_args "$1"
    while read -r name; do
        [[ $name == *batch-wait* ]] && [ "$CASE_BASE" != tcp64 ] && continue
        if [ "${name%% *}" = baseline ]; then echo "$name|baseline"; else echo "$name|kodama"; fi
    done < <(kodama_names)
    [ "$PEERS" = 1 ] || return 0
    case "$CASE_BASE" in
        tcp64|tcp16k|idle)
            echo "fork_echo (floor)|peer"; echo "socat|peer"
            [ "$QUICK" = 0 ] && printf '%s|peer\n' xinetd openbsd-inetd ncat ;;
        udp64)
            echo "udp_echo (floor)|peer"; echo "socat|peer"
            [ "$QUICK" = 0 ] && printf '%s|peer\n' xinetd openbsd-inetd ncat ;;
        hello)
            echo "fork_hello (floor)|peer"; echo "socat|peer"
            [ "$QUICK" = 0 ] && printf '%s|peer\n' xinetd openbsd-inetd nginx ncat ;;
    esac
    return 0
}

busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }

HZ=$(getconf CLK_TCK)
for cse in $ALL_CASES; do
    [[ ",$CASES," == *",$cse,"* ]] || continue
    case_args "$cse"
    # Whatever else keeps this machine busy skews echoload's server µs/msg.
    b0=$(busy_ticks)
    sleep "$BG_SECS"
    rec kind=args "case=$cse" "echoload=${EL_ARGS[*]}" "kodama_bench=${KB_ARGS[*]}"
    rec kind=bg "case=$cse" "busy_pct=$(awk -v d="$(($(busy_ticks) - b0))" -v hz="$HZ" -v n="$NCPU" -v s="$BG_SECS" 'BEGIN { printf "%.0f", d * 100 / (hz * n * s) }')"
    for ROUND in $(seq "$ROUNDS"); do
    # The idle case and the syscall counts are not figures a round's noise moves.
    [ "$cse" = idle ] && [ "$ROUND" -gt 1 ] && break
    while IFS='|' read -r server role; do
        log "$cse: $server$([ "$ROUNDS" -gt 1 ] && echo " (round $ROUND of $ROUNDS)")"
        if ! start_server "$server" "$CASE_SVC" "$CASE_PROTO"; then
            log "$cse: $server: $SRV_ERR"
            rec kind=start "case=$cse" "server=$server" "role=$role" "error=$SRV_ERR"
            stop_server
            continue
        fi
        rec kind=cmd "case=$cse" "server=$server" "cmd=$SRV_CMD"
        if [ "$cse" = idle ]; then
            idle_pass "$server" "$role"
        else
            # --quick with kodama bench built: echoload (1 s at least) only
            # against kodama, as the cross-check.
            # Fixed rates are kodama bench's alone: echoload has no rate.
            if [ "${#EL_ARGS[@]}" -gt 0 ] && { [ "$QUICK" = 0 ] || [ "$HAS_BENCH" = 0 ] || [ "$role" != peer ]; }; then
                run_client "$cse" "$server" "$role" echoload
            fi
            [ "$HAS_BENCH" = 1 ] && run_client "$cse" "$server" "$role" kodama-bench
            if [ "$HAS_STRACE" = 1 ] && [ "$ROUND" = 1 ] && [ "${#EL_ARGS[@]}" -gt 0 ] &&
                { [ "$QUICK" = 0 ] || [ "$role" != peer ]; }; then
                strace_pass "$cse" "$server"
            fi
        fi
        stop_server
    done < <(servers_for "$cse")
    done
done
rec kind=meta "elapsed_s=$SECONDS"

cp "$RES" "$B/results$([ "$QUICK" = 1 ] && echo -quick).tsv" # the raw records, for a second look
mapfile -t PLOTS < <(python3 bench/plot.py "$RES" "$(dirname "$OUT")")
python3 bench/report.py "$RES" "${PLOTS[@]}" >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
log "wrote $OUT in ${SECONDS}s"
