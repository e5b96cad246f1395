#include "engine/top_candidates.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "kinfer/error.hpp"

namespace kinfer::engine {
namespace {

bool before(const TopCandidate& a, const TopCandidate& b) {
    return ranks_before(a.id, a.logit, b.id, b.logit);
}

// The largest non-NaN value of x[0, n) (-inf if none): kLanes independent maxima the compiler vectorises
// (NaN never compares greater), where one comparison chain per element cannot be.
float max_of(const float* x, size_t n) {
    constexpr size_t kLanes = 16;
    float lane_max[kLanes];
    std::fill(lane_max, lane_max + kLanes, -INFINITY);
    size_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
        for (size_t l = 0; l < kLanes; ++l) lane_max[l] = x[i + l] > lane_max[l] ? x[i + l] : lane_max[l];
    float best = -INFINITY;
    for (size_t l = 0; l < kLanes; ++l) best = lane_max[l] > best ? lane_max[l] : best;
    for (; i < n; ++i) best = x[i] > best ? x[i] : best;
    return best;
}

// The first candidate: the largest non-NaN logit, the lowest id among equal ones (-0 equals +0), id 0 when
// all are NaN; the maximum, then the first id holding it (the server takes it for every sequence of every
// step: 65 us per 32768 logits with ranks_before per element, on one core).
TopCandidate best_of(std::span<const float> x) {
    const float best = max_of(x.data(), x.size());
    for (size_t j = 0; j < x.size(); ++j)
        if (x[j] == best) return {int32_t(j), x[j]};
    return {0, x[0]};  // all NaN
}

}  // namespace

void select_top(std::span<const float> logits, int32_t k, std::span<TopCandidate> out) {
    if (k < 1) throw UsageError("select_top: k must be at least 1, got " + std::to_string(k));
    const size_t n = std::min(size_t(k), logits.size());
    if (out.size() < n)
        throw UsageError("select_top: room for " + std::to_string(out.size()) + " candidates, " +
                         std::to_string(n) + " needed");
    if (n == 0) return;
    if (n == 1) {
        out[0] = best_of(logits);
        return;
    }
    // A heap of the n best so far whose front is the worst of them (`before` as the heap's "less" puts
    // the last-ranked on top); a later id only enters when it ranks before that worst one.
    const auto heap = out.first(n);
    for (size_t i = 0; i < n; ++i) heap[i] = {int32_t(i), logits[i]};
    std::make_heap(heap.begin(), heap.end(), before);
    // Blocks of kBlock logits none of which exceeds the worst kept (a number) are skipped after max_of: a
    // later id never wins a tie and NaN never enters then, so only a greater logit could have ranked before
    // it. (A server step with ignore_eos keeps 2+ candidates: the element-wise heap test was ~8% of its
    // samples.)
    constexpr size_t kBlock = 64;
    size_t i = n;
    while (i < logits.size()) {
        const size_t end = std::min(logits.size(), i + kBlock);
        const float worst = heap.front().logit;
        if (end - i == kBlock && !std::isnan(worst) && !(max_of(&logits[i], kBlock) > worst)) {
            i = end;
            continue;
        }
        for (; i < end; ++i) {
            const TopCandidate c{int32_t(i), logits[i]};
            if (!before(c, heap.front())) continue;
            std::pop_heap(heap.begin(), heap.end(), before);
            heap.back() = c;
            std::push_heap(heap.begin(), heap.end(), before);
        }
    }
    std::sort_heap(heap.begin(), heap.end(), before);
}

void select_top_rows(const float* logits, int64_t rows, int64_t n_vocab, int32_t k, TopCandidate* top) {
    for (int64_t r = 0; r < rows; ++r)
        select_top({logits + r * n_vocab, size_t(n_vocab)}, k, {top + r * k, size_t(k)});
}

void sort_candidates(std::span<TopCandidate> c) {
    std::sort(c.begin(), c.end(), before);
}

}  // namespace kinfer::engine
