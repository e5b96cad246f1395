#include "engine/model_config.hpp"

#include <cmath>
#include <string>

#include "gguf/gguf_file.hpp"
#include "kinfer/error.hpp"

namespace kinfer::engine {
namespace {

// Reads `llama.<suffix>` keys with messages that name the file and the full key.
class KeyReader {
  public:
    KeyReader(const gguf::GgufFile& file, std::string prefix) : file_(file), prefix_(std::move(prefix)) {}

    std::string key(std::string_view suffix) const { return prefix_ + "." + std::string(suffix); }
    bool has(std::string_view suffix) const { return file_.has(key(suffix)); }

    // An integer in [min, max]; `fallback` when the key is absent and fallback >= 0, else an error.
    int64_t integer(std::string_view suffix, int64_t min, int64_t max, int64_t fallback = -1) const {
        const std::string k = key(suffix);
        const gguf::Value* v = file_.find(k);
        if (!v) {
            if (fallback >= 0) return fallback;
            fail(k, "is missing (required for a llama model)");
        }
        if (v->is_array()) fail(k, "is an array; per-layer values are not supported");
        const int64_t x = file_.get<int64_t>(k);
        if (x < min || x > max)
            fail(k, "is " + std::to_string(x) + ", expected a value in [" + std::to_string(min) + ", " +
                        std::to_string(max) + "]");
        return x;
    }

    double number(std::string_view suffix, double fallback, bool required = false) const {
        const std::string k = key(suffix);
        if (!file_.has(k)) {
            if (required) fail(k, "is missing (required for a llama model)");
            return fallback;
        }
        const double x = file_.get<double>(k);
        if (!std::isfinite(x)) fail(k, "is not a finite number");
        return x;
    }

    [[noreturn]] void fail(const std::string& k, const std::string& what) const {
        throw FormatError(file_.path() + ": metadata key '" + k + "' " + what);
    }

