// `infer synth` and filetools/synth_model.hpp: reproducible files, the tensor tables of the presets (the
// Mistral-7B one checked without writing 4.4 GB), hyperparameter flags, the documented weight scales, the
// tokenizer copied from a vocabulary file, and the streaming row writer underneath.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "filetools/row_stream.hpp"
#include "filetools/synth_model.hpp"
#include "gguf/gguf_file.hpp"
#include "gguf/gguf_writer.hpp"
#include "infer_cli.hpp"
#include "kinfer/error.hpp"
#include "kernels/reference/type_kernels.hpp"

using namespace kinfer;
using kinfer_test::run_infer_cli;
using kinfer_test::ScratchDir;
using kinfer_test::shell_quote;
using kinfer_test::slurp;

namespace {

// A small model with the built-in vocabulary: quick to write, even under sanitizers.
const std::string kSmall = "--preset tiny --vocab none --n-vocab 512 --n-layer 2 --n-ff 256 --quiet";

std::vector<float> tensor_floats(const gguf::TensorView& t) {
    std::vector<float> v(t.n_elements());
    for (uint64_t r = 0; r < t.n_rows(); ++r)
        ref::dequantize_fn(*t.type)(t.data + r * t.row_bytes(), v.data() + r * t.ne[0], t.ne[0]);
    return v;
}

struct Stats {
    double mean = 0, std = 0, max_abs = 0;
};
Stats stats(const std::vector<float>& v) {
    Stats s;
    for (float x : v) s.mean += x;
    s.mean /= double(v.size());
    for (float x : v) {
        s.std += (x - s.mean) * (x - s.mean);
        s.max_abs = std::max(s.max_abs, double(std::fabs(x)));
    }
    s.std = std::sqrt(s.std / double(v.size()));
    return s;
}

std::string shape_of(const gguf::TensorView& t) {
    std::string s;
    for (uint32_t d = 0; d < t.n_dims; ++d) s += (d ? "x" : "") + std::to_string(t.ne[d]);
    return s;
}

std::string shape_of(const SynthTensor& t) {
    std::string s;
    for (uint32_t d = 0; d < t.n_dims; ++d) s += (d ? "x" : "") + std::to_string(t.ne[d]);
    return s;
}

}  // namespace

TEST_CASE("synth: the same seed gives the same bytes, whatever the thread count; another seed does not") {
    ScratchDir dir("synth_test");
    const auto a = dir / "a.gguf", b = dir / "b.gguf", c = dir / "c.gguf";
    auto r = run_infer_cli("synth " + kSmall + " --seed 5 -o " + shell_quote(a));
    REQUIRE_MESSAGE(r.status == 0, r.err);
    r = run_infer_cli("synth " + kSmall + " --seed 5 -o " + shell_quote(b), "OMP_NUM_THREADS=1");
    REQUIRE_MESSAGE(r.status == 0, r.err);
    r = run_infer_cli("synth " + kSmall + " --seed 6 -o " + shell_quote(c), "OMP_NUM_THREADS=3");
    REQUIRE_MESSAGE(r.status == 0, r.err);
    const std::string ba = slurp(a), bb = slurp(b), bc = slurp(c);
    CHECK(ba.size() > 500000);
    CHECK(ba == bb);
    CHECK(ba != bc);
    CHECK(ba.size() == bc.size());

    const gguf::GgufFile fa = gguf::GgufFile::open(a.string()), fc = gguf::GgufFile::open(c.string());
    CHECK(fa.get<uint64_t>("kinfer.synth.seed") == 5);
    CHECK(fc.get<uint64_t>("kinfer.synth.seed") == 6);
    REQUIRE(fa.tensors().size() == fc.tensors().size());
    for (size_t i = 0; i < fa.tensors().size(); ++i) {
        const auto &x = fa.tensors()[i], &y = fc.tensors()[i];
        CHECK(x.name == y.name);
        CHECK(x.type == y.type);
        CHECK(x.ne == y.ne);
        // every tensor's data differs, not just one
        CHECK(std::string_view(reinterpret_cast<const char*>(x.data), x.n_bytes) !=
              std::string_view(reinterpret_cast<const char*>(y.data), y.n_bytes));
    }
}

