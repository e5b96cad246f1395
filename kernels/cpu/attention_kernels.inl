// The attention task (attention_kernel.hpp) over a SIMD vocabulary `V`, compiled once per instruction set by
// the file that includes this one after defining V (attention_avx2.cpp, attention_avx512.cpp, and the
// one-lane V of attention.cpp). V provides: R (a register of W floats), zero, set1, load (float and fp16),
// store, fma(a, b, c) = a * b + c, add, sub, mul, max, hsum, hmax, exp (of arguments <= 0, to float
// precision) and to_f32 (one fp16).
//
// Three passes over the attended rows, each reading one cache row per step for all heads of the block:
// scores (q . k_j * scale), softmax (max, exp, sum, normalise: vector over j), output (sum_j p_j v_j, the
// output heads stay in L1). Head dimensions that are not a multiple of W finish with a scalar tail. Nothing
// allocates: the scores go to the task's scratch.
#include <cstdint>

#include "kernels/cpu/attention_kernel.hpp"

namespace kinfer::cpu {
namespace {

template <class KV, int NB>
void attend_block(const AttnTask& a) {
    using R = typename V::R;
    constexpr int64_t W = V::W;
    const int64_t hd = a.head_dim, n = a.last - a.first + 1;
    const int64_t dv = hd / W * W;  // the dims handled by whole registers
    const KV* k = static_cast<const KV*>(a.k) + a.first * a.kv_stride;
    const KV* v = static_cast<const KV*>(a.v) + a.first * a.kv_stride;
    float* sc = a.scores;  // NB rows of n

    // scores
    for (int64_t j = 0; j < n; ++j) {
        const KV* kj = k + j * a.kv_stride;
        R acc[NB];
        for (int h = 0; h < NB; ++h) acc[h] = V::zero();
        for (int64_t d = 0; d < dv; d += W) {
            const R kk = V::load(kj + d);
            for (int h = 0; h < NB; ++h) acc[h] = V::fma(V::load(a.q + h * hd + d), kk, acc[h]);
        }
        for (int h = 0; h < NB; ++h) {
            float s = V::hsum(acc[h]);
            for (int64_t d = dv; d < hd; ++d) s += a.q[h * hd + d] * V::to_f32(kj[d]);
            sc[h * n + j] = s * a.scale;
        }
    }

    // softmax, each head's row: probabilities in place
    const int64_t nv = n / W * W;
    for (int h = 0; h < NB; ++h) {
        float* s = sc + h * n;
        R mv = V::set1(s[0]);
        for (int64_t j = 0; j < nv; j += W) mv = V::max(mv, V::load(s + j));
        float mx = V::hmax(mv);
        for (int64_t j = nv; j < n; ++j) mx = s[j] > mx ? s[j] : mx;
        mv = V::set1(mx);
        R sum = V::zero();
        for (int64_t j = 0; j < nv; j += W) {
            const R e = V::exp(V::sub(V::load(s + j), mv));
            V::store(s + j, e);
            sum = V::add(sum, e);
        }
        float total = V::hsum(sum);
        for (int64_t j = nv; j < n; ++j) {
            s[j] = V::exp1(s[j] - mx);
            total += s[j];
        }
        const float inv = 1.0f / total;  // >= 1: the maximum's term is exp(0)
        const R iv = V::set1(inv);
        for (int64_t j = 0; j < nv; j += W) V::store(s + j, V::mul(V::load(s + j), iv));
        for (int64_t j = nv; j < n; ++j) s[j] *= inv;
    }

    // output
    for (int h = 0; h < NB; ++h)
        for (int64_t d = 0; d < hd; ++d) a.out[h * hd + d] = 0.0f;
    for (int64_t j = 0; j < n; ++j) {
        const KV* vj = v + j * a.kv_stride;
        R p[NB];
        for (int h = 0; h < NB; ++h) p[h] = V::set1(sc[h * n + j]);
        for (int64_t d = 0; d < dv; d += W) {
            const R vv = V::load(vj + d);
            for (int h = 0; h < NB; ++h) {
                float* o = a.out + h * hd + d;
                V::store(o, V::fma(p[h], vv, V::load(o)));
            }
        }
        for (int64_t d = dv; d < hd; ++d) {
            const float x = V::to_f32(vj[d]);
            for (int h = 0; h < NB; ++h) a.out[h * hd + d] += sc[h * n + j] * x;
        }
    }
}

template <class KV>
void attend(const AttnTask& a) {
    switch (a.n_heads) {
        case 1: return attend_block<KV, 1>(a);
        case 2: return attend_block<KV, 2>(a);
        case 3: return attend_block<KV, 3>(a);
        case 4: return attend_block<KV, 4>(a);
        case 5: return attend_block<KV, 5>(a);
        case 6: return attend_block<KV, 6>(a);
        case 7: return attend_block<KV, 7>(a);
        default: return attend_block<KV, 8>(a);
    }
}

static_assert(kAttnMaxHeads == 8, "attend() dispatches 1..8 heads");

}  // namespace
}  // namespace kinfer::cpu
