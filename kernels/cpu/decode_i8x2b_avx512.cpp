// The two-int8-term decode path for Q8_0 and Q4_0 (blocks of 32 with an fp16 scale each), AVX-512 VNNI on
// 256-bit vectors: one block is one vector of 32 codes. x is rounded per block as for the k-quants in
// decode_i8x2p_avx512.cpp (c = round(x / step), step = max|x| / 127^2, c = 127 q1 + q2, q2 >= 0), and per
// block vpdpbusd gives the lanes of w . q1 and w . q2. Since each block has its own float scale, the per-
// block work is what bounded the older kernel (a conversion and two FMAs per block); here eight blocks'
// lanes are summed horizontally into one vector of eight block sums, so the conversion, the scale and the
// offset cost one instruction per eight blocks. Each vector holds the same 16 elements of two blocks (the
// activation is stored in that order), so two vpdpbusd leave a pair of blocks in one vector, four lanes
// each, and the horizontal sums start from four vectors instead of eight:
//   out = sum_b d_b * step_b * (127 H_b + L_b - kOff * C_b), C_b = sum of c over block b,
// exact in int32 up to the float products (|127 H_b + L_b| <= 32 * 255 * 16129). The offset (Q8_0's +128
// from reading signed codes as w ^ 0x80, Q4_0's -8 ... +8 codes) multiplies step_b * C_b, prepared with x.
// Batches of 4 and 8 tokens take 512-bit int16 products on transposed blocks instead (slices16; rows of a
// single group, 256 elements: slices8), with the same sums.
//
// This file alone is built with -mavx512f/bw/vl/vnni and only runs where detected_isa() allows it.
#include "kernels/cpu/decode_table.hpp"

#if defined(__x86_64__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 on _mm512_undefined in the intrinsics
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/blocks.hpp"
#include "kernels/cpu/decode_i8x2_shared.hpp"

