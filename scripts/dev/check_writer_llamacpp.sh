#!/usr/bin/env bash
# Dev check (never run by the build or CI): files written by kinfer's GgufWriter load in llama.cpp.
#  1. Copies all metadata of ../shared/vocab/mistral-v0.3-vocab.gguf with GgufWriter::add_value (once as is,
#     once in reverse key order with alignment 64), loads the original and the copies with node-llama-cpp
#     (vocabOnly) and requires identical tokenization.
#  2. Writes a file with an F32 tensor (values 100 + i) and a Q8_0 tensor and reads it with llama.cpp's
#     llama-gguf (`r n`): the tensor table must match kinfer's and the F32 values must come back.
# Needs: build/libkinfer_internal.a (cmake --build build), node-llama-cpp in /tmp/llref,
# /tmp/llama.cpp/build/bin/llama-gguf. Usage: scripts/dev/check_writer_llamacpp.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
work=$(mktemp -d /tmp/kinfer_writer_check.XXXXXX)
trap 'rm -rf "$work"' EXIT

g++ -std=c++20 -O1 -march=native -I. -Iinclude scripts/dev/gguf_writer_check.cpp build/libkinfer_internal.a \
  -fopenmp -o "$work/gguf_writer_check"

echo "== 1. metadata copy tokenizes identically in llama.cpp (node-llama-cpp, vocabOnly)"
vocab=$root/../shared/vocab/mistral-v0.3-vocab.gguf
"$work/gguf_writer_check" copy "$vocab" "$work/copy.gguf"
cmp -s "$vocab" "$work/copy.gguf" && echo "(the copy is byte-identical to the original)" \
  || echo "(the copy differs in bytes from the original: $(stat -c %s "$vocab") vs $(stat -c %s "$work/copy.gguf"))"
# ES modules resolve packages next to the script, so it runs from a temporary copy inside /tmp/llref.
mjs=/tmp/llref/kinfer_writer_check_$$.mjs
cp scripts/dev/check_writer_llamacpp.mjs "$mjs"
trap 'rm -rf "$work" "$mjs"' EXIT
"$work/gguf_writer_check" copy-reordered "$vocab" "$work/reordered.gguf"
(cd /tmp/llref && node "$mjs" "$vocab" "$work/copy.gguf" "$work/reordered.gguf")

echo "== 2. llama-gguf reads a kinfer-written file with F32 and Q8_0 tensors"
"$work/gguf_writer_check" tensors "$work/tensors.gguf" | tee "$work/kinfer.txt"
LD_LIBRARY_PATH=/tmp/llama.cpp/build/bin /tmp/llama.cpp/build/bin/llama-gguf "$work/tensors.gguf" r n \
  >"$work/llama.txt" 2>&1 || { cat "$work/llama.txt"; echo "FAIL: llama-gguf could not read the file"; exit 1; }
grep -E "tensor\[|data\[:10\]|n_kv|alignment|data offset" "$work/llama.txt"
# Each of kinfer's tensor lines must appear in llama-gguf's table (name, size, offset, type).
while read -r _ _ name _ type _ bytes _ offset; do
  grep -q "name = $name, size = $bytes, offset = $offset, type = $type," "$work/llama.txt" \
    || { echo "FAIL: llama-gguf disagrees about $name"; exit 1; }
done <"$work/kinfer.txt"
grep -q "tensor_f32 data\[:10\] : 100.000000 101.000000 102.000000 103.000000 104.000000 105.000000 106.000000 107.000000 108.000000 109.000000" \
  "$work/llama.txt" || { echo "FAIL: llama-gguf read other F32 values"; exit 1; }
echo "PASS: llama-gguf reads the same tensor table and F32 data"
