# Sourced by the scripts/dev/cuda_*.sh device scripts: with a deps dir (what the device image lacks, see
# cuda_check.sh), sets `extra` to the cmake arguments that point at it and puts its libraries on
# LD_LIBRARY_PATH; without one, `extra` is empty.   Usage: source scripts/dev/cuda_deps.sh "$DEPS"
extra=()
if [[ -n "${1:-}" ]]; then
  extra+=(-Ddoctest_DIR="$1/lib/cmake/doctest" -DKINFER_XSIMD_INCLUDE="$1/include"
    -DKINFER_HTTPLIB_INCLUDE="$1/include" -DKINFER_HTTPLIB="$1/lib/libcpp-httplib.so")
  export LD_LIBRARY_PATH="$1/lib:${LD_LIBRARY_PATH:-}"
fi
