#pragma once
// Per-type unpacking of one weight block into the prefill tile's exact integer form:
//   w[k] = scale[k / kSub] * q[k] - min[k / kSub],   q an unsigned byte,
// which every ggml type we read fits without rounding: the offsets of the signed types (Q4_0's -8, Q6_K's
// -32, Q8_0's +128 shift ...) move into `min`, scales and mins become floats computed exactly as the scalar
// reference computes them. (The one exception is Q8_0 at levels without an unsigned x signed 8-bit multiply
// that cannot saturate: `Signed` keeps its q as signed bytes and min = 0.)
//
// This header holds only internal-linkage code: each ISA translation unit includes it after its target
// pragma, so each gets its own copy compiled for its instruction set (no ODR merging across levels).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/blocks.hpp"
#include "kernels/fp16.hpp"

#include <immintrin.h>

namespace kinfer::cpu::prefill {
namespace {

// Included only by the x86 SIMD translation units, all of which have AVX2 and F16C.
inline float half(uint16_t h) {
    return _cvtsh_ss(h);
}

inline __m256i load32(const uint8_t* p) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}
inline void store32(uint8_t* p, __m256i v) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v);
}

// 16 bytes of nibbles -> 32 codes: element j < 16 the low nibble of byte j, element 16 + j its high nibble.
inline __m256i split_nibbles16(const uint8_t* qs) {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
    const __m128i m = _mm_set1_epi8(0xF);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(x, 4), m), _mm_and_si128(x, m));
}

// The 32 bits of qh as 32 bytes: 0x10 where bit e is set (the 5th bit of element e of Q5_0/Q5_1).
inline __m256i fifth_bits(const uint8_t* qh) {
    uint32_t bits;
    std::memcpy(&bits, qh, 4);
    const __m256i spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32(int(bits)),
        _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0x0000000000000000));
    const __m256i select = _mm256_set1_epi64x(int64_t(0x8040201008040201));
    const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, select), select);
    return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}

struct UnpackQ4_0 {
    static constexpr int kChunk = 32, kSub = 32, kChunkBytes = sizeof(BlockQ4_0), kMaxQ = 15;
    static void unpack(const uint8_t* src, uint8_t* q, float* sc, float* mn) {
        const auto* b = reinterpret_cast<const BlockQ4_0*>(src);
        store32(q, split_nibbles16(b->qs));
        const float d = half(b->d);
        sc[0] = d;
        mn[0] = 8 * d;
    }
};

struct UnpackQ4_1 {
    static constexpr int kChunk = 32, kSub = 32, kChunkBytes = sizeof(BlockQ4_1), kMaxQ = 15;
    static void unpack(const uint8_t* src, uint8_t* q, float* sc, float* mn) {
        const auto* b = reinterpret_cast<const BlockQ4_1*>(src);
        store32(q, split_nibbles16(b->qs));
        sc[0] = half(b->d);
        mn[0] = -half(b->m);
    }
};

struct UnpackQ5_0 {
    static constexpr int kChunk = 32, kSub = 32, kChunkBytes = sizeof(BlockQ5_0), kMaxQ = 31;
    static void unpack(const uint8_t* src, uint8_t* q, float* sc, float* mn) {
        const auto* b = reinterpret_cast<const BlockQ5_0*>(src);
        store32(q, _mm256_or_si256(split_nibbles16(b->qs), fifth_bits(b->qh)));
        const float d = half(b->d);
        sc[0] = d;
        mn[0] = 16 * d;
    }
};

struct UnpackQ5_1 {
    static constexpr int kChunk = 32, kSub = 32, kChunkBytes = sizeof(BlockQ5_1), kMaxQ = 31;
    static void unpack(const uint8_t* src, uint8_t* q, float* sc, float* mn) {
        const auto* b = reinterpret_cast<const BlockQ5_1*>(src);
        store32(q, _mm256_or_si256(split_nibbles16(b->qs), fifth_bits(b->qh)));
        sc[0] = half(b->d);
        mn[0] = -half(b->m);
    }
};

template <bool Signed>
struct UnpackQ8_0 {
    static constexpr int kChunk = 32, kSub = 32, kChunkBytes = sizeof(BlockQ8_0), kMaxQ = Signed ? 128 : 255;
    static void unpack(const uint8_t* src, uint8_t* q, float* sc, float* mn) {
        const auto* b = reinterpret_cast<const BlockQ8_0*>(src);
        const __m256i x = load32(reinterpret_cast<const uint8_t*>(b->qs));
        store32(q, Signed ? x : _mm256_xor_si256(x, _mm256_set1_epi8(char(0x80))));  // q + 128
        const float d = half(b->d);
        sc[0] = d;
        mn[0] = Signed ? 0.0f : 128 * d;
    }
};

