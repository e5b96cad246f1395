// Sampling: each filter on hand-made distributions, penalties, greedy, seeds, and the draw itself.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <random>
#include <vector>

#include "engine/sampler.hpp"
#include "kinfer/error.hpp"

using namespace kinfer::engine;

namespace {

std::vector<TokenCandidate> candidates(const std::vector<float>& logits) {
    std::vector<TokenCandidate> c;
    for (size_t i = 0; i < logits.size(); ++i) c.push_back({int32_t(i), logits[i], 0.0f});
    return c;
}

std::vector<int32_t> ids(const std::vector<TokenCandidate>& c) {
    std::vector<int32_t> out;
    for (const auto& t : c) out.push_back(t.id);
    return out;
}

SamplerOptions no_filters(float temperature = 1.0f) {
    SamplerOptions o;
    o.temperature = temperature;
    o.top_k = 0;
    o.top_p = 1.0f;
    o.min_p = 0.0f;
    return o;
}

}  // namespace

TEST_CASE("sampler: top-k keeps the k largest, sorted, lowest id first on ties") {
    auto c = candidates({0.5f, 3.0f, -1.0f, 3.0f, 2.0f});
    sampling::top_k(c, 3);
    CHECK(ids(c) == std::vector<int32_t>{1, 3, 4});
    c = candidates({0.5f, 3.0f, -1.0f});
    sampling::top_k(c, 0);  // off: sorts only
    CHECK(ids(c) == std::vector<int32_t>{1, 0, 2});
    c = candidates({0.5f, 3.0f});
    sampling::top_k(c, 10);
    CHECK(c.size() == 2);
}

TEST_CASE("sampler: softmax, top-p and min-p") {
    // probabilities 0.5, 0.3, 0.15, 0.05
    auto c = candidates({std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)});
    sampling::top_k(c, 0);
    sampling::softmax(c);
    CHECK(c[0].p == doctest::Approx(0.5));
    CHECK(c[3].p == doctest::Approx(0.05));

    auto p = c;
    sampling::top_p(p, 0.79f);
    CHECK(ids(p) == std::vector<int32_t>{0, 1});  // 0.5 + 0.3 reaches 0.79
    p = c;
    sampling::top_p(p, 0.81f);
    CHECK(ids(p) == std::vector<int32_t>{0, 1, 2});
    p = c;
    sampling::top_p(p, 0.1f);
    CHECK(ids(p) == std::vector<int32_t>{0});  // always at least one
    p = c;
    sampling::top_p(p, 1.0f);
    CHECK(p.size() == 4);

    auto m = c;
    sampling::min_p(m, 0.2f);  // threshold 0.1
    CHECK(ids(m) == std::vector<int32_t>{0, 1, 2});
    m = c;
    sampling::min_p(m, 0.7f);  // threshold 0.35
    CHECK(ids(m) == std::vector<int32_t>{0});
    m = c;
    sampling::min_p(m, 0.0f);
    CHECK(m.size() == 4);
}

TEST_CASE("sampler: repetition, frequency and presence penalties") {
    std::vector<int32_t> counts(6, 0);
    auto c = candidates({4.0f, -1.0f, 2.0f, 1.0f, 0.5f, 3.0f});
    const std::vector<int32_t> recent = {0, 1, 1, 1, 3};
    sampling::apply_penalties(c, recent, 2.0f, 0.5f, 0.25f, counts);
    CHECK(c[0].logit == doctest::Approx(4.0 / 2 - 0.5 - 0.25));
    CHECK(c[1].logit == doctest::Approx(-1.0 * 2 - 3 * 0.5 - 0.25));  // negative: multiplied
    CHECK(c[2].logit == doctest::Approx(2.0));                        // not in the window
    CHECK(c[3].logit == doctest::Approx(1.0 / 2 - 0.5 - 0.25));
    CHECK(c[5].logit == doctest::Approx(3.0));
    for (int32_t n : counts) CHECK(n == 0);  // scratch left clean for the next call
}

