#include "convert/hf_to_gguf.hpp"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <set>

#include "convert/hf_checkpoint.hpp"
#include "convert/hf_tokenizer.hpp"
#include "gguf/gguf_writer.hpp"
#include "kinfer/error.hpp"

namespace kinfer::convert {

namespace fs = std::filesystem;

std::vector<TensorMapping> llama_tensor_mappings(const HfConfig& c) {
    const uint64_t q_dim = uint64_t(c.n_head) * c.head_dim, kv_dim = uint64_t(c.n_head_kv) * c.head_dim;
    std::vector<TensorMapping> m;
    m.push_back({"token_embd.weight", "model.embed_tokens.weight", {c.n_vocab, c.n_embd}, 0});
    for (uint32_t i = 0; i < c.n_layer; ++i) {
        const std::string b = "blk." + std::to_string(i) + ".", h = "model.layers." + std::to_string(i) + ".";
        m.push_back({b + "attn_norm.weight", h + "input_layernorm.weight", {c.n_embd}, 0});
        m.push_back({b + "attn_q.weight", h + "self_attn.q_proj.weight", {q_dim, c.n_embd}, c.n_head});
        m.push_back({b + "attn_k.weight", h + "self_attn.k_proj.weight", {kv_dim, c.n_embd}, c.n_head_kv});
        m.push_back({b + "attn_v.weight", h + "self_attn.v_proj.weight", {kv_dim, c.n_embd}, 0});
        m.push_back({b + "attn_output.weight", h + "self_attn.o_proj.weight", {c.n_embd, q_dim}, 0});
        m.push_back({b + "ffn_norm.weight", h + "post_attention_layernorm.weight", {c.n_embd}, 0});
        m.push_back({b + "ffn_gate.weight", h + "mlp.gate_proj.weight", {c.n_ff, c.n_embd}, 0});
        m.push_back({b + "ffn_up.weight", h + "mlp.up_proj.weight", {c.n_ff, c.n_embd}, 0});
        m.push_back({b + "ffn_down.weight", h + "mlp.down_proj.weight", {c.n_embd, c.n_ff}, 0});
    }
    m.push_back({"output_norm.weight", "model.norm.weight", {c.n_embd}, 0});
    if (!c.tie_word_embeddings) m.push_back({"output.weight", "lm_head.weight", {c.n_vocab, c.n_embd}, 0});
    return m;
}

uint64_t rope_permuted_source_row(uint64_t row, uint64_t head_dim) {
    // transformers keeps each head's rotation pairs half a head apart (rotate_half): (i, i + hd/2); GGUF's
    // llama RoPE rotates adjacent pairs (2i, 2i + 1). GGUF row h*hd + 2i + j is checkpoint row
    // h*hd + j*hd/2 + i.
    const uint64_t head = row / head_dim, within = row % head_dim;
    return head * head_dim + (within % 2) * (head_dim / 2) + within / 2;
}

namespace {

GgmlType ggml_type_of(safetensors::DType t) {
    switch (t) {
        case safetensors::DType::F16:
            return GgmlType::F16;
        case safetensors::DType::BF16:
            return GgmlType::BF16;
        default:
            return GgmlType::F32;
    }
}

bool is_ignored_tensor(const std::string& name) {
    // Buffers some transformers versions saved; recomputed from config.json.
    return name.size() >= 23 && name.compare(name.size() - 23, 23, "rotary_emb.inv_freq") == 0;
}

void add_tokenizer(gguf::GgufWriter& w, const GgufVocab& v) {
    w.add_string("tokenizer.ggml.model", "llama");
    w.add_string("tokenizer.ggml.pre", "default");
    w.add_strings("tokenizer.ggml.tokens", v.tokens);
    w.add_f32_array("tokenizer.ggml.scores", v.scores);
    w.add_i32_array("tokenizer.ggml.token_type", v.types);
    if (v.bos_id) w.add_u32("tokenizer.ggml.bos_token_id", *v.bos_id);
    if (v.eos_id) w.add_u32("tokenizer.ggml.eos_token_id", *v.eos_id);
    if (v.unk_id) w.add_u32("tokenizer.ggml.unknown_token_id", *v.unk_id);
    if (v.pad_id) w.add_u32("tokenizer.ggml.padding_token_id", *v.pad_id);
    w.add_bool("tokenizer.ggml.add_bos_token", v.add_bos);
    w.add_bool("tokenizer.ggml.add_eos_token", v.add_eos);
    w.add_bool("tokenizer.ggml.add_space_prefix", v.add_space_prefix);
    if (!v.chat_template.empty()) w.add_string("tokenizer.chat_template", v.chat_template);
}

}  // namespace

ConvertSummary convert_hf_to_gguf(const std::string& model_dir, const std::string& out_path,
                                  const ConvertOptions& options, const ProgressFn& progress) {
    if (!fs::is_directory(model_dir))
        throw UsageError(model_dir + ": not a folder (a Hugging Face model folder is needed)");
    const fs::path dir(model_dir);
    const std::string config_path = (dir / "config.json").string();
    if (!fs::exists(config_path)) throw FormatError(model_dir + ": no config.json");
    ConvertSummary sum;
    sum.config = HfConfig::read(config_path);
    HfConfig& c = sum.config;
    const HfCheckpoint ckpt = HfCheckpoint::open(model_dir);

    // The embedding decides the vocabulary size (config.json's vocab_size must agree).
    if (const safetensors::Tensor* e = ckpt.find("model.embed_tokens.weight");
        e && e->shape.size() == 2 && e->shape[0] != c.n_vocab)
        throw FormatError(ckpt.file_of(e->name) + ": tensor 'model.embed_tokens.weight' has " +
                          std::to_string(e->shape[0]) + " rows, but " + c.path +
                          " says vocab_size = " + std::to_string(c.n_vocab));
    // Some tied checkpoints still carry lm_head.weight; then it is written like any output matrix.
    if (c.tie_word_embeddings && ckpt.find("lm_head.weight")) c.tie_word_embeddings = false;

    // Every tensor present, of a float type, with the shape config.json implies; nothing left over.
    const auto mappings = llama_tensor_mappings(c);
    std::vector<const safetensors::Tensor*> sources;
    std::set<std::string> used;
    for (const auto& m : mappings) {
        const safetensors::Tensor* t = ckpt.find(m.hf_name);
        if (!t) throw FormatError(model_dir + ": tensor '" + m.hf_name + "' is missing from the checkpoint");
        const std::string& file = ckpt.file_of(m.hf_name);
        if (!safetensors::is_float_dtype(t->dtype))
            throw FormatError(file + ": tensor '" + m.hf_name + "' is " + safetensors::dtype_name(t->dtype) +
                              "; kinfer converts F32, F16 and BF16 weights");
        if (t->shape != m.hf_shape) {
            safetensors::Tensor want;
            want.shape = m.hf_shape;
            throw FormatError(file + ": tensor '" + m.hf_name + "' has shape " + t->shape_string() +
                              ", but " + c.path + " implies " + want.shape_string());
        }
        sources.push_back(t);
        used.insert(m.hf_name);
    }
    for (const auto& name : ckpt.names())
        if (!used.count(name) && !is_ignored_tensor(name))
            throw FormatError(ckpt.file_of(name) + ": tensor '" + name +
                              "' is not part of the llama architecture (kinfer would drop it; refusing)");

    const GgufVocab vocab = read_hf_tokenizer(model_dir, c.n_vocab, c.bos_token_id, c.eos_token_id);
    sum.n_vocab_tokens = vocab.tokens.size();

    // Types: the recipe decides per tensor, as `infer quantize` would for an F32 input.
    RecipeModel rm;
    rm.n_layer = c.n_layer;
    rm.n_head = c.n_head;
    rm.n_head_kv = c.n_head_kv;
    std::vector<RecipeTensor> rts;
    for (const auto& m : mappings) {
        RecipeTensor rt;
        rt.name = m.gguf_name;
        for (size_t d = 0; d < m.hf_shape.size(); ++d) rt.ne[d] = m.hf_shape[m.hf_shape.size() - 1 - d];
        rt.type = GgmlType::F32;
        rts.push_back(rt);
    }
    const auto plan = plan_tensor_types(options.ftype, rm, rts);

    gguf::GgufWriter w;
    std::string name = options.name;
    if (name.empty()) name = fs::absolute(dir).lexically_normal().filename().string();
    if (name.empty()) name = fs::absolute(dir).lexically_normal().parent_path().filename().string();
    w.add_string("general.architecture", "llama");
    w.add_string("general.type", "model");
    w.add_string("general.name", name);
    w.add_u32("llama.block_count", c.n_layer);
    w.add_u32("llama.context_length", c.n_ctx_train);
    w.add_u32("llama.embedding_length", c.n_embd);
    w.add_u32("llama.feed_forward_length", c.n_ff);
    w.add_u32("llama.attention.head_count", c.n_head);
    w.add_u32("llama.attention.head_count_kv", c.n_head_kv);
    w.add_f32("llama.rope.freq_base", float(c.rope_theta));
    w.add_f32("llama.attention.layer_norm_rms_epsilon", float(c.rms_norm_eps));
    if (c.head_dim_given && c.head_dim != c.n_embd / c.n_head) {
        w.add_u32("llama.attention.key_length", c.head_dim);
        w.add_u32("llama.attention.value_length", c.head_dim);
    }
    w.add_u32("general.file_type", static_cast<uint32_t>(options.ftype));
    w.add_u32("llama.vocab_size", c.n_vocab);
    w.add_u32("llama.rope.dimension_count", c.head_dim);
    const GgmlType base = file_type_info(options.ftype).base_type;
    if (base != GgmlType::F32 && base != GgmlType::F16 && base != GgmlType::BF16)
        w.add_u32("general.quantization_version", 2);
    add_tokenizer(w, vocab);

    for (size_t i = 0; i < mappings.size(); ++i) {
        const auto& rt = rts[i];
        const uint32_t n_dims = uint32_t(mappings[i].hf_shape.size());
        w.add_tensor(rt.name, plan[i].type, std::span<const uint64_t>(rt.ne.data(), n_dims));
        sum.n_elements += sources[i]->n_elements();
        sum.in_tensor_bytes += sources[i]->n_bytes;
        sum.out_tensor_bytes += w.tensor_bytes(i);
        sum.n_fallback += plan[i].wanted ? 1 : 0;
    }
    sum.n_tensors = mappings.size();

    sum.out_file_bytes = write_model_file(w, out_path, [&](gguf::GgufWriter& out) {
        TensorProgress ev;
        for (size_t i = 0; i < mappings.size(); ++i) {
            const safetensors::Tensor& t = *sources[i];
            const TypeTraits& dst = type_traits(plan[i].type);
            const uint64_t row_len = rts[i].ne[0];
            const uint64_t n_rows = t.n_elements() / row_len;
            const uint32_t heads = mappings[i].permute_heads;
            const uint64_t head_dim = heads ? n_rows / heads : 0;
            ev.index = i;
            ev.count = mappings.size();
            ev.name = rts[i].name;
            ev.ne = rts[i].ne;
            ev.n_dims = uint32_t(mappings[i].hf_shape.size());
            ev.from = ggml_type_of(t.dtype);
            ev.to = dst.type;
            ev.wanted = plan[i].wanted;
            ev.in_bytes = t.n_bytes;
            ev.out_bytes = out.tensor_bytes(i);
            ev.out_bytes_total = sum.out_tensor_bytes;
            ev.finished = false;
            ev.fraction_done = 0;
            const size_t esize = safetensors::dtype_size(t.dtype);
            const auto fill = [&](uint64_t row, float* values) {
                const uint64_t src = heads ? rope_permuted_source_row(row, head_dim) : row;
                const uint8_t* p = t.data + src * row_len * esize;
                if (t.dtype == safetensors::DType::F32) {
                    std::memcpy(values, p, row_len * 4);
                } else {
                    for (uint64_t k = 0; k < row_len; ++k)
                        values[k] = safetensors::load_element(t.dtype, p, k);
                }
            };
            stream_tensor_rows_reporting(out, dst, row_len, n_rows, fill, ev, progress);
        }
    });
    return sum;
}

}  // namespace kinfer::convert
