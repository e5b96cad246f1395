// Attention over the fp16 KV cache, one query row at a time (decode, and prefill rows alike), split across
// the sequence (flash-decoding): block (split, head, row) runs an online softmax over its slice of positions
// with 16 groups of 8 lanes, each group on its own positions and each lane on head_dim / 8 dimensions; the
// groups merge in shared memory. With several splits, the last block of a (row, head) to finish (an atomic
// count per (row, head), reset by that block) merges the splits' partials, its threads over the splits and
// then over the dimensions: no second kernel, and no serial loop over the splits per dimension. The output
// can also be written in matvec's prepared layout, so the output projection needs no preparation pass.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "kernels/cuda/activation_layout.cuh"
#include "kernels/cuda/cuda_check.cuh"
#include "kernels/cuda/env_switch.hpp"
#include "kernels/cuda/kernels.hpp"

namespace kinfer::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kLanesPerPos = 8;
constexpr int kPosGroups = kThreads / kLanesPerPos;  // 16
constexpr int kMaxSplits = 1024;
constexpr int kMinSplitPositions = kPosGroups;
constexpr int kGqaLanes = 16;                     // lanes per position in attention_gqa_kernel
constexpr int kGqaGroups = kThreads / kGqaLanes;  // 8 positions per pass
constexpr int kGqaBatch = 4;                      // passes whose loads are issued together
constexpr int kGqaHeads = 4;  // query heads per KV head it serves (Mistral, Llama 3 8B)  // the merge's
                              // per-split weights live in shared memory

// Block-wide max or sum (kThreads threads; every thread gets the result).
__device__ float block_reduce(float v, bool is_max) {
    __shared__ float part[kThreads / 32];
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        const float u = __shfl_xor_sync(0xffffffffu, v, o);
        v = is_max ? fmaxf(v, u) : v + u;
    }
    __syncthreads();  // part may still be read by an earlier call
    if (threadIdx.x % 32 == 0) part[threadIdx.x / 32] = v;
    __syncthreads();
    v = part[0];
#pragma unroll
    for (int i = 1; i < kThreads / 32; ++i) v = is_max ? fmaxf(v, part[i]) : v + part[i];
    return v;
}

// Writes dimension d of one head's output; with `prepared`, also in matvec's layout (a warp covers the 32
// dimensions of one group: head_dim % 32 == 0, which the launcher checks before passing `prepared`).
__device__ __forceinline__ void write_output(float v, int64_t t, int head, int head_dim, int n_head, int d,
                                             float* __restrict__ out, float* __restrict__ prepared,
                                             int64_t prepared_stride) {
    out[(t * n_head + head) * head_dim + d] = v;
    if (prepared)
        prepare_group(v, (int64_t(head) * head_dim + d) / 32, int64_t(n_head) * head_dim,
                      prepared + t * prepared_stride);
}

// DPL halves starting at p (aligned to 2 * DPL bytes, or 8 when DPL is a multiple of 4) as floats.
template <int DPL>
__device__ __forceinline__ void load_halves(const uint16_t* p, float (&out)[DPL]) {
    if constexpr (DPL % 8 == 0) {
#pragma unroll
        for (int i = 0; i < DPL / 8; ++i) {
            const uint4 u = *reinterpret_cast<const uint4*>(p + 8 * i);
            const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&w[j]));
                out[8 * i + 2 * j] = f.x;
                out[8 * i + 2 * j + 1] = f.y;
            }
        }
    } else if constexpr (DPL % 4 == 0) {
#pragma unroll
        for (int i = 0; i < DPL / 4; ++i) {
            const uint2 u = *reinterpret_cast<const uint2*>(p + 4 * i);
            const float2 a = __half22float2(*reinterpret_cast<const __half2*>(&u.x));
            const float2 b = __half22float2(*reinterpret_cast<const __half2*>(&u.y));
            out[4 * i] = a.x, out[4 * i + 1] = a.y, out[4 * i + 2] = b.x, out[4 * i + 3] = b.y;
        }
    } else {
#pragma unroll
        for (int i = 0; i < DPL / 2; ++i) {
            const float2 f = __half22float2(*reinterpret_cast<const __half2*>(p + 2 * i));
            out[2 * i] = f.x, out[2 * i + 1] = f.y;
        }
    }
}

