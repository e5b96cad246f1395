// Decode matrix-vector products: fused dequantization x activation, reading each weight byte once for up to
// 16 tokens. A block of 2 warps owns R rows; its threads stride over the rows' 32-element groups, two groups
// per step so that 2 * R 16-byte weight loads per thread are in flight; each activation load feeds R rows.
//
// Quantized weights meet the activation's two int8 terms (kernels/cuda/activation_layout.cuh): per sub-group
// of 16 the thread takes the codes straight from the repacked words (kernels/cuda/repacked.hpp) and forms
// sum(code * q1) and sum(code * q2) with 8 dp4a (4 elements each), then applies the scales once:
// a * s2 * (254 * I1 + I2) + (b + base * a) * sum(x). That is ~1.5 instructions per weight where the float
// path (a byte permute and an FMA per weight, per token) needed 4.3 and bounded the kernel by issue; the
// activation error is 1/64516 of the group's largest value, 254 times below llama.cpp's single q8_1 term.
// Float weights (F32/F16/BF16) keep the float path over the permuted float copy.
//
// The float copy is permuted so that a warp's 32 groups are interleaved by float4 and each 16-byte load of
// the warp is one contiguous 512-byte access; the int8 terms are interleaved the same way by 16 bytes.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "kernels/cuda/activation_layout.cuh"
#include "kernels/cuda/cuda_check.cuh"
#include "kernels/cuda/env_switch.hpp"
#include "kernels/cuda/kernels.hpp"
#include "kernels/cuda/mma_probe.cuh"
#include "kernels/cuda/repacked.hpp"

namespace kinfer::cuda {
namespace {

using namespace repacked;

constexpr int kThreads = 64;  // 2 warps: with K = 4096, two groups per thread, both loaded up front
constexpr int kWarps = kThreads / 32;

template <class L, int NT, int R>
__device__ __forceinline__ void accumulate_group(const typename L::G (&grp)[R], int g,
                                                 const float* __restrict__ x, int64_t x_stride, int n_tok,
                                                 float (&acc)[R][NT]) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        float v[R][16];
#pragma unroll
        for (int r = 0; r < R; ++r) L::values(grp[r], h, v[r]);
        const float* xg = x + activation_offset(g * kGroupElems + 16 * h);
#pragma unroll
        for (int t = 0; t < NT; ++t) {
            if (t >= n_tok) break;
            float xs[16];
#pragma unroll
            for (int i = 0; i < 4; ++i) {
                const float4 f = __ldg(reinterpret_cast<const float4*>(xg + t * x_stride + i * 128));
                xs[4 * i] = f.x, xs[4 * i + 1] = f.y, xs[4 * i + 2] = f.z, xs[4 * i + 3] = f.w;
            }
            float s[R];
#pragma unroll
            for (int r = 0; r < R; ++r) s[r] = 0.0f;
            float xsum = 0.0f;
#pragma unroll
            for (int i = 0; i < 16; ++i) {
                if constexpr (L::kHasOffset) xsum += xs[i];
#pragma unroll
                for (int r = 0; r < R; ++r) s[r] = fmaf(v[r][i], xs[i], s[r]);
            }
#pragma unroll
            for (int r = 0; r < R; ++r) {
                if constexpr (L::kHasOffset)
                    acc[r][t] += fmaf(grp[r].a[h], s[r], grp[r].b[h] * xsum);
                else
                    acc[r][t] += grp[r].a[h] * s[r];
            }
        }
    }
}

// d = a.u32 . b.s32 (four byte products) + c: the codes are unsigned (Q8_0's reach 255), the activation
// signed.
__device__ __forceinline__ int dp4a_us(uint32_t a, uint32_t b, int c) {
    int d;
    asm("dp4a.u32.s32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
    return d;
}

template <class L, int NT, int R>
__device__ __forceinline__ void accumulate_group_q_halves(const typename L::G (&grp)[R], int g,
                                                          const uint8_t* __restrict__ x,
                                                          int64_t x_stride_bytes, int q_off, int s_off,
                                                          int n_tok, float (&acc)[R][NT]) {
    const int qo = q_off + (g >> 5) * 2048 + (g & 31) * 16;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        uint32_t c[R][4];
        float bint[R];
#pragma unroll
        for (int r = 0; r < R; ++r) {
            L::codes(grp[r], h, c[r]);
            bint[r] = fmaf(float(L::kCodeBase), grp[r].a[h], grp[r].b[h]);
        }
        // Tokens in chunks of TC whose activation loads are all issued before the first dp4a: token after
        // token (a loop that stops at n_tok) each chunk waited for its loads in turn. Past n_tok a chunk
        // reads the last token again; those sums are never stored.
        constexpr int TC = NT < 4 ? NT : 4;
#pragma unroll
        for (int t0 = 0; t0 < NT; t0 += TC) {
            if (t0 >= n_tok) break;
            uint4 x1[TC], x2[TC];
            float4 sc[TC];
#pragma unroll
            for (int j = 0; j < TC; ++j) {
                const uint8_t* xt = x + min(t0 + j, n_tok - 1) * x_stride_bytes;
                x1[j] = __ldg(reinterpret_cast<const uint4*>(xt + qo + 512 * h));
                x2[j] = __ldg(reinterpret_cast<const uint4*>(xt + qo + 1024 + 512 * h));
                sc[j] = __ldg(reinterpret_cast<const float4*>(xt + s_off) + g);
            }
#pragma unroll
            for (int j = 0; j < TC; ++j) {
                const float xsum = h ? sc[j].z : sc[j].y;
#pragma unroll
                for (int r = 0; r < R; ++r) {
                    int i1 = dp4a_us(c[r][0], x1[j].x, 0), i2 = dp4a_us(c[r][0], x2[j].x, 0);
                    i1 = dp4a_us(c[r][1], x1[j].y, i1), i2 = dp4a_us(c[r][1], x2[j].y, i2);
                    i1 = dp4a_us(c[r][2], x1[j].z, i1), i2 = dp4a_us(c[r][2], x2[j].z, i2);
                    i1 = dp4a_us(c[r][3], x1[j].w, i1), i2 = dp4a_us(c[r][3], x2[j].w, i2);
                    const float d = float(i1 * 254 + i2) * sc[j].x;
                    acc[r][t0 + j] += fmaf(grp[r].a[h], d, bint[r] * xsum);
                }
            }
        }
    }
}

// Types with one scale per group (kOneScale): both sub-groups' codes go into the same two dp4a chains, so
// a group costs one scale step instead of two (and one activation sum, sc.w). |254 * I1 + I2| stays below
// 2^31: at most 32 * 255 * 127 * 255.
template <class L, int NT, int R>
__device__ __forceinline__ void accumulate_group_q_one(const typename L::G (&grp)[R], int g,
                                                       const uint8_t* __restrict__ x, int64_t x_stride_bytes,
                                                       int q_off, int s_off, int n_tok, float (&acc)[R][NT]) {
    const int qo = q_off + (g >> 5) * 2048 + (g & 31) * 16;
    uint32_t c[R][8];
    float bint[R];
#pragma unroll
    for (int r = 0; r < R; ++r) {
        L::codes(grp[r], 0, c[r]);
        L::codes(grp[r], 1, c[r] + 4);
        bint[r] = fmaf(float(L::kCodeBase), grp[r].a[0], grp[r].b[0]);
    }
    constexpr int TC = NT < 4 ? NT : 4;  // as accumulate_group_q_halves
#pragma unroll
    for (int t0 = 0; t0 < NT; t0 += TC) {
        if (t0 >= n_tok) break;
        uint4 x1[TC][2], x2[TC][2];
        float4 sc[TC];
#pragma unroll
        for (int j = 0; j < TC; ++j) {
            const uint8_t* xt = x + min(t0 + j, n_tok - 1) * x_stride_bytes + qo;
            x1[j][0] = __ldg(reinterpret_cast<const uint4*>(xt));
            x1[j][1] = __ldg(reinterpret_cast<const uint4*>(xt + 512));
            x2[j][0] = __ldg(reinterpret_cast<const uint4*>(xt + 1024));
            x2[j][1] = __ldg(reinterpret_cast<const uint4*>(xt + 1536));
            sc[j] = __ldg(reinterpret_cast<const float4*>(xt - qo + s_off) + g);
        }
#pragma unroll
        for (int j = 0; j < TC; ++j) {
#pragma unroll
            for (int r = 0; r < R; ++r) {
                int i1 = 0, i2 = 0;
#pragma unroll
                for (int h = 0; h < 2; ++h) {
                    const uint32_t* ch = c[r] + 4 * h;
                    i1 = dp4a_us(ch[0], x1[j][h].x, i1), i2 = dp4a_us(ch[0], x2[j][h].x, i2);
                    i1 = dp4a_us(ch[1], x1[j][h].y, i1), i2 = dp4a_us(ch[1], x2[j][h].y, i2);
                    i1 = dp4a_us(ch[2], x1[j][h].z, i1), i2 = dp4a_us(ch[2], x2[j][h].z, i2);
                    i1 = dp4a_us(ch[3], x1[j][h].w, i1), i2 = dp4a_us(ch[3], x2[j][h].w, i2);
                }
                const float d = float(i1 * 254 + i2) * sc[j].x;
                acc[r][t0 + j] += fmaf(grp[r].a[0], d, bint[r] * sc[j].w);
            }
        }
    }
}

template <class L, int NT, int R>
__device__ __forceinline__ void accumulate_group_q(const typename L::G (&grp)[R], int g,
                                                   const uint8_t* __restrict__ x, int64_t x_stride_bytes,
                                                   int q_off, int s_off, int n_tok, float (&acc)[R][NT]) {
    if constexpr (OneScale<L>::value)
        accumulate_group_q_one<L, NT, R>(grp, g, x, x_stride_bytes, q_off, s_off, n_tok, acc);
    else
        accumulate_group_q_halves<L, NT, R>(grp, g, x, x_stride_bytes, q_off, s_off, n_tok, acc);
}

// Up to three matrices of one type and width reading the same activation (wq/wk/wv, gate/up) in one launch:
// blocks [first_block of part i, first_block of part i+1) work on part i.
struct MatvecPart {
    const uint8_t* w;
    int64_t row_bytes;
    float* out;
    int64_t out_stride;
    int n_rows;
    int first_block;
    int role;  // Role (the epilogue)
};
struct MatvecParts {
    MatvecPart p[3];
    int n;
};

// What happens to the sums besides a plain store.
// - The SwiGLU epilogue of a gate/up pair (kSwiglu): where silu(gate) * up goes in matvec's layout, and one
//   count per 32 outputs (zero between launches) that elects the block that prepares them.
// - RoPE and the KV-cache store (parts with a role, matvecs_rope_kv): a block's rows come in (even, odd)
//   pairs, which are RoPE's pairs, so the q and k rows rotate in the epilogue; k and v rows go to the fp16
//   cache at each token's position. This replaces the rope + KV store kernel between the products and
//   attention.
struct Epilogue {
    float* prepared = nullptr;
    int64_t prepared_stride = 0;
    int* counters = nullptr;
    const KvRow* rows = nullptr;  // per token: cache and position (roles only)
    const double* inv_freq = nullptr;
    int layer = 0, head_dim = 0, n_rot = 0;
    bool prefetch = true;  // load the first weights before waiting for the previous kernel (matvec_body)
    // One token whose input is x * w of an RMSNorm without its scale (matvec_add_norm wrote it): the sums are
    // multiplied by rsqrt(sum(norm_ssq) / norm_cols + norm_eps) before any role, as the norm would have
    // scaled the input. The per-group int8 codes do not depend on that scale (it multiplies a group's largest
    // value too), so the activation could be prepared before the whole row was known.
    const float* norm_ssq = nullptr;  // norm_cols / 32 partial sums of squares of the row x
    float norm_eps = 0.0f;
    int norm_cols = 0;
    int probe_launch = 0, probe_slot = 0;  // the launch's number and first ring slot (mma_probe.cuh)
    bool rotate = false;  // the fp16 form's blocks start at chunk (block % chunks) (mma_rotate)
};

// A thread's share of Epilogue::norm_ssq (groups tid, tid + n_threads, ...), loaded right after the wait and
// added only in the epilogue, so that the loads' latency hides behind the rows' work.
constexpr int kNormLoads = 4;
struct NormPart {
    float v[kNormLoads];
    __device__ __forceinline__ float sum() const {
        float s = 0.0f;
#pragma unroll
        for (int k = 0; k < kNormLoads; ++k) s += v[k];
        return s;
    }
};
__device__ __forceinline__ NormPart load_norm_part(const Epilogue& ep, int tid, int n_threads) {
    NormPart p;
    const int groups = ep.norm_cols / 32;
#pragma unroll
    for (int k = 0; k < kNormLoads; ++k) {
        const int g = tid + k * n_threads;
        p.v[k] = ep.norm_ssq && g < groups ? ep.norm_ssq[g] : 0.0f;
    }
    return p;
}
// kAdd: out += the sum (the residual add in the product's epilogue, matvec_add).
enum Role : int { kPlain = 0, kRopeQ = 1, kRopeK = 2, kStoreV = 3, kAdd = 4 };

// Role epilogue for output `row` of token t (value v, its RoPE partner row's value vp).
// Not inlined: the double sincos stays out of the product's register budget.
__device__ __noinline__ void store_with_role(int role, float v, float vp, int row, int t, float* out,
                                             int64_t out_stride, int n_rows, const KvRow* rows,
                                             const double* inv_freq, int layer, int head_dim, int n_rot) {
    const KvRow kr = rows[t];
    if (role != kStoreV) {
        const int i = (row % head_dim) / 2;
        if (i < n_rot / 2) {  // as rope_kv_kernel: float cos/sin of a double angle
            double sn, cs;
            sincos(double(kr.pos) * inv_freq[i], &sn, &cs);
            const float c = float(cs), s = float(sn);
            const float x0 = row % 2 ? vp : v, x1 = row % 2 ? v : vp;
            v = row % 2 ? x0 * s + x1 * c : x0 * c - x1 * s;
        }
    }
    if (role == kRopeQ) {
        out[t * out_stride + row] = v;
        return;
    }
    uint16_t* cache = role == kRopeK ? kr.k : kr.v;
    cache[int64_t(layer) * kr.layer_elems + int64_t(kr.pos) * n_rows + row] =
        __half_as_ushort(__float2half_rn(v));
}

// Output `row` of token t with the part's role (sp: the RoPE partner row's sum, for rotating roles).
__device__ __forceinline__ void store_output(const MatvecPart& me, float s, float sp, int row, int t,
                                             const Epilogue& ep) {
    if (me.role == kPlain)
        me.out[t * me.out_stride + row] = s;
    else if (me.role == kAdd)
        me.out[t * me.out_stride + row] += s;
    else
        store_with_role(me.role, s, sp, row, t, me.out, me.out_stride, me.n_rows, ep.rows, ep.inv_freq,
                        ep.layer, ep.head_dim, ep.n_rot);
}

// A set's sums (R rows x NT tokens in each thread's acc, kW warps) reduced over the block and stored: plain,
// with a role (store_output), or for kSwiglu (rows [0, R/2) of the set are gate rows, the rest up rows)
// silu(gate) * up, and with swiglu.prepared the last block of each 32 outputs also prepares them for the down
// projection (the threadfence reduction pattern). Called by every thread of the block; returns are
// block-uniform.
template <int NT, int R, int kW, bool kSwiglu>
__device__ __forceinline__ void store_set(float (&acc)[R][NT], float (&partial)[kW][R * NT],
                                          const MatvecPart& me, int row0, int n_rows, int n_tok,
                                          const Epilogue& swiglu, float norm_part = 0.0f) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
        for (int t = 0; t < NT; ++t) {
            const float s = warp_sum(acc[r][t]);
            if (lane == 0) partial[warp][r * NT + t] = s;
        }
    __shared__ float norm_sums[kW];  // Epilogue::norm_ssq, one token: every block sums in the same order
    if (swiglu.norm_ssq) {
        const float p = warp_sum(norm_part);
        if (lane == 0) norm_sums[warp] = p;
    }
    __syncthreads();
    float scale = 1.0f;
    if (swiglu.norm_ssq) {
        float ss = 0.0f;
#pragma unroll
        for (int i = 0; i < kW; ++i) ss += norm_sums[i];
        scale = rsqrtf(ss / float(swiglu.norm_cols) + swiglu.norm_eps);  // as the RMSNorm kernels
    }
    if constexpr (!kSwiglu) {
        if (threadIdx.x < R * NT) {
            const int r = threadIdx.x / NT, t = threadIdx.x % NT;
            float s = 0.0f;
#pragma unroll
            for (int i = 0; i < kW; ++i) s += partial[i][threadIdx.x];
            if (row0 + r < n_rows && t < n_tok) {
                float sp = 0.0f;  // the partner row's sum (R is even: pairs never straddle blocks)
                if (me.role != kPlain && me.role != kAdd)
#pragma unroll
                    for (int i = 0; i < kW; ++i) sp += partial[i][(r ^ 1) * NT + t];
                store_output(me, s * scale, sp * scale, row0 + r, t, swiglu);
            }
        }
    } else {
        constexpr int H = R / 2;
        if (threadIdx.x < H * NT) {
            const int r = threadIdx.x / NT, t = threadIdx.x % NT;
            float g = 0.0f, u = 0.0f;
#pragma unroll
            for (int i = 0; i < kW; ++i) g += partial[i][threadIdx.x], u += partial[i][H * NT + threadIdx.x];
            g *= scale, u *= scale;
            if (row0 + r < n_rows && t < n_tok)
                me.out[t * me.out_stride + row0 + r] = g / (1.0f + __expf(-g)) * u;  // as swiglu_kernel
            // The writers (part of warp 0) make their outputs visible before the block's count; a fence in
            // every thread of every block measured 6% slower end to end.
            if (swiglu.prepared) __threadfence();
        }
        if (!swiglu.prepared) return;
        // The last of the 32 / H sets of these 32 outputs prepares them.
        __shared__ bool s_last;
        __syncthreads();
        const int group = row0 / 32;
        if (threadIdx.x == 0) {
            s_last = atomicAdd(swiglu.counters + group, 1) == 32 / H - 1;
            if (s_last) swiglu.counters[group] = 0;  // ready for the next launch (graph replays)
        }
        __syncthreads();
        if (!s_last) return;
        __threadfence();
        for (int t = threadIdx.x / 32; t < n_tok; t += kW) {
            const float v = __ldcg(me.out + t * me.out_stride + group * 32 + lane);
            prepare_group(v, group, n_rows, swiglu.prepared + t * swiglu.prepared_stride);
        }
    }
}

