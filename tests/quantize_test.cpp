// `infer quantize` and the recipes behind it (filetools/quant_recipe.hpp): which tensor gets which type for
// each file type, checked against the table llama.cpp's llama-quantize produced (tests/fixtures/
// quantize_recipes.tsv, from scripts/dev/compare_quantize_recipes.sh) and against rules read from
// llama.cpp's src/llama-quant.cpp; then the command end to end on small synthetic models: types, metadata,
// values after a round trip, refusals and fallbacks.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "filetools/gguf_quantize.hpp"
#include "filetools/quant_recipe.hpp"
#include "filetools/synth_model.hpp"
#include "gguf/gguf_file.hpp"
#include "infer_cli.hpp"
#include "kernels/reference/type_kernels.hpp"
#include "kinfer/error.hpp"

using namespace kinfer;
using kinfer_test::run_infer_cli;
using kinfer_test::ScratchDir;
using kinfer_test::shell_quote;

namespace {

std::vector<RecipeTensor> recipe_tensors(const std::vector<SynthTensor>& synth) {
    std::vector<RecipeTensor> out;
    for (const auto& t : synth) out.push_back({t.name, t.ne, GgmlType::F32});
    return out;
}

RecipeModel recipe_model(const SynthParams& p) {
    RecipeModel m;
    m.n_layer = p.n_layer;
    m.n_head = p.n_head;
    m.n_head_kv = p.n_head_kv;
    return m;
}

// name -> type under `ft` for a synthetic model with hyperparameters p
std::map<std::string, std::string> plan_names(const SynthParams& p, uint32_t n_vocab, FileType ft) {
    SynthParams q = p;
    q.file_type = FileType::ALL_F32;
    const auto tensors = recipe_tensors(plan_synth_tensors(q, n_vocab));
    const auto choice = plan_tensor_types(ft, recipe_model(p), tensors);
    std::map<std::string, std::string> out;
    for (size_t i = 0; i < tensors.size(); ++i) out[tensors[i].name] = type_name(choice[i].type);
    return out;
}

SynthParams small_model(uint32_t n_ff = 256) {
    SynthParams p;
    p.name = "quantize-test";
    p.n_embd = 256;
    p.n_layer = 2;
    p.n_head = 4;
    p.n_head_kv = 2;
    p.n_ff = n_ff;
    p.n_vocab = 512;
    p.seed = 7;
    return p;
}

// Writes a small synthetic model with the built-in vocabulary.
void write_model(const SynthParams& p, const std::filesystem::path& path) {
    write_synth_model(p, nullptr, path.string());
}

double relative_rms_error(const float* a, const float* b, size_t n) {
    double err = 0, ref = 0;
    for (size_t i = 0; i < n; ++i) {
        err += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
        ref += double(a[i]) * a[i];
    }
    return ref > 0 ? std::sqrt(err / ref) : std::sqrt(err);
}

std::vector<float> tensor_floats(const gguf::TensorView& t) {
    std::vector<float> v(t.n_elements());
    const uint64_t rb = t.row_bytes();
    for (uint64_t r = 0; r < t.n_rows(); ++r)
        ref::dequantize_fn (*t.type)(t.data + r * rb, v.data() + r * t.ne[0], t.ne[0]);
    return v;
}

}  // namespace

