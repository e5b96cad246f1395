#pragma once
// A step's outputs must be numbers: NaN or infinity in the logits means an activation overflowed (weights far
// out of range, a corrupt file; on the GPU's batched products a value beyond fp16's 65 504), and sampling
// would then pick tokens from garbage without a word. The checks read the exponent bits, so no floating-point
// flag or fast-math setting can drop them; a row of 32 768 logits costs a few microseconds.
#include <cstdint>
#include <span>

#include "engine/top_candidates.hpp"

namespace kinfer::engine {

// Whether every value is finite.
bool all_finite(std::span<const float> v);

// Throws Error naming `what` and the position when `rows` rows of n_vocab logits, or (candidates) the best
// candidate of each of `rows` rows of k, hold NaN or infinity. A candidate row's best is NaN only when the
// whole row is (NaN sorts last).
void check_logits_finite(const float* logits, int64_t rows, int64_t n_vocab, const char* what,
                         int64_t position);
void check_top_finite(const TopCandidate* top, int64_t rows, int32_t k, const char* what, int64_t position);

}  // namespace kinfer::engine
