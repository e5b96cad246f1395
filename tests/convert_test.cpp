// `infer convert` / convert_hf_to_gguf: a checkpoint made by Hugging Face transformers
// (tests/fixtures/hf_tiny, scripts/dev/make_hf_fixture.py) must give transformers' token ids and logits;
// synthetic checkpoints cover the config.json variants, the tensor and tokenizer mapping exactly, and every
// refusal.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>

#include "convert/hf_to_gguf.hpp"
#include "gguf/gguf_file.hpp"
#include "kernels/cuda/cuda_info.hpp"
#include "kernels/fp16.hpp"
#include "kinfer/kinfer.hpp"
#include "tests/infer_cli.hpp"
#include "tests/support/reference_forward.hpp"
#include "tests/support/safetensors_builder.hpp"

using namespace kinfer;
using kinfer_test::ScratchDir;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::string kFixture = std::string(KINFER_SOURCE_DIR) + "/tests/fixtures/hf_tiny";

std::vector<float> read_f32_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    in.seekg(0, std::ios::end);
    std::vector<float> v(size_t(in.tellg()) / 4);
    in.seekg(0);
    in.read(reinterpret_cast<char*>(v.data()), std::streamsize(v.size() * 4));
    return v;
}

json read_json(const std::string& path) {
    std::ifstream in(path);
    return json::parse(in);
}

// Rows of a GGUF f32 tensor as floats.
std::vector<float> gguf_f32(const gguf::GgufFile& f, const std::string& name) {
    const auto& t = f.tensor(name);
    REQUIRE(t.type->type == GgmlType::F32);
    std::vector<float> v(t.n_elements());
    std::memcpy(v.data(), t.data, v.size() * 4);
    return v;
}

}  // namespace

TEST_CASE("convert: the transformers-made hf_tiny checkpoint gives transformers' tokens and logits (F32)") {
    ScratchDir dir("convert_hf");
    const std::string out = (dir / "tiny-f32.gguf").string();
    convert::ConvertOptions opt;
    opt.ftype = FileType::ALL_F32;
    const auto sum = convert::convert_hf_to_gguf(kFixture, out, opt);
    CHECK(sum.n_tensors == 3 * 9 + 3);
    CHECK(sum.config.architecture == "MistralForCausalLM");
    CHECK(sum.config.rope_theta == 1e6);  // from rope_parameters (transformers 5)

    const json expected = read_json(kFixture + "/expected.json");
    const std::vector<float> logits = read_f32_file(kFixture + "/expected_logits.f32");
    const int n_vocab = expected["vocab_size"].get<int>();

    {
        const auto f = gguf::GgufFile::open(out);
        CHECK(f.get<std::string>("general.architecture") == "llama");
        CHECK(f.get<uint32_t>("llama.attention.head_count_kv") == 2);
        CHECK(f.get<float>("llama.rope.freq_base") == 1e6f);
        CHECK(f.get<uint32_t>("llama.rope.dimension_count") == 16);
        CHECK(f.get<std::string>("tokenizer.chat_template") ==
              kinfer_test::slurp(kFixture + "/chat_template.jinja"));
        CHECK(f.get<uint32_t>("tokenizer.ggml.bos_token_id") == 1);
        CHECK(f.get<bool>("tokenizer.ggml.add_bos_token"));
        CHECK(f.find_tensor("output.weight") != nullptr);
    }

    ModelOptions mo;
    mo.kv_type = KvType::F32;
    mo.threads = 2;
    const Model model = Model::load(out, mo);
    REQUIRE(model.n_vocab() == n_vocab);
    size_t offset = 0;
    for (const auto& p : expected["prompts"]) {
        const std::string text = p["text"];
        const std::vector<int32_t> ids = p["ids"].get<std::vector<int32_t>>();
        INFO("prompt: " << text);
        CHECK(model.tokenize(text) == ids);  // transformers' tokenizer, BOS included
        Session s(model, 64);
        const auto got = s.feed(ids, /*all_logits=*/true);
        REQUIRE(got.size() == ids.size() * size_t(n_vocab));
        float lo = INFINITY, hi = -INFINITY, max_diff = 0;
        for (size_t i = 0; i < got.size(); ++i) {
            const float want = logits.at(offset + i);
            lo = std::min(lo, want);
            hi = std::max(hi, want);
            max_diff = std::max(max_diff, std::fabs(got[i] - want));
        }
        offset += got.size();
        INFO("max |kinfer - transformers| = " << max_diff << ", logit spread " << (hi - lo));
        CHECK(hi - lo > 5.0f);  // the fixture's logits are not degenerate
        CHECK(max_diff <= 1e-4f * (hi - lo));
    }
    CHECK(offset == logits.size());
}