TEST_CASE("quantize: file type names and llama.cpp ids") {
    // ids from llama.cpp's include/llama.h (LLAMA_FTYPE_*), as written to general.file_type
    const std::pair<const char*, uint32_t> ids[] = {
        {"F32", 0},     {"F16", 1},     {"Q4_0", 2},    {"Q4_1", 3},    {"Q8_0", 7},    {"Q5_0", 8},
        {"Q5_1", 9},    {"Q2_K", 10},   {"Q3_K_S", 11}, {"Q3_K_M", 12}, {"Q3_K_L", 13}, {"Q4_K_S", 14},
        {"Q4_K_M", 15}, {"Q5_K_S", 16}, {"Q5_K_M", 17}, {"Q6_K", 18},   {"BF16", 32},
    };
    for (auto [name, id] : ids) {
        CAPTURE(name);
        const FileTypeInfo* f = find_file_type(name);
        REQUIRE(f);
        CHECK(static_cast<uint32_t>(f->id) == id);
        CHECK(std::string(f->name) == name);
    }
    CHECK(find_file_type("q4_k_m") == find_file_type("Q4_K_M"));
    CHECK(find_file_type("Q4_K")->id == FileType::MOSTLY_Q4_K_M);  // llama-quantize's aliases
    CHECK(find_file_type("Q3_K")->id == FileType::MOSTLY_Q3_K_M);
    CHECK(find_file_type("Q5_K")->id == FileType::MOSTLY_Q5_K_M);
    CHECK(find_file_type("Q7_K") == nullptr);
    CHECK(find_file_type("Q4_K_MM") == nullptr);
    CHECK(find_file_type("") == nullptr);
    CHECK(file_type_info(FileType::MOSTLY_Q5_K_S).base_type == GgmlType::Q5_K);
    CHECK(file_type_info(FileType::MOSTLY_Q2_K).base_type == GgmlType::Q2_K);
}

TEST_CASE("quantize: recipes equal llama-quantize's choices (fixture)") {
    const std::string path = std::string(KINFER_SOURCE_DIR) + "/tests/fixtures/quantize_recipes.tsv";
    std::ifstream in(path);
    REQUIRE_MESSAGE(in.good(), "missing " << path);
    std::map<std::string, SynthParams> models;
    std::vector<FileType> columns;
    std::map<std::string, std::map<std::string, std::string>> plans;  // "model/type" -> name -> type
    size_t rows = 0, cells = 0;
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        std::vector<std::string> f;
        std::stringstream ss(line);
        for (std::string x; std::getline(ss, x, '\t');) f.push_back(x);
        REQUIRE(f.size() == 3 - (f[0] == "types" ? 1 : 0));
        if (f[0] == "model") {
            SynthParams p = small_model();
            std::stringstream flags(f[2]);
            std::string flag, value;
            while (flags >> flag >> value) {
                const uint32_t v = static_cast<uint32_t>(std::stoul(value));
                if (flag == "--n-embd")
                    p.n_embd = v;
                else if (flag == "--n-layer")
                    p.n_layer = v;
                else if (flag == "--n-head")
                    p.n_head = v;
                else if (flag == "--n-head-kv")
                    p.n_head_kv = v;
                else if (flag == "--n-ff")
                    p.n_ff = v;
                else if (flag == "--n-vocab")
                    p.n_vocab = v;
                else
                    FAIL("unexpected flag in fixture: " << flag);
            }
            models[f[1]] = p;
        } else if (f[0] == "types") {
            std::stringstream ts(f[1]);
            for (std::string t; ts >> t;) {
                const FileTypeInfo* ft = find_file_type(t);
                REQUIRE_MESSAGE(ft, t);
                columns.push_back(ft->id);
            }
        } else {
            REQUIRE(models.count(f[0]));
            const SynthParams& p = models[f[0]];
            std::stringstream ts(f[2]);
            size_t col = 0;
            for (std::string expected; ts >> expected; ++col) {
                REQUIRE(col < columns.size());
                const std::string key = f[0] + "/" + file_type_info(columns[col]).name;
                if (!plans.count(key)) plans[key] = plan_names(p, p.n_vocab, columns[col]);
                CAPTURE(key);
                CAPTURE(f[1]);
                REQUIRE(plans[key].count(f[1]));
                CHECK(plans[key][f[1]] == expected);
                ++cells;
            }
            CHECK(col == columns.size());
            ++rows;
        }
    }
    CHECK(models.size() >= 4);
    CHECK(columns.size() >= 16);
    CHECK(rows > 300);
    MESSAGE(rows << " tensors x " << columns.size() << " file types = " << cells << " cells checked");
}

