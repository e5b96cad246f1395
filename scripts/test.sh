#!/usr/bin/env bash
# Builds kinfer twice and runs the whole test suite in each: a normal Release build (with the CUDA code
# compiled where nvcc exists), then an ASan+UBSan build. Build trees: build/ and build-asan/. Between the
# two, the Release build is installed to build/install and examples/ is built against that package.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

# The server test's clients (tests/server: the openai package, playwright-core), as locked.
npm ci --prefix tests/server --no-audit --no-fund --loglevel=error

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DKINFER_BUILD_TESTS=ON
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure

# The installed package works for another project: install the Release build, build examples/ against it
# with find_package(kinfer), and stream a completion from a tiny synthetic model.
rm -rf build/install build/examples
cmake --install build --prefix build/install
cmake -S examples -B build/examples -G Ninja -DCMAKE_PREFIX_PATH="$PWD/build/install"
cmake --build build/examples
./build/bin/infer synth -o build/examples/tiny.gguf --preset tiny --type Q8_0 --vocab none --n-vocab 512 --quiet
./build/examples/stream_completion build/examples/tiny.gguf "Hello" 16 >build/examples/out.txt
test -s build/examples/out.txt

# -g1 (line tables only) instead of RelWithDebInfo's -g: ASan's reports keep their file:line, the code is the
# same, and the build of this tree, the longest step of CI on a 2-core machine (18 of 37 minutes), compiles
# ~15% faster (tests/golden_test.cpp: 24.1 s -> 20.6 s). Not -O1 (14.7 s): the golden models that synth
# writes are checked against checksums of the -O2 build's bytes, and -O1 rounds differently.
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" \
  -DKINFER_SANITIZE=ON -DKINFER_CUDA=OFF \
  -DKINFER_BUILD_BENCH=OFF
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --test-dir build-asan --output-on-failure