struct UnpackQ2_K {
    static constexpr int kChunk = 256, kSub = 16, kChunkBytes = sizeof(BlockQ2_K), kMaxQ = 3;
    static void unpack(const uint8_t* src, uint8_t* q, float* sc, float* mn) {
        const auto* b = reinterpret_cast<const BlockQ2_K*>(src);
        const float d = half(b->d), dmin = half(b->dmin);
        for (int g = 0; g < 16; ++g) {
            const uint8_t s = b->scales[g];
            sc[g] = d * float(s & 0xF);
            mn[g] = dmin * float(s >> 4);
        }
        // Element 128h + 32s + l (l < 32) is bits 2s..2s+1 of qs[32h + l].
        const __m256i three = _mm256_set1_epi8(3);
        for (int h = 0; h < 2; ++h) {
            const __m256i x = load32(b->qs + 32 * h);
            for (int sh = 0; sh < 4; ++sh)
                store32(q + 128 * h + 32 * sh, _mm256_and_si256(_mm256_srli_epi16(x, 2 * sh), three));
        }
    }
};

struct UnpackQ3_K {
    static constexpr int kChunk = 256, kSub = 16, kChunkBytes = sizeof(BlockQ3_K), kMaxQ = 7;
    static void unpack(const uint8_t* src, uint8_t* q, float* sc, float* mn) {
        const auto* b = reinterpret_cast<const BlockQ3_K*>(src);
        const float d = half(b->d);
        for (int g = 0; g < 16; ++g) {  // value = dl * (q - 4), q = low 2 bits + 4 * high bit
            const float dl = d * float(unpack_scale_q3_k(g, b->scales));
            sc[g] = dl;
            mn[g] = 4 * dl;
        }
        // Element 128h + 32s + l: low bits as in Q2_K, high bit = bit 4h + s of hmask[l].
        const __m256i three = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
        const __m256i hm = load32(b->hmask);
        for (int h = 0; h < 2; ++h) {
            const __m256i x = load32(b->qs + 32 * h);
            for (int sh = 0; sh < 4; ++sh) {
                const __m256i low = _mm256_and_si256(_mm256_srli_epi16(x, 2 * sh), three);
                const __m256i high = _mm256_and_si256(_mm256_srli_epi16(hm, 4 * h + sh), one);
                store32(q + 128 * h + 32 * sh, _mm256_or_si256(low, _mm256_slli_epi16(high, 2)));
            }
        }
    }
};

struct UnpackQ4_K {
    static constexpr int kChunk = 256, kSub = 32, kChunkBytes = sizeof(BlockQ4_K), kMaxQ = 15;
    static void unpack(const uint8_t* src, uint8_t* q, float* sc, float* mn) {
        const auto* b = reinterpret_cast<const BlockQ4_K*>(src);
        const float d = half(b->d), dmin = half(b->dmin);
        for (int g = 0; g < 8; ++g) {
            uint8_t s = 0, m = 0;
            unpack_scale_min_k4(g, b->scales, s, m);
            sc[g] = d * float(s);
            mn[g] = dmin * float(m);
        }
        const __m256i m = _mm256_set1_epi8(0xF);
        for (int c = 0; c < 4; ++c) {
            const __m256i x = load32(b->qs + 32 * c);
            store32(q + 64 * c, _mm256_and_si256(x, m));
            store32(q + 64 * c + 32, _mm256_and_si256(_mm256_srli_epi16(x, 4), m));
        }
    }
};

struct UnpackQ5_K {
    static constexpr int kChunk = 256, kSub = 32, kChunkBytes = sizeof(BlockQ5_K), kMaxQ = 31;
    static void unpack(const uint8_t* src, uint8_t* q, float* sc, float* mn) {
        const auto* b = reinterpret_cast<const BlockQ5_K*>(src);
        const float d = half(b->d), dmin = half(b->dmin);
        for (int g = 0; g < 8; ++g) {
            uint8_t s = 0, m = 0;
            unpack_scale_min_k4(g, b->scales, s, m);
            sc[g] = d * float(s);
            mn[g] = dmin * float(m);
        }
        const __m256i m = _mm256_set1_epi8(0xF), one = _mm256_set1_epi8(1);
        const __m256i h = load32(b->qh);
        for (int c = 0; c < 4;
             ++c) {  // bit 2c of qh[l] tops element 64c + l, bit 2c + 1 element 64c + 32 + l
            const __m256i x = load32(b->qs + 32 * c);
            const __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2 * c), one), 4);
            const __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2 * c + 1), one), 4);
            store32(q + 64 * c, _mm256_or_si256(_mm256_and_si256(x, m), h0));
            store32(q + 64 * c + 32, _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(x, 4), m), h1));
        }
    }
};

