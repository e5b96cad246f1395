#include "engine/model_weights.hpp"

#include <set>
#include <string>

#include "kernels/reference/type_kernels.hpp"
#include "kinfer/error.hpp"

namespace kinfer::engine {
namespace {

std::string shape_string(std::initializer_list<int64_t> ne) {
    std::vector<uint64_t> u(ne.begin(), ne.end());
    return gguf::shape_string(u);
}

// Looks tensors up by name, collecting every problem so that one error lists them all.
class Binder {
  public:
    explicit Binder(const gguf::GgufFile& file) : file_(file) {}

    // A required tensor of shape `ne` (ne[0] = row length). `need_f32` for norm vectors, which the graph
    // reads directly as floats.
    const gguf::TensorView* get(const std::string& name, std::initializer_list<int64_t> ne,
                                bool need_f32 = false) {
        const gguf::TensorView* t = file_.find_tensor(name);
        if (!t) {
            missing_.push_back(name + " " + shape_string(ne));
            return nullptr;
        }
        return check(*t, ne, need_f32);
    }

    const gguf::TensorView* optional(const std::string& name, std::initializer_list<int64_t> ne,
                                     bool need_f32) {
        const gguf::TensorView* t = file_.find_tensor(name);
        return t ? check(*t, ne, need_f32) : nullptr;
    }

    void finish() const {
        std::string msg;
        if (file_.tensors().empty())
            throw FormatError(file_.path() +
                              ": the file holds no tensors (a vocabulary-only file?), not a model");
        if (!missing_.empty()) {
            msg += "missing " + std::to_string(missing_.size()) + " tensor(s) the llama graph needs:";
            const size_t shown = std::min<size_t>(missing_.size(), 12);
            for (size_t i = 0; i < shown; ++i) msg += (i ? ", " : " ") + missing_[i];
            if (shown < missing_.size())
                msg += ", ... (" + std::to_string(missing_.size() - shown) + " more)";
        }
        for (const auto& p : problems_) msg += (msg.empty() ? "" : "; ") + p;
        if (msg.empty()) {
            std::string extra;
            size_t n_extra = 0;
            for (const auto& t : file_.tensors()) {
                if (used_.count(std::string(t.name))) continue;
                if (n_extra++ < 8) extra += (extra.empty() ? "" : ", ") + std::string(t.name);
            }
            if (n_extra == 0) return;
            if (n_extra > 8) extra += ", ... (" + std::to_string(n_extra - 8) + " more)";
            msg = "tensor(s) not used by the llama graph (unsupported model variant): " + extra;
        }
        throw FormatError(file_.path() + ": " + msg);
    }

  private:
    const gguf::TensorView* check(const gguf::TensorView& t, std::initializer_list<int64_t> ne,
                                  bool need_f32) {
        used_.insert(std::string(t.name));
        bool same = t.n_dims == ne.size();
        size_t d = 0;
        for (int64_t n : ne) same = same && static_cast<int64_t>(t.ne[d++]) == n;
        if (!same) {
            problems_.push_back("tensor " + std::string(t.name) + " has shape " + gguf::shape_string(t) +
                                ", expected " + shape_string(ne));
        } else if (need_f32 && t.type->type != GgmlType::F32) {
            problems_.push_back("tensor " + std::string(t.name) + " has type " + t.type->name +
                                ", expected f32");
        } else if (!ref::dequantize_fn(*t.type)) {
            problems_.push_back("tensor " + std::string(t.name) + " has type " + t.type->name +
                                ", which kinfer cannot read yet");
        }
        return &t;
    }

    const gguf::GgufFile& file_;
    std::vector<std::string> missing_;
    std::vector<std::string> problems_;
    std::set<std::string> used_;
};

}  // namespace

ModelWeights bind_model_weights(const gguf::GgufFile& file, const ModelConfig& c) {
    Binder b(file);
    ModelWeights w;
    const int64_t q_dim = c.n_head * c.head_dim;
    w.token_embd = b.get("token_embd.weight", {c.n_embd, c.n_vocab});
    w.output_norm = b.get("output_norm.weight", {c.n_embd}, true);
    w.output = b.optional("output.weight", {c.n_embd, c.n_vocab}, false);
    w.tied_embeddings = w.output == nullptr;
    if (w.tied_embeddings) w.output = w.token_embd;
    w.rope_freqs = b.optional("rope_freqs.weight", {c.n_rot / 2}, true);
    w.layers.resize(static_cast<size_t>(c.n_layer));
    for (int64_t i = 0; i < c.n_layer; ++i) {
        const std::string p = "blk." + std::to_string(i) + ".";
        LayerWeights& l = w.layers[static_cast<size_t>(i)];
        l.attn_norm = b.get(p + "attn_norm.weight", {c.n_embd}, true);
        l.wq = b.get(p + "attn_q.weight", {c.n_embd, q_dim});
        l.wk = b.get(p + "attn_k.weight", {c.n_embd, c.n_embd_kv()});
        l.wv = b.get(p + "attn_v.weight", {c.n_embd, c.n_embd_kv()});
        l.wo = b.get(p + "attn_output.weight", {q_dim, c.n_embd});
        l.ffn_norm = b.get(p + "ffn_norm.weight", {c.n_embd}, true);
        l.w_gate = b.get(p + "ffn_gate.weight", {c.n_embd, c.n_ff});
        l.w_up = b.get(p + "ffn_up.weight", {c.n_embd, c.n_ff});
        l.w_down = b.get(p + "ffn_down.weight", {c.n_ff, c.n_embd});
    }
    b.finish();
    return w;
}

}  // namespace kinfer::engine
