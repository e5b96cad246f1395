#pragma once
// The decode path (few tokens, memory-bound) of each weight type per instruction-set level: the fused
// dequantize x vector kernels of decode_kernels.inl, compiled for AVX2 (+FMA, F16C) in decode_avx2.cpp and
// for AVX-512 F/BW/VL/VNNI in decode_avx512.cpp, chosen at run time. Every weight byte is read once per
// call and decoded in registers; 1..kMaxTokensPerPass tokens (8 on AVX-512, 4 on AVX2) share each decode,
// more take another pass over a tile of 4 rows that is by then in L1/L2.
//
// Three activation formats, all implemented, tested and measured (bench/decode_bench.cpp):
// - two int8 terms (kActI8x2*, decode_i8x2_avx512.cpp), the default on AVX-512 VNNI for Q2_K .. Q6_K,
//   Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0: x rounded per block (256 for the k-quants, 32 for the legacy types) to
//   (d / 128) * (128 q1 + q2), d = max|x| / 127, q1 and q2 int8 (~15 bits: step max|x| / 16256, 1/128 of
//   llama.cpp's q8_K / q8_0 step); the weights' unsigned codes go straight into vpdpbusd against q1 and
//   q2, offsets and mins multiply exact sums of the rounded x. Why the default: the float path is
//   compute-bound at ~4.4 GB/s of weights per core on this Zen 4 (2 FMAs and an int->float conversion per
//   16 weights), far below the ~15 GB/s per core that 2 threads need to reach memory bandwidth; this path
//   measured (one thread, 14336 x 4096 from DRAM, CPU time, busy 2-core machine, rough) in GB/s of weights:
//   Q4_K 12-16, Q5_K 13, Q6_K 13-15, Q8_0 13, Q4_0 11, Q4_1 11, Q5_0 12, Q5_1 10, Q2_K 10, Q3_K 5 (float:
//   Q4_K 4.4, Q6_K 3.3, Q8_0 7.5, Q4_0 4.8). 8 tokens in one call cost ~4-5x one token for the k-quants
//   (float: ~2.4x, from a slower start), about the float path's cost for the legacy types. Its error
//   stays within the worst case of the rounding, sum |w| * step / 2 (tests/cpu_decode_test.cpp, random data
//   with outliers); the golden models' logits err by <= 3.8e-4 of the spread on the decode path (the
//   float path's ~2.8e-4 floor comes from the rest of the forward pass; llama.cpp: 1.3e-2 to 2.1e-2). The
//   rounding is discontinuous, so x differing in its last bits can move a logit by ~1e-5 of the spread, and a
//   tie closer than the error can flip: once on the golden Q6_K model (gap 3.3e-5 of the spread, error there
//   1.7e-4), which the golden test allows as a near tie within the path's own error. A token's result does
//   not depend on which tokens share the call: its sums are formed in the same order in every pass
//   (tests/batch_test.cpp: a sequence decoded in a batch gets its logits alone to 1e-5).
//   Q4_K and Q6_K take the variant of decode_i8x2p_avx512.cpp (kActI8x2KP): x rounded to max|x| / 127^2,
//   split as 127 q1 + q2 with q2 >= 0 so that the two sums pack into int16 halves and one vpdpwssd applies
//   the group scale in int32; ~1.3-1.5x fewer instructions per block (one thread, 14336 x 4096, quiet:
//   Q4_K 15.5 GB/s, Q6_K 15.7, from 12.4 / 14.6).
//   On AVX2 (no VNNI), Q4_K, Q5_K and Q6_K take decode_i8x2p_avx2.cpp (kActC16K): the same rounding and the
//   same int32 sums by vpmaddubsw (codes times group scales) and vpmaddwd against c as int16, hence the same
//   bits for Q4_K and Q6_K; Q5_K, Q3_K and Q2_K in the same way (Q4_K's and Q6_K's kernels with their codes
//   and scales; kActI8x2KP's rounding, not their AVX-512 kernels'); Q8_0, Q4_0, Q4_1, Q5_0 and Q5_1 the same
//   rounding per 32 (kActC16B), one float step per block.
//   kinfer_bench Decode/TYPE/avx2, one thread, AVX2-only Zen 3 (~20 GB/s), 4096x4096 one token: Q4_K 6.5-8.9
//   GB/s, Q6_K 5.8-8.4, Q5_K 9.3, Q8_0 1.8 ms, Q4_0 1.6-1.9 ms (float: 2.7 / 2.1 / 1.9 GB/s, 3.0-3.2 / 3.2
//   ms), Q3_K 1.4-1.6 ms, Q2_K 1.0 ms (float 7.3-7.9, 3.6); 8 tokens cost ~5.5x one for the k-quants in
//   passes of 4 (Q3_K 7.2-7.9 ms against the float path's 18.5-20.8, Q2_K 4.9-5.8 against 12), ~10-20% less
//   in the passes of 8 of piece_sum8 (an asm block: GCC spilled the 8 sums), Q8_0 1.1-1.25x and Q4_0 ~1.0x
//   the float path's 8 tokens; Q4_K_M tg16 at 2 threads 1.0 -> 3.4 t/s, x8 5.7 -> 6.3 (bench/RESULTS.md
//   2026-11-30 15:28, 19:13).
// - float (kActFloat, decode_path_float), every type, the default elsewhere and the opt-in fallback
//   (KINFER_CPU_DECODE=float): each weight is decoded to exactly the float the reference dequantizer gives
//   and multiplied in with FMA, so the only error is float32 summation: measured <= 3e-7 of sum|w*x|
//   (llama.cpp rounds x to 8 bits: q8_0 per 32 elements for the legacy types, ~3.6e-4 of sum|w*x| on the
//   tests' data, and q8_K per 256 for the k-quants, ~1.9e-3).
// - int16 (kActI16K, decode_path_int16), for the k-quants: their group scales are small integers, folded
//   into int16 weight codes, so a 256-element super-block is summed in int32 by vpdpwssd (AVX-512 VNNI) /
//   pmaddwd (AVX2) against x rounded to int16 per super-block. It measured ~1.2-1.5x the float path's
//   speed (the two-int8-term path: 2.7-3.9x), with x rounded to max|x| / 65534 per element. Kept for the
//   AVX2 level to opt into and for comparison.
#include <string>

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
// ... and of the Q4_K / Q6_K kernels that apply group scales in int32 (decode_i8x2p_avx512.cpp): x rounded to
// max|x| / 127^2 per 256, split as 127 q1 + q2 with q2 >= 0.
inline constexpr int kActI8x2KP = 0x22;
// ... and of the AVX2 Q4_K / Q6_K kernels (decode_i8x2p_avx2.cpp): kActI8x2KP's c = 127 q1 + q2 stored as
// int16.
inline constexpr int kActC16K = 0x23;
// ... and of its Q8_0 / Q4_0 kernels: the same rounding per block of 32, c as int16.
inline constexpr int kActC16B = 0x24;
// ... and of the Q8_0 / Q4_0 kernels that sum eight blocks horizontally (decode_i8x2b_avx512.cpp), plus the
// type's weight offset.
inline constexpr int kActI8x2BP = 0x200;
inline constexpr int kActI8x2B = 0x100;

