// The prefill kernels at AVX-512 (F/BW/VL/VNNI): a tile of 16 weight rows, unpacked once per call into the
// thread's tile buffer as unsigned bytes interleaved by 4 (prefill_unpack.hpp), times tiles of up to 16
// tokens of the 8-bit activation (prefill_act.hpp). One vpdpbusd multiplies 4 bytes of each of the 16 rows
// by 4 bytes of one token (an embedded broadcast), so each weight register serves every token of the tile
// and each activation load serves 16 rows. Per sub-block (16 or 32 elements) and token the integer sum is
// scaled in float: out += cvt(sum) * scale[row] * d[token] - min[row] * blocksum[token].
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "kernels/blocks.hpp"
#include "kernels/cpu/prefill_act.hpp"
#include "kernels/cpu/prefill_table.hpp"
#include "kernels/fp16.hpp"

#if defined(__x86_64__)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"))), \
                             apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 on _mm512_undefined_ps in its own headers
#endif

#include "kernels/cpu/prefill_unpack.hpp"

namespace kinfer::cpu::prefill {
namespace {

constexpr int kRows = 16;             // rows per tile: the 16 int32 lanes of a zmm register
constexpr int kMaxTokens = 16;        // tokens per tile: 16 float accumulators + 8 weight registers fit in 32
constexpr int64_t kTokenChunk = 512;  // tokens per pass over the rows (see rows_avx512)

// sum += (16 lanes of 4 unsigned bytes of w) . (the 4 signed bytes at x, broadcast): vpdpbusd with an
// embedded broadcast, which compilers do not form from _mm512_set1_epi32 (they emit a separate vpbroadcastd).
inline __m512i dot4(__m512i sum, __m512i w, const int8_t* x) {
#if defined(__GNUC__)
    __asm__("vpdpbusd %1%{1to16%}, %2, %0" : "+v"(sum) : "m"(*reinterpret_cast<const int32_t*>(x)), "v"(w));
    return sum;
#else
    int32_t v;
    std::memcpy(&v, x, 4);
    return _mm512_dpbusd_epi32(sum, w, _mm512_set1_epi32(v));
#endif
}

// 16 rows x 64 bytes (row r at src + r * stride) -> 16 vectors of one 4-byte group of every row, stored
// consecutively at dst: the 16 x 16 transpose of 32-bit elements (4 rounds of 16 shuffles).
struct Transpose16x64 {
    static constexpr int kRows = 16, kBytes = 64;
    static void run(const uint8_t* src, size_t stride, uint8_t* dst) {
        __m512i r[16], t[16];
        for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_si512(src + i * stride);
        for (int i = 0; i < 16; i += 2) {  // per 128-bit lane: (a0 b0 a1 b1), (a2 b2 a3 b3)
            t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
            t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
        }
        for (int g = 0; g < 4; ++g) {  // u[4g + c], lane L: element 4L + c of rows 4g..4g+3
            const __m512i* tg = t + 4 * g;
            r[4 * g + 0] = _mm512_unpacklo_epi64(tg[0], tg[2]);
            r[4 * g + 1] = _mm512_unpackhi_epi64(tg[0], tg[2]);
            r[4 * g + 2] = _mm512_unpacklo_epi64(tg[1], tg[3]);
            r[4 * g + 3] = _mm512_unpackhi_epi64(tg[1], tg[3]);
        }
        for (int c = 0; c < 4; ++c) {  // gather lane L of the four row groups
            const __m512i v0 = _mm512_shuffle_i32x4(r[c], r[4 + c], 0x88);
            const __m512i w0 = _mm512_shuffle_i32x4(r[c], r[4 + c], 0xdd);
            const __m512i v1 = _mm512_shuffle_i32x4(r[8 + c], r[12 + c], 0x88);
            const __m512i w1 = _mm512_shuffle_i32x4(r[8 + c], r[12 + c], 0xdd);
            _mm512_store_si512(dst + (0 + c) * 64, _mm512_shuffle_i32x4(v0, v1, 0x88));
            _mm512_store_si512(dst + (8 + c) * 64, _mm512_shuffle_i32x4(v0, v1, 0xdd));
            _mm512_store_si512(dst + (4 + c) * 64, _mm512_shuffle_i32x4(w0, w1, 0x88));
            _mm512_store_si512(dst + (12 + c) * 64, _mm512_shuffle_i32x4(w0, w1, 0xdd));
        }
    }
};

// out[t0 + t][r0 + lane] for t < T over the whole row length, from a built tile.
template <int Sub, int T>
void tile_product(const uint8_t* wq, const float* wscale, const float* wmin, int64_t n_in, const ActView& a,
                  int64_t t0, float* out, int64_t out_stride, __mmask16 lanes) {
    __m512 acc[T];
    for (int t = 0; t < T; ++t) acc[t] = _mm512_setzero_ps();
    // One activation block (32 elements, one scale d per token) per step: one sub-block of 32, or two of
    // 16 whose scaled sums are added before the one multiply by d.
    constexpr int kHalves = kActBlock / Sub;
    for (int64_t blk = 0; blk < n_in / kActBlock; ++blk) {
        __m512i w[8];
        for (int j = 0; j < 8; ++j) w[j] = _mm512_load_si512(wq + (blk * 8 + j) * 64);
        __m512 scale[kHalves], min[kHalves];
        for (int h = 0; h < kHalves; ++h) {
            scale[h] = _mm512_load_ps(wscale + (blk * kHalves + h) * kRows);
            min[h] = _mm512_load_ps(wmin + (blk * kHalves + h) * kRows);
        }
        const int64_t cell = blk * a.n_tokens + t0;
        const int8_t* xq = a.q + cell * kActBlock;
        const float* xd = a.d + cell;
        const float* xs = kHalves == 1 ? a.s32 + cell : a.s16 + 2 * cell;
#pragma GCC unroll 16
        for (int t = 0; t < T; ++t) {
            const int8_t* x = xq + t * kActBlock;
            if constexpr (kHalves == 1) {
                __m512i sum = _mm512_setzero_si512();
#pragma GCC unroll 8
                for (int j = 0; j < 8; ++j) sum = dot4(sum, w[j], x + 4 * j);
                const __m512 row_scale = _mm512_mul_ps(scale[0], _mm512_set1_ps(xd[t]));
                acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), row_scale, acc[t]);
                acc[t] = _mm512_fnmadd_ps(min[0], _mm512_set1_ps(xs[t]), acc[t]);
            } else {
                __m512i sum0 = _mm512_setzero_si512(), sum1 = _mm512_setzero_si512();
#pragma GCC unroll 4
                for (int j = 0; j < 4; ++j) {
                    sum0 = dot4(sum0, w[j], x + 4 * j);
                    sum1 = dot4(sum1, w[4 + j], x + 16 + 4 * j);
                }
                const __m512 f = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum1), scale[1],
                                                 _mm512_mul_ps(_mm512_cvtepi32_ps(sum0), scale[0]));
                acc[t] = _mm512_fmadd_ps(f, _mm512_set1_ps(xd[t]), acc[t]);
                acc[t] = _mm512_fnmadd_ps(min[0], _mm512_set1_ps(xs[2 * t]), acc[t]);
                acc[t] = _mm512_fnmadd_ps(min[1], _mm512_set1_ps(xs[2 * t + 1]), acc[t]);
            }
        }
    }
    for (int t = 0; t < T; ++t) _mm512_mask_storeu_ps(out + (t0 + t) * out_stride, lanes, acc[t]);
}

