#pragma once
// The simple, correct CPU kernels behind CpuBackend: plain loops parallelised on the backend's thread pool
// over rows or ranges (never per element; a null pool, or one of one thread, runs them inline), float
// accumulation in several independent lanes (a pairwise-like order that keeps rounding error far below the
// quantization error), double where it is cheap (norms, RoPE angles, softmax sums). Activations are row-major
// float matrices: one row per token.
#include <cstddef>
#include <cstdint>

#include "gguf/ggml_type.hpp"
#include "kernels/cpu/quant_matmul.hpp"

namespace kinfer::cpu {

class ThreadPool;

// Multiply-adds below which a kernel runs on the calling thread alone.
inline constexpr int64_t kMinParallelWork = int64_t(1) << 20;
// Elements below which an elementwise op (add, swiglu, norms, rope) runs on the calling thread: waking a
// pool costs microseconds, and on a busy machine the caller can wait for a descheduled worker.
inline constexpr int64_t kMinParallelElements = int64_t(1) << 16;

// Dot product of two float vectors.
float dot(const float* a, const float* b, int64_t n);

// out[t] = x[t] / sqrt(mean(x[t]^2) + eps) * w, for n_rows rows of n elements (out may alias x).
void rmsnorm(const float* x, const float* w, float eps, int64_t n_rows, int64_t n, float* out,
             ThreadPool* pool);

// Rotary position embedding, GGUF/llama convention: within each head, adjacent pairs (x[2i], x[2i+1]) for
// i < n_rot/2 turn by angle pos * inv_freq[i]; dims past n_rot are untouched. Row t (of n_rows, each
// n_heads * head_dim floats at `row_stride` apart) has position pos[t].
void rope(float* x, int64_t n_rows, size_t row_stride, int64_t n_heads, int64_t head_dim, int64_t n_rot,
          const double* inv_freq, const int64_t* pos, ThreadPool* pool);

// Causal attention of n_tokens queries at positions pos0.. against a layer's KV cache. q and out are
// [n_tokens][n_head * head_dim]; k and v are [n_ctx][n_head_kv * head_dim] of fp16 (kv_f16) or float, with
// positions 0 .. pos0 + n_tokens - 1 filled. Query head h reads KV head h / (n_head / n_head_kv). Query at
// position p sees cache positions max(0, p - window + 1) .. p (window 0 = unlimited). scratch holds
// attention_scratch_floats(n_head, n_head_kv, pos0 + n_tokens, pool threads) floats. The work is split into
// tasks of one token and one KV head (with up to 8 of its query heads) on `pool`; `isa` picks the kernels
// (tests run every level). A head's result does not depend on the thread count.
void attention(const float* q, int64_t n_tokens, int64_t pos0, const void* k, const void* v, bool kv_f16,
               int64_t n_head, int64_t n_head_kv, int64_t head_dim, float scale, int64_t window, float* out,
               float* scratch, ThreadPool* pool, Isa isa = active_isa());
size_t attention_scratch_floats(int64_t n_head, int64_t n_head_kv, int64_t n_ctx, int n_threads);
// The scalar reference of attention() (dot products, softmax and sums in double), one thread; scores
// holds pos0 + n_tokens floats.
void attention_reference(const float* q, int64_t n_tokens, int64_t pos0, const void* k, const void* v,
                         bool kv_f16, int64_t n_head, int64_t n_head_kv, int64_t head_dim, float scale,
                         int64_t window, float* out, float* scores);

// out[i] = silu(gate[i]) * up[i] (out may alias gate).
void swiglu(const float* gate, const float* up, int64_t n, float* out, ThreadPool* pool);

// x[i] += y[i].
void add(float* x, const float* y, int64_t n, ThreadPool* pool);

// Converts n floats to the cache's storage (fp16 or float).
void store_row(const float* src, void* dst, int64_t n, bool f16);

}  // namespace kinfer::cpu
