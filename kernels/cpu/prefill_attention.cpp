// Prompt attention (prefill_attention.hpp) at AVX2+FMA+F16C: 8-float vectors, which on CPUs that split
// 512-bit operations in two (Zen 4) give the same FLOP rate as AVX-512 and run on every x86-64 level we
// dispatch to above the portable one.
#include "kernels/cpu/prefill_attention.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/cpu/quant_matmul.hpp"
#include "kernels/cpu/thread_pool.hpp"

#if defined(__x86_64__)
#include <immintrin.h>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif

namespace kinfer::cpu {
namespace {

constexpr int64_t kTileTokens = 16;  // query tokens per task (times the GQA group: the task's query rows)
constexpr int64_t kChunk = 64;       // keys per chunk: K^T, V, scores and outputs stay in L2

// exp(x) for x <= 0 (Cephes' single-precision polynomial, relative error ~1e-7); 0 below -87.
inline __m256 exp_nonpositive(__m256 x) {
    const __m256 tiny = _mm256_cmp_ps(x, _mm256_set1_ps(-87.0f), _CMP_LT_OQ);
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(tiny, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

inline float hmax(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// 8 cache values from fp16 or float.
inline __m256 load8(const uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline __m256 load8(const float* p) {
    return _mm256_loadu_ps(p);
}

// The per-thread scratch of one task: scaled queries, K^T and V of one chunk, scores, running outputs.
struct Scratch {
    float *qs, *kt, *vf, *s, *o, *m, *l;

    Scratch(int64_t rows, int64_t hd) {
        thread_local std::vector<float> buffer;  // grows once per thread to the largest task, then reused
        const size_t need =
            size_t(rows * hd) * 2 + size_t(kChunk * hd) * 2 + size_t(rows * kChunk) + size_t(rows) * 2 + 64;
        if (buffer.size() < need) buffer.resize(need);
        float* p = buffer.data();
        p += (32 - reinterpret_cast<uintptr_t>(p) % 32) % 32 / sizeof(float);
        qs = p;
        o = qs + rows * hd;
        kt = o + rows * hd;
        vf = kt + kChunk * hd;
        s = vf + kChunk * hd;
        m = s + rows * kChunk;
        l = m + rows;
    }
};

// s[r][j] = qs[r] . K[j] for R rows and all padded keys of the chunk (kt: [hd][kChunk]).
template <int R>
void scores(const float* qs, const float* kt, int64_t hd, int64_t n_pad, float* s) {
    for (int64_t j = 0; j < n_pad; j += 16) {
        __m256 acc[R][2];
        for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
        for (int64_t d = 0; d < hd; ++d) {
            const __m256 k0 = _mm256_load_ps(kt + d * kChunk + j),
                         k1 = _mm256_load_ps(kt + d * kChunk + j + 8);
            for (int r = 0; r < R; ++r) {
                const __m256 b = _mm256_broadcast_ss(qs + r * hd + d);
                acc[r][0] = _mm256_fmadd_ps(b, k0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(b, k1, acc[r][1]);
            }
        }
        for (int r = 0; r < R; ++r) {
            _mm256_store_ps(s + r * kChunk + j, acc[r][0]);
            _mm256_store_ps(s + r * kChunk + j + 8, acc[r][1]);
        }
    }
}

// o[r][d0 .. d0 + 8 NV) += sum_j p[r][j] v[j][...] for R rows.
template <int R, int NV>
void accumulate(const float* p, const float* vf, int64_t hd, int64_t n_pad, int64_t d0, float* o) {
    __m256 acc[R][NV];
    for (int r = 0; r < R; ++r)
        for (int i = 0; i < NV; ++i) acc[r][i] = _mm256_load_ps(o + r * hd + d0 + 8 * i);
    for (int64_t j = 0; j < n_pad; ++j) {
        __m256 v[NV];
        for (int i = 0; i < NV; ++i) v[i] = _mm256_load_ps(vf + j * hd + d0 + 8 * i);
        for (int r = 0; r < R; ++r) {
            const __m256 b = _mm256_broadcast_ss(p + r * kChunk + j);
            for (int i = 0; i < NV; ++i) acc[r][i] = _mm256_fmadd_ps(b, v[i], acc[r][i]);
        }
    }
    for (int r = 0; r < R; ++r)
        for (int i = 0; i < NV; ++i) _mm256_store_ps(o + r * hd + d0 + 8 * i, acc[r][i]);
}

template <int R>
void accumulate_rows(const float* p, const float* vf, int64_t hd, int64_t n_pad, float* o) {
    int64_t d0 = 0;
    for (; d0 + 32 <= hd; d0 += 32) accumulate<R, 4>(p, vf, hd, n_pad, d0, o);
    for (; d0 < hd; d0 += 8) accumulate<R, 1>(p, vf, hd, n_pad, d0, o);
}

template <class KV>
void run_task(const PromptAttention& a, int64_t task) {
    const int64_t hd = a.head_dim, group = a.n_head / a.n_head_kv;
    const int64_t n_tiles = (a.n_tokens + kTileTokens - 1) / kTileTokens;
    const int64_t tile = n_tiles - 1 - task / a.n_head_kv, g = task % a.n_head_kv;
    const int64_t t0 = tile * kTileTokens, t1 = std::min(a.n_tokens, t0 + kTileTokens);
    const int64_t rows = (t1 - t0) * group;
    const int64_t q_stride = a.n_head * hd, kv_stride = a.n_head_kv * hd;
    const auto first_key = [&](int64_t p) {
        return a.window > 0 ? std::max<int64_t>(0, p - a.window + 1) : 0;
    };
    Scratch w(rows, hd);

    // Row r: token t0 + r / group, query head g * group + r % group.
    for (int64_t r = 0; r < rows; ++r) {
        const float* src = a.q + (t0 + r / group) * q_stride + (g * group + r % group) * hd;
        for (int64_t d = 0; d < hd; ++d) w.qs[r * hd + d] = src[d] * a.scale;
        std::fill(w.o + r * hd, w.o + (r + 1) * hd, 0.0f);
        w.m[r] = -INFINITY;
        w.l[r] = 0.0f;
    }

    const auto* k = static_cast<const KV*>(a.k) + g * hd;
    const auto* v = static_cast<const KV*>(a.v) + g * hd;
    const int64_t lo = first_key(a.pos0 + t0), hi = a.pos0 + t1 - 1;  // keys any row of the task sees
    for (int64_t c0 = lo; c0 <= hi; c0 += kChunk) {
        const int64_t n = std::min(kChunk, hi + 1 - c0), n_pad = (n + 15) / 16 * 16;
        alignas(32) float row[8];
        for (int64_t j = 0; j < n_pad; ++j) {
            if (j < n) {
                const KV* kj = k + (c0 + j) * kv_stride;
                const KV* vj = v + (c0 + j) * kv_stride;
                for (int64_t d = 0; d < hd; d += 8) {
                    _mm256_store_ps(row, load8(kj + d));
                    for (int i = 0; i < 8; ++i) w.kt[(d + i) * kChunk + j] = row[i];
                    _mm256_store_ps(w.vf + j * hd + d, load8(vj + d));
                }
            } else {
                for (int64_t d = 0; d < hd; ++d) w.kt[d * kChunk + j] = 0.0f;
                std::fill(w.vf + j * hd, w.vf + (j + 1) * hd, 0.0f);
            }
        }
        int64_t r = 0;
        for (; r + 4 <= rows; r += 4) scores<4>(w.qs + r * hd, w.kt, hd, n_pad, w.s + r * kChunk);
        for (; r < rows; ++r) scores<1>(w.qs + r * hd, w.kt, hd, n_pad, w.s + r * kChunk);

        // Online softmax: keys outside the row's window get probability 0; the running output and sum are
        // rescaled when the row's maximum grows.
        for (r = 0; r < rows; ++r) {
            float* s = w.s + r * kChunk;
            const int64_t p = a.pos0 + t0 + r / group;
            const int64_t j0 = std::max<int64_t>(first_key(p) - c0, 0), j1 = std::min<int64_t>(p - c0 + 1, n);
            if (j1 <= j0) {  // the row sees none of this chunk
                std::fill(s, s + n_pad, 0.0f);
                continue;
            }
            std::fill(s, s + j0, -INFINITY);
            std::fill(s + j1, s + n_pad, -INFINITY);
            __m256 mx = _mm256_set1_ps(-INFINITY);
            for (int64_t j = 0; j < n_pad; j += 8) mx = _mm256_max_ps(mx, _mm256_load_ps(s + j));
            const float m_new = std::max(w.m[r], hmax(mx));
            const __m256 mv = _mm256_set1_ps(m_new);
            __m256 sum = _mm256_setzero_ps();
            for (int64_t j = 0; j < n_pad; j += 8) {
                const __m256 e = exp_nonpositive(_mm256_sub_ps(_mm256_load_ps(s + j), mv));
                _mm256_store_ps(s + j, e);
                sum = _mm256_add_ps(sum, e);
            }
            if (m_new > w.m[r]) {
                const float alpha = w.m[r] == -INFINITY ? 0.0f : std::exp(w.m[r] - m_new);
                w.l[r] *= alpha;
                float* o = w.o + r * hd;
                for (int64_t d = 0; d < hd; ++d) o[d] *= alpha;
                w.m[r] = m_new;
            }
            w.l[r] += hsum(sum);
        }
        for (r = 0; r + 2 <= rows; r += 2)
            accumulate_rows<2>(w.s + r * kChunk, w.vf, hd, n_pad, w.o + r * hd);
        for (; r < rows; ++r) accumulate_rows<1>(w.s + r * kChunk, w.vf, hd, n_pad, w.o + r * hd);
    }

    for (int64_t r = 0; r < rows; ++r) {
        float* dst = a.out + (t0 + r / group) * q_stride + (g * group + r % group) * hd;
        const float inv = 1.0f / w.l[r];
        for (int64_t d = 0; d < hd; ++d) dst[d] = w.o[r * hd + d] * inv;
    }
}

}  // namespace

bool prompt_attention_supported(const PromptAttention& a, Isa isa) {
    return isa >= Isa::Avx2 && detected_isa() >= Isa::Avx2 && a.head_dim % 8 == 0 && a.n_head_kv > 0 &&
           a.n_head % a.n_head_kv == 0;
}

int64_t prompt_attention_tasks(const PromptAttention& a) {
    return (a.n_tokens + kTileTokens - 1) / kTileTokens * a.n_head_kv;
}

void prompt_attention_task(const PromptAttention& a, int64_t task) {
    if (a.kv_f16)
        run_task<uint16_t>(a, task);
    else
        run_task<float>(a, task);
}

void prompt_attention(const PromptAttention& a, ThreadPool* pool) {
    const int64_t n = prompt_attention_tasks(a);
    if (pool && pool->size() > 1 && n > 1)
        pool->run(n, [&](int64_t task, int) { prompt_attention_task(a, task); });
    else
        for (int64_t task = 0; task < n; ++task) prompt_attention_task(a, task);
}

}  // namespace kinfer::cpu

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#else  // not x86-64

namespace kinfer::cpu {
bool prompt_attention_supported(const PromptAttention&, Isa) {
    return false;
}
int64_t prompt_attention_tasks(const PromptAttention&) {
    return 0;
}
void prompt_attention_task(const PromptAttention&, int64_t) {}
void prompt_attention(const PromptAttention&, ThreadPool*) {}
}  // namespace kinfer::cpu

#endif