// The work of one block of matvec_kernel for R rows (rows[r]: row r's weights): thread tid of kThreads
// accumulates its groups into acc, waiting for the previous kernel after the first weight loads. Returns the
// thread's share of ep.norm_ssq (store_set).
template <class L, int NT, int R>
__device__ __forceinline__ NormPart rows_loop(const uint8_t* (&rows)[R], int n_groups, int n_records,
                                              const float* __restrict__ x, int64_t x_stride, int q_off,
                                              int s_off, int n_tok, bool prefetch, const Epilogue& ep,
                                              int tid, float (&acc)[R][NT]) {
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
        for (int t = 0; t < NT; ++t) acc[r][t] = 0.0f;

    // Each thread takes two groups of every 128: t and t + 64, or for one token of layouts whose groups share
    // a scale word (K-quants, load_pair) (t / 4) * 8 + t % 4 and the one 4 after it, two groups of one record
    // whose scale word is loaded once, while each 16-byte load of a warp still covers whole 32-byte sectors.
    // The first groups' weights are loaded before waiting for the kernel before us: weights are never written
    // during a step, so their loads may overlap that kernel's tail (with programmatic dependent launch this
    // block may already be resident while it runs). Only the activation and the outputs wait.
    static_assert(kThreads == 64, "two groups per thread cover 128 groups (16 records)");
    // One token only: with 2-16 tokens the pair mapping measured slower end to end (Q4_K_M 8 sequences 1 056
    // against 1 273 t/s before it; that build also had another loop change, not separated).
    constexpr bool kPairs = HasLoadPair<L>::value && NT == 1;
    constexpr int kSecond = kPairs ? 4 : kThreads;  // the second group, after the first
    const int first = kPairs ? int(tid >> 2) * 8 + int(tid & 3) : int(tid);
    typename L::G a[R], b[R];
    const auto load_groups = [&](int g) {
        if constexpr (kPairs) {
            const int gl = g < n_groups ? g : (g & 7);  // past the row: record 0 (rows are whole records)
#pragma unroll
            for (int r = 0; r < R; ++r) L::load_pair(rows[r], n_records, gl, a[r], b[r]);
        } else {
#pragma unroll
            for (int r = 0; r < R; ++r) L::load(rows[r], n_records, min(g, n_groups - 1), a[r]);
            if (g + kThreads < n_groups) {
#pragma unroll
                for (int r = 0; r < R; ++r) L::load(rows[r], n_records, g + kThreads, b[r]);
            }
        }
    };
    if (prefetch) load_groups(first);
    wait_for_producer();
    const NormPart np = load_norm_part(ep, tid, kThreads);
    for (int g = first; g < n_groups; g += 2 * kThreads) {
        const int g2 = g + kSecond;
        if (g != first || !prefetch) load_groups(g);
        if constexpr (L::kHasOffset) {  // quantized: int8 path
            const auto* xb = reinterpret_cast<const uint8_t*>(x);
            accumulate_group_q<L, NT, R>(a, g, xb, 4 * x_stride, q_off, s_off, n_tok, acc);
            if (g2 < n_groups)
                accumulate_group_q<L, NT, R>(b, g2, xb, 4 * x_stride, q_off, s_off, n_tok, acc);
        } else {
            accumulate_group<L, NT, R>(a, g, x, x_stride, n_tok, acc);
            if (g2 < n_groups) accumulate_group<L, NT, R>(b, g2, x, x_stride, n_tok, acc);
        }
    }

    return np;
}

// kSwiglu: parts.p[0] is the gate matrix and p[1] the up matrix (same shape); a block owns R / 2 output
// rows, reading those rows of both, and writes silu(gate) * up to p[0].out. With swiglu.prepared, the last
// block to finish each 32 outputs (n_rows % 32 == 0) also writes them in matvec's layout for the down
// projection, so neither a SwiGLU kernel nor a preparation pass runs between the two products.
template <class L, int NT, int R, bool kSwiglu>
__device__ __forceinline__ void matvec_body(const MatvecParts& parts, int n_groups, int n_records,
                                            const float* __restrict__ x, int64_t x_stride, int q_off,
                                            int s_off, int n_tok, const Epilogue& swiglu) {
    const uint8_t* rows[R];
    MatvecPart me = parts.p[0];
    int row0;
    if constexpr (kSwiglu) {
        constexpr int H = R / 2;
        row0 = int(blockIdx.x) * H;
#pragma unroll
        for (int r = 0; r < R; ++r) {
            const MatvecPart& m = r < H ? parts.p[0] : parts.p[1];
            rows[r] = m.w + static_cast<int64_t>(min(row0 + r % H, me.n_rows - 1)) * m.row_bytes;
        }
    } else {
        // Constant indices only: a run-time index would copy the parameters to local memory.
        if (parts.n > 1 && int(blockIdx.x) >= parts.p[1].first_block) me = parts.p[1];
        if (parts.n > 2 && int(blockIdx.x) >= parts.p[2].first_block) me = parts.p[2];
        row0 = (int(blockIdx.x) - me.first_block) * R;
#pragma unroll
        for (int r = 0; r < R; ++r)
            rows[r] = me.w + static_cast<int64_t>(min(row0 + r, me.n_rows - 1)) * me.row_bytes;
    }
    const int n_rows = me.n_rows;
    float acc[R][NT];
    const NormPart np = rows_loop<L, NT, R>(rows, n_groups, n_records, x, x_stride, q_off, s_off, n_tok,
                                            swiglu.prefetch, swiglu, int(threadIdx.x), acc);
    __shared__ float partial[kWarps][R * NT];
    store_set<NT, R, kWarps, kSwiglu>(acc, partial, me, row0, n_rows, n_tok, swiglu, np.sum());
}

// Software-pipelined product (KINFER_MATVEC_VARIANT 4 and 5): a block streams S sets of R rows, and each
// thread issues the loads of its next step (the next groups of this set, or the first of the next set) before
// it consumes the current ones, so that loads stay in flight through the dp4a work and the reduction of a set
// (ncu on the one-round kernel: 53% of warp stalls on loads, ~2.7 us of fixed latency per wave). Plain and
// role epilogues only (no SwiGLU: its per-32-output count assumes one row set per block).
template <class L, int NT, int R, int S>
__device__ __forceinline__ void matvec_body_pipelined(const MatvecParts& parts, int n_groups, int n_records,
                                                      const float* __restrict__ x, int64_t x_stride,
                                                      int q_off, int s_off, int n_tok, const Epilogue& ep) {
    MatvecPart me = parts.p[0];
    if (parts.n > 1 && int(blockIdx.x) >= parts.p[1].first_block) me = parts.p[1];
    if (parts.n > 2 && int(blockIdx.x) >= parts.p[2].first_block) me = parts.p[2];
    const int n_rows = me.n_rows;
    const int set_row0 = (int(blockIdx.x) - me.first_block) * (R * S);
    const int steps = (n_groups + 2 * kThreads - 1) / (2 * kThreads);  // per set, the same for every thread
    const int total = S * steps;

    // Loads step `it` (set it / steps, groups g and g + kThreads of step it % steps) into a and b.
    auto load_step = [&](int it, typename L::G(&a)[R], typename L::G(&b)[R]) {
        const int set = it / steps;
        const int g = threadIdx.x + (it - set * steps) * 2 * kThreads;
        const int64_t row_base = set_row0 + set * R;
#pragma unroll
        for (int r = 0; r < R; ++r) {
            const uint8_t* row = me.w + min(row_base + r, int64_t(n_rows - 1)) * me.row_bytes;
            if (g < n_groups) L::load(row, n_records, g, a[r]);
            if (g + kThreads < n_groups) L::load(row, n_records, g + kThreads, b[r]);
        }
    };

    float acc[R][NT];
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
        for (int t = 0; t < NT; ++t) acc[r][t] = 0.0f;

    __shared__ float partial[kWarps][R * NT];
    // Two buffers used in turn (unrolled by two): a copy from the next buffer to the current one would wait
    // for its loads and end the overlap.
    NormPart np;  // loaded after the wait
    auto consume = [&](int it, const typename L::G(&a)[R], const typename L::G(&b)[R]) {
        const int set = it / steps, step = it - set * steps;
        const int g = threadIdx.x + step * 2 * kThreads, g2 = g + kThreads;
        if constexpr (L::kHasOffset) {
            const auto* xb = reinterpret_cast<const uint8_t*>(x);
            if (g < n_groups) accumulate_group_q<L, NT, R>(a, g, xb, 4 * x_stride, q_off, s_off, n_tok, acc);
            if (g2 < n_groups)
                accumulate_group_q<L, NT, R>(b, g2, xb, 4 * x_stride, q_off, s_off, n_tok, acc);
        } else {
            if (g < n_groups) accumulate_group<L, NT, R>(a, g, x, x_stride, n_tok, acc);
            if (g2 < n_groups) accumulate_group<L, NT, R>(b, g2, x, x_stride, n_tok, acc);
        }
        if (step == steps - 1) {  // the set is complete: reduce, store, start the next from zero
            store_set<NT, R, kWarps, false>(acc, partial, me, set_row0 + set * R, n_rows, n_tok, ep,
                                            np.sum());
#pragma unroll
            for (int r = 0; r < R; ++r)
#pragma unroll
                for (int t = 0; t < NT; ++t) acc[r][t] = 0.0f;
            __syncthreads();  // partial is written again by the next set
        }
    };
    typename L::G a0[R], b0[R], a1[R], b1[R];
    load_step(0, a0, b0);  // weights only: before the wait, as in matvec_body
    wait_for_producer();
    np = load_norm_part(ep, int(threadIdx.x), kThreads);
    for (int it = 0; it < total; it += 2) {
        if (it + 1 < total) load_step(it + 1, a1, b1);  // in flight while step `it` is consumed
        consume(it, a0, b0);
        if (it + 1 >= total) break;
        if (it + 2 < total) load_step(it + 2, a0, b0);
        consume(it + 1, a1, b1);
    }
}

template <class L, int NT, int R, int S, int MinBlocks>
__global__ void __launch_bounds__(kThreads, MinBlocks)
    matvec_pipelined_kernel(const MatvecParts parts, int n_groups, int n_records, const float* __restrict__ x,
                            int64_t x_stride, int q_off, int s_off, int n_tok, const Epilogue ep) {
    matvec_body_pipelined<L, NT, R, S>(parts, n_groups, n_records, x, x_stride, q_off, s_off, n_tok, ep);
}

// cp.async of 16 bytes into shared memory (bypassing L1), its commit and wait.
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem) {
    const auto dst = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(dst), "l"(gmem) : "memory");
}
__device__ __forceinline__ void cp_async4(void* smem, const void* gmem) {
    const auto dst = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4;" ::"r"(dst), "l"(gmem) : "memory");
}
__device__ __forceinline__ void cp_async8(void* smem, const void* gmem) {
    const auto dst = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
    asm volatile("cp.async.ca.shared.global [%0], [%1], 8;" ::"r"(dst), "l"(gmem) : "memory");
}
__device__ __forceinline__ void cp_async_commit() {
    asm volatile("cp.async.commit_group;" ::: "memory");
}
template <int N>
__device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
}

// The layouts' loads on a stage in shared memory: plain loads (the read-only path is for global memory).
struct SharedLoads {
    KINFER_HOST_DEVICE static Words4 load16(const uint8_t* p) {
        const uint4 v = *reinterpret_cast<const uint4*>(p);
        return Words4{{v.x, v.y, v.z, v.w}};
    }
    KINFER_HOST_DEVICE static void load8(const uint8_t* p, uint32_t& lo, uint32_t& hi) {
        const uint2 v = *reinterpret_cast<const uint2*>(p);
        lo = v.x, hi = v.y;
    }
    KINFER_HOST_DEVICE static uint32_t load4(const uint8_t* p) {
        return *reinterpret_cast<const uint32_t*>(p);
    }
    KINFER_HOST_DEVICE static uint16_t load2(const uint8_t* p) {
        return *reinterpret_cast<const uint16_t*>(p);
    }
};

// ---- 3-16 tokens on the tensor cores
// The dp4a path spends 16 dp4a per (row, group, token) and loads the activation again for every row set: at
// 16 tokens it takes 5.9x one token's time (q4_K 14336 x 4096 on an H200: 68.4 us against 11.6). Here a warp
// computes 16 rows x 8 tokens of a group with int8 MMAs, one per activation term (u8 codes x s8 terms): for
// layouts with one scale per group one m16n8k32 covers the group, so the scale step runs once per (row,
// token, group) as on the dp4a path: acc += a * float(254 I1 + I2) * s2 + (b + base a) * sum(x); Q6_K's two
// scales take an m16n8k16 per sub-group. Fragments come straight from the repacked words: thread (g = lane /
// 4, q = lane % 4) needs word q of each sub-group of rows g and g + 8 (A: elements 4q .. 4q + 3 and 16 + 4q
// .. 16 + 4q + 3 in k-slots of the same numbers) and the same bytes of token g's int8 terms (B). A block of 8
// warps owns 16 * MT rows and walks the row's groups in chunks of 32, 4 groups per warp (matvec_mma_body);
// every (row, token) sum is one warp's groups in order, then the 8 warps' sums added in warp order in shared
// memory (deterministic, but another order than the one-token path: a token's outputs differ from its
// one-token result by float rounding, not bit for bit). The weights go through shared memory by default
// (matvec_mma_staged_body); Q4_K and Q6_K take fp16 MMAs on one fp16 activation term instead (the fp16 form
// below: 8 tokens of q4_K 14336 x 4096 19.0 us against 22.6, 16 tokens 24.1 against 33.1). Measured
// (bench/cuda/NOTES.md sessions 11 and 13): 16 tokens 39.5 us on that matrix with the weights in
// registers, 34.1 staged; 8 tokens 29.7, 22.6 staged, against dp4a's 34.9. On by default for the batches
// where it measured faster (mma_for).
#ifndef KINFER_MMA_WARPS
// Warps per block (4 or 8), each taking 4 groups of a chunk. 4 (chunks of 16 groups, 5 blocks per SM)
// measured slower on an H200: Q4_K_M x8 1 513 against 1 963 t/s (bench/cuda/NOTES.md session 13).
#define KINFER_MMA_WARPS 8
#endif
constexpr int kMmaWarps = KINFER_MMA_WARPS;
static_assert(kMmaWarps == 4 || kMmaWarps == 8, "a chunk is 16 or 32 groups");

// d = A (16 x 32, u8: rows g, g + 8 in a0 / a1 for k 4q.., a2 / a3 for k 16 + 4q..) x B (32 x 8, s8) + d.
__device__ __forceinline__ void mma_k32(int (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                        uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k32.row.col.s32.u8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};"
        : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}
// d = A (16 x 16, u8, rows g and g + 8 in a0 / a1) x B (16 x 8, s8) + d.
__device__ __forceinline__ void mma_k16(int (&d)[4], uint32_t a0, uint32_t a1, uint32_t b0) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.s32.u8.s8.s32 {%0,%1,%2,%3}, {%4,%5}, {%6}, {%0,%1,%2,%3};"
        : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
        : "r"(a0), "r"(a1), "r"(b0));
}

// The activation of a chunk of kChunkGroups = 4 * kMmaWarps groups (4 per warp) in shared memory, per token
// (stride kTokenBytes): the chunk's int8 terms as matvec's layout has them (four planes of 16 bytes per
// group: q1 of elements 0..15, 16..31, then q2), then the groups' float4 scales; 16 bytes of padding per
// token put the 8 tokens' fragment loads in distinct banks (the stride is 4 words mod 32).
constexpr int kChunkGroups = 4 * kMmaWarps, kWarpGroups = 4;
constexpr int kTokenBytes = kChunkGroups * (64 + 16) + 16;