namespace kinfer::cpu {
namespace {

using i8x2::hsum;
using i8x2::prefetch_ahead;
using i8x2::prefetch_l2;

// ---- prepared activation (kActI8x2BP + kOff), per token, n_grp = ceil(n_in / 256) groups of 8 blocks,
// zero past n_in:  int8 q1[256 n_grp] | int8 q2[256 n_grp] | float step[8 n_grp] | float off[8 n_grp] |
// int32 ct[256 n_pair]
// Elements 16 h .. 16 h + 15 of block b are at 64 (b / 2) + 32 h + 16 (b % 2) of q1 and q2; step[b] and
// off[b] = kOff * step[b] * C_b are at lane slot(b % 8) of their group, the order the sums come out in.
// ct, for the batch tiles: c = 127 q1 + q2 as int16 pairs, per n_pair = ceil(n_in / 512) pairs of groups
// transposed (see transpose16): int32 256 P + 16 k + lane = elements 2 k, 2 k + 1 of block 16 P +
// kLaneBlock[lane]. Regions kSkew bytes apart (power-of-two lengths would share L1 sets). ----
constexpr size_t kSkew = 64;

constexpr int slot(int64_t j) {  // blocks 0 2 4 6 in lanes 0..3, 1 3 5 7 in lanes 4..7
    return int(j / 2 + 4 * (j % 2));
}
// the block in each lane of a transposed pair of groups: slot order in each half
constexpr int kLaneBlock[16] = {0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15};

int64_t groups(int64_t n_in) {
    return (n_in + 255) / 256;
}
int64_t pairs(int64_t n_in) {
    return (n_in + 511) / 512;
}

size_t token_bytes(int64_t n_in) {
    const size_t g = size_t(groups(n_in));
    return 2 * (256 * g + kSkew) + 2 * 32 * g + kSkew + 4 * 256 * size_t(pairs(n_in)) + kSkew;
}

// out[k] lane i = in[i] lane k, for 16 vectors of 16 int32 (4 rounds of 16 two-source shuffles).
inline void transpose16(const __m512i* in, __m512i* out) {
    __m512i t[16], u[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] =
            _mm512_unpacklo_epi32(in[i], in[i + 1]);  // per 128-bit lane L: in[i][4L], in[i+1][4L], .. 4L+1
        t[i + 1] = _mm512_unpackhi_epi32(in[i], in[i + 1]);  // 4L + 2, 4L + 3
    }
    for (int a = 0; a < 4; ++a) {  // u[4 a + e] lane L: rows 4a .. 4a + 3, element 4 L + e
        u[4 * a + 0] = _mm512_unpacklo_epi64(t[4 * a], t[4 * a + 2]);
        u[4 * a + 1] = _mm512_unpackhi_epi64(t[4 * a], t[4 * a + 2]);
        u[4 * a + 2] = _mm512_unpacklo_epi64(t[4 * a + 1], t[4 * a + 3]);
        u[4 * a + 3] = _mm512_unpackhi_epi64(t[4 * a + 1], t[4 * a + 3]);
    }
    for (int e = 0; e < 4; ++e) {
        const __m512i v0 = _mm512_shuffle_i32x4(u[e], u[4 + e], 0x44),
                      v1 = _mm512_shuffle_i32x4(u[e], u[4 + e], 0xEE);
        const __m512i w0 = _mm512_shuffle_i32x4(u[8 + e], u[12 + e], 0x44),
                      w1 = _mm512_shuffle_i32x4(u[8 + e], u[12 + e], 0xEE);
        out[e] = _mm512_shuffle_i32x4(v0, w0, 0x88);
        out[4 + e] = _mm512_shuffle_i32x4(v0, w0, 0xDD);
        out[8 + e] = _mm512_shuffle_i32x4(v1, w1, 0x88);
        out[12 + e] = _mm512_shuffle_i32x4(v1, w1, 0xDD);
    }
}

size_t act_bytes(int64_t n_in, int64_t n_tokens) {
    return token_bytes(n_in) * size_t(n_tokens);
}

struct Tok {
    const int8_t *q1, *q2;
    const float *step, *off;
    const int32_t* ct;
};

Tok token(const void* act, int64_t n_in, int64_t t) {
    const int64_t g = groups(n_in);
    const auto* base = static_cast<const uint8_t*>(act) + size_t(t) * token_bytes(n_in);
    const auto* q1 = reinterpret_cast<const int8_t*>(base);
    const auto* step = reinterpret_cast<const float*>(base + 2 * (256 * size_t(g) + kSkew));
    const auto* ct =
        reinterpret_cast<const int32_t*>(reinterpret_cast<const uint8_t*>(step + 16 * g) + kSkew);
    return Tok{q1, q1 + 256 * g + kSkew, step, step + 8 * g, ct};
}

template <int kOff>
void prepare(const float* x, int64_t n_in, int64_t n_tokens, void* act) {
    const int64_t nb_pad = 8 * groups(n_in);
    for (int64_t t = 0; t < n_tokens; ++t) {
        const Tok tok = token(act, n_in, t);
        auto* q1 = const_cast<int8_t*>(tok.q1);
        auto* q2 = const_cast<int8_t*>(tok.q2);
        auto* step = const_cast<float*>(tok.step);
        auto* off = const_cast<float*>(tok.off);
        auto* ct = const_cast<int32_t*>(tok.ct);
        for (int64_t p = 0; p < pairs(n_in); ++p) {
            __m512i c16[16];  // block 16 p + j's c as 16 int16 pairs (zero past n_in)
            for (int j = 0; j < 16; ++j) {
                const int64_t b = 16 * p + j;
                c16[j] = _mm512_setzero_si512();
                if (b >= nb_pad) continue;
                const int64_t at = 64 * (b / 2) + 16 * (b % 2), lane = 8 * (b / 8) + slot(b % 8);
                if (32 * b >= n_in) {
                    for (int h = 0; h < 2; ++h) {
                        std::memset(q1 + at + 32 * h, 0, 16);
                        std::memset(q2 + at + 32 * h, 0, 16);
                    }
                    step[lane] = off[lane] = 0.0f;
                    continue;
                }
                const float* xb = x + t * n_in + 32 * b;
                const __m512 a = _mm512_loadu_ps(xb), c = _mm512_loadu_ps(xb + 16);
                const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(a), _mm512_abs_ps(c)));
                const float id = amax > 0 ? 16129.0f / amax : 0.0f;
                step[lane] = amax > 0 ? amax / 16129.0f : 0.0f;
                int32_t sum = 0;
                __m256i half[2];
                for (int h = 0; h < 2; ++h) {
                    const __m512i ci = i8x2::split127(h ? c : a, id, q1 + at + 32 * h, q2 + at + 32 * h);
                    sum += _mm512_reduce_add_epi32(ci);
                    half[h] = _mm512_cvtepi32_epi16(ci);
                }
                off[lane] = float(kOff) * step[lane] * float(sum);
                c16[j] = _mm512_inserti64x4(_mm512_castsi256_si512(half[0]), half[1], 1);
            }
            __m512i rows[16], cols[16];
            for (int l = 0; l < 16; ++l) rows[l] = c16[kLaneBlock[l]];
            transpose16(rows, cols);
            for (int k = 0; k < 16; ++k) _mm512_storeu_si512(ct + 256 * p + 16 * k, cols[k]);
        }
    }
}