TEST_CASE("convert: quantized types use the quantize recipe and stay close to F32") {
    ScratchDir dir("convert_q");
    convert::ConvertOptions opt;
    opt.ftype = FileType::MOSTLY_Q8_0;
    const std::string out = (dir / "tiny-q8.gguf").string();
    const auto sum = convert::convert_hf_to_gguf(kFixture, out, opt);
    {
        const auto f = gguf::GgufFile::open(out);
        CHECK(f.get<uint32_t>("general.file_type") == 7);
        CHECK(f.get<uint32_t>("general.quantization_version") == 2);
        CHECK(std::string(f.tensor("blk.0.attn_q.weight").type->name) == "q8_0");
        CHECK(std::string(f.tensor("blk.0.attn_norm.weight").type->name) == "f32");
    }
    CHECK(sum.out_tensor_bytes < sum.in_tensor_bytes / 3);
    const json expected = read_json(kFixture + "/expected.json");
    const std::vector<float> logits = read_f32_file(kFixture + "/expected_logits.f32");
    const Model model = Model::load(out, {.threads = 2});
    const std::vector<int32_t> ids = expected["prompts"][0]["ids"].get<std::vector<int32_t>>();
    Session s(model, 64);
    const auto got = s.feed(ids, true);
    double mean_diff = 0;
    for (size_t i = 0; i < got.size(); ++i) mean_diff += std::fabs(got[i] - logits[i]) / double(got.size());
    // q8_0 weights (and q8_0 activations in the dot products): off by about 0.4% of the logit spread
    CHECK(mean_diff < 0.1);
    CHECK(mean_diff > 1e-4);

    opt.ftype = FileType::MOSTLY_F16;
    const auto f16 = convert::convert_hf_to_gguf(kFixture, (dir / "tiny-f16.gguf").string(), opt);
    CHECK(f16.out_tensor_bytes * 2 > f16.in_tensor_bytes);
    CHECK(std::string(
              gguf::GgufFile::open((dir / "tiny-f16.gguf").string()).tensor("output.weight").type->name) ==
          "f16");
}

TEST_CASE("convert: the RoPE row permutation interleaves each head's halves") {
    const std::vector<uint64_t> want{0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15};
    for (uint64_t r = 0; r < want.size(); ++r) CHECK(convert::rope_permuted_source_row(r, 8) == want[r]);
}

namespace {

// A synthetic checkpoint in the older style: torch_dtype, top-level rope_theta, no head_dim, no
// num_key_value_heads (MHA), tied embeddings, BF16 weights in one model.safetensors, merges as "a b"
// strings, the chat template inside tokenizer_config.json.
struct SynthCheckpoint {
    json config = {{"architectures", {"LlamaForCausalLM"}},
                   {"hidden_size", 16},
                   {"intermediate_size", 24},
                   {"num_hidden_layers", 1},
                   {"num_attention_heads", 2},
                   {"max_position_embeddings", 128},
                   {"rms_norm_eps", 1e-6},
                   {"rope_theta", 500000.0},
                   {"tie_word_embeddings", true},
                   {"torch_dtype", "bfloat16"},
                   {"bos_token_id", 1},
                   {"eos_token_id", {2, 0}},
                   {"vocab_size", 265}};
    json tokenizer;
    json tokenizer_config = {{"bos_token", {{"content", "<s>"}, {"special", true}}},
                             {"eos_token", "</s>"},
                             {"add_bos_token", false},
                             {"chat_template", "{{ messages }}"}};
    std::vector<test::StTensor> tensors;
    std::map<std::string, std::vector<float>> values;  // as stored (BF16-rounded)

