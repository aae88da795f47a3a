# shellcheck shell=bash
# bench/lib.sh — helpers shared by bench/compare.sh and bench/profile.sh (sourced,
# from the project root). They expect LOG_NAME (the script's name in its log lines)
# and RES (the file of raw records).

log() { printf '%s: [%3ss] %s\n' "$LOG_NAME" "$SECONDS" "$*" >&2; }

rec() { # rec key=value...: one tab-separated record
    local IFS=$'\t'
    printf '%s\n' "$*" >>"$RES"
}

kv() { # kv KEY LINE: the value of KEY=... in a key=value line
    sed -n "s/.*\(^\|[[:space:]]\)$1=\([^[:space:]]*\).*/\2/p" <<<"$2" | head -n1
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