// Per 128-bit half, lane k of the result: the sum of that half of v[k] (a block's four lanes). Unpacks and
// adds, all single-uop (vphaddd measured slower on Zen 4).
inline __m256i sum_pairs32(__m256i a, __m256i b) {  // per half: a0+a2, b0+b2, a1+a3, b1+b3
    return _mm256_add_epi32(_mm256_unpacklo_epi32(a, b), _mm256_unpackhi_epi32(a, b));
}
inline __m256i sum_halves4(const __m256i* v) {
    const __m256i a = sum_pairs32(v[0], v[1]), b = sum_pairs32(v[2], v[3]);
    return _mm256_add_epi32(_mm256_unpacklo_epi64(a, b), _mm256_unpackhi_epi64(a, b));
}

// The codes of two consecutive blocks a and b as two vectors: elements 0..15 of a and b, then 16..31 of a
// and b, the order of the prepared activation.
struct UQ8_0 {
    static constexpr size_t kBytes = sizeof(BlockQ8_0);
    static constexpr int kOff = 128;        // signed codes read as w ^ 0x80 = w + 128
    static constexpr bool kPacked = false;  // codes to 255: w . q1 overflows an int16 half
    static void codes(const uint8_t* a, __m256i& first, __m256i& second) {
        const auto half = [](const uint8_t* p) {
            return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
        };
        const uint8_t* b = a + kBytes;
        const __m256i flip = _mm256_set1_epi8(int8_t(0x80));
        first = _mm256_xor_si256(_mm256_set_m128i(half(b + 2), half(a + 2)), flip);
        second = _mm256_xor_si256(_mm256_set_m128i(half(b + 18), half(a + 18)), flip);
    }
};

struct UQ4_0 {
    static constexpr size_t kBytes = sizeof(BlockQ4_0);
    static constexpr int kOff = 8;
    static constexpr bool kPacked = true;  // group8 packs w . q1 and w . q2 in one lane (codes below 16)
    // elements 0..15 in the low nibbles, 16..31 in the high ones
    static void codes(const uint8_t* a, __m256i& first, __m256i& second) {
        const __m256i q = _mm256_set_m128i(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + kBytes + 2)),
                                           _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + 2)));
        const __m256i low = _mm256_set1_epi8(0x0F);
        first = _mm256_and_si256(q, low);
        second = _mm256_and_si256(_mm256_srli_epi16(q, 4), low);
    }
};

// Q4_0 where the CPU has GFNI: the high nibbles by one vgf2p8affineqb instead of a shift and a mask (the
// one-token tile is bound by instruction count, see block_scales).
struct UQ4_0G : UQ4_0 {
    static void codes(const uint8_t* a, __m256i& first, __m256i& second) {
        const __m256i q = _mm256_set_m128i(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + kBytes + 2)),
                                           _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + 2)));
        first = _mm256_and_si256(q, _mm256_set1_epi8(0x0F));
        second = i8x2::gf2p8affine(q, _mm256_set1_epi64x(i8x2::kHighNibble));
    }
};

// One block's 32 codes (Q8_0: w + 128, Q4_0: 0..15, as the packed tiles read them) as int16 pairs in
// element order.
inline __m512i codes16(const uint8_t* p, UQ8_0) {
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2));
    return _mm512_cvtepu8_epi16(_mm256_xor_si256(q, _mm256_set1_epi8(int8_t(0x80))));
}
inline __m512i codes16(const uint8_t* p, UQ4_0) {
    const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2));
    const __m128i low = _mm_set1_epi8(0x0F);
    return _mm512_cvtepu8_epi16(
        _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), low), _mm_and_si128(q, low)));
}

inline uint64_t load16(const uint8_t* p) {
    uint16_t v;
    std::memcpy(&v, p, 2);
    return v;
}

// The word offsets (of the group's first 128 bytes) of the eight blocks' fp16 scales, in slot order.
template <size_t K>
struct ScaleWords {
    alignas(64) uint16_t idx[32];
    constexpr ScaleWords() : idx{} {
        for (int j = 0; j < 8; ++j) idx[slot(j)] = uint16_t(j * K / 2);
    }
};

