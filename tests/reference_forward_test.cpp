// Tests of the float64 reference forward pass (tests/support/reference_forward.*): each building block
// against values worked out by hand, and the whole model against properties that hold for any weights.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "gguf/gguf_file.hpp"
#include "gguf/gguf_writer.hpp"
#include "kinfer/error.hpp"
#include "tests/support/reference_forward.hpp"

using namespace kinfer;
using namespace kinfer::testing;

namespace {

// A tiny llama model in memory with seeded random F32 weights. Tensors named in `zero` are all zeros.
struct TinyModel {
    int64_t n_vocab = 16, n_embd = 8, n_head = 4, n_head_kv = 2, n_ff = 12, n_layer = 2;
    bool tied = false;
    std::vector<std::string> zero;
    std::map<std::string, std::vector<float>> weights;  // filled by build()
    std::vector<uint8_t> bytes;

    gguf::GgufFile build(uint32_t seed = 7) {
        gguf::GgufWriter w;
        w.add_string("general.architecture", "llama");
        w.add_u32("llama.embedding_length", uint32_t(n_embd));
        w.add_u32("llama.block_count", uint32_t(n_layer));
        w.add_u32("llama.attention.head_count", uint32_t(n_head));
        w.add_u32("llama.attention.head_count_kv", uint32_t(n_head_kv));
        w.add_u32("llama.feed_forward_length", uint32_t(n_ff));
        w.add_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
        w.add_f32("llama.rope.freq_base", 10000.0f);
        const int64_t hd = n_embd / n_head;
        std::vector<std::pair<std::string, std::vector<uint64_t>>> shapes = {
            {"token_embd.weight", {uint64_t(n_embd), uint64_t(n_vocab)}},
            {"output_norm.weight", {uint64_t(n_embd)}}};
        if (!tied) shapes.push_back({"output.weight", {uint64_t(n_embd), uint64_t(n_vocab)}});
        for (int64_t il = 0; il < n_layer; ++il) {
            const std::string p = "blk." + std::to_string(il) + ".";
            shapes.push_back({p + "attn_norm.weight", {uint64_t(n_embd)}});
            shapes.push_back({p + "attn_q.weight", {uint64_t(n_embd), uint64_t(n_head * hd)}});
            shapes.push_back({p + "attn_k.weight", {uint64_t(n_embd), uint64_t(n_head_kv * hd)}});
            shapes.push_back({p + "attn_v.weight", {uint64_t(n_embd), uint64_t(n_head_kv * hd)}});
            shapes.push_back({p + "attn_output.weight", {uint64_t(n_head * hd), uint64_t(n_embd)}});
            shapes.push_back({p + "ffn_norm.weight", {uint64_t(n_embd)}});
            shapes.push_back({p + "ffn_gate.weight", {uint64_t(n_embd), uint64_t(n_ff)}});
            shapes.push_back({p + "ffn_up.weight", {uint64_t(n_embd), uint64_t(n_ff)}});
            shapes.push_back({p + "ffn_down.weight", {uint64_t(n_ff), uint64_t(n_embd)}});
        }
        std::mt19937 rng(seed);
        std::normal_distribution<float> normal(0.0f, 0.5f);
        std::vector<std::span<const uint8_t>> data;
        for (auto& [name, ne] : shapes) {
            w.add_tensor(name, GgmlType::F32, ne);
            uint64_t n = 1;
            for (auto e : ne) n *= e;
            auto& v = weights[name];
            v.resize(n);
            const bool is_zero = std::find(zero.begin(), zero.end(), name) != zero.end();
            const bool is_norm = name.find("norm") != std::string::npos;
            for (auto& x : v) x = is_zero ? 0.0f : is_norm ? 1.0f + normal(rng) * 0.2f : normal(rng);
        }
        for (auto& [name, ne] : shapes)
            data.emplace_back(reinterpret_cast<const uint8_t*>(weights[name].data()),
                              weights[name].size() * 4);
        bytes = w.to_bytes(data);
        return gguf::GgufFile::from_bytes(bytes);
    }
};

double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
    REQUIRE(a.size() == b.size());
    double m = 0;
    for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
    return m;
}

