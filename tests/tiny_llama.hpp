#pragma once
// Test helper: builds small llama-architecture GGUF models with random weights, in memory or on disk,
// and keeps the weights (as stored, i.e. after quantization) as floats for reference computations.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "gguf/ggml_type.hpp"
#include "gguf/gguf_file.hpp"

namespace kinfer::test {

struct TinyLlamaSpec {
    int64_t n_vocab = 96;  // ignored when `vocab` is given (its token count is used)
    int64_t n_embd = 32;
    int64_t n_layer = 2;
    int64_t n_ff = 48;
    int64_t n_head = 4;
    int64_t n_head_kv = 2;
    int64_t n_rot = 0;     // 0: the head size
    int64_t head_dim = 0;  // 0: n_embd / n_head; else written as attention.key_length and value_length
    int64_t n_ctx_train = 256;
    float rms_eps = 1e-5f;
    float rope_base = 10000.0f;
    float rope_linear_factor = 0.0f;       // written as llama.rope.scaling.{type,factor} when > 0
    int64_t sliding_window = 0;            // written when > 0
    GgmlType weight_type = GgmlType::F32;  // 2-D weights; norms stay f32
    GgmlType embd_type = GgmlType::F32;
    bool tied = false;  // omit output.weight
    uint64_t seed = 1;
    float weight_scale = 1.0f;  // multiplies the random weights (larger: peakier logits)
    float embd_scale = 0.0f;    // token_embd values in [-embd_scale, embd_scale]; 0: like the other weights
    std::string arch = "llama";
    const gguf::GgufFile* vocab = nullptr;         // copy tokenizer.* metadata from this file
    std::vector<std::string> skip_tensors;         // leave these out (error tests)
    std::vector<std::string> skip_keys;            // leave these metadata keys out
    std::map<std::string, int64_t> override_ints;  // replace/add integer metadata (error tests)
};

struct TinyLlama {
    TinyLlamaSpec spec;
    std::map<std::string, std::vector<float>> weights;  // every tensor, dequantized from what was written
    std::vector<uint8_t> bytes;                         // the GGUF file
};

TinyLlama build_tiny_llama(TinyLlamaSpec spec);
// Writes the model to `path` and returns it (for CLI tests).
TinyLlama write_tiny_llama(const TinyLlamaSpec& spec, const std::string& path);

// The Mistral v0.3 vocabulary committed in data/vocab, or null when it is missing (tests then fail).
const gguf::GgufFile* shared_mistral_vocab();
// A small model with the Mistral v0.3 vocabulary and chat template (n_embd 64, 2 layers, tied embeddings,
// f32), built once per test run and written to a temporary file that is removed at exit. Null / "" when
// the shared vocabulary is missing.
const TinyLlama* vocab_model();
const std::string& vocab_model_path();

// A unique temporary file path (removed by the caller).
std::string temp_path(const std::string& stem);

}  // namespace kinfer::test
