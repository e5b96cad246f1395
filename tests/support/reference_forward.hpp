#pragma once
// A float64 reference forward pass of a llama-architecture GGUF model, for tests only. It is the truth that
// both kinfer's engine and llama.cpp are measured against, so it is written to be obviously right rather than
// fast: weights are dequantized with the scalar reference (ref::dequantize_fn(type)),
// every activation is a double, and each step of the layer is a separate plain loop.
//
// Conventions (checked against llama.cpp's llm_build_llama and ggml's CPU rope, see the .cpp):
//   x = token_embd[id]
//   per layer: h = x + Wo · attn(rope(Wq · n), rope(Wk · n), Wv · n)   with n = rmsnorm(x) * attn_norm
//              x = h + Wdown · (silu(Wgate · m) * (Wup · m))             with m = rmsnorm(h) * ffn_norm
//   logits = output · (rmsnorm(x) * output_norm)      (output = token_embd when output.weight is absent)
// RoPE is ggml's "normal" mode: adjacent pairs (x[2i], x[2i+1]) of each head turn by pos * base^(-2i/n_rot).
// Attention is causal; query head h reads kv head h / (n_head / n_head_kv); scores are scaled by
// 1/sqrt(head_dim).
#include <cstdint>
#include <span>
#include <vector>

#include "gguf/gguf_file.hpp"
#include "kernels/reference/type_kernels.hpp"

namespace kinfer::testing {

// Hyperparameters as the reference reads them from llama.* metadata.
struct RefConfig {
    int64_t n_vocab = 0;
    int64_t n_embd = 0;
    int64_t n_layer = 0;
    int64_t n_head = 0;
    int64_t n_head_kv = 0;
    int64_t head_dim = 0;  // llama.attention.key_length, default n_embd / n_head
    int64_t n_ff = 0;
    int64_t n_rot = 0;             // llama.rope.dimension_count, default head_dim
    double rope_base = 10000.0;    // llama.rope.freq_base
    double rope_freq_scale = 1.0;  // 1 / llama.rope.scaling.factor (linear scaling only)
    double rms_eps = 1e-5;         // llama.attention.layer_norm_rms_epsilon
};

// Reads and checks the hyperparameters; throws FormatError for anything the reference does not model
// (another architecture, YaRN/LongRoPE scaling, rope_freqs tensors, ...).
RefConfig read_ref_config(const gguf::GgufFile& file);

// ---- building blocks, public so that they can be tested on their own ----

// Row `row` of a tensor, dequantized by the type table's scalar reference and widened to double.
std::vector<double> dequantize_row_f64(const gguf::TensorView& tensor, uint64_t row);

// y[t][r] = sum_i W[r][i] * x[t][i] for t < n_tokens, where W has W.ne[1] rows of length W.ne[0] and x holds
// n_tokens rows of length W.ne[0] back to back. Returns n_tokens rows of length W.ne[1].
std::vector<double> matmul_f64(const gguf::TensorView& w, std::span<const double> x, int64_t n_tokens);

// x = x / sqrt(mean(x^2) + eps) * weight, in place; weight.size() == x.size().
void rms_norm(std::span<double> x, std::span<const double> weight, double eps);

// Rotates the adjacent pairs (x[2i], x[2i+1]), i < n_rot / 2, of one head by the angle
// pos * freq_scale * base^(-2i / n_rot); elements from n_rot on are left alone.
void rope_adjacent_pairs(std::span<double> head, int64_t n_rot, int64_t pos, double base, double freq_scale);

// Causal multi-head attention over a whole sequence. q: n_tokens rows of n_head * head_dim; k, v: n_tokens
// rows of n_head_kv * head_dim. Query token t attends to tokens 0..t; query head h uses kv head
// h / (n_head / n_head_kv). Returns n_tokens rows of n_head * head_dim.
std::vector<double> causal_attention(std::span<const double> q, std::span<const double> k,
                                     std::span<const double> v, int64_t n_tokens, int64_t n_head,
                                     int64_t n_head_kv, int64_t head_dim);

// silu(gate) * up, element by element.
std::vector<double> swiglu(std::span<const double> gate, std::span<const double> up);

// ---- the whole model ----

class ReferenceForward {
  public:
    // Keeps a reference to `file`, which must outlive this object. Only the small norm weights are copied.
    explicit ReferenceForward(const gguf::GgufFile& file);

    const RefConfig& config() const { return cfg_; }

    // Runs the prompt `tokens` (placed at positions pos0, pos0 + 1, ...) and returns n_vocab logits for each
    // index listed in `logit_rows` (indices into `tokens`; every index when empty), in that order.
    std::vector<std::vector<double>> logits(std::span<const int32_t> tokens,
                                            std::span<const int64_t> logit_rows = {}, int64_t pos0 = 0) const;

  private:
    struct Layer {
        const gguf::TensorView* wq;
        const gguf::TensorView* wk;
        const gguf::TensorView* wv;
        const gguf::TensorView* wo;
        const gguf::TensorView* w_gate;
        const gguf::TensorView* w_up;
        const gguf::TensorView* w_down;
        std::vector<double> attn_norm;
        std::vector<double> ffn_norm;
    };

    const gguf::GgufFile& file_;
    RefConfig cfg_;
    const gguf::TensorView* token_embd_;
    const gguf::TensorView* output_;
    std::vector<double> output_norm_;
    std::vector<Layer> layers_;
};

// ---- measuring against the truth ----

// max_i |got[i] - truth[i]| / (max(truth) - min(truth)): the error of one position's logits relative to the
// spread of the true logits, so that it is comparable across models and positions.
double relative_logit_error(std::span<const float> got, std::span<const double> truth);

// Index of the largest value (the first one on ties).
int64_t argmax(std::span<const double> v);
int64_t argmax(std::span<const float> v);

}  // namespace kinfer::testing
