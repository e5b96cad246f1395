// The tiled prompt attention (kernels/cpu/prefill_attention.hpp) against a float64 reference of causal GQA
// attention, on odd shapes: token counts not a multiple of the task tile, a cached prefix (pos0 > 0) longer
// than a key chunk, sliding windows, head sizes that are not a multiple of 32, fp16 and float caches, and
// thread counts that divide nothing (the result must not depend on them).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "kernels/cpu/prefill_attention.hpp"
#include "kernels/cpu/simple_ops.hpp"
#include "kernels/cpu/thread_pool.hpp"
#include "kernels/fp16.hpp"

using namespace kinfer;

namespace {

struct Case {
    int64_t n_tokens, pos0, n_head, n_head_kv, head_dim, window;
    bool f16;
};

// softmax(q k^T * scale) v in float64, over the cache as stored (fp16 values widened exactly).
std::vector<double> reference(const Case& c, const std::vector<float>& q, const std::vector<float>& kf,
                              const std::vector<float>& vf, float scale) {
    const int64_t group = c.n_head / c.n_head_kv, qs = c.n_head * c.head_dim, kvs = c.n_head_kv * c.head_dim;
    std::vector<double> out(q.size());
    for (int64_t t = 0; t < c.n_tokens; ++t)
        for (int64_t h = 0; h < c.n_head; ++h) {
            const int64_t p = c.pos0 + t, first = c.window > 0 ? std::max<int64_t>(0, p - c.window + 1) : 0;
            const int64_t off = (h / group) * c.head_dim;
            std::vector<double> s;
            double mx = -INFINITY;
            for (int64_t j = first; j <= p; ++j) {
                double d = 0;
                for (int64_t i = 0; i < c.head_dim; ++i)
                    d += double(q[size_t(t * qs + h * c.head_dim + i)]) * kf[size_t(j * kvs + off + i)];
                s.push_back(d * scale);
                mx = std::max(mx, s.back());
            }
            double sum = 0;
            for (double& e : s) sum += (e = std::exp(e - mx));
            for (int64_t i = 0; i < c.head_dim; ++i) {
                double o = 0;
                for (int64_t j = first; j <= p; ++j)
                    o += s[size_t(j - first)] * vf[size_t(j * kvs + off + i)];
                out[size_t(t * qs + h * c.head_dim + i)] = o / sum;
            }
        }
    return out;
}

}  // namespace

TEST_CASE(
    "cpu prompt attention: matches float64 on odd shapes, windows, fp16 and float caches, any threads") {
    const Case cases[] = {
        {37, 0, 8, 2, 64, 0, true},      // GQA 4:1, tokens not a multiple of the tile
        {37, 0, 8, 2, 64, 0, false},     // float cache
        {21, 90, 6, 3, 40, 0, true},     // a cached prefix over a chunk boundary; head size 5 x 8
        {50, 13, 4, 4, 128, 17, true},   // no grouping, a sliding window shorter than the prompt
        {19, 200, 3, 1, 24, 70, false},  // odd head count, window inside the prefix
        {9, 200, 3, 1, 24, 70, true},    // below the routing threshold: this path still works
    };
    cpu::ThreadPool pool(3);
    std::mt19937 rng(11);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (const Case& c : cases) {
        CAPTURE(c.n_tokens);
        CAPTURE(c.pos0);
        CAPTURE(c.head_dim);
        CAPTURE(c.window);
        CAPTURE(c.f16);
        const int64_t n_ctx = c.pos0 + c.n_tokens, kvs = c.n_head_kv * c.head_dim;
        std::vector<float> q(size_t(c.n_tokens * c.n_head * c.head_dim)), kf(size_t(n_ctx * kvs)),
            vf(kf.size());
        for (float& e : q) e = 1.5f * normal(rng);
        for (float& e : kf) e = normal(rng);
        for (float& e : vf) e = normal(rng);
        std::vector<uint16_t> kh(kf.size()), vh(vf.size());
        for (size_t i = 0; i < kf.size(); ++i) {
            kh[i] = fp32_to_fp16(kf[i]);
            vh[i] = fp32_to_fp16(vf[i]);
            if (c.f16) {  // the reference sees what the cache holds
                kf[i] = fp16_to_fp32(kh[i]);
                vf[i] = fp16_to_fp32(vh[i]);
            }
        }
        const float scale = 1.0f / std::sqrt(float(c.head_dim));
        const std::vector<double> want = reference(c, q, kf, vf, scale);
        cpu::PromptAttention a{q.data(), c.n_tokens,  c.pos0,     nullptr, nullptr,  c.f16,
                               c.n_head, c.n_head_kv, c.head_dim, scale,   c.window, nullptr};
        a.k = c.f16 ? static_cast<const void*>(kh.data()) : kf.data();
        a.v = c.f16 ? static_cast<const void*>(vh.data()) : vf.data();
        if (!cpu::prompt_attention_supported(a)) continue;  // a CPU without AVX2: cpu::attention's own path
        std::vector<float> out1(q.size(), NAN), out3(q.size(), NAN);
        a.out = out1.data();
        cpu::prompt_attention(a, nullptr);
        a.out = out3.data();
        cpu::prompt_attention(a, &pool);
        CHECK(out1 == out3);
        double worst = 0;
        for (size_t i = 0; i < want.size(); ++i) {
            REQUIRE(std::isfinite(out1[i]));
            worst = std::max(worst, std::fabs(out1[i] - want[i]));
        }
        CHECK(worst < 2e-5);  // outputs are weighted means of N(0,1) values: float rounding only

        // cpu::attention routes prompts of kPromptAttentionMinTokens or more here (at the AVX2 and AVX-512
        // levels alike).
        if (c.n_tokens < cpu::kPromptAttentionMinTokens) continue;
        std::vector<float> scratch(cpu::attention_scratch_floats(c.n_head, c.n_head_kv, n_ctx, 3)),
            via(q.size());
        cpu::attention(q.data(), c.n_tokens, c.pos0, a.k, a.v, c.f16, c.n_head, c.n_head_kv, c.head_dim,
                       scale, c.window, via.data(), scratch.data(), &pool);
        CHECK(via == out1);
    }
}
