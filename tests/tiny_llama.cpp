#include "tests/tiny_llama.hpp"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>

#include "gguf/gguf_writer.hpp"
#include "kernels/reference/type_kernels.hpp"

namespace kinfer::test {
namespace {

struct Pending {
    std::string name;
    GgmlType type;
    std::vector<uint64_t> ne;
    std::vector<uint8_t> data;
};

}  // namespace

TinyLlama build_tiny_llama(TinyLlamaSpec s) {
    TinyLlama m;
    if (s.vocab) s.n_vocab = static_cast<int64_t>(s.vocab->get_array("tokenizer.ggml.tokens").count);
    const int64_t head_dim = s.head_dim ? s.head_dim : s.n_embd / s.n_head;
    const int64_t q_dim = head_dim * s.n_head;
    const int64_t n_embd_kv = head_dim * s.n_head_kv;
    const auto skipped = [&](const std::string& k, const std::vector<std::string>& list) {
        for (const auto& x : list)
            if (x == k) return true;
        return false;
    };

    gguf::GgufWriter w;
    w.add_string("general.architecture", s.arch);
    w.add_string("general.name", "tiny-llama-test");
    const std::string a = s.arch + ".";
    std::map<std::string, int64_t> ints = {
        {a + "context_length", s.n_ctx_train},
        {a + "embedding_length", s.n_embd},
        {a + "block_count", s.n_layer},
        {a + "feed_forward_length", s.n_ff},
        {a + "attention.head_count", s.n_head},
        {a + "attention.head_count_kv", s.n_head_kv},
        {a + "rope.dimension_count", s.n_rot ? s.n_rot : head_dim},
    };
    if (s.head_dim) ints[a + "attention.key_length"] = ints[a + "attention.value_length"] = s.head_dim;
    if (s.sliding_window > 0) ints[a + "attention.sliding_window"] = s.sliding_window;
    for (const auto& [k, v] : s.override_ints) ints[k] = v;
    for (const auto& [k, v] : ints)
        if (!skipped(k, s.skip_keys)) w.add_u32(k, static_cast<uint32_t>(v));
    if (!skipped(a + "attention.layer_norm_rms_epsilon", s.skip_keys))
        w.add_f32(a + "attention.layer_norm_rms_epsilon", s.rms_eps);
    w.add_f32(a + "rope.freq_base", s.rope_base);
    if (s.rope_linear_factor > 0) {
        w.add_string(a + "rope.scaling.type", "linear");
        w.add_f32(a + "rope.scaling.factor", s.rope_linear_factor);
    }
    if (s.vocab)
        for (const auto& kv : s.vocab->metadata())
            if (kv.key.rfind("tokenizer.", 0) == 0) w.add_value(kv.key, kv.value);

    std::mt19937_64 rng(s.seed);
    std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
    std::vector<Pending> tensors;
    const auto add = [&](const std::string& name, int64_t ne0, int64_t ne1, bool is_norm, GgmlType type) {
        std::vector<float> v(static_cast<size_t>(ne0 * ne1));
        float scale = is_norm ? 0.2f : s.weight_scale / std::sqrt(float(ne0));
        if (name == "token_embd.weight" && s.embd_scale > 0) scale = s.embd_scale;
        for (auto& x : v) x = (is_norm ? 1.0f : 0.0f) + scale * uni(rng);
        if (skipped(name, s.skip_tensors)) return;
        const TypeTraits& t = type_traits(is_norm ? GgmlType::F32 : type);
        Pending p{name, t.type, {}, std::vector<uint8_t>(row_bytes(t, uint64_t(ne0)) * uint64_t(ne1))};
        p.ne = ne1 == 1 && is_norm ? std::vector<uint64_t>{uint64_t(ne0)}
                                   : std::vector<uint64_t>{uint64_t(ne0), uint64_t(ne1)};
        for (int64_t r = 0; r < ne1 && ref::quantize_fn(t) && ref::dequantize_fn(t);
             ++r) {  // else: zero bytes
            uint8_t* row = p.data.data() + row_bytes(t, uint64_t(ne0)) * uint64_t(r);
            ref::quantize_fn(t)(v.data() + r * ne0, row, ne0);
            ref::dequantize_fn(t)(row, v.data() + r * ne0, ne0);  // the reference sees what the file holds
        }
        m.weights[name] = std::move(v);
        tensors.push_back(std::move(p));
    };
    add("token_embd.weight", s.n_embd, s.n_vocab, false, s.embd_type);
    add("output_norm.weight", s.n_embd, 1, true, GgmlType::F32);
    if (!s.tied) add("output.weight", s.n_embd, s.n_vocab, false, s.weight_type);
    for (int64_t i = 0; i < s.n_layer; ++i) {
        const std::string p = "blk." + std::to_string(i) + ".";
        add(p + "attn_norm.weight", s.n_embd, 1, true, GgmlType::F32);
        add(p + "attn_q.weight", s.n_embd, q_dim, false, s.weight_type);
        add(p + "attn_k.weight", s.n_embd, n_embd_kv, false, s.weight_type);
        add(p + "attn_v.weight", s.n_embd, n_embd_kv, false, s.weight_type);
        add(p + "attn_output.weight", q_dim, s.n_embd, false, s.weight_type);
        add(p + "ffn_norm.weight", s.n_embd, 1, true, GgmlType::F32);
        add(p + "ffn_gate.weight", s.n_embd, s.n_ff, false, s.weight_type);
        add(p + "ffn_up.weight", s.n_embd, s.n_ff, false, s.weight_type);
        add(p + "ffn_down.weight", s.n_ff, s.n_embd, false, s.weight_type);
    }
    std::vector<std::span<const uint8_t>> data;
    for (const auto& t : tensors) {
        w.add_tensor(t.name, t.type, t.ne);
        data.emplace_back(t.data);
    }
    m.bytes = w.to_bytes(data);
    m.spec = std::move(s);
    return m;
}

TinyLlama write_tiny_llama(const TinyLlamaSpec& spec, const std::string& path) {
    TinyLlama m = build_tiny_llama(spec);
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(m.bytes.data()), std::streamsize(m.bytes.size()));
    if (!out) throw std::runtime_error("cannot write " + path);
    return m;
}

