#!/usr/bin/env bash
# ThreadSanitizer check of the library's thread-safety promise: several sessions on one Model, on several
# threads at once (tests/api_test.cpp), and of the CPU thread pool (tests/thread_pool_test.cpp). Each session uses one CPU thread there: libgomp is not built with
# TSan, so OpenMP teams would only produce false reports. Build tree: build-tsan/.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKINFER_TSAN=ON -DKINFER_CUDA=OFF \
  -DKINFER_BUILD_BENCH=OFF
cmake --build build-tsan -j"$(nproc)" --target kinfer_tests
TSAN_OPTIONS=halt_on_error=1 ./build-tsan/bin/kinfer_tests -tc='api: several sessions*,thread pool*'
