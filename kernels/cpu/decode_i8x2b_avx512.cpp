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
//
// This file alone is built with -mavx512f/bw/vl/vnni and only runs where detected_isa() allows it.
#include "kernels/cpu/decode_table.hpp"

#if defined(__x86_64__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 on _mm512_undefined in the intrinsics
#include <immintrin.h>

#include <cstring>

#include "kernels/blocks.hpp"
#include "kernels/cpu/decode_i8x2_shared.hpp"

namespace kinfer::cpu {
namespace {

using i8x2::hsum;
using i8x2::prefetch_ahead;

// ---- prepared activation (kActI8x2BP + kOff), per token, n_grp = ceil(n_in / 256) groups of 8 blocks,
// zero past n_in:  int8 q1[256 n_grp] | int8 q2[256 n_grp] | float step[8 n_grp] | float off[8 n_grp]
// Elements 16 h .. 16 h + 15 of block b are at 64 (b / 2) + 32 h + 16 (b % 2) of q1 and q2; step[b] and
// off[b] = kOff * step[b] * C_b are at lane slot(b % 8) of their group, the order the sums come out in.
// Regions kSkew bytes apart (power-of-two lengths would share L1 sets). ----
constexpr size_t kSkew = 64;

constexpr int slot(int64_t j) {  // blocks 0 2 4 6 in lanes 0..3, 1 3 5 7 in lanes 4..7
    return int(j / 2 + 4 * (j % 2));
}

int64_t groups(int64_t n_in) {
    return (n_in + 255) / 256;
}

size_t token_bytes(int64_t n_in) {
    const size_t g = size_t(groups(n_in));
    return 2 * (256 * g + kSkew) + 2 * 32 * g + kSkew;
}

size_t act_bytes(int64_t n_in, int64_t n_tokens) {
    return token_bytes(n_in) * size_t(n_tokens);
}

struct Tok {
    const int8_t *q1, *q2;
    const float *step, *off;
};

Tok token(const void* act, int64_t n_in, int64_t t) {
    const int64_t g = groups(n_in);
    const auto* base = static_cast<const uint8_t*>(act) + size_t(t) * token_bytes(n_in);
    const auto* q1 = reinterpret_cast<const int8_t*>(base);
    const auto* step = reinterpret_cast<const float*>(base + 2 * (256 * size_t(g) + kSkew));
    return Tok{q1, q1 + 256 * g + kSkew, step, step + 8 * g};
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
        for (int64_t b = 0; b < nb_pad; ++b) {
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
            for (int h = 0; h < 2; ++h) {
                const __m512i ci = i8x2::split127(h ? c : a, id, q1 + at + 32 * h, q2 + at + 32 * h);
                sum += _mm512_reduce_add_epi32(ci);
            }
            off[lane] = float(kOff) * step[lane] * float(sum);
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
    static constexpr int kOff = 128;  // signed codes read as w ^ 0x80 = w + 128
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
    // elements 0..15 in the low nibbles, 16..31 in the high ones
    static void codes(const uint8_t* a, __m256i& first, __m256i& second) {
        const __m256i q = _mm256_set_m128i(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + kBytes + 2)),
                                           _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + 2)));
        const __m256i low = _mm256_set1_epi8(0x0F);
        first = _mm256_and_si256(q, low);
        second = _mm256_and_si256(_mm256_srli_epi16(q, 4), low);
    }
};

inline uint64_t load16(const uint8_t* p) {
    uint16_t v;
    std::memcpy(&v, p, 2);
    return v;
}

// The fp16 scales of eight blocks as floats, block j in lane slot(j).
template <class U>
inline __m256 block_scales(const uint8_t* p) {
    constexpr size_t K = U::kBytes;
    const uint64_t lo =
        load16(p) | load16(p + 2 * K) << 16 | load16(p + 4 * K) << 32 | load16(p + 6 * K) << 48;
    const uint64_t hi =
        load16(p + K) | load16(p + 3 * K) << 16 | load16(p + 5 * K) << 32 | load16(p + 7 * K) << 48;
    return _mm256_cvtph_ps(_mm_set_epi64x(int64_t(hi), int64_t(lo)));
}

