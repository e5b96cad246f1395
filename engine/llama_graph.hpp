#pragma once
// The llama forward pass, written once against the Backend interface: embedding, then per layer
// RMSNorm -> Q/K/V -> RoPE -> KV cache -> causal GQA attention -> output projection -> residual ->
// RMSNorm -> SwiGLU FFN -> residual; then the final norm and the LM head on the rows that need logits.
// All tokens of a batch go through each layer together as one matrix (batched prefill).
#include <cstdint>
#include <span>

#include "engine/backend.hpp"
#include "engine/kv_cache.hpp"
#include "engine/model.hpp"

namespace kinfer::engine {

// The activation matrices of one session, allocated once in backend memory for n_batch tokens.
struct Activations {
    Activations(Backend& backend, const ModelConfig& config, int64_t n_batch);
    // Makes room for logits of `rows` rows (allocates only when growing past what it had).
    void reserve_logits(Backend& backend, int64_t rows);

    int64_t n_batch;
    int64_t n_vocab;
    DeviceBuffer x;       // [n_batch][n_embd] residual stream
    DeviceBuffer xn;      // [n_batch][n_embd] normalised input of a sublayer
    DeviceBuffer q;       // [n_batch][n_head * head_dim]
    DeviceBuffer k, v;    // [n_batch][n_embd_kv]
    DeviceBuffer att;     // [n_batch][n_head * head_dim] attention output
    DeviceBuffer proj;    // [n_batch][n_embd] sublayer output before the residual add
    DeviceBuffer gate;    // [n_batch][n_ff] (holds silu(gate) * up after swiglu)
    DeviceBuffer up;      // [n_batch][n_ff]
    DeviceBuffer logits;  // [logits_rows][n_vocab]
    int64_t logits_rows = 0;
};

// Runs `tokens` (at most act.n_batch, already range-checked) at positions pos0 .. through the model,
// storing their keys and values in `cache`. When n_out > 0, act.logits receives the logits of the last
// n_out tokens (row i = token tokens.size() - n_out + i); reserve_logits(n_out) must have been called.
void llama_forward(Backend& backend, const Model& model, KvCache& cache, Activations& act,
                   std::span<const int32_t> tokens, int64_t pos0, int64_t n_out);

}  // namespace kinfer::engine
