// Batches of many sequences (engine/batch_decoder, kinfer::BatchDecoder): k sequences stepped together get
// the logits each gets alone, on every weight type, whatever mix of prompts and single-token steps and
// however the steps split them; errors leave every session unchanged.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "engine/batch_decoder.hpp"
#include "engine/model.hpp"
#include "engine/session.hpp"
#include "kinfer/error.hpp"
#include "kinfer/kinfer.hpp"
#include "tests/tiny_llama.hpp"

using namespace kinfer;

namespace {

std::shared_ptr<const engine::Model> tiny_model(GgmlType type, int n_threads) {
    test::TinyLlamaSpec spec;
    spec.n_embd = 256;  // k-quant rows are multiples of 256
    spec.n_ff = 256;
    spec.n_head = 8;
    spec.n_head_kv = 2;
    spec.n_vocab = 128;
    spec.weight_type = type;
    spec.embd_type = type;
    spec.seed = 7 + uint64_t(type);
    static std::vector<std::vector<uint8_t>> keep;  // the models' bytes outlive the models
    keep.push_back(test::build_tiny_llama(spec).bytes);
    engine::LoadOptions opts;
    opts.n_threads = n_threads;
    return engine::Model::from_file(gguf::GgufFile::from_bytes(keep.back(), "tiny.gguf"), opts);
}

// max |a - b| / (max b - min b): the golden test's measure.
double rel_err(std::span<const float> a, std::span<const float> b) {
    REQUIRE(a.size() == b.size());
    double diff = 0, lo = 1e30, hi = -1e30;
    for (size_t i = 0; i < a.size(); ++i) {
        diff = std::max(diff, std::abs(double(a[i]) - double(b[i])));
        lo = std::min(lo, double(b[i]));
        hi = std::max(hi, double(b[i]));
    }
    return diff / std::max(hi - lo, 1e-30);
}

}  // namespace

TEST_CASE("batch: k ragged sequences stepped together get the logits each gets alone, every weight type") {
    const GgmlType types[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0, GgmlType::Q4_1,
                              GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0, GgmlType::Q2_K, GgmlType::Q3_K,
                              GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};
    std::mt19937 rng(42);
    for (GgmlType type : types) {
        CAPTURE(type_name(type));
        const auto model = tiny_model(type, 2);
        const int64_t n_vocab = model->config().n_vocab;
        std::uniform_int_distribution<int32_t> tok(0, int32_t(n_vocab) - 1);
        for (int k : {1, 2, 5, 8}) {  // 1..8 sequences; fewer sizes keep the sanitizer run short
            CAPTURE(k);
            // Each sequence: a prompt of 1..13 tokens, then three more inputs of 1 or a few tokens.
            std::vector<std::vector<std::vector<int32_t>>> steps{size_t(k)};
            for (auto& s : steps) {
                s.push_back(std::vector<int32_t>(size_t(1 + rng() % 13)));
                for (int i = 0; i < 3; ++i)
                    s.push_back(std::vector<int32_t>(rng() % 3 == 0 ? 1 + rng() % 5 : 1));
                for (auto& in : s)
                    for (auto& t : in) t = tok(rng);
            }
            // Alone: each sequence in its own session.
            std::vector<std::vector<std::vector<float>>> alone{size_t(k)};
            for (int s = 0; s < k; ++s) {
                engine::Session session(model, {.n_ctx = 64});
                for (const auto& in : steps[size_t(s)]) {
                    const auto l = session.forward(in);
                    alone[size_t(s)].emplace_back(l.begin(), l.end());
                }
            }
            // Together: a small batch size (7) so long inputs spread over steps and steps mix sequences;
            // round r gives sequence s its r-th input, except that odd sequences lag one round behind, so
            // prompts and single-token steps share steps.
            std::vector<engine::Session> sessions;
            sessions.reserve(size_t(k));
            for (int s = 0; s < k; ++s) sessions.emplace_back(model, engine::SessionOptions{.n_ctx = 64});
            engine::BatchDecoder decoder(model, 7);
            for (int round = 0; round < 5; ++round) {
                std::vector<engine::SequenceInput> inputs;
                std::vector<std::pair<int, int>> which;
                for (int s = 0; s < k; ++s) {
                    const int i = round - (s % 2);
                    if (i < 0 || i >= 4) continue;
                    inputs.push_back({&sessions[size_t(s)], steps[size_t(s)][size_t(i)]});
                    which.emplace_back(s, i);
                }
                if (inputs.empty()) continue;
                decoder.decode(inputs);
                for (auto [s, i] : which) {
                    const auto got = sessions[size_t(s)].logits();
                    REQUIRE(got.size() == size_t(n_vocab));
                    CHECK(rel_err(got, alone[size_t(s)][size_t(i)]) <= 1e-5);
                }
            }
            for (int s = 0; s < k; ++s) {
                size_t n = 0;
                for (const auto& in : steps[size_t(s)]) n += in.size();
                CHECK(sessions[size_t(s)].n_past() == int64_t(n));
            }
        }
    }
}

