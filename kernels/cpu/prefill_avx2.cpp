// The prefill kernels at AVX2 (+FMA/F16C): as the AVX-512 ones (prefill_avx512.cpp) with 8-row tiles and
// vpmaddubsw + vpmaddwd in place of vpdpbusd. vpmaddubsw adds two u8 x s8 products into a saturating int16,
// so the 16-bit sums of several groups are added before widening only as far as the type's largest code
// allows without overflow (8 groups of 4-bit codes, 4 of 5-bit, 2 of 6-bit); Q8_0's signed codes go
// through the sign trick (|w| times x with w's sign), one group at a time.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/blocks.hpp"
#include "kernels/cpu/prefill_act.hpp"
#include "kernels/cpu/prefill_table.hpp"
#include "kernels/fp16.hpp"

#if defined(__x86_64__)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif

#include "kernels/cpu/prefill_unpack.hpp"

namespace kinfer::cpu::prefill {
namespace {

constexpr int kRows = 8;       // rows per tile: the 8 int32 lanes of a ymm register
constexpr int kMaxTokens = 4;  // tokens per tile (16 ymm registers: weights, accumulators, temporaries)
constexpr int64_t kTokenChunk = 256;  // tokens per pass over the rows (see rows_avx2)

inline int32_t load_i32(const int8_t* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

template <class U>
constexpr bool kSignedCodes = false;
template <>
constexpr bool kSignedCodes<UnpackQ8_0<true>> = true;

// How many vpmaddubsw results (each up to 2 * max_q * 127) add up in int16 without overflow.
template <class U>
constexpr int int16_groups() {
    if (kSignedCodes<U>) return 1;
    const int n = 32767 / (2 * U::kMaxQ * 127);
    return std::min(n, U::kSub / 4);
}

// 8 rows x 32 bytes (row r at src + r * stride) -> 8 vectors of one 4-byte group of every row, stored
// consecutively at dst: the 8 x 8 transpose of 32-bit elements.
struct Transpose8x32 {
    static constexpr int kRows = 8, kBytes = 32;
    static void run(const uint8_t* src, size_t stride, uint8_t* dst) {
        __m256i r[8], t[8];
        for (int i = 0; i < 8; ++i)
            r[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i * stride));
        for (int i = 0; i < 8; i += 2) {
            t[i] = _mm256_unpacklo_epi32(r[i], r[i + 1]);
            t[i + 1] = _mm256_unpackhi_epi32(r[i], r[i + 1]);
        }
        for (int g = 0; g < 2; ++g) {  // r[4g + c], lane L: element 4L + c of rows 4g..4g+3
            const __m256i* tg = t + 4 * g;
            r[4 * g + 0] = _mm256_unpacklo_epi64(tg[0], tg[2]);
            r[4 * g + 1] = _mm256_unpackhi_epi64(tg[0], tg[2]);
            r[4 * g + 2] = _mm256_unpacklo_epi64(tg[1], tg[3]);
            r[4 * g + 3] = _mm256_unpackhi_epi64(tg[1], tg[3]);
        }
        for (int c = 0; c < 4; ++c) {
            auto* out = reinterpret_cast<__m256i*>(dst);
            _mm256_store_si256(out + c, _mm256_permute2x128_si256(r[c], r[4 + c], 0x20));
            _mm256_store_si256(out + 4 + c, _mm256_permute2x128_si256(r[c], r[4 + c], 0x31));
        }
    }
};

template <class U, int T>
void tile_product(const uint8_t* wq, const float* wscale, const float* wmin, int64_t n_in, const ActView& a,
                  int64_t t0, float* out, int64_t out_stride, int nr) {
    constexpr int Sub = U::kSub;
    constexpr int kGroups = Sub / 4;
    constexpr int kPerSum = int16_groups<U>();
    static_assert(kGroups % kPerSum == 0);
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[T];
    for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
    const int64_t n_sub = n_in / Sub;
    for (int64_t sb = 0; sb < n_sub; ++sb) {
        __m256i w[kGroups], wabs[kGroups];
        for (int j = 0; j < kGroups; ++j) {
            w[j] = _mm256_load_si256(reinterpret_cast<const __m256i*>(wq + (sb * kGroups + j) * 32));
            if constexpr (kSignedCodes<U>) wabs[j] = _mm256_sign_epi8(w[j], w[j]);
        }
        const __m256 scale = _mm256_load_ps(wscale + sb * kRows);
        const __m256 min = _mm256_load_ps(wmin + sb * kRows);
        const int64_t cell = (sb * Sub / kActBlock) * a.n_tokens + t0;
        const int8_t* xq = a.q + cell * kActBlock + (sb * Sub) % kActBlock;
        const float* xd = a.d + cell;
        const float* xs = Sub == kActBlock ? a.s32 + cell : a.s16 + 2 * cell + (sb & 1);
        constexpr int kSumStride = Sub == kActBlock ? 1 : 2;
        for (int t = 0; t < T; ++t) {
            __m256i sum = _mm256_setzero_si256();
            for (int j0 = 0; j0 < kGroups; j0 += kPerSum) {
                __m256i s16 = _mm256_setzero_si256();
                for (int j = j0; j < j0 + kPerSum; ++j) {
                    const __m256i x = _mm256_set1_epi32(load_i32(xq + t * kActBlock + 4 * j));
                    if constexpr (kSignedCodes<U>)
                        s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(wabs[j], _mm256_sign_epi8(x, w[j])));
                    else
                        s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(w[j], x));
                }
                sum = _mm256_add_epi32(sum, _mm256_madd_epi16(s16, ones));
            }
            const __m256 row_scale = _mm256_mul_ps(scale, _mm256_set1_ps(xd[t]));
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), row_scale, acc[t]);
            acc[t] = _mm256_fnmadd_ps(min, _mm256_set1_ps(xs[t * kSumStride]), acc[t]);
        }
    }
    for (int t = 0; t < T; ++t) {
        float* o = out + (t0 + t) * out_stride;
        if (nr == kRows) {
            _mm256_storeu_ps(o, acc[t]);
        } else {
            alignas(32) float lanes[kRows];
            _mm256_store_ps(lanes, acc[t]);
            for (int r = 0; r < nr; ++r) o[r] = lanes[r];
        }
    }
}

