// Causal multi-head attention with grouped KV heads, reading the KV cache in place.
#include <omp.h>

#include <algorithm>
#include <bit>
#include <cmath>

#include "kernels/cpu/simple_ops.hpp"
#include "kernels/fp16.hpp"

namespace kinfer::cpu {
namespace {

// A head's row of keys or values as floats: a copy for fp16 (converted without branches, so the loop
// vectorizes: per-element branches made the conversion most of the cost of decoding attention), the row
// itself for float.
template <class KV>
const float* row_as_float(const KV* p, int64_t n, float* buf) {
    if constexpr (sizeof(KV) == 2) {
        for (int64_t i = 0; i < n; ++i) buf[i] = fp16_to_fp32_branchless(p[i]);
        return buf;
    } else {
        return p;
    }
}

// Head rows longer than this are converted in pieces (no model has heads near this size).
constexpr int64_t kRowChunk = 256;

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
                alignas(64) float row[kRowChunk];
                for (int64_t j = first; j <= p; ++j) {
                    const KV* kj = k + j * kv_stride + kv_off;
                    float s = 0.0f;
                    if constexpr (sizeof(KV) == 4) {
                        s = dot(qh, reinterpret_cast<const float*>(kj), head_dim);
                    } else {
                        // Eight lanes, each summing every eighth product in order (the fp16 path's
                        // rounding, whatever the head size).
                        float acc[8] = {};
                        for (int64_t c = 0; c < head_dim; c += kRowChunk) {
                            const int64_t n = std::min(kRowChunk, head_dim - c);
                            const float* kf = row_as_float(kj + c, n, row);
                            const float* qc = qh + c;
                            int64_t d = 0;
                            for (; d + 8 <= n; d += 8)
                                for (int l = 0; l < 8; ++l) acc[l] += qc[d + l] * kf[d + l];
                            for (int l = 0; d < n; ++d, ++l) acc[l] += qc[d] * kf[d];
                        }
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
                    for (int64_t c = 0; c < head_dim; c += kRowChunk) {
                        const int64_t n = std::min(kRowChunk, head_dim - c);
                        const float* vf = row_as_float(vj + c, n, row);
                        for (int64_t d = 0; d < n; ++d) o[c + d] += w * vf[d];
                    }
                }
            }
        }
    }
}

}  // namespace

void attention(const float* q, int64_t n_tokens, int64_t pos0, const void* k, const void* v, bool kv_f16,
               int64_t n_head, int64_t n_head_kv, int64_t head_dim, float scale, int64_t window, float* out,
               float* scratch, int n_threads) {
    if (kv_f16)
        attention_impl(q, n_tokens, pos0, static_cast<const uint16_t*>(k), static_cast<const uint16_t*>(v),
                       n_head, n_head_kv, head_dim, scale, window, out, scratch, n_threads);
    else
        attention_impl(q, n_tokens, pos0, static_cast<const float*>(k), static_cast<const float*>(v), n_head,
                       n_head_kv, head_dim, scale, window, out, scratch, n_threads);
}

}  // namespace kinfer::cpu
