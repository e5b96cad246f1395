#include "filetools/quant_recipe.hpp"

#include <algorithm>
#include <cctype>
#include <numeric>

#include "gguf/gguf_file.hpp"
#include "kinfer/error.hpp"

namespace kinfer {
namespace {

using FT = FileType;
using GT = GgmlType;

const FileTypeInfo kFileTypes[] = {
    {FT::MOSTLY_Q4_0, "Q4_0", GT::Q4_0, "4.5 bpw, 32-element blocks with one scale"},
    {FT::MOSTLY_Q4_1, "Q4_1", GT::Q4_1, "5.0 bpw, 32-element blocks with scale and minimum"},
    {FT::MOSTLY_Q5_0, "Q5_0", GT::Q5_0, "5.5 bpw, 32-element blocks with one scale"},
    {FT::MOSTLY_Q5_1, "Q5_1", GT::Q5_1, "6.0 bpw, 32-element blocks with scale and minimum"},
    {FT::MOSTLY_Q8_0, "Q8_0", GT::Q8_0, "8.5 bpw, 32-element blocks with one scale"},
    {FT::MOSTLY_Q2_K, "Q2_K", GT::Q2_K,
     "k-quant mix around q2_K (q3_K for ffn_down, attn_output; q3_K/q4_K attn_v)"},
    {FT::MOSTLY_Q3_K_S, "Q3_K_S", GT::Q3_K, "k-quant, q3_K nearly everywhere"},
    {FT::MOSTLY_Q3_K_M, "Q3_K_M", GT::Q3_K,
     "k-quant mix: q3_K with q4_K/q5_K for attn_v, ffn_down, attn_output"},
    {FT::MOSTLY_Q3_K_L, "Q3_K_L", GT::Q3_K, "k-quant mix: q3_K with q5_K for attn_v, ffn_down, attn_output"},
    {FT::MOSTLY_Q4_K_S, "Q4_K_S", GT::Q4_K, "k-quant mix: q4_K with q5_K for the first attn_v / ffn_down"},
    {FT::MOSTLY_Q4_K_M, "Q4_K_M", GT::Q4_K, "k-quant mix: q4_K with q6_K for half of attn_v / ffn_down"},
    {FT::MOSTLY_Q5_K_S, "Q5_K_S", GT::Q5_K, "k-quant, q5_K nearly everywhere"},
    {FT::MOSTLY_Q5_K_M, "Q5_K_M", GT::Q5_K, "k-quant mix: q5_K with q6_K for half of attn_v / ffn_down"},
    {FT::MOSTLY_Q6_K, "Q6_K", GT::Q6_K, "k-quant, q6_K everywhere"},
    {FT::MOSTLY_F16, "F16", GT::F16, "IEEE half for every 2-D weight"},
    {FT::MOSTLY_BF16, "BF16", GT::BF16, "bfloat16 for every 2-D weight"},
    {FT::ALL_F32, "F32", GT::F32, "float32 everywhere"},
};

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (std::toupper(static_cast<unsigned char>(a[i])) != std::toupper(static_cast<unsigned char>(b[i])))
            return false;
    return true;
}

bool is_quantized(GT t) {
    const TypeTraits& tt = type_traits(t);
    return tt.block_elems > 1;
}

// Broad roles, matched on substrings of the name as llama.cpp does (first match wins, in this order).
enum class Role {
    TokenEmbd,
    Output,
    AttnQkv,
    AttnKvB,
    AttnV,
    AttnK,
    AttnQ,
    AttnOutput,
    FfnUp,
    FfnGate,
    FfnDown,
    Other
};

Role role_of(std::string_view name) {
    if (name == "output.weight") return Role::Output;
    if (name == "token_embd.weight" || name == "per_layer_token_embd.weight") return Role::TokenEmbd;
    const auto has = [&](std::string_view s) { return name.find(s) != std::string_view::npos; };
    if (has("attn_qkv.weight")) return Role::AttnQkv;
    if (has("attn_kv_b.weight")) return Role::AttnKvB;
    if (has("attn_v.weight")) return Role::AttnV;
    if (has("attn_k.weight")) return Role::AttnK;
    if (has("attn_q.weight")) return Role::AttnQ;
    if (has("attn_output.weight")) return Role::AttnOutput;
    if (has("ffn_up")) return Role::FfnUp;
    if (has("ffn_gate")) return Role::FfnGate;
    if (has("ffn_down")) return Role::FfnDown;
    return Role::Other;
}

bool is_value_projection(Role r) {
    return r == Role::AttnV || r == Role::AttnQkv || r == Role::AttnKvB;
}

// llama.cpp gives these layers of a mix more bits: the first and last eighth, and every third one between.
bool use_more_bits(int i, int n) {
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

// "blk.12.ffn_down.weight" -> 12; -1 for tensors outside the blocks.
int layer_of(std::string_view name) {
    if (name.substr(0, 4) != "blk.") return -1;
    int v = 0;
    size_t i = 4;
    if (i >= name.size() || !std::isdigit(static_cast<unsigned char>(name[i]))) return -1;
    while (i < name.size() && std::isdigit(static_cast<unsigned char>(name[i])) && v < 1000000)
        v = v * 10 + (name[i++] - '0');
    return v;
}

int n_dims_of(const RecipeTensor& t) {
    int n = 4;
    while (n > 1 && t.ne[n - 1] == 1) --n;
    return n;
}

struct Counters {
    int n_attn_v = 0, i_attn_v = 0;
    int n_ffn_down = 0, i_ffn_down = 0;
};

class Planner {
  public:
    Planner(FT ftype, const RecipeModel& m, bool tied) : ft_(ftype), m_(m), tied_(tied) {
        falcon_ = m.arch == "falcon";
        // llama.cpp's one model-size special case for the llama architecture: Llama-2/3 70B (80 layers, GQA).
        is_70b_ = m.arch == "llama" && m.n_layer == 80 && m.n_head != m.n_head_kv;
        gqa_ = m.n_head_kv ? m.n_head / m.n_head_kv : 0;
    }

    Counters c;

    // The mix's choice before the row-length check; `t` is the default type of the file type.
    GT choose(const RecipeTensor& tensor, Role role, GT t) {
        const uint64_t nx = tensor.ne[0];
        if (role == Role::Output || (tied_ && role == Role::TokenEmbd)) {
            // the output matrix (or the embedding table that doubles as it) is the most sensitive tensor
            if (falcon_ || nx % type_traits(t).block_elems != 0) return GT::Q8_0;
            return t == GT::Q8_0 ? t : GT::Q6_K;
        }
        if (role == Role::TokenEmbd) return t;
        if (is_value_projection(role)) {
            const int i = c.i_attn_v++;
            switch (ft_) {
                case FT::MOSTLY_Q2_K:
                    t = gqa_ >= 4 ? GT::Q4_K : GT::Q3_K;
                    break;
                case FT::MOSTLY_Q3_K_M:
                    t = i < 2 ? GT::Q5_K : GT::Q4_K;
                    break;
                case FT::MOSTLY_Q3_K_L:
                    t = GT::Q5_K;
                    break;
                case FT::MOSTLY_Q4_K_M:
                case FT::MOSTLY_Q5_K_M:
                    if (use_more_bits(i, c.n_attn_v)) t = GT::Q6_K;
                    break;
                case FT::MOSTLY_Q4_K_S:
                    if (i < 4) t = GT::Q5_K;
                    break;
                default:
                    break;
            }
            if (is_70b_ && (t == GT::Q3_K || t == GT::Q4_K)) t = GT::Q5_K;
            if (m_.n_expert == 8) t = GT::Q8_0;
            return t;
        }
        if (role == Role::AttnK) return m_.n_expert == 8 ? GT::Q8_0 : t;
        if (role == Role::FfnDown) {
            // with experts the layer comes from the name; otherwise it is the running count
            const int i = m_.n_expert > 1 ? std::max(layer_of(tensor.name), 0) : c.i_ffn_down;
            const int n = c.n_ffn_down;
            ++c.i_ffn_down;
            switch (ft_) {
                case FT::MOSTLY_Q2_K:
                    return GT::Q3_K;
                case FT::MOSTLY_Q3_K_M:
                    return i < n / 16 ? GT::Q5_K : (!falcon_ || use_more_bits(i, n)) ? GT::Q4_K : GT::Q3_K;
                case FT::MOSTLY_Q3_K_L:
                    return falcon_ ? GT::Q4_K : GT::Q5_K;
                case FT::MOSTLY_Q4_K_M:
                    if (falcon_) return i < n / 16 ? GT::Q6_K : use_more_bits(i, n) ? GT::Q5_K : GT::Q4_K;
                    return use_more_bits(i, n) ? GT::Q6_K : t;
                case FT::MOSTLY_Q5_K_M:
                    return use_more_bits(i, n) ? GT::Q6_K : t;
                case FT::MOSTLY_Q4_K_S:
                    return !falcon_ && i < n / 8 ? GT::Q5_K : t;
                default:
                    return t;
            }
        }
        if (role == Role::AttnOutput) {
            if (falcon_) return ft_ == FT::MOSTLY_Q3_K_L ? GT::Q4_K : t;
            if (m_.n_expert == 8) {
                switch (ft_) {
                    case FT::MOSTLY_Q2_K:
                    case FT::MOSTLY_Q3_K_S:
                    case FT::MOSTLY_Q3_K_M:
                    case FT::MOSTLY_Q4_K_S:
                    case FT::MOSTLY_Q4_K_M:
                        return GT::Q5_K;
                    default:
                        return t;
                }
            }
            switch (ft_) {
                case FT::MOSTLY_Q2_K:
                    return GT::Q3_K;
                case FT::MOSTLY_Q3_K_M:
                    return GT::Q4_K;
                case FT::MOSTLY_Q3_K_L:
                    return GT::Q5_K;
                default:
                    return t;
            }
        }
        return t;
    }

  private:
    FT ft_;
    const RecipeModel& m_;
    bool tied_;
    bool falcon_ = false;
    bool is_70b_ = false;
    uint32_t gqa_ = 0;
};

// llama.cpp's fallback when a row does not split into whole blocks of `t`: a 32-element type of similar
// size, or F16 when even that does not fit.
GT fallback_type(GT t, uint64_t ncols) {
    GT r = t;
    switch (t) {
        case GT::Q2_K:
        case GT::Q3_K:
            r = GT::Q4_0;
            break;
        case GT::Q4_K:
            r = GT::Q5_0;
            break;
        case GT::Q5_K:
            r = GT::Q5_1;
            break;
        case GT::Q6_K:
            r = GT::Q8_0;
            break;
        default:
            break;  // already a 32-element type: only F16 can help
    }
    if (ncols % type_traits(r).block_elems != 0) r = GT::F16;
    return r;
}

}  // namespace

std::span<const FileTypeInfo> file_types() {
    return kFileTypes;
}

const FileTypeInfo* find_file_type(std::string_view name) {
    for (const auto& f : kFileTypes)
        if (iequals(f.name, name)) return &f;
    if (iequals(name, "Q3_K")) return &file_type_info(FT::MOSTLY_Q3_K_M);
    if (iequals(name, "Q4_K")) return &file_type_info(FT::MOSTLY_Q4_K_M);
    if (iequals(name, "Q5_K")) return &file_type_info(FT::MOSTLY_Q5_K_M);
    return nullptr;
}

const FileTypeInfo& file_type_info(FileType id) {
    for (const auto& f : kFileTypes)
        if (f.id == id) return f;
    throw UsageError("unknown file type id " + std::to_string(static_cast<uint32_t>(id)));
}

std::string file_type_names() {
    std::string s;
    for (const auto& f : kFileTypes) s += (s.empty() ? "" : ", ") + std::string(f.name);
    return s;
}

RecipeModel RecipeModel::from_gguf(const gguf::GgufFile& file) {
    RecipeModel m;
    m.arch = file.get<std::string>("general.architecture");
    m.n_layer = file.get<uint32_t>(m.arch + ".block_count");
    m.n_head = file.get<uint32_t>(m.arch + ".attention.head_count");
    m.n_head_kv = file.get_or<uint32_t>(m.arch + ".attention.head_count_kv", m.n_head);
    m.n_expert = file.get_or<uint32_t>(m.arch + ".expert_count", 0);
    return m;
}

bool tensor_is_quantizable(const RecipeTensor& t) {
    if (n_dims_of(t) < 2) return false;
    const std::string_view n = t.name;
    if (n.size() < 6 || n.substr(n.size() - 6) != "weight") return false;
    for (std::string_view never :
         {"_norm.weight", "ffn_gate_inp.weight", "position_embd", "token_types.weight"})
        if (n.find(never) != std::string_view::npos) return false;
    return true;
}

std::vector<TensorTypeChoice> plan_tensor_types(FileType ftype, const RecipeModel& model,
                                                std::span<const RecipeTensor> tensors) {
    const GT base = file_type_info(ftype).base_type;
    std::vector<TensorTypeChoice> out(tensors.size());
    bool has_output = false;
    for (const auto& t : tensors) has_output |= t.name == "output.weight";

    Planner p(ftype, model, !has_output);
    for (const auto& t : tensors) p.c.n_attn_v += is_value_projection(role_of(t.name)) ? 1 : 0;
    p.c.n_ffn_down = static_cast<int>(model.n_layer);

    // llama.cpp visits tensors by layer number (non-block tensors first), then by name
    std::vector<size_t> order(tensors.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        const int la = layer_of(tensors[a].name), lb = layer_of(tensors[b].name);
        if (la != lb) return la < lb;
        return tensors[a].name < tensors[b].name;
    });

    for (size_t idx : order) {
        const RecipeTensor& t = tensors[idx];
        TensorTypeChoice& choice = out[idx];
        choice.type = t.type;
        if (!tensor_is_quantizable(t)) continue;
        if (!is_quantized(base)) {
            choice.type = base;
            continue;
        }
        const GT wanted = p.choose(t, role_of(t.name), base);
        choice.type = wanted;
        if (t.ne[0] % type_traits(wanted).block_elems != 0) {
            choice.type = fallback_type(wanted, t.ne[0]);
            choice.wanted = wanted;
        }
    }
    return out;
}

}  // namespace kinfer