// The default decode path for `type` at a level at or below `isa` (the two-int8-term path where it exists,
// else the float one), or nullptr where only the portable reference exists. The environment variable
// KINFER_CPU_DECODE=float (read once per process) makes the float path the default for every type.
const MatmulPath* decode_path(GgmlType type, Isa isa);
bool float_decode_forced();  // KINFER_CPU_DECODE=float

// The float-activation decode path (every type but Q8_K), or nullptr at Portable.
const MatmulPath* decode_path_float(GgmlType type, Isa isa);

// The two-int8-term decode path (the k-quants and legacy quantized types on AVX-512 VNNI; on AVX2 its int16
// form for every quantized type), or nullptr.
const MatmulPath* decode_path_i8x2(GgmlType type, Isa isa);

// The int16-activation decode path of a k-quant at a level at or below `isa`, or nullptr.
const MatmulPath* decode_path_int16(GgmlType type, Isa isa);

// Per level (defined only on x86-64 builds).
const MatmulPath* decode_path_avx2(GgmlType type);
const MatmulPath* decode_path_avx512(GgmlType type);
const MatmulPath* decode_path_int16_avx2(GgmlType type);
const MatmulPath* decode_path_int16_avx512(GgmlType type);
const MatmulPath* decode_path_i8x2_avx512(GgmlType type);
// gfni: the variants whose nibbles take vgf2p8affineqb (Q4_K, Q4_0), only where gfni_enabled().
const MatmulPath* decode_path_i8x2p_avx512(GgmlType type, bool gfni);
const MatmulPath* decode_path_i8x2b_avx512(GgmlType type, bool gfni);
const MatmulPath* decode_path_i8x2p_avx2(GgmlType type);  // Q2_K .. Q6_K, Q4_0 .. Q8_0

// The CPU has GFNI (x86-64) and KINFER_GFNI is not 0 (read once; comparisons).
bool gfni_enabled();

// The decode kernels' path at `isa` for people: its name, "+gfni" where the Q4_K / Q4_0 rows take GFNI.
std::string decode_path_name(Isa isa);

}  // namespace kinfer::cpu