// Naive logits for a single token at position 0, computed independently of ReferenceForward: at position 0
// RoPE is the identity and attention over one token returns its value vector, so each layer is plain algebra.
std::vector<double> single_token_logits(TinyModel& m, int32_t tok) {
    const int64_t E = m.n_embd, hd = m.n_embd / m.n_head, group = m.n_head / m.n_head_kv;
    auto W = [&](const std::string& name) -> const std::vector<float>& { return m.weights.at(name); };
    auto mat = [&](const std::string& name, const std::vector<double>& x, int64_t rows) {
        std::vector<double> y(rows, 0.0);
        for (int64_t r = 0; r < rows; ++r)
            for (size_t i = 0; i < x.size(); ++i) y[r] += double(W(name)[r * x.size() + i]) * x[i];
        return y;
    };
    auto norm = [&](std::vector<double> x, const std::string& name) {
        double ss = 0;
        for (double v : x) ss += v * v;
        const double s = 1.0 / std::sqrt(ss / double(x.size()) + 1e-5);
        for (size_t i = 0; i < x.size(); ++i) x[i] *= s * double(W(name)[i]);
        return x;
    };
    std::vector<double> x(E);
    for (int64_t i = 0; i < E; ++i) x[i] = W("token_embd.weight")[tok * E + i];
    for (int64_t il = 0; il < m.n_layer; ++il) {
        const std::string p = "blk." + std::to_string(il) + ".";
        const auto v = mat(p + "attn_v.weight", norm(x, p + "attn_norm.weight"), m.n_head_kv * hd);
        std::vector<double> attn(m.n_head * hd);  // each query head copies the value of its kv head
        for (int64_t h = 0; h < m.n_head; ++h)
            for (int64_t d = 0; d < hd; ++d) attn[h * hd + d] = v[(h / group) * hd + d];
        const auto o = mat(p + "attn_output.weight", attn, E);
        for (int64_t i = 0; i < E; ++i) x[i] += o[i];
        const auto n2 = norm(x, p + "ffn_norm.weight");
        const auto g = mat(p + "ffn_gate.weight", n2, m.n_ff);
        const auto u = mat(p + "ffn_up.weight", n2, m.n_ff);
        std::vector<double> act(m.n_ff);
        for (int64_t i = 0; i < m.n_ff; ++i) act[i] = g[i] / (1 + std::exp(-g[i])) * u[i];
        const auto d = mat(p + "ffn_down.weight", act, E);
        for (int64_t i = 0; i < E; ++i) x[i] += d[i];
    }
    return mat(m.tied ? "token_embd.weight" : "output.weight", norm(x, "output_norm.weight"), m.n_vocab);
}

}  // namespace

TEST_CASE("reference rms_norm matches a hand computation") {
    std::vector<double> x = {3.0, 4.0};
    const std::vector<double> w = {1.0, 2.0};
    rms_norm(x, w, 0.0);  // mean of squares 12.5
    CHECK(x[0] == doctest::Approx(3.0 / std::sqrt(12.5)).epsilon(1e-15));
    CHECK(x[1] == doctest::Approx(8.0 / std::sqrt(12.5)).epsilon(1e-15));
}

