#!/usr/bin/env bash
# fuzz.sh - runs the libFuzzer targets of a fuzz build (cmake -DDSTMC_FUZZ=ON, CC=clang)
#   fuzz.sh short BUILD [NAME...]  each target briefly and deterministically (-seed=1,
#                                  FUZZ_SHORT_RUNS runs, at most FUZZ_SHORT_TIME s): ctest
#   fuzz.sh long BUILD [NAME...]   each target for FUZZ_TIME s (600) or FUZZ_RUNS runs,
#                                  FUZZ_JOBS (2) targets at a time, nice; new inputs and
#                                  findings go to FUZZ_OUT/<name>/ (BUILD/fuzz-out), never to
#                                  the tree. FUZZ_KEEP_GOING=1: past a finding (libFuzzer's
#                                  -fork=1 -ignore_crashes=1), to count them all
#   fuzz.sh merge BUILD [NAME...]  adds what a long run found that adds coverage to the seed
#                                  corpora tests/fuzz/corpus/<name>/ (libFuzzer's -merge=1)
# Per target it prints one line: executions, exec/s, seconds, crashes, leaks, timeouts, and
# where the findings are; `long` ends with a Markdown table for docs/benchmarks.md.
# Exits 1 if any target found something (or did not run).
set -u

here=$(cd "$(dirname "$0")" && pwd)
mode=${1:-}
build=${2:-}
[ -n "$mode" ] && [ -n "$build" ] || { sed -n '2,16p' "$0" >&2; exit 2; }
shift 2
build=$(cd "$build" && pwd) || exit 2
out=${FUZZ_OUT:-$build/fuzz-out}

names=("$@")
if [ ${#names[@]} -eq 0 ]; then
    for f in "$here"/fuzz_*.c; do
        n=$(basename "$f" .c)
        names+=("${n#fuzz_}")
    done
fi

# Every UBSan report is a finding (the build does not recover from one).
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1"

# The libFuzzer flags every run of target $1 takes.
flags() {
    local d="$here/dict/$1.dict"
    echo "-close_fd_mask=3 -print_final_stats=1 -timeout=10 -rss_limit_mb=2048"
    [ -f "$d" ] && echo "-dict=$d"
}

# Reads a finished run's log $2 of target $1 (dir $3, seconds $4): prints its line, sets found.
report() {
    local name=$1 log=$2 dir=$3 secs=$4
    local execs rate crashes leaks timeouts ooms
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    if [ -z "$execs" ]; then # -fork: the last status line "#N ... exec/s: R ..."
        execs=$(sed -n 's/^#\([0-9]*\):.*/\1/p' "$log" | tail -1)
        rate=$(( ${execs:-0} / (secs > 0 ? secs : 1) ))
    fi
    crashes=$(find "$dir" -maxdepth 1 -name 'crash-*' | wc -l)
    leaks=$(find "$dir" -maxdepth 1 -name 'leak-*' | wc -l)
    timeouts=$(find "$dir" -maxdepth 1 -name 'timeout-*' | wc -l)
    ooms=$(find "$dir" -maxdepth 1 -name 'oom-*' | wc -l)
    printf 'fuzz: %-16s executions %s, %s exec/s, %s s; crashes %s, leaks %s, timeouts %s, ooms %s%s\n' \
        "$name" "${execs:-0}" "${rate:-0}" "$secs" "$crashes" "$leaks" "$timeouts" "$ooms" \
        "$( [ $((crashes + leaks + timeouts + ooms)) -gt 0 ] && echo " (see $dir, $log)")"
    echo "| $name | ${execs:-0} | $secs s | ${rate:-0} | $crashes / $leaks / $((timeouts + ooms)) |" >> "$out/summary.md"
    [ -n "$execs" ] && [ $((crashes + leaks + timeouts + ooms)) -eq 0 ]
}

# Runs target $1 with libFuzzer flags $2 into dir $3; returns non-zero on a finding.
run() {
    local name=$1 extra=$2 dir=$3 bin="$build/fuzz_$1" t0 rc
    local log="$dir.log"
    [ -x "$bin" ] || { echo "fuzz: $name: no $bin (build the fuzzers target)"; return 1; }
    rm -rf "$dir" "$log"
    mkdir -p "$dir/new"
    t0=$(date +%s)
    # shellcheck disable=SC2046,SC2086
    (cd "$dir" && $nice "$bin" $(flags "$name") $extra -artifact_prefix="$dir/" \
        "$dir/new" "$here/corpus/$name") > "$log" 2>&1
    rc=$?
    report "$name" "$log" "$dir" $(( $(date +%s) - t0 )) || rc=1
    return $rc
}

status=0
nice=""
[ "$mode" = long ] && nice="nice -n 10"
mkdir -p "$out"
case $mode in
short)
    for name in "${names[@]}"; do
        run "$name" "-seed=1 -runs=${FUZZ_SHORT_RUNS:-30000} -max_total_time=${FUZZ_SHORT_TIME:-20}" \
            "$out/short/$name" || { status=1; tail -40 "$out/short/$name.log"; }
    done
    ;;
long)
    limit="-max_total_time=${FUZZ_TIME:-600}"
    [ -n "${FUZZ_RUNS:-}" ] && limit="-runs=$FUZZ_RUNS"
    [ "${FUZZ_KEEP_GOING:-0}" = 1 ] &&
        limit="$limit -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1"
    echo "| target | executions | time | exec/s | crashes / leaks / timeouts |" > "$out/summary.md"
    echo "|---|---|---|---|---|" >> "$out/summary.md"
    running=0
    for name in "${names[@]}"; do
        if [ $running -ge "${FUZZ_JOBS:-2}" ]; then
            wait -n || status=1
            running=$((running - 1))
        fi
        run "$name" "$limit" "$out/long/$name" &
        running=$((running + 1))
    done
    while [ $running -gt 0 ]; do
        wait -n || status=1
        running=$((running - 1))
    done
    echo
    cat "$out/summary.md"
    ;;
merge)
    # Only inputs of at most FUZZ_MERGE_MAX bytes (1024; 2048 for XML), so the corpora stay small.
    for name in "${names[@]}"; do
        new="$out/long/$name/new"
        [ -d "$new" ] || { echo "fuzz: $name: nothing to merge (run fuzz.sh long first)"; continue; }
        max=${FUZZ_MERGE_MAX:-1024}
        [ "$name" = speedtest_xml ] && max=${FUZZ_MERGE_MAX:-2048}
        small="$out/merge-$name"
        rm -rf "$small" && mkdir -p "$small"
        find "$new" -type f -size -$((max + 1))c -exec cp {} "$small" \;
        before=$(ls "$here/corpus/$name" | wc -l)
        # shellcheck disable=SC2046
        "$build/fuzz_$name" -merge=1 $(flags "$name") "$here/corpus/$name" "$small" \
            > "$out/merge-$name.log" 2>&1 || status=1
        echo "fuzz: $name: $before -> $(ls "$here/corpus/$name" | wc -l) seeds"
    done
    du -sb --apparent-size "$here/corpus" | sed 's/^/fuzz: corpora: bytes /'
    ;;
*)
    sed -n '2,16p' "$0" >&2
    exit 2
    ;;
esac
exit $status