// prepare() with the rounding of prefill_act.cpp, bit for bit: d = max|x| / 127, q = nearest-even(x * (1/d)).
void prepare_avx512(const float* x, int64_t n_in, int64_t n_tokens, void* act) {
    const ActView v(act, n_in, n_tokens);
    auto* q = const_cast<int8_t*>(v.q);
    auto* d = const_cast<float*>(v.d);
    auto* s32 = const_cast<float*>(v.s32);
    auto* s16 = const_cast<float*>(v.s16);
    const int64_t nb = n_in / kActBlock;
    for (int64_t t = 0; t < n_tokens; ++t) {
        for (int64_t b = 0; b < nb; ++b) {
            const float* xb = x + t * n_in + b * kActBlock;
            const __m512 x0 = _mm512_loadu_ps(xb), x1 = _mm512_loadu_ps(xb + 16);
            const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(x0), _mm512_abs_ps(x1)));
            const float scale = amax / 127.0f;
            const __m512 id = _mm512_set1_ps(scale != 0 ? 1.0f / scale : 0.0f);
            const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(x0, id));
            const __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(x1, id));
            const size_t cell = size_t(b * n_tokens + t);
            _mm_storeu_si128(reinterpret_cast<__m128i*>(q + cell * kActBlock), _mm512_cvtsepi32_epi8(q0));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(q + cell * kActBlock + 16),
                             _mm512_cvtsepi32_epi8(q1));
            const int lo = _mm512_reduce_add_epi32(q0), hi = _mm512_reduce_add_epi32(q1);
            d[cell] = scale;
            s32[cell] = scale * float(lo + hi);
            s16[2 * cell] = scale * float(lo);
            s16[2 * cell + 1] = scale * float(hi);
        }
    }
}

