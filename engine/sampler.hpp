#pragma once
// Turning logits into the next token: logit biases, repetition / frequency / presence penalties over a
// window of recent tokens, then top-k, top-p, min-p, temperature, and a draw from a seeded PRNG (the same
// seed and inputs give the same tokens on every run). Temperature <= 0 means greedy: biases and penalties,
// then the argmax.
// All buffers are sized once for the vocabulary; sampling a token allocates nothing.
#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "engine/top_candidates.hpp"
#include "kinfer/options.hpp"

namespace kinfer::engine {

using kinfer::SamplerOptions;  // include/kinfer/options.hpp: one definition for the API and the engine

// A candidate token during sampling.
struct TokenCandidate {
    int32_t id;
    float logit;
    float p;  // probability (valid after softmax())
};

// The sampling stages on a candidate list, exposed so that each one can be tested on its own.
namespace sampling {
void apply_penalties(std::vector<TokenCandidate>& c, std::span<const int32_t> recent, float repeat,
                     float frequency, float presence, std::vector<int32_t>& counts_scratch);
// Sorts by logit (descending) and keeps the first k (k <= 0 or k >= size: sort only).
void top_k(std::vector<TokenCandidate>& c, int32_t k);
// Sets p of every candidate to softmax(logit) (c must be sorted descending for the p-based filters).
void softmax(std::vector<TokenCandidate>& c);
// Keeps the smallest prefix whose probabilities sum to >= p (at least one token). Needs sorted + softmax.
void top_p(std::vector<TokenCandidate>& c, float p);
// Keeps tokens with probability >= min_p * max probability. Needs sorted + softmax.
void min_p(std::vector<TokenCandidate>& c, float min_p);
}  // namespace sampling

class Sampler {
  public:
    Sampler(const SamplerOptions& options, int64_t n_vocab);

    // Picks the next token from `logits` (n_vocab floats); `history` is every token so far (the prompt
    // and what was generated), of which the last penalty_last_n feed the penalties.
    int32_t sample(std::span<const float> logits, std::span<const int32_t> history);

    // How many of the best candidates (engine/top_candidates.hpp) a step must keep for sample(top) to pick
    // exactly what sample(logits) would: 1 for greedy, top_k for top-k sampling; 0 when the sampler needs
    // the full logits (penalties or logit biases, or no top-k cut: top_k <= 0 or >= n_vocab at temperature
    // > 0).
    int32_t candidates_needed() const { return candidates_needed_; }
    // The same token (and the same draw from the PRNG) as sample(logits, history) for the logits whose best
    // candidates these are, in candidate order: at least candidates_needed() of them, the rest ignored.
    // Throws UsageError when candidates_needed() is 0 or there are too few.
    int32_t sample(std::span<const TopCandidate> top);

    const SamplerOptions& options() const { return options_; }

  private:
    // The stages after the top-k cut (or its full-vocabulary alternative): filters, temperature, draw.
    int32_t draw();

    SamplerOptions options_;
    int32_t candidates_needed_ = 0;
    int64_t n_vocab_;
    std::mt19937_64 rng_;
    std::vector<TokenCandidate> candidates_;
    std::vector<int32_t> counts_;
};

}  // namespace kinfer::engine
