#!/usr/bin/env bash
# kinfer against llama.cpp on one GPU machine, in two device calls chained while the machine stays warm:
#   scripts/dev/cuda_compare.sh build LLAMA_TGZ [deps-dir]   builds llama.cpp's llama-bench (CUDA, sm_90) and
#       kinfer (build-cuda, as scripts/dev/cuda_check.sh) in parallel under /tmp, then runs the GPU tests
#   scripts/dev/cuda_compare.sh measure [deps-dir]           synthesizes the Mistral-7B files (TYPES, default
#       "Q4_K_M Q6_K Q8_0") and runs `llama-bench` and `infer bench --device cuda` alternately on each:
#       pp512 + tg128 (-r 3), then tg128 at depth 4096; then kinfer's aggregate tg128 for SEQS sequences
#       decoded together (default "1,4,8,16") on the first type
# deps-dir: doctest, xsimd, cpp-httplib (with libbrotli) the device image lacks, copied from a Debian machine.
# LLAMA_TGZ: llama.cpp's source without .git/build/models (tar czf). Logs and tables go to $OUT.
# LLAMA_BENCH_XZ (measure): a carried, xz-compressed static llama-bench (CUDA=1 bench/build-llama-bench.sh)
#   instead of the build phase's: llama.cpp measured in the same call without its ~8-minute device build.
set -uo pipefail
OUT=${OUT:-/tmp/cuda_compare_out}
mkdir -p "$OUT"
phase=$1
shift
LL=/tmp/llama.cpp
KB=/tmp/kinfer-build
build_kinfer() {
  local deps=${1:-}
  local extra=()
  [[ -n "$deps" ]] && extra+=(-Ddoctest_DIR="$deps/lib/cmake/doctest" -DKINFER_XSIMD_INCLUDE="$deps/include" -DKINFER_HTTPLIB_INCLUDE="$deps/include"
    -DKINFER_HTTPLIB="$deps/lib/libcpp-httplib.so") && export LD_LIBRARY_PATH="$deps/lib:${LD_LIBRARY_PATH:-}"
  cmake -S . -B $KB -G Ninja -DCMAKE_BUILD_TYPE=Release -DKINFER_BUILD_TESTS=ON -DKINFER_BUILD_BENCH=OFF \
    -DKINFER_CUDA=ON "${extra[@]}" > "$OUT/kinfer-cmake.log" 2>&1 &&
    cmake --build $KB -j16 --target kinfer_tests kinfer_cuda_bench infer > "$OUT/kinfer-build.log" 2>&1
}
case $phase in
  build)
    tgz=$1
    deps=${2:-}
    nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.mem,driver_version --format=csv,noheader
    t0=$(date +%s)
    mkdir -p $LL && tar xzf "$tgz" -C $LL
    (cmake -S $LL -B $LL/build -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
      -DLLAMA_CURL=OFF -DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
      -DLLAMA_BUILD_SERVER=OFF -DLLAMA_OPENSSL=OFF > "$OUT/llama-cmake.log" 2>&1 &&
      cmake --build $LL/build -j16 --target llama-bench > "$OUT/llama-build.log" 2>&1
      echo "llama.cpp build rc=$? after $(($(date +%s) - t0)) s") &
    lpid=$!
    build_kinfer "$deps" || { grep -E "error" -A3 "$OUT/kinfer-build.log" | head -40; }
    echo "kinfer build after $(($(date +%s) - t0)) s"
    $KB/bin/kinfer_tests -tc='cuda*' -s 2>&1 > "$OUT/tests.log"
    grep -E "prefill error|ERROR|FAILED|test cases|assertions" "$OUT/tests.log" | head -40
    echo "with KINFER_PDL=0:"
    KINFER_PDL=0 $KB/bin/kinfer_tests -tc='cuda*' 2>&1 | grep -E "ERROR|test cases|assertions" | head -10
    if [[ -z "${SKIP_SANITIZER:-}" ]]; then
      timeout 150 compute-sanitizer --tool memcheck --error-exitcode 9 $KB/bin/kinfer_tests -tc='cuda matvec*,cuda small*,cuda rope*,cuda backend*' \
        > "$OUT/memcheck.log" 2>&1
      echo "memcheck rc=$?: $(grep -E 'ERROR SUMMARY' "$OUT/memcheck.log" | tail -1)"
      timeout 100 compute-sanitizer --tool racecheck --error-exitcode 9 $KB/bin/kinfer_tests -tc='cuda small*,cuda matvec*,cuda rope*' \
        > "$OUT/racecheck.log" 2>&1
      echo "racecheck rc=$?: $(grep -E 'RACECHECK SUMMARY|ERROR SUMMARY' "$OUT/racecheck.log" | tail -1)"
    fi
    for v in ${VARIANTS:-0 1 2 3}; do
      echo "matvec variant $v:"
      KINFER_MATVEC_VARIANT=$v $KB/bin/kinfer_cuda_bench --quick 2>&1 | tee "$OUT/bench-$v.log" | grep -E "q4_K|q6_K|q8_0|attention|prefill" | head -12
    done
    if [[ -n "${PROFILE:-}" ]]; then  # ncu on one q4_K 14336x4096 one-token matvec (default variant)
      timeout 120 ncu --clock-control none -k regex:matvec --launch-skip 30 --launch-count 1 --section SpeedOfLight \
        --section WarpStateStats --section Occupancy --section LaunchStats --section MemoryWorkloadAnalysis \
        $KB/bin/kinfer_cuda_bench --matvec-only > "$OUT/ncu.txt" 2>&1
      grep -E "Duration|DRAM Throughput|Achieved Occupancy|Registers Per|Warp Cycles Per Issued|Issued Ipc|L1/TEX Hit|L2 Hit" "$OUT/ncu.txt" | head -20
    fi
    wait $lpid
    ls -la $LL/build/bin/llama-bench
    ;;
  measure)
    deps=${1:-}
    t0=$(date +%s)
    [[ -n "$deps" ]] && export LD_LIBRARY_PATH="$deps/lib:${LD_LIBRARY_PATH:-}"
    [[ -x $KB/bin/infer ]] || build_kinfer "$deps"
    if [[ -n "${LLAMA_BENCH_XZ:-}" ]]; then
      mkdir -p $LL/build/bin && xz -dc "$LLAMA_BENCH_XZ" > $LL/build/bin/llama-bench && chmod +x $LL/build/bin/llama-bench
    fi
    [[ -x $LL/build/bin/llama-bench ]] || { echo "no llama-bench (machine not warm?)"; }
    nvidia-smi --query-gpu=name,clocks.sm,clocks.mem --format=csv,noheader
    for ty in ${TYPES:-Q4_K_M Q6_K Q8_0}; do
      f=/tmp/mistral-7b-$ty.gguf
      t1=$(date +%s)
      $KB/bin/infer synth -o $f --preset mistral-7b --type $ty > "$OUT/synth-$ty.log" 2>&1 || { echo "synth $ty failed"; tail -3 "$OUT/synth-$ty.log"; continue; }
      echo "== $ty $(du -h $f | cut -f1) (synth $(($(date +%s) - t1)) s)"
      # Alternating, ROUNDS times each (default 1).
      for round in $(seq 1 ${ROUNDS:-1}); do
        $LL/build/bin/llama-bench -m $f -ngl 99 -p 512 -n 128 -r 3 -o md 2>/dev/null | grep -E "pp512|tg128" | sed "s/^/llama.cpp: /"
        $KB/bin/infer bench -m $f --device cuda --no-bandwidth -p 512 -n 128 -r 3 2>&1 | grep -E "pp512|tg128" | grep "|" | sed "s/^/kinfer: /"
      done
      $LL/build/bin/llama-bench -m $f -ngl 99 -p 0 -n 128 -d 4096 -r 3 -o md 2>/dev/null | grep -E "tg128" | sed "s/^/llama.cpp: /"
      $KB/bin/infer bench -m $f --device cuda --no-bandwidth -p 0 -n 128 -d 4096 -r 3 2>&1 | grep -E "tg128" | grep "|" | sed "s/^/kinfer: /"
      types=${TYPES:-Q4_K_M}
      if [[ $ty == "${types%% *}" ]]; then
        $KB/bin/infer bench -m $f --device cuda --no-bandwidth -p 0 -n 128 -s ${SEQS:-1,4,8,16} -r 3 2>&1 | grep -E "tg128" | grep "|" | sed "s/^/kinfer seqs: /"
        for c in ${AB_CONFIGS:-}; do  # one-setting comparisons, e.g. KINFER_MATVEC_MIXED=0
          env $c $KB/bin/infer bench -m $f --device cuda --no-bandwidth -p 0 -n 128 -r 3 2>&1 | grep -E "tg128" | grep "|" | sed "s/^/kinfer $c: /"
        done
      fi
      rm -f $f
      echo "($(($(date +%s) - t0)) s)"
    done
    ;;
esac
