#pragma once
// The decode path (few tokens, memory-bound) of each weight type per instruction-set level: the fused
// dequantize x vector kernels of decode_kernels.inl, compiled for AVX2 (+FMA, F16C) in decode_avx2.cpp and
// for AVX-512 F/BW/VL/VNNI in decode_avx512.cpp, chosen at run time. Every weight byte is read once per
// call and decoded in registers; 1..kMaxTokensPerPass tokens (8 on AVX-512, 4 on AVX2) share each decode,
// more take another pass over a tile of 4 rows that is by then in L1/L2.
//
// Two activation formats, measured against each other (bench/decode_bench.cpp, one thread):
// - float (kActFloat): Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, F16, BF16, F32. Each weight is decoded to exactly the
//   float the reference dequantizer gives and multiplied in with FMA: the only error is float32 summation,
//   measured <= 3e-7 of sum|w*x| (llama.cpp rounds x to 8 bits per 32 (q8_0): ~3e-4 on the same data).
// - int16 (kActI16K): Q2_K, Q3_K, Q4_K, Q5_K, Q6_K. Their group scales are small integers, folded into the
//   int16 weight codes, so a whole 256-element super-block is summed in int32 by vpdpwssd (AVX-512 VNNI) /
//   pmaddwd (AVX2) against x rounded to int16 per super-block: 1 instruction per 32 weights per token
//   instead of 2 FMAs per 32, and a far cheaper decode (no int->float conversion per weight). The float
//   version of these kernels ran ~1.4x slower on L2-resident Q4_K rows and fell short of the memory
//   bandwidth on one core. The cost is the rounding of x: at most max|x| / 65534 per element over its
//   super-block, exactly 1/258 of what llama.cpp's 8-bit q8_K activation (which all its k-quant dot
//   products use) allows on the same blocks; the tests check that bound and float-sum error beyond it.
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
