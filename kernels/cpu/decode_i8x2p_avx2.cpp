// The integer decode path for every quantized type (Q2_K .. Q6_K, Q4_0 .. Q8_0) on AVX2 CPUs (no AVX-512):
// the precision and, for Q4_K and Q6_K, the bits of decode_i8x2p_avx512.cpp, at the speed AVX2's int16
// products allow, where the float kernels left these CPUs compute-bound (AVX2-only Zen 3, Q4_K_M at 2
// threads: 0.94-1.06 t/s, 0.33x llama.cpp, ~21% of the memory bandwidth). Q5_K (Q4_K's layout and a fifth
// bit), Q3_K and Q2_K (Q6_K's layout of 16 groups with 3 and 2 bits) have the same rounding of x as those
// two here, not the 128 q1 + q2 of their AVX-512 kernels: the same precision, other bits.
//
// x of each 256-element block is rounded as in the AVX-512 file: c = round(x / step), step = max|x| / 127^2,
// |c| <= 16129 (the two int8 terms there are 127 q1 + q2 = c). Here c is stored as int16 (kActC16K, the
// "ce" order of that file's batches: per 64 elements the even ones, then the odd ones) and each weight code
// is multiplied by its group scale into int16 by vpmaddubsw (code u8 <= 63, scale s8: |product| <= 8064)
// against the scale bytes at every other byte, even elements in one vector, odd ones in another. One
// vpmaddwd per 16 weights and token then adds code * scale * c pairwise into int32: lane m of a 32-element
// group's even and odd products is elements 4 m .. 4 m + 3, as in the VNNI kernels, so the int32 sums are
// the same integers (Q4_K: a block's lane at most 32 * 945 * 16129 < 2^31; Q6_K per half block 16 * 8064 *
// 16129 < 2^31), converted and scaled by the same float operations in the same order: a token's outputs are
// the AVX-512 path's bits, and do not depend on the tokens or rows sharing the call.
//
// This file alone is built with -mavx2 -mfma -mf16c (CMakeLists.txt) and runs only where detected_isa()
// allows it. Nothing here has external linkage except decode_path_i8x2p_avx2.
#include "kernels/cpu/decode_table.hpp"

#if defined(__x86_64__)
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "kernels/blocks.hpp"
#include "kernels/cpu/decode_int_common.hpp"

namespace kinfer::cpu {
namespace {

using int_common::hsum;
using int_common::prefetch_ahead;
using int_common::prefetch_l2;
using int_common::q4k_mins;
using int_common::q4k_scales_mins;

// ---- prepared activation (kActC16K), per token, contiguous; every region on a 64-byte boundary and
// kSkew bytes apart (power-of-two row lengths would otherwise put every region at the same L1 sets):
//   float step[nb] | float s16[nb][16] | float s32[nb][8] | int16 ce[n_in]
// s16[g] = step * (sum of c over group g of 16), s32 the same over groups of 32; ce per 64 elements: the 32
// even elements in order, then the 32 odd ones. ----
constexpr size_t kSkew = 64;

constexpr size_t round64(size_t n) {
    return (n + 63) / 64 * 64;
}

size_t ce_offset(int64_t n_in) {
    return round64(size_t(n_in / 256) * 4 * (1 + 16 + 8)) + kSkew;
}

size_t token_bytes(int64_t n_in) {
    return round64(ce_offset(n_in) + 2 * size_t(n_in) + kSkew);
}

size_t act_bytes(int64_t n_in, int64_t n_tokens) {
    return token_bytes(n_in) * size_t(n_tokens);
}

struct Tok {
    const float *step, *s16, *s32;
    const int16_t* ce;
};

Tok token(const void* act, int64_t n_in, int64_t t) {
    const auto* base = static_cast<const uint8_t*>(act) + size_t(t) * token_bytes(n_in);
    const int64_t nb = n_in / 256;
    const auto* step = reinterpret_cast<const float*>(base);
    return Tok{step, step + nb, step + 17 * nb, reinterpret_cast<const int16_t*>(base + ce_offset(n_in))};
}

// The byte distance between consecutive tokens' ce (a pass takes consecutive tokens of one buffer).
inline size_t token_stride(const Tok* tok) {
    return size_t(reinterpret_cast<const char*>(tok[1].ce) - reinterpret_cast<const char*>(tok[0].ce));
}

// x[0 .. n) (n a multiple of 8) rounded to c = round(x / step), step = max|x| / 127^2, with the AVX-512
// file's expressions, so that c and step are its bits; returns step (0 for an all-zero block, whose c are 0).
inline float round_block(const float* x, int n, int32_t* c) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 m = _mm256_setzero_ps();
    for (int i = 0; i < n; i += 8) m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)));
    const __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    const __m128 m2 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    const float amax = _mm_cvtss_f32(_mm_max_ss(m2, _mm_movehdup_ps(m2)));
    const float id = amax > 0 ? 16129.0f / amax : 0.0f;
    for (int i = 0; i < n; i += 8)
        _mm256_storeu_si256(
            reinterpret_cast<__m256i*>(c + i),
            _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), _mm256_set1_ps(id)),
                                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
    return amax > 0 ? amax / 16129.0f : 0.0f;
}

