// Steps that keep only each output's k best candidates (engine/top_candidates.hpp): the host select against
// sampling::top_k on random rows with ties, NaN, infinities and signed zeros; Sampler::sample(top) against
// sample(logits) on the same logits and seeds; and on tiny CPU models, Session::forward_top and BatchDecoder
// inputs with top_k against the full-logits path, token for token.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "engine/batch_decoder.hpp"
#include "engine/model.hpp"
#include "engine/sampler.hpp"
#include "engine/session.hpp"
#include "engine/top_candidates.hpp"
#include "kinfer/error.hpp"
#include "tests/tiny_llama.hpp"

using namespace kinfer;
using engine::TopCandidate;

namespace {

// Random logits: `levels` > 0 draws from that many values (many ties), else continuous; `specials` puts
// NaN, +-inf and -0/+0 at random places.
std::vector<float> random_row(std::mt19937& rng, size_t n, int levels, bool specials) {
    std::vector<float> row(n);
    std::normal_distribution<float> normal(0.0f, 3.0f);
    std::uniform_int_distribution<int> level(0, std::max(levels, 1) - 1);
    for (float& x : row) x = levels > 0 ? float(level(rng)) * 0.5f - 2.0f : normal(rng);
    if (specials) {
        const float values[] = {std::numeric_limits<float>::quiet_NaN(),
                                -std::numeric_limits<float>::quiet_NaN(),
                                INFINITY,
                                -INFINITY,
                                0.0f,
                                -0.0f};
        std::uniform_int_distribution<size_t> at(0, n - 1);
        for (int i = 0; i < int(n / 8) + 1; ++i) row[at(rng)] = values[size_t(i) % std::size(values)];
    }
    return row;
}

// The first k of the full sort by sampling::top_k: what the candidates must be.
std::vector<TopCandidate> by_full_sort(const std::vector<float>& row, int32_t k) {
    std::vector<engine::TokenCandidate> c(row.size());
    for (size_t i = 0; i < row.size(); ++i) c[i] = {int32_t(i), row[i], 0.0f};
    engine::sampling::top_k(c, k);
    std::vector<TopCandidate> out;
    for (size_t i = 0; i < std::min(size_t(k), c.size()); ++i) out.push_back({c[i].id, c[i].logit});
    return out;
}

bool same(const std::vector<TopCandidate>& a, std::span<const TopCandidate> b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        const bool both_nan = std::isnan(a[i].logit) && std::isnan(b[i].logit);
        if (a[i].id != b[i].id || (!both_nan && std::memcmp(&a[i].logit, &b[i].logit, 4) != 0)) return false;
    }
    return true;
}

}  // namespace

TEST_CASE("select_top: the first k of sampling::top_k's order, ties to the lower id, NaN last") {
    std::mt19937 rng(5);
    for (const size_t n : {1u, 2u, 7u, 100u, 1001u, 4099u})
        for (const int levels : {0, 3, 40})
            for (const bool specials : {false, true})
                for (const int32_t k : {1, 2, 7, 40, 255, 256, 300}) {
                    CAPTURE(n);
                    CAPTURE(levels);
                    CAPTURE(specials);
                    CAPTURE(k);
                    const std::vector<float> row = random_row(rng, n, levels, specials);
                    std::vector<TopCandidate> got(std::min(size_t(k), n));
                    engine::select_top(row, k, got);
                    REQUIRE(same(by_full_sort(row, k), got));
                    // an unordered selection sorts into the same list
                    std::shuffle(got.begin(), got.end(), rng);
                    engine::sort_candidates(got);
                    CHECK(same(by_full_sort(row, k), got));
                }
    // all NaN: ids in order; NaN only after every number, -inf included
    const float nan = std::numeric_limits<float>::quiet_NaN();
    std::vector<TopCandidate> two(2);
    engine::select_top(std::vector<float>{nan, nan, nan}, 2, two);
    CHECK((two[0].id == 0 && two[1].id == 1));
    engine::select_top(std::vector<float>{nan, -INFINITY, nan, -0.0f, 0.0f}, 2, two);
    CHECK((two[0].id == 3 && two[1].id == 4));  // -0 == +0: the lower id first
    std::vector<TopCandidate> one(1);  // k = 1 takes its own two-pass scan
    engine::select_top(std::vector<float>{nan, nan}, 1, one);
    CHECK(one[0].id == 0);
    engine::select_top(std::vector<float>{nan, -INFINITY, nan, -INFINITY}, 1, one);
    CHECK(one[0].id == 1);
    engine::select_top(std::vector<float>{nan, 0.0f, -0.0f, nan}, 1, one);
    CHECK(one[0].id == 1);
    std::vector<TopCandidate> none;
    CHECK_THROWS_AS(engine::select_top(std::vector<float>{1.0f, 2.0f}, 2, none), UsageError);
    CHECK_THROWS_AS(engine::select_top(std::vector<float>{1.0f}, 0, two), UsageError);
}

