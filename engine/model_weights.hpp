#pragma once
// Views of a llama model's weight tensors inside the mapped GGUF file: one pointer per tensor, shapes and
// types checked once at load, data never copied.
#include <vector>

#include "engine/model_config.hpp"
#include "gguf/gguf_file.hpp"

namespace kinfer::engine {

struct LayerWeights {
    const gguf::TensorView* attn_norm;  // [n_embd] f32
    const gguf::TensorView* wq;         // [n_embd -> n_head * head_dim]
    const gguf::TensorView* wk;         // [n_embd -> n_embd_kv]
    const gguf::TensorView* wv;         // [n_embd -> n_embd_kv]
    const gguf::TensorView* wo;         // [n_head * head_dim -> n_embd]
    const gguf::TensorView* ffn_norm;   // [n_embd] f32
    const gguf::TensorView* w_gate;     // [n_embd -> n_ff]
    const gguf::TensorView* w_up;       // [n_embd -> n_ff]
    const gguf::TensorView* w_down;     // [n_ff -> n_embd]
};

struct ModelWeights {
    const gguf::TensorView* token_embd;   // [n_embd, n_vocab]: one row per token, any readable type
    const gguf::TensorView* output_norm;  // [n_embd] f32
    const gguf::TensorView* output;       // [n_embd -> n_vocab]; == token_embd when the embeddings are tied
    const gguf::TensorView* rope_freqs;   // [n_rot / 2] f32 per-frequency divisors (Llama 3), or null
    bool tied_embeddings = false;         // output.weight absent: the LM head reuses token_embd
    std::vector<LayerWeights> layers;
};

// Finds every tensor the llama graph needs and checks it. Throws FormatError when tensors are missing
// (listing every missing name with its expected shape), have the wrong shape, have a type kinfer cannot
// read (naming tensor and type), or when the file holds tensors the llama graph would ignore (such as
// biases or mixture-of-experts tensors), since ignoring them would silently compute the wrong model.
ModelWeights bind_model_weights(const gguf::GgufFile& file, const ModelConfig& config);

}  // namespace kinfer::engine