TEST_CASE("quantize: Mistral-7B Q4_K_M mix, as read from llama-quant.cpp") {
    SynthParams p = synth_preset("mistral-7b");
    const auto types = plan_names(p, 32768, FileType::MOSTLY_Q4_K_M);
    REQUIRE(types.size() == 291);
    CHECK(types.at("token_embd.weight") == "q4_K");  // not tied to the output: the base type
    CHECK(types.at("output.weight") == "q6_K");
    CHECK(types.at("output_norm.weight") == "f32");
    // use_more_bits(i, 32): the first and last 4 layers, and every third from layer 6
    const std::vector<int> more = {0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31};
    std::map<std::string, int> count;
    for (int l = 0; l < 32; ++l) {
        const std::string b = "blk." + std::to_string(l) + ".";
        const bool m = std::find(more.begin(), more.end(), l) != more.end();
        CAPTURE(l);
        CHECK(types.at(b + "attn_v.weight") == (m ? "q6_K" : "q4_K"));
        CHECK(types.at(b + "ffn_down.weight") == (m ? "q6_K" : "q4_K"));
        for (const char* n : {"attn_q", "attn_k", "attn_output", "ffn_gate", "ffn_up"})
            CHECK(types.at(b + n + ".weight") == "q4_K");
        CHECK(types.at(b + "attn_norm.weight") == "f32");
        CHECK(types.at(b + "ffn_norm.weight") == "f32");
    }
    for (const auto& [name, type] : types) ++count[type];
    // the well-known census of a llama-7B Q4_K_M file
    CHECK(count["f32"] == 65);
    CHECK(count["q4_K"] == 193);
    CHECK(count["q6_K"] == 33);
}

TEST_CASE("quantize: recipe rules per file type (read from llama-quant.cpp)") {
    SynthParams p = synth_preset("mistral-7b");  // GQA 4, 32 layers
    SUBCASE("Q2_K: attn_v q4_K with GQA >= 4, q3_K below; ffn_down and attn_output q3_K") {
        auto t = plan_names(p, 32768, FileType::MOSTLY_Q2_K);
        CHECK(t["blk.5.attn_v.weight"] == "q4_K");
        CHECK(t["blk.5.ffn_down.weight"] == "q3_K");
        CHECK(t["blk.5.attn_output.weight"] == "q3_K");
        CHECK(t["blk.5.attn_q.weight"] == "q2_K");
        CHECK(t["token_embd.weight"] == "q2_K");
        CHECK(t["output.weight"] == "q6_K");
        p.n_head_kv = 16;  // GQA 2
        t = plan_names(p, 32768, FileType::MOSTLY_Q2_K);
        CHECK(t["blk.5.attn_v.weight"] == "q3_K");
    }
    SUBCASE("Q3_K_M: attn_v q5_K for the first 2, ffn_down q5_K for the first n/16, attn_output q4_K") {
        auto t = plan_names(p, 32768, FileType::MOSTLY_Q3_K_M);
        CHECK(t["blk.0.attn_v.weight"] == "q5_K");
        CHECK(t["blk.1.attn_v.weight"] == "q5_K");
        CHECK(t["blk.2.attn_v.weight"] == "q4_K");
        CHECK(t["blk.1.ffn_down.weight"] == "q5_K");
        CHECK(t["blk.2.ffn_down.weight"] == "q4_K");
        CHECK(t["blk.2.attn_output.weight"] == "q4_K");
        CHECK(t["blk.2.ffn_up.weight"] == "q3_K");
    }
    SUBCASE("Q4_K_S: attn_v q5_K for the first 4, ffn_down q5_K for the first n/8") {
        auto t = plan_names(p, 32768, FileType::MOSTLY_Q4_K_S);
        CHECK(t["blk.3.attn_v.weight"] == "q5_K");
        CHECK(t["blk.4.attn_v.weight"] == "q4_K");
        CHECK(t["blk.3.ffn_down.weight"] == "q5_K");
        CHECK(t["blk.4.ffn_down.weight"] == "q4_K");
    }
    SUBCASE("Q5_K_M: q6_K on the use_more_bits layers") {
        auto t = plan_names(p, 32768, FileType::MOSTLY_Q5_K_M);
        CHECK(t["blk.6.attn_v.weight"] == "q6_K");
        CHECK(t["blk.7.attn_v.weight"] == "q5_K");
        CHECK(t["blk.31.ffn_down.weight"] == "q6_K");
    }
    SUBCASE("Q8_0 keeps the output at q8_0; legacy types give it q6_K") {
        CHECK(plan_names(p, 32768, FileType::MOSTLY_Q8_0)["output.weight"] == "q8_0");
        CHECK(plan_names(p, 32768, FileType::MOSTLY_Q4_0)["output.weight"] == "q6_K");
        CHECK(plan_names(p, 32768, FileType::MOSTLY_Q5_1)["blk.0.ffn_down.weight"] == "q5_1");
    }
    SUBCASE("float file types convert every 2-D weight and keep 1-D tensors") {
        auto t = plan_names(p, 32768, FileType::MOSTLY_BF16);
        CHECK(t["output.weight"] == "bf16");
        CHECK(t["token_embd.weight"] == "bf16");
        CHECK(t["blk.0.attn_norm.weight"] == "f32");
    }
    SUBCASE("Llama-70B (80 layers, GQA): attn_v q5_K instead of q3_K/q4_K") {
        p.n_layer = 80;
        auto t = plan_names(p, 32768, FileType::MOSTLY_Q4_K_M);
        // use_more_bits(i, 80): i < 10, i >= 70, or (i - 10) % 3 == 2
        CHECK(t["blk.11.attn_v.weight"] == "q5_K");
        CHECK(t["blk.12.attn_v.weight"] == "q6_K");
        CHECK(t["blk.11.ffn_down.weight"] == "q4_K");
        p.n_head_kv = p.n_head;  // 65B: no GQA, no bump
        t = plan_names(p, 32768, FileType::MOSTLY_Q4_K_M);
        CHECK(t["blk.11.attn_v.weight"] == "q4_K");
    }
}

