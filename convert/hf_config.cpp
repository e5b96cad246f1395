#include "convert/hf_config.hpp"

#include "convert/json_file.hpp"
#include "kinfer/error.hpp"

namespace kinfer::convert {

using nlohmann::json;

namespace {

constexpr const char* kSupported = "MistralForCausalLM, LlamaForCausalLM";

std::string architecture_of(const json& j, const std::string& path) {
    if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty()) {
        for (const auto& a : j["architectures"])
            if (a.is_string() && (a == "MistralForCausalLM" || a == "LlamaForCausalLM"))
                return a.get<std::string>();
        throw FormatError(path + ": architecture " + j["architectures"].dump() +
                          " is not supported (kinfer converts " + kSupported + ")");
    }
    if (j.contains("model_type") && j["model_type"] == "mistral") return "MistralForCausalLM";
    if (j.contains("model_type") && j["model_type"] == "llama") return "LlamaForCausalLM";
    throw FormatError(path +
                      ": names no architecture (\"architectures\" or \"model_type\"); kinfer converts " +
                      kSupported);
}

std::optional<int64_t> token_id(const json& j, const char* key) {
    if (!j.contains(key)) return std::nullopt;
    const json& v = j[key];
    if (v.is_number_integer()) return v.get<int64_t>();
    if (v.is_array() && !v.empty() && v[0].is_number_integer()) return v[0].get<int64_t>();  // the first EOS
    return std::nullopt;
}

}  // namespace

HfConfig HfConfig::read(const std::string& path) {
    return parse(read_text_file(path), path);
}

HfConfig HfConfig::parse(const std::string& json_text, const std::string& path) {
    json j;
    try {
        j = json::parse(json_text);
    } catch (const json::exception& e) {
        throw FormatError(path + ": not valid JSON: " + e.what());
    }
    if (!j.is_object()) throw FormatError(path + ": not a JSON object");
    // Some checkpoints (multimodal wrappers) nest the language model's settings in text_config.
    const json& top = j;
    const json& t = j.contains("text_config") && j["text_config"].is_object() ? j["text_config"] : j;
    const JsonFields f(t, path);

    HfConfig c;
    c.path = path;
    c.architecture = architecture_of(top, path);
    c.n_vocab = f.count("vocab_size");
    c.n_embd = f.count("hidden_size");
    c.n_ff = f.count("intermediate_size");
    c.n_layer = f.count("num_hidden_layers", {}, 4096);
    c.n_head = f.count("num_attention_heads", {}, 4096);
    c.n_head_kv = f.count("num_key_value_heads", c.n_head, 4096);
    if (c.n_head % c.n_head_kv != 0)
        f.fail("num_key_value_heads",
               "= " + std::to_string(c.n_head_kv) +
                   " does not divide num_attention_heads = " + std::to_string(c.n_head));
    c.head_dim_given = f.has("head_dim");
    if (c.head_dim_given) {
        c.head_dim = f.count("head_dim", {}, 1u << 16);
    } else {
        if (c.n_embd % c.n_head != 0)
            f.fail("hidden_size", "= " + std::to_string(c.n_embd) +
                                      " is not a multiple of num_attention_heads = " +
                                      std::to_string(c.n_head) + " (and no head_dim is given)");
        c.head_dim = c.n_embd / c.n_head;
    }
    if (c.head_dim % 2 != 0)
        f.fail("head_dim", "= " + std::to_string(c.head_dim) + " is odd; RoPE needs pairs");
    c.n_ctx_train = f.count("max_position_embeddings", 4096u);
    c.rms_norm_eps = f.number("rms_norm_eps", 1e-5);
    if (!(c.rms_norm_eps > 0 && c.rms_norm_eps < 1)) f.fail("rms_norm_eps", "is not in (0, 1)");
    c.tie_word_embeddings = f.boolean("tie_word_embeddings", false);

    // RoPE: transformers 5 writes {"rope_parameters": {"rope_type": "default", "rope_theta": ...}}, 4.x a
    // top-level rope_theta and an optional rope_scaling. Only plain RoPE is supported.
    c.rope_theta = f.number("rope_theta", 10000.0);
    for (const char* key : {"rope_parameters", "rope_scaling"}) {
        if (!f.has(key)) continue;
        const json& r = t[key];
        if (!r.is_object()) f.fail(key, "is " + r.dump() + ", not an object");
        const JsonFields rf(r, path + ": " + key);
        const std::string type =
            r.contains("rope_type") ? rf.string("rope_type") : rf.string("type", "default");
        if (type != "default")
            f.fail(key, "has rope_type \"" + type + "\"; kinfer converts only plain RoPE (\"default\")");
        if (rf.has("rope_theta")) c.rope_theta = rf.number("rope_theta");
    }
    if (!(c.rope_theta > 0)) f.fail("rope_theta", "is not positive");

    const std::string act = f.string("hidden_act", "silu");
    if (act != "silu") f.fail("hidden_act", "is \"" + act + "\"; the llama architecture uses silu");
    for (const char* key : {"attention_bias", "mlp_bias"})
        if (f.boolean(key, false))
            f.fail(key, "is true; biases are not part of the llama architecture kinfer converts");
    c.dtype = f.string("torch_dtype", f.string("dtype", ""));
    c.bos_token_id = token_id(t, "bos_token_id");
    if (!c.bos_token_id) c.bos_token_id = token_id(top, "bos_token_id");
    c.eos_token_id = token_id(t, "eos_token_id");
    if (!c.eos_token_id) c.eos_token_id = token_id(top, "eos_token_id");
    return c;
}

}  // namespace kinfer::convert