    SynthCheckpoint() {
        json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}};
        for (int b = 0; b < 256; ++b) {
            char name[8];
            std::snprintf(name, sizeof name, "<0x%02X>", b);
            vocab[name] = 3 + b;
        }
        vocab["\u2581"] = 259;
        vocab["a"] = 260;
        vocab["b"] = 261;
        vocab["\u2581a"] = 262;
        vocab["ab"] = 263;
        vocab["\u2581ab"] = 264;
        tokenizer = {{"added_tokens",
                      {{{"id", 0}, {"content", "<unk>"}, {"special", true}},
                       {{"id", 1}, {"content", "<s>"}, {"special", true}},
                       {{"id", 2}, {"content", "</s>"}, {"special", true}}}},
                     {"normalizer", nullptr},
                     {"pre_tokenizer",
                      {{"type", "Metaspace"}, {"replacement", "\u2581"}, {"prepend_scheme", "first"}}},
                     {"model",
                      {{"type", "BPE"},
                       {"byte_fallback", true},
                       {"unk_token", "<unk>"},
                       {"vocab", vocab},
                       {"merges", {"\u2581 a", "a b", "\u2581a b"}}}}};
        std::mt19937 rng(3);
        std::normal_distribution<float> nd(0.0f, 0.5f);
        const auto add = [&](const std::string& name, std::vector<uint64_t> shape) {
            uint64_t n = 1;
            for (auto d : shape) n *= d;
            std::vector<float> v(n);
            for (auto& x : v) x = bf16_to_fp32(fp32_to_bf16(nd(rng)));
            tensors.push_back(test::st_tensor(name, "BF16", shape, v));
            values[name] = v;
        };
        add("model.embed_tokens.weight", {265, 16});
        add("model.layers.0.input_layernorm.weight", {16});
        add("model.layers.0.self_attn.q_proj.weight", {16, 16});
        add("model.layers.0.self_attn.k_proj.weight", {16, 16});
        add("model.layers.0.self_attn.v_proj.weight", {16, 16});
        add("model.layers.0.self_attn.o_proj.weight", {16, 16});
        add("model.layers.0.post_attention_layernorm.weight", {16});
        add("model.layers.0.mlp.gate_proj.weight", {24, 16});
        add("model.layers.0.mlp.up_proj.weight", {24, 16});
        add("model.layers.0.mlp.down_proj.weight", {16, 24});
        add("model.norm.weight", {16});
    }

    void write(const fs::path& dir) const {
        fs::create_directories(dir);
        test::write_file((dir / "config.json").string(), config.dump());
        test::write_file((dir / "tokenizer.json").string(), tokenizer.dump());
        test::write_file((dir / "tokenizer_config.json").string(), tokenizer_config.dump());
        test::write_file((dir / "model.safetensors").string(), test::safetensors_bytes(tensors));
    }
};

// Converts a modified synthetic checkpoint and returns the error message ("" if it converted).
std::string convert_error(const std::function<void(SynthCheckpoint&)>& edit) {
    ScratchDir dir("convert_err");
    SynthCheckpoint c;
    edit(c);
    c.write(dir / "m");
    try {
        convert::convert_hf_to_gguf((dir / "m").string(), (dir / "out.gguf").string(), {});
    } catch (const FormatError& e) {
        CHECK_FALSE(fs::exists(dir / "out.gguf"));
        CHECK_FALSE(fs::exists(dir / "out.gguf.part"));
        return e.what();
    }
    return "";
}

void remove_tensor(SynthCheckpoint& c, const std::string& name) {
    std::erase_if(c.tensors, [&](const test::StTensor& t) { return t.name == name; });
}

}  // namespace