TEST_CASE("quantize: tied embeddings and 8-expert rules") {
    SynthParams p = synth_preset("mistral-7b");
    p.n_layer = 8;
    p.file_type = FileType::ALL_F32;
    auto tensors = recipe_tensors(plan_synth_tensors(p, 32768));
    RecipeModel m = recipe_model(p);
    auto type_of = [&](FileType ft, const std::string& name) {
        const auto c = plan_tensor_types(ft, m, tensors);
        for (size_t i = 0; i < tensors.size(); ++i)
            if (tensors[i].name == name) return std::string(type_name(c[i].type));
        return std::string("missing");
    };
    SUBCASE("without output.weight the embedding table is the output and gets its type") {
        tensors.erase(std::remove_if(tensors.begin(), tensors.end(),
                                     [](const RecipeTensor& t) { return t.name == "output.weight"; }),
                      tensors.end());
        CHECK(type_of(FileType::MOSTLY_Q4_K_M, "token_embd.weight") == "q6_K");
        CHECK(type_of(FileType::MOSTLY_Q8_0, "token_embd.weight") == "q8_0");
        CHECK(type_of(FileType::MOSTLY_Q4_0, "token_embd.weight") == "q6_K");
    }
    SUBCASE("8 experts: attn_v and attn_k q8_0, attn_output q5_K") {
        m.n_expert = 8;
        CHECK(type_of(FileType::MOSTLY_Q4_K_M, "blk.3.attn_v.weight") == "q8_0");
        CHECK(type_of(FileType::MOSTLY_Q4_K_M, "blk.3.attn_k.weight") == "q8_0");
        CHECK(type_of(FileType::MOSTLY_Q4_K_M, "blk.3.attn_output.weight") == "q5_K");
        CHECK(type_of(FileType::MOSTLY_Q5_K_M, "blk.3.attn_output.weight") == "q5_K");
    }
}