const gguf::GgufFile* shared_mistral_vocab() {
    static const std::unique_ptr<gguf::GgufFile> file = []() -> std::unique_ptr<gguf::GgufFile> {
        const std::string path = std::string(KINFER_DATA_DIR) + "/vocab/mistral-v0.3-vocab.gguf";
        if (!std::filesystem::exists(path)) return nullptr;
        return std::make_unique<gguf::GgufFile>(gguf::GgufFile::open(path));
    }();
    return file.get();
}

const TinyLlama* vocab_model() {
    static const std::unique_ptr<TinyLlama> model = []() -> std::unique_ptr<TinyLlama> {
        const gguf::GgufFile* vocab = shared_mistral_vocab();
        if (!vocab) return nullptr;
        TinyLlamaSpec spec;
        spec.vocab = vocab;
        spec.n_embd = 64;
        spec.n_ff = 96;
        spec.n_head = 4;
        spec.n_head_kv = 2;
        spec.n_layer = 2;
        spec.n_ctx_train = 512;
        spec.tied = true;
        spec.weight_scale = 0.5f;
        spec.embd_scale = 1.0f;  // embeddings dominate the residual stream: the model tends to echo
        spec.seed = 42;
        return std::make_unique<TinyLlama>(build_tiny_llama(spec));
    }();
    return model.get();
}

namespace {
struct TempFile {
    std::string path;
    ~TempFile() {
        if (!path.empty()) std::filesystem::remove(path);
    }
};
}  // namespace

const std::string& vocab_model_path() {
    static TempFile file = [] {
        TempFile f;
        if (const TinyLlama* m = vocab_model()) {
            f.path = temp_path("vocab-model.gguf");
            std::ofstream out(f.path, std::ios::binary);
            out.write(reinterpret_cast<const char*>(m->bytes.data()), std::streamsize(m->bytes.size()));
            if (!out) throw std::runtime_error("cannot write " + f.path);
        }
        return f;
    }();
    return file.path;
}

std::string temp_path(const std::string& stem) {
    static std::atomic<int> counter{0};
    return (std::filesystem::temp_directory_path() /
            ("kinfer-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" + stem))
        .string();
}

}  // namespace kinfer::test
