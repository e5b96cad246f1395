#pragma once
// Pieces shared by the two-int8-term decode kernels on AVX-512 (decode_i8x2_avx512.cpp,
// decode_i8x2p_avx512.cpp, decode_i8x2b_avx512.cpp). Include only from those files: they alone are built with
// -mavx512f/bw/vl/vnni (CMakeLists.txt), all with the same flags. What the AVX2 kernels share with them is
// in decode_int_common.hpp.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/decode_int_common.hpp"

namespace kinfer::cpu::i8x2 {

using int_common::hsum;
using int_common::kPrefetchBytes;
using int_common::prefetch_ahead;
using int_common::prefetch_l2;

// Each byte of x mapped by the 8x8 bit matrix in its 64-bit lane of a (vgf2p8affineqb, no constant): bit i
// of a result byte is the parity of (matrix byte 7 - i) & (the byte). In asm, so that these files are built
// without -mgfni and the compiler emits GFNI nowhere else: only the paths chosen where the CPU has GFNI
// (gfni_enabled) reach it. Nibbles in one instruction where a shift and a mask took two.
constexpr int64_t kLowNibble = 0x0102040800000000;   // bits 0..3 stay, 4..7 cleared
constexpr int64_t kHighNibble = 0x1020408000000000;  // bits 4..7 to 0..3, 4..7 cleared
inline __m512i gf2p8affine(__m512i x, __m512i a) {
    __m512i r;
    asm("vgf2p8affineqb $0, %2, %1, %0" : "=v"(r) : "v"(x), "v"(a));
    return r;
}
inline __m256i gf2p8affine(__m256i x, __m256i a) {
    __m256i r;
    asm("vgf2p8affineqb $0, %2, %1, %0" : "=v"(r) : "v"(x), "v"(a));
    return r;
}

// 16 activation values x, times id = 127^2 / max|x| of their block: c = round(x * id) in -16129..16129, split
// as 127 q1 + q2 (stored as bytes) with q1 = floor(c / 127) and q2 in 0..126; returns c. (c + 0.5) / 127 is
// at least 0.5 / 127 from an integer, far more than the rounding of the reciprocal.
inline __m512i split127(__m512 x, float id, int8_t* q1, int8_t* q2) {
    const __m512i c = _mm512_cvtps_epi32(_mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(id)),
                                                              _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    const __m512i hi = _mm512_cvtps_epi32(
        _mm512_roundscale_ps(_mm512_mul_ps(_mm512_add_ps(_mm512_cvtepi32_ps(c), _mm512_set1_ps(0.5f)),
                                           _mm512_set1_ps(1.0f / 127.0f)),
                             _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC));
    const __m512i lo = _mm512_sub_epi32(c, _mm512_mullo_epi32(hi, _mm512_set1_epi32(127)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q1), _mm512_cvtepi32_epi8(hi));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q2), _mm512_cvtepi32_epi8(lo));
    return c;
}

}  // namespace kinfer::cpu::i8x2
