#pragma once
// Views of a llama model's weight tensors inside the mapped GGUF file: one pointer per tensor, shapes and
// types checked once at load, data never copied.
#include <vector>

#include "engine/model_config.hpp"
#include "gguf/gguf_file.hpp"

namespace kinfer::engine {

// The tensors of one layer, as any backend holds them: W is a file view here, a backend's own handle
// (kernels resolved, device pointer) in the backends.
template <class W>
struct LayerTensors {
    W attn_norm;  // [n_embd] f32
    W wq;         // [n_embd -> n_head * head_dim]
    W wk;         // [n_embd -> n_embd_kv]
    W wv;         // [n_embd -> n_embd_kv]
    W wo;         // [n_head * head_dim -> n_embd]
    W ffn_norm;   // [n_embd] f32
    W w_gate;     // [n_embd -> n_ff]
    W w_up;       // [n_embd -> n_ff]
    W w_down;     // [n_ff -> n_embd]

    // The same layer with every tensor mapped through f.
    template <class F>
    auto map(F&& f) const -> LayerTensors<decltype(f(attn_norm))> {
        return {f(attn_norm), f(wq), f(wk), f(wv), f(wo), f(ffn_norm), f(w_gate), f(w_up), f(w_down)};
    }
};

template <class W>
struct ModelTensors {
    W token_embd;   // [n_embd, n_vocab]: one row per token, any readable type
    W output_norm;  // [n_embd] f32
    W output;       // [n_embd -> n_vocab]; the same tensor as token_embd when the embeddings are tied
    std::vector<LayerTensors<W>> layers;

    template <class F>
    auto map(F&& f) const -> ModelTensors<decltype(f(token_embd))> {
        ModelTensors<decltype(f(token_embd))> out{f(token_embd), f(output_norm), f(output), {}};
        out.layers.reserve(layers.size());
        for (const auto& l : layers) out.layers.push_back(l.map(f));
        return out;
    }
};

using LayerWeights = LayerTensors<const gguf::TensorView*>;

// The model's tensors as views into the mapped file.
struct ModelWeights : ModelTensors<const gguf::TensorView*> {
    const gguf::TensorView* rope_freqs =
        nullptr;                   // [n_rot / 2] f32 per-frequency divisors (Llama 3), or null
    bool tied_embeddings = false;  // output.weight absent: the LM head reuses token_embd
};

// Finds every tensor the llama graph needs and checks it. Throws FormatError when tensors are missing
// (listing every missing name with its expected shape), have the wrong shape, have a type kinfer cannot
// read (naming tensor and type), or when the file holds tensors the llama graph would ignore (such as
// biases or mixture-of-experts tensors), since ignoring them would silently compute the wrong model.
ModelWeights bind_model_weights(const gguf::GgufFile& file, const ModelConfig& config);

}  // namespace kinfer::engine
