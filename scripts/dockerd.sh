#!/bin/sh
# dockerd.sh - starts and stops a Docker daemon for dstmc's images and Compose files, where no
# systemd does it (CI, a build box). Uses Debian's docker.io (/usr/bin/docker and dockerd: the
# client that matches the daemon) and leaves the host's firewall alone: --iptables=false
# (dockerd otherwise sets the FORWARD policy to DROP, which cuts every other bridge on the
# host, e.g. the test suite's network namespaces) and --ip-forward=false. Containers then
# reach each other on a user-defined bridge and the host reaches them at their addresses;
# nothing reaches out through NAT, which dstmc's deployments do not need. Since no name
# outside a deployment can resolve then, containers ask their DNS once, for a second
# (--dns-opt): a stopped container's name (a replica down) fails in about a second instead of
# the 10-20 s that Docker's embedded DNS otherwise takes to give up on the unreachable upstream.
#   scripts/dockerd.sh start    start one unless one answers; prints "started" or "running"
#   scripts/dockerd.sh stop     stop the one this script started (its pidfile), by its pid
#   scripts/dockerd.sh status   exit 0 when a daemon answers
set -eu
DOCKER=${DOCKER:-/usr/bin/docker}
DOCKERD=${DOCKERD:-/usr/sbin/dockerd}
PIDFILE=${DSTMC_DOCKERD_PIDFILE:-/run/dstmc-dockerd.pid}
LOG=${DSTMC_DOCKERD_LOG:-/var/log/dstmc-dockerd.log}
WAIT_S=${DSTMC_DOCKERD_WAIT_S:-60}

answers() { "$DOCKER" version >/dev/null 2>&1; }

case "${1:-}" in
start)
    if answers; then
        echo running
        exit 0
    fi
    if [ ! -x "$DOCKERD" ]; then
        echo "dockerd.sh: no $DOCKERD (apt-get install docker.io)" >&2
        exit 1
    fi
    if [ "$(id -u)" -ne 0 ]; then
        echo "dockerd.sh: starting dockerd needs root" >&2
        exit 1
    fi
    # setsid: its own session, so a test runner's process group signals do not reach it.
    setsid "$DOCKERD" --iptables=false --ip-forward=false \
        --dns-opt timeout:1 --dns-opt attempts:1 --pidfile "$PIDFILE.dockerd" \
        >>"$LOG" 2>&1 </dev/null &
    echo $! >"$PIDFILE"
    i=0
    while ! answers; do
        i=$((i + 1))
        if [ "$i" -gt $((WAIT_S * 10)) ] || ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
            echo "dockerd.sh: dockerd did not answer within ${WAIT_S}s; tail of $LOG:" >&2
            tail -n 20 "$LOG" >&2 || true
            "$0" stop >/dev/null 2>&1 || true
            exit 1
        fi
        sleep 0.1
    done
    echo started
    ;;
stop)
    [ -f "$PIDFILE" ] || exit 0
    pid=$(cat "$PIDFILE")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        i=0
        while kill -0 "$pid" 2>/dev/null && [ "$i" -lt $((WAIT_S * 10)) ]; do
            i=$((i + 1))
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "dockerd.sh: dockerd $pid still runs after ${WAIT_S}s" >&2
            exit 1
        fi
    fi
    rm -f "$PIDFILE"
    echo stopped
    ;;
status)
    answers
    ;;
*)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
