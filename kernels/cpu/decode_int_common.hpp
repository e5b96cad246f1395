#pragma once
// Pieces of the integer decode kernels that do not depend on the instruction set: the AVX-512 files
// (decode_i8x2*_avx512.cpp, through decode_i8x2_shared.hpp) and the AVX2 one (decode_i8x2p_avx2.cpp). Those
// files are compiled with different -m flags, so everything here has internal linkage: an inline function
// with external linkage would be compiled once per file and the linker would keep one copy for all, maybe
// one with AVX-512 instructions called from the AVX2 kernels.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/blocks.hpp"

namespace kinfer::cpu::int_common {
namespace {

// Every cache line of the weights kPrefetchBytes ahead of the bytes [p, p + n) about to be read: the
// kernels stall on the weights' DRAM latency otherwise (perf: half the cycles on the first use of a load).
// Measured (one thread, 14336 x 4096, busy machine, rough) against no software prefetch: Q4_0 5.2 -> 2.9 ms,
// Q8_0 6.2-7.0 -> 4.4-5.3, Q4_K 2.3-3.0 -> 2.3-2.4, Q6_K within noise; 2 and 8 KiB ahead no better. At 2
// threads (Q4_K_M end to end) 2-12 KiB measured alike and none 20% slower.
// The prefetches are volatile asm, not _mm_prefetch: GCC 12 deems a function made of _mm_prefetch calls free
// of side effects and deletes calls to it that it has not inlined yet (the AVX2 kernels lost every prefetch
// so, and their 8-token products ran at a fifth of the speed from DRAM).
inline void prefetch_t0(uintptr_t a) {
    asm volatile("prefetcht0 (%0)" : : "r"(a));
}
inline void prefetch_t1(uintptr_t a) {
    asm volatile("prefetcht1 (%0)" : : "r"(a));
}

constexpr size_t kPrefetchBytes = 4096;
inline void prefetch_ahead(const uint8_t* p, size_t n) {
    const uintptr_t first = (reinterpret_cast<uintptr_t>(p) + kPrefetchBytes) & ~uintptr_t(63);
    const uintptr_t last = reinterpret_cast<uintptr_t>(p) + kPrefetchBytes + n;
    for (uintptr_t a = first; a < last; a += 64) prefetch_t0(a);
}

// Every cache line of the bytes [p + ahead, p + ahead + n) into L2 (addresses past the weights are harmless
// to prefetch): the batch slices fetch the next group of rows while L1 holds the current slice's activations
// (measured 4% faster than into L1, 8 tokens of Q4_K and Q6_K, 14336 x 4096).
inline void prefetch_l2(const uint8_t* p, size_t ahead, size_t n) {
    const uintptr_t first = (reinterpret_cast<uintptr_t>(p) + ahead) & ~uintptr_t(63);
    const uintptr_t last = reinterpret_cast<uintptr_t>(p) + ahead + n;
    for (uintptr_t a = first; a < last; a += 64) prefetch_t1(a);
}

// The sum of v's lanes as ((0 + 4) + (2 + 6)) + ((1 + 5) + (3 + 7)); _mm512_reduce_add_ps(v) is hsum of v's
// two halves added, which the AVX2 kernels rely on to give the AVX-512 kernels' bits.
inline float hsum(__m256 v) {
    const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}

// Q4_K: the eight 6-bit scales and mins of a block, one byte each (byte g = group g).
inline void q4k_scales_mins(const uint8_t* scales, uint64_t& sc, uint64_t& mn) {
    // scale j < 4: s[j] & 63, j >= 4: (s[j + 4] & 15) | (s[j - 4] >> 6) << 4; min j < 4: s[j + 4] & 63,
    // j >= 4: (s[j + 4] >> 4) | (s[j] >> 6) << 4 (kinfer::unpack_scale_min_k4), four bytes at a time in
    // general-purpose registers, which the vector work leaves idle
    uint32_t s0, s1, s2;
    std::memcpy(&s0, scales, 4);
    std::memcpy(&s1, scales + 4, 4);
    std::memcpy(&s2, scales + 8, 4);
    sc = (s0 & 0x3F3F3F3Fu) | uint64_t((s2 & 0x0F0F0F0Fu) | ((s0 >> 2) & 0x30303030u)) << 32;
    mn = (s1 & 0x3F3F3F3Fu) | uint64_t(((s2 >> 4) & 0x0F0F0F0Fu) | ((s1 >> 2) & 0x30303030u)) << 32;
}

// Q4_K (and Q5_K, whose d and dmin are the same fields): the block's d, and its eight mins times dmin.
template <class Block>
inline __m256 q4k_mins(const Block* blk, uint64_t mn, float& d) {
    const __m128 dd = _mm_cvtph_ps(_mm_cvtsi32_si128(int32_t(blk->d | uint32_t(blk->dmin) << 16)));
    d = _mm_cvtss_f32(dd);
    return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(int64_t(mn)))),
                         _mm256_broadcastss_ps(_mm_movehdup_ps(dd)));
}

}  // namespace
}  // namespace kinfer::cpu::int_common