TEST_CASE("convert: older config.json style, tied BF16 weights: exact values, permuted Q/K, the tokenizer") {
    ScratchDir dir("convert_synth");
    SynthCheckpoint c;
    c.write(dir / "m");
    const std::string out = (dir / "m.gguf").string();
    convert::ConvertOptions opt;
    opt.ftype = FileType::ALL_F32;
    opt.name = "synthetic";
    const auto sum = convert::convert_hf_to_gguf((dir / "m").string(), out, opt);
    CHECK(sum.config.n_head_kv == 2);
    CHECK(sum.config.head_dim == 8);
    CHECK(sum.config.dtype == "bfloat16");
    CHECK(sum.config.eos_token_id == 2);
    const auto f = gguf::GgufFile::open(out);
    CHECK(f.get<std::string>("general.name") == "synthetic");
    CHECK(f.get<float>("llama.rope.freq_base") == 500000.0f);
    CHECK(f.get<float>("llama.attention.layer_norm_rms_epsilon") == 1e-6f);
    CHECK(f.get<uint32_t>("llama.context_length") == 128);
    CHECK_FALSE(f.has("llama.attention.key_length"));
    CHECK(f.find_tensor("output.weight") == nullptr);  // tied

    // Weights: BF16 -> F32 exactly; Q and K rows permuted, everything else as is.
    CHECK(gguf_f32(f, "token_embd.weight") == c.values["model.embed_tokens.weight"]);
    CHECK(gguf_f32(f, "blk.0.attn_v.weight") == c.values["model.layers.0.self_attn.v_proj.weight"]);
    CHECK(gguf_f32(f, "blk.0.ffn_down.weight") == c.values["model.layers.0.mlp.down_proj.weight"]);
    CHECK(gguf_f32(f, "blk.0.ffn_norm.weight") == c.values["model.layers.0.post_attention_layernorm.weight"]);
    CHECK(gguf_f32(f, "output_norm.weight") == c.values["model.norm.weight"]);
    for (const char* qk : {"q", "k"}) {
        const auto got = gguf_f32(f, std::string("blk.0.attn_") + qk + ".weight");
        const auto& src = c.values[std::string("model.layers.0.self_attn.") + qk + "_proj.weight"];
        // head h, pair i: GGUF rows 2i, 2i+1 are transformers' rows i, i + 4 of that head
        for (int h = 0; h < 2; ++h)
            for (int i = 0; i < 4; ++i)
                for (int j = 0; j < 2; ++j)
                    for (int col = 0; col < 16; ++col)
                        CHECK(got[(h * 8 + 2 * i + j) * 16 + col] == src[(h * 8 + j * 4 + i) * 16 + col]);
    }

    // Tokenizer: types, merge-rank scores, flags, chat template from tokenizer_config.json.
    const auto& toks = f.get_array("tokenizer.ggml.tokens");
    CHECK(toks.count == 265);
    const auto scores = f.get_array("tokenizer.ggml.scores");
    const auto types = f.get_array("tokenizer.ggml.token_type");
    const auto score = [&](int i) {
        float s;
        std::memcpy(&s, scores.raw.data() + 4 * i, 4);
        return s;
    };
    const auto type = [&](int i) {
        int32_t t;
        std::memcpy(&t, types.raw.data() + 4 * i, 4);
        return t;
    };
    CHECK(type(0) == 2);
    CHECK(type(1) == 3);
    CHECK(type(3) == 6);
    CHECK(type(262) == 1);
    CHECK(score(262) == 0.0f);   // "▁a": merge 0
    CHECK(score(263) == -1.0f);  // "ab": merge 1
    CHECK(score(264) == -2.0f);  // "▁ab": merge 2
    CHECK(score(260) < score(264));
    CHECK_FALSE(f.get<bool>("tokenizer.ggml.add_bos_token"));
    CHECK(f.get<bool>("tokenizer.ggml.add_space_prefix"));
    CHECK(f.get<uint32_t>("tokenizer.ggml.eos_token_id") == 2);
    CHECK(f.get<std::string>("tokenizer.chat_template") == "{{ messages }}");

    // kinfer loads and runs it; its tokenizer makes the merges.
    const Model model = Model::load(out, {.threads = 1});
    CHECK(model.tokenize("ab ab", true) == std::vector<int32_t>{264, 264});
    CHECK(model.tokenize("ba") == std::vector<int32_t>{259, 261, 260});
    Session s(model, 16);
    const auto logits = s.feed(std::vector<int32_t>{1, 264, 262});
    REQUIRE(logits.size() == 265);
    for (float x : logits) REQUIRE(std::isfinite(x));
}