TEST_CASE("synth: tiny preset loads and has the expected tensor table") {
    ScratchDir dir("synth_test");
    const auto path = dir / "tiny.gguf";
    const auto r = run_infer_cli("synth --preset tiny --vocab none --n-vocab 512 -o " + shell_quote(path));
    REQUIRE_MESSAGE(r.status == 0, r.err);
    CHECK(r.err.find("[39/39] output.weight") != std::string::npos);
    CHECK(r.out.find("39 tensors") != std::string::npos);
    const gguf::GgufFile f = gguf::GgufFile::open(path.string());

    CHECK(f.get<std::string>("general.architecture") == "llama");
    CHECK(f.get<std::string>("general.name") == "kinfer-synth-tiny");
    CHECK(f.get<uint32_t>("general.file_type") == 15);  // Q4_K_M, the default
    CHECK(f.get<uint32_t>("general.quantization_version") == 2);
    CHECK(f.get<uint32_t>("llama.embedding_length") == 256);
    CHECK(f.get<uint32_t>("llama.block_count") == 4);
    CHECK(f.get<uint32_t>("llama.attention.head_count") == 4);
    CHECK(f.get<uint32_t>("llama.attention.head_count_kv") == 2);
    CHECK(f.get<uint32_t>("llama.feed_forward_length") == 768);
    CHECK(f.get<uint32_t>("llama.rope.dimension_count") == 64);
    CHECK(f.get<uint32_t>("llama.vocab_size") == 512);
    CHECK(f.get<std::string>("tokenizer.ggml.model") == "llama");
    CHECK(f.get_array("tokenizer.ggml.tokens").count == 512);
    CHECK(f.get_array("tokenizer.ggml.tokens").string_at(1) == "<s>");
    CHECK(f.get_array("tokenizer.ggml.tokens").string_at(3 + 0x41) == "<0x41>");
    CHECK(f.get_array("tokenizer.ggml.scores").count == 512);
    CHECK(f.get_array("tokenizer.ggml.token_type").count == 512);
    CHECK(f.get<uint32_t>("tokenizer.ggml.bos_token_id") == 1);
    CHECK(f.get<uint32_t>("tokenizer.ggml.eos_token_id") == 2);

    // names and shapes in the converter's file order; types of the Q4_K_M mix for 4 layers (more bits on
    // layers 2 and 3)
    std::vector<std::tuple<std::string, std::string, std::string>> want = {
        {"token_embd.weight", "256x512", "q4_K"}};
    for (int l = 0; l < 4; ++l) {
        const std::string b = "blk." + std::to_string(l) + ".";
        const std::string more = l >= 2 ? "q6_K" : "q4_K";
        want.push_back({b + "attn_q.weight", "256x256", "q4_K"});
        want.push_back({b + "attn_k.weight", "256x128", "q4_K"});
        want.push_back({b + "attn_v.weight", "256x128", more});
        want.push_back({b + "attn_output.weight", "256x256", "q4_K"});
        want.push_back({b + "ffn_gate.weight", "256x768", "q4_K"});
        want.push_back({b + "ffn_up.weight", "256x768", "q4_K"});
        want.push_back({b + "ffn_down.weight", "768x256", more});
        want.push_back({b + "attn_norm.weight", "256", "f32"});
        want.push_back({b + "ffn_norm.weight", "256", "f32"});
    }
    want.push_back({"output_norm.weight", "256", "f32"});
    want.push_back({"output.weight", "256x512", "q6_K"});
    REQUIRE(f.tensors().size() == want.size());
    for (size_t i = 0; i < want.size(); ++i) {
        const auto& t = f.tensors()[i];
        CAPTURE(i);
        CHECK(t.name == std::get<0>(want[i]));
        CHECK(shape_of(t) == std::get<1>(want[i]));
        CHECK(std::string(t.type->name) == std::get<2>(want[i]));
    }
}

