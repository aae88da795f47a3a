#!/bin/sh
# deps.sh — install the Debian packages kodama needs to build and test, if any are
# missing. Prints nothing when everything is already there.
set -eu

PACKAGES="gcc make libc6-dev clang pkg-config libcmocka-dev liburing-dev python3 python3-pytest
netcat-openbsd socat ruby man-db groff-base procps iproute2 strace libclang-rt-14-dev valgrind
haproxy python3-yaml"

missing=""
for p in $PACKAGES; do
    # Installed, or installed with a trigger still to run (as during another install).
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
    case "$status" in
        ii*|it*|iW*) ;;
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
# Another apt run (unattended upgrades, a second shell) holds the lock for a while.
LOCK_WAIT="-o DPkg::Lock::Timeout=300"
# shellcheck disable=SC2086
$SUDO apt-get $LOCK_WAIT update -qq
# shellcheck disable=SC2086
$SUDO apt-get $LOCK_WAIT install -y -qq --no-install-recommends $missing >/dev/null
