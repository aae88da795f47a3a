# shellcheck shell=bash
# bench/lib.sh — helpers shared by the bench scripts (sourced, from the project
# root). They expect LOG_NAME (the script's name in its log lines) and RES (the
# file of raw records); apt_install also POLICY_RC, which their cleanup removes.

log() { printf '%s: [%3ss] %s\n' "$LOG_NAME" "$SECONDS" "$*" >&2; }

rec() { # rec key=value...: one tab-separated record
    local IFS=$'\t'
    printf '%s\n' "$*" >>"$RES"
}

kv() { # kv KEY LINE: the value of KEY=... in a key=value line
    sed -n "s/.*\(^\|[[:space:]]\)$1=\([^[:space:]]*\).*/\2/p" <<<"$2" | head -n1
}

stop_tree() { # stop_tree SID: SIGTERM to the session, then SIGKILL what is left
    local sid=$1 i pids
    kill -TERM -- "-$sid" 2>/dev/null || true
    for i in $(seq 40); do
        pids=$(python3 bench/proctree.py pids "$sid")
        [ -z "$pids" ] && break
        if [ "$i" -ge 20 ]; then
            kill -KILL -- "-$sid" 2>/dev/null || true
            # shellcheck disable=SC2086
            kill -KILL $pids 2>/dev/null || true
        fi
        sleep 0.05
    done
    wait "$sid" 2>/dev/null || true
}

forget() { # removes pid $2 from the array named $1
    local -n arr=$1
    local kept=() p
    for p in "${arr[@]}"; do [ "$p" = "$2" ] || kept+=("$p"); done
    arr=("${kept[@]}")
}

build() { # build OUT SRC [flags]: compiles when the source (or the peers' header) is newer
    local out=$1 src=$2
    shift 2
    if [ ! -x "$out" ] || [ "$src" -nt "$out" ] || [ bench/peers/peer.h -nt "$out" ]; then
        cc "$@" -o "$out" "$src"
    fi
}

build_echoload() { # build_echoload DIR: the neutral client, from ../shared/tools
    build "$1/echoload" ../shared/tools/echoload.c -O2 -pthread
}

missing_pkgs() {
    local p s
    for p in "$@"; do
        s=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
        case "$s" in ii*|it*|iW*) ;; *) printf '%s ' "$p" ;; esac
    done
}

apt_install() { # apt_install PKG...: those not installed yet; the caller's
    # cleanup removes $POLICY_RC if this is interrupted
    local missing
    missing=$(missing_pkgs "$@")
    [ -z "$missing" ] && return 0
    log "installing $missing"
    # Keep the packages' own services (nginx, xinetd) from starting on install.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        POLICY_RC=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' >"$POLICY_RC"
        chmod +x "$POLICY_RC"
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=300 update -qq
    # shellcheck disable=SC2086
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends $missing >/dev/null
    if [ -n "$POLICY_RC" ]; then rm -f "$POLICY_RC"; POLICY_RC=; fi
}
