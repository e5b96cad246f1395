#!/usr/bin/env bash
# Builds kinfer and shows it working on the shared vocabulary file.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DKINFER_BUILD_TESTS=OFF
cmake --build build -j"$(nproc)" --target infer
./build/bin/infer inspect ../shared/vocab/mistral-v0.3-vocab.gguf --max-items 5