using TileProductFn = void (*)(const uint8_t*, const float*, const float*, int64_t, const ActView&, int64_t,
                               float*, int64_t, __mmask16);

// tile_product for every token count 1..kMaxTokens, so a tail of any size is one pass over the tile.
template <int Sub, size_t... I>
constexpr std::array<TileProductFn, sizeof...(I)> tile_products(std::index_sequence<I...>) {
    return {&tile_product<Sub, int(I) + 1>...};
}

template <class U>
void rows_avx512(const uint8_t* w, size_t row_bytes, int64_t n_in, const void* act, int64_t n_tokens,
                 int64_t r0, int64_t r1, float* out, int64_t out_stride) {
    static constexpr auto products = tile_products<U::kSub>(std::make_index_sequence<kMaxTokens>());
    const ActView a(act, n_in, n_tokens);
    Tile<U, kRows> tile(n_in);
    // Long prompts in chunks of tokens, so that the activation a tile streams stays in cache (the tile is
    // unpacked once per chunk). 512 tokens (2-7 MB of 8-bit activation for Mistral-7B's widths) stay in L3
    // and unpack a pp512 prompt's weights once: 2-10% faster than chunks of 256 (bench/prefill_bench.cpp).
    for (int64_t c0 = 0; c0 < n_tokens; c0 += kTokenChunk) {
        const int64_t c1 = std::min(n_tokens, c0 + kTokenChunk);
        for (int64_t r = r0; r < r1; r += kRows) {
            const int nr = int(std::min<int64_t>(kRows, r1 - r));
            tile.template build<Transpose16x64>(w + size_t(r) * row_bytes, row_bytes, nr, n_in);
            const __mmask16 lanes = __mmask16((1u << nr) - 1);
            for (int64_t t = c0; t < c1; t += kMaxTokens) {
                const int64_t n = std::min<int64_t>(kMaxTokens, c1 - t);
                products[size_t(n - 1)](tile.q, tile.scale, tile.min, n_in, a, t, out + r, out_stride, lanes);
            }
        }
    }
}

template <class U>
constexpr MatmulPath path() {
    return MatmulPath{kPrefillActFormat, act_bytes, prepare_avx512, rows_avx512<U>, kRows};
}

}  // namespace

const MatmulPath* prefill_path_avx512(GgmlType type) {
    static constexpr MatmulPath q4_0 = path<UnpackQ4_0>(), q4_1 = path<UnpackQ4_1>(),
                                q5_0 = path<UnpackQ5_0>(), q5_1 = path<UnpackQ5_1>(),
                                q8_0 = path<UnpackQ8_0<false>>(), q2_k = path<UnpackQ2_K>(),
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
#pragma GCC diagnostic pop
#pragma GCC pop_options
#endif

#else  // not x86-64: no AVX-512 level

namespace kinfer::cpu::prefill {
const MatmulPath* prefill_path_avx512(GgmlType) {
    return nullptr;
}
}  // namespace kinfer::cpu::prefill

#endif