TEST_CASE("quantize: the plan does not depend on the order of the tensors in the file") {
    SynthParams p = synth_preset("mistral-7b");
    p.n_layer = 16;
    p.file_type = FileType::ALL_F32;
    const auto tensors = recipe_tensors(plan_synth_tensors(p, 32768));
    auto shuffled = tensors;
    std::mt19937 rng(3);
    std::shuffle(shuffled.begin(), shuffled.end(), rng);
    for (FileType ft : {FileType::MOSTLY_Q4_K_M, FileType::MOSTLY_Q3_K_M, FileType::MOSTLY_Q4_K_S}) {
        const auto a = plan_tensor_types(ft, recipe_model(p), tensors);
        const auto b = plan_tensor_types(ft, recipe_model(p), shuffled);
        std::map<std::string, GgmlType> by_name;
        for (size_t i = 0; i < tensors.size(); ++i) by_name[tensors[i].name] = a[i].type;
        for (size_t i = 0; i < shuffled.size(); ++i) {
            CAPTURE(shuffled[i].name);
            CHECK(by_name[shuffled[i].name] == b[i].type);
        }
    }
}

TEST_CASE("quantize: rows that do not split into blocks fall back as llama.cpp does") {
    RecipeModel m;
    m.n_layer = 1;
    m.n_head = 4;
    m.n_head_kv = 4;
    auto one = [&](FileType ft, const std::string& name, uint64_t ne0, uint64_t ne1 = 64) {
        std::vector<RecipeTensor> t = {{name, {ne0, ne1, 1, 1}, GgmlType::F16},
                                       {"output.weight", {256, 64, 1, 1}}};
        return plan_tensor_types(ft, m, t)[0];
    };
    // 800 = 25 blocks of 32, not a multiple of 256
    auto c = one(FileType::MOSTLY_Q4_K_S, "blk.0.attn_q.weight", 800);
    CHECK(c.type == GgmlType::Q5_0);
    REQUIRE(c.wanted);
    CHECK(*c.wanted == GgmlType::Q4_K);
    CHECK(one(FileType::MOSTLY_Q2_K, "blk.0.attn_q.weight", 800).type == GgmlType::Q4_0);
    CHECK(one(FileType::MOSTLY_Q3_K_S, "blk.0.attn_q.weight", 800).type == GgmlType::Q4_0);
    CHECK(one(FileType::MOSTLY_Q5_K_S, "blk.0.attn_q.weight", 800).type == GgmlType::Q5_1);
    CHECK(one(FileType::MOSTLY_Q6_K, "blk.0.attn_q.weight", 800).type == GgmlType::Q8_0);
    // 300 is not even a multiple of 32: f16
    c = one(FileType::MOSTLY_Q4_K_M, "blk.0.ffn_down.weight", 300);
    CHECK(c.type == GgmlType::F16);
    CHECK(one(FileType::MOSTLY_Q4_0, "blk.0.attn_q.weight", 300).type == GgmlType::F16);
    CHECK(*one(FileType::MOSTLY_Q4_0, "blk.0.attn_q.weight", 300).wanted == GgmlType::Q4_0);
    // fitting rows: no fallback
    CHECK_FALSE(one(FileType::MOSTLY_Q4_K_M, "blk.0.attn_q.weight", 512).wanted);
    CHECK_FALSE(one(FileType::MOSTLY_F16, "blk.0.attn_q.weight", 300).wanted);
    // the output matrix with a short row goes to q8_0 by its own rule, which is not a fallback
    std::vector<RecipeTensor> out = {{"output.weight", {384, 64, 1, 1}}};
    const auto oc = plan_tensor_types(FileType::MOSTLY_Q4_K_M, m, out)[0];
    CHECK(oc.type == GgmlType::Q8_0);
    CHECK_FALSE(oc.wanted);
}