void prepare(const float* x, int64_t n_in, int64_t n_tokens, void* act) {
    const int64_t nb = n_in / 256;
    for (int64_t t = 0; t < n_tokens; ++t) {
        const Tok tok = token(act, n_in, t);
        auto* step = const_cast<float*>(tok.step);
        auto* s16 = const_cast<float*>(tok.s16);
        auto* s32 = const_cast<float*>(tok.s32);
        auto* ce = const_cast<int16_t*>(tok.ce);
        for (int64_t b = 0; b < nb; ++b) {
            alignas(32) int32_t c[256];
            step[b] = round_block(x + t * n_in + b * 256, 256, c);
            int32_t sum16[16];
            for (int g = 0; g < 16; ++g) {
                int32_t s = 0;
                for (int i = 0; i < 16; ++i) s += c[16 * g + i];
                sum16[g] = s;
            }
            int16_t* o = ce + b * 256;
            for (int k = 0; k < 4; ++k)
                for (int j = 0; j < 32; ++j) {
                    o[64 * k + j] = int16_t(c[64 * k + 2 * j]);
                    o[64 * k + 32 + j] = int16_t(c[64 * k + 2 * j + 1]);
                }
            for (int g = 0; g < 16; ++g) s16[16 * b + g] = step[b] * float(sum16[g]);
            for (int g = 0; g < 8; ++g) s32[8 * b + g] = step[b] * float(sum16[2 * g] + sum16[2 * g + 1]);
        }
    }
}

inline __m256i load(const void* p) {
    return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}

// The products of one 64-element piece of ce (w: int16 code * scale for its even elements in w[0], w[1] and
// odd ones in w[2], w[3], ce's order) with one token's c, summed as a tree. The empty asm keeps GCC from
// reassociating a block's pieces into one serial chain of additions (measured: 16 dependent vpaddd per block
// and their operands spilled).
inline __m256i piece_sum(const __m256i (&w)[4], const int16_t* ce) {
    const __m256i a =
        _mm256_add_epi32(_mm256_madd_epi16(w[0], load(ce)), _mm256_madd_epi16(w[1], load(ce + 16)));
    const __m256i b =
        _mm256_add_epi32(_mm256_madd_epi16(w[2], load(ce + 32)), _mm256_madd_epi16(w[3], load(ce + 48)));
    __m256i s = _mm256_add_epi32(a, b);
    asm("" : "+x"(s));
    return s;
}

// piece_sum for 8 tokens at once, added into ia[0..7]: token t's ce at byte offset t * stride from ce0.
// Written out because GCC spilled the 8 sums of the same loop in intrinsics (15-25% slower than passes of 4):
// here w, the 8 sums and 3 temporaries take the 16 registers. Integer sums: the order of the additions does
// not change them, so a token's result is the one of the other passes.
inline void piece_sum8(const __m256i (&w)[4], const int16_t* ce0, size_t stride, __m256i (&ia)[8]) {
    const char* p0 = reinterpret_cast<const char*>(ce0);
    const char* p3 = p0 + 3 * stride;
    const char* p6 = p0 + 6 * stride;
    __m256i t0, t1, t2;
// token ACC's piece at BASE + IDX (an index register and scale, or nothing)
// clang-format off
#define KINFER_PIECE(BASE, IDX, ACC)                              \
    "vpmaddwd (%[" BASE "]" IDX "), %[w0], %[t0]\n\t"            \
    "vpmaddwd 32(%[" BASE "]" IDX "), %[w1], %[t1]\n\t"          \
    "vpaddd %[t1], %[t0], %[t0]\n\t"                            \
    "vpmaddwd 64(%[" BASE "]" IDX "), %[w2], %[t1]\n\t"          \
    "vpmaddwd 96(%[" BASE "]" IDX "), %[w3], %[t2]\n\t"          \
    "vpaddd %[t2], %[t1], %[t1]\n\t"                            \
    "vpaddd %[t1], %[t0], %[t0]\n\t"                            \
    "vpaddd %[t0], %[" ACC "], %[" ACC "]\n\t"
    // clang-format on
    asm(KINFER_PIECE("p0", "", "a0")         //
        KINFER_PIECE("p0", ",%[s],1", "a1")  //
        KINFER_PIECE("p0", ",%[s],2", "a2")  //
        KINFER_PIECE("p3", "", "a3")         //
        KINFER_PIECE("p0", ",%[s],4", "a4")  //
        KINFER_PIECE("p3", ",%[s],2", "a5")  //
        KINFER_PIECE("p6", "", "a6")         //
        KINFER_PIECE("p6", ",%[s],1", "a7")
        : [t0] "=&x"(t0), [t1] "=&x"(t1), [t2] "=&x"(t2), [a0] "+x"(ia[0]), [a1] "+x"(ia[1]),
          [a2] "+x"(ia[2]), [a3] "+x"(ia[3]), [a4] "+x"(ia[4]), [a5] "+x"(ia[5]), [a6] "+x"(ia[6]),
          [a7] "+x"(ia[7])
        : [w0] "x"(w[0]), [w1] "x"(w[1]), [w2] "x"(w[2]), [w3] "x"(w[3]), [p0] "r"(p0), [p3] "r"(p3),
          [p6] "r"(p6), [s] "r"(stride)
        : "memory");
#undef KINFER_PIECE
}

// How the rows' blocks are fetched: a lone row streams (prefetch_ahead); the slices fetch the group of rows
// after next into L2 while the current one is in L1 (prefetch_l2, `ahead` bytes on). kinfer_bench
// Decode/q[46]_K/avx2/4096x4096/tokens:8, one thread: none 5.8 / 9.1 ms, the next group 6.3 / 7.7, the one
// after 5.6 / 7.3 (noisy).
struct Fetch {
    size_t ahead;  // 0: prefetch_ahead
    void operator()(const uint8_t* p, size_t n) const {
        if (ahead == 0)
            prefetch_ahead(p, n);
        else
            prefetch_l2(p, ahead, n);
    }
};

