#pragma once
// The 16-lane vector vocabulary of the decode kernels (decode_kernels.inl) on AVX-512: one register per
// vector. Included only by decode_avx512.cpp (compiled with -mavx512f/bw/vl/vnni); everything has internal
// linkage so that no AVX-512 code can be picked by the linker for another translation unit.
// GCC 12's own AVX-512 headers trip -Wmaybe-uninitialized (_mm512_undefined_* inside cvt/reduce intrinsics).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cstdint>

namespace {

struct F16v {  // 16 floats
    __m512 v;
};
struct I16v {  // 16 int32
    __m512i v;
};

constexpr int kMaxTokensPerPass = 8;    // token accumulators held in registers at once
constexpr int kFloatChainsPerToken = 2;  // float accumulators per token (x kMaxTokensPerPass registers)

inline F16v fzero() {
    return {_mm512_setzero_ps()};
}
inline F16v fset1(float a) {
    return {_mm512_set1_ps(a)};
}
inline F16v fload(const float* p) {
    return {_mm512_loadu_ps(p)};
}
inline void fstore(float* p, F16v a) {
    _mm512_storeu_ps(p, a.v);
}
inline F16v fadd(F16v a, F16v b) {
    return {_mm512_add_ps(a.v, b.v)};
}
inline F16v fmul(F16v a, F16v b) {
    return {_mm512_mul_ps(a.v, b.v)};
}
inline F16v ffma(F16v a, F16v b, F16v c) {
    return {_mm512_fmadd_ps(a.v, b.v, c.v)};
}
inline F16v ffmsub(F16v a, F16v b, F16v c) {
    return {_mm512_fmsub_ps(a.v, b.v, c.v)};
}  // a*b - c
inline float fhsum(F16v a) {
    return _mm512_reduce_add_ps(a.v);
}

inline I16v iset1(int32_t a) {
    return {_mm512_set1_epi32(a)};
}
inline I16v iota(int32_t start) {
    return {_mm512_add_epi32(_mm512_set1_epi32(start),
                             _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15))};
}
// 16 bytes, zero- or sign-extended.
inline I16v load_u8(const uint8_t* p) {
    return {_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)))};
}
inline I16v load_i8(const int8_t* p) {
    return {_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)))};
}
inline I16v iand(I16v a, int32_t m) {
    return {_mm512_and_si512(a.v, _mm512_set1_epi32(m))};
}
inline I16v ior(I16v a, I16v b) {
    return {_mm512_or_si512(a.v, b.v)};
}
inline I16v iadd(I16v a, I16v b) {
    return {_mm512_add_epi32(a.v, b.v)};
}
inline I16v isub(I16v a, int32_t b) {
    return {_mm512_sub_epi32(a.v, _mm512_set1_epi32(b))};
}
inline I16v isrl(I16v a, int n) {
    return {_mm512_srli_epi32(a.v, static_cast<unsigned>(n))};
}
inline I16v isll(I16v a, int n) {
    return {_mm512_slli_epi32(a.v, static_cast<unsigned>(n))};
}
inline I16v isrlv(I16v a, I16v n) {
    return {_mm512_srlv_epi32(a.v, n.v)};
}
inline F16v to_float(I16v a) {
    return {_mm512_cvtepi32_ps(a.v)};
}

inline F16v load_f16(const uint16_t* p) {
    return {_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)))};
}
inline F16v load_bf16(const uint16_t* p) {
    const __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    return {_mm512_castsi512_ps(_mm512_slli_epi32(w, 16))};
}
inline float half_to_float(uint16_t h) {
    return _cvtsh_ss(h);
}

inline F16v ffnma(F16v a, F16v b, F16v c) {
    return {_mm512_fnmadd_ps(a.v, b.v, c.v)};
}  // c - a*b
inline I16v izero() {
    return {_mm512_setzero_si512()};
}

// 32 int16 lanes (the int16 kernels' weights and activations).
struct W32 {
    __m512i v;
};
inline W32 widen_u8(const uint8_t* p) {  // 32 bytes, zero-extended
    return {_mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)))};
}
inline W32 wload(const int16_t* p) {
    return {_mm512_loadu_si512(p)};
}
inline W32 wand(W32 a, int16_t m) {
    return {_mm512_and_si512(a.v, _mm512_set1_epi16(m))};
}
inline W32 wor(W32 a, W32 b) {
    return {_mm512_or_si512(a.v, b.v)};
}
inline W32 wsub(W32 a, int16_t b) {
    return {_mm512_sub_epi16(a.v, _mm512_set1_epi16(b))};
}
inline W32 wsrl(W32 a, int n) {
    return {_mm512_srli_epi16(a.v, static_cast<unsigned>(n))};
}
inline W32 wsll(W32 a, int n) {
    return {_mm512_slli_epi16(a.v, static_cast<unsigned>(n))};
}
inline W32 wset1(int16_t a) {
    return {_mm512_set1_epi16(a)};
}
inline W32 wset2(int16_t lo, int16_t hi) {  // lanes 0..15 = lo, 16..31 = hi
    return {_mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi16(lo)), _mm256_set1_epi16(hi), 1)};
}
inline W32 wmul(W32 a, W32 b) {
    return {_mm512_mullo_epi16(a.v, b.v)};
}
// acc (16 int32) += pairwise products of w and a (VNNI vpdpwssd).
inline I16v wdot(I16v acc, W32 w, W32 a) {
    return {_mm512_dpwssd_epi32(acc.v, w.v, a.v)};
}

}  // namespace
