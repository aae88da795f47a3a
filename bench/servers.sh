# shellcheck shell=bash
# bench/servers.sh — starting and stopping the servers bench/compare.sh measures,
# kodama's variants and the peers, each on loopback in a session of its own and,
# where the machine lets us, in a cpuacct cgroup of its own (cg_usage). Sourced by
# compare.sh after it has set TMP, ROOT, B, KODAMA, BASELINE, KVARIANTS, INETD,
# NOFILE and the SERVERS array.

NEXT_PORT=$((20000 + RANDOM % 8000))
free_port() { # sets port: one below the ephemeral range, free for tcp and udp
    while :; do
        port=$NEXT_PORT
        NEXT_PORT=$((NEXT_PORT + 1))
        [ "$NEXT_PORT" -ge 32000 ] && NEXT_PORT=20000
        [ -z "$(ss -Htuan "( sport = :$port )" 2>/dev/null)" ] && return
    done
}

# Each server's CPU is read from a cgroup of its own: forked children count (even
# those already gone, which /proc no longer shows), nothing else on the machine
# does. cgroup v1's cpuacct.usage (ns) here, v2's cpu.stat usage_usec elsewhere;
# without either (not root, or no controller) CG_ROOT stays empty and the
# figures come from /proc (bench/proctree.py).
CG_ROOT= CG_KIND=
if [ -w /sys/fs/cgroup/cpuacct ] && [ -e /sys/fs/cgroup/cpuacct/cpuacct.usage ]; then
    CG_ROOT=/sys/fs/cgroup/cpuacct CG_KIND=v1
elif [ -e /sys/fs/cgroup/cgroup.controllers ] && [ -w /sys/fs/cgroup ]; then
    CG_ROOT=/sys/fs/cgroup CG_KIND=v2
fi
SRV_CG=     # the cgroup of the server started last, while it runs

cg_new() { # cg_new: sets SRV_CG to a new, empty cgroup (or leaves it empty)
    SRV_CG=
    [ -n "$CG_ROOT" ] || return 0
    local d=$CG_ROOT/kodama-compare.$$.$NSRV
    mkdir "$d" 2>/dev/null && SRV_CG=$d
    return 0
}

cg_usage() { # cg_usage CGROUP: the CPU its processes used so far, in ns
    if [ "$CG_KIND" = v1 ]; then
        cat "$1/cpuacct.usage"
    else
        awk '$1 == "usage_usec" { printf "%.0f\n", $2 * 1000 }' "$1/cpu.stat"
    fi
}

cg_remove() { # cg_remove CGROUP: once its processes are gone
    local i
    for i in $(seq 40); do
        rmdir "$1" 2>/dev/null && return 0
        sleep 0.05
    done
    log "could not remove the cgroup $1"
}

# launch LOG CMD...: starts CMD as its own session, in the cgroup SRV_CG if there
# is one (it moves itself there before exec, so everything it forks follows);
# SRV_PID is its pid.
launch() {
    local logf=$1
    shift
    cg_new
    # shellcheck disable=SC2016
    setsid sh -c 'if [ -n "$1" ]; then echo $$ >"$1/cgroup.procs" || exit 126; fi; shift; exec "$@"' \
        sh "$SRV_CG" "$@" >"$logf" 2>&1 </dev/null &
    SRV_PID=$!
    LAUNCH_CMD="$*"
    disown "$SRV_PID" # bash still reaps it, without a "Killed" line
    SERVERS+=("$SRV_PID")
}

wait_port() { # wait_port tcp|udp HOST PORT: until something listens there
    local i flag=-Hltn
    [ "$1" = udp ] && flag=-Hlun
    for i in $(seq 100); do
        kill -0 "$SRV_PID" 2>/dev/null || return 1
        [ -n "$(ss "$flag" "( sport = :$3 )")" ] && return 0
        sleep 0.05
    done
    return 1
}

