#!/usr/bin/env bash
# Dev tool (not run by CI): builds the libFuzzer targets with clang + ASan/UBSan in build-fuzz/ and fuzzes
# the GGUF reader for SECONDS (default 60) on one core. Crashing inputs land in build-fuzz/artifacts/;
# add each one under tests/fixtures/gguf/ (the doctest suite replays every file there).
#   scripts/fuzz.sh [SECONDS] [extra libFuzzer flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true

CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKINFER_FUZZ=ON \
  -DKINFER_SANITIZE=ON -DKINFER_CUDA=OFF -DKINFER_BUILD_TESTS=OFF -DKINFER_BUILD_BENCH=OFF >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target gguf_reader_fuzz safetensors_reader_fuzz make_gguf_seeds

seeds=build-fuzz/seeds
corpus=build-fuzz/corpus
mkdir -p "$seeds" "$corpus" build-fuzz/artifacts
vocab=data/vocab/ggml-vocab-llama-spm.gguf
if [[ -f $vocab ]]; then
  build-fuzz/bin/make_gguf_seeds "$seeds" "$vocab" >/dev/null
else
  build-fuzz/bin/make_gguf_seeds "$seeds" >/dev/null
fi
# Earlier crashes are seeds too: a fix must keep them parsing cleanly.
cp tests/fixtures/gguf/*.bin "$seeds"/ 2>/dev/null || true

ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  build-fuzz/bin/gguf_reader_fuzz "$corpus" "$seeds" -dict=fuzz/gguf.dict -max_total_time="$seconds" \
  -rss_limit_mb=2048 -max_len=8192 -timeout=10 -print_final_stats=1 \
  -artifact_prefix=build-fuzz/artifacts/ "$@"