  private:
    const gguf::GgufFile& file_;
    std::string prefix_;
};

constexpr int64_t kMaxDim = int64_t(1) << 20;  // far above any real model; keeps sizes from overflowing
constexpr int64_t kMaxLayers = 4096;
constexpr int64_t kMaxContext = int64_t(1) << 24;  // 16M positions
constexpr int64_t kMaxRot = 1024;                  // rotated dims per head (the RoPE kernel's stack tables)

int64_t vocab_size(const gguf::GgufFile& file, const KeyReader& keys) {
    if (const gguf::TensorView* t = file.find_tensor("token_embd.weight"))
        return static_cast<int64_t>(t->ne[1]);
    if (keys.has("vocab_size")) return keys.integer("vocab_size", 1, INT32_MAX);
    if (file.has("tokenizer.ggml.tokens"))
        return static_cast<int64_t>(file.get_array("tokenizer.ggml.tokens").count);
    throw FormatError(file.path() +
                      ": cannot tell the vocabulary size: no token_embd.weight tensor, no llama.vocab_size"
                      " and no tokenizer.ggml.tokens");
}

}  // namespace

ModelConfig read_model_config(const gguf::GgufFile& file) {
    ModelConfig c;
    if (!file.has("general.architecture"))
        throw FormatError(file.path() + ": missing metadata key 'general.architecture' (not a model file?)");
    c.arch = file.get<std::string>("general.architecture");
    if (c.arch != "llama")
        throw FormatError(file.path() + ": unsupported architecture '" + c.arch +
                          "' (general.architecture); kinfer supports: llama (Llama, Mistral)");
    c.name = file.get_or<std::string>("general.name", "");

    const KeyReader keys(file, c.arch);
    c.n_ctx_train = keys.integer("context_length", 1, kMaxContext);
    c.n_embd = keys.integer("embedding_length", 1, kMaxDim);
    c.n_layer = keys.integer("block_count", 1, kMaxLayers);
    c.n_ff = keys.integer("feed_forward_length", 1, 4 * kMaxDim);
    c.n_head = keys.integer("attention.head_count", 1, kMaxDim);
    c.n_head_kv = keys.integer("attention.head_count_kv", 1, kMaxDim, c.n_head);

    // The head size: llama.attention.key_length when given (Mistral-Nemo-style models have
    // n_head * head_dim != n_embd: Q/K/V are n_head * head_dim wide, Wo maps that back to n_embd), else
    // n_embd / n_head as llama.cpp assumes.
    if (keys.has("attention.key_length")) {
        c.head_dim = keys.integer("attention.key_length", 1, kMaxDim);
    } else {
        if (c.n_embd % c.n_head != 0)
            keys.fail(keys.key("attention.head_count"),
                      "is " + std::to_string(c.n_head) + ", which does not divide embedding_length " +
                          std::to_string(c.n_embd) + " (and no attention.key_length gives the head size)");
        c.head_dim = c.n_embd / c.n_head;
    }
    if (keys.has("attention.value_length") &&
        keys.integer("attention.value_length", 1, kMaxDim) != c.head_dim)
        keys.fail(keys.key("attention.value_length"),
                  "is " + std::to_string(keys.integer("attention.value_length", 1, kMaxDim)) +
                      ", but the key head size is " + std::to_string(c.head_dim) +
                      " (different key and value head sizes are not supported)");
    if (c.n_head * c.head_dim > kMaxDim)
        keys.fail(keys.key("attention.key_length"), "is " + std::to_string(c.head_dim) + ": head_count * " +
                                                        "key_length is larger than " +
                                                        std::to_string(kMaxDim));
    if (c.n_head % c.n_head_kv != 0)
        keys.fail(keys.key("attention.head_count_kv"), "is " + std::to_string(c.n_head_kv) +
                                                           ", which does not divide head_count " +
                                                           std::to_string(c.n_head));
    c.n_rot = keys.integer("rope.dimension_count", 2, c.head_dim, c.head_dim);
    if (c.n_rot % 2 != 0 || c.n_rot > kMaxRot)
        keys.fail(
            keys.key("rope.dimension_count"),
            "is " + std::to_string(c.n_rot) + ", expected an even number <= " + std::to_string(kMaxRot));

    const double eps = keys.number("attention.layer_norm_rms_epsilon", 0.0, /*required=*/true);
    if (!(eps > 0.0 && eps < 1.0))
        keys.fail(keys.key("attention.layer_norm_rms_epsilon"),
                  "must be in (0, 1), is " + std::to_string(eps));
    c.rms_eps = static_cast<float>(eps);

    const double base = keys.number("rope.freq_base", 10000.0);
    if (!(base > 1.0)) keys.fail(keys.key("rope.freq_base"), "must be > 1, is " + std::to_string(base));
    c.rope_freq_base = static_cast<float>(base);

    // RoPE scaling: only linear (position interpolation) is supported.
    double factor = 1.0;
    std::string scaling = "linear";
    if (keys.has("rope.scaling.type")) scaling = file.get<std::string>(keys.key("rope.scaling.type"));
    if (scaling == "none") {
        factor = 1.0;
    } else if (scaling == "linear") {
        if (keys.has("rope.scaling.factor"))
            factor = keys.number("rope.scaling.factor", 1.0);
        else if (keys.has("rope.scale_linear"))
            factor = keys.number("rope.scale_linear", 1.0);
        if (factor == 0.0) factor = 1.0;  // converters write 0 for "no scaling"
        if (!(factor >= 1.0 / 1024 && factor <= 1024))
            keys.fail(keys.key(keys.has("rope.scaling.factor") ? "rope.scaling.factor" : "rope.scale_linear"),
                      "is " + std::to_string(factor) + ", expected a positive scaling factor");
    } else {
        keys.fail(keys.key("rope.scaling.type"),
                  "is '" + scaling + "'; only 'linear' and 'none' rope scaling are supported");
    }
    c.rope_freq_scale = static_cast<float>(1.0 / factor);

    c.sliding_window = keys.integer("attention.sliding_window", 0, kMaxContext, 0);

    c.n_vocab = vocab_size(file, keys);
    if (c.n_vocab < 1 || c.n_vocab > INT32_MAX)
        throw FormatError(file.path() + ": vocabulary size " + std::to_string(c.n_vocab) +
                          " is out of range");
    if (keys.has("vocab_size") && keys.integer("vocab_size", 1, INT32_MAX) != c.n_vocab)
        keys.fail(keys.key("vocab_size"), "is " + std::to_string(keys.integer("vocab_size", 1, INT32_MAX)) +
                                              ", but token_embd.weight has " + std::to_string(c.n_vocab) +
                                              " rows");
    return c;
}

}  // namespace kinfer::engine