inline float hmax(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
}

inline int hsum(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    return _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1)));
}

// prepare() with the rounding of prefill_act.cpp, bit for bit: d = max|x| / 127, q = nearest-even(x * (1/d)).
void prepare_avx2(const float* x, int64_t n_in, int64_t n_tokens, void* act) {
    const ActView v(act, n_in, n_tokens);
    auto* q = const_cast<int8_t*>(v.q);
    auto* d = const_cast<float*>(v.d);
    auto* s32 = const_cast<float*>(v.s32);
    auto* s16 = const_cast<float*>(v.s16);
    const int64_t nb = n_in / kActBlock;
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (int64_t t = 0; t < n_tokens; ++t) {
        for (int64_t b = 0; b < nb; ++b) {
            const float* xb = x + t * n_in + b * kActBlock;
            __m256 xs[4];
            __m256 m = _mm256_setzero_ps();
            for (int i = 0; i < 4; ++i) {
                xs[i] = _mm256_loadu_ps(xb + 8 * i);
                m = _mm256_max_ps(m, _mm256_and_ps(xs[i], abs_mask));
            }
            const float scale = hmax(m) / 127.0f;
            const __m256 id = _mm256_set1_ps(scale != 0 ? 1.0f / scale : 0.0f);
            __m256i qi[4];
            for (int i = 0; i < 4; ++i) qi[i] = _mm256_cvtps_epi32(_mm256_mul_ps(xs[i], id));
            // int32 -> int8 with the packs' lane interleave undone by one cross-lane permute
            const __m256i q16 = _mm256_packs_epi32(qi[0], qi[1]), r16 = _mm256_packs_epi32(qi[2], qi[3]);
            const __m256i q8 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(q16, r16),
                                                           _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            const size_t cell = size_t(b * n_tokens + t);
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + cell * kActBlock), q8);
            const int lo = hsum(_mm256_add_epi32(qi[0], qi[1])), hi = hsum(_mm256_add_epi32(qi[2], qi[3]));
            d[cell] = scale;
            s32[cell] = scale * float(lo + hi);
            s16[2 * cell] = scale * float(lo);
            s16[2 * cell + 1] = scale * float(hi);
        }
    }
}