TEST_CASE("batch: a decode step of more sequences than the prefill threshold = each alone, bit for bit") {
    // 20 single tokens in one step: the decode path still (not the prefill path's 8-bit activations), so
    // each sequence's logits are exactly those of its step alone.
    for (GgmlType type : {GgmlType::Q4_K, GgmlType::Q8_0}) {
        CAPTURE(type_name(type));
        const auto model = tiny_model(type, 2);
        const int k = 20;
        std::vector<engine::Session> alone, together;
        alone.reserve(k);
        together.reserve(k);
        std::vector<std::vector<float>> want;
        for (int s = 0; s < k; ++s) {
            const std::vector<int32_t> prompt{int32_t(1 + s), int32_t(2 + 3 * s % 50), 7};
            alone.emplace_back(model, engine::SessionOptions{.n_ctx = 16});
            together.emplace_back(model, engine::SessionOptions{.n_ctx = 16});
            alone.back().forward(prompt);
            together.back().forward(prompt);
            const auto l = alone.back().forward(std::vector<int32_t>{int32_t(40 + s)});
            want.emplace_back(l.begin(), l.end());
        }
        engine::BatchDecoder decoder(model, k);
        std::vector<engine::SequenceInput> inputs;
        std::vector<std::vector<int32_t>> next(k);
        for (int s = 0; s < k; ++s) {
            next[size_t(s)] = {int32_t(40 + s)};
            inputs.push_back({&together[size_t(s)], next[size_t(s)]});
        }
        decoder.decode(inputs);
        for (int s = 0; s < k; ++s) {
            const auto got = together[size_t(s)].logits();
            REQUIRE(got.size() == want[size_t(s)].size());
            for (size_t i = 0; i < got.size(); ++i) REQUIRE(got[i] == want[size_t(s)][i]);
        }
    }
}

TEST_CASE("batch: outputs that want logits and outputs that want candidates share a step, each as alone") {
    // One step, 6 sequences: every other one wants its full logits, the rest 1, 3 or 40 candidates. Each gets
    // what a step of its own kind gives it: the logits bit for bit, the candidates those of its logits.
    const auto model = tiny_model(GgmlType::Q4_K, 2);
    const int k = 6;
    const int32_t wants[k] = {0, 1, 0, 3, 0, 40};
    std::vector<engine::Session> alone, together;
    alone.reserve(k);
    together.reserve(k);
    std::vector<std::vector<float>> want;
    std::vector<std::vector<int32_t>> next(k);
    for (int s = 0; s < k; ++s) {
        const std::vector<int32_t> prompt{int32_t(1 + s), int32_t(5 + 7 * s), 9};
        alone.emplace_back(model, engine::SessionOptions{.n_ctx = 16});
        together.emplace_back(model, engine::SessionOptions{.n_ctx = 16});
        alone.back().forward(prompt);
        together.back().forward(prompt);
        next[size_t(s)] = {int32_t(30 + s)};
        const auto l = alone.back().forward(next[size_t(s)]);
        want.emplace_back(l.begin(), l.end());
    }
    engine::BatchDecoder decoder(model, k);
    std::vector<engine::SequenceInput> inputs;
    for (int s = 0; s < k; ++s) inputs.push_back({&together[size_t(s)], next[size_t(s)], wants[s]});
    decoder.decode(inputs);
    for (int s = 0; s < k; ++s) {
        CAPTURE(s);
        if (wants[s] == 0) {
            const auto got = together[size_t(s)].logits();
            REQUIRE(got.size() == want[size_t(s)].size());
            CHECK(std::equal(got.begin(), got.end(), want[size_t(s)].begin()));
        } else {
            std::vector<engine::TopCandidate> best(size_t(wants[s]));
            engine::select_top(want[size_t(s)], wants[s], best);
            const auto got = together[size_t(s)].top();
            REQUIRE(got.size() == best.size());
            for (size_t i = 0; i < best.size(); ++i) {
                CHECK(got[i].id == best[i].id);
                CHECK(got[i].logit == best[i].logit);
            }
        }
    }
}