TEST_CASE("reference rope rotates adjacent pairs by pos * base^(-2i/n_rot)") {
    // Unit vector on element 2 = first element of pair 1; with n_rot 8 and base 10000 that pair turns by
    // pos * 10000^(-2/8) = pos * 0.1 radians, moving weight into element 3 (not into element 2 + 4, as the
    // "rotate halves" NeoX convention would).
    std::vector<double> h(8, 0.0);
    h[2] = 1.0;
    rope_adjacent_pairs(h, 8, 3, 10000.0, 1.0);
    CHECK(h[2] == doctest::Approx(std::cos(0.3)).epsilon(1e-12));
    CHECK(h[3] == doctest::Approx(std::sin(0.3)).epsilon(1e-12));
    for (int i : {0, 1, 4, 5, 6, 7}) CHECK(h[i] == 0.0);

    // Pair 0 turns by pos radians; the second element of a pair turns towards minus the first.
    std::vector<double> g = {0.0, 1.0, 0.0, 0.0};
    rope_adjacent_pairs(g, 4, 2, 10000.0, 1.0);
    CHECK(g[0] == doctest::Approx(-std::sin(2.0)).epsilon(1e-12));
    CHECK(g[1] == doctest::Approx(std::cos(2.0)).epsilon(1e-12));

    // Position 0 is the identity; linear scaling 0.5 at pos 4 equals pos 2 unscaled.
    std::vector<double> a = {0.3, -1.2, 0.7, 2.0}, b = a, c = a;
    rope_adjacent_pairs(a, 4, 0, 10000.0, 1.0);
    CHECK(a == std::vector<double>{0.3, -1.2, 0.7, 2.0});
    rope_adjacent_pairs(b, 4, 4, 10000.0, 0.5);
    rope_adjacent_pairs(c, 4, 2, 10000.0, 1.0);
    CHECK(max_abs_diff(b, c) < 1e-14);
}

TEST_CASE(
    "reference attention is causal, scaled by 1/sqrt(head_dim), and maps query head h to kv head h/group") {
    // 2 tokens, 4 query heads, 2 kv heads, head_dim 2. Query heads 0,1 must read kv head 0; 2,3 kv head 1.
    const int64_t n = 2, nh = 4, nkv = 2, hd = 2;
    std::vector<double> q(n * nh * hd, 0.0), k(n * nkv * hd, 0.0), v(n * nkv * hd, 0.0);
    // kv head 0: values 0 at token 0 and 10 at token 1; kv head 1: values 1 and 3.
    for (int d = 0; d < hd; ++d) {
        v[0 * nkv * hd + 0 * hd + d] = 0.0;
        v[1 * nkv * hd + 0 * hd + d] = 10.0;
        v[0 * nkv * hd + 1 * hd + d] = 1.0;
        v[1 * nkv * hd + 1 * hd + d] = 3.0;
    }
    // kv head 0 keys: (0,0) then (1,0); head 0's query at token 1 is (2,0): scores 0 and 2/sqrt(2).
    k[1 * nkv * hd + 0 * hd + 0] = 1.0;
    q[1 * nh * hd + 0 * hd + 0] = 2.0;
    const auto out = causal_attention(q, k, v, n, nh, nkv, hd);
    auto at = [&](int64_t t, int64_t h, int64_t d) { return out[(t * nh + h) * hd + d]; };
    // Token 0 sees only itself.
    for (int d = 0; d < hd; ++d) {
        CHECK(at(0, 0, d) == 0.0);
        CHECK(at(0, 1, d) == 0.0);
        CHECK(at(0, 2, d) == 1.0);
        CHECK(at(0, 3, d) == 1.0);
    }
    const double w1 = std::exp(std::sqrt(2.0)) / (1.0 + std::exp(std::sqrt(2.0)));
    CHECK(at(1, 0, 0) == doctest::Approx(10.0 * w1).epsilon(1e-12));
    CHECK(at(1, 1, 0) == doctest::Approx(5.0).epsilon(1e-12));  // zero query: uniform weights over kv head 0
    CHECK(at(1, 2, 0) == doctest::Approx(2.0).epsilon(1e-12));  // kv head 1, uniform
    CHECK(at(1, 3, 1) == doctest::Approx(2.0).epsilon(1e-12));
}

