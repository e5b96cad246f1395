#!/usr/bin/env bash
# Builds llama.cpp's llama-bench (CPU only, Release) from the source bundle that the node-llama-cpp npm package
# ships, outside our build: the reference that bench/compare-llamacpp.sh measures kinfer against. Never in CI.
#   bench/build-llama-bench.sh [WORKDIR]      (default /tmp/llref; prints the llama-bench path at the end)
#   CUDA=1 bench/build-llama-bench.sh [WORKDIR]: a static CUDA build (sm_90, llama.cpp/build-cuda) to carry to the
#       GPU machine: strip it and `xz` it (~41 MB), then scripts/dev/cuda_compare.sh measure with LLAMA_BENCH_XZ.
# JOBS (default 1) and NICE (default 19) keep the build polite on a shared machine. Reuses what is there.
set -euo pipefail
work=${1:-/tmp/llref}
jobs=${JOBS:-1}
mkdir -p "$work"
cd "$work"
if [ ! -f node_modules/node-llama-cpp/llama/gitRelease.bundle ]; then
  # --ignore-scripts: the package's install step would download or build its own binaries.
  npm install --no-audit --no-fund --ignore-scripts node-llama-cpp >&2
fi
if [ ! -d llama.cpp ]; then
  git clone -q node_modules/node-llama-cpp/llama/gitRelease.bundle llama.cpp >&2
fi
if [ -n "${CUDA:-}" ]; then
  bin=llama.cpp/build-cuda/bin/llama-bench
  if [ ! -x "$bin" ]; then
    cmake -S llama.cpp -B llama.cpp/build-cuda -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=ON \
      -DCMAKE_CUDA_ARCHITECTURES=90 -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc -DBUILD_SHARED_LIBS=OFF \
      -DGGML_CUDA_NCCL=OFF -DGGML_NATIVE=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF \
      -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF >&2
    nice -n "${NICE:-19}" cmake --build llama.cpp/build-cuda --target llama-bench -j"$jobs" >&2
  fi
  echo "$work/$bin"
  exit 0
fi
bin=llama.cpp/build/bin/llama-bench
if [ ! -x "$bin" ]; then
  cmake -S llama.cpp -B llama.cpp/build -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DGGML_CUDA=OFF \
    -DGGML_METAL=OFF -DGGML_VULKAN=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF >&2
  nice -n "${NICE:-19}" cmake --build llama.cpp/build --target llama-bench -j"$jobs" >&2
fi
echo "$work/$bin"