TEST_CASE("synth: every hyperparameter flag lands in the metadata and the shapes") {
    ScratchDir dir("synth_test");
    const auto path = dir / "custom.gguf";
    const auto r = run_infer_cli(
        "synth --vocab none --quiet --n-embd 512 --n-layer 3 --n-head 8 --n-head-kv 4 --n-ff 1024 --n-vocab "
        "300 "
        "--ctx 777 --rope-base 500000 --rope-dim 32 --eps 1e-6 --name custom-model --type Q8_0 --seed 9 -o " +
        shell_quote(path));
    REQUIRE_MESSAGE(r.status == 0, r.err);
    const gguf::GgufFile f = gguf::GgufFile::open(path.string());
    CHECK(f.get<std::string>("general.name") == "custom-model");
    CHECK(f.get<uint32_t>("llama.embedding_length") == 512);
    CHECK(f.get<uint32_t>("llama.block_count") == 3);
    CHECK(f.get<uint32_t>("llama.attention.head_count") == 8);
    CHECK(f.get<uint32_t>("llama.attention.head_count_kv") == 4);
    CHECK(f.get<uint32_t>("llama.feed_forward_length") == 1024);
    CHECK(f.get<uint32_t>("llama.vocab_size") == 300);
    CHECK(f.get<uint32_t>("llama.context_length") == 777);
    CHECK(f.get<float>("llama.rope.freq_base") == 500000.0f);
    CHECK(f.get<uint32_t>("llama.rope.dimension_count") == 32);
    CHECK(f.get<float>("llama.attention.layer_norm_rms_epsilon") == 1e-6f);
    CHECK(f.get<uint32_t>("general.file_type") == 7);  // Q8_0
    CHECK(f.get<uint64_t>("kinfer.synth.seed") == 9);
    CHECK(f.tensors().size() == 3 * 9 + 3);
    CHECK(shape_of(f.tensor("token_embd.weight")) == "512x300");
    CHECK(shape_of(f.tensor("blk.2.attn_k.weight")) == "512x256");  // 4 KV heads of 64
    CHECK(shape_of(f.tensor("blk.2.ffn_down.weight")) == "1024x512");
    CHECK(std::string(f.tensor("blk.2.ffn_up.weight").type->name) == "q8_0");
    CHECK(std::string(f.tensor("output.weight").type->name) == "q8_0");

    // flags override the preset whatever their order
    const auto p2 = dir / "override.gguf";
    const auto r2 =
        run_infer_cli("synth --n-layer 2 --vocab none --n-vocab 300 --quiet --preset tiny --type F16 -o " +
                      shell_quote(p2));
    REQUIRE_MESSAGE(r2.status == 0, r2.err);
    CHECK(gguf::GgufFile::open(p2.string()).get<uint32_t>("llama.block_count") == 2);
}

TEST_CASE("synth: the mistral-7b preset has the tensor table of Mistral-7B-Instruct-v0.3 Q4_K_M") {
    SynthParams p = synth_preset("mistral-7b");
    CHECK(p.n_embd == 4096);
    CHECK(p.n_layer == 32);
    CHECK(p.n_head == 32);
    CHECK(p.n_head_kv == 8);
    CHECK(p.n_ff == 14336);
    CHECK(p.n_ctx == 32768);
    CHECK(p.rope_base == 1e6f);
    CHECK(p.norm_eps == 1e-5f);
    p.file_type = FileType::MOSTLY_Q4_K_M;
    const auto t = plan_synth_tensors(p, 32768);
    REQUIRE(t.size() == 291);
    std::map<std::string, const SynthTensor*> by;
    for (const auto& x : t) by[x.name] = &x;
    REQUIRE(by.size() == 291);
    auto check = [&](const std::string& name, const std::string& shape, const char* type) {
        CAPTURE(name);
        REQUIRE(by.count(name));
        CHECK(shape_of(*by[name]) == shape);
        CHECK(std::string(type_name(by[name]->type)) == type);
    };
    check("token_embd.weight", "4096x32768", "q4_K");
    check("output.weight", "4096x32768", "q6_K");
    check("output_norm.weight", "4096", "f32");
    check("blk.0.ffn_down.weight", "14336x4096", "q6_K");
    check("blk.4.ffn_down.weight", "14336x4096", "q4_K");
    check("blk.0.attn_k.weight", "4096x1024", "q4_K");
    check("blk.0.attn_v.weight", "4096x1024", "q6_K");
    check("blk.5.attn_v.weight", "4096x1024", "q4_K");
    check("blk.31.attn_q.weight", "4096x4096", "q4_K");
    check("blk.31.attn_output.weight", "4096x4096", "q4_K");
    check("blk.31.ffn_gate.weight", "4096x14336", "q4_K");
    check("blk.31.ffn_up.weight", "4096x14336", "q4_K");
    check("blk.31.attn_norm.weight", "4096", "f32");
    check("blk.31.ffn_norm.weight", "4096", "f32");
    uint64_t bytes = 0, params = 0;
    std::map<std::string, int> census;
    for (const auto& x : t) {
        const uint64_t n = x.ne[0] * x.ne[1] * x.ne[2] * x.ne[3];
        params += n;
        bytes += n / type_traits(x.type).block_elems * type_traits(x.type).block_bytes;
        ++census[type_name(x.type)];
        CHECK_FALSE(x.wanted);  // every row fits its blocks
    }
    CHECK(params == 7248023552ull);
    CHECK(census["f32"] == 65);
    CHECK(census["q4_K"] == 193);
    CHECK(census["q6_K"] == 33);
    // bartowski's Mistral-7B-Instruct-v0.3-Q4_K_M.gguf is 4,372,812,000 bytes, of which ~0.76 MB header
    CHECK(bytes > 4360000000ull);
    CHECK(bytes < 4372812000ull);
    CHECK(4372812000ull - bytes < 1000000);

    // the command's --dry-run prints the same table without writing anything
    const auto r = run_infer_cli("synth --preset mistral-7b --vocab none --n-vocab 32768 --dry-run");
    REQUIRE_MESSAGE(r.status == 0, r.err);
    CHECK(r.out.find("291 tensors, 7248023552 parameters, " + std::to_string(bytes) + " bytes") !=
          std::string::npos);
}