TEST_CASE("quantize: every file type end to end") {
    ScratchDir dir("quantize_test");
    const SynthParams p = [] {
        SynthParams q = small_model();
        q.file_type = FileType::ALL_F32;
        return q;
    }();
    const auto src_path = dir / "model-f32.gguf";
    write_model(p, src_path);
    const gguf::GgufFile src = gguf::GgufFile::open(src_path.string());

    // relative RMS error of a round trip on Gaussian-like weights, with room to spare
    const std::map<GgmlType, double> tolerance = {
        {GgmlType::Q4_0, 0.12},  {GgmlType::Q4_1, 0.11},  {GgmlType::Q5_0, 0.06},  {GgmlType::Q5_1, 0.055},
        {GgmlType::Q8_0, 0.008}, {GgmlType::Q2_K, 0.40},  {GgmlType::Q3_K, 0.20},  {GgmlType::Q4_K, 0.10},
        {GgmlType::Q5_K, 0.05},  {GgmlType::Q6_K, 0.025}, {GgmlType::F16, 0.0004}, {GgmlType::BF16, 0.003},
        {GgmlType::F32, 0.0},
    };
    for (const auto& ft : file_types()) {
        const std::string ft_name = ft.name;
        CAPTURE(ft_name);
        const auto out_path = dir / (std::string("model-") + ft.name + ".gguf");
        const auto r =
            run_infer_cli("quantize " + shell_quote(src_path) + " " + shell_quote(out_path) + " " + ft.name);
        REQUIRE_MESSAGE(r.status == 0, r.err);
        CHECK(r.out.find("bits per weight") != std::string::npos);
        CHECK(r.err.find("[39/39] output.weight") == std::string::npos);  // 21 tensors, not 39
        CHECK(r.err.find("[21/21] output.weight") != std::string::npos);

        const gguf::GgufFile q = gguf::GgufFile::open(out_path.string());
        // metadata: every key copied with its value, except the two that say what the file is
        CHECK(q.get<uint32_t>("general.file_type") == static_cast<uint32_t>(ft.id));
        CHECK(q.get<uint32_t>("general.quantization_version") == 2);
        REQUIRE(q.metadata().size() == src.metadata().size());
        for (size_t i = 0; i < src.metadata().size(); ++i) {
            const auto& a = src.metadata()[i];
            const auto& b = q.metadata()[i];
            CHECK(a.key == b.key);
            if (a.key != "general.file_type") CHECK(gguf::to_json(a.value, 0) == gguf::to_json(b.value, 0));
        }
        // types as planned; values close to the input
        const auto plan =
            plan_tensor_types(ft.id, recipe_model(p), recipe_tensors(plan_synth_tensors(p, 512)));
        REQUIRE(q.tensors().size() == src.tensors().size());
        double worst = 0;
        for (size_t i = 0; i < src.tensors().size(); ++i) {
            const auto& a = src.tensors()[i];
            const auto& b = q.tensors()[i];
            CAPTURE(a.name);
            CHECK(a.name == b.name);
            CHECK(a.ne == b.ne);
            CHECK(b.type->type == plan[i].type);
            const auto x = tensor_floats(a), y = tensor_floats(b);
            const double e = relative_rms_error(x.data(), y.data(), x.size());
            if (b.type->type == GgmlType::F32) CHECK(e == 0.0);
            CHECK(e <= tolerance.at(b.type->type));
            if (b.type->type == file_type_info(ft.id).base_type) worst = std::max(worst, e);
        }
        MESSAGE(ft_name << ": worst relative RMS error of base-type tensors " << worst);
    }
}

TEST_CASE("quantize: F16 and BF16 inputs") {
    ScratchDir dir("quantize_test");
    for (FileType in_type : {FileType::MOSTLY_F16, FileType::MOSTLY_BF16}) {
        SynthParams p = small_model();
        p.file_type = in_type;
        const auto src_path = dir / "in.gguf";
        write_model(p, src_path);
        const auto out_path = dir / "out.gguf";
        const auto r =
            run_infer_cli("quantize " + shell_quote(src_path) + " " + shell_quote(out_path) + " Q8_0");
        REQUIRE_MESSAGE(r.status == 0, r.err);
        const std::string from = in_type == FileType::MOSTLY_F16 ? "f16 -> q8_0" : "bf16 -> q8_0";
        CHECK(r.err.find(from) != std::string::npos);
        const gguf::GgufFile src = gguf::GgufFile::open(src_path.string());
        const gguf::GgufFile q = gguf::GgufFile::open(out_path.string());
        for (size_t i = 0; i < src.tensors().size(); ++i) {
            const auto x = tensor_floats(src.tensors()[i]), y = tensor_floats(q.tensors()[i]);
            CHECK(relative_rms_error(x.data(), y.data(), x.size()) < 0.01);
        }
        CHECK(q.tensor("blk.0.attn_q.weight").type->type == GgmlType::Q8_0);
        CHECK(q.tensor("blk.0.attn_norm.weight").type->type == GgmlType::F32);
        std::filesystem::remove(out_path);
    }
}

