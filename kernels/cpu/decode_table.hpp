#pragma once
// The decode path (few tokens, memory-bound) of each weight type per instruction-set level: the fused
// dequantize x vector kernels of decode_kernels.inl, compiled for AVX2 (+FMA, F16C) in decode_avx2.cpp and
// for AVX-512 F/BW/VL/VNNI in decode_avx512.cpp, chosen at run time.
//
// Exactness. The activation stays float: each weight is decoded in registers to exactly the float the
// reference dequantizer gives, and multiplied into float accumulators with FMA. The only rounding is that
// of the float32 sums (16 lanes, several accumulators per token), about 1e-7 x sum|w*x| on 4096-long rows,
// where llama.cpp's rounding of the activation to 8 bits (q8_0 / q8_K blocks) costs ~4e-3 x sum|w*x| per
// product; the tests (cpu_decode_test.cpp) bound our error to 2e-6 x sum|w*x| on every type and path.
//
// Speed. One 16-lane FMA per 16 weights per token, plus the decode (widen, convert, scale: ~3-4 vector
// operations per 16 weights) shared by up to kMaxTokensPerPass tokens (8 on AVX-512, 4 on AVX2); more tokens
// take another pass over the row, which is then in L1, so weights are read from memory once per call.
#include "gguf/ggml_type.hpp"
#include "kernels/cpu/quant_matmul.hpp"

namespace kinfer::cpu {

// act_format of paths whose prepared activation is the float rows themselves (as the portable path's).
inline constexpr int kActFloat = 0;
// act_format of the int16 k-quant paths (layout in decode_kernels.inl).
inline constexpr int kActI16K = 0x10;

// The fastest decode path for `type` at a level at or below `isa`, or nullptr where only the portable
// reference exists.
const MatmulPath* decode_path(GgmlType type, Isa isa);

// Per level (defined only on x86-64 builds).
const MatmulPath* decode_path_avx2(GgmlType type);
const MatmulPath* decode_path_avx512(GgmlType type);

}  // namespace kinfer::cpu