// The copy of one chunk: thread (token t = tid / kChunkGroups (+ 8 for 16 tokens), group l = tid %
// kChunkGroups) copies 16 bytes of each plane and one group's scales, from its token's base pointers (past
// n_tok: the last token again). In global memory the planes are 512 bytes per 32 groups.
template <int NT>
struct ChunkCopy {
    static_assert(kMmaWarps * 32 / kChunkGroups == 8, "8 tokens per pass");
    const uint8_t* q[NT / 8];
    const uint8_t* sc[NT / 8];
    __device__ __forceinline__ ChunkCopy(const uint8_t* __restrict__ x, int64_t x_stride_bytes, int q_off,
                                         int s_off, int n_tok) {
        const int l = threadIdx.x % kChunkGroups, t = threadIdx.x / kChunkGroups;
#pragma unroll
        for (int k = 0; k < NT / 8; ++k) {
            const uint8_t* xt = x + min(t + 8 * k, n_tok - 1) * x_stride_bytes;
            q[k] = xt + q_off + l * 16;
            sc[k] = xt + s_off + l * 16;
        }
    }
    __device__ __forceinline__ void copy(uint8_t* buf, int c) const {
        const int l = threadIdx.x % kChunkGroups, t = threadIdx.x / kChunkGroups;
        const int g0 = c * kChunkGroups, src = (g0 / 32) * 2048 + (g0 % 32) * 16;
#pragma unroll
        for (int k = 0; k < NT / 8; ++k) {
            uint8_t* d = buf + (t + 8 * k) * kTokenBytes + l * 16;
#pragma unroll
            for (int j = 0; j < 4; ++j) cp_async16(d + kChunkGroups * 16 * j, q[k] + src + 512 * j);
            cp_async16(d + kChunkGroups * 64, sc[k] + g0 * 16);
        }
    }
};

// One group (local index gl in the chunk in buf) of MT tiles for NT tokens: raw[m][i] is the step of rows g,
// g + 8 of tile m, j the group in it, qi (0..3) the group among the warp's four; each quad thread decoded the
// scales of group qi = its q (sc_a / sc_b: a and b + base a of its rows) and the quad shares them by
// shuffles, instead of four threads decoding the same scales.
template <class L, int NT, int MT>
__device__ __forceinline__ void mma_group(const typename L::QuadRaw (&raw)[MT][2], int j, int qi, int gl,
                                          int gq, int q, const float (&sc_a)[MT][2][2],
                                          const float (&sc_b)[MT][2][2], const uint8_t* buf,
                                          float (&acc)[MT][NT / 8][4]) {
    constexpr int TS = kTokenBytes, CG = kChunkGroups;
    constexpr int H = OneScale<L>::value ? 1 : 2;
    struct {
        uint32_t c[2];
        float a[2];
    } w[MT][2];
    float bint[MT][2][2];                     // (b + base * a) of each row and sub-group
    const int src = (threadIdx.x & 28) | qi;  // the quad thread that decoded group qi
#pragma unroll
    for (int m = 0; m < MT; ++m)
#pragma unroll
        for (int i = 0; i < 2; ++i) {
            L::quad_codes(raw[m][i], j, q, w[m][i].c);
#pragma unroll
            for (int h = 0; h < H; ++h) {
                w[m][i].a[h] = __shfl_sync(0xffffffffu, sc_a[m][i][h], src);
                bint[m][i][h] = __shfl_sync(0xffffffffu, sc_b[m][i][h], src);
            }
        }
#pragma unroll
    for (int k = 0; k < NT / 8; ++k) {
        // B: token 8k + gq's terms (q1 in planes 0 / 1, q2 in 2 / 3), then the C columns' scales.
        const uint8_t* bt = buf + (8 * k + gq) * TS + gl * 16 + 4 * q;
        const uint32_t b10 = *reinterpret_cast<const uint32_t*>(bt);
        const uint32_t b11 = *reinterpret_cast<const uint32_t*>(bt + CG * 16);
        const uint32_t b20 = *reinterpret_cast<const uint32_t*>(bt + CG * 32);
        const uint32_t b21 = *reinterpret_cast<const uint32_t*>(bt + CG * 48);
        const uint8_t* st = buf + (8 * k + 2 * q) * TS + CG * 64 + gl * 16;
        const float4 s0 = *reinterpret_cast<const float4*>(st);
        const float4 s1 = *reinterpret_cast<const float4*>(st + TS);
#pragma unroll
        for (int m = 0; m < MT; ++m) {
            if constexpr (OneScale<L>::value) {
                int i1[4] = {0, 0, 0, 0}, i2[4] = {0, 0, 0, 0};
                mma_k32(i1, w[m][0].c[0], w[m][1].c[0], w[m][0].c[1], w[m][1].c[1], b10, b11);
                mma_k32(i2, w[m][0].c[0], w[m][1].c[0], w[m][0].c[1], w[m][1].c[1], b20, b21);
#pragma unroll
                for (int c = 0; c < 4; ++c) {
                    const float4& t = c & 1 ? s1 : s0;
                    const float d = float(i1[c] * 254 + i2[c]) * t.x;
                    acc[m][k][c] = fmaf(bint[m][c / 2][0], t.w, fmaf(w[m][c / 2].a[0], d, acc[m][k][c]));
                }
            } else {
#pragma unroll
                for (int h = 0; h < 2; ++h) {
                    int i1[4] = {0, 0, 0, 0}, i2[4] = {0, 0, 0, 0};
                    mma_k16(i1, w[m][0].c[h], w[m][1].c[h], h ? b11 : b10);
                    mma_k16(i2, w[m][0].c[h], w[m][1].c[h], h ? b21 : b20);
#pragma unroll
                    for (int c = 0; c < 4; ++c) {
                        const float4& t = c & 1 ? s1 : s0;
                        const float d = float(i1[c] * 254 + i2[c]) * t.x;
                        acc[m][k][c] =
                            fmaf(bint[m][c / 2][h], h ? t.z : t.y, fmaf(w[m][c / 2].a[h], d, acc[m][k][c]));
                    }
                }
            }
        }
    }
}

// ---- the fp16 form (Q4_K and Q6_K, KINFER_MMA_HALF)
// The int8 form spends ~25 instructions per IMMA (ncu, bench/cuda/NOTES.md session 14): two int8 terms, two
// MMAs per group (four for Q6_K), and a scale step of 5 instructions per C element and scale that turns the
// integer sums into floats. Here the activation is one fp16 term (its rounding, at most 2^-11 of each value,
// is far below the max|x| / 254 of llama.cpp's single int8 term, so the decode rule, at most half of
// llama.cpp's error, holds with room: the test "...error is at most half of a single int8 term's") and a
// group is two m16n8k16 fp16 MMAs with float sums, so the scale step is two FMAs per scale:
// acc += a * D + (b + (kCodeBase - 64) a) * S. The codes go into the MMA as 64 + code, exact in fp16 (the
// code written into the mantissa of 64.0 by a LOP3, no conversion), and S, the sum of the fp16 values the
// scale covers, takes the 64 back out with the weights' offset; D's products are exact and summed in float.
//
// A group's halves: four half2 of 64 + code, elements (4q, 4q + 2), (4q + 1, 4q + 3), then the same + 16 —
// the k-slot pairs (2q, 2q + 1) and (2q + 8, 2q + 9) of the group's two k-steps, as activation_half_slot
// orders the activation; so k-step h is sub-group h (elements 16h ..), which gives Q6_K's two scales a step
// each. Q4_K from word q of the group (byte m: element 4q + m in its low nibble, 16 + 4q + m in its high
// one); the others from the layout's quad codes (byte m of c[h]: element 16h + 4q + m, below 64).
constexpr uint32_t kHalf64 = 0x54005400u;  // 64.0 in each half; a code in bits 4.. of its mantissa adds to it

// (x & kMask) | kHalf64 as one LOP3 (and_or): 4 per group word of the 8-token Q4_K loop where the C++ form
// took 8 (session 27).
template <uint32_t kMask>
__device__ __forceinline__ uint32_t code_half2(uint32_t x) {
    return and_or<kMask, kHalf64>(x);
}

template <class L>
__device__ __forceinline__ void group_halves(const typename L::QuadRaw& raw, int j, int q, uint32_t (&h)[4]) {
    if constexpr (std::is_same_v<L, LayoutQ4_K>) {
        const uint32_t w = raw.w[j];
        constexpr uint32_t kMask = 0x00f000f0u;
        h[0] = code_half2<kMask>(w << 4);
        h[1] = code_half2<kMask>(w >> 4);
        h[2] = code_half2<kMask>(w);
        h[3] = code_half2<kMask>(w >> 8);
    } else {
        uint32_t c[2];
        L::quad_codes(raw, j, q, c);
        constexpr uint32_t kMask = 0x03f003f0u;  // 6-bit codes
#pragma unroll
        for (int i = 0; i < 2; ++i) {
            h[2 * i] = code_half2<kMask>(c[i] << 4);
            h[2 * i + 1] = code_half2<kMask>(c[i] >> 4);
        }
    }
}

// d = A (16 x 16 f16: rows g, g + 8 in a0 / a1 for k-slots 2q, 2q + 1, a2 / a3 for 2q + 8, 2q + 9) x B (16 x
// 8 f16: token g's k-slots in b0 / b1) + c, in float.
__device__ __forceinline__ void hmma_k16(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                         uint32_t b0, uint32_t b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// d = A x B with zero as C, A and B of `type` (f16 or bf16; fragments as hmma_k16's), in float.
#define KINFER_MMA_K16_FIRST(type)                             \
    asm("mma.sync.aligned.m16n8k16.row.col.f32." type "." type \
        ".f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "         \
        "{%10,%10,%10,%10};"                                   \
        : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])       \
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1), "f"(0.0f))

// d = A x B with zero as C: a group's sums start without four moves of 0 into d (together with the weight
// copy below, SASS of the 8-token Q4_K kernel 1 448 -> 1 088 instructions, bench/cuda/NOTES.md session 21).
__device__ __forceinline__ void hmma_k16_first(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2,
                                               uint32_t a3, uint32_t b0, uint32_t b1) {
    KINFER_MMA_K16_FIRST("f16");
}

// A chunk's fp16 activation in shared memory: per token its kChunkGroups groups of 64 bytes (stride
// kHalfTokenBytes: 64 mod 128, so the two tokens of an LDS.128 phase take distinct banks), then per token the
// groups' two fp16 sums (stride kHalfSumBytes: 4 words mod 32, the 8 tokens of a warp's loads in distinct
// banks).
constexpr int kHalfTokenBytes = kChunkGroups * 64 + 64, kHalfSumBytes = kChunkGroups * 8 + 16;
template <int NT>
__host__ __device__ constexpr int half_act_bytes() {
    return NT * (kHalfTokenBytes + kHalfSumBytes);
}

// The copy of one chunk: warp t copies token t's (+ 8 for 16 tokens) 2 048 bytes of values, lane l the
// 16-byte pieces l, l + 32, l + 64, l + 96 (each copy instruction of the warp one contiguous 512-byte run; a
// lane per group, 64 bytes apart, read each 32-byte sector twice and took 29.3 us where this takes 18.4), and
// lanes 0..15 the 256 bytes of sums (past n_tok: the last token again).
template <int NT>
struct ChunkCopyHalf {
    static_assert(kChunkGroups == 32 && kMmaWarps == 8, "a warp per token");
    const uint8_t* h[NT / 8];
    const uint8_t* sum[NT / 8];
    __device__ __forceinline__ ChunkCopyHalf(const uint8_t* __restrict__ x, int64_t x_stride_bytes, int h_off,
                                             int sum_off, int n_tok) {
        const int l = threadIdx.x % 32, t = threadIdx.x / 32;
#pragma unroll
        for (int k = 0; k < NT / 8; ++k) {
            const uint8_t* xt = x + min(t + 8 * k, n_tok - 1) * x_stride_bytes;
            h[k] = xt + h_off + l * 16;
            sum[k] = xt + sum_off + (l % 16) * 16;
        }
    }
    __device__ __forceinline__ void copy(uint8_t* buf, int c) const {
        const int l = threadIdx.x % 32, t = threadIdx.x / 32;
        const int g0 = c * kChunkGroups;
#pragma unroll
        for (int k = 0; k < NT / 8; ++k) {
            uint8_t* d = buf + (t + 8 * k) * kHalfTokenBytes + l * 16;
#pragma unroll
            for (int j = 0; j < 4; ++j) cp_async16(d + 512 * j, h[k] + g0 * 64 + 512 * j);
            if (l < 16)
                cp_async16(buf + NT * kHalfTokenBytes + (t + 8 * k) * kHalfSumBytes + l * 16,
                           sum[k] + g0 * 8);
        }
    }
};

// Sums per group: one for layouts with one scale per group (both k-steps chained), one per k-step otherwise.
template <class L>
constexpr int kHalfSteps = OneScale<L>::value ? 1 : 2;

// The fp16 form's MMAs for groups [j0, j0 + G) of the warp's step (raw: its words; gl0: the first group's
// index in the chunk) into d, the groups and tiles independent, issued together.
template <class L, int NT, int MT, int G>
__device__ __forceinline__ void half_mmas(const typename L::QuadRaw (&raw)[MT][2], int j0, int gl0, int gq,
                                          int q, const uint8_t* buf,
                                          float (&d)[G][MT][NT / 8][kHalfSteps<L>][4]) {
    constexpr int H = kHalfSteps<L>;
#pragma unroll
    for (int jj = 0; jj < G; ++jj) {
        uint4 x[NT / 8];
#pragma unroll
        for (int k = 0; k < NT / 8; ++k)
            x[k] = *reinterpret_cast<const uint4*>(buf + (8 * k + gq) * kHalfTokenBytes + (gl0 + jj) * 64 +
                                                   16 * q);
#pragma unroll
        for (int m = 0; m < MT; ++m) {
            uint32_t h0[4], h1[4];  // rows g and g + 8
            group_halves<L>(raw[m][0], j0 + jj, q, h0);
            group_halves<L>(raw[m][1], j0 + jj, q, h1);
#pragma unroll
            for (int k = 0; k < NT / 8; ++k) {
                hmma_k16_first(d[jj][m][k][0], h0[0], h1[0], h0[1], h1[1], x[k].x, x[k].y);
                if constexpr (H == 1)
                    hmma_k16(d[jj][m][k][0], h0[2], h1[2], h0[3], h1[3], x[k].z, x[k].w);
                else
                    hmma_k16_first(d[jj][m][k][1], h0[2], h1[2], h0[3], h1[3], x[k].z, x[k].w);
            }
        }
    }
}

// Layouts whose offset is a fixed multiple of the scale (b = kOffsetPerScale * a: Q6_K's codes - 32).
template <class L, class = void>
struct OffsetPerScale : std::false_type {};
template <class L>
struct OffsetPerScale<L, std::void_t<decltype(L::kOffsetPerScale)>> : std::true_type {};

#ifndef KINFER_MMA_OFFSET_MMA
#define KINFER_MMA_OFFSET_MMA 1
#endif
// Layouts whose fp16-form offsets go through an MMA (half_offsets): Q4_K, w = d sc code - dmin mn with
// integer sc and mn per group. KINFER_MMA_OFFSET_MMA=0 restores the per-group offset step.
template <class L>
constexpr bool kOffsetMma = KINFER_MMA_OFFSET_MMA != 0 && std::is_same_v<L, LayoutQ4_K>;

// d = A (16 x 16 bf16) x B (16 x 8 bf16) with zero as C, in float; fragments as hmma_k16's.
__device__ __forceinline__ void bmma_k16_first(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2,
                                               uint32_t a3, uint32_t b0, uint32_t b1) {
    KINFER_MMA_K16_FIRST("bf16");
}