struct UnpackQ6_K {
    static constexpr int kChunk = 256, kSub = 16, kChunkBytes = sizeof(BlockQ6_K), kMaxQ = 63;
    static void unpack(const uint8_t* src, uint8_t* q, float* sc, float* mn) {
        const auto* b = reinterpret_cast<const BlockQ6_K*>(src);
        const float d = half(b->d);
        for (int g = 0; g < 16; ++g) {
            const float dl = d * float(b->scales[g]);
            sc[g] = dl;
            mn[g] = 32 * dl;
        }
        // Per half: element 32s + l has its low nibble in ql[l + 32*(s&1)] (high nibble for s >= 2) and its
        // top two bits at bits 2s of qh[l].
        const __m256i m = _mm256_set1_epi8(0xF), top = _mm256_set1_epi8(0x30);
        for (int hf = 0; hf < 2; ++hf) {
            const __m256i l0 = load32(b->ql + 64 * hf), l1 = load32(b->ql + 64 * hf + 32);
            const __m256i h = load32(b->qh + 32 * hf);
            uint8_t* out = q + 128 * hf;
            store32(out,
                    _mm256_or_si256(_mm256_and_si256(l0, m), _mm256_and_si256(_mm256_slli_epi16(h, 4), top)));
            store32(out + 32,
                    _mm256_or_si256(_mm256_and_si256(l1, m), _mm256_and_si256(_mm256_slli_epi16(h, 2), top)));
            store32(out + 64,
                    _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m), _mm256_and_si256(h, top)));
            store32(out + 96, _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m),
                                              _mm256_and_si256(_mm256_srli_epi16(h, 2), top)));
        }
    }
};

// Storage of the weight tile of R rows x n_in, as the kernels read it: q interleaved by groups of 4 bytes,
// [n_in/4][R][4] (one vector load gives 4 consecutive bytes of each of R rows, the operand of one 8-bit dot
// product instruction), then scale and min as [n_in/kSub][R] floats. Rows past the matrix are zero.
struct TileLayout {
    size_t q_bytes, sub_count;
    TileLayout(int64_t n_in, int rows, int sub)
        : q_bytes(size_t(n_in) * rows), sub_count(size_t(n_in / sub) * rows) {}
    size_t bytes() const { return q_bytes + 2 * sub_count * sizeof(float) + 64; }
};

// A tile buffer per thread: grows once to the widest tile, then never allocates.
inline uint8_t* tile_buffer(size_t bytes) {
    thread_local std::vector<uint8_t> buffer;
    if (buffer.size() < bytes) buffer.resize(bytes);
    return buffer.data();
}

template <class U, int R>
struct Tile {
    uint8_t* q;
    float* scale;
    float* min;

    Tile(int64_t n_in) {
        const TileLayout layout(n_in, R, U::kSub);
        uint8_t* base = tile_buffer(layout.bytes());
        base += (64 - reinterpret_cast<uintptr_t>(base) % 64) % 64;
        q = base;
        scale = reinterpret_cast<float*>(base + layout.q_bytes);
        min = scale + layout.sub_count;
    }

    // Unpacks rows [0, nr) of w (nr <= R) into the tile, a span of up to 256 elements at a time: each row's
    // blocks into a row-major scratch, then `Transpose` (the ISA's R x kBytes transpose of 4-byte groups)
    // into the interleaved layout.
    template <class Transpose>
    void build(const uint8_t* w, size_t row_bytes, int nr, int64_t n_in) {
        constexpr int kSpan = 256;
        constexpr int kBlocksPerSpan = kSpan / U::kChunk;
        constexpr int kSubsPerBlock = U::kChunk / U::kSub;
        constexpr int kSubs = kSpan / U::kSub;
        static_assert(Transpose::kRows == R && kSpan % Transpose::kBytes == 0);
        alignas(64) uint8_t cq[R][kSpan];
        alignas(64) float csc[R][kSubs], cmn[R][kSubs];
        for (int r = nr; r < R; ++r) {
            std::memset(cq[r], 0, sizeof cq[r]);
            for (int s = 0; s < kSubs; ++s) csc[r][s] = cmn[r][s] = 0;
        }
        for (int64_t k0 = 0; k0 < n_in; k0 += kSpan) {
            const int span = int(std::min<int64_t>(kSpan, n_in - k0));  // a multiple of kChunk
            const int blocks = span / U::kChunk;
            const size_t src0 = size_t(k0 / U::kChunk) * U::kChunkBytes;
            for (int r = 0; r < nr; ++r) {
                const uint8_t* src = w + size_t(r) * row_bytes + src0;
                for (int b = 0; b < blocks; ++b)
                    U::unpack(src + size_t(b) * U::kChunkBytes, cq[r] + b * U::kChunk,
                              csc[r] + b * kSubsPerBlock, cmn[r] + b * kSubsPerBlock);
            }
            uint8_t* tq = q + size_t(k0) * R;
            int col = 0;
            for (; col + Transpose::kBytes <= span; col += Transpose::kBytes)
                Transpose::run(&cq[0][col], kSpan, tq + size_t(col) * R);
            for (; col < span; col += 4)  // a tail of 32 (legacy types at levels transposing 64 bytes)
                for (int r = 0; r < R; ++r) std::memcpy(tq + (size_t(col / 4) * R + r) * 4, &cq[r][col], 4);
            const int64_t sub0 = k0 / U::kSub;
            for (int s = 0; s < span / U::kSub; ++s)
                for (int r = 0; r < R; ++r) {
                    scale[(sub0 + s) * R + r] = csc[r][s];
                    min[(sub0 + s) * R + r] = cmn[r][s];
                }
        }
        (void)kBlocksPerSpan;
    }
};

}  // namespace
}  // namespace kinfer::cpu::prefill
