// The two-int8-term decode path for Q8_0 and Q4_0 (blocks of 32 with an fp16 scale each), AVX-512 VNNI on
// 256-bit vectors: one block is one vector of 32 codes. x is rounded per block as for the k-quants in
// decode_i8x2p_avx512.cpp (c = round(x / step), step = max|x| / 127^2, c = 127 q1 + q2, q2 >= 0), and per
// block vpdpbusd gives the lanes of w . q1 and w . q2. Since each block has its own float scale, the per-
// block work is what bounded the older kernel (a conversion and two FMAs per block); here eight blocks'
// lane vectors are summed horizontally into one vector of eight block sums (vphaddd tree), so the
// conversion, the scale and the offset cost one instruction per eight blocks:
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

namespace kinfer::cpu {
namespace {

// ---- prepared activation (kActI8x2BP + kOff), per token, n_grp = ceil(n_in / 256) groups of 8 blocks,
// zero past n_in:  int8 q1[256 n_grp] | int8 q2[256 n_grp] | float step[8 n_grp] | float off[8 n_grp]
// off[b] = kOff * step[b] * C_b. Regions kSkew bytes apart (power-of-two lengths would share L1 sets). ----
constexpr size_t kSkew = 64;

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
            if (32 * b >= n_in) {
                std::memset(q1 + 32 * b, 0, 32);
                std::memset(q2 + 32 * b, 0, 32);
                step[b] = off[b] = 0.0f;
                continue;
            }
            const float* xb = x + t * n_in + 32 * b;
            const __m512 a = _mm512_loadu_ps(xb), c = _mm512_loadu_ps(xb + 16);
            const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(a), _mm512_abs_ps(c)));
            const float id = amax > 0 ? 16129.0f / amax : 0.0f;
            step[b] = amax > 0 ? amax / 16129.0f : 0.0f;
            int32_t sum = 0;
            for (int h = 0; h < 2; ++h) {
                // q1 = floor(c / 127): (c + 0.5) / 127 is at least 0.5 / 127 from an integer
                const __m512i ci =
                    _mm512_cvtps_epi32(_mm512_roundscale_ps(_mm512_mul_ps(h ? c : a, _mm512_set1_ps(id)),
                                                            _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
                const __m512i hi = _mm512_cvtps_epi32(_mm512_roundscale_ps(
                    _mm512_mul_ps(_mm512_add_ps(_mm512_cvtepi32_ps(ci), _mm512_set1_ps(0.5f)),
                                  _mm512_set1_ps(1.0f / 127.0f)),
                    _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC));
                const __m512i lo = _mm512_sub_epi32(ci, _mm512_mullo_epi32(hi, _mm512_set1_epi32(127)));
                _mm_storeu_si128(reinterpret_cast<__m128i*>(q1 + 32 * b + 16 * h), _mm512_cvtepi32_epi8(hi));
                _mm_storeu_si128(reinterpret_cast<__m128i*>(q2 + 32 * b + 16 * h), _mm512_cvtepi32_epi8(lo));
                sum += _mm512_reduce_add_epi32(ci);
            }
            off[b] = float(kOff) * step[b] * float(sum);
        }
    }
}

// Lane j of the result: the sum of v[j]'s eight lanes. Unpacks and adds, all single-uop (a vphaddd tree
// has fewer instructions but measured 30% slower on Zen 4).
inline __m256i sum_pairs32(__m256i a, __m256i b) {  // per half: a0+a2, b0+b2, a1+a3, b1+b3
    return _mm256_add_epi32(_mm256_unpacklo_epi32(a, b), _mm256_unpackhi_epi32(a, b));
}
inline __m256i sum_lanes8(const __m256i* v) {
    const __m256i a = sum_pairs32(v[0], v[1]), b = sum_pairs32(v[2], v[3]);
    const __m256i c = sum_pairs32(v[4], v[5]), d = sum_pairs32(v[6], v[7]);
    // per half: v0 v1 v2 v3 (and v4 .. v7), summed in 32-bit lanes (the 64-bit add carries nothing across:
    // each 32-bit half is added separately below)
    const __m256i lo = _mm256_add_epi32(_mm256_unpacklo_epi64(a, b), _mm256_unpackhi_epi64(a, b));
    const __m256i hi = _mm256_add_epi32(_mm256_unpacklo_epi64(c, d), _mm256_unpackhi_epi64(c, d));
    return _mm256_add_epi32(_mm256_permute2x128_si256(lo, hi, 0x20), _mm256_permute2x128_si256(lo, hi, 0x31));
}

