#pragma once
// The prefill (matrix x matrix) paths per type and instruction level: 8-bit integer dot products over a
// tile of weight rows unpacked on the fly (no second copy of the weights), activations prepared once per
// call as 8-bit blocks of 32 (prefill_act.hpp). Merged into QuantKernels by quant_kernels().
#include <cstdint>

#include "gguf/ggml_type.hpp"
#include "kernels/cpu/quant_matmul.hpp"

namespace kinfer::cpu {

// n_tokens from which the prefill path beats the decode path (the tile's weight unpacking is paid once
// per call, the integer products win from a few tokens on).
inline constexpr int64_t kPrefillMinTokens = 32;

// The prefill path of `type` at exactly level `isa`; null where that level has none (Portable never has:
// its prefill is the portable decode path).
const MatmulPath* prefill_path(GgmlType type, Isa isa);

namespace prefill {
const MatmulPath* prefill_path_avx512(GgmlType type);
const MatmulPath* prefill_path_avx2(GgmlType type);
}  // namespace prefill

}  // namespace kinfer::cpu