template <class U>
void rows_avx2(const uint8_t* w, size_t row_bytes, int64_t n_in, const void* act, int64_t n_tokens,
               int64_t r0, int64_t r1, float* out, int64_t out_stride) {
    const ActView a(act, n_in, n_tokens);
    Tile<U, kRows> tile(n_in);
    // Long prompts in chunks of tokens, so that the activation a tile streams stays in cache.
    for (int64_t c0 = 0; c0 < n_tokens; c0 += kTokenChunk) {
        const int64_t c1 = std::min(n_tokens, c0 + kTokenChunk);
        for (int64_t r = r0; r < r1; r += kRows) {
            const int nr = int(std::min<int64_t>(kRows, r1 - r));
            tile.template build<Transpose8x32>(w + size_t(r) * row_bytes, row_bytes, nr, n_in);
            float* o = out + r;
            int64_t t = c0;
            for (; t + kMaxTokens <= c1; t += kMaxTokens)
                tile_product<U, kMaxTokens>(tile.q, tile.scale, tile.min, n_in, a, t, o, out_stride, nr);
            if (c1 - t >= 2) {
                tile_product<U, 2>(tile.q, tile.scale, tile.min, n_in, a, t, o, out_stride, nr);
                t += 2;
            }
            if (t < c1) tile_product<U, 1>(tile.q, tile.scale, tile.min, n_in, a, t, o, out_stride, nr);
        }
    }
}

template <class U>
constexpr MatmulPath path() {
    return MatmulPath{kPrefillActFormat, act_bytes, prepare_avx2, rows_avx2<U>, kRows};
}

}  // namespace

const MatmulPath* prefill_path_avx2(GgmlType type) {
    static constexpr MatmulPath q4_0 = path<UnpackQ4_0>(), q4_1 = path<UnpackQ4_1>(),
                                q5_0 = path<UnpackQ5_0>(), q5_1 = path<UnpackQ5_1>(),
                                q8_0 = path<UnpackQ8_0<true>>(), q2_k = path<UnpackQ2_K>(),
                                q3_k = path<UnpackQ3_K>(), q4_k = path<UnpackQ4_K>(),
                                q5_k = path<UnpackQ5_K>(), q6_k = path<UnpackQ6_K>();
    switch (type) {
        case GgmlType::Q4_0:
            return &q4_0;
        case GgmlType::Q4_1:
            return &q4_1;
        case GgmlType::Q5_0:
            return &q5_0;
        case GgmlType::Q5_1:
            return &q5_1;
        case GgmlType::Q8_0:
            return &q8_0;
        case GgmlType::Q2_K:
            return &q2_k;
        case GgmlType::Q3_K:
            return &q3_k;
        case GgmlType::Q4_K:
            return &q4_k;
        case GgmlType::Q5_K:
            return &q5_k;
        case GgmlType::Q6_K:
            return &q6_k;
        default:
            return nullptr;
    }
}

}  // namespace kinfer::cpu::prefill

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#else  // not x86-64: no AVX2 level

namespace kinfer::cpu::prefill {
const MatmulPath* prefill_path_avx2(GgmlType) {
    return nullptr;
}
}  // namespace kinfer::cpu::prefill

#endif
