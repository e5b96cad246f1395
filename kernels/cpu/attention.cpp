// Causal multi-head attention with grouped KV heads, reading the KV cache in place.
#include <omp.h>

#include <algorithm>
#include <cmath>

#include "kernels/cpu/prefill_attention.hpp"
#include "kernels/cpu/simple_ops.hpp"
#include "kernels/fp16.hpp"

namespace kinfer::cpu {
namespace {

template <class KV>
float load(const KV* p, int64_t i) {
    if constexpr (sizeof(KV) == 2)
        return fp16_to_fp32(p[i]);
    else
        return p[i];
}

template <class KV>
void attention_impl(const float* q, int64_t n_tokens, int64_t pos0, const KV* k, const KV* v, int64_t n_head,
                    int64_t n_head_kv, int64_t head_dim, float scale, int64_t window, float* out,
                    float* scratch, int n_threads) {
    const int64_t q_stride = n_head * head_dim;
    const int64_t kv_stride = n_head_kv * head_dim;
    const int64_t group = n_head / n_head_kv;
    const int64_t n_kv_max = pos0 + n_tokens;
    const bool parallel = n_threads > 1 && n_tokens * n_head * n_kv_max * head_dim >= kMinParallelWork;
#pragma omp parallel num_threads(n_threads) if (parallel)
    {
        float* scores = scratch + static_cast<size_t>(omp_get_thread_num()) * static_cast<size_t>(n_kv_max);
#pragma omp for collapse(2) schedule(static)
        for (int64_t t = 0; t < n_tokens; ++t) {
            for (int64_t h = 0; h < n_head; ++h) {
                const int64_t p = pos0 + t;
                const int64_t first = window > 0 ? std::max<int64_t>(0, p - window + 1) : 0;
                const float* qh = q + t * q_stride + h * head_dim;
                const int64_t kv_off = (h / group) * head_dim;

                float max_score = -INFINITY;
                for (int64_t j = first; j <= p; ++j) {
                    const KV* kj = k + j * kv_stride + kv_off;
                    float s = 0.0f;
                    if constexpr (sizeof(KV) == 4) {
                        s = dot(qh, reinterpret_cast<const float*>(kj), head_dim);
                    } else {
                        float acc[8] = {};
                        int64_t d = 0;
                        for (; d + 8 <= head_dim; d += 8)
                            for (int l = 0; l < 8; ++l) acc[l] += qh[d + l] * load(kj, d + l);
                        for (int l = 0; d < head_dim; ++d, ++l) acc[l] += qh[d] * load(kj, d);
                        s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
                    }
                    s *= scale;
                    scores[j] = s;
                    max_score = std::max(max_score, s);
                }
                double sum = 0.0;
                for (int64_t j = first; j <= p; ++j) {
                    scores[j] = std::exp(scores[j] - max_score);
                    sum += scores[j];
                }
                const float inv_sum = static_cast<float>(1.0 / sum);

                float* o = out + t * q_stride + h * head_dim;
                std::fill(o, o + head_dim, 0.0f);
                for (int64_t j = first; j <= p; ++j) {
                    const float w = scores[j] * inv_sum;
                    const KV* vj = v + j * kv_stride + kv_off;
                    for (int64_t d = 0; d < head_dim; ++d) o[d] += w * load(vj, d);
                }
            }
        }
    }
}

}  // namespace

void attention(const float* q, int64_t n_tokens, int64_t pos0, const void* k, const void* v, bool kv_f16,
               int64_t n_head, int64_t n_head_kv, int64_t head_dim, float scale, int64_t window, float* out,
               float* scratch, int n_threads) {
    // Prompts: the tiled path (prefill_attention.hpp), which reuses each converted key across many queries.
    const PromptAttention prompt{q,      n_tokens,  pos0,     k,     v,      kv_f16,
                                 n_head, n_head_kv, head_dim, scale, window, out};
    if (n_tokens >= kPromptAttentionMinTokens && prompt_attention_supported(prompt)) {
        prompt_attention(prompt, n_threads);
        return;
    }
    if (kv_f16)
        attention_impl(q, n_tokens, pos0, static_cast<const uint16_t*>(k), static_cast<const uint16_t*>(v),
                       n_head, n_head_kv, head_dim, scale, window, out, scratch, n_threads);
    else
        attention_impl(q, n_tokens, pos0, static_cast<const float*>(k), static_cast<const float*>(v), n_head,
                       n_head_kv, head_dim, scale, window, out, scratch, n_threads);
}

}  // namespace kinfer::cpu
