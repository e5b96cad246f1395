#pragma once
// The decode path (few tokens, memory-bound) of each weight type per instruction-set level: the fused
// dequantize x vector kernels of decode_kernels.inl, compiled for AVX2 (+FMA, F16C) in decode_avx2.cpp and
// for AVX-512 F/BW/VL/VNNI in decode_avx512.cpp, chosen at run time. Every weight byte is read once per
// call and decoded in registers; 1..kMaxTokensPerPass tokens (8 on AVX-512, 4 on AVX2) share each decode,
// more take another pass over a tile of 4 rows that is by then in L1/L2.
//
// Two activation formats, both implemented, tested and measured (bench/decode_bench.cpp):
// - float (kActFloat), the decode path of every type: each weight is decoded to exactly the float the
//   reference dequantizer gives and multiplied in with FMA, so the only error is float32 summation:
//   measured <= 3e-7 of sum|w*x| (llama.cpp rounds x to 8 bits: q8_0 per 32 elements for the legacy types,
//   ~3.6e-4 of sum|w*x| on the tests' data, and q8_K per 256 for the k-quants, ~1.9e-3). A token's result
//   also does not depend on which other tokens share the call beyond float rounding (~1e-7), which the
//   engine's batch tests rely on (a sequence decoded in a batch gets its logits alone to 1e-5).
// - int16 (kActI16K, decode_path_int16), for the k-quants: their group scales are small integers, folded
//   into int16 weight codes, so a 256-element super-block is summed in int32 by vpdpwssd (AVX-512 VNNI) /
//   pmaddwd (AVX2) against x rounded to int16 per super-block: 1 instruction per 32 weights per token
//   instead of 2 FMAs, and no int->float conversion per weight. It measured ~1.2-1.5x the float path's
//   speed on one core of a busy machine, at the cost of rounding x: at most max|x| / 65534 per element
//   over its super-block, 1/258 of llama.cpp's q8_K (~6e-6 of sum|w*x| on the tests' data). That rounding
//   is discontinuous: 1e-7 differences in x (a token computed in a different batch) can move results by
//   ~1e-5, and on the golden Q6_K model it flipped one near-tie that the float path and llama.cpp get
//   right. So float is the default; the int16 path is there for the engine to opt into (e.g. when the
//   float path is measured compute-bound on a machine with more bandwidth per core).
#include "gguf/ggml_type.hpp"
#include "kernels/cpu/quant_matmul.hpp"

namespace kinfer::cpu {

// act_format of paths whose prepared activation is the float rows themselves (as the portable path's).
inline constexpr int kActFloat = 0;
// act_format of the int16 k-quant paths (layout in decode_kernels.inl).
inline constexpr int kActI16K = 0x10;

// act_formats of the two-int8-term paths (decode_i8x2_avx512.cpp): k-quants in block order, k-quants with
// the groups of 32 in Q4_K's nibble order, and the legacy types (kActI8x2B + the type's weight offset).
inline constexpr int kActI8x2K = 0x20;
inline constexpr int kActI8x2KPerm = 0x21;
inline constexpr int kActI8x2B = 0x100;

// The default decode path for `type` at a level at or below `isa` (the two-int8-term path where it exists,
// else the float one), or nullptr where only the portable reference exists.
const MatmulPath* decode_path(GgmlType type, Isa isa);

// The float-activation decode path (every type but Q8_K), or nullptr at Portable.
const MatmulPath* decode_path_float(GgmlType type, Isa isa);

// The two-int8-term decode path (Q4_K, Q5_K, Q6_K, Q8_0, Q4_0 on AVX-512 VNNI), or nullptr.
const MatmulPath* decode_path_i8x2(GgmlType type, Isa isa);

// The int16-activation decode path of a k-quant at a level at or below `isa`, or nullptr.
const MatmulPath* decode_path_int16(GgmlType type, Isa isa);

// Per level (defined only on x86-64 builds).
const MatmulPath* decode_path_avx2(GgmlType type);
const MatmulPath* decode_path_avx512(GgmlType type);
const MatmulPath* decode_path_int16_avx2(GgmlType type);
const MatmulPath* decode_path_int16_avx512(GgmlType type);
const MatmulPath* decode_path_i8x2_avx512(GgmlType type);

}  // namespace kinfer::cpu
