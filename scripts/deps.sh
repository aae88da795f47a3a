#!/bin/sh
# deps.sh — install the Debian packages kodama needs to build and test, if any are
# missing. Prints nothing when everything is already there.
set -eu

PACKAGES="gcc make libc6-dev clang pkg-config libcmocka-dev python3 python3-pytest
netcat-openbsd socat ruby man-db groff-base procps"

missing=""
for p in $PACKAGES; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$status" in
        *"install ok installed"*) ;;
        *) missing="$missing $p" ;;
    esac
done
[ -z "$missing" ] && exit 0

echo "deps: installing$missing" >&2
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=sudo
    else
        echo "deps: missing$missing; run this script as root to install them" >&2
        exit 1
    fi
else
    SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
