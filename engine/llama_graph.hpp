#pragma once
// The llama forward pass, written once over a backend's ops: embedding, then per layer
// RMSNorm -> Q/K/V -> RoPE -> KV cache -> causal GQA attention -> output projection -> residual ->
// RMSNorm -> gate/up -> SwiGLU -> down -> residual; then the final norm and the LM head on the rows that
// want logits. All tokens of a batch (of any number of sequences) go through each layer together as one
// matrix, so each weight is read once per step.
//
// A backend reuses it by providing `Ops` (static dispatch: one call per op and layer, never per element):
//   using Weight = ...;                                   its handle of one tensor
//   LlamaMats mats(int64_t n);                            activation matrices for n tokens
//   void embed(const Weight&, std::span<const int32_t> ids, Mat out);
//   void rmsnorm(Mat x, const Weight& w, Mat out);        out may be x
//   void matmuls(Mat x, std::initializer_list<MatmulOut<Weight>>);   every out = W x, one shared input
//   void rope(Mat q, Mat k);                              at the batch's positions
//   void kv_store(int64_t layer, Mat k, Mat v);           into each token's cache at its position
//   void attention(int64_t layer, Mat q, Mat out);        causal, over each token's own cache
//   void swiglu(Mat gate, Mat up, Mat out);               out = silu(gate) * up; out may be gate
//   void add(Mat x, Mat y);                               x += y
//   void gather_rows(Mat x, std::span<const int32_t> rows, Mat out);   out[i] = x[rows[i]]
//   void logits(const Weight& w, Mat x, float* host);     host = W x, in host memory
// The ops know the batch they serve (positions, caches); the graph only sequences them. Fusing backends
// implement several of these in one kernel (matmuls shares one activation preparation) or replace the graph.
#include <cstdint>
#include <initializer_list>
#include <span>

#include "engine/backend.hpp"
#include "engine/model_config.hpp"
#include "engine/model_weights.hpp"

namespace kinfer::engine {

// A rows x cols float32 matrix in a backend's memory, row-major and contiguous. A view; owns nothing.
struct Mat {
    float* data = nullptr;
    int64_t rows = 0;
    int64_t cols = 0;

    Mat first_rows(int64_t n) const { return {data, n, cols}; }
    Mat row_range(int64_t first, int64_t n) const { return {data + first * cols, n, cols}; }
    int64_t size() const { return rows * cols; }
};

// The activations of one step, each with one row per token.
struct LlamaMats {
    Mat x;     // [n][n_embd] residual stream
    Mat xn;    // [n][n_embd] normalised input of a sublayer
    Mat q;     // [n][n_head * head_dim]
    Mat k, v;  // [n][n_embd_kv]
    Mat att;   // [n][n_head * head_dim] attention output
    Mat proj;  // [n][n_embd] sublayer output before the residual add
    Mat gate;  // [n][n_ff] (holds silu(gate) * up after swiglu)
    Mat up;    // [n][n_ff]
};

template <class W>
struct MatmulOut {
    const W& w;
    Mat out;
};

template <class Ops>
void llama_forward(Ops& ops, const ModelConfig& c, const ModelTensors<typename Ops::Weight>& w,
                   const Batch& batch, float* logits) {
    using Out = MatmulOut<typename Ops::Weight>;
    const int64_t n = batch.size();
    const LlamaMats m = ops.mats(n);

    ops.embed(w.token_embd, batch.tokens, m.x);
    for (int64_t il = 0; il < c.n_layer; ++il) {
        const auto& l = w.layers[static_cast<size_t>(il)];
        // attention block
        ops.rmsnorm(m.x, l.attn_norm, m.xn);
        ops.matmuls(m.xn, {Out{l.wq, m.q}, Out{l.wk, m.k}, Out{l.wv, m.v}});
        ops.rope(m.q, m.k);
        ops.kv_store(il, m.k, m.v);
        ops.attention(il, m.q, m.att);
        ops.matmuls(m.att, {Out{l.wo, m.proj}});
        ops.add(m.x, m.proj);
        // feed-forward block
        ops.rmsnorm(m.x, l.ffn_norm, m.xn);
        ops.matmuls(m.xn, {Out{l.w_gate, m.gate}, Out{l.w_up, m.up}});
        ops.swiglu(m.gate, m.up, m.gate);
        ops.matmuls(m.gate, {Out{l.w_down, m.proj}});
        ops.add(m.x, m.proj);
    }
    if (batch.outputs.empty()) return;
    const Mat rows = m.xn.first_rows(static_cast<int64_t>(batch.outputs.size()));
    ops.gather_rows(m.x, batch.outputs, rows);
    ops.rmsnorm(rows, w.output_norm, rows);
    ops.logits(w.output, rows, logits);
}

}  // namespace kinfer::engine
