// Activation rounding for the prefill path: per block of 32, d = max|x| / 127 and q = nearest(x / d), ties
// to even, computed as x * (1 / d) so that every ISA level and the test reference round identically.
#include "kernels/cpu/prefill_act.hpp"

#include <cmath>

namespace kinfer::cpu::prefill {

namespace {

struct BlockRounding {
    float d;
    int sum_lo, sum_hi;  // sums of q over elements 0..15 and 16..31
};

BlockRounding round_block(const float* x, int8_t* q) {
    float amax = 0;
    for (int i = 0; i < kActBlock; ++i) amax = std::fmax(amax, std::fabs(x[i]));
    const float d = amax / 127.0f;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    BlockRounding r{d, 0, 0};
    for (int i = 0; i < kActBlock; ++i) {
        const int v = static_cast<int>(std::nearbyint(x[i] * id));
        q[i] = static_cast<int8_t>(v < -127 ? -127 : v > 127 ? 127 : v);
        (i < 16 ? r.sum_lo : r.sum_hi) += q[i];
    }
    return r;
}

}  // namespace

ActView::ActView(const void* act, int64_t n_in, int64_t n_tokens_) : n_tokens(n_tokens_) {
    const size_t cells = size_t(n_in / kActBlock) * size_t(n_tokens_);
    q = static_cast<const int8_t*>(act);
    d = reinterpret_cast<const float*>(q + cells * kActBlock);
    s32 = d + cells;
    s16 = s32 + cells;
}

size_t act_bytes(int64_t n_in, int64_t n_tokens) {
    const size_t cells = size_t(n_in / kActBlock) * size_t(n_tokens);
    return cells * kActBlock + cells * sizeof(float) * 4;
}

void prepare(const float* x, int64_t n_in, int64_t n_tokens, void* act) {
    const ActView v(act, n_in, n_tokens);
    auto* q = const_cast<int8_t*>(v.q);
    auto* d = const_cast<float*>(v.d);
    auto* s32 = const_cast<float*>(v.s32);
    auto* s16 = const_cast<float*>(v.s16);
    const int64_t nb = n_in / kActBlock;
    for (int64_t t = 0; t < n_tokens; ++t) {
        for (int64_t b = 0; b < nb; ++b) {
            const size_t cell = size_t(b * n_tokens + t);
            const BlockRounding r = round_block(x + t * n_in + b * kActBlock, q + cell * kActBlock);
            d[cell] = r.d;
            s32[cell] = r.d * float(r.sum_lo + r.sum_hi);
            s16[2 * cell] = r.d * float(r.sum_lo);
            s16[2 * cell + 1] = r.d * float(r.sum_hi);
        }
    }
}

void round_like_prepare(const float* x, int64_t n_in, float* out) {
    int8_t q[kActBlock];
    for (int64_t b = 0; b < n_in / kActBlock; ++b) {
        const BlockRounding r = round_block(x + b * kActBlock, q);
        for (int i = 0; i < kActBlock; ++i) out[b * kActBlock + i] = r.d * float(q[i]);
    }
}

}  // namespace kinfer::cpu::prefill