inline float hsum(__m256 v) {
    const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}

// Every cache line of the weights 4 KiB ahead of [p, p + n) (see decode_i8x2_avx512.cpp).
constexpr size_t kPrefetchBytes = 4096;
inline void prefetch_ahead(const uint8_t* p, size_t n) {
    const uintptr_t first = (reinterpret_cast<uintptr_t>(p) + kPrefetchBytes) & ~uintptr_t(63);
    const uintptr_t last = reinterpret_cast<uintptr_t>(p) + kPrefetchBytes + n;
    for (uintptr_t a = first; a < last; a += 64) _mm_prefetch(reinterpret_cast<const char*>(a), _MM_HINT_T0);
}

struct UQ8_0 {
    static constexpr size_t kBytes = sizeof(BlockQ8_0);
    static constexpr int kOff = 128;  // signed codes read as w ^ 0x80 = w + 128
    static __m256i codes(const uint8_t* p) {
        return _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2)),
                                _mm256_set1_epi8(int8_t(0x80)));
    }
};

struct UQ4_0 {
    static constexpr size_t kBytes = sizeof(BlockQ4_0);
    static constexpr int kOff = 8;
    // elements 0..15 in the low nibbles, 16..31 in the high ones
    static __m256i codes(const uint8_t* p) {
        const __m256i q =
            _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2)));
        return _mm256_and_si256(_mm256_srlv_epi64(q, _mm256_setr_epi64x(0, 0, 4, 4)), _mm256_set1_epi8(0x0F));
    }
};

inline uint64_t load16(const uint8_t* p) {
    uint16_t v;
    std::memcpy(&v, p, 2);
    return v;
}

// The fp16 scales of blocks [0, n) of p (n <= 8; zero past n), as floats.
template <class U>
inline __m256 block_scales(const uint8_t* p, int n) {
    constexpr size_t K = U::kBytes;
    uint64_t lo, hi;
    if (n == 8) {
        lo = load16(p) | load16(p + K) << 16 | load16(p + 2 * K) << 32 | load16(p + 3 * K) << 48;
        hi = load16(p + 4 * K) | load16(p + 5 * K) << 16 | load16(p + 6 * K) << 32 | load16(p + 7 * K) << 48;
    } else {
        lo = hi = 0;
        for (int j = 0; j < n; ++j) (j < 4 ? lo : hi) |= load16(p + size_t(j) * K) << (16 * (j % 4));
    }
    return _mm256_cvtph_ps(_mm_set_epi64x(int64_t(hi), int64_t(lo)));
}

// One row x TT tokens, eight blocks at a time. A token's sums are formed in the same order whatever TT is.
template <class U, int TT>
void tile(const uint8_t* row, int64_t nb, const Tok* tok, float* out, int64_t out_stride) {
    __m256 acc[TT], offs[TT];
    for (int t = 0; t < TT; ++t) acc[t] = offs[t] = _mm256_setzero_ps();
    for (int64_t b0 = 0; b0 < nb; b0 += 8) {
        const uint8_t* p = row + size_t(b0) * U::kBytes;
        const int n = nb - b0 < 8 ? int(nb - b0) : 8;
        prefetch_ahead(p, 8 * U::kBytes);
        const __m256 d = block_scales<U>(p, n);
        __m256i w[8];
#pragma GCC unroll 8
        for (int j = 0; j < 8; ++j)  // past the row: zero codes (the activation is zero there too)
            w[j] = j < n ? U::codes(p + size_t(j) * U::kBytes) : _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int t = 0; t < TT; ++t) {
            __m256i hi[8], lo[8];
            const int64_t e = 32 * b0;
#pragma GCC unroll 8
            for (int j = 0; j < 8; ++j) {
                hi[j] = _mm256_dpbusd_epi32(
                    _mm256_setzero_si256(), w[j],
                    _mm256_loadu_si256(reinterpret_cast<const __m256i*>(tok[t].q1 + e + 32 * j)));
                lo[j] = _mm256_dpbusd_epi32(
                    _mm256_setzero_si256(), w[j],
                    _mm256_loadu_si256(reinterpret_cast<const __m256i*>(tok[t].q2 + e + 32 * j)));
            }
            const __m256i c =
                _mm256_add_epi32(_mm256_mullo_epi32(sum_lanes8(hi), _mm256_set1_epi32(127)), sum_lanes8(lo));
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
