#pragma once
// The prefill (matrix x matrix) paths per type and instruction level: 8-bit integer dot products over a
// tile of weight rows unpacked on the fly (no second copy of the weights), activations prepared once per
// call as 8-bit blocks of 32 (prefill_act.hpp). Merged into QuantKernels by quant_kernels().
#include <cstdint>

#include "gguf/ggml_type.hpp"
#include "kernels/cpu/quant_matmul.hpp"

namespace kinfer::cpu {

// n_tokens from which QuantKernels should take the prefill path. Measured (bench/prefill_bench.cpp, one
// thread, AVX-512, 4096 x 4096 Q4_K): 105 GFLOP/s at 8 tokens, 180 at 16, 190 at 32, 290 at 512, where a
// float-activation path tops out near 16 multiply-adds per cycle (~100 GFLOP/s): from 16 tokens on the
// 8-bit path is clearly faster; below, the decode path's float activation keeps batched decoding exact.
inline constexpr int64_t kPrefillMinTokens = 16;

// The prefill path of `type` at exactly level `isa`; null where that level has none (Portable never has:
// its prefill is the portable decode path).
const MatmulPath* prefill_path(GgmlType type, Isa isa);

namespace prefill {
const MatmulPath* prefill_path_avx512(GgmlType type);
const MatmulPath* prefill_path_avx2(GgmlType type);
}  // namespace prefill

}  // namespace kinfer::cpu