// The fp16 scales of eight blocks as floats, block j in lane slot(j). Where they all lie at even offsets in
// the group's first 128 bytes (Q4_0: 18-byte blocks, the last scale at byte 126), one two-source word
// permute gathers them (4 instructions instead of ~20 scalar ones: the one-token Q4_0 tile is bound by
// instruction count: kinfer_bench Decode/q4_0/avx512 one token 23.0 -> 26.6 GB/s at 4096x4096, 22.7 -> 25.9
// at 14336x4096, 8 tokens +3%); otherwise (Q8_0) in general-purpose registers.
template <class U>
inline __m256 block_scales(const uint8_t* p) {
    constexpr size_t K = U::kBytes;
    if constexpr (K % 2 == 0 && 7 * K + 2 <= 128) {
        static constexpr ScaleWords<K> kWords;
        const __m512i s = _mm512_permutex2var_epi16(_mm512_loadu_si512(p), _mm512_load_si512(kWords.idx),
                                                    _mm512_loadu_si512(p + 64));
        return _mm256_cvtph_ps(_mm512_castsi512_si128(s));
    }
    const uint64_t lo =
        load16(p) | load16(p + 2 * K) << 16 | load16(p + 4 * K) << 32 | load16(p + 6 * K) << 48;
    const uint64_t hi =
        load16(p + K) | load16(p + 3 * K) << 16 | load16(p + 5 * K) << 32 | load16(p + 7 * K) << 48;
    return _mm256_cvtph_ps(_mm_set_epi64x(int64_t(hi), int64_t(lo)));
}

// Eight blocks at p (blocks b0 .. b0 + 7 of a row) for TT tokens, into their float accumulators.
template <class U, int TT>
[[gnu::always_inline]] inline void group8(const uint8_t* p, int64_t b0, const Tok* tok, __m256* acc,
                                          __m256* offs) {
    const __m256 d = block_scales<U>(p);
    __m256i w[4][2];
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k) U::codes(p + size_t(2 * k) * U::kBytes, w[k][0], w[k][1]);
#pragma GCC unroll 8
    for (int t = 0; t < TT; ++t) {
        __m256i hi[4], lo[4];
        const int8_t* q1 = tok[t].q1 + 32 * b0;
        const int8_t* q2 = tok[t].q2 + 32 * b0;
        const auto at = [](const int8_t* q) {
            return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q));
        };
#pragma GCC unroll 4
        for (int k = 0; k < 4; ++k) {
            hi[k] = _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), w[k][0], at(q1 + 64 * k)),
                                        w[k][1], at(q1 + 64 * k + 32));
            // kPacked: lo on top of hi << 16 (per lane |hi| <= 8 * 15 * 127 < 2^15, 0 <= lo <= 8 * 15 * 126)
            const __m256i start = U::kPacked ? _mm256_slli_epi32(hi[k], 16) : _mm256_setzero_si256();
            lo[k] = _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(start, w[k][0], at(q2 + 64 * k)), w[k][1],
                                        at(q2 + 64 * k + 32));
        }
        __m256i c;  // per block 127 H + L, the same exact int32 either way
        if constexpr (U::kPacked) {
            // One level of pair sums on the packed lanes keeps both halves exact (|hi| <= 30 480, 0 <= lo <=
            // 30 240 < 2^15: lo stays a non-negative int16), then vpmaddwd forms 127 hi + lo, then the other
            // level: a horizontal sum and the vpmulld fewer than summing hi and lo apart (kinfer_bench
            // Decode/q4_0 one token, one thread, 3 alternating runs: 14336x4096 877-904 -> 922-939 tok/s
            // with GFNI, 860-876 -> 900-904 without).
            const __m256i m = _mm256_set1_epi32(127 << 16 | 1);
            const __m256i a = _mm256_madd_epi16(sum_pairs32(lo[0], lo[1]), m);
            const __m256i b = _mm256_madd_epi16(sum_pairs32(lo[2], lo[3]), m);
            c = _mm256_add_epi32(_mm256_unpacklo_epi64(a, b), _mm256_unpackhi_epi64(a, b));
        } else {
            c = _mm256_add_epi32(_mm256_mullo_epi32(sum_halves4(hi), _mm256_set1_epi32(127)),
                                 sum_halves4(lo));
        }
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(c), _mm256_mul_ps(d, _mm256_loadu_ps(tok[t].step + b0)),
                                 acc[t]);
        offs[t] = _mm256_fmadd_ps(d, _mm256_loadu_ps(tok[t].off + b0), offs[t]);
    }
}

// The last blocks of a row (nb - b0 < 8), zero-padded to a group: scale 0 (and their activation is zero).
template <class U, int TT>
inline void last_group8(const uint8_t* row, int64_t nb, int64_t b0, const Tok* tok, __m256* acc,
                        __m256* offs) {
    alignas(64) uint8_t tail[8 * U::kBytes];
    std::memset(tail, 0, sizeof(tail));
    std::memcpy(tail, row + size_t(b0) * U::kBytes, size_t(nb - b0) * U::kBytes);
    group8<U, TT>(tail, b0, tok, acc, offs);
}