// The offsets of a warp's four Q4_K groups in the fp16 form as two MMAs per tile, not a step per group. With
// codes as 64 + c (group_halves) a group's weights are a (64 + c) + b', a = d sc, b' = -64 d sc - dmin mn, so
// the offsets of the warp's groups g add up to -64 d sum_g sc_g S_g - dmin sum_g mn_g S_g (S_g: the token's
// sum of group g; d and dmin one per record and row): two 16 x 8 products of the rows' integer scales (or
// mins) and the tokens' sums, exact in bf16 with S_g as three bf16 terms (hi + mid + lo = S_g, each the top 8
// significant bits of what is left). Thread (gq, q) puts group q in k-slots 2q, 2q + 1 (hi, mid) and 2q + 8
// (lo) of token gq's B column and of its rows gq, gq + 8 (sc or mn thrice, then zero). Saved per group and
// row: the b' shuffle, the S FMA per C element and the sums' loads (pair kernel 864 -> 840 SASS instructions;
// x8 +2.5%, bench/cuda/NOTES.md session 29). osc / omn: the float bits of this thread's group's sc and mn for
// rows (m, i); d / dmin those rows'.
template <int NT, int MT>
__device__ __forceinline__ void half_offsets(const uint32_t (&osc)[MT][2], const uint32_t (&omn)[MT][2],
                                             const float (&d)[MT][2], const float (&dmin)[MT][2], int gl,
                                             int gq, const uint8_t* buf, float (&acc)[MT][NT / 8][4]) {
    const uint8_t* sums = buf + NT * kHalfTokenBytes + gl * 8;
#pragma unroll
    for (int k = 0; k < NT / 8; ++k) {
        const float2 s2 = *reinterpret_cast<const float2*>(sums + (8 * k + gq) * kHalfSumBytes);
        const float s = s2.x + s2.y;  // as the per-group step added them
        const float hi = __uint_as_float(__float_as_uint(s) & 0xffff0000u);
        const float r = s - hi;  // exact
        const float mid = __uint_as_float(__float_as_uint(r) & 0xffff0000u);
        const uint32_t b0 = __byte_perm(__float_as_uint(hi), __float_as_uint(mid), 0x7632);
        const uint32_t b1 = __float_as_uint(r - mid) >> 16;  // lo: at most 8 significant bits, exact
#pragma unroll
        for (int m = 0; m < MT; ++m) {
            float dsc[4], dmn[4];
            bmma_k16_first(dsc, __byte_perm(osc[m][0], 0, 0x3232), __byte_perm(osc[m][1], 0, 0x3232),
                           osc[m][0] >> 16, osc[m][1] >> 16, b0, b1);
            bmma_k16_first(dmn, __byte_perm(omn[m][0], 0, 0x3232), __byte_perm(omn[m][1], 0, 0x3232),
                           omn[m][0] >> 16, omn[m][1] >> 16, b0, b1);
#pragma unroll
            for (int c = 0; c < 4; ++c)
                acc[m][k][c] =
                    fmaf(-64.0f * d[m][c / 2], dsc[c], fmaf(-dmin[m][c / 2], dmn[c], acc[m][k][c]));
        }
    }
}

// The scale step of those groups: acc += a * D + (b + (kCodeBase - 64) a) * S per scale, with a and that sum
// coefficient of group qi from the quad thread that decoded it (sc_a / sc_b) and S the tokens' fp16 sums.
// For kOffsetMma layouts (Q4_K) only acc += a * D: their offsets come from half_offsets per chunk.
// Where b is a fixed multiple of a (OffsetPerScale) the step is acc += a * (D + kS * S) with kS = kCodeBase -
// 64 + kOffsetPerScale: no shuffles of sc_b (half of them: the Q6_K 16-row loop had 32 SHFL per chunk), and
// D + kS * S, where the two large terms cancel, rounded once before the scale instead of twice after it.
template <class L, int NT, int MT, int G>
__device__ __forceinline__ void half_sums(const float (&d)[G][MT][NT / 8][kHalfSteps<L>][4], int qi0, int gl0,
                                          int q, const float (&sc_a)[MT][2][2], const float (&sc_b)[MT][2][2],
                                          const uint8_t* buf, float (&acc)[MT][NT / 8][4]) {
    constexpr int H = kHalfSteps<L>;
    constexpr bool kFixedOffset = OffsetPerScale<L>::value;
#pragma unroll
    for (int jj = 0; jj < G; ++jj) {
        const int src = (threadIdx.x & 28) | (qi0 + jj);
        float a[MT][2][H], b[MT][2][H];
#pragma unroll
        for (int m = 0; m < MT; ++m)
#pragma unroll
            for (int i = 0; i < 2; ++i)
#pragma unroll
                for (int h = 0; h < H; ++h) {
                    a[m][i][h] = __shfl_sync(0xffffffffu, sc_a[m][i][h], src);
                    if constexpr (!kFixedOffset && !kOffsetMma<L>)
                        b[m][i][h] = __shfl_sync(0xffffffffu, sc_b[m][i][h], src);
                }
        if constexpr (kOffsetMma<L>) {  // the offsets come later, from half_offsets
            static_assert(H == 1);
#pragma unroll
            for (int m = 0; m < MT; ++m)
#pragma unroll
                for (int k = 0; k < NT / 8; ++k)
#pragma unroll
                    for (int c = 0; c < 4; ++c)
                        acc[m][k][c] = fmaf(a[m][c / 2][0], d[jj][m][k][0][c], acc[m][k][c]);
            continue;
        }
        const uint8_t* sums = buf + NT * kHalfTokenBytes + (gl0 + jj) * 8;
#pragma unroll
        for (int k = 0; k < NT / 8; ++k) {
            float2 st[2];  // tokens 2q, 2q + 1: the sums of elements 0..15 and 16..31
#pragma unroll
            for (int c = 0; c < 2; ++c)
                st[c] = *reinterpret_cast<const float2*>(sums + (8 * k + 2 * q + c) * kHalfSumBytes);
#pragma unroll
            for (int m = 0; m < MT; ++m)
#pragma unroll
                for (int c = 0; c < 4; ++c) {
                    const float2 sc = st[c & 1];
                    float v = acc[m][k][c];
                    if constexpr (kFixedOffset) {
                        constexpr float kS = float(L::kCodeBase) - 64.0f + L::kOffsetPerScale;
#pragma unroll
                        for (int h = 0; h < H; ++h) {
                            const float s = H == 1 ? sc.x + sc.y : (h == 0 ? sc.x : sc.y);
                            v = fmaf(a[m][c / 2][h], fmaf(kS, s, d[jj][m][k][h][c]), v);
                        }
                    } else if constexpr (H == 1) {
                        v = fmaf(a[m][c / 2][0], d[jj][m][k][0][c], v);
                        v = fmaf(b[m][c / 2][0], sc.x + sc.y, v);
                    } else {
                        v = fmaf(a[m][c / 2][0], d[jj][m][k][0][c], v);
                        v = fmaf(a[m][c / 2][1], d[jj][m][k][1][c], v);
                        v = fmaf(b[m][c / 2][0], sc.x, v);
                        v = fmaf(b[m][c / 2][1], sc.y, v);
                    }
                    acc[m][k][c] = v;
                }
        }
    }
}

// Shared memory of the kernel: two chunk buffers (the warps' sums reuse it at the end).
template <int NT>
constexpr int mma_smem_bytes() {
    return 2 * NT * kTokenBytes;
}

// One chunk of a warp's work, its weights' raw words in `cur` (loaded), the activation in buf: the scales of
// this thread's group, then every group's MMAs into acc.
template <class L, int NT, int MT, bool kHalf = false>
__device__ __forceinline__ void mma_chunk(typename L::QuadRaw (&cur)[kWarpGroups / L::kQuadStep][MT][2],
                                          int warp, int gq, int q, const uint8_t* buf,
                                          float (&acc)[MT][NT / 8][4]) {
    constexpr int S = L::kQuadStep, kSteps = kWarpGroups / S;
#pragma unroll
    for (int u = 0; u < kSteps; ++u)
#pragma unroll
        for (int mm = 0; mm < MT; ++mm)
#pragma unroll
            for (int i = 0; i < 2; ++i) L::quad_prepare(cur[u][mm][i]);
    // This thread's scales: group q of the warp's four (step q / S, group q % S in it), for its rows.
    float sc_a[MT][2][2], sc_b[MT][2][2];
    constexpr bool kOffsets = kHalf && kOffsetMma<L>;
    uint32_t osc[MT][2], omn[MT][2];  // kOffsets: group q's integer scale and min, float bits
    {
        const int uq = q / S, slot = (warp * kWarpGroups + uq * S) % kGroupsPerRecord;
#pragma unroll
        for (int mm = 0; mm < MT; ++mm)
#pragma unroll
            for (int i = 0; i < 2; ++i) {
                typename L::QuadRaw r = cur[0][mm][i];
                if constexpr (kSteps == 2)
                    if (uq == 1) r = cur[1][mm][i];
                if constexpr (kOffsets) {
                    static_assert(kSteps == 1, "one record's groups per warp: one d and dmin per row");
                    float sc, mn;
                    L::quad_scale_min_ints(r, q % S, slot, sc, mn);
                    sc_a[mm][i][0] = sc_a[mm][i][1] = r.d * sc;  // a, as quad_scales has it
                    osc[mm][i] = __float_as_uint(sc), omn[mm][i] = __float_as_uint(mn);
                    continue;
                }
                float a[2], b[2];
                L::quad_scales(r, q % S, slot, a, b);
                // The sums' coefficient: w = a * v + b with v = kCodeBase + code, so with the int8 form's
                // codes w = a * code + (b + kCodeBase a), and with the fp16 form's 64 + code (group_halves)
                // w = a * (64 + code) + (b + (kCodeBase - 64) a).
                constexpr float kBase = float(L::kCodeBase) - (kHalf ? 64.0f : 0.0f);
#pragma unroll
                for (int h = 0; h < 2; ++h) sc_a[mm][i][h] = a[h], sc_b[mm][i][h] = fmaf(kBase, a[h], b[h]);
            }
    }
#pragma unroll
    for (int u = 0; u < kSteps; ++u) {
        if constexpr (kHalf) {
            // Groups in batches whose MMA sums take at most 32 registers, issued before their scale step.
            constexpr int kPerGroup = MT * (NT / 8) * kHalfSteps<L> * 4;
            constexpr int G = 32 / kPerGroup < S ? (32 / kPerGroup > 0 ? 32 / kPerGroup : 1) : S;
            static_assert(S % G == 0, "whole batches of a step");
#pragma unroll
            for (int j0 = 0; j0 < S; j0 += G) {
                float d[G][MT][NT / 8][kHalfSteps<L>][4];
                half_mmas<L, NT, MT, G>(cur[u], j0, warp * kWarpGroups + u * S + j0, gq, q, buf, d);
                half_sums<L, NT, MT, G>(d, u * S + j0, warp * kWarpGroups + u * S + j0, q, sc_a, sc_b, buf,
                                        acc);
            }
            if constexpr (kOffsets) {
                float dd[MT][2], dm[MT][2];
#pragma unroll
                for (int mm = 0; mm < MT; ++mm)
#pragma unroll
                    for (int i = 0; i < 2; ++i) dd[mm][i] = cur[0][mm][i].d, dm[mm][i] = cur[0][mm][i].dmin;
                half_offsets<NT, MT>(osc, omn, dd, dm, warp * kWarpGroups + q, gq, buf, acc);
            }
        } else {
#pragma unroll
            for (int j = 0; j < S; ++j)
                mma_group<L, NT, MT>(cur[u], j, u * S + j, warp * kWarpGroups + u * S + j, gq, q, sc_a, sc_b,
                                     buf, acc);
        }
    }
}

// Each warp's sums into shared memory as part[warp][row][token] (part: [kMmaWarps][16 MT][NT] floats at
// smem), for the block to add them in warp order after a barrier.
template <int NT, int MT>
__device__ __forceinline__ void mma_stage_sums(const float (&acc)[MT][NT / 8][4], uint8_t* smem) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int gq = lane / 4, q = lane % 4;
    // acc[m][k][c]: row 16 m + gq + 8 (c / 2), token 8 k + 2 q + c % 2.
    auto* part = reinterpret_cast<float(*)[16 * MT][NT]>(smem);
#pragma unroll
    for (int m = 0; m < MT; ++m)
#pragma unroll
        for (int k = 0; k < NT / 8; ++k)
#pragma unroll
            for (int c = 0; c < 4; ++c)
                part[warp][16 * m + gq + 8 * (c / 2)][8 * k + 2 * q + c % 2] = acc[m][k][c];
}

// The 8 warps' sums added in warp order in shared memory (smem: at least kMmaWarps x 16 MT x NT floats),
// then stored with the part's role.
template <int NT, int MT>
__device__ __forceinline__ void mma_store(const float (&acc)[MT][NT / 8][4], const MatvecPart& me, int row0,
                                          int n_tok, const Epilogue& ep, uint8_t* smem) {
    constexpr int kRows = 16 * MT;
    auto* part = reinterpret_cast<float(*)[kRows][NT]>(smem);  // [kMmaWarps][kRows][NT]
    mma_stage_sums<NT, MT>(acc, smem);
    __syncthreads();
    for (int i = threadIdx.x; i < kRows * NT; i += kMmaWarps * 32) {
        const int r = i / NT, t = i % NT;
        if (row0 + r >= me.n_rows || t >= n_tok) continue;
        float s = 0.0f, sp = 0.0f;
#pragma unroll
        for (int w = 0; w < kMmaWarps; ++w) s += part[w][r][t];
        if (me.role != kPlain && me.role != kAdd)
#pragma unroll
            for (int w = 0; w < kMmaWarps; ++w) sp += part[w][r ^ 1][t];
        store_output(me, s, sp, row0 + r, t, ep);
    }
}

// mma_store for the gate/up pairs (matvec_mma_pair_kernel): tile 0 holds gate rows row0 .. row0 + 15, tile 1
// the same rows of up. Thread i < 16 NT takes output row0 + i % 16 of token i / 16, so that a half-warp holds
// one half-group of 16 outputs of one token for prepare_half (16 NT is a multiple of 32: whole warps).
template <int NT>
__device__ __forceinline__ void mma_store_pair(const float (&acc)[2][NT / 8][4], const MatvecPart& me,
                                               int row0, int n_tok, const Epilogue& ep, uint8_t* smem) {
    auto* part = reinterpret_cast<float(*)[32][NT]>(smem);  // [kMmaWarps][32][NT]
    mma_stage_sums<NT, 2>(acc, smem);
    __syncthreads();
    static_assert(16 * NT % 32 == 0 && 16 * NT <= kMmaWarps * 32, "whole warps, one output each");
    if (int(threadIdx.x) >= 16 * NT) return;
    const int r = threadIdx.x % 16, t = threadIdx.x / 16;
    float g = 0.0f, u = 0.0f;
#pragma unroll
    for (int w = 0; w < kMmaWarps; ++w) g += part[w][r][t], u += part[w][16 + r][t];
    const float v = g / (1.0f + __expf(-g)) * u;  // as swiglu_kernel
    // Tokens past n_tok (their sums are the last token's again) take part in the half-warp's sums only.
    if (t < n_tok) me.out[t * me.out_stride + row0 + r] = v;
    prepare_half(v, row0 + r, me.n_rows, ep.prepared + min(t, n_tok - 1) * ep.prepared_stride, t < n_tok);
}

