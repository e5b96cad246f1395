#pragma once
// Converts a Hugging Face Mistral / Llama checkpoint folder (config.json, *.safetensors, tokenizer.json,
// tokenizer_config.json) to a GGUF file of the "llama" architecture that kinfer and llama.cpp load: the
// llama.* hyperparameter keys, the tokenizer and chat template, and every weight renamed
// (model.layers.N.self_attn.q_proj.weight -> blk.N.attn_q.weight, ...). The Q and K projections' rows are
// permuted from transformers' rotate-half RoPE layout to the interleaved pairs GGUF's llama RoPE expects.
// Weights are read from the mapped safetensors row by row and written as the file type asks (F32, F16, BF16,
// or a quantized mix chosen by filetools/quant_recipe.hpp), so memory stays small whatever the model's size.
#include <string>
#include <vector>

#include "convert/hf_config.hpp"
#include "filetools/quant_recipe.hpp"
#include "filetools/row_stream.hpp"

namespace kinfer::convert {

// One GGUF tensor and where its rows come from.
struct TensorMapping {
    std::string gguf_name;
    std::string hf_name;
    std::vector<uint64_t> hf_shape;  // what config.json implies, row-major
    uint32_t permute_heads = 0;      // > 0: RoPE row permutation with this many heads
};

// The tensors a model with this config has, in the order they are written. Tied embeddings: no output.
std::vector<TensorMapping> llama_tensor_mappings(const HfConfig& config);

// GGUF row `row` of a RoPE-permuted projection comes from this checkpoint row (head_dim even).
uint64_t rope_permuted_source_row(uint64_t row, uint64_t head_dim);

struct ConvertSummary {
    HfConfig config;
    size_t n_tensors = 0;
    uint64_t n_elements = 0;
    uint64_t in_tensor_bytes = 0;
    uint64_t out_tensor_bytes = 0;
    uint64_t out_file_bytes = 0;
    size_t n_fallback = 0;
    size_t n_vocab_tokens = 0;
};

struct ConvertOptions {
    FileType ftype = FileType::MOSTLY_F16;
    std::string name;  // general.name; "" = the folder's name
};

// Converts `model_dir` to `out_path` (written as out_path.part, renamed at the end; nothing is left behind on
// failure). Throws FormatError naming the file and key or tensor for anything unsupported or inconsistent:
// an unknown architecture, a missing or extra tensor, a shape that does not match config.json, a tensor
// that is not F32/F16/BF16, a tokenizer kinfer cannot represent.
ConvertSummary convert_hf_to_gguf(const std::string& model_dir, const std::string& out_path,
                                  const ConvertOptions& options, const ProgressFn& progress = {});

}  // namespace kinfer::convert