TEST_CASE("quantize: refusals and usage errors") {
    ScratchDir dir("quantize_test");
    SynthParams p = small_model();
    p.file_type = FileType::MOSTLY_Q4_0;
    const auto quantized = dir / "q4_0.gguf";
    write_model(p, quantized);
    p.file_type = FileType::ALL_F32;
    const auto f32 = dir / "f32.gguf";
    write_model(p, f32);
    const auto out = dir / "out.gguf";

    auto r = run_infer_cli("quantize " + shell_quote(quantized) + " " + shell_quote(out) + " Q4_K_M");
    CHECK(r.status == 1);
    CHECK(r.err.find("token_embd.weight") != std::string::npos);
    CHECK(r.err.find("already q4_0") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(out));

    r = run_infer_cli("quantize " + shell_quote(f32) + " " + shell_quote(out) + " Q7_K");
    CHECK(r.status == 2);
    CHECK(r.err.find("unknown TYPE 'Q7_K'") != std::string::npos);
    CHECK(r.err.find("Q4_K_M") != std::string::npos);  // lists the known ones

    r = run_infer_cli("quantize " + shell_quote(f32) + " " + shell_quote(out));
    CHECK(r.status == 2);
    r = run_infer_cli("quantize " + shell_quote(f32) + " " + shell_quote(out) + " Q4_0 --bogus");
    CHECK(r.status == 2);

    r = run_infer_cli("quantize " + shell_quote(f32) + " " + shell_quote(f32) + " Q4_0");
    CHECK(r.status == 2);
    CHECK(r.err.find("is the input") != std::string::npos);
    CHECK(gguf::GgufFile::open(f32.string()).tensors().size() == 21);  // untouched

    r = run_infer_cli("quantize " + shell_quote(dir / "missing.gguf") + " " + shell_quote(out) + " Q4_0");
    CHECK(r.status == 1);
    CHECK(r.err.find("missing.gguf") != std::string::npos);

    r = run_infer_cli("quantize --help");
    CHECK(r.status == 0);
    CHECK(r.out.find("Q5_K_M") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(out));
}

TEST_CASE("quantize: a tensor whose rows do not fit the block size falls back, with a line saying so") {
    ScratchDir dir("quantize_test");
    SynthParams p = small_model(/*n_ff=*/800);  // ffn_down rows of 800: 25 blocks of 32, not of 256
    p.file_type = FileType::ALL_F32;
    const auto src = dir / "f32.gguf", out = dir / "q4km.gguf";
    write_model(p, src);
    const auto r = run_infer_cli("quantize " + shell_quote(src) + " " + shell_quote(out) + " Q4_K_M");
    REQUIRE_MESSAGE(r.status == 0, r.err);
    // 2 layers: use_more_bits gives layer 1 q6_K (-> q8_0) and layer 0 q4_K (-> q5_0)
    CHECK(r.err.find("blk.0.ffn_down.weight: row length 800 is not a multiple of the q4_K block size 256; "
                     "falling back to q5_0") != std::string::npos);
    CHECK(r.err.find("blk.1.ffn_down.weight: row length 800 is not a multiple of the q6_K block size 256; "
                     "falling back to q8_0") != std::string::npos);
    CHECK(r.out.find("2 of 21 tensors fell back") != std::string::npos);
    const gguf::GgufFile q = gguf::GgufFile::open(out.string());
    CHECK(q.tensor("blk.0.ffn_down.weight").type->type == GgmlType::Q5_0);
    CHECK(q.tensor("blk.1.ffn_down.weight").type->type == GgmlType::Q8_0);
    CHECK(q.tensor("blk.0.ffn_up.weight").type->type == GgmlType::Q4_K);
}