// W 32-bit words (2W halves) starting at p, aligned to 4W bytes (or 16 when W is a multiple of 4).
template <int W>
__device__ __forceinline__ void load_words(const uint16_t* p, uint32_t (&out)[W]) {
    if constexpr (W % 4 == 0) {
#pragma unroll
        for (int i = 0; i < W / 4; ++i) {
            const uint4 u = *reinterpret_cast<const uint4*>(p + 8 * i);
            out[4 * i] = u.x, out[4 * i + 1] = u.y, out[4 * i + 2] = u.z, out[4 * i + 3] = u.w;
        }
    } else if constexpr (W % 2 == 0) {
#pragma unroll
        for (int i = 0; i < W / 2; ++i) {
            const uint2 u = *reinterpret_cast<const uint2*>(p + 4 * i);
            out[2 * i] = u.x, out[2 * i + 1] = u.y;
        }
    } else {
#pragma unroll
        for (int i = 0; i < W; ++i) out[i] = *reinterpret_cast<const uint32_t*>(p + 2 * i);
    }
}

template <int W>
__device__ __forceinline__ void words_to_floats(const uint32_t (&w)[W], float (&out)[2 * W]) {
#pragma unroll
    for (int i = 0; i < W; ++i) {
        const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&w[i]));
        out[2 * i] = f.x, out[2 * i + 1] = f.y;
    }
}

// The positions of one block (split) of a row's slice, sized by the row's own length: the launch is sized
// for the whole context (a decode graph serves every depth), so a row of len positions uses only
// active = ceil(len / min_chunk) of the n_splits (at most), chunks of ceil(len / active); the other blocks
// exit at once and the merge reads only the active splits' partials. A context of 4096 positions holding 150
// would otherwise give 64 splits of 64 positions, 3 with work and a merge over all 64, in every layer.
// min_chunk 0: the old fixed slicing (split * chunk), for comparisons (KINFER_ATTN_FIXED_SPLITS=1).
struct SplitRange {
    int begin, end, active;
};
__device__ __forceinline__ SplitRange split_range(const KvRow& row, int split, int n_splits, int min_chunk,
                                                  int chunk) {
    const int len = row.pos + 1 - row.first;
    int active = n_splits;
    if (min_chunk > 0) {
        active = min(n_splits, max(1, (len + min_chunk - 1) / min_chunk));
        chunk = (len + active - 1) / active;
    }
    const int begin = row.first + split * chunk;
    return {begin, min(row.pos + 1, begin + chunk), active};
}

