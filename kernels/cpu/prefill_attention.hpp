#pragma once
// Causal attention of a prompt (many queries at once) against a layer's KV cache, tiled like a matrix
// product: per task, one KV head and a tile of query tokens (all query heads of that KV head's group).
// Keys and values are read in chunks, converted once per task to float (keys transposed, so one vector
// load holds one dimension of several keys), and the softmax runs online over the chunks (a running
// maximum and sum per query row), so the scratch stays small whatever the context length.
//
// Same contract as cpu::attention (simple_ops.hpp): q and out are [n_tokens][n_head * head_dim], k and v
// [n_ctx][n_head_kv * head_dim] fp16 or float with positions 0 .. pos0 + n_tokens - 1 filled; query head h
// reads KV head h / (n_head / n_head_kv); the query at position p sees max(0, p - window + 1) .. p.
#include <cstdint>

#include "kernels/cpu/prefill_table.hpp"
#include "kernels/cpu/quant_matmul.hpp"

namespace kinfer::cpu {

class ThreadPool;

// Token counts from which cpu::attention takes this path. Below, the per-query path is about as fast, and
// it is the decode path's: an input shorter than the matmuls' prefill threshold (kPrefillMinTokens) then runs
// the decode path throughout, so a sequence's result has the same bits whether its tokens come alone, in
// smaller steps or beside other sequences (the decode matmul rounds its activation to int8 terms, which
// would turn this path's different summation order into visible differences).
inline constexpr int64_t kPromptAttentionMinTokens = kPrefillMinTokens;

struct PromptAttention {
    const float* q;
    int64_t n_tokens, pos0;
    const void* k;
    const void* v;
    bool kv_f16;
    int64_t n_head, n_head_kv, head_dim;
    float scale;
    int64_t window;
    float* out;
};

// Whether prompt_attention can run `a` at level `isa` (AVX2+FMA+F16C, on this CPU; head_dim a multiple of 8).
bool prompt_attention_supported(const PromptAttention& a, Isa isa = active_isa());

// The independent tasks of `a` (each writes its own rows of out), and one task on the calling thread
// (thread-safe; scratch per thread grows once, then never allocates). Tasks are numbered so that the
// largest come first (dynamic scheduling balances the causal triangle).
int64_t prompt_attention_tasks(const PromptAttention& a);
void prompt_attention_task(const PromptAttention& a, int64_t task);

// All tasks on `pool` (null: the calling thread). The result does not depend on the thread count.
void prompt_attention(const PromptAttention& a, ThreadPool* pool);

}  // namespace kinfer::cpu
