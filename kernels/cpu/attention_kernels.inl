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

// Rows read ahead: a head's slice of a cache row is a few cache lines at a stride of the whole row
// (n_head_kv heads), which the hardware prefetchers follow poorly across pages.
constexpr int64_t kPrefetchRows = 16;
constexpr int64_t kOutputBlock = 32;  // cache rows per block of the output pass

template <class KV>
inline void prefetch_row(const KV* row, int64_t n) {
    const auto* p = reinterpret_cast<const char*>(row);
    for (int64_t b = 0; b < n * int64_t(sizeof(KV)); b += 64) __builtin_prefetch(p + b);
}

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
        if (j + kPrefetchRows < n) prefetch_row(kj + kPrefetchRows * a.kv_stride, hd);
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

    // output: blocks of rows (their V slices stay in L1), each register-wide slice of the head dimension
    // carried through the block in registers; the sum runs over j in order, as a plain loop would
    for (int h = 0; h < NB; ++h)
        for (int64_t d = 0; d < hd; ++d) a.out[h * hd + d] = 0.0f;
    for (int64_t j0 = 0; j0 < n; j0 += kOutputBlock) {
        const int64_t j1 = j0 + kOutputBlock < n ? j0 + kOutputBlock : n;
        for (int64_t j = j1; j < j1 + kOutputBlock && j < n; ++j) prefetch_row(v + j * a.kv_stride, hd);
        for (int64_t d = 0; d < dv; d += W) {
            R acc[NB];
            for (int h = 0; h < NB; ++h) acc[h] = V::load(a.out + h * hd + d);
            for (int64_t j = j0; j < j1; ++j) {
                const R vv = V::load(v + j * a.kv_stride + d);
                for (int h = 0; h < NB; ++h) acc[h] = V::fma(V::set1(sc[h * n + j]), vv, acc[h]);
            }
            for (int h = 0; h < NB; ++h) V::store(a.out + h * hd + d, acc[h]);
        }
        for (int64_t d = dv; d < hd; ++d)
            for (int64_t j = j0; j < j1; ++j) {
                const float x = V::to_f32(v[j * a.kv_stride + d]);
                for (int h = 0; h < NB; ++h) a.out[h * hd + d] += sc[h * n + j] * x;
            }
    }
}

template <class KV>
void attend(const AttnTask& a) {
    switch (a.n_heads) {
        case 1:
            return attend_block<KV, 1>(a);
        case 2:
            return attend_block<KV, 2>(a);
        case 3:
            return attend_block<KV, 3>(a);
        case 4:
            return attend_block<KV, 4>(a);
        case 5:
            return attend_block<KV, 5>(a);
        case 6:
            return attend_block<KV, 6>(a);
        case 7:
            return attend_block<KV, 7>(a);
        default:
            return attend_block<KV, 8>(a);
    }
}

static_assert(kAttnMaxHeads == 8, "attend() dispatches 1..8 heads");

}  // namespace
}  // namespace kinfer::cpu
