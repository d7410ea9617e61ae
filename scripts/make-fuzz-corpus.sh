#!/usr/bin/env bash
# Regenerates the committed seed corpus Fuzz/Corpus/TARGET of every fuzz target from the
# engine's own encoders (Docs/FUZZING.md). Each harness writes its seeds when run with
# AGGSTORE_FUZZ_WRITE_SEEDS=DIR (see Fuzz/FuzzSupport). Replaces what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

for binary in $(scripts/fuzz.sh all 0); do
    name=$(basename "$binary")
    rm -rf "Fuzz/Corpus/$name"
    mkdir -p "Fuzz/Corpus/$name"
    SWIFT_BACKTRACE=enable=no AGGSTORE_FUZZ_WRITE_SEEDS="Fuzz/Corpus/$name" "$binary"
    echo "Fuzz/Corpus/$name: $(ls "Fuzz/Corpus/$name" | wc -l) seeds, $(cat "Fuzz/Corpus/$name"/* | wc -c) bytes"
done
