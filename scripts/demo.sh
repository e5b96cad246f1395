#!/usr/bin/env bash
# Builds kinfer, writes a small synthetic Mistral-shaped model (seeded random weights, the Mistral v0.3
# vocabulary committed in data/vocab), and generates text from it on the CPU. Random weights speak gibberish; the point
# is the whole path: GGUF load, tokenizer, chat template, Q4_K_M matmuls, sampling, streaming output, timings.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)" --target infer
model=build/demo-tiny-q4_k_m.gguf
[ -f "$model" ] || ./build/bin/infer synth --preset tiny --type Q4_K_M --seed 1 --quiet -o "$model"
./build/bin/infer inspect "$model" --max-items 3 | tail -n 12
echo "--- infer -m $model -p 'Tell me a story about a lighthouse.' -n 48 --seed 7"
./build/bin/infer -m "$model" -p "Tell me a story about a lighthouse." -n 48 --seed 7
echo
