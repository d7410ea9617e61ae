#!/usr/bin/env bash
# Builds the libFuzzer targets in Fuzz/ and runs each for a given time (Docs/FUZZING.md).
#
#   scripts/fuzz.sh [TARGET|all] [SECONDS] [libFuzzer flags...]
#
# TARGET is FuzzFrame, FuzzPayload, FuzzManifest or FuzzRecovery (default: all, one after the
# other); SECONDS is the time per target (default 60; 0 only builds, and prints the paths of the
# binaries on standard output). Extra arguments go to
# libFuzzer, e.g. `-max_len=16384` or `-only_ascii=1`.
#
# The committed seeds in Fuzz/Corpus/TARGET are read, never written: new corpus entries go to a
# fresh scratch directory, as do crash, timeout and OOM inputs and the log of each run. Its path
# is printed; set AGGSTORE_FUZZ_OUT to choose it. Exits non-zero if a target finds a crash, a
# hang (10 s for one input) or an out-of-memory (one allocation over 200 MB, or 2 GB in all).
#
# Environment:
#   AGGSTORE_FUZZ_OUT      where runs write (default: a new /tmp/aggstore-fuzz.XXXXXX)
#   AGGSTORE_FUZZ_SCRATCH  SwiftPM scratch path (default: .build-fuzz)
#   AGGSTORE_FUZZ_CONFIG   debug (default) or release: release runs several times as many inputs
#                          a second, debug keeps the engine's debug-only checks and line numbers
set -euo pipefail
cd "$(dirname "$0")/.."

all_targets=(FuzzFrame FuzzPayload FuzzManifest FuzzRecovery)
target=${1:-all}
seconds=${2:-60}
shift $(($# < 2 ? $# : 2))
extra_flags=("$@")

case "$target" in
    all) targets=("${all_targets[@]}") ;;
    FuzzFrame|FuzzPayload|FuzzManifest|FuzzRecovery) targets=("$target") ;;
    *) echo "usage: scripts/fuzz.sh [FuzzFrame|FuzzPayload|FuzzManifest|FuzzRecovery|all] [SECONDS] [libFuzzer flags...]" >&2
       exit 2 ;;
esac
if ! [[ "$seconds" =~ ^[0-9]+$ ]]; then
    echo "error: SECONDS must be a whole number, not '$seconds'" >&2
    exit 2
fi

scratch=${AGGSTORE_FUZZ_SCRATCH:-.build-fuzz}
config=${AGGSTORE_FUZZ_CONFIG:-debug}
# SwiftPM's --sanitize=fuzzer links libFuzzer (whose `main` runs the harness) but instruments
# no Swift code, so the Swift modules also get -sanitize=fuzzer,address; the C targets
# (CCRC32C) get -fsanitize=fuzzer,address from --sanitize. lld avoids gold's warnings about
# ASan's local symbols. Package.swift adds the Fuzz targets only when AGGSTORE_FUZZ is set.
build_flags=(
    --scratch-path "$scratch" -c "$config"
    --sanitize=fuzzer --sanitize=address
    -Xswiftc -sanitize=fuzzer,address
    -Xswiftc -use-ld=lld
)
export AGGSTORE_FUZZ=1
for name in "${targets[@]}"; do
    echo "== building $name ($config)" >&2
    swift build "${build_flags[@]}" --product "$name" >&2
done
bin=$(swift build "${build_flags[@]}" --show-bin-path)
if [ "$seconds" -eq 0 ]; then
    for name in "${targets[@]}"; do echo "$bin/$name"; done
    exit 0
fi

out=${AGGSTORE_FUZZ_OUT:-$(mktemp -d /tmp/aggstore-fuzz.XXXXXX)}
mkdir -p "$out"
# Swift's own crash backtracer would hold a crashing process for up to 30 s; libFuzzer and
# ASan report the crash and save the input instead.
export SWIFT_BACKTRACE=enable=no
failed=()
for name in "${targets[@]}"; do
    corpus="$out/$name/corpus"
    artifacts="$out/$name/artifacts"
    log="$out/$name.log"
    mkdir -p "$corpus" "$artifacts"
    echo "== fuzzing $name for ${seconds}s (seeds: Fuzz/Corpus/$name, log: $log)"
    status=0
    "$bin/$name" "$corpus" "Fuzz/Corpus/$name" \
        -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=200 -timeout=10 \
        -artifact_prefix="$artifacts/" -print_final_stats=1 ${extra_flags[@]+"${extra_flags[@]}"} \
        >"$log" 2>&1 || status=$?
    # The last status line (cov: edges, ft: features, corp: corpus) and the run's statistics.
    summary=$(grep -E '^#[0-9]+.* cov: ' "$log" | tail -n 1 | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [^ ]+' || true)
    runs=$(sed -n 's/^stat::number_of_executed_units:[[:space:]]*//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec:[[:space:]]*//p' "$log")
    echo "   $name: ${runs:-?} runs, ${rate:-?} exec/s; $summary"
    if [ "$status" -ne 0 ]; then
        failed+=("$name")
        echo "!! $name failed (libFuzzer exit status $status); last lines of $log:" >&2
        grep -E 'ERROR|SUMMARY|Fatal error|fuzz invariant|^    #[0-9]+ ' "$log" | head -n 40 >&2 || tail -n 40 "$log" >&2
        for input in "$artifacts"/*; do
            [ -e "$input" ] || continue
            echo "!! input: $input" >&2
            echo "!! replay: SWIFT_BACKTRACE=enable=no $bin/$name $input" >&2
        done
    fi
done
echo "== scratch corpus, logs and any crash inputs: $out"
if [ "${#failed[@]}" -ne 0 ]; then
    echo "!! failed: ${failed[*]}" >&2
    exit 1
fi