# check SERVICE PROTO: does the server at SRV_HOST SRV_PORT answer correctly?
check_server() {
    local got want=kodama-compare-check
    case "$1/$2" in
        echo/tcp) got=$("$KODAMA" send -w 3 "$SRV_HOST" "$SRV_PORT" "$want" 2>&1) ;;
        echo/udp) got=$("$KODAMA" send -u -w 3 "$SRV_HOST" "$SRV_PORT" "$want" 2>&1) ;;
        hello/tcp)
            # shellcheck disable=SC2016
            got=$(timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2" && cat <&3' _ "$SRV_HOST" "$SRV_PORT" 2>&1 | head -c 200)
            if [ -n "$got" ]; then return 0; fi
            SRV_ERR="no greeting"
            return 1 ;;
    esac
    [ "$got" = "$want" ] && return 0
    SRV_ERR="wrong echo: ${got//$'\n'/ }"
    return 1
}

NSRV=0
# start_server NAME SERVICE PROTO: starts server NAME (a kodama variant label
# or a peer name) for SERVICE (echo|hello) over PROTO (tcp|udp) on loopback.
# Sets SRV_PID, SRV_HOST, SRV_PORT, SRV_CMD; on failure SRV_ERR and status 1.
start_server() {
    local name=$1 svc=$2 proto=$3 d port opts line
    NSRV=$((NSRV + 1))
    d=$TMP/srv.$NSRV
    mkdir -p "$d"
    : >"$d/log"
    SRV_HOST=127.0.0.1 SRV_ERR='' SRV_PID='' SRV_PORT=''
    case "$name" in
    kodama*|baseline*)
        local bin=$KODAMA
        [ "${name%% *}" = baseline ] && bin=$BASELINE
        opts=
        for line in "${KVARIANTS[@]}"; do [ "${line%%|*}" = "$name" ] && opts=${line#*|}; done
        # shellcheck disable=SC2086
        launch "$d/log" "$bin" serve $opts "$svc@127.0.0.1:0/$proto"
        SRV_CMD="${name%% *} serve$opts $svc@127.0.0.1:0/$proto"
        for _ in $(seq 100); do
            grep -q '^kodama: ready' "$d/log" && break
            kill -0 "$SRV_PID" 2>/dev/null || break
            sleep 0.05
        done
        SRV_PORT=$(sed -n "s/^kodama: listening $svc $proto 127\.0\.0\.1:\([0-9]*\)$/\1/p" "$d/log" | head -n1)
        if [ -z "$SRV_PORT" ]; then
            SRV_ERR="did not start: $(tr '\n' ' ' <"$d/log" | cut -c1-200)"
            return 1
        fi
        ;;
    fork_echo*|udp_echo*|fork_hello*)
        local prog=${name%% *}
        launch "$d/log" "$ROOT/$B/$prog" 127.0.0.1 0
        SRV_CMD="build/bench/$prog 127.0.0.1 0"
        for _ in $(seq 100); do
            grep -q '^listening' "$d/log" && break
            kill -0 "$SRV_PID" 2>/dev/null || break
            sleep 0.05
        done
        SRV_PORT=$(sed -n 's/^listening .*:\([0-9]*\)$/\1/p' "$d/log")
        if [ -z "$SRV_PORT" ]; then
            SRV_ERR="did not start: $(tr '\n' ' ' <"$d/log" | cut -c1-200)"
            return 1
        fi
        ;;
    socat)
        free_port
        case "$svc/$proto" in
            echo/tcp) launch "$d/log" socat "TCP4-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork,backlog=4096" PIPE ;;
            echo/udp) launch "$d/log" socat "UDP4-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork" PIPE ;;
            hello/tcp)
                printf 'Hello from server!\n' >"$d/greeting"
                launch "$d/log" socat -U "TCP4-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork,backlog=4096" "OPEN:$d/greeting" ;;
        esac
        SRV_CMD=${LAUNCH_CMD//$d\//\$TMP/}
        SRV_PORT=$port
        ;;
    xinetd)
        free_port
        local sname=$svc stype=stream wait=no
        [ "$svc" = hello ] && sname=daytime
        [ "$proto" = udp ] && { stype=dgram; wait=yes; }
        cat >"$d/xinetd.conf" <<EOF