// One row x TT tokens, eight blocks at a time. A token's sums are formed in the same order whatever TT is.
template <class U, int TT>
void tile(const uint8_t* row, int64_t nb, const Tok* tok, float* out, int64_t out_stride) {
    __m256 acc[TT], offs[TT];
    for (int t = 0; t < TT; ++t) acc[t] = offs[t] = _mm256_setzero_ps();
    for (int64_t b0 = 0; b0 < nb; b0 += 8) {
        const uint8_t* p = row + size_t(b0) * U::kBytes;
        prefetch_ahead(p, 8 * U::kBytes);
        if (nb - b0 < 8)
            last_group8<U, TT>(row, nb, b0, tok, acc, offs);
        else
            group8<U, TT>(p, b0, tok, acc, offs);
    }
    for (int t = 0; t < TT; ++t) out[t * out_stride] = hsum(acc[t]) - hsum(offs[t]);
}

// Batches (TT >= 4 tokens): a pair of groups (16 blocks) of a row transposed once, so that lane l holds
// block kLaneBlock[l] in every vector, its codes as int16 against ct: 16 vpdpwssd per token leave the 16
// block sums in lanes, in the slot order of the packed tiles' two groups, where those spend 32 vpdpbusd and
// two horizontal reductions. The sums are the same exact int32 (|sum| <= 32 * 255 * 16129), followed by the
// same float operations group by group, so a token gets the bits it gets alone.
//
// Rows go kSliceRows at a time, in slices of kSlicePairs pairs of groups taken across the rows, so that the
// slice's activations (8 KiB for 8 tokens) come from L1 for every row; each (row, token) keeps its float
// accumulators in memory between slices and adds its groups in order.
constexpr int kSliceRows = 8, kSlicePairs = 1;

template <class U, int TT>
void slices16(const uint8_t* rows, size_t row_bytes, int64_t nb, const Tok* tok, float* out,
              int64_t out_stride, int n_rows) {
    __m256 acc[kSliceRows][TT], offs[kSliceRows][TT];
    for (int r = 0; r < kSliceRows; ++r)
        for (int t = 0; t < TT; ++t) acc[r][t] = offs[r][t] = _mm256_setzero_ps();
    alignas(64) uint8_t tail[16 * U::kBytes];  // a last, partial pair of groups, zero-padded
    alignas(64) __m512i wt[16];
    const size_t group_bytes = kSliceRows * row_bytes;
    // a last group alone (nb % 16 in 1..8) goes the packed way (group8): transposed, half the lanes would
    // idle
    const int64_t nb_full = nb % 16 != 0 && nb % 16 <= 8 ? nb - nb % 16 : nb;
    for (int64_t s0 = 0; s0 < nb; s0 += 16 * kSlicePairs) {
        const int64_t s1 = std::min<int64_t>(nb, s0 + 16 * kSlicePairs);
        for (int r = 0; r < n_rows; ++r) {
            const uint8_t* row = rows + size_t(r) * row_bytes;
            __m256 a[TT], o[TT];
            for (int t = 0; t < TT; ++t) {
                a[t] = acc[r][t];
                o[t] = offs[r][t];
            }
            for (int64_t b0 = s0; b0 < std::min(s1, nb_full); b0 += 16) {
                const uint8_t* p = row + size_t(b0) * U::kBytes;
                // the same blocks of the next group of rows: one group ahead
                prefetch_l2(p, group_bytes, 16 * U::kBytes);
                if (nb - b0 < 16) {
                    std::memset(tail, 0, sizeof(tail));
                    std::memcpy(tail, p, size_t(nb - b0) * U::kBytes);
                    p = tail;
                }
                const bool second = nb - b0 > 8;
                const __m256 d0 = block_scales<U>(p), d1 = block_scales<U>(p + 8 * U::kBytes);
                {
                    __m512i w[16];
                    for (int l = 0; l < 16; ++l) w[l] = codes16(p + size_t(kLaneBlock[l]) * U::kBytes, U{});
                    transpose16(w, wt);
                }
                __m512i ia[TT];
                for (int t = 0; t < TT; ++t) ia[t] = _mm512_setzero_si512();
#pragma GCC unroll 16
                for (int k = 0; k < 16; ++k) {
                    const __m512i w = _mm512_load_si512(&wt[k]);
                    for (int t = 0; t < TT; ++t)
                        ia[t] =
                            _mm512_dpwssd_epi32(ia[t], w, _mm512_loadu_si512(tok[t].ct + 16 * b0 + 16 * k));
                }
                for (int t = 0; t < TT; ++t) {
                    a[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm512_castsi512_si256(ia[t])),
                                           _mm256_mul_ps(d0, _mm256_loadu_ps(tok[t].step + b0)), a[t]);
                    o[t] = _mm256_fmadd_ps(d0, _mm256_loadu_ps(tok[t].off + b0), o[t]);
                    if (second) {
                        a[t] =
                            _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm512_extracti64x4_epi64(ia[t], 1)),
                                            _mm256_mul_ps(d1, _mm256_loadu_ps(tok[t].step + b0 + 8)), a[t]);
                        o[t] = _mm256_fmadd_ps(d1, _mm256_loadu_ps(tok[t].off + b0 + 8), o[t]);
                    }
                }
            }
            if (nb_full < nb && nb_full < s1) {  // the slice ends with the lone last group
                if (nb - nb_full < 8)
                    last_group8<U, TT>(row, nb, nb_full, tok, a, o);
                else
                    group8<U, TT>(row + size_t(nb_full) * U::kBytes, nb_full, tok, a, o);
            }
            for (int t = 0; t < TT; ++t) {
                acc[r][t] = a[t];
                offs[r][t] = o[t];
            }
        }
    }
    for (int r = 0; r < n_rows; ++r)
        for (int t = 0; t < TT; ++t) out[t * out_stride + r] = hsum(acc[r][t]) - hsum(offs[r][t]);
}

