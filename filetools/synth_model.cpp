#include "filetools/synth_model.hpp"

#include <cmath>
#include <cstdio>

#include "gguf/gguf_file.hpp"
#include "gguf/gguf_writer.hpp"
#include "kinfer/error.hpp"

namespace kinfer {
namespace {

// ---- random numbers --------------------------------------------------------------------------------------
constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ull;

// splitmix64's output function: a bijective 64-bit mix, so mix(base + i * kGolden) is a counter-based stream
// that any thread can start at any element.
inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t hash_name(std::string_view s) {
    uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a
    for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
    return h;
}

// Approximately N(0, 1): the sum of four 16-bit uniforms (Irwin-Hall), centred and scaled to unit variance.
// Bounded by +-3.46, which is what we want for weights, and far cheaper than Box-Muller.
inline float gaussish(uint64_t r) {
    const uint32_t s = static_cast<uint32_t>(r & 0xffff) + static_cast<uint32_t>((r >> 16) & 0xffff) +
                       static_cast<uint32_t>((r >> 32) & 0xffff) + static_cast<uint32_t>(r >> 48);
    return (static_cast<float>(s) + 2.0f) * (1.7320508f / 65536.0f) - 2.0f * 1.7320508f;
}

// ---- model layout ----------------------------------------------------------------------------------------
// Scales that keep activations in a sane range through every layer (see `infer synth --help`): projections
// into a layer preserve the variance of their (normalized) input, the two projections back into the residual
// stream are scaled down by sqrt(2 * n_layer) so the stream grows only slowly with depth, and the output
// matrix is larger and spread per row so that the top logit usually stands clear of the next one.
struct Scales {
    float embd = 0.5f;
    float norm_mean = 1.0f, norm_spread = 0.1f;
    float qk_gain = 1.5f;  // sharper attention than a plain variance-preserving projection
    float output = 3.0f, output_row_spread = 0.5f;
};

std::vector<std::string> built_in_tokens(uint32_t n_vocab) {
    std::vector<std::string> t = {"<unk>", "<s>", "</s>"};
    char buf[16];
    for (int b = 0; b < 256; ++b) {
        std::snprintf(buf, sizeof buf, "<0x%02X>", b);
        t.emplace_back(buf);
    }
    // then single printable characters, with SentencePiece's word marker for the space, then fillers
    t.emplace_back("\xe2\x96\x81");
    for (char c = '!'; c <= '~' && t.size() < n_vocab; ++c) t.emplace_back(1, c);
    for (uint32_t i = 0; t.size() < n_vocab; ++i) t.push_back("\xe2\x96\x81tok" + std::to_string(i));
    t.resize(n_vocab);
    return t;
}

void add_built_in_vocab(gguf::GgufWriter& w, uint32_t n_vocab) {
    const auto tokens = built_in_tokens(n_vocab);
    std::vector<float> scores(n_vocab);
    std::vector<int32_t> types(n_vocab);
    for (uint32_t i = 0; i < n_vocab; ++i) {
        types[i] = i == 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1;  // unknown, control, byte, normal
        scores[i] = i < 259 ? 0.0f : -static_cast<float>(i - 259);
    }
    w.add_string("tokenizer.ggml.model", "llama");
    w.add_string("tokenizer.ggml.pre", "default");
    w.add_strings("tokenizer.ggml.tokens", tokens);
    w.add_f32_array("tokenizer.ggml.scores", scores);
    w.add_i32_array("tokenizer.ggml.token_type", types);
    w.add_u32("tokenizer.ggml.bos_token_id", 1);
    w.add_u32("tokenizer.ggml.eos_token_id", 2);
    w.add_u32("tokenizer.ggml.unknown_token_id", 0);
    w.add_bool("tokenizer.ggml.add_bos_token", true);
    w.add_bool("tokenizer.ggml.add_eos_token", false);
}

uint32_t vocab_size_of(const gguf::GgufFile& vocab) {
    const auto& tokens = vocab.get_array("tokenizer.ggml.tokens");
    if (tokens.count == 0 || tokens.count > UINT32_MAX)
        throw FormatError(vocab.path() + ": tokenizer.ggml.tokens has " + std::to_string(tokens.count) +
                          " entries");
    return static_cast<uint32_t>(tokens.count);
}

void require(bool ok, const std::string& what) {
    if (!ok) throw UsageError(what);
}

}  // namespace

void SynthParams::validate() const {
    require(n_embd > 0 && n_embd <= (1u << 16),
            "n_embd must be in [1, 65536], got " + std::to_string(n_embd));
    require(n_layer > 0 && n_layer <= 512, "n_layer must be in [1, 512], got " + std::to_string(n_layer));
    require(n_head > 0 && n_embd % n_head == 0,
            "n_head (" + std::to_string(n_head) + ") must divide n_embd (" + std::to_string(n_embd) + ")");
    require(
        n_head_kv > 0 && n_head % n_head_kv == 0,
        "n_head_kv (" + std::to_string(n_head_kv) + ") must divide n_head (" + std::to_string(n_head) + ")");
    require(n_ff > 0 && n_ff <= (1u << 20), "n_ff must be in [1, 1048576], got " + std::to_string(n_ff));
    require(n_vocab <= (1u << 22), "n_vocab must be at most 4194304, got " + std::to_string(n_vocab));
    require(n_ctx > 0, "n_ctx must be positive");
    require(n_rot <= head_dim() && n_rot % 2 == 0, "n_rot must be even and at most the head size " +
                                                       std::to_string(head_dim()) + ", got " +
                                                       std::to_string(n_rot));
    require(head_dim() % 2 == 0,
            "the head size n_embd / n_head must be even (rope), got " + std::to_string(head_dim()));
    require(std::isfinite(rope_base) && rope_base > 0, "rope base must be positive");
    require(std::isfinite(norm_eps) && norm_eps > 0 && norm_eps < 1, "norm eps must be in (0, 1)");
}

SynthParams synth_preset(std::string_view name) {
    SynthParams p;
    if (name == "tiny") {
        p.name = "kinfer-synth-tiny";
        return p;  // the defaults are the tiny model
    }
    if (name == "mistral-7b") {
        p.name = "kinfer-synth-mistral-7b";
        p.n_embd = 4096;
        p.n_layer = 32;
        p.n_head = 32;
        p.n_head_kv = 8;
        p.n_ff = 14336;
        p.n_ctx = 32768;
        p.rope_base = 1e6f;
        p.norm_eps = 1e-5f;
        return p;
    }
    std::string known;
    for (auto n : synth_preset_names()) known += (known.empty() ? "" : ", ") + std::string(n);
    throw UsageError("unknown preset '" + std::string(name) + "' (known: " + known + ")");
}

std::vector<std::string_view> synth_preset_names() {
    return {"tiny", "mistral-7b"};
}

std::vector<SynthTensor> plan_synth_tensors(const SynthParams& p, uint32_t n_vocab) {
    p.validate();
    const Scales s;
    const uint64_t E = p.n_embd, F = p.n_ff, V = n_vocab, KV = uint64_t(p.head_dim()) * p.n_head_kv;
    const float in_embd = 1.0f / std::sqrt(float(E));
    const float residual = 1.0f / std::sqrt(2.0f * float(p.n_layer));
    const WeightInit norm{s.norm_mean, s.norm_spread, 0};

    std::vector<SynthTensor> t;
    auto add = [&](std::string name, std::initializer_list<uint64_t> ne, WeightInit init) {
        SynthTensor x;
        x.name = std::move(name);
        size_t d = 0;
        for (uint64_t n : ne) x.ne[d++] = n;
        x.n_dims = static_cast<uint32_t>(d);
        x.init = init;
        t.push_back(std::move(x));
    };
    add("token_embd.weight", {E, V}, {0, s.embd, 0});
    for (uint32_t l = 0; l < p.n_layer; ++l) {
        const std::string b = "blk." + std::to_string(l) + ".";
        add(b + "attn_q.weight", {E, E}, {0, s.qk_gain * in_embd, 0});
        add(b + "attn_k.weight", {E, KV}, {0, s.qk_gain * in_embd, 0});
        add(b + "attn_v.weight", {E, KV}, {0, in_embd, 0});
        add(b + "attn_output.weight", {E, E}, {0, in_embd * residual, 0});
        add(b + "ffn_gate.weight", {E, F}, {0, in_embd, 0});
        add(b + "ffn_up.weight", {E, F}, {0, in_embd, 0});
        add(b + "ffn_down.weight", {F, E}, {0, residual / std::sqrt(float(F)), 0});
        add(b + "attn_norm.weight", {E}, norm);
        add(b + "ffn_norm.weight", {E}, norm);
    }
    add("output_norm.weight", {E}, norm);
    add("output.weight", {E, V}, {0, s.output * in_embd, s.output_row_spread});

    RecipeModel model;
    model.n_layer = p.n_layer;
    model.n_head = p.n_head;
    model.n_head_kv = p.n_head_kv;
    std::vector<RecipeTensor> rt(t.size());
    for (size_t i = 0; i < t.size(); ++i) rt[i] = {t[i].name, t[i].ne, GgmlType::F32};
    const auto choice = plan_tensor_types(p.file_type, model, rt);
    for (size_t i = 0; i < t.size(); ++i) {
        t[i].type = choice[i].type;
        t[i].wanted = choice[i].wanted;
    }
    return t;
}

void synth_fill_row(uint64_t seed, std::string_view tensor_name, const WeightInit& init, uint64_t row,
                    float* out, uint64_t n) {
    const uint64_t tensor_key = mix64(seed ^ hash_name(tensor_name));
    // each row starts its counter stream at a random point; streams of different rows overlapping would need
    // two random 64-bit starts to land within a row's length of each other
    const uint64_t base = mix64(tensor_key + row * kGolden);
    float scale = init.stddev;
    if (init.row_spread > 0) scale *= std::exp(init.row_spread * gaussish(mix64(tensor_key ^ ~row)));
    for (uint64_t i = 0; i < n; ++i) out[i] = init.mean + scale * gaussish(mix64(base + i * kGolden));
}

uint32_t synth_vocab_size(const SynthParams& p, const gguf::GgufFile* vocab) {
    if (vocab) {
        const uint32_t have = vocab_size_of(*vocab);
        if (p.n_vocab != 0 && p.n_vocab != have)
            throw UsageError("--n-vocab " + std::to_string(p.n_vocab) + " does not match the " +
                             std::to_string(have) + " tokens of " + vocab->path());
        return have;
    }
    require(p.n_vocab >= 259, "the built-in vocabulary needs n_vocab >= 259 (3 specials + 256 bytes), got " +
                                  std::to_string(p.n_vocab));
    return p.n_vocab;
}

SynthSummary write_synth_model(const SynthParams& p, const gguf::GgufFile* vocab, const std::string& path,
                               const ProgressFn& progress) {
    p.validate();
    const uint32_t n_vocab = synth_vocab_size(p, vocab);
    const auto tensors = plan_synth_tensors(p, n_vocab);

    gguf::GgufWriter w;
    w.add_string("general.architecture", "llama");
    w.add_string("general.name", p.name);
    w.add_u32("llama.context_length", p.n_ctx);
    w.add_u32("llama.embedding_length", p.n_embd);
    w.add_u32("llama.block_count", p.n_layer);
    w.add_u32("llama.feed_forward_length", p.n_ff);
    w.add_u32("llama.rope.dimension_count", p.n_rot ? p.n_rot : p.head_dim());
    w.add_u32("llama.attention.head_count", p.n_head);
    w.add_u32("llama.attention.head_count_kv", p.n_head_kv);
    w.add_f32("llama.attention.layer_norm_rms_epsilon", p.norm_eps);
    w.add_f32("llama.rope.freq_base", p.rope_base);
    w.add_u32("general.file_type", static_cast<uint32_t>(p.file_type));
    w.add_u32("llama.vocab_size", n_vocab);
    w.add_u32("general.quantization_version", 2);
    w.add_u64("kinfer.synth.seed", p.seed);
    if (vocab) {
        for (const auto& kv : vocab->metadata())
            if (kv.key.substr(0, 10) == "tokenizer.") w.add_value(kv.key, kv.value);
    } else {
        add_built_in_vocab(w, n_vocab);
    }

    SynthSummary sum;
    sum.n_vocab = n_vocab;
    sum.n_tensors = tensors.size();
    for (const auto& t : tensors) {
        w.add_tensor(t.name, t.type, std::span<const uint64_t>(t.ne.data(), t.n_dims));
        sum.n_elements += t.ne[0] * t.ne[1] * t.ne[2] * t.ne[3];
    }
    for (size_t i = 0; i < tensors.size(); ++i) sum.tensor_bytes += w.tensor_bytes(i);

    sum.file_bytes = write_model_file(w, path, [&](gguf::GgufWriter& out) {
        TensorProgress ev;
        for (size_t i = 0; i < tensors.size(); ++i) {
            const SynthTensor& t = tensors[i];
            const uint64_t n_rows = t.ne[1] * t.ne[2] * t.ne[3];
            ev.index = i;
            ev.count = tensors.size();
            ev.name = t.name;
            ev.ne = t.ne;
            ev.n_dims = t.n_dims;
            ev.from = GgmlType::F32;
            ev.to = t.type;
            ev.wanted = t.wanted;
            ev.in_bytes = t.ne[0] * n_rows * sizeof(float);
            ev.out_bytes = out.tensor_bytes(i);
            ev.out_bytes_total = sum.tensor_bytes;
            ev.finished = false;
            ev.fraction_done = 0;
            const auto fill = [&](uint64_t row, float* values) {
                synth_fill_row(p.seed, t.name, t.init, row, values, t.ne[0]);
            };
            stream_tensor_rows_reporting(out, type_traits(t.type), t.ne[0], n_rows, fill, ev, progress);
        }
    });
    return sum;
}

}  // namespace kinfer