TEST_CASE("sampler: candidates_needed follows the options") {
    const auto needed = [](SamplerOptions o) { return engine::Sampler(o, 1000).candidates_needed(); };
    SamplerOptions o;
    o.temperature = 0.0f;
    o.repeat_penalty = 1.0f, o.frequency_penalty = 0.0f, o.presence_penalty = 0.0f;
    CHECK(needed(o) == 1);  // greedy
    o.temperature = 0.8f, o.top_k = 40;
    CHECK(needed(o) == 40);
    o.top_k = 0;
    CHECK(needed(o) == 0);  // no top-k cut: the whole vocabulary
    o.top_k = 1000;
    CHECK(needed(o) == 0);  // top-k >= n_vocab is no cut either
    o.top_k = 40, o.repeat_penalty = 1.1f;
    CHECK(needed(o) == 0);  // penalties read every logit
    o.penalty_last_n = 0;
    CHECK(needed(o) == 40);  // ... unless their window is empty
    o.penalty_last_n = 64, o.repeat_penalty = 1.0f, o.presence_penalty = 0.5f;
    CHECK(needed(o) == 0);
    o.presence_penalty = 0.0f, o.frequency_penalty = 0.5f, o.temperature = 0.0f;
    CHECK(needed(o) == 0);

    engine::Sampler full(o, 1000);  // needs logits
    const TopCandidate one[] = {{3, 1.0f}};
    CHECK_THROWS_AS(full.sample(one), UsageError);
    o.frequency_penalty = 0.0f, o.temperature = 1.0f, o.top_k = 2;
    engine::Sampler two(o, 1000);
    CHECK_THROWS_AS(two.sample(one), UsageError);  // too few
}

TEST_CASE("sampler: sample(top k candidates) gives exactly sample(logits), draw for draw") {
    const int64_t n_vocab = 517;
    std::mt19937 rng(9);
    int cases = 0;
    for (const float temperature : {0.0f, 0.3f, 1.0f, 1.7f})
        for (const int32_t top_k : {1, 2, 7, 40, 256})
            for (const float top_p : {1.0f, 0.9f, 0.4f})
                for (const float min_p : {0.0f, 0.05f, 0.3f})
                    for (const int levels : {0, 6}) {
                        SamplerOptions o;
                        o.temperature = temperature, o.top_k = top_k, o.top_p = top_p, o.min_p = min_p;
                        o.repeat_penalty = 1.0f, o.frequency_penalty = 0.0f, o.presence_penalty = 0.0f;
                        o.seed = 1000 + uint64_t(cases++);
                        engine::Sampler full(o, n_vocab), cand(o, n_vocab);
                        const int32_t k = cand.candidates_needed();
                        REQUIRE(k == (temperature <= 0.0f ? 1 : top_k));
                        std::vector<TopCandidate> top(size_t(k) + 3);  // extra ones are ignored
                        const std::vector<int32_t> history = {1, 2, 3};
                        for (int step = 0; step < 12; ++step) {
                            const std::vector<float> row = random_row(rng, size_t(n_vocab), levels, false);
                            engine::select_top(row, int32_t(top.size()), top);
                            const int32_t want = full.sample(row, history);
                            const int32_t got = cand.sample(top);
                            REQUIRE(want == got);
                        }
                    }
    // greedy with NaN logits (the first one included): NaN never wins over a number
    SamplerOptions g;
    g.temperature = 0.0f;
    engine::Sampler greedy(g, 4), greedy_top(g, 4);
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const std::vector<float> row = {nan, -1.0f, nan, 2.0f};
    std::vector<TopCandidate> top(1);
    engine::select_top(row, 1, top);
    CHECK(greedy.sample(row, {}) == 3);
    CHECK(greedy_top.sample(top) == 3);
}

