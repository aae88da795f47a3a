#!/bin/sh
# deps.sh — install the Debian packages kodama needs to build and test, if any are
# missing. Prints nothing when everything is already there.
set -eu

PACKAGES="gcc make libc6-dev clang pkg-config libcmocka-dev liburing-dev python3 python3-pytest
netcat-openbsd socat ruby man-db groff-base procps iproute2 strace libclang-rt-14-dev valgrind
systemd xinetd haproxy python3-yaml prometheus clang-tools binutils
libssl-dev openssl"

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
# Packages with a daemon (xinetd) would start it on install where there is no systemd
# init (invoke-rc.d runs its init script): the tests run their own, in the foreground.
# A policy-rc.d that says "no" (101) for the time of the install prevents that; one
# already there (bench/compare.sh puts the same in place) is left alone.
POLICY_RC=/usr/sbin/policy-rc.d
OWN_POLICY=
if [ ! -e "$POLICY_RC" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY_RC" >/dev/null
    $SUDO chmod 755 "$POLICY_RC"
    OWN_POLICY=1
fi
trap '[ -z "$OWN_POLICY" ] || $SUDO rm -f "$POLICY_RC"' EXIT
# shellcheck disable=SC2086
$SUDO apt-get $LOCK_WAIT update -qq
# Packages such as prometheus start their daemon on installation; the tests run
# their own on a free loopback port, and a daemon left running here would only be in
# the way. A policy-rc.d that says 101 ("action forbidden") stops invoke-rc.d from
# starting anything; one that was already there (Docker images have one) stays.
POLICY=/usr/sbin/policy-rc.d
if [ ! -e "$POLICY" ]; then
    # shellcheck disable=SC2016
    $SUDO sh -c 'printf "#!/bin/sh\n# kodama deps.sh: no daemon starts during its install\nexit 101\n" >"$1" && chmod 755 "$1"' sh "$POLICY"
    trap '$SUDO rm -f "$POLICY"' EXIT
fi
# shellcheck disable=SC2086
$SUDO apt-get $LOCK_WAIT install -y -qq --no-install-recommends $missing >/dev/null