// ---- Q4_K: block = d, dmin (fp16), 12 bytes of 6-bit scales and mins, 128 bytes of nibbles; bytes 32 i ..
// 32 i + 31 hold group 2 i in their low nibbles and group 2 i + 1 in their high ones: a pair of groups is
// one 64-element piece of ce. ----

// Pattern g: byte j of each 128-bit lane takes scale byte g where j is even, zero (0x80) where it is odd.
alignas(32) constexpr auto kQ4KEven = [] {
    std::array<std::array<uint8_t, 32>, 8> t{};
    for (int g = 0; g < 8; ++g)
        for (int j = 0; j < 32; ++j) t[size_t(g)][size_t(j)] = j % 2 == 0 ? uint8_t(g) : uint8_t(0x80);
    return t;
}();

// Q5_K: Q4_K's block with a fifth bit per code, bit g of qh[l] for element l of group g (codes <= 31, so a
// block's lane stays below 32 * 31 * 63 * 16129 < 2^31).
template <class Block>
constexpr bool kFifthBit = std::is_same_v<Block, BlockQ5_K>;

// Blocks [b0, b1) of one row for TT tokens, adding into acc and mins (per token, in block order: for Q4_K
// the bits of q4k_one512 and q4k_slices).
// acc(t) and mins(t): token t's accumulators (references).
template <int TT, class Block, class AccF, class MinsF>
inline void q4k_blocks(const uint8_t* row, int64_t b0, int64_t b1, const Tok* tok, AccF acc, MinsF mins,
                       Fetch fetch) {
    const __m256i low = _mm256_set1_epi8(0x0F), fifth = _mm256_set1_epi8(0x10);
    for (int64_t b = b0; b < b1; ++b) {
        const uint8_t* p = row + size_t(b) * sizeof(Block);
        fetch(p, sizeof(Block));
        const auto* blk = reinterpret_cast<const Block*>(p);
        uint64_t sc, mn;
        q4k_scales_mins(blk->scales, sc, mn);
        float d;
        const __m256 bmins = q4k_mins(blk, mn, d);
        const __m256i scales = _mm256_set1_epi64x(int64_t(sc));  // the 8 scale bytes in every 64 bits
        const int64_t e = b * 256;
        __m256i ia[TT];
        if constexpr (TT == 8)
            for (int t = 0; t < TT; ++t) ia[t] = _mm256_setzero_si256();
#pragma GCC unroll 4
        for (int i = 0; i < 4; ++i) {
            const __m256i q = load(blk->qs + 32 * i);
            __m256i lo = _mm256_and_si256(q, low), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low);
            if constexpr (kFifthBit<Block>) {  // bits 2 i and 2 i + 1 of qh to bit 4
                const __m256i qh = load(blk->qh);
                const auto to_bit4 = [&](int g) {
                    const __m256i v = g <= 4 ? _mm256_slli_epi16(qh, 4 - g) : _mm256_srli_epi16(qh, g - 4);
                    return _mm256_and_si256(v, fifth);
                };
                lo = _mm256_or_si256(lo, to_bit4(2 * i));
                hi = _mm256_or_si256(hi, to_bit4(2 * i + 1));
            }
            const __m256i sa = _mm256_shuffle_epi8(scales, load(kQ4KEven[size_t(2 * i)].data()));
            const __m256i sb = _mm256_shuffle_epi8(scales, load(kQ4KEven[size_t(2 * i + 1)].data()));
            // even elements of groups 2 i, 2 i + 1, then the odd ones (the scale moved to the odd bytes)
            const __m256i w[4] = {_mm256_maddubs_epi16(lo, sa), _mm256_maddubs_epi16(hi, sb),
                                  _mm256_maddubs_epi16(lo, _mm256_slli_epi16(sa, 8)),
                                  _mm256_maddubs_epi16(hi, _mm256_slli_epi16(sb, 8))};
            if constexpr (TT == 8) {
                piece_sum8(w, tok[0].ce + e + 64 * i, token_stride(tok), ia);
            } else {
#pragma GCC unroll 4
                for (int t = 0; t < TT; ++t) {
                    const __m256i p = piece_sum(w, tok[t].ce + e + 64 * i);
                    ia[t] = i == 0 ? p : _mm256_add_epi32(ia[t], p);
                }
            }
        }
#pragma GCC unroll 8
        for (int t = 0; t < TT; ++t) {
            acc(t) = _mm256_fmadd_ps(_mm256_cvtepi32_ps(ia[t]), _mm256_set1_ps(d * tok[t].step[b]), acc(t));
            mins(t) = _mm256_fmadd_ps(bmins, _mm256_loadu_ps(tok[t].s32 + 8 * b), mins(t));
        }
    }
}

// What the rows below need of a k-quant kernel family besides its blocks.
struct KQuantTraits {
    using Tok = kinfer::cpu::Tok;
    static Tok token(const void* act, int64_t n_in, int64_t t) { return kinfer::cpu::token(act, n_in, t); }
    static constexpr int kBlockElems = 256, kSliceBlocks = 4;
    static constexpr bool kPass8 = true;  // passes of 8 tokens (piece_sum8)
};

