#!/usr/bin/env bash
# Builds kinfer twice and runs the whole test suite in each: a normal Release build (with the CUDA code
# compiled where nvcc exists), then an ASan+UBSan build. Build trees: build/ and build-asan/.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure

cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKINFER_SANITIZE=ON -DKINFER_CUDA=OFF \
  -DKINFER_BUILD_BENCH=OFF
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --test-dir build-asan --output-on-failure