namespace {

std::shared_ptr<const engine::Model> tiny_model(int64_t n_vocab) {
    test::TinyLlamaSpec spec;
    spec.n_vocab = n_vocab;
    spec.seed = 21;
    static std::vector<std::vector<uint8_t>> keep;  // the models' bytes outlive the models
    keep.push_back(test::build_tiny_llama(spec).bytes);
    engine::LoadOptions opts;
    opts.n_threads = 2;
    return engine::Model::from_file(gguf::GgufFile::from_bytes(keep.back(), "tiny.gguf"), opts);
}

// Tokens drawn by `options` from `prompt` on, `n` of them, through the full logits or the candidates.
std::vector<int32_t> run(const std::shared_ptr<const engine::Model>& model, const SamplerOptions& options,
                         const std::vector<int32_t>& prompt, int n, bool candidates) {
    engine::Session s(model, {.n_ctx = 64, .n_batch = 4});  // the prompt spans several steps
    engine::Sampler sampler(options, s.n_vocab());
    const int32_t k = sampler.candidates_needed();
    REQUIRE(k > 0);
    std::vector<int32_t> out;
    std::span<const int32_t> next = prompt;
    for (int i = 0; i < n; ++i) {
        int32_t id;
        if (candidates) {
            const auto top = s.forward_top(next, k);
            CHECK(s.logits().empty());
            REQUIRE(top.size() == size_t(k));
            id = sampler.sample(top);
        } else {
            id = sampler.sample(s.forward(next), s.tokens());
            CHECK(s.top().empty());
        }
        out.push_back(id);
        next = std::span<const int32_t>(&out.back(), 1);
    }
    return out;
}

}  // namespace

TEST_CASE("session: forward_top keeps the candidates of the full logits; sampling from them is identical") {
    const auto model = tiny_model(300);
    const std::vector<int32_t> prompt = {1, 17, 250, 3, 99, 42, 7, 7, 150};
    engine::Session a(model, {.n_ctx = 64, .n_batch = 4}), b(model, {.n_ctx = 64, .n_batch = 4});
    const auto logits = a.forward(prompt);
    const std::vector<float> row(logits.begin(), logits.end());
    for (const int32_t k : {1, 5, 300}) {
        b.truncate(0);
        const auto top = b.forward_top(prompt, k);
        CHECK(same(by_full_sort(row, k), top));
        CHECK(same(by_full_sort(row, k), b.top()));
    }
    CHECK_THROWS_AS(b.forward_top(prompt, 0), UsageError);
    CHECK_THROWS_AS(b.forward_top(prompt, 301), UsageError);
    b.truncate(1);
    CHECK(b.top().empty());

    SamplerOptions greedy;
    greedy.temperature = 0.0f;
    CHECK(run(model, greedy, prompt, 20, true) == run(model, greedy, prompt, 20, false));
    for (const uint64_t seed : {1u, 2u, 3u}) {
        SamplerOptions o;
        o.temperature = 1.2f, o.top_k = 20, o.top_p = 0.95f, o.min_p = 0.02f, o.seed = seed;
        o.repeat_penalty = 1.0f, o.frequency_penalty = 0.0f, o.presence_penalty = 0.0f;
        CHECK(run(model, o, prompt, 20, true) == run(model, o, prompt, 20, false));
    }
}

TEST_CASE(
    "batch decoder: inputs with top_k get the candidates of their logits, mixed with full-logits ones") {
    const auto model = tiny_model(300);
    const std::vector<std::vector<int32_t>> prompts = {{1, 2, 3}, {200, 5}, {9, 8, 7, 6, 5, 4, 3}, {77}};
    for (const std::vector<int32_t> ks : {std::vector<int32_t>{1, 5, 40, 3}, {0, 5, 0, 1}}) {
        std::vector<engine::Session> alone, together;
        for (size_t i = 0; i < prompts.size(); ++i) {
            alone.emplace_back(model, engine::SessionOptions{.n_ctx = 32});
            together.emplace_back(model, engine::SessionOptions{.n_ctx = 32});
        }
        engine::BatchDecoder decoder(model, 8, 32);  // the prompts take several steps
        std::vector<engine::SequenceInput> inputs;
        for (size_t i = 0; i < prompts.size(); ++i) inputs.push_back({&together[i], prompts[i], ks[i]});
        decoder.decode(inputs);
        for (size_t i = 0; i < prompts.size(); ++i) {
            CAPTURE(i);
            const auto l = alone[i].forward(prompts[i]);
            const std::vector<float> row(l.begin(), l.end());
            if (ks[i] == 0) {
                CHECK(together[i].top().empty());
                REQUIRE(together[i].logits().size() == row.size());
                for (size_t j = 0; j < row.size(); ++j)
                    CHECK(std::abs(together[i].logits()[j] - row[j]) < 1e-5f);
            } else {
                CHECK(together[i].logits().empty());
                const auto top = together[i].top();
                REQUIRE(top.size() == size_t(ks[i]));
                const auto want = by_full_sort(row, ks[i]);
                for (size_t j = 0; j < top.size(); ++j) CHECK(top[j].id == want[j].id);
            }
        }
    }
    engine::Session s(model, {.n_ctx = 32});
    const int32_t t = 1;
    std::vector<engine::SequenceInput> bad = {{&s, std::span<const int32_t>(&t, 1), 301}};
    engine::BatchDecoder decoder(model, 8, 32);
    CHECK_THROWS_AS(decoder.decode(bad), UsageError);
    CHECK(s.n_past() == 0);
}