// One block's 32 codes as bytes in element order (what codes16 widens).
inline __m256i codes8(const uint8_t* p, UQ8_0) {
    return _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2)),
                            _mm256_set1_epi8(int8_t(0x80)));
}
inline __m256i codes8(const uint8_t* p, UQ4_0) {
    const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2));
    const __m128i low = _mm_set1_epi8(0x0F);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), low), _mm_and_si128(q, low));
}

// The 8 blocks' codes of a row of one group (nb == 8) as 16 vectors of 8 lanes, two to a 512-bit register
// (out[i]: vectors 2 i and 2 i + 1): lane l of vector k holds elements 2 k and 2 k + 1 of block kLaneBlock[l]
// as an int16 pair (the low halves of what transpose16 makes of these blocks and eight zero ones). The
// element pairs are 16-bit words of the code bytes, so the transposition runs on words, 8 blocks x 16 words,
// as two 8 x 8 transposes in the 128-bit halves (words 0..7 and 8..15), before the widening: 24 256-bit
// shuffles instead of 40 512-bit ones.
template <class U>
inline void transpose8(const uint8_t* p, __m512i* out) {
    __m256i in[8], a[4], b[4], c[4], e[4];
    for (int l = 0; l < 8; ++l) in[l] = codes8(p + size_t(kLaneBlock[l]) * U::kBytes, U{});
    for (int i = 0; i < 4; ++i) {
        a[i] = _mm256_unpacklo_epi16(in[2 * i], in[2 * i + 1]);
        b[i] = _mm256_unpackhi_epi16(in[2 * i], in[2 * i + 1]);
    }
    for (int h = 0; h < 2; ++h) {
        c[2 * h] = _mm256_unpacklo_epi32(a[2 * h], a[2 * h + 1]);
        c[2 * h + 1] = _mm256_unpackhi_epi32(a[2 * h], a[2 * h + 1]);
        e[2 * h] = _mm256_unpacklo_epi32(b[2 * h], b[2 * h + 1]);
        e[2 * h + 1] = _mm256_unpackhi_epi32(b[2 * h], b[2 * h + 1]);
    }
    __m256i o[8];  // o[j]: word j of the 8 blocks (low half), word j + 8 (high half)
    o[0] = _mm256_unpacklo_epi64(c[0], c[2]);
    o[1] = _mm256_unpackhi_epi64(c[0], c[2]);
    o[2] = _mm256_unpacklo_epi64(c[1], c[3]);
    o[3] = _mm256_unpackhi_epi64(c[1], c[3]);
    o[4] = _mm256_unpacklo_epi64(e[0], e[2]);
    o[5] = _mm256_unpackhi_epi64(e[0], e[2]);
    o[6] = _mm256_unpacklo_epi64(e[1], e[3]);
    o[7] = _mm256_unpackhi_epi64(e[1], e[3]);
    for (int j = 0; j < 8; j += 2) {  // widened: {vector j, vector j + 8}, {j + 1, j + 9}
        const __m512i x = _mm512_cvtepu8_epi16(o[j]), y = _mm512_cvtepu8_epi16(o[j + 1]);
        out[j / 2] = _mm512_shuffle_i64x2(x, y, 0x44);      // vectors j, j + 1
        out[4 + j / 2] = _mm512_shuffle_i64x2(x, y, 0xEE);  // vectors j + 8, j + 9
    }
}