// The row's groups go in chunks of 32, 4 per warp (kQuadStep groups per step): while the block computes chunk
// c, the next chunk's activation is on its way into shared memory (cp.async) and each warp's weights of its
// next groups into registers, so neither the activation (from L2: 2.5x the weight bytes of a 16-row Q4_K tile
// at 8 tokens) nor the weights wait in the loop.
template <class L, int NT, int MT>
__device__ __forceinline__ void matvec_mma_body(const MatvecPart& me, int row0, int n_groups, int n_records,
                                                const uint8_t* __restrict__ x, int64_t x_stride_bytes,
                                                int q_off, int s_off, int n_tok, const Epilogue& ep,
                                                uint8_t* smem) {
    constexpr int S = L::kQuadStep, kSteps = kWarpGroups / S, kTiles = NT / 8;
    constexpr int kBuf = NT * kTokenBytes;
    static_assert(kWarpGroups % S == 0 && 8 % kWarpGroups == 0,
                  "a warp's groups are whole steps of a record");
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int gq = lane / 4, q = lane % 4;
    const int n_rows = me.n_rows;
    // Where each row's first groups of this warp are; a chunk further is kChunkGroups / 8 records further.
    RowPos pos[MT][2];
#pragma unroll
    for (int m = 0; m < MT; ++m)
#pragma unroll
        for (int i = 0; i < 2; ++i)
            pos[m][i] = row_pos<L::kRecord, L::kTail>(
                me.w + static_cast<int64_t>(min(row0 + 16 * m + 8 * i + gq, n_rows - 1)) * me.row_bytes,
                n_records, warp * kWarpGroups);
    constexpr int kRecordsPerChunk = kChunkGroups / kGroupsPerRecord;
    float acc[MT][kTiles][4];
#pragma unroll
    for (int m = 0; m < MT; ++m)
#pragma unroll
        for (int k = 0; k < kTiles; ++k)
#pragma unroll
            for (int c = 0; c < 4; ++c) acc[m][k][c] = 0.0f;

    const int n_chunks = n_groups / kChunkGroups;  // the launch checks n_groups % kChunkGroups == 0
    typename L::QuadRaw cur[kSteps][MT][2];
    const auto load_chunk = [&](int c, typename L::QuadRaw(&r)[kSteps][MT][2]) {
#pragma unroll
        for (int u = 0; u < kSteps; ++u)
#pragma unroll
            for (int m = 0; m < MT; ++m)
#pragma unroll
                for (int i = 0; i < 2; ++i) {
                    RowPos p = pos[m][i];
                    p.rec += c * kRecordsPerChunk * L::kRecord;
                    p.tail += c * kRecordsPerChunk * L::kTail;
                    p.slot += u * S;
                    L::load_quads_at(p, q, r[u][m][i]);
                }
    };
    // The first weights before waiting for the kernel before us (as matvec_body).
    if (ep.prefetch) load_chunk(0, cur);
    wait_for_producer();
    if (!ep.prefetch) load_chunk(0, cur);
    const ChunkCopy<NT> copier(x, x_stride_bytes, q_off, s_off, n_tok);
    copier.copy(smem, 0);
    cp_async_commit();
    for (int c = 0; c < n_chunks; ++c) {
        typename L::QuadRaw next[kSteps][MT][2];
        if (c + 1 < n_chunks) {
            copier.copy(smem + ((c + 1) & 1) * kBuf, c + 1);
            cp_async_commit();
            load_chunk(c + 1, next);
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();  // chunk c's activation is in place
        mma_chunk<L, NT, MT>(cur, warp, gq, q, smem + (c & 1) * kBuf, acc);
        __syncthreads();  // everyone is done with buf before chunk c + 2 goes there
#pragma unroll
        for (int u = 0; u < kSteps; ++u)
#pragma unroll
            for (int m = 0; m < MT; ++m)
#pragma unroll
                for (int i = 0; i < 2; ++i) cur[u][m][i] = next[u][m][i];
    }
    static_assert(kMmaWarps * 16 * MT * NT * 4 <= 2 * kBuf, "the sums fit in the chunk buffers");
    mma_store<NT, MT>(acc, me, row0, n_tok, ep, smem);
}

// ---- the same product with the weights staged in shared memory (KINFER_MMA_STAGED)
// matvec_mma_body holds each warp's next-chunk weights in registers (~96 of its 128: 2 blocks, 16 warps per
// SM) and issues 5 global loads per (row pair, step), each spread over 8 rows (ncu, session 12: 3.9 of the
// 10.9 cycles between a warp's instructions wait on them; issue 0.33 per scheduler-cycle). Here the block
// copies each chunk's records of its rows into shared memory with cp.async (coalesced 16-byte pieces, 4.5
// per thread for a 32-row Q4_K chunk), one chunk ahead together with the activation, and the warps read
// their fragments' words from the stage through the layouts' own unpacking (load policy SharedLoads): the
// same sums in the same order, so the results are matvec_mma_body's bit for bit.
//
// A row's chunk in a stage: its kChunkRecords records, then their tail entries (at most 16 bytes), in a
// stride of kChunkRecords * kRecord + 16 bytes. Records are 16 mod 32 bytes long, so the stride is an odd
// multiple of 4 words mod 32 (20 for 4 records, 12 for 2): a fragment load's 8 rows start in 8 distinct sets
// of 4 banks, and with the quad's 4 words all 32 banks differ.
constexpr int kChunkRecords = kChunkGroups / kGroupsPerRecord;
template <class L>
constexpr int kStageRowBytes = kChunkRecords* L::kRecord + 16;

// One stage: the activation of a chunk (NT tokens, int8 terms or fp16), then the weights of 16 * MT rows of
// each layout.
template <int NT, bool kHalf>
__host__ __device__ constexpr int act_stage_bytes() {
    return kHalf ? half_act_bytes<NT>() : NT * kTokenBytes;
}
template <class L0, class L1, int NT, int MT, bool kHalf = false>
__host__ __device__ constexpr int mma_stage_bytes() {
    constexpr int a = kStageRowBytes<L0>, b = kStageRowBytes<L1>;
    return act_stage_bytes<NT, kHalf>() + 16 * MT * (a > b ? a : b);
}

// The block's weight copy: thread (row r = tid / kPerRow, t = tid % kPerRow) copies the 16-byte pieces t,
// t + kPerRow, .. of row r's chunk (and thread t = 0 the row's tail entry), its row's addresses worked out
// once per launch: the loop over i = tid, tid + 256, .. with a division, a clamp and a 64-bit product per
// piece took ~20 instructions a piece (PTX of the 8-token kernel, session 15), ~90 per thread and chunk of
// the ~585.
template <class L, int MT>
struct WeightCopy {
    static constexpr int kRows = 16 * MT, kPerRow = kMmaWarps * 32 / kRows;
    static constexpr int kPieces = kChunkRecords * L::kRecord / 16, RS = kStageRowBytes<L>;
    static constexpr int kTailBytes = kChunkRecords * L::kTail;
    static_assert(kMmaWarps * 32 % kRows == 0, "whole threads per row");
    static_assert(L::kRecord % 32 == 16, "the stride's bank pattern above");
    static_assert(kTailBytes == 0 || kTailBytes == 4 || kTailBytes == 8 || kTailBytes == 16,
                  "a tail is one cp.async");
    const uint8_t* src;   // piece t of the row's chunk 0
    const uint8_t* tail;  // the row's tail entry of chunk 0
    int dst;              // piece t of the row in a stage
    int t;
    // pair (matvec_mma_pair_kernel): rows 16.. of the block are rows row0.. of that part.
    __device__ __forceinline__ WeightCopy(const MatvecPart& me, int row0, int n_records,
                                          const MatvecPart* pair = nullptr) {
        const int r = threadIdx.x / kPerRow;
        t = threadIdx.x % kPerRow;
        const bool second = pair && r >= 16;
        const MatvecPart& p = second ? *pair : me;
        const int pr = row0 + (second ? r - 16 : r);
        const uint8_t* row = p.w + int64_t(min(pr, p.n_rows - 1)) * p.row_bytes;
        src = row + 16 * t;
        tail = row + int64_t(n_records) * L::kRecord;
        dst = r * RS + 16 * t;
    }
    // Chunk c into the weight stage w.
    __device__ __forceinline__ void copy(uint8_t* w, int c) const {
        const uint8_t* s = src + int64_t(c) * (kChunkRecords * L::kRecord);
#pragma unroll
        for (int j = 0; j < (kPieces + kPerRow - 1) / kPerRow; ++j)
            if (kPieces % kPerRow == 0 || t + j * kPerRow < kPieces)
                cp_async16(w + dst + 16 * kPerRow * j, s + 16 * kPerRow * j);
        if constexpr (kTailBytes > 0) {
            if (t == 0) {
                uint8_t* d = w + dst + kChunkRecords * L::kRecord;
                const uint8_t* e = tail + c * kTailBytes;
                if constexpr (kTailBytes == 4)
                    cp_async4(d, e);
                else if constexpr (kTailBytes == 8)
                    cp_async8(d, e);
                else
                    cp_async16(d, e);
            }
        }
    }
};

// kHalf: the fp16 form (q_off / s_off are then the fp16 values' and sums' offsets); kProbe: with the probe's
// marks (mma_probe.cuh); pair: the gate/up pairs with SwiGLU (matvec_mma_pair_kernel: tile 0 rows of `me`,
// tile 1 the same rows of *pair).
template <class L, int NT, int MT, int kStage, bool kHalf, bool kProbe = false>
__device__ __forceinline__ void matvec_mma_staged_body(const MatvecPart& me, int row0, int n_groups,
                                                       int n_records, const uint8_t* __restrict__ x,
                                                       int64_t x_stride_bytes, int q_off, int s_off,
                                                       int n_tok, const Epilogue& ep, uint8_t* smem,
                                                       const MatvecPart* pair = nullptr) {
    constexpr int S = L::kQuadStep, kSteps = kWarpGroups / S, kTiles = NT / 8;
    constexpr int kAct = act_stage_bytes<NT, kHalf>(), RS = kStageRowBytes<L>;
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int gq = lane / 4, q = lane % 4;
    // This warp's groups in a row's stage: record warp * 4 / 8, slots from (warp * 4) % 8.
    const int rec_off = (warp * kWarpGroups / kGroupsPerRecord) * L::kRecord;
    const int tail_off = kChunkRecords * L::kRecord + (warp * kWarpGroups / kGroupsPerRecord) * L::kTail;
    const int slot0 = (warp * kWarpGroups) % kGroupsPerRecord;
    float acc[MT][kTiles][4];
#pragma unroll
    for (int m = 0; m < MT; ++m)
#pragma unroll
        for (int k = 0; k < kTiles; ++k)
#pragma unroll
            for (int c = 0; c < 4; ++c) acc[m][k][c] = 0.0f;

    const int n_chunks = n_groups / kChunkGroups;  // the launch checks n_groups % kChunkGroups == 0
    ProbeMarks probe;
    if constexpr (kProbe) probe.begin(uint32_t(ep.probe_launch), uint32_t(ep.probe_slot), n_chunks);
    using Copy = std::conditional_t<kHalf, ChunkCopyHalf<NT>, ChunkCopy<NT>>;
    const Copy copier(x, x_stride_bytes, q_off, s_off, n_tok);
    const WeightCopy<L, MT> weights(me, row0, n_records, pair);
    // Step c works on chunk (c + c0) % n_chunks (ep.rotate: mma_rotate). The first chunk's weights before
    // waiting for the kernel before us (as matvec_body); one commit group per chunk.
    const int c0 = ep.rotate ? int(blockIdx.x) % n_chunks : 0;
    const auto chunk_of = [&](int c) { return c + c0 < n_chunks ? c + c0 : c + c0 - n_chunks; };
    if (ep.prefetch) weights.copy(smem + kAct, c0);
    wait_for_producer();
    if constexpr (kProbe) probe.mark(0);
    if (!ep.prefetch) weights.copy(smem + kAct, c0);
    copier.copy(smem, c0);
    cp_async_commit();
    for (int c = 0; c < n_chunks; ++c) {
        if (c + 1 < n_chunks) {
            uint8_t* next = smem + ((c + 1) & 1) * kStage;
            weights.copy(next + kAct, chunk_of(c + 1));
            copier.copy(next, chunk_of(c + 1));
            cp_async_commit();
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();  // chunk c is in place
        if constexpr (kProbe) probe.mark(1 + 2 * c);
        const uint8_t* buf = smem + (c & 1) * kStage;
        typename L::QuadRaw cur[kSteps][MT][2];
#pragma unroll
        for (int u = 0; u < kSteps; ++u)
#pragma unroll
            for (int m = 0; m < MT; ++m)
#pragma unroll
                for (int i = 0; i < 2; ++i) {
                    const uint8_t* row = buf + kAct + (16 * m + 8 * i + gq) * RS;
                    L::template load_quads_at<SharedLoads>(
                        RowPos{row + rec_off, row + tail_off, slot0 + u * S}, q, cur[u][m][i]);
                }
        mma_chunk<L, NT, MT, kHalf>(cur, warp, gq, q, buf, acc);
        __syncthreads();  // everyone is done with this stage before chunk c + 2 goes there
        if constexpr (kProbe) probe.mark(2 + 2 * c);
    }
    static_assert(kMmaWarps * 16 * MT * NT * 4 <= 2 * kStage, "the sums fit in the stages");
    if (pair) {
        if constexpr (MT == 2) mma_store_pair<NT>(acc, me, row0, n_tok, ep, smem);
    } else {
        mma_store<NT, MT>(acc, me, row0, n_tok, ep, smem);
    }
    if constexpr (kProbe) probe.end();
}

// The gate/up pair of a batch with SwiGLU in the epilogue: block b reads rows 16 b .. 16 b + 15 of gate (tile
// 0) and of up (tile 1), so each output's two sums meet in one block, with no count or fence between blocks
// (the one-token matvec_swiglu's). Only for an input of 5-16 tokens whose down projection takes the fp16 form
// (matvec_swiglu_pairs_supports): the block prepares just what that form reads, the fp16 values and their
// sums per 16 (prepare_half), besides the float outputs.
template <class L, int NT>
__global__ void __launch_bounds__(kMmaWarps * 32, 2)
    matvec_mma_pair_kernel(const MatvecPart gate, const MatvecPart up, int n_groups, int n_records,
                           const float* __restrict__ x, int64_t x_stride, int q_off, int s_off, int n_tok,
                           const Epilogue ep) {
    extern __shared__ uint4 mma_smem[];
    constexpr int kStage = mma_stage_bytes<L, L, NT, 2, true>();
    matvec_mma_staged_body<L, NT, 2, kStage, true>(
        gate, int(blockIdx.x) * 16, n_groups, n_records, reinterpret_cast<const uint8_t*>(x), 4 * x_stride,
        q_off, s_off, n_tok, ep, reinterpret_cast<uint8_t*>(mma_smem), &up);
}

// Parts of layout L0, then from first_l1_block on of L1 (the mixed Q4_K/Q6_K wq/wk/wv launch; L1 = L0
// otherwise). kProbe: with the probe (staged only).
template <class L0, class L1, int NT, int MT, bool kStaged, bool kHalf = false, bool kProbe = false>
__global__ void __launch_bounds__(kMmaWarps * 32, kMmaWarps == 8 ? 2
                                                  : kStaged      ? 5
                                                                 : 4)
    matvec_mma_kernel(const MatvecParts parts, int first_l1_block, int n_groups, int n_records,
                      const float* __restrict__ x, int64_t x_stride, int q_off, int s_off, int n_tok,
                      const Epilogue ep) {
    MatvecPart me = parts.p[0];
    if (parts.n > 1 && int(blockIdx.x) >= parts.p[1].first_block) me = parts.p[1];
    if (parts.n > 2 && int(blockIdx.x) >= parts.p[2].first_block) me = parts.p[2];
    const int row0 = (int(blockIdx.x) - me.first_block) * 16 * MT;
    const auto* xb = reinterpret_cast<const uint8_t*>(x);
    extern __shared__ uint4 mma_smem[];
    auto* smem = reinterpret_cast<uint8_t*>(mma_smem);
    const bool l1 = !std::is_same_v<L0, L1> && int(blockIdx.x) >= first_l1_block;
    if constexpr (kStaged) {
        constexpr int kStage = mma_stage_bytes<L0, L1, NT, MT, kHalf>();
        if (l1)
            matvec_mma_staged_body<L1, NT, MT, kStage, kHalf, kProbe>(
                me, row0, n_groups, n_records, xb, 4 * x_stride, q_off, s_off, n_tok, ep, smem);
        else
            matvec_mma_staged_body<L0, NT, MT, kStage, kHalf, kProbe>(
                me, row0, n_groups, n_records, xb, 4 * x_stride, q_off, s_off, n_tok, ep, smem);
    } else if (l1) {
        matvec_mma_body<L1, NT, MT>(me, row0, n_groups, n_records, xb, 4 * x_stride, q_off, s_off, n_tok, ep,
                                    smem);
    } else {
        matvec_mma_body<L0, NT, MT>(me, row0, n_groups, n_records, xb, 4 * x_stride, q_off, s_off, n_tok, ep,
                                    smem);
    }
}

// Warps over groups (cols % 32 == 0, so each warp's 32 elements are one group of one token).
__global__ void prepare_kernel(const float* __restrict__ x, int64_t cols, int64_t stride, int n_tok,
                               float* __restrict__ out) {
    wait_for_producer();
    const int64_t n = cols * n_tok;
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
         i += int64_t(gridDim.x) * blockDim.x) {
        const int64_t t = i / cols, e = i % cols;
        prepare_group(x[i], e / 32, cols, out + t * stride);
    }
}

template <class L, int NT, int R, int MinBlocks, bool kSwiglu>
__global__ void __launch_bounds__(kThreads, MinBlocks)
    matvec_kernel(const MatvecParts parts, int n_groups, int n_records, const float* __restrict__ x,
                  int64_t x_stride, int q_off, int s_off, int n_tok, const Epilogue swiglu) {
    matvec_body<L, NT, R, kSwiglu>(parts, n_groups, n_records, x, x_stride, q_off, s_off, n_tok, swiglu);
}

// Parts of two types in one launch (the blocks from first_l1_block on read layout L1): Q4_K_M files keep
// wq and wk in Q4_K and wv in Q6_K, and a launch of its own for the small wv product cost its latency again.
template <class L0, class L1, int NT, int R, int MinBlocks>
__global__ void __launch_bounds__(kThreads, MinBlocks)
    matvec_mixed_kernel(const MatvecParts parts, int first_l1_block, int n_groups, int n_records,
                        const float* __restrict__ x, int64_t x_stride, int q_off, int s_off, int n_tok,
                        const Epilogue ep) {
    if (int(blockIdx.x) >= first_l1_block)
        matvec_body<L1, NT, R, false>(parts, n_groups, n_records, x, x_stride, q_off, s_off, n_tok, ep);
    else
        matvec_body<L0, NT, R, false>(parts, n_groups, n_records, x, x_stride, q_off, s_off, n_tok, ep);
}

// One token's product with the residual add (as matvec_kernel with role kAdd) and the next RMSNorm's input in
// its epilogue (matvec_add_norm): block b owns outputs [32 b, 32 b + 32), one group of the next product's
// activation, as 32 / R sub-blocks of kThreads threads that each do what one matvec_kernel block does for R
// rows. With the group's 32 new x in one block, warp 0 prepares x * norm_w and its sum of squares with no
// count or fence between blocks; the blocks are 8 times larger but the launch the same one wave (a separate
// norm kernel cost ~3.7 us of dependent latency per call, twice per layer).
template <class L, int R>
__global__ void __launch_bounds__(kThreads * 32 / R, 1)
    matvec_add_norm_kernel(const MatvecPart me, int n_groups, int n_records, const float* __restrict__ x,
                           int64_t x_stride, int q_off, int s_off, const float* __restrict__ norm_w,
                           float* __restrict__ prepared, float* __restrict__ ssq, bool prefetch) {
    constexpr int kSub = 32 / R;
    const int sub = int(threadIdx.x) / kThreads;
    const uint8_t* rows[R];
#pragma unroll
    for (int r = 0; r < R; ++r) rows[r] = me.w + (int64_t(blockIdx.x) * 32 + sub * R + r) * me.row_bytes;
    float acc[R][1];
    rows_loop<L, 1, R>(rows, n_groups, n_records, x, x_stride, q_off, s_off, 1, prefetch, Epilogue{},
                       int(threadIdx.x) % kThreads, acc);
    __shared__ float partial[kSub * kWarps][R];
    const int lane = int(threadIdx.x) % 32, warp = int(threadIdx.x) / 32;
#pragma unroll
    for (int r = 0; r < R; ++r) {
        const float s = warp_sum(acc[r][0]);
        if (lane == 0) partial[warp][r] = s;
    }
    __syncthreads();
    if (warp != 0) return;
    // Lane l: output 32 b + l, row l % R of sub-block l / R; its warps' sums in store_set's order.
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < kWarps; ++i) s += partial[(lane / R) * kWarps + i][lane % R];
    const int64_t row = int64_t(blockIdx.x) * 32 + lane;
    const float v = me.out[row] + s;  // store_output's kAdd
    me.out[row] = v;
    const float ss = warp_sum(v * v);
    if (lane == 0) ssq[blockIdx.x] = ss;
    prepare_group(v * norm_w[row], blockIdx.x, me.n_rows, prepared);
}

