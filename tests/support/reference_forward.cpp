#include "tests/support/reference_forward.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "kinfer/error.hpp"
#include "kernels/reference/type_kernels.hpp"

// Where each convention comes from (llama.cpp, read for facts only):
// - layer structure: src/models/llama.cpp (pre-norm RMSNorm, residual after attention and after the FFN,
//   FFN = down(silu(gate(x)) * up(x)), output_norm then output; output falls back to token_embd).
// - hyperparameters: src/llama-model.cpp load_hparams (key_length default n_embd / n_head;
// rope.dimension_count
//   default head size and, for llama, required to equal it; freq_base default 10000; freq_scale =
//   1 / rope.scaling.factor (or the old rope.scale_linear)); kq_scale = 1/sqrt(head size).
// - RoPE: llama_model_rope_type gives LLAMA_ROPE_TYPE_NORM for LLM_ARCH_LLAMA; ggml-cpu/ops.cpp
//   rope with GGML_ROPE_TYPE_NORMAL rotates (x[i0], x[i0+1]) by theta = pos * freq_scale * base^(-i0/n_dims).
// - RMSNorm: ggml_compute_forward_rms_norm_f32 scales by 1/sqrt(sum(x^2)/n + eps).
// - GQA: ggml's attention broadcasts each kv head over n_head / n_head_kv consecutive query heads.

