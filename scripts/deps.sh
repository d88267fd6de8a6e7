#!/bin/sh
# deps.sh - installs what dstmc needs and is missing: Debian packages (as root or via sudo)
# and the npm packages of web/. Quick when everything is there; CI runs it too.
set -eu
cd "$(dirname "$0")/.."

# Build, test and benchmark dependencies, all from Debian 12. (postgresql: the store tests start
# a private server from /usr/lib/postgresql/N/bin, which is not on PATH; they skip without it.
# docker.io, docker-compose, debootstrap: make image and the Compose smoke test, which starts
# dockerd itself: scripts/dockerd.sh.)
PKGS="build-essential cmake pkg-config git clang libclang-rt-14-dev
libmicrohttpd-dev libjansson-dev libcurl4-openssl-dev libsqlite3-dev uuid-dev libcmocka-dev
libhiredis-dev libpq-dev libiperf-dev libexpat1-dev libssl-dev
python3 chromium curl sqlite3 iproute2
iperf3 speedtest-cli redis-server postgresql wrk nginx-light
docker.io docker-compose debootstrap"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing="$missing $p"
    fi
done

# Node.js and npm may come from elsewhere (nodesource's nodejs conflicts with Debian's npm):
# what counts is that the commands are there.
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"

if [ -n "$missing" ]; then
    echo "deps: installing:$missing"
    if [ "$(id -u)" -eq 0 ]; then
        SUDO=""
    elif command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "deps: missing packages and neither root nor sudo:$missing" >&2
        exit 1
    fi
    # Tests start their own Redis, PostgreSQL and nginx on free ports; whatever apt starts
    # on the default ports does not get in their way.
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
    # shellcheck disable=SC2086
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
fi

# npm packages of the web UI (uPlot, Swagger UI, playwright-core), exactly as locked.
stamp=web/node_modules/.dstmc-lock
if [ ! -f "$stamp" ] || ! cmp -s web/package-lock.json "$stamp"; then
    echo "deps: npm ci in web/"
    (cd web && npm ci --no-audit --no-fund --loglevel=error)
    cp web/package-lock.json "$stamp"
fi