// KINFER_MATVEC_PREFETCH=0 (read once): every weight load waits for the previous kernel, for comparisons.
bool prefetch_weights() {
    static const bool on = env_on("KINFER_MATVEC_PREFETCH");
    return on;
}

// ---- one token, weights streamed through shared memory (KINFER_MATVEC_STREAM=1; an experiment, off by
// default) The kernels above give each block one round of loads: load, wait, compute, reduce, exit, so a slot
// has nothing in flight between its rounds (on an H200, q4_K 14336 x 4096 at 2.4 TB/s against q8_0's 3.4 with
// the same blocks: a fixed ~2.7 us per wave of blocks). Here resident blocks stay and walk over sets of
// kStreamRows rows; each set's bytes (whole rows, contiguous) go to a ring of S stages in shared memory with
// cp.async, S - 1 sets ahead of the one being computed, so loads stay in flight through the dp4a work and the
// reductions. The first S - 1 sets are requested before griddepcontrol.wait (weights only). Same arithmetic
// per group as matvec_body (accumulate_group_q), groups split over 128 threads instead of 64, so sums come
// in another order: not bit for bit with the default path.
constexpr int kStreamThreads = 128;
constexpr int kStreamRows = 4;
constexpr int kStreamSmem = 64 << 10;  // bytes of stages per block at most

// Group g of the stage's rows (row r at stage + r * row_bytes; rows past n_valid read the last one again,
// never stored) into acc.
template <class L, int NT, int R>
__device__ __forceinline__ void stream_group(const uint8_t* stage, int64_t row_bytes, int n_valid,
                                             int n_records, int g, const uint8_t* x, int64_t x_stride_bytes,
                                             int q_off, int s_off, int n_tok, float (&acc)[R][NT]) {
    typename L::G grp[R];
#pragma unroll
    for (int r = 0; r < R; ++r)
        L::template load<SharedLoads>(stage + int64_t(min(r, n_valid - 1)) * row_bytes, n_records, g, grp[r]);
    accumulate_group_q<L, NT, R>(grp, g, x, x_stride_bytes, q_off, s_off, n_tok, acc);
}

__device__ __forceinline__ MatvecPart part_of_set(const MatvecParts& parts, int set) {
    MatvecPart m = parts.p[0];  // constant indices only (see matvec_body)
    if (parts.n > 1 && set >= parts.p[1].first_block) m = parts.p[1];
    if (parts.n > 2 && set >= parts.p[2].first_block) m = parts.p[2];
    return m;
}

// Set s: kStreamRows rows of one part, or with kSwiglu kStreamRows / 2 rows of the gate matrix (parts.p[0])
// followed by the same rows of the up matrix (p[1]).
template <class L0, class L1, int NT, int S, bool kSwiglu>
__global__ void __launch_bounds__(kStreamThreads)
    matvec_stream_kernel(const MatvecParts parts, int first_l1_set, int n_sets, int n_groups, int n_records,
                         const float* __restrict__ x, int64_t x_stride, int q_off, int s_off, int n_tok,
                         int stage_bytes, const Epilogue ep) {
    constexpr int R = kStreamRows, H = R / 2;
    extern __shared__ __align__(16) uint8_t stages[];
    const int tid = threadIdx.x;
    const auto copy_rows = [&](const uint8_t* src, int64_t bytes, uint8_t* dst) {
        for (int64_t i = tid; i < bytes / 16; i += kStreamThreads) cp_async16(dst + 16 * i, src + 16 * i);
    };
    // Set blockIdx.x + k * gridDim.x into stage k % S; every call commits a group (maybe empty), so that
    // "all but the newest S - 1 groups done" always means "set k is in".
    const auto issue = [&](int k) {
        const int set = int(blockIdx.x) + k * int(gridDim.x);
        if (set < n_sets) {
            uint8_t* dst = stages + (k % S) * stage_bytes;
            if constexpr (kSwiglu) {
                const int64_t rb = parts.p[0].row_bytes, off = int64_t(set) * H * rb;
                copy_rows(parts.p[0].w + off, H * rb, dst);
                copy_rows(parts.p[1].w + off, H * rb, dst + H * rb);
            } else {
                const MatvecPart m = part_of_set(parts, set);
                const int row0 = (set - m.first_block) * R;
                copy_rows(m.w + int64_t(row0) * m.row_bytes, int64_t(min(R, m.n_rows - row0)) * m.row_bytes,
                          dst);
            }
        }
        cp_async_commit();
    };
#pragma unroll
    for (int k = 0; k < S - 1; ++k) issue(k);
    wait_for_producer();
    const NormPart np = load_norm_part(ep, tid, kStreamThreads);

    __shared__ float partial[kStreamThreads / 32][R * NT];
    const auto* xb = reinterpret_cast<const uint8_t*>(x);
    for (int k = 0;; ++k) {
        const int set = int(blockIdx.x) + k * int(gridDim.x);
        if (set >= n_sets) break;
        issue(k + S - 1);
        cp_async_wait<S - 1>();
        __syncthreads();  // every thread's copies of set k are in
        const MatvecPart me = kSwiglu ? parts.p[0] : part_of_set(parts, set);
        const int row0 = kSwiglu ? set * H : (set - me.first_block) * R;
        const int n_valid = kSwiglu ? R : min(R, me.n_rows - row0);  // SwiGLU: rows % 32 == 0
        const uint8_t* stage = stages + (k % S) * stage_bytes;
        float acc[R][NT];
#pragma unroll
        for (int r = 0; r < R; ++r)
#pragma unroll
            for (int t = 0; t < NT; ++t) acc[r][t] = 0.0f;
        const bool use_l1 = !std::is_same_v<L0, L1> && set >= first_l1_set;
        for (int g = tid; g < n_groups; g += kStreamThreads) {
            if (use_l1)
                stream_group<L1, NT, R>(stage, me.row_bytes, n_valid, n_records, g, xb, 4 * x_stride, q_off,
                                        s_off, n_tok, acc);
            else
                stream_group<L0, NT, R>(stage, me.row_bytes, n_valid, n_records, g, xb, 4 * x_stride, q_off,
                                        s_off, n_tok, acc);
        }
        store_set<NT, R, kStreamThreads / 32, kSwiglu>(acc, partial, me, row0, me.n_rows, n_tok, ep,
                                                       np.sum());
        __syncthreads();  // the stage and partial are reused
    }
    cp_async_wait<0>();
}

bool stream_on() {
    static const bool on = env_int("KINFER_MATVEC_STREAM", 0) == 1;
    return on;
}

// Fills the launch's parts (block ranges of R rows each); returns the blocks in all.
template <int R>
int fill_parts(const MatvecOut* outs, int n_outs, const int* roles, MatvecParts& parts) {
    parts = MatvecParts{};
    parts.n = n_outs;
    int blocks = 0;
    for (int i = 0; i < n_outs; ++i) {
        const DeviceMatrix& w = *outs[i].w;
        parts.p[i] = {static_cast<const uint8_t*>(w.data),
                      int64_t(w.row_bytes),
                      outs[i].out,
                      outs[i].out_stride,
                      int(w.rows),
                      blocks,
                      roles ? roles[i] : int(kPlain)};
        blocks += int(ceil_div<int64_t>(w.rows, R));
    }
    return blocks;
}

// Up to NT tokens through matvec_stream_kernel: outs[0 .. n_l0) of layout L0, the rest of L1 (kSwiglu: outs
// are gate and up). False (nothing launched) when two stages of kStreamRows rows do not fit in kStreamSmem.
template <class L0, class L1, int NT, bool kSwiglu>
bool launch_stream(const MatvecOut* outs, int n_outs, int n_l0, const float* x, int n_tok, const Epilogue& ep,
                   cudaStream_t s, const int* roles) {
    int64_t widest = 0;
    for (int i = 0; i < n_outs; ++i) widest = std::max<int64_t>(widest, int64_t(outs[i].w->row_bytes));
    const int64_t stage = kStreamRows * widest;
    const int n_stages = stage * 4 <= kStreamSmem ? 4 : stage * 2 <= kStreamSmem ? 2 : 0;
    if (n_stages == 0) return false;
    static const bool configured = [] {
        cudaFuncSetAttribute(matvec_stream_kernel<L0, L1, NT, 2, kSwiglu>,
                             cudaFuncAttributeMaxDynamicSharedMemorySize, kStreamSmem);
        cudaFuncSetAttribute(matvec_stream_kernel<L0, L1, NT, 4, kSwiglu>,
                             cudaFuncAttributeMaxDynamicSharedMemorySize, kStreamSmem);
        return true;
    }();
    (void)configured;
    const auto kernel = n_stages == 4 ? matvec_stream_kernel<L0, L1, NT, 4, kSwiglu>
                                      : matvec_stream_kernel<L0, L1, NT, 2, kSwiglu>;
    const int smem = int(n_stages * stage);
    int per_sm = 0;
    cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kStreamThreads, smem);
    MatvecParts parts;
    int n_sets = fill_parts<kStreamRows>(outs, n_outs, roles, parts);
    if constexpr (kSwiglu) n_sets = int(outs[0].w->rows / (kStreamRows / 2));
    const int first_l1 = n_l0 < n_outs ? parts.p[n_l0].first_block : n_sets;
    const int grid = std::max(1, std::min(n_sets, std::max(1, per_sm) * sm_count()));
    const DeviceMatrix& w0 = *outs[0].w;
    launch_kernel(kernel, grid, kStreamThreads, size_t(smem), s, parts, first_l1, n_sets,
                  static_cast<int>(w0.cols / kGroupElems),
                  static_cast<int>(ceil_div<int64_t>(w0.cols, kRecordElems)), x, activation_floats(w0.cols),
                  int(activation_q_offset(w0.cols)), int(activation_scale_offset(w0.cols)), n_tok, int(stage),
                  ep);
    return true;
}

// outs[0 .. n_l0) of layout L0, the rest of L1 (same width).
template <class L0, class L1, int NT, int R, int MinBlocks>
void launch_mixed_rows(const MatvecOut* outs, int n_outs, int n_l0, const float* x, int n_tok,
                       const Epilogue& ep, cudaStream_t s, const int* roles) {
    const DeviceMatrix& w0 = *outs[0].w;
    MatvecParts parts;
    const int blocks = fill_parts<R>(outs, n_outs, roles, parts);
    Epilogue e = ep;
    e.prefetch = prefetch_weights();
    launch_kernel(matvec_mixed_kernel<L0, L1, NT, R, MinBlocks>, blocks, kThreads, 0, s, parts,
                  parts.p[n_l0].first_block, static_cast<int>(w0.cols / kGroupElems),
                  static_cast<int>(ceil_div<int64_t>(w0.cols, kRecordElems)), x, activation_floats(w0.cols),
                  int(activation_q_offset(w0.cols)), int(activation_scale_offset(w0.cols)), n_tok, e);
}

// Layouts the tensor-core path reads (those with step loads, kQuadStep: Q4_0, Q8_0, Q4_K, Q5_K, Q6_K).
template <class L, class = void>
struct HasQuadStep : std::false_type {};
template <class L>
struct HasQuadStep<L, std::void_t<decltype(L::kQuadStep)>> : std::true_type {};
template <class L>
constexpr bool kHasQuad = HasQuadStep<L>::value;

// Bytes of raw words a thread holds per row for one chunk (its 4 groups) on the tensor-core path.
template <class L>
constexpr int kRawBytes = int(sizeof(typename L::QuadRaw)) * (kWarpGroups / L::kQuadStep);
// 32 rows per block (two tiles) only for layouts whose raw words of a chunk are small (Q4_K, Q8_0, Q4_0: <=
// 48 bytes per row; Q6_K's and Q5_K's would spill at 128 registers).
template <class L0, class L1>
constexpr bool kTwoTiles = kRawBytes<L0> <= 48 && kRawBytes<L1> <= 48;

// Which batches take the tensor-core path (KINFER_MATVEC_MMA, read once; Q4_K and Q6_K there in the fp16
// form, kHalfForm). 1 (the default): 9-16 tokens, and 5-8 on Q4_K, Q6_K (Q4_K_M files; also their mixed
// wq/wk/wv launch) and Q8_0, where it measured faster than the dp4a path on an H200 (bench/cuda/NOTES.md
// sessions 11 and 13: Q8_0 joined once the weights were staged, x8 1 510 -> 1 818 t/s). 0: none (dp4a for
// every batch). 2: every batch of 3-16 tokens (comparisons). Its reference test: "cuda matvec: batches on the
// tensor-core path" (passes in every mode, memcheck and racecheck clean: sessions 12 and 13).
template <class L0, int NT>
bool mma_for() {
    static const int mode = env_int("KINFER_MATVEC_MMA", 1);
    if (mode == 0) return false;
    if (mode == 2) return true;
    return NT == 16 || (NT == 8 && (std::is_same_v<L0, LayoutQ4_K> || std::is_same_v<L0, LayoutQ6_K> ||
                                    std::is_same_v<L0, LayoutQ8_0>));
}

// Rows per block: 32 (each activation fragment feeds two tiles) where the layout's raw words allow it (Q4_K,
// Q8_0, Q4_0). With the weights in registers only on launches of at least 8192 rows (gate/up, the output),
// 16 on the smaller ones (twice the blocks for the SMs). Staged, 16 where 32-row blocks would be at most one
// per SM (wo and down, 4 096 rows: 128 blocks of 8 warps on 132 SMs), 32 on the rest. The kernel bench
// (back-to-back launches of one kernel) measured 32-row blocks faster everywhere (session 13: q4_K 4096 x
// 4096 at 8 tokens 8.2 us against 16.2), but inside a decode step the 128-block launches took far longer than
// there (session 21, H200: Q4_K down 30.6 us in the step against 18.6 in the bench) and 256 blocks of 16 rows
// took 20.2 (the 6 144-row wq/wk/wv in 16-row blocks too was slower). KINFER_MMA_ROWS=16 or 32 (read once)
// sets it for every launch.
bool mma_rows16(int64_t rows, bool staged) {
    static const int v = env_int("KINFER_MMA_ROWS", 0);
    return v == 16 || (v != 32 && (staged ? rows <= 32 * int64_t(sm_count()) : rows < 8192));
}

// Whether the tensor-core batches stage their weights in shared memory (matvec_mma_staged_body; the default.
// KINFER_MMA_STAGED=0, read once, holds them in registers as matvec_mma_body does).
bool mma_staged() {
    static const bool on = env_int("KINFER_MMA_STAGED", 1) != 0;
    return on;
}