// The splits' partials of one (row, head) (pp: n_splits entries of HD + 2 floats) into its output, by the
// whole block: threads over the splits for the weights, then warps over the splits and lanes over the
// dimensions (coalesced; one thread per dimension looping over every split was a chain of L2 round trips,
// ~5 µs at 64 splits). The chain is what costs: one round of loads for the (max, sum) pairs and the first 32
// splits' values together, then the weights (H200, Q4_K_M tg128 508-513 -> 517-519 t/s against loading the
// pairs twice and the values after the weights; at depth 4096 450-452 -> 456; 8 sequences 2 164 -> 2 198).
template <int HD>
__device__ void merge_splits(const float* pp, int n_splits, int64_t t, int head, int n_head,
                             float* __restrict__ out, float* __restrict__ prepared, int64_t prepared_stride) {
    constexpr int64_t pstride = HD + 2;  // even: each split's (max, sum) pair is one 8-byte load
    __shared__ float s_w[kMaxSplits];
    __shared__ float s_o[kThreads / 32][HD];
    constexpr int J = (HD + 31) / 32;
    const int lane32 = threadIdx.x % 32, warp = threadIdx.x / 32;
    // Warp w's first kPre splits (w, w + 4, ...) loaded first, in flight with the (max, sum) loads: their
    // weights need the max, their values do not.
    constexpr int kPre = HD <= 128 ? 8 : 4;
    float pre[kPre][J];
#pragma unroll
    for (int u = 0; u < kPre; ++u) {
        const int i = warp + u * (kThreads / 32);
#pragma unroll
        for (int j = 0; j < J; ++j)
            pre[u][j] =
                i < n_splits && lane32 + 32 * j < HD ? __ldcg(pp + i * pstride + lane32 + 32 * j) : 0.0f;
    }
    // Each (max, sum) loaded once and held in registers (split threadIdx.x + k * kThreads).
    constexpr int kPer = kMaxSplits / kThreads;
    float mv[kPer], lv[kPer];
    float mx = -INFINITY;
#pragma unroll
    for (int k = 0; k < kPer; ++k) {
        const int i = threadIdx.x + k * kThreads;
        const float2 ml = i < n_splits ? __ldcg(reinterpret_cast<const float2*>(pp + i * pstride + HD))
                                       : make_float2(-INFINITY, 0.0f);
        mv[k] = ml.x, lv[k] = ml.y;
        mx = fmaxf(mx, ml.x);
    }
    mx = block_reduce(mx, true);
    float sum_l = 0.0f;
#pragma unroll
    for (int k = 0; k < kPer; ++k) {
        const int i = threadIdx.x + k * kThreads;
        if (i >= n_splits) break;
        const float w = mx == -INFINITY ? 0.0f : __expf(mv[k] - mx);
        s_w[i] = w;
        sum_l += w * lv[k];
    }
    sum_l = block_reduce(sum_l, false);  // its barriers also publish s_w
    float o[J];
#pragma unroll
    for (int j = 0; j < J; ++j) o[j] = 0.0f;
#pragma unroll
    for (int u = 0; u < kPre; ++u) {
        const int i = warp + u * (kThreads / 32);
        const float w = i < n_splits ? s_w[i] : 0.0f;
#pragma unroll
        for (int j = 0; j < J; ++j) o[j] = fmaf(w, pre[u][j], o[j]);
    }
#pragma unroll 8
    for (int i = warp + kPre * (kThreads / 32); i < n_splits; i += kThreads / 32) {
        const float w = s_w[i];
#pragma unroll
        for (int j = 0; j < J; ++j)
            if (lane32 + 32 * j < HD) o[j] = fmaf(w, __ldcg(pp + i * pstride + lane32 + 32 * j), o[j]);
    }
#pragma unroll
    for (int j = 0; j < J; ++j)
        if (lane32 + 32 * j < HD) s_o[warp][lane32 + 32 * j] = o[j];
    __syncthreads();
    for (int d = threadIdx.x; d < HD; d += kThreads) {
        float sum_o = 0.0f;
#pragma unroll
        for (int w = 0; w < kThreads / 32; ++w) sum_o += s_o[w][d];
        write_output(sum_l > 0.0f ? sum_o / sum_l : 0.0f, t, head, HD, n_head, d, out, prepared,
                     prepared_stride);
    }
}