TEST_CASE("synth: weights have the documented scales") {
    ScratchDir dir("synth_test");
    SynthParams p = synth_preset("tiny");
    p.n_vocab = 2048;
    p.file_type = FileType::ALL_F32;
    const auto path = dir / "f32.gguf";
    write_synth_model(p, nullptr, path.string());
    const gguf::GgufFile f = gguf::GgufFile::open(path.string());
    const double E = 256, F = 768, L = 4;
    const double residual = 1 / std::sqrt(2 * L);
    const std::map<std::string, double> sigma = {
        {"token_embd.weight", 0.5},
        {"blk.1.attn_q.weight", 1.5 / std::sqrt(E)},
        {"blk.1.attn_k.weight", 1.5 / std::sqrt(E)},
        {"blk.1.attn_v.weight", 1 / std::sqrt(E)},
        {"blk.1.attn_output.weight", residual / std::sqrt(E)},
        {"blk.1.ffn_gate.weight", 1 / std::sqrt(E)},
        {"blk.1.ffn_up.weight", 1 / std::sqrt(E)},
        {"blk.1.ffn_down.weight", residual / std::sqrt(F)},
    };
    for (const auto& [name, s] : sigma) {
        CAPTURE(name);
        const Stats st = stats(tensor_floats(f.tensor(name)));
        CHECK(std::fabs(st.std / s - 1) < 0.03);
        CHECK(std::fabs(st.mean) < 0.02 * s);
        CHECK(st.max_abs <= 3.47 * s);  // the draw is bounded at 2 sqrt(3) sigma
        CHECK(st.max_abs > 3.0 * s);
    }
    for (const char* name : {"blk.0.attn_norm.weight", "blk.3.ffn_norm.weight", "output_norm.weight"}) {
        CAPTURE(name);
        const auto v = tensor_floats(f.tensor(name));
        const Stats st = stats(v);
        CHECK(std::fabs(st.mean - 1) < 0.03);
        CHECK(st.std > 0.07);
        CHECK(st.std < 0.13);
        CHECK(*std::min_element(v.begin(), v.end()) > 0.6f);
    }
    // the output matrix: sigma 3/sqrt(E) spread per row, so row norms vary much more than in other matrices
    auto row_rms_ratio = [&](const char* name) {
        const auto& t = f.tensor(name);
        const auto v = tensor_floats(t);
        double lo = 1e30, hi = 0;
        for (uint64_t r = 0; r < t.n_rows(); ++r) {
            double s = 0;
            for (uint64_t i = 0; i < t.ne[0]; ++i) s += v[r * t.ne[0] + i] * v[r * t.ne[0] + i];
            lo = std::min(lo, s);
            hi = std::max(hi, s);
        }
        return std::sqrt(hi / lo);
    };
    CHECK(row_rms_ratio("output.weight") > 4.0);
    CHECK(row_rms_ratio("token_embd.weight") < 1.5);
    const Stats out = stats(tensor_floats(f.tensor("output.weight")));
    CHECK(out.std > 3 / std::sqrt(E));
    CHECK(out.std < 1.5 * 3 / std::sqrt(E));
    // tensors of the same shape get different values
    CHECK(tensor_floats(f.tensor("blk.0.attn_q.weight")) != tensor_floats(f.tensor("blk.1.attn_q.weight")));
}

