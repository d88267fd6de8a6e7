#!/bin/sh
# ci-under-load.sh - runs .ci/run on a fresh clone of the committed HEAD while a CPU hog (two
# busy loops) runs beside it, and prints each run's wall time and result.
#   scripts/ci-under-load.sh [--runs N] [--hog-seconds S] [--logs DIR]
# Each busy loop is bounded by `timeout S` (default 3600) and killed by its pid when the run ends.
# A run's clone is removed afterwards; its log stays in DIR (default /tmp/dstmc-ci-under-load).
set -eu

runs=1
hog_s=3600
logs=/tmp/dstmc-ci-under-load

usage() {
    sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'
    exit "$1"
}

while [ $# -gt 0 ]; do
    case "$1" in
    --runs) runs=${2:?--runs needs a number}; shift 2 ;;
    --hog-seconds) hog_s=${2:?--hog-seconds needs a number}; shift 2 ;;
    --logs) logs=${2:?--logs needs a directory}; shift 2 ;;
    -h | --help) usage 0 ;;
    *) echo "ci-under-load: unknown argument '$1'" >&2; usage 2 ;;
    esac
done
case "$runs$hog_s" in
*[!0-9]*) echo "ci-under-load: --runs and --hog-seconds take numbers" >&2; exit 2 ;;
esac
[ "$runs" -ge 1 ] && [ "$runs" -le 20 ] || { echo "ci-under-load: --runs is 1..20" >&2; exit 2; }

src=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
head=$(git -C "$src" rev-parse HEAD)
if [ -n "$(git -C "$src" status --porcelain --untracked-files=no)" ]; then
    echo "ci-under-load: note: uncommitted changes are not part of the run (it tests $head)" >&2
fi
mkdir -p "$logs"
tmp=$(mktemp -d /tmp/dstmc-ci-clone.XXXXXX)
hogs=""
ci=""

stop_hogs() {
    for p in $hogs; do
        kill "$p" 2>/dev/null || true
    done
    for p in $hogs; do
        wait "$p" 2>/dev/null || true
    done
    hogs=""
}

cleanup() {
    if [ -n "$ci" ]; then
        kill -- -"$ci" 2>/dev/null || true # .ci/run and every test it started (its own group)
        wait "$ci" 2>/dev/null || true
    fi
    stop_hogs
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

failed=0
i=1
while [ "$i" -le "$runs" ]; do
    dir="$tmp/run$i"
    log="$logs/run-$(date +%Y%m%d-%H%M%S)-$i.log"
    git clone -q --no-checkout "$src" "$dir"
    git -C "$dir" checkout -q --detach "$head"
    for _ in 1 2; do
        timeout "$hog_s" sh -c 'while :; do :; done' &
        hogs="$hogs $!"
    done
    t0=$(date +%s)
    setsid sh -c 'cd "$1" && exec ./.ci/run' ci-run "$dir" >"$log" 2>&1 &
    ci=$!
    if wait "$ci"; then rc=0; else rc=$?; fi
    ci=""
    t1=$(date +%s)
    stop_hogs
    took=$((t1 - t0))
    if [ "$rc" -eq 0 ]; then
        result=PASS
    else
        result="FAIL (exit $rc)"
        failed=$((failed + 1))
    fi
    printf 'run %d/%d of %s: %s in %dm%02ds with the hog; log %s\n' "$i" "$runs" \
        "$(git -C "$src" rev-parse --short "$head")" "$result" $((took / 60)) $((took % 60)) "$log"
    grep -E '^[0-9]+% tests passed|^Total Test time' "$log" || true
    grep -E '^[[:space:]]+[0-9]+ - .*\((Failed|Timeout|Subprocess|Exception)' "$log" || true
    rm -rf "$dir"
    i=$((i + 1))
done
printf 'ci-under-load: %d of %d runs passed\n' $((runs - failed)) "$runs"
[ "$failed" -eq 0 ]