TEST_CASE("sampler: greedy is the argmax after penalties; temperature 0 means greedy") {
    const std::vector<float> logits = {0.1f, 2.0f, 1.9f, 2.0f, -3.0f};
    SamplerOptions o;  // default filters on, but temperature 0
    o.temperature = 0.0f;
    Sampler s(o, 5);
    for (int i = 0; i < 5; ++i) CHECK(s.sample(logits, {}) == 1);  // first maximum on a tie

    o.repeat_penalty = 1.5f;
    o.penalty_last_n = 2;
    Sampler p(o, 5);
    const std::vector<int32_t> history = {3, 1, 0};  // window: {1, 0}
    CHECK(p.sample(logits, history) == 3);           // 1 penalised to 1.33, 3 (outside the window) wins
    o.penalty_last_n = 0;                            // window off
    Sampler off(o, 5);
    CHECK(off.sample(logits, history) == 1);
    o.penalty_last_n = -1;  // whole history
    Sampler all(o, 5);
    CHECK(all.sample(logits, history) == 2);
}

TEST_CASE("sampler: logit biases come first and make the sampler read the full logits") {
    const std::vector<float> logits = {0.1f, 2.0f, 1.9f, 2.0f, -3.0f};
    SamplerOptions o;
    o.temperature = 0.0f;
    CHECK(Sampler(o, 5).candidates_needed() == 1);
    o.logit_bias = {{1, -INFINITY}};  // banned: the other maximum wins
    Sampler ban(o, 5);
    CHECK(ban.candidates_needed() == 0);  // a biased token may be anywhere in the ranking
    CHECK(ban.sample(logits, {}) == 3);
    CHECK_THROWS_AS(ban.sample(std::vector<TopCandidate>{{1, 2.0f}}), kinfer::UsageError);
    o.logit_bias = {{4, 5.5f}};  // -3 + 5.5 = 2.5: the least likely token first
    CHECK(Sampler(o, 5).sample(logits, {}) == 4);
    o.logit_bias = {{4, 5.0f}};  // 2.0: a tie with 1 and 3, the lowest id wins
    CHECK(Sampler(o, 5).sample(logits, {}) == 1);
    // Before the penalties: token 1 (seen) biased to 4.2, then divided by the repeat penalty: 2.1 beats
    // token 3's 2.0; biased to 3.9 it is 1.95 and loses (after the penalty, 1.0 + 1.9 would have won).
    o.logit_bias = {{1, 2.2f}};
    o.repeat_penalty = 2.0f;
    o.penalty_last_n = -1;
    CHECK(Sampler(o, 5).sample(logits, std::vector<int32_t>{1}) == 1);
    o.logit_bias = {{1, 1.9f}};
    CHECK(Sampler(o, 5).sample(logits, std::vector<int32_t>{1}) == 3);
    // At a temperature, a large bias takes all the probability.
    SamplerOptions t = no_filters(1.0f);
    t.logit_bias = {{2, 100.0f}};
    Sampler draw(t, 5);
    for (int i = 0; i < 20; ++i) CHECK(draw.sample(logits, {}) == 2);
    t.logit_bias = {{5, 1.0f}};
    CHECK_THROWS_AS(Sampler(t, 5), kinfer::UsageError);  // outside the vocabulary
    t.logit_bias = {{0, NAN}};
    CHECK_THROWS_AS(Sampler(t, 5), kinfer::UsageError);
    t.logit_bias = {{0, INFINITY}};
    CHECK_THROWS_AS(Sampler(t, 5), kinfer::UsageError);
}

TEST_CASE("sampler: top-k 1 is deterministic at any temperature") {
    SamplerOptions o = no_filters(5.0f);
    o.top_k = 1;
    Sampler s(o, 4);
    for (int i = 0; i < 50; ++i) CHECK(s.sample(std::vector<float>{1.0f, 0.0f, 1.5f, 1.4f}, {}) == 2);
}

TEST_CASE("sampler: draws follow the distribution") {
    const std::vector<float> logits = {std::log(0.7f), std::log(0.2f), std::log(0.1f)};
    SamplerOptions o = no_filters(1.0f);
    o.seed = 1234;
    Sampler s(o, 3);
    std::map<int32_t, int> hist;
    const int n = 20000;
    for (int i = 0; i < n; ++i) ++hist[s.sample(logits, {})];
    CHECK(double(hist[0]) / n == doctest::Approx(0.7).epsilon(0.03));
    CHECK(double(hist[1]) / n == doctest::Approx(0.2).epsilon(0.06));
    CHECK(double(hist[2]) / n == doctest::Approx(0.1).epsilon(0.1));

    // temperature 2 flattens: p ~ sqrt(0.7) : sqrt(0.2) : sqrt(0.1)
    o.temperature = 2.0f;
    Sampler flat(o, 3);
    hist.clear();
    for (int i = 0; i < n; ++i) ++hist[flat.sample(logits, {})];
    const double z = std::sqrt(0.7) + std::sqrt(0.2) + std::sqrt(0.1);
    CHECK(double(hist[0]) / n == doctest::Approx(std::sqrt(0.7) / z).epsilon(0.04));

    // min-p 0.2 removes token 2 (0.1 < 0.14) entirely
    o.temperature = 1.0f;
    o.min_p = 0.2f;
    Sampler cut(o, 3);
    for (int i = 0; i < 2000; ++i) CHECK(cut.sample(logits, {}) != 2);
}