// partial (n_splits > 1): per (row, head, split) head_dim floats of unnormalised output, then max and sum.
template <int DPL>
__global__ void __launch_bounds__(kThreads)
    attention_kernel(const float* __restrict__ q, const KvRow* __restrict__ rows, int layer, int n_head,
                     int n_head_kv, float scale, int min_chunk, int chunk, float* __restrict__ out,
                     float* __restrict__ prepared, int64_t prepared_stride, float* __restrict__ partial,
                     int* __restrict__ counters) {
    constexpr int HD = DPL * kLanesPerPos;
    const int split = blockIdx.x, head = blockIdx.y, t = blockIdx.z, grid_splits = gridDim.x;
    // The row is written before the step's first kernel: loaded before the wait, it is off the chain of
    // round trips after it (H200 tg128 Q4_K_M 519-522 against 517 t/s after the wait).
    const KvRow row = rows[t];
    wait_for_producer();
    const SplitRange range = split_range(row, split, grid_splits, min_chunk, chunk);
    if (split >= range.active) return;  // past the row's length: no positions, no partial
    const int n_splits = range.active;
    const int kv_head = head / (n_head / n_head_kv);
    const int kv_dim = n_head_kv * HD;
    const int p_begin = range.begin, p_end = range.end;

    const int lane = threadIdx.x % kLanesPerPos, pg = threadIdx.x / kLanesPerPos;
    float qv[DPL];
    const float* qh = q + (static_cast<int64_t>(t) * n_head + head) * HD + lane * DPL;
#pragma unroll
    for (int i = 0; i < DPL; ++i) qv[i] = qh[i] * scale;

    const int64_t base = static_cast<int64_t>(layer) * row.layer_elems + kv_head * HD + lane * DPL;
    const uint16_t* kb = row.k + base;
    const uint16_t* vb = row.v + base;
    float m = -INFINITY, l = 0.0f, acc[DPL];
#pragma unroll
    for (int i = 0; i < DPL; ++i) acc[i] = 0.0f;
    // Every lane runs the same iterations (the shuffles need the whole warp); positions past the end idle.
    // The next position's K and V are loaded before this one's are used: one memory latency per iteration
    // was what bounded the loop.
    float kf[DPL], vf[DPL];
    if (p_begin + pg < p_end) {
        load_halves<DPL>(kb + static_cast<int64_t>(p_begin + pg) * kv_dim, kf);
        load_halves<DPL>(vb + static_cast<int64_t>(p_begin + pg) * kv_dim, vf);
    }
    for (int p0 = p_begin; p0 < p_end; p0 += kPosGroups) {
        const int p = p0 + pg;
        const bool valid = p < p_end;
        float kn[DPL], vn[DPL];
        if (p + kPosGroups < p_end) {
            load_halves<DPL>(kb + static_cast<int64_t>(p + kPosGroups) * kv_dim, kn);
            load_halves<DPL>(vb + static_cast<int64_t>(p + kPosGroups) * kv_dim, vn);
        }
        float s = 0.0f;
        if (valid) {
#pragma unroll
            for (int i = 0; i < DPL; ++i) s = fmaf(qv[i], kf[i], s);
        }
#pragma unroll
        for (int o = kLanesPerPos / 2; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
        if (valid) {
            const float m_new = fmaxf(m, s);
            const float c = __expf(m - m_new), e = __expf(s - m_new);
            l = l * c + e;
#pragma unroll
            for (int i = 0; i < DPL; ++i) acc[i] = fmaf(acc[i], c, e * vf[i]);
            m = m_new;
        }
#pragma unroll
        for (int i = 0; i < DPL; ++i) kf[i] = kn[i], vf[i] = vn[i];
    }

    __shared__ float s_m[kPosGroups], s_l[kPosGroups];
    __shared__ float s_acc[kPosGroups][HD];
    if (lane == 0) s_m[pg] = m, s_l[pg] = l;
#pragma unroll
    for (int i = 0; i < DPL; ++i) s_acc[pg][lane * DPL + i] = acc[i];
    __syncthreads();
    float big = -INFINITY;
#pragma unroll
    for (int i = 0; i < kPosGroups; ++i) big = fmaxf(big, s_m[i]);
    const int64_t pstride = HD + 2;
    float* pp = partial + ((static_cast<int64_t>(t) * n_head + head) * grid_splits) * pstride;
    for (int d = threadIdx.x; d < HD; d += kThreads) {
        float sum_l = 0.0f, o = 0.0f;
        if (big != -INFINITY) {
#pragma unroll
            for (int i = 0; i < kPosGroups; ++i) {
                const float w = __expf(s_m[i] - big);  // 0 for groups that saw no position
                sum_l += s_l[i] * w;
                o += s_acc[i][d] * w;
            }
        }
        if (n_splits == 1) {
            write_output(sum_l > 0.0f ? o / sum_l : 0.0f, t, head, HD, n_head, d, out, prepared,
                         prepared_stride);
        } else {
            pp[split * pstride + d] = o;
            if (d == 0) pp[split * pstride + HD] = big, pp[split * pstride + HD + 1] = sum_l;
        }
    }
    if (n_splits == 1) return;

    // The last split of (t, head) to finish merges them all.
    __shared__ bool s_last;
    __threadfence();  // this block's partials are visible before its count
    __syncthreads();
    if (threadIdx.x == 0) {
        int* count = counters + static_cast<int64_t>(t) * n_head + head;
        s_last = atomicAdd(count, 1) == n_splits - 1;
        if (s_last) *count = 0;  // ready for the next launch (graph replays)
    }
    __syncthreads();
    if (!s_last) return;
    __threadfence();
    merge_splits<HD>(pp, n_splits, t, head, n_head, out, prepared, prepared_stride);
}

// Grouped-query attention: block (split, KV head, row) serves the G query heads that share one KV head, so
// each K/V position is loaded once for all of them (the per-head kernel loads it G times, from L2, and at
// depth 4096 that traffic and its serial passes bound it). 16 lanes per position (head_dim / 16 dimensions
// each), 8 positions per pass; per query head the same online softmax and partials as attention_kernel. With
// several splits, combine_kernel merges them.
template <int DPL, int G>
__global__ void __launch_bounds__(kThreads)
    attention_gqa_kernel(const float* __restrict__ q, const KvRow* __restrict__ rows, int layer, int n_head,
                         int n_head_kv, float scale, int min_chunk, int chunk, float* __restrict__ out,
                         float* __restrict__ prepared, int64_t prepared_stride, float* __restrict__ partial) {
    constexpr int HD = DPL * kGqaLanes;
    const int split = blockIdx.x, kvh = blockIdx.y, t = blockIdx.z, grid_splits = gridDim.x;
    const KvRow row = rows[t];  // written before the step's first kernel
    const SplitRange range = split_range(row, split, grid_splits, min_chunk, chunk);
    if (split >= range.active) return;  // past the row's length (combine_kernel merges only active ones)
    const int n_splits = range.active;
    const int kv_dim = n_head_kv * HD;
    const int p_begin = range.begin, p_end = range.end;
    const int lane = threadIdx.x % kGqaLanes, pg = threadIdx.x / kGqaLanes;
    const int64_t base = static_cast<int64_t>(layer) * row.layer_elems + kvh * HD + lane * DPL;
    const uint16_t* kb = row.k + base;
    const uint16_t* vb = row.v + base;

    // kGqaBatch passes (8 positions each) of keys and values are loaded at once, as raw halves, before any is
    // used: one memory round trip per batch instead of one per pass (a block has 32 positions at depth 4096).
    // The first batch's rows written before this step are loaded before waiting for the kernel before us
    // (the one writing q and this step's rows: at most one per token of the launch, the last at row pos);
    // the others after.
    constexpr int W = DPL / 2;                              // 32-bit words per lane and position
    uint32_t kr[kGqaBatch][W] = {}, vr[kGqaBatch][W] = {};  // rows past the end stay zero (unused)
    const int written_before = row.pos - (int(gridDim.z) - 1);
    const auto load_batch = [&](int p0, bool early) {
#pragma unroll
        for (int i = 0; i < kGqaBatch; ++i) {
            const int p = p0 + i * kGqaGroups + pg;
            if (p < p_end && (early ? p < written_before : p0 != p_begin || p >= written_before)) {
                load_words<W>(kb + static_cast<int64_t>(p) * kv_dim, kr[i]);
                load_words<W>(vb + static_cast<int64_t>(p) * kv_dim, vr[i]);
            }
        }
    };
    load_batch(p_begin, true);
    wait_for_producer();
    float qv[G][DPL];
#pragma unroll
    for (int j = 0; j < G; ++j) {
        const float* qh = q + (static_cast<int64_t>(t) * n_head + kvh * G + j) * HD + lane * DPL;
#pragma unroll
        for (int i = 0; i < DPL; ++i) qv[j][i] = qh[i] * scale;
    }
    float m[G], l[G], acc[G][DPL];
#pragma unroll
    for (int j = 0; j < G; ++j) {
        m[j] = -INFINITY, l[j] = 0.0f;
#pragma unroll
        for (int i = 0; i < DPL; ++i) acc[j][i] = 0.0f;
    }
    for (int p0 = p_begin; p0 < p_end; p0 += kGqaBatch * kGqaGroups) {
        load_batch(p0, false);
#pragma unroll
        for (int b = 0; b < kGqaBatch; ++b) {
            const int p = p0 + b * kGqaGroups + pg;
            if (p0 + b * kGqaGroups >= p_end) break;  // the same for the whole block: shuffles stay converged
            const bool valid = p < p_end;
            float kf[DPL], vf[DPL];
            words_to_floats<W>(kr[b], kf);
            words_to_floats<W>(vr[b], vf);
            float sc[G];
#pragma unroll
            for (int j = 0; j < G; ++j) {
                sc[j] = 0.0f;
                if (valid) {
#pragma unroll
                    for (int i = 0; i < DPL; ++i) sc[j] = fmaf(qv[j][i], kf[i], sc[j]);
                }
            }
#pragma unroll
            for (int o = kGqaLanes / 2; o > 0; o >>= 1)
#pragma unroll
                for (int j = 0; j < G; ++j) sc[j] += __shfl_xor_sync(0xffffffffu, sc[j], o);
            if (valid) {
#pragma unroll
                for (int j = 0; j < G; ++j) {
                    const float m_new = fmaxf(m[j], sc[j]);
                    const float c = __expf(m[j] - m_new), e = __expf(sc[j] - m_new);
                    l[j] = l[j] * c + e;
#pragma unroll
                    for (int i = 0; i < DPL; ++i) acc[j][i] = fmaf(acc[j][i], c, e * vf[i]);
                    m[j] = m_new;
                }
            }
        }
    }

    __shared__ float s_m[kGqaGroups][G], s_l[kGqaGroups][G];
    __shared__ float s_acc[kGqaGroups][G * HD];
    if (lane == 0)
#pragma unroll
        for (int j = 0; j < G; ++j) s_m[pg][j] = m[j], s_l[pg][j] = l[j];
#pragma unroll
    for (int j = 0; j < G; ++j)
#pragma unroll
        for (int i = 0; i < DPL; ++i) s_acc[pg][j * HD + lane * DPL + i] = acc[j][i];
    __syncthreads();
    // idx over (head j, dim d): a warp covers 32 dimensions of one head (G * HD is a multiple of kThreads).
    for (int idx = threadIdx.x; idx < G * HD; idx += kThreads) {
        const int j = idx / HD, d = idx % HD, head = kvh * G + j;
        float big = -INFINITY;
#pragma unroll
        for (int g = 0; g < kGqaGroups; ++g) big = fmaxf(big, s_m[g][j]);
        float sum_l = 0.0f, o = 0.0f;
        if (big != -INFINITY) {
#pragma unroll
            for (int g = 0; g < kGqaGroups; ++g) {
                const float w = __expf(s_m[g][j] - big);
                sum_l += s_l[g][j] * w;
                o += s_acc[g][idx] * w;
            }
        }
        if (n_splits == 1) {
            write_output(sum_l > 0.0f ? o / sum_l : 0.0f, t, head, HD, n_head, d, out, prepared,
                         prepared_stride);
        } else {
            float* pp =
                partial + ((static_cast<int64_t>(t) * n_head + head) * grid_splits + split) * (HD + 2);
            pp[d] = o;
            if (d == 0) pp[HD] = big, pp[HD + 1] = sum_l;
        }
    }
}

// Merges the splits of one (row, head) for attention_gqa_kernel: block (head, row).
template <int HD>
__global__ void __launch_bounds__(kThreads)
    combine_kernel(const float* __restrict__ partial, const KvRow* __restrict__ rows, int n_head,
                   int n_splits, int min_chunk, int chunk, float* __restrict__ out,
                   float* __restrict__ prepared, int64_t prepared_stride) {
    const int head = blockIdx.x, t = blockIdx.y;
    const KvRow row = rows[t];  // written before the step's first kernel
    // Waits even where it has nothing to do: the kernels after it take its completion for the attention's.
    wait_for_producer();
    const int active = split_range(row, 0, n_splits, min_chunk, chunk).active;
    if (active == 1) return;  // the one split wrote the output itself
    merge_splits<HD>(partial + (static_cast<int64_t>(t) * n_head + head) * n_splits * (HD + 2), active, t,
                     head, n_head, out, prepared, prepared_stride);
}

// Splits so that about sixteen blocks per SM are busy (one block's positions are a serial online-softmax
// chain, so many short chains beat a few long ones), each split at least kMinSplitPositions positions: 16,
// one pass of the block's 16 position groups (64 left short contexts to a few blocks of 4 serial passes).
// attention_gqa_kernel serves shapes of 4 query heads per KV head and head_dim 32, 64, 96 or 128 with
// contexts of at least 512 positions, unless KINFER_ATTN_GQA=0 (read once; comparisons). H200, Q4_K_M
// tg128: 339 vs 317 t/s at depth 4096, but 405 vs 408 with a 128-position context (its combine kernel).
// Decode launches of KINFER_ATTN_GQA_TOKENS (read once) to 16 tokens take it at shorter contexts too: there
// the grouped kernel's one load per KV position for 4 heads outweighs its combine launch (H200, Q4_K_M tg128
// in a 128-position context, from 4 tokens against never: x4 1 164-1 172 vs 1 115 t/s, x8 2 145-2 171 vs
// 2 030-2 035; from 2 tokens x2 783-787 vs 800-802).
bool use_gqa(const AttentionShape& shape, int max_kv, int n_tokens) {
    static const bool on = env_on("KINFER_ATTN_GQA");
    static const int from_tokens = env_int("KINFER_ATTN_GQA_TOKENS", 4);
    const bool by_tokens = n_tokens >= from_tokens && n_tokens <= 16;
    return on && (max_kv >= 512 || by_tokens) && shape.n_head == kGqaHeads * shape.n_head_kv &&
           shape.head_dim % 32 == 0 && shape.head_dim <= 128;
}

// The per-head kernel: about sixteen blocks per SM; the GQA kernel (more registers, 4 resident blocks per
// SM, its loads in batches of 4 passes): about four, one wave (KINFER_ATTN_FILL; H200, Q4_K_M tg128 at
// depth 4096: 419 t/s at 4, 386 at 8, 335 at 16: fewer, longer splits leave the merge less to do).
int choose_splits(const AttentionShape& shape, int n_tokens, int max_kv) {
    const int n_sm = sm_count();
    const bool gqa = use_gqa(shape, max_kv, n_tokens);
    static const int gqa_fill = std::max(1, env_int("KINFER_ATTN_FILL", 4));  // comparisons
    const int by_fill = gqa ? ceil_div(gqa_fill * n_sm, std::max(1, n_tokens * shape.n_head_kv))
                            : ceil_div(16 * n_sm, std::max(1, n_tokens * shape.n_head));
    const int by_len = ceil_div(std::max(1, max_kv), gqa ? kGqaGroups : kMinSplitPositions);
    return std::max(1, std::min({by_fill, by_len, kMaxSplits}));
}

struct AttentionArgs {
    const float* q;
    const KvRow* rows;
    int n_tokens, layer;
    AttentionShape shape;
    float scale;
    int n_splits, min_chunk, chunk;
    float *out, *prepared, *scratch;
    int* counters;
};

template <int DPL>
void launch(const AttentionArgs& a, cudaStream_t s) {
    const dim3 grid(a.n_splits, a.shape.n_head, a.n_tokens);
    launch_kernel(attention_kernel<DPL>, grid, kThreads, 0, s, a.q, a.rows, a.layer, a.shape.n_head,
                  a.shape.n_head_kv, a.scale, a.min_chunk, a.chunk, a.out, a.prepared,
                  activation_floats(int64_t(a.shape.n_head) * a.shape.head_dim), a.scratch, a.counters);
}

template <int DPL>
void launch_gqa(const AttentionArgs& a, cudaStream_t s) {
    constexpr int HD = DPL * kGqaLanes;
    const int64_t pstride = activation_floats(int64_t(a.shape.n_head) * a.shape.head_dim);
    launch_kernel(attention_gqa_kernel<DPL, kGqaHeads>, dim3(a.n_splits, a.shape.n_head_kv, a.n_tokens),
                  kThreads, 0, s, a.q, a.rows, a.layer, a.shape.n_head, a.shape.n_head_kv, a.scale,
                  a.min_chunk, a.chunk, a.out, a.prepared, pstride, a.scratch);
    check_launch("attention");
    if (a.n_splits > 1)
        launch_kernel(combine_kernel<HD>, dim3(a.shape.n_head, a.n_tokens), kThreads, 0, s, a.scratch, a.rows,
                      a.shape.n_head, a.n_splits, a.min_chunk, a.chunk, a.out, a.prepared, pstride);
}

}  // namespace