defaults
{
	instances	= UNLIMITED
	per_source	= UNLIMITED
	cps		= 1000000 1
	log_type	= FILE $d/xinetd.log
	log_on_success	=
	log_on_failure	=
}
service $sname
{
	type		= INTERNAL UNLISTED
	id		= $sname-$stype
	socket_type	= $stype
	protocol	= $proto
	port		= $port
	bind		= 127.0.0.1
	wait		= $wait
	user		= root
}
EOF
        launch "$d/log" xinetd -dontfork -stayalive -f "$d/xinetd.conf"
        SRV_CMD="xinetd -dontfork -stayalive -f xinetd.conf  # built-in $sname $stype, instances/per_source UNLIMITED, cps 1000000 1"
        SRV_PORT=$port
        ;;
    openbsd-inetd)
        # Built-in services are found by their /etc/services name, so the
        # port comes from /etc/services: give inetd its own copy in a private
        # mount namespace, mapping echo/daytime to a free port.
        free_port
        local sname=$svc stype=stream wait=nowait.1000000000 p=tcp host=127.0.0.1
        [ "$svc" = hello ] && sname=daytime
        if [ "$proto" = udp ]; then
            # inetd drops datagrams from 127.0.0.0/8 (its anti-loop check), so UDP goes over ::1.
            stype=dgram wait=wait p=udp6 host=::1 SRV_HOST=::1
        fi
        printf '%s %s/tcp\n%s %s/udp\n' "$sname" "$port" "$sname" "$port" >"$d/services"
        printf '%s:%s %s %s %s root internal\n' "$([ "$host" = ::1 ] && echo '[::1]' || echo "$host")" \
            "$sname" "$stype" "$p" "$wait" >"$d/inetd.conf"
        if unshare -m true 2>/dev/null; then
            # shellcheck disable=SC2016
            launch "$d/log" unshare -m sh -c 'mount --bind "$1" /etc/services && exec "$2" -i -q 4096 -R 1000000000 "$3"' \
                sh "$d/services" "$INETD" "$d/inetd.conf"
        else
            SRV_ERR="needs unshare -m to give inetd a port of its own"
            return 1
        fi
        SRV_CMD="inetd -i -q 4096 -R 1000000000 inetd.conf  # $(cat "$d/inetd.conf"), /etc/services bind-mounted: $sname $port"
        SRV_PORT=$port
        ;;
    ncat)
        free_port
        case "$svc/$proto" in
            echo/tcp) launch "$d/log" ncat -l -k -m 100000 127.0.0.1 "$port" -e /bin/cat ;;
            echo/udp) launch "$d/log" ncat -u -l -k 127.0.0.1 "$port" -e /bin/cat ;;
            hello/tcp) launch "$d/log" ncat -l -k -m 100000 127.0.0.1 "$port" -e "/bin/echo Hello from server!" ;;
        esac
        SRV_CMD=$LAUNCH_CMD
        SRV_PORT=$port
        ;;
    nginx)
        free_port
        cat >"$d/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
daemon off;
worker_processes auto;
pid $d/nginx.pid;
error_log $d/error.log;
events { worker_connections $((NOFILE / 2)); }
stream {
	server {
		listen 127.0.0.1:$port backlog=4096;
		return "Hello from server!\n";
	}
}
EOF
        launch "$d/log" nginx -p "$d" -e "$d/error.log" -c "$d/nginx.conf"
        SRV_CMD="nginx -c nginx.conf  # stream { server { listen 127.0.0.1:PORT backlog=4096; return \"Hello from server!\\n\"; } }, worker_processes auto"
        SRV_PORT=$port
        ;;
    *) SRV_ERR="unknown server $name"; return 1 ;;
    esac
    if ! wait_port "$proto" "$SRV_HOST" "$SRV_PORT"; then
        SRV_ERR="did not listen on $SRV_HOST:$SRV_PORT: $(cat "$d"/*.log "$d/log" 2>/dev/null | tr '\n' ' ' | cut -c1-200)"
        return 1
    fi
    sleep 0.1 # let multi-process servers start their workers
    check_server "$svc" "$proto" || return 1
    return 0
}

stop_server() {
    [ -n "$SRV_PID" ] || return 0
    stop_tree "$SRV_PID"
    forget SERVERS "$SRV_PID"
    SRV_PID=
    if [ -n "$SRV_CG" ]; then
        cg_remove "$SRV_CG"
        SRV_CG=
    fi
}