// hsum of each of TT = 4 or 8 vectors, with hsum's additions ((v0 + v4) + (v2 + v6)) + ((v1 + v5) + (v3 +
// v7)) (so bit for bit), done across the vectors at once: the halves added per vector, two vectors per
// register, a 4 x 4 transpose in each 128-bit half, then the two last levels of the tree on whole registers.
// Lane t / 2 + 4 (t % 2) of the result is v[t]'s sum (lanes of missing vectors are zero).
template <int TT>
inline __m256 hsums(const __m256* v) {
    static_assert(TT == 4 || TT == 8);
    __m256 h[4];  // h[p]: v[2p]'s four half sums, then v[2p + 1]'s
    for (int p = 0; p < 4; ++p) {
        if (2 * p >= TT) {
            h[p] = _mm256_setzero_ps();
            continue;
        }
        const __m128 a = _mm_add_ps(_mm256_castps256_ps128(v[2 * p]), _mm256_extractf128_ps(v[2 * p], 1));
        const __m128 b =
            _mm_add_ps(_mm256_castps256_ps128(v[2 * p + 1]), _mm256_extractf128_ps(v[2 * p + 1], 1));
        h[p] = _mm256_insertf128_ps(_mm256_castps128_ps256(a), b, 1);
    }
    const __m256 t0 = _mm256_unpacklo_ps(h[0], h[1]), t1 = _mm256_unpackhi_ps(h[0], h[1]);
    const __m256 t2 = _mm256_unpacklo_ps(h[2], h[3]), t3 = _mm256_unpackhi_ps(h[2], h[3]);
    const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    return _mm256_add_ps(_mm256_add_ps(s0, s2), _mm256_add_ps(s1, s3));
}

// Rows of one group of 8 blocks (the demo model's 256) for TT >= 4 tokens: slices16's transposed form, since
// a pair of groups does not exist here. The row's codes are transposed once; per token 8 vpdpwssd of 512 bits
// (two 8-lane vectors each: transpose8, and the tokens' ct copied once per call two vectors to 64 bytes)
// leave the 8 block sums in lanes in slot order, the two halves added at the end, where group8 spends 16
// vpdpbusd and two horizontal reductions per token. Against 16 of 256 bits: kinfer_bench 32768x256 x 8
// tokens, one thread, 1.00 -> 0.99 ms (Q8_0), 1.07 -> 1.03 (Q4_0); the pass is not bound by the vpdpwssd
// count alone. Same exact int32 sums, then the same float operations as group8 and tile, so a token gets the
// bits it gets alone.
template <class U, int TT>
void slices8(const uint8_t* rows, size_t row_bytes, const Tok* tok, float* out, int64_t out_stride,
             int n_rows) {
    constexpr int NA = TT < 8 ? 2 : 1;  // chains per token: 8 dependent vpdpwssd would bound 4 tokens
    alignas(64) int32_t ct[TT][16][8];  // ct[t][k]: vector k of token t's low half
    for (int t = 0; t < TT; ++t)
        for (int k = 0; k < 16; ++k) std::memcpy(ct[t][k], tok[t].ct + 16 * k, 32);
    for (int r = 0; r < n_rows; ++r) {
        const uint8_t* p = rows + size_t(r) * row_bytes;
        prefetch_ahead(p, 8 * U::kBytes);
        const __m256 d = block_scales<U>(p);
        __m512i wt[8];
        transpose8<U>(p, wt);
        __m512i ia[TT][NA];
        for (int t = 0; t < TT; ++t)
            for (int a = 0; a < NA; ++a) ia[t][a] = _mm512_setzero_si512();
#pragma GCC unroll 8
        for (int k = 0; k < 8; ++k)
#pragma GCC unroll 8
            for (int t = 0; t < TT; ++t)
                ia[t][k % NA] = _mm512_dpwssd_epi32(ia[t][k % NA], wt[k], _mm512_load_si512(ct[t][2 * k]));
        __m256 acc[TT], offs[TT];
        for (int t = 0; t < TT; ++t) {
            __m512i c2 = ia[t][0];
            if constexpr (NA == 2) c2 = _mm512_add_epi32(c2, ia[t][1]);
            const __m256i c = _mm256_add_epi32(_mm512_castsi512_si256(c2), _mm512_extracti64x4_epi64(c2, 1));
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(c), _mm256_mul_ps(d, _mm256_loadu_ps(tok[t].step)),
                                     _mm256_setzero_ps());
            offs[t] = _mm256_fmadd_ps(d, _mm256_loadu_ps(tok[t].off), _mm256_setzero_ps());
        }
        alignas(32) float o[8];
        _mm256_store_ps(o, _mm256_sub_ps(hsums<TT>(acc), hsums<TT>(offs)));
        for (int t = 0; t < TT; ++t) out[t * out_stride + r] = o[t / 2 + 4 * (t % 2)];
    }
}