bool attention_supports_head_dim(int head_dim) {
    switch (head_dim) {
        case 16:
        case 32:
        case 64:
        case 96:
        case 128:
        case 256:
            return true;
        default:
            return false;
    }
}

size_t attention_scratch_floats(const AttentionShape& shape, int n_tokens, int max_kv) {
    size_t most = 0;  // fewer tokens take more splits: the largest need over 1 .. n_tokens
    for (int n = 1; n <= n_tokens; ++n) {
        const int n_splits = choose_splits(shape, n, max_kv);
        if (n_splits > 1) most = std::max(most, size_t(n) * shape.n_head * n_splits * (shape.head_dim + 2));
    }
    return most;
}

size_t attention_counters(const AttentionShape& shape, int n_tokens) {
    return size_t(std::max(1, n_tokens)) * size_t(std::max(1, shape.n_head));
}

void attention(const float* q_dev, const KvRow* rows_dev, int n_tokens, int layer,
               const AttentionShape& shape, float scale, int max_kv, float* out_dev, float* prepared_dev,
               float* scratch_dev, int* counters_dev, Stream stream) {
    if (n_tokens <= 0) return;
    if (shape.n_head_kv <= 0 || shape.n_head % shape.n_head_kv != 0)
        throw Error("internal error: attention with " + std::to_string(shape.n_head) + " heads over " +
                    std::to_string(shape.n_head_kv) + " KV heads");
    if (prepared_dev && shape.head_dim % 32 != 0)
        throw Error("internal error: attention writes matvec's layout only for head_dim % 32 == 0");
    const int n_splits = choose_splits(shape, n_tokens, max_kv);
    // Each row's splits follow its own length (split_range); the smallest split is the one choose_splits
    // sizes by, so a row as long as max_kv gets the n_splits slices of ceil(max_kv / n_splits) it always had.
    static const bool fixed = env_on("KINFER_ATTN_FIXED_SPLITS");  // read once; comparisons
    const int min_chunk = fixed ? 0 : (use_gqa(shape, max_kv, n_tokens) ? kGqaGroups : kMinSplitPositions);
    const AttentionArgs a{q_dev,       rows_dev,     n_tokens,
                          layer,       shape,        scale,
                          n_splits,    min_chunk,    ceil_div(std::max(1, max_kv), n_splits),
                          out_dev,     prepared_dev, scratch_dev,
                          counters_dev};
    const cudaStream_t s = as_stream(stream);
    if (use_gqa(shape, max_kv, n_tokens)) {
        switch (shape.head_dim) {
            case 32:
                launch_gqa<2>(a, s);
                break;
            case 64:
                launch_gqa<4>(a, s);
                break;
            case 96:
                launch_gqa<6>(a, s);
                break;
            default:
                launch_gqa<8>(a, s);
                break;
        }
        check_launch("attention");
        return;
    }
    switch (shape.head_dim) {
        case 16:
            launch<2>(a, s);
            break;
        case 32:
            launch<4>(a, s);
            break;
        case 64:
            launch<8>(a, s);
            break;
        case 96:
            launch<12>(a, s);
            break;
        case 128:
            launch<16>(a, s);
            break;
        case 256:
            launch<32>(a, s);
            break;
        default:
            throw UsageError("the CUDA backend supports head_dim 16, 32, 64, 96, 128 or 256, not " +
                             std::to_string(shape.head_dim));
    }
    check_launch("attention");
}

}  // namespace kinfer::cuda