template <class Block>
struct Q4K : KQuantTraits {
    struct Acc {
        __m256 acc, mins;
    };
    template <int TT>
    static void blocks(const uint8_t* row, int64_t b0, int64_t b1, const Tok* tok, Acc* a, Fetch fetch) {
        if constexpr (TT == 8) {  // 8 tokens' sums do not stay in registers: no copies in and out
            q4k_blocks<TT, Block>(
                row, b0, b1, tok, [a](int t) -> __m256& { return a[t].acc; },
                [a](int t) -> __m256& { return a[t].mins; }, fetch);
            return;
        }
        __m256 acc[TT], mins[TT];
        for (int t = 0; t < TT; ++t) {
            acc[t] = a[t].acc;
            mins[t] = a[t].mins;
        }
        q4k_blocks<TT, Block>(
            row, b0, b1, tok, [&acc](int t) -> __m256& { return acc[t]; },
            [&mins](int t) -> __m256& { return mins[t]; }, fetch);
        for (int t = 0; t < TT; ++t) a[t] = Acc{acc[t], mins[t]};
    }
    static float result(const Acc& a) { return hsum(a.acc) - hsum(a.mins); }
};

// ---- the k-quants of 16 groups of 16 with one int8 scale each: Q6_K, Q3_K, Q2_K. Element 128 h + 32 i + l
// (h < 2, i < 4, l < 32) of all three sits at byte l of a 32-byte run per half, as the Q6K, Q3K and Q2K
// layouts below say; vector i of half h (32 elements) covers groups 8 h + 2 i (first 16 bytes) and + 1: one
// 128-bit lane each. A weight is d * s[g] * code - off[g] with an unsigned code (its offset taken out
// through the tokens' group sums s16), so one kernel serves the three: codes times scales into int16 by
// vpmaddubsw, then vpmaddwd against c as for Q4_K. ----

// Pattern 4 h + i: the even bytes of lane L take scale byte 8 h + 2 i + L, the odd bytes zero.
alignas(32) constexpr auto kG16Even = [] {
    std::array<std::array<uint8_t, 32>, 8> t{};
    for (int k = 0; k < 8; ++k)
        for (int j = 0; j < 32; ++j)
            t[size_t(k)][size_t(j)] = j % 2 == 0 ? uint8_t(2 * k + j / 16) : uint8_t(0x80);
    return t;
}();

// What a 16-group block gives the kernel: the 16 scales (int8, for vpmaddubsw), d, and off[g] for groups
// 0..7 and 8..15 (subtracted times the token's s16[g]).
struct G16Scales {
    __m128i sc8;
    float d;
    __m256 off_lo, off_hi;
};

inline __m256 int8_to_float(__m128i v) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v));
}

// The scales sc8 and d, with off[g] = coef * off8[g] for the 16 groups.
inline G16Scales g16_scales(__m128i sc8, float d, __m128i off8, float coef) {
    const __m256 c = _mm256_set1_ps(coef);
    return {sc8, d, _mm256_mul_ps(int8_to_float(off8), c),
            _mm256_mul_ps(int8_to_float(_mm_unpackhi_epi64(off8, off8)), c)};
}

// Q6_K: block = ql[128], qh[64], 16 int8 scales, d (fp16); element 128 h + 32 i + l has its low four bits in
// ql[64 h + 32 (i % 2) + l] (high nibble for i >= 2) and its top two at bits 2 i of qh[32 h + l]; codes are
// q - 32 (off[g] = 32 d s[g]).
struct Q6KLayout {
    using Block = BlockQ6_K;
    static G16Scales scales(const Block* blk) {
        const __m128i sc8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk->scales));
        const float d = _cvtsh_ss(blk->d);
        return g16_scales(sc8, d, sc8, 32.0f * d);
    }
    // The codes of vector i of half h, in element order.
    static __m256i codes(const Block* blk, int h, int i) {
        const __m256i low = _mm256_set1_epi8(0x0F), top = _mm256_set1_epi8(0x30);
        const __m256i ql = load(blk->ql + 64 * h + 32 * (i % 2));
        const __m256i qh = load(blk->qh + 32 * h);
        const __m256i l4 = _mm256_and_si256(i < 2 ? ql : _mm256_srli_epi16(ql, 4), low);
        // bits 2 i, 2 i + 1 of qh to bits 4, 5
        const __m256i h2 = i == 0   ? _mm256_slli_epi16(qh, 4)
                           : i == 1 ? _mm256_slli_epi16(qh, 2)
                           : i == 2 ? qh
                                    : _mm256_srli_epi16(qh, 2);
        return _mm256_or_si256(l4, _mm256_and_si256(h2, top));
    }
};

// Bits 2 i, 2 i + 1 of every byte of the 32 qs bytes of half h (Q2_K and Q3_K): element 128 h + 32 i + l's
// low two bits.
inline __m256i low2(const uint8_t* qs, int h, int i) {
    return _mm256_and_si256(_mm256_srli_epi16(load(qs + 32 * h), 2 * i), _mm256_set1_epi8(0x03));
}

