#pragma once
// Synthetic Llama/Mistral-architecture models: the tensor table and metadata of a real model, with seeded
// random weights scaled like a trained network's, for tests and benchmarks where no real model can be
// downloaded. The same parameters and seed always give the same bytes; the tensor types follow the same
// recipes as `infer quantize` (filetools/quant_recipe.hpp).
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "filetools/quant_recipe.hpp"
#include "filetools/row_stream.hpp"

namespace kinfer::gguf {
class GgufFile;
}

namespace kinfer {

struct SynthParams {
    std::string name = "kinfer-synth";  // general.name
    uint32_t n_embd = 256;
    uint32_t n_layer = 4;
    uint32_t n_head = 4;
    uint32_t n_head_kv = 2;
    uint32_t n_ff = 768;
    uint32_t n_vocab = 0;  // 0: as many as the vocabulary has
    uint32_t n_ctx = 2048;
    uint32_t n_rot = 0;  // rope dimensions; 0: the head size
    float rope_base = 10000.0f;
    float norm_eps = 1e-5f;
    uint64_t seed = 0;
    FileType file_type = FileType::MOSTLY_Q4_K_M;

    uint32_t head_dim() const { return n_head ? n_embd / n_head : 0; }
    // Throws UsageError naming the first inconsistent hyperparameter.
    void validate() const;
};

// Presets by name ("tiny", "mistral-7b"); throws UsageError listing the known names.
SynthParams synth_preset(std::string_view name);
std::vector<std::string_view> synth_preset_names();

// How a tensor's values are drawn: each row independently, mean `mean`, standard deviation `stddev`;
// `row_spread` > 0 also multiplies each row by exp(row_spread * N(0,1)) (output matrix: frequent tokens).
struct WeightInit {
    float mean = 0;
    float stddev = 0;
    float row_spread = 0;
};

struct SynthTensor {
    std::string name;
    std::array<uint64_t, 4> ne{1, 1, 1, 1};
    uint32_t n_dims = 1;
    GgmlType type = GgmlType::F32;
    std::optional<GgmlType> wanted;  // the recipe's choice when `type` is a fallback
    WeightInit init;
};

// The tensor table of the model in the order llama.cpp's converter writes a Llama/Mistral model: token_embd,
// then per block attn_q, attn_k, attn_v, attn_output, ffn_gate, ffn_up, ffn_down, attn_norm, ffn_norm, then
// output_norm and output; with the types the recipe of p.file_type gives them. `n_vocab` overrides p.n_vocab
// (which may be 0).
std::vector<SynthTensor> plan_synth_tensors(const SynthParams& p, uint32_t n_vocab);

// Draws row `row` of a tensor: deterministic in (seed, tensor name, row), independent of threads.
void synth_fill_row(uint64_t seed, std::string_view tensor_name, const WeightInit& init, uint64_t row,
                    float* out, uint64_t n);

// The model's vocabulary size: the vocabulary file's token count (p.n_vocab must be 0 or equal to it), or
// p.n_vocab for the built-in vocabulary (at least 259). Throws UsageError otherwise.
uint32_t synth_vocab_size(const SynthParams& p, const gguf::GgufFile* vocab);

// Where the tokenizer comes from: a GGUF file whose tokenizer.* keys are copied, or (null) a small built-in
// byte-fallback vocabulary of p.n_vocab tokens (at least 259: <unk>, <s>, </s> and 256 byte tokens).
struct SynthSummary {
    size_t n_tensors = 0;
    uint64_t n_elements = 0;
    uint64_t tensor_bytes = 0;
    uint64_t file_bytes = 0;
    uint32_t n_vocab = 0;
};
SynthSummary write_synth_model(const SynthParams& p, const gguf::GgufFile* vocab, const std::string& path,
                               const ProgressFn& progress = {});

}  // namespace kinfer