// One row x TT tokens, eight blocks at a time. A token's sums are formed in the same order whatever TT is.
template <class U, int TT>
void tile(const uint8_t* row, int64_t nb, const Tok* tok, float* out, int64_t out_stride) {
    __m256 acc[TT], offs[TT];
    for (int t = 0; t < TT; ++t) acc[t] = offs[t] = _mm256_setzero_ps();
    alignas(64) uint8_t tail[8 * U::kBytes];  // a last, partial group of blocks, zero-padded
    for (int64_t b0 = 0; b0 < nb; b0 += 8) {
        const uint8_t* p = row + size_t(b0) * U::kBytes;
        if (nb - b0 < 8) {  // zero blocks past the row: scale 0 (and their activation is zero)
            std::memset(tail, 0, sizeof(tail));
            std::memcpy(tail, p, size_t(nb - b0) * U::kBytes);
            p = tail;
        }
        prefetch_ahead(p, 8 * U::kBytes);
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
                hi[k] =
                    _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), w[k][0], at(q1 + 64 * k)),
                                        w[k][1], at(q1 + 64 * k + 32));
                lo[k] =
                    _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), w[k][0], at(q2 + 64 * k)),
                                        w[k][1], at(q2 + 64 * k + 32));
            }
            const __m256i c = _mm256_add_epi32(_mm256_mullo_epi32(sum_halves4(hi), _mm256_set1_epi32(127)),
                                               sum_halves4(lo));
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(c),
                                     _mm256_mul_ps(d, _mm256_loadu_ps(tok[t].step + b0)), acc[t]);
            offs[t] = _mm256_fmadd_ps(d, _mm256_loadu_ps(tok[t].off + b0), offs[t]);
        }
    }
    for (int t = 0; t < TT; ++t) out[t * out_stride] = hsum(acc[t]) - hsum(offs[t]);
}

// Tokens in passes of 8, 4, 2, 1 over each row (in L1/L2 after the first pass).
template <class U>
void rows(const uint8_t* w, size_t row_bytes, int64_t n_in, const void* act, int64_t n_tokens, int64_t r0,
          int64_t r1, float* out, int64_t out_stride) {
    const int64_t nb = n_in / 32;
    for (int64_t r = r0; r < r1; ++r) {
        const uint8_t* row = w + size_t(r) * row_bytes;
        for (int64_t t0 = 0; t0 < n_tokens;) {
            const int64_t left = n_tokens - t0;
            const int tt = left >= 8 ? 8 : (left >= 4 ? 4 : (left >= 2 ? 2 : 1));
            Tok tok[8];
            for (int t = 0; t < tt; ++t) tok[t] = token(act, n_in, t0 + t);
            float* o = out + t0 * out_stride + r;
            switch (tt) {
                case 8:
                    tile<U, 8>(row, nb, tok, o, out_stride);
                    break;
                case 4:
                    tile<U, 4>(row, nb, tok, o, out_stride);
                    break;
                case 2:
                    tile<U, 2>(row, nb, tok, o, out_stride);
                    break;
                default:
                    tile<U, 1>(row, nb, tok, o, out_stride);
            }
            t0 += tt;
        }
    }
}

}  // namespace

const MatmulPath* decode_path_i8x2b_avx512(GgmlType type) {
    static constexpr MatmulPath kQ8_0{kActI8x2BP + UQ8_0::kOff, act_bytes, prepare<UQ8_0::kOff>, rows<UQ8_0>,
                                      1};
    static constexpr MatmulPath kQ4_0{kActI8x2BP + UQ4_0::kOff, act_bytes, prepare<UQ4_0::kOff>, rows<UQ4_0>,
                                      1};
    switch (type) {
        case GgmlType::Q8_0:
            return &kQ8_0;
        case GgmlType::Q4_0:
            return &kQ4_0;
        default:
            return nullptr;
    }
}

}  // namespace kinfer::cpu
#endif