TEST_CASE("sampler: the same seed gives the same tokens") {
    std::vector<float> logits(50);
    for (size_t i = 0; i < logits.size(); ++i) logits[i] = float(std::sin(double(i)) * 2.0);
    const auto run = [&](uint64_t seed) {
        SamplerOptions o;
        o.seed = seed;
        o.top_k = 0;
        o.min_p = 0.0f;
        Sampler s(o, int64_t(logits.size()));
        std::vector<int32_t> out;
        for (int i = 0; i < 64; ++i) out.push_back(s.sample(logits, out));
        return out;
    };
    CHECK(run(7) == run(7));
    CHECK(run(7) != run(8));
}

TEST_CASE("sampler: bad options and inputs are errors") {
    SamplerOptions o;
    o.top_p = 0.0f;
    CHECK_THROWS_AS(Sampler(o, 4), kinfer::UsageError);
    o = {};
    o.min_p = 1.5f;
    CHECK_THROWS_AS(Sampler(o, 4), kinfer::UsageError);
    o = {};
    o.repeat_penalty = 0.0f;
    CHECK_THROWS_AS(Sampler(o, 4), kinfer::UsageError);
    o = {};
    o.temperature = NAN;
    CHECK_THROWS_AS(Sampler(o, 4), kinfer::UsageError);
    Sampler s({}, 4);
    CHECK_THROWS_AS(s.sample(std::vector<float>{1, 2, 3}, {}), kinfer::UsageError);  // wrong size
    CHECK_THROWS_AS(s.sample(std::vector<float>{1, 2, 3, 4}, std::vector<int32_t>{9}),
                    kinfer::UsageError);  // bad id
}

TEST_CASE("sampler: with top-k off, min-p/top-p without a full sort draw what the full-sort pipeline draws") {
    // The reference: sort the whole vocabulary, softmax, top-p, min-p, temperature, softmax, draw with the
    // sampler's own uniform (top 53 bits of the same mt19937_64 stream).
    const auto reference = [](std::vector<float> logits, float top_p, float min_p, float temp,
                              std::mt19937_64& rng) {
        std::vector<TokenCandidate> c;
        for (int32_t i = 0; i < int32_t(logits.size()); ++i) c.push_back({i, logits[size_t(i)], 0});
        sampling::top_k(c, 0);
        sampling::softmax(c);
        sampling::top_p(c, top_p);
        sampling::min_p(c, min_p);
        for (auto& t : c) t.logit /= temp;
        sampling::softmax(c);
        const double u = double(rng() >> 11) * 0x1p-53;
        double cum = 0;
        for (const auto& t : c) {
            cum += t.p;
            if (u < cum) return t.id;
        }
        return c.back().id;
    };
    std::mt19937 gen(3);
    std::normal_distribution<float> normal(0.0f, 3.0f);
    for (const auto& [top_p, min_p] :
         std::vector<std::pair<float, float>>{{0.9f, 0.05f}, {1.0f, 0.1f}, {0.5f, 0.0f}, {0.95f, 0.2f}}) {
        SamplerOptions o;
        o.top_k = 0;
        o.top_p = top_p;
        o.min_p = min_p;
        o.temperature = 0.9f;
        o.seed = 11;
        Sampler sampler(o, 1000);
        std::mt19937_64 rng(o.seed);
        for (int step = 0; step < 50; ++step) {
            std::vector<float> logits(1000);
            for (auto& l : logits) l = normal(gen);
            CHECK(sampler.sample(logits, {}) == reference(logits, top_p, min_p, o.temperature, rng));
        }
    }
}