TEST_CASE("synth at a TYPE gives the bytes of quantizing the F32 model to that TYPE") {
    ScratchDir dir("synth_test");
    const auto f32 = dir / "f32.gguf", direct = dir / "direct.gguf", via = dir / "via.gguf";
    REQUIRE(run_infer_cli("synth " + kSmall + " --type F32 --seed 3 -o " + shell_quote(f32)).status == 0);
    REQUIRE(run_infer_cli("synth " + kSmall + " --type Q4_K_M --seed 3 -o " + shell_quote(direct)).status ==
            0);
    const auto r = run_infer_cli("quantize --quiet " + shell_quote(f32) + " " + shell_quote(via) + " Q4_K_M");
    REQUIRE_MESSAGE(r.status == 0, r.err);
    const std::string a = slurp(direct), b = slurp(via);
    CHECK(a.size() > 100000);
    CHECK(a == b);
}

TEST_CASE("synth: the tokenizer is copied from --vocab") {
    const std::string vocab = std::string(KINFER_DATA_DIR) + "/vocab/mistral-v0.3-vocab.gguf";
    if (!std::filesystem::exists(vocab)) {
        FAIL("committed test data missing: " << vocab << " not found");
        return;
    }
    ScratchDir dir("synth_test");
    const auto path = dir / "tiny.gguf";
    auto r = run_infer_cli("synth --preset tiny --type Q8_0 --quiet --vocab " +
                           shell_quote(std::filesystem::path(vocab)) + " -o " + shell_quote(path));
    REQUIRE_MESSAGE(r.status == 0, r.err);
    const gguf::GgufFile v = gguf::GgufFile::open(vocab), f = gguf::GgufFile::open(path.string());
    size_t copied = 0;
    for (const auto& kv : v.metadata()) {
        if (kv.key.substr(0, 10) != "tokenizer.") continue;
        CAPTURE(kv.key);
        REQUIRE(f.has(kv.key));
        CHECK(gguf::to_json(kv.value, 0) == gguf::to_json(*f.find(kv.key), 0));
        ++copied;
    }
    CHECK(copied >= 10);
    CHECK(f.get<uint32_t>("llama.vocab_size") == 32768);
    CHECK(shape_of(f.tensor("token_embd.weight")) == "256x32768");
    CHECK(shape_of(f.tensor("output.weight")) == "256x32768");
    // the vocabulary's model hyperparameters are not copied
    CHECK(f.get<uint32_t>("llama.embedding_length") == 256);
    CHECK(f.get<std::string>("general.name") == "kinfer-synth-tiny");

    r = run_infer_cli("synth --preset tiny --n-vocab 1000 --vocab " +
                      shell_quote(std::filesystem::path(vocab)) + " -o " + shell_quote(dir / "x.gguf"));
    CHECK(r.status == 2);
    CHECK(r.err.find("--n-vocab 1000 does not match the 32768 tokens") != std::string::npos);
}

TEST_CASE("synth: usage errors") {
    ScratchDir dir("synth_test");
    const std::string out = " -o " + shell_quote(dir / "x.gguf");
    struct Case {
        std::string args, message;
    };
    const Case cases[] = {
        {"--preset huge" + out, "unknown preset 'huge' (known: tiny, mistral-7b)"},
        {"--vocab none --n-vocab 512 --n-embd 250 --n-head 4" + out, "n_head (4) must divide n_embd (250)"},
        {"--vocab none --n-vocab 512 --n-head 4 --n-head-kv 3" + out, "n_head_kv (3) must divide n_head (4)"},
        {"--vocab none --n-vocab 200" + out, "needs n_vocab >= 259"},
        {"--vocab none --n-vocab 512 --rope-dim 66" + out, "n_rot must be even and at most the head size 64"},
        {"--vocab none --n-vocab 512 --type Q9_K" + out, "unknown --type 'Q9_K'"},
        {"--vocab none --n-vocab 512 --n-layer 0" + out, "must be in [1,"},
        {"--vocab none --n-vocab 512 --eps -1" + out, "norm eps"},
        {"--vocab none --n-vocab 512", "needs -o"},
        {"--vocab " + shell_quote(dir / "nope.gguf") + out, "not found"},
        {"--bogus" + out, "unknown option '--bogus'"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.args);
        const auto r = run_infer_cli("synth " + c.args);
        CHECK(r.status == 2);
        CHECK_MESSAGE(r.err.find(c.message) != std::string::npos, r.err);
    }
    CHECK_FALSE(std::filesystem::exists(dir / "x.gguf"));
    CHECK_FALSE(std::filesystem::exists(dir / "x.gguf.part"));
    const auto h = run_infer_cli("synth --help");
    CHECK(h.status == 0);
    CHECK(h.out.find("activations stay in a sane range") != std::string::npos);
}