// Q3_K: block = hmask[32], qs[64], 12 bytes of 6-bit scales (s - 32), d (fp16); element 128 h + 32 i + l has
// its low two bits at bits 2 i of qs[32 h + l] and its third at bit 4 h + i of hmask[l]; the weight is
// d (s - 32) (low + 4 hbit - 4): code low + 4 hbit, off[g] = 4 d (s[g] - 32).
struct Q3KLayout {
    using Block = BlockQ3_K;
    static G16Scales scales(const Block* blk) {
        // unpack_scale_q3_k for the 16 groups at once: low four bits of group g < 8 in byte g's low nibble,
        // of g >= 8 in byte g - 8's high one; the top two at bits 2 (g / 4) of byte 8 + g % 4.
        uint64_t lo8;
        uint32_t top;
        std::memcpy(&lo8, blk->scales, 8);
        std::memcpy(&top, blk->scales + 8, 4);
        constexpr uint64_t m4 = 0x0F0F0F0F0F0F0F0Full;
        constexpr uint32_t m2 = 0x03030303u;
        const uint64_t a = (lo8 & m4) | (uint64_t(top & m2) | uint64_t((top >> 2) & m2) << 32) << 4;
        const uint64_t c = ((lo8 >> 4) & m4) | (uint64_t((top >> 4) & m2) | uint64_t((top >> 6) & m2) << 32)
                                                   << 4;
        const __m128i sc8 = _mm_sub_epi8(_mm_set_epi64x(int64_t(c), int64_t(a)), _mm_set1_epi8(32));
        const float d = _cvtsh_ss(blk->d);
        return g16_scales(sc8, d, sc8, 4.0f * d);
    }
    static __m256i codes(const Block* blk, int h, int i) {
        const __m256i hm = load(blk->hmask);
        const int bit = 4 * h + i;  // to bit 2 (16-bit shifts: the mask keeps each byte's own bit)
        const __m256i moved = bit >= 2 ? _mm256_srli_epi16(hm, bit - 2) : _mm256_slli_epi16(hm, 2 - bit);
        return _mm256_or_si256(low2(blk->qs, h, i), _mm256_and_si256(moved, _mm256_set1_epi8(0x04)));
    }
};

// Q2_K: block = 16 scale bytes (scale in the low nibble, min in the high one), qs[64], d, dmin (fp16); the
// weight is d sc[g] q - dmin m[g], q the low two bits as in Q3_K (off[g] = dmin m[g]).
struct Q2KLayout {
    using Block = BlockQ2_K;
    static G16Scales scales(const Block* blk) {
        const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk->scales));
        const __m128i nib = _mm_set1_epi8(0x0F);
        const __m128i mins = _mm_and_si128(_mm_srli_epi16(raw, 4), nib);
        return g16_scales(_mm_and_si128(raw, nib), _cvtsh_ss(blk->d), mins, _cvtsh_ss(blk->dmin));
    }
    static __m256i codes(const Block* blk, int h, int i) { return low2(blk->qs, h, i); }
};

// acc(t): references to token t's accumulators (G16::Ref).
template <int TT, class L, class AccF>
inline void g16_blocks(const uint8_t* row, int64_t b0, int64_t b1, const Tok* tok, AccF acc, Fetch fetch) {
    using Block = typename L::Block;
    for (int64_t b = b0; b < b1; ++b) {
        const uint8_t* p = row + size_t(b) * sizeof(Block);
        fetch(p, sizeof(Block));
        const auto* blk = reinterpret_cast<const Block*>(p);
        const G16Scales gs = L::scales(blk);
        const __m256i scales = _mm256_broadcastsi128_si256(gs.sc8);
        const int64_t e = b * 256;
        __m256 f[TT];
#pragma GCC unroll 2
        for (int h = 0; h < 2; ++h) {
            __m256i ia[TT];
            if constexpr (TT == 8)
                for (int t = 0; t < TT; ++t) ia[t] = _mm256_setzero_si256();
#pragma GCC unroll 2
            for (int k = 0; k < 2; ++k) {  // the piece of vectors 2 k, 2 k + 1
                const __m256i ca = L::codes(blk, h, 2 * k), cb = L::codes(blk, h, 2 * k + 1);
                const __m256i sa = _mm256_shuffle_epi8(scales, load(kG16Even[size_t(4 * h + 2 * k)].data()));
                const __m256i sb =
                    _mm256_shuffle_epi8(scales, load(kG16Even[size_t(4 * h + 2 * k + 1)].data()));
                const __m256i w[4] = {_mm256_maddubs_epi16(ca, sa), _mm256_maddubs_epi16(cb, sb),
                                      _mm256_maddubs_epi16(ca, _mm256_slli_epi16(sa, 8)),
                                      _mm256_maddubs_epi16(cb, _mm256_slli_epi16(sb, 8))};
                if constexpr (TT == 8) {
                    piece_sum8(w, tok[0].ce + e + 128 * h + 64 * k, token_stride(tok), ia);
                } else {
#pragma GCC unroll 4
                    for (int t = 0; t < TT; ++t) {
                        const __m256i p = piece_sum(w, tok[t].ce + e + 128 * h + 64 * k);
                        ia[t] = k == 0 ? p : _mm256_add_epi32(ia[t], p);
                    }
                }
            }
            for (int t = 0; t < TT; ++t) {
                const __m256 v = _mm256_cvtepi32_ps(ia[t]);
                f[t] = h == 0 ? v : _mm256_add_ps(f[t], v);
            }
        }
#pragma GCC unroll 8
        for (int t = 0; t < TT; ++t) {
            auto&& a = acc(t);
            a.acc = _mm256_fmadd_ps(f[t], _mm256_set1_ps(gs.d * tok[t].step[b]), a.acc);
            a.offs_lo = _mm256_fmadd_ps(gs.off_lo, _mm256_loadu_ps(tok[t].s16 + 16 * b), a.offs_lo);
            a.offs_hi = _mm256_fmadd_ps(gs.off_hi, _mm256_loadu_ps(tok[t].s16 + 16 * b + 8), a.offs_hi);
        }
    }
}

