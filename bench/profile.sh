#!/usr/bin/env bash
# profile.sh — how many user-space instructions kodama's server spends per
# message, and in which functions, counted by valgrind's callgrind; and how its
# CPU time splits between user space and the kernel without valgrind. Three
# cases (tcp64, udp64, hello), `kodama serve --io epoll --threads 1` only
# (valgrind does not support io_uring well); writes bench/PROFILE.md. See
# bench/README.md for what each column means.
#
#   bench/profile.sh [--quick] [-d SECS] [-o FILE]
#
# --quick: 1 s runs, written to build/bench/PROFILE-quick.md unless -o says
# otherwise; checks the harness, not the numbers. -d SECS: the length of the
# measured client run under callgrind (default 3; --quick 1).
set -euo pipefail

usage() {
    echo "usage: bench/profile.sh [--quick] [-d SECS] [-o FILE]" >&2
    exit 2
}

QUICK=0
OUT=
CG_DUR=
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        -o) [ $# -ge 2 ] || usage; OUT=$2; shift ;;
        -d) [ $# -ge 2 ] || usage; CG_DUR=$2; shift
            [[ "$CG_DUR" =~ ^[1-9][0-9]*$ ]] || usage ;;  # echoload takes whole seconds
        -h|--help) usage ;;
        *) usage ;;
    esac
    shift
done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
SECONDS=0

B=build/bench
if [ -z "$OUT" ]; then
    if [ "$QUICK" = 1 ]; then OUT=$B/PROFILE-quick.md; else OUT=bench/PROFILE.md; fi
fi
if [ "$QUICK" = 1 ]; then
    CG_DUR=${CG_DUR:-1} CG_WARM=1   # under callgrind: measured run, warm-up run
    PROC_DUR=1 PROC_WARM=0          # without valgrind
    SETTLE=0.2
else
    CG_DUR=${CG_DUR:-3} CG_WARM=1
    PROC_DUR=10 PROC_WARM=1         # /proc's utime and stime are whole clock ticks
    SETTLE=0.3
fi

LOG_NAME=profile
# shellcheck source=bench/lib.sh
. bench/lib.sh
die() { log "error: $*"; exit 1; }

# --- teardown ---------------------------------------------------------------

TMP=$(mktemp -d /tmp/kodama-profile.XXXXXX)
SRV_PID=     # the server (kodama, or valgrind running it) while it runs
CLI_PID=     # the client while it runs

# stop_server: SIGTERM, then SIGKILL to its session if it has not exited
# within 30 s (valgrind writes its final dump on the way out).
stop_server() {
    local i
    [ -n "$SRV_PID" ] || return 0
    kill -TERM "$SRV_PID" 2>/dev/null || true
    for i in $(seq 600); do
        kill -0 "$SRV_PID" 2>/dev/null || break
        if [ "$i" = 600 ]; then
            log "server $SRV_PID ignored SIGTERM for 30 s; killing it"
            kill -KILL -- "-$SRV_PID" 2>/dev/null || true
        fi
        sleep 0.05
    done
    wait "$SRV_PID" 2>/dev/null || true
    SRV_PID=
}

