#!/usr/bin/env bash
# Builds kinfer and streams text from the demo model that ships with it (models/kjv-q8_0.gguf: a small
# Mistral-architecture model trained on the King James Bible by tools/train/; `infer` uses it when no -m is
# given). Then the whole path on a Mistral-7B-shaped synthetic model: GGUF load, tokenizer, chat template,
# Q4_K_M kernels, sampling, streaming, timings (random weights speak gibberish).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)" --target infer
echo "--- infer -p 'In the beginning' -n 64 --seed 7"
./build/bin/infer -p "In the beginning" -n 64 --seed 7
echo
echo "--- infer -p 'And Jesus said' -n 64 --seed 7"
./build/bin/infer -p "And Jesus said" -n 64 --seed 7
echo
model=build/demo-tiny-q4_k_m.gguf
[ -f "$model" ] || ./build/bin/infer synth --preset tiny --type Q4_K_M --seed 1 --quiet -o "$model"
echo "--- infer -m $model -p 'Tell me a story about a lighthouse.' -n 32 --seed 7   (random weights)"
./build/bin/infer -m "$model" -p "Tell me a story about a lighthouse." -n 32 --seed 7
echo
