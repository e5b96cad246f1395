# Sourced by the scripts/dev/cuda_*.sh device scripts: with a deps dir (what the device image lacks, see
# cuda_check.sh), sets `extra` to the cmake arguments that point at it and puts its libraries on
# LD_LIBRARY_PATH; without one, `extra` is empty.   Usage: source scripts/dev/cuda_deps.sh "$DEPS"
extra=()
if [[ -n "${1:-}" ]]; then
  extra+=(-Ddoctest_DIR="$1/lib/cmake/doctest" -DKINFER_XSIMD_INCLUDE="$1/include"
    -DKINFER_HTTPLIB_INCLUDE="$1/include" -DKINFER_HTTPLIB="$1/lib/libcpp-httplib.so")
  [[ -d "$1/share/cmake/nlohmann_json" ]] && extra+=(-Dnlohmann_json_DIR="$1/share/cmake/nlohmann_json")
  export LD_LIBRARY_PATH="$1/lib:${LD_LIBRARY_PATH:-}"
fi

# kb_build DIR TARGET...: configures DIR (Release, CUDA, tests on, with the deps above) and builds the targets
# on the device's 16 cores; logs go to $OUT (cmake.log, build.log); on failure the errors are shown and the
# script exits.
kb_build() {
  local dir=$1
  shift
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DKINFER_BUILD_TESTS=ON -DKINFER_BUILD_BENCH=OFF \
    -DKINFER_CUDA=ON "${extra[@]}" >> "$OUT/cmake.log" 2>&1 || { tail -30 "$OUT/cmake.log"; exit 1; }
  cmake --build "$dir" -j16 --target "$@" >> "$OUT/build.log" 2>&1 ||
    { grep -E "error" -A3 "$OUT/build.log" | head -60; exit 1; }
}

# cuda_tests KB CONFIG...: the cuda tests under each configuration (comma-separated environment settings),
# their summary lines prefixed with the configuration.
cuda_tests() {
  local kb=$1 cfg
  shift
  for cfg in "$@"; do
    env ${cfg//,/ } "$kb/bin/kinfer_tests" -tc='cuda*' 2>&1 | grep -E "ERROR|test cases|assertions" | head -6 |
      sed "s/^/[$cfg] /"
  done
}