namespace kinfer::testing {
namespace {

std::string arch_key(const char* suffix) {
    return std::string("llama.") + suffix;
}

int64_t get_positive(const gguf::GgufFile& f, const std::string& key) {
    const auto v = f.get<int64_t>(key);
    if (v <= 0) throw FormatError(f.path() + ": " + key + " must be positive, got " + std::to_string(v));
    return v;
}

const gguf::TensorView& tensor_with_shape(const gguf::GgufFile& f, const std::string& name, int64_t ne0,
                                          int64_t ne1) {
    const auto& t = f.tensor(name);
    const bool ok = int64_t(t.ne[0]) == ne0 && int64_t(t.ne[1]) == ne1 && t.ne[2] == 1 && t.ne[3] == 1;
    if (!ok)
        throw FormatError(f.path() + ": tensor " + name + " has shape [" + std::to_string(t.ne[0]) + ", " +
                          std::to_string(t.ne[1]) + ", " + std::to_string(t.ne[2]) + ", " +
                          std::to_string(t.ne[3]) + "], expected [" + std::to_string(ne0) + ", " +
                          std::to_string(ne1) + "]");
    return t;
}

std::vector<double> vector_tensor(const gguf::GgufFile& f, const std::string& name, int64_t n) {
    return dequantize_row_f64(tensor_with_shape(f, name, n, 1), 0);
}

double silu(double x) {
    return x / (1.0 + std::exp(-x));
}

}  // namespace

RefConfig read_ref_config(const gguf::GgufFile& f) {
    const auto arch = f.get<std::string>("general.architecture");
    if (arch != "llama")
        throw FormatError(f.path() + ": reference forward models architecture llama only, file is " + arch);
    RefConfig c;
    c.n_embd = get_positive(f, arch_key("embedding_length"));
    c.n_layer = get_positive(f, arch_key("block_count"));
    c.n_head = get_positive(f, arch_key("attention.head_count"));
    c.n_head_kv = f.has(arch_key("attention.head_count_kv"))
                      ? get_positive(f, arch_key("attention.head_count_kv"))
                      : c.n_head;
    c.n_ff = get_positive(f, arch_key("feed_forward_length"));
    c.head_dim = f.has(arch_key("attention.key_length")) ? get_positive(f, arch_key("attention.key_length"))
                                                         : c.n_embd / c.n_head;
    const int64_t head_dim_v = f.has(arch_key("attention.value_length"))
                                   ? get_positive(f, arch_key("attention.value_length"))
                                   : c.n_embd / c.n_head;
    if (head_dim_v != c.head_dim)
        throw FormatError(f.path() + ": key_length != value_length is not modelled");
    if (c.n_head % c.n_head_kv != 0)
        throw FormatError(f.path() + ": head_count " + std::to_string(c.n_head) +
                          " is not a multiple of head_count_kv " + std::to_string(c.n_head_kv));
    c.n_rot = f.has(arch_key("rope.dimension_count")) ? get_positive(f, arch_key("rope.dimension_count"))
                                                      : c.head_dim;
    if (c.n_rot != c.head_dim)  // llama.cpp rejects this for llama too
        throw FormatError(f.path() + ": rope.dimension_count " + std::to_string(c.n_rot) +
                          " differs from the head size " + std::to_string(c.head_dim));
    c.rope_base = f.get_or<double>(arch_key("rope.freq_base"), 10000.0);
    const auto scaling = f.get_or<std::string>(arch_key("rope.scaling.type"), "linear");
    if (scaling != "linear" && scaling != "none")
        throw FormatError(f.path() + ": rope scaling '" + scaling + "' is not modelled by the reference");
    double factor = f.get_or<double>(arch_key("rope.scaling.factor"), 0.0);
    if (factor == 0.0) factor = f.get_or<double>(arch_key("rope.scale_linear"), 0.0);
    c.rope_freq_scale = factor == 0.0 ? 1.0 : 1.0 / factor;
    c.rms_eps = f.get<double>(arch_key("attention.layer_norm_rms_epsilon"));
    if (f.find_tensor("rope_freqs.weight"))
        throw FormatError(f.path() + ": rope_freqs (llama-3 frequency factors) are not modelled");
    c.n_vocab = int64_t(f.tensor("token_embd.weight").ne[1]);
    return c;
}

std::vector<double> dequantize_row_f64(const gguf::TensorView& t, uint64_t row) {
    if (!ref::dequantize_fn(*t.type))
        throw Error("reference forward: no scalar dequantizer for type " + std::string(t.type->name) +
                    " (tensor " + std::string(t.name) + ")");
    if (row >= t.n_rows())
        throw Error("reference forward: row " + std::to_string(row) + " out of range in " +
                    std::string(t.name));
    std::vector<float> f(t.ne[0]);
    ref::dequantize_fn(*t.type)(t.row(row), f.data(), int64_t(t.ne[0]));
    return {f.begin(), f.end()};
}

std::vector<double> matmul_f64(const gguf::TensorView& w, std::span<const double> x, int64_t n_tokens) {
    const auto n_in = int64_t(w.ne[0]);
    const auto n_out = int64_t(w.n_rows());
    if (int64_t(x.size()) != n_in * n_tokens)
        throw Error("reference forward: matmul with " + std::string(w.name) + " got " +
                    std::to_string(x.size()) + " inputs for " + std::to_string(n_tokens) + " tokens of " +
                    std::to_string(n_in));
    std::vector<double> y(size_t(n_out * n_tokens));
    for (int64_t r = 0; r < n_out; ++r) {
        const auto row = dequantize_row_f64(w, uint64_t(r));
        for (int64_t t = 0; t < n_tokens; ++t) {
            const double* xt = x.data() + t * n_in;
            double acc = 0.0;
            for (int64_t i = 0; i < n_in; ++i) acc += row[i] * xt[i];
            y[t * n_out + r] = acc;
        }
    }
    return y;
}

void rms_norm(std::span<double> x, std::span<const double> weight, double eps) {
    double sum_sq = 0.0;
    for (double v : x) sum_sq += v * v;
    const double scale = 1.0 / std::sqrt(sum_sq / double(x.size()) + eps);
    for (size_t i = 0; i < x.size(); ++i) x[i] = x[i] * scale * weight[i];
}

void rope_adjacent_pairs(std::span<double> head, int64_t n_rot, int64_t pos, double base, double freq_scale) {
    for (int64_t i = 0; 2 * i < n_rot; ++i) {
        const double theta = double(pos) * freq_scale * std::pow(base, -2.0 * double(i) / double(n_rot));
        const double c = std::cos(theta), s = std::sin(theta);
        const double x0 = head[2 * i], x1 = head[2 * i + 1];
        head[2 * i] = x0 * c - x1 * s;
        head[2 * i + 1] = x0 * s + x1 * c;
    }
}

std::vector<double> causal_attention(std::span<const double> q, std::span<const double> k,
                                     std::span<const double> v, int64_t n_tokens, int64_t n_head,
                                     int64_t n_head_kv, int64_t head_dim) {
    const int64_t q_stride = n_head * head_dim, kv_stride = n_head_kv * head_dim;
    const int64_t group = n_head / n_head_kv;  // query heads per kv head
    const double scale = 1.0 / std::sqrt(double(head_dim));
    std::vector<double> out(size_t(n_tokens * q_stride), 0.0);
    std::vector<double> p(static_cast<size_t>(n_tokens));  // scores, then weights, of one query
    for (int64_t t = 0; t < n_tokens; ++t) {
        for (int64_t h = 0; h < n_head; ++h) {
            const int64_t hk = h / group;
            const double* qh = q.data() + t * q_stride + h * head_dim;
            double max_score = -INFINITY;
            for (int64_t s = 0; s <= t; ++s) {
                const double* ks = k.data() + s * kv_stride + hk * head_dim;
                double dot = 0.0;
                for (int64_t d = 0; d < head_dim; ++d) dot += qh[d] * ks[d];
                p[s] = dot * scale;
                max_score = std::max(max_score, p[s]);
            }
            double sum = 0.0;
            for (int64_t s = 0; s <= t; ++s) sum += p[s] = std::exp(p[s] - max_score);
            double* oh = out.data() + t * q_stride + h * head_dim;
            for (int64_t s = 0; s <= t; ++s) {
                const double* vs = v.data() + s * kv_stride + hk * head_dim;
                for (int64_t d = 0; d < head_dim; ++d) oh[d] += p[s] / sum * vs[d];
            }
        }
    }
    return out;
}

std::vector<double> swiglu(std::span<const double> gate, std::span<const double> up) {
    std::vector<double> out(gate.size());
    for (size_t i = 0; i < gate.size(); ++i) out[i] = silu(gate[i]) * up[i];
    return out;
}

ReferenceForward::ReferenceForward(const gguf::GgufFile& file) : file_(file), cfg_(read_ref_config(file)) {
    const auto& c = cfg_;
    token_embd_ = &tensor_with_shape(file, "token_embd.weight", c.n_embd, c.n_vocab);
    output_ = file.find_tensor("output.weight")
                  ? &tensor_with_shape(file, "output.weight", c.n_embd, c.n_vocab)
                  : token_embd_;
    output_norm_ = vector_tensor(file, "output_norm.weight", c.n_embd);
    for (int64_t il = 0; il < c.n_layer; ++il) {
        const std::string p = "blk." + std::to_string(il) + ".";
        Layer l;
        l.attn_norm = vector_tensor(file, p + "attn_norm.weight", c.n_embd);
        l.wq = &tensor_with_shape(file, p + "attn_q.weight", c.n_embd, c.n_head * c.head_dim);
        l.wk = &tensor_with_shape(file, p + "attn_k.weight", c.n_embd, c.n_head_kv * c.head_dim);
        l.wv = &tensor_with_shape(file, p + "attn_v.weight", c.n_embd, c.n_head_kv * c.head_dim);
        l.wo = &tensor_with_shape(file, p + "attn_output.weight", c.n_head * c.head_dim, c.n_embd);
        l.ffn_norm = vector_tensor(file, p + "ffn_norm.weight", c.n_embd);
        l.w_gate = &tensor_with_shape(file, p + "ffn_gate.weight", c.n_embd, c.n_ff);
        l.w_up = &tensor_with_shape(file, p + "ffn_up.weight", c.n_embd, c.n_ff);
        l.w_down = &tensor_with_shape(file, p + "ffn_down.weight", c.n_ff, c.n_embd);
        layers_.push_back(std::move(l));
    }
}

std::vector<std::vector<double>> ReferenceForward::logits(std::span<const int32_t> tokens,
                                                          std::span<const int64_t> logit_rows,
                                                          int64_t pos0) const {
    const auto& c = cfg_;
    const auto n = int64_t(tokens.size());
    const int64_t E = c.n_embd;

    std::vector<double> x(size_t(n * E));  // the residual stream, one row per token
    for (int64_t t = 0; t < n; ++t) {
        if (tokens[t] < 0 || tokens[t] >= c.n_vocab)
            throw UsageError("reference forward: token id " + std::to_string(tokens[t]) + " out of range");
        const auto row = dequantize_row_f64(*token_embd_, uint64_t(tokens[t]));
        std::copy(row.begin(), row.end(), x.begin() + t * E);
    }

    auto normed = [&](const std::vector<double>& in, const std::vector<double>& w) {
        std::vector<double> out = in;
        for (int64_t t = 0; t < n; ++t) rms_norm(std::span(out).subspan(t * E, E), w, c.rms_eps);
        return out;
    };

    for (const auto& l : layers_) {
        const auto a = normed(x, l.attn_norm);
        auto q = matmul_f64(*l.wq, a, n);
        auto k = matmul_f64(*l.wk, a, n);
        const auto v = matmul_f64(*l.wv, a, n);
        for (int64_t t = 0; t < n; ++t) {
            for (int64_t h = 0; h < c.n_head; ++h)
                rope_adjacent_pairs(std::span(q).subspan((t * c.n_head + h) * c.head_dim, c.head_dim),
                                    c.n_rot, pos0 + t, c.rope_base, c.rope_freq_scale);
            for (int64_t h = 0; h < c.n_head_kv; ++h)
                rope_adjacent_pairs(std::span(k).subspan((t * c.n_head_kv + h) * c.head_dim, c.head_dim),
                                    c.n_rot, pos0 + t, c.rope_base, c.rope_freq_scale);
        }
        const auto attn = causal_attention(q, k, v, n, c.n_head, c.n_head_kv, c.head_dim);
        const auto attn_out = matmul_f64(*l.wo, attn, n);
        for (size_t i = 0; i < x.size(); ++i) x[i] += attn_out[i];

        const auto m = normed(x, l.ffn_norm);
        const auto act = swiglu(matmul_f64(*l.w_gate, m, n), matmul_f64(*l.w_up, m, n));
        const auto ffn_out = matmul_f64(*l.w_down, act, n);
        for (size_t i = 0; i < x.size(); ++i) x[i] += ffn_out[i];
    }

    std::vector<int64_t> rows(logit_rows.begin(), logit_rows.end());
    if (rows.empty())
        for (int64_t t = 0; t < n; ++t) rows.push_back(t);
    std::vector<double> final_rows;  // the normed hidden state of each wanted row
    for (int64_t r : rows) {
        if (r < 0 || r >= n)
            throw UsageError("reference forward: logit row " + std::to_string(r) + " out of range");
        std::vector<double> h(x.begin() + r * E, x.begin() + (r + 1) * E);
        rms_norm(h, output_norm_, c.rms_eps);
        final_rows.insert(final_rows.end(), h.begin(), h.end());
    }
    const auto flat = matmul_f64(*output_, final_rows, int64_t(rows.size()));
    std::vector<std::vector<double>> out;
    for (size_t i = 0; i < rows.size(); ++i)
        out.emplace_back(flat.begin() + int64_t(i) * c.n_vocab, flat.begin() + int64_t(i + 1) * c.n_vocab);
    return out;
}

double relative_logit_error(std::span<const float> got, std::span<const double> truth) {
    if (got.size() != truth.size() || truth.empty())
        throw UsageError("relative_logit_error: sizes differ (" + std::to_string(got.size()) + " vs " +
                         std::to_string(truth.size()) + ")");
    const auto [lo, hi] = std::minmax_element(truth.begin(), truth.end());
    double max_diff = 0.0;
    for (size_t i = 0; i < got.size(); ++i) {
        if (!std::isfinite(got[i])) return INFINITY;  // NaN would otherwise slip through std::max
        max_diff = std::max(max_diff, std::abs(double(got[i]) - truth[i]));
    }
    return max_diff / (*hi - *lo);
}

int64_t argmax(std::span<const double> v) {
    return std::max_element(v.begin(), v.end()) - v.begin();
}
int64_t argmax(std::span<const float> v) {
    return std::max_element(v.begin(), v.end()) - v.begin();
}

}  // namespace kinfer::testing