template <class L>
struct G16 : KQuantTraits {
    struct Acc {
        __m256 acc, offs_lo, offs_hi;
    };
    struct Ref {
        __m256 &acc, &offs_lo, &offs_hi;
    };
    template <int TT>
    static void blocks(const uint8_t* row, int64_t b0, int64_t b1, const Tok* tok, Acc* a, Fetch fetch) {
        if constexpr (TT == 8) {  // as Q4K::blocks
            g16_blocks<TT, L>(
                row, b0, b1, tok,
                [a](int t) {
                    return Ref{a[t].acc, a[t].offs_lo, a[t].offs_hi};
                },
                fetch);
            return;
        }
        __m256 acc[TT], lo[TT], hi[TT];
        for (int t = 0; t < TT; ++t) {
            acc[t] = a[t].acc;
            lo[t] = a[t].offs_lo;
            hi[t] = a[t].offs_hi;
        }
        g16_blocks<TT, L>(
            row, b0, b1, tok,
            [&](int t) {
                return Ref{acc[t], lo[t], hi[t]};
            },
            fetch);
        for (int t = 0; t < TT; ++t) a[t] = Acc{acc[t], lo[t], hi[t]};
    }
    // the 16 offsets summed as _mm512_reduce_add_ps sums q6k_one512's
    static float result(const Acc& a) { return hsum(a.acc) - hsum(_mm256_add_ps(a.offs_lo, a.offs_hi)); }
};

// ---- Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 (blocks of 32, one fp16 scale d each), their own prepared activation
// (kActC16B): per token float step[nb] | float sum[nb] | int16 ce[n_in] with nb = n_in / 32, each block of x
// rounded to c = round(x / step), step = max|x| / 127^2 (as the k-quants' per 256), sum = step * (sum of its
// c), ce per 32 elements the 16 even ones, then the 16 odd. Per block and token the weights' int16 even and
// odd elements against c by two vpmaddwd (lane m: elements 4 m .. 4 m + 3), converted and scaled by d * step
// in float; Q4_0's codes are q - 8, the -8 applied as -8 d sum (Q5_0's -16 the same way, Q4_1's and Q5_1's
// offset m as m sum). Per 8 blocks one conversion of the 8 exact block totals (hadd) measured slower: one
// token Q8_0 4096x4096 ~3.0 ms against 1.8. ----
struct LTok {
    const float *step, *sum;
    const int16_t* ce;
};

size_t l_ce_offset(int64_t n_in) {
    return round64(size_t(n_in / 32) * 4 * 2) + kSkew;
}

size_t l_token_bytes(int64_t n_in) {
    return round64(l_ce_offset(n_in) + 2 * size_t(n_in) + kSkew);
}

size_t l_act_bytes(int64_t n_in, int64_t n_tokens) {
    return l_token_bytes(n_in) * size_t(n_tokens);
}

LTok l_token(const void* act, int64_t n_in, int64_t t) {
    const auto* base = static_cast<const uint8_t*>(act) + size_t(t) * l_token_bytes(n_in);
    const auto* step = reinterpret_cast<const float*>(base);
    return LTok{step, step + n_in / 32, reinterpret_cast<const int16_t*>(base + l_ce_offset(n_in))};
}

void l_prepare(const float* x, int64_t n_in, int64_t n_tokens, void* act) {
    const int64_t nb = n_in / 32;
    for (int64_t t = 0; t < n_tokens; ++t) {
        const LTok tok = l_token(act, n_in, t);
        auto* step = const_cast<float*>(tok.step);
        auto* sum = const_cast<float*>(tok.sum);
        auto* ce = const_cast<int16_t*>(tok.ce);
        for (int64_t b = 0; b < nb; ++b) {
            alignas(32) int32_t c[32];
            step[b] = round_block(x + t * n_in + b * 32, 32, c);
            int32_t total = 0;
            for (int j = 0; j < 16; ++j) {
                ce[b * 32 + j] = int16_t(c[2 * j]);
                ce[b * 32 + 16 + j] = int16_t(c[2 * j + 1]);
                total += c[2 * j] + c[2 * j + 1];
            }
            sum[b] = step[b] * float(total);
        }
    }
}

struct LegacyTraits {
    using Tok = LTok;
    static Tok token(const void* act, int64_t n_in, int64_t t) { return l_token(act, n_in, t); }
    // 32 blocks (1024 elements) per slice: 4 tokens' activations 8 KiB, as the k-quants' 4 blocks
    static constexpr int kBlockElems = 32, kSliceBlocks = 32;
    static constexpr bool kPass8 = false;
    struct Acc {
        __m256 acc;
        float off;  // the sum over blocks of the block's offset coefficient times the token's sum
    };
};

// The weights of a Q8_0 block as int16: even elements, odd elements (sign-extended bytes).
inline void q8_0_codes(const BlockQ8_0* blk, __m256i& even, __m256i& odd) {
    const __m256i w = load(blk->qs);
    even = _mm256_srai_epi16(_mm256_slli_epi16(w, 8), 8);
    odd = _mm256_srai_epi16(w, 8);
}

// The nibbles of a Q4_0 / Q4_1 / Q5_0 / Q5_1 block in element order by 128-bit lane: element j < 16 is the
// low nibble of qs[j], j + 16 its high one; the low lane takes elements 0..15, the high one 16..31 (high bits
// of each byte left for the caller to mask).
inline __m256i nibble_lanes(const uint8_t* qs) {
    const __m256i q = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)));
    return _mm256_blend_epi32(q, _mm256_srli_epi16(q, 4), 0xF0);  // high lane: the high nibbles
}