TEST_CASE("reference forward of one token equals a naive computation") {
    for (bool tied : {false, true}) {
        TinyModel m;
        m.tied = tied;
        const auto file = m.build();
        const ReferenceForward ref(file);
        CHECK(ref.config().n_vocab == m.n_vocab);
        CHECK(ref.config().head_dim == 2);
        for (int32_t tok : {0, 5, 15}) {
            const std::vector<int32_t> toks = {tok};
            const auto got = ref.logits(toks);
            REQUIRE(got.size() == 1);
            CHECK(max_abs_diff(got[0], single_token_logits(m, tok)) <
                  1e-9);  // differs by rounding order only
        }
    }
}

TEST_CASE("reference forward with silent layers reduces to output(norm(embedding))") {
    TinyModel m;
    for (int il = 0; il < 2; ++il) {
        m.zero.push_back("blk." + std::to_string(il) + ".attn_output.weight");
        m.zero.push_back("blk." + std::to_string(il) + ".ffn_down.weight");
    }
    const auto file = m.build();
    const ReferenceForward ref(file);
    const std::vector<int32_t> toks = {3, 9, 3, 1};
    const auto got = ref.logits(toks);
    REQUIRE(got.size() == 4);
    // Every position only sees its own token: position 0 and 2 (both token 3) agree exactly.
    CHECK(got[0] == got[2]);
    CHECK(max_abs_diff(got[1], single_token_logits(m, 9)) < 1e-9);
}

TEST_CASE("reference forward is causal and depends on relative positions only") {
    TinyModel m;
    const auto file = m.build(11);
    const ReferenceForward ref(file);
    const std::vector<int32_t> toks = {1, 7, 2, 2, 14, 0, 9};
    const auto all = ref.logits(toks);
    // Causality: the logits of a prefix do not depend on the tokens after it.
    const std::vector<int32_t> prefix(toks.begin(), toks.begin() + 4);
    const auto pre = ref.logits(prefix);
    for (size_t t = 0; t < prefix.size(); ++t) CHECK(max_abs_diff(all[t], pre[t]) < 1e-12);
    // RoPE makes q·k depend on the distance between positions: shifting the whole sequence changes nothing.
    const auto shifted = ref.logits(toks, {}, 37);
    for (size_t t = 0; t < toks.size(); ++t) CHECK(max_abs_diff(all[t], shifted[t]) < 1e-9);
    // ...but positions matter: the same token pair in the other order gives other logits at the end.
    const std::vector<int32_t> ab = {1, 7}, ba = {7, 1};
    CHECK(max_abs_diff(ref.logits(ab)[1], ref.logits(ba)[1]) > 1e-3);
    // Selected rows come back in the order asked for.
    const std::vector<int64_t> rows = {6, 2};
    const auto sel = ref.logits(toks, rows);
    REQUIRE(sel.size() == 2);
    CHECK(sel[0] == all[6]);
    CHECK(sel[1] == all[2]);
}

TEST_CASE("reference forward rejects what it does not model") {
    TinyModel m;
    auto file = m.build();
    const ReferenceForward ref(file);
    const std::vector<int32_t> bad = {16};
    CHECK_THROWS_AS(ref.logits(bad), UsageError);

    gguf::GgufWriter w;
    w.add_string("general.architecture", "gpt2");
    const auto bytes = w.to_bytes({});
    const auto other = gguf::GgufFile::from_bytes(bytes);
    CHECK_THROWS_AS(ReferenceForward{other}, FormatError);
}

TEST_CASE("relative_logit_error measures max |diff| over the spread of the truth") {
    const std::vector<double> truth = {-1.0, 3.0, 1.0};
    const std::vector<float> got = {-1.0f, 2.5f, 1.2f};
    CHECK(relative_logit_error(got, truth) == doctest::Approx(0.5 / 4.0));
    const std::vector<float> nan = {-1.0f, NAN, 1.0f};
    CHECK(std::isinf(relative_logit_error(nan, truth)));
    CHECK(argmax(std::span<const double>(truth)) == 1);
}
