#pragma once
// A step's output row reduced to its k best tokens: what greedy and top-k sampling need, without copying
// (or scanning on the host) the whole vocabulary per token. One order everywhere: descending logit, ties to
// the lower id, NaN below every number (NaNs among themselves by id). sampling::top_k sorts the same way,
// so the k candidates are exactly the first k of the full sorted list.
#include <cmath>
#include <cstdint>
#include <span>

namespace kinfer::engine {

struct TopCandidate {
    int32_t id;
    float logit;
};

// Whether (a_id, a) comes before (b_id, b) in the candidate order above.
inline bool ranks_before(int32_t a_id, float a, int32_t b_id, float b) {
    const bool a_nan = std::isnan(a), b_nan = std::isnan(b);
    if (a_nan != b_nan) return b_nan;
    if (!a_nan && a != b) return a > b;
    return a_id < b_id;
}

// The min(k, logits.size()) best of `logits` (ids = indices), in candidate order, into out[0 ..). out must
// hold that many; nothing is allocated (a heap in `out` itself). k >= 1.
void select_top(std::span<const float> logits, int32_t k, std::span<TopCandidate> out);

// select_top of each of `rows` rows of n_vocab logits into rows of k candidates of `top` (k <= n_vocab).
void select_top_rows(const float* logits, int64_t rows, int64_t n_vocab, int32_t k, TopCandidate* top);

// Sorts candidates (e.g. a device's unordered selection) into candidate order.
void sort_candidates(std::span<TopCandidate> c);

}  // namespace kinfer::engine
