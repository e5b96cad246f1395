#!/usr/bin/env bash
# ThreadSanitizer check of the library's thread-safety promise: several sessions on one Model, on several
# threads at once (tests/api_test.cpp), of the CPU thread pool (tests/thread_pool_test.cpp), and of sessions on
# several threads sharing one model's pool (tests/cpu_attention_test.cpp). The engine's threads are its own
# pool, which TSan sees (no OpenMP in the forward step). Build tree: build-tsan/.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKINFER_TSAN=ON -DKINFER_CUDA=OFF \
  -DKINFER_BUILD_BENCH=OFF
cmake --build build-tsan -j"$(nproc)" --target kinfer_tests
TSAN_OPTIONS=halt_on_error=1 ./build-tsan/bin/kinfer_tests -tc='api: several sessions*,thread pool*,cpu backend: sessions*'
