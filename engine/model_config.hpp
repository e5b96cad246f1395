#pragma once
// The hyperparameters of a llama-architecture model, read from a GGUF file's `llama.*` metadata keys.
// A plain struct: everything the graph needs to size buffers and run a forward pass.
#include <cstdint>
#include <string>

namespace kinfer::gguf {
class GgufFile;
}

namespace kinfer::engine {

struct ModelConfig {
    std::string arch;         // general.architecture (only "llama" is supported)
    std::string name;         // general.name, for messages ("" when absent)
    int64_t n_vocab = 0;      // rows of token_embd.weight (llama.vocab_size must agree when present)
    int64_t n_ctx_train = 0;  // llama.context_length: the longest context the model was trained for
    int64_t n_embd = 0;       // llama.embedding_length: width of the residual stream
    int64_t n_layer = 0;      // llama.block_count: number of transformer blocks
    int64_t n_ff = 0;         // llama.feed_forward_length: hidden width of the SwiGLU FFN
    int64_t n_head = 0;       // llama.attention.head_count: query heads
    int64_t n_head_kv = 0;    // llama.attention.head_count_kv: key/value heads (GQA); defaults to n_head
    int64_t head_dim = 0;     // llama.attention.key_length (= value_length), default n_embd / n_head
    int64_t n_rot = 0;  // llama.rope.dimension_count: dims of each head RoPE rotates; defaults to head_dim
    float rms_eps = 1e-5f;            // llama.attention.layer_norm_rms_epsilon
    float rope_freq_base = 10000.0f;  // llama.rope.freq_base (theta)
    float rope_freq_scale = 1.0f;     // 1 / linear scaling factor (llama.rope.scaling.factor or scale_linear)
    int64_t sliding_window = 0;  // llama.attention.sliding_window: attend to at most this many positions;
                                 // 0 = unlimited (Mistral v0.1 files set 4096)

    int64_t n_embd_kv() const { return n_head_kv * head_dim; }  // width of one K (or V) row in the cache
};

// Reads and validates the hyperparameters. Throws FormatError naming the file and the key at fault
// (missing key, out-of-range value, inconsistent dimensions, unsupported architecture or rope scaling).
// n_vocab is taken from token_embd.weight when the tensor exists, else from llama.vocab_size or the
// tokenizer's token list.
ModelConfig read_model_config(const gguf::GgufFile& file);

}  // namespace kinfer::engine
