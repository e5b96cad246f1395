#pragma once
// The hyperparameters of a Hugging Face Mistral / Llama checkpoint, from its config.json as older and current
// transformers versions write it: rope_theta at the top level or inside rope_parameters, head_dim given or
// implied, torch_dtype or dtype, eos_token_id a number or a list.
#include <cstdint>
#include <optional>
#include <string>

namespace kinfer::convert {

struct HfConfig {
    std::string path;          // config.json, for messages
    std::string architecture;  // "MistralForCausalLM" or "LlamaForCausalLM"
    uint32_t n_vocab = 0;
    uint32_t n_embd = 0;
    uint32_t n_ff = 0;
    uint32_t n_layer = 0;
    uint32_t n_head = 0;
    uint32_t n_head_kv = 0;
    uint32_t head_dim = 0;
    bool head_dim_given = false;  // config.json names head_dim (it may differ from n_embd / n_head)
    uint32_t n_ctx_train = 0;
    double rms_norm_eps = 1e-5;
    double rope_theta = 10000.0;
    bool tie_word_embeddings = false;
    std::string dtype;  // "bfloat16", ... ("" if not given); informational
    std::optional<int64_t> bos_token_id, eos_token_id;

    // Reads and validates `path`. Throws FormatError naming the file and key for anything kinfer cannot
    // convert (another architecture, rope scaling, biases, an activation other than SiLU, ...).
    static HfConfig read(const std::string& path);
    static HfConfig parse(const std::string& json_text, const std::string& path);
};

}  // namespace kinfer::convert
