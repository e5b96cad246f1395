#include "engine/sampler.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "kinfer/error.hpp"

namespace kinfer::engine {
namespace sampling {

void apply_penalties(std::vector<TokenCandidate>& c, std::span<const int32_t> recent, float repeat,
                     float frequency, float presence, std::vector<int32_t>& counts) {
    // `c` is still indexed by token id here (penalties come first), so counts can be applied in place.
    if (recent.empty() || (repeat == 1.0f && frequency == 0.0f && presence == 0.0f)) return;
    for (int32_t id : recent) ++counts[size_t(id)];
    for (int32_t id : recent) {
        int32_t& n = counts[size_t(id)];
        if (n == 0) continue;  // this id was already penalised
        float& logit = c[size_t(id)].logit;
        logit = logit > 0.0f ? logit / repeat : logit * repeat;
        logit -= float(n) * frequency + presence;
        n = 0;
    }
}

void top_k(std::vector<TokenCandidate>& c, int32_t k) {
    // The candidate order of engine/top_candidates.hpp (NaN last keeps it a strict weak order).
    const auto by_logit = [](const TokenCandidate& a, const TokenCandidate& b) {
        return ranks_before(a.id, a.logit, b.id, b.logit);
    };
    if (k > 0 && size_t(k) < c.size()) {
        std::partial_sort(c.begin(), c.begin() + k, c.end(), by_logit);
        c.resize(size_t(k));
    } else {
        std::sort(c.begin(), c.end(), by_logit);
    }
}

void softmax(std::vector<TokenCandidate>& c) {
    float max_logit = -INFINITY;
    for (const auto& t : c) max_logit = std::max(max_logit, t.logit);
    double sum = 0.0;
    for (auto& t : c) {
        t.p = std::exp(t.logit - max_logit);
        sum += t.p;
    }
    for (auto& t : c) t.p = static_cast<float>(t.p / sum);
}

void top_p(std::vector<TokenCandidate>& c, float p) {
    if (p >= 1.0f || c.empty()) return;
    double cum = 0.0;
    size_t keep = c.size();
    for (size_t i = 0; i < c.size(); ++i) {
        cum += c[i].p;
        if (cum >= p) {
            keep = i + 1;
            break;
        }
    }
    c.resize(keep);
}

void min_p(std::vector<TokenCandidate>& c, float min_p) {
    if (min_p <= 0.0f || c.empty()) return;
    const float threshold = c.front().p * min_p;
    size_t keep = 1;
    while (keep < c.size() && c[keep].p >= threshold) ++keep;
    c.resize(keep);
}

}  // namespace sampling

Sampler::Sampler(const SamplerOptions& o, int64_t n_vocab) : options_(o), n_vocab_(n_vocab), rng_(o.seed) {
    if (n_vocab < 1) throw UsageError("sampler: empty vocabulary");
    if (!std::isfinite(o.temperature)) throw UsageError("temperature must be a finite number");
    if (!(o.top_p > 0.0f)) throw UsageError("top-p must be > 0, got " + std::to_string(o.top_p));
    if (!(o.min_p >= 0.0f && o.min_p <= 1.0f))
        throw UsageError("min-p must be in [0, 1], got " + std::to_string(o.min_p));
    if (!(o.repeat_penalty > 0.0f))
        throw UsageError("repeat penalty must be > 0, got " + std::to_string(o.repeat_penalty));
    if (!std::isfinite(o.frequency_penalty) || !std::isfinite(o.presence_penalty))
        throw UsageError("frequency and presence penalties must be finite numbers");
    if (o.penalty_last_n < -1) throw UsageError("penalty window must be >= -1");
    for (const auto& [id, bias] : o.logit_bias) {
        if (id < 0 || id >= n_vocab)
            throw UsageError("logit bias for token id " + std::to_string(id) +
                             ", outside the vocabulary of " + std::to_string(n_vocab));
        if (std::isnan(bias) || bias == INFINITY)
            throw UsageError("logit bias of token " + std::to_string(id) + " must be a number or -inf, got " +
                             std::to_string(bias));
    }
    candidates_.reserve(size_t(n_vocab));
    counts_.assign(size_t(n_vocab), 0);
    const bool penalties =
        o.penalty_last_n != 0 &&
        (o.repeat_penalty != 1.0f || o.frequency_penalty != 0.0f || o.presence_penalty != 0.0f);
    // A biased token may rank anywhere, so the best candidates of the unbiased logits are not enough.
    if (penalties || !o.logit_bias.empty())
        candidates_needed_ = 0;
    else if (o.temperature <= 0.0f)
        candidates_needed_ = 1;
    else if (o.top_k > 0 && int64_t(o.top_k) < n_vocab)
        candidates_needed_ = o.top_k;
}

int32_t Sampler::sample(std::span<const TopCandidate> top) {
    if (candidates_needed_ == 0)
        throw UsageError("sample: these sampler options need the full logits, not candidates");
    if (top.size() < size_t(candidates_needed_))
        throw UsageError("sample: got " + std::to_string(top.size()) + " candidates, " +
                         std::to_string(candidates_needed_) + " needed");
    for (const TopCandidate& t : top.first(size_t(candidates_needed_)))
        if (t.id < 0 || t.id >= n_vocab_) throw UsageError("sample: candidate id " + std::to_string(t.id));
    if (options_.temperature <= 0.0f) return top[0].id;
    candidates_.resize(size_t(candidates_needed_));
    for (size_t i = 0; i < candidates_.size(); ++i) candidates_[i] = {top[i].id, top[i].logit, 0.0f};
    sampling::softmax(candidates_);  // as sample(logits) does right after its top-k cut
    return draw();
}

int32_t Sampler::sample(std::span<const float> logits, std::span<const int32_t> history) {
    if (int64_t(logits.size()) != n_vocab_)
        throw UsageError("sample: got " + std::to_string(logits.size()) + " logits for a vocabulary of " +
                         std::to_string(n_vocab_));
    candidates_.resize(size_t(n_vocab_));
    for (int32_t i = 0; i < int32_t(n_vocab_); ++i) candidates_[size_t(i)] = {i, logits[size_t(i)], 0.0f};

    const SamplerOptions& o = options_;
    for (const auto& [id, bias] : o.logit_bias) candidates_[size_t(id)].logit += bias;  // first, as llama.cpp
    size_t window =
        o.penalty_last_n < 0 ? history.size() : std::min(history.size(), size_t(o.penalty_last_n));
    std::span<const int32_t> recent = history.subspan(history.size() - window);
    for (int32_t id : recent)
        if (id < 0 || id >= n_vocab_)
            throw UsageError("sample: history holds token id " + std::to_string(id));
    sampling::apply_penalties(candidates_, recent, o.repeat_penalty, o.frequency_penalty, o.presence_penalty,
                              counts_);

    if (o.temperature <= 0.0f) {
        // Greedy: the first maximum (lowest id on ties), as the argmax of a float64 reference would pick;
        // NaN only when everything is NaN (the candidate order).
        size_t best = 0;
        for (size_t i = 1; i < candidates_.size(); ++i)
            if (ranks_before(candidates_[i].id, candidates_[i].logit, candidates_[best].id,
                             candidates_[best].logit))
                best = i;
        return candidates_[best].id;
    }

    const bool top_k_on = o.top_k > 0 && size_t(o.top_k) < candidates_.size();
    if (top_k_on) {
        sampling::top_k(candidates_, o.top_k);  // a partial sort of the k best
        sampling::softmax(candidates_);
    } else {
        // No full sort of the vocabulary: min-p keeps the tokens with p >= min_p * max p, a set that does
        // not depend on order, so filter first and sort only the survivors (top-p needs them sorted; both
        // filters keep a prefix of the sorted list, so their order does not matter).
        sampling::softmax(candidates_);
        if (o.min_p > 0.0f) {
            float max_p = 0.0f;
            for (const auto& t : candidates_) max_p = std::max(max_p, t.p);
            const float threshold = max_p * o.min_p;
            const auto end = std::partition(candidates_.begin(), candidates_.end(),
                                            [&](const TokenCandidate& t) { return t.p >= threshold; });
            candidates_.resize(size_t(end - candidates_.begin()));
        }
        // With neither top-p nor min-p there is nothing to cut, and the draw needs no order.
        if (o.min_p > 0.0f || o.top_p < 1.0f) sampling::top_k(candidates_, 0);  // sort what is left
    }
    return draw();
}

int32_t Sampler::draw() {
    const SamplerOptions& o = options_;
    sampling::top_p(candidates_, o.top_p);
    sampling::min_p(candidates_, o.min_p);
    for (auto& t : candidates_) t.logit /= o.temperature;
    sampling::softmax(candidates_);

    // A uniform double in [0, 1) from the top 53 bits: the same on every platform, unlike
    // std::uniform_real_distribution.
    const double u = double(rng_() >> 11) * 0x1p-53;
    double cum = 0.0;
    for (const auto& t : candidates_) {
        cum += t.p;
        if (u < cum) return t.id;
    }
    return candidates_.back().id;
}

}  // namespace kinfer::engine