cleanup() {
    trap - EXIT INT TERM
    if [ -n "$CLI_PID" ]; then kill -KILL "$CLI_PID" 2>/dev/null || true; fi
    stop_server
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'log interrupted; exit 130' INT TERM

# --- tools and builds ---------------------------------------------------------

for t in valgrind callgrind_control; do
    command -v "$t" >/dev/null || die "$t not found (apt-get install valgrind)"
done
command -v ss >/dev/null || die "ss not found (apt-get install iproute2)"
command -v python3 >/dev/null || die "python3 not found"

# The dumps and raw records of the last run stay here, for a second look.
KEEP=$B/profile
[ "$QUICK" = 1 ] && KEEP=$B/profile-quick
rm -rf "$KEEP"
mkdir -p "$B" "$KEEP" "$(dirname "$OUT")"
build_echoload "$B"
make --no-print-directory -s kodama >&2
KODAMA=$ROOT/kodama
ECHOLOAD=$ROOT/$B/echoload
HZ=$(getconf CLK_TCK)
VGDB_PREFIX=$TMP/vgdb-pipe
# --fair-sched=yes: valgrind's default thread lock is a pipe it reads a byte
# from at every system call, which /proc/PID/io would count with kodama's reads.
VALGRIND=(valgrind --tool=callgrind --fair-sched=yes "--callgrind-out-file=$TMP/cg.%p"
          "--log-file=$TMP/vg.%p.log" "--vgdb-prefix=$VGDB_PREFIX")

# --- results file -------------------------------------------------------------

RES=$TMP/profile.tsv
: >"$RES"

rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -n "$(git status --porcelain -- src 2>/dev/null)" ] && rev+=" (with uncommitted changes in src/)"
rec kind=meta "date=$(date -u '+%Y-%m-%d %H:%M:%S UTC')" "kernel=$(uname -r)" \
    "cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)" "ncpu=$(nproc)" \
    "mhz=$(sed -n 's/^cpu MHz[[:space:]]*: //p' /proc/cpuinfo | head -n1)" \
    "kodama=$rev" "kodama_path=$KODAMA" "valgrind=$(valgrind --version)" "hz=$HZ" \
    "quick=$QUICK" "cg_dur=$CG_DUR" "cg_warm=$CG_WARM" "proc_dur=$PROC_DUR" "proc_warm=$PROC_WARM" \
    "command=bench/profile.sh$([ "$QUICK" = 1 ] && echo ' --quick')"

# --- server ---------------------------------------------------------------------

# start_server SVC PROTO WAIT_SECS [WRAPPER...]: starts kodama (under WRAPPER)
# in a session of its own; sets SRV_PID, SRV_PORT, SRV_LOG.
start_server() {
    local svc=$1 proto=$2 wait=$3 i
    shift 3
    SRV_LOG=$TMP/server.log
    : >"$SRV_LOG"
    setsid "$@" "$KODAMA" serve --io epoll --threads 1 "$svc@127.0.0.1:0/$proto" \
        >"$SRV_LOG" 2>&1 </dev/null &
    SRV_PID=$!
    for i in $(seq $((wait * 20))); do
        grep -q '^kodama: ready' "$SRV_LOG" && break
        kill -0 "$SRV_PID" 2>/dev/null || break
        sleep 0.05
    done
    SRV_PORT=$(sed -n "s/^kodama: listening $svc $proto 127\.0\.0\.1:\([0-9]*\)$/\1/p" "$SRV_LOG" | head -n1)
    if [ -z "$SRV_PORT" ] || ! grep -q '^kodama: ready' "$SRV_LOG"; then
        if kill -0 "$SRV_PID" 2>/dev/null; then
            die "kodama not ready within ${wait} s: $(tr '\n' ' ' <"$SRV_LOG" | cut -c1-300)"
        fi
        die "kodama exited at start: $(tr '\n' ' ' <"$SRV_LOG" | cut -c1-300)"
    fi
}

# proc_stat: "utime=TICKS stime=TICKS rchar=BYTES syscr=N" of the server, all
# threads: fields 14 and 15 of /proc/PID/stat (counted after the command name,
# which may hold spaces), and from /proc/PID/io the bytes and calls of read()
# and readv() (not recv*()). kodama reads TCP with readv, so rchar is exactly
# the bytes it received.
proc_stat() {
    awk '{ sub(/^.*\) /, ""); printf "utime=%s stime=%s ", $12, $13 }' "/proc/$SRV_PID/stat"
    awk '$1 == "rchar:" { r = $2 } $1 == "syscr:" { c = $2 } END { print "rchar=" r " syscr=" c }' \
        "/proc/$SRV_PID/io"
}

delta() { # delta KEY BEFORE AFTER: KEY=difference
    echo "$1=$(( $(kv "$1" "$3") - $(kv "$1" "$2") ))"
}

# settle PROTO: waits until the server holds no connection and no datagram
# (after a client has exited), then a little more for it to finish.
settle() {
    local proto=$1 i busy
    for i in $(seq 200); do
        if [ "$proto" = udp ]; then
            busy=$(ss -Hunl "( sport = :$SRV_PORT )" | awk '$2 != 0' | wc -l)
        else
            busy=$(ss -Htn state established state close-wait state last-ack state syn-recv \
                "( sport = :$SRV_PORT )" | wc -l)
        fi
        [ "$busy" = 0 ] && break
        sleep 0.05
    done
    sleep "$SETTLE"
}