// Bit 4 of byte j of each lane set where the fifth bit of that element is (Q5_0 / Q5_1: bit j of qh for
// element j): byte j of the low lane tests bit j of qh, of the high lane bit 16 + j.
inline __m256i fifth_bits(const uint8_t* qh_bytes) {
    uint32_t qh;
    std::memcpy(&qh, qh_bytes, 4);
    const __m256i idx = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,  //
                                         2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x(int64_t(0x8040201008040201ull));
    const __m256i b = _mm256_and_si256(_mm256_shuffle_epi8(_mm256_set1_epi32(int(qh)), idx), bit);
    return _mm256_and_si256(_mm256_cmpeq_epi8(b, bit), _mm256_set1_epi8(0x10));
}

// Codes of a 4-bit block (qs) or 5-bit block (qs, qh) as int16: even elements of each lane in `even`, odd
// ones in `odd`.
inline void nibble_codes(const uint8_t* qs, const uint8_t* qh, __m256i& even, __m256i& odd) {
    __m256i v = _mm256_and_si256(nibble_lanes(qs), _mm256_set1_epi8(0x0F));
    if (qh) v = _mm256_or_si256(v, fifth_bits(qh));
    even = _mm256_and_si256(v, _mm256_set1_epi16(0x00FF));
    odd = _mm256_srli_epi16(v, 8);
}

// Per type: the codes, and the block's offset (w = d code + k off: Q4_0 d (code - 8), Q5_0 d (code - 16),
// Q4_1 / Q5_1 d code + m) as kOffset * the sum over blocks of off_coef * the token's sum of x.
template <class Block>
struct LegacyType;
template <>
struct LegacyType<BlockQ8_0> {
    static constexpr float kOffset = 0.0f;
    static void codes(const BlockQ8_0* b, __m256i& even, __m256i& odd) { q8_0_codes(b, even, odd); }
    static float off_coef(const BlockQ8_0*) { return 0.0f; }
};
template <>
struct LegacyType<BlockQ4_0> {
    static constexpr float kOffset = -8.0f;
    static void codes(const BlockQ4_0* b, __m256i& even, __m256i& odd) {
        nibble_codes(b->qs, nullptr, even, odd);
    }
    static float off_coef(const BlockQ4_0* b) { return _cvtsh_ss(b->d); }
};
template <>
struct LegacyType<BlockQ4_1> {
    static constexpr float kOffset = 1.0f;
    static void codes(const BlockQ4_1* b, __m256i& even, __m256i& odd) {
        nibble_codes(b->qs, nullptr, even, odd);
    }
    static float off_coef(const BlockQ4_1* b) { return _cvtsh_ss(b->m); }
};
template <>
struct LegacyType<BlockQ5_0> {
    static constexpr float kOffset = -16.0f;
    static void codes(const BlockQ5_0* b, __m256i& even, __m256i& odd) {
        nibble_codes(b->qs, b->qh, even, odd);
    }
    static float off_coef(const BlockQ5_0* b) { return _cvtsh_ss(b->d); }
};
template <>
struct LegacyType<BlockQ5_1> {
    static constexpr float kOffset = 1.0f;
    static void codes(const BlockQ5_1* b, __m256i& even, __m256i& odd) {
        nibble_codes(b->qs, b->qh, even, odd);
    }
    static float off_coef(const BlockQ5_1* b) { return _cvtsh_ss(b->m); }
};

template <class Block>
struct Legacy : LegacyTraits {
    using T = LegacyType<Block>;
    template <int TT>
    static void blocks(const uint8_t* row, int64_t b0, int64_t b1, const Tok* tok, Acc* a, Fetch fetch) {
        __m256 acc[TT];
        float off[TT];
        for (int t = 0; t < TT; ++t) {
            acc[t] = a[t].acc;
            off[t] = a[t].off;
        }
        for (int64_t b = b0; b < b1; ++b) {
            const uint8_t* p = row + size_t(b) * sizeof(Block);
            fetch(p, sizeof(Block));
            const auto* blk = reinterpret_cast<const Block*>(p);
            __m256i even, odd;
            T::codes(blk, even, odd);
            const float d = _cvtsh_ss(blk->d);
            const float k = T::off_coef(blk);
#pragma GCC unroll 4
            for (int t = 0; t < TT; ++t) {
                const int16_t* c = tok[t].ce + b * 32;
                const __m256i s =
                    _mm256_add_epi32(_mm256_madd_epi16(even, load(c)), _mm256_madd_epi16(odd, load(c + 16)));
                acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(d * tok[t].step[b]), acc[t]);
                if constexpr (T::kOffset != 0.0f) off[t] += k * tok[t].sum[b];
            }
        }
        for (int t = 0; t < TT; ++t) a[t] = Acc{acc[t], off[t]};
    }
    static float result(const Acc& a) {
        return hsum(a.acc) + T::kOffset * a.off;
    }
};

// ---- rows ----
// One token: each row streamed on its own. More: rows in groups of kSliceRows, tokens in passes of 8 (the
// k-quants), 4, 2, 1, blocks in slices of kSliceBlocks taken across the group's rows, so that a slice's
// activations (8 tokens: 16 KiB) stay in L1 for all its rows and the rows' blocks come from L1/L2 after the
// first pass; each (row, token) keeps its accumulators between slices and adds its blocks in order, as a lone
// row does. Passes of 8 make the codes' products once for 8 tokens: with piece_sum8 and the accumulators in
// place, 64 rows x 4096 from the caches, 8 tokens, Q4_K 51-70 us against 67-85 in passes of 4, Q6_K 67-81
// against 80-98 (noisy host); Q4_K_M tg16 x8 6.13-6.95 t/s against 5.54-5.84 (bench/RESULTS.md 19:13).
constexpr int kSliceRows = 8;