TEST_CASE("synth: the streaming row writer writes rows in order over many chunks") {
    ScratchDir dir("synth_test");
    gguf::GgufWriter w;
    const uint64_t n_rows = 200, row_len = 64;
    const uint64_t ne[2] = {row_len, n_rows};
    w.add_tensor("a", GgmlType::F32, ne);
    w.add_tensor("b", GgmlType::F16, ne);
    const auto path = dir / "rows.gguf";
    w.open(path.string());
    const RowFill fill = [](uint64_t row, float* out) {
        for (uint64_t i = 0; i < row_len; ++i) out[i] = float(row) + float(i) / 128.0f;
    };
    std::vector<uint64_t> reports;
    stream_tensor_rows(
        w, type_traits(GgmlType::F32), row_len, n_rows, fill, [&](uint64_t done) { reports.push_back(done); },
        /*chunk_bytes=*/1000);
    CHECK(reports.size() == 67);  // 1000-byte chunks of 256-byte rows: 3 rows each
    CHECK(std::is_sorted(reports.begin(), reports.end()));
    CHECK(reports.back() == n_rows);
    // a failing row aborts the tensor with the callback's exception, after the writes in flight are done
    const RowFill failing = [](uint64_t row, float* out) {
        if (row == 150) throw FormatError("row 150 is bad");
        std::fill(out, out + row_len, 0.0f);
    };
    CHECK_THROWS_WITH_AS(
        stream_tensor_rows(w, type_traits(GgmlType::F16), row_len, n_rows, failing, {}, 1000),
        "row 150 is bad", FormatError);
    // no quantizer for the type: an error, not a crash
    CHECK_THROWS_AS(stream_tensor_rows(w, type_traits(GgmlType::IQ2_XXS), 256, 1, fill), Error);
    // a row length that does not split into blocks
    CHECK_THROWS_AS(stream_tensor_rows(w, type_traits(GgmlType::Q4_0), 48, 1, fill), Error);
}

TEST_CASE("synth: the streaming row writer output reads back") {
    ScratchDir dir("synth_test");
    gguf::GgufWriter w;
    const uint64_t n_rows = 777, row_len = 96;
    const uint64_t ne[2] = {row_len, n_rows};
    w.add_tensor("x", GgmlType::F32, ne);
    w.add_tensor("y", GgmlType::Q8_0, ne);
    const auto path = dir / "rows.gguf";
    w.open(path.string());
    const RowFill fill = [](uint64_t row, float* out) {
        for (uint64_t i = 0; i < row_len; ++i) out[i] = float(row % 97) - float(i) * 0.25f;
    };
    stream_tensor_rows(w, type_traits(GgmlType::F32), row_len, n_rows, fill, {}, 16384);
    stream_tensor_rows(w, type_traits(GgmlType::Q8_0), row_len, n_rows, fill, {}, 16384);
    w.finish();
    const gguf::GgufFile f = gguf::GgufFile::open(path.string());
    const auto x = tensor_floats(f.tensor("x")), y = tensor_floats(f.tensor("y"));
    std::vector<float> row(row_len);
    for (uint64_t r = 0; r < n_rows; ++r) {
        fill(r, row.data());
        for (uint64_t i = 0; i < row_len; ++i) {
            REQUIRE(x[r * row_len + i] == row[i]);
            REQUIRE(std::fabs(y[r * row_len + i] - row[i]) < 0.5f);
        }
    }
}