// Up to 8 rows of one group of 8 blocks for 1 or 2 tokens: tile's group8 per row, then the rows' horizontal
// sums together (hsums across the rows' vectors, hsum's tree: the bits tile gives).
template <class U, int TT>
void group_rows8(const uint8_t* rows, size_t row_bytes, const Tok* tok, float* out, int64_t out_stride,
                 int n_rows) {
    __m256 acc[TT][8], offs[TT][8];
    for (int t = 0; t < TT; ++t)
        for (int r = 0; r < 8; ++r) acc[t][r] = offs[t][r] = _mm256_setzero_ps();
    for (int r = 0; r < n_rows; ++r) {
        const uint8_t* p = rows + size_t(r) * row_bytes;
        prefetch_ahead(p, 8 * U::kBytes);
        __m256 a[TT], o[TT];
        for (int t = 0; t < TT; ++t) a[t] = o[t] = _mm256_setzero_ps();
        group8<U, TT>(p, 0, tok, a, o);
        for (int t = 0; t < TT; ++t) acc[t][r] = a[t], offs[t][r] = o[t];
    }
    for (int t = 0; t < TT; ++t) {
        alignas(32) float v[8];
        _mm256_store_ps(v, _mm256_sub_ps(hsums<8>(acc[t]), hsums<8>(offs[t])));
        for (int r = 0; r < n_rows; ++r) out[t * out_stride + r] = v[r / 2 + 4 * (r % 2)];
    }
}

// Rows kSliceRows at a time; tokens in passes of 8 and 4 (slices16, for rows of 16 blocks or more), then 2
// and 1 (one row at a time) over them, whose blocks are in L1/L2 after the first pass.
template <class U>
void rows(const uint8_t* w, size_t row_bytes, int64_t n_in, const void* act, int64_t n_tokens, int64_t r0,
          int64_t r1, float* out, int64_t out_stride) {
    const int64_t nb = n_in / 32;
    for (int64_t r = r0; r < r1; r += kSliceRows) {
        const int n_rows = int(std::min<int64_t>(kSliceRows, r1 - r));
        const uint8_t* rows = w + size_t(r) * row_bytes;
        for (int64_t t0 = 0; t0 < n_tokens;) {
            const int64_t left = n_tokens - t0;
            const int tt = left >= 8 ? 8 : (left >= 4 ? 4 : (left >= 2 ? 2 : 1));
            Tok tok[8];
            for (int t = 0; t < tt; ++t) tok[t] = token(act, n_in, t0 + t);
            float* o = out + t0 * out_stride + r;
            if (tt == 8 && nb >= 16) {
                slices16<U, 8>(rows, row_bytes, nb, tok, o, out_stride, n_rows);
            } else if (tt == 4 && nb >= 16) {
                slices16<U, 4>(rows, row_bytes, nb, tok, o, out_stride, n_rows);
            } else if (tt == 8 && nb == 8) {
                slices8<U, 8>(rows, row_bytes, tok, o, out_stride, n_rows);
            } else if (tt == 4 && nb == 8) {
                slices8<U, 4>(rows, row_bytes, tok, o, out_stride, n_rows);
            } else if (nb == 8) {
                (tt == 2 ? group_rows8<U, 2> : group_rows8<U, 1>)(rows, row_bytes, tok, o, out_stride,
                                                                  n_rows);
            } else {  // few tokens on rows of 9-15 blocks, or of fewer than 8
                for (int k = 0; k < n_rows; ++k) {
                    const uint8_t* row = rows + size_t(k) * row_bytes;
                    auto* one =
                        tt == 8 ? tile<U, 8> : (tt == 4 ? tile<U, 4> : (tt == 2 ? tile<U, 2> : tile<U, 1>));
                    one(row, nb, tok, o + k, out_stride);
                }
            }
            t0 += tt;
        }
    }
}

}  // namespace

const MatmulPath* decode_path_i8x2b_avx512(GgmlType type, bool gfni) {
    static constexpr MatmulPath kQ8_0{kActI8x2BP + UQ8_0::kOff, act_bytes, prepare<UQ8_0::kOff>, rows<UQ8_0>,
                                      1};
    static constexpr MatmulPath kQ4_0{kActI8x2BP + UQ4_0::kOff, act_bytes, prepare<UQ4_0::kOff>, rows<UQ4_0>,
                                      1};
    static constexpr MatmulPath kQ4_0G{kActI8x2BP + UQ4_0::kOff, act_bytes, prepare<UQ4_0::kOff>,
                                       rows<UQ4_0G>, 1};
    switch (type) {
        case GgmlType::Q8_0:
            return &kQ8_0;
        case GgmlType::Q4_0:
            return gfni ? &kQ4_0G : &kQ4_0;
        default:
            return nullptr;
    }
}

}  // namespace kinfer::cpu
#endif
