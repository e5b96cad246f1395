// Causal multi-head attention with grouped KV heads, reading the KV cache in place: the scalar reference,
// the portable kernel (attention_kernels.inl with one float lane) and the split into tasks run on the pool.
#include <algorithm>
#include <cmath>

#include "kernels/cpu/attention_kernel.hpp"
#include "kernels/cpu/prefill_attention.hpp"
#include "kernels/cpu/simple_ops.hpp"
#include "kernels/cpu/thread_pool.hpp"
#include "kernels/fp16.hpp"

namespace kinfer::cpu {
namespace {

// One float lane: the portable build of the kernels.
struct V {
    using R = float;
    static constexpr int W = 1;
    static R zero() { return 0.0f; }
    static R set1(float x) { return x; }
    static R load(const float* p) { return *p; }
    static R load(const uint16_t* p) { return fp16_to_fp32(*p); }
    static void store(float* p, R x) { *p = x; }
    static R fma(R a, R b, R c) { return a * b + c; }
    static R add(R a, R b) { return a + b; }
    static R sub(R a, R b) { return a - b; }
    static R mul(R a, R b) { return a * b; }
    static R max(R a, R b) { return a > b ? a : b; }
    static float hsum(R x) { return x; }
    static float hmax(R x) { return x; }
    static float to_f32(uint16_t h) { return fp16_to_fp32(h); }
    static float to_f32(float x) { return x; }
    static R exp(R x) { return std::exp(x); }
    static float exp1(float x) { return std::exp(x); }
};

}  // namespace
}  // namespace kinfer::cpu

#include "kernels/cpu/attention_kernels.inl"

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
void reference_impl(const float* q, int64_t n_tokens, int64_t pos0, const KV* k, const KV* v, int64_t n_head,
                    int64_t n_head_kv, int64_t head_dim, float scale, int64_t window, float* out,
                    float* scores) {
    const int64_t q_stride = n_head * head_dim;
    const int64_t kv_stride = n_head_kv * head_dim;
    const int64_t group = n_head / n_head_kv;
    for (int64_t t = 0; t < n_tokens; ++t) {
        for (int64_t h = 0; h < n_head; ++h) {
            const int64_t p = pos0 + t;
            const int64_t first = window > 0 ? std::max<int64_t>(0, p - window + 1) : 0;
            const float* qh = q + t * q_stride + h * head_dim;
            const int64_t kv_off = (h / group) * head_dim;
            double max_score = -INFINITY;
            for (int64_t j = first; j <= p; ++j) {
                double s = 0.0;  // in double: the reference the fast kernels are measured against
                for (int64_t d = 0; d < head_dim; ++d)
                    s += double(qh[d]) * load(k + j * kv_stride + kv_off, d);
                scores[j] = float(s * scale);
                max_score = std::max(max_score, double(scores[j]));
            }
            double sum = 0.0;
            for (int64_t j = first; j <= p; ++j) sum += std::exp(double(scores[j]) - max_score);
            float* o = out + t * q_stride + h * head_dim;
            for (int64_t d = 0; d < head_dim; ++d) {
                double acc = 0.0;
                for (int64_t j = first; j <= p; ++j)
                    acc +=
                        std::exp(double(scores[j]) - max_score) / sum * load(v + j * kv_stride + kv_off, d);
                o[d] = float(acc);
            }
        }
    }
}

}  // namespace

const AttendFns& attend_portable() {
    static const AttendFns fns{attend<float>, attend<uint16_t>};
    return fns;
}

const AttendFns& attend_fns(Isa isa) {
    if (isa > detected_isa()) isa = detected_isa();
#if defined(__x86_64__)
    if (isa >= Isa::Avx512) return attend_avx512();
    if (isa >= Isa::Avx2) return attend_avx2();
#endif
    return attend_portable();
}

size_t attention_scratch_floats(int64_t n_head, int64_t n_head_kv, int64_t n_ctx, int n_threads) {
    const int64_t group = n_head / std::max<int64_t>(n_head_kv, 1);
    return size_t(std::max(n_threads, 1)) * size_t(std::clamp<int64_t>(group, 1, kAttnMaxHeads)) *
           size_t(std::max<int64_t>(n_ctx, 0));
}

void attention(const float* q, int64_t n_tokens, int64_t pos0, const void* k, const void* v, bool kv_f16,
               int64_t n_head, int64_t n_head_kv, int64_t head_dim, float scale, int64_t window, float* out,
               float* scratch, ThreadPool* pool, Isa isa) {
    // Prompts: the tiled path (prefill_attention.hpp), which reuses each converted key across many queries.
    const PromptAttention prompt{q,      n_tokens,  pos0,     k,     v,      kv_f16,
                                 n_head, n_head_kv, head_dim, scale, window, out};
    if (n_tokens >= kPromptAttentionMinTokens && prompt_attention_supported(prompt, isa)) {
        prompt_attention(prompt, pool);
        return;
    }
    const AttendFns& fns = attend_fns(isa);
    const AttendFn fn = kv_f16 ? fns.f16 : fns.f32;
    const int64_t group = n_head / n_head_kv;
    const int64_t block = std::min<int64_t>(group, kAttnMaxHeads);
    const int64_t blocks = (group + block - 1) / block;  // per KV head
    const int64_t per_token = n_head_kv * blocks;
    const int64_t n_kv_max = pos0 + n_tokens;
    const size_t scratch_per_thread = size_t(block) * size_t(n_kv_max);
    const size_t elem = kv_f16 ? 2 : 4;
    const auto task = [&](int64_t i, int thread) {
        // The last tokens attend the most rows: they go first, so the cheap tasks even out the end.
        const int64_t t = n_tokens - 1 - i / per_token;
        const int64_t kvh = i % per_token / blocks, b = i % blocks;
        const int64_t h0 = kvh * group + b * block;
        const int64_t p = pos0 + t;
        AttnTask a;
        a.q = q + t * n_head * head_dim + h0 * head_dim;
        a.out = out + t * n_head * head_dim + h0 * head_dim;
        a.k = static_cast<const uint8_t*>(k) + size_t(kvh * head_dim) * elem;
        a.v = static_cast<const uint8_t*>(v) + size_t(kvh * head_dim) * elem;
        a.kv_stride = n_head_kv * head_dim;
        a.head_dim = head_dim;
        a.first = window > 0 ? std::max<int64_t>(0, p - window + 1) : 0;
        a.last = p;
        a.n_heads = int(std::min(block, group - b * block));
        a.scale = scale;
        a.scores = scratch + size_t(thread) * scratch_per_thread;
        fn(a);
    };
    const int64_t n_tasks = n_tokens * per_token;
    if (pool && pool->size() > 1 && n_tokens * n_head * n_kv_max * head_dim >= kMinParallelWork)
        pool->run(n_tasks, task);
    else
        for (int64_t i = 0; i < n_tasks; ++i) task(i, 0);
}

void attention_reference(const float* q, int64_t n_tokens, int64_t pos0, const void* k, const void* v,
                         bool kv_f16, int64_t n_head, int64_t n_head_kv, int64_t head_dim, float scale,
                         int64_t window, float* out, float* scores) {
    if (kv_f16)
        reference_impl(q, n_tokens, pos0, static_cast<const uint16_t*>(k), static_cast<const uint16_t*>(v),
                       n_head, n_head_kv, head_dim, scale, window, out, scores);
    else
        reference_impl(q, n_tokens, pos0, static_cast<const float*>(k), static_cast<const float*>(v), n_head,
                       n_head_kv, head_dim, scale, window, out, scores);
}

}  // namespace kinfer::cpu