# client SECS ARGS...: one echoload run against the server; CLI_LINE is its output.
client() {
    local secs=$1 rc=0
    shift
    timeout $((secs + 60)) "$ECHOLOAD" "$@" -t 1 -d "$secs" -w 0 127.0.0.1 "$SRV_PORT" \
        >"$TMP/client.out" 2>"$TMP/client.err" &
    CLI_PID=$!
    wait "$CLI_PID" || rc=$?
    CLI_PID=
    CLI_LINE=$(tail -n1 "$TMP/client.out")
    if [ "$rc" != 0 ] || [ -z "$CLI_LINE" ]; then
        die "echoload $* failed (exit $rc): $(tr '\n' ' ' <"$TMP/client.err" | cut -c1-300)"
    fi
}

cgctl() { # cgctl OPTION: callgrind_control OPTION for the server
    local out
    out=$(timeout 60 callgrind_control "--vgdb-prefix=$VGDB_PREFIX" "$1" "$SRV_PID" 2>&1) ||
        die "callgrind_control $1 $SRV_PID failed: $(tr '\n' ' ' <<<"$out" | cut -c1-300)"
    grep -q 'OK' <<<"$out" || die "callgrind_control $1 $SRV_PID: $(tr '\n' ' ' <<<"$out" | cut -c1-300)"
}

# --- the run --------------------------------------------------------------------

case_args() { # case_args CASE -> EL_ARGS, SVC, PROTO
    case "$1" in
        tcp64) EL_ARGS=(-m tcp -c 100 -s 64 -p 16) SVC=echo PROTO=tcp ;;
        udp64) EL_ARGS=(-m udp -c 8 -s 64 -p 16) SVC=echo PROTO=udp ;;
        hello) EL_ARGS=(-m hello -c 50) SVC=hello PROTO=tcp ;;
    esac
}

for cse in tcp64 udp64 hello; do
    case_args "$cse"

    # Under callgrind: a warm-up run (the code paths get translated and the
    # PLT entries bound), then counters zeroed, the measured run, the
    # connections closed, one explicit dump. The window is one whole client run.
    log "$cse: callgrind"
    start_server "$SVC" "$PROTO" 60 "${VALGRIND[@]}"
    client "$CG_WARM" "${EL_ARGS[@]}"
    settle "$PROTO"
    cgctl --zero
    s0=$(proc_stat)   # after the zeroing and before the dump: their commands
    client "$CG_DUR" "${EL_ARGS[@]}"   # come through a pipe valgrind reads
    settle "$PROTO"
    s1=$(proc_stat)
    cgctl --dump
    cg_pid=$SRV_PID
    stop_server
    dumps=("$TMP/cg.$cg_pid".*)
    if [ "${#dumps[@]}" != 1 ] || [ ! -s "${dumps[0]}" ]; then
        die "$cse: expected one callgrind dump, found: ${dumps[*]}"
    fi
    mv "${dumps[0]}" "$KEEP/$cse.cg"
    rec kind=cg "case=$cse" "dump=$KEEP/$cse.cg" "secs=$CG_DUR" \
        "$(delta rchar "$s0" "$s1")" "$(delta syscr "$s0" "$s1")" "${CLI_LINE// /$'\t'}"

    # Without valgrind: the same around one client run, with utime and stime.
    log "$cse: /proc"
    start_server "$SVC" "$PROTO" 5
    if [ "$PROC_WARM" != 0 ]; then
        client "$PROC_WARM" "${EL_ARGS[@]}"
        settle "$PROTO"
    fi
    s0=$(proc_stat)
    client "$PROC_DUR" "${EL_ARGS[@]}"
    settle "$PROTO"
    s1=$(proc_stat)
    stop_server
    rec kind=proc "case=$cse" "secs=$PROC_DUR" "$(delta utime "$s0" "$s1")" "$(delta stime "$s0" "$s1")" \
        "$(delta rchar "$s0" "$s1")" "$(delta syscr "$s0" "$s1")" "${CLI_LINE// /$'\t'}"
done
rec kind=meta "elapsed_s=$SECONDS"

cp "$RES" "$KEEP/profile.tsv"
python3 bench/profile_report.py "$RES" >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
log "wrote $OUT in ${SECONDS}s"
