#!/bin/sh
# Dev-only: regenerate tests/fixtures/quant/llamacpp_rmse.txt and llamacpp_quantized.bin from llama.cpp's
# reference quantizers.
# Needs a llama.cpp checkout with its ggml built (libggml-base.so). Never run by the build or CI.
#   LLAMA_CPP=/tmp/llama.cpp scripts/dev/make_quant_rmse_table.sh
set -eu
LLAMA_CPP=${LLAMA_CPP:-/tmp/llama.cpp}
LIBDIR=${LIBDIR:-$LLAMA_CPP/build/bin}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc -std=c11 -O2 -Wall -I"$LLAMA_CPP/ggml/include" "$here/llamacpp_quant_rmse.c" -o "$tmp/rmse" \
    -L"$LIBDIR" -Wl,-rpath,"$LIBDIR" -lggml-base -lm
"$tmp/rmse" "$repo/tests/fixtures/quant/llamacpp_quantized.bin" > "$repo/tests/fixtures/quant/llamacpp_rmse.txt"
cat "$repo/tests/fixtures/quant/llamacpp_rmse.txt"
