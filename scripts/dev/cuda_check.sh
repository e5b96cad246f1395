#!/usr/bin/env bash
# One device call: build with CUDA on the device's cores, run the GPU tests, compute-sanitizer (memcheck and
# racecheck) on them, and the kernel benchmark; a short table comes last. Run from the repository root (or a
# copy of it) on the GPU machine:  scripts/dev/cuda_check.sh [deps-dir]
# deps-dir (optional): what the device image lacks, copied from a Debian machine with the project's packages:
#   mkdir -p D/include D/lib/cmake && cp -r /usr/include/{doctest,xsimd,brotli,openssl,httplib.h,zlib.h,zconf.h} D/include &&
#   cp /usr/include/x86_64-linux-gnu/openssl/* D/include/openssl && cp -r /usr/lib/cmake/doctest D/lib/cmake &&
#   cp -a /usr/lib/x86_64-linux-gnu/{libcpp-httplib,libbrotli}*.so* D/lib &&   (infer serve links cpp-httplib)
#   cp -r /usr/include/nlohmann D/include && mkdir -p D/share/cmake && cp -r /usr/share/cmake/nlohmann_json D/share/cmake
# Environment: BENCH_ARGS (e.g. --quick), SKIP_SANITIZER=1, PROFILE=1 (ncu on one matvec, SASS to $OUT),
# E2E_TYPES="Q4_K_M Q8_0" (synthesize Mistral-7B files and time `infer run --device cuda`).
set -uo pipefail
DEPS=${1:-}
OUT=${OUT:-/tmp/cuda_check_out}
mkdir -p "$OUT"
source "$(dirname "$0")/cuda_deps.sh" "$DEPS"
nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.mem --format=csv,noheader || true
g++ --version | head -1
t0=$(date +%s)
cmake -S . -B build-cuda -G Ninja -DCMAKE_BUILD_TYPE=Release -DKINFER_BUILD_TESTS=ON -DKINFER_BUILD_BENCH=OFF \
  -DKINFER_CUDA=ON "${extra[@]}" > "$OUT/cmake.log" 2>&1 || { tail -30 "$OUT/cmake.log"; exit 1; }
cmake --build build-cuda -j16 --target kinfer_tests kinfer_cuda_bench > "$OUT/build.log" 2>&1 \
  || { grep -E "error|Error" -A3 "$OUT/build.log" | head -60; exit 1; }
echo "build: $(( $(date +%s) - t0 )) s"
T=./build-cuda/bin/kinfer_tests
$T -tc='cuda*' -s 2>&1 | tee "$OUT/tests.log" | grep -E "MESSAGE|largest|ERROR|error|FAILED|test cases|assertions|GPU" | head -80
tests_rc=${PIPESTATUS[0]}
if [[ "${SKIP_SANITIZER:-0}" != 1 ]]; then
  timeout 180 compute-sanitizer --tool memcheck --error-exitcode 9 $T -tc='cuda*' > "$OUT/memcheck.log" 2>&1; mc=$?
  timeout 150 compute-sanitizer --tool racecheck --error-exitcode 9 $T -tc='cuda small*,cuda rope*,cuda matvec*' -tse='*prefill*' > "$OUT/racecheck.log" 2>&1; rc=$?
  echo "memcheck rc=$mc: $(grep -E 'ERROR SUMMARY' "$OUT/memcheck.log" | tail -1)"
  echo "racecheck rc=$rc: $(grep -E 'RACECHECK SUMMARY|ERROR SUMMARY' "$OUT/racecheck.log" | tail -1)"
  [[ $mc != 0 ]] && grep -E "Invalid|at 0x|by thread" "$OUT/memcheck.log" | head -12
fi
./build-cuda/bin/kinfer_cuda_bench ${BENCH_ARGS:-} 2>&1 | tee "$OUT/bench.log"
if [[ -n "${PROFILE:-}" ]]; then
  timeout 120 ncu --clock-control none -k regex:matvec --launch-skip 30 --launch-count 1 --section SpeedOfLight \
    --section WarpStateStats --section Occupancy --section LaunchStats --section MemoryWorkloadAnalysis \
    ./build-cuda/bin/kinfer_cuda_bench --matvec-only > "$OUT/ncu.txt" 2>&1
  grep -E "Duration|Memory Throughput|DRAM Throughput|Compute \(SM\)|Achieved Occupancy|Registers Per|Stall|Warp Cycles|Issued Ipc|Eligible" "$OUT/ncu.txt" | head -30
  obj=$(find build-cuda -name 'matvec.cu.o' | head -1)
  cuobjdump -sass "$obj" > "$OUT/matvec_sass.txt" 2>&1 || true
fi
# End to end: a synthetic Mistral-7B file, generation timed by `infer run` (prompt ~500 tokens, 128 new).
if [[ -n "${E2E_TYPES:-}" ]]; then
  B=./build-cuda/bin/infer
  prompt=$(for i in $(seq 1 120); do printf 'the quick brown fox jumps '; done)
  for ty in $E2E_TYPES; do
    f=/tmp/synth-$ty.gguf
    t1=$(date +%s)
    timeout 300 $B synth -o $f --preset mistral-7b --type $ty > "$OUT/synth-$ty.log" 2>&1 || { echo "synth $ty failed"; tail -3 "$OUT/synth-$ty.log"; continue; }
    echo "synth $ty: $(( $(date +%s) - t1 )) s, $(du -h $f | cut -f1)"
    for rep in 1 2; do
      $B run -m $f --device cuda --raw -p "$prompt" -n 128 --temp 0 > /dev/null 2> "$OUT/run-$ty.log"
      echo "$ty run $rep: $(grep -E 'load:|prompt:|generate:' "$OUT/run-$ty.log" | tr '\n' ' ')"
    done
    rm -f $f
  done
fi
echo "tests rc=$tests_rc"
