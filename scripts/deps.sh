#!/bin/sh
# deps.sh - installs what dstmc needs and is missing: Debian packages (as root or via sudo)
# and the npm packages of web/. Quick when everything is there; CI runs it too.
#   scripts/deps.sh              what `make` and `make run` need: build the binary and run it
#   scripts/deps.sh test         that and what `make test` (and make bench) needs: the servers
#                                and tools the tests start (Redis, PostgreSQL, nginx, Chromium...)
#   scripts/deps.sh --print SET  prints the Debian packages of SET (build, runtime, test) and
#                                installs nothing: runtime is what a binary built here needs to
#                                run on a bare Debian 12 (the image's runtime stage)
set -eu
cd "$(dirname "$0")/.."

# Building the binary (and its unit tests: cmocka), from Debian 12. node and npm fetch the web
# UI's packages that the build embeds (uPlot, Swagger UI).
BUILD_PKGS="build-essential cmake pkg-config git
libmicrohttpd-dev libjansson-dev libcurl4-openssl-dev libsqlite3-dev uuid-dev libcmocka-dev
libhiredis-dev libpq-dev libiperf-dev libexpat1-dev libssl-dev"

# Running a binary built here: the shared libraries it links (ldd build/dstmc), and the CA
# certificates its HTTPS client checks servers with.
RUNTIME_PKGS="libmicrohttpd12 libjansson4 libcurl4 libsqlite3-0 libuuid1 libexpat1
libhiredis0.14 libpq5 libiperf0 libssl3 ca-certificates"

# make test: the fuzz build (clang), the peers and servers the tests start themselves
# (postgresql: from /usr/lib/postgresql/N/bin, which is not on PATH; its tests skip without it),
# the browser of the e2e tests, the tools of the integration tests (systemd: systemd-analyze
# verifies the units; docker.io, docker-compose, debootstrap: make image and the Compose smoke
# test, which starts dockerd itself: scripts/dockerd.sh), and make bench's references (wrk, nginx).
TEST_PKGS="clang libclang-rt-14-dev python3 chromium curl sqlite3 iproute2 systemd
iperf3 speedtest-cli redis-server postgresql wrk nginx-light
docker.io docker-compose debootstrap"

mode="${1:-build}"
case "$mode" in
--print)
    case "${2:-}" in
    build) echo $BUILD_PKGS ;;
    runtime) echo $RUNTIME_PKGS ;;
    test) echo $TEST_PKGS ;;
    *)
        echo "usage: $0 --print build|runtime|test" >&2
        exit 2
        ;;
    esac
    exit 0
    ;;
build) PKGS="$BUILD_PKGS" ;;
test) PKGS="$BUILD_PKGS $TEST_PKGS" ;;
*)
    echo "usage: $0 [build|test|--print SET]" >&2
    exit 2
    ;;
esac

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

# npm packages of web/, exactly as locked: the UI's (uPlot, Swagger UI) for the build; the
# tests' devDependencies (playwright-core, kubernetes-models, yaml) for `test` only. The stamp
# records the lock and the set, so a build after a test install keeps the test packages.
stamp=web/node_modules/.dstmc-lock
if [ "$mode" = test ]; then
    want="test"
else
    want="build"
fi
have=""
if [ -f "$stamp" ] && cmp -s web/package-lock.json "$stamp"; then
    have="$(cat "$stamp.set" 2>/dev/null || echo test)"
fi
if [ -z "$have" ] || { [ "$want" = test ] && [ "$have" != test ]; }; then
    if [ "$want" = test ]; then
        echo "deps: npm ci in web/"
        (cd web && npm ci --no-audit --no-fund --loglevel=error)
    else
        echo "deps: npm ci --omit=dev in web/"
        (cd web && npm ci --omit=dev --no-audit --no-fund --loglevel=error)
    fi
    cp web/package-lock.json "$stamp"
    echo "$want" >"$stamp.set"
fi