// The probe's ring (mma_probe.cuh): KINFER_MMA_PROBE=FILE arms it at the first tensor-core launch and writes
// it to FILE at exit. The ring is allocated and its address set from a thread of its own, so that arming
// inside a graph capture (thread-local mode) breaks nothing.
MmaProbeRec* g_probe_host_ring = nullptr;
int g_probe_launches = 0, g_probe_slots = 0;
void write_probe() {
    const char* file = std::getenv("KINFER_MMA_PROBE");
    const unsigned n = unsigned(g_probe_slots);
    std::vector<MmaProbeRec> recs(kProbeRecs);
    if (cudaMemcpy(recs.data(), g_probe_host_ring, sizeof(MmaProbeRec) * kProbeRecs,
                   cudaMemcpyDeviceToHost) != cudaSuccess)
        return;
    if (FILE* f = std::fopen(file, "wb")) {
        std::fwrite(&n, sizeof n, 1, f);
        std::fwrite(recs.data(), sizeof(MmaProbeRec), recs.size(), f);
        std::fclose(f);
    }
}
bool probe_on() {
    static const bool on = [] {
        const char* file = std::getenv("KINFER_MMA_PROBE");
        if (file == nullptr || *file == 0) return false;
        std::thread([] {
            cudaStream_t st;
            cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking);
            cudaMalloc(&g_probe_host_ring, sizeof(MmaProbeRec) * kProbeRecs);
            cudaMemsetAsync(g_probe_host_ring, 0, sizeof(MmaProbeRec) * kProbeRecs, st);
            cudaMemcpyToSymbolAsync(g_probe_ring, &g_probe_host_ring, sizeof g_probe_host_ring, 0,
                                    cudaMemcpyHostToDevice, st);
            cudaStreamSynchronize(st);
            cudaStreamDestroy(st);
        }).join();
        std::atexit(write_probe);
        return true;
    }();
    return on;
}

// The launch in blocks of mt tiles (16 * mt rows).
template <class L0, class L1, int NT, bool kStaged, bool kHalf, bool kProbe>
void launch_mma_variant(int mt, int blocks, const MatvecParts& parts, int first_l1, int n_groups,
                        const float* x, int n_tok, const Epilogue& e, cudaStream_t s) {
    auto kernel = matvec_mma_kernel<L0, L1, NT, 1, kStaged, kHalf, kProbe>;
    if constexpr (kTwoTiles<L0, L1>)
        if (mt == 2) kernel = matvec_mma_kernel<L0, L1, NT, 2, kStaged, kHalf, kProbe>;
    const auto smem_of = [](int m) {
        if constexpr (kStaged)
            return 2 * (m == 2 ? mma_stage_bytes<L0, L1, NT, 2, kHalf>()
                               : mma_stage_bytes<L0, L1, NT, 1, kHalf>());
        else
            return mma_smem_bytes<NT>();
    };
    static const bool configured = [&] {
        const auto set = [&](auto k, int m) {
            cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, smem_of(m));
        };
        set(matvec_mma_kernel<L0, L1, NT, 1, kStaged, kHalf, kProbe>, 1);
        if constexpr (kTwoTiles<L0, L1>) set(matvec_mma_kernel<L0, L1, NT, 2, kStaged, kHalf, kProbe>, 2);
        return true;
    }();
    (void)configured;
    const int64_t cols = int64_t(n_groups) * kGroupElems;
    const int64_t q_off = kHalf ? activation_half_offset(cols) : activation_q_offset(cols);
    const int64_t s_off = kHalf ? activation_half_sum_offset(cols) : activation_scale_offset(cols);
    launch_kernel(kernel, blocks, kMmaWarps * 32, size_t(smem_of(mt)), s, parts, first_l1, n_groups,
                  static_cast<int>(ceil_div<int64_t>(cols, kRecordElems)), x, activation_floats(cols),
                  int(q_off), int(s_off), n_tok, e);
}

// Whether each block of the fp16 form walks its row's chunks from chunk (block % chunks) on
// (KINFER_MMA_ROTATE=0, read once, starts every block at chunk 0), so that the blocks at work at once read
// different parts of the activation (at 8 tokens each block reads all of it, as many bytes as its weights)
// instead of the same 18 KB at the same time. A row's sum then adds its chunks in another order (fixed per
// block: deterministic, and independent of the other sequences). Measured on an H200 (bench/cuda/NOTES.md
// session 22): x8 2 320 / 2 304 against 2 262 / 2 260 t/s; the probe's launch spans moved less (Q4_K down
// -3%, gate/up none).
bool mma_rotate() {
    static const bool on = env_int("KINFER_MMA_ROTATE", 1) != 0;
    return on;
}

template <class L0, class L1, int NT, bool kStaged, bool kHalf = false>
void launch_mma_kernel(int mt, int blocks, const MatvecParts& parts, int first_l1, int n_groups,
                       const float* x, int n_tok, const Epilogue& e, cudaStream_t s) {
    if constexpr (kStaged && kHalf) {
        Epilogue ep = e;
        ep.rotate = mma_rotate();
        const bool probe = probe_on();
        if (probe) {
            ep.probe_launch = g_probe_launches++;
            ep.probe_slot = g_probe_slots;
            g_probe_slots += blocks;
            launch_mma_variant<L0, L1, NT, true, true, true>(mt, blocks, parts, first_l1, n_groups, x, n_tok,
                                                             ep, s);
            return;
        }
        launch_mma_variant<L0, L1, NT, true, true, false>(mt, blocks, parts, first_l1, n_groups, x, n_tok, ep,
                                                          s);
        return;
    }
    launch_mma_variant<L0, L1, NT, kStaged, kHalf, false>(mt, blocks, parts, first_l1, n_groups, x, n_tok, e,
                                                          s);
}

// The layouts the fp16 form reads (Q4_K, Q6_K: Q4_K_M files), and whether their batches take it
// (KINFER_MMA_HALF=0, read once, keeps the int8 form; staged weights only).
template <class L>
constexpr bool kHalfLayout = std::is_same_v<L, LayoutQ4_K> || std::is_same_v<L, LayoutQ6_K>;
template <class L0, class L1>
constexpr bool kHalfForm = kHalfLayout<L0>&& kHalfLayout<L1>;
// KINFER_MMA_HALF (read once): 1 (default) every such launch, 0 none, 2 Q4_K-only launches (comparisons).
template <class L0, class L1>
bool mma_half() {
    static const int mode = env_int("KINFER_MMA_HALF", 1);
    return mode == 1 || (mode == 2 && std::is_same_v<L0, LayoutQ4_K> && std::is_same_v<L1, LayoutQ4_K>);
}

// outs[0 .. n_l0) of layout L0, the rest of L1, in blocks of 16 * MT rows; NT = 8 or 16 tokens. False
// (nothing launched) where a row's groups are not whole steps of both layouts.
template <class L0, class L1, int NT>
bool launch_mma(const MatvecOut* outs, int n_outs, int n_l0, const float* x, int n_tok, const Epilogue& ep,
                cudaStream_t s, const int* roles) {
    const DeviceMatrix& w0 = *outs[0].w;
    const int n_groups = static_cast<int>(w0.cols / kGroupElems);
    if (n_groups % kChunkGroups != 0) return false;
    MatvecParts parts;
    int64_t rows = 0;
    for (int i = 0; i < n_outs; ++i) rows += outs[i].w->rows;
    const bool staged = mma_staged();
    const bool r16 = !kTwoTiles<L0, L1> || mma_rows16(rows, staged);
    const int mt = r16 ? 1 : 2;
    const int blocks =
        r16 ? fill_parts<16>(outs, n_outs, roles, parts) : fill_parts<32>(outs, n_outs, roles, parts);
    const int first_l1 = n_l0 < n_outs ? parts.p[n_l0].first_block : blocks;
    Epilogue e = ep;
    e.prefetch = prefetch_weights();
    if constexpr (kHalfForm<L0, L1>) {
        if (staged && mma_half<L0, L1>()) {
            launch_mma_kernel<L0, L1, NT, true, true>(mt, blocks, parts, first_l1, n_groups, x, n_tok, e, s);
            return true;
        }
    }
    if (staged)
        launch_mma_kernel<L0, L1, NT, true>(mt, blocks, parts, first_l1, n_groups, x, n_tok, e, s);
    else
        launch_mma_kernel<L0, L1, NT, false>(mt, blocks, parts, first_l1, n_groups, x, n_tok, e, s);
    return true;
}

// The types decode files use most: the one-token variants and the 4-row batches are instantiated for these.
template <class L>
constexpr bool kMainType =
    std::is_same_v<L, LayoutQ4_K> || std::is_same_v<L, LayoutQ6_K> || std::is_same_v<L, LayoutQ8_0> ||
    std::is_same_v<L, LayoutQ5_K> || std::is_same_v<L, LayoutQ4_0>;

// Whether L takes 4 rows per block for NT tokens (see batch_rows4).
template <class L, int NT>
constexpr bool rows4_for() {
    if constexpr (!kMainType<L> || NT <= 2) return false;
    return NT <= 4 || (NT <= 8 && std::is_same_v<L, LayoutQ8_0>);
}

// 3-8 tokens: 4 rows per block at 6 blocks per SM (168 registers) instead of 2 rows at 8, so that each
// activation load feeds 4 rows. Measured on an H200 (bench/cuda/NOTES.md session 9, tg64 x4 / x8): Q4_K_M
// 1 090 -> 1 180 / 1 444 -> 1 426 t/s, Q8_0 1 005 -> 1 097 / 1 377 -> 1 503. So for up to 4 tokens on the
// main types (rows4_for), and for 5-8 tokens on Q8_0 only. KINFER_BATCH_ROWS=2 (read once) keeps 2 rows.
bool batch_rows4() {
    static const bool on = env_int("KINFER_BATCH_ROWS", 4) != 2;
    return on;
}

template <class L0, class L1>
void launch_mixed(const MatvecOut* outs, int n_outs, int n_l0, const float* x, int n_tok, const Epilogue& ep,
                  cudaStream_t s, const int* roles) {
    if (n_tok == 1) {
        if (stream_on() && launch_stream<L0, L1, 1, false>(outs, n_outs, n_l0, x, n_tok, ep, s, roles))
            return;
        launch_mixed_rows<L0, L1, 1, 4, 8>(outs, n_outs, n_l0, x, n_tok, ep, s, roles);
    } else if (n_tok == 2)
        launch_mixed_rows<L0, L1, 2, 4, 8>(outs, n_outs, n_l0, x, n_tok, ep, s, roles);
    else if (n_tok <= 8 && stream_on() &&
             launch_stream<L0, L1, 8, false>(outs, n_outs, n_l0, x, n_tok, ep, s, roles))
        return;
    else if (kHasQuad<L0> && kHasQuad<L1> &&
             (n_tok <= 4   ? mma_for<L0, 4>()
              : n_tok <= 8 ? mma_for<L0, 8>()
                           : mma_for<L0, 16>()) &&
             (n_tok <= 8 ? launch_mma<L0, L1, 8>(outs, n_outs, n_l0, x, n_tok, ep, s, roles)
                         : launch_mma<L0, L1, 16>(outs, n_outs, n_l0, x, n_tok, ep, s, roles)))
        return;
    else if (n_tok <= 4 && rows4_for<L0, 4>() && rows4_for<L1, 4>() && batch_rows4())
        launch_mixed_rows<L0, L1, 4, 4, 6>(outs, n_outs, n_l0, x, n_tok, ep, s, roles);
    else if (n_tok <= 4)
        launch_mixed_rows<L0, L1, 4, 2, 8>(outs, n_outs, n_l0, x, n_tok, ep, s, roles);
    else if (n_tok <= 8)
        launch_mixed_rows<L0, L1, 8, 2, 8>(outs, n_outs, n_l0, x, n_tok, ep, s, roles);
    else
        launch_mixed_rows<L0, L1, 16, 2, 8>(outs, n_outs, n_l0, x, n_tok, ep, s, roles);
}

template <class L, int NT, int R, int MinBlocks, bool kSwiglu>
void launch_rows(const MatvecOut* outs, int n_outs, const float* x, int n_tok, const Epilogue& swiglu,
                 cudaStream_t s, const int* roles) {
    const DeviceMatrix& w0 = *outs[0].w;
    MatvecParts parts{};
    parts.n = n_outs;
    int blocks = 0;
    for (int i = 0; i < n_outs; ++i) {
        const DeviceMatrix& w = *outs[i].w;
        parts.p[i] = {static_cast<const uint8_t*>(w.data),
                      int64_t(w.row_bytes),
                      outs[i].out,
                      outs[i].out_stride,
                      int(w.rows),
                      blocks,
                      roles ? roles[i] : int(kPlain)};
        blocks += int(ceil_div<int64_t>(w.rows, R));
    }
    if constexpr (kSwiglu) blocks = int(ceil_div<int64_t>(w0.rows, R / 2));
    const int n_groups = static_cast<int>(w0.cols / kGroupElems);
    const int n_records = static_cast<int>(ceil_div<int64_t>(w0.cols, kRecordElems));
    Epilogue ep = swiglu;
    ep.prefetch = prefetch_weights();
    launch_kernel(matvec_kernel<L, NT, R, MinBlocks, kSwiglu>, blocks, kThreads, 0, s, parts, n_groups,
                  n_records, x, activation_floats(w0.cols), int(activation_q_offset(w0.cols)),
                  int(activation_scale_offset(w0.cols)), n_tok, ep);
}

// The pipelined kernel: parts in blocks of R * S rows.
template <class L, int NT, int R, int S, int MinBlocks>
void launch_pipelined(const MatvecOut* outs, int n_outs, const float* x, int n_tok, const Epilogue& ep,
                      cudaStream_t s, const int* roles) {
    const DeviceMatrix& w0 = *outs[0].w;
    MatvecParts parts;
    const int blocks = fill_parts<R * S>(outs, n_outs, roles, parts);
    launch_kernel(matvec_pipelined_kernel<L, NT, R, S, MinBlocks>, blocks, kThreads, 0, s, parts,
                  static_cast<int>(w0.cols / kGroupElems),
                  static_cast<int>(ceil_div<int64_t>(w0.cols, kRecordElems)), x, activation_floats(w0.cols),
                  int(activation_q_offset(w0.cols)), int(activation_scale_offset(w0.cols)), n_tok, ep);
}

// KINFER_MATVEC_VARIANT (read once), for one token on the types decode files use most: 0 = 4 rows per block,
// at least 8 blocks per SM (unset: the same, except Q8_0's smaller launches, rows8_for_small_launch); 1 = 8
// rows per block, 4 blocks (twice the weight bytes per block pass, at half the occupancy); 2 = 4 rows, 12
// blocks; 3 = 2 rows, 16 blocks; 4 and 5 = the pipelined kernel, 2 or 4 sets of 4 rows per block (not for the
// SwiGLU epilogue).
int matvec_variant() {
    static const int v = env_int("KINFER_MATVEC_VARIANT", 0);
    return v;
}

// ---- the batches' gate/up pairs with SwiGLU (matvec_mma_pair_kernel)
// Whether launch_tokens<L> gives n_tokens (5..16) of a `cols`-column input to the fp16 form (the
// decisions of launch and launch_mma: the tensor-core path, staged, KINFER_MMA_HALF); false where unsure
// (the streamed experiment, KINFER_MATVEC_STREAM=1).
template <class L>
bool half_form_for(int64_t cols, int n_tokens) {
    if constexpr (!kHalfLayout<L>) {
        return false;
    } else {
        if (n_tokens < 5 || n_tokens > kMaxMatvecTokens || cols % (kChunkGroups * kGroupElems) != 0)
            return false;
        if (n_tokens <= 8 && stream_on()) return false;
        const bool mma = n_tokens <= 8 ? mma_for<L, 8>() : mma_for<L, 16>();
        return mma && mma_staged() && mma_half<L, L>();
    }
}

// KINFER_SWIGLU_PAIRS=0 (read once) keeps the batches' SwiGLU a kernel of its own (comparisons).
bool swiglu_pairs_on() {
    static const bool on = env_on("KINFER_SWIGLU_PAIRS");
    return on;
}

template <int NT>
void launch_pairs(const MatvecPart& g, const MatvecPart& u, int64_t cols, const float* x, int n_tok,
                  const Epilogue& ep, cudaStream_t s) {
    using L = LayoutQ4_K;
    constexpr int kSmem = 2 * mma_stage_bytes<L, L, NT, 2, true>();
    static const bool configured = [] {
        cudaFuncSetAttribute(matvec_mma_pair_kernel<L, NT>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             kSmem);
        return true;
    }();
    (void)configured;
    launch_kernel(matvec_mma_pair_kernel<L, NT>, unsigned(g.n_rows / 16), kMmaWarps * 32, size_t(kSmem), s, g,
                  u, int(cols / kGroupElems), int(ceil_div<int64_t>(cols, kRecordElems)), x,
                  activation_floats(cols), int(activation_half_offset(cols)),
                  int(activation_half_sum_offset(cols)), n_tok, ep);
}

// One token of Q8_0 on a launch of fewer than 16 384 rows (wq/wk/wv, wo, down: at most ~1.5 waves of 4-row
// blocks): 8 rows per block at 4 blocks per SM, twice the bytes per block pass. Measured on an H200
// (bench/cuda/NOTES.md session 10, tg128, 2 alternating rounds): Q8_0 388-391 -> 392-394 t/s; on every
// Q8_0 launch 392-393, on only the larger ones 384-386; for Q4_K the same choice measured 504-505 against
// 510-512, so it is Q8_0's alone. Any KINFER_MATVEC_VARIANT set overrides it (0: 4 rows, as before).
template <class L>
bool rows8_for_small_launch(const MatvecOut* outs, int n_outs) {
    if constexpr (!std::is_same_v<L, LayoutQ8_0>) {
        return false;
    } else {
        static const bool variant_chosen = env_int("KINFER_MATVEC_VARIANT", -1) >= 0;
        if (variant_chosen) return false;
        int64_t rows = 0;
        for (int i = 0; i < n_outs; ++i) rows += outs[i].w->rows;
        return rows < 16384;
    }
}

