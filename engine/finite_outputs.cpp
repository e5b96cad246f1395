#include "engine/finite_outputs.hpp"

#include <bit>
#include <string>

#include "kinfer/error.hpp"

namespace kinfer::engine {

bool all_finite(std::span<const float> v) {
    // An exponent of all ones is NaN or infinity; OR-ing a flag per value lets the compiler vectorise.
    uint32_t bad = 0;
    for (const float x : v) bad |= uint32_t((std::bit_cast<uint32_t>(x) & 0x7f800000u) == 0x7f800000u);
    return bad == 0;
}

namespace {

[[noreturn]] void fail(const char* what, int64_t position) {
    throw Error(std::string(what) + ": the model gave non-finite logits (NaN or infinity) at position " +
                std::to_string(position) +
                ": its activations overflowed (weights far out of range, or a corrupt model file)");
}

}  // namespace

void check_logits_finite(const float* logits, int64_t rows, int64_t n_vocab, const char* what,
                         int64_t position) {
    for (int64_t r = 0; r < rows; ++r)
        if (!all_finite({logits + r * n_vocab, size_t(n_vocab)})) fail(what, position + r);
}

void check_top_finite(const TopCandidate* top, int64_t rows, int32_t k, const char* what, int64_t position) {
    for (int64_t r = 0; r < rows; ++r)
        if (!all_finite({&top[r * k].logit, 1})) fail(what, position + r);
}

}  // namespace kinfer::engine
