#!/usr/bin/env bash
# Fuzzes the file readers with libFuzzer (issue 20): FuzzMetaData (XMIPP_STAR_1 / RELION STAR / sel / doc),
# FuzzMRC, FuzzSpider and FuzzHDF5 (the --restart reader).
#
#   Fuzz/run.sh [SECONDS] [TARGET ...]     e.g. Fuzz/run.sh 10            (the short run of `make test`)
#                                               Fuzz/run.sh 3600 MRC      (a long run of one target)
#   FUZZ_MERGE=1 Fuzz/run.sh 600           also merges the inputs that reach new code into Fuzz/Corpus/
#   FUZZ_RUNS=1000000 Fuzz/run.sh 7200     stops each target after 10^6 executions (SECONDS stays the cap)
#
# Each target starts from its corpus in Fuzz/Corpus/<TARGET> (kept in the repository; new inputs go to a
# scratch directory unless FUZZ_MERGE=1). Any crash, timeout (-timeout, 5 s per input), or allocation
# above -malloc_limit_mb (256 MiB: a header claiming 10^9 voxels must be refused before allocating)
# fails the run; the input that did it is saved as Fuzz/findings/<kind>-<hash>.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(MetaData MRC Spider HDF5)
SWIFT=${SWIFT:-swift}
mkdir -p Fuzz/findings
for t in "${targets[@]}"; do
    # The fuzz targets exist only with ML_TOMO_FUZZ set (Package.swift); their own scratch path keeps the
    # instrumented objects away from the release build.
    ML_TOMO_FUZZ=1 $SWIFT build -c release --scratch-path .build-fuzz --sanitize=fuzzer --product "Fuzz$t" >/dev/null
done
for t in "${targets[@]}"; do
    scratch=$(mktemp -d)
    echo "fuzz: Fuzz$t for ${seconds} s"
    status=0
    runs=()
    [ -z "${FUZZ_RUNS:-}" ] || runs=(-runs="$FUZZ_RUNS")
    start=$(date +%s)
    .build-fuzz/release/"Fuzz$t" "${runs[@]}" -max_total_time="$seconds" -timeout=5 -malloc_limit_mb=256 -rss_limit_mb=2048 \
        -max_len=65536 -print_final_stats=1 -artifact_prefix=Fuzz/findings/ "$scratch" "Fuzz/Corpus/$t" \
        > "$scratch.log" 2>&1 || status=$?
    grep -E "(DONE|stat::number_of_executed_units|stat::peak_rss_mb)" "$scratch.log" | sed "s/^/  /" || true
    echo "  wall time: $(( $(date +%s) - start )) s"
    if [ "$status" -ne 0 ]; then
        tail -40 "$scratch.log"
        echo "fuzz: Fuzz$t FAILED (status $status); the input is in Fuzz/findings/" >&2
        rm -rf "$scratch" "$scratch.log"
        exit 1
    fi
    if [ "${FUZZ_MERGE:-0}" = 1 ]; then
        .build-fuzz/release/"Fuzz$t" -merge=1 "Fuzz/Corpus/$t" "$scratch" > /dev/null 2>&1
    fi
    rm -rf "$scratch" "$scratch.log"
done