TEST_CASE("convert: current config.json style (rope_parameters, dtype, head_dim, eos list) and sharding") {
    ScratchDir dir("convert_shard");
    SynthCheckpoint c;
    c.config.erase("rope_theta");
    c.config.erase("torch_dtype");
    c.config["dtype"] = "bfloat16";
    c.config["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 2500.0}};
    c.config["head_dim"] = 8;
    c.config["num_key_value_heads"] = 1;
    c.config["tie_word_embeddings"] = false;
    c.tensors[3] = test::st_tensor("model.layers.0.self_attn.k_proj.weight", "F16", {8, 16},
                                   std::vector<float>(128, 0.5f));
    c.tensors[4] = test::st_tensor("model.layers.0.self_attn.v_proj.weight", "F32", {8, 16},
                                   std::vector<float>(128, 0.25f));
    c.tensors.push_back(
        test::st_tensor("lm_head.weight", "F32", {265, 16}, std::vector<float>(265 * 16, 1.0f)));
    c.write(dir / "m");
    // Split the weights over two shards with an index.
    fs::remove(dir / "m" / "model.safetensors");
    std::vector<test::StTensor> a(c.tensors.begin(), c.tensors.begin() + 5),
        b(c.tensors.begin() + 5, c.tensors.end());
    test::write_file((dir / "m" / "model-00001-of-00002.safetensors").string(), test::safetensors_bytes(a));
    test::write_file((dir / "m" / "model-00002-of-00002.safetensors").string(), test::safetensors_bytes(b));
    json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", json::object()}};
    for (const auto& t : a) index["weight_map"][t.name] = "model-00001-of-00002.safetensors";
    for (const auto& t : b) index["weight_map"][t.name] = "model-00002-of-00002.safetensors";
    test::write_file((dir / "m" / "model.safetensors.index.json").string(), index.dump());

    const auto sum = convert::convert_hf_to_gguf((dir / "m").string(), (dir / "m.gguf").string(), {});
    CHECK(sum.config.rope_theta == 2500.0);
    const auto f = gguf::GgufFile::open((dir / "m.gguf").string());
    CHECK(f.get<float>("llama.rope.freq_base") == 2500.0f);
    CHECK(f.get<uint32_t>("llama.attention.head_count_kv") == 1);
    CHECK(std::string(f.tensor("output.weight").type->name) == "f16");
    CHECK(std::string(f.tensor("output_norm.weight").type->name) == "f32");
    CHECK(f.tensor("blk.0.attn_k.weight").ne[1] == 8);

    // The index names a tensor its shard does not have.
    index["weight_map"]["model.norm.weight"] = "model-00001-of-00002.safetensors";
    test::write_file((dir / "m" / "model.safetensors.index.json").string(), index.dump());
    CHECK_THROWS_WITH_AS(
        convert::convert_hf_to_gguf((dir / "m").string(), (dir / "x.gguf").string(), {}),
        doctest::Contains("tensor 'model.norm.weight' is not in model-00001-of-00002.safetensors"),
        FormatError);
}

TEST_CASE(
    "convert: head_dim != hidden_size / num_attention_heads converts and runs like the float64 reference") {
    // Mistral-Nemo-style config: an explicit head_dim (16) with 2 heads
    // on a hidden size of 16, so Q is 32 wide, K/V (one KV head) 16, and o_proj maps 32 back to 16.
    // transformers is not available here (the checkpoint is synthetic), so the truth is our float64 reference
    // forward (tests/support), which follows llama.cpp's graph with key_length as the head size.
    ScratchDir dir("convert_head_dim");
    SynthCheckpoint c;
    c.config["head_dim"] = 16;
    c.config["num_key_value_heads"] = 1;
    std::mt19937 rng(11);
    std::normal_distribution<float> nd(0.0f, 0.4f);
    const auto random_f32 = [&](const std::string& name, std::vector<uint64_t> shape) {
        std::vector<float> v(shape[0] * shape[1]);
        for (auto& x : v) x = nd(rng);
        return test::st_tensor(name, "F32", shape, v);
    };
    for (auto& t : c.tensors) {
        if (t.name == "model.layers.0.self_attn.q_proj.weight") t = random_f32(t.name, {32, 16});
        if (t.name == "model.layers.0.self_attn.k_proj.weight") t = random_f32(t.name, {16, 16});
        if (t.name == "model.layers.0.self_attn.v_proj.weight") t = random_f32(t.name, {16, 16});
        if (t.name == "model.layers.0.self_attn.o_proj.weight") t = random_f32(t.name, {16, 32});
    }
    c.write(dir / "m");
    const std::string out = (dir / "m.gguf").string();
    convert::ConvertOptions opt;
    opt.ftype = FileType::ALL_F32;
    const auto sum = convert::convert_hf_to_gguf((dir / "m").string(), out, opt);
    CHECK(sum.config.head_dim == 16);
    const auto f = gguf::GgufFile::open(out);
    CHECK(f.get<uint32_t>("llama.attention.key_length") == 16);
    CHECK(f.get<uint32_t>("llama.attention.value_length") == 16);
    CHECK(f.get<uint32_t>("llama.rope.dimension_count") == 16);
    CHECK(f.tensor("blk.0.attn_q.weight").ne[1] == 32);
    CHECK(f.tensor("blk.0.attn_output.weight").ne[0] == 32);

    const testing::ReferenceForward ref(f);
    REQUIRE(ref.config().head_dim == 16);
    const std::vector<int32_t> ids = {1, 264, 262, 40, 7, 263, 100, 5, 261};
    const auto truth = ref.logits(ids);
    const Model model = Model::load(out, {.threads = 2, .kv_type = KvType::F32});
    const auto check_rows = [&](std::span<const float> got, size_t row, const char* path) {
        const double err = testing::relative_logit_error(got, truth[row]);
        INFO(path << ", position " << row << ": max error " << err << " of the logit spread");
        CHECK(err < 1e-5);
    };
    Session prefill(model, 16);
    const auto all = prefill.feed(ids, /*all_logits=*/true);
    REQUIRE(all.size() == ids.size() * 265);
    for (size_t r = 0; r < ids.size(); ++r) check_rows(all.subspan(r * 265, 265), r, "prefill");
    Session decode(model, 16);
    for (size_t r = 0; r < ids.size(); ++r)
        check_rows(decode.feed(std::span<const int32_t>(&ids[r], 1)), r, "decode");
    if (cuda::query_devices().count > 0) {
        // The CUDA backend's rows are multiples of 32 elements: this hidden size of 16 is refused at load,
        // naming the first tensor it cannot take (not run with garbage).
        CHECK_THROWS_WITH_AS(Model::load(out, {.device = Device::Cuda}),
                             doctest::Contains("token_embd.weight: rows of 16 f32 elements"), Error);
    }
}

TEST_CASE("convert: clear errors for unsupported or inconsistent checkpoints") {
    CHECK(convert_error([](SynthCheckpoint&) {}) == "");
    const auto has = [](const std::string& msg, const std::string& part) {
        INFO("message: " << msg);
        CHECK(msg.find(part) != std::string::npos);
    };
    has(convert_error([](SynthCheckpoint& c) { c.config["architectures"] = {"Qwen2ForCausalLM"}; }),
        "config.json: architecture [\"Qwen2ForCausalLM\"] is not supported");
    has(convert_error([](SynthCheckpoint& c) { c.config.erase("architectures"); }), "names no architecture");
    has(convert_error([](SynthCheckpoint& c) { remove_tensor(c, "model.layers.0.self_attn.k_proj.weight"); }),
        "tensor 'model.layers.0.self_attn.k_proj.weight' is missing from the checkpoint");
    has(convert_error([](SynthCheckpoint& c) {
            c.tensors[5] = test::st_tensor("model.layers.0.self_attn.o_proj.weight", "F32", {16, 8},
                                           std::vector<float>(128, 0.f));
        }),
        "model.safetensors: tensor 'model.layers.0.self_attn.o_proj.weight' has shape [16, 8], but");
    has(convert_error([](SynthCheckpoint& c) {
            c.tensors.push_back(
                test::st_tensor("model.layers.0.self_attn.q_proj.bias", "F32", {16}, std::vector<float>(16)));
        }),
        "tensor 'model.layers.0.self_attn.q_proj.bias' is not part of the llama architecture");
    has(convert_error([](SynthCheckpoint& c) {
            c.tensors[1] = {"model.layers.0.input_layernorm.weight", "I32", {16}, std::vector<uint8_t>(64)};
        }),
        "tensor 'model.layers.0.input_layernorm.weight' is I32");
    has(convert_error([](SynthCheckpoint& c) { c.config["vocab_size"] = 300; }), "has 265 rows, but");
    has(convert_error([](SynthCheckpoint& c) {
            c.config["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8}};
        }),
        "rope_scaling has rope_type \"llama3\"");
    has(convert_error([](SynthCheckpoint& c) { c.config["num_key_value_heads"] = 3; }),
        "num_key_value_heads = 3 does not divide num_attention_heads = 2");
    has(convert_error([](SynthCheckpoint& c) { c.config["hidden_size"] = "16"; }),
        "hidden_size is \"16\", not an integer");
    has(convert_error([](SynthCheckpoint& c) { c.config["attention_bias"] = true; }),
        "attention_bias is true");
    has(convert_error([](SynthCheckpoint& c) { c.tokenizer["model"]["byte_fallback"] = false; }),
        "tokenizer.json: a BPE without byte_fallback");
    has(convert_error([](SynthCheckpoint& c) { c.tokenizer["model"]["type"] = "WordPiece"; }),
        "model type \"WordPiece\" is not supported");
    has(convert_error([](SynthCheckpoint& c) { c.tokenizer["model"]["merges"].push_back("b a"); }),
        "makes 'ba', which is not in the vocabulary");
    has(convert_error([](SynthCheckpoint& c) { c.tokenizer["model"]["vocab"]["zz"] = 400; }),
        "'zz' has id 400, but the model has 265 embedding rows");
    has(convert_error([](SynthCheckpoint& c) { c.tokenizer_config["bos_token"] = "<bos>"; }),
        "tokenizer_config.json: bos_token '<bos>' is not in the vocabulary");
}

TEST_CASE("convert: the CLI converts, reports and refuses bad arguments") {
    ScratchDir dir("convert_cli");
    const auto out = dir / "tiny.gguf";
    auto r = kinfer_test::run_infer_cli("convert " + kinfer_test::shell_quote(kFixture) + " " +
                                        kinfer_test::shell_quote(out) + " --type bf16");
    INFO(r.err);
    CHECK(r.status == 0);
    CHECK(
        r.out.find("BF16, MistralForCausalLM, 3 layers, n_embd 64, 4 heads (2 KV), vocab 425, 30 tensors") !=
        std::string::npos);
    CHECK(r.err.find("[30/30] output.weight") != std::string::npos);
    CHECK(std::string(gguf::GgufFile::open(out.string()).tensor("blk.1.ffn_up.weight").type->name) == "bf16");
    r = kinfer_test::run_infer_cli("convert " + kinfer_test::shell_quote(kFixture) + " x.gguf --type Q9");
    CHECK(r.status == 2);
    CHECK(r.err.find("unknown --type 'Q9'") != std::string::npos);
    r = kinfer_test::run_infer_cli("convert " + kinfer_test::shell_quote(dir.path()) + " " +
                                   kinfer_test::shell_quote(dir / "y.gguf"));
    CHECK(r.status == 1);
    CHECK(r.err.find("no config.json") != std::string::npos);
    r = kinfer_test::run_infer_cli("convert --help");
    CHECK(r.status == 0);
    CHECK(r.out.find("usage: infer convert MODEL_DIR OUT.gguf") != std::string::npos);
}
