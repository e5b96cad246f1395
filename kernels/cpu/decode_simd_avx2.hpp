#pragma once
// The 16-lane vector vocabulary of the decode kernels (decode_kernels.inl) on AVX2 + FMA + F16C: each
// vector is a pair of 256-bit registers. Included only by decode_avx2.cpp; internal linkage throughout (see
// decode_simd_avx512.hpp).
#include <immintrin.h>

#include <cstdint>

namespace {

struct F16v {  // 16 floats: lanes 0..7 in a, 8..15 in b
    __m256 a, b;
};
struct I16v {  // 16 int32
    __m256i a, b;
};

constexpr int kMaxTokensPerPass = 4;    // 16 ymm registers: 2 per accumulator
constexpr int kFloatChainsPerToken = 1;  // float accumulators per token (each already two ymm chains)

inline F16v fzero() {
    return {_mm256_setzero_ps(), _mm256_setzero_ps()};
}
inline F16v fset1(float x) {
    const __m256 v = _mm256_set1_ps(x);
    return {v, v};
}
inline F16v fload(const float* p) {
    return {_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)};
}
inline void fstore(float* p, F16v x) {
    _mm256_storeu_ps(p, x.a);
    _mm256_storeu_ps(p + 8, x.b);
}
inline F16v fadd(F16v x, F16v y) {
    return {_mm256_add_ps(x.a, y.a), _mm256_add_ps(x.b, y.b)};
}
inline F16v fmul(F16v x, F16v y) {
    return {_mm256_mul_ps(x.a, y.a), _mm256_mul_ps(x.b, y.b)};
}
inline F16v ffma(F16v x, F16v y, F16v z) {
    return {_mm256_fmadd_ps(x.a, y.a, z.a), _mm256_fmadd_ps(x.b, y.b, z.b)};
}
inline F16v ffmsub(F16v x, F16v y, F16v z) {
    return {_mm256_fmsub_ps(x.a, y.a, z.a), _mm256_fmsub_ps(x.b, y.b, z.b)};
}
inline float fhsum(F16v x) {
    const __m256 s = _mm256_add_ps(x.a, x.b);
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    q = _mm_add_ss(q, _mm_movehdup_ps(q));
    return _mm_cvtss_f32(q);
}

inline I16v iset1(int32_t x) {
    const __m256i v = _mm256_set1_epi32(x);
    return {v, v};
}
inline I16v iota(int32_t start) {
    const __m256i s = _mm256_add_epi32(_mm256_set1_epi32(start), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    return {s, _mm256_add_epi32(s, _mm256_set1_epi32(8))};
}
inline I16v load_u8(const uint8_t* p) {
    return {_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))),
            _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + 8)))};
}
inline I16v load_i8(const int8_t* p) {
    return {_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))),
            _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + 8)))};
}
inline I16v iand(I16v x, int32_t m) {
    const __m256i v = _mm256_set1_epi32(m);
    return {_mm256_and_si256(x.a, v), _mm256_and_si256(x.b, v)};
}
inline I16v ior(I16v x, I16v y) {
    return {_mm256_or_si256(x.a, y.a), _mm256_or_si256(x.b, y.b)};
}
inline I16v iadd(I16v x, I16v y) {
    return {_mm256_add_epi32(x.a, y.a), _mm256_add_epi32(x.b, y.b)};
}
inline I16v isub(I16v x, int32_t y) {
    const __m256i v = _mm256_set1_epi32(y);
    return {_mm256_sub_epi32(x.a, v), _mm256_sub_epi32(x.b, v)};
}
inline I16v isrl(I16v x, int n) {
    return {_mm256_srli_epi32(x.a, n), _mm256_srli_epi32(x.b, n)};
}
inline I16v isll(I16v x, int n) {
    return {_mm256_slli_epi32(x.a, n), _mm256_slli_epi32(x.b, n)};
}
inline I16v isrlv(I16v x, I16v n) {
    return {_mm256_srlv_epi32(x.a, n.a), _mm256_srlv_epi32(x.b, n.b)};
}
inline F16v to_float(I16v x) {
    return {_mm256_cvtepi32_ps(x.a), _mm256_cvtepi32_ps(x.b)};
}

inline F16v load_f16(const uint16_t* p) {
    return {_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))),
            _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 8)))};
}
inline F16v load_bf16(const uint16_t* p) {
    const __m256i lo = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    const __m256i hi = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 8)));
    return {_mm256_castsi256_ps(_mm256_slli_epi32(lo, 16)), _mm256_castsi256_ps(_mm256_slli_epi32(hi, 16))};
}
inline float half_to_float(uint16_t h) {
    return _cvtsh_ss(h);
}

inline F16v ffnma(F16v x, F16v y, F16v z) {
    return {_mm256_fnmadd_ps(x.a, y.a, z.a), _mm256_fnmadd_ps(x.b, y.b, z.b)};
}
inline I16v izero() {
    return {_mm256_setzero_si256(), _mm256_setzero_si256()};
}

// 32 int16 lanes (the int16 kernels' weights and activations): lanes 0..15 in a, 16..31 in b.
struct W32 {
    __m256i a, b;
};
inline W32 widen_u8(const uint8_t* p) {
    return {_mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))),
            _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16)))};
}
inline W32 wload(const int16_t* p) {
    return {_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)),
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 16))};
}
inline W32 wand(W32 x, int16_t m) {
    const __m256i v = _mm256_set1_epi16(m);
    return {_mm256_and_si256(x.a, v), _mm256_and_si256(x.b, v)};
}
inline W32 wor(W32 x, W32 y) {
    return {_mm256_or_si256(x.a, y.a), _mm256_or_si256(x.b, y.b)};
}
inline W32 wsub(W32 x, int16_t y) {
    const __m256i v = _mm256_set1_epi16(y);
    return {_mm256_sub_epi16(x.a, v), _mm256_sub_epi16(x.b, v)};
}
inline W32 wsrl(W32 x, int n) {
    return {_mm256_srli_epi16(x.a, n), _mm256_srli_epi16(x.b, n)};
}
inline W32 wsll(W32 x, int n) {
    return {_mm256_slli_epi16(x.a, n), _mm256_slli_epi16(x.b, n)};
}
inline W32 wset1(int16_t x) {
    const __m256i v = _mm256_set1_epi16(x);
    return {v, v};
}
inline W32 wset2(int16_t lo, int16_t hi) {
    return {_mm256_set1_epi16(lo), _mm256_set1_epi16(hi)};
}
inline W32 wmul(W32 x, W32 y) {
    return {_mm256_mullo_epi16(x.a, y.a), _mm256_mullo_epi16(x.b, y.b)};
}
// acc (16 int32) += pairwise products of w and a (pmaddwd).
inline I16v wdot(I16v acc, W32 w, W32 x) {
    return {_mm256_add_epi32(acc.a, _mm256_madd_epi16(w.a, x.a)),
            _mm256_add_epi32(acc.b, _mm256_madd_epi16(w.b, x.b))};
}

}  // namespace