template <class K, int TT>
void pass(const uint8_t* rows, size_t row_bytes, int n_rows, int64_t nb, const typename K::Tok* tok,
          float* out, int64_t out_stride) {
    typename K::Acc a[kSliceRows][TT];
    for (int r = 0; r < n_rows; ++r)
        for (int t = 0; t < TT; ++t) a[r][t] = typename K::Acc{};
    const Fetch fetch{2 * kSliceRows * row_bytes};
    for (int64_t b0 = 0; b0 < nb; b0 += K::kSliceBlocks) {
        const int64_t b1 = std::min<int64_t>(nb, b0 + K::kSliceBlocks);
        for (int r = 0; r < n_rows; ++r)
            K::template blocks<TT>(rows + size_t(r) * row_bytes, b0, b1, tok, a[r], fetch);
    }
    for (int r = 0; r < n_rows; ++r)
        for (int t = 0; t < TT; ++t) out[t * out_stride + r] = K::result(a[r][t]);
}

// Passes of 8 tokens for the k-quants unless KINFER_AVX2_PASS8=0 (read once; comparisons).
bool pass8_enabled() {
    static const bool on = [] {
        const char* env = std::getenv("KINFER_AVX2_PASS8");
        return !(env && env[0] == '0');
    }();
    return on;
}

template <class K>
void rows(const uint8_t* w, size_t row_bytes, int64_t n_in, const void* act, int64_t n_tokens, int64_t r0,
          int64_t r1, float* out, int64_t out_stride) {
    const int64_t nb = n_in / K::kBlockElems;
    if (n_tokens == 1) {
        const typename K::Tok tok = K::token(act, n_in, 0);
        for (int64_t r = r0; r < r1; ++r) {
            typename K::Acc a{};
            K::template blocks<1>(w + size_t(r) * row_bytes, 0, nb, &tok, &a, Fetch{0});
            out[r] = K::result(a);
        }
        return;
    }
    for (int64_t r = r0; r < r1; r += kSliceRows) {
        const int n_rows = int(std::min<int64_t>(kSliceRows, r1 - r));
        const uint8_t* group = w + size_t(r) * row_bytes;
        for (int64_t t0 = 0; t0 < n_tokens;) {
            const int64_t left = n_tokens - t0;
            const int tt = left >= 8 && K::kPass8 && pass8_enabled() ? 8
                           : left >= 4                               ? 4
                                                                     : (left >= 2 ? 2 : 1);
            typename K::Tok tok[8];
            for (int t = 0; t < tt; ++t) tok[t] = K::token(act, n_in, t0 + t);
            float* o = out + t0 * out_stride + r;
            switch (tt) {
                case 8:
                    if constexpr (K::kPass8) pass<K, 8>(group, row_bytes, n_rows, nb, tok, o, out_stride);
                    break;
                case 4:
                    pass<K, 4>(group, row_bytes, n_rows, nb, tok, o, out_stride);
                    break;
                case 2:
                    pass<K, 2>(group, row_bytes, n_rows, nb, tok, o, out_stride);
                    break;
                default:
                    pass<K, 1>(group, row_bytes, n_rows, nb, tok, o, out_stride);
            }
            t0 += tt;
        }
    }
}

}  // namespace

const MatmulPath* decode_path_i8x2p_avx2(GgmlType type) {
    static constexpr MatmulPath kQ4_K{kActC16K, act_bytes, prepare, rows<Q4K<BlockQ4_K>>, 1};
    static constexpr MatmulPath kQ5_K{kActC16K, act_bytes, prepare, rows<Q4K<BlockQ5_K>>, 1};
    static constexpr MatmulPath kQ6_K{kActC16K, act_bytes, prepare, rows<G16<Q6KLayout>>, 1};
    static constexpr MatmulPath kQ3_K{kActC16K, act_bytes, prepare, rows<G16<Q3KLayout>>, 1};
    static constexpr MatmulPath kQ2_K{kActC16K, act_bytes, prepare, rows<G16<Q2KLayout>>, 1};
    static constexpr MatmulPath kQ8_0{kActC16B, l_act_bytes, l_prepare, rows<Legacy<BlockQ8_0>>, 1};
    static constexpr MatmulPath kQ4_0{kActC16B, l_act_bytes, l_prepare, rows<Legacy<BlockQ4_0>>, 1};
    static constexpr MatmulPath kQ4_1{kActC16B, l_act_bytes, l_prepare, rows<Legacy<BlockQ4_1>>, 1};
    static constexpr MatmulPath kQ5_0{kActC16B, l_act_bytes, l_prepare, rows<Legacy<BlockQ5_0>>, 1};
    static constexpr MatmulPath kQ5_1{kActC16B, l_act_bytes, l_prepare, rows<Legacy<BlockQ5_1>>, 1};
    switch (type) {
        case GgmlType::Q4_K:
            return &kQ4_K;
        case GgmlType::Q5_K:
            return &kQ5_K;
        case GgmlType::Q6_K:
            return &kQ6_K;
        case GgmlType::Q3_K:
            return &kQ3_K;
        case GgmlType::Q2_K:
            return &kQ2_K;
        case GgmlType::Q8_0:
            return &kQ8_0;
        case GgmlType::Q4_0:
            return &kQ4_0;
        case GgmlType::Q4_1:
            return &kQ4_1;
        case GgmlType::Q5_0:
            return &kQ5_0;
        case GgmlType::Q5_1:
            return &kQ5_1;
        default:
            return nullptr;
    }
}

}  // namespace kinfer::cpu
#endif