TEST_CASE("batch: a decode step of many sequences with long contexts (attention shared out) = each alone") {
    // Eight sequences of 70+ positions, one token each per step, three threads: together their attention
    // is enough work for the team, each one's alone is not, so the team takes whole sequences.
    const auto model = tiny_model(GgmlType::Q8_0, 3);
    std::mt19937 rng(5);
    std::uniform_int_distribution<int32_t> tok(0, int32_t(model->config().n_vocab) - 1);
    const int k = 8;
    std::vector<std::vector<int32_t>> prompts(k), next(k);
    for (int s = 0; s < k; ++s) {
        prompts[size_t(s)].resize(size_t(70 + s));
        for (auto& t : prompts[size_t(s)]) t = tok(rng);
        next[size_t(s)] = {tok(rng), tok(rng), tok(rng)};
    }
    std::vector<engine::Session> sessions;
    sessions.reserve(size_t(k));
    for (int s = 0; s < k; ++s) sessions.emplace_back(model, engine::SessionOptions{.n_ctx = 96});
    // Every prompt in one step: its tokens take the prefill kernels, as each prompt alone does.
    engine::BatchDecoder decoder(model, 1024);
    std::vector<engine::SequenceInput> inputs;
    for (int s = 0; s < k; ++s) inputs.push_back({&sessions[size_t(s)], prompts[size_t(s)]});
    decoder.decode(inputs);
    for (int step = 0; step < 3; ++step) {
        for (int s = 0; s < k; ++s)
            inputs[size_t(s)].tokens = std::span(next[size_t(s)]).subspan(size_t(step), 1);
        decoder.decode(inputs);
        for (int s = 0; s < k; ++s) {
            CAPTURE(s);
            engine::Session alone(model, {.n_ctx = 96});
            alone.forward(prompts[size_t(s)]);
            std::span<const float> want;
            for (int i = 0; i <= step; ++i)
                want = alone.forward(std::span(next[size_t(s)]).subspan(size_t(i), 1));
            CHECK(rel_err(sessions[size_t(s)].logits(), want) <= 1e-5);
        }
    }
}

TEST_CASE("batch: bad inputs throw and leave every session unchanged") {
    const auto model = tiny_model(GgmlType::Q8_0, 1);
    const auto other = tiny_model(GgmlType::Q8_0, 1);
    engine::Session a(model, {.n_ctx = 16}), b(model, {.n_ctx = 16}), c(other, {.n_ctx = 16});
    engine::BatchDecoder decoder(model, 8);
    const std::vector<int32_t> two = {1, 2}, bad = {1, int32_t(model->config().n_vocab)}, empty;
    const std::vector<int32_t> long_input(17, 3);
    a.forward(two);
    const std::vector<float> a_logits(a.logits().begin(), a.logits().end());

    using In = engine::SequenceInput;
    CHECK_THROWS_AS(decoder.decode(std::vector<In>{{&a, two}, {&a, two}}), UsageError);  // same session twice
    CHECK_THROWS_AS(decoder.decode(std::vector<In>{{&a, two}, {&c, two}}), UsageError);  // another model
    CHECK_THROWS_AS(decoder.decode(std::vector<In>{{&a, two}, {&b, bad}}), UsageError);  // id out of range
    CHECK_THROWS_AS(decoder.decode(std::vector<In>{{&a, two}, {&b, empty}}), UsageError);  // nothing to do
    CHECK_THROWS_AS(decoder.decode(std::vector<In>{{&a, two}, {&b, long_input}}), UsageError);  // too long
    CHECK_THROWS_AS(decoder.decode(std::vector<In>{{nullptr, two}}), UsageError);
    CHECK(a.n_past() == 2);
    CHECK(b.n_past() == 0);
    REQUIRE(a.logits().size() == a_logits.size());
    CHECK(std::equal(a_logits.begin(), a_logits.end(), a.logits().begin()));
}

TEST_CASE("batch: the public BatchDecoder steps several kinfer::Sessions like feeding each alone") {
    // Through the public API: model file on disk, sessions of the default context.
    test::TinyLlamaSpec spec;
    spec.weight_type = GgmlType::Q8_0;
    spec.n_ff = 64;
    const std::string path = test::temp_path("batch-api");
    test::write_tiny_llama(spec, path);
    {
        const kinfer::Model model = kinfer::Model::load(path, {.threads = 2, .n_ctx = 64});
        kinfer::Session x(model), y(model), x_alone(model), y_alone(model);
        const std::vector<int32_t> px = {1, 5, 9, 2}, py = {7};
        kinfer::BatchDecoder batch(model, 3);
        batch.decode({{&x, px}, {&y, py}});
        x_alone.feed(px);
        y_alone.feed(py);
        CHECK(rel_err(x.logits(), x_alone.logits()) <= 1e-5);
        CHECK(rel_err(y.logits(), y_alone.logits()) <= 1e-5);
        // Then greedy decoding of both together equals decoding each alone.
        kinfer::SamplerOptions greedy;
        greedy.temperature = 0;
        for (int i = 0; i < 6; ++i) {
            const int32_t tx = x.sample(greedy), ty = y.sample(greedy);
            CHECK(tx == x_alone.sample(greedy));
            CHECK(ty == y_alone.sample(greedy));
            batch.decode({{&x, {&tx, 1}}, {&y, {&ty, 1}}});
            x_alone.feed({&tx, 1});
            y_alone.feed({&ty, 1});
        }
        CHECK(x.n_past() == 10);
        CHECK(y.n_past() == 7);
        CHECK_THROWS_AS(batch.decode({{&x, {}}}), kinfer::UsageError);
    }
    std::remove(path.c_str());
}