template <class L, int NT, bool kSwiglu = false>
void launch(const MatvecOut* outs, int n_outs, const float* x, int n_tok, const Epilogue& swiglu,
            cudaStream_t s, const int* roles) {
    // One token: 4 rows per block (2 rows with a 64-register cap for more warps measured the same).
    if constexpr (NT == 1) {
        if constexpr (kMainType<L>) {
            if (stream_on() &&
                launch_stream<L, L, 1, kSwiglu>(outs, n_outs, n_outs, x, n_tok, swiglu, s, roles))
                return;
            if (matvec_variant() == 1 || rows8_for_small_launch<L>(outs, n_outs))
                return launch_rows<L, 1, 8, 4, kSwiglu>(outs, n_outs, x, n_tok, swiglu, s, roles);
            if (matvec_variant() == 2)  // more resident blocks: a tighter register budget
                return launch_rows<L, 1, 4, 12, kSwiglu>(outs, n_outs, x, n_tok, swiglu, s, roles);
            if (matvec_variant() == 3)
                return launch_rows<L, 1, 2, 16, kSwiglu>(outs, n_outs, x, n_tok, swiglu, s, roles);
            if constexpr (!kSwiglu) {
                if (matvec_variant() == 4)  // pipelined: 2 sets of 4 rows per block
                    return launch_pipelined<L, 1, 4, 2, 4>(outs, n_outs, x, n_tok, swiglu, s, roles);
                if (matvec_variant() == 5)  // 4 sets of 2 rows, 8 blocks per SM
                    return launch_pipelined<L, 1, 2, 4, 8>(outs, n_outs, x, n_tok, swiglu, s, roles);
            }
        }
        launch_rows<L, 1, 4, 8, kSwiglu>(outs, n_outs, x, n_tok, swiglu, s, roles);
    } else if constexpr (NT == 2) {
        launch_rows<L, 2, 4, 8, kSwiglu>(outs, n_outs, x, n_tok, swiglu, s, roles);
    } else {
        if constexpr (kMainType<L> && NT <= 8) {  // 3-8 tokens: the streamed kernel's 8-token form
            if (stream_on() &&
                launch_stream<L, L, 8, kSwiglu>(outs, n_outs, n_outs, x, n_tok, swiglu, s, roles))
                return;
        }
        if constexpr (kHasQuad<L> && !kSwiglu) {
            if (mma_for<L, NT>() && launch_mma < L, L,
                NT <= 8 ? 8 : 16 > (outs, n_outs, n_outs, x, n_tok, swiglu, s, roles))
                return;
        }
        if constexpr (rows4_for<L, NT>()) {
            if (batch_rows4())
                return launch_rows<L, NT, 4, 6, kSwiglu>(outs, n_outs, x, n_tok, swiglu, s, roles);
        }
        launch_rows<L, NT, 2, 8, kSwiglu>(outs, n_outs, x, n_tok, swiglu, s, roles);
    }
}

template <class L, bool kSwiglu = false>
void launch_tokens(const MatvecOut* outs, int n_outs, const float* x, int n_tokens, const Epilogue& swiglu,
                   cudaStream_t s, const int* roles = nullptr) {
    if (n_tokens == 1)
        launch<L, 1, kSwiglu>(outs, n_outs, x, n_tokens, swiglu, s, roles);
    else if (n_tokens == 2)
        launch<L, 2, kSwiglu>(outs, n_outs, x, n_tokens, swiglu, s, roles);
    else if (n_tokens <= 4)
        launch<L, 4, kSwiglu>(outs, n_outs, x, n_tokens, swiglu, s, roles);
    else if (n_tokens <= 8)
        launch<L, 8, kSwiglu>(outs, n_outs, x, n_tokens, swiglu, s, roles);
    else
        launch<L, 16, kSwiglu>(outs, n_outs, x, n_tokens, swiglu, s, roles);
}

void check_tokens(int n_tokens) {
    if (n_tokens < 1 || n_tokens > kMaxMatvecTokens)
        throw Error("internal error: matvec of " + std::to_string(n_tokens) + " tokens (1..16)");
}

}  // namespace

int64_t activation_floats(int64_t cols) {
    // floats, int8 terms, scales, fp16 values, their sums (activation_layout.cuh)
    return activation_padded(cols) / 16 * 35;
}

void prepare_activation(const float* x_dev, int n_tokens, int64_t cols, float* out_dev, Stream stream) {
    if (n_tokens <= 0) return;
    if (cols % 32 != 0) throw Error("internal error: prepare_activation needs cols % 32 == 0");
    const int64_t n = cols * n_tokens;
    launch_kernel(prepare_kernel, static_cast<unsigned>(std::min<int64_t>(ceil_div<int64_t>(n, 256), 4096)),
                  256, 0, as_stream(stream), x_dev, cols, activation_floats(cols), n_tokens, out_dev);
    check_launch("prepare_activation");
}

namespace {

// KINFER_MATVEC_MIXED=0 (read once) launches each type on its own, for comparisons.
bool mixed_launch() {
    static const bool on = env_on("KINFER_MATVEC_MIXED");
    return on;
}

void matvecs_with(const MatvecOut* outs, const int* roles, int n_outs, const float* x_prepared_dev,
                  int n_tokens, const Epilogue& ep, Stream stream) {
    check_tokens(n_tokens);
    const cudaStream_t s = as_stream(stream);
    // Q4_K, Q4_K, Q6_K of one width (wq, wk, wv of Q4_K_M files) in one launch.
    if (n_outs == 3 && outs[0].w->type == GgmlType::Q4_K && outs[1].w->type == GgmlType::Q4_K &&
        outs[2].w->type == GgmlType::Q6_K && outs[1].w->cols == outs[0].w->cols &&
        outs[2].w->cols == outs[0].w->cols && mixed_launch()) {
        launch_mixed<LayoutQ4_K, LayoutQ6_K>(outs, 3, 2, x_prepared_dev, n_tokens, ep, s, roles);
        check_launch("matvec");
        return;
    }
    // One launch per run of up to three consecutive outputs of the same type and width.
    for (int i = 0; i < n_outs;) {
        int n = 1;
        while (i + n < n_outs && n < 3 && outs[i + n].w->type == outs[i].w->type &&
               outs[i + n].w->cols == outs[i].w->cols)
            ++n;
        const bool known = with_layout(outs[i].w->type, [&](auto layout) {
            launch_tokens<decltype(layout)>(outs + i, n, x_prepared_dev, n_tokens, ep, s,
                                            roles ? roles + i : nullptr);
        });
        if (!known) throw Error("internal error: matvec on a type without device layout");
        check_launch("matvec");
        i += n;
    }
}

// The epilogue's part for an input prepared by matvec_add_norm (one token only).
Epilogue with_norm(Epilogue ep, const RowNorm& norm, int n_tokens) {
    if (!norm.ssq) return ep;
    if (n_tokens != 1 || norm.cols / 32 > kNormLoads * kThreads)
        throw Error("internal error: a product of a norm's unscaled input needs one token and <= " +
                    std::to_string(kNormLoads * kThreads * 32) + " columns");
    ep.norm_ssq = norm.ssq;
    ep.norm_eps = norm.eps;
    ep.norm_cols = norm.cols;
    return ep;
}

}  // namespace

void matvecs(const MatvecOut* outs, int n_outs, const float* x_prepared_dev, int n_tokens, Stream stream,
             const RowNorm& norm) {
    matvecs_with(outs, nullptr, n_outs, x_prepared_dev, n_tokens, with_norm(Epilogue{}, norm, n_tokens),
                 stream);
}

bool matvecs_rope_kv_supports(const AttentionShape& shape) {
    return shape.head_dim % 2 == 0 && shape.n_rot % 2 == 0 && shape.n_rot <= shape.head_dim;
}

void matvecs_rope_kv(const MatvecOut* qkv, const float* x_prepared_dev, int n_tokens, const KvRow* rows_dev,
                     int layer, const AttentionShape& shape, const double* inv_freq_dev, Stream stream,
                     const RowNorm& norm) {
    if (!matvecs_rope_kv_supports(shape))
        throw Error("internal error: matvecs_rope_kv needs an even head_dim and n_rot <= head_dim");
    const int roles[3] = {kRopeQ, kRopeK, kStoreV};
    Epilogue ep;
    ep.rows = rows_dev;
    ep.inv_freq = inv_freq_dev;
    ep.layer = layer;
    ep.head_dim = shape.head_dim;
    ep.n_rot = shape.n_rot;
    matvecs_with(qkv, roles, 3, x_prepared_dev, n_tokens, with_norm(ep, norm, n_tokens), stream);
}

bool matvec_swiglu_supports(const DeviceMatrix& gate, const DeviceMatrix& up) {
    const GgmlType t = gate.type;
    return up.type == t && up.rows == gate.rows && up.cols == gate.cols && gate.rows % 32 == 0 &&
           (t == GgmlType::Q4_K || t == GgmlType::Q6_K || t == GgmlType::Q8_0 || t == GgmlType::Q5_K ||
            t == GgmlType::Q4_0);
}

bool matvec_reads_half_form(const DeviceMatrix& w, int n_tokens) {
    if (w.type == GgmlType::Q4_K) return half_form_for<LayoutQ4_K>(w.cols, n_tokens);
    if (w.type == GgmlType::Q6_K) return half_form_for<LayoutQ6_K>(w.cols, n_tokens);
    return false;
}

bool matvec_swiglu_pairs_supports(const DeviceMatrix& gate, const DeviceMatrix& up, int n_tokens) {
    return swiglu_pairs_on() && gate.type == GgmlType::Q4_K && up.type == GgmlType::Q4_K &&
           up.rows == gate.rows && up.cols == gate.cols && gate.rows % 16 == 0 &&
           half_form_for<LayoutQ4_K>(gate.cols, n_tokens);
}

void matvec_swiglu_pairs(const DeviceMatrix& gate, const DeviceMatrix& up, const float* x_prepared_dev,
                         int n_tokens, float* out_dev, int64_t out_stride, float* prepared_dev,
                         Stream stream) {
    check_tokens(n_tokens);
    if (!matvec_swiglu_pairs_supports(gate, up, n_tokens) || !prepared_dev)
        throw Error("internal error: matvec_swiglu_pairs on matrices or tokens it does not support");
    const MatvecPart g{static_cast<const uint8_t*>(gate.data),
                       int64_t(gate.row_bytes),
                       out_dev,
                       out_stride,
                       int(gate.rows),
                       0,
                       int(kPlain)};
    const MatvecPart u{static_cast<const uint8_t*>(up.data),
                       int64_t(up.row_bytes),
                       out_dev,
                       out_stride,
                       int(up.rows),
                       0,
                       int(kPlain)};
    Epilogue ep;
    ep.prepared = prepared_dev;
    ep.prepared_stride = activation_floats(gate.rows);
    ep.prefetch = prefetch_weights();
    ep.rotate = mma_rotate();
    const cudaStream_t s = as_stream(stream);
    if (n_tokens <= 8)
        launch_pairs<8>(g, u, gate.cols, x_prepared_dev, n_tokens, ep, s);
    else
        launch_pairs<16>(g, u, gate.cols, x_prepared_dev, n_tokens, ep, s);
    check_launch("matvec_swiglu_pairs");
}

void matvec_swiglu(const DeviceMatrix& gate, const DeviceMatrix& up, const float* x_prepared_dev,
                   int n_tokens, float* out_dev, int64_t out_stride, float* prepared_dev, int* counters_dev,
                   Stream stream, const RowNorm& norm) {
    check_tokens(n_tokens);
    if (!matvec_swiglu_supports(gate, up))
        throw Error("internal error: matvec_swiglu on matrices it does not support");
    const MatvecOut outs[2] = {{&gate, out_dev, out_stride}, {&up, out_dev, out_stride}};
    Epilogue sw{prepared_dev, activation_floats(gate.rows), counters_dev};
    sw = with_norm(sw, norm, n_tokens);
    const cudaStream_t s = as_stream(stream);
    switch (gate.type) {
        case GgmlType::Q4_K:
            launch_tokens<LayoutQ4_K, true>(outs, 2, x_prepared_dev, n_tokens, sw, s);
            break;
        case GgmlType::Q6_K:
            launch_tokens<LayoutQ6_K, true>(outs, 2, x_prepared_dev, n_tokens, sw, s);
            break;
        case GgmlType::Q8_0:
            launch_tokens<LayoutQ8_0, true>(outs, 2, x_prepared_dev, n_tokens, sw, s);
            break;
        case GgmlType::Q5_K:
            launch_tokens<LayoutQ5_K, true>(outs, 2, x_prepared_dev, n_tokens, sw, s);
            break;
        default:
            launch_tokens<LayoutQ4_0, true>(outs, 2, x_prepared_dev, n_tokens, sw, s);
            break;
    }
    check_launch("matvec_swiglu");
}

void matvec(const DeviceMatrix& w, const float* x_prepared_dev, int n_tokens, float* out_dev,
            int64_t out_stride, Stream stream) {
    const MatvecOut o{&w, out_dev, out_stride};
    matvecs(&o, 1, x_prepared_dev, n_tokens, stream);
}

void matvec_add(const DeviceMatrix& w, const float* x_prepared_dev, int n_tokens, float* out_dev,
                int64_t out_stride, Stream stream, const RowNorm& norm) {
    const MatvecOut o{&w, out_dev, out_stride};
    const int role = kAdd;
    matvecs_with(&o, &role, 1, x_prepared_dev, n_tokens, with_norm(Epilogue{}, norm, n_tokens), stream);
}

bool matvec_add_norm_supports(const DeviceMatrix& w) {
    const GgmlType t = w.type;
    return w.rows % 32 == 0 && w.rows <= 8192 && w.cols % 32 == 0 &&
           (t == GgmlType::Q4_K || t == GgmlType::Q6_K || t == GgmlType::Q8_0 || t == GgmlType::Q5_K ||
            t == GgmlType::Q4_0);
}

namespace {

// R rows per sub-block as the one-token launch would take for this product (rows8_for_small_launch: Q8_0
// takes 8 on launches this small unless a variant is chosen).
template <class L, int R>
void launch_add_norm(const DeviceMatrix& w, const float* x, float* x_dev, const float* norm_w,
                     float* prepared, float* ssq, cudaStream_t s) {
    const MatvecPart me{
        static_cast<const uint8_t*>(w.data), int64_t(w.row_bytes), x_dev, 0, int(w.rows), 0, int(kAdd)};
    launch_kernel(matvec_add_norm_kernel<L, R>, unsigned(w.rows / 32), kThreads * 32 / R, 0, s, me,
                  int(w.cols / kGroupElems), int(ceil_div<int64_t>(w.cols, kRecordElems)), x,
                  activation_floats(w.cols), int(activation_q_offset(w.cols)),
                  int(activation_scale_offset(w.cols)), norm_w, prepared, ssq, prefetch_weights());
}

}  // namespace

void matvec_add_norm(const DeviceMatrix& w, const float* x_prepared_dev, float* x_dev,
                     const float* norm_w_dev, float* prepared_dev, float* ssq_dev, Stream stream) {
    if (!matvec_add_norm_supports(w))
        throw Error("internal error: matvec_add_norm on a matrix it does not support");
    const cudaStream_t s = as_stream(stream);
    const MatvecOut o{&w, x_dev, int64_t(w.rows)};
    switch (w.type) {
        case GgmlType::Q4_K:
            launch_add_norm<LayoutQ4_K, 4>(w, x_prepared_dev, x_dev, norm_w_dev, prepared_dev, ssq_dev, s);
            break;
        case GgmlType::Q6_K:
            launch_add_norm<LayoutQ6_K, 4>(w, x_prepared_dev, x_dev, norm_w_dev, prepared_dev, ssq_dev, s);
            break;
        case GgmlType::Q8_0:
            if (rows8_for_small_launch<LayoutQ8_0>(&o, 1))
                launch_add_norm<LayoutQ8_0, 8>(w, x_prepared_dev, x_dev, norm_w_dev, prepared_dev, ssq_dev,
                                               s);
            else
                launch_add_norm<LayoutQ8_0, 4>(w, x_prepared_dev, x_dev, norm_w_dev, prepared_dev, ssq_dev,
                                               s);
            break;
        case GgmlType::Q5_K:
            launch_add_norm<LayoutQ5_K, 4>(w, x_prepared_dev, x_dev, norm_w_dev, prepared_dev, ssq_dev, s);
            break;
        default:
            launch_add_norm<LayoutQ4_0, 4>(w, x_prepared_dev, x_dev, norm_w_dev, prepared_dev, ssq_dev, s);
            break;
    }
    check_launch("matvec_add_norm");
}

}  // namespace kinfer::cuda
